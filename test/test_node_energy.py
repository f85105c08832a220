"""Energy node over DDS: never energizes without a seated plug; leaving state C de-energizes at once; bad requests
are rejected with a reason and the node keeps running."""
import json
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Bool, Float64, String

from mobicharge_robot.nodes.ros_common import LATCHED_QOS, METER_QOS, RELIABLE_QOS, SENSOR_QOS, status_values
from ros_harness import spin_for, spin_until, start_node, stop_node


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    rclpy.init()
    proc = start_node("mobicharge_robot.nodes.energy_node", "energy",
                      log_path=str(tmp_path_factory.mktemp("energy") / "energy.log"))
    node = Node("energy_probe")
    node.enables = []
    node.statuses = []
    node.create_subscription(Bool, "dc_output/enable", lambda m: node.enables.append((time.monotonic(), m.data)),
                             RELIABLE_QOS)
    node.create_subscription(DiagnosticStatus, "charge/status", lambda m: node.statuses.append(m), LATCHED_QOS)
    node.pub = {
        "pilot": node.create_publisher(Float64, "pilot/voltage", RELIABLE_QOS),
        "seated": node.create_publisher(Bool, "connector/seated", LATCHED_QOS),
        "iso": node.create_publisher(Bool, "dc_output/isolation_ok", RELIABLE_QOS),
        "req": node.create_publisher(String, "charge/session_request", RELIABLE_QOS),
        "bms": node.create_publisher(BatteryState, "bms/state", SENSOR_QOS),
        "out": node.create_publisher(BatteryState, "dc_output/measurement", METER_QOS),
        "latched": node.create_publisher(Bool, "connector/latched", RELIABLE_QOS),
    }
    assert spin_until(node, lambda: node.statuses, 20.0), "energy node did not come up"
    yield node
    node.destroy_node()
    stop_node(proc)
    rclpy.shutdown()
    assert proc.returncode in (0, -2), f"energy node exited with {proc.returncode}"


def _inputs(node, pilot_v, seated, iso=True):
    node.pub["pilot"].publish(Float64(data=pilot_v))
    node.pub["seated"].publish(Bool(data=seated))
    node.pub["latched"].publish(Bool(data=seated))
    node.pub["iso"].publish(Bool(data=iso))
    out = BatteryState(voltage=380.0, current=0.0)
    node.pub["out"].publish(out)
    node.pub["bms"].publish(BatteryState(voltage=479.5, current=-0.5, temperature=25.0))


def _latest_enable(node):
    return node.enables[-1][1] if node.enables else None


def test_bad_request_is_rejected_with_reason(probe):
    probe.pub["req"].publish(String(data='{"session_id": "x", "vehicle_id": "car", "target_kwh": -1}'))
    assert spin_until(probe, lambda: any(s.message == "rejected" for s in probe.statuses), 5.0)
    rejected = [s for s in probe.statuses if s.message == "rejected"][-1]
    assert "target_kwh" in status_values(rejected)["reason"]


def test_never_energizes_without_seated_plug_and_stops_when_pilot_leaves_c(probe):
    probe.pub["req"].publish(String(data=json.dumps({"session_id": "s1", "vehicle_id": "car",
                                                     "target_kwh": 5.0})))
    # The car says "charging" (C) but the plug is not seated: the output must stay off.
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        _inputs(probe, 6.0, seated=False)
        spin_for(probe, 0.05)
    assert probe.enables and not any(e for _, e in probe.enables)
    # Seated, isolation good, pilot C: energize.
    assert spin_until(probe, lambda: (_inputs(probe, 6.0, seated=True), _latest_enable(probe))[1] is True, 5.0)
    # The car goes back to B: the output switches off at once.
    t0 = time.monotonic()
    probe.pub["pilot"].publish(Float64(data=9.0))
    assert spin_until(probe, lambda: _latest_enable(probe) is False, 2.0)
    off = next(t for t, e in probe.enables if t >= t0 and e is False)
    assert off - t0 < 0.1, f"switch-off took {1e3 * (off - t0):.0f} ms"


def test_isolation_fault_refuses_to_energize(probe):
    probe.pub["req"].publish(String(data=json.dumps({"session_id": "s2", "vehicle_id": "car",
                                                     "target_kwh": 5.0})))
    n0 = len(probe.enables)
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        _inputs(probe, 6.0, seated=True, iso=False)
        spin_for(probe, 0.05)
    assert len(probe.enables) > n0 and not any(e for _, e in probe.enables[n0:])
