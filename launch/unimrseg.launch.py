"""Launch unimrseg_node on a robot: `ros2 launch unimrseg_ros unimrseg.launch.py [arg:=value ...]`.

Arguments:
  namespace       node namespace (default: none)
  params_file     parameters YAML (default: the installed config/unimrseg.yaml)
  backend         auto | tensorrt | compiled | onnxruntime | torch (overrides the file)
  rgb_topic, depth_topic, thermal_topic
                  camera topics remapped onto rgb/image, depth/image, thermal/image
  use_sim_time    true when replaying a bag with --clock
  autostart       configure and activate at start (false: leave it to a lifecycle manager)
  log_level       info, debug, warn, ...

Example: ros2 launch unimrseg_ros unimrseg.launch.py rgb_topic:=/camera/color/image_raw
  depth_topic:=/camera/aligned_depth_to_color/image_raw thermal_topic:=/boson/image_raw

Only `launch` and `launch_ros` (from a ROS 2 installation) are imported, and only inside
generate_launch_description, so this file can be inspected without them.
"""

from __future__ import annotations

from typing import Any

PACKAGE = "unimrseg_ros"


def generate_launch_description() -> Any:
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue
    from launch_ros.substitutions import FindPackageShare

    from unimrseg_core.topics import INPUTS, NODE_NAME  # the one place topic and node names live

    args = [
        DeclareLaunchArgument("namespace", default_value="", description="Node namespace."),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "unimrseg.yaml"]),
            description="Parameters YAML file.",
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="auto",
            description="auto, tensorrt, compiled, onnxruntime or torch (overrides the params file).",
        ),
        *(
            DeclareLaunchArgument(
                f"{modality}_topic", default_value=topic, description=f"{modality} camera image topic."
            )
            for modality, topic in INPUTS.items()
        ),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="Use /clock (bag replay)."),
        DeclareLaunchArgument(
            "autostart", default_value="true", description="Configure and activate the node at start."
        ),
        DeclareLaunchArgument("log_level", default_value="info", description="Logging level."),
    ]
    node = Node(
        package=PACKAGE,
        executable=NODE_NAME,
        name=NODE_NAME,
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "backend": LaunchConfiguration("backend"),
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
                "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool),
            },
        ],
        remappings=[(topic, LaunchConfiguration(f"{modality}_topic")) for modality, topic in INPUTS.items()],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    return LaunchDescription([*args, node])
