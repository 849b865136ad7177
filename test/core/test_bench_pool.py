"""``benchmarks/bench_pool.py``: the pool it measures is the trainer's, and its figures add up."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_pool import pool_config, run

from unimrseg_core.train.batches import pool_dir


def test_a_small_pool_is_rendered_where_training_looks_and_decoded_whole(tmp_path):
    result = run(scenes=3, workers=1, cache_dir=tmp_path)
    (root,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (root / "metadata.json").is_file()
    assert root.name == pool_dir(pool_config(3, 1, tmp_path)).name  # the key data.mode: cache would use
    h, w = result["size"]
    assert result["arrays"]["rgb"] == ["uint8", [3, 3, h, w]]
    per_scene = (3 + 2 + 2 + 1 + 1) * h * w  # rgb, depth, thermal (uint16), label, saliency
    assert result["decoded_mb_per_scene"] == round(per_scene / 1e6, 3)
    assert result["render_scenes_per_s"] > 0
    assert result["disk_kib_per_scene"] > 0
