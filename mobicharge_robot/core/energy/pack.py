"""The robot's onboard LFP pack: its parameters, an open-circuit-voltage curve, a "true" pack model for the
simulator and a state-of-charge estimator for the energy node.

Units: V, A, W, Wh/kWh, s, degC; state of charge (soc) is a fraction 0..1. Currents follow the ROS
``sensor_msgs/BatteryState`` convention: NEGATIVE while the pack discharges, positive while it charges.

``capacity_kwh`` is the open-circuit energy content from 0 to 100% soc, so ``capacity_ah`` is derived from it
through the OCV curve (not from a guessed nominal voltage); then soc x capacity is the energy stored chemically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Cell open-circuit voltage of an LFP cell (V) against soc. The long flat plateau between about 20% and 90% is what
# makes LFP hard to estimate from voltage; the knees at both ends carry most of the information.
_SOC_PTS = np.array([0.0, 0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.95, 0.98, 1.0])
_CELL_OCV = np.array([2.60, 2.95, 3.10, 3.19, 3.22, 3.25, 3.265, 3.28, 3.29, 3.30, 3.31, 3.33, 3.36, 3.42, 3.55])
# Per-cell voltage limits the BMS enforces; a reading outside them (with margin) is implausible.
CELL_V_MIN = 2.5
CELL_V_MAX = 3.65
# Cumulative open-circuit energy per cell (V * unit soc) at each table point: exact for the piecewise-linear curve.
_CELL_OCV_INTEGRAL = np.concatenate(([0.0], np.cumsum(0.5 * (_CELL_OCV[1:] + _CELL_OCV[:-1]) * np.diff(_SOC_PTS))))


@dataclass(frozen=True)
class PackParams:
    """Parameters of the onboard pack (defaults: a ~50 kWh, 144s LFP pack, ~470 V).

    r0_ohm: series resistance; r1_ohm / c1_farad: the one RC pair (polarisation, time constant r1*c1 s);
    thermal_mass_j_per_k and thermal_resistance_k_per_w (to ambient_c) drive the temperature;
    max_discharge_kw / max_charge_kw: the BMS limits at the pack terminals before derating.
    """

    capacity_kwh: float = 50.0
    cells_series: int = 144
    r0_ohm: float = 0.05
    r1_ohm: float = 0.03
    c1_farad: float = 2000.0
    thermal_mass_j_per_k: float = 3.5e5
    thermal_resistance_k_per_w: float = 0.02
    max_discharge_kw: float = 60.0
    max_charge_kw: float = 22.0
    ambient_c: float = 25.0

    def __post_init__(self):
        for name in ("capacity_kwh", "cells_series", "r0_ohm", "r1_ohm", "c1_farad", "thermal_mass_j_per_k",
                     "thermal_resistance_k_per_w", "max_discharge_kw", "max_charge_kw"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"PackParams.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"PackParams.{name} must be positive and finite, got {value!r}")
        if int(self.cells_series) != self.cells_series:
            raise ValueError(f"PackParams.cells_series must be an integer, got {self.cells_series!r}")
        if not math.isfinite(self.ambient_c):
            raise ValueError(f"PackParams.ambient_c must be finite, got {self.ambient_c!r}")

    @property
    def capacity_ah(self) -> float:
        """Charge capacity (Ah) such that the open-circuit energy from 0 to 100% equals capacity_kwh."""
        return 1000.0 * self.capacity_kwh / (self.cells_series * float(_CELL_OCV_INTEGRAL[-1]))

    @property
    def nominal_voltage_v(self) -> float:
        """The mean open-circuit voltage over the full soc range (V)."""
        return self.cells_series * float(_CELL_OCV_INTEGRAL[-1])

    @property
    def voltage_range_v(self) -> tuple:
        """(min, max) pack voltage (V) the BMS allows."""
        return self.cells_series * CELL_V_MIN, self.cells_series * CELL_V_MAX

    @property
    def rc_time_constant_s(self) -> float:
        return self.r1_ohm * self.c1_farad


def _check_soc(soc: float) -> float:
    if not math.isfinite(soc):
        raise ValueError(f"soc must be finite, got {soc!r}")
    return min(1.0, max(0.0, float(soc)))


def ocv_v(soc: float, params: PackParams) -> float:
    """Open-circuit voltage of the whole pack (V) at ``soc`` (0..1, clipped); strictly increasing in soc."""
    return params.cells_series * float(np.interp(_check_soc(soc), _SOC_PTS, _CELL_OCV))


def ocv_slope_v(soc: float, params: PackParams) -> float:
    """d(OCV)/d(soc) of the pack (V per unit soc), a central difference that smooths the table's corners."""
    h = 0.005
    lo, hi = max(0.0, soc - h), min(1.0, soc + h)
    return (ocv_v(hi, params) - ocv_v(lo, params)) / (hi - lo)


def energy_content_wh(soc: float, params: PackParams) -> float:
    """Open-circuit energy (Wh) stored between 0% and ``soc``: what an ideal, lossless discharge would yield."""
    s = _check_soc(soc)
    k = int(np.searchsorted(_SOC_PTS, s, side="right")) - 1
    k = min(k, len(_SOC_PTS) - 2)
    v_at = float(np.interp(s, _SOC_PTS, _CELL_OCV))
    cell = float(_CELL_OCV_INTEGRAL[k]) + 0.5 * (_CELL_OCV[k] + v_at) * (s - _SOC_PTS[k])
    return cell * params.cells_series * params.capacity_ah


def _temp_factor(temp_c: float) -> float:
    if temp_c >= 60.0:
        return 0.0
    if temp_c > 45.0:
        return (60.0 - temp_c) / 15.0
    if temp_c >= 0.0:
        return 1.0
    return max(0.25, 1.0 + 0.75 * temp_c / 20.0)


def discharge_limit_w(soc: float, temp_c: float, params: PackParams) -> float:
    """Allowed discharge power (W) at the terminals: full above 20% soc, falling linearly to zero at 5%, and
    derated outside 0..45 degC (zero from 60 degC, a quarter at -20 degC and below)."""
    s = _check_soc(soc)
    soc_factor = min(1.0, max(0.0, (s - 0.05) / 0.15))
    return 1000.0 * params.max_discharge_kw * soc_factor * _temp_factor(temp_c)


def charge_limit_w(soc: float, temp_c: float, params: PackParams) -> float:
    """Allowed charge power (W): full below 90% soc, falling to zero at 100%; none at or below 0 degC (lithium
    plating) and the same hot derating as discharge."""
    s = _check_soc(soc)
    soc_factor = min(1.0, max(0.0, (1.0 - s) / 0.10))
    cold = 0.0 if temp_c <= 0.0 else 1.0
    return 1000.0 * params.max_charge_kw * soc_factor * cold * _temp_factor(temp_c)


class PackModel:
    """The "true" pack for the simulator: OCV + R0 + one RC pair, coulomb counting and a lumped thermal mass.

    Attributes after each ``step``: ``soc`` (0..1), ``voltage_v`` (terminal), ``current_a`` (negative while
    discharging), ``temp_c``, ``energy_out_wh`` (net energy out of the terminals since construction; charging
    lowers it) and ``cutoff`` (a reason string while the BMS refused the requested power, else '').
    """

    # The BMS opens its contactor at this temperature (degC).
    CUTOFF_TEMP_C = 65.0

    def __init__(self, params: PackParams, soc: float = 0.8, temp_c: float = 25.0):
        if not math.isfinite(soc) or not 0.0 <= soc <= 1.0:
            raise ValueError(f"soc must be within [0, 1], got {soc!r}")
        if not math.isfinite(temp_c):
            raise ValueError(f"temp_c must be finite, got {temp_c!r}")
        self.params = params
        self.soc = float(soc)
        self.temp_c = float(temp_c)
        self.v_rc = 0.0
        self.current_a = 0.0
        self.voltage_v = ocv_v(self.soc, params)
        self.energy_out_wh = 0.0
        self.cutoff = ""

    def available_discharge_w(self) -> float:
        """Discharge power (W) the BMS currently allows (see ``discharge_limit_w``)."""
        return discharge_limit_w(self.soc, self.temp_c, self.params)

    def available_charge_w(self) -> float:
        """Charge power (W) the BMS currently allows (see ``charge_limit_w``)."""
        return charge_limit_w(self.soc, self.temp_c, self.params)

    # The BMS opens its contactor below this terminal voltage per cell (V).
    CUTOFF_CELL_V = CELL_V_MIN

    def cutoff_reason(self, power_w: float, dt: float) -> str:
        """Why the pack cannot supply ``power_w`` (W, > 0 discharges) for ``dt`` s, or '' when it can: the BMS
        contactor is open above ``CUTOFF_TEMP_C``, at an empty pack, below the cut-off voltage, or when the request
        would take more charge than is left. Check before stepping, so that nothing downstream delivers energy the
        pack did not give."""
        if power_w <= 0.0:
            return "over-temperature" if self.temp_c >= self.CUTOFF_TEMP_C and power_w < 0.0 else ""
        if self.temp_c >= self.CUTOFF_TEMP_C:
            return f"over-temperature {self.temp_c:.1f} degC"
        if self.voltage_v < self.params.cells_series * self.CUTOFF_CELL_V:
            return f"under-voltage {self.voltage_v:.1f} V"
        if energy_content_wh(self.soc, self.params) <= 2.0 * power_w * dt / 3600.0 or self.soc <= 0.0:
            return "empty"
        return ""

    def _hard_limit(self, power_w: float) -> float:
        """Only the hard cut-offs clip the power here; derating is advice that the controller must follow."""
        self.cutoff = ""
        if self.temp_c >= self.CUTOFF_TEMP_C and power_w != 0.0:
            self.cutoff = f"over-temperature {self.temp_c:.1f} degC"
            return 0.0
        if power_w > 0.0 and self.soc <= 0.0:
            self.cutoff = "empty"
            return 0.0
        if power_w < 0.0 and self.soc >= 1.0:
            self.cutoff = "full"
            return 0.0
        return power_w

    def step(self, power_w: float, dt: float) -> None:
        """Advance ``dt`` seconds while ``power_w`` (W; > 0 discharges) flows at the terminals."""
        if not math.isfinite(power_w):
            raise ValueError(f"power_w must be finite, got {power_w!r}")
        if not math.isfinite(dt) or dt < 0.0:
            raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
        p = self.params
        power_w = self._hard_limit(power_w)
        emf = ocv_v(self.soc, p) - self.v_rc
        # P = (emf - R0 I) I; the root nearer zero is the physical one. Beyond the maximum-power point the pack
        # cannot deliver the request, so it gives what it can.
        disc = emf * emf - 4.0 * p.r0_ohm * power_w
        if disc < 0.0:
            self.cutoff = "power beyond the maximum-power point"
            i_dis = emf / (2.0 * p.r0_ohm)
        else:
            i_dis = 2.0 * power_w / (emf + math.sqrt(disc))
        v_term = emf - p.r0_ohm * i_dis
        self.soc = min(1.0, max(0.0, self.soc - i_dis * dt / (3600.0 * p.capacity_ah)))
        decay = math.exp(-dt / p.rc_time_constant_s)
        self.v_rc = self.v_rc * decay + p.r1_ohm * i_dis * (1.0 - decay)
        heat_w = i_dis * i_dis * p.r0_ohm + self.v_rc * self.v_rc / p.r1_ohm
        cooling_w = (self.temp_c - p.ambient_c) / p.thermal_resistance_k_per_w
        self.temp_c += dt * (heat_w - cooling_w) / p.thermal_mass_j_per_k
        self.energy_out_wh += v_term * i_dis * dt / 3600.0
        self.current_a = -i_dis
        self.voltage_v = v_term


class SocEstimator:
    """State-of-charge estimate from the BMS's raw voltage, current and temperature, on a pack that is not its model.

    An extended Kalman filter over six states: soc, the RC-pair voltage (V), the current sensor's offset (A, the
    measured minus the true current), the series resistance R0 (ohm), the inverse capacity scale (true Ah =
    model Ah / scale) and the polarisation resistance R1 (ohm). Coulomb counting with the offset removed predicts; the terminal voltage corrects through the
    OCV curve, ``ocv(soc) - v_rc - R0 * i_discharge``. The offset is what makes a long run work: an uncorrected
    1% full-scale bias (3 A on a 106 Ah pack) drifts soc by ~3%/h, and it shows as a slow voltage disagreement at
    rest that only an offset state explains. R0, R1 and the capacity scale absorb a pack whose resistance and capacity
    differ from the datasheet by tens of percent. On the LFP plateau the OCV slope is small, so the voltage says
    little there and much at the knees, as it should. Large innovations are down-weighted (the measurement noise is
    inflated to a 3-sigma innovation) so one bad sample cannot yank the estimate. Hand-written: the filter is
    twenty lines, and a generic filter library would not know the model's structure any better.

    ``reliable`` drops to False, with ``reason``, on a non-finite or implausible sample (voltage outside the pack's
    range, |current| above twice the BMS limit, temperature outside -40..90 degC), on a voltage stuck at one value for
    ``stuck_s`` while current flows, when flagged from outside (``flag``: a stale BMS stream), on a gross voltage
    disagreement (beyond ``gross_v`` and 10 sigma for ``gross_s``: a sensor fault, or a pack suddenly at its cut-off)
    and on signs of a biased sensor: innovations that stay beyond 3 sigma for ``bias_s``, voltage corrections that move soc by more than
    ``max_pull`` against coulomb counting within about ten minutes, or a current offset beyond
    ``max_current_offset_a``. It becomes True again only after ``recover_s`` of clean samples. A voltage bias of a few
    volts is not caught: on the LFP plateau it looks like a soc error of several percent, which is the limit of
    voltage-based checks.
    """

    def __init__(self, params: PackParams, initial_soc: float, initial_sigma: float = 0.1,
                 voltage_noise_v: float = 0.5, current_noise_a: float = 0.5, stuck_s: float = 60.0,
                 bias_s: float = 120.0, recover_s: float = 10.0, current_offset_sigma_a: float = 3.0,
                 resistance_sigma: float = 0.4, capacity_sigma: float = 0.06, max_current_offset_a: float = 15.0):
        if not math.isfinite(initial_soc) or not 0.0 <= initial_soc <= 1.0:
            raise ValueError(f"initial_soc must be within [0, 1], got {initial_soc!r}")
        for name, value in (("initial_sigma", initial_sigma), ("voltage_noise_v", voltage_noise_v),
                            ("current_noise_a", current_noise_a), ("stuck_s", stuck_s), ("bias_s", bias_s),
                            ("recover_s", recover_s), ("current_offset_sigma_a", current_offset_sigma_a),
                            ("resistance_sigma", resistance_sigma), ("capacity_sigma", capacity_sigma),
                            ("max_current_offset_a", max_current_offset_a)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        self.params = params
        # x = [soc, v_rc (V), current offset (A), R0 (ohm), inverse capacity scale, R1 (ohm)]
        self.x = np.array([float(initial_soc), 0.0, 0.0, params.r0_ohm, 1.0, params.r1_ohm])
        self.P = np.diag([initial_sigma ** 2, 0.2 ** 2, current_offset_sigma_a ** 2,
                          (resistance_sigma * params.r0_ohm) ** 2, capacity_sigma ** 2,
                          (resistance_sigma * params.r1_ohm) ** 2])
        self.r_v2 = voltage_noise_v ** 2
        self.current_noise_a = current_noise_a
        self.max_current_offset_a = max_current_offset_a
        self.r0_bounds = (0.3 * params.r0_ohm, 3.0 * params.r0_ohm)
        self.r1_bounds = (0.3 * params.r1_ohm, 3.0 * params.r1_ohm)
        self.stuck_s, self.bias_s, self.recover_s = stuck_s, bias_s, recover_s
        lo, hi = params.voltage_range_v
        margin = 0.05 * (hi - lo)
        self.v_plausible = (lo - margin, hi + margin)
        self.i_plausible = 2.0 * 1000.0 * max(params.max_discharge_kw, params.max_charge_kw) / lo
        self.reliable = True
        self.reason = ""
        self._clean_s = 0.0
        self._stuck_v = None
        self._stuck_for = 0.0
        self._outlier_for = 0.0
        # Voltage corrections to soc, leakily summed: a fresh 5% start-up error is normal, a large drift is not.
        self._pull = 0.0
        self.pull_window_s = 600.0
        self.max_pull = 0.15
        self.iterations = 5
        # A gross disagreement (beyond gross_v and 10 sigma) for gross_s is flagged at once, not after bias_s.
        self.gross_v = 20.0
        self.gross_s = 5.0
        self._gross_for = 0.0
        self._last_gross = False
        self._last_innovation = 0.0

    @property
    def soc(self) -> float:
        return float(self.x[0])

    @property
    def soc_sigma(self) -> float:
        """One standard deviation of the soc estimate (fraction)."""
        return float(math.sqrt(max(0.0, self.P[0, 0])))

    @property
    def current_offset_a(self) -> float:
        """Estimated current-sensor offset (A): measured minus true current."""
        return float(self.x[2])

    @property
    def r0_ohm(self) -> float:
        """Estimated series resistance (ohm)."""
        return float(self.x[3])

    @property
    def capacity_kwh(self) -> float:
        """Estimated capacity (kWh, open-circuit energy 0..100%)."""
        return self.params.capacity_kwh / float(self.x[4])

    def remaining_kwh(self, floor_soc: float = 0.0) -> float:
        """Open-circuit energy (kWh) between ``floor_soc`` and the estimated soc (0 when below the floor), on the
        estimated capacity."""
        scale = 1.0 / float(self.x[4])
        return scale * max(0.0, energy_content_wh(self.soc, self.params)
                           - energy_content_wh(floor_soc, self.params)) / 1e3

    def flag(self, reason: str) -> None:
        """Mark the estimate unreliable (from outside too: a stale BMS stream) until ``recover_s`` of clean data."""
        self.reliable = False
        self.reason = reason
        self._clean_s = 0.0

    _flag = flag

    def _plausibility(self, voltage_v: float, current_a: float, temp_c: float) -> str:
        if not (math.isfinite(voltage_v) and math.isfinite(current_a) and math.isfinite(temp_c)):
            return f"non-finite measurement (V={voltage_v}, I={current_a}, T={temp_c})"
        lo, hi = self.v_plausible
        if not lo <= voltage_v <= hi:
            return f"voltage {voltage_v:.1f} V outside the pack's range [{lo:.0f}, {hi:.0f}] V"
        if abs(current_a) > self.i_plausible:
            return f"current {current_a:.1f} A above the plausible {self.i_plausible:.0f} A"
        if not -40.0 <= temp_c <= 90.0:
            return f"temperature {temp_c:.1f} degC implausible"
        return ""

    def _stuck(self, voltage_v: float, current_a: float, dt: float) -> bool:
        """A real terminal voltage moves (noise, IR drop, RC, soc) while current flows; an identical reading for
        ``stuck_s`` under load means a frozen sensor."""
        if self._stuck_v is None or abs(voltage_v - self._stuck_v) > 1e-3 or abs(current_a) < 5.0:
            self._stuck_v = voltage_v
            self._stuck_for = 0.0
            return False
        self._stuck_for += dt
        return self._stuck_for >= self.stuck_s

    def update(self, voltage_v: float, current_a: float, temp_c: float, dt: float) -> float:
        """Fold in one BMS sample taken ``dt`` s after the previous one; returns the soc estimate (0..1).

        voltage_v: terminal voltage (V); current_a: pack current (A, negative while discharging); temp_c: degC.
        """
        if not math.isfinite(dt) or dt < 0.0:
            raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
        problem = self._plausibility(voltage_v, current_a, temp_c)
        if problem:
            # Without a trustworthy current there is nothing to integrate: hold the estimate, let it grow uncertain.
            self.P[0, 0] += (self.current_noise_a * 10.0 * dt / (3600.0 * self.params.capacity_ah)) ** 2
            self._flag(problem)
            return self.soc
        self._predict(current_a, dt)
        if self._stuck(voltage_v, current_a, dt):
            self._flag(f"voltage stuck at {voltage_v:.2f} V for {self._stuck_for:.0f} s while current flows")
            return self.soc
        self._pull *= math.exp(-dt / self.pull_window_s)
        large = self._correct(voltage_v, current_a)
        self._outlier_for = self._outlier_for + dt if large else 0.0
        self._gross_for = self._gross_for + dt if self._last_gross else 0.0
        if self._gross_for >= self.gross_s:
            self._flag(f"voltage {self._last_innovation:+.1f} V away from the model for {self._gross_for:.0f} s "
                       "(biased or faulty sensor, or the pack is not where the estimate thinks)")
            return self.soc
        if self._outlier_for >= self.bias_s:
            self._flag(f"voltage disagrees with the model for {self._outlier_for:.0f} s (biased sensor?)")
            return self.soc
        if abs(self._pull) > self.max_pull:
            self._flag(f"voltage pulled the estimate {self._pull:+.2f} away from coulomb counting within "
                       f"~{self.pull_window_s:.0f} s (biased sensor?)")
            return self.soc
        if abs(self.x[2]) > self.max_current_offset_a and self.P[2, 2] < (0.25 * self.max_current_offset_a) ** 2:
            self._flag(f"current sensor offset {self.x[2]:+.1f} A beyond {self.max_current_offset_a:.0f} A "
                       "(biased sensor)")
            return self.soc
        if not self.reliable:
            self._clean_s += dt
            if self._clean_s >= self.recover_s:
                self.reliable, self.reason = True, ""
        return self.soc

    def _predict(self, current_a: float, dt: float) -> None:
        p = self.params
        ah_s = 3600.0 * p.capacity_ah
        soc, v_rc, offset, _, kappa, r1 = self.x
        # The capacitance is taken as known, so the time constant follows the estimated R1.
        decay = math.exp(-dt / (r1 * p.c1_farad))
        i_chg = current_a - offset  # the true current, positive while charging
        self.x[0] = soc + kappa * i_chg * dt / ah_s
        self.x[1] = v_rc * decay - r1 * i_chg * (1.0 - decay)
        F = np.eye(6)
        F[0, 2] = -kappa * dt / ah_s
        F[0, 4] = i_chg * dt / ah_s
        F[1, 1] = decay
        F[1, 2] = r1 * (1.0 - decay)
        F[1, 5] = -i_chg * (1.0 - decay)
        # Current-sensor noise integrates into soc; a small random walk keeps the filter from becoming deaf.
        q_soc = (self.current_noise_a * dt / ah_s) ** 2 + 1e-10 * dt
        q_rc = 0.01 * (1.0 - decay)
        q_offset = (2e-4 ** 2) * dt  # the offset drifts slowly (temperature)
        q_r0 = (1e-5 * p.r0_ohm) ** 2 * dt
        q_kappa = 1e-12 * dt
        q_r1 = (1e-5 * p.r1_ohm) ** 2 * dt
        self.P = F @ self.P @ F.T + np.diag([q_soc, q_rc, q_offset, q_r0, q_kappa, q_r1])

    def _measure(self, x: np.ndarray, current_a: float):
        """Predicted terminal voltage (V) at state ``x`` and its Jacobian."""
        p = self.params
        soc = min(1.0, max(0.0, float(x[0])))
        i_dis = x[2] - current_a  # the true discharge current
        predicted = ocv_v(soc, p) - x[1] - x[3] * i_dis
        return predicted, np.array([ocv_slope_v(soc, p), -1.0, -x[3], -i_dis, 0.0, 0.0])

    def _correct(self, voltage_v: float, current_a: float) -> bool:
        """Measurement update; returns True when the innovation was an outlier (beyond 3 sigma).

        An iterated EKF step (Gauss-Newton on the OCV curve): one linearisation at the prior would overshoot across
        the curve's knees, where the slope changes several-fold within a few percent of soc."""
        x0 = self.x.copy()
        self._prior_sigma = self.soc_sigma
        predicted, H = self._measure(x0, current_a)
        innovation = voltage_v - predicted
        r = self.r_v2
        s = float(H @ self.P @ H) + r
        outlier = innovation * innovation > 9.0 * s
        self._last_innovation = innovation
        self._last_gross = abs(innovation) > max(self.gross_v, 10.0 * math.sqrt(s))
        if outlier:
            # Inflate R so the normalised innovation is 3 sigma: bounded pull, still converging.
            r = innovation * innovation / 9.0 - float(H @ self.P @ H)
        x = x0
        for _ in range(self.iterations):
            K = (self.P @ H) / (float(H @ self.P @ H) + r)
            x_new = x0 + K * (voltage_v - predicted - H @ (x0 - x))
            x_new[0] = min(1.0, max(0.0, x_new[0]))
            done = abs(x_new[0] - x[0]) < 1e-5
            x = x_new
            if done:
                break
            predicted, H = self._measure(x, current_a)
        K = (self.P @ H) / (float(H @ self.P @ H) + r)
        self.x = x
        self.x[3] = min(self.r0_bounds[1], max(self.r0_bounds[0], self.x[3]))
        self.x[4] = min(2.0, max(0.5, self.x[4]))
        self.x[5] = min(self.r1_bounds[1], max(self.r1_bounds[0], self.x[5]))
        if self._prior_sigma < 0.03:
            # Only a converged filter counts pulls: the start-up error (up to initial_sigma) is not a biased sensor.
            self._pull += self.x[0] - x0[0]
        I_KH = np.eye(6) - np.outer(K, H)
        # Joseph form keeps P symmetric and positive.
        self.P = I_KH @ self.P @ I_KH.T + r * np.outer(K, K)
        return outlier
