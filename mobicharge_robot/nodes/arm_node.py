"""Arm node: moves the connector by joint trajectories computed from the URDF's kinematics.

Actions (progress and result on ``arm/status``, ``hardware_id`` = action name):
- ``arm/observe_target`` (PoseStamped, expected inlet in the base frame): put the wrist camera in front of it.
- ``arm/plug`` (Trigger): stand off 10 cm out along the detected inlet's axis (``inlet_pose_base``), insert along
  the axis under a force limit until the latch engages at full depth; then ``connector/seated`` becomes true.
- ``arm/unplug`` (Trigger): ``connector/seated`` false, release the latch, retract along the axis, stow.
- ``arm/stow`` (Trigger): go to the stowed configuration.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped, WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from ..core.inlets import load_inlets
from ..core.insertion import STOWED_POSITIONS, InsertionMonitor, camera_view_tip_pose, seated_tip_pose, tip_pose_on_axis
from ..core.kinematics import IKError
from ..core.paths import data_path
from ..core.trajectory import plan_joint_motion, plan_linear_motion
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
        live_parameters(self, {"observe_distance_m": "observe_distance", "standoff_m": "standoff",
                               "insertion_speed_mps": "insert_speed", "force_limit_n": "force_limit",
                               "settle_tolerance_rad": "settle_tol"})
        try:
            self.model = UrdfModel.from_xacro(urdf_file)
            self.chain = self.model.chain(self.base_frame, self.tip_frame)
        except (UrdfError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        if len(self.stowed) != len(self.chain.joint_names):
            raise ConfigurationError(f"stowed_positions has {len(self.stowed)} values; the arm has "
                                     f"{len(self.chain.joint_names)} joints")
        self.inlets = load_inlets()
        self.inlet_type = "ccs2"

        self.q = None
        self.force = np.zeros(3)
        self.latched = False
        self.inlet_base = None
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
        self.create_subscription(PoseStamped, "arm/observe_target", self._on_observe, RELIABLE_QOS)
        self.create_subscription(String, "inlet_type", self._on_inlet_type, LATCHED_QOS)
        self.create_service(Trigger, "arm/plug", self._srv(self._start_plug))
        self.create_service(Trigger, "arm/unplug", self._srv(self._start_unplug))
        self.create_service(Trigger, "arm/stow", self._srv(self._start_stow))
        self.create_timer(0.02, self._tick)
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

    def _on_wrench(self, msg: WrenchStamped):
        f = msg.wrench.force
        self.force = np.array([f.x, f.y, f.z], float)

    def _on_latched(self, msg: Bool):
        self.latched = bool(msg.data)

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
            target = camera_view_tip_pose(T_base_inlet, T_tip_cam, self.observe_distance)
            q_goal = self.chain.ik(target, self.q)
        except (ValueError, IKError) as exc:
            self._end(FAILED, f"camera pose unreachable: {exc}")
            return
        self.inlet_base = None  # only a detection made from this view may drive the insertion
        self._steps = [("traj", plan_joint_motion(self.chain, self.q, q_goal))]

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
        self._publish_status()
        return True

    def _start_plug(self):
        if self.inlet_base is None:
            return False, "no detected inlet pose since the camera pose was reached"
        if not self._can_start("plug"):
            return False, "busy or no joint state"
        inlet = self.inlet_base
        seat_depth = self.inlets[self.inlet_type].seat_depth_m
        try:
            standoff = tip_pose_on_axis(inlet, self.standoff)
            q_stand = self.chain.ik(standoff, self.q)
            to_standoff = plan_joint_motion(self.chain, self.q, q_stand)
            insert = plan_linear_motion(self.chain, q_stand, seated_tip_pose(inlet, seat_depth),
                                        speed_mps=self.insert_speed)
        except IKError as exc:
            self._end(FAILED, f"insertion path unreachable: {exc}")
            return True, "accepted"
        self._seat_target = seated_tip_pose(inlet, seat_depth)
        self._monitor = InsertionMonitor(self.force_limit)
        self._steps = [("traj", to_standoff), ("insert", insert)]
        return True, "accepted"

    def _start_unplug(self):
        if not self._can_start("unplug"):
            return False, "busy or no joint state"
        self.seated_pub.publish(Bool(data=False))  # the energy side de-energizes before the latch opens
        T_tip = self.chain.fk(self.q)
        back = T_tip @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -(self.standoff + 0.04)], [0, 0, 0, 1.0]])
        try:
            retract = plan_linear_motion(self.chain, self.q, back, speed_mps=2.0 * self.insert_speed)
            stow = plan_joint_motion(self.chain, retract.positions[-1], np.asarray(self.stowed, float))
        except IKError as exc:
            self._end(FAILED, f"retraction unreachable: {exc}")
            return True, "accepted"
        self._steps = [("wait", 0.3), ("release", True), ("wait", 0.2), ("traj", retract), ("release", False),
                       ("traj", stow)]
        return True, "accepted"

    def _start_stow(self):
        if not self._can_start("stow"):
            return False, "busy or no joint state"
        self._steps = [("traj", plan_joint_motion(self.chain, self.q, np.asarray(self.stowed, float)))]
        return True, "accepted"

    # ------------------------------------------------------------------ execution
    def _tick(self):
        if self.state != ACTIVE or self.q is None:
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        if self._traj is None:
            if not self._steps:
                self._end(SUCCEEDED)
                return
            kind, arg = self._steps.pop(0)
            if kind == "fail":
                self._end(FAILED, arg)
            elif kind == "wait":
                self._traj, self._traj_end = ("wait", None), now + arg
            elif kind == "release":
                self.release_pub.publish(Bool(data=bool(arg)))
            else:
                self._send(arg)
                self._traj, self._traj_end = (kind, arg), now + float(arg.times[-1])
            return
        kind, traj = self._traj
        if kind == "insert":
            depth_err = float(np.linalg.norm(self.chain.fk(self.q)[:3, 3] - self._seat_target[:3, 3]))
            verdict = self._monitor.update(self.force, self.latched, depth_err)
            if verdict == "seated":
                self._hold()
                self.seated_pub.publish(Bool(data=True))
                self._steps = []
                self._traj = None
                return
            if verdict == "over_force":
                self._hold()
                self._abort_insertion(f"force limit {self.force_limit:.0f} N reached "
                                      f"(axial {abs(self.force[2]):.0f} N)")
                return
            if now > self._traj_end + 3.0:
                self._hold()
                self._abort_insertion("not latched at full depth")
            return
        if now < self._traj_end:
            return
        if kind == "traj" and np.max(np.abs(self.q - traj.positions[-1])) > self.settle_tol:
            if now > self._traj_end + 3.0:
                self._end(FAILED, "the arm did not reach its target")
            return
        self._traj = None

    def _abort_insertion(self, reason: str):
        """Retract along the axis to the stand-off, then report the failure."""
        T_tip = self.chain.fk(self.q)
        back = T_tip @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -self.standoff], [0, 0, 0, 1.0]])
        self._traj = None
        try:
            self._steps = [("traj", plan_linear_motion(self.chain, self.q, back, speed_mps=self.insert_speed)),
                           ("fail", reason)]
        except IKError as exc:
            self._steps = [("fail", f"{reason}; retraction unreachable: {exc}")]

    def _end(self, state, reason=""):
        self.state = state
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
