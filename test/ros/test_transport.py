"""The Fast DDS profile that gives one process a larger shared-memory segment, on top of the user's own."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from unimrseg_ros import transport
from unimrseg_ros.transport import profile_with_large_shm, use_large_shm_segment

TEST_PROFILE = Path(__file__).resolve().parents[1] / "fastdds_fast_discovery.xml"
NS = "{http://www.eprosima.com}"


def names(element: ET.Element) -> list[str]:
    return [child.tag.rpartition("}")[2] for child in element]


def test_the_users_profile_keeps_its_settings_and_gains_the_transports() -> None:
    tree = profile_with_large_shm(ET.parse(TEST_PROFILE).getroot(), 8 << 20)
    assert tree is not None
    profiles = tree.find(f"{NS}profiles")
    assert profiles is not None
    descriptors = profiles.findall(f"{NS}transport_descriptors/{NS}transport_descriptor")
    assert [(d.findtext(f"{NS}type"), d.findtext(f"{NS}segment_size")) for d in descriptors] == [
        ("SHM", str(8 << 20)),
        ("UDPv4", None),
    ]
    rtps = profiles.find(f"{NS}participant/{NS}rtps")
    assert rtps is not None
    assert names(rtps)[:3] == ["userTransports", "useBuiltinTransports", "builtin"]  # discovery kept
    assert rtps.findtext(f"{NS}useBuiltinTransports") == "false"
    assert rtps.findtext(f"{NS}builtin/{NS}discovery_config/{NS}leaseAnnouncement/{NS}nanosec") == "250000000"


def test_a_profile_that_chooses_transports_is_left_alone() -> None:
    chosen = ET.fromstring(
        '<dds xmlns="http://www.eprosima.com"><profiles>'
        '<participant profile_name="p" is_default_profile="true">'
        "<rtps><useBuiltinTransports>false</useBuiltinTransports></rtps>"
        "</participant></profiles></dds>"
    )
    assert profile_with_large_shm(chosen, 1 << 20) is None


def test_use_writes_a_profile_without_namespace_prefixes_and_points_fast_dds_at_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(TEST_PROFILE))
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)
    monkeypatch.setenv(transport.SEGMENT_ENV, "4")
    path = use_large_shm_segment()
    assert path is not None
    try:
        assert transport.os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(path)
        text = path.read_text()
        assert "ns0:" not in text  # Fast DDS's XML parser knows no namespace prefixes
        assert f"<segment_size>{4 << 20}</segment_size>" in text
    finally:
        path.unlink()
    monkeypatch.setenv(transport.SEGMENT_ENV, "0")
    assert use_large_shm_segment() is None
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp")
    assert use_large_shm_segment(8) is None
    monkeypatch.setenv(transport.SEGMENT_ENV, "lots")
    with pytest.raises(ValueError, match="UNIMRSEG_SHM_SEGMENT_MB"):
        use_large_shm_segment()
