"""Static checks of the files that only run on a ROS 2 Humble installation (launch files, the ros_gz bridge YAML, the
RViz configuration, nav2_params.yaml): none of launch, Gazebo, Nav2 or RViz runs here, so each file is tied to the
code by reading it. Launch files are parsed with ``ast`` and never imported (launch/launch_ros are not installed).
"""
import ast
import math
import os
import re
import runpy
import sys
from unittest import mock

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_DIR = os.path.join(ROOT, "launch")
LAUNCH_FILES = sorted(f for f in os.listdir(LAUNCH_DIR) if f.endswith(".launch.py"))
REQUIRED_ARGS = {"namespace", "use_sim_time", "params_file", "garage"}
OWN_PACKAGE = "mobicharge_robot"

# Executables of other packages that the launch files start, by package (ROS 2 Humble binary packages:
# ros-humble-robot-state-publisher, -ros-gz-sim, -ros-gz-bridge, -rviz2 and the Nav2 servers' packages).
EXTERNAL_EXECUTABLES = {
    "robot_state_publisher": {"robot_state_publisher"},
    "ros_gz_sim": {"create"},
    "ros_gz_bridge": {"parameter_bridge"},
    "rviz2": {"rviz2"},
    "nav2_map_server": {"map_server"},
    "nav2_amcl": {"amcl"},
    "nav2_controller": {"controller_server"},
    "nav2_smoother": {"smoother_server"},
    "nav2_planner": {"planner_server"},
    "nav2_behaviors": {"behavior_server"},
    "nav2_bt_navigator": {"bt_navigator"},
    "nav2_collision_monitor": {"collision_monitor"},
    "nav2_lifecycle_manager": {"lifecycle_manager"},
}
# Topics published by something other than the package's nodes, with their types: robot_state_publisher
# (robot_description, latched) and tf2_ros broadcasters (tf).
EXTERNAL_PUBLISHERS = {
    "robot_description": ("std_msgs/msg/String", "latched"),
    "tf": ("tf2_msgs/msg/TFMessage", "reliable"),
}


# Names the launch files import, as ROS 2 Humble's launch and launch_ros provide them (docs.ros.org/en/humble/p/launch:
# the launch.actions module list of Humble, which has AppendEnvironmentVariable but not yet ForLoop; launch_ros Humble:
# actions.Node, parameter_descriptions.ParameterValue). A name from a later release would fail only on the robot.
HUMBLE_LAUNCH_API = {
    "launch": {"LaunchDescription"},
    "launch.actions": {"AppendEnvironmentVariable", "DeclareLaunchArgument", "EmitEvent", "ExecuteProcess",
                       "GroupAction", "IncludeLaunchDescription", "LogInfo", "OpaqueFunction",
                       "PushLaunchConfigurations", "PopLaunchConfigurations", "RegisterEventHandler",
                       "SetEnvironmentVariable", "SetLaunchConfiguration", "Shutdown", "TimerAction",
                       "UnsetEnvironmentVariable"},
    "launch.conditions": {"IfCondition", "UnlessCondition", "LaunchConfigurationEquals"},
    "launch.substitutions": {"Command", "EnvironmentVariable", "FindExecutable", "LaunchConfiguration",
                             "PathJoinSubstitution", "PythonExpression", "TextSubstitution"},
    "launch.launch_description_sources": {"PythonLaunchDescriptionSource"},
    "launch_ros.actions": {"Node", "PushRosNamespace", "SetParameter", "SetRemap"},
    "launch_ros.parameter_descriptions": {"ParameterValue"},
    "launch_ros.substitutions": {"FindPackageShare"},
    "ament_index_python.packages": {"get_package_share_directory"},
}


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        return fh.read()


def _yaml(path):
    return yaml.safe_load(_read(path))


# ----------------------------------------------------------------------------- the code's topics


def _qos_kind(node):
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return {"LATCHED_QOS": "latched", "SENSOR_QOS": "sensor", "RELIABLE_QOS": "reliable", "METER_QOS": "reliable"}.get(
        name, "reliable" if isinstance(node, ast.Constant) else name)


def code_topics():
    """{topic: {"pub": {(type, qos)}, "sub": {(type, qos)}, "pub_by": {module}}} from every create_publisher /
    create_subscription call under mobicharge_robot/, types resolved through the modules' imports."""
    table = {}
    pkg = os.path.join(ROOT, "mobicharge_robot")
    for dirpath, _, files in os.walk(pkg):
        for fname in files:
            if not fname.endswith(".py"):
                continue
            path = os.path.join(dirpath, fname)
            tree = ast.parse(open(path, encoding="utf-8").read())
            imports = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith((".msg", ".srv")):
                    for alias in node.names:
                        imports[alias.asname or alias.name] = f"{node.module.replace('.', '/')}/{alias.name}"
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("create_publisher", "create_subscription") and len(node.args) >= 2):
                    continue
                type_node, topic_node = node.args[0], node.args[1]
                if not (isinstance(type_node, ast.Name) and isinstance(topic_node, ast.Constant)):
                    continue  # a topic built at run time (f-string): not a fixed interface
                kind = "pub" if node.func.attr == "create_publisher" else "sub"
                qos = _qos_kind(node.args[-1])
                entry = table.setdefault(topic_node.value, {"pub": set(), "sub": set(), "pub_by": set()})
                entry[kind].add((imports.get(type_node.id, type_node.id), qos))
                if kind == "pub":
                    entry["pub_by"].add(os.path.relpath(path, ROOT))
    return table


TOPICS = code_topics()
SIMULATOR = "mobicharge_robot/sim/loopback_node.py"


def test_code_topic_table_sees_the_hardware_boundary():
    # The checks below lean on this table; make sure it really found the nodes' interfaces.
    assert ("geometry_msgs/msg/Twist", "reliable") in TOPICS["cmd_vel"]["pub"]
    assert ("sensor_msgs/msg/LaserScan", "sensor") in TOPICS["scan"]["sub"]
    assert SIMULATOR in TOPICS["odom"]["pub_by"]
    assert ("visualization_msgs/msg/MarkerArray", "latched") in TOPICS["garage/markers"]["pub"]


# ----------------------------------------------------------------------------- launch files


def _launch_tree(name):
    return ast.parse(_read(os.path.join("launch", name)), filename=name)


def _tuple_constants(tree):
    """Module- and function-level NAME = ("a", "b") assignments."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
                out[node.targets[0].id] = tuple(value)
    return out


def _strings(node, tree):
    """The possible string values of an expression: a constant, or a loop variable over a constant tuple."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        consts = _tuple_constants(tree)
        for comp in ast.walk(tree):
            gens = comp.generators if isinstance(comp, (ast.ListComp, ast.GeneratorExp)) else []
            for gen in gens:
                if isinstance(gen.target, ast.Name) and gen.target.id == node.id:
                    if isinstance(gen.iter, ast.Name) and gen.iter.id in consts:
                        return list(consts[gen.iter.id])
                    if isinstance(gen.iter, (ast.Tuple, ast.List)):
                        return [ast.literal_eval(e) for e in gen.iter.elts]
    return None


def _node_calls(tree):
    """(package, executables, names, parameter-expression) of every launch_ros Node(...) and nav2_node(...) call."""
    out = []
    helper = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "nav2_node"
              for n in ast.walk(f)}  # the Node(...) inside the nav2_node helper: its calls are checked instead
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or id(node) in helper:
            continue
        if node.func.id == "Node":
            kw = {k.arg: k.value for k in node.keywords}
            out.append((_strings(kw["package"], tree)[0], _strings(kw["executable"], tree),
                        _strings(kw["name"], tree) if "name" in kw else None, kw.get("parameters"), node))
        elif node.func.id == "nav2_node":
            out.append((node.args[0].value, [node.args[1].value], [node.args[2].value], "nav2", node))
    return out


def _console_scripts():
    text = _read("setup.py")
    return dict(re.findall(r'"([\w-]+) = (mobicharge_robot[\w.]+):main"', text))


def _installed_files():
    """Source paths that setup.py's data_files install under share/mobicharge_robot (setup() captured, not run)."""
    captured = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with mock.patch("setuptools.setup", lambda **kw: captured.update(kw)):
            runpy.run_path(os.path.join(ROOT, "setup.py"))
    finally:
        os.chdir(cwd)
    out = {}
    for target, files in captured["data_files"]:
        for f in files:
            out[os.path.normpath(f)] = target
    return out


def _package_xml_deps():
    return set(re.findall(r"<exec_depend>([\w-]+)</exec_depend>", _read("package.xml")))


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_parses_and_describes_its_arguments(name):
    tree = _launch_tree(name)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    declared = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            kw = {k.arg: k.value for k in node.keywords}
            arg = node.args[0].value
            assert "description" in kw, f"{name}: argument '{arg}' has no description"
            text = kw["description"]
            text = text.value if isinstance(text, ast.Constant) else ast.literal_eval(text)
            assert len(text) > 15, f"{name}: argument '{arg}' is described as '{text}'"
            declared[arg] = kw
    assert REQUIRED_ARGS <= set(declared), f"{name} lacks {REQUIRED_ARGS - set(declared)}"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in HUMBLE_LAUNCH_API:
            unknown = {a.name for a in node.names} - HUMBLE_LAUNCH_API[node.module]
            assert not unknown, f"{name}: {node.module} has no {unknown} in Humble"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("launch", "launch_ros"):
            pytest.fail(f"{name}: imports {node.module}, which this check does not know for Humble")
    # Launch files are never imported here; they must not import anything from the package but launch_support.
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(OWN_PACKAGE):
            assert node.module == "mobicharge_robot.tools.launch_support", f"{name} imports {node.module}"


def test_every_executable_is_a_console_script_or_a_declared_dependency():
    scripts = _console_scripts()
    deps = _package_xml_deps()
    seen = set()
    for name in LAUNCH_FILES:
        for package, executables, _, _, _ in _node_calls(_launch_tree(name)):
            assert executables, f"{name}: an executable name is not a constant"
            for exe in executables:
                seen.add((package, exe))
                if package == OWN_PACKAGE:
                    assert exe in scripts, f"{name}: '{exe}' is not a console script in setup.py"
                else:
                    assert exe in EXTERNAL_EXECUTABLES.get(package, ()), f"{name}: unknown {package}/{exe}"
                    assert package in deps, f"{name}: {package} is not an exec_depend in package.xml"
    # The whole stack appears somewhere.
    for exe in ("navigation", "port_detection", "arm", "energy", "mission_manager", "garage_markers",
                "loopback_sim"):
        assert (OWN_PACKAGE, exe) in seen


def _share_paths(tree):
    """Every os.path.join(share, "a", "b", ...) with constant parts: the package files a launch file uses."""
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "share"):
            parts = [a.value for a in node.args[1:] if isinstance(a, ast.Constant)]
            if len(parts) == len(node.args) - 1:
                out.append(os.path.join(*parts))
    return out


def test_every_referenced_file_exists_and_is_installed():
    installed = _installed_files()
    referenced = set()
    for name in LAUNCH_FILES:
        for rel in _share_paths(_launch_tree(name)):
            referenced.add(rel)
            path = os.path.join(ROOT, rel)
            assert os.path.exists(path), f"{name} references {rel}, which does not exist"
            files = [os.path.normpath(os.path.join(rel, f)) for f in os.listdir(path)] if os.path.isdir(path) \
                else [os.path.normpath(rel)]
            for f in files:
                if os.path.isfile(os.path.join(ROOT, f)):
                    assert installed.get(f) == os.path.join("share", OWN_PACKAGE, os.path.dirname(f)), \
                        f"{name} references {f}, which setup.py does not install in place"
    for must in ("urdf/mobicharge.urdf.xacro", "config/ros_gz_bridge.yaml", "config/nav2_params.yaml",
                 "rviz/mobicharge.rviz", "worlds/default.sdf", "worlds/models", "maps/default.yaml",
                 "launch/description.launch.py", "launch/navigation.launch.py"):
        assert must in referenced, f"no launch file uses {must}"
    # What the files themselves point at is installed too: xacro includes, the map image, the world's models.
    for inc in re.findall(r'xacro:include filename="([^"]+)"', _read("urdf/mobicharge.urdf.xacro")):
        assert os.path.normpath(os.path.join("urdf", inc)) in installed
    assert os.path.normpath(os.path.join("maps", _yaml("maps/default.yaml")["image"])) in installed
    for uri in set(re.findall(r"<uri>model://([\w-]+)</uri>", _read("worlds/default.sdf"))):
        assert os.path.normpath(f"worlds/models/{uri}/model.sdf") in installed
        assert os.path.normpath(f"worlds/models/{uri}/model.config") in installed


def test_every_node_has_a_parameter_section():
    own = _yaml("config/mobicharge.yaml")
    nav2 = _yaml("config/nav2_params.yaml")
    for name in LAUNCH_FILES:
        tree = _launch_tree(name)
        for package, executables, names, params, call in _node_calls(tree):
            if params == "nav2":
                for n in names:
                    assert n in nav2 and "ros__parameters" in nav2[n], f"{name}: Nav2 node '{n}' has no section"
                continue
            if package != OWN_PACKAGE:
                continue
            assert params is not None, f"{name}: {executables} gets no parameters"
            uses = {n.id for n in ast.walk(params) if isinstance(n, ast.Name)}
            assert "params_file" in uses, f"{name}: {executables} does not get params_file"
            assert names, f"{name}: {executables} has no constant node name"
            for n in names:
                assert n in own and "ros__parameters" in own[n], f"{name}: node '{n}' has no section in mobicharge.yaml"
    # The lifecycle managers manage exactly the Nav2 nodes the launch file starts, each with a section.
    consts = _tuple_constants(_launch_tree("navigation.launch.py"))
    assert tuple(nav2["lifecycle_manager_localization"]["ros__parameters"]["node_names"]) == consts["LOCALIZATION"]
    assert tuple(nav2["lifecycle_manager_navigation"]["ros__parameters"]["node_names"]) == consts["NAVIGATION"]


def test_only_clock_is_global():
    """Everything but /clock (and /tf, /tf_static, which every launch file remaps into the namespace) is relative."""
    bridge = _yaml("config/ros_gz_bridge.yaml")
    assert [e["ros_topic_name"] for e in bridge if e["ros_topic_name"].startswith("/")] == ["/clock"]
    rviz = _read("rviz/mobicharge.rviz")
    assert not re.findall(r"Value: /\w", rviz)
    for name in LAUNCH_FILES:
        text = _read(os.path.join("launch", name))
        for node in ast.walk(_launch_tree(name)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("Node", "nav2_node"):
                kw = {k.arg for k in node.keywords}
                assert "namespace" in kw or getattr(node.func, "id", "") == "nav2_node", f"{name}: node without namespace"
        if "Node(" in text:
            assert '("/tf", "tf")' in text, f"{name} does not put tf in the namespace"


# ----------------------------------------------------------------------------- bridge


def _sim_urdf():
    import xacro

    return xacro.process_file(os.path.join(ROOT, "urdf", "mobicharge.urdf.xacro"),
                              mappings={"sim": "true"}).toxml()


def _gazebo_topics():
    """Gazebo topic -> Gazebo message type, as the sim description's systems and sensors publish or take them."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(_sim_urdf())
    out = {}
    for plugin in root.iter("plugin"):
        kind = plugin.get("name").rsplit("::", 1)[-1]
        if kind == "DiffDrive":
            out[plugin.findtext("topic")] = "ignition.msgs.Twist"
            out[plugin.findtext("odom_topic")] = "ignition.msgs.Odometry"
            out[plugin.findtext("tf_topic")] = "ignition.msgs.Pose_V"
        elif kind == "JointStatePublisher":
            out[plugin.findtext("topic")] = "ignition.msgs.Model"
        elif kind == "JointTrajectoryController":
            out[plugin.findtext("topic")] = "ignition.msgs.JointTrajectory"
    for sensor in root.iter("sensor"):
        topic = sensor.findtext("topic")
        kind = sensor.get("type")
        if kind == "gpu_lidar":
            out[topic] = "ignition.msgs.LaserScan"
        elif kind == "camera":
            out[topic] = "ignition.msgs.Image"
            out[topic.rsplit("/", 1)[0] + "/camera_info"] = "ignition.msgs.CameraInfo"  # beside the image topic
        elif kind == "force_torque":
            out[topic] = "ignition.msgs.Wrench"
    out["/clock"] = "ignition.msgs.Clock"  # the world's clock
    return out


def test_bridge_entries_match_the_simulated_robot_and_the_nodes():
    bridge = _yaml("config/ros_gz_bridge.yaml")
    gz = _gazebo_topics()
    seen = set()
    for e in bridge:
        assert set(e) == {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}, e
        ros, rtype = e["ros_topic_name"], e["ros_type_name"]
        assert gz.get(e["gz_topic_name"]) == e["gz_type_name"], \
            f"{e['gz_topic_name']}: Gazebo gives {gz.get(e['gz_topic_name'])}, the bridge expects {e['gz_type_name']}"
        key = ros.lstrip("/") if ros != "/clock" else ros
        if e["direction"] == "GZ_TO_ROS":
            # Gazebo stands in for the loopback simulator: it must provide what that simulator publishes, with the
            # same type, and some node (or tf2) must use it.
            if key in EXTERNAL_PUBLISHERS:
                assert EXTERNAL_PUBLISHERS[key][0] == rtype
                continue
            pubs = {t for t, _ in TOPICS[key]["pub"]}
            assert SIMULATOR in TOPICS[key]["pub_by"] and pubs == {rtype}, f"{ros}: code publishes {pubs}"
            subs = {t for t, _ in TOPICS[key]["sub"]}
            assert key == "/clock" or subs == {rtype}, f"{ros}: nodes subscribe {subs}, bridge gives {rtype}"
        elif e["direction"] == "ROS_TO_GZ":
            pubs = {t for t, _ in TOPICS[key]["pub"]}
            subs = {t for t, _ in TOPICS[key]["sub"]}
            assert pubs == {rtype} and subs == {rtype}, f"{ros}: nodes publish {pubs}, simulator takes {subs}"
        else:
            pytest.fail(f"{ros}: direction {e['direction']} (the boundary is one way)")
        seen.add(key)
    # The whole robot-side hardware boundary that Gazebo can simulate is bridged.
    assert {"/clock", "cmd_vel", "odom", "scan", "camera/image_raw", "camera/camera_info", "joint_states",
            "arm_controller/joint_trajectory", "wrist_wrench"} <= seen


# ----------------------------------------------------------------------------- RViz

RVIZ_TYPES = {
    "rviz_default_plugins/Map": "nav_msgs/msg/OccupancyGrid",
    "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
    "rviz_default_plugins/LaserScan": "sensor_msgs/msg/LaserScan",
    "rviz_default_plugins/Path": "nav_msgs/msg/Path",
    "rviz_default_plugins/Pose": "geometry_msgs/msg/PoseStamped",
    "rviz_default_plugins/Image": "sensor_msgs/msg/Image",
    "rviz_default_plugins/RobotModel": "std_msgs/msg/String",
    "rviz_default_plugins/SetGoal": "geometry_msgs/msg/PoseStamped",
    "rviz_default_plugins/SetInitialPose": "geometry_msgs/msg/PoseWithCovarianceStamped",
}
RVIZ_TOOLS = {"rviz_default_plugins/SetGoal", "rviz_default_plugins/SetInitialPose"}


def _rviz_topics():
    cfg = _yaml("rviz/mobicharge.rviz")
    vm = cfg["Visualization Manager"]
    out = []
    for item in vm["Displays"] + vm["Tools"]:
        topic = item.get("Topic") or item.get("Description Topic")
        if topic:
            out.append((item["Class"], topic))
    return out


def test_rviz_topics_are_published_or_subscribed_with_the_same_type_and_compatible_qos():
    topics = _rviz_topics()
    classes = {c for c, _ in topics}
    assert {"rviz_default_plugins/Map", "rviz_default_plugins/RobotModel", "rviz_default_plugins/LaserScan",
            "rviz_default_plugins/Path", "rviz_default_plugins/Image", "rviz_default_plugins/Pose",
            "rviz_default_plugins/MarkerArray"} <= classes
    names = set()
    for cls, topic in topics:
        name, rtype = topic["Value"], RVIZ_TYPES[cls]
        names.add(name)
        if cls in RVIZ_TOOLS:  # RViz publishes; a node must take it
            subs = {t for t, _ in TOPICS[name]["sub"]}
            assert subs == {rtype}, f"RViz tool {cls} publishes {name} as {rtype}; nodes subscribe {subs}"
            continue
        if name in EXTERNAL_PUBLISHERS:
            pubs = {EXTERNAL_PUBLISHERS[name]}
        else:
            pubs = TOPICS.get(name, {}).get("pub", set())
        assert pubs and {t for t, _ in pubs} == {rtype}, f"RViz shows {name} as {rtype}; published: {pubs}"
        # A transient-local subscription needs latched publishers, a reliable one needs reliable publishers.
        if topic["Durability Policy"] == "Transient Local":
            assert all(q == "latched" for _, q in pubs), f"{name}: RViz wants transient local, publishers {pubs}"
        if topic["Reliability Policy"] == "Reliable":
            assert all(q != "sensor" for _, q in pubs), f"{name}: RViz wants reliable, publishers {pubs}"
    assert {"map", "scan", "plan", "camera/image_raw", "detect_port/debug_image", "inlet_pose", "garage/markers",
            "robot_description"} <= names


# ----------------------------------------------------------------------------- Nav2 parameters


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check_plugin_block(ref, params, name, where):
    block = params.get(name)
    assert isinstance(block, dict) and "plugin" in block, f"{where}: '{name}' has no plugin"
    plugin = block["plugin"]
    assert plugin in ref["plugins"], f"{where}: plugin '{plugin}' is not a Nav2 Humble plugin"
    allowed = set(ref["plugins"][plugin]) | {"plugin"}
    sources = set()
    if "observation_sources" in allowed:
        sources = set(block.get("observation_sources", "").split())
        for s in sources:
            bad = set(_flatten(block[s])) - set(ref["observation_source_keys"])
            assert not bad, f"{where}.{name}.{s}: unknown keys {bad}"
    bad = {k for k in _flatten(block) if k not in allowed and k.split(".")[0] not in sources}
    assert not bad, f"{where}.{name} ({plugin}): keys unknown to Nav2 Humble: {sorted(bad)}"


def test_nav2_params_use_humble_names():
    ref = _yaml("test/data/nav2_humble_names.yaml")
    assert "Sources" in _read("test/data/nav2_humble_names.yaml")  # the list cites where it comes from
    params = _yaml("config/nav2_params.yaml")
    common = set(ref["common_keys"])
    for node, body in params.items():
        if node in ref["costmaps"]:
            p = body[node]["ros__parameters"]
            layers = p["plugins"]
            bad = set(p) - set(ref["costmap_keys"]) - common - set(layers)
            assert not bad, f"{node}: keys unknown to Nav2 Humble costmaps: {sorted(bad)}"
            for layer in layers:
                _check_plugin_block(ref, p, layer, node)
            continue
        assert node in ref["nodes"], f"'{node}' is not a Nav2 Humble node this list knows"
        spec = ref["nodes"][node]
        p = body["ros__parameters"]
        plugin_names = set()
        for key in spec.get("plugin_lists", []):
            value = p.get(key, [])
            names = [value] if isinstance(value, str) else list(value)
            for n in names:
                _check_plugin_block(ref, p, n, node)
            plugin_names |= set(names)
        section_names = {}
        for key, allowed in spec.get("sections", {}).items():
            for n in p.get(key, []):
                bad = set(_flatten(p[n])) - set(allowed)
                assert not bad, f"{node}.{n}: keys unknown to Nav2 Humble: {sorted(bad)}"
                section_names[n] = key
                for vkey, values in spec.get("values", {}).items():
                    sect, field = vkey.split(".") if "." in vkey else (None, vkey)
                    if sect == key and field in p[n]:
                        assert p[n][field] in values, f"{node}.{n}.{field}: '{p[n][field]}' not in {values}"
        bad = set(_flatten(p)) - set(spec["keys"]) - common
        bad = {k for k in bad if k.split(".")[0] not in plugin_names | set(section_names)}
        assert not bad, f"{node}: keys unknown to Nav2 Humble: {sorted(bad)}"
        for vkey, values in spec.get("values", {}).items():
            if "." not in vkey and vkey in p:
                assert p[vkey] in values, f"{node}.{vkey}: '{p[vkey]}' not in {values}"
    libs = params["bt_navigator"]["ros__parameters"]["plugin_lib_names"]
    assert set(libs) <= set(ref["bt_plugin_libs"]), set(libs) - set(ref["bt_plugin_libs"])


def test_nav2_names_check_catches_a_later_release_key(tmp_path, monkeypatch):
    """The check above is not vacuous: min_points (Iron and later) instead of Humble's max_points fails it."""
    text = _read("config/nav2_params.yaml").replace("max_points: 3", "min_points: 4", 1)
    real = _yaml

    def patched(path):
        return yaml.safe_load(text) if path == "config/nav2_params.yaml" else real(path)

    monkeypatch.setattr(sys.modules[__name__], "_yaml", patched)
    with pytest.raises(AssertionError, match="min_points"):
        test_nav2_params_use_humble_names()


def _footprint_polygon(text):
    pts = yaml.safe_load(text)
    return [(float(x), float(y)) for x, y in pts]


def test_nav2_geometry_and_speeds_match_the_robot():
    from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path

    length, width = UrdfModel.from_xacro(default_urdf_path()).footprint()
    params = _yaml("config/nav2_params.yaml")
    expected = {(sx * length / 2, sy * width / 2) for sx in (1, -1) for sy in (1, -1)}
    for costmap in ("local_costmap", "global_costmap"):
        fp = _footprint_polygon(params[costmap][costmap]["ros__parameters"]["footprint"])
        assert {(round(x, 6), round(y, 6)) for x, y in fp} == {(round(x, 6), round(y, 6)) for x, y in expected}
    # The collision monitor's zones contain the footprint; the stop zone reaches the design's 0.30 m ahead.
    cm = params["collision_monitor"]["ros__parameters"]
    for name in cm["polygons"]:
        pts = cm[name]["points"]
        xs, ys = pts[0::2], pts[1::2]
        assert min(xs) <= -length / 2 and max(xs) >= length / 2 and min(ys) <= -width / 2 and max(ys) >= width / 2
    stop = cm["PolygonStop"]["points"]
    assert max(stop[0::2]) == pytest.approx(length / 2 + 0.30)
    assert cm["cmd_vel_out_topic"] == "cmd_vel" and cm["cmd_vel_in_topic"] == "cmd_vel_nav"
    # Lane speed equals the builtin backend's limit.
    own = _yaml("config/mobicharge.yaml")["navigation"]["ros__parameters"]
    rpp = params["controller_server"]["ros__parameters"]["FollowPath"]
    assert rpp["desired_linear_vel"] == own["max_linear_mps"]
    # The global inflation keeps the builtin planner's clearance (half the width plus its margin).
    infl = params["global_costmap"]["global_costmap"]["ros__parameters"]["inflation_layer"]["inflation_radius"]
    assert infl >= width / 2 + own["inflation_margin_m"] - 1e-9


def _load_and_remove(path, src):
    """Read a launch_support copy and delete it (the launch files leave theirs for the launched processes)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if path != src:
        os.remove(path)
    return text


def test_nav2_topics_in_the_costmaps_follow_the_namespace():
    from mobicharge_robot.tools.launch_support import nav2_params

    src = os.path.join(ROOT, "config", "nav2_params.yaml")
    one = yaml.safe_load(_load_and_remove(nav2_params(src, ""), src))
    two = yaml.safe_load(_load_and_remove(nav2_params(src, "robot2"), src))
    g1 = one["global_costmap"]["global_costmap"]["ros__parameters"]
    g2 = two["/robot2/global_costmap"]["global_costmap"]["ros__parameters"]
    assert set(two) == {f"/robot2/{k}" for k in one}  # every node section moves into the namespace
    assert g1["static_layer"]["map_topic"] == "/map" and g2["static_layer"]["map_topic"] == "/robot2/map"
    assert g2["obstacle_layer"]["scan"]["topic"] == "/robot2/scan"
    assert "<robot_namespace>" not in _load_and_remove(nav2_params(src, "a/b"), src)


def test_bridge_copy_for_another_model_renames_only_gazebo_topics():
    from mobicharge_robot.tools.launch_support import bridge_config, model_name

    src = os.path.join(ROOT, "config", "ros_gz_bridge.yaml")
    assert bridge_config(src, "mobicharge") == src
    assert model_name("") == "mobicharge" and model_name("/robot2/") == "robot2"
    copy = yaml.safe_load(_load_and_remove(bridge_config(src, "robot2"), src))
    orig = _yaml("config/ros_gz_bridge.yaml")
    assert [e["ros_topic_name"] for e in copy] == [e["ros_topic_name"] for e in orig]
    assert all(e["gz_topic_name"].startswith("/model/robot2/") for e in copy if e["gz_topic_name"] != "/clock")
    second = yaml.safe_load(_load_and_remove(bridge_config(src, "robot3", with_clock=False), src))
    assert [e["ros_topic_name"] for e in second] == [e["ros_topic_name"] for e in orig if e["ros_topic_name"] != "/clock"]


def test_depot_pose_for_spawning():
    from mobicharge_robot.tools.launch_support import depot_pose

    x, y, yaw = depot_pose(os.path.join(ROOT, "config", "garages", "default.yaml"))
    assert (x, y) == pytest.approx((4.5, 25.85)) and math.isfinite(yaw)
