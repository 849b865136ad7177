"""The topic table (``unimrseg_core/topics.py``) is the one place topic and node names are spelled.

Every other module of the two packages, the launch file and the benchmarks take the names
from it, so renaming a topic is one edit; the committed SROS2 policy (generated from the
table by ``python -m unimrseg_ros.security``) names only the table's topics and those rcl
makes for every node.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from unimrseg_core import topics

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "unimrseg_core" / "topics.py"
SCANNED = ("unimrseg_core", "unimrseg_ros", "launch", "benchmarks")
RCL_TOPICS = {"/rosout", "/parameter_events", "~/transition_event"}


def names() -> list[str]:
    """Every name in the table (plain strings and the string values of its per-modality mappings)."""
    out: list[str] = []
    for attribute in topics.__all__:
        value = getattr(topics, attribute)
        values = value.values() if isinstance(value, dict) else [value]
        out += [v for v in values if isinstance(v, str)]
    return out


def literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal of a Python file, f-string parts included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_the_table_names_the_cameras_in_modality_order_and_every_name_once() -> None:
    assert tuple(topics.INPUTS) == tuple(topics.INJECTOR_INPUTS) == ("rgb", "depth", "thermal")
    assert len(names()) == len(set(names()))


def test_input_topics_are_named_as_image_transport_names_them() -> None:
    assert topics.input_topic("rgb") == topics.INPUTS["rgb"]
    assert topics.input_topic("rgb", "compressed") == f"{topics.INPUTS['rgb']}/compressed"
    assert topics.input_topic("depth", "compressedDepth") == f"{topics.INPUTS['depth']}/compressedDepth"
    with pytest.raises(ValueError, match="rgb has no transport 'compressedDepth'"):
        topics.input_topic("rgb", "compressedDepth")


def test_no_module_outside_the_table_spells_a_topic_or_node_name() -> None:
    table = set(names())
    spelled = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for folder in SCANNED
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != TABLE
        for line, text in literals(path)
        if text in table or text.lstrip("/") in table
    ]
    assert not spelled, "take these names from unimrseg_core.topics:\n" + "\n".join(spelled)


def test_the_committed_sros2_policy_names_only_the_tables_topics() -> None:
    text = (REPO / "config" / "sros2_policy.xml").read_text()
    policy = ET.fromstring(text.split("-->", 1)[1])
    named = {t.text for t in policy.iter("topic")}
    assert named - RCL_TOPICS <= set(names())
    assert set(topics.INPUTS.values()) <= named
    assert {p.get("node") for p in policy.iter("profile")} == {topics.NODE_NAME}
