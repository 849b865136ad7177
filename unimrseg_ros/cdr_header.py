"""The header stamp of a serialized message, read and rewritten in its CDR bytes.

The fault injector passes camera images through as the bytes DDS delivered; only a
frozen image re-sent with the current stamp (``freeze`` with ``restamp``) needs a new
stamp. Every message that starts with a ``std_msgs/Header`` (sensor_msgs/Image does)
has it at a fixed place: after the 4-byte encapsulation header come ``int32 sec`` and
``uint32 nanosec``, little- or big-endian as the encapsulation says. Reading or
patching those 8 bytes costs nothing next to deserializing a 230 KB image.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["cdr_stamp_ns", "with_cdr_stamp"]

_NS: Final = 1_000_000_000
_ENDIAN: Final = {0x0000: ">", 0x0001: "<", 0x0006: ">", 0x0007: "<"}  # CDR, CDR_LE, CDR2 BE/LE (plain)


def _order(data: bytes) -> str:
    if len(data) < 12:
        raise ValueError(f"{len(data)} bytes: too short for a CDR message with a header stamp")
    kind = struct.unpack_from(">H", data, 0)[0]
    order = _ENDIAN.get(kind)
    if order is None:
        raise ValueError(f"unsupported CDR encapsulation 0x{kind:04x}")
    return order


def cdr_stamp_ns(data: bytes) -> int:
    """``header.stamp`` of a serialized message that starts with a Header, in nanoseconds."""
    sec, nanosec = struct.unpack_from(f"{_order(data)}iI", data, 4)
    return sec * _NS + nanosec


def with_cdr_stamp(data: bytes, stamp_ns: int) -> bytes:
    """A copy of the serialized message with ``header.stamp`` set to ``stamp_ns``."""
    order = _order(data)
    sec, nanosec = divmod(int(stamp_ns), _NS)
    out = bytearray(data)
    struct.pack_into(f"{order}iI", out, 4, sec, nanosec)
    return bytes(out)
