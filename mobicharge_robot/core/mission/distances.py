"""Planned path lengths between map poses, for the return reserve and the mission's energy and time checks.

Uses the navigation planner (``GridPlanner``) on the garage's occupancy grid, with the same footprint inflation as
the navigation node, so the length home is the length of the path the robot would actually drive. Results are
cached on a 0.5 m / 15 degree key: the planner takes 0.1-0.5 s on a garage and the answer barely moves.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

from ..garage.garage import Garage
from ..geometry import Pose2D
from ..navigation.occupancy import occupancy_from_garage
from ..navigation.planner import GridPlanner, PlannerError, PlannerTimeout


class PathLengths:
    """``length_m(a, b)``: the planned path length (m) from pose ``a`` to ``b``, or inf when there is no path.

    A planner that runs out of time (a loaded CPU) is no proof that there is no path: the answer is then twice the
    straight-line distance (a generous detour, so a reserve errs on the safe side), and it is not cached."""

    def __init__(self, garage: Garage, footprint_width_m: float, inflation_margin_m: float = 0.25,
                 resolution_m: float = 0.05, timeout_s: float = 5.0):
        if not (math.isfinite(footprint_width_m) and footprint_width_m > 0.0):
            raise ValueError(f"footprint_width_m must be positive, got {footprint_width_m!r}")
        grid = occupancy_from_garage(garage, resolution_m)
        self.planner = GridPlanner(grid, robot_radius_m=0.5 * footprint_width_m + inflation_margin_m,
                                   timeout_s=timeout_s)
        self._cache: Dict[Tuple, float] = {}

    @staticmethod
    def _key(p: Pose2D) -> Tuple:
        return (round(p.x * 2.0), round(p.y * 2.0), round(math.degrees(p.yaw) / 15.0) % 24)

    def length_m(self, a: Pose2D, b: Pose2D) -> float:
        key = (self._key(a), self._key(b))
        if key not in self._cache:
            try:
                self._cache[key] = float(self.planner.plan(a, b).length_m)
            except PlannerTimeout:
                return 2.0 * math.hypot(a.x - b.x, a.y - b.y)
            except PlannerError:
                self._cache[key] = math.inf
            if len(self._cache) > 2000:
                self._cache.clear()
        return self._cache[key]

    __call__ = length_m
