"""Global planner: typed failures, clearance from obstacles, near-straight paths in open space, the final approach."""
from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from mobicharge_robot.core.geometry import Pose2D, rect_polygon, segment_rect_polygon
from mobicharge_robot.core.navigation.occupancy import from_polygons
from mobicharge_robot.core.navigation.planner import (GoalOccupied, GoalOutsideMap, GridPlanner, InvalidPose, NoValidPath, Path,
                                           PlannerError, PlannerTimeout, StartOccupied, StartOutsideMap,
                                           path_from_polyline, trim_start)

RADIUS = 0.45


def _point_polygon_distance(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Euclidean distance (m) from each point (N, 2) to a convex polygon (0 inside)."""
    a = poly
    b = np.roll(poly, -1, axis=0)
    d = b - a
    rel = pts[:, None, :] - a[None, :, :]
    t = np.clip(np.einsum("nkj,kj->nk", rel, d) / np.einsum("kj,kj->k", d, d), 0.0, 1.0)
    closest = a[None] + t[..., None] * d[None]
    dist = np.linalg.norm(pts[:, None, :] - closest, axis=2).min(axis=1)
    cross = d[None, :, 0] * rel[..., 1] - d[None, :, 1] * rel[..., 0]
    inside = np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)
    return np.where(inside, 0.0, dist)


def _clearance(path: Path, polygons, size_xy) -> float:
    """Smallest distance (m) from any path point to an obstacle polygon or the map edge."""
    pts = path.points
    edge = np.minimum.reduce([pts[:, 0], pts[:, 1], size_xy[0] - pts[:, 0], size_xy[1] - pts[:, 1]])
    dists = [edge] + [_point_polygon_distance(pts, np.asarray(p, float)) for p in polygons]
    return float(np.min(np.minimum.reduce(dists)))


def _assert_well_formed(path: Path, start: Pose2D, goal: Pose2D) -> None:
    assert path.points.shape[1] == 2 and path.yaws.shape == (len(path.points),)
    np.testing.assert_allclose(path.points[0], start.xy, atol=1e-9)
    np.testing.assert_allclose(path.points[-1], goal.xy, atol=1e-9)
    assert path.yaws[-1] == pytest.approx(goal.yaw)
    steps = np.diff(path.points, axis=0)
    spacing = np.hypot(steps[:, 0], steps[:, 1])
    assert spacing.max() <= 0.05 + 1e-9
    assert path.length_m == pytest.approx(spacing.sum(), rel=1e-9)
    # Yaws point along the direction of travel.
    np.testing.assert_allclose(np.cos(path.yaws[:-1]), steps[:, 0] / spacing, atol=1e-9)
    np.testing.assert_allclose(np.sin(path.yaws[:-1]), steps[:, 1] / spacing, atol=1e-9)
    assert np.all(np.isfinite(path.points)) and np.all(np.isfinite(path.yaws))


@pytest.fixture(scope="module")
def open_planner():
    return GridPlanner(from_polygons((12.0, 8.0), 0.05, []), RADIUS)


# A room with a wall across the middle and a doorway near the top, plus a pillar.
ROOM = (12.0, 8.0)
WALL_OBSTACLES = [segment_rect_polygon((6.0, 0.0), (6.0, 5.5), 0.2), rect_polygon(Pose2D(3.0, 4.0, 0.3), 1.2, 0.8)]


@pytest.fixture(scope="module")
def wall_planner():
    return GridPlanner(from_polygons(ROOM, 0.05, WALL_OBSTACLES), RADIUS)


def test_open_space_path_is_nearly_straight(open_planner):
    start, goal = Pose2D(1.0, 1.0, 0.0), Pose2D(10.0, 6.5, math.atan2(5.5, 9.0))
    path = open_planner.plan(start, goal)
    _assert_well_formed(path, start, goal)
    straight = start.distance_to(goal)
    assert straight - 1e-9 <= path.length_m <= 1.10 * straight


def test_path_ends_with_a_straight_approach_along_the_goal_yaw(open_planner):
    start, goal = Pose2D(1.5, 1.5, 0.0), Pose2D(8.0, 5.0, math.pi / 2)
    path = open_planner.plan(start, goal)
    _assert_well_formed(path, start, goal)
    last_metre = path.points[path.length_m - np.concatenate([[0.0], np.cumsum(
        np.hypot(*np.diff(path.points, axis=0).T))]) <= open_planner.approach_length_m + 1e-9]
    assert len(last_metre) >= 19
    np.testing.assert_allclose(last_metre[:, 0], goal.x, atol=1e-9)  # on the line x = 8 heading +y
    assert np.all(np.diff(last_metre[:, 1]) > 0)
    assert path.length_m <= 1.15 * start.distance_to(goal)


def test_path_keeps_the_robot_radius_from_every_obstacle(wall_planner):
    start, goal = Pose2D(2.0, 1.0, 0.0), Pose2D(10.0, 1.0, -math.pi / 2)
    path = wall_planner.plan(start, goal)
    _assert_well_formed(path, start, goal)
    assert _clearance(path, WALL_OBSTACLES, ROOM) >= RADIUS
    assert path.points[:, 1].max() > 5.5 + RADIUS  # it went round through the doorway
    # Detour through the doorway: longer than going straight over the wall's end, but no wandering.
    over_the_top = 2.0 * math.hypot(4.0, 5.5 + RADIUS - 1.0)
    assert over_the_top < path.length_m < 1.2 * over_the_top + 2.0


def test_paths_keep_clear_for_random_queries(wall_planner):
    rng = np.random.default_rng(3)
    planned = 0
    for _ in range(12):
        a = Pose2D(rng.uniform(0.5, 11.5), rng.uniform(0.5, 7.5), rng.uniform(-math.pi, math.pi))
        b = Pose2D(rng.uniform(0.5, 11.5), rng.uniform(0.5, 7.5), rng.uniform(-math.pi, math.pi))
        try:
            path = wall_planner.plan(a, b)
        except (StartOccupied, GoalOccupied):
            continue
        planned += 1
        _assert_well_formed(path, a, b)
        # A start or goal inside the inflation band is allowed within the tolerance; the rest of the path is clear.
        tol = max(wall_planner.start_tolerance_m, wall_planner.goal_tolerance_m)
        far = (np.hypot(*(path.points - a.xy).T) > tol) & (np.hypot(*(path.points - b.xy).T) > tol)
        clipped = Path(path.points[far], path.yaws[far], path.length_m)
        if len(clipped.points):
            assert _clearance(clipped, WALL_OBSTACLES, ROOM) >= RADIUS
    assert planned >= 6


def test_goal_inside_the_inflation_band_within_tolerance_is_reached(wall_planner):
    # The threshold is the radius plus a discretisation margin; a goal 2 cm inside it is accepted and reached exactly.
    x = 6.1 + wall_planner.threshold_m - 0.02
    goal = Pose2D(x, 2.0, 0.0)
    path = wall_planner.plan(Pose2D(9.0, 2.0, 0.0), goal)
    np.testing.assert_allclose(path.points[-1], goal.xy)
    # And the robot can leave from there again: the same tolerance applies to the start.
    back = wall_planner.plan(goal, Pose2D(9.0, 5.0, 0.0))
    np.testing.assert_allclose(back.points[0], goal.xy)
    # Much deeper inside the band, beyond the tolerance, it is refused.
    with pytest.raises(GoalOccupied):
        wall_planner.plan(Pose2D(9.0, 2.0, 0.0), Pose2D(6.1 + RADIUS - 0.15, 2.0, 0.0))


@pytest.mark.parametrize("start, goal, error", [
    (Pose2D(-0.5, 1.0), Pose2D(10.0, 1.0), StartOutsideMap),
    (Pose2D(2.0, 1.0), Pose2D(10.0, 8.5), GoalOutsideMap),
    (Pose2D(6.0, 1.0), Pose2D(10.0, 1.0), StartOccupied),  # inside the wall
    (Pose2D(6.4, 1.0), Pose2D(10.0, 1.0), StartOccupied),  # free, but the robot would overlap the wall
    (Pose2D(2.0, 1.0), Pose2D(3.0, 4.0), GoalOccupied),  # inside the pillar
    (Pose2D(2.0, 1.0), Pose2D(11.9, 7.9), GoalOccupied),  # in the map corner, too close to the edge
])
def test_each_bad_request_raises_its_own_error(wall_planner, start, goal, error):
    with pytest.raises(error) as info:
        wall_planner.plan(start, goal)
    assert isinstance(info.value, PlannerError)
    assert info.value.code == error.code and str(info.value)


def test_error_codes_mirror_nav2():
    codes = {StartOutsideMap: "START_OUTSIDE_MAP", GoalOutsideMap: "GOAL_OUTSIDE_MAP",
             StartOccupied: "START_OCCUPIED", GoalOccupied: "GOAL_OCCUPIED", NoValidPath: "NO_VALID_PATH",
             PlannerTimeout: "TIMEOUT", InvalidPose: "INVALID_POSE"}
    for cls, code in codes.items():
        assert issubclass(cls, PlannerError) and cls.code == code
    assert len(set(codes.values())) == len(codes)


def test_nan_pose_is_invalid(wall_planner):
    with pytest.raises(InvalidPose):
        wall_planner.plan(SimpleNamespace(x=float("nan"), y=1.0, yaw=0.0), Pose2D(10.0, 1.0))
    with pytest.raises(InvalidPose):
        wall_planner.plan(Pose2D(2.0, 1.0), SimpleNamespace(x=10.0, y=1.0, yaw=float("inf")))
    with pytest.raises(InvalidPose):
        wall_planner.plan(Pose2D(2.0, 1.0), object())


def test_enclosed_goal_has_no_valid_path():
    ring = [segment_rect_polygon((7.0, 2.0), (11.0, 2.0), 0.2), segment_rect_polygon((11.0, 2.0), (11.0, 6.0), 0.2),
            segment_rect_polygon((11.0, 6.0), (7.0, 6.0), 0.2), segment_rect_polygon((7.0, 6.0), (7.0, 2.0), 0.2)]
    planner = GridPlanner(from_polygons(ROOM, 0.05, ring), RADIUS)
    t0 = time.perf_counter()
    with pytest.raises(NoValidPath):
        planner.plan(Pose2D(2.0, 2.0), Pose2D(9.0, 4.0))
    assert time.perf_counter() - t0 < 5.0  # found without exhausting the search (connected-region check)
    path = planner.plan(Pose2D(8.0, 3.0), Pose2D(10.0, 5.0))  # inside the ring all is fine
    assert path.length_m > 0


def test_search_that_runs_out_of_time_raises_timeout():
    # A comb of walls forces a long search; a tiny budget cannot finish it.
    walls = [segment_rect_polygon((x, 0.0 if i % 2 else 2.0), (x, 18.0 if i % 2 else 20.0), 0.2)
             for i, x in enumerate(np.arange(2.0, 38.0, 2.0))]
    planner = GridPlanner(from_polygons((40.0, 20.0), 0.05, walls), 0.3, timeout_s=1e-4)
    with pytest.raises(PlannerTimeout):
        planner.plan(Pose2D(1.0, 10.0), Pose2D(39.0, 10.0))
    planner.timeout_s = 10.0
    path = planner.plan(Pose2D(1.0, 10.0), Pose2D(39.0, 10.0))
    assert path.length_m > 18 * 16.0


def test_path_from_polyline_resamples_evenly():
    path = path_from_polyline([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.52]], 1.0, spacing_m=0.05)
    assert len(path) == 32  # ceil(1.52 / 0.05) + 1
    # The points are evenly spaced along the polyline; the corner between two of them is cut.
    assert 1.52 - 0.05 < path.length_m <= 1.52
    assert path.yaws[0] == pytest.approx(0.0) and path.yaws[-2] == pytest.approx(math.pi / 2)
    assert path.yaws[-1] == 1.0
    single = path_from_polyline([[2.0, 3.0]], 0.5)
    assert len(single) == 2 and single.length_m == 0.0


def test_garage_sized_map_plans_quickly():
    """A 60 m x 40 m garage at 5 cm: three rows of parked cars; reports the planning time (no assert on it)."""
    polys = []
    for row_y in (8.0, 20.0, 32.0):
        polys += [rect_polygon(Pose2D(3.0 + i * 2.7, row_y, math.pi / 2), 4.6, 1.9) for i in range(20)]
        polys.append(segment_rect_polygon((1.5, row_y), (56.0, row_y), 0.3))
    grid = from_polygons((60.0, 40.0), 0.05, polys)
    t0 = time.perf_counter()
    planner = GridPlanner(grid, 0.5)
    t_init = time.perf_counter() - t0
    start, goal = Pose2D(1.0, 1.0, 0.0), Pose2D(58.0, 38.0, math.pi / 2)
    t0 = time.perf_counter()
    path = planner.plan(start, goal)
    t_plan = time.perf_counter() - t0
    print(f"\n60 x 40 m garage at 0.05 m: init {1e3 * t_init:.0f} ms, plan {1e3 * t_plan:.0f} ms, "
          f"path {path.length_m:.1f} m")
    _assert_well_formed(path, start, goal)
    assert _clearance(path, polys, (60.0, 40.0)) >= 0.5


def test_gap_narrower_than_the_coarse_grid_allows_is_found_on_the_fine_grid():
    # A 1.15 m doorway leaves a traversable strip one or two fine cells wide: too narrow for the 0.1 m search grid,
    # so the planner falls back to the 0.05 m grid.
    walls = [segment_rect_polygon((5.0, 0.0), (5.0, 2.425), 0.2), segment_rect_polygon((5.0, 3.575), (5.0, 6.0), 0.2)]
    planner = GridPlanner(from_polygons((10.0, 6.0), 0.05, walls), RADIUS)
    start, goal = Pose2D(1.0, 1.0, 0.0), Pose2D(9.0, 1.0, 0.0)
    path = planner.plan(start, goal)
    _assert_well_formed(path, start, goal)
    assert _clearance(path, walls, (10.0, 6.0)) >= RADIUS
    crossing = path.points[np.argmin(np.abs(path.points[:, 0] - 5.0))]
    assert abs(crossing[1] - 3.0) < 0.1


def test_trim_start_drops_what_the_robot_already_drove_past():
    path = path_from_polyline([(0.0, 0.0), (4.0, 0.0), (4.0, 3.0)], math.pi / 2, 0.05)
    path.speed_limits = np.linspace(1.0, 0.2, len(path.points))
    trimmed = trim_start(path, (1.02, 0.3), search_m=3.0)
    assert trimmed.points[0] == pytest.approx((1.0, 0.0), abs=0.03)
    assert trimmed.points[-1] == pytest.approx((4.0, 3.0))
    assert trimmed.length_m == pytest.approx(path.length_m - 1.0, abs=0.03)
    assert len(trimmed.speed_limits) == len(trimmed.points)
    assert trimmed.speed_limits[0] == pytest.approx(path.speed_limits[len(path.points) - len(trimmed.points)])
    # Only the first search_m of arc is searched: a point beside the far end does not cut the path there.
    assert trim_start(path, (4.0, 2.9), search_m=1.0).points[0][0] == pytest.approx(1.0, abs=0.06)
    # A robot at the start keeps the whole path.
    assert trim_start(path, (0.0, 0.0), search_m=3.0) is path
