"""The simulator's true world: drawn within each profile's ranges, reproducible per seed, never impossible by
construction, and the odometry of a base with true wheel errors drifts as a real one does."""
import math

import numpy as np
import pytest

from mobicharge_robot.core.garage import load_garage, staging_pose
from mobicharge_robot.core.geometry import Pose2D, convex_polygons_intersect, rect_polygon, wrap_angle
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.sim.variation import (CATALOGUE, PROFILES, Mover, MoverState, VariationError, draw_world,
                                            true_inlet_pose)
from mobicharge_robot.sim.world import DiffDriveBase

GARAGE = load_garage(data_path("config", "garages", "default.yaml"))
FOOTPRINT = (1.2, 0.8)


def staging_areas():
    out = []
    for v in GARAGE.requested_vehicles():
        pose = staging_pose(GARAGE, v, *FOOTPRINT)
        out.append(rect_polygon(pose, FOOTPRINT[0] + 1.0, FOOTPRINT[1] + 1.0))
    return out


def test_none_is_the_garage_file():
    w = draw_world(GARAGE, 7, "none", FOOTPRINT, staging_areas())
    assert [c.vehicle for c in w.cars] == list(GARAGE.vehicles)
    for c in w.cars:
        assert c.pose == GARAGE.vehicle_pose(c.vehicle)
        np.testing.assert_allclose(true_inlet_pose(c), GARAGE.inlet_pose(c.vehicle), atol=1e-12)
    assert not w.objects and not w.movers
    assert w.plant.pack_capacity_scale == 1.0 and w.plant.pack_start_soc_offset == 0.0
    assert w.odometry.left_radius_err == 0.0 and w.sensors.latency_max_s == 0.0


def test_same_seed_same_world_other_seed_other_world():
    a = draw_world(GARAGE, 11, "nominal", FOOTPRINT, staging_areas()).to_dict()
    b = draw_world(GARAGE, 11, "nominal", FOOTPRINT, staging_areas()).to_dict()
    c = draw_world(GARAGE, 12, "nominal", FOOTPRINT, staging_areas()).to_dict()
    assert a == b
    assert a != c


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(VariationError, match="unknown variation profile 'wild'"):
        draw_world(GARAGE, 1, "wild")


@pytest.mark.parametrize("profile", ["nominal", "hard"])
def test_drawn_values_stay_within_the_profile(profile):
    pr = PROFILES[profile]
    areas = staging_areas()
    seen = {"unlisted": 0, "objects": 0, "people": 0, "offset": 0.0}
    lengths = {m.length for m in CATALOGUE}
    for seed in range(60):
        w = draw_world(GARAGE, seed, profile, FOOTPRINT, areas)
        listed = [c for c in w.cars if c.listed]
        assert len(listed) == len(GARAGE.vehicles)
        for c in listed:
            spot = GARAGE.spot(c.vehicle.spot)
            rel = spot.pose.inverse().compose(c.pose)
            assert abs(rel.x) <= pr.car_lon_m + 1e-9 and abs(rel.y) <= pr.car_lat_m + 1e-9
            assert abs(math.degrees(wrap_angle(rel.yaw))) <= pr.car_yaw_deg + 1e-9
            seen["offset"] = max(seen["offset"], abs(rel.y))
            assert 3.6 <= c.vehicle.length_m <= 5.25
            assert c.vehicle.inlet.side == GARAGE.vehicle(c.vehicle.id).inlet.side
            assert c.vehicle.inlet.type == GARAGE.vehicle(c.vehicle.id).inlet.type
        unlisted = [c for c in w.cars if not c.listed]
        assert len(unlisted) <= pr.unlisted_cars_max and len(w.objects) <= pr.lane_objects_max
        people = [m for m in w.movers if m.kind == "pedestrian"]
        assert len(people) <= pr.pedestrians_max
        assert all(0.8 <= m.speed_mps <= 1.5 for m in people)
        seen["unlisted"] += len(unlisted)
        seen["objects"] += len(w.objects)
        seen["people"] += len(people)
        for c in unlisted:
            assert c.vehicle.length_m in lengths
            assert c.vehicle.spot not in {v.spot for v in GARAGE.vehicles}
            body = rect_polygon(c.pose, c.vehicle.length_m, c.vehicle.width_m)
            assert not any(convex_polygons_intersect(body, a) for a in areas), "a car in a staging area"
        for o in w.objects:
            assert not any(convex_polygons_intersect(o.polygon, a) for a in areas)
            assert not any(convex_polygons_intersect(o.polygon, s.polygon) for s in GARAGE.static_obstacles())
        p = w.plant
        assert abs(p.pack_capacity_scale - 1) <= pr.pack_capacity_pct / 100 + 1e-12
        assert abs(p.pack_resistance_scale - 1) <= pr.pack_resistance_pct / 100 + 1e-12
        assert abs(p.pack_start_soc_offset) <= pr.pack_start_soc_pct / 100 + 1e-12
        assert abs(p.dc_efficiency - 0.96) <= pr.dc_efficiency_pct / 100 + 1e-12
        assert abs(w.odometry.track_err) <= pr.track_pct / 100 + 1e-12
        assert all(abs(k - 1) <= pr.camera_k_pct / 100 + 1e-12 for k in w.sensors.camera_k_scale)
        assert all(abs(x) <= pr.camera_mount_mm / 1000 + 1e-12 for x in w.sensors.camera_mount_xyz_m)
    # The profile really varies the world: over 60 seeds each kind of surprise shows up.
    assert seen["unlisted"] > 0 and seen["objects"] > 0 and seen["people"] > 0
    assert seen["offset"] > 0.5 * pr.car_lat_m


def test_pedestrian_walks_back_and_forth_and_yields():
    m = Mover("p", "pedestrian", ((0.0, 0.0), (10.0, 0.0)), 1.0, 5.0, 2.0, False)
    st = MoverState(m)
    assert st.pose(1.0) is None  # not there before its start
    t = 5.0
    for _ in range(50):  # 5 s at 0.1 s steps
        st.advance(t, 0.1, blocked=False)
        t += 0.1
    x, y, heading = st.pose(t)
    assert x == pytest.approx(5.0, abs=0.11) and heading == pytest.approx(0.0)
    st.advance(t, 5.0, blocked=True)  # the robot is in the way: it waits
    assert st.pose(t)[0] == pytest.approx(x)
    st.travelled_m = 15.0  # on the way back
    x2, _, heading2 = st.pose(t)
    assert x2 == pytest.approx(5.0) and abs(heading2) == pytest.approx(math.pi)


def test_leaving_car_vanishes_at_the_end_of_its_route():
    m = Mover("leaving_x", "car", ((0.0, 0.0), (0.0, 5.0), (20.0, 5.0)), 1.5, 0.0, 0.0, True, length_m=4.5,
              width_m=1.8)
    assert m.at_distance(24.9) is not None
    assert m.at_distance(25.1) is None
    assert m.polygon(0.0, 0.0, 0.0).shape == (4, 2)


def drive(base, v, w, seconds, dt=0.02):
    for _ in range(int(round(seconds / dt))):
        base.step(v, w, dt)


def test_exact_wheels_give_exact_odometry():
    start = Pose2D(5.0, 5.0, 0.3)
    base = DiffDriveBase(start, track_m=0.5)
    drive(base, 1.0, 0.2, 20.0)
    believed = start.compose(base.odom_pose)
    assert math.hypot(believed.x - base.pose.x, believed.y - base.pose.y) < 1e-9


def test_wheel_errors_make_odometry_drift_by_about_their_size():
    start = Pose2D(0.0, 0.0, 0.0)
    rng = np.random.default_rng(3)
    base = DiffDriveBase(start, track_m=0.5, left_radius_err=0.01, right_radius_err=0.01, track_err=0.02,
                         slip_sigma=0.005, rng=rng)
    drive(base, 1.0, 0.0, 100.0)  # 100 m straight
    believed = start.compose(base.odom_pose)
    err = math.hypot(believed.x - base.pose.x, believed.y - base.pose.y)
    assert 0.5 < err < 3.0  # about 1 % of the distance driven
    assert base.distance_m == pytest.approx(101.0, rel=0.01)
