"""Arm node: moves the connector by joint trajectories computed from the URDF's kinematics.

Actions (progress and result on ``arm/status``, ``hardware_id`` = action name):
- ``arm/observe_target`` (PoseStamped, expected inlet in the base frame): put the wrist camera in front of it.
- ``arm/plug`` (Trigger): stand off 10 cm out along the detected inlet's axis (``inlet_pose_base``), then run the
  force-guided insertion (``core.arm.InsertionController``: admittance from ``wrist_wrench``, spiral search, at most
  3 retries, axial force limit) until the latch engages at full depth; then ``connector/seated`` becomes true.
  Every joint move is collision-checked first (self, ground, the car box behind the perceived inlet). A wrench or
  inlet pose that is too old stops the motion.
- ``arm/unplug`` (Trigger): ``connector/seated`` false; wait for the output to read off, open the latch and wait for
  ``connector/latched`` false, retract along the axis and confirm the connector is clear; then stow. Each wait is on
  feedback with a timeout that fails the action with its reason.
- ``arm/stow`` (Trigger): go to the stowed configuration.
"""
from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from ..core.vision.inlets import load_inlets
from ..core.arm.collision import (CONNECTOR_LINKS, ArmCollisionChecker, MotionInCollision, car_box_from_inlet,
                                  plan_free_joint_motion)
from ..core.arm.insertion import (STOWED_POSITIONS, InsertionController, InsertionMonitor, InsertionParams,
                                  camera_view_candidates, tip_pose_on_axis)
from ..core.arm.kinematics import IKError
from ..core.paths import data_path
from ..core.arm.trajectory import (PATH_POS_TOL_M, PATH_ROT_TOL_RAD, TrajectoryError, plan_joint_motion,
                                   plan_linear_motion)
from ..core.arm.urdf_model import UrdfError, UrdfModel
from .ros_common import (
    ACTIVE,
    FAILED,
    IDLE,
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    SUCCEEDED,
    ConfigurationError,
    StatusPublisher,
    declare,
    live_parameters,
    pose_to_matrix,
    run_node,
    task_status,
)


class ArmNode(Node):
    def __init__(self):
        super().__init__("arm")
        urdf_file = declare(self, "urdf_file", data_path("urdf", "mobicharge.urdf.xacro"),
                            "Robot description; kinematics and joint limits are read from it.", read_only=True)
        self.base_frame = declare(self, "base_frame", "base_link", "Arm base frame id.", read_only=True)
        self.tip_frame = declare(self, "tip_frame", "connector_tip", "Connector tip frame id.", read_only=True)
        self.camera_frame = declare(self, "camera_frame", "wrist_camera_optical", "Wrist camera optical frame.",
                                    read_only=True)
        self.stowed = declare(self, "stowed_positions", list(STOWED_POSITIONS),
                              "Stowed joint positions (rad), in chain order.", read_only=True)
        self.observe_distance = declare(self, "observe_distance_m", 0.30,
                                        "Camera distance from the inlet for fine detection (m).", lo=0.1, hi=0.8)
        self.standoff = declare(self, "standoff_m", 0.10, "Stand-off along the inlet axis before insertion (m).",
                                lo=0.03, hi=0.3)
        self.insert_speed = declare(self, "insertion_speed_mps", 0.02, "Connector speed along the axis (m/s).",
                                    lo=0.001, hi=0.1)
        self.force_limit = declare(self, "force_limit_n", 100.0, "Axial force limit during insertion (N).",
                                   lo=10.0, hi=300.0)
        self.settle_tol = declare(self, "settle_tolerance_rad", 0.01,
                                  "Joint error under which a motion counts as finished (rad).", lo=1e-4, hi=0.1)
        self.stale_s = declare(self, "stale_wrench_s", 0.5, "A wrench older than this stops the insertion (s).",
                               lo=0.02, hi=2.0)
        self.inlet_max_age = declare(self, "inlet_max_age_s", 60.0,
                                     "An inlet pose older than this is not used to plug in (s).", lo=1.0, hi=600.0)
        self.feedback_timeout = declare(self, "release_timeout_s", 5.0,
                                        "Wait for output off / latch open / clear before failing a release (s, sim and steady clock).",
                                        lo=0.5, hi=60.0)
        live_parameters(self, {"observe_distance_m": "observe_distance", "standoff_m": "standoff",
                               "insertion_speed_mps": "insert_speed", "force_limit_n": "force_limit",
                               "settle_tolerance_rad": "settle_tol", "stale_wrench_s": "stale_s",
                               "inlet_max_age_s": "inlet_max_age", "release_timeout_s": "feedback_timeout"})
        try:
            self.model = UrdfModel.from_xacro(urdf_file)
            self.chain = self.model.chain(self.base_frame, self.tip_frame)
            self.checker = ArmCollisionChecker(self.model, self.chain)
        except (UrdfError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        if len(self.stowed) != len(self.chain.joint_names):
            raise ConfigurationError(f"stowed_positions has {len(self.stowed)} values; the arm has "
                                     f"{len(self.chain.joint_names)} joints")
        self.inlets = load_inlets()
        self.inlet_type = "ccs2"

        self.q = None
        self.force = np.zeros(3)
        self.torque = np.zeros(3)
        self.wrench_t = None  # stamp (s) of the last wrench
        self.inlet_t = None  # stamp (s) of the inlet pose
        self.output_current = None
        self.latched = False
        self.seated = False
        self.inlet_base = None
        self._ctl = None
        self._latch_release = False
        self._await_wall_end = 0.0
        self._late_since = None
        self._insert_q = None
        self._insert_t = 0.0
        self.action, self.state = "", IDLE
        self._steps = []  # queued steps: ('traj'|'insert', trajectory), ('wait', s), ('release', bool), ('fail', why)
        self._traj = None
        self._traj_end = 0.0
        self._monitor = None
        self._seat_target = None

        self.traj_pub = self.create_publisher(JointTrajectoryMsg, "arm_controller/joint_trajectory", RELIABLE_QOS)
        self.status_pub = StatusPublisher(self, "arm/status")
        self.seated_pub = self.create_publisher(Bool, "connector/seated", LATCHED_QOS)
        self.release_pub = self.create_publisher(Bool, "connector/release", LATCHED_QOS)
        self.create_subscription(JointState, "joint_states", self._on_joints, SENSOR_QOS)
        self.create_subscription(WrenchStamped, "wrist_wrench", self._on_wrench, SENSOR_QOS)
        self.create_subscription(Bool, "connector/latched", self._on_latched, RELIABLE_QOS)
        self.create_subscription(PoseStamped, "inlet_pose_base", self._on_inlet, RELIABLE_QOS)
        self.create_subscription(BatteryState, "dc_output/measurement", self._on_output, RELIABLE_QOS)
        self.create_subscription(PoseStamped, "arm/observe_target", self._on_observe, RELIABLE_QOS)
        self.create_subscription(String, "inlet_type", self._on_inlet_type, LATCHED_QOS)
        self.create_service(Trigger, "arm/plug", self._srv(self._start_plug))
        self.create_service(Trigger, "arm/unplug", self._srv(self._start_unplug))
        self.create_service(Trigger, "arm/stow", self._srv(self._start_stow))
        # The 50 Hz (sim time) step runs only while an action is active: idle, it would cost CPU at every tick of a
        # sped-up simulation for nothing.
        self._timer = self.create_timer(0.02, self._tick)
        self._timer.cancel()
        self.seated_pub.publish(Bool(data=False))
        self.release_pub.publish(Bool(data=False))
        self._publish_status()

    # ------------------------------------------------------------------ inputs
    def _on_joints(self, msg: JointState):
        pos = dict(zip(msg.name, msg.position))
        try:
            q = np.array([pos[n] for n in self.chain.joint_names], float)
        except KeyError:
            return  # a joint_states message from another controller (e.g. the wheels)
        if np.all(np.isfinite(q)):
            self.q = q

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_wrench(self, msg: WrenchStamped):
        f, t = msg.wrench.force, msg.wrench.torque
        force = np.array([f.x, f.y, f.z], float)
        torque = np.array([t.x, t.y, t.z], float)
        if not (np.all(np.isfinite(force)) and np.all(np.isfinite(torque))):
            self.get_logger().warning("ignoring a non-finite wrench")
            return
        self.force, self.torque = force, torque
        self.wrench_t = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    def _on_output(self, msg: BatteryState):
        if np.isfinite(msg.current):
            self.output_current = float(msg.current)

    def _on_latched(self, msg: Bool):
        self.latched = bool(msg.data)
        if self.seated and not self.latched:
            self.seated = False  # the plug came loose: the energy side must stop
            self.seated_pub.publish(Bool(data=False))

    def _on_inlet_type(self, msg: String):
        if msg.data in self.inlets:
            self.inlet_type = msg.data
        else:
            self.get_logger().warning(f"unknown inlet type '{msg.data}'; keeping '{self.inlet_type}'")

    def _on_inlet(self, msg: PoseStamped):
        if msg.header.frame_id != self.base_frame:
            self.get_logger().warning(f"inlet pose in frame '{msg.header.frame_id}', expected '{self.base_frame}'")
            return
        try:
            self.inlet_base = pose_to_matrix(msg.pose)
            self.inlet_t = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        except ValueError as exc:
            self.get_logger().warning(f"ignoring inlet pose: {exc}")

    def _on_observe(self, msg: PoseStamped):
        if not self._can_start("observe"):
            return
        try:
            if msg.header.frame_id != self.base_frame:
                raise ValueError(f"target frame '{msg.header.frame_id}' is not '{self.base_frame}'")
            T_base_inlet = pose_to_matrix(msg.pose)
            T_tip_cam = np.linalg.inv(self.chain.fk(self.q)) @ self.chain.fk_frame(self.q, self.camera_frame)
            car = car_box_from_inlet(T_base_inlet)
            moves, why = None, ""
            for target in camera_view_candidates(T_base_inlet, T_tip_cam, self.observe_distance):
                try:
                    moves = plan_free_joint_motion(self.chain, self.checker, self.q, target, car,
                                                   via=[self.stowed], seeds=[self.stowed])
                    break
                except (IKError, MotionInCollision) as exc:
                    why = str(exc)
            if moves is None:
                raise MotionInCollision(why)
        except (ValueError, IKError, MotionInCollision) as exc:
            self._end(FAILED, f"camera pose unreachable: {exc}")
            return
        self.inlet_base = None  # only a detection made from this view may drive the insertion
        self._steps = [("traj", m) for m in moves]

    # ------------------------------------------------------------------ actions
    def _srv(self, start):
        def handler(request, response):
            ok, message = start()
            response.success, response.message = ok, message
            return response

        return handler

    def _can_start(self, action: str) -> bool:
        if self.q is None:
            self.action = action
            self._end(FAILED, "no joint_states received")
            return False
        if self.state == ACTIVE and self.action != action:
            self.get_logger().warning(f"'{action}' refused: '{self.action}' is running")
            return False
        self.action, self.state = action, ACTIVE
        self._traj = None
        self._timer.reset()
        self._publish_status()
        return True

    def _start_plug(self):
        if self.inlet_base is None:
            return False, "no detected inlet pose since the camera pose was reached"
        if not self._can_start("plug"):
            return False, "busy or no joint state"
        age = self._now() - (self.inlet_t or -1e9)
        if age > self.inlet_max_age:
            self._end(FAILED, f"lost inlet: the detected pose is {age:.1f} s old")
            return True, "accepted"
        inlet = self.inlet_base
        seat_depth = self.inlets[self.inlet_type].seat_depth_m
        params = InsertionParams(force_limit_n=self.force_limit, seat_depth_m=seat_depth,
                                 speed_mps=self.insert_speed, stale_after_s=self.stale_s,
                                 inlet_max_age_s=self.inlet_max_age)
        ctl = InsertionController(params)
        car = car_box_from_inlet(inlet)
        try:
            to_standoff = plan_free_joint_motion(self.chain, self.checker, self.q, tip_pose_on_axis(inlet, self.standoff),
                                                 car, via=[self.stowed], seeds=[self.stowed])
            q_stand = to_standoff[-1].positions[-1]
            approach = plan_linear_motion(self.chain, q_stand, inlet @ ctl.pose(), speed_mps=self.insert_speed)
            self.checker.check_path(approach.positions, car, allow_car=CONNECTOR_LINKS)
        except (IKError, MotionInCollision) as exc:
            self._end(FAILED, f"insertion path refused: {exc}")
            return True, "accepted"
        self._ctl = ctl
        self._monitor = InsertionMonitor(self.force_limit)
        self._insert_q = approach.positions[-1].copy()
        self._steps = [("traj", m) for m in to_standoff] + [("traj", approach), ("insert", None)]
        return True, "accepted"

    def _start_unplug(self):
        if not self._can_start("unplug"):
            return False, "busy or no joint state"
        self.seated = False
        self.seated_pub.publish(Bool(data=False))  # the energy side de-energizes before the latch opens
        t = self.feedback_timeout
        out_off = ("await", (lambda: self.output_current is None or abs(self.output_current) < 0.5, t,
                             "failed release: the output did not read off"))
        latch_open = ("await", (lambda: not self.latched, t, "failed release: the latch did not open"))
        self._steps = [out_off, ("release", True), latch_open, ("retract", None),
                       ("await", (self._clear_of_inlet, t, "failed release: the connector is not clear")),
                       ("release", False), ("stow", None)]
        return True, "accepted"

    def _clear_of_inlet(self) -> bool:
        """The connector is withdrawn: its tip is out of the inlet face by more than half the stand-off (measured
        from the joint states against the inlet pose it was plugged into), and the latch reads open."""
        if self.inlet_base is None:
            return not self.latched
        tip_in_inlet = np.linalg.inv(self.inlet_base) @ self.chain.fk(self.q)
        return (not self.latched) and float(tip_in_inlet[2, 3]) > 0.5 * self.standoff

    def _start_stow(self):
        if not self._can_start("stow"):
            return False, "busy or no joint state"
        try:
            self._steps = [("traj", self._stow_plan())]
        except MotionInCollision as exc:
            self._end(FAILED, f"stowing refused: {exc}")
        return True, "accepted"

    def _stow_plan(self):
        """The joint move to the stowed configuration, collision-checked (car box when an inlet is known)."""
        move = plan_joint_motion(self.chain, self.q, np.asarray(self.stowed, float))
        car = car_box_from_inlet(self.inlet_base) if self.inlet_base is not None else None
        self.checker.check_path(move.positions, car)
        return move

    # ------------------------------------------------------------------ execution
    def _tick(self):
        if self.state != ACTIVE or self.q is None:
            return
        now = self._now()
        if self._traj is None:
            if not self._steps:
                self._end(SUCCEEDED)
                return
            kind, arg = self._steps.pop(0)
            if kind == "fail":
                self._end(FAILED, arg)
            elif kind == "wait":
                self._traj, self._traj_end = ("wait", None), now + arg
            elif kind == "await":
                # The timeout must pass both in sim time and on the steady clock: the simulator may run hundreds of
                # times faster than real time while a car charges, and the other nodes react in real time.
                self._traj, self._traj_end = ("await", arg), now + arg[1]
                self._await_wall_end = time.monotonic() + arg[1]
            elif kind == "release":
                self.release_pub.publish(Bool(data=bool(arg)))
            elif kind == "insert":
                self._traj, self._insert_t = ("insert", None), now
            elif kind == "retract":
                if self._clear_of_inlet():
                    return  # nothing to pull out (e.g. the release after a failed search): go on to stowing
                try:
                    self._steps.insert(0, ("traj", self._retract_plan(self.standoff + 0.04)))
                except (IKError, TrajectoryError) as exc:
                    self._hold()
                    self._end(FAILED, f"retraction unreachable: {exc}")
            elif kind == "stow":
                try:
                    self._steps.insert(0, ("traj", self._stow_plan()))
                except MotionInCollision as exc:
                    self._end(FAILED, f"stowing refused: {exc}")
            else:
                self._send(arg)
                self._traj, self._traj_end = (kind, arg), now + float(arg.times[-1])
            return
        kind, traj = self._traj
        if kind == "insert":
            self._insert_tick(now)
            return
        if kind == "await":
            check, _, reason = traj
            if check():
                self._traj = None
            elif now > self._traj_end and time.monotonic() > self._await_wall_end:
                self.release_pub.publish(Bool(data=False))
                self._end(FAILED, reason)
            return
        if now < self._traj_end:
            return
        if kind == "traj" and np.max(np.abs(self.q - traj.positions[-1])) > self.settle_tol:
            # Late by 3 s of sim time and of steady time: a loaded machine delays messages in wall time, which a
            # fast simulator turns into many sim seconds.
            if self._late_since is None:
                self._late_since = time.monotonic()
            if now > self._traj_end + 3.0 and time.monotonic() - self._late_since > 3.0:
                err = float(np.max(np.abs(self.q - traj.positions[-1])))
                self._end(FAILED, f"the arm did not reach its target ({err:.3f} rad off)")
            return
        self._late_since = None
        self._traj = None

    def _insert_tick(self, now: float):
        """One 50 Hz step of the force-guided insertion: controller, then a short trajectory to its command."""
        dt = 0.02
        wrench_age = now - self.wrench_t if self.wrench_t is not None else float("inf")
        inlet_age = now - self.inlet_t if self.inlet_t is not None else float("inf")
        step = self._ctl.step(self.force, self.torque, self.latched, dt, wrench_age, inlet_age)
        self._monitor.peak_force_n = self._ctl.peak_force_n
        if step.release_latch != self._latch_release:
            # Retracting a plug the latch still holds (partial insertion): open the latch first.
            self._latch_release = step.release_latch
            self.release_pub.publish(Bool(data=step.release_latch))
        if step.state == "seated":
            self._hold()
            self.seated = True
            self.seated_pub.publish(Bool(data=True))
            self._traj, self._steps = None, []
            return
        if step.state == "failed":
            self._hold()
            self._abort_insertion(step.reason)
            return
        try:
            q = self.chain.ik(self.inlet_base @ step.T_inlet_tip, self._insert_q, pos_tol=PATH_POS_TOL_M,
                              rot_tol=PATH_ROT_TOL_RAD, max_restarts=0)
        except IKError as exc:
            self._hold()
            self._abort_insertion(f"insertion command unreachable: {exc.reason}")
            return
        self._insert_q = q
        msg = JointTrajectoryMsg()
        msg.joint_names = list(self.chain.joint_names)
        pt = JointTrajectoryPoint(positions=[float(v) for v in q])
        pt.time_from_start.nanosec = int(2 * dt * 1e9)
        msg.points = [pt]
        self.traj_pub.publish(msg)

    def _retract_plan(self, distance: float):
        T_tip = self.chain.fk(self.q)
        back = T_tip @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -distance], [0, 0, 0, 1.0]])
        return plan_linear_motion(self.chain, self.q, back, speed_mps=2.0 * self.insert_speed)

    def _abort_insertion(self, reason: str):
        """Retract along the axis to the stand-off, then report the failure (the connector is left retracted)."""
        self._traj = None
        self.seated = False
        self.seated_pub.publish(Bool(data=False))
        if self._latch_release:
            self._latch_release = False
            self.release_pub.publish(Bool(data=False))
        try:
            self._steps = [("traj", self._retract_plan(self.standoff)), ("fail", reason)]
        except (IKError, TrajectoryError) as exc:
            self._steps = [("fail", f"{reason}; retraction unreachable: {exc}")]

    def _end(self, state, reason=""):
        self.state = state
        self._timer.cancel()
        self._traj = None
        self._steps = []
        self._publish_status(reason=reason)
        if state == FAILED:
            self.get_logger().warning(f"arm {self.action} failed: {reason}")

    def _hold(self):
        traj = JointTrajectoryMsg()
        traj.joint_names = list(self.chain.joint_names)
        pt = JointTrajectoryPoint(positions=[float(v) for v in self.q])
        traj.points = [pt]
        self.traj_pub.publish(traj)

    def _send(self, traj):
        msg = JointTrajectoryMsg()
        msg.header.stamp.sec = 0  # zero stamp: start on receipt, as joint_trajectory_controller does
        msg.joint_names = list(traj.joint_names)
        for t, q, v in zip(traj.times, traj.positions, traj.velocities):
            pt = JointTrajectoryPoint()
            pt.positions = [float(x) for x in q]
            pt.velocities = [float(x) for x in v]
            pt.time_from_start.sec = int(t)
            pt.time_from_start.nanosec = int(round((t - int(t)) * 1e9))
            msg.points.append(pt)
        self.traj_pub.publish(msg)

    def _publish_status(self, reason=""):
        peak = self._monitor.peak_force_n if self._monitor else 0.0
        self.status_pub.publish(task_status("arm", self.state, self.action, reason=reason,
                                            peak_force_n=round(peak, 1)))


def main(args=None):
    return run_node(ArmNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
