"""Markdown tables for MODEL_CARD.md from `unimrseg eval --json` files.

Usage: python scripts/model_card_tables.py NAME=EVAL.json [NAME=EVAL.json ...]
The first model is the one whose per-condition table is printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _nm_label(p: dict) -> str:
    return f"NM {p['modality']} {p['noise']} {p['level']}"


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    runs = {name: json.loads(Path(path).read_text()) for name, path in (a.split("=", 1) for a in argv)}
    names = list(runs)
    out = ["| model | complete mIoU | mean mIoU (7) | std | min | mean / complete | complete S | mean S |"]
    out.append("|---" * 8 + "|")
    for name, r in runs.items():
        s = r["summary"]
        ratio = s["mean_miou"] / s["complete_miou"] if s["complete_miou"] else None
        out.append(
            f"| {name} | {_f(s['complete_miou'])} | {_f(s['mean_miou'])} | {_f(s['std_miou'])} | "
            f"{_f(s['min_miou'])} | {_f(ratio)} | {_f(s['complete_s_measure'])} | {_f(s['mean_s_measure'])} |"
        )
    out += ["", "| combination | " + " | ".join(f"{n} mIoU" for n in names) + " | "]
    out[-1] += " | ".join(f"{n} S-measure" for n in names) + " |"
    out.append("|---" * (1 + 2 * len(names)) + "|")
    by_combo = {n: {c["combination"]: c for c in r["combinations"]} for n, r in runs.items()}
    for combo in by_combo[names[0]]:
        cells = [_f(by_combo[n][combo]["miou"]) for n in names] + [
            _f(by_combo[n][combo]["s_measure"]) for n in names
        ]
        out.append(f"| {combo} | " + " | ".join(cells) + " |")
    first = runs[names[0]]
    combos = list(by_combo[names[0]])
    out += ["", f"{names[0]}, mIoU per condition:", "", "| condition | " + " | ".join(combos) + " |"]
    out.append("|---" * (1 + len(combos)) + "|")
    for cond, row in first["conditions"].items():
        out.append(f"| {cond} | " + " | ".join(_f(row.get(c)) for c in combos) + " |")
    out += ["", "Robustness protocols on the complete input (mIoU / S-measure):", ""]
    header = "| protocol | " + " | ".join(names) + " |"
    out += [header, "|---" * (1 + len(names)) + "|"]
    for key, label in (("rmm", lambda p: f"RMM r={p['ratio']}"), ("nm", _nm_label)):
        for i, p in enumerate(first["protocols"].get(key, [])):
            pairs = [runs[n]["protocols"][key][i] for n in names]
            cells = [f"{_f(q['miou'])} / {_f(q['s_measure'])}" for q in pairs]
            out.append(f"| {label(p)} | " + " | ".join(cells) + " |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
