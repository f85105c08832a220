"""The simulator's fault-injection commands and departure draws (sim/faults.py), without ROS."""
import numpy as np
import pytest

from mobicharge_robot.sim.faults import EARLY_RANGE_HARD, FAULTS, FaultError, FaultInjector, departure_times


def test_commands_switch_faults_on_and_off_with_values():
    f = FaultInjector()
    assert f.command('{"fault": "over_temperature", "value": 2.0}') == ("over_temperature", {"value": 2.0, "car": ""})
    assert f.on("over_temperature") and f.value("over_temperature") == 2.0
    f.command('{"fault": "over_temperature", "active": false}')
    assert not f.on("over_temperature") and f.value("over_temperature") == 0.5  # back to the default
    f.command('{"fault": "seat", "car": "car_01"}')
    assert f.pop("seat")["car"] == "car_01" and f.pop("seat") is None  # one-shot


@pytest.mark.parametrize("text, words", [
    ("not json", "not valid JSON"),
    ('{"fault": "meteor"}', "unknown fault"),
    ('{"fault": "diode", "extra": 1}', "unknown field"),
    ('{"fault": "diode", "active": "yes"}', "true or false"),
    ('{"fault": "diode", "value": NaN}', "finite"),
    ('["diode"]', "JSON object"),
])
def test_malformed_commands_are_rejected_with_a_reason(text, words):
    with pytest.raises(FaultError, match=words):
        FaultInjector().command(text)


def test_every_fault_is_documented():
    assert all(isinstance(v, str) and v for v in FAULTS.values())


def test_departures_are_planned_or_earlier_only_in_hard():
    planned = {f"car_{i}": 3600.0 for i in range(200)}
    nominal = departure_times(planned, "nominal", np.random.default_rng(1))
    assert nominal == planned
    hard = departure_times(planned, "hard", np.random.default_rng(1))
    early = [t for t in hard.values() if t < 3600.0]
    assert 20 <= len(early) <= 80  # about a quarter
    assert all(EARLY_RANGE_HARD[0] * 3600.0 <= t for t in early)
    assert departure_times({"a": float("inf")}, "hard", np.random.default_rng(1)) == {}
