"""Local costmap (unknown obstacles, static vs moving, clearing), the car outline fit, and the scan-safety helpers."""
import math

import numpy as np
import pytest

from mobicharge_robot.core.geometry import Pose2D, rect_polygon
from mobicharge_robot.core.navigation.car_fit import fit_car, outline_distance
from mobicharge_robot.core.navigation.local_costmap import LocalCostmap, path_blocked, stamp_obstacles
from mobicharge_robot.core.navigation.occupancy import from_polygons
from mobicharge_robot.core.navigation.safety import FreshnessMonitor, footprint_clearance
from mobicharge_robot.sim.world import Lidar, polygon_edges

LIDAR = Lidar(noise_std_m=0.0)


def _grid():
    # A 20 m x 10 m room with a listed box at (15, 5).
    walls = [rect_polygon(Pose2D(10.0, 0.1, 0.0), 20.0, 0.2), rect_polygon(Pose2D(10.0, 9.9, 0.0), 20.0, 0.2),
             rect_polygon(Pose2D(0.1, 5.0, 0.0), 0.2, 10.0), rect_polygon(Pose2D(19.9, 5.0, 0.0), 0.2, 10.0),
             rect_polygon(Pose2D(15.0, 5.0, 0.0), 1.0, 1.0)]
    return walls, from_polygons((20.0, 10.0), 0.05, walls)


def _scan(polys, sensor):
    ranges = LIDAR.scan(sensor, polygon_edges(polys))
    angles = LIDAR.angle_min + LIDAR.angle_increment * np.arange(LIDAR.n_rays)
    return angles, ranges


def test_unknown_static_obstacle_becomes_static_and_listed_ones_are_ignored():
    walls, grid = _grid()
    cm = LocalCostmap(grid)
    box = rect_polygon(Pose2D(6.0, 5.0, 0.0), 0.6, 0.6)
    sensor = Pose2D(3.0, 5.0, 0.0)
    for k in range(35):
        cm.update(sensor, *_scan(walls + [box], sensor), t=0.1 * k)
    assert len(cm.static_points(2.0)) == 0  # not yet: it may be a person pausing
    static = cm.static_points(3.4)
    assert len(static) > 0
    assert np.all(np.abs(static[:, 0] - 6.0) < 0.45) and np.all(np.abs(static[:, 1] - 5.0) < 0.45)
    assert len(cm.moving_points(3.4)) == 0
    xs = np.linspace(4.0, 8.0, 81)  # paths are sampled every 0.05 m
    assert path_blocked(np.stack([xs, np.full(81, 5.0)], axis=1), static, 0.5)
    assert not path_blocked(np.stack([xs, np.full(81, 8.0)], axis=1), static, 0.5)


def test_a_walking_person_stays_moving_and_is_cleared_behind():
    walls, grid = _grid()
    cm = LocalCostmap(grid)
    sensor = Pose2D(3.0, 5.0, 0.0)
    for k in range(30):
        person = rect_polygon(Pose2D(7.0, 1.0 + 0.25 * k, 0.0), 0.4, 0.4)  # crossing at 2.5 m/s (10 Hz)
        cm.update(sensor, *_scan(walls + [person], sensor), t=0.1 * k)
    t = 2.9
    moving = cm.moving_points(t)
    assert len(moving) > 0 and len(cm.static_points(t)) == 0
    assert np.all(moving[:, 1] > 7.0)  # where the person is now, not the trail


def test_a_removed_obstacle_is_cleared_by_beams_passing_through():
    walls, grid = _grid()
    cm = LocalCostmap(grid)
    sensor = Pose2D(3.0, 5.0, 0.0)
    box = rect_polygon(Pose2D(6.0, 5.0, 0.0), 0.6, 0.6)
    for k in range(5):
        cm.update(sensor, *_scan(walls + [box], sensor), t=0.1 * k)
    cm.update(sensor, *_scan(walls, sensor), t=0.6)
    assert len(cm.moving_points(0.6)) == 0 and len(cm.static_points(0.6)) == 0


def test_stamp_obstacles_marks_a_disc():
    _, grid = _grid()
    out = stamp_obstacles(grid, np.array([[5.0, 5.0]]), radius_m=0.2)
    assert out.is_occupied(5.0, 5.0) and out.is_occupied(5.15, 5.0) and not out.is_occupied(5.3, 5.0)
    assert not grid.is_occupied(5.0, 5.0)


@pytest.mark.parametrize("shift", [(0.25, -0.15, 0.04), (-0.3, 0.2, -0.05), (0.0, 0.0, 0.0)])
def test_car_fit_recovers_the_true_pose_from_two_visible_sides(shift):
    expected = Pose2D(10.0, 5.0, math.pi / 2)
    true = Pose2D(expected.x + shift[0], expected.y + shift[1], expected.yaw + shift[2])
    rng = np.random.default_rng(1)
    lidar = Lidar(noise_std_m=0.01)
    sensor = Pose2D(12.5, 1.5, 2.0)  # beside and behind the car: its side and rear are seen
    ranges = lidar.scan(sensor, polygon_edges([rect_polygon(true, 4.5, 1.8)]), rng)
    ang = sensor.yaw + lidar.angle_min + lidar.angle_increment * np.arange(lidar.n_rays)
    ok = np.isfinite(ranges)
    pts = np.stack([sensor.x + ranges[ok] * np.cos(ang[ok]), sensor.y + ranges[ok] * np.sin(ang[ok])], axis=1)
    pts = np.vstack([pts, [[13.0, 9.0], [6.0, 1.0]]])  # stray returns
    fit = fit_car(pts, expected, 4.5, 1.8)
    assert fit is not None
    assert fit.pose.distance_to(true) < 0.02
    assert abs(fit.pose.yaw - true.yaw) < math.radians(0.7)


def test_car_fit_declines_without_support():
    assert fit_car(np.zeros((3, 2)), Pose2D(0.0, 0.0, 0.0), 4.5, 1.8) is None
    far = np.random.default_rng(0).uniform(20.0, 30.0, (50, 2))
    assert fit_car(far, Pose2D(0.0, 0.0, 0.0), 4.5, 1.8) is None


def test_outline_distance():
    d = outline_distance(np.array([[0.0, 0.0], [3.0, 0.0], [2.0, 1.0], [2.25, 0.9]]), 4.5, 1.8)
    assert d == pytest.approx([0.9, 0.75, 0.1, 0.0])


def test_footprint_clearance():
    pts = np.array([[1.0, 0.0], [0.0, 0.55], [-0.5, -0.35]])
    assert footprint_clearance(pts, 1.0, 0.7) == pytest.approx(0.0)
    assert footprint_clearance(pts[:2], 1.0, 0.7) == pytest.approx(0.2)
    assert footprint_clearance(np.zeros((0, 2)), 1.0, 0.7) == math.inf


def test_freshness_goes_stale_when_the_stamps_stall_on_the_steady_clock():
    f = FreshnessMonitor(0.5, max_steady_age_s=1.0)
    f.mark(10.0, steady_now=100.0)
    assert f.fresh(10.1, steady_now=100.5)
    f.mark(10.0, steady_now=101.0)  # the same stamp again: the source's clock stalled
    assert not f.fresh(10.1, steady_now=101.5)
    f.mark(10.2, steady_now=101.6)
    assert f.fresh(10.3, steady_now=101.7)


def test_car_fit_with_size_carries_a_staging_pose_onto_a_longer_wider_car():
    expected = Pose2D(10.0, 5.0, 0.0)
    true = Pose2D(10.1, 5.15, 0.03)
    rng = np.random.default_rng(2)
    lidar = Lidar(noise_std_m=0.01)
    body = (4.8, 1.95)  # the file says 4.5 x 1.8
    pts = []
    for sensor in (Pose2D(11.5, 7.4, -2.0), Pose2D(8.0, 7.4, -1.2), Pose2D(14.0, 6.5, -2.5)):  # left side, front
        ranges = lidar.scan(sensor, polygon_edges([rect_polygon(true, *body)]), rng)
        ang = sensor.yaw + lidar.angle_min + lidar.angle_increment * np.arange(lidar.n_rays)
        ok = np.isfinite(ranges)
        pts.append(np.stack([sensor.x + ranges[ok] * np.cos(ang[ok]), sensor.y + ranges[ok] * np.sin(ang[ok])], 1))
    fit = fit_car(np.vstack(pts), expected, 4.5, 1.8, fit_size=True)
    assert fit is not None
    staging_in_car = Pose2D(1.0, 0.9 + 0.35 + 0.35, 0.0)  # 1 m behind the front axle line, 0.35 m off the left side
    carried = fit.carry(staging_in_car, 4.5, 1.8)
    want = true.compose(Pose2D(1.0 + 0.15, 0.975 + 0.7, 0.0))  # same gap to the side, same distance to the front
    assert carried.distance_to(want) < 0.03, (fit, carried, want)
