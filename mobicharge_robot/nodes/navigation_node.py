"""Navigation node: plans on the garage's occupancy grid, follows the path with ``cmd_vel``, stops at the goal.

Goals arrive as ``geometry_msgs/PoseStamped`` on ``goal_pose`` (the topic RViz's "2D Goal Pose" tool uses) in the
map frame; ``header.stamp`` doubles as the goal id that ``navigate/status`` reports back. Localization here is
odometry anchored at the initial pose (``map`` -> ``odom`` is fixed); a scan-based localizer replaces that anchor later.
"""
from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from std_srvs.srv import Trigger

from ..core.follower import FollowerParams, PathFollower
from ..core.garage import GarageError, load_garage
from ..core.geometry import Pose2D
from ..core.latency import CommandHistory
from ..core.occupancy import occupancy_from_garage, speed_limit_at
from ..core.paths import data_path
from ..core.planner import GridPlanner, PlannerError
from ..core.safety import FreshnessMonitor, StopZone, scan_points
from ..core.urdf_model import UrdfError, UrdfModel
from .ros_common import (
    ACTIVE,
    FAILED,
    IDLE,
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    SUCCEEDED,
    ConfigurationError,
    PlanarTf,
    StatusPublisher,
    declare,
    live_parameters,
    pose2d_to_msg,
    pose_to_pose2d,
    run_node,
    stamp_seconds,
    task_status,
)


class NavigationNode(Node):
    def __init__(self):
        super().__init__("navigation")
        p = {}
        p["garage_file"] = declare(self, "garage_file", data_path("config", "garages", "default.yaml"),
                                   "Garage description YAML (the single source of the map).", read_only=True)
        p["urdf_file"] = declare(self, "urdf_file", data_path("urdf", "mobicharge.urdf.xacro"),
                                 "Robot description (xacro or URDF); the footprint is read from it.", read_only=True)
        p["map_frame"] = declare(self, "map_frame", "map", "Global frame id.", read_only=True)
        p["odom_frame"] = declare(self, "odom_frame", "odom", "Odometry frame id.", read_only=True)
        p["base_frame"] = declare(self, "base_frame", "base_link", "Robot base frame id.", read_only=True)
        p["initial_pose"] = declare(self, "initial_pose", [float("nan")] * 3,
                                    "Robot pose [x, y, yaw] in the map at start-up; NaN means the garage's depot.",
                                    read_only=True)
        p["resolution_m"] = declare(self, "resolution_m", 0.05, "Occupancy grid cell size (m).", read_only=True,
                                    lo=0.01, hi=0.5)
        p["inflation_margin_m"] = declare(self, "inflation_margin_m", 0.25,
                                          "Clearance kept beyond half the footprint width when planning (m).",
                                          read_only=True, lo=0.0, hi=1.0)
        self.rate_hz = declare(self, "controller_rate_hz", 20.0, "Path-follower rate in (sim) time (Hz).",
                               read_only=True, lo=5.0, hi=100.0)
        self.max_v = declare(self, "max_linear_mps", 1.0, "Speed limit in lanes (m/s).", lo=0.05, hi=1.5)
        self.scan_timeout = declare(self, "scan_timeout_s", 0.5, "Stop when the newest scan is older (s).",
                                    read_only=True, lo=0.05, hi=5.0)
        self.stop_ahead = declare(self, "stop_zone_ahead_m", 0.30,
                                  "Stop zone length beyond the footprint in the travel direction (m).",
                                  read_only=True, lo=0.0, hi=2.0)
        self.progress_timeout = declare(self, "progress_timeout_s", 30.0,
                                        "Abort a goal after this long without 0.1 m of progress (s).", lo=1.0, hi=600.0)
        live_parameters(self, {"max_linear_mps": "max_v", "progress_timeout_s": "progress_timeout"})

        try:
            self.garage = load_garage(p["garage_file"])
            urdf = UrdfModel.from_xacro(p["urdf_file"])
        except (GarageError, UrdfError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self.footprint = urdf.footprint()
        laser = urdf.transform({}, "laser")
        self.laser_in_base = Pose2D(laser[0, 3], laser[1, 3], math.atan2(laser[1, 0], laser[0, 0]))
        self.frames = p
        init = p["initial_pose"]
        self.map_T_odom = (self.garage.depot.pose if any(math.isnan(v) for v in init)
                           else Pose2D(*[float(v) for v in init]))

        grid = occupancy_from_garage(self.garage, p["resolution_m"])
        radius = 0.5 * self.footprint[1] + p["inflation_margin_m"]
        self.planner = GridPlanner(grid, robot_radius_m=radius)
        self.grid = grid
        self.follower = PathFollower(FollowerParams(max_linear_mps=self.max_v))
        self.stop_zone = StopZone(self.footprint[0], self.footprint[1], ahead_m=self.stop_ahead)
        self.scan_fresh = FreshnessMonitor(self.scan_timeout)
        self.sent = CommandHistory()
        self.t_odom = 0.0

        self.pose = None  # map frame
        self.v = self.w = 0.0
        self.goal_id = ""
        self.state = IDLE
        self.blocked = ""  # why the base is held: '', 'stale scan' or 'stop zone occupied'
        self._progress_ref = None
        self._scan = None  # the newest LaserScan; turned into points only while a goal is active

        self.cmd_pub = self.create_publisher(Twist, "cmd_vel", RELIABLE_QOS)
        self.status_pub = StatusPublisher(self, "navigate/status")
        self.plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self.map_pub = self.create_publisher(OccupancyGrid, "map", LATCHED_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, "localized_pose", RELIABLE_QOS)
        self.create_subscription(Odometry, "odom", self._on_odom, RELIABLE_QOS)
        self.create_subscription(LaserScan, "scan", self._on_scan, SENSOR_QOS)
        self.create_subscription(PoseStamped, "goal_pose", self._on_goal, RELIABLE_QOS)
        self.create_subscription(PoseWithCovarianceStamped, "initialpose", self._on_initial_pose, RELIABLE_QOS)
        self.create_service(Trigger, "navigate/cancel", self._on_cancel)
        self.create_timer(1.0 / self.rate_hz, self._control)
        self._tf = PlanarTf(self)
        self._publish_map()
        self._publish_status()
        self.get_logger().info(f"navigation ready: garage '{self.garage.name}', footprint "
                               f"{self.footprint[0]:.2f} x {self.footprint[1]:.2f} m")

    # ------------------------------------------------------------------ inputs
    def _on_odom(self, msg: Odometry):
        try:
            odom_pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as exc:
            self.get_logger().warning(f"ignoring odometry: {exc}", throttle_duration_sec=5.0)
            return
        first = self.pose is None
        self.pose = self.map_T_odom.compose(odom_pose)
        self.t_odom = stamp_seconds(msg.header.stamp)
        if first:
            self._publish_status()  # now localized: the mission may start
        self.v = msg.twist.twist.linear.x if math.isfinite(msg.twist.twist.linear.x) else 0.0
        self.w = msg.twist.twist.angular.z if math.isfinite(msg.twist.twist.angular.z) else 0.0

    def _on_initial_pose(self, msg: PoseWithCovarianceStamped):
        if self.pose is None:
            return
        try:
            target = pose_to_pose2d(msg.pose.pose)
        except ValueError as exc:
            self.get_logger().warning(f"ignoring initial pose: {exc}")
            return
        odom_pose = self.map_T_odom.inverse().compose(self.pose)
        self.map_T_odom = target.compose(odom_pose.inverse())
        self.pose = target

    def _on_scan(self, msg: LaserScan):
        now = self._now()
        self.scan_fresh.mark(stamp_seconds(msg.header.stamp) if msg.header.stamp.sec else now)
        self._scan = msg

    def _on_goal(self, msg: PoseStamped):
        goal_id = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
        if msg.header.frame_id not in ("", self.frames["map_frame"]):
            self._finish(FAILED, goal_id, "INVALID_FRAME",
                         f"goal frame '{msg.header.frame_id}' is not '{self.frames['map_frame']}'")
            return
        try:
            goal = pose_to_pose2d(msg.pose)
        except ValueError as exc:
            self._finish(FAILED, goal_id, "INVALID_POSE", str(exc))
            return
        if self.pose is None:
            self._finish(FAILED, goal_id, "NOT_LOCALIZED", "no odometry received yet")
            return
        t0 = time.perf_counter()
        try:
            path = self.planner.plan(self.pose, goal)
        except PlannerError as exc:
            self._finish(FAILED, goal_id, exc.code, str(exc))
            return
        self.get_logger().info(f"goal {goal_id}: path {path.length_m:.1f} m planned in "
                               f"{1e3 * (time.perf_counter() - t0):.0f} ms")
        self.goal_id = goal_id
        self.follower.set_path(path)
        self.state = ACTIVE
        self._progress_ref = (self._now(), path.length_m)
        self._publish_path(path)
        self._publish_status()

    def _on_cancel(self, request, response):
        if self.state == ACTIVE:
            self._finish(FAILED, self.goal_id, "CANCELED", "cancelled on request")
            response.success, response.message = True, "goal cancelled"
        else:
            response.success, response.message = False, "no active goal"
        return response

    # ------------------------------------------------------------------ control loop
    def _control(self):
        if self.pose is None:
            return
        now = self._now()
        self.pose_pub.publish(pose2d_to_msg(self.pose, self.frames["map_frame"], self.get_clock().now().to_msg()))
        self._tf.send(self.get_clock().now().to_msg(), self.frames["map_frame"], self.frames["odom_frame"],
                      self.map_T_odom)
        if self.state != ACTIVE:
            return
        dt = 1.0 / self.rate_hz
        self.follower.params.max_linear_mps = self.max_v
        limit = min(self.max_v, speed_limit_at(self.garage.zones, self.pose.x, self.pose.y, self.max_v))
        # Steer from where the base will be when this command lands, not from where the (late) odometry says it was.
        pose, v_now, w_now = self.sent.predict(self.pose, self.v, self.w, self.t_odom, now)
        cmd = self.follower.step(pose, v_now, w_now, dt, limit)
        v, w = cmd.v, cmd.w
        scan = self._scan
        pts = np.zeros((0, 2)) if scan is None else scan_points(
            np.asarray(scan.ranges), scan.angle_min, scan.angle_increment, self.laser_in_base, scan.range_min,
            scan.range_max)
        if not self.scan_fresh.fresh(now):
            self.blocked = "stale scan"  # never drive on old data
        elif np.any(hits := self.stop_zone.mask(pts, v, w)):
            near = pts[hits][np.argmin(np.hypot(*pts[hits].T))]
            self.blocked = f"stop zone occupied, nearest return at ({near[0]:.2f}, {near[1]:.2f}) m in base frame"
        else:
            self.blocked = ""
        if self.blocked:
            v, w = 0.0, 0.0
        self._publish_cmd(v, w)
        if cmd.state == "arrived":
            self._publish_cmd(0.0, 0.0)
            self._finish(SUCCEEDED, self.goal_id)
            return
        remaining = self.follower.distance_remaining(self.pose)
        t_ref, d_ref = self._progress_ref
        turning = cmd.state in ("rotating_to_path", "rotating_to_goal") and not self.blocked
        if d_ref - remaining > 0.1 or turning:
            self._progress_ref = (now, remaining)
        elif now - t_ref > self.progress_timeout:
            self._publish_cmd(0.0, 0.0)
            self._finish(FAILED, self.goal_id, "NO_PROGRESS",
                         f"no progress for {self.progress_timeout:.0f} s" + (f" ({self.blocked})" if self.blocked
                                                                              else ""))
            return
        if int(now * 2) != int((now - dt) * 2):
            self._publish_status(distance_remaining_m=remaining)

    # ------------------------------------------------------------------ outputs
    def _finish(self, state, goal_id, code="", reason=""):
        self.state = state
        self.goal_id = goal_id
        self._publish_status(code=code, reason=reason)
        if state == FAILED:
            self.get_logger().warning(f"goal {goal_id} failed: {code} {reason}")

    def _publish_status(self, code="", reason="", **values):
        self.status_pub.publish(task_status("navigation", self.state, self.goal_id, code, reason,
                                            blocked=self.blocked, localized=self.pose is not None, **values))

    def _publish_cmd(self, v, w):
        self.sent.record(self._now(), float(v), float(w))
        msg = Twist()
        msg.linear.x = float(v)
        msg.angular.z = float(w)
        self.cmd_pub.publish(msg)

    def _publish_path(self, path):
        msg = Path()
        msg.header.frame_id = self.frames["map_frame"]
        msg.header.stamp = self.get_clock().now().to_msg()
        for (x, y), yaw in zip(path.points, path.yaws):
            msg.poses.append(pose2d_to_msg(Pose2D(float(x), float(y), float(yaw)), msg.header.frame_id,
                                           msg.header.stamp))
        self.plan_pub.publish(msg)

    def _publish_map(self):
        g = self.grid
        msg = OccupancyGrid()
        msg.header.frame_id = self.frames["map_frame"]
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.info.resolution = float(g.resolution_m)
        msg.info.width, msg.info.height = int(g.width), int(g.height)
        msg.info.origin.position.x, msg.info.origin.position.y = (float(v) for v in g.origin_xy)
        msg.info.origin.orientation.w = 1.0
        msg.data = np.asarray(g.data, dtype=np.int8).ravel().tolist()
        self.map_pub.publish(msg)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def main(args=None):
    return run_node(NavigationNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
