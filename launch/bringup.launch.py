"""The real robot: the description and the package's nodes, on wall-clock time.

    ros2 launch mobicharge_robot bringup.launch.py [navigation_backend:=nav2] [garage:=/path/to/garage.yaml]

Assumes the robot's drivers publish the hardware boundary in the same namespace (README, "The hardware boundary"):
the base takes cmd_vel and publishes odom (and odom -> base_link on tf), the lidar publishes scan, the wrist camera
camera/image_raw and camera/camera_info, the arm joint_states and takes arm_controller/joint_trajectory, the wrist
sensor publishes wrist_wrench, and the charger electronics bms/state, dc_output/*, pilot/* and connector/latched.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from mobicharge_robot.tools.launch_support import namespaced_params

# The package's nodes. Localization runs only with the builtin backend: with Nav2, AMCL (navigation.launch.py)
# provides map->odom, and a second localizer would fight it.
NODES = ("localization", "navigation", "port_detection", "arm", "energy", "mission_manager", "garage_markers")
GARAGE_NODES = ("localization", "navigation", "mission_manager", "garage_markers")
TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]


def _nodes(context):
    """The package's nodes, with the parameter file's sections moved into the namespace."""
    namespace = LaunchConfiguration("namespace").perform(context)
    params_file = namespaced_params(LaunchConfiguration("params_file").perform(context), namespace)
    garage = LaunchConfiguration("garage")
    use_sim_time = LaunchConfiguration("use_sim_time")
    backend = LaunchConfiguration("navigation_backend")
    return [Node(package="mobicharge_robot", executable=name, name=name, namespace=namespace, output="screen",
                 remappings=TF_REMAPS,
                 parameters=[params_file, {"use_sim_time": use_sim_time}]
                 + ([{"garage_file": garage}] if name in GARAGE_NODES else [])
                 + ([{"navigation_backend": backend}] if name == "navigation" else []))
            for name in NODES if name != "localization" or backend.perform(context) == "builtin"]


def generate_launch_description():
    share = get_package_share_directory("mobicharge_robot")
    namespace = LaunchConfiguration("namespace")
    params_file = LaunchConfiguration("params_file")
    garage = LaunchConfiguration("garage")
    use_sim_time = LaunchConfiguration("use_sim_time")
    backend = LaunchConfiguration("navigation_backend")
    args = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of this robot's nodes and topics (the drivers' namespace)."),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="Keep false on the robot (wall-clock time)."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "mobicharge.yaml"),
                              description="Parameter file of the package's nodes."),
        DeclareLaunchArgument("garage", default_value=os.path.join(share, "config", "garages", "default.yaml"),
                              description="Garage description YAML of the level the robot serves."),
        DeclareLaunchArgument("navigation_backend", default_value="builtin", choices=["builtin", "nav2"],
                              description="builtin: the navigation node plans and drives; nav2: Nav2 does "
                                          "(navigation.launch.py is included)."),
        DeclareLaunchArgument("map", default_value=os.path.join(share, "maps", "default.yaml"),
                              description="map_server YAML of the garage (nav2 backend only)."),
    ]
    description = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "description.launch.py")),
        launch_arguments={"namespace": namespace, "use_sim_time": use_sim_time, "sim": "false"}.items())
    nodes = OpaqueFunction(function=_nodes)
    navigation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "navigation.launch.py")),
        launch_arguments={"namespace": namespace, "use_sim_time": use_sim_time, "garage": garage,
                          "params_file": params_file, "map": LaunchConfiguration("map"),
                          "start_navigation_node": "false"}.items(),
        condition=IfCondition(PythonExpression(["'", backend, "' == 'nav2'"])))
    return LaunchDescription(args + [description, nodes, navigation])
