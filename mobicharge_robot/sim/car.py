"""A simulated electric car at the charging inlet: its NMC battery, its CC/CV acceptance and its side of the
IEC 61851-1 control pilot. Used only by the simulator and tests.

Units: kWh, V, A, W, s; soc is a fraction 0..1. Current is positive INTO the car.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.energy.pilot import NOMINAL_V, PilotState, is_digital_duty

# NMC cell open-circuit voltage (V) against soc; 96 cells in series give a ~320..400 V pack.
_SOC_PTS = np.array([0.0, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.0])
_CELL_OCV = np.array([3.30, 3.45, 3.55, 3.62, 3.67, 3.72, 3.77, 3.84, 3.92, 4.00, 4.08, 4.18])
CELLS_SERIES = 96
CELL_NOMINAL_V = 3.7
PACK_R_OHM = 0.08  # internal resistance of the whole car pack (ohm)
TAPER_START_SOC = 0.8  # constant current up to here, then the CV-like taper
MAX_C_RATE = 2.5  # the car's own current ceiling, in multiples of its Ah capacity


class SimCar:
    """The car side of a DC charging session.

    ``capacity_kwh``: usable battery energy; ``soc``: initial state of charge; ``max_dc_power_kw``: the most it
    accepts; ``target_soc``: it stops requesting energy at this soc; ``taper_start_soc``: where its acceptance
    starts to taper (its CC/CV knee). ``unplug()`` injects a departure mid-session
    and ``set_pilot_error()`` an error on the pilot line (state E).
    """

    def __init__(self, capacity_kwh: float, soc: float, max_dc_power_kw: float, target_soc: float = 1.0,
                 taper_start_soc: float = TAPER_START_SOC):
        for name, value in (("capacity_kwh", capacity_kwh), ("max_dc_power_kw", max_dc_power_kw)):
            if not math.isfinite(value) or value <= 0.0:
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        for name, value in (("soc", soc), ("target_soc", target_soc), ("taper_start_soc", taper_start_soc)):
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        self.capacity_kwh = float(capacity_kwh)
        self.soc = float(soc)
        self.max_dc_power_w = 1000.0 * max_dc_power_kw
        self.target_soc = float(target_soc)
        self.taper_start_soc = float(min(taper_start_soc, 0.99))
        self.capacity_ah = 1000.0 * capacity_kwh / (CELLS_SERIES * CELL_NOMINAL_V)
        self.energy_in_wh = 0.0
        self.current_a = 0.0
        self.departed = False
        self.pilot_error = False

    def ocv_v(self) -> float:
        """Open-circuit pack voltage (V) at the present soc."""
        return CELLS_SERIES * float(np.interp(self.soc, _SOC_PTS, _CELL_OCV))

    def terminal_voltage(self, current_a: float) -> float:
        """Inlet voltage (V) while ``current_a`` (A) flows into the battery."""
        return self.ocv_v() + PACK_R_OHM * current_a

    @property
    def voltage_v(self) -> float:
        """Inlet voltage (V) at the last step's current."""
        return self.terminal_voltage(self.current_a)

    def max_current_a(self, voltage_v: float) -> float:
        """The current (A) the car accepts at inlet voltage ``voltage_v`` (V): its power limit over the voltage and
        its C-rate ceiling, tapering linearly above 80% soc to 5% of that at 100% (a CC/CV profile); zero when it
        is full, has reached its target, or has left."""
        if self.departed or self.soc >= min(1.0, self.target_soc):
            return 0.0
        v = voltage_v if math.isfinite(voltage_v) and voltage_v > 0.0 else self.ocv_v()
        cc = min(self.max_dc_power_w / v, MAX_C_RATE * self.capacity_ah)
        if self.soc <= self.taper_start_soc:
            return cc
        taper = (1.0 - self.soc) / (1.0 - self.taper_start_soc)
        return cc * max(0.05, taper)

    def requesting(self, duty: float) -> bool:
        """Whether the car asks for energy: an offer on the pilot (5% digital or a 8..97% current duty) and room
        below its target soc."""
        offer = math.isfinite(duty) and (is_digital_duty(duty) or 0.08 <= duty <= 0.97)
        return offer and not self.departed and self.soc < self.target_soc

    def pilot_voltage(self, connected: bool, duty: float) -> float:
        """The positive pilot level (V) the charger would measure: A (12 V) unless connected, E (0 V) on an injected
        error, C (6 V) while requesting energy, else B (9 V)."""
        if not connected or self.departed:
            return NOMINAL_V[PilotState.A]
        if self.pilot_error:
            return NOMINAL_V[PilotState.E]
        return NOMINAL_V[PilotState.C] if self.requesting(duty) else NOMINAL_V[PilotState.B]

    def step(self, current_a: float, dt: float) -> None:
        """Take ``current_a`` (A, >= 0) into the battery for ``dt`` seconds."""
        if not math.isfinite(current_a) or current_a < 0.0:
            raise ValueError(f"current into the car must be finite and >= 0, got {current_a!r}")
        if not math.isfinite(dt) or dt < 0.0:
            raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
        if self.departed and current_a > 0.0:
            raise ValueError("current into a car that has left")
        v = self.terminal_voltage(current_a)
        self.energy_in_wh += v * current_a * dt / 3600.0
        self.soc = min(1.0, self.soc + current_a * dt / (3600.0 * self.capacity_ah))
        self.current_a = float(current_a)

    def unplug(self) -> None:
        """Fault injection: the car leaves (or the cable is pulled) now."""
        self.departed = True
        self.current_a = 0.0

    def set_pilot_error(self, error: bool = True) -> None:
        """Fault injection: a pilot fault (short to PE: state E) while ``error`` is True."""
        self.pilot_error = bool(error)
