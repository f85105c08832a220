"""One DC charging session: metering, the current request (ramp, limits, taper) and when to stop.

Pure logic, driven by the pilot FSM's decision and the output stage's measured voltage and current (positive into
the car). Units: kWh, Wh, V, A, W, s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .pilot import PilotDecision

SESSION_STATES = ("waiting", "energized", "tapering", "complete", "stopped")

# Why a session that never energized is stuck, from the pilot FSM's state.
_START_BLOCKED = {
    "offering": "the car never requested energy (pilot stayed in B)",
    "interlock": "the car requested energy but the plug was not seated and latched, or isolation was not OK",
    "ready": "the interlocks never held long enough to energize",
    "idle": "the charger offered nothing",
}


@dataclass(frozen=True)
class SessionOutput:
    """``enable``: close the output; ``current_request_a`` (A, 0 when not enabled); ``state`` (one of
    SESSION_STATES); ``delivered_kwh`` metered so far; ``done`` once complete or stopped; ``stop_reason``."""

    enable: bool
    current_request_a: float
    state: str
    delivered_kwh: float
    done: bool
    stop_reason: str = ""


class ChargingSession:
    """Deliver ``target_kwh`` into a car at no more than ``max_current_a`` and ``max_power_w``.

    The request ramps up at ``ramp_a_per_s``; within about ``taper_s`` seconds of full power from the end it tapers
    so the remaining energy decays smoothly (power = remaining / taper_s, at least ``min_current_a``), and the
    session completes once the metered energy is within ``tolerance`` (relative) of the goal, or when one more step
    would overshoot by more than it falls short. The goal is min(target_kwh, cap_kwh); ``cap_kwh`` may be lowered
    at any time (the mission's reserve). A pilot fault, an invalid or excessive measured current, a car that stays
    paused (pilot B) for ``pause_timeout_s``, a session never energized within ``start_timeout_s`` of its first step
    (the car never asked for energy, or an interlock never closed), or ``stop()`` end it in 'stopped' with
    ``stop_reason``.
    """

    def __init__(self, target_kwh: float, max_current_a: float, max_power_w: float, ramp_a_per_s: float = 50.0,
                 taper_s: float = 4.0, min_current_a: float = 1.0, pause_timeout_s: float = 10.0,
                 tolerance: float = 2e-4, start_timeout_s: float = 60.0):
        for name, value in (("target_kwh", target_kwh), ("max_current_a", max_current_a),
                            ("max_power_w", max_power_w), ("ramp_a_per_s", ramp_a_per_s), ("taper_s", taper_s),
                            ("min_current_a", min_current_a), ("pause_timeout_s", pause_timeout_s),
                            ("tolerance", tolerance), ("start_timeout_s", start_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0.0:
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        self.target_kwh = float(target_kwh)
        self.max_current_a = float(max_current_a)
        self.max_power_w = float(max_power_w)
        self.ramp_a_per_s = float(ramp_a_per_s)
        self.taper_s = float(taper_s)
        self.min_current_a = min(float(min_current_a), self.max_current_a)
        self.pause_timeout_s = float(pause_timeout_s)
        self.tolerance = float(tolerance)
        self.start_timeout_s = float(start_timeout_s)
        self.state = "waiting"
        self.stop_reason = ""
        self.delivered_wh = 0.0
        self._cap_kwh = math.inf
        self._request_a = 0.0
        self._last_p_w = None
        self._last_v = None
        self._paused_since = None
        self._first_t = None  # time of the first step, for the start timeout
        self._energized_once = False

    # ------------------------------------------------------------------ goal
    @property
    def cap_kwh(self) -> float:
        """An upper bound on the energy to deliver (kWh; inf when unset)."""
        return self._cap_kwh

    @cap_kwh.setter
    def cap_kwh(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0.0:
            raise ValueError(f"cap_kwh must be a number >= 0, got {value!r}")
        self._cap_kwh = float(value)

    @property
    def goal_kwh(self) -> float:
        """The energy this session will deliver: min(target_kwh, cap_kwh)."""
        return min(self.target_kwh, self._cap_kwh)

    @property
    def delivered_kwh(self) -> float:
        return self.delivered_wh / 1000.0

    @property
    def ever_energized(self) -> bool:
        """True once the output has been closed in this session."""
        return self._energized_once

    @property
    def done(self) -> bool:
        return self.state in ("complete", "stopped")

    def stop(self, reason: str) -> None:
        """End the session now (a no-op once it is done)."""
        if not self.done:
            self.state = "stopped"
            self.stop_reason = reason or "stopped"
            self._request_a = 0.0

    def _complete(self) -> None:
        self.state = "complete"
        self._request_a = 0.0
        if self.goal_kwh < self.target_kwh:
            self.stop_reason = f"capped at {self.goal_kwh:.3f} kWh"

    def _output(self, enable: bool) -> SessionOutput:
        return SessionOutput(enable, self._request_a if enable else 0.0, self.state, self.delivered_kwh, self.done,
                             self.stop_reason)

    # ------------------------------------------------------------------ step
    def _meter(self, dt: float, voltage_v: float, current_a: float) -> bool:
        """Trapezoidal integration of V*I; returns False when the sample is not finite."""
        if not (math.isfinite(voltage_v) and math.isfinite(current_a)):
            self._last_p_w = None  # do not bridge a gap with a guess
            return False
        p = voltage_v * current_a
        if self._last_p_w is not None:
            self.delivered_wh += 0.5 * (self._last_p_w + p) * dt / 3600.0
        self._last_p_w = p
        if voltage_v > 1.0:
            self._last_v = voltage_v
        return True

    def update(self, t: float, dt: float, pilot_decision: PilotDecision, measured_voltage_v: float,
               measured_current_a: float) -> SessionOutput:
        """One control step at time ``t`` (s), ``dt`` s after the previous one."""
        if not math.isfinite(dt) or dt < 0.0:
            raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
        valid = self._meter(dt, measured_voltage_v, measured_current_a)
        if self.done:
            return self._output(False)
        if pilot_decision.fault:
            self.stop(f"pilot: {pilot_decision.fault}")
            return self._output(False)
        if self.state in ("energized", "tapering"):
            if not valid:
                self.stop(f"invalid output measurement (V={measured_voltage_v}, I={measured_current_a})")
                return self._output(False)
            if measured_current_a > 1.1 * self.max_current_a + 1.0:
                self.stop(f"over-current: {measured_current_a:.1f} A measured, limit {self.max_current_a:.1f} A")
                return self._output(False)
        remaining_wh = 1000.0 * self.goal_kwh - self.delivered_wh
        step_wh = max(0.0, self._last_p_w or 0.0) * dt / 3600.0
        if remaining_wh <= max(self.tolerance * 1000.0 * self.goal_kwh, 0.5 * step_wh):
            self._complete()
            return self._output(False)
        if not pilot_decision.energize:
            return self._wait(t, pilot_decision)
        self._paused_since = None
        self._energized_once = True
        i_limit = self.max_current_a
        if self._last_v is not None:
            i_limit = min(i_limit, self.max_power_w / self._last_v)
        ramped = min(i_limit, self._request_a + self.ramp_a_per_s * dt)
        i_taper = math.inf
        if self._last_v is not None:
            i_taper = max(self.min_current_a, 3600.0 * remaining_wh / (self._last_v * self.taper_s))
        self._request_a = min(ramped, i_taper)
        self.state = "tapering" if i_taper < i_limit else "energized"
        return self._output(True)

    def _wait(self, t: float, decision: PilotDecision) -> SessionOutput:
        """Not energized this step: restart the ramp from zero and time a pause by the car."""
        self._request_a = 0.0
        self.state = "waiting"
        if not self._energized_once:
            if self._first_t is None or t < self._first_t:  # a clock that jumps back restarts the wait
                self._first_t = t
            elif t - self._first_t >= self.start_timeout_s:
                why = _START_BLOCKED.get(decision.state, decision.state)
                self.stop(f"no energy within {self.start_timeout_s:.0f} s: {why}")
                return self._output(False)
        if decision.state != "paused":
            self._paused_since = None
        elif self._paused_since is None:
            self._paused_since = t
        elif t - self._paused_since >= self.pause_timeout_s:
            self.stop("the car stopped charging (pilot B)")
        return self._output(False)
