"""rosbag2 bags without ROS: the project's bag contents and ``unimrseg bag make``.

Bags are read and written with the pure-Python ``rosbags`` library (ROS 2 Kilted
message definitions, sqlite3 or mcap storage), because ``ros2 bag`` / rosbag2_py are
not installable from PyPI.

- :mod:`.topics`: topic names, types, encodings and frame ids of a bag (one place).
- :mod:`.messages`: headers, Images in sensor units, Strings, CDR serialization.
- :mod:`.write`: :func:`make_bag`, the procedural world as a moving camera, faults baked in.
- :mod:`.cli`: ``unimrseg bag ...``.
"""

from unimrseg_core.bags.write import FAULTS_SIDECAR, STORAGES, BagSummary, make_bag

__all__ = ["FAULTS_SIDECAR", "STORAGES", "BagSummary", "make_bag"]
