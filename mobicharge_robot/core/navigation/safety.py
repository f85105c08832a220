"""Scan-based safety for the base, independent of the planner: a stop zone around the footprint and stale-data checks.

Frames: scan points are converted into ``base_link`` (x forward, y left) with the laser's mounting pose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import Pose2D


@dataclass(frozen=True)
class StopZone:
    """The stop polygon for a motion: ahead of the bumper in the direction of travel, ``ahead_m`` long and
    ``side_m`` wider than the footprint on each side; beside the body only the band the body can sweep into
    (``turn_margin_m`` while curving, 1 cm driving straight), so that something standing right beside the robot
    (a person who stopped next to it, a car at the staging pose) never locks it in: it may still drive away.

    While turning in place the zone is the footprint swept through the turn (see ``mask``).
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
        ahead = ((x >= hl) & (x < hl + self.ahead_m)) if v > 0.0 else ((x <= -hl) & (x > -hl - self.ahead_m))
        body_side = 0.5 * self.width_m + (self.turn_margin_m if abs(w) > 0.05 else 0.01)
        body = (np.abs(x) < hl) & (np.abs(y) < body_side)
        return (ahead & (np.abs(y) < hw)) | body


def scan_points(ranges: np.ndarray, angle_min: float, angle_increment: float, laser_in_base: Pose2D,
                range_min: float = 0.0, range_max: float = math.inf) -> np.ndarray:
    """Valid scan returns as (N, 2) points in base_link; NaN, inf and out-of-range returns are dropped."""
    r = np.asarray(ranges, dtype=float)
    ang = angle_min + angle_increment * np.arange(len(r))
    ok = np.isfinite(r) & (r >= range_min) & (r <= range_max)
    local = np.stack([r[ok] * np.cos(ang[ok]), r[ok] * np.sin(ang[ok])], axis=1)
    return laser_in_base.transform_points(local)


def footprint_clearance(pts_base: np.ndarray, length_m: float, width_m: float) -> float:
    """Smallest distance (m) from points (N, 2, base_link) to the footprint rectangle (0 inside); inf for none."""
    if len(pts_base) == 0:
        return math.inf
    dx = np.maximum(np.abs(pts_base[:, 0]) - 0.5 * length_m, 0.0)
    dy = np.maximum(np.abs(pts_base[:, 1]) - 0.5 * width_m, 0.0)
    return float(np.min(np.hypot(dx, dy)))


class FreshnessMonitor:
    """Whether the newest data is fresh: younger than ``max_age_s`` on the data's clock (sim time), and its stamp
    advanced within ``max_steady_age_s`` of steady (wall) time, so that data from a stalled clock goes stale too.
    A clock that jumps back by more than ``max_age_s`` resets; a stamp slightly ahead of the clock is fresh. Data
    without a stamp must not be marked: it can never prove it is fresh."""

    def __init__(self, max_age_s: float, max_steady_age_s: float = 2.0):
        self.max_age_s = max_age_s
        self.max_steady_age_s = max_steady_age_s
        self._last = None
        self._steady = None

    def mark(self, t: float, steady_now: float | None = None) -> None:
        """Record data stamped ``t`` (s) arriving at steady time ``steady_now`` (s; None skips the stall check)."""
        if self._last is None or t > self._last:
            self._steady = steady_now
        self._last = t

    def age(self, now: float) -> float:
        """Age (s) of the newest data at ``now``; infinite when there is none."""
        return math.inf if self._last is None else now - self._last

    def fresh(self, now: float, steady_now: float | None = None) -> bool:
        age = self.age(now)
        if age == math.inf:
            return False
        if age < -self.max_age_s:  # time went backwards: the data cannot be trusted
            self._last = None
            return False
        # A stamp a little ahead of this node's clock is normal: the data overtook the clock message on the way.
        if steady_now is not None and self._steady is not None and steady_now - self._steady > self.max_steady_age_s:
            return False  # the stamps stopped advancing: a stalled clock
        return age <= self.max_age_s
