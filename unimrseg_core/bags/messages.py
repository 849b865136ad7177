"""rosbags messages for this project's topics: headers, Images in sensor units, Strings.

Images are filled by :func:`unimrseg_core.image_msg.fill_msg`, the encoder the ROS
node uses, so a bag holds exactly what the node would publish or receive.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from unimrseg_core.bags.topics import IMAGE_TYPE, STRING_TYPE, ImageTopic
from unimrseg_core.image_msg import fill_msg

__all__ = ["header", "image_msg", "ns_to_stamp", "serialize", "stamp_to_ns", "string_msg", "typestore"]

_NS_PER_S = 1_000_000_000


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The message definitions bags are written with: ROS 2 Kilted's."""
    return get_typestore(Stores.ROS2_KILTED)


def ns_to_stamp(stamp_ns: int) -> Any:
    """Nanoseconds since the epoch -> builtin_interfaces/msg/Time."""
    if stamp_ns < 0:
        raise ValueError(f"stamp must be >= 0 ns, got {stamp_ns}")
    sec, nanosec = divmod(int(stamp_ns), _NS_PER_S)
    return typestore().types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/msg/Time (rosbags or rclpy) -> nanoseconds."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def header(stamp_ns: int, frame_id: str) -> Any:
    return typestore().types["std_msgs/msg/Header"](stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def image_msg(topic: ImageTopic, image: np.ndarray, stamp_ns: int, *, modality: str | None = None) -> Any:
    """An Image in ``topic``'s encoding from an array in sensor units (``modality``) or raw (mono8)."""
    msg = typestore().types[IMAGE_TYPE](
        header=header(stamp_ns, topic.frame_id),
        height=0,
        width=0,
        encoding="",
        is_bigendian=0,
        step=0,
        data=np.empty(0, np.uint8),
    )
    return fill_msg(msg, image, topic.encoding, modality=modality)


def string_msg(text: str) -> Any:
    return typestore().types[STRING_TYPE](data=text)


def serialize(msg: Any) -> bytes:
    """CDR bytes, as rosbag2 stores them."""
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))
