"""Navigation safety through the nodes and the simulator, over DDS: the stop zone, a stale scan (stamped zero, or from
a stalled clock), lost localization, a blocked lane, a person crossing, and a pre-empted goal.

The simulator's scan is remapped to ``scan_raw``; this test relays it to ``scan`` (what localization and navigation
read) and injects faults on the way, as a fault-injection harness between a sensor driver and its consumers would:
obstacles drawn into the ranges (fixed in the map, moving, or riding in front of the robot), zero stamps, a frozen
stamp, or a scan that fits nothing.
"""
import math

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import LaserScan

from mobicharge_robot.core.garage.garage import load_garage
from mobicharge_robot.core.geometry import Pose2D, rect_polygon
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.nodes.ros_common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, pose2d_to_msg, status_values
from mobicharge_robot.sim.world import Lidar, polygon_edges
from ros_harness import spin_until, start_node, stop_node

LANE_Y = 25.85
LASER = Pose2D(0.42, 0.0, 0.0)


class Relay:
    """Relays scan_raw to scan with injected faults; tracks the robot's pose from odometry (exact in this sim)."""

    def __init__(self, node, depot):
        self.node = node
        self.depot = depot
        self.odom = None
        self.mode = "pass"  # pass | zero_stamp | frozen_stamp | garbage
        self.obstacles = []  # callables: sim time -> polygon (map) ; or ("ahead", gap_m) riding with the robot
        self.frozen = None
        self.first_obstacle_t = None  # stamp of the first scan that shows an injected obstacle (sim s)
        self.pub = node.create_publisher(LaserScan, "scan", SENSOR_QOS)
        node.create_subscription(LaserScan, "scan_raw", self._on_scan, SENSOR_QOS)
        node.create_subscription(Odometry, "odom", self._on_odom, RELIABLE_QOS)

    @property
    def pose(self):
        if self.odom is None:
            return self.depot
        return self.depot.compose(self.odom)

    def _on_odom(self, msg):
        q = msg.pose.pose.orientation
        self.odom = Pose2D(msg.pose.pose.position.x, msg.pose.pose.position.y,
                           2.0 * math.atan2(q.z, q.w))

    def _on_scan(self, msg):
        t = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        ranges = np.asarray(msg.ranges, dtype=float)
        lidar = Lidar(n_rays=len(ranges), noise_std_m=0.0)
        sensor = self.pose.compose(LASER)
        polys = []
        for ob in self.obstacles:
            if isinstance(ob, tuple):  # ("ahead", gap): a box that steps in front of the bumper
                polys.append(rect_polygon(self.pose.compose(Pose2D(0.5 + ob[1] + 0.15, 0.0, 0.0)), 0.3, 0.5))
            else:
                polys.append(ob(t))
        if polys:
            if self.first_obstacle_t is None:
                self.first_obstacle_t = t
            extra = lidar.scan(sensor, polygon_edges(polys))
            ranges = np.minimum(ranges, extra)
        if self.mode == "garbage":  # a scan that reaches through the walls: it contradicts the map (a faulty lidar)
            ranges = ranges * 1.5 + 1.0
        out = LaserScan()
        out.header.frame_id = msg.header.frame_id
        out.header.stamp = msg.header.stamp
        if self.mode == "zero_stamp":
            out.header.stamp.sec, out.header.stamp.nanosec = 0, 0
        elif self.mode == "frozen_stamp":
            if self.frozen is None:
                self.frozen = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            out.header.stamp.sec, out.header.stamp.nanosec = self.frozen
        out.angle_min, out.angle_max, out.angle_increment = msg.angle_min, msg.angle_max, msg.angle_increment
        out.range_min, out.range_max, out.scan_time = msg.range_min, msg.range_max, msg.scan_time
        out.ranges = [float(r) for r in ranges]
        self.pub.publish(out)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    logs = tmp_path_factory.mktemp("navsafety")
    rclpy.init()
    procs = [
        start_node("mobicharge_robot.sim.loopback_node", "loopback_sim", {"rtf_drive": 2.0, "variation": "none"},
                   log_path=str(logs / "sim.log"), remaps={"scan": "scan_raw"}),
        start_node("mobicharge_robot.nodes.localization_node", "localization", {"use_sim_time": True},
                   log_path=str(logs / "loc.log")),
        start_node("mobicharge_robot.nodes.navigation_node", "navigation",
                   {"use_sim_time": True, "blocked_replan_s": 3.0}, log_path=str(logs / "nav.log")),
    ]
    node = Node("nav_safety_probe", parameter_overrides=[Parameter("use_sim_time", value=True)])
    node.garage = load_garage(data_path("config", "garages", "default.yaml"))
    node.relay = Relay(node, node.garage.depot.pose)
    node.statuses, node.cmds, node.loc = [], [], []
    # A deep queue: a pre-empted goal's CANCELED and the new goal's status are published back to back.
    deep = QoSProfile(depth=50, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(DiagnosticStatus, "navigate/status", node.statuses.append, deep)
    node.create_subscription(DiagnosticStatus, "localization/status", node.loc.append, LATCHED_QOS)
    node.create_subscription(Twist, "cmd_vel", lambda m: node.cmds.append((_now(node), m.linear.x, m.angular.z)),
                             RELIABLE_QOS)
    node.goal_pub = node.create_publisher(PoseStamped, "goal_pose", RELIABLE_QOS)
    assert spin_until(node, lambda: node.statuses and status_values(node.statuses[-1]).get("localized") == "True",
                      60.0), "navigation did not become localized"
    yield node
    node.destroy_node()
    for p in reversed(procs):
        stop_node(p)
    rclpy.shutdown()


def _now(node):
    return node.get_clock().now().nanoseconds * 1e-9


_seq = [0]


def _send(node, pose: Pose2D):
    _seq[0] += 1
    msg = pose2d_to_msg(pose, "map", node.get_clock().now().to_msg())
    msg.header.stamp.nanosec = (msg.header.stamp.nanosec + _seq[0]) % 1_000_000_000
    node.goal_pub.publish(msg)
    return f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"


def _along_lane(node, dist):
    """A goal ``dist`` metres along lane_north from the robot, turning back near the lane's ends."""
    x = node.relay.pose.x
    direction = 1.0 if x + dist < 50.0 else -1.0
    return Pose2D(x + direction * dist, LANE_Y, 0.0 if direction > 0 else math.pi)


def _results(node, goal_id):
    return [s for s in node.statuses if s.hardware_id == goal_id and s.message in ("succeeded", "failed")]


def _wait_result(node, goal_id, timeout):
    assert spin_until(node, lambda: bool(_results(node, goal_id)), timeout), f"no result for goal {goal_id}"
    return _results(node, goal_id)[-1]


def _moving(node):
    return bool(node.cmds) and node.cmds[-1][1] > 0.2


def _reset(node):
    node.relay.mode, node.relay.obstacles, node.relay.frozen = "pass", [], None
    node.relay.first_obstacle_t = None


def test_stop_zone_stops_within_0_3_s_and_resumes(probe):
    _reset(probe)
    goal = _send(probe, _along_lane(probe, 12.0))
    assert spin_until(probe, lambda: _moving(probe), 30.0)
    probe.relay.obstacles = [("ahead", 0.15)]
    t_in = _now(probe)
    assert spin_until(probe, lambda: probe.cmds[-1][0] > t_in and abs(probe.cmds[-1][1]) <= 0.02, 5.0)
    # The reaction counts from the first scan that shows the obstacle (its acquisition stamp), as on a robot.
    stop_s = probe.cmds[-1][0] - probe.relay.first_obstacle_t
    assert stop_s <= 0.3, f"stop took {stop_s:.2f} s (sim) after the first scan showing the obstacle"
    assert spin_until(probe, lambda: "stop zone" in status_values(probe.statuses[-1]).get("blocked", ""), 5.0)
    probe.relay.obstacles = []
    t_out = _now(probe)
    assert spin_until(probe, lambda: probe.cmds[-1][0] > t_out and probe.cmds[-1][1] > 0.02, 5.0)
    assert probe.cmds[-1][0] - t_out <= 0.6
    assert _wait_result(probe, goal, 60.0).message == "succeeded"


@pytest.mark.parametrize("mode", ["zero_stamp", "frozen_stamp"])
def test_stale_scan_stops_the_base_until_fresh_scans_return(probe, mode):
    _reset(probe)
    goal = _send(probe, _along_lane(probe, 10.0))
    assert spin_until(probe, lambda: _moving(probe), 30.0)
    probe.relay.mode = mode
    assert spin_until(probe, lambda: status_values(probe.statuses[-1]).get("blocked") == "stale scan", 10.0)
    t0 = _now(probe)
    spin_until(probe, lambda: False, 1.0)
    assert all(abs(v) <= 0.02 for t, v, _ in probe.cmds if t > t0), "drove on stale scans"
    probe.relay.mode = "pass"
    assert _wait_result(probe, goal, 60.0).message == "succeeded"


def test_lost_localization_holds_the_base_refuses_goals_and_recovers(probe):
    _reset(probe)
    goal = _send(probe, _along_lane(probe, 10.0))
    assert spin_until(probe, lambda: _moving(probe), 30.0)
    probe.relay.mode = "garbage"
    assert spin_until(probe, lambda: probe.loc and probe.loc[-1].message == "lost", 20.0), "never reported lost"
    assert spin_until(probe, lambda: status_values(probe.statuses[-1]).get("localized") == "False", 5.0)
    t0 = _now(probe)
    spin_until(probe, lambda: False, 1.0)
    assert all(abs(v) <= 0.02 for t, v, _ in probe.cmds if t > t0 + 0.2), "moved while lost"
    refused = _send(probe, _along_lane(probe, 5.0))
    res = _wait_result(probe, refused, 10.0)
    assert status_values(res)["code"] == "NOT_LOCALIZED"
    assert status_values(_wait_result(probe, goal, 5.0))["code"] == "CANCELED"  # pre-empted by the refused goal
    probe.relay.mode = "pass"
    assert spin_until(probe, lambda: probe.loc[-1].message == "localized", 60.0), "did not recover"
    assert spin_until(probe, lambda: status_values(probe.statuses[-1]).get("localized") == "True", 10.0)
    goal = _send(probe, _along_lane(probe, 5.0))
    assert _wait_result(probe, goal, 60.0).message == "succeeded"


def test_blocked_lane_is_planned_around_without_touching_the_obstacle(probe):
    _reset(probe)
    target = _along_lane(probe, 14.0)
    start = probe.relay.pose
    direction = 1.0 if target.x > start.x else -1.0
    box = rect_polygon(Pose2D(start.x + direction * 6.0, LANE_Y, 0.0), 1.2, 1.6)
    probe.relay.obstacles = [lambda t: box]
    goal = _send(probe, target)
    min_gap = [math.inf]

    def done():
        p = probe.relay.pose
        fp = rect_polygon(p, 1.0, 0.7)
        min_gap[0] = min(min_gap[0], _poly_gap(fp, box))
        return bool(_results(probe, goal))

    assert spin_until(probe, done, 90.0)
    res = _results(probe, goal)[-1]
    assert res.message == "succeeded", status_values(res)
    assert min_gap[0] > 0.1, f"came within {min_gap[0]:.2f} m of the obstacle"


def test_person_crossing_makes_the_robot_wait_then_go_on(probe):
    _reset(probe)
    target = _along_lane(probe, 14.0)
    start = probe.relay.pose
    direction = 1.0 if target.x > start.x else -1.0
    cross_x = start.x + direction * 6.0
    state = {"t0": None}

    def person(t):
        # Steps off the kerb when the robot is 3 m away, stops in the lane for 4 s, then walks on at 0.8 m/s.
        if state["t0"] is None:
            if abs(probe.relay.pose.x - cross_x) > 3.0:
                return rect_polygon(Pose2D(cross_x, LANE_Y - 3.0, 0.0), 0.4, 0.4)
            state["t0"] = t
        dt = t - state["t0"]
        y = LANE_Y - 0.5 + (0.5 * min(dt, 1.0)) + 0.8 * max(0.0, dt - 5.0)
        return rect_polygon(Pose2D(cross_x, y, 0.0), 0.4, 0.4)

    goal = _send(probe, target)
    assert spin_until(probe, lambda: _moving(probe), 30.0)
    probe.relay.obstacles = [person]
    min_gap, fastest_near, waited = [math.inf], [0.0], [False]

    def done():
        p = probe.relay.pose
        gap = _poly_gap(rect_polygon(p, 1.0, 0.7), person(_now(probe)))
        min_gap[0] = min(min_gap[0], gap)
        if gap < 1.0 and probe.cmds:
            fastest_near[0] = max(fastest_near[0], probe.cmds[-1][1])
        if state["t0"] is not None and gap < 1.0 and probe.cmds and abs(probe.cmds[-1][1]) <= 0.02:
            waited[0] = True
        return bool(_results(probe, goal))

    assert spin_until(probe, done, 90.0)
    res = _results(probe, goal)[-1]
    assert res.message == "succeeded", status_values(res)
    assert waited[0], "never stopped for the person"
    assert min_gap[0] > 0.05, f"came within {min_gap[0]:.2f} m of the person"
    assert fastest_near[0] <= 0.5 + 1e-6, f"drove {fastest_near[0]:.2f} m/s within 1 m of the person"


def test_a_new_goal_preempts_and_cancels_the_active_one(probe):
    _reset(probe)
    first = _send(probe, _along_lane(probe, 12.0))
    assert spin_until(probe, lambda: _moving(probe), 30.0)
    second = _send(probe, _along_lane(probe, 3.0))
    res = _wait_result(probe, first, 10.0)
    assert res.message == "failed" and status_values(res)["code"] == "CANCELED"
    assert "pre-empted" in status_values(res)["reason"]
    assert _wait_result(probe, second, 60.0).message == "succeeded"


def _poly_gap(a, b):
    """Distance (m) between two convex polygons (0 when they touch or overlap)."""
    from mobicharge_robot.core.geometry import convex_polygons_intersect

    if convex_polygons_intersect(a, b):
        return 0.0

    def pt_seg(p, s0, s1):
        d = s1 - s0
        t = np.clip(np.dot(p - s0, d) / max(np.dot(d, d), 1e-12), 0.0, 1.0)
        return float(np.hypot(*(p - s0 - t * d)))

    best = math.inf
    for P, Q in ((a, b), (b, a)):
        for p in P:
            for s0, s1 in zip(Q, np.roll(Q, -1, axis=0)):
                best = min(best, pt_seg(p, s0, s1))
    return best
