"""Joint positions over time, so that a camera image can be placed with the arm pose at its own time stamp."""
from __future__ import annotations

import bisect
from typing import Dict, List, Mapping, Optional, Tuple


class JointHistory:
    """The last ``horizon_s`` seconds of joint positions (rad or m), each joint on its own time line.

    :meth:`at` interpolates linearly between the two samples around ``t``; before the first sample or after the last
    it holds the nearest one if it is within ``max_extrapolate_s``, else the joint is left out. Times are seconds on
    any one clock (the message stamps).
    """

    def __init__(self, horizon_s: float = 2.0, max_extrapolate_s: float = 0.2):
        if horizon_s <= 0 or max_extrapolate_s < 0:
            raise ValueError("horizon_s must be positive and max_extrapolate_s non-negative")
        self.horizon_s = float(horizon_s)
        self.max_extrapolate_s = float(max_extrapolate_s)
        self._series: Dict[str, Tuple[List[float], List[float]]] = {}

    def add(self, t: float, positions: Mapping[str, float]) -> None:
        """Record ``positions`` (name -> value) at time ``t``; out-of-order samples are inserted in place."""
        for name, value in positions.items():
            times, values = self._series.setdefault(name, ([], []))
            i = bisect.bisect_right(times, t)
            if i > 0 and times[i - 1] == t:
                values[i - 1] = float(value)
                continue
            times.insert(i, float(t))
            values.insert(i, float(value))
            cut = bisect.bisect_left(times, times[-1] - self.horizon_s)
            if cut > 0:
                del times[:cut]
                del values[:cut]

    def at(self, t: float) -> Dict[str, float]:
        """Joint positions at time ``t`` (interpolated); joints with no sample near ``t`` are left out."""
        out = {}
        for name, (times, values) in self._series.items():
            v = self._value(times, values, float(t))
            if v is not None:
                out[name] = v
        return out

    def latest(self) -> Dict[str, float]:
        return {name: values[-1] for name, (times, values) in self._series.items() if values}

    def _value(self, times: List[float], values: List[float], t: float) -> Optional[float]:
        if not times:
            return None
        i = bisect.bisect_left(times, t)
        if i < len(times) and times[i] == t:
            return values[i]
        if i == 0:
            return values[0] if times[0] - t <= self.max_extrapolate_s else None
        if i == len(times):
            return values[-1] if t - times[-1] <= self.max_extrapolate_s else None
        t0, t1 = times[i - 1], times[i]
        a = (t - t0) / (t1 - t0)
        return values[i - 1] + a * (values[i] - values[i - 1])
