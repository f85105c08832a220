"""Faults injected in the loopback simulator, handled by the energy node, over real DDS.

The simulator runs at real time (every rtf 1.0) so that sim-time limits can be checked on the probe's steady clock.
The connector is latched in car_01's inlet by the simulator's test hook (``sim/fault`` "seat") and the probe plays
the arm's ``connector/seated``; everything else is the real loopback simulator and the real energy node.
"""
import contextlib
import json
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Twist
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from mobicharge_robot.nodes.ros_common import LATCHED_QOS, RELIABLE_QOS, status_values
from ros_harness import spin_for, spin_until, start_node, stop_node

CAR = "car_01"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    rclpy.init()
    logs = tmp_path_factory.mktemp("energy_faults")
    rt = {f"rtf_{k}": 1.0 for k in ("drive", "arm", "charge", "event")}
    rt["variation"] = "none"  # the world is the garage file: these runs are about the charger, not the world
    sim = start_node("mobicharge_robot.sim.loopback_node", "loopback_sim", rt, log_path=str(logs / "sim.log"))
    energy = start_node("mobicharge_robot.nodes.energy_node", "energy", {"use_sim_time": True},
                        log_path=str(logs / "energy.log"))
    node = Node("fault_probe")
    node.enables, node.statuses, node.pilots, node.truth, node.budget, node.battery = [], [], [], [None], [None], []
    node.create_subscription(Bool, "dc_output/enable", lambda m: node.enables.append((time.monotonic(), m.data)),
                             RELIABLE_QOS)
    node.create_subscription(Float64, "pilot/voltage", lambda m: node.pilots.append((time.monotonic(), m.data)),
                             RELIABLE_QOS)
    node.lows = []
    node.create_subscription(Float64, "pilot/voltage_low", lambda m: node.lows.append((time.monotonic(), m.data)),
                             RELIABLE_QOS)
    node.create_subscription(DiagnosticStatus, "charge/status", lambda m: node.statuses.append(m), LATCHED_QOS)
    node.create_subscription(DiagnosticStatus, "sim/truth/status",
                             lambda m: node.truth.__setitem__(0, status_values(m)), LATCHED_QOS)
    node.create_subscription(DiagnosticStatus, "energy/budget",
                             lambda m: node.budget.__setitem__(0, m), LATCHED_QOS)
    node.create_subscription(BatteryState, "battery_state", lambda m: node.battery.append(m), RELIABLE_QOS)
    node.fault_pub = node.create_publisher(String, "sim/fault", RELIABLE_QOS)
    node.seated_pub = node.create_publisher(Bool, "connector/seated", LATCHED_QOS)
    node.req_pub = node.create_publisher(String, "charge/session_request", RELIABLE_QOS)
    node.cmd_pub = node.create_publisher(Twist, "cmd_vel", RELIABLE_QOS)
    node.stop_client = node.create_client(Trigger, "charge/stop")
    assert spin_until(node, lambda: node.statuses and node.truth[0] and node.budget[0], 30.0), \
        "simulator or energy node did not come up"
    _fault(node, "seat", car=CAR)
    node.seated_pub.publish(Bool(data=True))
    spin_for(node, 1.0)
    yield node
    node.destroy_node()
    stop_node(energy)
    stop_node(sim)
    rclpy.shutdown()
    assert energy.returncode in (0, -2), f"energy node exited with {energy.returncode}"
    assert sim.returncode in (0, -2), f"simulator exited with {sim.returncode}"


def _fault(node, name, active=True, **kw):
    node.fault_pub.publish(String(data=json.dumps({"fault": name, "active": active, **kw})))


@contextlib.contextmanager
def _injected(node, name, **kw):
    """A fault that is active inside the block and cleared after it, whatever happens."""
    _fault(node, name, **kw)
    try:
        yield
    finally:
        _fault(node, name, active=False)


def _status(node, sid):
    mine = [s for s in node.statuses if s.hardware_id == sid]
    return mine[-1] if mine else None


def _start(node, sid, kwh=20.0):
    """Request a session and wait until current flows steadily."""
    n = len(node.pilots)  # a fresh pilot sample first (a previous test may have silenced it)
    assert spin_until(node, lambda: len(node.pilots) > n, 10.0), "no pilot samples"
    node.req_pub.publish(String(data=json.dumps({"session_id": sid, "vehicle_id": CAR, "target_kwh": kwh})))

    def flowing():
        s = _status(node, sid)
        return s is not None and s.message == "energized" and float(status_values(s).get("current_a", 0)) > 20.0

    assert spin_until(node, flowing, 20.0), f"session {sid} never delivered: {_status(node, sid)}"


def _off_after(node, t0):
    """Seconds from ``t0`` (when this node saw the event) to the output's switch-off: the first ``False`` after the
    last ``True`` received before ``t0``; 0 when that ``False`` overtook the event's own sample (the energy node sends
    a command at once on a change and repeats it only every 0.5 s, so only the change itself tells the time)."""
    on = [i for i, (t, e) in enumerate(node.enables) if e and t < t0]
    if not on or node.enables[on[-1]][0] < t0 - 0.6:
        return None  # the output was not on at the event (an energized output is repeated every 0.5 s)
    start = on[-1] + 1
    offs = [t for t, e in node.enables[start:] if e is False]
    return max(0.0, offs[0] - t0) if offs else None


def _stopped_reason(node, sid, timeout=5.0):
    assert spin_until(node, lambda: _status(node, sid) is not None and _status(node, sid).message == "stopped",
                      timeout), f"session {sid} did not stop: {_status(node, sid)}"
    return status_values(_status(node, sid))["reason"]


def _no_restart(node, t_from, seconds=1.0):
    spin_for(node, seconds)
    assert not any(e for t, e in node.enables if t > t_from + 0.2), "the output came back on by itself"


@pytest.mark.parametrize("fault, pilot_v, words", [  # (the car leaving: see the test further down)
    ("pilot_e", 0.0, "E"),
    ("pilot_f", -12.0, "F"),
    ("pilot_cut", 12.0, "A"),
    ("diode", None, "diode"),
])
def test_pilot_faults_switch_off_within_100_ms_and_stay_off(rig, fault, pilot_v, words):
    sid = f"pilot-{fault}"
    _start(rig, sid)
    # The time the charger sees the fault: the pilot's high level changes, or (a diode fault) its negative level.
    series, bad = (rig.pilots, lambda v: v == pilot_v) if pilot_v is not None else (rig.lows, lambda v: v > -11.0)
    n = len(series)
    with _injected(rig, fault):
        assert spin_until(rig, lambda: any(bad(v) for _, v in series[n:]), 3.0)
        t0 = next(t for t, v in series[n:] if bad(v))
        assert spin_until(rig, lambda: _off_after(rig, t0) is not None, 3.0)
        latency = _off_after(rig, t0)
        print(f"{fault}: output off {1e3 * latency:.0f} ms after the pilot change")
        # The 100 ms figure is measured by bench/pilot_latency.py (steady clock, at real time, on a shared machine);
        # here: the switch-off is event-driven (a timer- or watchdog-driven one would take 0.5 s or more).
        assert latency <= 0.3, f"{fault}: switch-off took {1e3 * latency:.0f} ms"
        assert words in _stopped_reason(rig, sid)
    _no_restart(rig, t0 + latency)


def test_pilot_stream_loss_trips_the_watchdog(rig):
    sid = "pilot-loss"
    _start(rig, sid)
    t0 = time.monotonic()
    with _injected(rig, "pilot_loss"):
        assert "pilot signal lost" in _stopped_reason(rig, sid, timeout=8.0)
        assert spin_until(rig, lambda: _off_after(rig, t0) is not None, 3.0)
        latency = _off_after(rig, t0)
        print(f"pilot stream loss: output off {latency:.2f} s after the fault (timeout 2.0 s sim + 1.5 s wall, "
              "pilot published every 0.5 s)")
        assert latency is not None and latency < 5.0  # 2 s of sim time after the last sample; the sim may lag
    _no_restart(rig, t0 + latency)


@pytest.mark.parametrize("fault, words", [
    ("over_current", "over-current"),
    ("over_voltage", "over-voltage"),
    ("output_stale", "output measurement stale"),
    ("isolation", "isolation"),
    ("bms_stale", "BMS stale"),
])
def test_output_and_sensor_faults_stop_the_session(rig, fault, words):
    sid = f"fault-{fault}"
    _start(rig, sid)
    t0 = time.monotonic()
    with _injected(rig, fault, **({"value": 1.4} if fault == "over_voltage" else {})):
        reason = _stopped_reason(rig, sid, timeout=10.0)
        assert words in reason, reason
        print(f"{fault}: stopped after {time.monotonic() - t0:.2f} s: {reason}")
        t_off = t0 + (_off_after(rig, t0) or 0.0)
        _no_restart(rig, t_off)
        unreliable = rig.budget[0].message == "unreliable"
    if fault == "bms_stale":
        assert unreliable  # a missing pack sensor: the estimate is flagged, the mission takes no new jobs
        assert spin_until(rig, lambda: rig.budget[0].message == "reliable", 30.0)


def test_isolation_fault_refuses_to_start(rig):
    sid = "iso-start"
    with _injected(rig, "isolation"):
        spin_for(rig, 1.5)
        n = len(rig.enables)
        rig.req_pub.publish(String(data=json.dumps({"session_id": sid, "vehicle_id": CAR, "target_kwh": 5.0})))
        spin_for(rig, 2.0)
        assert not any(e for _, e in rig.enables[n:])
        assert _status(rig, sid) is not None and _status(rig, sid).message == "waiting"
    # isolation good again: the session, never energized, may start
    assert spin_until(rig, lambda: _status(rig, sid).message == "energized", 10.0)
    future = rig.stop_client.call_async(Trigger.Request())
    assert spin_until(rig, lambda: future.done(), 5.0) and future.result().success
    assert _stopped_reason(rig, sid) == "stopped on request"


def test_over_temperature_derates_then_stops(rig):
    sid = "over-temp"
    _start(rig, sid)
    spin_for(rig, 2.0)
    full = float(status_values(_status(rig, sid))["current_a"])
    currents = []

    def watch():
        s = _status(rig, sid)
        if s.message in ("energized", "tapering"):
            currents.append(float(status_values(s)["current_a"]))
        return s.message == "stopped"

    try:
        with _injected(rig, "over_temperature", value=2.0):  # 2 K/s: derate from 45 degC (~10 s), stop at 55
            assert spin_until(rig, watch, 40.0)
    finally:
        _fault(rig, "pack_temperature", value=25.0)
        spin_for(rig, 2.5)  # the next BMS sample
    reason = status_values(_status(rig, sid))["reason"]
    assert "over-temperature" in reason, reason
    assert min(currents) < 0.7 * full, f"no derating before the stop (full {full:.0f} A, min {min(currents):.0f} A)"
    print(f"over-temperature: {full:.0f} A derated to {min(currents):.0f} A, then stopped: {reason}")


def test_car_leaving_mid_session_keeps_partial_energy_metered_within_half_a_percent(rig):
    truth0 = float(rig.truth[0][f"car/{CAR}/energy_in_wh"])
    sid = "leave"
    _start(rig, sid)
    spin_for(rig, 3.0)
    n = len(rig.pilots)
    _fault(rig, "car_leaves")
    assert spin_until(rig, lambda: any(v == 12.0 for _, v in rig.pilots[n:]), 3.0)
    t0 = next(t for t, v in rig.pilots[n:] if v == 12.0)
    assert spin_until(rig, lambda: _off_after(rig, t0) is not None, 2.0)
    assert _off_after(rig, t0) <= 0.3
    assert "A" in _stopped_reason(rig, sid)
    spin_for(rig, 1.5)  # the next truth message
    metered = 1e3 * float(status_values(_status(rig, sid))["delivered_kwh"])
    true_wh = float(rig.truth[0][f"car/{CAR}/energy_in_wh"]) - truth0
    err = abs(metered - true_wh) / true_wh
    print(f"car left: partial {metered:.1f} Wh metered, {true_wh:.1f} Wh true, error {100 * err:.3f}%")
    assert true_wh > 10.0 and err <= 0.005
    # The simulator's own measure, in sim time, over every pilot event with current flowing in this module so far.
    worst = float(rig.truth[0]["pilot_switch_off_max_s"])
    print(f"simulator truth: {rig.truth[0]['pilot_events']} pilot events, slowest switch-off {1e3 * worst:.0f} ms "
          "sim time")
    assert worst <= 0.1
    assert abs(float(rig.truth[0]["energy_created_wh"])) < 0.01
    assert CAR in rig.truth[0]["departed"]


def test_pack_at_cutoff_delivers_nothing_and_the_base_cannot_drive(rig):
    # car_01 has left (previous test): seat the connector in car_02's inlet.
    global CAR
    CAR = "car_02"
    _fault(rig, "seat", car=CAR)
    spin_for(rig, 1.0)
    sid = "cutoff"
    _start(rig, sid)
    _fault(rig, "pack_cutoff")
    assert spin_until(rig, lambda: rig.truth[0]["pack_cutoff"] != "", 5.0)
    assert spin_until(rig, lambda: _status(rig, sid).message in ("stopped", "complete"), 20.0), _status(rig, sid)
    print(f"pack cut-off: sim says {rig.truth[0]['pack_cutoff']!r}; session {_status(rig, sid).message}: "
          f"{status_values(_status(rig, sid))['reason']}")
    d0 = float(rig.truth[0]["distance_m"])
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        rig.cmd_pub.publish(Twist())
        msg = Twist()
        msg.linear.x = 0.5
        rig.cmd_pub.publish(msg)
        spin_for(rig, 0.1)
    spin_for(rig, 1.0)
    assert float(rig.truth[0]["distance_m"]) - d0 < 0.05, "the base drove on an empty pack"
    assert abs(float(rig.truth[0]["energy_created_wh"])) < 0.01
    assert rig.budget[0].message == "unreliable" or float(status_values(rig.budget[0])["usable_kwh"]) < 1.0
