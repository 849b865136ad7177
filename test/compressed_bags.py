"""Test fixture bags: a bag's cameras re-encoded as image_transport's plugins write them.

Shared by the offline (``test/core/bags/test_bag_compressed.py``) and live
(``test/ros/test_live_eval_compressed.py``) tests of compressed robot bags; it sits beside
``conftest.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, Writer

from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.topics import COMPRESSED_IMAGE_TYPE, SENSORS
from unimrseg_core.compressed_msg import encode_compressed
from unimrseg_core.image_msg import decode
from unimrseg_core.topics import input_topic

__all__ = ["TRANSPORT", "compressed_copy"]

TRANSPORT = {"rgb": "compressed", "depth": "compressedDepth", "thermal": "compressed"}
MODALITY_OF = {t.topic: m for m, t in SENSORS.items()}
Payload = Callable[[str, bytes], bytes]


def _compressed(msg: object, modality: str, damage: Payload | None) -> object:
    fmt, data = encode_compressed(decode(msg, modality), modality, TRANSPORT[modality])
    if damage is not None:
        data = damage(modality, data)
    store = bag_messages.typestore()
    return store.types[COMPRESSED_IMAGE_TYPE](
        header=msg.header, format=fmt, data=np.frombuffer(data, np.uint8)
    )


def compressed_copy(
    src: Path,
    dst: Path,
    *,
    names: Mapping[str, str] | None = None,
    keep_raw: bool = False,
    damage: Payload | None = None,
) -> Path:
    """``src`` with each camera as CompressedImage (named ``names[modality]`` or image_transport's);
    ``keep_raw``: the raw Image topics stay too; ``damage``: rewrites a payload."""
    store = bag_messages.typestore()
    with Reader(src) as reader, Writer(dst, version=9) as writer:
        for key, value in (reader.storage.metadata.custom or {}).items():
            writer.set_custom_data(key, value)
        out, compressed = {}, {}
        for c in reader.connections:
            modality = MODALITY_OF.get(c.topic.lstrip("/"))
            if modality is None or keep_raw:
                out[c.id] = writer.add_connection(c.topic, c.msgtype, typestore=store)
            if modality is not None:
                name = (names or {}).get(modality, input_topic(modality, TRANSPORT[modality]))
                compressed[c.id] = (
                    modality,
                    writer.add_connection(name, COMPRESSED_IMAGE_TYPE, typestore=store),
                )
        for connection, record_ns, data in reader.messages():
            if connection.id in out:
                writer.write(out[connection.id], record_ns, data)
            if connection.id in compressed:
                modality, target = compressed[connection.id]
                msg = store.deserialize_cdr(data, connection.msgtype)
                writer.write(target, record_ns, bag_messages.serialize(_compressed(msg, modality, damage)))
    return dst
