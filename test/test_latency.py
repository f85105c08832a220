"""Latency compensation: replaying sent commands predicts where a delayed base will be."""
import math

import pytest

from mobicharge_robot.core.geometry import Pose2D
from mobicharge_robot.core.navigation.latency import CommandHistory, advance


def test_advance_straight_and_arc():
    p = advance(Pose2D(0, 0, 0), 1.0, 0.0, 2.0)
    assert (p.x, p.y) == pytest.approx((2.0, 0.0))
    q = advance(Pose2D(0, 0, 0), math.pi / 2, math.pi / 2, 1.0)  # quarter circle of radius 1
    assert (q.x, q.y, q.yaw) == pytest.approx((1.0, 1.0, math.pi / 2))


def test_fresh_odometry_is_not_changed():
    h = CommandHistory()
    h.record(0.0, 1.0, 0.0)
    pose, v, w = h.predict(Pose2D(1, 2, 0), 0.5, 0.0, t_pose=1.0, now=1.0)
    assert pose == Pose2D(1, 2, 0) and v == 0.5


def test_prediction_replays_commands_shifted_by_the_delay():
    h = CommandHistory()
    h.record(0.0, 0.0, 0.0)
    h.record(0.9, 1.0, 0.0)  # takes effect at 1.0 with a 0.1 s delay
    # Odometry measured at 1.0 (robot still at rest), received at 1.1: predict to 1.2.
    pose, v, _ = h.predict(Pose2D(0, 0, 0), 0.0, 0.0, t_pose=1.0, now=1.1)
    assert v == 1.0
    assert pose.x == pytest.approx(0.2)


def test_stale_or_future_odometry_is_not_extrapolated():
    h = CommandHistory(max_horizon_s=0.3)
    h.record(0.0, 1.0, 0.0)
    assert h.predict(Pose2D(0, 0, 0), 1.0, 0.0, t_pose=0.0, now=5.0)[0] == Pose2D(0, 0, 0)
    assert h.predict(Pose2D(0, 0, 0), 1.0, 0.0, t_pose=2.0, now=1.0)[0] == Pose2D(0, 0, 0)
