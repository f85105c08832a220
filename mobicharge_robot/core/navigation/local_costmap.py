"""A local costmap from the scan: what the garage map lacks (unlisted cars, boxes, people), kept in the ``map`` frame.

Scan returns farther than ``known_margin_m`` from every obstacle the map knows (walls, pillars, the listed cars, which
may stand a little off their spots) are *unknown* returns. Each is marked in a coarse grid with the time it was first
and last seen. A mark is cleared when a later beam passes through its cell (the obstacle moved away) or when it has not
been seen for ``decay_s``. Marks seen continuously for ``static_after_s`` are *static*: the navigation re-plans around
them. Younger marks are *moving* (people): the robot slows near them, stops for them in its stop zone and waits.

Interface with the planner (documented for every planner class): a re-plan stamps the static cells into a copy of the
planning grid (``stamp_obstacles``) and builds the planner on that grid; the planner needs nothing beyond the
``GridPlanner(grid, robot_radius_m=...)`` constructor and ``plan(start, goal)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import Pose2D
from .occupancy import OCCUPIED, OccupancyGrid, distance_field


@dataclass
class LocalCostmapParams:
    resolution_m: float = 0.1
    known_margin_m: float = 0.2  # returns this close to a known obstacle belong to it (cars stand a little off)
    static_after_s: float = 3.0  # people pause; a re-plan should be for things that stay
    decay_s: float = 2.0
    pass_through_margin_m: float = 0.15  # a beam must end this far beyond a cell to clear it
    max_range_m: float = 8.0  # returns farther away are ignored (stale map noise, not our business yet)

    def validate(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
                raise ValueError(f"LocalCostmapParams.{name} must be positive, got {value!r}")


class LocalCostmap:
    """Unknown obstacles seen by the scan on a grid covering ``known`` (the planning grid, map frame).

    Marks are kept as a short list of cells (not a full grid), so an update costs in proportion to the scan and the
    marks, whatever the garage's size."""

    def __init__(self, known: OccupancyGrid, params: LocalCostmapParams | None = None):
        self.params = params or LocalCostmapParams()
        self.params.validate()
        self.known = known
        self._known_field = distance_field(known)
        res = self.params.resolution_m
        sx, sy = known.size_m
        self._ox, self._oy = known.origin_xy
        self._w, self._h = max(1, math.ceil(sx / res)), max(1, math.ceil(sy / res))
        self.clear()

    def clear(self) -> None:
        self._key = np.zeros(0, dtype=np.int64)  # row * width + col, sorted
        self._first = np.zeros(0)
        self._last = np.zeros(0)

    def unknown_mask(self, pts_map: np.ndarray) -> np.ndarray:
        """Which map points (N, 2) are not explained by a known obstacle (off the map counts as known)."""
        pts = np.asarray(pts_map, float).reshape(-1, 2)
        g = self.known
        col = np.floor((pts[:, 0] - g.origin_xy[0]) / g.resolution_m).astype(np.int64)
        row = np.floor((pts[:, 1] - g.origin_xy[1]) / g.resolution_m).astype(np.int64)
        inside = (col >= 0) & (col < g.width) & (row >= 0) & (row < g.height)
        out = np.zeros(len(pts), dtype=bool)
        out[inside] = self._known_field[row[inside], col[inside]] > self.params.known_margin_m
        return out

    def update(self, sensor: Pose2D, angles: np.ndarray, ranges: np.ndarray, t: float) -> None:
        """Add one scan: ``angles`` (rad, sensor frame) and ``ranges`` (m; inf/NaN = no return) from a sensor at
        ``sensor`` (map frame), taken at time ``t`` (s)."""
        p = self.params
        angles = np.asarray(angles, float)
        r = np.asarray(ranges, float)
        hit = np.isfinite(r) & (r > 0.0) & (r <= p.max_range_m)
        a = sensor.yaw + angles
        pts = np.stack([sensor.x + r[hit] * np.cos(a[hit]), sensor.y + r[hit] * np.sin(a[hit])], axis=1)
        # Clear marks that beams now pass through, or that were not seen for decay_s.
        if len(self._key):
            cx, cy = self._centres(self._key)
            dist = np.hypot(cx - sensor.x, cy - sensor.y)
            bearing = np.arctan2(cy - sensor.y, cx - sensor.x) - sensor.yaw
            beam = _nearest_beam(angles, bearing)
            beam_r = np.where(np.isfinite(r[beam]), r[beam], np.inf)
            through = (dist + p.pass_through_margin_m < beam_r) & (dist <= p.max_range_m)
            keep = ~(through | (t - self._last > p.decay_s))
            self._key, self._first, self._last = self._key[keep], self._first[keep], self._last[keep]
        unknown = pts[self.unknown_mask(pts)]
        if len(unknown):
            col = np.floor((unknown[:, 0] - self._ox) / p.resolution_m).astype(np.int64)
            row = np.floor((unknown[:, 1] - self._oy) / p.resolution_m).astype(np.int64)
            ok = (col >= 0) & (col < self._w) & (row >= 0) & (row < self._h)
            seen = np.unique(row[ok] * self._w + col[ok])
            pos = np.searchsorted(self._key, seen)
            known = (pos < len(self._key)) & (self._key[np.minimum(pos, max(len(self._key) - 1, 0))] == seen) \
                if len(self._key) else np.zeros(len(seen), dtype=bool)
            self._last[pos[known]] = t
            new = seen[~known]
            if len(new):
                key = np.concatenate([self._key, new])
                order = np.argsort(key, kind="stable")
                self._key = key[order]
                self._first = np.concatenate([self._first, np.full(len(new), t)])[order]
                self._last = np.concatenate([self._last, np.full(len(new), t)])[order]

    def _centres(self, key: np.ndarray) -> tuple:
        rows, cols = np.divmod(key, self._w)
        res = self.params.resolution_m
        return self._ox + (cols + 0.5) * res, self._oy + (rows + 0.5) * res

    def _cells(self, t: float, static: bool) -> np.ndarray:
        old = (t - self._first) >= self.params.static_after_s
        cx, cy = self._centres(self._key[old if static else ~old])
        return np.stack([cx, cy], axis=1)

    def static_points(self, t: float) -> np.ndarray:
        """Centres (N, 2, map m) of the cells holding obstacles seen continuously for ``static_after_s``."""
        return self._cells(t, static=True)

    def moving_points(self, t: float) -> np.ndarray:
        """Centres (N, 2, map m) of the cells holding recently appeared (likely moving) obstacles."""
        return self._cells(t, static=False)


def _nearest_beam(angles: np.ndarray, bearing: np.ndarray) -> np.ndarray:
    """Index of the beam (sorted ``angles``) nearest each bearing (rad), wrapping around."""
    n = len(angles)
    if n == 1:
        return np.zeros(len(bearing), dtype=np.int64)
    inc = (angles[-1] - angles[0]) / (n - 1)
    b = (bearing - angles[0] + math.pi) % (2.0 * math.pi) - math.pi  # relative to the first beam
    b = np.where(b < -0.5 * inc, b + 2.0 * math.pi, b)
    return np.clip(np.round(b / inc).astype(np.int64), 0, n - 1)


def stamp_obstacles(grid: OccupancyGrid, pts_map: np.ndarray, radius_m: float = 0.0) -> OccupancyGrid:
    """A copy of ``grid`` with every cell within ``radius_m`` of the map points (N, 2) occupied."""
    data = grid.data.copy()
    pts = np.asarray(pts_map, float).reshape(-1, 2)
    res = grid.resolution_m
    k = int(math.ceil(radius_m / res))
    offs = [(dr, dc) for dr in range(-k, k + 1) for dc in range(-k, k + 1) if (dr * dr + dc * dc) * res * res
            <= radius_m * radius_m + 1e-12]
    col = np.floor((pts[:, 0] - grid.origin_xy[0]) / res).astype(np.int64)
    row = np.floor((pts[:, 1] - grid.origin_xy[1]) / res).astype(np.int64)
    for dr, dc in offs:
        r, c = row + dr, col + dc
        ok = (r >= 0) & (r < grid.height) & (c >= 0) & (c < grid.width)
        data[r[ok], c[ok]] = OCCUPIED
    return OccupancyGrid(grid.resolution_m, grid.origin_xy, data)


def path_blocked(path_points: np.ndarray, obstacles: np.ndarray, clearance_m: float) -> bool:
    """Whether any obstacle point (N, 2) lies within ``clearance_m`` of any path point (M, 2) (map m)."""
    if len(obstacles) == 0 or len(path_points) == 0:
        return False
    obs = np.asarray(obstacles, float)
    lo, hi = path_points.min(axis=0) - clearance_m, path_points.max(axis=0) + clearance_m
    obs = obs[np.all((obs >= lo) & (obs <= hi), axis=1)]
    if len(obs) == 0:
        return False
    for i in range(0, len(path_points), 256):
        chunk = path_points[i:i + 256]
        d2 = ((chunk[:, None, :] - obs[None, :, :]) ** 2).sum(axis=2)
        if np.any(d2 <= clearance_m * clearance_m):
            return True
    return False
