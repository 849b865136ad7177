"""Each ``unimrseg`` subcommand imports only what it needs: all but ``bag`` run without rosbags or rclpy.

A training machine has neither. Every command here runs the real ``unimrseg`` main in a fresh
interpreter whose ``sitecustomize`` (so child processes get it too) puts a ``sys.meta_path``
finder first that refuses ``rosbags``, ``rclpy`` and their submodules with ModuleNotFoundError
and logs each refused name. The commands must then succeed and must not even try those imports;
``bag`` must end in one line naming rosbags and how to install it, exit status 2; with rosbags
present but rclpy refused, so must the ROS bag commands (``unimrseg_ros.cli``, a plugin of the
``bag`` parser), naming rclpy.
``eval``, ``export`` and ``engine build``, too slow to run here, only parse (``--help``); the
source check below covers their run paths: rosbags stays inside ``bags``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("rosbags", "rclpy")

SITECUSTOMIZE = textwrap.dedent(
    """
    import os, sys

    BLOCKED = tuple(os.environ.get("UNIMRSEG_BLOCKED", ",".join({blocked!r})).split(","))
    LOG = os.environ["UNIMRSEG_BLOCKED_LOG"]

    class BlockOptional:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                with open(LOG, "a") as f:
                    f.write(name + "\\n")
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, BlockOptional)
    """
).format(blocked=BLOCKED)

MAIN = "import sys; from unimrseg_core.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def blocked_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of a child interpreter in which rosbags and rclpy cannot be imported."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["UNIMRSEG_BLOCKED_LOG"] = str(site / "refused.log")
    env["UNIMRSEG_CACHE"] = str(site / "engines")  # never the user's engine cache
    env["OMP_NUM_THREADS"] = "1"
    env.pop("AMENT_PREFIX_PATH", None)
    return env


@pytest.fixture(scope="module")
def rclpy_blocked_env(blocked_env: dict[str, str]) -> dict[str, str]:
    """As :func:`blocked_env`, but only rclpy is refused: rosbags imports."""
    return {**blocked_env, "UNIMRSEG_BLOCKED": "rclpy"}


def _refused(env: dict[str, str]) -> list[str]:
    log = Path(env["UNIMRSEG_BLOCKED_LOG"])
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return names


def _child(env: dict[str, str], code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _unimrseg(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``unimrseg ARGS`` with rosbags and rclpy blocked; fails if it exits non-zero or even tried them."""
    _refused(env)
    result = _child(env, MAIN, *args, timeout=timeout)
    where = f"unimrseg {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, where
    assert not _refused(env), f"tried to import a blocked package: {where}"
    return result


def test_the_block_works(blocked_env: dict[str, str]) -> None:
    """Trust the finder only after seeing it refuse, in a child interpreter and in its children."""
    code = textwrap.dedent(
        """
        import importlib, json, subprocess, sys
        refused = {}
        for name in ("rosbags", "rosbags.rosbag2", "rclpy", "rclpy.node"):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                refused[name] = exc.name
        child = subprocess.call([sys.executable, "-c", "import rclpy"], stderr=subprocess.DEVNULL)
        print(json.dumps({"refused": refused, "grandchild": child}))
        """
    )
    _refused(blocked_env)
    result = _child(blocked_env, code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # a submodule is refused at its top-level package, the first name Python looks for
    assert report["refused"] == {
        "rosbags": "rosbags",
        "rosbags.rosbag2": "rosbags",
        "rclpy": "rclpy",
        "rclpy.node": "rclpy",
    }
    assert report["grandchild"] == 1  # sitecustomize: child processes cannot import them either
    assert _refused(blocked_env) == ["rosbags", "rosbags", "rclpy", "rclpy", "rclpy"]


def test_building_the_parser_imports_nothing_heavy_or_optional() -> None:
    """With everything installed, ``import unimrseg_core.cli`` + ``build_parser()`` stays light.

    Of unimrseg_ros only the ``bag`` plugin (``unimrseg_ros.cli``, an entry point) loads, without rclpy.
    """
    heavy = ("torch", "rosbags", "rclpy", "unimrseg_ros", "onnxruntime", "matplotlib", "cv2")
    code = textwrap.dedent(
        f"""
        import json, sys
        from unimrseg_core.cli import build_parser
        build_parser().format_help()
        print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in {heavy!r})))
        """
    )
    result = _child({**os.environ, "PYTHONPATH": str(REPO_ROOT)}, code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["unimrseg_ros", "unimrseg_ros.cli"]


def test_help_lists_every_subcommand_without_rosbags(blocked_env: dict[str, str]) -> None:
    out = _unimrseg(blocked_env, "--help").stdout
    for command in ("data", "train", "eval", "export", "engine", "infer", "bag"):
        assert f"    {command} " in out or f"    {command}\n" in out, (command, out)
    for args in (("train",), ("eval",), ("export",), ("engine", "build"), ("infer",), ("bag", "make")):
        assert "usage: unimrseg" in _unimrseg(blocked_env, *args, "--help").stdout
    # the ROS bag commands come from the unimrseg_ros plugin, whose parsers need no rclpy either
    bag = _unimrseg(blocked_env, "bag", "--help").stdout
    assert re.findall(r"^    (\S+)", bag, flags=re.MULTILINE) == ["make", "eval", "play", "record"]
    for args in (("bag", "play"), ("bag", "record"), ("bag", "eval")):
        assert "usage: unimrseg bag" in _unimrseg(blocked_env, *args, "--help").stdout


@pytest.mark.timeout(240)
def test_data_train_and_infer_run_without_rosbags_or_rclpy(
    blocked_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    _unimrseg(blocked_env, "data", "generate", "--n", "2", "--size", "64x80", "--out", str(data), "--quiet")
    assert len(list((data / "rgb").glob("*.png"))) == 2

    out = tmp_path / "infer"
    files = [a for m in ("rgb", "depth", "thermal") for a in (f"--{m}", str(data / m / "000000.png"))]
    _unimrseg(blocked_env, "infer", "--backend", "onnxruntime", "--out", str(out), *files)
    summary = json.loads((out / "result.json").read_text())
    assert (summary["backend"], summary["used"], summary["size"]) == (
        "onnxruntime",
        "rgb+depth+thermal",
        [64, 80],
    )

    run = tmp_path / "run"
    config = {  # the smallest real training: 3 stages of 1 step on 2 cached 32x48 scenes
        "seed": 0,
        "out_dir": str(run),
        "device": "cpu",
        "batch_size": 2,
        "log_every": 1,
        "model": {"widths": [8, 8, 8, 8], "depths": [0, 0, 0, 0], "decoder_width": 8, "attention_dim": 4},
        "data": {
            "size": [32, 48],
            "crop": None,
            "scenes": 2,
            "cache_dir": str(tmp_path / "scenes"),
            "workers": 1,
            "loader_workers": 0,
        },
        "stages": {s: {"steps": 1} for s in ("stage1", "stage2", "stage3")},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    _unimrseg(blocked_env, "train", "--config", str(tmp_path / "tiny.yaml"), "--quiet", timeout=180)
    assert (run / "model.pt").is_file()
    assert (run / "model.json").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ("bag", "eval", "somewhere"),
        ("bag", "make", "--out", "somewhere", "--duration", "1"),
        ("bag", "play", "somewhere"),
        ("bag", "record", "/rgb/image", "--out", "somewhere"),
    ],
)
def test_bag_without_rosbags_says_so_in_one_line(
    blocked_env: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        cwd=tmp_path,  # `somewhere` is never created
        env=blocked_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"unimrseg bag {args[1]}: needs the Python package rosbags"), lines[0]
    assert "pip install rosbags" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "somewhere").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("bag", "eval", "somewhere", "--live"),
        ("bag", "play", "somewhere"),
        ("bag", "record", "/rgb/image", "--out", "somewhere"),
    ],
)
def test_ros_bag_commands_without_rclpy_say_so_in_one_line(
    rclpy_blocked_env: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        cwd=tmp_path,
        env=rclpy_blocked_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    command = "eval --live" if "--live" in args else args[1]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"unimrseg bag {command}: needs ROS 2's rclpy"), lines[0]
    assert not (tmp_path / "somewhere").exists()


def _imports(path: Path) -> set[str]:
    """Modules named by the ``import`` / ``from ... import`` statements of a file, functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_rosbags_stays_inside_the_bags_package() -> None:
    """Only four bag modules import rosbags, and outside ``bags`` only the CLI imports ``bags.cli``
    and training, inside the function that opens a bag source, ``bags.labelled``."""
    core = REPO_ROOT / "unimrseg_core"
    files = {p.relative_to(core).as_posix(): _imports(p) for p in sorted(core.rglob("*.py"))}
    uses_rosbags = {f for f, names in files.items() if any(n.partition(".")[0] == "rosbags" for n in names)}
    assert uses_rosbags == {"bags/messages.py", "bags/raw.py", "bags/read.py", "bags/write.py"}
    uses_bags = {
        (f, n)
        for f, names in files.items()
        if not f.startswith("bags/")
        for n in names
        if n == "unimrseg_core.bags" or n.startswith("unimrseg_core.bags.")
    }
    assert uses_bags == {
        ("cli.py", "unimrseg_core.bags.cli"),
        ("train/source_samples.py", "unimrseg_core.bags.labelled"),
    }
