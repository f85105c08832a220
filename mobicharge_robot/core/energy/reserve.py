"""The return reserve: the energy the robot must keep to drive home to its depot, and the measured consumption it
is computed from.

reserve (kWh) = path length home (m) x measured consumption (Wh/m) x (1 + ``path_margin``)
              + ``k_sigma`` x the soc estimate's standard deviation x the pack capacity
              + ``fixed_margin_kwh`` (the arm, waiting, a detour)

and it is counted above ``floor_soc``, the charge below which the BMS derates discharge to nothing (5% in
``discharge_limit_w``; 10% by default here, so the robot can still drive at full power on the way home).
Units: m, Wh/m, kWh, s; soc is a fraction 0..1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


class ReserveError(ValueError):
    """An invalid reserve parameter or measurement."""


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0.0 or (value == 0.0 and not allow_zero):
        raise ReserveError(f"{name} must be {'>= 0' if allow_zero else 'positive'} and finite, got {value!r}")
    return float(value)


class ConsumptionMeter:
    """Measured driving consumption (Wh/m): the pack energy spent while the base moves, over the distance moved.

    Starts from ``prior_wh_per_m`` weighted as ``prior_m`` metres of driving, so a few metres of noisy data do not
    swing it; the estimate never drops below ``floor_wh_per_m`` (a cold start must not promise a free ride home).
    Feed it ``update(distance_m, pack_energy_wh)`` with cumulative odometry distance and cumulative pack energy out
    (W integrated over time from the BMS, after removing the sensor offset if one is known); only intervals in which
    the base moved count.
    """

    def __init__(self, prior_wh_per_m: float = 0.6, prior_m: float = 50.0, floor_wh_per_m: float = 0.3):
        self.prior = _positive("prior_wh_per_m", prior_wh_per_m)
        self.prior_m = _positive("prior_m", prior_m)
        self.floor = _positive("floor_wh_per_m", floor_wh_per_m, allow_zero=True)
        self.driven_m = 0.0
        self.spent_wh = 0.0
        self._last = None  # (distance_m, energy_wh)

    def update(self, distance_m: float, energy_wh: float, moving: bool) -> None:
        if not (math.isfinite(distance_m) and math.isfinite(energy_wh)):
            self._last = None  # do not bridge a gap
            return
        if self._last is not None and moving:
            dd = distance_m - self._last[0]
            de = energy_wh - self._last[1]
            if 0.0 < dd < 50.0 and abs(de) < 1e4:
                self.driven_m += dd
                self.spent_wh += max(0.0, de)
        self._last = (distance_m, energy_wh)

    @property
    def wh_per_m(self) -> float:
        value = (self.prior * self.prior_m + self.spent_wh) / (self.prior_m + self.driven_m)
        return max(self.floor, value)


@dataclass(frozen=True)
class ReservePolicy:
    """How much to keep for the way home (see the module docstring)."""

    floor_soc: float = 0.10
    path_margin: float = 0.5
    k_sigma: float = 2.0
    fixed_margin_kwh: float = 0.3

    def __post_init__(self):
        if not (isinstance(self.floor_soc, (int, float)) and math.isfinite(self.floor_soc)
                and 0.0 <= self.floor_soc < 1.0):
            raise ReserveError(f"floor_soc must be within [0, 1), got {self.floor_soc!r}")
        _positive("path_margin", self.path_margin, allow_zero=True)
        _positive("k_sigma", self.k_sigma, allow_zero=True)
        _positive("fixed_margin_kwh", self.fixed_margin_kwh, allow_zero=True)

    def reserve_kwh(self, path_home_m: float, wh_per_m: float, soc_sigma: float, capacity_kwh: float) -> float:
        """Energy (kWh, above ``floor_soc``) to keep for the way home from a point ``path_home_m`` away."""
        _positive("path_home_m", path_home_m, allow_zero=True)
        _positive("wh_per_m", wh_per_m, allow_zero=True)
        _positive("soc_sigma", soc_sigma, allow_zero=True)
        _positive("capacity_kwh", capacity_kwh)
        drive = path_home_m * wh_per_m * (1.0 + self.path_margin) / 1000.0
        return drive + self.k_sigma * soc_sigma * capacity_kwh + self.fixed_margin_kwh


def session_cap_kwh(delivered_kwh: float, usable_kwh: float, reserve_kwh: float, efficiency: float = 0.94) -> float:
    """The most a running session may deliver in total (kWh) so the pack keeps ``reserve_kwh``: what it has
    delivered plus what is usable above the reserve, times the output stage's efficiency (a conservative 0.94
    where the stage is rated at 0.96: the cap must err on the side of keeping energy)."""
    _positive("delivered_kwh", delivered_kwh, allow_zero=True)
    if not math.isfinite(usable_kwh) or not math.isfinite(reserve_kwh):
        raise ReserveError("usable_kwh and reserve_kwh must be finite")
    if not 0.0 < efficiency <= 1.0:
        raise ReserveError(f"efficiency must be within (0, 1], got {efficiency!r}")
    return delivered_kwh + max(0.0, usable_kwh - reserve_kwh) * efficiency
