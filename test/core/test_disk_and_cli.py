"""The on-disk layout (``write_dataset`` / ``GeneratedDataset``) through the ``unimrseg`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from unimrseg_core.cli import main
from unimrseg_core.data import SceneGenerator
from unimrseg_core.data.disk import FOLDERS, GeneratedDataset
from unimrseg_core.data.preview import COLUMNS
from unimrseg_core.data.readers import DatasetError
from unimrseg_core.modalities import CLASS_NAMES, model_metadata

N, SEED, SIZE = 6, 7, (96, 128)
ARGS = ["data", "generate", "--n", str(N), "--seed", str(SEED), "--size", "96x128"]
CONSOLE_SCRIPT = Path(sys.prefix) / "bin" / "unimrseg"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "d"
    assert main([*ARGS, "--out", str(out), "--quiet"]) == 0
    return out


def test_generate_writes_complete_scenes(generated, capsys):
    names = [f"{i:06d}.png" for i in range(N)]
    for folder in FOLDERS:
        assert sorted(p.name for p in (generated / folder).iterdir()) == names
    assert sorted(p.name for p in generated.iterdir()) == sorted([*FOLDERS, "metadata.json"])
    meta = json.loads((generated / "metadata.json").read_text())
    assert meta["format"] == "unimrseg-world"
    assert meta["seed"] == SEED
    assert meta["count"] == N
    assert meta["size"] == list(SIZE)
    assert meta["classes"] == json.loads(json.dumps(model_metadata()["classes"]))
    assert [c["name"] for c in meta["classes"]] == list(CLASS_NAMES)
    assert meta["normalization"] == model_metadata()["normalization"]
    assert set(meta["encodings"]) == set(FOLDERS)
    assert [s["name"] for s in meta["scenes"]] == [n[:-4] for n in names]
    for i, scene in enumerate(meta["scenes"]):
        assert scene["index"] == i
        assert scene["seed"] == SEED
        assert scene["conditions"]
        cam = scene["camera"]
        assert (cam["height"], cam["width"]) == SIZE
        assert {"fx", "fy", "cx", "cy", "mount_height_m", "pitch_deg"} <= set(cam)


def test_png_encodings(generated):
    depth = cv2.imread(str(generated / "depth" / "000000.png"), cv2.IMREAD_UNCHANGED)
    thermal = cv2.imread(str(generated / "thermal" / "000000.png"), cv2.IMREAD_UNCHANGED)
    label = cv2.imread(str(generated / "label" / "000000.png"), cv2.IMREAD_UNCHANGED)
    saliency = cv2.imread(str(generated / "saliency" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16
    assert depth.shape == SIZE
    assert thermal.dtype == np.uint16
    assert 20000 < thermal.min() <= thermal.max() < 40000  # centikelvin
    assert label.dtype == np.uint8
    assert label.ndim == 2
    assert set(np.unique(saliency)) <= {0, 255}


def test_read_back_equals_the_generator_exactly(generated):
    ds = GeneratedDataset(generated)
    assert len(ds) == N
    gen = SceneGenerator(SIZE, SEED)
    for i, sample in enumerate(ds):
        expected = gen.sample(i)
        for name in ("rgb", "depth", "thermal", "label", "saliency"):
            a, b = getattr(sample, name), getattr(expected, name)
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b, err_msg=f"scene {i} {name}")  # lossless: mm, 0.01 K
        assert sample.meta == expected.meta
    assert ds[-1].meta["index"] == N - 1


def test_same_seed_is_byte_identical_and_workers_do_not_matter(generated, tmp_path):
    again, parallel, other = tmp_path / "again", tmp_path / "parallel", tmp_path / "other"
    assert main([*ARGS, "--out", str(again), "--quiet"]) == 0
    assert main([*ARGS, "--out", str(parallel), "--workers", "2", "--quiet"]) == 0
    reference = _files(generated)
    assert len(reference) == 5 * N + 1
    assert _files(again) == reference  # every byte, metadata.json included
    assert _files(parallel) == reference
    # the comparison can fail: another seed differs
    assert main(["data", "generate", "--n", "2", "--seed", "8", "--size", "96x128", "--out", str(other)]) == 0
    changed = _files(other)
    assert changed["rgb/000000.png"] != reference["rgb/000000.png"]
    assert changed["metadata.json"] != reference["metadata.json"]


def test_forced_conditions_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "forced"
    assert (
        main([*ARGS[:3], "2", "--size", "32x48", "--out", str(out), "--conditions", "night", "depth_holes"])
        == 0
    )
    assert "wrote 2 scenes" in capsys.readouterr().out
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["forced_conditions"] == ["night", "depth_holes"]
    assert all(s["conditions"] == ["night", "depth_holes"] for s in meta["scenes"])


def test_refuses_to_overwrite_a_non_empty_directory(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    keep = out / "notes.txt"
    keep.write_text("precious")
    stamp = keep.stat().st_mtime_ns
    assert main([*ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err
    assert str(out) in err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no folders created either
    assert keep.read_text() == "precious"
    assert keep.stat().st_mtime_ns == stamp
    # a file in the way is refused too; an existing empty directory is fine
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([*ARGS, "--out", str(blocker)]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*ARGS[:3], "1", "--size", "32x48", "--out", str(empty), "--quiet"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "96by128"], "size must be HEIGHTxWIDTH"),
        (["--size", "8x8"], "within 16..4096"),
        (["--size", "96x"], "size must be HEIGHTxWIDTH"),
        (["--n", "0"], "must be >= 1"),
        (["--n", "-3"], "must be >= 1"),
        (["--seed", "-1"], "must be >= 0"),
        (["--workers", "0"], "must be >= 1"),
        (["--conditions", "snow"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    base = ["data", "generate", "--out", str(out), "--n", "1"]
    with pytest.raises(SystemExit) as exc:
        main([*base, *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_missing_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "unimrseg" in capsys.readouterr().out


def test_preview_sheet_grows_with_rows(tmp_path, capsys):
    one, two = tmp_path / "sheet.png", tmp_path / "sub" / "sheet2.png"
    assert main(["data", "preview", "--out", str(one), "--size", "96x128", "--seed", "3"]) == 0
    assert "contact sheet" in capsys.readouterr().out
    assert main(["data", "preview", "--out", str(two), "--size", "96x128", "--per-condition", "2"]) == 0
    assert one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    a, b = cv2.imread(str(one)), cv2.imread(str(two))
    h, w = SIZE
    row = h + 4  # one row per scene, 4 px gap
    band = max(h // 8, 24)  # header and legend
    assert a.shape == (band + 6 * row + band, len(COLUMNS) * w + 4 * (len(COLUMNS) - 1), 3)  # 6 conditions
    assert b.shape[0] - a.shape[0] == 6 * row
    assert b.shape[1] == a.shape[1]
    assert a.std() > 20  # pictures, not a blank canvas


def test_generated_dataset_errors_name_the_file(generated, tmp_path):
    with pytest.raises(DatasetError, match=r"metadata\.json") as exc:
        GeneratedDataset(tmp_path)
    assert exc.value.path == tmp_path / "metadata.json"
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable metadata"):
        GeneratedDataset(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(DatasetError, match="not a unimrseg-world"):
        GeneratedDataset(tmp_path)
    # a copy of the generated set with one PNG missing
    broken = tmp_path / "broken"
    for rel, data in _files(generated).items():
        (broken / rel).parent.mkdir(parents=True, exist_ok=True)
        (broken / rel).write_bytes(data)
    missing = broken / "thermal" / "000002.png"
    missing.unlink()
    ds = GeneratedDataset(broken)
    ds[1]  # others still read
    with pytest.raises(DatasetError, match=r"000002\.png") as exc:
        ds[2]
    assert exc.value.path == missing


def test_console_script_entry_point(tmp_path):
    assert CONSOLE_SCRIPT.is_file(), f"console script not installed at {CONSOLE_SCRIPT}"
    help_run = subprocess.run(
        [str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "data" in help_run.stdout
    out = tmp_path / "cli"
    gen_run = subprocess.run(
        [
            str(CONSOLE_SCRIPT),
            "data",
            "generate",
            "--out",
            str(out),
            "--n",
            "1",
            "--size",
            "32x48",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert gen_run.returncode == 0, gen_run.stderr
    assert f"wrote 1 scenes to {out}" in gen_run.stdout
    sample = GeneratedDataset(out)[0]
    np.testing.assert_array_equal(sample.depth, SceneGenerator((32, 48), 0).sample(0).depth)
    bad = subprocess.run(
        [str(CONSOLE_SCRIPT), "data", "generate", "--out", str(out), "--n", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2  # out is not empty now
    assert "refusing" in bad.stderr
