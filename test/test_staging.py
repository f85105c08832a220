"""Staging poses: beside the inlet at the set clearance, parallel to the car, and refused when there is no room."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml

from mobicharge_robot.core.garage.garage import load_garage, parse_garage
from mobicharge_robot.core.geometry import Pose2D, convex_polygons_intersect, rect_polygon, wrap_angle
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.core.garage.staging import (FailedToStage, StagingError, inlet_relative_to_robot, polygons_intersect,
                                           staging_pose)

DEFAULT = data_path("config", "garages", "default.yaml")
ROBOT_L, ROBOT_W, CLEARANCE = 1.0, 0.7, 0.35


@pytest.fixture(scope="module")
def garage():
    return load_garage(DEFAULT)


@pytest.fixture(scope="module")
def raw():
    with open(DEFAULT, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _gap(poly_a, poly_b) -> float:
    """Smallest distance between two disjoint convex polygons (vertex-to-edge, both ways)."""
    def vertex_edge(ps, qs):
        best = math.inf
        for p in ps:
            for a, b in zip(qs, np.roll(qs, -1, axis=0)):
                t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
                best = min(best, float(np.linalg.norm(p - (a + t * (b - a)))))
        return best
    return min(vertex_edge(poly_a, poly_b), vertex_edge(poly_b, poly_a))


def test_every_requesting_car_in_the_default_garage_can_be_staged(garage):
    requested = garage.requested_vehicles()
    assert len(requested) >= 4
    for v in requested:
        pose = staging_pose(garage, v, ROBOT_L, ROBOT_W, CLEARANCE)
        T = garage.inlet_pose(v)
        offset = pose.xy - T[:2, 3]
        # Straight out from the inlet along its normal: clearance plus half the robot's width, no sideways offset.
        assert np.dot(offset, T[:2, 2]) == pytest.approx(CLEARANCE + 0.5 * ROBOT_W, abs=1e-9), v.id
        assert np.dot(offset, T[:2, 0]) == pytest.approx(0.0, abs=1e-9), v.id
        assert v.inlet.side in ("left", "right")
        assert pose.yaw == pytest.approx(garage.vehicle_pose(v).yaw, abs=1e-9)
        # Parallel to the car, with exactly the clearance between the robot's side and the body.
        robot = rect_polygon(pose, ROBOT_L, ROBOT_W)
        body = garage.vehicle_polygon(v)
        assert _gap(robot, body) == pytest.approx(CLEARANCE, abs=1e-6), v.id


def test_inlet_relative_to_robot_is_straight_out_of_the_flank(garage):
    for v in garage.requested_vehicles():
        pose = staging_pose(garage, v, ROBOT_L, ROBOT_W)
        T = inlet_relative_to_robot(garage, v, pose)
        # A right-side inlet puts the car on the robot's left (+y), a left-side one on its right (-y).
        sign = 1.0 if v.inlet.side == "right" else -1.0
        assert T[:3, 3] == pytest.approx([0.0, sign * (CLEARANCE + 0.5 * ROBOT_W), v.inlet.height_m], abs=1e-9)
        assert T[:3, 2] == pytest.approx([0.0, -sign, 0.0], abs=1e-9)  # the inlet faces the robot
        assert T[:3, 1] == pytest.approx([0.0, 0.0, 1.0], abs=1e-9)
        assert pose.to_matrix() @ T == pytest.approx(garage.inlet_pose(v), abs=1e-9)


def test_rear_and_front_inlets_yaw_is_normal_plus_quarter_turn(garage):
    for vid in ("car_08", "car_09"):
        v = garage.vehicle(vid)
        pose = staging_pose(garage, v, ROBOT_L, ROBOT_W)
        normal = garage.inlet_pose(v)[:2, 2]
        assert wrap_angle(pose.yaw - math.atan2(normal[1], normal[0]) - 0.5 * math.pi) == pytest.approx(0.0, abs=1e-9)
        T = inlet_relative_to_robot(garage, v, pose)
        assert T[:3, 3] == pytest.approx([0.0, CLEARANCE + 0.5 * ROBOT_W, v.inlet.height_m], abs=1e-9)


def _add_car(raw, spot, vid="blocker"):
    data = copy.deepcopy(raw)
    data["vehicles"].append({"id": vid, "spot": spot, "body_m": {"length": 4.2, "width": 1.8, "height": 1.5},
                             "inlet": {"side": "left", "height_m": 0.9, "from_front_m": 3.7},
                             "battery": {"capacity_kwh": 50, "soc": 0.5, "max_dc_power_kw": 50}})
    return data


def test_car_on_the_inlet_side_blocks_staging(raw):
    g = parse_garage(_add_car(raw, "S02"), "blocked.yaml")  # car_01 in S03 has its inlet on the S02 side
    with pytest.raises(StagingError) as err:
        staging_pose(g, g.vehicle("car_01"), ROBOT_L, ROBOT_W)
    assert isinstance(err.value, FailedToStage)
    assert err.value.vehicle_id == "car_01" and err.value.blocker == "blocker"
    assert "no room beside the right inlet" in err.value.reason and "vehicle 'blocker'" in str(err.value)


def test_car_on_the_other_side_does_not_block(raw):
    g = parse_garage(_add_car(raw, "S04"), "fine.yaml")
    staging_pose(g, g.vehicle("car_01"), ROBOT_L, ROBOT_W)


def test_too_little_clearance_touches_the_served_car(garage):
    with pytest.raises(StagingError) as err:
        staging_pose(garage, garage.vehicle("car_01"), ROBOT_L, ROBOT_W, clearance_m=0.02)
    assert err.value.blocker == "car_01"


def _without_empty_spots(raw):
    """A copy without the spots no car stands in: the validator rejects a pillar or keep-out zone on a spot."""
    data = copy.deepcopy(raw)
    used = {v["spot"] for v in data["vehicles"]}
    data["garage"]["spots"] = [s for s in data["garage"]["spots"] if s["id"] in used]
    return data


def test_pillar_and_keep_out_zone_block(raw, garage):
    pose = staging_pose(garage, garage.vehicle("car_01"), ROBOT_L, ROBOT_W)
    with_pillar = _without_empty_spots(raw)
    with_pillar["garage"]["pillars"].append({"id": "p_new", "center": [pose.x - 0.5, pose.y], "size_m": [0.4, 0.4]})
    g = parse_garage(with_pillar, "pillar.yaml")
    with pytest.raises(StagingError, match="pillar 'p_new'"):
        staging_pose(g, g.vehicle("car_01"), ROBOT_L, ROBOT_W)

    # An L-shaped (non-convex) keep-out zone: blocking when an arm covers the pose, free when the pose is in the
    # notch, although the notch is inside the zone's convex hull.
    def with_zone(points):
        data = _without_empty_spots(raw)
        data["garage"]["zones"].append({"id": "z_l", "kind": "keep_out", "polygon": points})
        return parse_garage(data, "zone.yaml")

    x, y = pose.x, pose.y
    e = 0.28  # the zones end just short of car_01's spot, which begins 0.3 m beyond the pose
    covering = [[x - 2, y - 0.3], [x + e, y - 0.3], [x + e, y + 0.3], [x - 1.5, y + 0.3], [x - 1.5, y + 2],
                [x - 2, y + 2]]
    notch = [[x - 3, y - 3], [x + e, y - 3], [x + e, y - 2.5], [x - 2.5, y - 2.5], [x - 2.5, y + 3], [x - 3, y + 3]]
    g = with_zone([[x - 0.2, y - 0.2], [x + 0.2, y - 0.2], [x + 0.2, y + 0.2], [x - 0.2, y + 0.2]])
    with pytest.raises(StagingError, match="keep-out zone 'z_l'"):
        staging_pose(g, g.vehicle("car_01"), ROBOT_L, ROBOT_W)
    g = with_zone(covering)
    with pytest.raises(StagingError, match="keep-out zone"):
        staging_pose(g, g.vehicle("car_01"), ROBOT_L, ROBOT_W)
    g = with_zone(notch)
    assert staging_pose(g, g.vehicle("car_01"), ROBOT_L, ROBOT_W) == pose


def test_pose_outside_the_garage_is_refused():
    data = {"garage": {"name": "edge", "size_m": [10.0, 10.0], "walls": [], "depot": {"pose": [8, 8, 0],
                                                                                      "dock": [9, 8, 0]},
                       "spots": [{"id": "E1", "center": [1.35, 5.0], "yaw_rad": 1.5708, "size_m": [5.0, 2.6]}]},
            "vehicles": [{"id": "c", "spot": "E1", "body_m": {"length": 4.5, "width": 1.8, "height": 1.5},
                          "inlet": {"side": "left", "height_m": 0.9, "from_front_m": 3.9},
                          "battery": {"capacity_kwh": 60, "soc": 0.3, "max_dc_power_kw": 100},
                          "request": {"energy_kwh": 6, "departure_s": 3600}}]}
    g = parse_garage(data, "edge.yaml")  # the car faces north, so its left side is towards the west edge
    with pytest.raises(StagingError, match="leaves the garage"):
        staging_pose(g, g.vehicle("c"), ROBOT_L, ROBOT_W)


def test_bad_robot_sizes_are_value_errors(garage):
    v = garage.vehicle("car_01")
    for args in ((0.0, ROBOT_W, CLEARANCE), (ROBOT_L, -0.7, CLEARANCE), (ROBOT_L, ROBOT_W, float("nan"))):
        with pytest.raises(ValueError):
            staging_pose(garage, v, *args)


def test_polygons_intersect_handles_non_convex_shapes():
    square = rect_polygon(Pose2D(0.0, 0.0, 0.0), 1.0, 1.0)
    u_shape = np.array([[-3, -3], [3, -3], [3, 3], [2, 3], [2, -2], [-2, -2], [-2, 3], [-3, 3]], float)
    assert not polygons_intersect(square, u_shape)          # in the U's mouth
    assert convex_polygons_intersect(square, u_shape)       # (the convex test cannot tell)
    assert polygons_intersect(rect_polygon(Pose2D(0.0, -2.2, 0.0), 1.0, 1.0), u_shape)  # across the bottom edge
    assert polygons_intersect(square, rect_polygon(Pose2D(0.0, 0.0, 0.3), 0.2, 0.2))   # one inside the other
    assert polygons_intersect(square, rect_polygon(Pose2D(1.0, 0.0, 0.0), 1.0, 1.0))   # touching edges
    assert not polygons_intersect(square, rect_polygon(Pose2D(1.5, 1.5, 0.0), 1.0, 0.5))
