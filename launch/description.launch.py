"""The robot description: robot_state_publisher with the xacro output (urdf/mobicharge.urdf.xacro).

    ros2 launch mobicharge_robot description.launch.py [sim:=true gz_model:=mobicharge] [namespace:=robot1]

It publishes robot_description and the transforms of the robot's links from joint_states (on the namespace's tf).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import Command, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

# Each robot's transforms go on its own namespace's tf, as Nav2's multi-robot bringup does.
TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]


def generate_launch_description():
    share = get_package_share_directory("mobicharge_robot")
    namespace = LaunchConfiguration("namespace")
    use_sim_time = LaunchConfiguration("use_sim_time")
    sim = LaunchConfiguration("sim")
    gz_model = LaunchConfiguration("gz_model")
    xacro_file = os.path.join(share, "urdf", "mobicharge.urdf.xacro")
    args = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of this robot's nodes and topics (empty for a single robot)."),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="Use /clock (true in Gazebo or the loopback simulator)."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "mobicharge.yaml"),
                              description="Parameter file of the package's nodes (unused here; accepted so that "
                                          "every launch file takes the same arguments)."),
        DeclareLaunchArgument("garage", default_value=os.path.join(share, "config", "garages", "default.yaml"),
                              description="Garage description YAML (unused here; accepted for uniformity)."),
        DeclareLaunchArgument("sim", default_value="false", choices=["true", "false"],
                              description="Add the Gazebo Fortress systems and sensors to the description."),
        DeclareLaunchArgument("gz_model", default_value="mobicharge",
                              description="Gazebo model name; scopes the model's Gazebo topics (sim only)."),
    ]
    robot_description = ParameterValue(
        Command(["xacro ", xacro_file, " sim:=", sim, " gz_model:=", gz_model]), value_type=str)
    rsp = Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
               namespace=namespace, output="screen", remappings=TF_REMAPS,
               parameters=[{"use_sim_time": use_sim_time, "robot_description": robot_description}])
    return LaunchDescription(args + [rsp])
