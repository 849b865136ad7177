"""`colcon build` of the package in a fresh workspace installs everything `ros2 run` / launch need.

The package is copied (without .venv, build outputs, .git, test) into
``<tmp>/ws/src/unimrseg_ros`` and built with the venv's colcon; build, install and log
directories all live under the temporary directory, so the repository is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from glob import glob
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "unimrseg_ros"
PYTHON_PACKAGES = ("unimrseg_core", "unimrseg_ros")
# What colcon needs to build the package; everything else (tests, venv, outputs) stays out.
COPIED = (
    "package.xml",
    "setup.py",
    "setup.cfg",
    "resource",
    "launch",
    "config",
    *PYTHON_PACKAGES,
    "LICENSE",
    "README.md",
)
REQUIRED = ("package.xml", "setup.py", "setup.cfg", "resource", *PYTHON_PACKAGES)
# Files users reach through the package share (`ros2 launch unimrseg_ros unimrseg.launch.py`,
# the launch file's default params_file).
SHARED_FILES = ("launch/unimrseg.launch.py", "config/unimrseg.yaml", "config/sros2_policy.xml")
CONSOLE_SCRIPTS = ("unimrseg", "unimrseg_node", "unimrseg_fault_injector")
SITE_PACKAGES = Path("lib") / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


@dataclass(frozen=True)
class Build:
    src: Path
    install: Path  # <install-base>/unimrseg_ros (colcon's default isolated layout)
    output: str

    @property
    def share(self) -> Path:
        return self.install / "share" / PACKAGE

    @property
    def site_packages(self) -> Path:
        return self.install / SITE_PACKAGES


def copy_package(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in COPIED:
        source = REPO_ROOT / name
        if not source.exists():
            assert name not in REQUIRED, f"{name} is missing from the package source"
            continue
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)


def hermetic_env(tmp: Path) -> dict[str, str]:
    """This environment without any sourced ROS/colcon workspace, and no user colcon defaults."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH", "CMAKE_PREFIX_PATH", "PYTHONPATH"}
    }
    env["COLCON_HOME"] = str(tmp / "colcon_home")
    return env


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    tmp = tmp_path_factory.mktemp("colcon")
    src = tmp / "ws" / "src" / PACKAGE
    src.mkdir(parents=True)
    copy_package(src)
    colcon = Path(sys.prefix) / "bin" / "colcon"
    assert colcon.is_file(), f"{colcon} is missing: `make setup` installs colcon-common-extensions"
    # colcon's --log-base is a global option: it goes before the verb.
    cmd = [
        str(colcon),
        "--log-base",
        str(tmp / "log"),
        "build",
        "--base-paths",
        str(tmp / "ws" / "src"),
        "--build-base",
        str(tmp / "build"),
        "--install-base",
        str(tmp / "install"),
        "--executor",
        "sequential",
        "--event-handlers",
        "console_cohesion+",
        "desktop_notification-",
    ]
    result = subprocess.run(
        cmd,
        cwd=tmp,
        env=hermetic_env(tmp),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = f"$ {' '.join(cmd)}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, f"colcon build failed (rc={result.returncode})\n{output}"
    assert f"Finished <<< {PACKAGE}" in result.stdout, output
    return Build(src=src, install=tmp / "install" / PACKAGE, output=output)


def installed_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []


@pytest.mark.timeout(360)
def test_package_xml_and_ament_index_marker_installed(build: Build) -> None:
    assert (build.share / "package.xml").read_bytes() == (REPO_ROOT / "package.xml").read_bytes(), (
        build.output
    )
    marker = build.install / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    assert marker.is_file(), (
        f"no ament index marker at {marker}: `ros2 run` cannot find the package\n{build.output}"
    )


@pytest.mark.timeout(360)
@pytest.mark.parametrize(("subdir", "pattern"), [("config", "*.*ml"), ("launch", "*.launch.py")])
def test_config_and_launch_files_installed(build: Build, subdir: str, pattern: str) -> None:
    expected = sorted(Path(p).name for p in glob(str(build.src / subdir / pattern)))
    shipped = [Path(rel).name for rel in SHARED_FILES if rel.startswith(f"{subdir}/")]
    assert set(shipped) <= set(expected)  # the real files, so this check is never vacuous
    assert installed_files(build.share / subdir) == expected, build.output
    for name in expected:
        assert (build.share / subdir / name).read_bytes() == (build.src / subdir / name).read_bytes()


@pytest.mark.timeout(360)
def test_every_python_module_installed(build: Build) -> None:
    # A source directory without __init__.py is silently left out by find_packages().
    expected = sorted(
        str(p.relative_to(build.src))
        for package in PYTHON_PACKAGES
        for p in (build.src / package).rglob("*")
        if p.is_file() and (p.suffix == ".py" or p.name == "py.typed")
    )
    installed = sorted(
        str(p.relative_to(build.site_packages))
        for package in PYTHON_PACKAGES
        for p in (build.site_packages / package).rglob("*")
        if p.is_file() and (p.suffix == ".py" or p.name == "py.typed")
    )
    missing = sorted(set(expected) - set(installed))
    assert not missing, f"source files not installed by colcon (missing __init__.py?): {missing}"
    assert installed == expected


@pytest.mark.timeout(360)
@pytest.mark.parametrize("name", CONSOLE_SCRIPTS)
def test_console_scripts_installed_where_ros2_run_looks(build: Build, name: str) -> None:
    script = build.install / "lib" / PACKAGE / name
    assert script.is_file(), (
        f"no {script}; installed under lib/: {sorted(str(p) for p in (build.install / 'lib').rglob('*'))}\n"
        f"{build.output}"
    )
    assert os.access(script, os.X_OK), f"{script} is not executable"
    assert not (build.install / "bin" / name).exists(), "scripts belong in lib/<pkg>/, not bin/"


# Runs an installed script with the venv's editable-install finder removed (it would
# otherwise resolve any unimrseg_core.* submodule missing from the install to the
# repository's copy), then checks every unimrseg module came from the install.
RUN_FROM_INSTALL = """
import runpy, sys
site_packages, script, *args = sys.argv[1:]
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path_importer_cache.clear()
sys.argv = [script, *args]
try:
    runpy.run_path(script, run_name="__main__")
    code = 0
except SystemExit as exc:
    code = exc.code
outside = sorted(
    f"{name} from {getattr(module, '__file__', None)}"
    for name, module in list(sys.modules.items())
    if name.partition(".")[0] in ("unimrseg_core", "unimrseg_ros")
    and not str(getattr(module, "__file__", None) or "").startswith(site_packages)
)
if outside:
    print("imported from outside the install:", outside, file=sys.stderr)
    sys.exit(97)
sys.exit(code)
"""


@pytest.mark.timeout(360)
def test_installed_unimrseg_script_runs_from_the_install(build: Build, tmp_path: Path) -> None:
    # What the workspace's setup.sh would export; run outside the repo so only the install is imported.
    env = hermetic_env(tmp_path)
    env["PYTHONPATH"] = str(build.site_packages)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(build.install), sys.prefix])
    script = build.install / "lib" / PACKAGE / "unimrseg"

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    # As `ros2 run unimrseg_ros unimrseg --help` runs it: through its shebang.
    direct = run([str(script), "--help"])
    assert direct.returncode == 0, (
        f"`unimrseg --help` failed (rc={direct.returncode})\n{direct.stdout}\n{direct.stderr}"
    )
    assert "usage" in direct.stdout.lower(), direct.stdout
    # Same script, proving it needs nothing but the install (not the repo's editable copy).
    isolated = run([sys.executable, "-c", RUN_FROM_INSTALL, str(build.site_packages), str(script), "--help"])
    assert isolated.returncode == 0, (
        f"`unimrseg --help` from the install alone failed (rc={isolated.returncode})\n"
        f"{isolated.stdout}\n{isolated.stderr}"
    )
    assert isolated.stdout == direct.stdout
    # The install registers the ROS bag commands' plugin (entry point unimrseg.commands: bag) too.
    bag = run(
        [sys.executable, "-c", RUN_FROM_INSTALL, str(build.site_packages), str(script), "bag", "--help"]
    )
    assert bag.returncode == 0, f"`unimrseg bag --help` from the install failed\n{bag.stdout}\n{bag.stderr}"
    assert re.findall(r"^    (\S+)", bag.stdout, flags=re.MULTILINE) == ["make", "eval", "play", "record"]
