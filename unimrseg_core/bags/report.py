"""The demo report: ``demo_out/report.md`` from a live and an offline ``bag eval`` of one bag.

``python -m unimrseg_core.bags.report --bag BAG --live LIVE.json --offline OFFLINE.json
--samples SAMPLES.npz --out DIR`` writes ``DIR/report.md`` and ``DIR/strip.png``: a table per
fault (detected after, recovered after, output / anchor rate, mIoU vs healthy, pass / fail
against issue 7's targets, live), live vs offline mIoU (target: within 0.02), the timeline
PNG (``DIR/live/timeline.png``, written by ``bag eval --plots``) and a strip of frames: the
camera images the node received, its health and the masks it published, at a healthy
moment and during each fault (``SAMPLES``: written by the live run, see
:data:`unimrseg_ros.live_eval.SAMPLES`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from matplotlib.figure import Figure

from unimrseg_core.bags.messages import stamp_to_ns
from unimrseg_core.bags.read import BagReader
from unimrseg_core.bags.topics import GROUND_TRUTH, SENSORS
from unimrseg_core.image_msg import decode
from unimrseg_core.modalities import MODALITIES, colorize

__all__ = ["MIOU_AGREEMENT", "main", "write_report"]

MIOU_AGREEMENT: Final = 0.02
"""Live and offline mIoU must agree within this (issue 7)."""
_NS: Final = 1_000_000_000


def _c(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _delay(event: dict[str, Any]) -> str:
    if event.get("delay_s") is None:
        return "–"
    return f"{event['delay_s']:.2f} s ({_c(event.get('delay_periods'), 1)} T)"


def _verdict(rows: list[dict[str, Any]], fault: str, target: str) -> str:
    for r in rows:
        if r["fault"] == fault and r["target"] == target:
            return {True: "pass", False: "**fail**", None: "n/a"}[r["passed"]]
    return ""


def _state_at(result: dict[str, Any], modality: str, t_s: float) -> str:
    state = result["health"]["initial"].get(modality, "LOST")
    for t in result["health"]["transitions"]:
        if t["modality"] == modality and t["t_s"] is not None and t["t_s"] <= t_s:
            state = t["new"]
    return state


def _frames_at(bag_path: Path, t0_ns: int, times_s: Sequence[float]) -> list[dict[str, Any]]:
    """Per time: each camera's last image recorded by then (what the node had), and the ground truth."""
    wanted = sorted((t0_ns + round(t * _NS), k) for k, t in enumerate(times_s))
    out: list[dict[str, Any]] = [{} for _ in times_s]
    last: dict[str, Any] = {}
    topics = {t.topic: m for m, t in SENSORS.items()} | {t.topic: f"gt_{k}" for k, t in GROUND_TRUTH.items()}
    with BagReader(bag_path) as bag:
        present = [t for t in bag.topics if t in topics]
        i = 0
        for message in bag.messages(present):
            while i < len(wanted) and message.record_ns > wanted[i][0]:
                out[wanted[i][1]] = dict(last)
                i += 1
            if i == len(wanted):
                break
            name = topics[message.topic]
            last[name] = (message.msg, stamp_to_ns(message.msg.header.stamp), message.record_ns)
        while i < len(wanted):
            out[wanted[i][1]] = dict(last)
            i += 1
    return out


def _image(name: str, msg: Any) -> np.ndarray:
    image = decode(msg, name) if name in MODALITIES else decode(msg, "rgb")[..., 0]
    return np.asarray(image)


def write_strip(
    bag_path: Path, live: dict[str, Any], samples: Path, out: Path, *, thumb_width: float = 1.5
) -> Path:
    """The strip PNG: one row per sample (healthy, then each fault), inputs | health | masks."""
    data = np.load(samples)
    n = len([k for k in data.files if k.startswith("meta_")])
    metas = [data[f"meta_{k}"] for k in range(n)]
    t0_ns = int(live["schedule"]["t0_ns"])
    times = [(int(m[1]) - t0_ns) / _NS for m in metas]
    frames = _frames_at(bag_path, t0_ns, times)
    columns = ["rgb", "depth", "thermal", "ground truth", "node: class mask", "node: saliency"]
    fig = Figure(figsize=(thumb_width * len(columns), thumb_width * 0.85 * n + 0.3), dpi=64)
    axes = fig.subplots(n, len(columns), squeeze=False)
    for row in range(n):
        label, stamp, used, _skipped = (str(x) for x in metas[row])
        t_s = times[row]
        health = ", ".join(f"{m} {_state_at(live, m, t_s)}" for m in MODALITIES)
        for col, title in enumerate(columns):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
            image, cmap, note = None, None, ""
            if title in MODALITIES:
                got = frames[row].get(title)
                if got is None:
                    note = "no message"
                else:
                    msg, cam_stamp, record_ns = got
                    age = (int(stamp) - cam_stamp) / 1e9
                    image = _image(title, msg)
                    cmap = None if title == "rgb" else ("viridis" if title == "depth" else "inferno")
                    silent = (t0_ns + round(t_s * _NS) - record_ns) / 1e9
                    if silent > 0.5:
                        note = f"silent {silent:.1f} s"
                    elif age > 0.15:
                        note = f"stamp {age:.1f} s old"
                    state = _state_at(live, title, t_s)
                    if state != "OK":
                        note = (note + " " if note else "") + state
                if title != "rgb" and got is None:
                    note = f"no message ({_state_at(live, title, t_s)})"
            elif title == "ground truth":
                got = frames[row].get("gt_class_mask")
                image = colorize(_image("gt", got[0])) if got else None
            elif title == "node: class mask":
                image = colorize(data[f"class_mask_{row}"])
            else:
                image, cmap = data[f"saliency_{row}"], "gray"
            if image is not None:
                ax.imshow(image, cmap=cmap)
            else:
                ax.set_facecolor("black")
            if note:
                ax.text(
                    0.03,
                    0.05,
                    note,
                    transform=ax.transAxes,
                    color="white",
                    fontsize=6,
                    bbox={"facecolor": "#e53935", "alpha": 0.8, "pad": 1, "linewidth": 0},
                )
            if col == 0:
                ax.set_ylabel(f"{label}\nt={t_s:.1f} s", fontsize=6)
            if col == 4:
                ax.set_xlabel(f"used {used}", fontsize=6)
            if col == 3:
                ax.set_xlabel(health, fontsize=5)
    fig.subplots_adjust(left=0.1, right=0.99, top=0.96, bottom=0.02, wspace=0.04, hspace=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def write_report(
    bag_path: Path,
    live: dict[str, Any],
    offline: dict[str, Any],
    out_dir: Path,
    *,
    samples: Path | None = None,
    timeline: str = "live/timeline.png",
    seconds: dict[str, float] | None = None,
) -> Path:
    """``out_dir/report.md`` (and ``strip.png`` when ``samples`` is given); returns the report's path."""
    lines = ["# UniMRSeg demo: live fault evaluation", "", *_comparison(live, offline)]
    lines += _fault_table(live, offline)
    lines += [
        "",
        "## Timeline (live)",
        "",
        f"![timeline]({timeline})",
        "",
        "Health bands per modality (from the node's /diagnostics), faults shaded, mIoU per window, "
        "output rate.",
        "",
    ]
    if samples is not None and samples.exists():
        write_strip(bag_path, live, samples, out_dir / "strip.png")
        lines += [
            "## Frames",
            "",
            "![strip](strip.png)",
            "",
            "Per row: the last image of each camera the node had at that moment (red: silent, stale stamp or "
            "not OK), the ground truth, and the masks the node published for that frame (`used`: the "
            "modalities it fed the model); health under the ground truth.",
            "",
        ]
    if seconds:
        lines += ["## Run time", "", *[f"- {k}: {v:.0f} s" for k, v in seconds.items()], ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def _comparison(live: dict[str, Any], offline: dict[str, Any]) -> list[str]:
    """The bag, how it was played, and the live vs offline table with the agreement verdict."""
    ls, os_ = live["summary"], offline["summary"]
    diff = None
    if ls["all"]["miou"] is not None and os_["all"]["miou"] is not None:
        diff = abs(ls["all"]["miou"] - os_["all"]["miou"])
    bag = live["bag"]
    node = live["live"]["node"]
    return [
        f"Bag: `{Path(bag['path']).name}`, {bag['duration_s']:.0f} s, {bag['messages']} messages "
        f"(faults baked into the bag by `bag make --faults`, schedule from {live['schedule']['source']}). "
        f"Live: `unimrseg_node` ({node.get('backend')} {node.get('precision')} on {node.get('device')}) and "
        f"`unimrseg bag play` in their own processes on ROS domain {live['live']['domain_id']}; offline: the "
        "same logic over the bag without DDS.",
        "",
        "## Live vs offline",
        "",
        "| | live | offline |",
        "|---|---:|---:|",
        f"| mIoU, whole bag | {_c(ls['all']['miou'], 3)} | {_c(os_['all']['miou'], 3)} |",
        f"| mIoU, healthy phase | {_c(ls['healthy']['miou'], 3)} | {_c(os_['healthy']['miou'], 3)} |",
        f"| outputs / anchor frames | {ls['all']['outputs']} / {ls['all']['anchor_frames']} | "
        f"{os_['all']['outputs']} / {os_['all']['anchor_frames']} |",
        f"| targets | {_pass(live)} | {_pass(offline)} |",
        "",
        f"**|live − offline| mIoU = {_c(diff, 4)}** (target ≤ {MIOU_AGREEMENT}: "
        f"{'pass' if diff is not None and diff <= MIOU_AGREEMENT else '**fail**'}). "
        f"Live receive latency (receive − stamp) p50 {_c(live['live']['receive_latency_ms']['p50'], 1)} ms, "
        f"p95 {_c(live['live']['receive_latency_ms']['p95'], 1)} ms; frames dropped by the node: "
        f"{node.get('dropped_frames')}.",
        "",
    ]


def _fault_table(live: dict[str, Any], offline: dict[str, Any]) -> list[str]:
    """One row per fault (live figures and verdicts, offline mIoU), then the targets missed."""
    lines = [
        "## Faults (live)",
        "",
        "Detected: fault start → the node's health leaves OK (from its /diagnostics); recovered: fault end → "
        "OK again; in expected frame periods (target ≤ 3 for drop / freeze / blackout). Rate: outputs / "
        "anchor frames while the fault is active (target ≥ 0.95). mIoU: during the fault against the healthy "
        "frames of its own scene (target ≥ 0.90). Left out: first frame without the faulted modality.",
        "",
        "| fault | detected after | recovered after | left out after | out / anchor Hz | mIoU "
        "(vs healthy) | offline mIoU | detection | recovery | rate | mIoU |",
        "|---|---:|---:|---:|---:|---:|---:|:-:|:-:|:-:|:-:|",
    ]
    rows = live["targets"]["rows"]
    for f, g in zip(live["faults"], offline["faults"], strict=True):
        lines.append(_fault_row(f, g, rows))
    missed = [r for r in rows if r["passed"] is False]
    lines += ["", f"Targets missed live: {len(missed)} of {len(rows)}."]
    lines += [f"- {r['fault']}: {r['target']} = {r['value']} (target {r['threshold']})" for r in missed]
    return lines


def _fault_row(f: dict[str, Any], g: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    det, rec, during = f["detection"] or {}, f["recovery"] or {}, f["during"]
    ratio = f["miou_vs_scene_healthy"] if f["scene_healthy_miou"] is not None else f["miou_vs_healthy"]
    target = "miou_vs_scene_healthy" if f["scene_healthy_miou"] is not None else "miou_vs_healthy"
    left = (f.get("left_out") or {}).get("first_frame_without_s")
    return (
        f"| {f['fault']} | {_delay(det)} | {_delay(rec)} | "
        f"{'–' if left is None else f'{left:.2f} s'} "
        f"| {_c(during['output_rate_hz'], 1)} / {_c(during['anchor_rate_hz'], 1)} "
        f"({_c(during['rate_ratio'])}) "
        f"| {_c(during['miou'], 3)} ({_c(ratio)}) | {_c(g['during']['miou'], 3)} "
        f"| {_verdict(rows, f['fault'], 'detection_delay_periods') or '–'} "
        f"| {_verdict(rows, f['fault'], 'recovery_delay_periods') or '–'} "
        f"| {_verdict(rows, f['fault'], 'output_rate_ratio')} | {_verdict(rows, f['fault'], target)} |"
    )


def _pass(result: dict[str, Any]) -> str:
    rows = result["targets"]["rows"]
    return f"{sum(r['passed'] is True for r in rows)} / {len(rows)} passed"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bag", type=Path, required=True)
    parser.add_argument("--live", type=Path, required=True, help="bag eval --live --json result")
    parser.add_argument("--offline", type=Path, required=True, help="bag eval --json result")
    parser.add_argument("--samples", type=Path, help="the live run's samples.npz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeline", default="live/timeline.png", help="timeline PNG, relative to --out")
    args = parser.parse_args(argv)
    live = json.loads(args.live.read_text())
    offline = json.loads(args.offline.read_text())
    seconds = {"live evaluation": live["seconds"], "offline evaluation": offline["seconds"]}
    path = write_report(
        args.bag, live, offline, args.out, samples=args.samples, timeline=args.timeline, seconds=seconds
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
