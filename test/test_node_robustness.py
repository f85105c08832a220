"""Malformed messages on every input of the production nodes: each node logs and carries on (no crash)."""
import math

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist, WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, CameraInfo, Image, JointState, LaserScan
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mobicharge_robot.nodes.ros_common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
from ros_harness import spin_for, spin_until, start_node, stop_node

NODES = {
    "navigation": "mobicharge_robot.nodes.navigation_node",
    "arm": "mobicharge_robot.nodes.arm_node",
    "energy": "mobicharge_robot.nodes.energy_node",
    "port_detection": "mobicharge_robot.nodes.port_detection_node",
    "loopback_sim": "mobicharge_robot.sim.loopback_node",
}
STATUS = {"navigation": "navigate/status", "arm": "arm/status", "energy": "charge/status",
          "port_detection": "detect_port/status", "loopback_sim": "sim/truth/status"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    logs = tmp_path_factory.mktemp("robust")
    rclpy.init()
    procs = {name: start_node(mod, name, log_path=str(logs / f"{name}.log")) for name, mod in NODES.items()}
    probe = Node("robustness_probe")
    probe.seen = {}
    for name, topic in STATUS.items():
        probe.create_subscription(DiagnosticStatus, topic,
                                  lambda m, n=name: probe.seen.__setitem__(n, probe.seen.get(n, 0) + 1), LATCHED_QOS)
    assert spin_until(probe, lambda: len(probe.seen) == len(NODES), 30.0), f"nodes up: {probe.seen}"
    yield probe, procs, logs
    probe.destroy_node()
    for p in procs.values():
        stop_node(p)
    rclpy.shutdown()


def _nan_pose(frame):
    msg = PoseStamped()
    msg.header.frame_id = frame
    msg.pose.position.x = math.nan
    return msg


def test_nodes_survive_malformed_input(nodes):
    probe, procs, logs = nodes
    nan = math.nan
    pubs = []

    def pub(kind, topic, msg, qos=RELIABLE_QOS):
        p = probe.create_publisher(kind, topic, qos)
        pubs.append((p, msg))

    pub(PoseStamped, "goal_pose", _nan_pose("map"))
    zero_q = PoseStamped()
    zero_q.header.frame_id = "map"
    zero_q.pose.orientation.w = 0.0
    pub(PoseStamped, "goal_pose", zero_q)
    pub(PoseWithCovarianceStamped, "initialpose", PoseWithCovarianceStamped())
    odom = Odometry()
    odom.pose.pose.position.x = nan
    pub(Odometry, "odom", odom)
    pub(LaserScan, "scan", LaserScan(ranges=[nan, -1.0, math.inf], angle_increment=0.0), SENSOR_QOS)
    pub(JointState, "joint_states", JointState(name=["arm_joint_1", "arm_joint_2"], position=[nan]), SENSOR_QOS)
    pub(WrenchStamped, "wrist_wrench", WrenchStamped(), SENSOR_QOS)
    pub(PoseStamped, "arm/observe_target", _nan_pose("base_link"))
    pub(PoseStamped, "arm/observe_target", _nan_pose("elsewhere"))
    pub(PoseStamped, "inlet_pose_base", _nan_pose("base_link"))
    pub(String, "inlet_type", String(data="chademo"), LATCHED_QOS)
    pub(String, "charge/session_request", String(data="{not json"))
    pub(String, "charge/session_request", String(data='{"session_id": 1, "vehicle_id": [], "target_kwh": 1e9}'))
    pub(BatteryState, "bms/state", BatteryState(voltage=nan, current=math.inf, temperature=-500.0), SENSOR_QOS)
    pub(BatteryState, "dc_output/measurement", BatteryState(voltage=nan, current=nan), SENSOR_QOS)
    pub(Float64, "pilot/voltage", Float64(data=nan))
    pub(Bool, "connector/seated", Bool(data=True), LATCHED_QOS)
    pub(Image, "camera/image_raw", Image(height=10, width=10, encoding="weird", step=1, data=[1, 2, 3]), SENSOR_QOS)
    pub(Image, "camera/image_raw", Image(height=480, width=640, encoding="rgb8", step=1920, data=[0] * 10),
        SENSOR_QOS)
    pub(CameraInfo, "camera/camera_info", CameraInfo(width=0, height=0), SENSOR_QOS)
    cmd = Twist()
    cmd.linear.x = nan
    pub(Twist, "cmd_vel", cmd)
    pub(JointTrajectory, "arm_controller/joint_trajectory", JointTrajectory(joint_names=["nope"]))
    bad_points = [JointTrajectoryPoint(positions=[nan] * 6), JointTrajectoryPoint(positions=[0.0])]
    bad_traj = JointTrajectory(joint_names=[f"arm_joint_{i}" for i in range(1, 7)], points=bad_points)
    pub(JointTrajectory, "arm_controller/joint_trajectory", bad_traj)
    pub(Float64, "pilot/duty", Float64(data=nan))
    pub(Float64, "dc_output/current_request", Float64(data=math.inf))
    client = probe.create_client(SetBool, "detect_port/enable")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(SetBool.Request(data=True))
    assert spin_until(probe, future.done, 10.0)
    spin_for(probe, 1.0)
    for _ in range(3):
        for p, msg in pubs:
            p.publish(msg)
        spin_for(probe, 0.3)
    spin_for(probe, 1.5)
    dead = {name: p.poll() for name, p in procs.items() if p.poll() is not None}
    tails = {name: (logs / f"{name}.log").read_text()[-2000:] for name in dead}
    assert not dead, f"nodes exited: {dead}\n{tails}"
    for name in NODES:
        log = (logs / f"{name}.log").read_text()
        assert "Traceback" not in log, f"{name} logged a traceback:\n{log[-3000:]}"
