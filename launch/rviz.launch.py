"""RViz with rviz/mobicharge.rviz: map, robot model, scan, planned path, wrist camera with the detection overlay,
inlet pose, garage markers (spots, cars, requests, mission state, battery) and the localized pose.

    ros2 launch mobicharge_robot rviz.launch.py [namespace:=robot1] [use_sim_time:=true]

RViz's topics in the configuration are relative, so they resolve in the namespace; its tools publish the relative
goal_pose and initialpose, which the navigation node takes.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static"), ("/goal_pose", "goal_pose"),
             ("/initialpose", "initialpose"), ("/clicked_point", "clicked_point")]


def generate_launch_description():
    share = get_package_share_directory("mobicharge_robot")
    args = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the robot to watch (empty for a single robot)."),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="Use /clock (true with Gazebo or the loopback simulator)."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "mobicharge.yaml"),
                              description="Parameter file of the package's nodes (unused by RViz; accepted so that "
                                          "every launch file takes the same arguments)."),
        DeclareLaunchArgument("garage", default_value=os.path.join(share, "config", "garages", "default.yaml"),
                              description="Garage description YAML (unused by RViz; its markers come from the "
                                          "garage_markers node)."),
        DeclareLaunchArgument("rviz_config", default_value=os.path.join(share, "rviz", "mobicharge.rviz"),
                              description="RViz configuration file."),
    ]
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2", namespace=LaunchConfiguration("namespace"),
                output="screen", remappings=TF_REMAPS, arguments=["-d", LaunchConfiguration("rviz_config")],
                parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}])
    return LaunchDescription(args + [rviz])
