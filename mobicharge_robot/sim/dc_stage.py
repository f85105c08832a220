"""The simulated DC output stage (the robot's DC-DC converter from its pack to the car's inlet).

Units: W, A, V, s. Current is positive into the car.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from .car import SimCar


class DcOutputStage:
    """A current-controlled DC-DC stage with power, current and voltage limits, a finite slew rate and a load-
    dependent efficiency.

    Losses follow the usual converter shape ``a + b*P + c*P**2`` (fixed, switching, conduction), with ``a`` and
    ``b`` chosen so the efficiency is ``rated_efficiency`` at ``max_power_w`` and lower at light load. The current
    slews at ``ramp_a_per_s`` (up) and five times faster down; disabling opens the output in the same step.
    """

    def __init__(self, max_power_w: float = 50e3, max_current_a: float = 150.0, max_voltage_v: float = 920.0,
                 rated_efficiency: float = 0.96, fixed_loss_w: float = 150.0, ramp_a_per_s: float = 100.0):
        for name, value in (("max_power_w", max_power_w), ("max_current_a", max_current_a),
                            ("max_voltage_v", max_voltage_v), ("ramp_a_per_s", ramp_a_per_s)):
            if not math.isfinite(value) or value <= 0.0:
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        if not 0.5 < rated_efficiency < 1.0:
            raise ValueError(f"rated_efficiency must be within (0.5, 1), got {rated_efficiency!r}")
        rated_loss = max_power_w / rated_efficiency - max_power_w
        if not 0.0 <= fixed_loss_w < rated_loss:
            raise ValueError(f"fixed_loss_w must be within [0, {rated_loss:.0f}) W, got {fixed_loss_w!r}")
        self.max_power_w = float(max_power_w)
        self.max_current_a = float(max_current_a)
        self.max_voltage_v = float(max_voltage_v)
        self.ramp_a_per_s = float(ramp_a_per_s)
        self.loss_a = float(fixed_loss_w)
        self.loss_b = 0.02
        # The quadratic term closes the budget at rated power; if the linear term alone is too much, drop it.
        rest = rated_loss - self.loss_a - self.loss_b * max_power_w
        if rest < 0.0:
            self.loss_b = (rated_loss - self.loss_a) / max_power_w
            rest = 0.0
        self.loss_c = rest / (max_power_w * max_power_w)
        self.current_a = 0.0
        self.voltage_v = 0.0

    def loss_w(self, power_w: float) -> float:
        """Converter loss (W) while delivering ``power_w`` (W) to the car."""
        p = max(0.0, power_w)
        return self.loss_a + self.loss_b * p + self.loss_c * p * p

    def efficiency(self, power_w: float) -> float:
        """Delivered over drawn power at ``power_w`` delivered (0 at no load)."""
        p = max(0.0, power_w)
        return p / (p + self.loss_w(p)) if p > 0.0 else 0.0

    def step(self, enabled: bool, current_request_a: float, car: Optional[SimCar],
             dt: float) -> Tuple[float, float, float]:
        """Advance ``dt`` s; returns (inlet voltage V, delivered current A, power drawn from the pack W).

        The delivered current slews towards min(request, the car's acceptance, the stage's current limit, power
        limit / voltage); it is zero, with the output open, when disabled, without a car or when the car has left.
        A negative request counts as zero (the stage cannot draw from the car).
        """
        if not math.isfinite(current_request_a):
            raise ValueError(f"current_request_a must be finite, got {current_request_a!r}")
        if not math.isfinite(dt) or dt < 0.0:
            raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
        if not enabled or car is None or car.departed or car.ocv_v() > self.max_voltage_v:
            self.current_a = 0.0
            self.voltage_v = 0.0
            return 0.0, 0.0, 0.0
        v_now = car.terminal_voltage(self.current_a)
        target = min(max(0.0, current_request_a), car.max_current_a(v_now), self.max_current_a,
                     self.max_power_w / v_now)
        if target > self.current_a:
            i = min(target, self.current_a + self.ramp_a_per_s * dt)
        else:
            i = max(target, self.current_a - 5.0 * self.ramp_a_per_s * dt)
        # The car's and the stage's own limits are hard: never exceed them while slewing down.
        i = min(i, car.max_current_a(v_now), self.max_current_a)
        v = car.terminal_voltage(i)
        if v * i > self.max_power_w:
            i = self.max_power_w / v
            v = car.terminal_voltage(i)
        self.current_a, self.voltage_v = i, v
        delivered_w = v * i
        return v, i, delivered_w + self.loss_w(delivered_w)
