"""rosbag2 bags without ROS: the project's bag contents and ``unimrseg bag make``.

Bags are read and written with the pure-Python ``rosbags`` library (ROS 2 Kilted
message definitions, sqlite3 or mcap storage), because ``ros2 bag`` / rosbag2_py are
not installable from PyPI.

- :mod:`.topics`: topic names, types, encodings and frame ids of a bag (one place).
- :mod:`.messages`: headers, Images in sensor units, Strings, CDR serialization.
- :mod:`.write`: :func:`make_bag`, the procedural world as a moving camera, faults baked in.
- :mod:`.read`: :class:`BagReader`, any rosbag2 bag (a robot's too, with a topic remap) in
  time order, its fault schedule; :class:`BagError` for every bag that cannot be read.
- :mod:`.score`: :class:`~.score.Scoreboard`, outputs and health scored against ground
  truth and the fault schedule (shared by offline and live evaluation).
- :mod:`.evaluate`: :func:`~.evaluate.evaluate_bag`, the offline ``bag eval``.
- :mod:`.timeline`: the timeline PNG of an evaluation.
- :mod:`.raw`: :class:`~.raw.RawBag`, any bag as serialized messages (what ``bag play``
  publishes; its recorded QoS), never deserialized.
- :mod:`.cli`: ``unimrseg bag ...``.

rosbags is an optional dependency of the core: :mod:`.topics` and :mod:`.cli` import without
it (so the ``unimrseg`` parser does), and this package loads the names below from
:mod:`.read` and :mod:`.write`, which need rosbags, only when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unimrseg_core.lazy import lazy_exports

if TYPE_CHECKING:
    from unimrseg_core.bags.read import BagError, BagReader
    from unimrseg_core.bags.write import FAULTS_SIDECAR, STORAGES, BagSummary, make_bag

__all__ = ["FAULTS_SIDECAR", "STORAGES", "BagError", "BagReader", "BagSummary", "make_bag"]

_LAZY: dict[str, str] = {
    "BagError": "read",
    "BagReader": "read",
    "FAULTS_SIDECAR": "write",
    "STORAGES": "write",
    "BagSummary": "write",
    "make_bag": "write",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
