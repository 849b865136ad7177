"""ament_python package: colcon builds it, and `make setup` installs it into .venv."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "unimrseg_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["unimrseg_core", "unimrseg_core.*", "unimrseg_ros", "unimrseg_ros.*"]),
    package_data={"unimrseg_core": ["py.typed", "weights/*.pt", "weights/*.json", "weights/*.onnx"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", sorted(glob("config/*.yaml") + glob("config/*.xml"))),
    ],
    install_requires=["setuptools"],
    # the floor the core supports (the GPU image's torch); the lock (constraints.txt) pins 2.13 CPU.
    # An extra, not install_requires: colcon's setup.py develop must not try to fetch torch.
    extras_require={"model": ["torch>=2.11"]},
    zip_safe=False,
    maintainer="UniMRSeg-ROS maintainers",
    maintainer_email="maintainers@unimrseg-ros.org",
    description="Robust RGB/depth/thermal segmentation for ROS 2 under missing or degraded sensors.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "unimrseg = unimrseg_core.cli:main",
            "unimrseg_node = unimrseg_ros.segmentation_node:main",
            "unimrseg_fault_injector = unimrseg_ros.fault_injector_node:main",
        ],
        # `unimrseg bag play|record|eval --live` (ROS): the core's `bag` parser loads this plugin
        # (unimrseg_core/cli_plugins.py), so the core never imports unimrseg_ros.
        "unimrseg.commands": ["bag = unimrseg_ros.cli:add_bag_commands"],
    },
)
