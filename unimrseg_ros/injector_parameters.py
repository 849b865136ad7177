"""The fault injector's parameters: one table, generated from the fault model, that also writes the docs.

Per modality: ``<m>.enabled``, ``<m>.fault`` (none or a kind of
:data:`unimrseg_core.faults.KINDS` that applies to the modality), ``<m>.duration_s``,
and one ``<m>.<kind>.<param>`` for every parameter of every such kind, with the
model's default and range (the model's required parameters get a default here, so a
bare ``thermal.fault: noise`` works). Changing ``<m>.fault`` or one of its parameters
at run time (``ros2 param set``) applies at once; nothing needs a restart. The QoS and
the status period are read at configure (the node is a lifecycle node; ``autostart``
configures and activates it at start), the read-only ones only at start.

``python -m unimrseg_ros.injector_parameters`` prints the README table.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any, Final

from unimrseg_core.faults import KINDS
from unimrseg_core.modalities import MODALITIES
from unimrseg_ros.parameters import RELIABILITIES, Param, descriptor

__all__ = [
    "BY_NAME",
    "NONE",
    "PARAMS",
    "SCHEDULE_STARTS",
    "declare",
    "fault_choices",
    "fault_params",
    "markdown_table",
    "validate",
]

NONE: Final = "none"
SCHEDULE_STARTS: Final = ("first_message", "node_start")

_REQUIRED_DEFAULTS: Final[Mapping[str, float]] = {"sigma": 0.03, "rate_hz": 2.0, "delay_s": 0.5}
"""Defaults for the parameters the fault model requires in a schedule file."""


def fault_choices(modality: str) -> tuple[str, ...]:
    """``none`` and every fault kind that applies to ``modality``."""
    return (NONE, *(k for k, spec in KINDS.items() if modality in spec.modalities))


def _kind_params(modality: str) -> list[Param]:
    out = []
    for kind in fault_choices(modality)[1:]:
        for p in KINDS[kind].params:
            if modality not in p.modalities:
                continue
            default = p.default if p.default is not None else _REQUIRED_DEFAULTS[p.name]
            bound = "" if not p.low_open else f" (> {p.low:g})"
            if p.type is bool:
                out.append(Param(f"{modality}.{kind}.{p.name}", bool(default), f"{kind}: {p.help}."))
            else:
                low = p.low if math.isfinite(p.low) else -1e9
                high = p.high if math.isfinite(p.high) else 1e9
                out.append(
                    Param(
                        f"{modality}.{kind}.{p.name}", float(default), f"{kind}: {p.help}{bound}.", low, high
                    )
                )
    return out


def _modality(modality: str) -> list[Param]:
    return [
        Param(
            f"{modality}.enabled",
            True,
            f"Republish in/{modality}/image on {modality}/image (read at start).",
            read_only=True,
        ),
        Param(
            f"{modality}.fault",
            NONE,
            f"Fault to inject now on {modality} (none: end the commanded fault; a schedule file's "
            "faults go on).",
            choices=fault_choices(modality),
        ),
        Param(
            f"{modality}.duration_s",
            0.0,
            f"A commanded {modality} fault ends by itself after this many seconds (then "
            f"{modality}.fault is none again); 0: until cleared.",
            0.0,
            86400.0,
        ),
        *_kind_params(modality),
    ]


PARAMS: Final[tuple[Param, ...]] = (
    Param(
        "autostart",
        True,
        "Configure and activate on start; false: wait for lifecycle transitions (e.g. a lifecycle manager).",
        read_only=True,
    ),
    Param(
        "schedule_file",
        "",
        "Fault schedule YAML (README 'Bags and faults'), times from its start; empty: none. Setting it "
        "at run time loads it and starts it at once.",
    ),
    Param(
        "schedule_start",
        "first_message",
        "When a schedule file given at start begins: at the first camera message, or when the node starts.",
        choices=SCHEDULE_STARTS,
        read_only=True,
    ),
    Param("input_qos.reliability", "best_effort", "Input subscriptions' reliability.", choices=RELIABILITIES),
    Param("input_qos.depth", 5, "Input subscriptions' history depth.", 1, 1000),
    Param("output_qos.reliability", "reliable", "Republished topics' reliability.", choices=RELIABILITIES),
    Param("output_qos.depth", 5, "Republished topics' history depth.", 1, 1000),
    Param(
        "status_period_seconds",
        1.0,
        "Period of faults/active when nothing changes (a change is published at once).",
        0.1,
        60.0,
    ),
    *(p for m in MODALITIES for p in _modality(m)),
)

BY_NAME: Final[Mapping[str, Param]] = {p.name: p for p in PARAMS}


def validate(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for ``name`` (choices and ranges), or None."""
    param = BY_NAME.get(name)
    if param is None:
        return None
    if param.choices and value not in param.choices:
        return f"{value!r} not in {', '.join(param.choices)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and param.low is not None:
        high = param.high if param.high is not None else math.inf
        if not param.low <= value <= high:
            return f"{value!r} outside [{param.low:g}, {high:g}]"
    return None


def fault_params(modality: str, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``kind`` on ``modality`` from parameter values (``<m>.<kind>.<param>``)."""
    prefix = f"{modality}.{kind}."
    return {name[len(prefix) :]: value for name, value in values.items() if name.startswith(prefix)}


def declare(node: Any) -> None:
    """Declare every parameter with its descriptor (a params file or -p overrides the defaults)."""
    node.declare_parameters("", [(p.name, p.default, descriptor(p)) for p in PARAMS])


def _shown(value: Any) -> str:
    """As a params file or ``ros2 param set`` writes it (floats keep their decimal point)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _generic(param: Param) -> tuple[str, str, Param] | None:
    """(``<m>.name``, modality, param) for a per-modality parameter, else None."""
    modality, _, rest = param.name.partition(".")
    return (f"<m>.{rest}", modality, param) if modality in MODALITIES else None


def markdown_table() -> str:
    """The README table: global parameters, then each per-modality one once as ``<m>.…``."""
    rows = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    grouped: dict[str, list[tuple[str, Param]]] = {}
    for p in PARAMS:
        generic = _generic(p)
        if generic is None:
            grouped[p.name] = [("", p)]
        else:
            grouped.setdefault(generic[0], []).append((generic[1], p))
    for name, members in grouped.items():
        modalities = [m for m, _ in members if m]
        p = members[0][1]
        text = p.description
        if modalities and name.count(".") == 1:  # <m>.enabled / fault / duration_s name their modality
            text = re.sub(rf"\b{modalities[0]}\b", "<m>", text)
        if p.choices:
            offered = {c for _, q in members for c in q.choices}
            seen = [c for c in (NONE, *KINDS, *p.choices) if c in offered]
            seen = list(dict.fromkeys(seen))
            only = {
                c: [m for m, q in members if c in q.choices]
                for c in seen
                if not all(c in q.choices for _, q in members)
            }
            text += (
                " One of: "
                + ", ".join(f"{c} ({'/'.join(only[c])} only)" if c in only else c for c in seen)
                + "."
            )
        elif p.low is not None and p.high is not None and p.kind != "bool":
            high = "inf" if p.high >= 1e9 else f"{p.high:g}"
            text += f" Range [{p.low:g}, {high}]."
        if modalities and len(modalities) < len(MODALITIES):
            text += f" {'/'.join(modalities)} only."
        text += " Read-only." if p.read_only else ""
        defaults = {_shown(q.default) for _, q in members}
        default = defaults.pop() if len(defaults) == 1 else " / ".join(_shown(q.default) for _, q in members)
        rows.append(f"| `{name}` | {p.kind} | `{default}` | {text.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
