"""Fault injection and energy bookkeeping for the loopback simulator (never imported by production nodes).

Faults are switched on and off at run time with JSON on the sim-only topic ``sim/fault`` (std_msgs/String)::

    {"fault": "over_temperature", "active": true, "value": 0.5}
    {"fault": "seat", "car": "car_01"}           # test hook: the connector is latched in car_01's inlet
    {"fault": "car_leaves", "car": "car_01"}     # car_01 leaves now (default: the car at the connector)

``FAULTS`` lists every fault and its effect. Departures: each car leaves at its ``departure_s`` (sim time from the
start, which is about when the mission starts); in ``hard`` variation some owners come back early
(``departure_times``). Units: s, W, Wh, V, A, degC.
"""
from __future__ import annotations

import json
import math
from typing import Dict, Optional, Tuple

FAULTS = {
    "over_current": "the output stage's current loop fails: the car takes `value` (default 1.5) x the request",
    "over_voltage": "the output voltage reads `value` (default 1.25) x its true value (a regulation fault)",
    "over_temperature": "the pack's cooling fails: it heats at `value` K/s (default 0.5)",
    "isolation": "the isolation monitor reports a fault",
    "pack_cutoff": "the pack is driven to its cut-off charge: the BMS opens its contactor",
    "car_leaves": "the car (`car`, default the one at the connector) leaves now",
    "pilot_e": "the pilot line is shorted to PE (state E, 0 V)",
    "pilot_f": "the pilot reads -12 V (state F)",
    "diode": "the car's pilot diode is shorted: the negative level reads -`value` V (default 6) instead of -12 V",
    "pilot_cut": "the pilot wire breaks: the charger reads +12 V (state A) with the plug in",
    "pilot_loss": "the pilot measurement stops arriving (a dead driver: the watchdog's case)",
    "bms_stale": "the BMS stops publishing",
    "bms_current_bias": "the BMS current reads `value` A (default 20) high",
    "bms_voltage_stuck": "the BMS voltage freezes at its present reading",
    "output_stale": "the output measurement stops arriving",
    "seat": "test hook: the connector is latched in `car`'s inlet (no arm motion needed)",
    "pack_temperature": "test hook: set the pack's temperature to `value` degC now (to cool it after a test)",
}
_DEFAULTS = {"over_current": 1.5, "over_voltage": 1.25, "over_temperature": 0.5, "diode": 6.0,
             "bms_current_bias": 20.0}
# hard variation: the share of owners who come back early, and how early (fraction of the planned stay).
EARLY_SHARE_HARD = 0.25
EARLY_RANGE_HARD = (0.5, 0.95)


class FaultError(ValueError):
    """A malformed fault command."""


class FaultInjector:
    """The set of active faults with their values."""

    def __init__(self):
        self.active: Dict[str, dict] = {}

    def command(self, text: str) -> Tuple[str, dict]:
        """Apply one JSON command; returns (fault name, its settings). Raises FaultError with the reason."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise FaultError(f"not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("fault"), str):
            raise FaultError("a fault command is a JSON object with a string field 'fault'")
        name = data["fault"]
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        unknown = set(data) - {"fault", "active", "value", "car"}
        if unknown:
            raise FaultError(f"unknown field(s): {', '.join(sorted(unknown))}")
        active = data.get("active", True)
        if not isinstance(active, bool):
            raise FaultError("'active' must be true or false")
        value = data.get("value", _DEFAULTS.get(name, 0.0))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FaultError("'value' must be a finite number")
        car = data.get("car", "")
        if not isinstance(car, str):
            raise FaultError("'car' must be a string")
        settings = {"value": float(value), "car": car}
        if active:
            self.active[name] = settings
        else:
            self.active.pop(name, None)
        return name, settings

    def on(self, name: str) -> bool:
        return name in self.active

    def value(self, name: str) -> float:
        return self.active[name]["value"] if name in self.active else _DEFAULTS.get(name, 0.0)

    def pop(self, name: str) -> Optional[dict]:
        """Consume a one-shot fault (``seat``, ``car_leaves``, ``pack_cutoff``, ``pack_temperature``)."""
        return self.active.pop(name, None)


def departure_times(departures: Dict[str, float], variation: str, rng) -> Dict[str, float]:
    """Sim time (s) at which each car leaves: its planned departure, or in ``hard`` variation, for about a quarter
    of the cars, earlier (the owner comes back). Cars without a departure never leave."""
    out = {}
    for vid, dep in departures.items():
        if dep is None or not math.isfinite(dep):
            continue
        early = variation == "hard" and rng.uniform() < EARLY_SHARE_HARD
        out[vid] = dep * (rng.uniform(*EARLY_RANGE_HARD) if early else 1.0)
    return out
