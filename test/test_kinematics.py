"""Forward and inverse kinematics of URDF chains: a hand-checkable toy arm and the robot's charging arm."""
import math
import time

import numpy as np
import pytest

from mobicharge_robot.core.arm.insertion import STOWED_POSITIONS
from mobicharge_robot.core.geometry import make_transform, rot_x, rot_y, rot_z, rotation_angle
from mobicharge_robot.core.arm.kinematics import (FrameNotOnChain, IKError, NoIKSolution, OutOfReach, rotation_from_vector,
                                              rotation_vector)
from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path

# The arm node's default stowed configuration (config: stowed_positions), checked against the URDF here.
STOWED = np.array(STOWED_POSITIONS)

TOY = """
<robot name="toy">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/><link name="tool"/><link name="cam"/>
  <joint name="yaw" type="revolute"><parent link="base"/><child link="l1"/>
    <origin xyz="0 0 0.3"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" velocity="1" effort="10"/></joint>
  <joint name="pitch" type="revolute"><parent link="l1"/><child link="l2"/>
    <origin xyz="0.1 0 0.2"/><axis xyz="0 1 0"/><limit lower="-2" upper="2" velocity="1" effort="10"/></joint>
  <joint name="slide" type="prismatic"><parent link="l2"/><child link="l3"/>
    <origin xyz="0.5 0 0" rpy="0 0 1.5707963267948966"/><axis xyz="1 0 0"/>
    <limit lower="0" upper="0.2" velocity="0.1" effort="10"/></joint>
  <joint name="tool_joint" type="fixed"><parent link="l3"/><child link="tool"/><origin xyz="0 0 -0.1"/></joint>
  <joint name="cam_joint" type="fixed"><parent link="l2"/><child link="cam"/>
    <origin xyz="0.2 0 0.05" rpy="0 0.5 0"/></joint>
</robot>
"""


def _inlet(side: int, x: float, lateral: float, height: float) -> np.ndarray:
    """An inlet on a car side parallel to the robot: its z (out of the face) points at the robot, y up."""
    z = np.array([0.0, -side, 0.0])
    y = np.array([0.0, 0.0, 1.0])
    return make_transform(np.column_stack([np.cross(y, z), y, z]), (x, side * lateral, height))


def _along_axis(T_inlet: np.ndarray, d: float) -> np.ndarray:
    """Connector tip facing the inlet, ``d`` m out of its face (negative: seated inside)."""
    return T_inlet @ make_transform(np.eye(3), (0.0, 0.0, d)) @ make_transform(rot_y(math.pi), (0, 0, 0))


def _inside_own_body(T_tip: np.ndarray) -> bool:
    """True for tip poses that would put the connector body (reaching 9 cm below its axis) into the robot's own
    base (0.35 m half-width, top plate at 0.55 m): stand-offs 0.25-0.40 m out of a low inlet only 0.55 m away."""
    return abs(T_tip[1, 3]) < 0.35 and T_tip[2, 3] < 0.55 + 0.12


def _errors(a: np.ndarray, b: np.ndarray):
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3])), math.degrees(rotation_angle(a[:3, :3].T @ b[:3, :3]))


@pytest.fixture(scope="module")
def toy():
    return UrdfModel.from_string(TOY).chain("base", "tool")


@pytest.fixture(scope="module")
def model():
    return UrdfModel.from_xacro(default_urdf_path())


@pytest.fixture(scope="module")
def arm(model):
    return model.chain("base_link", "connector_tip")


def test_toy_fk_matches_hand_computation(toy):
    assert toy.joint_names == ("yaw", "pitch", "slide")
    # Zero pose: tip = (0,0,0.3) + (0.1,0,0.2) + (0.5,0,0) + Rz(90deg) (0,0,-0.1).
    np.testing.assert_allclose(toy.fk([0, 0, 0]), make_transform(rot_z(math.pi / 2), (0.6, 0.0, 0.4)), atol=1e-12)
    # yaw 90 deg, pitch -90 deg (arm up), slide 0.2 m (along the l3 x = l2 y = world -x after yaw).
    q = [math.pi / 2, -math.pi / 2, 0.2]
    r = rot_z(math.pi / 2) @ rot_y(-math.pi / 2) @ rot_z(math.pi / 2)
    p = np.array([0, 0, 0.3]) + rot_z(math.pi / 2) @ np.array([0.1, 0, 0.2]) \
        + rot_z(math.pi / 2) @ rot_y(-math.pi / 2) @ np.array([0.5, 0, 0]) + r @ np.array([0.2, 0, -0.1])
    np.testing.assert_allclose(toy.fk(q), make_transform(r, p), atol=1e-12)
    cam = rot_z(math.pi / 2) @ rot_y(-math.pi / 2)
    expected = make_transform(cam, np.array([0, 0, 0.3]) + rot_z(math.pi / 2) @ np.array([0.1, 0, 0.2])
                              + cam @ np.array([0.2, 0, 0.05])) @ make_transform(rot_y(0.5), (0, 0, 0))
    np.testing.assert_allclose(toy.fk_frame(q, "cam"), expected, atol=1e-12)
    with pytest.raises(FrameNotOnChain):
        toy.fk_frame(q, "nowhere")
    with pytest.raises(ValueError):
        toy.fk([0.0, 0.0])


def test_jacobian_matches_finite_differences(toy, arm):
    rng = np.random.default_rng(3)
    for chain in (toy, arm):
        for _ in range(5):
            q = rng.uniform(np.maximum(chain.lower, -3), np.minimum(chain.upper, 3))
            jac = chain.jacobian(q)
            t0 = chain.fk(q)
            h = 1e-6
            for i in range(chain.n_joints):
                dq = np.zeros(chain.n_joints)
                dq[i] = h
                t1 = chain.fk(q + dq)
                np.testing.assert_allclose((t1[:3, 3] - t0[:3, 3]) / h, jac[:3, i], atol=1e-5)
                np.testing.assert_allclose(rotation_vector(t1[:3, :3] @ t0[:3, :3].T) / h, jac[3:, i], atol=1e-5)


def test_rotation_vector_round_trip_including_half_turns():
    rng = np.random.default_rng(5)
    for angle in (0.0, 1e-9, 0.3, 2.0, math.pi - 1e-7, math.pi):
        for _ in range(10):
            axis = rng.normal(size=3)
            v = axis / np.linalg.norm(axis) * angle
            r = rotation_from_vector(v)
            np.testing.assert_allclose(rotation_from_vector(rotation_vector(r)), r, atol=1e-7)


def test_ik_round_trip_on_random_reachable_poses(arm):
    rng = np.random.default_rng(2024)
    times = []
    for _ in range(200):
        q_true = rng.uniform(arm.lower, arm.upper)
        target = arm.fk(q_true)
        seed = np.clip(q_true + rng.normal(0.0, 0.3, arm.n_joints), arm.lower, arm.upper)
        t0 = time.perf_counter()
        q = arm.ik(target, seed)
        times.append(time.perf_counter() - t0)
        assert np.all(q >= arm.lower) and np.all(q <= arm.upper)
        dp, dr = _errors(arm.fk(q), target)
        assert dp < 1e-4 and dr < 0.05
    assert float(np.median(times)) < 0.02  # a few ms typically; lenient for a loaded test machine


def test_ik_returns_the_seed_branch(arm):
    q = np.array([1.2, -1.6, 2.0, -0.4, 0.1, 0.2])
    np.testing.assert_allclose(arm.ik(arm.fk(q), q + 0.05), q, atol=1e-3)


def _world_box(geom, t_link):
    """(centre, half extents) of the axis-aligned box around a collision primitive of a link at pose ``t_link``."""
    t = t_link @ geom.origin
    r = t[:3, :3]
    if geom.kind == "box":
        half = np.abs(r) @ (0.5 * np.array(geom.size))
    elif geom.kind == "cylinder":
        axis = r[:, 2]
        half = np.abs(axis) * 0.5 * geom.length + geom.radius * np.sqrt(np.clip(1.0 - axis ** 2, 0.0, 1.0))
    else:
        half = np.full(3, geom.radius)
    return t[:3, 3], half


def test_stowed_configuration_is_inside_the_footprint(model, arm):
    length, width = model.footprint()
    base_top = max(g.origin[2, 3] + 0.5 * g.size[2] for g in model.links["base_link"].collisions if g.kind == "box")
    assert arm.within_limits(STOWED)
    joints = dict(zip(arm.joint_names, STOWED))
    checked = 0
    for name in arm.frame_names:
        link = model.links[name]
        if np.allclose(arm.fk_frame(STOWED, name), arm.fk_frame(STOWED + 0.1, name)):
            continue  # not moved by the arm: the base's own parts and the pedestal on its top plate
        t = model.transform(joints, name)
        for geom in link.collisions:
            centre, half = _world_box(geom, t)
            assert abs(centre[0]) + half[0] <= 0.5 * length, name
            assert abs(centre[1]) + half[1] <= 0.5 * width, name
            assert centre[2] - half[2] >= base_top - 1e-9, name
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("side", [1, -1], ids=["left", "right"])
def test_inlet_poses_are_reachable_on_both_sides(arm, side):
    """Inlets 0.45-1.25 m high, 0.55-0.95 m to the side, -0.3..0.3 m along x: seated, at the face, at stand-offs
    0.10-0.40 m out, and with the wrist camera 0.30 m in front; connector axis horizontal, pointing at the car.
    Poses inside the robot's own body are left out (see _inside_own_body)."""
    skipped = 0
    T_tip_cam = np.linalg.inv(arm.fk(STOWED)) @ arm.fk_frame(STOWED, "wrist_camera_optical")
    cam_facing = make_transform(rot_x(math.pi), (0, 0, 0))
    for x in (-0.3, 0.0, 0.3):
        for lateral in (0.55, 0.75, 0.95):
            for height in (0.45, 0.65, 0.85, 1.05, 1.25):
                inlet = _inlet(side, x, lateral, height)
                targets = [_along_axis(inlet, d) for d in (-0.03, 0.0, 0.10, 0.25, 0.40)]
                observe = inlet @ make_transform(np.eye(3), (0, 0, 0.30)) @ cam_facing @ np.linalg.inv(T_tip_cam)
                for target in targets + [observe]:
                    if _inside_own_body(target):
                        skipped += 1
                        continue
                    q = arm.ik(target, STOWED)
                    tip = arm.fk(q)
                    dp, dr = _errors(tip, target)
                    assert dp < 1e-4 and dr < 0.05, (x, lateral, height)
                    assert abs(tip[2, 2]) < 1e-3  # the connector axis is horizontal...
                    assert tip[1, 2] * side > 0.999  # ...and points at the car side
    assert skipped <= 18  # of 270 poses per side


def test_out_of_reach_and_impossible_targets(toy, arm):
    far = make_transform(np.eye(3), (3.0, 0.0, 1.0))
    with pytest.raises(OutOfReach) as info:
        arm.ik(far, STOWED)
    assert "spans at most" in info.value.reason
    assert not arm.reachable(far, STOWED)
    # The toy arm has 3 joints: a reachable position with a rotation it cannot produce.
    target = toy.fk([0.2, 0.3, 0.1]) @ make_transform(rot_x(0.7), (0, 0, 0))
    with pytest.raises(NoIKSolution):
        toy.ik(target, [0.0, 0.0, 0.0])
    with pytest.raises(IKError):
        toy.ik(target, [0.0, 0.0, 0.0], max_restarts=0)
    with pytest.raises(ValueError):
        arm.ik(np.full((4, 4), np.nan), STOWED)
    with pytest.raises(ValueError):
        arm.ik(np.eye(4), STOWED[:3])
