"""Driving rules of a garage as grid masks: where the robot may be and which way it may move there.

The rules (the issue's "plan the way a driver would"), in the ``map`` frame on the planning grid's cells:

- **Lanes** are the rectangles of the garage's ``lanes`` (centre line ``start`` -> ``end``, ``width_m``). A lane cell
  that is not part of a parking spot is *drivable*.
- **Parking spots are never shortcuts.** A spot cell is forbidden, also where a lane overlaps it, unless the spot
  belongs to an endpoint's *staging area*.
- **Staging area** of an endpoint (start or goal pose): the spots that the robot's footprint at that pose, grown by
  ``margin_m`` and swept ``approach_m`` both ways along its heading (the straight final approach, or the way out),
  touches, plus the cells that are neither lane nor spot within ``area_radius_m`` of the endpoint (a staging pose in
  front of or behind a car may lie on the strip between two rows). The robot leaves the lanes only
  to reach the goal's staging area (and to leave the start's).
- **One-way lanes** (``direction: one_way``, travel from ``start`` to ``end``): a move whose direction has a negative
  component along the lane is forbidden in a cell that only one-way lanes against that move cover. Crossing a one-way
  lane (moving across it) is allowed; a cell also covered by a two-way lane, or by a lane going that way, allows the
  move. Cells outside every lane (staging areas) have no direction.
- A garage without lanes is treated as one two-way lane covering the whole level (the rules then reduce to "never
  through a spot").

``LaneRules`` holds these masks once per garage; ``query_masks`` gives the per-query allowed mask that both the
lane-graph planner and the reference grid search in ``bench/planner.py`` use, so the two obey the same rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from ..geometry import Pose2D, convex_polygons_intersect, rect_polygon, segment_rect_polygon
from .occupancy import OccupancyGrid, from_polygons

# A move "against" a one-way lane has a direction component below this along the lane (unit vectors): a move across
# the lane (component 0) is allowed.
_AGAINST_EPS = 1e-6


@dataclass(frozen=True)
class LaneInfo:
    """One lane: centre line ``start`` -> ``end`` (map m), ``width_m``, ``one_way`` and its unit direction."""

    id: str
    start: Tuple[float, float]
    end: Tuple[float, float]
    width_m: float
    one_way: bool
    direction: Tuple[float, float]

    @property
    def polygon(self) -> np.ndarray:
        return segment_rect_polygon(self.start, self.end, self.width_m)

    def contains(self, p) -> bool:
        """Whether map point ``p`` lies in the lane rectangle (boundary included)."""
        a = np.asarray(self.start, float)
        d = np.asarray(self.direction, float)
        rel = np.asarray(p, float) - a
        along = float(rel @ d)
        across = float(rel[0] * -d[1] + rel[1] * d[0])
        length = math.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1])
        return -1e-9 <= along <= length + 1e-9 and abs(across) <= 0.5 * self.width_m + 1e-9


class LaneRules:
    """The garage's driving rules rasterised on ``grid`` (an ``OccupancyGrid`` of the same garage).

    Arrays are (height, width) like the grid: ``lane_combo`` (int32, 0 = no lane, k = the k-th distinct set of lanes
    covering the cell, see ``combos``), ``spot_index`` (int32, -1 = no spot, else index into ``garage.spots``),
    ``drivable`` (bool: in a lane, in no spot, not occupied), ``unclassified`` (bool: neither lane nor spot).
    """

    def __init__(self, garage, grid: OccupancyGrid, footprint_m: Tuple[float, float], margin_m: float = 0.05,
                 area_radius_m: float = 2.0, approach_m: float = 1.5):
        self.grid = grid
        self.garage = garage
        self.footprint_m = (float(footprint_m[0]), float(footprint_m[1]))
        self.margin_m = float(margin_m)
        self.area_radius_m = float(area_radius_m)
        self.approach_m = float(approach_m)
        size = grid.size_m
        origin = grid.origin_xy
        res = grid.resolution_m
        shape = (grid.height, grid.width)

        lanes = []
        for ln in getattr(garage, "lanes", ()):
            dx, dy = ln.end[0] - ln.start[0], ln.end[1] - ln.start[1]
            n = math.hypot(dx, dy)
            if n <= 0.0:
                continue
            lanes.append(LaneInfo(ln.id, tuple(ln.start), tuple(ln.end), float(ln.width_m),
                                  ln.direction == "one_way", (dx / n, dy / n)))
        self.implicit_lane = not lanes
        if self.implicit_lane:
            sx, sy = size
            lanes.append(LaneInfo("level", (origin[0], origin[1] + 0.5 * sy), (origin[0] + sx, origin[1] + 0.5 * sy),
                                  2.0 * sy + 2.0, False, (1.0, 0.0)))
        self.lanes: List[LaneInfo] = lanes

        # Which set of lanes covers each cell: a bit per lane, then the distinct bit sets numbered.
        bits = np.zeros(shape, dtype=object) if len(lanes) > 62 else np.zeros(shape, dtype=np.int64)
        for i, ln in enumerate(lanes):
            m = from_polygons(size, res, [ln.polygon], origin).occupied_mask()
            bits[m] += (1 << i) if bits.dtype != object else int(1 << i)
        uniq, inv = np.unique(bits, return_inverse=True)
        self.combos: List[Tuple[int, ...]] = [tuple(i for i in range(len(lanes)) if int(u) >> i & 1) for u in uniq]
        self.lane_combo = inv.reshape(shape).astype(np.int32)
        if self.combos and self.combos[0] != ():  # keep "0 = no lane" even when every cell is covered
            self.combos.insert(0, ())
            self.lane_combo += 1

        self.spot_index = np.full(shape, -1, dtype=np.int32)
        for i, spot in enumerate(garage.spots):
            m = from_polygons(size, res, [spot.polygon], origin).occupied_mask()
            self.spot_index[m] = i
        self.spot_polygons = [s.polygon for s in garage.spots]
        self._spot_centres = np.array([s.center for s in garage.spots], dtype=float).reshape(-1, 2)
        self._spot_radii = np.array([0.5 * math.hypot(s.length_m, s.width_m) for s in garage.spots], dtype=float)
        occupied = grid.occupied_mask()
        in_lane = self.lane_combo > 0
        in_spot = self.spot_index >= 0
        self.drivable = in_lane & ~in_spot & ~occupied
        self.unclassified = ~in_lane & ~in_spot
        self.occupied = occupied
        self._two_way = np.array([not ln.one_way for ln in lanes], dtype=bool)
        self._membership = np.zeros((len(self.combos), len(lanes)), dtype=bool)  # combination x lane
        for k, combo in enumerate(self.combos):
            self._membership[k, list(combo)] = True
        self._no_lane = ~self._membership.any(axis=1)
        self._dirs = np.array([ln.direction for ln in lanes], dtype=float).reshape(-1, 2)

    # ------------------------------------------------------------------ directions
    def combo_permits(self, d) -> np.ndarray:
        """Bool per lane combination: whether a move along map direction ``d`` (need not be unit) is allowed there."""
        d = np.asarray(d, float)
        n = math.hypot(d[0], d[1])
        if n == 0.0:
            return np.ones(len(self.combos), dtype=bool)
        ok_lane = self._two_way | (self._dirs @ (d / n) >= -_AGAINST_EPS)
        return self._no_lane | (self._membership & ok_lane[None, :]).any(axis=1)

    def permits(self, rows: np.ndarray, cols: np.ndarray, d) -> np.ndarray:
        """Whether moving along ``d`` is allowed in cells (rows, cols) (in-bounds indices)."""
        return self.combo_permits(d)[self.lane_combo[rows, cols]]

    # ------------------------------------------------------------------ staging areas
    def area_spots(self, pose: Pose2D) -> List[int]:
        """Indices of the spots in ``pose``'s staging area: those that the footprint, grown by ``margin_m`` and
        swept ``approach_m`` both ways along the pose's heading (the straight final approach, or the way out),
        touches, or that contain the point itself."""
        length = self.footprint_m[0] + 2.0 * self.margin_m + 2.0 * self.approach_m
        fp = rect_polygon(pose, length, self.footprint_m[1] + 2.0 * self.margin_m)
        out = []
        reach = 0.5 * math.hypot(length, self.footprint_m[1]) + self.margin_m
        for i in np.flatnonzero(np.hypot(self._spot_centres[:, 0] - pose.x, self._spot_centres[:, 1] - pose.y)
                                <= self._spot_radii + reach + 1e-6):
            if convex_polygons_intersect(fp, self.spot_polygons[i]):
                out.append(int(i))
        r, c = self.grid.world_to_cell(pose.x, pose.y)
        if self.grid.cell_in_bounds(r, c) and self.spot_index[r, c] >= 0 and int(self.spot_index[r, c]) not in out:
            out.append(int(self.spot_index[r, c]))
        return out

    def area_mask(self, pose: Pose2D, window: Tuple[int, int, int, int], spots=None) -> np.ndarray:
        """Bool mask over ``window`` (r0, r1, c0, c1): the staging-area cells of ``pose`` (see the module doc);
        ``spots`` may pass ``area_spots(pose)`` when already known."""
        r0, r1, c0, c1 = window
        if spots is None:
            spots = self.area_spots(pose)
        sub_spot = self.spot_index[r0:r1, c0:c1]
        mask = np.zeros(sub_spot.shape, dtype=bool)
        for i in spots:
            mask |= sub_spot == i
        res = self.grid.resolution_m
        ox, oy = self.grid.origin_xy
        # Unclassified cells within area_radius_m: only the box around the disk needs looking at.
        n = int(math.ceil(self.area_radius_m / res)) + 1
        pr, pc = self.grid.world_to_cell(pose.x, pose.y)
        br0, br1 = max(r0, pr - n), min(r1, pr + n + 1)
        bc0, bc1 = max(c0, pc - n), min(c1, pc + n + 1)
        if br0 < br1 and bc0 < bc1:
            ys = oy + (np.arange(br0, br1) + 0.5) * res
            xs = ox + (np.arange(bc0, bc1) + 0.5) * res
            near = (xs[None, :] - pose.x) ** 2 + (ys[:, None] - pose.y) ** 2 <= self.area_radius_m ** 2
            mask[br0 - r0:br1 - r0, bc0 - c0:bc1 - c0] |= near & self.unclassified[br0:br1, bc0:bc1]
        return mask

    def window_around(self, pose: Pose2D, half_m: float) -> Tuple[int, int, int, int]:
        """Cell window (r0, r1, c0, c1), clipped to the grid, of ``half_m`` around ``pose``."""
        res = self.grid.resolution_m
        r, c = self.grid.world_to_cell(pose.x, pose.y)
        n = int(math.ceil(half_m / res))
        return (max(0, r - n), min(self.grid.height, r + n + 1), max(0, c - n), min(self.grid.width, c + n + 1))

    def query_masks(self, start: Pose2D, goal: Pose2D) -> np.ndarray:
        """Bool (height, width): cells the robot's centre may occupy for this start/goal pair (before clearance):
        drivable lane cells plus the two staging areas, never an occupied cell."""
        allowed = self.drivable.copy()
        half = self.area_radius_m + math.hypot(*self.footprint_m) + self.approach_m + max(
            (max(s.length_m, s.width_m) for s in self.garage.spots), default=0.0)
        for p in (start, goal):
            w = self.window_around(p, half)
            allowed[w[0]:w[1], w[2]:w[3]] |= self.area_mask(p, w)
        return allowed & ~self.occupied


def clearance_field(blocked: np.ndarray, resolution_m: float, border_blocked: bool = True) -> np.ndarray:
    """Metres from each cell centre to the nearest ``blocked`` cell centre (0 on blocked cells). With
    ``border_blocked`` a ring of blocked cells surrounds the array (the map edge); without it the edge is open."""
    h, w = blocked.shape
    free = np.full((h + 2, w + 2), 0 if border_blocked else 1, dtype=np.uint8)
    free[1:-1, 1:-1] = np.where(blocked, 0, 1)
    if not border_blocked:
        # distanceTransform needs some zero somewhere; an all-free window is "far from everything".
        if free.all():
            return np.full((h, w), 1e6)
    dist = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist[1:-1, 1:-1].astype(float) * resolution_m


def segment_sample(a: Sequence[float], b: Sequence[float], step_m: float) -> np.ndarray:
    """Points (n, 2) from a to b inclusive, at most ``step_m`` apart."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    n = max(1, int(math.ceil(math.hypot(*(b - a)) / step_m)))
    return a + np.linspace(0.0, 1.0, n + 1)[:, None] * (b - a)
