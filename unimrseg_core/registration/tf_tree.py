"""Static transforms between named frames, looked up as tf2 does: through the tree, either way.

A robot's ``/tf_static`` rarely holds the optical frames' poses in one another directly; it
holds a tree (``base_link -> camera_link -> camera_color_optical_frame``, ``base_link ->
thermal_link -> thermal_optical_frame``). :class:`StaticTransforms` keeps the edges as
``/tf_static`` gives them (``parent_from_child``) and :meth:`StaticTransforms.lookup`
composes the path between any two frames of one tree, as ``tf2_ros.Buffer.lookup_transform``
does for static transforms. ROS-free: bag tools feed it rosbags' messages.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from unimrseg_core.registration.extrinsics import Transform
from unimrseg_core.registration.intrinsics import CalibrationError

__all__ = ["StaticTransforms", "frame_name"]


def frame_name(frame_id: str) -> str:
    """A frame id as tf2 compares it: without a leading ``/`` (ROS 1 bags and old drivers write one)."""
    return str(frame_id).strip().lstrip("/")


class StaticTransforms:
    """A forest of ``parent_from_child`` edges; the newest edge for a child replaces an older one."""

    def __init__(self) -> None:
        self._parent: dict[str, tuple[str, Transform]] = {}  # child -> (parent, parent_from_child)

    def __len__(self) -> int:
        return len(self._parent)

    @property
    def frames(self) -> set[str]:
        return set(self._parent) | {parent for parent, _ in self._parent.values()}

    def add(self, parent: str, child: str, parent_from_child: Transform) -> None:
        parent, child = frame_name(parent), frame_name(child)
        if not parent or not child or parent == child:
            raise CalibrationError(f"a transform needs two different frame ids, got {parent!r} -> {child!r}")
        self._parent[child] = (parent, parent_from_child)

    def add_message(self, msg: Any) -> int:
        """Every TransformStamped of a ``tf2_msgs/TFMessage`` (rosbags' or rclpy's); how many were
        taken. A transform that is no rigid motion (a quaternion of the wrong length) raises."""
        taken = 0
        for stamped in msg.transforms:
            t, q = stamped.transform.translation, stamped.transform.rotation
            try:
                pose = Transform.from_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])
            except CalibrationError as exc:
                raise CalibrationError(
                    f"transform {stamped.header.frame_id!r} -> {stamped.child_frame_id!r}: {exc}"
                ) from None
            self.add(stamped.header.frame_id, stamped.child_frame_id, pose)
            taken += 1
        return taken

    def lookup(self, target: str, source: str) -> Transform:
        """``target_from_source``: maps points of ``source`` into ``target`` (tf2's
        ``lookup_transform(target, source)``); CalibrationError when the frames are not connected."""
        target, source = frame_name(target), frame_name(source)
        if target == source:
            return Transform.identity()
        path = self._path(source, target)
        if path is None:
            known = ", ".join(sorted(self.frames)) or "none"
            missing = [f for f in (target, source) if f not in self.frames]
            why = f"{' and '.join(map(repr, missing))} not in it" if missing else "not connected"
            raise CalibrationError(f"no transform {target!r} <- {source!r} ({why}; its frames: {known})")
        result = Transform.identity()
        for step in path:  # target_from_a @ a_from_b @ ... @ y_from_source
            result = result @ step
        return result

    def _path(self, source: str, target: str) -> list[Transform] | None:
        """The edges from ``source`` to ``target`` as ``next_from_current`` transforms, target side
        first (so that composing them left to right gives ``target_from_source``)."""
        neighbours: dict[str, list[tuple[str, Transform]]] = {}
        for child, (parent, pose) in self._parent.items():
            neighbours.setdefault(child, []).append((parent, pose))  # parent_from_child
            neighbours.setdefault(parent, []).append((child, pose.inverse()))  # child_from_parent
        came: dict[str, tuple[str, Transform]] = {}  # frame -> (previous frame, frame_from_previous)
        seen, todo = {source}, deque([source])
        while todo:
            frame = todo.popleft()
            if frame == target:
                break
            for nxt, nxt_from_frame in neighbours.get(frame, []):
                if nxt not in seen:
                    seen.add(nxt)
                    came[nxt] = (frame, nxt_from_frame)
                    todo.append(nxt)
        if target not in came:
            return None
        steps, frame = [], target
        while frame != source:
            previous, step = came[frame]
            steps.append(step)
            frame = previous
        return steps
