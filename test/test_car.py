"""The simulated car and DC output stage (simulator side, no ROS)."""
import math

import pytest

from mobicharge_robot.core.energy.pilot import DIGITAL_DUTY, NO_OFFER_DUTY, PilotState, classify_pilot_voltage
from mobicharge_robot.sim.car import SimCar
from mobicharge_robot.sim.dc_stage import DcOutputStage


def test_voltage_rises_with_soc_in_the_nmc_range():
    volts = []
    for soc in [0.0, 0.2, 0.5, 0.8, 1.0]:
        volts.append(SimCar(60.0, soc, 100.0).ocv_v())
    assert all(b > a for a, b in zip(volts, volts[1:]))
    assert 300.0 < volts[0] and volts[-1] < 410.0
    assert 350.0 < volts[2] < 380.0


def test_terminal_voltage_includes_the_ir_rise():
    car = SimCar(60.0, 0.5, 100.0)
    assert car.terminal_voltage(100.0) > car.terminal_voltage(0.0) == car.ocv_v()


def test_constant_current_then_taper_above_80_percent():
    low = SimCar(60.0, 0.5, 50.0)
    v = low.ocv_v()
    assert low.max_current_a(v) == pytest.approx(50e3 / v)  # power-limited CC phase
    accepted = []
    for soc in [0.5, 0.8, 0.85, 0.9, 0.95, 0.99]:
        car = SimCar(60.0, soc, 50.0)
        accepted.append(car.max_current_a(400.0))
    assert accepted[0] == pytest.approx(accepted[1])
    assert all(b < a for a, b in zip(accepted[1:], accepted[2:]))
    assert accepted[-1] < 0.15 * accepted[1]
    assert SimCar(60.0, 1.0, 50.0).max_current_a(400.0) == 0.0


def test_c_rate_caps_a_small_battery():
    car = SimCar(10.0, 0.3, 150.0)
    assert car.max_current_a(car.ocv_v()) == pytest.approx(2.5 * car.capacity_ah)


def test_step_integrates_soc_and_energy():
    car = SimCar(60.0, 0.3, 100.0)
    for _ in range(3600):
        car.step(50.0, 1.0)
    expected_ah = 50.0
    assert car.soc == pytest.approx(0.3 + expected_ah / car.capacity_ah)
    assert car.energy_in_wh == pytest.approx(expected_ah * 0.5 * (340.0 + 400.0), rel=0.1)
    with pytest.raises(ValueError):
        car.step(-1.0, 1.0)
    with pytest.raises(ValueError):
        car.step(math.nan, 1.0)


def test_pilot_states():
    car = SimCar(60.0, 0.5, 100.0, target_soc=0.8)
    assert classify_pilot_voltage(car.pilot_voltage(False, DIGITAL_DUTY)) is PilotState.A
    assert classify_pilot_voltage(car.pilot_voltage(True, NO_OFFER_DUTY)) is PilotState.B
    assert classify_pilot_voltage(car.pilot_voltage(True, DIGITAL_DUTY)) is PilotState.C
    assert classify_pilot_voltage(car.pilot_voltage(True, 0.5)) is PilotState.C  # a 30 A AC offer
    assert classify_pilot_voltage(car.pilot_voltage(True, 0.0)) is PilotState.B
    car.set_pilot_error()
    assert classify_pilot_voltage(car.pilot_voltage(True, DIGITAL_DUTY)) is PilotState.E
    car.set_pilot_error(False)
    car.soc = 0.8
    assert classify_pilot_voltage(car.pilot_voltage(True, DIGITAL_DUTY)) is PilotState.B  # reached its target
    assert car.max_current_a(400.0) == 0.0


def test_unplug_departs_and_shows_state_a():
    car = SimCar(60.0, 0.5, 100.0)
    car.unplug()
    assert car.departed
    assert classify_pilot_voltage(car.pilot_voltage(True, DIGITAL_DUTY)) is PilotState.A
    assert car.max_current_a(400.0) == 0.0


@pytest.mark.parametrize("kwargs", [dict(capacity_kwh=0.0), dict(soc=1.5), dict(max_dc_power_kw=-5.0),
                                    dict(target_soc=math.nan)])
def test_car_validates_its_arguments(kwargs):
    args = dict(capacity_kwh=60.0, soc=0.5, max_dc_power_kw=100.0)
    args.update(kwargs)
    with pytest.raises(ValueError):
        SimCar(**args)


# ---------------------------------------------------------------- DC output stage

def test_stage_efficiency_curve():
    stage = DcOutputStage()
    assert stage.efficiency(50e3) == pytest.approx(0.96, abs=1e-6)
    assert stage.efficiency(2e3) < stage.efficiency(10e3) < 0.98
    assert stage.efficiency(0.0) == 0.0


def test_stage_ramps_limits_and_reports_pack_power():
    car = SimCar(60.0, 0.3, 100.0)
    stage = DcOutputStage(ramp_a_per_s=100.0)
    v, i, pack_w = stage.step(True, 125.0, car, 0.1)
    assert i == pytest.approx(10.0)  # slewing
    assert v == pytest.approx(car.terminal_voltage(i))
    assert pack_w == pytest.approx(v * i / stage.efficiency(v * i))
    for _ in range(30):
        v, i, pack_w = stage.step(True, 500.0, car, 0.1)
    assert i <= 150.0 and v * i <= 50e3 + 1e-6
    assert v * i == pytest.approx(50e3)  # power-limited at ~340 V
    v, i, pack_w = stage.step(False, 500.0, car, 0.1)
    assert (v, i, pack_w) == (0.0, 0.0, 0.0)  # disabled: open within one step


def test_stage_follows_the_car_acceptance_and_stops_for_a_departed_car():
    car = SimCar(60.0, 0.3, 20.0)
    stage = DcOutputStage()
    for _ in range(50):
        v, i, _ = stage.step(True, 150.0, car, 0.1)
    assert i == pytest.approx(car.max_current_a(v), rel=0.02)
    car.unplug()
    assert stage.step(True, 150.0, car, 0.1)[1] == 0.0
    assert stage.step(True, 150.0, None, 0.1)[1] == 0.0


def test_stage_rejects_nan_request():
    with pytest.raises(ValueError):
        DcOutputStage().step(True, math.nan, SimCar(60.0, 0.3, 100.0), 0.1)
