"""The Humble-facing node code: the navigation node's nav2 backend (a clear start-up error where nav2_msgs is
missing; the NavigateToPose client's outcome mapping, with a fake action client since no action server runs here) and
the garage_markers node over real DDS."""
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from mobicharge_robot.core.garage.garage import load_garage
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.nodes import nav2_client
from mobicharge_robot.nodes.ros_common import ACTIVE, FAILED, LATCHED_QOS, RELIABLE_QOS, SUCCEEDED, ConfigurationError
from ros_harness import ROOT, spin_until, start_node, stop_node

try:
    import nav2_msgs  # noqa: F401
    HAVE_NAV2 = True
except ImportError:
    HAVE_NAV2 = False


def _run_navigation(backend):
    return subprocess.run([sys.executable, "-m", "mobicharge_robot.nodes.navigation_node", "--ros-args", "-p",
                           f"navigation_backend:={backend}"], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.skipif(HAVE_NAV2, reason="nav2_msgs is installed here; the missing-package path cannot be exercised")
def test_nav2_backend_without_nav2_msgs_is_a_clear_startup_error():
    proc = _run_navigation("nav2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: navigation_backend 'nav2' needs the nav2_msgs package" in proc.stderr


def test_unknown_backend_is_a_clear_startup_error():
    proc = _run_navigation("teleport")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "navigation_backend must be 'builtin' or 'nav2'" in proc.stderr


def test_load_action_type_raises_configuration_error_not_import_error():
    if HAVE_NAV2:
        assert nav2_client.load_action_type().__name__ == "NavigateToPose"
    else:
        with pytest.raises(ConfigurationError, match="nav2_msgs"):
            nav2_client.load_action_type()


# ----------------------------------------------------------------------------- NavigateToPose outcome mapping


class _Future:
    def __init__(self, value=None, error=None):
        self._value, self._error, self._callbacks = value, error, []

    def result(self):
        if self._error:
            raise self._error
        return self._value

    def add_done_callback(self, cb):
        self._callbacks.append(cb)

    def complete(self, value=None, error=None):
        self._value, self._error = value, error
        for cb in self._callbacks:
            cb(self)


class _Handle:
    def __init__(self, accepted=True):
        self.accepted = accepted
        self.result_future = _Future()
        self.cancelled = 0

    def get_result_async(self):
        return self.result_future

    def cancel_goal_async(self):
        self.cancelled += 1


class _FakeActionClient:
    """Stands in for rclpy's ActionClient: records goals, lets the test play the server's part."""

    ready = True

    def __init__(self, node, action_type, name):
        self.name = name
        self.sent = []

    def server_is_ready(self):
        return self.ready

    def send_goal_async(self, goal, feedback_callback=None):
        fut = _Future()
        self.sent.append((goal, fut, feedback_callback))
        return fut


class _FakeAction:
    class Goal:
        pose = None


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(nav2_client, "ActionClient", _FakeActionClient)
    reports = []
    c = nav2_client.Nav2Client(node=None, report=lambda *a, **kw: reports.append((a, kw)), action_type=_FakeAction)
    return c, reports


def _status(code):
    return SimpleNamespace(status=code)


def test_goal_success_and_feedback_reach_the_status(client):
    from action_msgs.msg import GoalStatus

    c, reports = client
    c.send("1.0", pose="P")
    goal, fut, feedback = c._client.sent[0]
    assert goal.pose == "P" and reports[-1][0][:2] == (ACTIVE, "1.0")
    handle = _Handle()
    fut.complete(handle)
    assert c.active_goal == "1.0"
    feedback(SimpleNamespace(feedback=SimpleNamespace(distance_remaining=4.5, number_of_recoveries=1)))
    assert reports[-1][1] == {"distance_remaining_m": 4.5, "recoveries": 1}
    handle.result_future.complete(_status(GoalStatus.STATUS_SUCCEEDED))
    assert reports[-1][0][:2] == (SUCCEEDED, "1.0") and c.active_goal == ""


@pytest.mark.parametrize("outcome,code", [("aborted", "NAV2_ABORTED"), ("canceled", "CANCELED"),
                                          ("rejected", "NAV2_REJECTED"), ("error", "NAV2_REJECTED")])
def test_goal_failures_have_codes(client, outcome, code):
    from action_msgs.msg import GoalStatus

    c, reports = client
    c.send("2.0", pose="P")
    _, fut, _ = c._client.sent[0]
    if outcome == "rejected":
        fut.complete(_Handle(accepted=False))
    elif outcome == "error":
        fut.complete(error=RuntimeError("transport down"))
    else:
        handle = _Handle()
        fut.complete(handle)
        handle.result_future.complete(_status(GoalStatus.STATUS_ABORTED if outcome == "aborted"
                                              else GoalStatus.STATUS_CANCELED))
    state, goal_id, got = reports[-1][0][:3]
    assert (state, goal_id, got) == (FAILED, "2.0", code)


def test_no_server_and_preemption(client):
    c, reports = client
    c._client.ready = False
    c.send("3.0", pose="P")
    assert reports[-1][0][:3] == (FAILED, "3.0", "NAV2_UNAVAILABLE") and not c._client.sent
    c._client.ready = True
    c.send("4.0", pose="P")
    first = _Handle()
    c._client.sent[0][1].complete(first)
    c.send("5.0", pose="Q")
    assert first.cancelled == 1
    assert ((FAILED, "4.0", "CANCELED") in [r[0][:3] for r in reports])
    # The old goal's late result is not reported as the new goal's.
    first.result_future.complete(_status(4))
    assert reports[-1][0][:2] == (ACTIVE, "5.0")
    assert c.cancel() is False  # the new goal is not accepted yet
    c._client.sent[1][1].complete(_Handle())
    assert c.cancel() is True


# ----------------------------------------------------------------------------- garage_markers over DDS


@pytest.fixture(scope="module")
def markers(tmp_path_factory):
    rclpy.init()
    proc = start_node("mobicharge_robot.nodes.garage_markers_node", "garage_markers", {"max_rate_hz": 5.0},
                      log_path=str(tmp_path_factory.mktemp("markers") / "garage_markers.log"))
    node = Node("markers_probe")
    node.got = []
    node.create_subscription(MarkerArray, "garage/markers", node.got.append, LATCHED_QOS)
    node.state_pub = node.create_publisher(String, "mission/state", LATCHED_QOS)
    node.battery_pub = node.create_publisher(BatteryState, "battery_state", RELIABLE_QOS)
    assert spin_until(node, lambda: node.got, 30.0), "garage_markers did not publish"
    yield node, proc
    node.destroy_node()
    stop_node(proc)
    rclpy.shutdown()
    assert proc.returncode in (0, -2), f"garage_markers exited with {proc.returncode}"


def _status_text(array):
    return next(m.text for m in array.markers if m.ns == "status")


def test_markers_show_the_garage(markers):
    node, _ = markers
    garage = load_garage(data_path("config", "garages", "default.yaml"))
    array = node.got[-1]
    by_ns = {}
    for m in array.markers:
        by_ns.setdefault(m.ns, []).append(m)
    assert array.markers[0].action == Marker.DELETEALL
    assert len(by_ns["walls"]) == len(garage.walls) and len(by_ns["pillars"]) == len(garage.pillars)
    assert len(by_ns["cars"]) == len(garage.vehicles) and len(by_ns["inlets"]) == len(garage.vehicles)
    assert len(by_ns["spots"][0].points) == 8 * len(garage.spots)
    assert len(by_ns["requests"]) == len(garage.requested_vehicles())
    assert all(m.header.frame_id == "map" for m in array.markers[1:])
    assert _status_text(array).startswith("mission: unknown")


def test_markers_follow_mission_state_and_battery_and_survive_bad_input(markers):
    node, proc = markers
    node.state_pub.publish(String(data="{not json"))
    node.state_pub.publish(String(data=json.dumps({"phase": "charging", "vehicle": "car_02", "jobs_total": 4,
                                                   "served": 1})))
    node.battery_pub.publish(BatteryState(percentage=0.734))
    assert spin_until(node, lambda: "car_02" in _status_text(node.got[-1]) and "73%" in _status_text(node.got[-1]),
                      10.0), _status_text(node.got[-1])
    text = _status_text(node.got[-1])
    assert "mission: charging (car_02)" in text and "served 1/4" in text
    car = [m for m in node.got[-1].markers if m.ns == "cars"][1]  # car_02 is the second vehicle
    assert (car.color.r, car.color.g) == pytest.approx((1.0, 0.85))  # the car being served is highlighted
    node.battery_pub.publish(BatteryState(percentage=float("nan")))
    time.sleep(0.3)
    assert proc.poll() is None


# ----------------------------------------------------------------------------- parameters under a namespace


def _param_in_namespace(params_file, tmp_path, name):
    """max_rate_hz of a garage_markers node started in /robot7 with ``params_file`` (read over its parameter
    service)."""
    from rcl_interfaces.srv import GetParameters

    proc = subprocess.Popen([sys.executable, "-m", "mobicharge_robot.nodes.garage_markers_node", "--ros-args",
                             "-r", "__ns:=/robot7", "-r", f"__node:={name}", "--params-file", params_file],
                            cwd=ROOT, stdout=open(tmp_path / f"{name}_{os.path.basename(params_file)}.log", "w"), stderr=subprocess.STDOUT,
                            env=dict(os.environ))
    node = Node(f"{name}_param_probe")
    try:
        client = node.create_client(GetParameters, f"/robot7/{name}/get_parameters")
        assert spin_until(node, client.service_is_ready, 30.0), "node did not come up"
        future = client.call_async(GetParameters.Request(names=["max_rate_hz"]))
        assert spin_until(node, future.done, 10.0)
        return future.result().values[0].double_value
    finally:
        node.destroy_node()
        stop_node(proc)


def test_parameter_file_applies_under_a_namespace_only_when_rewritten(markers, tmp_path):
    """rcl reads a section 'garage_markers' as the node /garage_markers, so the launch files move the sections into
    the robot's namespace (launch_support.namespaced_params); both halves are checked on a real node."""
    import yaml as _yaml

    from mobicharge_robot.tools.launch_support import namespaced_params

    data = _yaml.safe_load(open(data_path("config", "mobicharge.yaml")))
    data["garage_markers"]["ros__parameters"]["max_rate_hz"] = 7.5
    plain = tmp_path / "params.yaml"
    plain.write_text(_yaml.safe_dump(data))
    assert _param_in_namespace(str(plain), tmp_path, "garage_markers") == pytest.approx(1.0)  # default: not applied
    moved = namespaced_params(str(plain), "robot7")
    try:
        assert _param_in_namespace(moved, tmp_path, "garage_markers") == pytest.approx(7.5)
    finally:
        os.remove(moved)
