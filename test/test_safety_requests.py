"""Stop zone, data freshness, JSON request validation and connector pose helpers (no ROS)."""
import math

import numpy as np
import pytest

from mobicharge_robot.core.geometry import Pose2D, invert_transform, make_transform, rot_z, rotation_angle
from mobicharge_robot.core.arm.insertion import (InsertionMonitor, camera_view_tip_pose, seated_tip_pose,
                                             tip_pose_on_axis)
from mobicharge_robot.core.mission.requests import RequestError, parse_session_request
from mobicharge_robot.core.navigation.safety import FreshnessMonitor, StopZone, scan_points


def test_stop_zone_ahead_only_when_driving_forward():
    zone = StopZone(1.0, 0.7, ahead_m=0.3, side_m=0.08)
    obstacle = np.array([[0.7, 0.0]])  # 0.2 m in front of the bumper
    assert zone.points_in_zone(obstacle, 0.5, 0.0) == 1
    assert zone.points_in_zone(obstacle, -0.5, 0.0) == 0
    beside = np.array([[0.0, 0.7]])  # a car 0.35 m beside the robot's side
    assert zone.points_in_zone(beside, 0.5, 0.0) == 0
    assert zone.points_in_zone(beside, 0.0, 0.5) == 0  # turning in place clears it too
    touching = np.array([[-0.3, 0.39]])  # someone stopped 4 cm from the robot's flank
    assert zone.points_in_zone(touching, 0.3, 0.0) == 0  # driving straight away is allowed
    assert zone.points_in_zone(touching, -0.15, 0.0) == 0  # and so is backing out
    assert zone.points_in_zone(touching, 0.0, -0.5) == 1  # turning right swings the rear into them
    assert zone.points_in_zone(np.array([[0.0, 0.34]]), 0.3, 0.0) == 1  # inside the footprint: stop


def test_scan_points_drop_invalid_returns_and_use_mounting_pose():
    pts = scan_points(np.array([1.0, np.nan, np.inf, 0.01]), 0.0, math.pi / 2, Pose2D(0.4, 0.0, 0.0),
                      range_min=0.05, range_max=10.0)
    assert pts.shape == (1, 2)
    assert pts[0] == pytest.approx([1.4, 0.0])


def test_freshness_monitor_and_backwards_clock():
    f = FreshnessMonitor(0.5)
    assert not f.fresh(0.0)
    f.mark(10.0)
    assert f.fresh(10.4)
    assert not f.fresh(10.6)
    f.mark(20.0)
    assert not f.fresh(5.0)  # the clock jumped back: fail safe
    assert not f.fresh(20.1)
    f.mark(30.0)
    assert f.fresh(29.95)  # the scan overtook the clock message: fresh, not a clock jump
    assert f.fresh(30.2)


@pytest.mark.parametrize("text, problem", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"vehicle_id": "a", "target_kwh": 5}', "missing field 'session_id'"),
    ('{"session_id": "s", "vehicle_id": "a", "target_kwh": -5}', "target_kwh must be within"),
    ('{"session_id": "s", "vehicle_id": "a", "target_kwh": "5"}', "must be a number"),
    ('{"session_id": "s", "vehicle_id": "a", "target_kwh": NaN}', "must be finite"),
    ('{"session_id": "s", "vehicle_id": "", "target_kwh": 5}', "non-empty string"),
    ('{"session_id": "s", "vehicle_id": "a", "target_kwh": 5, "x": 1}', "unknown field"),
])
def test_bad_session_requests_are_rejected_with_the_reason(text, problem):
    with pytest.raises(RequestError, match=problem):
        parse_session_request(text)


def test_good_session_request():
    req = parse_session_request('{"session_id": "s1", "vehicle_id": "car_01", "target_kwh": 7.5}')
    assert req.target_kwh == 7.5 and req.vehicle_id == "car_01"


def _inlet():
    return make_transform(rot_z(0.3) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]), (0.2, 0.8, 0.9))


def test_tip_poses_lie_on_the_inlet_axis_facing_it():
    inlet = _inlet()
    stand = tip_pose_on_axis(inlet, 0.10)
    seat = seated_tip_pose(inlet, 0.03)
    rel_stand = invert_transform(inlet) @ stand
    rel_seat = invert_transform(inlet) @ seat
    assert rel_stand[:3, 3] == pytest.approx([0, 0, 0.10])
    assert rel_seat[:3, 3] == pytest.approx([0, 0, -0.03])
    # The tip's insertion axis points into the inlet (along -z of the inlet).
    assert rel_stand[:3, 2] == pytest.approx([0, 0, -1])


def test_camera_view_pose_puts_the_inlet_on_the_optical_axis():
    inlet = _inlet()
    T_tip_cam = make_transform(np.eye(3), (0.0, -0.07, -0.05))
    tip = camera_view_tip_pose(inlet, T_tip_cam, 0.3)
    cam = tip @ T_tip_cam
    inlet_in_cam = invert_transform(cam) @ inlet
    assert inlet_in_cam[:3, 3] == pytest.approx([0, 0, 0.3])
    assert rotation_angle(inlet_in_cam[:3, :3] @ np.diag([1, -1, -1])) < 1e-9


def test_insertion_monitor_verdicts():
    mon = InsertionMonitor(force_limit_n=100.0)
    assert mon.update([0, 0, -30], latched=False, depth_error_m=0.01) == "moving"
    assert mon.update([0, 0, -30], latched=True, depth_error_m=0.005) == "moving"  # partial is never seated
    assert mon.update([0, 0, -30], latched=True, depth_error_m=0.0005) == "seated"
    assert mon.update([0, 0, -120], latched=False, depth_error_m=0.01) == "over_force"
    assert mon.update([float("nan"), 0, 0], latched=False, depth_error_m=0.01) == "over_force"
    assert mon.peak_force_n == pytest.approx(120.0)


def test_turning_zone_sweeps_the_footprint_corners():
    zone = StopZone(1.0, 0.7)
    near_corner = np.array([[0.45, 0.45]])  # just beside the front-left corner
    assert zone.points_in_zone(near_corner, 0.0, 0.5) == 1  # turning left swings the corner into it
    assert zone.points_in_zone(near_corner, 0.0, -0.5) == 0  # turning right swings it away
