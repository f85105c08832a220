"""Nav2 (Humble) for the robot: map_server with the garage's map, AMCL from the depot, planner, controller, smoother,
behaviours, bt_navigator and the collision monitor, with config/nav2_params.yaml; plus the navigation node on the
`nav2` backend, which turns the mission's goals into NavigateToPose actions.

    ros2 launch mobicharge_robot navigation.launch.py                          # real robot, default garage
    ros2 launch mobicharge_robot navigation.launch.py use_sim_time:=true map:=/path/to/maps/NAME.yaml

The nodes are started here rather than through nav2_bringup so that their remappings fit this robot: the controller
and behaviours publish cmd_vel_nav, which the collision monitor passes on to cmd_vel, and bt_navigator's own
goal_pose subscription is moved aside so that a goal reaches Nav2 once, through the navigation node.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch_ros.actions import Node
from launch.substitutions import LaunchConfiguration

from mobicharge_robot.tools.launch_support import depot_pose, namespaced_params, nav2_params

TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]
LOCALIZATION = ("map_server", "amcl")
NAVIGATION = ("controller_server", "smoother_server", "planner_server", "behavior_server", "bt_navigator",
              "collision_monitor")


def _nav2(context, share):
    namespace = LaunchConfiguration("namespace").perform(context)
    garage = LaunchConfiguration("garage").perform(context)
    use_sim_time = LaunchConfiguration("use_sim_time")
    autostart = LaunchConfiguration("autostart")
    nav2_file = nav2_params(LaunchConfiguration("nav2_params_file").perform(context), namespace)
    x, y, yaw = depot_pose(garage)
    common = {"use_sim_time": use_sim_time}

    def nav2_node(package, executable, name, extra=None, remaps=()):
        return Node(package=package, executable=executable, name=name, namespace=namespace, output="screen",
                    remappings=TF_REMAPS + list(remaps), parameters=[nav2_file, common] + ([extra] if extra else []))

    actions = [
        nav2_node("nav2_map_server", "map_server", "map_server", {"yaml_filename": LaunchConfiguration("map")}),
        nav2_node("nav2_amcl", "amcl", "amcl",
                  {"initial_pose.x": x, "initial_pose.y": y, "initial_pose.z": 0.0, "initial_pose.yaw": yaw}),
        nav2_node("nav2_controller", "controller_server", "controller_server", remaps=[("cmd_vel", "cmd_vel_nav")]),
        nav2_node("nav2_smoother", "smoother_server", "smoother_server"),
        nav2_node("nav2_planner", "planner_server", "planner_server"),
        nav2_node("nav2_behaviors", "behavior_server", "behavior_server", remaps=[("cmd_vel", "cmd_vel_nav")]),
        nav2_node("nav2_bt_navigator", "bt_navigator", "bt_navigator", remaps=[("goal_pose", "nav2_goal_pose")]),
        nav2_node("nav2_collision_monitor", "collision_monitor", "collision_monitor"),
        nav2_node("nav2_lifecycle_manager", "lifecycle_manager", "lifecycle_manager_localization",
                  {"autostart": autostart, "node_names": list(LOCALIZATION)}),
        nav2_node("nav2_lifecycle_manager", "lifecycle_manager", "lifecycle_manager_navigation",
                  {"autostart": autostart, "node_names": list(NAVIGATION)}),
    ]
    params_file = namespaced_params(LaunchConfiguration("params_file").perform(context), namespace)
    navigation = Node(package="mobicharge_robot", executable="navigation", name="navigation", namespace=namespace,
                      output="screen", remappings=TF_REMAPS,
                      parameters=[params_file, {"use_sim_time": use_sim_time, "navigation_backend": "nav2",
                                                "garage_file": garage}],
                      condition=IfCondition(LaunchConfiguration("start_navigation_node")))
    return actions + [navigation]


def generate_launch_description():
    share = get_package_share_directory("mobicharge_robot")
    args = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of this robot's nodes and topics (empty for a single robot)."),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="Use /clock (true in Gazebo)."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "mobicharge.yaml"),
                              description="Parameter file of the package's nodes (the navigation node here)."),
        DeclareLaunchArgument("nav2_params_file", default_value=os.path.join(share, "config", "nav2_params.yaml"),
                              description="Nav2 parameter file; <robot_namespace> in it becomes /<namespace>."),
        DeclareLaunchArgument("garage", default_value=os.path.join(share, "config", "garages", "default.yaml"),
                              description="Garage description YAML (AMCL starts at its depot; the navigation node "
                                          "checks goals against it)."),
        DeclareLaunchArgument("map", default_value=os.path.join(share, "maps", "default.yaml"),
                              description="map_server YAML of the same garage (mobicharge-generate-map)."),
        DeclareLaunchArgument("autostart", default_value="true", choices=["true", "false"],
                              description="Configure and activate the Nav2 nodes at start-up."),
        DeclareLaunchArgument("start_navigation_node", default_value="true", choices=["true", "false"],
                              description="Also start the navigation node on the nav2 backend (false when the "
                                          "caller starts it, as gazebo.launch.py does)."),
    ]
    return LaunchDescription(args + [OpaqueFunction(function=_nav2, args=[share])])
