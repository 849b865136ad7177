"""A larger Fast DDS shared-memory segment for a process that publishes several image streams.

Why (measured here, README "ROS 2 node"): Fast DDS gives each process one 512 KB
shared-memory segment for everything it sends. A process that publishes one frame of
three 240x320 cameras at once (536 KB, 690 KB with ground truth) must reuse buffers
that a subscriber has not read yet, and those messages are lost (a third of the rgb
images in a bag replay, best-effort subscriber). Camera drivers avoid it by being one
process each; the bag player and the fault injector publish every camera from one
process, so they ask for a bigger segment instead.

``FASTDDS_BUILTIN_TRANSPORTS=DEFAULT?sockets_size=...`` would be the short way, but
Fast DDS ignores it under ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (rmw_fastrtps sets
its own locators), so :func:`use_large_shm_segment` writes an XML profile instead: the
user's own profile (``FASTDDS_DEFAULT_PROFILES_FILE``) with an SHM transport of the
requested size and the usual UDPv4 one added to its default participant, and points
Fast DDS at it. A profile that already chooses transports is left alone: the user's
choice wins. Call it before ``rclpy.init``; it only affects this process.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Final

__all__ = ["DEFAULT_SEGMENT_MB", "SEGMENT_ENV", "segment_mb_from_env", "use_large_shm_segment"]

log = logging.getLogger(__name__)

SEGMENT_ENV: Final = "UNIMRSEG_SHM_SEGMENT_MB"
"""Environment variable with the segment size in MB (0: leave Fast DDS's transports as they are)."""
DEFAULT_SEGMENT_MB: Final = 8.0
"""Room for several frames of three VGA cameras; a tmpfs file in /dev/shm while the process runs."""

_PROFILE_ENVS: Final = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
_DEFAULT_XML: Final = "DEFAULT_FASTDDS_PROFILES.xml"  # what Fast DDS loads from the working directory
_EPROSIMA_NS: Final = "http://www.eprosima.com"
_SHM_ID: Final = "unimrseg_large_shm"
_UDP_ID: Final = "unimrseg_udpv4"


def segment_mb_from_env(default: float = DEFAULT_SEGMENT_MB) -> float:
    """The segment size asked for in ``UNIMRSEG_SHM_SEGMENT_MB``, else ``default``."""
    text = os.environ.get(SEGMENT_ENV, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{SEGMENT_ENV} must be a number of MB (0 = off), got {text!r}") from None
    if not value >= 0:
        raise ValueError(f"{SEGMENT_ENV} must be >= 0, got {text!r}")
    return value


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(parent: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in parent if _local(c.tag) == name), None)


def _base_profile() -> Path | None:
    for env in _PROFILE_ENVS:
        value = os.environ.get(env)
        if value:
            return Path(value)
    if os.environ.get("SKIP_DEFAULT_XML") != "1" and Path(_DEFAULT_XML).is_file():
        return Path(_DEFAULT_XML)
    return None


def profile_with_large_shm(base: ET.Element | None, segment_bytes: int) -> ET.Element | None:
    """``base`` (a parsed Fast DDS profile or None) plus the large SHM transport; None: it has some."""
    if base is None:
        base = ET.Element(f"{{{_EPROSIMA_NS}}}dds")
    ns = base.tag[: base.tag.index("}") + 1] if base.tag.startswith("{") else ""
    profiles = base if _local(base.tag) == "profiles" else _child(base, "profiles")
    if profiles is None:
        profiles = ET.SubElement(base, f"{ns}profiles")
    participants = [p for p in profiles if _local(p.tag) == "participant"]
    participant = next((p for p in participants if p.get("is_default_profile") == "true"), None)
    if participant is None:
        participant = ET.SubElement(
            profiles,
            f"{ns}participant",
            {"profile_name": "unimrseg_large_shm", "is_default_profile": "true"},
        )
    rtps = _child(participant, "rtps")
    if rtps is None:
        rtps = ET.SubElement(participant, f"{ns}rtps")
    if _child(rtps, "userTransports") is not None or _child(rtps, "useBuiltinTransports") is not None:
        return None
    descriptors = _child(profiles, "transport_descriptors")
    if descriptors is None:
        descriptors = ET.Element(f"{ns}transport_descriptors")
        profiles.insert(0, descriptors)
    for ident, kind, extra in ((_SHM_ID, "SHM", str(segment_bytes)), (_UDP_ID, "UDPv4", None)):
        descriptor = ET.SubElement(descriptors, f"{ns}transport_descriptor")
        ET.SubElement(descriptor, f"{ns}transport_id").text = ident
        ET.SubElement(descriptor, f"{ns}type").text = kind
        if extra is not None:
            ET.SubElement(descriptor, f"{ns}segment_size").text = extra
    users = ET.Element(f"{ns}userTransports")
    for ident in (_SHM_ID, _UDP_ID):
        ET.SubElement(users, f"{ns}transport_id").text = ident
    builtin = ET.Element(f"{ns}useBuiltinTransports")
    builtin.text = "false"
    rtps.insert(0, builtin)
    rtps.insert(0, users)
    return base


def use_large_shm_segment(segment_mb: float | None = None) -> Path | None:
    """Point Fast DDS (this process) at a profile whose SHM segment holds ``segment_mb`` MB.

    ``segment_mb`` None: ``UNIMRSEG_SHM_SEGMENT_MB``, else :data:`DEFAULT_SEGMENT_MB`; 0 turns
    it off. Returns the profile written (removed at exit), or None when nothing was changed:
    turned off, another RMW than Fast DDS, or a user profile that already sets transports
    or cannot be read (logged).
    """
    mb = segment_mb_from_env() if segment_mb is None else segment_mb
    if mb <= 0:
        return None
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if not rmw.startswith("rmw_fastrtps"):
        return None
    source = _base_profile()
    base = None
    if source is not None:
        try:
            base = ET.parse(source).getroot()
        except (OSError, ET.ParseError) as exc:
            log.warning(
                "Fast DDS profile %s unreadable (%s): shared-memory segment left as it is", source, exc
            )
            return None
    tree = profile_with_large_shm(base, round(mb * 1024 * 1024))
    if tree is None:
        log.info("Fast DDS profile %s sets its own transports: shared-memory segment left as it is", source)
        return None
    if tree.tag.startswith("{"):
        ET.register_namespace("", tree.tag[1 : tree.tag.index("}")])  # tinyxml2 knows no prefixes
    fd, name = tempfile.mkstemp(prefix="unimrseg_fastdds_", suffix=".xml")
    with os.fdopen(fd, "wb") as out:
        ET.ElementTree(tree).write(out, encoding="UTF-8", xml_declaration=True)
    path = Path(name)
    atexit.register(lambda: _remove(path))
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    os.environ.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    return path


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
