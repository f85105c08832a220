"""The real validators on the files Gazebo Fortress reads: ``ign sdf -k`` (sdformat12, Fortress's parser, from the
Debian packages ignition-tools and libsdformat-dev) on every committed world and model and on the simulated robot's
URDF, and ``ign sdf -p`` to see that the sensors and systems survive the URDF -> SDF conversion. (xacro then
check_urdf on both description variants is test_urdf.py's job.) The Gazebo settings that mirror the robot's own
models (camera, lidar, arm limits) are checked against those models."""
import glob
import math
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGN_PACKAGES = ("ignition-tools", "libsdformat-dev")
MODELS = os.path.join(ROOT, "worlds", "models")


def _ign() -> str:
    exe = shutil.which("ign")
    if exe is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", *IGN_PACKAGES], check=False, capture_output=True, timeout=900)
        exe = shutil.which("ign")
    if exe is None:
        pytest.fail(f"'ign' is not installed; install the Debian packages {', '.join(IGN_PACKAGES)}")
    return exe


def _ign_sdf(flag: str, path: str, sdf_path: str | None = MODELS) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SDF_PATH", "IGN_GAZEBO_RESOURCE_PATH", "GZ_SIM_RESOURCE_PATH")}
    if sdf_path:
        env["SDF_PATH"] = sdf_path
    return subprocess.run([_ign(), "sdf", flag, path], capture_output=True, text=True, timeout=300, env=env)


def _sim_urdf(tmp_path) -> str:
    import xacro

    xml = xacro.process_file(os.path.join(ROOT, "urdf", "mobicharge.urdf.xacro"), mappings={"sim": "true"}).toxml()
    path = tmp_path / "mobicharge_sim.urdf"
    path.write_text(xml)
    return str(path)


WORLDS = sorted(glob.glob(os.path.join(ROOT, "worlds", "*.sdf")))
MODEL_FILES = sorted(glob.glob(os.path.join(MODELS, "*", "model.sdf")))


def test_there_is_something_to_validate():
    assert os.path.join(ROOT, "worlds", "default.sdf") in WORLDS
    assert {os.path.basename(os.path.dirname(m)) for m in MODEL_FILES} >= {
        "mobicharge_inlet_ccs2", "mobicharge_inlet_type2", "mobicharge_inlet_ccs1"}


@pytest.mark.parametrize("world", WORLDS, ids=os.path.basename)
def test_committed_world_passes_ign_sdf_check(world):
    result = _ign_sdf("-k", world)
    assert result.returncode == 0 and "Valid." in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    root = ET.parse(world).getroot()
    assert float(root.get("version")) >= 1.8  # Fortress reads 1.8 and 1.9 natively


def test_world_check_fails_when_its_models_cannot_be_found():
    """The validator really resolves the includes: without SDF_PATH the inlet models are missing and it fails."""
    result = _ign_sdf("-k", os.path.join(ROOT, "worlds", "default.sdf"), sdf_path=None)
    assert result.returncode != 0


@pytest.mark.parametrize("model", MODEL_FILES, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_model_passes_ign_sdf_check(model):
    result = _ign_sdf("-k", model)
    assert result.returncode == 0 and "Valid." in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_sim_description_passes_ign_sdf_check_and_keeps_its_sensors(tmp_path):
    urdf = _sim_urdf(tmp_path)
    check = _ign_sdf("-k", urdf)
    assert check.returncode == 0 and "Valid." in check.stdout, check.stdout[-2000:] + check.stderr[-2000:]
    printed = _ign_sdf("-p", urdf)
    assert printed.returncode == 0, printed.stderr[-2000:]
    sdf = ET.fromstring(printed.stdout)
    sensors = {s.get("type"): s for s in sdf.iter("sensor")}
    assert set(sensors) == {"gpu_lidar", "camera", "force_torque"}
    # The force/torque sensor sits on its (preserved) joint, the light on the ring-light link.
    ft_joint = [j for j in sdf.iter("joint") if j.find("sensor") is not None]
    assert [j.get("name") for j in ft_joint] == ["ft_sensor_joint"]
    assert [l.get("name") for l in sdf.iter("light")] == ["ring_light"]
    plugins = {p.get("filename") for p in sdf.iter("plugin")}
    assert plugins == {"ignition-gazebo-diff-drive-system", "ignition-gazebo-joint-state-publisher-system",
                       "ignition-gazebo-joint-trajectory-controller-system"}


def test_plain_description_has_no_gazebo_content():
    import xacro

    xml = xacro.process_file(os.path.join(ROOT, "urdf", "mobicharge.urdf.xacro")).toxml()
    root = ET.fromstring(xml)
    assert root.find("gazebo") is None and not list(root.iter("sensor")) and not list(root.iter("plugin"))


def _loopback_default(name):
    import ast

    tree = ast.parse(open(os.path.join(ROOT, "mobicharge_robot", "sim", "loopback_node.py")).read())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "declare" and len(node.args) >= 3
                and isinstance(node.args[1], ast.Constant) and node.args[1].value == name):
            return ast.literal_eval(node.args[2])
    raise KeyError(name)


def _gazebo_xml():
    import xacro

    return ET.fromstring(xacro.process_file(os.path.join(ROOT, "urdf", "mobicharge.urdf.xacro"),
                                            mappings={"sim": "true"}).toxml())


def test_gazebo_settings_mirror_the_robot_models():
    from mobicharge_robot.core.arm.insertion import STOWED_POSITIONS
    from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path
    from mobicharge_robot.core.vision.camera import default_wrist_camera
    from mobicharge_robot.sim.world import Lidar

    root = _gazebo_xml()
    model = UrdfModel.from_xacro(default_urdf_path())
    diff = next(p for p in root.iter("plugin") if p.get("name").endswith("DiffDrive"))
    assert float(diff.findtext("wheel_separation")) == pytest.approx(model.wheel_separation())
    assert float(diff.findtext("wheel_radius")) == pytest.approx(model.wheel_radius())
    # Joint states: exactly the URDF's movable joints.
    jsp = next(p for p in root.iter("plugin") if p.get("name").endswith("JointStatePublisher"))
    assert sorted(e.text for e in jsp.findall("joint_name")) == sorted(
        n for n, j in model.joints.items() if j.type != "fixed")
    # Trajectory controller: starts stowed, commands clamped to the URDF's effort limits.
    jtc = next(p for p in root.iter("plugin") if p.get("name").endswith("JointTrajectoryController"))
    names = [e.text for e in jtc.findall("joint_name")]
    assert names == [f"arm_joint_{i}" for i in range(1, 7)]
    initial = [float(e.text) for e in jtc.findall("initial_position")]
    np.testing.assert_allclose(initial, STOWED_POSITIONS)
    efforts = [float(e.text) for e in jtc.findall("position_cmd_max")]
    np.testing.assert_allclose(efforts, [model.joints[n].effort for n in names])
    # Camera: image size, focal length and k1 of the wrist camera model.
    cam = default_wrist_camera()
    sensor = next(s for s in root.iter("sensor") if s.get("type") == "camera")
    assert int(sensor.findtext("camera/image/width")) == cam.width
    assert int(sensor.findtext("camera/image/height")) == cam.height
    hfov = float(sensor.findtext("camera/horizontal_fov"))
    assert 0.5 * cam.width / math.tan(0.5 * hfov) == pytest.approx(cam.K[0, 0], rel=1e-5)
    assert float(sensor.findtext("camera/distortion/k1")) == pytest.approx(cam.D[0])
    assert sensor.findtext("ignition_frame_id") == cam.frame_id
    # Lidar: beams, range and field of view of the loopback simulator's lidar.
    lidar = Lidar()
    s = next(s for s in root.iter("sensor") if s.get("type") == "gpu_lidar")
    assert int(s.findtext("lidar/scan/horizontal/samples")) == lidar.n_rays
    span = float(s.findtext("lidar/scan/horizontal/max_angle")) - float(s.findtext("lidar/scan/horizontal/min_angle"))
    assert span == pytest.approx(lidar.angle_increment * (lidar.n_rays - 1), abs=1e-6)
    assert float(s.findtext("lidar/range/min")) == pytest.approx(lidar.range_min_m)
    assert float(s.findtext("lidar/range/max")) == pytest.approx(lidar.range_max_m)
    # Frame ids of the sensors are URDF links.
    for s in root.iter("sensor"):
        assert s.findtext("ignition_frame_id") in model.links
    # The wrench comes as the loopback simulator gives it: in the connector tip's axes (its ft_frame default), i.e.
    # the sensor frame is turned against ft_sensor as connector_tip is.
    ft = next(s for s in root.iter("sensor") if s.get("type") == "force_torque")
    assert ft.findtext("ignition_frame_id") == _loopback_default("ft_frame")
    assert ft.findtext("force_torque/frame") == "sensor"
    roll, pitch, yaw = (float(v) for v in ft.findtext("pose").split()[3:])
    from mobicharge_robot.core.geometry import rpy_matrix

    np.testing.assert_allclose(rpy_matrix(roll, pitch, yaw),
                               model.transform({}, ft.findtext("ignition_frame_id"), "ft_sensor")[:3, :3], atol=1e-9)


def test_ring_light_and_sensor_frames_are_complete():
    from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path

    model = UrdfModel.from_xacro(default_urdf_path())
    light = model.links["wrist_camera_ring_light"]
    assert light.collisions and light.mass > 0.0
    # The light sits on the camera's front face, looking where the camera looks (the optical z).
    t = model.transform({}, "wrist_camera_ring_light", "wrist_camera_optical")
    np.testing.assert_allclose(t[:3, 0], [0, 0, 1], atol=1e-12)
    assert 0.0 < t[2, 3] < 0.02  # in front of the lens but inside the 2 cm near clip of the simulated camera
    ft = model.transform({}, "connector_tip", "ft_sensor")
    np.testing.assert_allclose(ft[1:3, 3], [0.0, 0.0], atol=1e-12)  # the tool axis runs along the sensor's x


def test_world_generated_from_another_garage_passes_ign_sdf_check(tmp_path):
    """Any garage, not only the committed one: lanes removed (lights on a grid), cars moved to other spots."""
    import yaml

    from mobicharge_robot.tools.generate_world import write_world

    data = yaml.safe_load(open(os.path.join(ROOT, "config", "garages", "default.yaml")))
    data["garage"]["lanes"] = []
    data["garage"]["name"] = "variant"
    for v, spot in zip(data["vehicles"], ("S01", "A02", "B14", "N15", "S15", "A15", "B01", "N01", "A07")):
        v["spot"] = spot
    garage = tmp_path / "variant.yaml"
    garage.write_text(yaml.safe_dump(data))
    world = tmp_path / "worlds" / "variant.sdf"
    write_world(str(garage), str(world))
    result = _ign_sdf("-k", str(world), sdf_path=str(tmp_path / "worlds" / "models"))
    assert result.returncode == 0 and "Valid." in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


GARAGES = sorted(glob.glob(os.path.join(ROOT, "config", "garages", "*.yaml")))


@pytest.mark.parametrize("garage", GARAGES, ids=os.path.basename)
def test_world_of_every_committed_garage_passes_ign_sdf_check(tmp_path, garage):
    """Every garage file in the repository (rectangular, L and T outlines, angled rows) gives a valid world."""
    from mobicharge_robot.tools.generate_world import write_world

    world = tmp_path / "worlds" / "w.sdf"
    write_world(garage, str(world))
    result = _ign_sdf("-k", str(world), sdf_path=str(tmp_path / "worlds" / "models"))
    assert result.returncode == 0 and "Valid." in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
