"""PNG figures of an :func:`~unimrseg_core.eval.evaluate.evaluate` result.

Matplotlib's object API on the Agg canvas (no pyplot), so plotting never touches a
display or the global backend of a process that also trains or serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["write_plots"]


def _bars(result: dict[str, Any], path: Path) -> Path:
    """mIoU and S-measure side by side per combination; missing measures are left out."""
    rows = result["combinations"]
    names = [r["combination"] for r in rows]
    x = np.arange(len(names))
    fig = Figure(figsize=(max(5.0, 1.2 * len(names) + 1.5), 3.8))
    ax = fig.add_subplot()
    for offset, key, label in ((-0.2, "miou", "mIoU"), (0.2, "s_measure", "S-measure")):
        present = [(i, r[key]) for i, r in enumerate(rows) if r[key] is not None]
        if not present:
            continue
        xs, ys = x[[i for i, _ in present]] + offset, [v for _, v in present]
        bars = ax.bar(xs, ys, width=0.4, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, names, rotation=25, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score")
    ax.set_title("per modality combination")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _heatmap(result: dict[str, Any], path: Path) -> Path:
    """Condition x combination mIoU, each cell annotated; empty cells stay blank."""
    conditions = result["conditions"]
    names = [r["combination"] for r in result["combinations"]]
    values = np.array(
        [[np.nan if conditions[c].get(n) is None else conditions[c][n] for n in names] for c in conditions]
    )
    fig = Figure(figsize=(max(5.0, 1.1 * len(names) + 2.0), 0.5 * len(conditions) + 1.8))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k"
            )
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax.set_yticks(range(len(conditions)), list(conditions))
    ax.set_title("mIoU per condition and combination")
    fig.colorbar(image, ax=ax, label="mIoU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_plots(result: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """``combinations.png`` always; ``conditions.png`` when the data has conditions. Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [_bars(result, out / "combinations.png")]
    if result["conditions"]:
        paths.append(_heatmap(result, out / "conditions.png"))
    return paths
