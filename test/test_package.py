"""Package-level checks: launch files name real console scripts and installed files, the demo rejects bad input
cleanly, and core never imports ROS."""
import ast
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _console_scripts():
    text = open(os.path.join(ROOT, "setup.py")).read()
    return dict(re.findall(r'"([\w-]+) = (mobicharge_robot[\w.]+):main"', text))


def test_every_console_script_module_has_main():
    scripts = _console_scripts()
    assert {"loopback_sim", "navigation", "port_detection", "arm", "energy", "mission_manager",
            "mobicharge-demo"} <= set(scripts)
    for module in scripts.values():
        path = os.path.join(ROOT, *module.split(".")) + ".py"
        tree = ast.parse(open(path).read())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), module


def test_launch_files_parse_and_use_known_executables():
    scripts = _console_scripts()
    launch_dir = os.path.join(ROOT, "launch")
    files = [f for f in os.listdir(launch_dir) if f.endswith(".launch.py")]
    assert files
    for name in files:
        tree = ast.parse(open(os.path.join(launch_dir, name)).read())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        for exe in literals & {"navigation", "port_detection", "arm", "energy", "mission_manager", "loopback_sim"}:
            assert exe in scripts
        args = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") ==
                "DeclareLaunchArgument"]
        assert args and all(any(k.arg == "description" for k in a.keywords) for a in args), name


def test_params_file_has_a_section_per_node():
    with open(os.path.join(ROOT, "config", "mobicharge.yaml")) as f:
        params = yaml.safe_load(f)
    assert set(params) == {"loopback_sim", "localization", "navigation", "port_detection", "arm", "energy",
                           "mission_manager", "garage_markers"}
    assert all("ros__parameters" in v for v in params.values())


def test_core_never_imports_ros():
    core = os.path.join(ROOT, "mobicharge_robot", "core")
    for name in os.listdir(core):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(core, name)).read())
            for node in ast.walk(tree):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                for mod in mods:
                    assert not (mod.startswith("rclpy") or mod.endswith("_msgs") or mod.endswith("_srvs")), \
                        f"{name} imports {mod}"


def test_demo_rejects_a_bad_garage_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("garage: {name: x}\n")
    proc = subprocess.run([sys.executable, "-m", "mobicharge_robot.tools.demo", "--garage", str(bad),
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


NODE_FILES = {
    "loopback_sim": "mobicharge_robot/sim/loopback_node.py",
    "localization": "mobicharge_robot/nodes/localization_node.py",
    "navigation": "mobicharge_robot/nodes/navigation_node.py",
    "port_detection": "mobicharge_robot/nodes/port_detection_node.py",
    "arm": "mobicharge_robot/nodes/arm_node.py",
    "energy": "mobicharge_robot/nodes/energy_node.py",
    "mission_manager": "mobicharge_robot/nodes/mission_manager_node.py",
    "garage_markers": "mobicharge_robot/nodes/garage_markers_node.py",
}


def _declared_defaults(path):
    """Literal defaults of every ``declare(self, "name", default, ...)`` call in a node file."""
    out = {}
    for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "declare" and len(node.args) >= 3:
            try:
                out[node.args[1].value] = ast.literal_eval(node.args[2])
            except ValueError:
                out[node.args[1].value] = None  # computed (a package path): not in the YAML
    return out


def test_params_file_values_equal_the_code_defaults():
    with open(os.path.join(ROOT, "config", "mobicharge.yaml")) as f:
        params = yaml.safe_load(f)
    for node, path in NODE_FILES.items():
        declared = _declared_defaults(path)
        for name, value in params[node]["ros__parameters"].items():
            assert name in declared, f"{node}: '{name}' in config/mobicharge.yaml is not a parameter of the node"
            assert declared[name] == value, f"{node}.{name}: YAML {value!r} != code {declared[name]!r}"


def test_readme_names_every_parameter():
    readme = open(os.path.join(ROOT, "README.md")).read()
    for node, path in NODE_FILES.items():
        for name in _declared_defaults(path):
            assert f"`{name}`" in readme, f"README does not document {node}.{name}"
