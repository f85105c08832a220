"""The loopback simulator node: stands in for the robot's hardware (or Gazebo) at the hardware boundary.

Inputs (what a real robot's drivers accept): ``cmd_vel``, ``arm_controller/joint_trajectory``, ``connector/release``,
``dc_output/enable``, ``dc_output/current_request``, ``pilot/duty``.
Outputs (what they publish): ``/clock``, ``odom``, ``scan``, ``camera/image_raw`` + ``camera/camera_info`` (rendered
only while someone subscribes), ``joint_states``, ``wrist_wrench``, ``connector/latched``, ``bms/state``,
``dc_output/measurement``, ``dc_output/isolation_ok``, ``pilot/voltage``.
Ground truth for tests and benchmarks only: ``sim/truth/robot_pose``, ``sim/truth/status`` and ``sim/truth/world``
(every value drawn by the world variation, latched JSON; also written to ``truth_dir/world.json``).

The true world is drawn from the garage file, ``seed`` and the ``variation`` profile (``sim/variation.py``): cars off
their spot centres and of other models than the file says, unlisted cars, objects and people, odometry that drifts,
sensor noise, calibration errors, a pack and cars that differ from the robot's nominal models, and message latency.

Physics runs in its own thread at a fixed sim step; the speed-up over real time is a parameter per phase (driving,
arm work, charging) and is capped only by what the CPU manages, never by who listens. Around car-side events that
the charger must answer within 100 ms (a car about to be full or to leave) it runs at ``rtf_event``.
"""
from __future__ import annotations

import json
import math
import os
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
from std_msgs.msg import Bool, Float64, Header, String
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from ..core.vision.camera import CameraModel, default_wrist_camera
from ..core.garage.garage import GarageError, Obstacle, load_garage
from ..core.garage.staging import StagingError, staging_pose
from ..core.geometry import Pose2D, convex_polygons_intersect, make_transform, rect_polygon, rpy_matrix
from ..core.vision.inlets import load_inlets
from ..core.arm.insertion import STOWED_POSITIONS
from ..core.energy.pack import PackModel, PackParams
from ..core.paths import data_path
from ..core.arm.urdf_model import UrdfError, UrdfModel
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
from .contact import tip_in_inlet
from .mujoco_contact import ForceTorqueSensor, MujocoInletContact
from ..core.arm.insertion import seated_tip_pose
from .dc_stage import DcOutputStage
from .faults import FaultError, FaultInjector, departure_times
from .renderer import CarAppearance, render
from .variation import PROFILE_NAMES, MoverState, VariationError, draw_world, true_inlet_pose
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
        self.seed = declare(self, "seed", 1, "Random seed of the true world and of sensor noise.", read_only=True)
        self.variation = declare(self, "variation", "nominal", "World variation profile: none (the world is the "
                                 "garage file), nominal or hard (see sim/variation.py).", read_only=True)
        self.truth_dir = declare(self, "truth_dir", "", "Folder to write world.json (the drawn true world) into; "
                                 "empty: none.", read_only=True)
        self.rtf_drive = declare(self, "rtf_drive", 6.0, "Speed-up over real time while driving: the localizer and "
                                 "the controller must keep up with 10 Hz scans at this speed.", lo=0.1, hi=1000.0)
        self.rtf_arm = declare(self, "rtf_arm", 8.0, "Speed-up while the arm is out of its stowed pose (the wrist "
                               "camera streams then).", lo=0.1, hi=1000.0)
        self.rtf_hold = declare(self, "rtf_hold", 12.0, "Speed-up while the arm is out but holds still and the base "
                                "stands (looking for the inlet, or plugged in while the current ramps).",
                                lo=0.1, hi=1000.0)
        self.rtf_charge = declare(self, "rtf_charge", 400.0, "Speed-up while a car charges and nothing moves.",
                                  lo=0.1, hi=5000.0)
        self.rtf_event = declare(self, "rtf_event", 1.0, "Speed-up within event_window_s of a car-side event "
                                 "(the car full or leaving), so the 100 ms pilot timing holds.", lo=0.1, hi=100.0)
        self.event_window = declare(self, "event_window_s", 1.5, "How long before a predicted car-side event the "
                                    "simulator slows to rtf_event (s).", lo=0.0, hi=600.0)
        self.camera_rate = declare(self, "camera_rate_hz", 5.0, "Wrist camera frame rate in sim time (Hz).",
                                   read_only=True, lo=0.5, hi=30.0)
        self.ring_light = declare(self, "ring_light", 0.55, "Wrist camera ring light intensity (0: off; relative to "
                                  "the garage light).", lo=0.0, hi=2.0)
        live_parameters(self, {"rtf_drive": "rtf_drive", "rtf_arm": "rtf_arm", "rtf_hold": "rtf_hold",
                               "rtf_charge": "rtf_charge",
                               "rtf_event": "rtf_event", "event_window_s": "event_window",
                               "ring_light": "ring_light"})
        # Sim step per phase (s). While a car charges nothing moves, so a long step is exact for the physics (the
        # car's acceptance and the pack change over minutes); the energy node still meters every step's measurement.
        self.steps = {"drive": 0.02, "arm": 0.02, "hold": 0.1, "charge": 2.0, "event": 0.01}
        self._event_in_s = math.inf
        self.clock_period = declare(self, "clock_period_s", 0.04, "Sim-time period of /clock messages (s).",
                                    read_only=True, lo=0.001, hi=0.1)
        self.fatal_error = ""
        self.pack_soc0 = declare(self, "pack_initial_soc", 0.9, "Nominal initial state of charge of the pack; the "
                                 "variation offsets the true one.", read_only=True, lo=0.0, hi=1.0)
        self.pack_kwh = declare(self, "pack_capacity_kwh", 50.0, "Nominal pack capacity (kWh); the variation "
                                "scales the true one.", read_only=True, lo=1.0, hi=500.0)
        self.odom_frame = declare(self, "odom_frame", "odom", "Odometry frame id.", read_only=True)
        self.base_frame = declare(self, "base_frame", "base_link", "Base frame id.", read_only=True)
        self.laser_frame = declare(self, "laser_frame", "laser", "Lidar frame id.", read_only=True)
        self.camera_frame = declare(self, "camera_frame", "wrist_camera_optical", "Camera optical frame id.",
                                    read_only=True)
        self.ft_frame = declare(self, "ft_frame", "connector_tip", "Frame of the wrist wrench.", read_only=True)
        self.cmd_timeout = declare(self, "cmd_vel_timeout_s", 0.5,
                                   "The base driver stops when cmd_vel is older than this (s).", lo=0.05, hi=5.0)
        self.controller_lag = declare(self, "controller_lag_s", 0.15,
                                      "While the base moves on a motion command, sim time waits (up to 0.5 s of wall "
                                      "time) for the next cmd_vel once the last is this old (s): a controller slowed "
                                      "by a busy CPU slows the simulation instead of driving blind at the speed-up. "
                                      "0: never wait.", read_only=True, lo=0.0, hi=5.0)
        if self.variation not in PROFILE_NAMES:
            raise ConfigurationError(f"variation '{self.variation}' is not one of {', '.join(PROFILE_NAMES)}")
        try:
            self.garage = load_garage(p["garage_file"])
            self.model = UrdfModel.from_xacro(p["urdf_file"])
        except (GarageError, UrdfError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self.rng = np.random.default_rng(self.seed)
        self.footprint = self.model.footprint()
        try:
            self.world = draw_world(self.garage, self.seed, self.variation, self.footprint, self._staging_areas())
        except VariationError as exc:
            raise ConfigurationError(str(exc)) from exc
        self.wheel_sep, self.wheel_radius = self.model.wheel_separation(), self.model.wheel_radius()
        self.wheel_angles = [0.0, 0.0]
        self.chain = self.model.chain(self.base_frame, "connector_tip")
        self.arm_joints = list(self.chain.joint_names)
        self.q = np.array(STOWED_POSITIONS, float)[: len(self.arm_joints)]
        self.q = np.clip(self.q, self.chain.lower, self.chain.upper)
        laser = self.model.transform({}, self.laser_frame)
        self.laser_in_base = Pose2D(laser[0, 3], laser[1, 3], math.atan2(laser[1, 0], laser[0, 0]))
        self.inlets = load_inlets()
        self.camera = default_wrist_camera()  # what camera_info says
        sen, odo, plant = self.world.sensors, self.world.odometry, self.world.plant
        K = np.array(self.camera.K, float)
        K[0, 0], K[1, 1], K[0, 2], K[1, 2] = (K[0, 0] * sen.camera_k_scale[0], K[1, 1] * sen.camera_k_scale[1],
                                              K[0, 2] * sen.camera_k_scale[2], K[1, 2] * sen.camera_k_scale[3])
        self.true_camera = CameraModel(self.camera.width, self.camera.height, K, self.camera.D,
                                       self.camera.distortion_model, self.camera.frame_id)
        self.T_mount_error = make_transform(rpy_matrix(*sen.camera_mount_rpy_rad), sen.camera_mount_xyz_m)

        self.base = DiffDriveBase(self.garage.depot.pose, track_m=self.wheel_sep,
                                  left_radius_err=odo.left_radius_err, right_radius_err=odo.right_radius_err,
                                  track_err=odo.track_err, slip_sigma=odo.slip_sigma, rng=self.rng)
        self.lidar = Lidar(noise_std_m=sen.lidar_sigma_m, dropout=sen.lidar_dropout)
        self.vehicles = {c.vehicle.id: c.vehicle for c in self.world.cars}  # the true cars
        self.car_poses = {c.vehicle.id: c.pose for c in self.world.cars}
        self.movers = [MoverState(m) for m in self.world.movers]
        self._left_cars = set()
        self._build_static_world()
        nominal = PackParams(capacity_kwh=self.pack_kwh)
        true_pack = PackParams(capacity_kwh=self.pack_kwh * plant.pack_capacity_scale,
                               r0_ohm=nominal.r0_ohm * plant.pack_resistance_scale,
                               r1_ohm=nominal.r1_ohm * plant.pack_resistance_scale)
        self.pack = PackModel(true_pack, soc=min(1.0, max(0.0, self.pack_soc0 + plant.pack_start_soc_offset)))
        self.stage = DcOutputStage(rated_efficiency=plant.dc_efficiency)
        self.cars = {}
        self.car_inlets = {}
        for c in self.world.cars:
            b = c.vehicle.battery
            self.cars[c.vehicle.id] = SimCar(b.capacity_kwh, b.soc, b.max_dc_power_kw, target_soc=c.target_soc,
                                             taper_start_soc=c.taper_start_soc)
            self.car_inlets[c.vehicle.id] = true_inlet_pose(c)
        self._inlet_ids = list(self.car_inlets)
        self._inlet_xyz = np.array([self.car_inlets[i][:3, 3] for i in self._inlet_ids])
        self.contact = None  # the MuJoCo contact of the inlet the connector is at (None when at none)
        self.contact_car = None
        self._contact_models = {}  # inlet type -> MujocoInletContact, built once
        self.ft_sensor = ForceTorqueSensor(np.random.default_rng(self.seed + 7))
        self.torque = np.zeros(3)

        self.clock = _Clock()
        self.lock = threading.Lock()
        self.cmd = (0.0, 0.0)
        self.cmd_t = -1e9
        self.motion_cmd_t = -1e9
        self._phase_now = "drive"
        self._last_wall_pub = {}
        self.traj = None  # (start_s, times, positions)
        self.release = False
        self.out_enable = False
        self.out_current = 0.0
        self.duty = 1.0
        self._in_contact = False
        self.truth = {"collisions": 0, "collision_steps": 0, "collision_ids": "", "energized_unseated": 0,
                      "max_force_n": 0.0, "controller_waits": 0,
                      "min_pack_soc": self.pack.soc, "pack_cutoff": "", "stop_events": 0,
                      "stop_reaction_max_s": 0.0, "pilot_events": 0, "pilot_switch_off_max_s": 0.0,
                      "min_pack_soc_away": self.pack.soc}
        self._energy_at_departure = {}
        self._energy_after_departure = {}
        self._ft_contact = False
        self.phase_books = {p: [0.0, 0.0] for p in ("drive", "arm", "hold", "charge", "event")}  # [sim s, wall s]
        # Energy books (Wh): what the pack gave at its terminals, and where it went.
        self.books = {"pack_out_wh": 0.0, "delivered_wh": 0.0, "stage_loss_wh": 0.0, "drive_wh": 0.0}
        self._stop_event_t = None
        self._pilot_event_t = None
        self._pilot_state_car = None
        self._delayed = []  # (release sim time, sequence, publish callable) for message latency
        self._delay_seq = 0
        self._last_release = {}
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
        self.world_pub = self.create_publisher(String, "sim/truth/world", LATCHED_QOS)
        self._publish_world()
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
        self._stowed = np.array(self.q, float)
        self._request_changed_t = 0.0
        self._arm_still = None  # (q, base pose, release) of the last contact evaluation while nothing moved
        self._pilot_sent = None
        self._latched_sent = None
        self._out = (0.0, 0.0)
        self._init_energy_hooks()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="physics", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the true world
    def _staging_areas(self):
        """Where the robot will stand beside each requesting car (from the file): the variation keeps them clear."""
        areas = []
        for v in self.garage.requested_vehicles():
            try:
                pose = staging_pose(self.garage, v, self.footprint[0], self.footprint[1])
            except StagingError:
                continue
            areas.append(rect_polygon(pose, self.footprint[0] + 1.0, self.footprint[1] + 1.0))
        return areas

    def _build_static_world(self):
        """Walls, pillars, the true parked cars (minus those that have left) and the objects in the lanes."""
        obs = [o for o in self.garage.static_obstacles() if o.kind != "vehicle"]
        for c in self.world.cars:
            if c.vehicle.id in self._left_cars:
                continue
            obs.append(Obstacle("vehicle", c.vehicle.id, rect_polygon(c.pose, c.vehicle.length_m,
                                                                      c.vehicle.width_m), c.vehicle.height_m))
        obs += [Obstacle("object", o.id, o.polygon, o.height_m) for o in self.world.objects]
        self.obstacles = obs
        self.collision_world = CollisionWorld(obs)
        self.edges = polygon_edges([o.polygon for o in obs])
        self._scan_cache = None

    def _publish_world(self):
        data = self.world.to_dict()
        data["garage_file"] = self.garage.source
        text = json.dumps(data, indent=None, sort_keys=True)
        self.world_pub.publish(String(data=text))
        if self.truth_dir:
            try:
                os.makedirs(self.truth_dir, exist_ok=True)
                with open(os.path.join(self.truth_dir, "world.json"), "w", encoding="utf-8") as f:
                    f.write(text)
            except OSError as exc:
                self.get_logger().warning(f"cannot write {self.truth_dir}/world.json: {exc}")

    def _mover_polygons(self):
        """(id, polygon) of every mover present now."""
        out = []
        for m in self.movers:
            pose = m.pose(self.clock.s)
            if pose is not None:
                out.append((m.mover.id, m.mover.polygon(*pose)))
        return out

    def _step_movers(self, dt: float):
        """People and a leaving car advance unless the robot is in their way (they yield, as people do)."""
        t = self.clock.s
        robot = rect_polygon(self.base.pose, self.footprint[0] + 1.0, self.footprint[1] + 1.0)
        for m in self.movers:
            pose = m.pose(t)
            blocked = False
            if pose is not None:
                ahead = m.mover.at_distance(m.travelled_m + (1.0 if m.mover.kind == "pedestrian" else 2.5))
                if ahead is not None:
                    blocked = convex_polygons_intersect(robot, m.mover.polygon(*ahead))
            m.advance(t, dt, blocked)
            if m.mover.kind == "car" and t >= m.mover.start_s:
                vid = m.mover.id[len("leaving_"):]
                if vid not in self._left_cars:
                    self._left_cars.add(vid)  # it is a mover now, no longer a parked car
                    self._build_static_world()

    def _delay(self, key: str, fn) -> None:
        """Publish ``fn()`` after the drawn latency (0..latency_max_s, in order per stream)."""
        lat_max = self.world.sensors.latency_max_s
        if lat_max <= 0.0:
            fn()
            return
        release = max(self.clock.s + float(self.rng.uniform(0.0, lat_max)), self._last_release.get(key, 0.0))
        self._last_release[key] = release
        self._delay_seq += 1
        self._delayed.append((release, self._delay_seq, fn))

    def _flush_delayed(self) -> None:
        if not self._delayed:
            return
        now = self.clock.s
        due = [d for d in self._delayed if d[0] <= now]
        if due:
            self._delayed = [d for d in self._delayed if d[0] > now]
            for _, _, fn in sorted(due, key=lambda d: (d[0], d[1])):
                fn()

    # ------------------------------------------------------------------ inputs (executor thread)
    def _on_cmd(self, msg: Twist):
        with self.lock:
            self.cmd = (msg.linear.x, msg.angular.z)
            self.cmd_t = self.clock.s
            if msg.linear.x != 0.0 or msg.angular.z != 0.0:
                self.motion_cmd_t = self.clock.s  # the phase looks at motion commands, not a stream of zeros

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
    def _arm_moving(self) -> bool:
        """A trajectory is running (or ended less than 0.5 s ago)."""
        if self.traj is None:
            return False
        start, times, _ = self.traj
        return self.clock.s <= start + times[-1] + 0.5

    def _arm_holding(self) -> bool:
        """The arm is out but holds still, the plug (if any) at rest, and the base stands: nothing needs the
        20 ms physics step (the camera runs at 5 Hz, the charger's current ramps over seconds)."""
        return (not self._arm_moving() and (self.contact is None or self.contact.settled) and not self._ft_contact
                and abs(self.base.v) < 1e-3 and abs(self.base.w) < 1e-3 and self.clock.s - self.motion_cmd_t > 1.0)

    def _arm_deployed(self) -> bool:
        return self._arm_moving() or not np.allclose(self.q, self._stowed, atol=0.05)

    def _next_car_event_s(self) -> tuple:
        """Sim seconds until the connected car's side changes by itself (full, or leaving), and until it has
        received the energy the garage file requests for it (when the charger should stop); inf if none. Pacing
        only: before a car-side event the simulation runs at ``rtf_event``, so that the 100 ms pilot timing holds
        for reactions that take the nodes a few wall-clock milliseconds; before the requested energy is reached it
        leaves the charging speed-up for the arm's, so that the charger's own stop lands within a few Wh."""
        car_id = self.contact_car if self.contact is not None and self.contact.latched else None
        if car_id is None:
            return math.inf, math.inf
        car = self.cars[car_id]
        v = self.vehicles[car_id]
        t, t_request = math.inf, math.inf
        if car.current_a > 0.5:
            remaining_ah = (min(1.0, car.target_soc) - car.soc) * car.capacity_ah
            t = max(0.0, 3600.0 * remaining_ah / car.current_a)
            if v.request is not None and v.request.energy_kwh > 0.0:
                power_w = max(1.0, car.voltage_v * car.current_a)
                remaining_wh = 1000.0 * v.request.energy_kwh - car.energy_in_wh
                t_request = max(0.0, 3600.0 * remaining_wh / power_w)
        if v.request is not None:
            t = min(t, max(0.0, self.departures.get(car_id, v.request.departure_s) - self.clock.s))
        for m in self.movers:
            if m.mover.id == f"leaving_{car_id}":
                t = min(t, max(0.0, m.mover.start_s - self.clock.s))
        return t, t_request

    def _phase(self) -> str:
        car_side, request = self._next_car_event_s()
        self._event_in_s = min(car_side, request)
        if self._pilot_event_t is not None or car_side <= self.event_window:
            return "event"
        if self._arm_deployed():
            # The arm works or waits out of its stow: the wrist camera streams and the charger may be running.
            steady = (self.stage.current_a > 0.5 and self.clock.s - self._request_changed_t > 2.0
                      and not self._arm_moving() and self.clock.s - self.motion_cmd_t > 1.0
                      and request > self.event_window)
            if steady:
                return "charge"
            return "hold" if self._arm_holding() else "arm"
        if (self.dock_enable and self._at_dock() and abs(self.base.v) < 1e-3
                and self.clock.s - self.motion_cmd_t > 1.0):
            return "charge"  # a depot recharge: nothing moves, the pack fills at the grid limit
        return "drive"

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
        last_wall, last_phase = next_wall, None
        while self._running:
            phase = self._phase()
            wall = time.monotonic()
            if last_phase is not None:  # where the wall-clock time goes, per phase (truth: phase/<p>/wall_s)
                self.phase_books[last_phase][1] += wall - last_wall
            last_wall, last_phase = wall, phase
            self._phase_now = phase
            dt = self.steps[phase]
            if phase == "charge":  # long steps while nothing changes, never far into a coming car-side event
                dt = min(dt, max(0.5, self._event_in_s - self.event_window))
            if self._wait_for_controller():
                next_wall = time.monotonic()
            with self.lock:
                self._step(dt, k)
            self.phase_books[phase][0] += dt
            t_old = self.clock.s
            self.clock.ns += int(round(dt * 1e9))
            try:
                # /clock at clock_period_s: every node processes each tick, so its rate is what costs most CPU.
                if (int(self.clock.s / self.clock_period) != int(t_old / self.clock_period)
                        and self._wall_cap("clock", 0.01)):
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

    def _wait_for_controller(self) -> bool:
        """Hold sim time while the base moves on a motion command older than ``controller_lag_s`` (at most 0.5 s
        of wall time: a controller that stopped is the cmd_vel timeout's business). True when it waited."""
        if self.controller_lag <= 0.0:
            return False
        waited = False
        give_up = time.monotonic() + 0.5
        while self._running and time.monotonic() < give_up:
            with self.lock:
                age = self.clock.s - self.cmd_t
                moving = self.cmd != (0.0, 0.0) and age <= self.cmd_timeout
                if not (moving and age > self.controller_lag):
                    break
            if not waited:
                self.truth["controller_waits"] += 1
            waited = True
            time.sleep(0.001)
        return waited

    def _step(self, dt: float, k: int):
        t = self.clock.s
        v, w = self.cmd if t - self.cmd_t <= self.cmd_timeout else (0.0, 0.0)
        if self.truth["pack_cutoff"]:
            v, w = 0.0, 0.0  # the pack has cut off: the motor drives have no power
        self._check_stop_reaction(v)
        self.base.step(v, w, dt)
        if self.movers:
            self._step_movers(dt)
        # Wheel angles for joint_states (robot_state_publisher draws the wheels from them).
        half = 0.5 * self.wheel_sep
        self.wheel_angles[0] += (self.base.v - half * self.base.w) * dt / self.wheel_radius
        self.wheel_angles[1] += (self.base.v + half * self.base.w) * dt / self.wheel_radius
        hit = self.collision_world.first_collision(self.base.pose, self.footprint[0], self.footprint[1])
        if hit is None and self.movers:
            fp = rect_polygon(self.base.pose, self.footprint[0], self.footprint[1])
            hit = next((mid for mid, poly in self._mover_polygons() if convex_polygons_intersect(fp, poly)), None)
        if hit is not None:
            self.truth["collision_steps"] += 1
            if not self._in_contact:  # a new contact: one collision, however long it lasts
                self.truth["collisions"] += 1
                self.truth["collision_ids"] = ",".join(x for x in (self.truth["collision_ids"], hit) if x)
        self._in_contact = hit is not None
        self._step_arm(dt)
        self._step_energy(dt)
        self._check_pilot_switch_off()
        self._book_truth()

    def _book_truth(self) -> None:
        """Per car: the energy it held at its departure time and what reached it after; the pack's lowest true
        state of charge while the robot was away from its depot."""
        t = self.clock.s
        for vid, car in self.cars.items():
            v = self.vehicles[vid]
            if v.request is None:
                continue
            if t < v.request.departure_s:
                self._energy_at_departure[vid] = car.energy_in_wh
            elif vid in self._energy_at_departure:
                self._energy_after_departure[vid] = car.energy_in_wh - self._energy_at_departure[vid]
        d = self.garage.depot.pose
        if math.hypot(self.base.pose.x - d.x, self.base.pose.y - d.y) > 1.5:
            self.truth["min_pack_soc_away"] = min(self.truth["min_pack_soc_away"], self.pack.soc)

    def _check_stop_reaction(self, cmd_v: float) -> None:
        """Truth for safety case 1: from a person or moving car entering the stop zone (the true footprint plus
        0.3 m in the travel direction) to a commanded speed <= 0.02 m/s, in sim seconds."""
        t = self.clock.s
        if self._stop_event_t is not None:
            if abs(cmd_v) <= 0.02:
                self.truth["stop_reaction_max_s"] = max(self.truth["stop_reaction_max_s"], t - self._stop_event_t)
                self._stop_event_t = None
            return
        if abs(cmd_v) <= 0.02 or not self.movers:
            return
        ahead = 0.30 if cmd_v > 0 else -0.30
        zone_pose = self.base.pose.compose(Pose2D(0.5 * ahead, 0.0, 0.0))
        zone = rect_polygon(zone_pose, self.footprint[0] + abs(ahead), self.footprint[1])
        if any(convex_polygons_intersect(zone, poly) for _, poly in self._mover_polygons()):
            self._stop_event_t = t
            self.truth["stop_events"] += 1

    def _check_pilot_switch_off(self) -> None:
        """Truth for safety case 12: from the car's pilot leaving C to the output current at zero, in sim s."""
        car = self.cars.get(self.contact_car) if self.contact is not None else None
        t = self.clock.s
        state_c = car is not None and abs(self._pilot_v - 6.0) < 0.5
        if self._pilot_event_t is not None:
            if self._out[1] <= 0.5:
                self.truth["pilot_switch_off_max_s"] = max(self.truth["pilot_switch_off_max_s"],
                                                           t - self._pilot_event_t)
                self._pilot_event_t = None
        elif self._pilot_state_car and not state_c and self._out[1] > 0.5:
            self._pilot_event_t = t
            self.truth["pilot_events"] += 1
        self._pilot_state_car = state_c

    def _step_arm(self, dt: float):
        if self.traj is None and self.contact is None and not np.any(self.force):
            return  # the arm rests and touches nothing
        still = (self.q.tobytes(), self.base.pose, self.release)
        if self.traj is None and self._arm_still == still and (self.contact is None or self.contact.settled):
            self._ft_contact = False  # at rest: the same forces hold, and the wrench goes out at the resting rate
            return  # nothing moved since the last contact evaluation and the plug is at rest
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
        self.q = np.clip(q_new, self.chain.lower, self.chain.upper)
        car, T_world_inlet = self._nearest_inlet()
        self.force = np.zeros(3)
        self.torque = np.zeros(3)
        self._ft_contact = False
        if car is None or self.contact.forced:
            return
        # The joints follow their commands (a stiff position-controlled arm); the plug sits on a compliant wrist,
        # and MuJoCo computes the plug's contact with the inlet from the commanded tip pose.
        T_inlet_tip = tip_in_inlet(T_world_inlet, self.base.pose.to_matrix() @ self.chain.fk(self.q))
        state = self.contact.step(T_inlet_tip, dt, self.release)
        wrench = self.ft_sensor.update(state.force_tip, state.torque_tip, dt)
        self.force, self.torque = wrench[:3], wrench[3:]
        self._ft_contact = True  # the plug touches the inlet: the F/T sensor streams (see _publish)
        self.truth["max_force_n"] = max(self.truth["max_force_n"], abs(float(state.force_tip[2])))

    def _nearest_inlet(self):
        """The car whose inlet the connector tip is at (ground truth): within 6 cm of the inlet face and 8 cm of its
        axis, where the plug can touch it. MuJoCo runs only there; a latched plug stays with its inlet."""
        tip = self.base.pose.to_matrix() @ self.chain.fk(self.q)
        d = np.linalg.norm(self._inlet_xyz - tip[:3, 3], axis=1)
        best = self._inlet_ids[int(np.argmin(d))] if len(d) and d.min() < 0.12 else None
        if best is not None:
            local = tip_in_inlet(self.car_inlets[best], tip)
            if not (local[2, 3] < 0.06 and float(np.hypot(local[0, 3], local[1, 3])) < 0.08):
                best = None
        if best is None and self.contact is not None and self.contact.latched:
            best = self.contact_car  # held by the latch
        if best is None:
            self.contact, self.contact_car = None, None
            return None, None
        if self.contact_car != best:
            inlet_type = self.vehicles[best].inlet.type
            if inlet_type not in self._contact_models:
                self._contact_models[inlet_type] = MujocoInletContact(self.inlets[inlet_type])
            self.contact = self._contact_models[inlet_type]
            self.contact.reset(tip_in_inlet(self.car_inlets[best], tip))
            self.contact_car = best
        return best, self.car_inlets[best]

    # ------------------------------------------------------------------ energy and fault hooks
    def _init_energy_hooks(self):
        """Fault injection (``sim/fault``), car departures, the depot dock and the BMS sensor errors
        (sim/faults.py)."""
        self.faults = FaultInjector()
        planned = {vid: v.request.departure_s for vid, v in self.vehicles.items()
                   if v.request is not None and v.request.departure_s is not None}
        self.departures = departure_times(planned, self.variation, np.random.default_rng(self.seed + 16))
        self.dock_enable, self.dock_limit_w = False, 0.0
        self.books["dock_in_wh"] = 0.0
        # The BMS current sensor's offset (hard: 1% of a 300 A full scale) and voltage noise.
        hard = self.variation == "hard"
        sign = np.random.default_rng(self.seed + 17).uniform() < 0.5
        self.bms_offset_a = (3.0 if sign else -3.0) if hard else 0.0
        self.bms_voltage_sigma = 0.2 if hard else 0.05
        self._bms_frozen_v = None
        self._iso_sent = None
        self.truth["departed"] = ""
        self.pilot_low_pub = self.create_publisher(Float64, "pilot/voltage_low", RELIABLE_QOS)
        self.create_subscription(String, "sim/fault", self._on_fault, RELIABLE_QOS)
        self.create_subscription(Bool, "dock/enable", self._on_dock_enable, RELIABLE_QOS)
        self.create_subscription(Float64, "dock/power_limit_w", self._on_dock_limit, RELIABLE_QOS)

    def _on_fault(self, msg: String):
        with self.lock:
            try:
                name, settings = self.faults.command(msg.data)
            except FaultError as exc:
                self.get_logger().warning(f"sim/fault ignored: {exc}")
                return
        self.get_logger().info(f"fault {name}: {settings} (active: {self.faults.on(name)})")

    def _on_dock_enable(self, msg: Bool):
        with self.lock:
            self.dock_enable = bool(msg.data)

    def _on_dock_limit(self, msg: Float64):
        with self.lock:
            self.dock_limit_w = msg.data if math.isfinite(msg.data) and msg.data > 0.0 else 0.0

    def _apply_one_shot_faults(self):
        f = self.faults
        seat = f.pop("seat")
        if seat is not None and seat["car"] in self.cars:
            v = self.vehicles[seat["car"]]
            # A plug seated by fault injection: the MuJoCo model with the plug placed at the seated pose, latched.
            inlet = self.inlets[v.inlet.type]
            if v.inlet.type not in self._contact_models:
                self._contact_models[v.inlet.type] = MujocoInletContact(inlet)
            self.contact = self._contact_models[v.inlet.type]
            self.contact.reset(seated_tip_pose(np.eye(4), inlet.seat_depth_m))
            self.contact.latched = True
            self.contact.forced = True  # held seated by the fault: the arm is not at it, MuJoCo is not stepped
            self.contact_car = seat["car"]
        leave = f.pop("car_leaves")
        if leave is not None:
            vid = leave["car"] or self.contact_car
            if vid in self.cars:
                self.departures[vid] = self.clock.s
        if f.pop("pack_cutoff") is not None:
            self.pack.soc = 0.0
        temp = f.pop("pack_temperature")
        if temp is not None:
            self.pack.temp_c = temp["value"]
        for vid, t_dep in self.departures.items():
            car = self.cars[vid]
            if self.clock.s >= t_dep and not car.departed:
                car.unplug()  # the owner drives off: the pilot reads A, the car takes no more current
                self.truth["departed"] = ",".join(x for x in (self.truth["departed"], vid) if x)

    def _at_dock(self) -> bool:
        dock = self.garage.depot.dock
        d = self.base.pose
        return math.hypot(d.x - dock.x, d.y - dock.y) < 0.3 and \
            abs(math.remainder(d.yaw - dock.yaw, 2.0 * math.pi)) < 0.3

    def _step_energy(self, dt: float):
        """The pack is the only source (with the dock when docked): the output stage and the base draw from it,
        and at its cut-off neither can; the books on sim/truth/status show it."""
        self._apply_one_shot_faults()
        f = self.faults
        latched = self.contact is not None and self.contact.latched
        car = self.cars.get(self.contact_car) if latched else None
        if self.out_enable and not latched:
            self.truth["energized_unseated"] += 1
        if f.on("over_temperature"):
            self.pack.temp_c += f.value("over_temperature") * dt
        powered = not self.truth["pack_cutoff"]
        if car is not None and powered:
            volts, amps, pack_w = self.stage.step(self.out_enable, self.out_current, car, dt)
            if f.on("over_current") and amps > 0.0:
                amps *= f.value("over_current")
                volts = car.terminal_voltage(amps)
                pack_w = volts * amps + self.stage.loss_w(volts * amps)
        else:
            volts, amps, pack_w = self.stage.step(False, 0.0, None, dt)
        drive_w = (150.0 + 400.0 * abs(self.base.v) + 80.0 * abs(self.base.w)) if powered else 0.0
        dock_w = 0.0
        if powered and self.dock_enable and self.dock_limit_w > 0.0 and self._at_dock():
            # The dock charger feeds the robot's bus from the grid at its limit; the pack takes what it may.
            dock_w = min(self.dock_limit_w, pack_w + drive_w + self.pack.available_charge_w())
        cutoff = self.pack.cutoff_reason(pack_w + drive_w - dock_w, dt) if powered else ""
        if cutoff:
            # Checked before the step, so nothing downstream gets energy the pack cannot give.
            volts, amps, pack_w = self.stage.step(False, 0.0, None, dt)
            drive_w = dock_w = 0.0
            self.base.stop()
            self.truth["pack_cutoff"] = f"{cutoff} at {self.clock.s:.1f} s"
        if car is not None:
            car.step(amps, dt)
        before = self.pack.energy_out_wh
        self.pack.step(pack_w + drive_w - dock_w, dt)
        if self.pack.cutoff and not self.truth["pack_cutoff"] and pack_w + drive_w - dock_w > 0.0:
            # The BMS opened its contactor: from now on nothing on the robot has power (no energy from nothing).
            self.truth["pack_cutoff"] = f"{self.pack.cutoff} at {self.clock.s:.1f} s"
        b = self.books
        b["pack_out_wh"] += self.pack.energy_out_wh - before
        b["dock_in_wh"] += dock_w * dt / 3600.0
        b["delivered_wh"] += volts * amps * dt / 3600.0
        b["stage_loss_wh"] += max(0.0, pack_w - volts * amps) * dt / 3600.0
        b["drive_wh"] += drive_w * dt / 3600.0
        self.truth["min_pack_soc"] = min(self.truth["min_pack_soc"], self.pack.soc)
        self._out = (volts, amps)
        pilot_v = car.pilot_voltage(True, self.duty) if car is not None else 12.0
        if f.on("pilot_e"):
            pilot_v = 0.0
        elif f.on("pilot_f"):
            pilot_v = -12.0
        elif f.on("pilot_cut"):
            pilot_v = 12.0
        self._pilot_v = pilot_v

    # ------------------------------------------------------------------ outputs
    def _publish(self, dt: float, k: int):
        stamp = self.clock.msg()
        t = self.clock.s
        every = lambda period: int(t / period) != int((t - dt) / period)  # noqa: E731 - a local rate helper
        cap = self._wall_cap
        self._flush_delayed()
        if every(0.04) and cap("odom", 0.02):
            self._publish_odom(stamp)
        if every(0.1) and cap("scan", 0.1):
            self._publish_scan(stamp)
        # Joint states and the wrist wrench: at the /clock period while the arm moves or the plug touches the inlet
        # (the nodes' sim-time timers cannot run faster than /clock, so a faster stream is only callbacks), 5 Hz
        # at rest.
        arm_active = self.traj is not None or self._ft_contact
        if (arm_active and every(self.clock_period)) or (every(0.2) and cap("joints", 0.05)):
            self._publish_joints(stamp)
            self._publish_wrench(stamp)
        if every(1.0 / self.camera_rate) and self._arm_deployed() and cap("camera", 0.5):
            # The wrist camera streams while the arm is deployed; frames are drawn only while someone subscribes
            # (lazy publishing): that costs CPU but never changes the simulation's speed or outcome.
            self._camera_wanted = self.count_subscribers(self.image_pub.topic_name) > 0
            if self._camera_wanted:
                self._publish_camera(stamp)
        latched = bool(self.contact is not None and self.contact.latched)
        if latched != self._latched_sent or (every(1.0) and cap("latched", 0.05)):
            self.latch_pub.publish(Bool(data=latched))
            self._latched_sent = latched
        if self.out_enable or self._out[1] > 0.0 or every(0.5):
            self._publish_output(stamp, every(0.5))
        if every(1.0):
            self._publish_bms(stamp)
            if cap("isolation", 0.05):
                self.iso_pub.publish(Bool(data=not self.faults.on("isolation")))
        if every(0.5) and cap("truth", 0.1):
            self._publish_truth(stamp)

    def _wall_cap(self, stream: str, period_wall_s: float) -> bool:
        """While charging (nothing moves, up to ``rtf_charge`` times real time) the costly streams (clock, odometry,
        scan, camera, truth) publish at most once per ``period_wall_s`` of wall time: at their sim-time rates a 400x
        speed-up would mean thousands of clock ticks, scans and rendered frames a second, more than the nodes (or the
        simulator) can process, and the speed-up would collapse. The joint states and the wrench of the resting arm
        are capped too (nothing reads their age while the arm holds), and so are the periodic repeats of the latch,
        the isolation and the pilot (a change is sent at once; the watchdogs need both sim and wall time to pass).
        The charger's measurements and the BMS keep their sim-time rates (the energy books and the estimator depend
        on them). Messages keep their sim stamps. While the arm works with the base standing still, odometry and scans (which then repeat the same
        values) are capped the same way. In every other case each stream keeps its sim-time rate."""
        if self._phase_now != "charge":
            still = (self._phase_now in ("arm", "hold") and stream in ("odom", "scan") and abs(self.base.v) < 1e-3
                     and abs(self.base.w) < 1e-3 and self.clock.s - self.motion_cmd_t > 1.0)
            if not still:
                return True
            period_wall_s = max(period_wall_s, 0.1)
        now = time.monotonic()
        if now - self._last_wall_pub.get(stream, -math.inf) < period_wall_s:
            return False
        self._last_wall_pub[stream] = now
        return True

    def _publish_odom(self, stamp):
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = self.odom_frame
        msg.child_frame_id = self.base_frame
        msg.pose.pose = pose2d_to_msg(self.base.odom_pose, self.odom_frame, stamp).pose
        msg.twist.twist.linear.x = self.base.v
        msg.twist.twist.angular.z = self.base.w
        odom_pose = self.base.odom_pose

        def send():
            self.odom_pub.publish(msg)
            self._tf.send(stamp, self.odom_frame, self.base_frame, odom_pose)  # as a base driver does

        self._delay("odom", send)

    def _publish_scan(self, stamp):
        sensor = self.base.pose.compose(self.laser_in_base)
        movers = self._mover_polygons() if self.movers else []
        if movers:
            ranges = self.lidar.scan(sensor, np.vstack([self.edges, polygon_edges([p for _, p in movers])]))
        else:
            if self._scan_cache is None or self._scan_cache[0] != sensor:
                # A static world: a still robot sees the same ranges, so only the noise is drawn again.
                self._scan_cache = (sensor, self.lidar.scan(sensor, self.edges))
            ranges = self._scan_cache[1].copy()
        finite = np.isfinite(ranges)
        if self.lidar.noise_std_m > 0.0:
            ranges[finite] += self.rng.normal(0.0, self.lidar.noise_std_m, int(finite.sum()))
        if self.lidar.dropout > 0.0:
            ranges[self.rng.random(len(ranges)) < self.lidar.dropout] = np.inf
        msg = LaserScan()
        msg.header.stamp = stamp
        msg.header.frame_id = self.laser_frame
        msg.angle_min = self.lidar.angle_min
        msg.angle_increment = self.lidar.angle_increment
        msg.angle_max = msg.angle_min + msg.angle_increment * (self.lidar.n_rays - 1)
        msg.scan_time = 0.1
        msg.range_min, msg.range_max = self.lidar.range_min_m, self.lidar.range_max_m
        msg.ranges = ranges.astype(np.float32).tolist()
        self._delay("scan", lambda: self.scan_pub.publish(msg))

    def _publish_joints(self, stamp):
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = list(self.arm_joints) + ["left_wheel_joint", "right_wheel_joint"]
        msg.position = [float(x) for x in self.q] + [float(a) for a in self.wheel_angles]
        self._delay("joints", lambda: self.joint_pub.publish(msg))

    def _publish_wrench(self, stamp):
        msg = WrenchStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.ft_frame
        msg.wrench.force.x, msg.wrench.force.y, msg.wrench.force.z = (float(f) for f in self.force)
        msg.wrench.torque.x, msg.wrench.torque.y, msg.wrench.torque.z = (float(t) for t in self.torque)
        self._delay("wrench", lambda: self.wrench_pub.publish(msg))

    def _publish_camera(self, stamp):
        joints = dict(zip(self.arm_joints, self.q))
        # The true camera sits a little off the URDF's mounting and has slightly different intrinsics.
        T_world_cam = self.base.pose.to_matrix() @ self.model.transform(joints, self.camera_frame) @ self.T_mount_error
        cars = []
        for c in self.world.cars:
            v = c.vehicle
            if v.id in self._left_cars:
                continue
            T_inlet = self.car_inlets[v.id]
            if np.linalg.norm(T_inlet[:3, 3] - T_world_cam[:3, 3]) > 4.0:
                continue
            color = v.color_rgb if v.color_rgb is not None else (0.6, 0.6, 0.6)
            cars.append(CarAppearance(c.pose.to_matrix(), v.length_m, v.width_m, v.height_m,
                                      color, self.inlets[v.inlet.type], T_inlet))
        rgb = render(self.true_camera, T_world_cam, cars, self.rng, ring_light=self.ring_light)
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
        iso = not self.faults.on("isolation")
        if iso != self._iso_sent:  # an isolation fault is reported at once, not at the next 1 s tick
            self.iso_pub.publish(Bool(data=iso))
            self._iso_sent = iso
        if self.faults.on("over_voltage"):
            volts *= self.faults.value("over_voltage")
        msg = BatteryState()
        msg.header.stamp = stamp
        msg.header.frame_id = "connector_tip"
        msg.voltage, msg.current = float(volts), float(amps)
        msg.percentage = float("nan")
        msg.present = self.contact is not None and self.contact.latched
        msg.power_supply_status = (BatteryState.POWER_SUPPLY_STATUS_CHARGING if amps > 0.5
                                   else BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING)
        if not self.faults.on("output_stale"):
            self.out_pub.publish(msg)
        low = -self.faults.value("diode") if self.faults.on("diode") else -12.0
        repeat = periodic and self._wall_cap("pilot", 0.05)  # a change goes out at once, repeats are capped
        if (repeat or (self._pilot_v, low) != self._pilot_sent) and not self.faults.on("pilot_loss"):
            self.pilot_pub.publish(Float64(data=float(self._pilot_v)))
            self.pilot_low_pub.publish(Float64(data=float(low)))
            self._pilot_sent = (self._pilot_v, low)

    def _publish_bms(self, stamp):
        f = self.faults
        if f.on("bms_stale"):
            return
        msg = BatteryState()
        msg.header.stamp = stamp
        msg.header.frame_id = self.base_frame
        msg.voltage = float(self.pack.voltage_v + self.rng.normal(0.0, self.bms_voltage_sigma))
        if f.on("bms_voltage_stuck"):
            self._bms_frozen_v = self._bms_frozen_v if self._bms_frozen_v is not None else msg.voltage
            msg.voltage = self._bms_frozen_v
        else:
            self._bms_frozen_v = None
        msg.current = float(self.pack.current_a + self.bms_offset_a + self.rng.normal(0.0, 0.1)
                            + f.value("bms_current_bias") * f.on("bms_current_bias"))
        msg.temperature = float(self.pack.temp_c + self.rng.normal(0.0, 0.1))
        msg.percentage = float("nan")
        msg.present = True
        self.bms_pub.publish(msg)

    def _publish_truth(self, stamp):
        self.truth_pose_pub.publish(pose2d_to_msg(self.base.pose, "map", stamp))
        values = {"sim_time_s": f"{self.clock.s:.3f}", "distance_m": f"{self.base.distance_m:.3f}",
                  "pack_soc": f"{self.pack.soc:.6f}", "pack_energy_out_wh": f"{self.pack.energy_out_wh:.3f}"}
        values.update({k: str(v) for k, v in self.truth.items()})
        values.update({k: f"{v:.4f}" for k, v in self.books.items()})
        created = (self.books["delivered_wh"] + self.books["stage_loss_wh"] + self.books["drive_wh"]
                   - self.books["pack_out_wh"] - self.books["dock_in_wh"])
        values["energy_created_wh"] = f"{created:.4f}"
        values["pack_true_soc"] = f"{self.pack.soc:.6f}"
        values["odom_error_m"] = f"{self._odom_error_m():.4f}"
        for phase, (sim_s, wall_s) in self.phase_books.items():
            values[f"phase/{phase}/sim_s"] = f"{sim_s:.2f}"
            values[f"phase/{phase}/wall_s"] = f"{wall_s:.2f}"
        for vid, car in self.cars.items():
            values[f"car/{vid}/energy_in_wh"] = f"{car.energy_in_wh:.3f}"
            values[f"car/{vid}/soc"] = f"{car.soc:.5f}"
            if vid in self._energy_at_departure:
                values[f"car/{vid}/energy_by_departure_wh"] = f"{self._energy_at_departure[vid]:.3f}"
                values[f"car/{vid}/energy_after_departure_wh"] = f"{self._energy_after_departure.get(vid, 0.0):.3f}"
        msg = DiagnosticStatus(level=DiagnosticStatus.OK, name="loopback_sim", message="running")
        msg.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self.truth_pub.publish(msg)

    def _odom_error_m(self) -> float:
        """How far odometry (anchored at the start pose) has drifted from the true pose (m)."""
        believed = self.garage.depot.pose.compose(self.base.odom_pose)
        return math.hypot(believed.x - self.base.pose.x, believed.y - self.base.pose.y)

    def destroy_node(self):
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        return super().destroy_node()


def main(args=None):
    return run_node(LoopbackSim, args)


if __name__ == "__main__":
    raise SystemExit(main())
