"""Path follower in closed loop with a simulated unicycle: precision at the goal, limits, states, bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mobicharge_robot.core.navigation.follower import (APPROACH, ARRIVED, FOLLOWING, ROTATING_TO_GOAL, ROTATING_TO_PATH,
                                            FollowerError, FollowerParams, PathFollower)
from mobicharge_robot.core.geometry import Pose2D, wrap_angle
from mobicharge_robot.core.navigation.occupancy import from_polygons
from mobicharge_robot.core.navigation.planner import GridPlanner, path_from_polyline

XY_TOL = 0.02
YAW_TOL = math.radians(1.0)


def simulate(follower: PathFollower, pose: Pose2D, dt: float = 0.05, max_time_s: float = 90.0,
             speed_limit=None):
    """Euler-integrate a unicycle under the follower's commands until it reports arrival.

    Returns (final pose, commands [(v, w)], states, poses). The base executes each command exactly.
    """
    x, y, th = pose.x, pose.y, pose.yaw
    v = w = 0.0
    cmds, states, poses = [], [], []
    for _ in range(int(max_time_s / dt)):
        cmd = follower.step(Pose2D(x, y, th), v, w, dt, speed_limit)
        cmds.append((cmd.v, cmd.w))
        states.append(cmd.state)
        poses.append((x, y, th))
        v, w = cmd.v, cmd.w
        if cmd.state == ARRIVED:
            break
        x += v * math.cos(th) * dt
        y += v * math.sin(th) * dt
        th = wrap_angle(th + w * dt)
    return Pose2D(x, y, th), np.array(cmds), states, np.array(poses)


def assert_within_limits(cmds: np.ndarray, params: FollowerParams, dt: float, v_max: float = None) -> None:
    v_max = params.max_linear_mps if v_max is None else v_max
    assert np.all(np.isfinite(cmds))
    v, w = cmds[:, 0], cmds[:, 1]
    assert v.min() >= 0.0 and v.max() <= v_max + 1e-9
    assert np.abs(w).max() <= params.max_angular_rps + 1e-9
    # The first command starts from rest.
    dv = np.diff(np.concatenate([[0.0], v]))
    dw = np.diff(np.concatenate([[0.0], w]))
    assert np.abs(dv).max() <= params.max_linear_accel * dt + 1e-9
    assert np.abs(dw).max() <= params.max_angular_accel * dt + 1e-9


def assert_arrived(final: Pose2D, goal: Pose2D, states) -> None:
    assert states[-1] == ARRIVED
    assert final.distance_to(goal) <= XY_TOL
    assert abs(wrap_angle(final.yaw - goal.yaw)) <= YAW_TOL


def l_path():
    return path_from_polyline([[0.0, 0.0], [5.0, 0.0], [5.0, 4.0]], math.pi / 2)


def test_l_shaped_path_arrives_precisely_within_limits():
    params = FollowerParams()
    follower = PathFollower(params)
    path = l_path()
    follower.set_path(path)
    final, cmds, states, poses = simulate(follower, Pose2D(0.0, 0.0, 0.0))
    assert_arrived(final, path.goal, states)
    assert_within_limits(cmds, params, 0.05)
    assert cmds[:, 0].max() > 0.9  # it does use its speed on the straight
    # It stays close to the path (pure pursuit cuts the corner a little).
    dist = np.min(np.hypot(poses[:, None, 0] - path.points[None, :, 0], poses[:, None, 1] - path.points[None, :, 1]),
                  axis=1)
    assert dist.max() < 0.25
    seen = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert seen[0] == FOLLOWING and seen[-1] == ARRIVED
    # The path ends straight along the goal yaw, so little or no turning is left once the position is reached.
    assert seen[-2] == APPROACH or seen[-3:-1] == [APPROACH, ROTATING_TO_GOAL]
    assert states.count(ROTATING_TO_GOAL) * 0.05 < 1.0


def test_planned_path_with_straight_approach_from_the_wrong_heading():
    grid = from_polygons((10.0, 8.0), 0.05, [np.array([[4.0, 3.0], [6.0, 3.0], [6.0, 5.0], [4.0, 5.0]])])
    planner = GridPlanner(grid, 0.4)
    start, goal = Pose2D(1.0, 1.0, math.pi), Pose2D(8.5, 6.5, math.pi / 2)
    path = planner.plan(start, goal)
    params = FollowerParams()
    follower = PathFollower(params)
    follower.set_path(path)
    assert follower.distance_remaining(start) == pytest.approx(path.length_m, abs=1e-6)
    final, cmds, states, poses = simulate(follower, start)
    assert_arrived(final, goal, states)
    assert_within_limits(cmds, params, 0.05)
    # It turns round on the spot first, and arrives straight along the goal yaw: little correction at the end.
    assert states[0] == ROTATING_TO_PATH and abs(cmds[0, 0]) == 0.0
    last_stretch = np.array([st == APPROACH for st in states]) & (np.hypot(*(poses[:, :2] - goal.xy).T) < 0.3)
    assert last_stretch.sum() > 10
    assert np.abs(poses[last_stretch, 0] - goal.x).max() < 0.02  # on the approach line x = 8.5
    assert np.abs(np.cos(poses[last_stretch, 2])).max() < 0.1  # heading along it
    assert states.count(ROTATING_TO_GOAL) * 0.05 < 1.0
    assert follower.distance_remaining(final) <= XY_TOL


@pytest.mark.parametrize("dt", [0.1, 0.02])
def test_other_control_rates_still_arrive(dt):
    params = FollowerParams()
    follower = PathFollower(params)
    path = l_path()
    follower.set_path(path)
    final, cmds, states, _ = simulate(follower, Pose2D(0.0, 0.0, 0.0), dt=dt)
    assert_arrived(final, path.goal, states)
    assert_within_limits(cmds, params, dt)


def test_speed_limit_caps_forward_speed():
    params = FollowerParams()
    follower = PathFollower(params)
    path = path_from_polyline([[0.0, 0.0], [6.0, 0.0]], 0.0)
    follower.set_path(path)
    final, cmds, states, _ = simulate(follower, Pose2D(0.0, 0.0, 0.0), speed_limit=0.3)
    assert_arrived(final, path.goal, states)
    assert_within_limits(cmds, params, 0.05, v_max=0.3)
    assert cmds[:, 0].max() == pytest.approx(0.3)


def test_path_speed_limits_are_honoured_with_braking_ahead():
    params = FollowerParams()
    follower = PathFollower(params)
    path = path_from_polyline([[0.0, 0.0], [12.0, 0.0]], 0.0)
    x = path.points[:, 0]
    # 1.0 m/s, then 0.5 m/s from x = 6 m (near parked cars), then 0.15 m/s on the last metre.
    path.speed_limits = np.where(x < 6.0, 1.0, np.where(x < 11.0, 0.5, 0.15))
    follower.set_path(path)
    final, cmds, states, poses = simulate(follower, Pose2D(0.0, 0.0, 0.0))
    assert_arrived(final, path.goal, states)
    assert_within_limits(cmds, params, 0.05)
    px = poses[:, 0]
    v = cmds[:, 0]
    assert v[px < 6.0].max() > 0.9  # full speed in the lane
    assert v[(px >= 6.0) & (px < 11.0)].max() <= 0.5 + 1e-9  # already slow on entering the 0.5 m/s stretch
    assert v[px >= 11.0].max() <= 0.15 + 1e-9
    short = path_from_polyline([[0.0, 0.0], [3.0, 0.0]], 0.0)
    short.speed_limits = np.where(short.points[:, 0] < 1.5, 1.0, 0.5)
    fresh = PathFollower(params)
    fresh.set_path(short)
    assert fresh.path_speed_limit(Pose2D(0.2, 0.0, 0.0)) == pytest.approx(1.0)
    assert 0.5 < fresh.path_speed_limit(Pose2D(1.4, 0.0, 0.0)) < 1.0  # braking for the stretch ahead
    assert fresh.path_speed_limit(Pose2D(1.8, 0.0, 0.0)) == pytest.approx(0.5)


def test_path_speed_limits_must_match_the_path():
    path = path_from_polyline([[0.0, 0.0], [2.0, 0.0]], 0.0)
    path.speed_limits = np.ones(3)
    with pytest.raises(FollowerError):
        PathFollower().set_path(path)
    path.speed_limits = np.full(len(path.points), np.nan)
    with pytest.raises(FollowerError):
        PathFollower().set_path(path)


def test_arrival_is_sticky_and_set_path_restarts():
    follower = PathFollower()
    path = path_from_polyline([[0.0, 0.0], [2.0, 0.0]], 0.0)
    follower.set_path(path)
    final, _, states, _ = simulate(follower, Pose2D(0.0, 0.0, 0.0))
    assert states[-1] == ARRIVED
    again = follower.step(Pose2D(final.x + 0.5, final.y, final.yaw), 0.0, 0.0, 0.05)
    assert (again.v, again.w, again.state) == (0.0, 0.0, ARRIVED)
    follower.set_path(path_from_polyline([[final.x, final.y], [final.x + 1.0, final.y]], 0.0))
    assert follower.step(final, 0.0, 0.0, 0.05).state != ARRIVED


def test_pushed_off_goal_while_turning_approaches_again():
    follower = PathFollower()
    follower.set_path(path_from_polyline([[0.0, 0.0], [0.5, 0.0]], math.pi / 2))
    pose = Pose2D(0.5, 0.0, 0.0)
    assert follower.step(pose, 0.0, 0.0, 0.05).state == ROTATING_TO_GOAL
    moved = follower.step(Pose2D(0.3, 0.0, 0.0), 0.0, 0.3, 0.05)
    assert moved.state in (APPROACH, ROTATING_TO_PATH)


def test_degenerate_path_only_turns():
    follower = PathFollower()
    follower.set_path(path_from_polyline([[1.0, 1.0]], 1.0))
    final, cmds, states, _ = simulate(follower, Pose2D(1.0, 1.0, 0.0))
    assert_arrived(final, Pose2D(1.0, 1.0, 1.0), states)
    assert np.all(cmds[:, 0] == 0.0)


def test_bad_inputs():
    follower = PathFollower()
    with pytest.raises(FollowerError):
        follower.step(Pose2D(0.0, 0.0), 0.0, 0.0, 0.05)
    with pytest.raises(FollowerError):
        follower.distance_remaining(Pose2D(0.0, 0.0))
    follower.set_path(l_path())
    for dt in (0.0, -0.05, float("nan")):
        with pytest.raises(FollowerError):
            follower.step(Pose2D(0.0, 0.0), 0.0, 0.0, dt)
    # Garbage feedback never produces a NaN command; a NaN speed limit stops the base.
    cmd = follower.step(Pose2D(0.0, 0.0), float("nan"), float("inf"), 0.05)
    assert math.isfinite(cmd.v) and math.isfinite(cmd.w)
    cmd = follower.step(Pose2D(0.0, 0.0), 0.0, 0.0, 0.05, float("nan"))
    assert cmd.v == 0.0
    with pytest.raises(FollowerError):
        PathFollower(FollowerParams(max_linear_mps=-1.0))
    with pytest.raises(FollowerError):
        follower.set_path(path_from_polyline([[0.0, 0.0], [1.0, 0.0]], 0.0).__class__(
            np.array([[0.0, 0.0], [np.nan, 1.0]]), np.zeros(2), 1.0))
