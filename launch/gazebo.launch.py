"""The robot in Gazebo Fortress: the generated world, the robot spawned at the garage's depot, the ros_gz bridge and
the package's nodes.

    ros2 launch mobicharge_robot gazebo.launch.py                      # default garage, world and robot
    ros2 launch mobicharge_robot gazebo.launch.py gui:=false           # headless server
    ros2 launch mobicharge_robot gazebo.launch.py namespace:=robot2 start_gazebo:=false   # a second robot

The world must match the garage: generate it with `mobicharge-generate-world GARAGE.yaml -o worlds/NAME.sdf` and pass
both. Gazebo simulates the base, lidar, camera, arm and wrist force sensor; the charging electrics (BMS, DC stage,
control pilot, latch) are not simulated in Gazebo, so the energy node reports them missing (see README).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (AppendEnvironmentVariable, DeclareLaunchArgument, IncludeLaunchDescription,
                            OpaqueFunction)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from mobicharge_robot.tools.launch_support import bridge_config, depot_pose, model_name, namespaced_params

# The package's nodes. Localization runs only with the builtin backend: with Nav2, AMCL (navigation.launch.py)
# provides map->odom, and a second localizer would fight it.
NODES = ("localization", "navigation", "port_detection", "arm", "energy", "mission_manager", "garage_markers")
GARAGE_NODES = ("localization", "navigation", "mission_manager", "garage_markers")
TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]


def _robot(context, share):
    """Spawn, bridge and nodes: they need the garage's depot and the model name as plain strings."""
    namespace = LaunchConfiguration("namespace").perform(context)
    garage = LaunchConfiguration("garage").perform(context)
    gz_model = model_name(namespace)
    start_gazebo = LaunchConfiguration("start_gazebo").perform(context) == "true"  # only the first robot bridges /clock
    x, y, yaw = depot_pose(garage)
    params_file = namespaced_params(LaunchConfiguration("params_file").perform(context), namespace)
    use_sim_time = LaunchConfiguration("use_sim_time")
    backend = LaunchConfiguration("navigation_backend").perform(context)
    description = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "description.launch.py")),
        launch_arguments={"namespace": namespace, "use_sim_time": use_sim_time, "sim": "true",
                          "gz_model": gz_model}.items())
    spawn = Node(package="ros_gz_sim", executable="create", name="spawn_robot", namespace=namespace, output="screen",
                 arguments=["-name", gz_model, "-topic", "robot_description", "-x", f"{x:.3f}", "-y", f"{y:.3f}",
                            "-z", "0.02", "-Y", f"{yaw:.4f}"])
    bridge = Node(package="ros_gz_bridge", executable="parameter_bridge", name="ros_gz_bridge", namespace=namespace,
                  output="screen",
                  parameters=[{"config_file": bridge_config(os.path.join(share, "config", "ros_gz_bridge.yaml"),
                                                            gz_model, with_clock=start_gazebo),
                               "use_sim_time": use_sim_time}])
    nodes = [Node(package="mobicharge_robot", executable=name, name=name, namespace=namespace, output="screen",
                  remappings=TF_REMAPS,
                  parameters=[params_file, {"use_sim_time": use_sim_time}]
                  + ([{"garage_file": garage}] if name in GARAGE_NODES else [])
                  + ([{"navigation_backend": LaunchConfiguration("navigation_backend")}] if name == "navigation"
                     else []))
             for name in NODES if name != "localization" or backend == "builtin"]
    return [description, spawn, bridge] + nodes


def generate_launch_description():
    share = get_package_share_directory("mobicharge_robot")
    gui = LaunchConfiguration("gui")
    world = LaunchConfiguration("world")
    args = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of this robot; also its Gazebo model name (empty: 'mobicharge')."),
        DeclareLaunchArgument("use_sim_time", default_value="true", choices=["true", "false"],
                              description="Use Gazebo's /clock (keep true in simulation)."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "mobicharge.yaml"),
                              description="Parameter file of the package's nodes."),
        DeclareLaunchArgument("garage", default_value=os.path.join(share, "config", "garages", "default.yaml"),
                              description="Garage description YAML (the nodes' map and the spawn pose at its depot); "
                                          "must be the garage the world was generated from."),
        DeclareLaunchArgument("world", default_value=os.path.join(share, "worlds", "default.sdf"),
                              description="Gazebo world SDF generated from the garage (mobicharge-generate-world)."),
        DeclareLaunchArgument("start_gazebo", default_value="true", choices=["true", "false"],
                              description="Start Gazebo with the world; false to add a robot to a running world."),
        DeclareLaunchArgument("gui", default_value="true", choices=["true", "false"],
                              description="Show the Gazebo GUI (false: server only)."),
        DeclareLaunchArgument("navigation_backend", default_value="builtin", choices=["builtin", "nav2"],
                              description="builtin: the navigation node drives; nav2: start navigation.launch.py "
                                          "as well, and goals go to Nav2."),
    ]
    # The generated inlet models (model://mobicharge_inlet_*) are found through Gazebo's resource path.
    resources = AppendEnvironmentVariable("IGN_GAZEBO_RESOURCE_PATH", os.path.join(share, "worlds", "models"))
    gz_args = PythonExpression(["'-r ' + ('' if '", gui, "' == 'true' else '-s ') + '", world, "'"])
    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(get_package_share_directory("ros_gz_sim"), "launch",
                                                   "gz_sim.launch.py")),
        launch_arguments={"gz_args": gz_args}.items(),
        condition=IfCondition(LaunchConfiguration("start_gazebo")))
    navigation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "navigation.launch.py")),
        launch_arguments={"namespace": LaunchConfiguration("namespace"), "use_sim_time": "true",
                          "garage": LaunchConfiguration("garage"), "params_file": LaunchConfiguration("params_file"),
                          "start_navigation_node": "false"}.items(),
        condition=IfCondition(PythonExpression(["'", LaunchConfiguration("navigation_backend"), "' == 'nav2'"])))
    return LaunchDescription(args + [resources, gazebo, OpaqueFunction(function=_robot, args=[share]), navigation])
