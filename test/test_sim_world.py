"""Loopback physics: differential drive limits, lidar ray casting, collision check, connector contact."""
import math

import numpy as np
import pytest

from mobicharge_robot.core.geometry import Pose2D, rect_polygon
from mobicharge_robot.sim.world import BaseLimits, CollisionWorld, DiffDriveBase, Lidar, polygon_edges


def test_drive_respects_acceleration_and_speed_limits():
    base = DiffDriveBase(Pose2D(0, 0, 0), BaseLimits(max_linear_mps=1.0, max_linear_accel=0.5))
    speeds = []
    for _ in range(400):
        base.step(5.0, 0.0, 0.01)
        speeds.append(base.v)
    assert np.all(np.diff(speeds) <= 0.5 * 0.01 + 1e-12)
    assert max(speeds) == pytest.approx(1.0)
    # v(t) = 0.5 t for 2 s, then 1 m/s: distance 1 + 2 = 3 m after 4 s
    assert base.pose.x == pytest.approx(3.0, abs=0.01)
    assert base.distance_m == pytest.approx(base.pose.x)


def test_odometry_is_relative_to_the_start_pose():
    base = DiffDriveBase(Pose2D(10.0, 5.0, math.pi / 2))
    for _ in range(100):
        base.step(1.0, 0.0, 0.01)
    assert base.pose.y > 5.0
    assert base.odom_pose.x == pytest.approx(base.pose.y - 5.0, abs=1e-9)
    assert abs(base.odom_pose.y) < 1e-9


def test_nan_command_stops():
    base = DiffDriveBase(Pose2D(0, 0, 0))
    base.step(float("nan"), float("nan"), 0.1)
    assert base.v == 0.0 and base.w == 0.0


def test_lidar_sees_a_wall_at_the_right_range():
    wall = rect_polygon(Pose2D(5.0, 0.0, 0.0), 0.2, 10.0)  # front face at x = 4.9
    lidar = Lidar(n_rays=360, noise_std_m=0.0)
    ranges = lidar.scan(Pose2D(0, 0, 0), polygon_edges([wall]))
    forward = ranges[180]  # angle_min = -pi, so index 180 is straight ahead
    assert forward == pytest.approx(4.9, abs=1e-6)
    assert math.isinf(ranges[0])  # nothing behind


def test_collision_check_finds_the_touching_obstacle():
    class Ob:
        def __init__(self, id_, poly):
            self.id, self.polygon = id_, poly

    world = CollisionWorld([Ob("car", rect_polygon(Pose2D(2.0, 0.0, 0.0), 1.0, 1.0)),
                            Ob("wall", rect_polygon(Pose2D(0.0, 5.0, 0.0), 10.0, 0.3))])
    assert world.first_collision(Pose2D(0.0, 0.0, 0.0), 1.0, 0.7) is None
    assert world.first_collision(Pose2D(1.0, 0.0, 0.0), 1.0, 0.7) == "car"
    assert world.first_collision(Pose2D(-3.0, 4.6, 0.3), 1.0, 0.7) == "wall"
