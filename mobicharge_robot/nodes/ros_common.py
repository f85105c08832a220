"""Shared rclpy glue: QoS profiles, parameter declaration with descriptors, message conversions, task status.

Only the Humble rclpy API is used. Nothing here holds behaviour: it converts between messages and core types.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable, Dict, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from ..core.geometry import Pose2D, make_transform, matrix_to_quaternion, quaternion_to_matrix, yaw_from_quaternion

SENSOR_QOS = qos_profile_sensor_data
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
# Metering data: every sample counts towards billed energy, so none may be dropped under load.
METER_QOS = QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

# Task status, published as diagnostic_msgs/DiagnosticStatus on '<task>/status'. The message field carries the
# state; values carry the goal id, the failure code and task-specific figures.
IDLE, ACTIVE, SUCCEEDED, FAILED = "idle", "active", "succeeded", "failed"


def declare(node: Node, name: str, default: Any, description: str, *, read_only: bool = False,
            lo: Optional[float] = None, hi: Optional[float] = None) -> Any:
    """Declare a parameter with a descriptor (description, range, read-only) and return its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if lo is not None and hi is not None:
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return node.declare_parameter(name, default, desc).value


def live_parameters(node: Node, attributes: Dict[str, str],
                    validators: Optional[Dict[str, Callable[[Any], Optional[str]]]] = None) -> None:
    """Apply changes of the named parameters at run time: parameter name -> node attribute that holds its value.

    Ranges are enforced by the descriptors; ``validators`` may add checks (return None, or the reason to refuse).
    Parameters not named here are read-only or only read at start-up.
    """

    def on_set(params):
        for p in params:
            check = (validators or {}).get(p.name)
            reason = check(p.value) if check else None
            if reason:
                return SetParametersResult(successful=False, reason=f"{p.name}: {reason}")
        for p in params:
            if p.name in attributes:
                setattr(node, attributes[p.name], p.value)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def task_status(name: str, state: str, goal_id: str = "", code: str = "", reason: str = "",
                **values: Any) -> DiagnosticStatus:
    level = DiagnosticStatus.ERROR if state == FAILED else DiagnosticStatus.OK
    msg = DiagnosticStatus(level=level, name=name, message=state, hardware_id=goal_id)
    kv = {"code": code, "reason": reason}
    kv.update(values)
    msg.values = [KeyValue(key=k, value=_fmt(v)) for k, v in kv.items()]
    return msg


class StatusPublisher:
    """A task's status: latched on ``<task>/status`` for the other nodes, and on ``/diagnostics`` (once on change,
    then at 1 Hz) for the ROS diagnostics tools. The diagnostic name is prefixed with the node's namespace so that
    several robots stay apart."""

    def __init__(self, node: Node, topic: str):
        from diagnostic_msgs.msg import DiagnosticArray

        self._node = node
        self._array_type = DiagnosticArray
        self._status_pub = node.create_publisher(DiagnosticStatus, topic, LATCHED_QOS)
        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        self._last: Optional[DiagnosticStatus] = None
        ns = node.get_namespace().strip("/")
        self._prefix = f"{ns}/" if ns else ""
        node.create_timer(1.0, self._republish)

    def publish(self, status: DiagnosticStatus) -> None:
        self._status_pub.publish(status)
        self._last = status
        self._republish()

    def _republish(self) -> None:
        if self._last is None:
            return
        diag = DiagnosticStatus(level=self._last.level, name=f"{self._prefix}{self._node.get_name()}",
                                message=self._last.message, hardware_id=self._last.hardware_id,
                                values=self._last.values)
        arr = self._array_type(status=[diag])
        arr.header.stamp = self._node.get_clock().now().to_msg()
        self._diag_pub.publish(arr)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def status_values(msg: DiagnosticStatus) -> Dict[str, str]:
    return {kv.key: kv.value for kv in msg.values}


def pose2d_to_msg(p: Pose2D, frame_id: str, stamp) -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    msg.pose.position.x, msg.pose.position.y = p.x, p.y
    msg.pose.orientation.z, msg.pose.orientation.w = math.sin(0.5 * p.yaw), math.cos(0.5 * p.yaw)
    return msg


def matrix_to_pose(t: np.ndarray) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in t[:3, 3])
    qx, qy, qz, qw = matrix_to_quaternion(t[:3, :3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = qx, qy, qz, qw
    return pose


def matrix_to_pose_stamped(t: np.ndarray, frame_id: str, stamp) -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    msg.pose = matrix_to_pose(t)
    return msg


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """Raises ValueError for a non-finite position or a degenerate quaternion."""
    p = pose.position
    o = pose.orientation
    vals = (p.x, p.y, p.z, o.x, o.y, o.z, o.w)
    if not all(math.isfinite(v) for v in vals):
        raise ValueError("pose contains NaN or infinity")
    return make_transform(quaternion_to_matrix(o.x, o.y, o.z, o.w), (p.x, p.y, p.z))


def pose_to_pose2d(pose: Pose) -> Pose2D:
    o = pose.orientation
    vals = (pose.position.x, pose.position.y, o.x, o.y, o.z, o.w)
    if not all(math.isfinite(v) for v in vals):
        raise ValueError("pose contains NaN or infinity")
    if o.x == o.y == o.z == o.w == 0.0:
        raise ValueError("pose has an all-zero quaternion")
    return Pose2D(pose.position.x, pose.position.y, yaw_from_quaternion(o.x, o.y, o.z, o.w))


class PlanarTf:
    """Broadcasts planar transforms on /tf where tf2_ros is installed (a ROS installation); a no-op elsewhere."""

    def __init__(self, node: Node):
        try:
            from tf2_ros import TransformBroadcaster
        except ImportError:
            self._tf = None
        else:
            self._tf = TransformBroadcaster(node)

    def send(self, stamp, parent: str, child: str, pose: Pose2D) -> None:
        if self._tf is None:
            return
        from geometry_msgs.msg import TransformStamped

        t = TransformStamped()
        t.header.stamp = stamp
        t.header.frame_id = parent
        t.child_frame_id = child
        t.transform.translation.x, t.transform.translation.y = pose.x, pose.y
        t.transform.rotation.z, t.transform.rotation.w = math.sin(0.5 * pose.yaw), math.cos(0.5 * pose.yaw)
        self._tf.sendTransform(t)


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def run_node(node_factory: Callable[[], Node], args=None, multithreaded: bool = False) -> int:
    """The common ``main``: init, spin until Ctrl-C or shutdown, clean up; a user error exits 2 without a traceback."""
    rclpy.init(args=args)
    node = None
    try:
        node = node_factory()
        if multithreaded:
            from rclpy.executors import MultiThreadedExecutor

            executor = MultiThreadedExecutor(num_threads=2)
        else:
            from rclpy.executors import SingleThreadedExecutor

            executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except KeyboardInterrupt:
        pass
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except rclpy.executors.ExternalShutdownException:
        pass
    except RuntimeError:
        if rclpy.ok():
            raise  # a real error; the same exception during Ctrl-C is rclpy tearing down mid-take
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    fatal = getattr(node, "fatal_error", "")
    if fatal:
        print(f"error: {fatal}", file=sys.stderr)
        return 1
    return 0


class ConfigurationError(Exception):
    """A user mistake in parameters or files, reported as one clear line at start-up."""
