"""Planning the way a driver would: along the garage's lanes, never through a parking spot, honouring one-way lanes,
leaving a lane only for the staging area beside the target car.

Frames and units: ``map`` frame, metres, radians, m/s.

How it works (a hierarchy rather than one big grid search):

1. **Lane graph**, built once: each lane's centre line is cut into *tracks* where the robot, allowed to turn in place
   anywhere (circumscribed radius of the footprint + ``inflation_margin_m``), keeps clear of everything that is not
   drivable lane (obstacles, spots, the outside of the lanes). Tracks that cross share a junction node; tracks of
   overlapping lanes that do not cross are joined by a straight link where that link is clear. Edges run both ways
   on two-way lanes and only from ``start`` to ``end`` on one-way lanes.
2. **Connectors** per query, from the start to the graph and from the graph to the goal: first straight legs (for a
   goal, the leg along the goal's heading, so the robot arrives aligned; then the other axis directions), else an
   8-connected grid Dijkstra (scipy's C implementation) in a window around the endpoint, on the footprint-inflated,
   lane-rule-restricted grid. Only these legs may leave the lanes, and only into the endpoint's staging area (see
   ``lanes.LaneRules``).
3. **A*** over the graph (Euclidean costs and heuristic), then **line-of-sight shortening** that keeps every rule:
   each shortened segment is checked for the oriented footprint (covered by ``n`` circles along the heading) against
   the per-query clearance field, and for the one-way directions of the cells it crosses. The last connector vertex
   stays, so the final approach is straight along the goal heading.
4. **Speed limits** per path point: ``lane_speed_mps`` in lanes, ``near_speed_mps`` within ``near_car_distance_m``
   (beyond the footprint's half width) of a parked car listed in the garage and inside staging areas,
   ``approach_speed_mps`` on the last ``approach_length_m``, and never above a garage ``speed_limit`` zone.

Why hand-written: no maintained Python library plans on a directed lane graph with footprint-checked connectors; the
graph search is tiny, and the only grid searches (connector fallback) use scipy.

Failures are the typed ``planner.PlannerError`` subclasses (Nav2's ComputePathToPose codes).
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from ..geometry import Pose2D, wrap_angle
from .lanes import LaneRules, clearance_field, segment_sample
from .occupancy import OccupancyGrid, from_polygons
from .planner import (GoalOccupied, GoalOutsideMap, InvalidPose, NoValidPath, Path, PlannerTimeout, StartOccupied,
                      StartOutsideMap, path_from_polyline)

_SQRT2 = math.sqrt(2.0)
_NEIGHBOURS = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


@dataclass
class _Track:
    """A usable stretch of one lane's centre line: ``a`` -> ``b`` (map m), along the lane's direction."""

    lane: int
    a: np.ndarray
    b: np.ndarray
    one_way: bool
    length: float = 0.0
    unit: np.ndarray = field(default_factory=lambda: np.zeros(2))
    nodes: List[Tuple[float, int]] = field(default_factory=list)  # (arc m from a, node id)

    def point(self, s: float) -> np.ndarray:
        return self.a + s * self.unit

    def project(self, p) -> float:
        return float(np.clip((np.asarray(p, float) - self.a) @ self.unit, 0.0, self.length))


@dataclass
class _Query:
    """Per-plan state: the endpoints, their windows' clearance fields and connector reach."""

    s: np.ndarray
    g: np.ndarray
    windows: list  # [(r0, r1, c0, c1, field)]
    reach: list  # [(centre, radius m)]: within, connector margins apply
    deadline: float


class LanePlanner:
    """Lane-following planner with ``GridPlanner``'s interface: ``plan(start, goal) -> Path``.

    ``grid``: the garage's static occupancy grid; ``garage``: the loaded garage (lanes, spots, vehicles, zones);
    ``footprint_m``: (length along x, width along y) of the robot, from the URDF.
    ``inflation_margin_m``: clearance kept beyond the footprint in lanes; ``approach_margin_m``: the smaller one in
    staging areas and on connectors (the staging pose itself sits this close to a car).
    ``endpoint_tolerance_m``: within this distance of the start or goal only the bare footprint must be clear (a
    pose reported a little inside the margin, or a staging pose right beside a car, is still accepted).
    ``staging_area_margin_m`` / ``staging_area_radius_m``: which spots and other non-lane cells form an endpoint's
    staging area (``lanes.LaneRules``).

    Construction (rules, clearance fields, the lane graph) takes about a second on a 100 m x 60 m level; a plan takes
    milliseconds. Not re-entrant: ``plan`` patches a per-query field in place, so call it from one thread at a time.
    """

    def __init__(self, grid: OccupancyGrid, garage, footprint_m: Tuple[float, float],
                 inflation_margin_m: float = 0.25, approach_margin_m: float = 0.05, timeout_s: float = 1.0,
                 path_spacing_m: float = 0.05, lane_speed_mps: float = 1.0, near_speed_mps: float = 0.5,
                 approach_speed_mps: float = 0.15, approach_length_m: float = 1.0, near_car_distance_m: float = 1.0,
                 endpoint_tolerance_m: float = 0.15, staging_area_radius_m: float = 2.0,
                 staging_area_margin_m: float = 0.3,
                 connector_window_m: float = 6.0, rotate_threshold_rad: float = 0.6):
        length, width = (float(v) for v in footprint_m)
        for name, value in (("footprint length", length), ("footprint width", width), ("timeout_s", timeout_s),
                            ("path_spacing_m", path_spacing_m), ("lane_speed_mps", lane_speed_mps),
                            ("near_speed_mps", near_speed_mps), ("approach_speed_mps", approach_speed_mps),
                            ("connector_window_m", connector_window_m)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be positive, got {value!r}")
        for name, value in (("inflation_margin_m", inflation_margin_m), ("approach_margin_m", approach_margin_m),
                            ("approach_length_m", approach_length_m), ("near_car_distance_m", near_car_distance_m),
                            ("endpoint_tolerance_m", endpoint_tolerance_m),
                            ("staging_area_radius_m", staging_area_radius_m),
                            ("staging_area_margin_m", staging_area_margin_m)):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be non-negative, got {value!r}")
        self.grid = grid
        self.garage = garage
        self.footprint_m = (length, width)
        self.timeout_s = float(timeout_s)
        self.path_spacing_m = float(path_spacing_m)
        self.lane_speed_mps = float(lane_speed_mps)
        self.near_speed_mps = min(float(near_speed_mps), self.lane_speed_mps)
        self.approach_speed_mps = min(float(approach_speed_mps), self.near_speed_mps)
        self.approach_length_m = float(approach_length_m)
        self.endpoint_tolerance_m = float(endpoint_tolerance_m)
        self.window_m = float(connector_window_m)
        self.rotate_threshold_rad = float(rotate_threshold_rad)
        self.start_escape_m = 0.3
        res = grid.resolution_m
        self._res = res
        self._step = res  # segment sampling step
        # Discretisation: a sample anywhere in its cell, an obstacle anywhere in its cell, samples a step apart.
        self._pad = _SQRT2 * res + 0.5 * self._step
        n = max(1, math.ceil(1.5 * length / width))
        self._cover_offsets = np.array([-0.5 * length + (2 * k + 1) * length / (2 * n) for k in range(n)])
        self._cover_r = math.hypot(length / (2 * n), 0.5 * width)
        self._r_circ = math.hypot(0.5 * length, 0.5 * width)
        self._margin_lane = float(inflation_margin_m)
        self._margin_conn = float(approach_margin_m)
        self._req_lane = self._cover_r + inflation_margin_m + self._pad
        self._req_conn = self._cover_r + approach_margin_m + self._pad
        self._req_end = self._cover_r
        # The footprint's outline, sampled every ~res/2 (body frame), for the exact test.
        k = max(2, int(math.ceil(length / (0.5 * res))))
        j = max(2, int(math.ceil(width / (0.5 * res))))
        xs = np.linspace(-0.5 * length, 0.5 * length, k + 1)
        ys = np.linspace(-0.5 * width, 0.5 * width, j + 1)
        self._outline = np.concatenate([np.stack([xs, np.full_like(xs, -0.5 * width)], 1),
                                        np.stack([xs, np.full_like(xs, 0.5 * width)], 1),
                                        np.stack([np.full_like(ys, -0.5 * length), ys], 1),
                                        np.stack([np.full_like(ys, 0.5 * length), ys], 1)])
        self._pad_outline = _SQRT2 * res + 0.25 * res + 0.5 * self._step
        self.track_clearance_m = self._r_circ + inflation_margin_m + self._pad
        self.rules = LaneRules(garage, grid, footprint_m, margin_m=staging_area_margin_m,
                               area_radius_m=staging_area_radius_m)
        self._field_obs_blocked = self.rules.occupied
        self._field_lane = clearance_field(~self.rules.drivable, res).astype(np.float32)
        self._field_q = self._field_lane.copy()  # the lane field with the current query's windows patched in
        cars = [o.polygon for o in garage.static_obstacles() if o.kind == "vehicle"]
        self._near_car = np.zeros((grid.height, grid.width), dtype=bool)
        if cars:
            car_mask = from_polygons(grid.size_m, res, cars, grid.origin_xy).occupied_mask()
            self._near_car = clearance_field(car_mask, res, border_blocked=False) < (
                0.5 * width + near_car_distance_m)
        self._zone_speed = np.full((grid.height, grid.width), np.inf)
        for z in getattr(garage, "zones", ()):
            if z.kind == "speed_limit":
                m = from_polygons(grid.size_m, res, [z.polygon], grid.origin_xy).occupied_mask()
                self._zone_speed[m] = np.minimum(self._zone_speed[m], float(z.max_speed_mps))
        self._build_graph()

    # ------------------------------------------------------------------ graph construction
    def _build_graph(self) -> None:
        self.tracks: List[_Track] = []
        self.nodes: List[np.ndarray] = []
        self._links: List[Tuple[int, int, float]] = []  # directed edges that are not along a track
        for li, lane in enumerate(self.rules.lanes):
            a, b = np.array(lane.start, float), np.array(lane.end, float)
            pts = segment_sample(a, b, self._res)
            ok = self._lookup(self._field_lane, pts, 0.0) >= self.track_clearance_m
            # Contiguous runs of usable samples become tracks.
            edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
            for i0, i1 in zip(edges[::2], edges[1::2]):
                if i1 - i0 < 2:
                    continue
                t = _Track(li, pts[i0].copy(), pts[i1 - 1].copy(), lane.one_way)
                t.length = float(np.hypot(*(t.b - t.a)))
                t.unit = (t.b - t.a) / t.length
                self.tracks.append(t)
        for t in self.tracks:
            self._add_node(t, 0.0)
            self._add_node(t, t.length)
        empty_query = _Query(np.full(2, -1e9), np.full(2, -1e9), [], [], math.inf)
        for i, ti in enumerate(self.tracks):
            for tj in self.tracks[i + 1:]:
                if ti.lane == tj.lane:
                    continue
                si, sj, dist = _closest_params(ti, tj)
                pi, pj = ti.point(si), tj.point(sj)
                if dist < 1e-6:
                    node = self._add_node(ti, si)
                    self._add_node(tj, sj, node)
                    continue
                lanes = self.rules.lanes
                if dist > 0.5 * (lanes[ti.lane].width_m + lanes[tj.lane].width_m):
                    continue
                ni, nj = self._add_node(ti, si), self._add_node(tj, sj)
                for u, v, pu, pv in ((ni, nj, pi, pj), (nj, ni, pj, pi)):
                    if self._segment_ok(pu, pv, empty_query, "lane"):
                        self._links.append((u, v, dist))
        for t in self.tracks:
            t.nodes.sort()
        self._add_corner_nodes(empty_query)

    def _add_corner_nodes(self, q: _Query) -> None:
        """Nodes near the inner corners where two lanes' edges meet (a shortest path wraps around them), moved
        towards the lanes' crossing until the robot may turn there, each joined to every node it sees."""
        lanes = self.rules.lanes
        corners = []
        for i in range(len(lanes)):
            for j in range(i + 1, len(lanes)):
                li, lj = lanes[i], lanes[j]
                di, dj = np.array(li.direction), np.array(lj.direction)
                if abs(di[0] * dj[1] - di[1] * dj[0]) < 1e-6:
                    continue
                x = _line_intersection(np.array(li.start), di, np.array(lj.start), dj)
                len_i = math.hypot(li.end[0] - li.start[0], li.end[1] - li.start[1])
                len_j = math.hypot(lj.end[0] - lj.start[0], lj.end[1] - lj.start[1])
                si, sj = float((x - li.start) @ di), float((x - lj.start) @ dj)
                if not (-0.5 * lj.width_m <= si <= len_i + 0.5 * lj.width_m
                        and -0.5 * li.width_m <= sj <= len_j + 0.5 * li.width_m):
                    continue
                ni, nj = np.array([-di[1], di[0]]), np.array([-dj[1], dj[0]])
                for a in (0.5, -0.5):
                    for b in (0.5, -0.5):
                        p = _line_intersection(np.array(li.start) + a * li.width_m * ni, di,
                                               np.array(lj.start) + b * lj.width_m * nj, dj)
                        u = x - p
                        dist = float(np.hypot(*u))
                        if dist < self._res:
                            continue
                        ts = np.arange(self._res, dist, self._res)
                        pts = p + ts[:, None] * (u / dist)
                        # Room to turn there, and room to drive along either edge from there.
                        along = np.minimum(np.abs((pts - p) @ ni), np.abs((pts - p) @ nj))
                        ok = np.flatnonzero((self._lookup(self._field_lane, pts, 0.0) >= self.track_clearance_m)
                                            & (along >= self._req_lane + 2.0 * self._res))
                        if len(ok):
                            corners.append(pts[ok[0]])
        first = len(self.nodes)
        for c in corners:
            if all(np.hypot(*(c - self.nodes[k])) > 0.5 for k in range(first, len(self.nodes))):
                self.nodes.append(c)
        self._corner_ids = list(range(first, len(self.nodes)))
        self._corner_lanes = {k: [li for li, ln in enumerate(lanes) if ln.contains(self.nodes[k])]
                              for k in self._corner_ids}
        for u in range(first, len(self.nodes)):
            for v in range(u):
                pu, pv = self.nodes[u], self.nodes[v]
                if not self._segment_clear(pu, pv, q, "lane"):
                    continue
                c = float(np.hypot(*(pu - pv)))
                if self._segment_permitted(pu, pv):
                    self._links.append((u, v, c))
                if self._segment_permitted(pv, pu):
                    self._links.append((v, u, c))

    def _add_node(self, track: _Track, s: float, node: Optional[int] = None) -> int:
        for s0, n0 in track.nodes:
            if abs(s0 - s) < 1e-6:
                return n0
        if node is None:
            node = len(self.nodes)
            self.nodes.append(track.point(s))
        track.nodes.append((s, node))
        return node

    # ------------------------------------------------------------------ public
    def plan(self, start: Pose2D, goal: Pose2D) -> Path:
        """A path from ``start`` to ``goal`` obeying the lane rules (map frame, m and rad), with speed limits.

        Raises InvalidPose, StartOutsideMap / GoalOutsideMap, StartOccupied / GoalOccupied (the footprint there
        touches an obstacle or a spot outside its staging area), NoValidPath (no rule-abiding way) or
        PlannerTimeout (``timeout_s`` exceeded).
        """
        deadline = time.monotonic() + self.timeout_s
        s_pose = _finite_pose(start, "start")
        g_pose = _finite_pose(goal, "goal")
        s, g = s_pose.xy, g_pose.xy
        for p, outside, what in ((s, StartOutsideMap, "start"), (g, GoalOutsideMap, "goal")):
            if not self.grid.in_bounds(p[0], p[1]):
                raise outside(f"{what} ({p[0]:.2f}, {p[1]:.2f}) is outside the map")
        for p, occupied, what in ((s, StartOccupied, "start"), (g, GoalOccupied, "goal")):
            if self.grid.is_occupied(p[0], p[1]):
                raise occupied(f"{what} ({p[0]:.2f}, {p[1]:.2f}) is inside an obstacle")
        q = self._make_query(s_pose, g_pose, deadline)
        saved = []
        try:
            for r0, r1, c0, c1, fld, (t0, t1, u0, u1) in q.windows:
                sl = (slice(t0, t1), slice(u0, u1))
                saved.append((sl, self._field_q[sl].copy()))
                self._field_q[sl] = np.maximum(self._field_q[sl], fld[t0 - r0:t1 - r0, u0 - c0:u1 - c0])
            return self._plan(s_pose, g_pose, q)
        finally:
            for sl, old in reversed(saved):
                self._field_q[sl] = old

    def _plan(self, s_pose: Pose2D, g_pose: Pose2D, q: _Query) -> Path:
        for pose, occupied, what in ((s_pose, StartOccupied, "start"), (g_pose, GoalOccupied, "goal")):
            fp = self._footprint_clearance(pose, q)
            # The robot is at its start: a footprint there a little inside a car or a spot line (a localization
            # error) must still be able to drive out; the first ``start_escape_m`` of the path are not checked.
            limit = 0.0 if occupied is StartOccupied else self._pad_outline
            if fp < limit:
                raise occupied(f"{what} ({pose.x:.2f}, {pose.y:.2f}, {pose.yaw:.2f}): the robot's footprint there "
                               f"touches an obstacle, the map edge or a parking spot outside its staging area")
        polyline, keep = self._route(s_pose, g_pose, q)
        self._check_time(q)
        polyline = self._shorten(polyline, keep, q)
        path = path_from_polyline(np.array(polyline), g_pose.yaw, self.path_spacing_m)
        path.speed_limits = self._speed_limits(path)
        return path

    # ------------------------------------------------------------------ query set-up
    def _make_query(self, s: Pose2D, g: Pose2D, deadline: float) -> _Query:
        """The query's endpoints and, around each staging area, a clearance field in which that area is allowed
        (outside those boxes the precomputed lane field is already exact)."""
        q = _Query(s.xy, g.xy, [], [], deadline)
        pad_cells = int(math.ceil((self._req_lane + self._pad) / self._res)) + 2
        areas = []
        for p in (s, g):
            spots = self.rules.area_spots(p)
            boxes = [self.rules.window_around(p, self.rules.area_radius_m + self._res)]
            for i in spots:
                poly = self.rules.spot_polygons[i]
                lo = self.grid.world_to_cell(float(poly[:, 0].min()), float(poly[:, 1].min()))
                hi = self.grid.world_to_cell(float(poly[:, 0].max()), float(poly[:, 1].max()))
                boxes.append((lo[0], hi[0] + 1, lo[1], hi[1] + 1))
            box = (max(0, min(b[0] for b in boxes)), min(self.grid.height, max(b[1] for b in boxes)),
                   max(0, min(b[2] for b in boxes)), min(self.grid.width, max(b[3] for b in boxes)))
            areas.append((p, box, spots))
        for p, box, _ in areas:
            # Allowing the area changes the clearance up to a pad beyond it (trusted box); the field is computed a
            # further pad out so that nothing beyond the window can matter inside the trusted box.
            t0, t1 = max(0, box[0] - pad_cells), min(self.grid.height, box[1] + pad_cells)
            u0, u1 = max(0, box[2] - pad_cells), min(self.grid.width, box[3] + pad_cells)
            r0, r1 = max(0, t0 - pad_cells), min(self.grid.height, t1 + pad_cells)
            c0, c1 = max(0, u0 - pad_cells), min(self.grid.width, u1 + pad_cells)
            w = (r0, r1, c0, c1)
            allowed = self.rules.drivable[r0:r1, c0:c1].copy()
            for p2, _, spots2 in areas:
                allowed |= self.rules.area_mask(p2, w, spots2)
            allowed &= ~self.rules.occupied[r0:r1, c0:c1]
            fld = clearance_field(~allowed, self._res, border_blocked=False)
            if r0 == 0 or c0 == 0 or r1 == self.grid.height or c1 == self.grid.width:
                fld = self._with_map_edge(fld, w)
            # Obstacles beyond the window are unseen, so only the box (a pad away from the cut edges) is trusted.
            q.windows.append((r0, r1, c0, c1, fld, (t0, t1, u0, u1)))
        return q

    def _with_map_edge(self, fld: np.ndarray, w) -> np.ndarray:
        r0, r1, c0, c1 = w
        res = self._res
        rows = np.arange(r0, r1)[:, None]
        cols = np.arange(c0, c1)[None, :]
        edge = np.minimum(np.minimum(rows + 1, self.grid.height - rows), np.minimum(cols + 1, self.grid.width - cols))
        return np.minimum(fld, edge * res)

    # ------------------------------------------------------------------ clearance checks
    def _cells(self, pts: np.ndarray):
        ox, oy = self.grid.origin_xy
        cols = np.floor((pts[:, 0] - ox) / self._res).astype(np.int64)
        rows = np.floor((pts[:, 1] - oy) / self._res).astype(np.int64)
        inside = (rows >= 0) & (rows < self.grid.height) & (cols >= 0) & (cols < self.grid.width)
        return rows, cols, inside

    def _lookup(self, arr: np.ndarray, pts: np.ndarray, outside_value) -> np.ndarray:
        rows, cols, inside = self._cells(pts)
        out = np.full(len(pts), outside_value, dtype=arr.dtype)
        out[inside] = arr[rows[inside], cols[inside]]
        return out

    def _field(self, pts: np.ndarray, q: _Query) -> np.ndarray:
        """Clearance (m) at ``pts`` from everything this query forbids (0 off the map). During ``plan`` the windows'
        fields are patched into ``_field_q`` (see ``_patched``)."""
        rows, cols, inside = self._cells(pts)
        if inside.all():
            return self._field_q[rows, cols]
        out = np.zeros(len(pts), dtype=self._field_q.dtype)
        out[inside] = self._field_q[rows[inside], cols[inside]]
        return out

    def _footprint_clearance(self, pose: Pose2D, q: _Query) -> float:
        """Clearance (m, grid-measured) of the footprint's outline at ``pose``."""
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        pts = pose.xy[None, :] + self._outline @ np.array([[c, -s], [s, c]]).T
        return float(self._field(pts, q).min())

    def _margins(self, pts: np.ndarray, q: _Query, kind: str) -> np.ndarray:
        """Clearance (m) the footprint must keep at each sample: lane margin, connector margin, or none right at an
        endpoint."""
        m = np.full(len(pts), self._margin_conn if kind == "conn" else self._margin_lane)
        a, b = pts[0], pts[-1]
        zones = [(c, r, self._margin_conn) for c, r in q.reach] if kind == "auto" else []
        zones += [(c, self.endpoint_tolerance_m, 0.0) for c in (q.s, q.g)]
        zones.append((q.s, self.start_escape_m, -math.inf))
        for centre, radius, value in zones:
            if _point_segment_distance(centre, a, b) > radius:
                continue
            near = (pts[:, 0] - centre[0]) ** 2 + (pts[:, 1] - centre[1]) ** 2 <= radius * radius
            m[near] = np.minimum(m[near], value)
        return m

    def _segment_ok(self, a, b, q: _Query, kind: str) -> bool:
        """Whether driving straight from a to b (map m) keeps the footprint clear and breaks no one-way rule.
        ``kind``: 'lane' (lane margin), 'conn' (connector margin) or 'auto' (connector margin near the endpoints)."""
        return self._segment_permitted(a, b) and self._segment_clear(a, b, q, kind)

    def _segment_permitted(self, a, b) -> bool:
        """Whether every cell of segment a-b allows its direction (one-way lanes) and it stays on the map."""
        a = np.asarray(a, float)
        b = np.asarray(b, float)
        d = b - a
        if math.hypot(d[0], d[1]) < 1e-9:
            return True
        rows, cols, inside = self._cells(segment_sample(a, b, self._step))
        return bool(inside.all()) and bool(self.rules.permits(rows, cols, d).all())

    def _segment_clear(self, a, b, q: _Query, kind: str) -> bool:
        """Whether the footprint, heading from a to b, keeps its margin all along (see ``_segment_ok``)."""
        a = np.asarray(a, float)
        b = np.asarray(b, float)
        d = b - a
        n = math.hypot(d[0], d[1])
        if n < 1e-9:
            return True
        h = d / n
        pts = segment_sample(a, b, self._step)
        margin = self._margins(pts, q, kind)
        centres = (pts[None, :, :] + self._cover_offsets[:, None, None] * h[None, None, :]).reshape(-1, 2)
        clear = self._field(centres, q).reshape(len(self._cover_offsets), len(pts)).min(axis=0)
        bad = clear < self._cover_r + margin + self._pad
        if not bad.any():
            return True
        # The circles bulge past the rectangle; samples they reject get the exact test on the footprint's outline.
        c, s_ = h
        rot = np.array([[c, -s_], [s_, c]])
        outline = self._outline @ rot.T
        for i in np.flatnonzero(bad):
            if (self._field(pts[i] + outline, q) < margin[i] + self._pad_outline).any():
                return False
        return True

    def _check_time(self, q: _Query) -> None:
        if time.monotonic() > q.deadline:
            raise PlannerTimeout(f"planning took longer than {self.timeout_s:.2f} s")

    # ------------------------------------------------------------------ routing
    def _route(self, s_pose: Pose2D, g_pose: Pose2D, q: _Query) -> tuple:
        """Polyline [start ... goal] along the lane graph, and the indices of vertices shortening must keep."""
        s, g = s_pose.xy, g_pose.xy
        s_conn = self._connectors(s_pose, q, leaving=True)
        self._check_time(q)
        g_conn = self._connectors(g_pose, q, leaving=False)
        self._check_time(q)
        for centre, conns in ((s, s_conn), (g, g_conn)):
            reach = max((_polyline_length(c[2]) for c in conns), default=0.0)
            q.reach.append((centre, reach + 0.5))
        direct = None
        if math.hypot(*(g - s)) <= 2.0 * self.window_m and self._segment_ok(s, g, q, "conn"):
            direct = [s, g]
        if (not s_conn or not g_conn) and direct is None and self.rules.implicit_lane:
            fallback = self._grid_route(s, g, q)
            if fallback is not None:
                return fallback, {0, len(fallback) - 1}
        if not s_conn and direct is None:
            raise NoValidPath(f"start ({s[0]:.2f}, {s[1]:.2f}) cannot reach a lane without crossing a parking spot "
                              "or an obstacle")
        if not g_conn and direct is None:
            raise NoValidPath(f"goal ({g[0]:.2f}, {g[1]:.2f}) cannot be reached from a lane without crossing a "
                              "parking spot or an obstacle")

        # Graph for this query: static nodes, the attach points, start (S) and goal (G).
        nodes = list(self.nodes)
        extra: Dict[int, List[Tuple[float, int]]] = {}
        adj: Dict[int, List[Tuple[int, float]]] = {}
        polys: Dict[Tuple[int, int], list] = {}
        S, G = len(nodes), len(nodes) + 1
        nodes += [s, g]

        def attach(ti: int, arc: float) -> int:
            t = self.tracks[ti]
            for s0, n0 in t.nodes + extra.get(ti, []):
                if abs(s0 - arc) < 1e-6:
                    return n0
            nid = len(nodes)
            nodes.append(t.point(arc))
            extra.setdefault(ti, []).append((arc, nid))
            return nid

        def portal(end: int, poly: list, leaving: bool) -> int:
            """The connector's vertex next to the lane graph as a node of its own (the endpoint itself for a
            one-segment connector), joined to the corner nodes it sees."""
            if len(poly) == 2:
                node = end
            else:
                node = len(nodes)
                nodes.append(np.asarray(poly[-2] if leaving else poly[1], float))
                inner = poly[:-1] if leaving else poly[1:]
                edge = (end, node) if leaving else (node, end)
                adj.setdefault(edge[0], []).append((edge[1], _polyline_length(inner)))
                polys[edge] = inner
            for c in self._visible_corners(nodes[node], q, leaving):
                u, v = (node, c) if leaving else (c, node)
                adj.setdefault(u, []).append((v, float(np.hypot(*(nodes[u] - nodes[v])))))
            return node

        for ti, arc, poly in s_conn:
            a = attach(ti, arc)
            e = portal(S, poly, True)
            adj.setdefault(e, []).append((a, float(np.hypot(*(nodes[a] - nodes[e])))))
        for ti, arc, poly in g_conn:
            a = attach(ti, arc)
            e = portal(G, poly, False)
            adj.setdefault(a, []).append((e, float(np.hypot(*(nodes[a] - nodes[e])))))
        if direct is not None:
            adj.setdefault(S, []).append((G, math.hypot(*(g - s))))
            polys[(S, G)] = direct
        for ti, t in enumerate(self.tracks):
            chain = sorted(t.nodes + extra.get(ti, []))
            for (s0, n0), (s1, n1) in zip(chain, chain[1:]):
                c = s1 - s0
                adj.setdefault(n0, []).append((n1, c))
                if not t.one_way:
                    adj.setdefault(n1, []).append((n0, c))
        for u, v, c in self._links:
            adj.setdefault(u, []).append((v, c))

        order = self._astar(adj, nodes, S, G, q)
        if order is None:
            self._check_time(q)
            fallback = self._grid_route(s, g, q)
            if fallback is not None:
                return fallback, {0, len(fallback) - 1}
            raise NoValidPath(f"no way along the lanes from ({s[0]:.2f}, {s[1]:.2f}) to ({g[0]:.2f}, {g[1]:.2f}) "
                              "that respects the one-way lanes and keeps out of parking spots")
        out = [s]
        keep = {0}
        for u, v in zip(order, order[1:]):
            poly = polys.get((u, v))
            if poly is None:
                out.append(nodes[v])
            else:
                out.extend(np.asarray(p, float) for p in poly[1:])
            if v == G and poly is not None and len(out) >= 3:
                keep.add(len(out) - 2)  # the goal connector's entry vertex: the final approach stays straight
        keep.add(len(out) - 1)
        return out, keep

    def _visible_corners(self, p: np.ndarray, q: _Query, leaving: bool, limit: int = 6) -> List[int]:
        """Up to ``limit`` nearest corner nodes in a lane containing ``p`` that a straight drive reaches (from
        ``p`` when leaving, towards it otherwise)."""
        cand = [k for k in self._corner_ids if any(self.rules.lanes[li].contains(p) for li in self._corner_lanes[k])]
        cand.sort(key=lambda k: float(np.hypot(*(self.nodes[k] - p))))
        out = []
        for k in cand:
            a, b = (p, self.nodes[k]) if leaving else (self.nodes[k], p)
            if self._segment_ok(a, b, q, "lane"):
                out.append(k)
                if len(out) >= limit:
                    break
        return out

    def _astar(self, adj, nodes, S: int, G: int, q: _Query) -> Optional[list]:
        goal = nodes[G]
        best = {S: 0.0}
        prev = {S: -1}
        heap = [(float(np.hypot(*(nodes[S] - goal))), 0.0, S)]
        done = set()
        while heap:
            _, cost, u = heapq.heappop(heap)
            if u in done:
                continue
            if u == G:
                order = [G]
                while prev[order[-1]] != -1:
                    order.append(prev[order[-1]])
                return order[::-1]
            done.add(u)
            for v, c in adj.get(u, ()):
                nc = cost + c
                if nc < best.get(v, math.inf) - 1e-12:
                    best[v] = nc
                    prev[v] = u
                    heapq.heappush(heap, (nc + float(np.hypot(*(nodes[v] - goal))), nc, v))
        return None

    # ------------------------------------------------------------------ connectors
    def _tracks_near(self, p: np.ndarray) -> List[int]:
        """Tracks whose lane contains ``p``."""
        return [i for i, t in enumerate(self.tracks) if self.rules.lanes[t.lane].contains(p)]

    def _connectors(self, pose: Pose2D, q: _Query, leaving: bool) -> list:
        """[(track index, arc m, polyline from the endpoint outwards (leaving) or towards it)]: ways between the
        endpoint and the lane graph.

        A leg that makes the robot turn in place at the endpoint is used only where that turn fits. Otherwise the
        robot drives straight along the endpoint's heading first (start) or last (goal) and turns where there is
        room. A start from which nothing fits still gets its legs (the robot is there and must get out)."""
        p = pose.xy
        u = np.array([math.cos(pose.yaw), math.sin(pose.yaw)])
        legs = self._candidate_legs(pose, q, leaving, allow_grid=False)
        if legs and float(self._field(p[None, :], q)[0]) >= self.track_clearance_m:
            return legs  # room all round (a lane position): turning there is harmless
        aligned = [leg for leg in legs if not self._needs_turn(leg, pose.yaw, leaving)]
        if aligned or (leaving and legs and self._turn_fits(p, q)):
            # A goal is best entered straight along its heading: turning in place right beside (or heading into) a
            # car is where a stop zone holds the robot.
            return aligned if not leaving else legs
        for length in (1.0, 0.5, 1.5, 2.0):
            e = p + length * u if leaving else p - length * u
            if not self._turn_fits(e, q):
                continue
            if not (self._segment_ok(p, e, q, "conn") if leaving else self._segment_ok(e, p, q, "conn")):
                continue
            sub = self._candidate_legs(Pose2D(float(e[0]), float(e[1]), pose.yaw), q, leaving, allow_grid=False)
            if sub:
                return [(ti, arc, [p] + list(poly) if leaving else list(poly) + [p]) for ti, arc, poly in sub]
        if not legs:
            leg = self._grid_leg(p, q, leaving)  # the (slower) grid search only when no straight leg exists
            legs = [leg] if leg is not None else []
            if legs and not self._needs_turn(legs[0], pose.yaw, leaving):
                return legs
        if leaving:
            return legs
        return legs if self._turn_fits(p, q) else []

    def _turn_fits(self, p: np.ndarray, q: _Query) -> bool:
        return float(self._field(np.asarray(p, float)[None, :], q)[0]) >= self._r_circ

    def _needs_turn(self, leg, yaw: float, leaving: bool) -> bool:
        poly = leg[2]
        a, b = (poly[0], poly[1]) if leaving else (poly[-2], poly[-1])
        d = np.asarray(b, float) - np.asarray(a, float)
        if math.hypot(d[0], d[1]) < 1e-9:
            return False
        return abs(wrap_angle(math.atan2(d[1], d[0]) - yaw)) > self.rotate_threshold_rad

    def _candidate_legs(self, pose: Pose2D, q: _Query, leaving: bool, allow_grid: bool = True) -> list:
        p = pose.xy
        found = []
        # On a lane already: straight across to each track of a lane containing it.
        if self._lookup(self._field_lane, p[None, :], 0.0)[0] >= self._req_conn:
            for ti in self._tracks_near(p):
                t = self.tracks[ti]
                arc = t.project(p)
                a = t.point(arc)
                if self._leg_ok([p, a] if leaving else [a, p], q):
                    found.append((ti, arc, [p, a] if leaving else [a, p]))
            if found:
                return found
        # In a staging area: straight legs along the endpoint's axes to the first point from which a track is
        # reachable. A goal is entered along its heading (u), so that the robot arrives aligned.
        u = np.array([math.cos(pose.yaw), math.sin(pose.yaw)])
        perp = np.array([-u[1], u[0]])
        dirs = [u, -u, perp, -perp] if leaving else [-u, u, perp, -perp]
        for d in dirs:
            leg = self._straight_leg(p, d, q, leaving)
            if leg is not None:
                found.append(leg)
        if found or not allow_grid:
            return found
        leg = self._grid_leg(p, q, leaving)
        return [leg] if leg is not None else []

    def _leg_ok(self, poly, q: _Query) -> bool:
        return all(self._segment_ok(a, b, q, "conn") for a, b in zip(poly, poly[1:]))

    def _straight_leg(self, p: np.ndarray, d: np.ndarray, q: _Query, leaving: bool):
        pts = segment_sample(p, p + self.window_m * d, self._res)
        lane_ok = self._lookup(self._field_lane, pts, 0.0) >= self.track_clearance_m
        hits = np.flatnonzero(lane_ok)
        if len(hits) == 0:
            return None
        e = pts[hits[0]]
        best = None
        for ti in self._tracks_near(e):
            t = self.tracks[ti]
            arc = t.project(e)
            a = t.point(arc)
            poly = [p, e, a] if leaving else [a, e, p]
            if np.hypot(*(a - e)) < 1e-6:
                poly = [p, a] if leaving else [a, p]
            if not self._leg_ok(poly, q):
                continue
            if best is None or _polyline_length(poly) < _polyline_length(best[2]):
                best = (ti, arc, poly)
        return best

    def _grid_leg(self, p: np.ndarray, q: _Query, leaving: bool):
        """Fallback: 8-connected Dijkstra in the endpoint's window on cells whose clearance fits the footprint
        (circle cover, connector margin), honouring one-way cells, to the nearest cell on a track."""
        r0, r1, c0, c1 = self.rules.window_around(Pose2D(float(p[0]), float(p[1])), self.window_m)
        fld = self._field_q[r0:r1, c0:c1]
        h, w = fld.shape
        ok = fld >= self._req_conn
        pr, pc = self.grid.world_to_cell(p[0], p[1])
        if not (r0 <= pr < r1 and c0 <= pc < c1):
            return None
        # The endpoint's own cell and those within the tolerance are usable as long as the bare footprint fits.
        yy, xx = np.mgrid[r0:r1, c0:c1]
        ox, oy = self.grid.origin_xy
        near = np.hypot(ox + (xx + 0.5) * self._res - p[0], oy + (yy + 0.5) * self._res - p[1])
        ok |= (near <= self.endpoint_tolerance_m + self._res) & (fld >= self._req_end)
        track_cells = np.zeros((h, w), dtype=bool)
        for t in self.tracks:
            pts = segment_sample(t.a, t.b, self._res)
            rows, cols, inside = self._cells(pts)
            m = inside & (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
            track_cells[rows[m] - r0, cols[m] - c0] = True
        track_cells &= ok
        if not track_cells.any():
            return None
        start = (pr - r0) * w + (pc - c0)
        cells = self._cell_search(ok, self.rules.lane_combo[r0:r1, c0:c1], 1, start, track_cells, not leaving)
        if cells is None:
            return None
        pts = [np.array([ox + (c0 + c % w + 0.5) * self._res, oy + (r0 + c // w + 0.5) * self._res]) for c in cells]
        pts = pts[::-1]
        pts[0] = p.copy()
        e = pts[-1]
        best = None
        for ti in self._tracks_near(e):
            t = self.tracks[ti]
            arc = t.project(e)
            if np.hypot(*(t.point(arc) - e)) <= 2.0 * self._res:
                best = (ti, arc)
                break
        if best is None:
            return None
        poly = _simplify_cells(pts)
        poly.append(self.tracks[best[0]].point(best[1]))
        poly = poly if leaving else poly[::-1]
        # The cells only had room for the circle cover: straighten the leg, then check the oriented footprint on it.
        poly = self._shorten(poly, {0, len(poly) - 1}, q, "conn")
        if not self._leg_ok(poly, q):
            return None
        return (best[0], best[1], poly)

    def _cell_search(self, ok: np.ndarray, combo: np.ndarray, k: int, start: int, targets: np.ndarray,
                     backwards: bool) -> Optional[list]:
        """8-connected Dijkstra (scipy) over the ``ok`` cells (cells of ``k`` grid cells per side; ``combo`` their
        lane combinations, a move allowed where both cells permit its direction) from flat index ``start`` to the
        nearest ``targets`` cell; ``backwards`` searches the reversed moves (from a goal). Flat indices from the
        target back to ``start``, or None."""
        h, w = ok.shape
        ids = np.arange(h * w).reshape(h, w)
        src, dst, cost = [], [], []
        for dr, dc in _NEIGHBOURS:
            a = ok & self.rules.combo_permits((dc, dr))[combo]
            ys0, ys1 = max(0, -dr), h - max(0, dr)
            xs0, xs1 = max(0, -dc), w - max(0, dc)
            m = a[ys0:ys1, xs0:xs1] & a[ys0 + dr:ys1 + dr, xs0 + dc:xs1 + dc]
            u = ids[ys0:ys1, xs0:xs1][m]
            src.append(u)
            dst.append(ids[ys0 + dr:ys1 + dr, xs0 + dc:xs1 + dc][m])
            cost.append(np.full(len(u), k * self._res * (_SQRT2 if dr and dc else 1.0)))
        src, dst, cost = np.concatenate(src), np.concatenate(dst), np.concatenate(cost)
        if backwards:
            src, dst = dst, src
        graph = csr_matrix((cost, (src, dst)), shape=(h * w, h * w))
        dist, pred = dijkstra(graph, indices=start, return_predecessors=True)
        cand = np.where(targets.ravel(), dist, np.inf)
        j = int(np.argmin(cand))
        if not math.isfinite(cand[j]):
            return None
        cells = [j]
        while cells[-1] != start:
            cells.append(int(pred[cells[-1]]))
        return cells

    def _grid_route(self, s: np.ndarray, g: np.ndarray, q: _Query) -> Optional[list]:
        """Last resort when the lane graph cannot join start and goal (a garage without usable lane centre lines):
        8-connected Dijkstra on 2 x 2 blocks of cells where the robot may turn in place (circumscribed radius plus
        the connector margin), under the same lane rules. Polyline start ... goal, or None."""
        k = 2
        h, w = -(-self.grid.height // k), -(-self.grid.width // k)
        fld = np.zeros((h * k, w * k), dtype=self._field_q.dtype)
        fld[:self.grid.height, :self.grid.width] = self._field_q
        fld = fld.reshape(h, k, w, k).min(axis=(1, 3))
        combo = np.zeros((h * k, w * k), dtype=np.int32)
        combo[:self.grid.height, :self.grid.width] = self.rules.lane_combo
        combo = combo[::k, ::k]  # one cell's lanes stand for its block; the segment checks below use every cell
        ok = fld >= self._r_circ + self._margin_conn + self._pad
        ox, oy = self.grid.origin_xy
        cell = k * self._res
        ends = []
        for p in (s, g):
            r, c = int((p[1] - oy) // cell), int((p[0] - ox) // cell)
            if not (0 <= r < h and 0 <= c < w):
                return None
            ok[r, c] = True  # the endpoints were checked for the footprint already
            ends.append((r, c))
        targets = np.zeros((h, w), dtype=bool)
        targets[ends[1]] = True
        cells = self._cell_search(ok, combo, k, ends[0][0] * w + ends[0][1], targets, False)
        if cells is None:
            return None
        pts = [np.array([ox + (c % w + 0.5) * cell, oy + (c // w + 0.5) * cell]) for c in cells[::-1]]
        pts[0], pts[-1] = s.copy(), g.copy()
        return _simplify_cells(pts)

    # ------------------------------------------------------------------ shortening
    def _shorten(self, poly: list, keep: set, q: _Query, kind: str = "auto") -> list:
        """Line-of-sight shortening over vertices densified to about 1 m, keeping the ``keep`` vertices."""
        dense, dense_keep = [poly[0]], {0}
        for i, (a, b) in enumerate(zip(poly, poly[1:])):
            n = max(1, int(math.ceil(math.hypot(*(b - a)) / 1.0)))
            for k in range(1, n + 1):
                dense.append(a + (b - a) * (k / n))
            if i + 1 in keep:
                dense_keep.add(len(dense) - 1)
        out = [dense[0]]
        i = 0
        last = len(dense) - 1
        while i < last:
            hard = min([k for k in dense_keep if k > i], default=last)
            # Gallop then bisect for the farthest vertex visible from i (not past the next kept vertex).
            lo, step = i + 1, 1
            hi = lo
            while hi < hard:
                nxt = min(hard, i + step * 2)
                if self._segment_ok(dense[i], dense[nxt], q, kind):
                    lo = nxt
                    step *= 2
                    hi = nxt
                else:
                    hi = nxt
                    break
            if lo < hi:
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._segment_ok(dense[i], dense[mid], q, kind):
                        lo = mid
                    else:
                        hi = mid
            out.append(dense[lo])
            i = lo
            self._check_time(q)
        return out

    # ------------------------------------------------------------------ speed limits
    def _speed_limits(self, path: Path) -> np.ndarray:
        pts = path.points
        rows, cols, inside = self._cells(pts)
        rows = np.clip(rows, 0, self.grid.height - 1)
        cols = np.clip(cols, 0, self.grid.width - 1)
        v = np.full(len(pts), self.lane_speed_mps)
        slow = self._near_car[rows, cols] | ~self.rules.drivable[rows, cols]
        v[slow] = self.near_speed_mps
        v = np.minimum(v, self._zone_speed[rows, cols])
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
        v[arc >= arc[-1] - self.approach_length_m] = np.minimum(
            v[arc >= arc[-1] - self.approach_length_m], self.approach_speed_mps)
        return v


# ---------------------------------------------------------------------- helpers
def _finite_pose(pose, what: str) -> Pose2D:
    try:
        x, y, yaw = float(pose.x), float(pose.y), float(pose.yaw)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidPose(f"{what} is not a pose: {exc}") from exc
    if not all(math.isfinite(v) for v in (x, y, yaw)):
        raise InvalidPose(f"{what} has a non-finite value: ({x}, {y}, {yaw})")
    return Pose2D(x, y, yaw)


def _line_intersection(p, d, q, e) -> np.ndarray:
    """Intersection of the lines p + s d and q + t e (not parallel)."""
    cross = d[0] * e[1] - d[1] * e[0]
    r = q - p
    s = (r[0] * e[1] - r[1] * e[0]) / cross
    return p + s * d


def _point_segment_distance(p, a, b) -> float:
    d = b - a
    n2 = float(d @ d)
    t = 0.0 if n2 == 0.0 else min(1.0, max(0.0, float((p - a) @ d) / n2))
    return float(math.hypot(*(a + t * d - p)))


def _polyline_length(poly) -> float:
    p = np.asarray(poly, float)
    return float(np.hypot(*np.diff(p, axis=0).T).sum()) if len(p) > 1 else 0.0


def _closest_params(t1: _Track, t2: _Track) -> Tuple[float, float, float]:
    """Arc parameters of the closest points of two track segments, and their distance."""
    best = None
    d1, d2 = t1.unit, t2.unit
    cross = d1[0] * d2[1] - d1[1] * d2[0]
    if abs(cross) > 1e-12:
        r = t2.a - t1.a
        s1 = (r[0] * d2[1] - r[1] * d2[0]) / cross
        s2 = (r[0] * d1[1] - r[1] * d1[0]) / cross
        if -1e-9 <= s1 <= t1.length + 1e-9 and -1e-9 <= s2 <= t2.length + 1e-9:
            s1, s2 = min(max(s1, 0.0), t1.length), min(max(s2, 0.0), t2.length)
            return s1, s2, float(np.hypot(*(t1.point(s1) - t2.point(s2))))
    for s1 in (0.0, t1.length):
        s2 = t2.project(t1.point(s1))
        d = float(np.hypot(*(t1.point(s1) - t2.point(s2))))
        if best is None or d < best[2]:
            best = (s1, s2, d)
    for s2 in (0.0, t2.length):
        s1 = t1.project(t2.point(s2))
        d = float(np.hypot(*(t1.point(s1) - t2.point(s2))))
        if d < best[2]:
            best = (s1, s2, d)
    return best


def _simplify_cells(pts: list) -> list:
    """Drop cell-path vertices that lie on a straight run (same step direction)."""
    if len(pts) <= 2:
        return [np.asarray(p, float) for p in pts]
    out = [pts[0]]
    for a, b, c in zip(pts, pts[1:], pts[2:]):
        d1, d2 = b - a, c - b
        if abs(d1[0] * d2[1] - d1[1] * d2[0]) > 1e-12 or d1 @ d2 < 0:
            out.append(b)
    out.append(pts[-1])
    return out
