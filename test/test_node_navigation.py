"""Navigation node over DDS with the loopback simulator: bad goals get a specific code and no motion; a reachable
goal is reached through cmd_vel; a stale scan stops the base."""
import math

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.node import Node
from rclpy.parameter import Parameter

from mobicharge_robot.core.garage.garage import load_garage
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.nodes.ros_common import LATCHED_QOS, RELIABLE_QOS, pose2d_to_msg, status_values
from mobicharge_robot.core.geometry import Pose2D
from ros_harness import spin_until, start_node, stop_node


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    logs = tmp_path_factory.mktemp("nav")
    rclpy.init()
    sim = start_node("mobicharge_robot.sim.loopback_node", "loopback_sim", {"rtf_drive": 10.0},
                     log_path=str(logs / "sim.log"))
    loc = start_node("mobicharge_robot.nodes.localization_node", "localization", {"use_sim_time": True},
                     log_path=str(logs / "loc.log"))
    nav = start_node("mobicharge_robot.nodes.navigation_node", "navigation", {"use_sim_time": True},
                     log_path=str(logs / "nav.log"))
    node = Node("nav_probe", parameter_overrides=[Parameter("use_sim_time", value=True)])
    node.statuses = []
    node.cmds = []
    node.create_subscription(DiagnosticStatus, "navigate/status", node.statuses.append, LATCHED_QOS)
    node.create_subscription(Twist, "cmd_vel", node.cmds.append, RELIABLE_QOS)
    node.goal_pub = node.create_publisher(PoseStamped, "goal_pose", RELIABLE_QOS)
    node.garage = load_garage(data_path("config", "garages", "default.yaml"))
    assert spin_until(node, lambda: node.statuses and status_values(node.statuses[-1]).get("localized") == "True",
                      30.0), "navigation or simulator did not come up (no localized status)"
    # A goal published before navigation's subscription has matched this publisher is lost (volatile QoS), and a
    # goal stamped before this node has sim time carries a zero stamp: wait for both.
    assert spin_until(node, lambda: node.goal_pub.get_subscription_count() > 0
                      and node.get_clock().now().nanoseconds > 0, 30.0), "goal_pose has no subscriber or no sim time"
    yield node
    node.destroy_node()
    stop_node(nav)
    stop_node(loc)
    stop_node(sim)
    rclpy.shutdown()


_seq = [0]


def _send(node, pose: Pose2D, frame="map"):
    _seq[0] += 1
    msg = pose2d_to_msg(pose, frame, node.get_clock().now().to_msg())
    msg.header.stamp.nanosec = (msg.header.stamp.nanosec + _seq[0]) % 1_000_000_000
    goal_id = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
    node.goal_pub.publish(msg)
    return goal_id


def _result(node, goal_id, timeout):
    done = lambda: [s for s in node.statuses if s.hardware_id == goal_id and s.message in ("succeeded", "failed")]  # noqa: E731
    assert spin_until(node, lambda: bool(done()), timeout), f"no result for goal {goal_id}"
    return done()[-1]


@pytest.mark.parametrize("goal, code", [
    (Pose2D(-5.0, 3.0, 0.0), "GOAL_OUTSIDE_MAP"),
    (Pose2D(1e4, 1e4, 0.0), "GOAL_OUTSIDE_MAP"),
])
def test_goal_outside_map_is_refused_without_motion(probe, goal, code):
    n_cmds = len(probe.cmds)
    res = _result(probe, _send(probe, goal), 10.0)
    assert res.message == "failed" and status_values(res)["code"] == code
    assert all(abs(c.linear.x) < 1e-9 and abs(c.angular.z) < 1e-9 for c in probe.cmds[n_cmds:])


def test_goal_inside_a_car_is_refused(probe):
    car = probe.garage.vehicles[0]
    res = _result(probe, _send(probe, probe.garage.vehicle_pose(car)), 10.0)
    assert res.message == "failed" and status_values(res)["code"] == "GOAL_OCCUPIED"


def test_goal_in_wrong_frame_is_refused(probe):
    res = _result(probe, _send(probe, probe.garage.depot.pose, frame="odom"), 10.0)
    assert status_values(res)["code"] == "INVALID_FRAME"


def test_reachable_goal_is_reached(probe):
    d = probe.garage.depot.pose
    goal = Pose2D(d.x + 3.0 * math.cos(d.yaw), d.y + 3.0 * math.sin(d.yaw), d.yaw)
    res = _result(probe, _send(probe, goal), 60.0)
    assert res.message == "succeeded", status_values(res)
    assert any(c.linear.x > 0.05 for c in probe.cmds)


def test_status_also_reaches_diagnostics(probe):
    from diagnostic_msgs.msg import DiagnosticArray

    seen = []
    sub = probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: seen.extend(m.status), RELIABLE_QOS)
    assert spin_until(probe, lambda: any(s.name == "navigation" for s in seen), 5.0)
    probe.destroy_subscription(sub)
