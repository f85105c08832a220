"""IEC 61851-1 control pilot: voltage bands, duty encoding and the charger-side state machine (no ROS)."""
import math

import pytest

from mobicharge_robot.core.energy.pilot import (DIGITAL_DUTY, NO_OFFER_DUTY, ChargerPilotFSM, PilotState,
                                         classify_pilot_voltage, current_for_duty, duty_for_current,
                                         is_digital_duty)

S = PilotState


@pytest.mark.parametrize("volts, state", [
    (12.0, S.A), (11.0, S.A), (13.0, S.A), (9.0, S.B), (8.0, S.B), (10.0, S.B), (6.0, S.C), (5.0, S.C),
    (7.0, S.C), (3.0, S.D), (2.0, S.D), (4.0, S.D), (0.0, S.E), (-1.0, S.E), (1.0, S.E), (-12.0, S.F),
    (-13.0, S.F), (-11.0, S.F),
    (10.5, S.INVALID), (7.5, S.INVALID), (4.5, S.INVALID), (1.5, S.INVALID), (-5.0, S.INVALID),
    (13.5, S.INVALID), (-13.5, S.INVALID), (math.nan, S.INVALID), (math.inf, S.INVALID),
])
def test_every_voltage_band(volts, state):
    assert classify_pilot_voltage(volts) is state


@pytest.mark.parametrize("amps, duty", [(6.0, 0.10), (16.0, 16 / 60), (32.0, 32 / 60), (51.0, 0.85),
                                        (52.5, 0.85), (55.0, 0.86), (63.0, 0.892), (80.0, 0.96)])
def test_duty_for_current_follows_the_table(amps, duty):
    assert duty_for_current(amps) == pytest.approx(duty, abs=1e-9)


def test_round_trips():
    for amps in [6.0, 10.0, 13.0, 16.0, 20.0, 32.0, 40.0, 51.0, 55.0, 60.0, 63.0, 70.0, 80.0]:
        assert current_for_duty(duty_for_current(amps)) == pytest.approx(amps)
    for pct in [10, 15, 25, 50, 53.3, 85, 85.5, 90, 96]:
        duty = pct / 100.0
        assert duty_for_current(current_for_duty(duty)) == pytest.approx(duty)


def test_the_gap_between_bands_offers_the_lower_current():
    assert current_for_duty(duty_for_current(52.0)) == pytest.approx(51.0)
    assert current_for_duty(0.09) == 6.0
    assert current_for_duty(0.965) == 80.0


@pytest.mark.parametrize("amps", [5.9, 80.5, -1.0, math.nan, 0.0])
def test_duty_for_current_rejects_out_of_range(amps):
    with pytest.raises(ValueError):
        duty_for_current(amps)


@pytest.mark.parametrize("duty", [0.0, 0.02, 0.075, 0.98, 1.0, 50.0, -0.1, math.nan])
def test_current_for_duty_rejects_out_of_range(duty):
    with pytest.raises(ValueError):
        current_for_duty(duty)


def test_five_percent_means_digital_communication():
    assert is_digital_duty(DIGITAL_DUTY)
    assert not is_digital_duty(0.10) and not is_digital_duty(NO_OFFER_DUTY)
    with pytest.raises(ValueError, match="digital"):
        current_for_duty(0.05)


# ---------------------------------------------------------------- the FSM

def _energized_fsm():
    fsm = ChargerPilotFSM()
    d = fsm.update(0.0, S.B, True, True, True)
    assert not d.energize and d.duty == DIGITAL_DUTY and d.state == "offering"
    d = fsm.update(0.1, S.C, True, True, True)
    assert not d.energize and d.state == "ready"  # the settle time has not passed
    d = fsm.update(0.1 + fsm.settle_s, S.C, True, True, True)
    assert d.energize and d.state == "energized" and d.fault is None
    return fsm


def test_idle_offers_nothing():
    fsm = ChargerPilotFSM()
    for state in S:
        d = fsm.update(0.0, state, True, True, False)
        assert not d.energize and d.duty == NO_OFFER_DUTY and d.state == "idle" and d.fault is None


@pytest.mark.parametrize("state", [S.C, S.D])
def test_energizes_in_c_or_d_only_with_plug_locked_and_isolation_ok(state):
    for locked, iso in [(False, True), (True, False), (False, False)]:
        fsm = ChargerPilotFSM()
        d = fsm.update(0.0, state, locked, iso, True)
        assert not d.energize and d.state == "interlock" and d.duty == DIGITAL_DUTY and d.fault is None
    fsm = ChargerPilotFSM(settle_s=0.0)
    assert fsm.update(0.0, state, True, True, True).energize


def test_energizes_only_after_the_conditions_held_for_the_settle_time():
    fsm = ChargerPilotFSM(settle_s=0.2)
    assert fsm.update(0.0, S.C, True, True, True).state == "ready"
    assert not fsm.update(0.15, S.C, True, True, True).energize
    # a momentary interlock loss restarts the wait
    assert fsm.update(0.16, S.C, True, False, True).state == "interlock"
    assert not fsm.update(0.2, S.C, True, True, True).energize
    assert not fsm.update(0.39, S.C, True, True, True).energize
    assert fsm.update(0.40, S.C, True, True, True).energize
    # a clock that jumps back does not shorten the wait either
    fsm = ChargerPilotFSM(settle_s=0.2)
    fsm.update(10.0, S.C, True, True, True)
    assert not fsm.update(5.0, S.C, True, True, True).energize
    assert fsm.update(5.2, S.C, True, True, True).energize
    with pytest.raises(ValueError):
        ChargerPilotFSM(settle_s=-1.0)


@pytest.mark.parametrize("state", [S.A, S.B, S.INVALID])
def test_never_energizes_outside_c_or_d(state):
    fsm = ChargerPilotFSM()
    for k in range(5):
        d = fsm.update(0.1 * k, state, True, True, True)
        assert not d.energize and d.fault is None


@pytest.mark.parametrize("state", [S.E, S.F])
def test_error_states_while_offering_latch_a_fault(state):
    fsm = ChargerPilotFSM()
    fsm.update(0.0, S.B, True, True, True)
    d = fsm.update(0.1, state, True, True, True)
    assert not d.energize and d.fault and d.state == "fault"


@pytest.mark.parametrize("state", [S.A, S.E, S.F, S.INVALID])
def test_leaving_c_while_energized_deenergizes_at_once_and_latches(state):
    fsm = _energized_fsm()
    d = fsm.update(0.5, state, True, True, True)
    assert not d.energize and d.state == "fault" and state.value in d.fault
    assert d.duty == NO_OFFER_DUTY
    # latched: C again, every interlock good, still nothing until reset()
    for k in range(3):
        d = fsm.update(0.6 + k, S.C, True, True, True)
        assert not d.energize and d.fault
    fsm.reset()
    assert fsm.fault is None
    fsm.update(5.0, S.C, True, True, True)
    assert fsm.update(5.0 + fsm.settle_s, S.C, True, True, True).energize


def test_c_to_b_pauses_without_fault_and_may_resume():
    fsm = _energized_fsm()
    d = fsm.update(0.5, S.B, True, True, True)
    assert not d.energize and d.fault is None and d.state == "paused" and d.duty == DIGITAL_DUTY
    assert not fsm.update(0.6, S.C, True, True, True).energize  # settles again before resuming
    d = fsm.update(0.6 + fsm.settle_s, S.C, True, True, True)
    assert d.energize and d.state == "energized"


def test_unplug_while_paused_is_a_fault():
    fsm = _energized_fsm()
    fsm.update(0.5, S.B, True, True, True)
    d = fsm.update(0.6, S.A, True, True, True)
    assert not d.energize and d.fault


def test_d_energizes_too_and_c_to_d_stays_energized():
    fsm = _energized_fsm()
    assert fsm.update(0.5, S.D, True, True, True).energize


@pytest.mark.parametrize("locked, iso, words", [(False, True, "plug"), (True, False, "isolation")])
def test_losing_an_interlock_while_energized_latches(locked, iso, words):
    fsm = _energized_fsm()
    d = fsm.update(0.5, S.C, locked, iso, True)
    assert not d.energize and words in d.fault
    assert not fsm.update(5.0, S.C, True, True, True).energize


def test_no_longer_wanting_energy_deenergizes_without_fault():
    fsm = _energized_fsm()
    d = fsm.update(0.5, S.C, True, True, False)
    assert not d.energize and d.fault is None and d.state == "idle" and d.duty == NO_OFFER_DUTY
    assert fsm.since == 0.5


def test_rejects_a_non_state():
    with pytest.raises(TypeError):
        ChargerPilotFSM().update(0.0, "C", True, True, True)
