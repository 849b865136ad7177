"""Header stamps vs record times: measure the offset so a bag is scored on one clock.

A bag's record time is when the recorder got a message; its header stamp is the
sender's clock. They agree (within the transport delay) for a live recording, and not
at all for a recording of a replay (old stamps, new record times), simulation time
(stamps from 0) or a camera whose clock runs an hour ahead. ``bag eval`` replays on the
record time, as the node's clock runs on receive time, while frames are matched to
ground truth and bucketed by stamp; without a common clock a 4 s bag scored as 0.2 s
(all stamps before the start) or 3604 s (all an hour after it).

:func:`measure` takes, per camera, the median of ``stamp - record`` over its first
messages (robust to a delayed or frozen message), and :class:`TimeBase` puts stamps on
the record clock with it; the result says so (``bag.time_base`` in the JSON).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from unimrseg_core.bags.read import BagReader
from unimrseg_core.bags.topics import SENSORS
from unimrseg_core.pipeline import stamp_ns

__all__ = ["SAMPLE", "TimeBase", "measure"]

SAMPLE: Final = 100
"""Messages per camera the offset is measured over (the first ones of the bag)."""
_NS: Final = 1_000_000_000
_MODALITY_OF: Final = {t.topic: m for m, t in SENSORS.items()}


@dataclass(frozen=True)
class TimeBase:
    """Per camera modality, its header stamps minus the bag's record times (median, ns)."""

    offsets_ns: Mapping[str, int] = field(default_factory=dict)
    samples: Mapping[str, int] = field(default_factory=dict)

    def offset_ns(self, modality: str | None = None) -> int:
        """One modality's offset, or (None) the median over the cameras: for stamps of no camera."""
        if modality is not None and modality in self.offsets_ns:
            return int(self.offsets_ns[modality])
        return _median(list(self.offsets_ns.values())) if self.offsets_ns else 0

    def schedule_zero_ns(self, record_start_ns: int, sequence: Mapping[str, Any] | None) -> int:
        """The fault schedule's zero on the record clock: ``bag make``'s start stamp (``sequence``'s
        ``start_ns``, a header stamp) put on it, else the bag's first record time. Offline and
        live evaluation both place the schedule with it."""
        if sequence and isinstance(sequence.get("start_ns"), int):
            return int(sequence["start_ns"]) - self.offset_ns()
        return int(record_start_ns)

    def stamp_on_clock_ns(self, stamp_ns: int, modality: str | None = None) -> int:
        """A header stamp of ``modality`` (None: of no one camera) placed on the record clock."""
        return int(stamp_ns) - self.offset_ns(modality)

    def warnings(self, max_skew_ns: int) -> list[str]:
        """The cameras' clocks disagree by more than the frame assembler's max skew: no frame can
        combine them (the node behaves the same on these stamps)."""
        if len(self.offsets_ns) < 2:
            return []
        spread = max(self.offsets_ns.values()) - min(self.offsets_ns.values())
        if spread <= max_skew_ns:
            return []
        return [
            f"camera stamps run on different clocks ({spread / _NS:.3f} s apart, max skew "
            f"{max_skew_ns / _NS:.3f} s): frames cannot combine them"
        ]

    def as_json(self, t0_ns: int, max_skew_ns: int) -> dict[str, Any]:
        return {
            "scored_in": "record time (the replay's clock); header stamps minus the offset",
            "t0_ns": int(t0_ns),
            "stamp_minus_record_s": {m: round(v / _NS, 6) for m, v in self.offsets_ns.items()},
            "stamp_minus_record_ns": dict(self.offsets_ns),
            "samples": dict(self.samples),
            "warnings": self.warnings(max_skew_ns),
        }


def _median(values: list[int]) -> int:
    """The (upper) median, exact in integers: float64 would round epoch nanoseconds."""
    return sorted(values)[len(values) // 2]


def measure(bag: BagReader, *, sample: int = SAMPLE) -> TimeBase:
    """Read the first ``sample`` messages of each camera topic in ``bag`` and take the median offset.

    A message without a usable header is skipped here; the replay counts it as rejected.
    """
    topics = [t for t in bag.topics if t in _MODALITY_OF]
    diffs: dict[str, list[int]] = defaultdict(list)
    for message in bag.messages(topics):
        modality = _MODALITY_OF[message.topic]
        if len(diffs[modality]) < sample:
            try:
                diffs[modality].append(stamp_ns(message.msg.header) - message.record_ns)
            except (AttributeError, TypeError, ValueError):
                continue
        if len(diffs) == len(topics) and all(len(d) >= sample for d in diffs.values()):
            break
    return TimeBase(
        offsets_ns={m: _median(d) for m, d in diffs.items() if d},
        samples={m: len(d) for m, d in diffs.items()},
    )
