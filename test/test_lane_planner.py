"""Lane planner: follows lanes, honours one-way lanes, never cuts through parking spots, clears the footprint, typed
failures, speed limits; property-based over random garages."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobicharge_robot.core.garage.garage import load_garage, parse_garage
from mobicharge_robot.core.garage.staging import StagingError, staging_pose
from mobicharge_robot.core.geometry import Pose2D, convex_polygons_intersect, rect_polygon
from mobicharge_robot.core.navigation.lane_planner import LanePlanner
from mobicharge_robot.core.navigation.lanes import LaneRules
from mobicharge_robot.core.navigation.occupancy import occupancy_from_garage
from mobicharge_robot.core.navigation.planner import (GoalOccupied, GoalOutsideMap, InvalidPose, NoValidPath,
                                                      PlannerTimeout, StartOccupied, StartOutsideMap)
from mobicharge_robot.core.paths import data_path

FOOTPRINT = (1.0, 0.7)
CAR = {"length": 4.3, "width": 1.8, "height": 1.5}


def _car(cid, spot, side="right", **extra):
    inlet = {"type": "ccs2", "side": side, "height_m": 0.9}
    if side in ("left", "right"):
        inlet["from_front_m"] = extra.get("from_front_m", 3.6)
    else:
        inlet["lateral_m"] = extra.get("lateral_m", 0.0)
    return {"id": cid, "spot": spot, "body_m": dict(CAR), "inlet": inlet,
            "battery": {"capacity_kwh": 60.0, "soc": 0.5, "max_dc_power_kw": 100.0}}


def random_garage(seed: int) -> dict:
    """A 40 m x 24 m level: a row of spots against the south wall, lane A, a row in the middle, lane B, cross lanes
    at both ends; lanes A and B randomly one-way (never both the same way, which would leave no way back) or two-way;
    random cars and inlet sides."""
    rng = np.random.default_rng(seed)
    sx, sy, t = 40.0, 24.0, 0.3
    cross = 7.0
    walls = [{"id": "s", "start": [0, t / 2], "end": [sx, t / 2], "thickness_m": t},
             {"id": "n", "start": [0, sy - t / 2], "end": [sx, sy - t / 2], "thickness_m": t},
             {"id": "w", "start": [t / 2, 0], "end": [t / 2, sy], "thickness_m": t},
             {"id": "e", "start": [sx - t / 2, 0], "end": [sx - t / 2, sy], "thickness_m": t}]
    lanes = [{"id": "cw", "start": [t + cross / 2, t], "end": [t + cross / 2, sy - t], "width_m": cross},
             {"id": "ce", "start": [sx - t - cross / 2, t], "end": [sx - t - cross / 2, sy - t], "width_m": cross}]
    kinds = [str(rng.choice(["two_way", "one_way", "one_way_rev"])) for _ in range(2)]
    if kinds[0] == kinds[1] != "two_way":
        kinds[1] = "one_way" if kinds[0] == "one_way_rev" else "one_way_rev"  # a circulation, not a dead end
    for (lid, y0), kind in zip((("a", 5.3), ("b", 16.8)), kinds):
        a, b = [t, y0 + 3.25], [sx - t, y0 + 3.25]
        if kind == "one_way_rev":
            a, b = b, a
        lanes.append({"id": lid, "start": a, "end": b, "width_m": 6.5,
                      "direction": "two_way" if kind == "two_way" else "one_way"})
    spots, cars = [], []
    x0 = t + cross
    for row, (cy, yaw) in enumerate(((t + 2.5, -math.pi / 2), (11.8 + 2.5, math.pi / 2))):
        for i in range(9):
            sid = f"P{row}{i}"
            spots.append({"id": sid, "center": [x0 + (i + 0.5) * 2.7, cy], "yaw_rad": yaw, "size_m": [5.0, 2.7]})
            if rng.random() < 0.5:
                side = str(rng.choice(["left", "right", "rear"]))
                cars.append(_car(f"c{row}{i}", sid, side, lateral_m=0.2))
    return {"garage": {"name": f"random_{seed}", "size_m": [sx, sy], "walls": walls, "lanes": lanes, "spots": spots,
                       "depot": {"pose": [4.0, 8.55, 0.0], "dock": [1.2, 8.55, math.pi]}},
            "vehicles": cars}


def _planner(data):
    garage = parse_garage(data, "test")
    grid = occupancy_from_garage(garage, 0.05)
    return garage, LanePlanner(grid, garage, FOOTPRINT, timeout_s=30.0)


# ---------------------------------------------------------------------- invariants used by the tests
def _headings(path):
    return list(path.yaws)


def _footprints(path):
    for (x, y), yaw in zip(path.points, _headings(path)):
        yield rect_polygon(Pose2D(float(x), float(y), float(yaw)), *FOOTPRINT)


def _shrink(poly, d):
    c = poly.mean(axis=0)
    return c + (poly - c) * (1.0 - d / np.linalg.norm(poly - c, axis=1, keepdims=True))


def assert_rules_kept(garage, planner: LanePlanner, path, start: Pose2D, goal: Pose2D):
    rules: LaneRules = planner.rules
    mine = set(rules.area_spots(start)) | set(rules.area_spots(goal))
    forbidden = [_shrink(np.asarray(s.polygon), 0.01) for i, s in enumerate(garage.spots) if i not in mine]
    obstacles = [o.polygon for o in garage.static_obstacles()]
    sx, sy = garage.size_m
    fps = list(_footprints(path))
    lo = np.array([fp.min(axis=0) for fp in fps])
    hi = np.array([fp.max(axis=0) for fp in fps])
    assert lo.min() >= 0.0 and hi[:, 0].max() <= sx and hi[:, 1].max() <= sy
    for what, polys in (("enters a parking spot", forbidden),
                        ("touches an obstacle", [_shrink(np.asarray(p), 0.01) for p in obstacles])):
        for poly in polys:
            plo, phi = poly.min(axis=0), poly.max(axis=0)
            near = np.flatnonzero(np.all(lo <= phi, axis=1) & np.all(hi >= plo, axis=1))  # bounding boxes overlap
            for k in near:
                assert not convex_polygons_intersect(fps[k], poly), f"point {k} {path.points[k]}: footprint {what}"
    # Never against a one-way lane: a step counts when it is well inside a one-way lane going the other way and
    # not near any lane that allows it (within a grid cell of a boundary the rasterised rules may differ).
    pts = path.points
    for a, b in zip(pts, pts[1:]):
        d = b - a
        n = float(np.hypot(*d))
        if n < 1e-9:
            continue
        d /= n
        against = [ln for ln in rules.lanes if ln.one_way and np.dot(d, ln.direction) < -1e-6
                   and _inside_by(ln, a, 0.1)]
        allows = [ln for ln in rules.lanes if (not ln.one_way or np.dot(d, ln.direction) >= -1e-6)
                  and _inside_by(ln, a, -0.1)]
        assert not (against and not allows), f"step at {a} goes against one-way lane {against[0].id}"


def _inside_by(lane, p, margin):
    """Whether p lies in the lane rectangle shrunk by ``margin`` (grown when negative)."""
    a = np.asarray(lane.start)
    d = np.asarray(lane.direction)
    rel = np.asarray(p) - a
    along = rel @ d
    across = abs(rel[0] * -d[1] + rel[1] * d[0])
    length = math.hypot(lane.end[0] - lane.start[0], lane.end[1] - lane.start[1])
    return margin <= along <= length - margin and across <= 0.5 * lane.width_m - margin


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def default():
    garage = load_garage(data_path("config", "garages", "default.yaml"))
    grid = occupancy_from_garage(garage, 0.05)
    return garage, LanePlanner(grid, garage, FOOTPRINT, timeout_s=30.0)


def _loop_garage(one_way_a: str, one_way_b: str, cars=()):
    data = random_garage(0)
    for ln in data["garage"]["lanes"]:
        if ln["id"] in ("a", "b"):
            kind = one_way_a if ln["id"] == "a" else one_way_b
            y = ln["start"][1]
            ln["start"], ln["end"] = ([0.3, y], [39.7, y]) if kind != "west" else ([39.7, y], [0.3, y])
            ln["direction"] = "two_way" if kind == "two_way" else "one_way"
    data["vehicles"] = list(cars)
    return data


# ---------------------------------------------------------------------- unit tests
def test_staging_poses_of_the_default_garage_are_reached_by_the_rules(default):
    garage, planner = default
    depot = garage.depot.pose
    reached = 0
    for v in garage.requested_vehicles():
        goal = staging_pose(garage, v, *FOOTPRINT)
        for s, g in ((depot, goal), (goal, depot)):
            path = planner.plan(s, g)
            np.testing.assert_allclose(path.points[0], s.xy, atol=1e-9)
            np.testing.assert_allclose(path.points[-1], g.xy, atol=1e-9)
            assert path.yaws[-1] == pytest.approx(g.yaw)
            assert_rules_kept(garage, planner, path, s, g)
            reached += 1
        # Arrives along the goal heading: the final approach is straight.
        path = planner.plan(depot, goal)
        tail = path.points[-10:]
        d = tail[-1] - tail[0]
        assert abs(math.atan2(d[1], d[0]) - goal.yaw) % (2 * math.pi) < 0.05 or \
            abs(abs(math.atan2(d[1], d[0]) - goal.yaw) - 2 * math.pi) < 0.05
    assert reached == 2 * len(garage.requested_vehicles())


def test_empty_spots_are_not_shortcuts():
    # Goal in lane B straight above a start in lane A: the way through the (empty) middle row is 6.5 m, the legal
    # one goes round through a cross lane.
    garage, planner = _planner(_loop_garage("two_way", "two_way"))
    start, goal = Pose2D(20.0, 8.55, math.pi / 2), Pose2D(20.0, 20.05, math.pi / 2)
    path = planner.plan(start, goal)
    assert path.length_m > 2.0 * 11.5
    assert_rules_kept(garage, planner, path, start, goal)
    # The middle row's spots are never entered.
    rows = path.points[(path.points[:, 0] > 7.3) & (path.points[:, 0] < 31.6)]
    assert not np.any((rows[:, 1] > 11.8) & (rows[:, 1] < 16.8))


def test_one_way_lane_is_driven_only_its_way():
    garage, planner = _planner(_loop_garage("east", "west"))
    # Going west in lane A (one-way east) means going round the loop: up a cross lane, west along lane B.
    start, goal = Pose2D(25.0, 8.55, math.pi), Pose2D(15.0, 8.55, math.pi)
    path = planner.plan(start, goal)
    assert path.length_m > 30.0
    assert path.points[:, 1].max() > 16.8  # through lane B
    assert_rules_kept(garage, planner, path, start, goal)
    # The other way round is a straight drive along lane A.
    path = planner.plan(Pose2D(15.0, 8.55, 0.0), Pose2D(25.0, 8.55, 0.0))
    assert path.length_m == pytest.approx(10.0, abs=0.05)


def test_crossing_a_one_way_lane_is_allowed():
    garage, planner = _planner(_loop_garage("east", "east"))
    # From the west cross lane to the east one: crossing lanes A and B is fine whatever their direction.
    start, goal = Pose2D(3.8, 2.5, math.pi / 2), Pose2D(36.2, 21.5, math.pi / 2)
    path = planner.plan(start, goal)
    assert_rules_kept(garage, planner, path, start, goal)


def test_typed_failures(default):
    garage, planner = default
    depot = garage.depot.pose
    with pytest.raises(GoalOutsideMap):
        planner.plan(depot, Pose2D(-5.0, 3.0, 0.0))
    with pytest.raises(StartOutsideMap):
        planner.plan(Pose2D(70.0, 3.0, 0.0), depot)
    car = garage.vehicles[0]
    with pytest.raises(GoalOccupied):
        planner.plan(depot, garage.vehicle_pose(car))
    with pytest.raises(StartOccupied):
        planner.plan(garage.vehicle_pose(car), depot)
    with pytest.raises(GoalOccupied):  # the footprint would overlap the car beside it
        planner.plan(depot, Pose2D(garage.vehicle_pose(car).x + 1.3, 2.8, math.pi / 2))
    with pytest.raises(InvalidPose):
        planner.plan(depot, type("P", (), {"x": float("nan"), "y": 1.0, "yaw": 0.0})())
    with pytest.raises(NoValidPath):  # behind the north row's wall: free, but no lane leads there
        planner.plan(depot, Pose2D(30.0, 37.0, 0.0))
    slow = LanePlanner(planner.grid, garage, FOOTPRINT, timeout_s=1e-6)
    with pytest.raises(PlannerTimeout):
        slow.plan(depot, staging_pose(garage, garage.vehicles[0], *FOOTPRINT))


def test_error_codes_are_nav2_style(default):
    garage, planner = default
    try:
        planner.plan(garage.depot.pose, Pose2D(-1.0, -1.0, 0.0))
    except GoalOutsideMap as exc:
        assert exc.code == "GOAL_OUTSIDE_MAP"


def test_speed_limits(default):
    garage, planner = default
    goal = staging_pose(garage, garage.vehicles[0], *FOOTPRINT)
    path = planner.plan(garage.depot.pose, goal)
    v = path.speed_limits
    assert v.shape == (len(path.points),)
    assert v.max() <= 1.0 + 1e-9
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path.points, axis=0).T))])
    assert np.all(v[arc >= arc[-1] - 1.0] <= 0.15 + 1e-9)  # the final approach
    # Inside the staging spot and right beside the parked cars: at most 0.5 m/s.
    near = [i for i, p in enumerate(path.points) if p[1] < 5.3]
    assert near and np.all(v[near] <= 0.5 + 1e-9)
    # The depot's speed zone (0.5 m/s) holds on the path too.
    in_zone = (path.points[:, 0] < 9.0) & (path.points[:, 1] > 21.0)
    assert in_zone.any() and np.all(v[in_zone] <= 0.5 + 1e-9)
    # Open lane far from cars: full speed somewhere.
    assert v.max() == pytest.approx(1.0)


def test_footprint_not_a_disc_fits_the_staging_gap():
    # A staging pose 0.35 m from a car: the oriented footprint fits, a disc of the circumscribed radius would not.
    data = random_garage(3)
    data["vehicles"] = [_car("c", "P03", "right")]
    garage, planner = _planner(data)
    goal = staging_pose(garage, garage.vehicles[0], *FOOTPRINT)
    path = planner.plan(Pose2D(4.0, 8.55, 0.0), goal)
    assert_rules_kept(garage, planner, path, Pose2D(4.0, 8.55, 0.0), goal)


def test_garage_without_lanes_is_one_big_lane():
    data = random_garage(1)
    data["garage"]["lanes"] = []
    data["vehicles"] = []
    garage, planner = _planner(data)
    start, goal = Pose2D(4.0, 8.55, 0.0), Pose2D(36.0, 20.0, 0.0)
    path = planner.plan(start, goal)
    assert_rules_kept(garage, planner, path, start, goal)


def test_bad_construction_arguments(default):
    garage, planner = default
    with pytest.raises(ValueError):
        LanePlanner(planner.grid, garage, (0.0, 0.7))
    with pytest.raises(ValueError):
        LanePlanner(planner.grid, garage, FOOTPRINT, inflation_margin_m=-1.0)


# ---------------------------------------------------------------------- property-based
def _lane_pose(planner, rng):
    ok = planner._field_lane >= planner.track_clearance_m
    rows, cols = np.nonzero(ok)
    i = int(rng.integers(len(rows)))
    x, y = planner.grid.cell_to_world(int(rows[i]), int(cols[i]))
    lanes = [ln for ln in planner.rules.lanes if ln.contains((x, y))]
    ln = lanes[int(rng.integers(len(lanes)))]
    return Pose2D(x, y, math.atan2(ln.direction[1], ln.direction[0]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_random_garages_keep_every_rule(seed):
    data = random_garage(seed)
    garage, planner = _planner(data)
    rng = np.random.default_rng(seed)
    stagings = []
    for v in garage.vehicles:
        try:
            stagings.append(staging_pose(garage, v, *FOOTPRINT))
        except StagingError:
            continue
    lane_lane_ok = 0
    for _ in range(6):
        start = _lane_pose(planner, rng)
        goal = stagings[int(rng.integers(len(stagings)))] if (stagings and rng.random() < 0.6) else \
            _lane_pose(planner, rng)
        try:
            path = planner.plan(start, goal)
        except NoValidPath:
            # Allowed only for a staging goal (some cannot be entered by a robot that drives forwards): two lane
            # positions with room to turn are always connected in these garages.
            assert goal in stagings
            continue
        assert_rules_kept(garage, planner, path, start, goal)
        np.testing.assert_allclose(path.points[-1], goal.xy, atol=1e-9)
        if goal not in stagings:
            lane_lane_ok += 1
        # And back out again.
        try:
            back = planner.plan(goal, start)
        except NoValidPath:
            assert goal in stagings
            continue
        assert_rules_kept(garage, planner, back, goal, start)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shape=st.sampled_from(["rect", "L", "T"]))
def test_generated_garages_keep_every_rule(seed, shape):
    """Levels from the project's generator (angled rows, one-way circuits, L and T outlines): every path found keeps
    the rules, lane positions are always joined, and most requesting cars can be staged."""
    from mobicharge_robot.core.garage.generator import generate_garage

    garage = parse_garage(generate_garage(seed, shape=shape, spots=30), "generated")
    planner = LanePlanner(occupancy_from_garage(garage, 0.05), garage, FOOTPRINT, timeout_s=30.0)
    rng = np.random.default_rng(seed)
    depot = garage.depot.pose
    for _ in range(3):
        a, b = _lane_pose(planner, rng), _lane_pose(planner, rng)
        path = planner.plan(a, b)
        assert_rules_kept(garage, planner, path, a, b)
    staged = 0
    for v in garage.requested_vehicles():
        goal = staging_pose(garage, v, *FOOTPRINT)
        try:
            path = planner.plan(depot, goal)
        except NoValidPath:
            continue  # e.g. a staging pose a few centimetres from a wall: refused, not driven into
        assert_rules_kept(garage, planner, path, depot, goal)
        staged += 1
    assert staged >= 0.5 * len(garage.requested_vehicles())
