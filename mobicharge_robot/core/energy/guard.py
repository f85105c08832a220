"""Fail-closed checks on every input a charging session depends on: the output must go off, and the fault be recorded,
when one of them is stale or implausible.

Freshness is judged on two clocks at once. A stream is stale only when its newest sample is older than the sim-time
limit AND older than the steady-clock limit: a fast simulation (hundreds of sim seconds per wall second) must not trip
on node latency, and a slow one must not trip on its own slow publishing; a stream that really stopped trips on
both. A sim clock that jumps back counts as stale (fail safe), and a sim clock that stops advancing is caught by
``ClockWatch`` on the steady clock. Units: s, V, A, degC.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .pilot import PilotState


@dataclass(frozen=True)
class GuardLimits:
    input_timeout_s: float = 2.0  # pilot and output measurement, sim time (the simulator publishes them at >= 2 Hz)
    input_timeout_wall_s: float = 1.5  # the same, steady clock (a busy executor must not look like a dead sensor)
    bms_timeout_s: float = 5.0  # the BMS publishes at 1 Hz
    latched_timeout_s: float = 5.0  # the connector latch sensor publishes at 1 Hz
    overvoltage_v: float = 450.0  # output voltage stop threshold (V)
    overcurrent_margin: float = 0.2  # measured above (1 + margin) x the recent request ...
    overcurrent_abs_a: float = 5.0  # ... plus this: stop
    derate_temp_c: float = 45.0  # pack temperature where the output power starts to fall
    stop_temp_c: float = 55.0  # and where the session stops
    diode_low_v: float = -11.0  # a pilot negative level above this means the car's diode is missing or shorted
    dead_output_s: float = 5.0  # current requested (>= 5 A for the last second) but none delivered for this long

    def __post_init__(self):
        for name in ("input_timeout_s", "input_timeout_wall_s", "bms_timeout_s", "latched_timeout_s",
                     "overvoltage_v", "overcurrent_abs_a"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0.0):
                raise ValueError(f"{name} must be positive and finite, got {v!r}")
        if not self.derate_temp_c < self.stop_temp_c:
            raise ValueError(f"derate_temp_c ({self.derate_temp_c}) must be below stop_temp_c ({self.stop_temp_c})")


class Freshness:
    """Last arrival of each named stream, on the sim clock and the steady clock."""

    def __init__(self):
        self._seen: Dict[str, Tuple[float, float]] = {}

    def seen(self, name: str, now_sim: float, now_wall: float) -> None:
        self._seen[name] = (now_sim, now_wall)

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def age(self, name: str, now_sim: float, now_wall: float) -> Optional[Tuple[float, float]]:
        if name not in self._seen:
            return None
        t_sim, t_wall = self._seen[name]
        return now_sim - t_sim, now_wall - t_wall

    def has(self, *names: str) -> bool:
        return all(n in self._seen for n in names)

    def stale(self, name: str, now_sim: float, now_wall: float, timeout_sim: float, timeout_wall: float,
              never: bool = True) -> bool:
        """Older than both limits; a stream never seen counts as ``never``."""
        age = self.age(name, now_sim, now_wall)
        if age is None:
            return never
        if age[0] < 0.0:
            return True  # the sim clock went back: nothing it says about this stream can be trusted
        return age[0] > timeout_sim and age[1] > timeout_wall


class ClockWatch:
    """Steady-clock check that the sim clock advances: ``stalled(now_sim, now_wall)`` is True once the sim time has
    not moved for ``stall_s`` of wall time."""

    def __init__(self, stall_s: float = 1.0):
        self.stall_s = stall_s
        self._last = None  # (sim, wall) of the last change

    def stalled(self, now_sim: float, now_wall: float) -> bool:
        if self._last is None or now_sim != self._last[0]:
            self._last = (now_sim, now_wall)
            return False
        return now_wall - self._last[1] > self.stall_s


class OutputGuard:
    """The trip checks for a delivery session. Call ``note_request`` with every current request and ``trip`` with
    the latest inputs; ``trip`` returns the reason to switch off now ('' when all is well)."""

    def __init__(self, limits: GuardLimits = GuardLimits()):
        self.limits = limits
        self.fresh = Freshness()
        # (sim t, wall t, A) of the requests that may still be in flight: decreasing A (max), increasing A (min)
        self._maxq = deque()
        self._minq = deque()
        self._last_request = (0.0, 0.0, 0.0)
        self._over_count = 0
        self._dead_since = None  # (sim, wall) since the output has delivered nothing while current was requested

    def note_request(self, now_sim: float, amps: float, now_wall: Optional[float] = None) -> None:
        """Remember a current request. The over-current check compares a measurement with the largest request that
        may still be in flight: over the last second of sim time AND the last ``input_timeout_wall_s`` of wall time
        (a fast simulation turns milliseconds of node latency into sim seconds). Sliding-window max and min on
        monotonic queues: O(1) per request however fast the requests come."""
        now_wall = now_sim if now_wall is None else now_wall
        if self._maxq and self._maxq[-1][0] > now_sim:
            self._maxq.clear()  # the sim clock went back: start over
            self._minq.clear()
        entry = (now_sim, now_wall, amps)
        while self._maxq and self._maxq[-1][2] <= amps:
            self._maxq.pop()
        self._maxq.append(entry)
        while self._minq and self._minq[-1][2] >= amps:
            self._minq.pop()
        self._minq.append(entry)
        window = self.limits.input_timeout_wall_s
        for q in (self._maxq, self._minq):
            while len(q) > 1 and q[0][0] < now_sim - 1.0 and q[0][1] < now_wall - window:
                q.popleft()
        self._last_request = entry

    def note_output(self, out_i: float, now_wall: Optional[float] = None) -> None:
        """Count consecutive output samples above the allowed current (two in a row trip: one may be a slew)."""
        lim = self.limits
        allowed = self._recent_request() * (1.0 + lim.overcurrent_margin) + lim.overcurrent_abs_a
        self._over_count = self._over_count + 1 if math.isfinite(out_i) and out_i > allowed else 0
        # A stage that delivers nothing while current is asked for (the pack's contactor open, a dead converter).
        asked = self._minq[0][2] if self._minq else 0.0
        if asked >= 5.0 and math.isfinite(out_i) and out_i < 0.5:
            if self._dead_since is None:
                last = self._last_request
                self._dead_since = (last[0], last[1] if now_wall is None else now_wall)
        else:
            self._dead_since = None

    def _recent_request(self) -> float:
        return self._maxq[0][2] if self._maxq else 0.0

    def temperature_factor(self, temp_c: float) -> float:
        """Output power factor for the pack temperature: 1 up to ``derate_temp_c``, falling linearly to 0.2 at
        ``stop_temp_c`` (the session stops there)."""
        lim = self.limits
        if not math.isfinite(temp_c) or temp_c >= lim.stop_temp_c:
            return 0.0
        if temp_c <= lim.derate_temp_c:
            return 1.0
        return 1.0 - 0.8 * (temp_c - lim.derate_temp_c) / (lim.stop_temp_c - lim.derate_temp_c)

    def inputs_present(self) -> bool:
        """Every stream a session needs has arrived at least once (energizing waits for this)."""
        return self.fresh.has("pilot", "bms", "latched", "output")

    def trip(self, now_sim: float, now_wall: float, *, energized: bool, pilot: PilotState, pilot_low_v: float,
             out_v: float, out_i: float, temp_c: float, seated: bool, latched: bool, estimate_reliable: bool,
             estimate_reason: str = "") -> str:
        lim, f = self.limits, self.fresh
        # A stream that never arrived blocks energizing (inputs_present) but is no fault yet: the session may be
        # requested before the plug is in. Once seen, silence trips.
        if f.stale("pilot", now_sim, now_wall, lim.input_timeout_s, lim.input_timeout_wall_s, never=False):
            return "pilot signal lost (stale)"
        if pilot in (PilotState.B, PilotState.C, PilotState.D) and math.isfinite(pilot_low_v) \
                and pilot_low_v > lim.diode_low_v:
            return f"pilot diode fault (negative level {pilot_low_v:.1f} V)"
        if f.stale("bms", now_sim, now_wall, lim.bms_timeout_s, lim.input_timeout_wall_s, never=False):
            return "BMS stale"
        if not estimate_reliable:
            return f"pack estimate unreliable: {estimate_reason}"
        if math.isfinite(temp_c) and self.temperature_factor(temp_c) <= 0.0:
            return f"over-temperature: pack at {temp_c:.1f} degC (stop at {lim.stop_temp_c:.0f} degC)"
        if seated and f.stale("latched", now_sim, now_wall, lim.latched_timeout_s, lim.input_timeout_wall_s,
                              never=False):
            return "connector latch signal stale"
        if seated and not latched and energized:
            return "connector not latched while the arm reports it seated (implausible)"
        if not energized:
            return ""
        if f.stale("output", now_sim, now_wall, lim.input_timeout_s, lim.input_timeout_wall_s):
            return "output measurement stale"
        if not (math.isfinite(out_v) and math.isfinite(out_i)):
            return f"output measurement not finite (V={out_v}, I={out_i})"
        if out_v > lim.overvoltage_v:
            return f"over-voltage: {out_v:.1f} V at the output (limit {lim.overvoltage_v:.0f} V)"
        if out_i < -lim.overcurrent_abs_a:
            return f"reverse current {out_i:.1f} A (implausible)"
        if self._dead_since is not None and now_sim - self._dead_since[0] > lim.dead_output_s \
                and now_wall - self._dead_since[1] > lim.input_timeout_wall_s:
            return (f"no output current for {now_sim - self._dead_since[0]:.1f} s while {self._recent_request():.0f} "
                    "A is requested (stage or pack fault)")
        if self._over_count >= 2:
            return f"over-current: {out_i:.1f} A measured, {self._recent_request():.1f} A requested"
        return ""
