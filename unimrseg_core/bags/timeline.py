"""The timeline PNG of a ``bag eval`` result: health bands, faults, mIoU and output rate over time.

It reads only the result dict (:func:`unimrseg_core.bags.evaluate.evaluate_bag`, or a
live run's result of the same layout), so a JSON file can be plotted again later.
Matplotlib's object API on the Agg canvas (no pyplot), as :mod:`unimrseg_core.eval.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from unimrseg_core.health import HealthState
from unimrseg_core.modalities import MODALITIES

__all__ = ["STATE_COLORS", "write_timeline"]

STATE_COLORS: Final[Mapping[str, str]] = {
    str(HealthState.OK): "#4caf50",
    str(HealthState.DEGRADED): "#ff9800",
    str(HealthState.LOST): "#e53935",
}
_FAULT_COLOR: Final = "#7e57c2"


def _bands(result: dict[str, Any], span_s: float) -> dict[str, list[tuple[float, float, str]]]:
    """Per modality: (start, end, state) pieces over [0, span] from the transitions."""
    health = result["health"]
    out: dict[str, list[tuple[float, float, str]]] = {}
    for modality in MODALITIES:
        state, since = health["initial"].get(modality, str(HealthState.LOST)), 0.0
        pieces = []
        for t in health["transitions"]:
            if t["modality"] != modality:
                continue
            at = min(max(t["t_s"], 0.0), span_s)
            if at > since:
                pieces.append((since, at, state))
            state, since = t["new"], max(since, at)
        if span_s > since:
            pieces.append((since, span_s, state))
        out[modality] = pieces
    return out


def _shade_faults(ax: Any, faults: list[dict[str, Any]], label: bool) -> None:
    for f in faults:
        ax.axvspan(f["start_s"], f["end_s"], color=_FAULT_COLOR, alpha=0.12, lw=0, zorder=0)
        if label:
            ax.text(
                (f["start_s"] + f["end_s"]) / 2,
                1.02,
                f"{f['modality']}\n{f['kind']}",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=7,
                color=_FAULT_COLOR,
            )


def _scene_names(result: dict[str, Any], count: int) -> list[str]:
    """``bag make``'s lighting per scene (it cycles through its conditions), else ``scene k``."""
    conditions = ((result["bag"].get("sequence") or {}).get("conditions")) or []
    if not conditions:
        return [f"scene {k}" for k in range(count)]
    return ["+".join(conditions[k % len(conditions)]) for k in range(count)]


def _healthy_levels(ax: Any, result: dict[str, Any], span_s: float) -> None:
    """Healthy mIoU (and 0.9 of it), the reference of the mIoU target: per scene, else the whole bag."""
    scenes = result["summary"].get("scenes") or []
    if not scenes:
        healthy = result["summary"]["healthy"]["miou"]
        if healthy is not None:
            ax.axhline(healthy, color="k", lw=0.8, ls="--", label=f"healthy mIoU {healthy:.3f}")
            ax.axhline(0.9 * healthy, color="grey", lw=0.8, ls=":", label="0.9 x healthy")
        return
    names = _scene_names(result, len(scenes))
    for k, scene in enumerate(scenes):
        a, b, level = scene["start_s"], scene["end_s"], scene["healthy_miou"]
        if k:
            for axis in ax.figure.axes:
                axis.axvline(a, color="grey", lw=0.8, alpha=0.6)
        ax.text((a + b) / 2, 0.03, f"{names[k]} scene", ha="center", fontsize=8, color="dimgrey")
        if level is None:
            continue
        ax.hlines(
            level, a, b, color="k", lw=0.8, ls="--", label="healthy mIoU of the scene" if k == 0 else None
        )
        ax.hlines(0.9 * level, a, b, color="grey", lw=0.8, ls=":", label="0.9 x that" if k == 0 else None)


def write_timeline(result: dict[str, Any], path: str | Path) -> Path:
    """Write the timeline PNG of ``result`` to ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    span_s = float(result["summary"]["span_s"] or 0.0) or 1.0
    faults = result["faults"]
    windows = result["windows"]
    edges = [w["start_s"] for w in windows] + [windows[-1]["end_s"]] if windows else [0.0, span_s]

    fig = Figure(figsize=(11, 6.6))
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.1, 1.4, 1.0]})
    health_ax, score_ax, rate_ax = axes

    # -- health bands, one row per modality, rgb on top
    for row, pieces in enumerate(_bands(result, span_s).values()):
        y = len(MODALITIES) - 1 - row
        for a, b, state in pieces:
            health_ax.broken_barh([(a, b - a)], (y - 0.38, 0.76), color=STATE_COLORS.get(state, "grey"), lw=0)
    health_ax.set_yticks(range(len(MODALITIES)), list(reversed(MODALITIES)))
    health_ax.set_ylim(-0.6, len(MODALITIES) - 0.4)
    _shade_faults(health_ax, faults, label=True)
    for f in faults:  # outline the faulted modality's band
        y = len(MODALITIES) - 1 - MODALITIES.index(f["modality"])
        health_ax.plot([f["start_s"], f["end_s"]], [y + 0.45, y + 0.45], color=_FAULT_COLOR, lw=2)
    health_ax.legend(
        handles=[Patch(color=c, label=s) for s, c in STATE_COLORS.items()]
        + [Patch(color=_FAULT_COLOR, alpha=0.3, label="fault injected")],
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        fontsize=8,
        frameon=False,
    )
    health_ax.set_title(
        f"{Path(result['bag']['path']).name}: sensor health, faults, scores "
        f"({result['mode']}, {result['backend']['name']})",
        fontsize=10,
        pad=26,
    )

    # -- mIoU and S-measure per window, with the healthy level (per scene when the bag has scenes)
    for key, label, style in (("miou", "mIoU", "-"), ("s_measure", "S-measure", ":")):
        values = np.array([np.nan if w[key] is None else w[key] for w in windows], dtype=float)
        if windows and not np.all(np.isnan(values)):
            score_ax.stairs(values, edges, label=label, lw=1.8, ls=style, baseline=None)
    _healthy_levels(score_ax, result, span_s)
    _shade_faults(score_ax, faults, label=False)
    score_ax.set_ylim(0, 1.0)
    score_ax.set_ylabel(f"score per {result['config']['window_s']:g} s")
    score_ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    score_ax.grid(alpha=0.3)

    # -- output rate against the anchor rate
    for key, label, style in (
        ("anchor_rate_hz", "anchor rate", "--"),
        ("output_rate_hz", "output rate", "-"),
    ):
        values = np.array([np.nan if w[key] is None else w[key] for w in windows], dtype=float)
        if windows:
            rate_ax.stairs(values, edges, label=label, lw=1.6, ls=style, baseline=None)
    _shade_faults(rate_ax, faults, label=False)
    top = max(
        [w["anchor_rate_hz"] or 0 for w in windows] + [w["output_rate_hz"] or 0 for w in windows] + [1.0]
    )
    rate_ax.set_ylim(0, top * 1.25)
    rate_ax.set_ylabel("Hz")
    rate_ax.set_xlabel("time since the bag's start (s)")
    rate_ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    rate_ax.grid(alpha=0.3)
    rate_ax.set_xlim(0, span_s)

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
