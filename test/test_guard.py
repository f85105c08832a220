"""The energy node's fail-closed checks (core/energy/guard.py), without ROS."""
import math

import pytest

from mobicharge_robot.core.energy.guard import ClockWatch, Freshness, GuardLimits, OutputGuard
from mobicharge_robot.core.energy.pilot import PilotState


def _guard():
    g = OutputGuard(GuardLimits())
    for name in ("pilot", "bms", "latched", "output"):
        g.fresh.seen(name, 0.0, 0.0)
    return g


def _trip(g, t=0.1, wall=0.1, **kw):
    args = dict(energized=True, pilot=PilotState.C, pilot_low_v=-12.0, out_v=380.0, out_i=100.0, temp_c=30.0,
                seated=True, latched=True, estimate_reliable=True)
    args.update(kw)
    return g.trip(t, wall, **args)


def test_all_well_is_no_trip_and_inputs_present():
    g = _guard()
    g.note_request(0.0, 100.0, 0.0)
    assert g.inputs_present()
    assert _trip(g) == ""


@pytest.mark.parametrize("kw, words", [
    (dict(pilot_low_v=-6.0), "diode"),
    (dict(out_v=500.0), "over-voltage"),
    (dict(out_i=math.nan), "not finite"),
    (dict(out_i=-20.0), "reverse current"),
    (dict(temp_c=56.0), "over-temperature"),
    (dict(latched=False), "not latched"),
    (dict(estimate_reliable=False, estimate_reason="stuck"), "unreliable: stuck"),
])
def test_each_implausible_input_trips_with_its_reason(kw, words):
    g = _guard()
    g.note_request(0.0, 100.0, 0.0)
    assert words in _trip(g, **kw)


def test_staleness_needs_both_clocks():
    f = Freshness()
    f.seen("pilot", 10.0, 100.0)
    assert not f.stale("pilot", 12.0, 100.1, 1.0, 0.5)  # 2 sim s but 0.1 wall s: a fast simulation, not stale
    assert not f.stale("pilot", 10.5, 105.0, 1.0, 0.5)  # 5 wall s but 0.5 sim s: a slow simulation, not stale
    assert f.stale("pilot", 12.0, 101.0, 1.0, 0.5)  # both: stale
    assert f.stale("pilot", 9.0, 100.1, 1.0, 0.5)  # the sim clock went back: fail safe
    assert f.stale("never", 0.0, 0.0, 1.0, 0.5) and not f.stale("never", 0.0, 0.0, 1.0, 0.5, never=False)


def test_a_stale_stream_trips_once_seen():
    g = _guard()
    assert "pilot signal lost" in _trip(g, t=2.5, wall=2.0)
    g = OutputGuard()
    assert _trip(g, t=2.0, wall=2.0, energized=False) == ""  # nothing seen yet: blocks energizing, no fault
    assert not g.inputs_present()


def test_over_current_needs_two_samples_over_the_largest_request_in_flight():
    g = _guard()
    g.note_request(0.0, 100.0, 0.0)
    g.note_request(0.5, 40.0, 0.001)  # tapering: the 100 A request may still be in flight
    g.note_output(110.0, 0.002)
    g.note_output(110.0, 0.003)
    assert _trip(g, t=0.5, wall=0.003, out_i=110.0) == ""
    for name in ("pilot", "bms", "latched", "output"):
        g.fresh.seen(name, 3.0, 2.0)
    g.note_request(3.0, 40.0, 2.0)  # seconds of sim and of wall time later, only 40 A is asked
    g.note_output(60.0, 2.0)
    assert _trip(g, t=3.0, wall=2.0, out_i=60.0) == ""  # one sample may be a slew
    g.note_output(60.0, 2.01)
    assert "over-current" in _trip(g, t=3.0, wall=2.01, out_i=60.0)


def test_dead_output_trips_after_five_seconds():
    g = _guard()
    for k in range(16):
        for name in ("pilot", "bms", "latched", "output"):
            g.fresh.seen(name, k * 0.5, k * 0.5)
        g.note_request(k * 0.5, 100.0, k * 0.5)
        g.note_output(0.0, k * 0.5)
    assert "no output current" in _trip(g, t=7.5, wall=7.5, out_i=0.0)


def test_temperature_derating():
    g = OutputGuard()
    assert g.temperature_factor(40.0) == 1.0
    assert g.temperature_factor(50.0) == pytest.approx(0.6)
    assert g.temperature_factor(55.0) == 0.0


def test_clock_watch_detects_a_stalled_sim_clock():
    w = ClockWatch(1.0)
    assert not w.stalled(5.0, 0.0)
    assert not w.stalled(5.0, 0.9)
    assert w.stalled(5.0, 1.1)
    assert not w.stalled(5.1, 1.2)


def test_limits_are_validated():
    with pytest.raises(ValueError):
        GuardLimits(derate_temp_c=60.0, stop_temp_c=55.0)
    with pytest.raises(ValueError):
        GuardLimits(input_timeout_s=0.0)
