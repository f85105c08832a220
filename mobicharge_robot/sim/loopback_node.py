"""The loopback simulator node: stands in for the robot's hardware (or Gazebo) at the hardware boundary.

Inputs (what a real robot's drivers accept): ``cmd_vel``, ``arm_controller/joint_trajectory``, ``connector/release``,
``dc_output/enable``, ``dc_output/current_request``, ``pilot/duty``.
Outputs (what they publish): ``/clock``, ``odom``, ``scan``, ``camera/image_raw`` + ``camera/camera_info`` (rendered
only while someone subscribes), ``joint_states``, ``wrist_wrench``, ``connector/latched``, ``bms/state``,
``dc_output/measurement``, ``dc_output/isolation_ok``, ``pilot/voltage``.
Ground truth for tests and benchmarks only: ``sim/truth/robot_pose`` and ``sim/truth/status``.

Physics runs in its own thread at a fixed sim step; the speed-up over real time is chosen by phase (driving, arm
work, charging) and capped by what the CPU manages.
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist, WrenchStamped
from nav_msgs.msg import Odometry
from rclpy._rclpy_pybind11 import RCLError
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, CameraInfo, Image, JointState, LaserScan
from std_msgs.msg import Bool, Float64, Header
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from ..core.camera import default_wrist_camera
from ..core.garage import GarageError, load_garage
from ..core.geometry import Pose2D
from ..core.inlets import load_inlets
from ..core.insertion import STOWED_POSITIONS
from ..core.pack import PackModel, PackParams
from ..core.paths import data_path
from ..core.urdf_model import UrdfError, UrdfModel
from ..nodes.image_conv import rgb_to_image
from ..nodes.ros_common import (
    LATCHED_QOS,
    METER_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    ConfigurationError,
    PlanarTf,
    declare,
    live_parameters,
    pose2d_to_msg,
    run_node,
)
from .car import SimCar
from .contact import InletContact, tip_in_inlet
from .dc_stage import DcOutputStage
from .renderer import CarAppearance, render
from .world import CollisionWorld, DiffDriveBase, Lidar, polygon_edges


class _Clock:
    """Sim time in integer nanoseconds, so long runs do not accumulate float error."""

    def __init__(self):
        self.ns = 0

    @property
    def s(self) -> float:
        return self.ns * 1e-9

    def msg(self):
        from builtin_interfaces.msg import Time

        return Time(sec=self.ns // 1_000_000_000, nanosec=self.ns % 1_000_000_000)


class LoopbackSim(Node):
    def __init__(self):
        super().__init__("loopback_sim")
        p = {}
        p["garage_file"] = declare(self, "garage_file", data_path("config", "garages", "default.yaml"),
                                   "Garage description the world is built from.", read_only=True)
        p["urdf_file"] = declare(self, "urdf_file", data_path("urdf", "mobicharge.urdf.xacro"),
                                 "Robot description.", read_only=True)
        self.seed = declare(self, "seed", 1, "Random seed for sensor noise and appearance.", read_only=True)
        self.rtf_drive = declare(self, "rtf_drive", 10.0, "Speed-up over real time while driving.", lo=0.1, hi=1000.0)
        self.rtf_arm = declare(self, "rtf_arm", 10.0, "Speed-up while the arm or camera works.", lo=0.1, hi=1000.0)
        self.rtf_camera = declare(self, "rtf_camera", 2.0, "Speed-up while someone subscribes to the camera: "
                                  "image processing must keep up with the frames.", lo=0.1, hi=1000.0)
        self.rtf_charge = declare(self, "rtf_charge", 400.0, "Speed-up while a car charges and nothing moves.",
                                  lo=0.1, hi=5000.0)
        live_parameters(self, {"rtf_drive": "rtf_drive", "rtf_arm": "rtf_arm", "rtf_camera": "rtf_camera",
                               "rtf_charge": "rtf_charge"})
        # Sim step per phase (s). While a car charges nothing moves, so a long step is exact for the physics; the
        # energy node still meters every step's measurement.
        self.steps = {"drive": 0.02, "arm": 0.02, "camera": 0.02, "charge": 0.25}
        self.clock_period = declare(self, "clock_period_s", 0.04, "Sim-time period of /clock messages (s).",
                                    read_only=True, lo=0.001, hi=0.1)
        self.fatal_error = ""
        self.pack_soc0 = declare(self, "pack_initial_soc", 0.9, "True initial state of charge of the pack.",
                                 read_only=True, lo=0.0, hi=1.0)
        self.pack_kwh = declare(self, "pack_capacity_kwh", 50.0, "True pack capacity (kWh).", read_only=True,
                                lo=1.0, hi=500.0)
        self.odom_frame = declare(self, "odom_frame", "odom", "Odometry frame id.", read_only=True)
        self.base_frame = declare(self, "base_frame", "base_link", "Base frame id.", read_only=True)
        self.laser_frame = declare(self, "laser_frame", "laser", "Lidar frame id.", read_only=True)
        self.camera_frame = declare(self, "camera_frame", "wrist_camera_optical", "Camera optical frame id.",
                                    read_only=True)
        self.ft_frame = declare(self, "ft_frame", "connector_tip", "Frame of the wrist wrench.", read_only=True)
        self.cmd_timeout = declare(self, "cmd_vel_timeout_s", 0.5,
                                   "The base driver stops when cmd_vel is older than this (s).", lo=0.05, hi=5.0)
        try:
            self.garage = load_garage(p["garage_file"])
            self.model = UrdfModel.from_xacro(p["urdf_file"])
        except (GarageError, UrdfError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self.rng = np.random.default_rng(self.seed)
        self.footprint = self.model.footprint()
        self.wheel_sep, self.wheel_radius = self.model.wheel_separation(), self.model.wheel_radius()
        self.wheel_angles = [0.0, 0.0]
        self.chain = self.model.chain(self.base_frame, "connector_tip")
        self.arm_joints = list(self.chain.joint_names)
        self.q = np.array(STOWED_POSITIONS, float)[: len(self.arm_joints)]
        self.q = np.clip(self.q, self.chain.lower, self.chain.upper)
        laser = self.model.transform({}, self.laser_frame)
        self.laser_in_base = Pose2D(laser[0, 3], laser[1, 3], math.atan2(laser[1, 0], laser[0, 0]))
        self.inlets = load_inlets()
        self.camera = default_wrist_camera()

        self.base = DiffDriveBase(self.garage.depot.pose)
        self.lidar = Lidar()
        self.obstacles = self.garage.static_obstacles()
        self.collision_world = CollisionWorld(self.obstacles)
        self.edges = polygon_edges([o.polygon for o in self.obstacles])
        self.pack = PackModel(PackParams(capacity_kwh=self.pack_kwh), soc=self.pack_soc0)
        self.stage = DcOutputStage()
        self.cars = {}
        self.car_inlets = {}
        for v in self.garage.vehicles:
            self.cars[v.id] = SimCar(v.battery.capacity_kwh, v.battery.soc, v.battery.max_dc_power_kw)
            self.car_inlets[v.id] = self.garage.inlet_pose(v)
        self._inlet_ids = list(self.car_inlets)
        self._inlet_xyz = np.array([self.car_inlets[i][:3, 3] for i in self._inlet_ids])
        self.contact = None
        self.contact_car = None

        self.clock = _Clock()
        self.lock = threading.Lock()
        self.cmd = (0.0, 0.0)
        self.cmd_t = -1e9
        self.traj = None  # (start_s, times, positions)
        self.release = False
        self.out_enable = False
        self.out_current = 0.0
        self.duty = 1.0
        self.truth = {"collisions": 0, "collision_ids": "", "energized_unseated": 0, "max_force_n": 0.0,
                      "min_pack_soc": self.pack.soc}
        self.force = np.zeros(3)

        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.odom_pub = self.create_publisher(Odometry, "odom", RELIABLE_QOS)
        self.scan_pub = self.create_publisher(LaserScan, "scan", SENSOR_QOS)
        self.image_pub = self.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", SENSOR_QOS)
        self.joint_pub = self.create_publisher(JointState, "joint_states", SENSOR_QOS)
        self.wrench_pub = self.create_publisher(WrenchStamped, "wrist_wrench", SENSOR_QOS)
        self.latch_pub = self.create_publisher(Bool, "connector/latched", RELIABLE_QOS)
        self.bms_pub = self.create_publisher(BatteryState, "bms/state", SENSOR_QOS)
        self.out_pub = self.create_publisher(BatteryState, "dc_output/measurement", METER_QOS)
        self.iso_pub = self.create_publisher(Bool, "dc_output/isolation_ok", RELIABLE_QOS)
        self.pilot_pub = self.create_publisher(Float64, "pilot/voltage", RELIABLE_QOS)
        self.truth_pose_pub = self.create_publisher(PoseStamped, "sim/truth/robot_pose", RELIABLE_QOS)
        self.truth_pub = self.create_publisher(DiagnosticStatus, "sim/truth/status", LATCHED_QOS)
        self.create_subscription(Twist, "cmd_vel", self._on_cmd, RELIABLE_QOS)
        self.create_subscription(JointTrajectoryMsg, "arm_controller/joint_trajectory", self._on_traj, RELIABLE_QOS)
        self.create_subscription(Bool, "connector/release", self._on_release, LATCHED_QOS)
        self.create_subscription(Bool, "dc_output/enable", self._on_enable, RELIABLE_QOS)
        self.create_subscription(Float64, "dc_output/current_request", self._on_current, RELIABLE_QOS)
        self.create_subscription(Float64, "pilot/duty", self._on_duty, RELIABLE_QOS)

        self._pilot_v = 12.0
        self._tf = PlanarTf(self)
        self._scan_cache = None
        self._camera_wanted = False
        self._request_changed_t = 0.0
        self._arm_still = None  # (q, base pose, release) of the last contact evaluation while nothing moved
        self._pilot_sent = None
        self._latched_sent = None
        self._out = (0.0, 0.0)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="physics", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ inputs (executor thread)
    def _on_cmd(self, msg: Twist):
        with self.lock:
            self.cmd = (msg.linear.x, msg.angular.z)
            self.cmd_t = self.clock.s

    def _on_traj(self, msg: JointTrajectoryMsg):
        try:
            idx = [list(msg.joint_names).index(n) for n in self.arm_joints]
        except ValueError:
            self.get_logger().warning("trajectory does not name every arm joint; ignored")
            return
        if not msg.points:
            return
        if any(len(pt.positions) != len(msg.joint_names) for pt in msg.points):
            self.get_logger().warning("trajectory point with the wrong number of positions; ignored")
            return
        times = np.array([pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9 for pt in msg.points])
        pos = np.array([[pt.positions[i] for i in idx] for pt in msg.points], float)
        if not np.all(np.isfinite(pos)) or np.any(np.diff(times) < 0):
            self.get_logger().warning("trajectory with NaN positions or decreasing times; ignored")
            return
        with self.lock:
            self.traj = (self.clock.s, times, pos)

    def _on_release(self, msg: Bool):
        with self.lock:
            self.release = bool(msg.data)

    def _on_enable(self, msg: Bool):
        with self.lock:
            self.out_enable = bool(msg.data)

    def _on_current(self, msg: Float64):
        with self.lock:
            value = msg.data if math.isfinite(msg.data) else 0.0
            if abs(value - self.out_current) > 0.5:
                self._request_changed_t = self.clock.s
            self.out_current = value

    def _on_duty(self, msg: Float64):
        with self.lock:
            self.duty = msg.data if math.isfinite(msg.data) else 1.0

    # ------------------------------------------------------------------ physics thread
    def _phase(self) -> str:
        arm_busy = False
        if self.traj is not None:
            start, times, _ = self.traj
            arm_busy = self.clock.s <= start + times[-1] + 0.5
        if self._camera_wanted:
            return "camera"
        if arm_busy:
            return "arm"
        # Fast only while the charger's request is steady: when it tapers or stops, node latency (wall time x
        # speed-up) must stay small in sim time.
        if self.stage.current_a > 0.5 and abs(self.base.v) < 1e-3 and abs(self.base.w) < 1e-3 \
                and self.clock.s - self.cmd_t > 1.0 and self.clock.s - self._request_changed_t > 2.0:
            return "charge"
        return "drive" if self.clock.s - self.cmd_t < 2.0 or self.contact is None else "arm"

    def _loop(self):
        try:
            self._run_physics()
        except Exception as exc:  # noqa: BLE001 - any physics fault must stop the node, not freeze the clock
            import traceback

            self.fatal_error = f"physics thread failed: {exc!r}\n{traceback.format_exc()}"
            self.get_logger().fatal(self.fatal_error)
            rclpy.try_shutdown()

    def _run_physics(self):
        k = 0
        next_wall = time.monotonic()
        while self._running:
            phase = self._phase()
            dt = self.steps[phase]
            with self.lock:
                self._step(dt, k)
            t_old = self.clock.s
            self.clock.ns += int(round(dt * 1e9))
            try:
                # /clock at clock_period_s: every node processes each tick, so its rate is what costs most CPU.
                if int(self.clock.s / self.clock_period) != int(t_old / self.clock_period):
                    self.clock_pub.publish(Clock(clock=self.clock.msg()))
                self._publish(dt, k)
            except RCLError:
                if rclpy.ok():
                    raise
                return  # the context is shutting down (Ctrl-C): stop quietly
            k += 1
            next_wall += dt / getattr(self, f"rtf_{phase}")
            delay = next_wall - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_wall = time.monotonic()  # behind: run as fast as the CPU allows, never try to catch up

    def _step(self, dt: float, k: int):
        t = self.clock.s
        v, w = self.cmd if t - self.cmd_t <= self.cmd_timeout else (0.0, 0.0)
        self.base.step(v, w, dt)
        # Wheel angles for joint_states (robot_state_publisher draws the wheels from them).
        half = 0.5 * self.wheel_sep
        self.wheel_angles[0] += (self.base.v - half * self.base.w) * dt / self.wheel_radius
        self.wheel_angles[1] += (self.base.v + half * self.base.w) * dt / self.wheel_radius
        hit = self.collision_world.first_collision(self.base.pose, self.footprint[0], self.footprint[1])
        if hit is not None:
            self.truth["collisions"] += 1
            self.truth["collision_ids"] = hit
        self._step_arm(dt)
        self._step_energy(dt)

    def _step_arm(self, dt: float):
        if self.traj is None and self.contact is None and not np.any(self.force):
            return  # the arm rests and touches nothing
        still = (self.q.tobytes(), self.base.pose, self.release)
        if self.traj is None and self._arm_still == still:
            return  # nothing moved since the last contact evaluation: the same forces hold
        self._arm_still = still if self.traj is None else None
        q_cmd = self.q
        if self.traj is not None:
            start, times, pos = self.traj
            tt = self.clock.s + dt - start
            if tt >= times[-1]:
                q_cmd = pos[-1]
                if tt > times[-1] + 0.5 and np.allclose(self.q, q_cmd, atol=1e-6):
                    self.traj = None  # finished and settled: the controller just holds
            else:
                q_cmd = np.array([np.interp(tt, times, pos[:, j]) for j in range(pos.shape[1])])
        vmax = np.asarray(self.chain.velocity_limits) * dt
        q_new = self.q + np.clip(q_cmd - self.q, -vmax, vmax)
        q_new = np.clip(q_new, self.chain.lower, self.chain.upper)
        T_world_base = self.base.pose.to_matrix()
        car, T_world_inlet = self._nearest_inlet()
        self.force = np.zeros(3)
        if car is not None:
            if self.contact_car != car:
                v = self.garage.vehicle(car)
                self.contact = InletContact(self.inlets[v.inlet.type].seat_depth_m)
                self.contact_car = car
            self.contact.released = self.release
            tip_new = tip_in_inlet(T_world_inlet, T_world_base @ self.chain.fk(q_new))
            tip_old = tip_in_inlet(T_world_inlet, T_world_base @ self.chain.fk(self.q))
            res = self.contact.evaluate(tip_new, tip_old)
            self.force = res.force_tip + self.rng.normal(0.0, 0.5, 3)
            self.truth["max_force_n"] = max(self.truth["max_force_n"], abs(float(res.force_tip[2])))
            if res.blocked:
                q_new = self.q
        self.q = q_new

    def _nearest_inlet(self):
        """The car whose inlet is within 0.5 m of the connector tip (ground truth)."""
        tip = self.base.pose.to_matrix() @ self.chain.fk(self.q)
        d = np.linalg.norm(self._inlet_xyz - tip[:3, 3], axis=1)
        best = self._inlet_ids[int(np.argmin(d))] if len(d) and d.min() < 0.5 else None
        if best is None:
            if self.contact is not None and self.contact.latched:
                return self.contact_car, self.car_inlets[self.contact_car]
            self.contact, self.contact_car = None, None
            return None, None
        return best, self.car_inlets[best]

    def _step_energy(self, dt: float):
        latched = self.contact is not None and self.contact.latched
        car = self.cars.get(self.contact_car) if latched else None
        if self.out_enable and not latched:
            self.truth["energized_unseated"] += 1
        if car is not None:
            volts, amps, pack_w = self.stage.step(self.out_enable, self.out_current, car, dt)
            car.step(amps, dt)
        else:
            volts, amps, pack_w = self.stage.step(False, 0.0, None, dt)
        drive_w = 150.0 + 400.0 * abs(self.base.v) + 80.0 * abs(self.base.w)  # electronics + traction
        self.pack.step(pack_w + drive_w, dt)
        self.truth["min_pack_soc"] = min(self.truth["min_pack_soc"], self.pack.soc)
        self._out = (volts, amps)
        self._pilot_v = car.pilot_voltage(True, self.duty) if car is not None else 12.0

    # ------------------------------------------------------------------ outputs
    def _publish(self, dt: float, k: int):
        stamp = self.clock.msg()
        t = self.clock.s
        every = lambda period: int(t / period) != int((t - dt) / period)  # noqa: E731 - a local rate helper
        if every(0.04):
            self._publish_odom(stamp)
        if every(0.1):
            self._publish_scan(stamp)
        arm_moving = self.traj is not None
        if arm_moving or every(0.2):
            self._publish_joints(stamp)
            self._publish_wrench(stamp)
        if every(0.2):
            # Render only while someone subscribes, as a camera driver with lazy publishing does.
            self._camera_wanted = self.count_subscribers(self.image_pub.topic_name) > 0
            if self._camera_wanted:
                self._publish_camera(stamp)
        latched = bool(self.contact is not None and self.contact.latched)
        if latched != self._latched_sent or every(1.0):
            self.latch_pub.publish(Bool(data=latched))
            self._latched_sent = latched
        if self.out_enable or self._out[1] > 0.0 or every(0.5):
            self._publish_output(stamp, every(0.5))
        if every(1.0):
            self._publish_bms(stamp)
            self.iso_pub.publish(Bool(data=True))
        if every(0.5):
            self._publish_truth(stamp)

    def _publish_odom(self, stamp):
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = self.odom_frame
        msg.child_frame_id = self.base_frame
        msg.pose.pose = pose2d_to_msg(self.base.odom_pose, self.odom_frame, stamp).pose
        msg.twist.twist.linear.x = self.base.v
        msg.twist.twist.angular.z = self.base.w
        self.odom_pub.publish(msg)
        self._tf.send(stamp, self.odom_frame, self.base_frame, self.base.odom_pose)  # as a base driver does

    def _publish_scan(self, stamp):
        sensor = self.base.pose.compose(self.laser_in_base)
        if self._scan_cache is None or self._scan_cache[0] != sensor:
            # The world is static: a still robot sees the same ranges, so only the noise is drawn again.
            self._scan_cache = (sensor, self.lidar.scan(sensor, self.edges))
        ranges = self._scan_cache[1].copy()
        finite = np.isfinite(ranges)
        ranges[finite] += self.rng.normal(0.0, self.lidar.noise_std_m, int(finite.sum()))
        msg = LaserScan()
        msg.header.stamp = stamp
        msg.header.frame_id = self.laser_frame
        msg.angle_min = self.lidar.angle_min
        msg.angle_increment = self.lidar.angle_increment
        msg.angle_max = msg.angle_min + msg.angle_increment * (self.lidar.n_rays - 1)
        msg.scan_time = 0.1
        msg.range_min, msg.range_max = self.lidar.range_min_m, self.lidar.range_max_m
        msg.ranges = ranges.astype(np.float32).tolist()
        self.scan_pub.publish(msg)

    def _publish_joints(self, stamp):
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = list(self.arm_joints) + ["left_wheel_joint", "right_wheel_joint"]
        msg.position = [float(x) for x in self.q] + [float(a) for a in self.wheel_angles]
        self.joint_pub.publish(msg)

    def _publish_wrench(self, stamp):
        msg = WrenchStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.ft_frame
        msg.wrench.force.x, msg.wrench.force.y, msg.wrench.force.z = (float(f) for f in self.force)
        self.wrench_pub.publish(msg)

    def _publish_camera(self, stamp):
        joints = dict(zip(self.arm_joints, self.q))
        T_world_cam = self.base.pose.to_matrix() @ self.model.transform(joints, self.camera_frame)
        cars = []
        for v in self.garage.vehicles:
            T_inlet = self.car_inlets[v.id]
            if np.linalg.norm(T_inlet[:3, 3] - T_world_cam[:3, 3]) > 4.0:
                continue
            color = v.color_rgb if v.color_rgb is not None else (0.6, 0.6, 0.6)
            cars.append(CarAppearance(self.garage.vehicle_pose(v).to_matrix(), v.length_m, v.width_m, v.height_m,
                                      color, self.inlets[v.inlet.type], T_inlet))
        rgb = render(self.camera, T_world_cam, cars, self.rng)
        header = Header(stamp=stamp, frame_id=self.camera_frame)
        self.image_pub.publish(rgb_to_image(rgb, header))
        info = CameraInfo(header=header, width=self.camera.width, height=self.camera.height)
        info.distortion_model = self.camera.distortion_model
        info.d = [float(x) for x in self.camera.D]
        info.k = [float(x) for x in np.asarray(self.camera.K).ravel()]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        K = np.asarray(self.camera.K)
        info.p = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
        self.info_pub.publish(info)

    def _publish_output(self, stamp, periodic: bool):
        volts, amps = self._out
        msg = BatteryState()
        msg.header.stamp = stamp
        msg.header.frame_id = "connector_tip"
        msg.voltage, msg.current = float(volts), float(amps)
        msg.percentage = float("nan")
        msg.present = self.contact is not None and self.contact.latched
        msg.power_supply_status = (BatteryState.POWER_SUPPLY_STATUS_CHARGING if amps > 0.5
                                   else BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING)
        self.out_pub.publish(msg)
        if periodic or self._pilot_v != self._pilot_sent:
            self.pilot_pub.publish(Float64(data=float(self._pilot_v)))
            self._pilot_sent = self._pilot_v

    def _publish_bms(self, stamp):
        msg = BatteryState()
        msg.header.stamp = stamp
        msg.header.frame_id = self.base_frame
        msg.voltage = float(self.pack.voltage_v + self.rng.normal(0.0, 0.05))
        msg.current = float(self.pack.current_a + self.rng.normal(0.0, 0.1))
        msg.temperature = float(self.pack.temp_c + self.rng.normal(0.0, 0.1))
        msg.percentage = float("nan")
        msg.present = True
        self.bms_pub.publish(msg)

    def _publish_truth(self, stamp):
        self.truth_pose_pub.publish(pose2d_to_msg(self.base.pose, "map", stamp))
        values = {"sim_time_s": f"{self.clock.s:.3f}", "distance_m": f"{self.base.distance_m:.3f}",
                  "pack_soc": f"{self.pack.soc:.6f}", "pack_energy_out_wh": f"{self.pack.energy_out_wh:.3f}"}
        values.update({k: str(v) for k, v in self.truth.items()})
        for vid, car in self.cars.items():
            values[f"car/{vid}/energy_in_wh"] = f"{car.energy_in_wh:.3f}"
            values[f"car/{vid}/soc"] = f"{car.soc:.5f}"
        msg = DiagnosticStatus(level=DiagnosticStatus.OK, name="loopback_sim", message="running")
        msg.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self.truth_pub.publish(msg)

    def destroy_node(self):
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        return super().destroy_node()


def main(args=None):
    return run_node(LoopbackSim, args)


if __name__ == "__main__":
    raise SystemExit(main())
