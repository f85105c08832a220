"""Global path planning on the garage occupancy grid: A* with a clearance cost, line-of-sight shortening and a straight
final approach along the goal yaw.

Frames and units: poses and path points are in the ``map`` frame, metres and radians.

Clearance guarantee: a fine grid cell is *traversable* when its distance-field value is at least
``robot_radius_m + (sqrt(2) + 1/8) * resolution``. The extra term covers the discretisation (an obstacle may sit
anywhere in its occupied cell, a path point anywhere in its traversable cell, and segments are checked at a quarter
cell spacing), so every path point keeps at least ``robot_radius_m`` from every obstacle polygon and from the map
edge, except within the start/goal tolerance described in ``GridPlanner``.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ..geometry import Pose2D
from .occupancy import OccupancyGrid, distance_field

_SQRT2 = math.sqrt(2.0)
_SAMPLE_FRACTION = 0.25  # segment sampling step as a fraction of a fine cell


class PlannerError(Exception):
    """Planning failed; ``code`` mirrors Nav2's ComputePathToPose error codes."""

    code = "UNKNOWN"


class StartOutsideMap(PlannerError):
    """The start lies outside the map."""

    code = "START_OUTSIDE_MAP"


class GoalOutsideMap(PlannerError):
    """The goal lies outside the map."""

    code = "GOAL_OUTSIDE_MAP"


class StartOccupied(PlannerError):
    """The start is in an obstacle or too close to one for the robot."""

    code = "START_OCCUPIED"


class GoalOccupied(PlannerError):
    """The goal is in an obstacle or too close to one for the robot."""

    code = "GOAL_OCCUPIED"


class NoValidPath(PlannerError):
    """No collision-free path joins start and goal."""

    code = "NO_VALID_PATH"


class PlannerTimeout(PlannerError):
    """The search ran past its time budget."""

    code = "TIMEOUT"


class InvalidPose(PlannerError):
    """A start or goal with a missing or non-finite coordinate."""

    code = "INVALID_POSE"


@dataclass(eq=False)
class Path:
    """A planned path in the ``map`` frame.

    ``points`` (N, 2) m, N >= 2, evenly spaced along the path; ``yaws`` (N,) rad, the direction of travel at each
    point, the last one being the goal yaw; ``length_m`` the arc length. ``speed_limits`` (N,) m/s, optional: the
    highest speed allowed from each point to the next (None: no limit beyond the follower's own).
    """

    points: np.ndarray
    yaws: np.ndarray
    length_m: float
    speed_limits: Optional[np.ndarray] = None

    @property
    def goal(self) -> Pose2D:
        return Pose2D(float(self.points[-1, 0]), float(self.points[-1, 1]), float(self.yaws[-1]))

    def __len__(self) -> int:
        return len(self.points)


def path_from_polyline(waypoints, final_yaw: float, spacing_m: float = 0.05) -> Path:
    """Resample a polyline ((M, 2) map m) at no more than ``spacing_m`` into a ``Path`` ending with ``final_yaw``.

    Every resampled point lies on the polyline; its yaw is the direction towards the next point.
    """
    wp = np.asarray(waypoints, dtype=float).reshape(-1, 2)
    if len(wp) == 0 or not np.all(np.isfinite(wp)) or not math.isfinite(final_yaw):
        raise ValueError("waypoints and final_yaw must be finite and non-empty")
    if spacing_m <= 0.0:
        raise ValueError("spacing_m must be positive")
    seg = np.hypot(*np.diff(wp, axis=0).T) if len(wp) > 1 else np.zeros(0)
    keep = np.concatenate([[True], seg > 1e-12])
    wp = wp[keep]
    seg = seg[seg > 1e-12]
    total = float(seg.sum())
    if total <= 1e-9:
        pts = np.array([wp[0], wp[-1]])
        return Path(pts, np.full(2, float(final_yaw)), 0.0)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(1, math.ceil(total / spacing_m - 1e-9))
    si = np.linspace(0.0, total, n + 1)
    pts = np.stack([np.interp(si, s, wp[:, 0]), np.interp(si, s, wp[:, 1])], axis=1)
    pts[-1] = wp[-1]
    d = np.diff(pts, axis=0)
    yaws = np.empty(len(pts))
    yaws[:-1] = np.arctan2(d[:, 1], d[:, 0])
    yaws[-1] = float(final_yaw)
    # Resampled points cut the polyline's corners slightly; the length is that of the points actually returned.
    return Path(pts, yaws, float(np.hypot(d[:, 0], d[:, 1]).sum()))


def trim_start(path: Path, xy, search_m: float) -> Path:
    """``path`` from its point closest to ``xy`` (map m) among those within ``search_m`` of arc from its start.

    A path planned from where the robot was when planning began is followed from where the robot is when it
    arrives: the stretch already driven past is dropped, so the follower does not turn back for it. Points, yaws and
    speed limits keep their values; the length is that of what remains.
    """
    pts = np.asarray(path.points, float)
    xy = np.asarray(xy, float).reshape(2)
    if len(pts) < 3 or not np.all(np.isfinite(xy)):
        return path
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    window = np.flatnonzero(arc <= max(0.0, float(search_m)))
    i = int(window[np.argmin(np.hypot(pts[window, 0] - xy[0], pts[window, 1] - xy[1]))])
    i = min(i, len(pts) - 2)  # keep at least the last stretch: its end is the goal
    if i == 0:
        return path
    limits = None if path.speed_limits is None else np.asarray(path.speed_limits)[i:].copy()
    return Path(pts[i:].copy(), np.asarray(path.yaws)[i:].copy(), float(path.length_m - arc[i]), limits)


@dataclass
class _Level:
    """One search resolution: ``k`` fine cells per side, padded graph arrays as flat Python sequences."""

    k: int
    cell_m: float
    trav: np.ndarray  # (h, w) bool, unpadded
    clear: np.ndarray  # (h, w) m, the lowest fine distance-field value in the cell
    wp: int = 0  # padded width
    blocked: bytes = b""
    cost: list = field(default_factory=list)


class GridPlanner:
    """A* on an occupancy grid for a robot of inscribed radius ``robot_radius_m`` (m).

    ``clearance_weight``: extra cost per metre, relative to free space, for cells at the traversable limit; it fades
    out (quadratically) ``comfort_distance_m`` further away from obstacles, which keeps paths to the middle of lanes.
    ``plan_resolution_m``: the search runs on this coarser grid (fine cells max-pooled, a coarse cell is traversable
    when all its fine cells are); the fine grid is searched when the coarse one cannot connect start and goal.
    ``goal_tolerance_cells`` / ``start_tolerance_cells``: a goal (start) in free space but inside the inflation band
    is accepted when a traversable fine cell lies within that many fine cells in a straight line; the path's last
    (first) stretch then runs through the band to the exact goal (start). Further away it is GoalOccupied
    (StartOccupied).
    ``approach_length_m``: when the start is farther than this from the goal and room allows, the path ends with a
    straight segment of this length (else half of it) along the goal yaw, so the robot arrives aligned.
    ``shortcut_extra_clearance_m``: line-of-sight shortcuts may not bring the path closer to obstacles than the A* path
    they replace, up to this margin above the traversable limit; it leaves room for a path follower cutting corners.
    """

    def __init__(self, grid: OccupancyGrid, robot_radius_m: float, clearance_weight: float = 1.0,
                 timeout_s: float = 1.0, plan_resolution_m: float = 0.1, goal_tolerance_cells: int = 3,
                 start_tolerance_cells: int = 3, approach_length_m: float = 1.0, comfort_distance_m: float = 1.0,
                 shortcut_extra_clearance_m: float = 0.2, path_spacing_m: float = 0.05):
        for name, value in (("robot_radius_m", robot_radius_m), ("timeout_s", timeout_s),
                            ("plan_resolution_m", plan_resolution_m), ("comfort_distance_m", comfort_distance_m),
                            ("path_spacing_m", path_spacing_m)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be positive, got {value!r}")
        for name, value in (("clearance_weight", clearance_weight), ("approach_length_m", approach_length_m),
                            ("shortcut_extra_clearance_m", shortcut_extra_clearance_m),
                            ("goal_tolerance_cells", goal_tolerance_cells),
                            ("start_tolerance_cells", start_tolerance_cells)):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be non-negative, got {value!r}")
        self.grid = grid
        self.robot_radius_m = float(robot_radius_m)
        self.timeout_s = float(timeout_s)
        self.approach_length_m = float(approach_length_m)
        self.shortcut_extra_clearance_m = float(shortcut_extra_clearance_m)
        self.path_spacing_m = float(path_spacing_m)
        res = grid.resolution_m
        self.goal_tolerance_m = goal_tolerance_cells * res
        self.start_tolerance_m = start_tolerance_cells * res
        self.threshold_m = self.robot_radius_m + (_SQRT2 + 0.5 * _SAMPLE_FRACTION) * res
        self.field = distance_field(grid)
        self.free = ~grid.occupied_mask()
        self.traversable = self.field >= self.threshold_m
        _, self._labels = cv2.connectedComponents(self.traversable.astype(np.uint8), connectivity=8)
        self._weight = float(clearance_weight)
        self._comfort = float(comfort_distance_m)
        k = max(1, int(round(plan_resolution_m / res)))
        self._coarse = self._make_level(k)
        self._fine: Optional[_Level] = self._coarse if k == 1 else None

    # ------------------------------------------------------------------ public
    def plan(self, start: Pose2D, goal: Pose2D) -> Path:
        """A collision-free path from ``start`` to ``goal`` (map frame, m and rad).

        Raises InvalidPose (non-finite), StartOutsideMap / GoalOutsideMap, StartOccupied / GoalOccupied (in an
        obstacle, or in the inflation band beyond the tolerance), NoValidPath (separate free regions) or
        PlannerTimeout (``timeout_s`` exceeded; checked during the search).
        """
        deadline = time.monotonic() + self.timeout_s
        s = self._finite_xy(start, "start")
        g = self._finite_xy(goal, "goal")
        goal_yaw = float(goal.yaw)
        self._check_endpoint(s, StartOutsideMap, StartOccupied, "start")
        self._check_endpoint(g, GoalOutsideMap, GoalOccupied, "goal")
        relax = []
        if not self._traversable_at(s):
            relax.append((s, self.start_tolerance_m))
        if not self._traversable_at(g):
            relax.append((g, self.goal_tolerance_m))

        fine = self._fine_shape_level()
        start_fine = self._anchors(fine, s, self.start_tolerance_m, relax)
        if not start_fine:
            raise StartOccupied(f"start ({s[0]:.2f}, {s[1]:.2f}) is closer than {self.threshold_m:.2f} m to an "
                                f"obstacle and no clear cell lies within {self.start_tolerance_m:.2f} m")
        exit_pt = self._approach_entry(s, g, goal_yaw, relax)
        exit_fine = self._anchors(fine, exit_pt, self.goal_tolerance_m, relax)
        if not exit_fine:
            raise GoalOccupied(f"goal ({g[0]:.2f}, {g[1]:.2f}) is closer than {self.threshold_m:.2f} m to an "
                               f"obstacle and no clear cell lies within {self.goal_tolerance_m:.2f} m")
        start_labels = {int(self._labels[rc]) for rc, _ in start_fine}
        exit_labels = {int(self._labels[rc]) for rc, _ in exit_fine}
        if not start_labels & exit_labels:
            raise NoValidPath(f"goal ({g[0]:.2f}, {g[1]:.2f}) is not reachable from start ({s[0]:.2f}, {s[1]:.2f}): "
                              "they lie in separate free regions")

        waypoints, clear = self._search(s, exit_pt, relax, start_fine, exit_fine, deadline)
        # The approach entry stays a vertex: shortening must not cut the straight final approach.
        waypoints = self._shortcut(waypoints, clear, relax)
        if exit_pt is not g:
            waypoints.append(g)
        return path_from_polyline(np.array(waypoints), goal_yaw, self.path_spacing_m)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _finite_xy(pose, what: str) -> np.ndarray:
        try:
            x, y, yaw = float(pose.x), float(pose.y), float(pose.yaw)
        except (AttributeError, TypeError, ValueError) as exc:
            raise InvalidPose(f"{what} is not a pose: {exc}") from exc
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            raise InvalidPose(f"{what} has a non-finite value: ({x}, {y}, {yaw})")
        return np.array([x, y])

    def _check_endpoint(self, p: np.ndarray, outside, occupied, what: str) -> None:
        if not self.grid.in_bounds(p[0], p[1]):
            raise outside(f"{what} ({p[0]:.2f}, {p[1]:.2f}) is outside the map")
        if self.grid.is_occupied(p[0], p[1]):
            raise occupied(f"{what} ({p[0]:.2f}, {p[1]:.2f}) is inside an obstacle")

    def _cell(self, p) -> tuple:
        return self.grid.world_to_cell(float(p[0]), float(p[1]))

    def _traversable_at(self, p) -> bool:
        r, c = self._cell(p)
        return self.grid.cell_in_bounds(r, c) and bool(self.traversable[r, c])

    def _clear_at(self, p) -> float:
        r, c = self._cell(p)
        return float(self.field[r, c])

    # ------------------------------------------------------------------ geometry checks
    def _segment_ok(self, a, b, required_m: float, relax) -> bool:
        """Whether segment a-b (map m) keeps ``required_m`` of distance field, except near a relaxed endpoint where
        free cells suffice."""
        res = self.grid.resolution_m
        a = np.asarray(a, float)
        d = np.asarray(b, float) - a
        n = max(1, math.ceil(math.hypot(d[0], d[1]) / (_SAMPLE_FRACTION * res)))
        pts = a + np.linspace(0.0, 1.0, n + 1)[:, None] * d
        cols = np.floor((pts[:, 0] - self.grid.origin_xy[0]) / res).astype(np.int64)
        rows = np.floor((pts[:, 1] - self.grid.origin_xy[1]) / res).astype(np.int64)
        if cols.min() < 0 or rows.min() < 0 or cols.max() >= self.grid.width or rows.max() >= self.grid.height:
            return False
        ok = self.field[rows, cols] >= required_m
        if ok.all():
            return True
        for centre, radius in relax:
            near = np.hypot(pts[:, 0] - centre[0], pts[:, 1] - centre[1]) <= radius + 1e-9
            ok |= near & self.free[rows, cols]
        return bool(ok.all())

    def _approach_entry(self, s: np.ndarray, g: np.ndarray, yaw: float, relax) -> np.ndarray:
        """The point where the straight final approach begins, or ``g`` itself when there is none."""
        if self.approach_length_m <= 0.0 or math.hypot(*(g - s)) < self.approach_length_m:
            return g
        u = np.array([math.cos(yaw), math.sin(yaw)])
        for length in (self.approach_length_m, 0.5 * self.approach_length_m):
            entry = g - length * u
            if (self.grid.in_bounds(entry[0], entry[1]) and self._traversable_at(entry)
                    and self._segment_ok(entry, g, self.threshold_m, relax)):
                return entry
        return g

    # ------------------------------------------------------------------ search levels
    def _make_level(self, k: int) -> _Level:
        h, w = self.traversable.shape
        hc, wc = -(-h // k), -(-w // k)
        trav = np.zeros((hc * k, wc * k), dtype=bool)
        trav[:h, :w] = self.traversable
        clear = np.zeros((hc * k, wc * k))
        clear[:h, :w] = self.field
        trav = trav.reshape(hc, k, wc, k).all(axis=(1, 3))
        clear = clear.reshape(hc, k, wc, k).min(axis=(1, 3))
        level = _Level(k=k, cell_m=k * self.grid.resolution_m, trav=trav, clear=clear)
        # One blocked cell of padding all round removes bounds checks from the inner loop.
        padded = np.zeros((hc + 2, wc + 2), dtype=bool)
        padded[1:-1, 1:-1] = trav
        level.wp = wc + 2
        level.blocked = (~padded).astype(np.uint8).tobytes()
        margin = np.clip(1.0 - (clear - self.threshold_m) / self._comfort, 0.0, 1.0)
        cost = np.ones((hc + 2, wc + 2))
        cost[1:-1, 1:-1] += self._weight * margin ** 2
        level.cost = cost.ravel().tolist()
        return level

    def _fine_shape_level(self) -> _Level:
        """The fine grid's arrays without the (costly) flat graph, for anchoring start and goal."""
        if self._fine is not None:
            return self._fine
        return _Level(k=1, cell_m=self.grid.resolution_m, trav=self.traversable, clear=self.field)

    def _anchors(self, level: _Level, p: np.ndarray, tolerance_m: float, relax, limit: int = 8) -> list:
        """Up to ``limit`` traversable cells of ``level`` near map point ``p`` that a straight segment from ``p``
        reaches: [((row, col), distance_m)], nearest first."""
        radius = max(tolerance_m, 0.75 * level.cell_m) + _SQRT2 * level.cell_m
        ox, oy = self.grid.origin_xy
        r0 = int(math.floor((p[1] - oy) / level.cell_m))
        c0 = int(math.floor((p[0] - ox) / level.cell_m))
        n = int(math.ceil(radius / level.cell_m))
        h, w = level.trav.shape
        rows = np.arange(max(0, r0 - n), min(h, r0 + n + 1))
        cols = np.arange(max(0, c0 - n), min(w, c0 + n + 1))
        if len(rows) == 0 or len(cols) == 0:
            return []
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        cx = ox + (cc + 0.5) * level.cell_m
        cy = oy + (rr + 0.5) * level.cell_m
        dist = np.hypot(cx - p[0], cy - p[1])
        cand = level.trav[rr, cc] & (dist <= radius)
        rr, cc, cx, cy, dist = rr[cand], cc[cand], cx[cand], cy[cand], dist[cand]
        found = []
        for i in np.argsort(dist, kind="stable"):
            if self._segment_ok(p, (cx[i], cy[i]), self.threshold_m, relax):
                found.append(((int(rr[i]), int(cc[i])), float(dist[i])))
                if len(found) >= limit:
                    break
        return found

    def _search(self, s, e, relax, start_fine, exit_fine, deadline) -> tuple:
        """Waypoints [s, cell centres..., e] and the distance-field clearance (m) at each."""
        if self._segment_ok(s, e, self.threshold_m, relax):
            return [s, e], [self._clear_at(s), self._clear_at(e)]
        cells, level = None, self._coarse
        seeds = self._anchors(level, s, self.start_tolerance_m, relax)
        targets = self._anchors(level, e, self.goal_tolerance_m, relax)
        if seeds and targets:
            cells = self._astar(level, seeds, targets, e, deadline)
        if cells is None and level.k > 1:
            # A passage narrower than a coarse cell (or an endpoint squeezed into one): search the fine grid. The
            # connected-region check in plan() guarantees this one succeeds, time permitting.
            if self._fine is None:
                self._fine = self._make_level(1)
            level = self._fine
            cells = self._astar(level, start_fine, exit_fine, e, deadline)
        if cells is None:
            raise NoValidPath("no path found between start and goal")
        ox, oy = self.grid.origin_xy
        centres = [np.array([ox + (c + 0.5) * level.cell_m, oy + (r + 0.5) * level.cell_m]) for r, c in cells]
        clears = [float(level.clear[r, c]) for r, c in cells]
        return [s] + centres + [e], [self._clear_at(s)] + clears + [self._clear_at(e)]

    def _astar(self, level: _Level, seeds, targets, goal_xy, deadline) -> Optional[list]:
        """8-connected A* from several seed cells to several target cells (each with the straight-line cost to its
        point). Costs are in cells of this level. Returns [(row, col)] or None."""
        wp = level.wp
        blocked, cost = level.blocked, level.cost
        n_cells = len(cost)
        goal_node = n_cells  # a virtual node joined to every target
        inf = math.inf
        g_score = [inf] * (n_cells + 1)
        parent = [-1] * (n_cells + 1)
        closed = bytearray(n_cells + 1)
        ox, oy = self.grid.origin_xy
        # The octile heuristic for every cell at once: one list lookup in the loop instead of arithmetic.
        gr = (goal_xy[1] - oy) / level.cell_m + 0.5  # padded, fractional
        gc = (goal_xy[0] - ox) / level.cell_m + 0.5
        dr = np.abs(np.arange(n_cells // wp, dtype=float) - gr)[:, None]
        dc = np.abs(np.arange(wp, dtype=float) - gc)[None, :]
        h_grid = np.maximum(dr, dc) + (_SQRT2 - 1.0) * np.minimum(dr, dc)
        h_list = h_grid.ravel().tolist()
        nbrs = [(1, 1.0), (-1, 1.0), (wp, 1.0), (-wp, 1.0),
                (wp + 1, _SQRT2), (wp - 1, _SQRT2), (-wp + 1, _SQRT2), (-wp - 1, _SQRT2)]

        exits = {}
        for (r, c), d in targets:
            exits[(r + 1) * wp + c + 1] = d / level.cell_m
        heap = []
        for (r, c), d in seeds:
            idx = (r + 1) * wp + c + 1
            g0 = d / level.cell_m
            if g0 < g_score[idx]:
                g_score[idx] = g0
                h = h_list[idx]
                heapq.heappush(heap, (g0 + h, h, idx))
        pops = 0
        while heap:
            _, _, cur = heapq.heappop(heap)
            if cur == goal_node:
                break
            if closed[cur]:
                continue
            closed[cur] = 1
            pops += 1
            if pops & 1023 == 0 and time.monotonic() > deadline:
                raise PlannerTimeout(f"search exceeded {self.timeout_s:.2f} s after {pops} expansions")
            g = g_score[cur]
            extra = exits.get(cur)
            if extra is not None and g + extra < g_score[goal_node]:
                g_score[goal_node] = g + extra
                parent[goal_node] = cur
                heapq.heappush(heap, (g + extra, 0.0, goal_node))
            for off, step in nbrs:
                nb = cur + off
                if blocked[nb] or closed[nb]:
                    continue
                ng = g + step * cost[nb]
                if ng < g_score[nb]:
                    g_score[nb] = ng
                    parent[nb] = cur
                    h = h_list[nb]
                    heapq.heappush(heap, (ng + h, h, nb))
        else:
            return None
        cells = []
        idx = parent[goal_node]
        while idx != -1:
            r, c = divmod(idx, wp)
            cells.append((r - 1, c - 1))
            idx = parent[idx]
        cells.reverse()
        return cells

    # ------------------------------------------------------------------ shortening
    def _shortcut(self, waypoints: list, clear: list, relax) -> list:
        """Greedy line-of-sight shortening: from each kept waypoint jump to the farthest one (galloping search) whose
        straight segment keeps the clearance of the stretch it replaces (capped at threshold + extra margin)."""
        n = len(waypoints)
        if n <= 2:
            return waypoints
        clear_arr = np.asarray(clear, float)
        cap = self.threshold_m + self.shortcut_extra_clearance_m
        out = [waypoints[0]]
        i = 0
        while i < n - 1:
            running_min = np.minimum.accumulate(clear_arr[i:])

            def reachable(j: int) -> bool:
                required = max(self.threshold_m, min(cap, float(running_min[j - i])))
                return self._segment_ok(waypoints[i], waypoints[j], required, relax)

            good, step = i + 1, 1
            bad = n
            while good + step < n:
                probe = good + step
                if reachable(probe):
                    good, step = probe, step * 2
                else:
                    bad = probe
                    break
            while bad - good > 1:
                mid = (good + bad) // 2
                if reachable(mid):
                    good = mid
                else:
                    bad = mid
            out.append(waypoints[good])
            i = good
        return out
