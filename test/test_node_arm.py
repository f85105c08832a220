"""Arm node over DDS: a plug-in whose wrist wrench goes silent stops, retracts to the stand-off and reports the
stale wrench; the plug is never reported seated (so the output is never enabled)."""
import math
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from mobicharge_robot.core.arm import STOWED_POSITIONS
from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path
from mobicharge_robot.core.geometry import make_transform
from mobicharge_robot.nodes.ros_common import (LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, matrix_to_pose_stamped,
                                               status_values)
from ros_harness import spin_until, start_node, stop_node

JOINTS = [f"arm_joint_{i}" for i in range(1, 7)]


class FakeArm:
    """Joint-trajectory controller stand-in: follows the last trajectory in wall time, publishes joint_states."""

    def __init__(self, node: Node):
        self.node = node
        self.q = np.array(STOWED_POSITIONS, float)
        self.traj = None
        self.pub = node.create_publisher(JointState, "joint_states", SENSOR_QOS)
        node.create_subscription(JointTrajectory, "arm_controller/joint_trajectory", self._on_traj, RELIABLE_QOS)
        node.create_timer(0.02, self._tick)

    def _on_traj(self, msg):
        idx = [list(msg.joint_names).index(n) for n in JOINTS]
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        pos = np.array([[p.positions[i] for i in idx] for p in msg.points])
        self.traj = (time.monotonic(), np.concatenate([[0.0], times]), np.vstack([self.q, pos]))

    def _tick(self):
        if self.traj is not None:
            t0, times, pos = self.traj
            t = min(time.monotonic() - t0, times[-1])
            self.q = np.array([np.interp(t, times, pos[:, j]) for j in range(6)])
        msg = JointState(name=JOINTS, position=[float(v) for v in self.q])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    rclpy.init()
    proc = start_node("mobicharge_robot.nodes.arm_node", "arm", log_path=str(tmp_path_factory.mktemp("arm") / "arm.log"))
    node = Node("arm_probe")
    node.arm = FakeArm(node)
    node.statuses, node.seated = [], []
    node.create_subscription(DiagnosticStatus, "arm/status", node.statuses.append, LATCHED_QOS)
    node.create_subscription(Bool, "connector/seated", lambda m: node.seated.append(m.data), LATCHED_QOS)
    node.inlet_pub = node.create_publisher(PoseStamped, "inlet_pose_base", RELIABLE_QOS)
    node.wrench_pub = node.create_publisher(WrenchStamped, "wrist_wrench", SENSOR_QOS)
    node.latch_pub = node.create_publisher(Bool, "connector/latched", RELIABLE_QOS)
    node.plug = node.create_client(Trigger, "arm/plug")
    assert spin_until(node, lambda: node.statuses and node.plug.service_is_ready(), 30.0), "arm node did not come up"
    yield node
    node.destroy_node()
    stop_node(proc)
    rclpy.shutdown()


def test_silent_wrench_stops_retracts_and_fails(probe):
    z, y = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    inlet = make_transform(np.column_stack([np.cross(y, z), y, z]), (0.1, 0.7, 0.8))
    probe.inlet_pub.publish(matrix_to_pose_stamped(inlet, "base_link", probe.get_clock().now().to_msg()))
    probe.latch_pub.publish(Bool(data=False))
    # One wrench at the start, then silence: the sensor died.
    w = WrenchStamped()
    w.header.frame_id = "connector_tip"
    w.header.stamp = probe.get_clock().now().to_msg()
    probe.wrench_pub.publish(w)
    spin_until(probe, lambda: False, 0.5)
    future = probe.plug.call_async(Trigger.Request())
    assert spin_until(probe, future.done, 10.0) and future.result().success, future.result()

    def ended():
        last = probe.statuses[-1]
        return last.level == DiagnosticStatus.ERROR and "stale wrench" in status_values(last).get("reason", "")

    assert spin_until(probe, ended, 90.0), [(s.message, status_values(s)) for s in probe.statuses[-3:]]
    assert True not in probe.seated  # never seated: the energy side never gets to enable the output
    arm = UrdfModel.from_xacro(default_urdf_path()).chain("base_link", "connector_tip")
    tip_in_inlet = np.linalg.inv(inlet) @ arm.fk(probe.arm.q)
    assert tip_in_inlet[2, 3] > 0.09  # retracted to the stand-off, out of the inlet
    assert math.hypot(tip_in_inlet[0, 3], tip_in_inlet[1, 3]) < 0.01


def test_release_waits_on_feedback_and_fails_when_the_latch_stays_closed(probe):
    """Unplug: the latch never reads open, so the arm must not pull; it fails with the reason, seated stays false
    and the output is never told it may run."""
    unplug = probe.create_client(Trigger, "arm/unplug")
    releases = []
    probe.create_subscription(Bool, "connector/release", lambda m: releases.append(m.data), LATCHED_QOS)
    probe.latch_pub.publish(Bool(data=True))
    spin_until(probe, lambda: False, 0.3)
    q_before = probe.arm.q.copy()
    assert spin_until(probe, unplug.service_is_ready, 10.0)
    future = unplug.call_async(Trigger.Request())
    assert spin_until(probe, future.done, 10.0) and future.result().success

    def failed():
        last = probe.statuses[-1]
        return last.level == DiagnosticStatus.ERROR and "latch did not open" in status_values(last).get("reason", "")

    assert spin_until(probe, failed, 30.0), [(s.message, status_values(s)) for s in probe.statuses[-3:]]
    assert probe.seated[-1] is False
    assert spin_until(probe, lambda: releases and releases[-1] is False, 5.0)  # topics are not ordered together
    assert True in releases and releases[-1] is False  # it tried to open the latch, then let go of the actuator
    np.testing.assert_allclose(probe.arm.q, q_before, atol=1e-9)  # never pulled against the latch
