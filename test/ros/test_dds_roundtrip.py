"""The ROS side of the venv works across processes: DDS delivers exact content, domains isolate.

Each helper process (test/ros/helpers/) runs with the ``ros_env`` environment: its own
ROS_DOMAIN_ID, discovery limited to this host, the test Fast DDS profile.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

HELPERS = Path(__file__).resolve().parent / "helpers"
WIDTH, HEIGHT = 320, 240
TEXT = "UniMRSeg ✓ Wärmebild · 深度 · ⟨rgb, depth, thermal⟩"
FRAME_ID = "unimrseg_test_optical_frame"
STAMP = (1_700_000_000, 123_456_789)


class Helpers:
    """Starts helper processes with output to log files; kills whatever is left on exit."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(
        self, name: str, script: str, args: Sequence[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(HELPERS / script), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((name, proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"----- {name} (rc={proc.returncode}) -----\n{log.read_text(errors='replace')}"
            for name, proc, log in self.procs
        )

    def kill_all(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@contextmanager
def helpers(tmp_path: Path) -> Iterator[Helpers]:
    h = Helpers(tmp_path)
    try:
        yield h
    finally:
        h.kill_all()


def publisher_args(pixels: Path, deadline: float, *, no_ack: bool = False) -> list[str]:
    args = [
        "--pixels",
        str(pixels),
        "--width",
        str(WIDTH),
        "--height",
        str(HEIGHT),
        "--text",
        TEXT,
        "--frame-id",
        FRAME_ID,
        "--stamp",
        *map(str, STAMP),
        "--deadline",
        str(deadline),
    ]
    return [*args, "--no-ack"] if no_ack else args


def write_pixels(path: Path) -> bytes:
    # Random bytes: any dropped, reordered or truncated fragment changes the content.
    pixels = random.Random(20251123).randbytes(WIDTH * HEIGHT * 3)
    path.write_bytes(pixels)
    return pixels


@pytest.mark.timeout(90)
def test_image_and_string_arrive_exactly_in_another_process(ros_env: dict[str, str], tmp_path: Path) -> None:
    pixels = write_pixels(tmp_path / "pixels.rgb8")
    out = tmp_path / "received.json"
    with helpers(tmp_path) as h:
        sub = h.start(
            "subscriber", "dds_subscriber.py", ["roundtrip", "--out", str(out), "--deadline", "30"], ros_env
        )
        pub = h.start("publisher", "dds_publisher.py", publisher_args(tmp_path / "pixels.rgb8", 35), ros_env)
        try:
            sub.wait(timeout=45)
            pub.wait(timeout=15)
        except subprocess.TimeoutExpired:
            h.kill_all()
            pytest.fail(f"helper processes overran their own deadlines\n{h.logs()}")
    logs = h.logs()

    assert sub.returncode == 0, f"subscriber got nothing complete\n{logs}"
    assert pub.returncode == 0, f"publisher saw no acknowledgement\n{logs}"
    assert "XMLPARSER" not in logs, f"Fast DDS could not parse the test profile\n{logs}"
    received = json.loads(out.read_text(encoding="utf-8"))
    assert received == {
        "image": {
            "frame_id": FRAME_ID,
            "stamp": list(STAMP),
            "height": HEIGHT,
            "width": WIDTH,
            "encoding": "rgb8",
            "is_bigendian": 0,
            "step": WIDTH * 3,
            "data_len": WIDTH * HEIGHT * 3,
        },
        "text": TEXT,
    }
    assert Path(f"{out}.pixels").read_bytes() == pixels


@pytest.mark.timeout(60)
def test_processes_on_different_domains_do_not_see_each_other(make_ros_env, tmp_path: Path) -> None:
    env_a, env_b = make_ros_env(), make_ros_env()
    assert env_a["ROS_DOMAIN_ID"] != env_b["ROS_DOMAIN_ID"]
    write_pixels(tmp_path / "pixels.rgb8")
    window = 3.0
    with helpers(tmp_path) as h:
        pub = h.start(
            "publisher_a",
            "dds_publisher.py",
            publisher_args(tmp_path / "pixels.rgb8", 30, no_ack=True),
            env_a,
        )
        # Same domain: the positive control, proving the publisher was audible during the window.
        same = h.start(
            "subscriber_a",
            "dds_subscriber.py",
            ["listen", "--out", str(tmp_path / "a.json"), "--window", str(window)],
            env_a,
        )
        other = h.start(
            "subscriber_b",
            "dds_subscriber.py",
            ["listen", "--out", str(tmp_path / "b.json"), "--window", str(window)],
            env_b,
        )
        deadline = time.monotonic() + window + 20
        try:
            same.wait(timeout=max(0.1, deadline - time.monotonic()))
            other.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            h.kill_all()
            pytest.fail(f"subscribers overran their window\n{h.logs()}")
        assert pub.poll() is None, f"publisher stopped before the subscribers finished\n{h.logs()}"
    logs = h.logs()

    assert same.returncode == 0, logs
    assert other.returncode == 0, logs
    assert "XMLPARSER" not in logs, logs
    heard_same = json.loads((tmp_path / "a.json").read_text())
    heard_other = json.loads((tmp_path / "b.json").read_text())
    assert heard_same["images"] > 0, f"same-domain subscriber heard nothing: the check proves nothing\n{logs}"
    assert heard_same["texts"] > 0, logs
    assert heard_other == {"images": 0, "texts": 0}, (
        f"domain {env_b['ROS_DOMAIN_ID']} heard domain {env_a['ROS_DOMAIN_ID']}\n{logs}"
    )
