"""Scan-based safety for the base, independent of the planner: a stop zone around the footprint and stale-data checks.

Frames: scan points are converted into ``base_link`` (x forward, y left) with the laser's mounting pose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .geometry import Pose2D


@dataclass(frozen=True)
class StopZone:
    """The stop polygon: the footprint grown by ``ahead_m`` in the direction of travel and ``side_m`` sideways.

    While turning in place the zone is the footprint's circumscribed circle grown by ``side_m``.
    """

    length_m: float
    width_m: float
    ahead_m: float = 0.30
    side_m: float = 0.05
    turn_margin_m: float = 0.03

    def points_in_zone(self, pts_base: np.ndarray, v: float, w: float, horizon_s: float = 0.5) -> int:
        return int(np.count_nonzero(self.mask(pts_base, v, w, horizon_s)))

    def mask(self, pts_base: np.ndarray, v: float, w: float, horizon_s: float = 0.5) -> np.ndarray:
        """Which points (N, 2) in base_link lie in the zone for a motion (v m/s, w rad/s).

        Turning in place, the zone is the footprint (grown by ``turn_margin_m``) swept through the angle it turns within
        ``horizon_s``, so a car parked close beside the robot does not block a turn that cannot reach it.
        """
        if len(pts_base) == 0:
            return np.zeros(0, dtype=bool)
        x, y = pts_base[:, 0], pts_base[:, 1]
        hw = 0.5 * self.width_m + self.side_m
        if abs(v) < 0.02 and abs(w) > 1e-3:
            hl, hw = 0.5 * self.length_m + self.turn_margin_m, 0.5 * self.width_m + self.turn_margin_m
            sweep = max(abs(w) * horizon_s, 0.05)
            hit = np.zeros(len(x), dtype=bool)
            for a in np.linspace(0.0, sweep, 6) * np.sign(w):
                c, s = math.cos(a), math.sin(a)
                xr, yr = c * x + s * y, -s * x + c * y  # points in the footprint turned by a
                hit |= (np.abs(xr) < hl) & (np.abs(yr) < hw)
            return hit
        hl = 0.5 * self.length_m
        front = hl + (self.ahead_m if v > 0.0 else 0.0)
        back = -hl - (self.ahead_m if v < 0.0 else 0.0)
        return (x < front) & (x > back) & (np.abs(y) < hw)


def scan_points(ranges: np.ndarray, angle_min: float, angle_increment: float, laser_in_base: Pose2D,
                range_min: float = 0.0, range_max: float = math.inf) -> np.ndarray:
    """Valid scan returns as (N, 2) points in base_link; NaN, inf and out-of-range returns are dropped."""
    r = np.asarray(ranges, dtype=float)
    ang = angle_min + angle_increment * np.arange(len(r))
    ok = np.isfinite(r) & (r >= range_min) & (r <= range_max)
    local = np.stack([r[ok] * np.cos(ang[ok]), r[ok] * np.sin(ang[ok])], axis=1)
    return laser_in_base.transform_points(local)


class FreshnessMonitor:
    """True while the newest data is younger than ``max_age_s`` on the given clock; a clock that jumps back resets."""

    def __init__(self, max_age_s: float):
        self.max_age_s = max_age_s
        self._last = None

    def mark(self, t: float) -> None:
        self._last = t

    def fresh(self, now: float) -> bool:
        if self._last is None:
            return False
        age = now - self._last
        if age < 0.0:  # time went backwards: the data cannot be trusted
            self._last = None
            return False
        return age <= self.max_age_s
