"""Port detection node: finds the car's charge inlet in the wrist camera image and publishes its pose.

It runs only while enabled (``detect_port/enable``, std_srvs/SetBool): the camera subscriptions exist only then, so an
idle detector costs nothing. ``inlet_type`` (latched String) selects the inlet model. Once ``required_consistent``
consecutive detections agree it publishes ``inlet_pose`` (camera optical frame) and ``inlet_pose_base`` (base frame,
from the arm's joint states at the image's time stamp, interpolated, and the URDF), and ``detect_port/status`` says
'located'; after ``timeout_s`` without that it says 'failed'.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool

from ..core.vision.camera import CameraModel
from ..core.vision.inlets import load_inlets
from ..core.paths import data_path
from ..core.vision.debug_draw import draw_detection
from ..core.vision.joint_history import JointHistory
from ..core.vision.port_detector import PortNotFound, PortTracker, detect_port
from ..core.arm.urdf_model import UrdfError, UrdfModel
from .image_conv import ImageFormatError, image_to_rgb, rgb_to_image
from .ros_common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    ConfigurationError,
    StatusPublisher,
    declare,
    live_parameters,
    matrix_to_pose_stamped,
    run_node,
    task_status,
)


class PortDetectionNode(Node):
    def __init__(self):
        super().__init__("port_detection")
        urdf_file = declare(self, "urdf_file", data_path("urdf", "mobicharge.urdf.xacro"),
                            "Robot description, for the camera's pose on the arm.", read_only=True)
        self.base_frame = declare(self, "base_frame", "base_link", "Robot base frame id.", read_only=True)
        self.camera_frame = declare(self, "camera_frame", "wrist_camera_optical",
                                    "Camera optical frame id (used when camera_info has none).", read_only=True)
        self.required = declare(self, "required_consistent", 3, "Consecutive consistent detections needed.",
                                lo=1, hi=20)
        self.timeout = declare(self, "timeout_s", 20.0, "Report 'failed to detect' after this long (s).",
                               lo=0.5, hi=120.0)
        self.publish_debug = declare(self, "publish_debug_image", True, "Publish detect_port/debug_image.")
        live_parameters(self, {"required_consistent": "required", "timeout_s": "timeout",
                               "publish_debug_image": "publish_debug"})
        try:
            self.model = UrdfModel.from_xacro(urdf_file)
        except (UrdfError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self.inlets = load_inlets()
        self.inlet_type = "ccs2"
        self.joints = JointHistory()
        self.camera = None
        self.enabled = False
        self.tracker = None
        self._subs = []
        self.state = "idle"

        self.pose_pub = self.create_publisher(PoseStamped, "inlet_pose", RELIABLE_QOS)
        self.pose_base_pub = self.create_publisher(PoseStamped, "inlet_pose_base", RELIABLE_QOS)
        self.status_pub = StatusPublisher(self, "detect_port/status")
        self.debug_pub = self.create_publisher(Image, "detect_port/debug_image", SENSOR_QOS)
        self.create_subscription(JointState, "joint_states", self._on_joints, SENSOR_QOS)
        self.create_subscription(String, "inlet_type", self._on_inlet_type, LATCHED_QOS)
        self.create_service(SetBool, "detect_port/enable", self._on_enable)
        self._timer = self.create_timer(0.1, self._check_timeout)  # runs only while enabled
        self._timer.cancel()
        self._publish_status()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_enable(self, request, response):
        if request.data and not self.enabled:
            self.tracker = PortTracker(required_consistent=self.required, timeout_s=self.timeout)
            self.tracker.reset(self._now())
            self._subs = [self.create_subscription(Image, "camera/image_raw", self._on_image, SENSOR_QOS),
                          self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, SENSOR_QOS)]
            self.enabled = True
            self.state = "searching"
            self._timer.reset()
        elif not request.data and self.enabled:
            for sub in self._subs:
                self.destroy_subscription(sub)
            self._subs = []
            self.enabled = False
            self.state = "idle"
            self._timer.cancel()
        self._publish_status()
        response.success, response.message = True, self.state
        return response

    def _on_inlet_type(self, msg: String):
        if msg.data in self.inlets:
            self.inlet_type = msg.data
        else:
            self.get_logger().warning(f"unknown inlet type '{msg.data}' (known: {sorted(self.inlets)})")

    def _on_joints(self, msg: JointState):
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        if stamp <= 0.0:
            stamp = self._now()  # an unstamped driver: its messages are as old as their arrival
        self.joints.add(stamp, {n: p for n, p in zip(msg.name, msg.position) if np.isfinite(p)})

    def _on_info(self, msg: CameraInfo):
        try:
            self.camera = CameraModel(width=msg.width, height=msg.height, K=np.array(msg.k, float).reshape(3, 3),
                                      D=np.array(msg.d, float), distortion_model=msg.distortion_model or "plumb_bob",
                                      frame_id=msg.header.frame_id or self.camera_frame)
        except (ValueError, TypeError) as exc:
            self.get_logger().warning(f"ignoring camera_info: {exc}", throttle_duration_sec=5.0)

    def _on_image(self, msg: Image):
        if not self.enabled or self.camera is None or self.state != "searching":
            return
        try:
            rgb = image_to_rgb(msg)
        except ImageFormatError as exc:
            self.get_logger().warning(f"ignoring image: {exc}", throttle_duration_sec=5.0)
            return
        det = None
        reason = ""
        try:
            det = detect_port(rgb, self.camera, self.inlets[self.inlet_type])
        except PortNotFound as exc:
            reason = exc.reason
        status = self.tracker.update(det, self._now())
        if self.publish_debug and self.count_subscribers(self.debug_pub.topic_name) > 0:
            self.debug_pub.publish(rgb_to_image(draw_detection(rgb, self.camera, det, reason), msg.header))
        if status == "located":
            T_cam_inlet = self.tracker.pose
            frame = msg.header.frame_id or self.camera.frame_id
            self.pose_pub.publish(matrix_to_pose_stamped(T_cam_inlet, frame, msg.header.stamp))
            stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            # The arm at the image's time; a joint with no sample near it (a stale driver) keeps its latest value.
            joints = {**self.joints.latest(), **(self.joints.at(stamp) if stamp > 0.0 else {})}
            T_base_cam = self.model.transform(joints, frame, self.base_frame)
            self.pose_base_pub.publish(matrix_to_pose_stamped(T_base_cam @ T_cam_inlet, self.base_frame,
                                                              msg.header.stamp))
            self.state = "located"
            self._publish_status(reprojection_error_px=round(det.reprojection_error_px if det else -1.0, 3))
        elif status == "failed":
            self.state = "failed"
            self._publish_status(reason=f"failed to detect: {reason or 'no consistent detection'}")

    def _check_timeout(self):
        if self.enabled and self.state == "searching" and self.tracker is not None:
            if self.tracker.update(None, self._now()) == "failed":
                self.state = "failed"
                self._publish_status(reason="failed to detect: no image with a consistent inlet")

    def _publish_status(self, reason="", **values):
        self.status_pub.publish(task_status("port_detection", self.state, self.inlet_type, reason=reason,
                                            **values))


def main(args=None):
    return run_node(PortDetectionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
