"""The whole stack on the loopback simulator (ROS 2 Humble with launch_ros installed).

    ros2 launch mobicharge_robot loopback.launch.py [garage:=/path/to/garage.yaml] [namespace:=robot1]
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import Command, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from mobicharge_robot.tools.launch_support import namespaced_params

NODES = ("localization", "navigation", "port_detection", "arm", "energy", "mission_manager", "garage_markers")
GARAGE_NODES = ("localization", "navigation", "mission_manager", "garage_markers")
# Each robot's transforms go on its own namespace's tf (nothing global but /clock).
TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]


def _stack(context):
    """The simulator and the nodes, with the parameter file's sections moved into the namespace."""
    namespace = LaunchConfiguration("namespace").perform(context)
    params_file = namespaced_params(LaunchConfiguration("params_file").perform(context), namespace)
    garage = LaunchConfiguration("garage")
    use_sim_time = LaunchConfiguration("use_sim_time")
    sim = Node(package="mobicharge_robot", executable="loopback_sim", name="loopback_sim", namespace=namespace,
               parameters=[params_file, {"garage_file": garage, "use_sim_time": False}], output="screen",
               remappings=TF_REMAPS)
    nodes = [Node(package="mobicharge_robot", executable=name, name=name, namespace=namespace,
                  parameters=[params_file, {"use_sim_time": use_sim_time}]
                  + ([{"garage_file": garage}] if name in GARAGE_NODES else []),
                  output="screen", remappings=TF_REMAPS)
             for name in NODES]
    return [sim] + nodes


def generate_launch_description():
    share = get_package_share_directory("mobicharge_robot")
    namespace = LaunchConfiguration("namespace")
    use_sim_time = LaunchConfiguration("use_sim_time")
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="Namespace for every node and topic."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "mobicharge.yaml"),
                              description="Parameter file of the package's nodes and the simulator."),
        DeclareLaunchArgument("garage", default_value=os.path.join(share, "config", "garages", "default.yaml"),
                              description="Garage description YAML."),
        DeclareLaunchArgument("use_sim_time", default_value="true", choices=["true", "false"],
                              description="Use the simulator's /clock (the loopback simulator publishes it)."),
    ]
    # The arm's and sensors' frames for RViz: robot_state_publisher turns joint_states into /tf.
    description = Node(package="robot_state_publisher", executable="robot_state_publisher",
                       name="robot_state_publisher", namespace=namespace, output="screen", remappings=TF_REMAPS,
                       parameters=[{"use_sim_time": use_sim_time,
                                    "robot_description": ParameterValue(
                                        Command(["xacro ", os.path.join(share, "urdf", "mobicharge.urdf.xacro")]),
                                        value_type=str)}])
    return LaunchDescription(args + [OpaqueFunction(function=_stack), description])
