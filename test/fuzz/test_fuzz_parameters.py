"""Fuzzing the node's parameters: any value of any parameter is accepted or refused with a reason by
``validate``, and ``node_config`` maps any set of values onto the core configs or raises a
ParameterError naming a real parameter; NaN never passes. rclpy is not needed."""

from __future__ import annotations

import math

import fuzzing
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from unimrseg_core.modalities import MODALITIES
from unimrseg_ros.parameters import (
    BY_NAME,
    PARAMS,
    NodeConfig,
    ParameterError,
    defaults,
    node_config,
    validate,
)

pytestmark = pytest.mark.timeout(fuzzing.TIMEOUT_S)

NAMES = tuple(p.name for p in PARAMS)
FLOAT_NAMES = tuple(p.name for p in PARAMS if p.kind == "float")

_ODD_TEXT = st.sampled_from(
    ["", " ", "~", "~nosuchuser_zz/model.onnx", "\x00", "a" * 300, "cuda:x", "1.5", "é"]
)
_ANY = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 2**63, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    _ODD_TEXT,
    st.none(),
    st.lists(st.one_of(st.sampled_from(MODALITIES), st.text(max_size=4), st.integers()), max_size=5),
    st.sampled_from([(), ("rgb",), {"rgb": 1}, 1 + 2j, b"rgb", [["rgb"]]]),
)


def values_for(name: str) -> st.SearchStrategy:
    """Values of the parameter's own type, in and around its range or choices, then anything."""
    param = BY_NAME[name]
    low = -1e6 if param.low is None else param.low
    high = 1e6 if param.high is None else param.high
    usual: st.SearchStrategy
    if param.kind == "bool":
        usual = st.booleans()
    elif param.kind == "int":
        usual = st.one_of(
            st.integers(int(low) - 2, int(low) + 40),
            st.integers(int(high) - 40, int(high) + 2),
            st.integers(int(low), int(high)),
        )
    elif param.kind == "float":
        usual = st.one_of(
            st.floats(low, high),
            st.sampled_from([low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf)]),
            st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
        )
    elif param.kind == "str" and param.choices:
        usual = st.one_of(st.sampled_from(param.choices), st.text(max_size=10), _ODD_TEXT)
    elif param.kind == "str":
        usual = st.one_of(st.just(""), st.text(max_size=20), _ODD_TEXT)
    else:
        usual = st.lists(st.sampled_from([*param.choices, "ir", ""]), max_size=4)
    return st.integers(0, 9).flatmap(lambda k: usual if k < 8 else _ANY)


@st.composite
def changes(draw: st.DrawFn) -> dict[str, object]:
    names = draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True))
    return {name: draw(values_for(name)) for name in names}


def _verdict(problem: str | None) -> str:
    """``accepted``, or ``refused: <kind of reason>`` (the value itself left out)."""
    if problem is None:
        return "accepted"
    kinds = {
        "expected": "wrong type",
        "outside": "out of range",
        "not in": "not a choice",
        "listed twice": "duplicate",
        "multiple of": "off the step",
        "NUL": "NUL character",
        "cannot be expanded": "unknown ~user",
    }
    return "refused: " + next((kind for key, kind in kinds.items() if key in problem), "other")


@fuzzing.budget()
@given(name=st.one_of(st.sampled_from(NAMES), st.text(max_size=10)), data=st.data())
@fuzzing.counted
def test_validate_gives_a_reason_or_none_for_any_value(name: str, data: st.DataObject) -> None:
    value = data.draw(values_for(name) if name in BY_NAME else _ANY)
    problem, _ = fuzzing.attempt(lambda: validate(name, value), (), what=_verdict)
    assert problem is None or (isinstance(problem, str) and problem)
    if name not in BY_NAME:
        assert problem is None  # not ours: the node leaves other parameters alone
    if isinstance(value, float) and math.isnan(value) and name in BY_NAME:
        assert problem is not None


@fuzzing.budget()
@given(changed=changes(), dropped=st.lists(st.sampled_from(NAMES), max_size=1))
@example(changed={"checkpoint": "~nosuchuser_zz/model.pt"}, dropped=[])  # found: RuntimeError
@example(changed={"threads": "abc"}, dropped=[])  # found: ValueError from int()
@example(changed={"thermal.offset_kelvin": "x"}, dropped=[])  # found: named thermal.kelvin_per_count
@example(changed={"rgb.expected_rate_hz": None}, dropped=[])  # found: TypeError from float()
@fuzzing.counted
def test_node_config_maps_any_values_or_names_the_bad_parameter(changed, dropped) -> None:
    values = {**defaults(), **changed}
    for name in dropped:
        del values[name]
    config, error = fuzzing.attempt(lambda: node_config(values), (ParameterError,), lambda e: e.name)
    if error is not None:
        assert error.name in BY_NAME
        assert str(error).startswith(f"parameter {error.name}: ")
        assert error.name in changed or error.name in dropped or _depends(error.name, changed)
        if error.name in changed and error.name not in dropped and validate(error.name, changed[error.name]):
            assert validate(error.name, changed[error.name]) in str(error)
        return
    assert isinstance(config, NodeConfig)
    assert not dropped
    for name, value in changed.items():
        assert validate(name, value) is None, (name, value)
    assert config.enabled == tuple(m for m in MODALITIES if values[f"{m}.enabled"])
    assert config.sync.anchors
    assert set(config.sync.enabled) == set(config.enabled)


def _depends(name: str, changed: dict[str, object]) -> bool:
    """A parameter refused because of another one that changed (an order, a pair, a combination)."""
    related = {
        "health.rate_window": ("health.min_rate_samples",),
        "thermal.mono8_max_kelvin": ("thermal.mono8_min_kelvin",),
        "input_height": ("input_width",),
        "sync.anchor_priority": tuple(f"{m}.enabled" for m in MODALITIES),
        "rgb.enabled": tuple(f"{m}.enabled" for m in MODALITIES),
    }
    return any(other in changed for other in related.get(name, ()))


def test_nan_and_inf_are_refused_for_every_float_parameter() -> None:
    for name in FLOAT_NAMES:
        for value in (math.nan, math.inf, -math.inf):
            assert validate(name, value), (name, value)
            with pytest.raises(ParameterError) as info:
                node_config({**defaults(), name: value})
            assert info.value.name == name
