"""unimrseg_core.modalities: the one definition of modalities, combinations, classes, normalisation."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from unimrseg_core import modalities as mod
from unimrseg_core.modalities import (
    CLASS_COLORS,
    CLASS_NAMES,
    CLASSES,
    COMBINATIONS,
    IGNORE_INDEX,
    MODALITIES,
    MODALITY_CHANNELS,
    NORMALIZATION,
    NUM_CLASSES,
    apply_mask,
    class_id,
    colorize,
    combination,
    combination_from_mask,
    denormalize,
    mask_array,
    model_metadata,
    normalize,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
STABLE_NAMES = (
    "rgb",
    "depth",
    "thermal",
    "rgb+depth",
    "rgb+thermal",
    "depth+thermal",
    "rgb+depth+thermal",
)

# ------------------------------------------------------------------ modalities and combinations


def test_modality_order_and_channels():
    assert MODALITIES == ("rgb", "depth", "thermal")
    assert dict(MODALITY_CHANNELS) == {"rgb": 3, "depth": 1, "thermal": 1}
    assert tuple(NORMALIZATION) == MODALITIES


def test_exactly_seven_combinations_with_stable_names_in_order():
    assert len(COMBINATIONS) == 7
    assert tuple(c.name for c in COMBINATIONS) == STABLE_NAMES
    assert tuple(str(c) for c in COMBINATIONS) == STABLE_NAMES
    # every combination lists its modalities in MODALITIES order, no repeats
    for c in COMBINATIONS:
        assert list(c.modalities) == [m for m in MODALITIES if m in c.modalities]
        assert len(set(c.modalities)) == len(c.modalities) >= 1
    assert len({c.modalities for c in COMBINATIONS}) == 7


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("thermal+rgb", "rgb+thermal"),
        ("rgb+thermal", "rgb+thermal"),
        (" depth + rgb ", "rgb+depth"),
        ("thermal+depth+rgb", "rgb+depth+thermal"),
        ("depth", "depth"),
        ("rgb+rgb", "rgb"),
        (["thermal", "depth"], "depth+thermal"),
        (("rgb",), "rgb"),
    ],
)
def test_combination_canonicalises_order(spec, expected):
    c = combination(spec)
    assert c.name == expected
    assert c in COMBINATIONS
    assert c is COMBINATIONS[STABLE_NAMES.index(expected)]  # the canonical object, not a copy


@pytest.mark.parametrize("spec", ["", "rgb+", "ir", "rgb+ir", "RGB", "rgb,depth", ["rgb", "lidar"], []])
def test_combination_rejects_unknown_and_empty(spec):
    with pytest.raises(ValueError, match=r"unknown modality|at least one"):
        combination(spec)


def test_combination_error_names_the_bad_modality():
    with pytest.raises(ValueError, match="lidar"):
        combination("rgb+lidar")
    with pytest.raises(ValueError, match="at least one"):
        combination([])


def test_combination_contains():
    c = combination("rgb+thermal")
    assert "rgb" in c
    assert "thermal" in c
    assert "depth" not in c


@pytest.mark.parametrize("name", STABLE_NAMES)
def test_combination_from_mask_round_trip(name):
    c = combination(name)
    mask = c.mask
    assert mask.dtype == np.float32
    assert mask.shape == (3,)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert combination_from_mask(mask) is c
    assert combination_from_mask(mask.tolist()) is c
    # values > 0.5 count as present
    assert combination_from_mask(mask * 0.9 + 0.05) is c
    np.testing.assert_array_equal(mask_array(c.modalities), mask)


def test_combination_from_mask_rejects_bad_masks():
    with pytest.raises(ValueError, match="3 entries"):
        combination_from_mask([1.0, 1.0])
    with pytest.raises(ValueError, match="at least one"):
        combination_from_mask([0.0, 0.2, 0.5])  # nothing present


def test_mask_array():
    np.testing.assert_array_equal(mask_array(["thermal", "rgb"]), np.array([1, 0, 1], np.float32))
    np.testing.assert_array_equal(mask_array([]), np.zeros(3, np.float32))
    np.testing.assert_array_equal(mask_array(MODALITIES), np.ones(3, np.float32))
    assert mask_array(["depth"]).dtype == np.float32
    with pytest.raises(ValueError, match="lidar"):
        mask_array(["rgb", "lidar"])


# ------------------------------------------------------------------------------------ classes


def test_class_table_ids_names_colours():
    assert NUM_CLASSES == len(CLASSES) == 8
    assert [c.id for c in CLASSES] == list(range(NUM_CLASSES))
    assert len(set(CLASS_NAMES)) == NUM_CLASSES
    assert tuple(c.name for c in CLASSES) == CLASS_NAMES
    assert len({c.color for c in CLASSES}) == NUM_CLASSES
    for c in CLASSES:
        assert len(c.color) == 3
        assert all(isinstance(v, int) and 0 <= v <= 255 for v in c.color)
        assert class_id(c.name) == c.id
    assert {c.name for c in CLASSES if c.is_thing} == {"person", "vehicle", "obstacle"}
    assert not 0 <= IGNORE_INDEX < NUM_CLASSES
    assert IGNORE_INDEX == 255
    with pytest.raises(KeyError, match="car"):
        class_id("car")


def test_class_colors_lookup_table():
    assert CLASS_COLORS.shape == (256, 3)
    assert CLASS_COLORS.dtype == np.uint8
    assert not CLASS_COLORS.flags.writeable
    for c in CLASSES:
        assert tuple(CLASS_COLORS[c.id]) == c.color
    assert not CLASS_COLORS[NUM_CLASSES:].any()  # unknown ids and IGNORE_INDEX are black


def test_colorize():
    label = np.array([[0, 1, 2], [5, 7, IGNORE_INDEX]], dtype=np.uint8)
    rgb = colorize(label)
    assert rgb.shape == (2, 3, 3)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[0, 1]) == CLASSES[1].color
    assert tuple(rgb[1, 0]) == CLASSES[class_id("person")].color
    assert tuple(rgb[1, 1]) == CLASSES[7].color
    assert tuple(rgb[1, 2]) == (0, 0, 0)
    # int64 labels (as a model's argmax gives them) work the same
    np.testing.assert_array_equal(colorize(label.astype(np.int64)), rgb)


# ------------------------------------------------------------------------------ normalisation


def test_normalize_depth():
    depth = np.array([0.0, 20.0, 10.0, 30.0, np.nan, np.inf, -np.inf, -1.0], np.float32)
    out = normalize("depth", depth)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 1.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0], atol=1e-7)


def test_normalize_thermal():
    thermal = np.array([[240.0, 340.0], [290.0, 200.0], [400.0, np.nan]], np.float32)
    out = normalize("thermal", thermal)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out, [[0.0, 1.0], [0.5, 0.0], [1.0, 0.0]], atol=1e-6)


def test_normalize_rgb_keeps_channels_last():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 51)
    out = normalize("rgb", rgb)
    assert out.shape == (2, 2, 3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [1.0, 0.0, 0.2], atol=1e-6)
    assert out.min() >= 0.0
    assert out.max() <= 1.0


@pytest.mark.parametrize("modality", MODALITIES)
def test_denormalize_inverts_normalize_inside_the_range(modality):
    norm = NORMALIZATION[modality]
    values = np.linspace(norm.low, norm.high, 11, dtype=np.float32)
    back = denormalize(modality, normalize(modality, values))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, values, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(denormalize(modality, np.array([0.0, 1.0])), [norm.low, norm.high])


def test_normalize_unknown_modality():
    with pytest.raises(KeyError):
        normalize("lidar", np.zeros(3))


def test_model_metadata_is_json_and_complete():
    meta = model_metadata()
    text = json.dumps(meta, allow_nan=False)  # strict JSON: no NaN/inf, only JSON types
    round_trip = json.loads(text)
    assert json.dumps(round_trip, allow_nan=False) == text  # nothing lost (tuples become lists)
    assert [tuple(c["color"]) for c in round_trip["classes"]] == [c.color for c in CLASSES]
    assert meta["modalities"] == list(MODALITIES)
    assert meta["combinations"] == list(STABLE_NAMES)
    assert meta["ignore_index"] == IGNORE_INDEX
    assert [c["name"] for c in meta["classes"]] == list(CLASS_NAMES)
    assert [c["id"] for c in meta["classes"]] == list(range(NUM_CLASSES))
    assert meta["normalization"]["depth"] == {"unit": "m", "low": 0.0, "high": 20.0}
    assert meta["normalization"]["thermal"] == {"unit": "K", "low": 240.0, "high": 340.0}


# ----------------------------------------------------- nobody else re-defines the facts above


def _string_elements(node: ast.AST) -> list[str] | None:
    """String constants of a tuple/list/set literal (or a dict's keys); None if not all strings."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        elts = node.elts
    elif isinstance(node, ast.Dict):
        elts = node.keys
    else:
        return None
    if not elts or not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elts):
        return None
    return [e.value for e in elts]  # type: ignore[union-attr]


def _int_triple(node: ast.AST) -> tuple[int, ...] | None:
    if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == 3:
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and type(e.value) is int]
        if len(values) == 3:
            return tuple(values)
    return None


def restated_facts(source: str, filename: str = "<src>") -> list[str]:
    """Literals in ``source`` that restate modalities.py: the modality set, class tables, colours.

    Works on the syntax tree, so docstrings, comments and f-strings never count.
    """
    modality_set = set(MODALITIES)
    class_names = set(CLASS_NAMES)
    colours = {c.color for c in CLASSES}
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        strings = _string_elements(node)
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if strings is not None:
            if set(strings) == modality_set and len(strings) == 3:
                found.append(f"{where}: modality list {strings}")
            if len(set(strings) & class_names) >= 3:
                found.append(f"{where}: class-name table {sorted(set(strings) & class_names)}")
        triple = _int_triple(node)
        if triple in colours:
            found.append(f"{where}: class colour {triple}")
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name in {"ClassInfo", "ModalityNorm", "Combination"}:
                found.append(f"{where}: constructs {name}")
    return found


def test_restated_facts_checker_is_precise():
    flagged = """
X = ("thermal", "rgb", "depth")
Y = {"rgb": 3, "depth": 1, "thermal": 1}
NAMES = ["person", "sky", "vehicle"]
COLOUR = (220, 20, 60)
extra = ClassInfo(8, "bike", (1, 2, 3), True)
"""
    assert len(restated_facts(flagged)) == 5
    clean = '''
"""Docstring mentioning ("rgb", "depth", "thermal") and person, sky, vehicle, (220, 20, 60)."""
# ("rgb", "depth", "thermal")
FOLDERS = ("rgb", "depth", "thermal", "label")
PAIR = ("rgb", "depth")
ONE = ("person", "sky")
text = f"{'rgb'} {'depth'} {'thermal'}"
'''
    assert restated_facts(clean) == []


def test_no_other_module_restates_modalities_or_classes():
    modalities_file = Path(mod.__file__).resolve()
    files = [
        p
        for package in ("unimrseg_core", "unimrseg_ros")
        for p in sorted((REPO_ROOT / package).rglob("*.py"))
        if p.resolve() != modalities_file
    ]
    assert len(files) > 10
    found = [f for p in files for f in restated_facts(p.read_text(), str(p.relative_to(REPO_ROOT)))]
    assert found == [], "import these from unimrseg_core.modalities instead:\n" + "\n".join(found)
    # and the reference file itself is seen by the checker (the check can fail)
    assert restated_facts(modalities_file.read_text())


def _inputs(batch: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    images = {
        m: rng.uniform(0.1, 1, (*batch, MODALITY_CHANNELS[m], 4, 5)).astype(np.float32) for m in MODALITIES
    }
    return {**images, "modality_mask": np.ones((*batch, len(MODALITIES)), np.float32)}


@pytest.mark.parametrize("batch", [(), (7,)])
def test_apply_mask_zeroes_the_absent_and_marks_them(batch):
    inputs = _inputs(batch)
    for combo in COMBINATIONS:
        out = apply_mask(inputs, combo.mask)
        np.testing.assert_array_equal(out["modality_mask"], np.broadcast_to(combo.mask, (*batch, 3)))
        for m in MODALITIES:
            assert out[m].dtype == np.float32
            np.testing.assert_array_equal(out[m], inputs[m] if m in combo else 0.0, err_msg=f"{combo} {m}")
    assert (inputs["depth"] > 0).all()  # the inputs are left alone
    assert (inputs["modality_mask"] == 1).all()


def test_apply_mask_takes_one_mask_per_sample():
    inputs = _inputs((7,))
    masks = np.stack([c.mask for c in COMBINATIONS])
    out = apply_mask(inputs, masks)
    for row, combo in enumerate(COMBINATIONS):
        alone = apply_mask({k: v[row] for k, v in inputs.items()}, combo.mask)
        for key in (*MODALITIES, "modality_mask"):
            np.testing.assert_array_equal(out[key][row], alone[key])


def test_apply_mask_tensor_is_apply_mask():
    import torch

    from unimrseg_core.data.tensor_ops import apply_mask_tensor

    inputs = _inputs((7,))
    masks = np.stack([c.mask for c in COMBINATIONS])
    want = apply_mask(inputs, masks)
    got = apply_mask_tensor({k: torch.from_numpy(v) for k, v in inputs.items()}, torch.from_numpy(masks))
    for key in (*MODALITIES, "modality_mask"):
        np.testing.assert_array_equal(got[key].numpy(), want[key], err_msg=key)
