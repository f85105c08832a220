"""The IEC 61851-1 control pilot, seen from the charger (EVSE) side.

The EVSE drives the pilot line with a +/-12 V, 1 kHz PWM through 1 kOhm; the vehicle pulls the positive level down
with its resistors, so the high level tells the vehicle's state (IEC 61851-1:2017, Annex A, Table A.3/A.4). The duty
cycle tells the vehicle what the EVSE offers (Table A.7/A.8): 5% means "digital communication required" (ISO 15118
or DIN SPEC 70121, as DC charging over CCS uses), 10..96% encodes an AC current limit, and 100% (a constant +12 V)
means no offer. Duties here are fractions 0..1, voltages are in V, currents in A, times in s.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Optional


class PilotState(enum.Enum):
    A = "A"  # +12 V: no vehicle
    B = "B"  # +9 V: vehicle connected, not ready
    C = "C"  # +6 V: vehicle ready, charging
    D = "D"  # +3 V: charging, ventilation required
    E = "E"  # 0 V: error (pilot shorted to PE, no EVSE)
    F = "F"  # -12 V: EVSE fault / not available
    INVALID = "INVALID"  # outside every band


# (state, low V, high V) bands of the positive pilot level, after IEC 61851-1 Table A.3 (inclusive limits).
_BANDS = (
    (PilotState.A, 11.0, 13.0),
    (PilotState.B, 8.0, 10.0),
    (PilotState.C, 5.0, 7.0),
    (PilotState.D, 2.0, 4.0),
    (PilotState.E, -1.0, 1.0),
    (PilotState.F, -13.0, -11.0),
)
# The nominal level of each state (V), for simulators and tests.
NOMINAL_V = {PilotState.A: 12.0, PilotState.B: 9.0, PilotState.C: 6.0, PilotState.D: 3.0, PilotState.E: 0.0,
             PilotState.F: -12.0}

DIGITAL_DUTY = 0.05  # ISO 15118 / DIN SPEC 70121 required
NO_OFFER_DUTY = 1.0  # constant +12 V: the EVSE offers nothing


def classify_pilot_voltage(v_high: float) -> PilotState:
    """The pilot state from the measured positive pilot level ``v_high`` (V), per IEC 61851-1 Table A.3:
    A 11..13 V, B 8..10 V, C 5..7 V, D 2..4 V, E -1..1 V, F -13..-11 V; anything else (or NaN) is INVALID."""
    if not isinstance(v_high, (int, float)) or not math.isfinite(v_high):
        return PilotState.INVALID
    for state, lo, hi in _BANDS:
        if lo <= v_high <= hi:
            return state
    return PilotState.INVALID


def is_digital_duty(duty: float) -> bool:
    """True for the 3..7% band that IEC 61851-1 Table A.8 reads as "digital communication required"."""
    return math.isfinite(duty) and 0.03 <= duty <= 0.07


def duty_for_current(amps: float) -> float:
    """The PWM duty (fraction) that offers ``amps`` (A) per IEC 61851-1 Table A.7: 6..51 A -> amps / 60
    (10..85%), 52.5 < amps <= 80 A -> (amps / 2.5 + 64) / 100 (85..96%). The standard encodes nothing between 51 and
    52.5 A (85% reads as 51 A), so those offer 51 A: the duty is a limit, and offering less is safe.
    Currents outside 6..80 A: ValueError."""
    if not math.isfinite(amps) or not 6.0 <= amps <= 80.0:
        raise ValueError(f"a pilot duty can offer 6..80 A, got {amps!r} A")
    if amps <= 52.5:
        return min(amps, 51.0) / 60.0
    return (amps / 2.5 + 64.0) / 100.0


def current_for_duty(duty: float) -> float:
    """The current (A) that a duty (fraction 0..1) offers, per IEC 61851-1 Table A.8: 8..10% -> 6 A,
    10..85% -> duty * 100 * 0.6 A, 85..96% -> (duty * 100 - 64) * 2.5 A, 96..97% -> 80 A.

    Raises ValueError for the 5% digital band (the current is then negotiated over ISO 15118 / DIN SPEC 70121),
    for duties outside 0..1 (a percentage by mistake) and for the bands the standard does not allow."""
    if not math.isfinite(duty) or not 0.0 <= duty <= 1.0:
        raise ValueError(f"duty must be a fraction within [0, 1], got {duty!r}")
    if is_digital_duty(duty):
        raise ValueError(f"duty {duty:.1%} means digital communication (ISO 15118 / DIN SPEC 70121): "
                         "the current is negotiated, not encoded")
    pct = round(duty * 100.0, 9)  # 0.85 * 100 must read as 85, not 85.00000000000001
    if 8.0 <= pct < 10.0:
        return 6.0
    if 10.0 <= pct <= 85.0:
        return pct * 0.6
    if 85.0 < pct <= 96.0:
        return (pct - 64.0) * 2.5
    if 96.0 < pct <= 97.0:
        return 80.0
    raise ValueError(f"duty {duty:.1%} encodes no current (IEC 61851-1 Table A.8)")


@dataclass(frozen=True)
class PilotDecision:
    """What the charger does after one pilot update: close the output (``energize``), the PWM ``duty`` to drive
    (fraction), the FSM ``state`` and the latched ``fault`` (None when healthy)."""

    energize: bool
    duty: float
    state: str
    fault: Optional[str] = None


class ChargerPilotFSM:
    """The charger side's pilot state machine for DC charging.

    States: 'idle' (no energy wanted, duty 100%), 'offering' (duty 5%, waiting for the car to request energy),
    'interlock' (the car is in C/D but the plug is not seated and locked, or isolation is not OK), 'ready' (all
    conditions met, waiting ``settle_s`` s), 'energized', 'paused' (the car went back to B after charging: no fault,
    it may resume) and 'fault' (latched until ``reset()``).

    It energizes only in C or D with the plug locked and isolation OK, and only once all three have held without a
    break for ``settle_s`` seconds: a debounce, so that inputs arriving a few milliseconds apart (a stale "isolation
    OK" seen just before the fresh "isolation fault") can never close the output. It de-energizes in the very
    update that sees any of them fail.
    """

    ENERGIZE_STATES = (PilotState.C, PilotState.D)

    def __init__(self, settle_s: float = 0.2):
        if not math.isfinite(settle_s) or settle_s < 0.0:
            raise ValueError(f"settle_s must be finite and >= 0, got {settle_s!r}")
        self.settle_s = float(settle_s)
        self.reset()

    def reset(self) -> None:
        """Clear a latched fault and go idle (the manual reset)."""
        self.state = "idle"
        self.fault: Optional[str] = None
        self.fault_t: Optional[float] = None
        self.since = None  # time (s) the current state was entered
        self._energized_once = False
        self._ready_since = None

    @property
    def energized(self) -> bool:
        return self.state == "energized"

    def _go(self, t: float, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = t

    def _latch(self, t: float, fault: str) -> PilotDecision:
        self._ready_since = None
        self.fault = fault
        self.fault_t = t
        self._go(t, "fault")
        return PilotDecision(False, NO_OFFER_DUTY, "fault", fault)

    def update(self, t: float, pilot_state: PilotState, plug_locked: bool, isolation_ok: bool,
               want_energy: bool) -> PilotDecision:
        """One step at time ``t`` (s) with the measured ``pilot_state`` and the interlocks; returns the decision."""
        if not isinstance(pilot_state, PilotState):
            raise TypeError(f"pilot_state must be a PilotState, got {pilot_state!r}")
        if self.fault is not None:
            return PilotDecision(False, NO_OFFER_DUTY, "fault", self.fault)
        in_cd = pilot_state in self.ENERGIZE_STATES
        if self.state == "energized":
            if not in_cd and pilot_state != PilotState.B:
                return self._latch(t, f"pilot left C to {pilot_state.value} while energized")
            if not plug_locked:
                return self._latch(t, "plug not locked while energized")
            if not isolation_ok:
                return self._latch(t, "isolation fault while energized")
        if self.state == "paused" and pilot_state in (PilotState.A, PilotState.E, PilotState.F):
            return self._latch(t, f"pilot went to {pilot_state.value} during a paused session")
        if not want_energy:
            self._ready_since = None
            self._go(t, "idle")
            return PilotDecision(False, NO_OFFER_DUTY, "idle")
        if pilot_state in (PilotState.E, PilotState.F):
            return self._latch(t, f"pilot state {pilot_state.value} (error)")
        if in_cd and plug_locked and isolation_ok:
            if self.state == "energized":
                return PilotDecision(True, DIGITAL_DUTY, "energized")
            if self._ready_since is None or t < self._ready_since:  # a clock that jumps back restarts the wait
                self._ready_since = t
            if t - self._ready_since >= self.settle_s:
                self._go(t, "energized")
                self._energized_once = True
                return PilotDecision(True, DIGITAL_DUTY, "energized")
            self._go(t, "ready")
            return PilotDecision(False, DIGITAL_DUTY, "ready")
        self._ready_since = None
        if in_cd:
            self._go(t, "interlock")
            return PilotDecision(False, DIGITAL_DUTY, "interlock")
        if pilot_state == PilotState.B and self._energized_once:
            self._go(t, "paused")
            return PilotDecision(False, DIGITAL_DUTY, "paused")
        self._go(t, "offering")
        return PilotDecision(False, DIGITAL_DUTY, "offering")
