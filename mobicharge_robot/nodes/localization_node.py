"""Localization node (the stack's amcl): scan against the garage's walls and pillars, fused with wheel odometry.

Subscribes ``scan`` (sensor-data QoS), ``odom`` and ``initialpose``; publishes ``amcl_pose``
(geometry_msgs/PoseWithCovarianceStamped, map frame, stamped with the scan's time), the latched
``localization/status`` (diagnostic_msgs/DiagnosticStatus: message initializing / localized / lost, values
``inlier_fraction``, ``inliers``, ``sigma_xy_m``, ``sigma_yaw_rad``) and, where tf2 is installed, ``map`` -> ``odom``
as Nav2's localizers do. The algorithm lives in ``core/navigation/localization.py``.
"""
from __future__ import annotations

import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import LaserScan

from ..core.arm.urdf_model import UrdfError, UrdfModel
from ..core.garage.garage import GarageError, load_garage
from ..core.geometry import Pose2D
from ..core.navigation.localization import (LOCALIZED, LOST, LocalizationError, LocalizerParams, PoseHistory,
                                            ScanLocalizer,
                                            static_structure_grid)
from ..core.navigation.safety import scan_points
from ..core.paths import data_path
from .ros_common import (
    RELIABLE_QOS,
    SENSOR_QOS,
    ConfigurationError,
    PlanarTf,
    StatusPublisher,
    declare,
    pose_to_pose2d,
    run_node,
    stamp_seconds,
    task_status,
)


ODOM_WAIT_S = 0.5  # a scan newer than the odometry by more than this is fused with the newest odometry


class LocalizationNode(Node):
    def __init__(self):
        super().__init__("localization")
        garage_file = declare(self, "garage_file", data_path("config", "garages", "default.yaml"),
                              "Garage description YAML; its walls and pillars are the map.", read_only=True)
        urdf_file = declare(self, "urdf_file", data_path("urdf", "mobicharge.urdf.xacro"),
                            "Robot description; the laser's mounting pose is read from it.", read_only=True)
        self.map_frame = declare(self, "map_frame", "map", "Global frame id.", read_only=True)
        self.odom_frame = declare(self, "odom_frame", "odom", "Odometry frame id.", read_only=True)
        self.base_frame = declare(self, "base_frame", "base_link", "Robot base frame id.", read_only=True)
        init = declare(self, "initial_pose", [float("nan")] * 3,
                       "Robot pose [x, y, yaw] in the map at start-up; NaN means the garage's depot.", read_only=True)
        self.init_xy = declare(self, "initial_sigma_xy_m", 0.5,
                               "Uncertainty of the start-up pose: particles spread within +-this (m).",
                               read_only=True, lo=0.0, hi=5.0)
        self.init_yaw = declare(self, "initial_sigma_yaw_rad", 0.17453292519943295,
                                "Uncertainty of the start-up yaw: particles spread within +-this (rad).",
                                read_only=True, lo=0.0, hi=math.pi)
        res = declare(self, "map_resolution_m", 0.025, "Cell size of the localization distance field (m).",
                      read_only=True, lo=0.01, hi=0.2)
        n = declare(self, "particles", 500, "Number of particles.", read_only=True, lo=50, hi=20000)
        try:
            self.garage = load_garage(garage_file)
            urdf = UrdfModel.from_xacro(urdf_file)
        except (GarageError, UrdfError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        laser = urdf.transform({}, "laser")
        self.laser_in_base = Pose2D(laser[0, 3], laser[1, 3], math.atan2(laser[1, 0], laser[0, 0]))
        try:
            start = (self.garage.depot.pose if any(math.isnan(v) for v in init)
                     else Pose2D(*[float(v) for v in init]))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"initial_pose must be [x, y, yaw]: {exc}") from exc
        params = LocalizerParams(n_particles=int(n))
        self.localizer = ScanLocalizer(static_structure_grid(self.garage, res), params, seed=0)
        self.localizer.reset(start, self.init_xy, self.init_yaw)
        self.odom = PoseHistory()
        self._status_key = None
        self._last_scan_t = 0.0
        self._pending_scan = None  # a scan waiting for the odometry of its moment
        self._last_odom = None
        self._last_pub_wall = -1e9
        self._last_status_t = -1.0
        self.timing_ms = []

        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, "amcl_pose", RELIABLE_QOS)
        self.status_pub = StatusPublisher(self, "localization/status")
        self.create_subscription(Odometry, "odom", self._on_odom, RELIABLE_QOS)
        self.create_subscription(LaserScan, "scan", self._on_scan, SENSOR_QOS)
        self.create_subscription(PoseWithCovarianceStamped, "initialpose", self._on_initial_pose, RELIABLE_QOS)
        self._tf = PlanarTf(self)
        self._publish_status(force=True)
        self.get_logger().info(f"localization ready: start ({start.x:.2f}, {start.y:.2f}, {start.yaw:.2f}) "
                               f"+-{self.init_xy:.2f} m +-{math.degrees(self.init_yaw):.0f} deg")

    def _on_odom(self, msg: Odometry):
        try:
            pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as exc:
            self.get_logger().warning(f"ignoring odometry: {exc}", throttle_duration_sec=5.0)
            return
        t = stamp_seconds(msg.header.stamp)
        self.odom.add(t, pose)
        pending = self._pending_scan
        if pending is not None and t >= stamp_seconds(pending.header.stamp):
            self._pending_scan = None
            self._process_scan(pending)

    def _on_initial_pose(self, msg: PoseWithCovarianceStamped):
        try:
            pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as exc:
            self.get_logger().warning(f"ignoring initial pose: {exc}")
            return
        cov = np.asarray(msg.pose.covariance, float)
        sxy = math.sqrt(max(cov[0], cov[7])) if np.all(np.isfinite(cov)) and cov[0] > 0 else 0.25
        syaw = math.sqrt(cov[35]) if np.all(np.isfinite(cov)) and cov[35] > 0 else math.radians(5.0)
        self.localizer.reset(pose, sxy, syaw, uniform=False)
        self.get_logger().info(f"initial pose set to ({pose.x:.2f}, {pose.y:.2f}, {pose.yaw:.2f})")
        self._publish_status(force=True)

    def _on_scan(self, msg: LaserScan):
        t_scan = stamp_seconds(msg.header.stamp)
        if t_scan <= 0.0 or self._last_scan_t - 5.0 < t_scan <= self._last_scan_t:
            # Unstamped, repeated or a little older: it cannot be placed in time (a big jump back is a restart).
            self.get_logger().warning("ignoring a scan whose stamp is zero or does not advance",
                                      throttle_duration_sec=5.0)
            return
        newest = self.odom.newest_t()
        if newest is None:
            return  # no odometry yet: nothing to fuse with
        if newest < t_scan and t_scan - newest < ODOM_WAIT_S:
            # The odometry of the scan's moment has not arrived yet: as AMCL's message filter, wait for it (the
            # newest such scan), for a pose taken a little earlier would be off by the motion since (at 1 rad/s,
            # 0.05 s is 3 degrees), and the filter would take that error for the map's.
            self._pending_scan = msg
            return
        self._pending_scan = None
        self._process_scan(msg)

    def _process_scan(self, msg: LaserScan):
        t_scan = stamp_seconds(msg.header.stamp)
        odom = self.odom.at(t_scan)
        wall = time.monotonic()
        still = (self._last_odom is not None and odom.distance_to(self._last_odom) < 1e-3
                 and abs(odom.yaw - self._last_odom.yaw) < 1e-3)
        if still and self.localizer.status == LOCALIZED and wall - self._last_pub_wall < 0.2:
            # Standing still nothing changes: under a high sim speed-up (charging) every scan would cost a core.
            return
        self._last_scan_t = t_scan
        self._last_odom = odom
        self._last_pub_wall = wall
        ranges = np.asarray(msg.ranges, dtype=float)
        if not (math.isfinite(msg.angle_min) and math.isfinite(msg.angle_increment)) or len(ranges) == 0:
            self.get_logger().warning("ignoring a malformed scan", throttle_duration_sec=5.0)
            return
        pts = scan_points(ranges, msg.angle_min, msg.angle_increment, self.laser_in_base, msg.range_min,
                          msg.range_max)
        t0 = time.perf_counter()
        try:
            self.localizer.predict(odom)
            est = self.localizer.update(pts, sensor_xy=(self.laser_in_base.x, self.laser_in_base.y))
        except LocalizationError as exc:
            self.get_logger().warning(f"localization update skipped: {exc}", throttle_duration_sec=5.0)
            return
        self.timing_ms.append(1e3 * (time.perf_counter() - t0))
        del self.timing_ms[:-500]
        out = PoseWithCovarianceStamped()
        out.header.frame_id = self.map_frame
        out.header.stamp = msg.header.stamp
        p = est.pose
        out.pose.pose.position.x, out.pose.pose.position.y = p.x, p.y
        out.pose.pose.orientation.z, out.pose.pose.orientation.w = math.sin(0.5 * p.yaw), math.cos(0.5 * p.yaw)
        cov = np.zeros(36)
        c = est.covariance
        for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
            cov[6 * i + j] = c[i, j]
        cov[5], cov[11], cov[30], cov[31], cov[35] = c[0, 2], c[1, 2], c[2, 0], c[2, 1], c[2, 2]
        out.pose.covariance = cov.tolist()
        if est.status != LOST:
            self.pose_pub.publish(out)
            self._tf.send(out.header.stamp, self.map_frame, self.odom_frame, p.compose(odom.inverse()))
        self._publish_status(est)

    def _publish_status(self, est=None, force: bool = False):
        status = self.localizer.status
        now = self.get_clock().now().nanoseconds * 1e-9
        if not force and status == self._status_key and now - self._last_status_t < 1.0:
            return
        if status != self._status_key and est is not None:
            self.get_logger().info(f"{status}: pose ({est.pose.x:.2f}, {est.pose.y:.2f}, {est.pose.yaw:.2f}), "
                                   f"{est.inliers} inliers ({est.inlier_fraction:.2f}), "
                                   f"{est.judged} beams judged, {est.contradicting} contradict the map")
        self._status_key, self._last_status_t = status, now
        values = {}
        if est is not None:
            c = est.covariance
            values = dict(inlier_fraction=est.inlier_fraction, inliers=est.inliers,
                          sigma_xy_m=math.sqrt(max(c[0, 0], c[1, 1], 0.0)), sigma_yaw_rad=math.sqrt(max(c[2, 2], 0.0)))
        if self.timing_ms:
            values["update_p99_ms"] = float(np.percentile(self.timing_ms, 99))
        msg = task_status("localization", status, "", "LOST" if status == LOST else "",
                          "the scan no longer fits the map" if status == LOST else "", **values)
        if status == LOST:
            msg.level = DiagnosticStatus.ERROR
        self.status_pub.publish(msg)


def main(args=None):
    return run_node(LocalizationNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
