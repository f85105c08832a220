"""The robot description: xacro expands, check_urdf accepts it, and the model reads dimensions from it."""
import math
import os
import shutil
import subprocess

import numpy as np
import pytest

from mobicharge_robot.core.arm.urdf_model import UrdfError, UrdfModel, default_urdf_path

CHECK_URDF_PACKAGE = "liburdfdom-tools"


def _check_urdf_binary() -> str:
    exe = shutil.which("check_urdf")
    if exe is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", CHECK_URDF_PACKAGE], check=False, capture_output=True,
                       timeout=600)
        exe = shutil.which("check_urdf")
    if exe is None:
        pytest.fail(f"check_urdf is not installed; install the Debian package '{CHECK_URDF_PACKAGE}'")
    return exe


@pytest.fixture(scope="module")
def model():
    return UrdfModel.from_xacro(default_urdf_path())


@pytest.mark.parametrize("sim", ["false", "true"])
def test_xacro_output_passes_check_urdf(tmp_path, sim):
    import xacro

    xml = xacro.process_file(default_urdf_path(), mappings={"sim": sim}).toxml()
    path = tmp_path / "mobicharge.urdf"
    path.write_text(xml)
    result = subprocess.run([_check_urdf_binary(), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully Parsed XML" in result.stdout
    assert "root Link: base_link" in result.stdout


def test_footprint_and_wheels_come_from_the_urdf(model):
    assert model.footprint() == pytest.approx((1.0, 0.7))
    assert model.wheel_radius() == pytest.approx(0.1)
    assert model.wheel_radius("right_wheel_joint") == pytest.approx(0.1)
    sep = model.wheel_separation()
    assert 0.3 < sep < 0.7  # the wheels sit inside the 0.7 m wide body
    left = model.transform({}, "left_wheel")
    right = model.transform({}, "right_wheel")
    assert left[1, 3] - right[1, 3] == pytest.approx(sep)
    assert left[2, 3] == pytest.approx(model.wheel_radius())  # the wheel touches the floor
    for name in ("left_wheel_joint", "right_wheel_joint"):
        assert model.joints[name].type == "continuous"


def test_frames_and_joint_limits(model):
    names = [f"arm_joint_{i}" for i in range(1, 7)]
    for name in names:
        j = model.joints[name]
        assert j.type == "revolute"
        assert j.lower < 0.0 < j.upper and j.velocity > 0.0 and j.effort > 0.0
    for link in ("laser", "ft_sensor", "connector_body", "connector_tip", "wrist_camera", "wrist_camera_optical"):
        assert link in model.links
    laser = model.transform({}, "laser")
    assert laser[0, 3] > 0.3 and laser[2, 3] > 0.5  # on top, at the front
    # Optical convention: z forward (the camera link's x), x right (its -y), y down (its -z).
    cam = model.transform({}, "wrist_camera_optical", "wrist_camera")
    np.testing.assert_allclose(cam[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    # The camera looks along the connector axis from 6-8 cm off it.
    tip_cam = model.transform({}, "wrist_camera_optical", "connector_tip")
    np.testing.assert_allclose(tip_cam[:3, 2], [0, 0, 1], atol=1e-12)
    assert 0.06 <= math.hypot(tip_cam[0, 3], tip_cam[1, 3]) <= 0.08
    # Every physical link has a collision shape and an inertia; only pure frames go without.
    for name, link in model.links.items():
        if name not in ("connector_tip", "wrist_camera_optical"):
            assert link.collisions, name
            assert link.mass and link.mass > 0.0, name


def test_transform_between_any_two_frames(model):
    q = {"arm_joint_1": 0.4, "arm_joint_2": -1.0, "arm_joint_3": 1.2, "arm_joint_6": 0.3, "unknown": 7.0}
    a = model.transform(q, "wrist_camera_optical")
    b = model.transform(q, "laser")
    np.testing.assert_allclose(model.transform(q, "wrist_camera_optical", "laser"), np.linalg.inv(b) @ a,
                               atol=1e-12)
    # Turning the base joint turns the tip about z without changing its height.
    t0 = model.transform({}, "connector_tip")
    t1 = model.transform({"arm_joint_1": math.pi / 2}, "connector_tip")
    assert t1[2, 3] == pytest.approx(t0[2, 3])
    assert t1[1, 3] == pytest.approx(t0[0, 3])
    with pytest.raises(UrdfError):
        model.transform({}, "no_such_frame")
    with pytest.raises(ValueError):
        model.transform({"arm_joint_2": float("nan")}, "connector_tip")


def test_chain_from_urdf(model):
    chain = model.chain("base_link", "connector_tip")
    assert chain.joint_names == tuple(f"arm_joint_{i}" for i in range(1, 7))
    q = np.array([0.3, -1.1, 1.4, 0.2, -0.4, 0.8])
    joints = dict(zip(chain.joint_names, q))
    np.testing.assert_allclose(chain.fk(q), model.transform(joints, "connector_tip"), atol=1e-12)
    np.testing.assert_allclose(chain.fk_frame(q, "wrist_camera_optical"),
                               model.transform(joints, "wrist_camera_optical"), atol=1e-12)
    np.testing.assert_allclose(chain.velocity_limits, [model.joints[n].velocity for n in chain.joint_names])
    with pytest.raises(UrdfError):
        model.chain("connector_tip", "base_link")
    with pytest.raises(UrdfError):
        model.chain("base_link", "laser")  # fixed joints only


@pytest.mark.parametrize("xml", [
    "<robot><link name='a'/><joint name='j' type='revolute'><parent link='a'/><child link='b'/></joint></robot>",
    "<robot><link name='a'/><link name='b'/>"
    "<joint name='j' type='revolute'><parent link='a'/><child link='b'/></joint></robot>",
    "<robot><link name='a'/><link name='a'/></robot>",
    "<robot><link name='a'/><link name='b'/></robot>",
    "<robot><link name='a'><collision><origin xyz='1 2'/><geometry><box size='1 1 1'/></geometry>"
    "</collision></link></robot>",
    "<robot><link name='a'",
    "<model/>",
])
def test_malformed_descriptions_raise_urdf_error(xml):
    with pytest.raises(UrdfError):
        UrdfModel.from_string(xml)


def test_missing_files_raise_urdf_error(tmp_path):
    with pytest.raises(UrdfError):
        UrdfModel.from_xacro(str(tmp_path / "none.urdf.xacro"))
    with pytest.raises(UrdfError):
        UrdfModel.from_file(str(tmp_path / "none.urdf"))
    bad = tmp_path / "bad.urdf.xacro"
    bad.write_text("<robot xmlns:xacro='http://www.ros.org/wiki/xacro'><xacro:nosuchmacro/></robot>")
    with pytest.raises(UrdfError):
        UrdfModel.from_xacro(str(bad))
    no_box = UrdfModel.from_string("<robot><link name='base_link'/></robot>")
    with pytest.raises(UrdfError):
        no_box.footprint()
    with pytest.raises(UrdfError):
        no_box.wheel_separation()
