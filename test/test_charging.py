"""The charging session in a closed loop with the pilot FSM, the simulated DC stage and the simulated car."""
import math

import pytest

from mobicharge_robot.core.energy.charging import ChargingSession
from mobicharge_robot.core.energy.pilot import ChargerPilotFSM, PilotDecision, PilotState, classify_pilot_voltage
from mobicharge_robot.sim.car import SimCar
from mobicharge_robot.sim.dc_stage import DcOutputStage


class Loop:
    """Car -> pilot -> FSM -> session -> DC stage -> car, every ``dt`` seconds."""

    def __init__(self, session, car=None, dt=0.1):
        self.session = session
        self.car = car or SimCar(60.0, 0.3, 100.0)
        self.stage = DcOutputStage()
        self.fsm = ChargerPilotFSM()
        self.dt = dt
        self.t = 0.0
        self.duty = 1.0
        self.v = self.i = 0.0
        self.out = None
        self.decision = None
        self.max_power_w = 0.0
        self.max_current_a = 0.0

    def step(self):
        pilot = classify_pilot_voltage(self.car.pilot_voltage(True, self.duty))
        self.decision = self.fsm.update(self.t, pilot, True, True, not self.session.done)
        self.out = self.session.update(self.t, self.dt, self.decision, self.v, self.i)
        self.duty = self.decision.duty
        enable = self.out.enable and self.decision.energize
        self.v, self.i, _ = self.stage.step(enable, self.out.current_request_a, self.car, self.dt)
        self.car.step(self.i, self.dt)
        self.max_power_w = max(self.max_power_w, self.v * self.i)
        self.max_current_a = max(self.max_current_a, self.i)
        self.t += self.dt

    def run(self, until, max_s=3600.0):
        while not until(self) and self.t < max_s:
            self.step()
        return self

    def finish(self, max_s=3600.0):
        """Run until the session is done and the output current has gone."""
        return self.run(lambda lp: lp.session.done and lp.i == 0.0, max_s)


@pytest.mark.parametrize("target_kwh", [10.0, 0.5, 0.05])
def test_delivers_the_target_within_0_2_percent(target_kwh):
    loop = Loop(ChargingSession(target_kwh, 125.0, 50e3)).finish()
    s = loop.session
    assert s.state == "complete" and s.stop_reason == ""
    assert loop.car.energy_in_wh / 1e3 == pytest.approx(target_kwh, rel=0.002)
    assert s.delivered_kwh == pytest.approx(loop.car.energy_in_wh / 1e3, rel=0.001)  # the meter agrees
    assert not loop.out.enable and loop.out.done and loop.out.current_request_a == 0.0
    assert loop.max_current_a <= 125.0 + 1e-9 and loop.max_power_w <= 50e3 + 1e-6


def test_runs_at_full_power_then_tapers():
    session = ChargingSession(5.0, 150.0, 50e3, ramp_a_per_s=50.0)
    loop = Loop(session)
    seen = []
    prev = 0.0
    while not session.done and loop.t < 3600:
        loop.step()
        seen.append(loop.out.state)
        if loop.out.enable:
            assert loop.out.current_request_a <= prev + 50.0 * loop.dt + 1e-9  # ramp respected
            prev = loop.out.current_request_a
    assert seen[0] == "waiting" and "energized" in seen and "tapering" in seen and seen[-1] == "complete"
    assert seen.index("tapering") > seen.index("energized")
    assert loop.max_power_w == pytest.approx(50e3, rel=0.01)


def test_cap_lowered_mid_session_trims_it():
    session = ChargingSession(10.0, 125.0, 50e3)
    loop = Loop(session).run(lambda lp: lp.session.delivered_kwh > 2.0)
    session.cap_kwh = 3.0
    loop.finish()
    assert session.state == "complete" and "capped" in session.stop_reason
    assert loop.car.energy_in_wh / 1e3 == pytest.approx(3.0, rel=0.002)


def test_cap_below_delivered_stops_in_the_same_update():
    session = ChargingSession(10.0, 125.0, 50e3)
    loop = Loop(session).run(lambda lp: lp.session.delivered_kwh > 1.0)
    session.cap_kwh = 0.5
    loop.step()
    assert loop.out.done and not loop.out.enable and loop.i == 0.0
    assert session.goal_kwh == 0.5
    with pytest.raises(ValueError):
        session.cap_kwh = -1.0
    with pytest.raises(ValueError):
        session.cap_kwh = math.nan


def test_unplug_mid_session_stops_with_the_pilot_fault_and_cuts_current():
    session = ChargingSession(10.0, 125.0, 50e3)
    loop = Loop(session).run(lambda lp: lp.i > 100.0)
    loop.car.unplug()
    loop.step()
    assert not loop.decision.energize and loop.decision.fault
    assert session.state == "stopped" and "pilot" in session.stop_reason
    assert loop.i == 0.0 and not loop.out.enable  # open in the very step that saw state A
    loop.step()  # the meter sees the last interval's current one step later
    delivered = session.delivered_kwh
    for _ in range(20):
        loop.step()
    assert session.delivered_kwh == delivered and session.state == "stopped"
    assert delivered == pytest.approx(loop.car.energy_in_wh / 1e3, rel=0.01)


def test_pilot_error_stops_the_session():
    session = ChargingSession(10.0, 125.0, 50e3)
    loop = Loop(session).run(lambda lp: lp.i > 50.0)
    loop.car.set_pilot_error()
    loop.step()
    assert session.state == "stopped" and "E" in session.stop_reason and loop.i == 0.0


def test_a_car_that_reaches_its_own_target_ends_the_session():
    car = SimCar(60.0, 0.78, 100.0, target_soc=0.8)
    session = ChargingSession(10.0, 125.0, 50e3, pause_timeout_s=10.0)
    Loop(session, car).finish()
    assert session.state == "stopped" and "pilot B" in session.stop_reason
    assert 0.0 < session.delivered_kwh < 10.0
    assert car.soc == pytest.approx(0.8, abs=0.002)


def test_a_short_pause_resumes():
    session = ChargingSession(1.0, 125.0, 50e3, pause_timeout_s=10.0)
    fsm = ChargerPilotFSM()
    t = 0.0
    for state in [PilotState.C] * 20 + [PilotState.B] * 50 + [PilotState.C] * 20:
        d = fsm.update(t, state, True, True, True)
        out = session.update(t, 0.1, d, 400.0, 100.0 if d.energize else 0.0)
        t += 0.1
    assert out.enable and out.state in ("energized", "tapering") and not out.done


def test_never_enables_without_the_fsm_energizing():
    session = ChargingSession(1.0, 125.0, 50e3)
    waiting = PilotDecision(False, 0.05, "interlock")
    for k in range(50):
        out = session.update(0.1 * k, 0.1, waiting, 0.0, 0.0)
        assert not out.enable and out.current_request_a == 0.0 and out.state == "waiting"


def test_explicit_stop_and_invalid_measurements():
    on = PilotDecision(True, 0.05, "energized")
    session = ChargingSession(1.0, 125.0, 50e3)
    session.update(0.0, 0.1, on, 400.0, 5.0)
    out = session.update(0.1, 0.1, on, math.nan, 5.0)
    assert out.done and not out.enable and "invalid" in session.stop_reason
    session = ChargingSession(1.0, 125.0, 50e3)
    session.update(0.0, 0.1, on, 400.0, 5.0)
    out = session.update(0.1, 0.1, on, 400.0, 300.0)
    assert out.done and "over-current" in session.stop_reason
    session = ChargingSession(1.0, 125.0, 50e3)
    session.stop("stopped on request")
    out = session.update(0.0, 0.1, on, 400.0, 0.0)
    assert out.state == "stopped" and not out.enable and session.stop_reason == "stopped on request"


def test_meter_is_a_trapezoid():
    on = PilotDecision(True, 0.05, "energized")
    session = ChargingSession(100.0, 125.0, 50e3)
    session.update(0.0, 0.0, on, 400.0, 0.0)
    session.update(1.0, 1.0, on, 400.0, 90.0)  # 0 -> 36 kW over one second
    assert session.delivered_wh == pytest.approx(0.5 * 36_000.0 / 3600.0)


@pytest.mark.parametrize("kwargs", [dict(target_kwh=0.0), dict(max_current_a=-1.0), dict(max_power_w=math.nan),
                                    dict(ramp_a_per_s=0.0)])
def test_validation(kwargs):
    args = dict(target_kwh=1.0, max_current_a=125.0, max_power_w=50e3)
    args.update(kwargs)
    with pytest.raises(ValueError):
        ChargingSession(**args)


@pytest.mark.parametrize("pilot, locked, expect", [
    (PilotState.B, True, "never requested energy"),
    (PilotState.C, False, "not seated and latched"),
])
def test_a_session_that_never_energizes_stops_with_the_reason(pilot, locked, expect):
    session = ChargingSession(1.0, 125.0, 50e3, start_timeout_s=30.0)
    fsm = ChargerPilotFSM()
    t = 0.0
    while t < 29.9:
        out = session.update(t, 0.5, fsm.update(t, pilot, locked, True, True), 400.0, 0.0)
        assert not out.done and not out.enable
        t += 0.5
    for _ in range(3):
        out = session.update(t, 0.5, fsm.update(t, pilot, locked, True, True), 400.0, 0.0)
        t += 0.5
    assert out.done and session.state == "stopped" and expect in session.stop_reason
    assert "no energy within 30 s" in session.stop_reason


def test_the_start_timeout_does_not_end_a_session_that_energized_and_pauses_briefly():
    session = ChargingSession(5.0, 125.0, 50e3, start_timeout_s=5.0, pause_timeout_s=10.0)
    fsm = ChargerPilotFSM()
    t = 0.0
    for state in [PilotState.C] * 20 + [PilotState.B] * 80:
        d = fsm.update(t, state, True, True, True)
        session.update(t, 0.1, d, 400.0, 100.0 if d.energize else 0.0)
        t += 0.1
    assert not session.done and session.delivered_kwh > 0.0
