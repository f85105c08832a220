"""Navigation node: plans on the garage's occupancy grid, follows the path with ``cmd_vel``, stops at the goal.

Goals arrive as ``geometry_msgs/PoseStamped`` on ``goal_pose`` (the topic RViz's "2D Goal Pose" tool uses) in the
map frame; ``header.stamp`` doubles as the goal id that ``navigate/status`` reports back. A new goal pre-empts the
active one, which is reported as CANCELED.

Localization: with ``use_localization`` (the default) the pose in ``map`` comes from the localization node's
``amcl_pose`` combined with this node's odometry history (as tf2 would combine ``map`` -> ``odom`` -> ``base_link``);
while ``localization/status`` is not ``localized`` or the pose is older than ``localization_timeout_s`` the base is
held and no goal is accepted. Without it, odometry is anchored at ``initial_pose`` (``initialpose`` re-anchors).

Behaviour around the unexpected (the algorithms live in ``core/navigation``):
- a local costmap from the scan (``local_costmap.py``) holds obstacles the map lacks. Static ones on the path trigger a
  re-plan around them; moving ones (people) slow the robot; the stop zone stops it and it waits;
- the speed is capped at ``near_obstacle_speed_mps`` within ``near_obstacle_distance_m`` of any scan return (parked
  cars, people) and within ``people_slow_radius_m`` of a moving obstacle;
- on the final approach the stop zone shrinks to the approach zone (``approach_zone_ahead_m`` /
  ``approach_zone_side_m``) at creep speed, as Nav2's collision monitor does with its approach polygon;
- blocked for ``blocked_replan_s``: back out the way it came (up to ``backout_distance_m``) when the way ahead is
  blocked, then re-plan around what blocks; after ``max_retries`` re-plans the goal fails with NO_PROGRESS and the
  reason, and the node accepts the next goal (e.g. home);
- a goal within 1.5 m of a listed car is held relative to that car: the car's true pose is fitted from the scan
  (``car_fit.py``) on the way and the goal moves with it.
"""
from __future__ import annotations

import functools
import math
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from std_srvs.srv import Trigger

from ..core.arm.urdf_model import UrdfError, UrdfModel
from ..core.garage.garage import GarageError, load_garage
from ..core.geometry import Pose2D, point_in_polygon, rect_polygon
from ..core.navigation.car_fit import fit_car, median_fit
from ..core.navigation.follower import APPROACH, ROTATING_TO_GOAL, FollowerParams, PathFollower
from ..core.navigation.latency import CommandHistory, advance
from ..core.navigation.local_costmap import LocalCostmap, path_blocked, stamp_obstacles
from ..core.navigation.localization import PoseHistory, static_structure_grid
from ..core.navigation.occupancy import distance_field
from ..core.navigation.occupancy import from_polygons, speed_limit_at
from ..core.navigation.lane_planner import LanePlanner
from ..core.navigation.planner import PlannerError, StartOccupied, path_from_polyline, trim_start
from ..core.navigation.safety import FreshnessMonitor, StopZone, footprint_clearance, scan_points
from ..core.paths import data_path
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

POSE_RATE_HZ = 10.0  # localized_pose rate (sim time): the robot's pose for the mission, the meter and monitors
FIT_MAX_TURN_RATE = 0.3  # rad/s: no car fit from a scan taken while turning faster
TARGET_CAR_RADIUS_M = 1.5  # a goal this close to a listed car's body is held relative to that car


def _locked(method):
    """Run a callback holding the node's lock: the executor's callbacks and the planner thread share the node's
    state."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


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
                                    "Without use_localization: robot pose [x, y, yaw] in the map at start-up; NaN "
                                    "means the garage's depot.", read_only=True)
        p["resolution_m"] = declare(self, "resolution_m", 0.05, "Occupancy grid cell size (m).", read_only=True,
                                    lo=0.01, hi=0.5)
        p["inflation_margin_m"] = declare(self, "inflation_margin_m", 0.25,
                                          "Clearance kept beyond the footprint in lanes when planning (m).",
                                          read_only=True, lo=0.0, hi=1.0)
        self.use_localization = declare(self, "use_localization", True,
                                         "Take the map pose from the localization node (amcl_pose); false anchors "
                                         "odometry at initial_pose.", read_only=True)
        self.loc_timeout = declare(self, "localization_timeout_s", 2.0,
                                   "Hold the base when the newest localization pose is older (s).", lo=0.1, hi=10.0)
        self.rate_hz = declare(self, "controller_rate_hz", 20.0, "Path-follower rate in (sim) time (Hz).",
                               read_only=True, lo=5.0, hi=100.0)
        self.max_v = declare(self, "max_linear_mps", 1.0, "Speed limit in lanes (m/s).", lo=0.05, hi=1.5)
        self.near_v = declare(self, "near_obstacle_speed_mps", 0.5,
                              "Speed limit near parked cars, people and other returns (m/s).", lo=0.05, hi=1.5)
        self.near_d = declare(self, "near_obstacle_distance_m", 1.0,
                              "A scan return this close to the footprint caps the speed at near_obstacle_speed_mps "
                              "(m).", lo=0.0, hi=5.0)
        self.people_radius = declare(self, "people_slow_radius_m", 2.5,
                                     "A moving obstacle this close to the robot centre caps the speed at "
                                     "near_obstacle_speed_mps (m).", lo=0.0, hi=10.0)
        self.scan_timeout = declare(self, "scan_timeout_s", 0.5, "Stop when the newest scan is older (s).",
                                    read_only=True, lo=0.05, hi=5.0)
        self.stop_ahead = declare(self, "stop_zone_ahead_m", 0.30,
                                  "Stop zone length beyond the footprint in the travel direction (m).",
                                  read_only=True, lo=0.0, hi=2.0)
        approach_ahead = declare(self, "approach_zone_ahead_m", 0.08,
                                 "Stop zone length beyond the footprint on the final approach (m).",
                                 read_only=True, lo=0.0, hi=1.0)
        approach_side = declare(self, "approach_zone_side_m", 0.02,
                                "Stop zone width beyond the footprint's sides on the final approach (m).",
                                read_only=True, lo=0.0, hi=0.5)
        self.progress_timeout = declare(self, "progress_timeout_s", 60.0,
                                        "Abort a goal after this long without 0.1 m of progress (s).", lo=1.0, hi=600.0)
        self.blocked_replan_s = declare(self, "blocked_replan_s", 4.0,
                                        "Blocked this long: back out if needed and re-plan around the obstacle (s).",
                                        lo=0.5, hi=120.0)
        self.max_retries = declare(self, "max_retries", 3, "Re-plans allowed per goal before it fails.",
                                   lo=0, hi=20)
        self.backout_m = declare(self, "backout_distance_m", 0.6,
                                 "How far to back out the way the robot came before re-planning (m).", lo=0.0, hi=3.0)
        self.car_fit_range = declare(self, "car_fit_range_m", 7.0,
                                     "Fit the target car from the scan within this distance of the goal (m).",
                                     lo=0.0, hi=20.0)
        backend = declare(self, "navigation_backend", "builtin",
                          "'builtin' plans and follows here; 'nav2' hands goals to Nav2's bt_navigator "
                          "(NavigateToPose) and leaves cmd_vel and map->odom to Nav2.", read_only=True)
        if backend not in ("builtin", "nav2"):
            raise ConfigurationError(f"navigation_backend must be 'builtin' or 'nav2', got '{backend}'")
        self.nav2 = None
        if backend == "nav2":
            from .nav2_client import make_client

            self.nav2 = make_client(self, self._nav2_report)  # ConfigurationError without nav2_msgs
        live_parameters(self, {"max_linear_mps": "max_v", "progress_timeout_s": "progress_timeout",
                               "near_obstacle_speed_mps": "near_v", "near_obstacle_distance_m": "near_d",
                               "people_slow_radius_m": "people_radius", "localization_timeout_s": "loc_timeout",
                               "blocked_replan_s": "blocked_replan_s", "max_retries": "max_retries",
                               "backout_distance_m": "backout_m", "car_fit_range_m": "car_fit_range"})

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

        self.grid = self._grid()
        self.radius = 0.5 * self.footprint[1] + p["inflation_margin_m"]
        self.planner = self._make_planner(self.grid)
        self.follower = PathFollower(FollowerParams(max_linear_mps=self.max_v))
        self.stop_zone = StopZone(self.footprint[0], self.footprint[1], ahead_m=self.stop_ahead)
        self.approach_zone = StopZone(self.footprint[0], self.footprint[1], ahead_m=approach_ahead,
                                      side_m=approach_side, turn_margin_m=approach_side)
        self.scan_fresh = FreshnessMonitor(self.scan_timeout)
        self.costmap = LocalCostmap(self.grid)
        self._structure = static_structure_grid(self.garage, p["resolution_m"])
        self._structure_field = distance_field(self._structure)  # to drop wall and pillar returns before a car fit
        self.sent = CommandHistory()
        self.odom_hist = PoseHistory()
        self.t_odom = 0.0
        self.odom_pose = None

        self.pose = None  # map frame
        self.localized = not self.use_localization
        self._loc_status = "initializing"
        self._loc_t = -math.inf
        self._loc_wall = -math.inf
        self._loc_odom = None  # the odometry pose at the newest localization pose's stamp
        self.v = self.w = 0.0
        self.goal_id = ""
        self.goal = None
        self.state = IDLE
        self.blocked = ""  # why the base is held: '', 'stale scan', 'stop zone occupied ...', 'localization lost'
        self._blocked_since = None
        self._retries = 0
        self._backout = None  # (start pose, reason) while backing out
        self._progress_ref = None
        self._scan = None  # the newest LaserScan
        self._scan_pts = np.zeros((0, 2))  # its returns in base_link
        self._target = None  # (vehicle, T_car_goal, estimated car pose) for a goal beside a listed car
        self._last_fit_t = -math.inf
        self._last_fit_wall = -math.inf
        self._last_fit_try = (-math.inf, -math.inf)  # (sim, wall) of the last fit attempt
        self._fits = []
        self._path_pts = None
        self._replan_request = None  # (include_moving, after_backout) for the planning tick
        self._goal_update = None  # a goal moved with the target car, to plan for on the planning tick
        self._last_static_replan = -math.inf
        self.loop_ms = []
        self._last_control_t = None
        self._pending_loc = None  # (stamp, map pose) from localization, waiting for the odometry of that stamp
        self.loop_wall_ms = []

        # Callbacks run on a single-threaded executor; planning (new goals, re-plans) runs on a planner thread so
        # it never delays the control loop and the scan's stop check. The planner itself runs without the lock.
        # (A multi-threaded executor with two callback groups was tried: its busy polling took most of a core.)
        self._lock = threading.RLock()
        self._pending_goal = None  # (goal id, goal) accepted by the callback, for the planner thread to plan
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.cmd_pub = self.create_publisher(Twist, "cmd_vel", RELIABLE_QOS)
        self.status_pub = StatusPublisher(self, "navigate/status")
        self.plan_pub = self.create_publisher(Path, "plan", LATCHED_QOS)
        self.map_pub = self.create_publisher(OccupancyGrid, "map", LATCHED_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, "localized_pose", RELIABLE_QOS)
        self.create_subscription(Odometry, "odom", self._on_odom, RELIABLE_QOS)
        self.create_subscription(LaserScan, "scan", self._on_scan, SENSOR_QOS)
        self.create_subscription(PoseStamped, "goal_pose", self._on_goal, RELIABLE_QOS)
        if self.use_localization:
            self.create_subscription(PoseWithCovarianceStamped, "amcl_pose", self._on_amcl_pose, RELIABLE_QOS)
            self.create_subscription(DiagnosticStatus, "localization/status", self._on_loc_status, LATCHED_QOS)
        else:
            self.create_subscription(PoseWithCovarianceStamped, "initialpose", self._on_initial_pose, RELIABLE_QOS)
        self.create_service(Trigger, "navigate/cancel", self._on_cancel)
        self.create_timer(1.0 / self.rate_hz, self._control)
        self._planner_thread = threading.Thread(target=self._planner_loop, name="planner", daemon=True)
        self._planner_thread.start()
        self._tf = PlanarTf(self)
        self._publish_map()
        self._publish_status()
        self.get_logger().info(f"navigation ready: garage '{self.garage.name}', footprint "
                               f"{self.footprint[0]:.2f} x {self.footprint[1]:.2f} m")

    # ------------------------------------------------------------------ planning
    def _grid(self, car_override=None, extra_pts=None):
        """The planning grid: the garage's obstacles and keep-out zones; ``car_override`` (vehicle id, pose, length,
        width) puts one listed car where the scan saw it; ``extra_pts`` (N, 2 map m) stamps unknown obstacles."""
        polys = []
        for ob in self.garage.static_obstacles():
            if car_override is not None and ob.kind == "vehicle" and ob.id == car_override[0]:
                polys.append(rect_polygon(car_override[1], car_override[2], car_override[3]))
            else:
                polys.append(ob.polygon)
        polys.extend(self.garage.keep_out_polygons())
        grid = from_polygons(self.garage.size_m, self.frames["resolution_m"], polys)
        if extra_pts is not None and len(extra_pts):
            grid = stamp_obstacles(grid, extra_pts, radius_m=0.1)
        return grid

    def _make_planner(self, grid):
        """The global planner on ``grid`` (one place to swap the planner class): the lane planner, which follows the
        garage's lanes and rules with the URDF footprint."""
        return LanePlanner(grid, self.garage, self.footprint, inflation_margin_m=self.frames["inflation_margin_m"])

    def _plan(self, start: Pose2D, goal: Pose2D, extra_pts=None):
        """Plan on the map, with the target car where it was seen and ``extra_pts`` as obstacles (re-plans build the
        planner on that grid). Raises PlannerError."""
        override = None
        if self._target is not None and self._target[3] is not None:
            v, fit = self._target[0], self._target[3]
            override = (v.id, fit.pose, fit.length_m, fit.width_m)
        if override is None and extra_pts is None:
            return self.planner.plan(start, goal)
        return self._make_planner(self._grid(override, extra_pts)).plan(start, goal)

    # ------------------------------------------------------------------ inputs
    @_locked
    def _on_odom(self, msg: Odometry):
        try:
            odom_pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as exc:
            self.get_logger().warning(f"ignoring odometry: {exc}", throttle_duration_sec=5.0)
            return
        first = self.pose is None
        self.odom_pose = odom_pose
        self.t_odom = stamp_seconds(msg.header.stamp)
        self.odom_hist.add(self.t_odom, odom_pose)
        self.pose = self.map_T_odom.compose(odom_pose)
        if first and not self.use_localization:
            self._publish_status()  # now localized: the mission may start
        self.v = msg.twist.twist.linear.x if math.isfinite(msg.twist.twist.linear.x) else 0.0
        self.w = msg.twist.twist.angular.z if math.isfinite(msg.twist.twist.angular.z) else 0.0
        if self._pending_loc is not None and self.t_odom >= self._pending_loc[0]:
            self._apply_loc(*self._pending_loc)

    @_locked
    def _on_amcl_pose(self, msg: PoseWithCovarianceStamped):
        try:
            map_pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as exc:
            self.get_logger().warning(f"ignoring localization pose: {exc}", throttle_duration_sec=5.0)
            return
        if msg.header.frame_id not in ("", self.frames["map_frame"]):
            self.get_logger().warning(f"ignoring localization pose in frame '{msg.header.frame_id}'",
                                      throttle_duration_sec=5.0)
            return
        t = stamp_seconds(msg.header.stamp)
        if t > self.t_odom and t - self.t_odom < 0.5:
            # The odometry of that moment has not arrived yet: map->odom computed from an older odometry pose would
            # be off by the motion since (degrees while turning). Apply it when that odometry arrives.
            self._pending_loc = (t, map_pose)
            return
        self._apply_loc(t, map_pose)

    def _apply_loc(self, t: float, map_pose: Pose2D):
        self._pending_loc = None
        odom_at = self.odom_hist.at(t)
        if odom_at is None:
            return
        self.map_T_odom = map_pose.compose(odom_at.inverse())
        self._loc_odom = odom_at
        if self.odom_pose is not None:
            self.pose = self.map_T_odom.compose(self.odom_pose)
        self._loc_t = self._now()
        self._loc_wall = time.monotonic()
        self._update_localized()

    @_locked
    def _on_loc_status(self, msg: DiagnosticStatus):
        self._loc_status = msg.message
        self._update_localized()

    def _update_localized(self):
        now = self._now()
        # The pose must be recent in sim time while the base moves; standing still, odometry does not change, so an
        # older pose still holds (at a high speed-up, e.g. while charging, localization cannot keep pace in sim time).
        # In steady time a pose older than 2 s means localization stopped.
        lo = self._loc_odom
        still = (abs(self.v) < 0.01 and abs(self.w) < 0.01) or (
            lo is not None and self.odom_pose is not None and self.odom_pose.distance_to(lo) < 0.01
            and abs(_wrap(self.odom_pose.yaw - lo.yaw)) < 0.01)  # odometry has not moved since that pose
        fresh = (now - self._loc_t <= self.loc_timeout or still) and time.monotonic() - self._loc_wall <= 2.0
        ok = self._loc_status == "localized" and self.pose is not None and fresh
        if ok != self.localized:
            self.localized = ok
            self.get_logger().info("localized" if ok else f"localization lost ({self._loc_status})")
            self._publish_status()

    @_locked
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

    @_locked
    def _on_scan(self, msg: LaserScan):
        now = self._now()
        stamp = stamp_seconds(msg.header.stamp)
        # A scan stamped zero has no time: it cannot prove it is fresh (a stalled clock makes it age the same way).
        if stamp > 0.0:
            self.scan_fresh.mark(stamp, time.monotonic())
        self._scan = msg
        if self.state != ACTIVE:
            return
        ranges = np.asarray(msg.ranges, dtype=float)
        if not (math.isfinite(msg.angle_min) and math.isfinite(msg.angle_increment)):
            return
        self._scan_pts = scan_points(ranges, msg.angle_min, msg.angle_increment, self.laser_in_base, msg.range_min,
                                     msg.range_max)
        if self.pose is None or not self.localized:
            return
        # React at once, not at the next control tick.
        zone = self._zone()
        moving = self._last_cmd != (0.0, 0.0)  # a still robot needs no new stop (and no cmd_vel stream)
        if moving and self._backout is None and np.any(zone.mask(self._scan_pts, *self._last_cmd)):
            self._publish_cmd(0.0, 0.0)
        # The returns were measured where the base stood at the scan's stamp: at 1 m/s a scan 0.1 s old placed at
        # the current pose would put every obstacle 0.1 m off.
        odom_at = self.odom_hist.at(stamp) if stamp > 0.0 else None
        if odom_at is not None and stamp > self.t_odom:  # newer than the odometry: carry it on at the last twist
            odom_at = advance(odom_at, self.v, self.w, min(stamp - self.t_odom, 0.3))
        scan_pose = self.pose if odom_at is None else self.map_T_odom.compose(odom_at)
        sensor = scan_pose.compose(self.laser_in_base)
        angles = msg.angle_min + msg.angle_increment * np.arange(len(ranges))
        self.costmap.update(sensor, angles, ranges, now)
        self._refine_target(now, scan_pose)

    def _on_goal(self, msg: PoseStamped):
        goal_id = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
        with self._lock:
            if msg.header.frame_id not in ("", self.frames["map_frame"]):
                self._finish(FAILED, goal_id, "INVALID_FRAME",
                             f"goal frame '{msg.header.frame_id}' is not '{self.frames['map_frame']}'",
                             keep_active=True)
                return
            try:
                goal = pose_to_pose2d(msg.pose)
            except ValueError as exc:
                self._finish(FAILED, goal_id, "INVALID_POSE", str(exc), keep_active=True)
                return
            if self.nav2 is not None:
                self.nav2.send(goal_id, msg)
                return
            if self.state == ACTIVE and goal_id != self.goal_id:
                self._publish_cmd(0.0, 0.0)
                self._finish(FAILED, self.goal_id, "CANCELED", f"pre-empted by goal {goal_id}")
            if self.pose is None or not self.localized:
                self._finish(FAILED, goal_id, "NOT_LOCALIZED",
                             "no odometry received yet" if self.pose is None else
                             f"localization is {self._loc_status}")
                return
            if self._pending_goal is not None:
                self._finish(FAILED, self._pending_goal[0], "CANCELED", f"pre-empted by goal {goal_id}",
                             keep_active=True)
            self._pending_goal = (goal_id, goal)
        self._wake.set()

    def _planner_loop(self):
        """The planner thread: plans each new goal as it arrives, and re-plans every 0.2 s when needed."""
        while not self._stopping.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            try:
                with self._lock:
                    pending, self._pending_goal = self._pending_goal, None
                if pending is not None:
                    self._plan_goal(*pending)
                self._planning_tick()
            except Exception as exc:  # noqa: BLE001 - a planning bug must fail the goal, not kill the planner
                with self._lock:
                    self._publish_cmd(0.0, 0.0)
                    if self.state == ACTIVE:
                        self._finish(FAILED, self.goal_id, "PLANNER_ERROR", f"{type(exc).__name__}: {exc}")
                self.get_logger().error(f"planner thread: {type(exc).__name__}: {exc}")

    def destroy_node(self):
        self._stopping.set()
        self._wake.set()
        return super().destroy_node()

    def _plan_goal(self, goal_id: str, goal: Pose2D):
        """Plan a goal the callback accepted (on the planner thread) and make it the active one."""
        with self._lock:
            if self.pose is None or not self.localized:
                self._finish(FAILED, goal_id, "NOT_LOCALIZED", f"localization is {self._loc_status}")
                return  # lost while queued (the callback already cancelled the goal this one pre-empts)
            self._target = self._target_car(goal)
            self._fits = []
            self._last_fit_t = self._last_fit_wall = -math.inf
            self._goal_update = None
            self._replan_request = None
            self.costmap.clear()
            start = self.pose
        t0 = time.perf_counter()
        try:
            path = self._plan(start, goal)
        except PlannerError as exc:
            with self._lock:
                self._finish(FAILED, goal_id, exc.code, str(exc))
            return
        with self._lock:
            if self._pending_goal is not None:  # pre-empted while planning: the newer goal is planned next
                self._finish(FAILED, goal_id, "CANCELED", f"pre-empted by goal {self._pending_goal[0]}",
                             keep_active=True)
                return
            self.get_logger().info(f"goal {goal_id}: path {path.length_m:.1f} m planned in "
                                   f"{1e3 * (time.perf_counter() - t0):.0f} ms"
                                   + (f", held relative to {self._target[0].id}" if self._target else ""))
            self.goal_id = goal_id
            self.goal = goal
            self._retries = 0
            self._backout = None
            self._blocked_since = None
            self._start_path(path)
            self.state = ACTIVE
            self._publish_status()

    def _start_path(self, path):
        self._path_pts = np.asarray(path.points, float)
        self.follower.set_path(path)
        self._progress_ref = (self._now(), path.length_m)
        self._publish_path(path)

    def _target_car(self, goal: Pose2D):
        """(vehicle, goal in the car's frame, car pose, last fit) for the listed car nearest a goal within
        TARGET_CAR_RADIUS_M, else None."""
        best, best_d = None, TARGET_CAR_RADIUS_M
        for v in self.garage.vehicles:
            poly = self.garage.vehicle_polygon(v)
            if point_in_polygon(goal.xy, poly):
                return None  # a goal inside a car is the planner's to refuse
            d = _distance_to_polygon(goal.xy, poly)
            if d < best_d:
                best, best_d = v, d
        if best is None:
            return None
        car = self.garage.vehicle_pose(best)
        return best, car.inverse().compose(goal), car, None

    def _refine_target(self, now: float, scan_pose: Pose2D):
        """Fit the target car from the scan, fuse the fits (median of the recent ones) and move the goal with the
        car (re-planning at most once a second of sim and of wall time, and only for a move of 10 cm or 2 deg; 3 cm or
        1 deg on the final approach)."""
        if self._target is None or self.goal is None or self._backout is not None:
            return
        d_goal = self.pose.distance_to(self.goal)
        if not (0.25 < d_goal <= self.car_fit_range):
            return  # the last centimetres are the follower's: a goal that moves there would never be reached
        # A fit costs ~10 ms of CPU: one every 0.3 s of sim (and 0.1 s of wall) time is plenty for a parked car;
        # one per scan would take most of a core at a high sim speed-up and starve the control loop. Nor is one
        # taken while turning fast, where a scan's small timing error is a large error in where its points lie.
        wall = time.monotonic()
        if (now - self._last_fit_try[0] < 0.3 or wall - self._last_fit_try[1] < 0.1
                or abs(self.w) > FIT_MAX_TURN_RATE):
            return
        self._last_fit_try = (now, wall)
        vehicle, goal_in_car, car = self._target[:3]
        pts_map = scan_pose.transform_points(self._scan_pts)
        pts_map = pts_map[self._off_structure(pts_map)]
        fit = fit_car(pts_map, car, vehicle.length_m, vehicle.width_m, search_margin_m=0.3, fit_size=True)
        if fit is None or fit.pose.distance_to(self.garage.vehicle_pose(vehicle)) > 1.0:
            return  # no clear view, or not the car we expect there
        self._fits = (self._fits + [fit])[-9:]
        fused = median_fit(self._fits)
        self._target = (vehicle, goal_in_car, fused.pose, fused)
        if now - self._last_fit_t < 1.0 or wall - self._last_fit_wall < 1.0:
            return
        goal = fused.carry(goal_in_car, vehicle.length_m, vehicle.width_m)
        near = d_goal <= self.follower.params.approach_distance_m + 0.3
        # Near the goal a move re-lays the straight final approach from where the robot is (3 cm or 1 deg: a real
        # move, not fit noise). Further out a move re-plans the whole way, which only a move that changes the route
        # warrants; the goal keeps being refined and the approach takes up the rest.
        tol_m, tol_rad = (0.03, math.radians(1.0)) if near else (0.10, math.radians(2.0))
        if goal.distance_to(self.goal) < tol_m and abs(_wrap(goal.yaw - self.goal.yaw)) < tol_rad:
            return
        self._last_fit_t, self._last_fit_wall = now, wall
        if not near:
            self._goal_update = goal  # planned on the planning tick; the current path stays in use meanwhile
            return
        # On the final approach the way is straight: no re-plan, as a docking controller tracks its target.
        path = path_from_polyline(np.array([self.pose.xy, goal.xy]), goal.yaw)
        off = fused.pose.distance_to(self.garage.vehicle_pose(vehicle))
        self.get_logger().info(f"goal {self.goal_id}: {vehicle.id} seen {off:.3f} m from "
                               f"the file ({len(self._fits)} fits, rms {fused.rms_m:.3f} m, body "
                               f"{fused.length_m:.2f} x {fused.width_m:.2f} m); goal moved "
                               f"{goal.distance_to(self.goal):.3f} m")
        self.goal = goal
        self._start_path(path)

    def _off_structure(self, pts_map: np.ndarray) -> np.ndarray:
        """Which map points lie more than 0.15 m from every wall and pillar."""
        g = self._structure
        col = np.floor((pts_map[:, 0] - g.origin_xy[0]) / g.resolution_m).astype(np.int64)
        row = np.floor((pts_map[:, 1] - g.origin_xy[1]) / g.resolution_m).astype(np.int64)
        ok = (col >= 0) & (col < g.width) & (row >= 0) & (row < g.height)
        out = np.zeros(len(pts_map), dtype=bool)
        out[ok] = self._structure_field[row[ok], col[ok]] > 0.15
        return out

    def _nav2_report(self, state, goal_id, code="", reason="", **values):
        with self._lock:
            self.state, self.goal_id = state, goal_id
            self._publish_status(code=code, reason=reason, **values)

    @_locked
    def _on_cancel(self, request, response):
        if self.nav2 is not None:
            response.success = self.nav2.cancel()
            response.message = "cancel sent to Nav2" if response.success else "no active goal"
            return response
        if self.state == ACTIVE:
            self._publish_cmd(0.0, 0.0)
            self._finish(FAILED, self.goal_id, "CANCELED", "cancelled on request")
            response.success, response.message = True, "goal cancelled"
        else:
            response.success, response.message = False, "no active goal"
        return response

    # ------------------------------------------------------------------ control loop
    _last_cmd = (0.0, 0.0)

    def _zone(self) -> StopZone:
        return self.approach_zone if self.follower.state in (APPROACH, ROTATING_TO_GOAL) else self.stop_zone

    def _static_obstacles(self, now: float):
        pts = self.costmap.static_points(now)
        return pts if len(pts) else None

    @_locked
    def _control(self):
        # The loop's cost is its thread's CPU time: wall time would also count the other callback group holding
        # the GIL and other processes holding the cores (reported apart as controller_loop_wall_p99_ms).
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            self._control_step()
        finally:
            self.loop_ms.append(1e3 * (time.thread_time() - c0))
            self.loop_wall_ms.append(1e3 * (time.perf_counter() - w0))
            del self.loop_ms[:-2000]
            del self.loop_wall_ms[:-2000]

    def _control_step(self):
        if self.pose is None or self.nav2 is not None:  # with Nav2, AMCL and the controller own map->odom, cmd_vel
            return
        now = self._now()
        # The follower's acceleration limits act over the time since the last command: a loop running late (a busy
        # CPU) must still brake and turn at the designed rates, not at a fraction of them.
        nominal = 1.0 / self.rate_hz
        last, self._last_control_t = self._last_control_t, now
        dt = nominal if last is None else min(max(now - last, 0.5 * nominal), 5.0 * nominal)
        if self.use_localization:
            self._update_localized()
        stamp = self.get_clock().now().to_msg()
        if int(now * POSE_RATE_HZ) != int((now - dt) * POSE_RATE_HZ):
            self.pose_pub.publish(pose2d_to_msg(self.pose, self.frames["map_frame"], stamp))
        if not self.use_localization:
            self._tf.send(stamp, self.frames["map_frame"], self.frames["odom_frame"], self.map_T_odom)
        if self.state != ACTIVE:
            return
        pts = self._scan_pts if self._scan is not None else np.zeros((0, 2))
        if not self.localized:
            self._hold(now, "localization lost: waiting for it to recover")
            return
        if not self.scan_fresh.fresh(now, time.monotonic()):
            if self.blocked != "stale scan":
                self.get_logger().warning(f"newest scan is {self.scan_fresh.age(now):.2f} s old at {now:.2f} s")
            self._hold(now, "stale scan")  # never drive on old data
            return
        if self._backout is not None:
            self._step_backout(now, pts)
            return
        if self._replan_request is not None:
            self._publish_cmd(0.0, 0.0)  # a re-plan is on its way
            return
        self.follower.params.max_linear_mps = self.max_v
        limit = self._speed_limit(now, pts)
        # Steer from where the base will be when this command lands, not from where the (late) odometry says it was.
        pose, _, _ = self.sent.predict(self.pose, self.v, self.w, self.t_odom, now)
        # The acceleration limits run from the last command sent (open loop, as Nav2's velocity smoother does by
        # default): anchored on a measured or predicted velocity, which lags the commands, a turn that should end
        # would keep being commanded at nearly the old rate.
        cmd = self.follower.step(pose, self._last_cmd[0], self._last_cmd[1], dt, limit)
        v, w = cmd.v, cmd.w
        zone = self._zone()
        hits = zone.mask(pts, v, w)
        if np.any(hits):
            near = pts[hits][np.argmin(np.hypot(*pts[hits].T))]
            self._hold(now, f"stop zone occupied, nearest return at ({near[0]:.2f}, {near[1]:.2f}) m in base frame",
                       ahead=near[0] > 0.0)
            return
        self.blocked, self._blocked_since = "", None
        self._publish_cmd(v, w)
        if cmd.state == "arrived":
            self._publish_cmd(0.0, 0.0)
            self._finish(SUCCEEDED, self.goal_id)
            return
        remaining = self.follower.distance_remaining(self.pose)
        t_ref, d_ref = self._progress_ref
        turning = cmd.state in ("rotating_to_path", "rotating_to_goal")
        if d_ref - remaining > 0.1 or turning:
            self._progress_ref = (now, remaining)
        elif now - t_ref > self.progress_timeout:
            self._fail_no_progress(f"no progress for {self.progress_timeout:.0f} s")
            return
        if int(now * 2) != int((now - dt) * 2):
            self._publish_status(distance_remaining_m=remaining)

    def _speed_limit(self, now: float, pts: np.ndarray) -> float:
        """The lane limit, regulated down towards ``near_obstacle_speed_mps`` so that it is reached (braking at
        the follower's planned deceleration) by the time a scan return is ``near_obstacle_distance_m`` from the
        footprint, or a moving obstacle ``people_slow_radius_m`` from the robot."""
        limit = min(self.max_v, speed_limit_at(self.garage.zones, self.pose.x, self.pose.y, self.max_v))
        decel = 0.8 * self.follower.params.max_linear_accel

        def regulated(gap_m: float) -> float:
            return math.sqrt(self.near_v ** 2 + 2.0 * decel * max(0.0, gap_m))

        if len(pts):
            limit = min(limit, regulated(footprint_clearance(pts, self.footprint[0], self.footprint[1])
                                         - self.near_d))
        moving = self.costmap.moving_points(now)
        if len(moving):
            d = float(np.min(np.hypot(moving[:, 0] - self.pose.x, moving[:, 1] - self.pose.y)))
            limit = min(limit, regulated(d - self.people_radius))
        return limit

    def _hold(self, now: float, reason: str, ahead: bool = True):
        """Stop the base for ``reason``; blocked too long: back out or re-plan (bounded), then give up."""
        self._publish_cmd(0.0, 0.0)
        if self.blocked != reason and not (self.blocked.startswith("stop zone") and reason.startswith("stop zone")):
            self.get_logger().info(f"goal {self.goal_id}: holding ({reason})")
        self.blocked = reason
        if self._blocked_since is None:
            self._blocked_since = now
            self._publish_status()
        if int(now * 2) != int((now - 1.0 / self.rate_hz) * 2):
            self._publish_status()
        if not reason.startswith("stop zone"):
            if now - self._blocked_since > self.progress_timeout:
                code = "NOT_LOCALIZED" if reason.startswith("localization") else "NO_PROGRESS"
                self._publish_cmd(0.0, 0.0)
                self._finish(FAILED, self.goal_id, code, f"{reason} for {self.progress_timeout:.0f} s")
            return
        if now - self._blocked_since < self.blocked_replan_s:
            return
        if self._retries >= self.max_retries:
            self._fail_no_progress(f"blocked ({reason}) after {self._retries} re-plans")
            return
        self._retries += 1
        self._blocked_since = None
        if ahead and self.backout_m > 0.0:
            self.get_logger().info(f"goal {self.goal_id}: blocked, backing out (retry {self._retries})")
            self._backout = (self.pose, reason)
        else:
            self._replan_request = (True, False)

    def _step_backout(self, now: float, pts: np.ndarray):
        start, _ = self._backout
        v = -self.follower.params.approach_speed_mps
        moved = self.pose.distance_to(start)
        if moved >= self.backout_m or np.any(self.stop_zone.mask(pts, v, 0.0)):
            self._publish_cmd(0.0, 0.0)
            self._backout = None
            self._replan_request = (True, True)
            return
        self._publish_cmd(v, 0.0)
        self.blocked = "backing out"

    def _planning_tick(self):
        """Planning work outside the control loop, the planner running without the lock: a re-plan after being
        blocked (counted against ``max_retries``), a goal moved with the target car, or a routine re-plan around
        static unknown obstacles on the path (at most every 2 s, not counted)."""
        with self._lock:
            if self.state != ACTIVE or self.pose is None or not self.localized or self._backout is not None:
                return
            now = self._now()
            static = self.costmap.static_points(now)
            goal = self.goal
            if self._replan_request is not None:
                include_moving, after_backout = self._replan_request
                self._replan_request = None
                kind = "blocked"
                extra = np.vstack([static, self.costmap.moving_points(now)]) if include_moving else static
            elif self._goal_update is not None:
                kind, extra, after_backout = "goal", static, False
                goal, self._goal_update = self._goal_update, None
            elif now - self._last_static_replan > 2.0 and self._static_on_path(static):
                kind, extra, after_backout = "static", static, False
                self._last_static_replan = now
            else:
                return
            goal_id, start = self.goal_id, self.pose
        if len(extra) and after_backout:
            # Backed out and still close to what was seen: what lies right beside the robot is the stop zone's
            # business; stamped into the grid it would only make the start look occupied.
            extra = extra[np.hypot(extra[:, 0] - start.x, extra[:, 1] - start.y) >= self.radius + 0.2]
        extra = extra if len(extra) else None
        try:
            path = self._plan(start, goal, extra)
        except PlannerError as exc:
            with self._lock:
                if self.state != ACTIVE or self.goal_id != goal_id:
                    return
                if kind == "blocked" and isinstance(exc, StartOccupied) and not after_backout and self.backout_m > 0:
                    self.get_logger().info(f"goal {goal_id}: too close to the obstacle to plan; backing out")
                    self._backout = (self.pose, "too close to plan")
                elif kind == "blocked":
                    self._replan_failed(exc)
                else:
                    self.get_logger().warning(f"goal {goal_id}: {kind} re-plan failed ({exc.code} {exc}); "
                                              "keeping the current path")
            return
        with self._lock:
            if self.state != ACTIVE or self.goal_id != goal_id:
                return
            moved = self.pose.distance_to(start)
            if moved > 0.05:
                path = trim_start(path, self.pose.xy, moved + 1.0)  # planned from where the robot was
            self.goal = goal
            self._start_path(path)
            self.get_logger().info(f"goal {goal_id}: re-planned ({kind}) around "
                                   f"{0 if extra is None else len(extra)} obstacle cells ({path.length_m:.1f} m, "
                                   f"retry {self._retries})")

    def _replan_failed(self, exc: PlannerError):
        self.get_logger().warning(f"goal {self.goal_id}: re-plan {self._retries} failed: {exc.code} {exc}")
        if self._retries >= self.max_retries:
            self._fail_no_progress(f"no way around the obstacle: {exc}")
        else:
            self._retries += 1  # the next try comes when the robot has been blocked for blocked_replan_s again

    def _static_on_path(self, static: np.ndarray) -> bool:
        """Whether a static unknown obstacle lies within the robot's radius of the next 8 m of the path."""
        if not len(static) or self.follower.state in (APPROACH, ROTATING_TO_GOAL) or self._path_pts is None:
            return False
        pts = self._path_pts
        ahead = pts[np.hypot(pts[:, 0] - self.pose.x, pts[:, 1] - self.pose.y) < 8.0]
        return path_blocked(ahead, static, self.radius)

    def _fail_no_progress(self, reason: str):
        self._publish_cmd(0.0, 0.0)
        self._backout = None
        self._finish(FAILED, self.goal_id, "NO_PROGRESS", reason)

    # ------------------------------------------------------------------ outputs
    def _finish(self, state, goal_id, code="", reason="", keep_active=False):
        """Report ``goal_id`` ended; ``keep_active`` reports a refused goal without touching the active one."""
        if keep_active and self.state == ACTIVE:
            self.status_pub.publish(task_status("navigation", state, goal_id, code, reason, blocked="",
                                                localized=self.localized))
            self.get_logger().warning(f"goal {goal_id} refused: {code} {reason}")
            return
        self.state = state
        self.goal_id = goal_id
        self.blocked, self._blocked_since, self._backout = "", None, None
        self._replan_request = self._goal_update = None
        self._publish_status(code=code, reason=reason)
        if state == FAILED:
            self.get_logger().warning(f"goal {goal_id} failed: {code} {reason}")

    def _publish_status(self, code="", reason="", **values):
        if self.loop_ms:
            values["controller_loop_p99_ms"] = float(np.percentile(self.loop_ms, 99))
            values["controller_loop_wall_p99_ms"] = float(np.percentile(self.loop_wall_ms, 99))
        self.status_pub.publish(task_status("navigation", self.state, self.goal_id, code, reason,
                                            blocked=self.blocked, localized=self.localized and self.pose is not None,
                                            retries=self._retries, **values))

    def _publish_cmd(self, v, w):
        self.sent.record(self._now(), float(v), float(w))
        self._last_cmd = (float(v), float(w))
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


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def _distance_to_polygon(p: np.ndarray, poly: np.ndarray) -> float:
    """Distance (m) from point ``p`` to the boundary of polygon ``poly`` (N, 2)."""
    a = np.asarray(poly, float)
    b = np.roll(a, -1, axis=0)
    d = b - a
    t = np.clip(np.einsum("ij,ij->i", p - a, d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-12), 0.0, 1.0)
    return float(np.min(np.hypot(*(p - a - t[:, None] * d).T)))


def main(args=None):
    return run_node(NavigationNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
