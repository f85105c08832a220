"""Joint-space and straight-line trajectories for the charging arm."""
import math

import numpy as np
import pytest

from mobicharge_robot.core.arm.insertion import STOWED_POSITIONS
from mobicharge_robot.core.geometry import make_transform, rot_y, rot_z, rotation_angle
from mobicharge_robot.core.arm.kinematics import IKError
from mobicharge_robot.core.arm.trajectory import (JointTrajectory, PathDiscontinuity, TrajectoryError,
                                              interpolate_pose, plan_joint_motion, plan_linear_motion, sample)
from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path

STOWED = np.array(STOWED_POSITIONS)


@pytest.fixture(scope="module")
def arm():
    return UrdfModel.from_xacro(default_urdf_path()).chain("base_link", "connector_tip")


@pytest.fixture(scope="module")
def inlet():
    """An inlet 0.7 m to the left, 0.8 m high: z out of its face towards the robot, y up."""
    z = np.array([0.0, -1.0, 0.0])
    y = np.array([0.0, 0.0, 1.0])
    return make_transform(np.column_stack([np.cross(y, z), y, z]), (0.1, 0.7, 0.8))


def _tip_on_axis(T_inlet, d):
    return T_inlet @ make_transform(np.eye(3), (0, 0, d)) @ make_transform(rot_y(math.pi), (0, 0, 0))


def _dense_tip_path(arm, traj, n=1500):
    ts = np.linspace(0.0, traj.duration, n)
    poses = [arm.fk(sample(traj, t)) for t in ts]
    return ts, poses


def test_joint_motion_is_synchronised_and_within_limits(arm):
    q_goal = np.array([1.3, -1.4, 2.5, -1.1, 0.3, 0.1])
    traj = plan_joint_motion(arm, STOWED, q_goal, velocity_scale=0.5, accel_limit=1.5)
    assert traj.joint_names == arm.joint_names
    np.testing.assert_allclose(traj.positions[0], STOWED)
    np.testing.assert_allclose(traj.positions[-1], q_goal)
    assert np.all(np.diff(traj.times) > 0.0)
    np.testing.assert_allclose(traj.velocities[[0, -1]], 0.0, atol=1e-12)
    cap = 0.5 * arm.velocity_limits
    assert np.all(np.abs(traj.velocities) <= cap + 1e-9)
    fd = np.diff(traj.positions, axis=0) / np.diff(traj.times)[:, None]
    assert np.all(np.abs(fd) <= cap + 1e-9)
    assert np.all(np.abs(np.diff(traj.velocities, axis=0) / np.diff(traj.times)[:, None]) <= 1.5 + 1e-6)
    # Synchronised: every waypoint is on the joint-space segment, all joints at the same fraction.
    delta = q_goal - STOWED
    frac = (traj.positions - STOWED) @ delta / (delta @ delta)
    np.testing.assert_allclose(traj.positions, STOWED + np.outer(frac, delta), atol=1e-9)
    assert np.all(np.diff(frac) > 0.0)
    # The slowest joint runs at its cap for a while: the plan is not needlessly slow.
    assert np.max(np.abs(traj.velocities) / cap) == pytest.approx(1.0, abs=1e-6)


def test_joint_motion_edge_cases(arm):
    still = plan_joint_motion(arm, STOWED, STOWED)
    assert len(still.times) == 1 and still.duration == 0.0
    short = plan_joint_motion(arm, STOWED, STOWED + np.array([0, 0, 0, 0, 0, 1e-3]))
    assert short.duration > 0.0 and np.all(np.abs(short.velocities) <= 0.5 * arm.velocity_limits + 1e-9)
    with pytest.raises(TrajectoryError):
        plan_joint_motion(arm, STOWED, STOWED + np.array([0, 0, 10.0, 0, 0, 0]))  # beyond the elbow limit
    with pytest.raises(TrajectoryError):
        plan_joint_motion(arm, STOWED, STOWED[:5])
    with pytest.raises(TrajectoryError):
        plan_joint_motion(arm, STOWED, STOWED, velocity_scale=0.0)


def test_sample_interpolates_and_clamps():
    traj = JointTrajectory(("a", "b"), [0.0, 1.0, 3.0], [[0, 0], [1, 2], [3, 2]], np.zeros((3, 2)))
    np.testing.assert_allclose(sample(traj, -1.0), [0, 0])
    np.testing.assert_allclose(sample(traj, 0.5), [0.5, 1.0])
    np.testing.assert_allclose(sample(traj, 2.0), [2.0, 2.0])
    np.testing.assert_allclose(sample(traj, 9.0), [3, 2])
    with pytest.raises(TrajectoryError):
        JointTrajectory(("a",), [0.0, 0.0], [[0], [1]], [[0], [0]])


def test_linear_insertion_stays_on_the_axis(arm, inlet):
    q_stand = arm.ik(_tip_on_axis(inlet, 0.10), STOWED)
    goal = _tip_on_axis(inlet, -0.03)
    speed = 0.02
    traj = plan_linear_motion(arm, q_stand, goal, speed_mps=speed)
    start = arm.fk(q_stand)[:3, 3]
    axis = (goal[:3, 3] - start) / np.linalg.norm(goal[:3, 3] - start)
    ts, poses = _dense_tip_path(arm, traj)
    pts = np.array([p[:3, 3] for p in poses])
    rel = pts - start
    deviation = np.linalg.norm(rel - np.outer(rel @ axis, axis), axis=1)
    assert deviation.max() < 5e-4
    assert np.all(np.diff(rel @ axis) >= -1e-9)  # never backs up along the line
    tip_speed = np.linalg.norm(np.diff(pts, axis=0), axis=1) / np.diff(ts)
    assert tip_speed.max() <= speed * 1.01
    assert traj.duration == pytest.approx(0.13 / speed, rel=0.1)  # ramps add a little to distance / speed
    for pose in poses:
        assert math.degrees(rotation_angle(pose[:3, :3].T @ goal[:3, :3])) < 0.05
    final = arm.fk(traj.positions[-1])
    assert np.linalg.norm(final[:3, 3] - goal[:3, 3]) < 1e-4
    fd = np.diff(traj.positions, axis=0) / np.diff(traj.times)[:, None]
    assert np.all(np.abs(fd) <= arm.velocity_limits + 1e-9)
    assert np.all(np.abs(traj.velocities) <= arm.velocity_limits + 1e-9)


def test_linear_motion_with_rotation_respects_both_speeds(arm, inlet):
    q0 = arm.ik(_tip_on_axis(inlet, 0.20), STOWED)
    start = arm.fk(q0)
    goal = start @ make_transform(rot_z(0.3) @ rot_y(0.1), (0.03, -0.02, 0.05))
    traj = plan_linear_motion(arm, q0, goal, speed_mps=0.05, angular_speed_rps=0.087)
    ts, poses = _dense_tip_path(arm, traj)
    dt = np.diff(ts)
    lin = np.array([np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(poses, poses[1:])]) / dt
    ang = np.array([rotation_angle(a[:3, :3].T @ b[:3, :3]) for a, b in zip(poses, poses[1:])]) / dt
    assert lin.max() <= 0.05 * 1.01 and ang.max() <= 0.087 * 1.01
    # Each waypoint is on the interpolated pose path.
    for k, q in enumerate(traj.positions):
        s = k / (len(traj.positions) - 1)
        expected = interpolate_pose(start, goal, s)
        assert np.linalg.norm(arm.fk(q)[:3, 3] - expected[:3, 3]) < 1e-4
    assert rotation_angle(arm.fk(traj.positions[-1])[:3, :3].T @ goal[:3, :3]) < 1e-3


def test_linear_motion_failures_are_ik_errors(arm, inlet):
    q_stand = arm.ik(_tip_on_axis(inlet, 0.10), STOWED)
    far = _tip_on_axis(inlet, -2.0)  # 2 m into the car
    with pytest.raises(IKError):
        plan_linear_motion(arm, q_stand, far)
    with pytest.raises(PathDiscontinuity):
        plan_linear_motion(arm, q_stand, _tip_on_axis(inlet, -0.03), max_joint_step_rad=1e-5)
    with pytest.raises(TrajectoryError):
        plan_linear_motion(arm, q_stand, np.eye(3))
    still = plan_linear_motion(arm, q_stand, arm.fk(q_stand))
    assert len(still.times) == 1
