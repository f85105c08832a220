"""Pinhole camera with lens distortion, and the ROS camera calibration YAML format.

Points are given in the camera's optical frame (``wrist_camera_optical``: z forward, x right, y down), in metres;
pixel coordinates follow OpenCV (u right, v down, origin at the centre of the top-left pixel).
"""
from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np
import yaml

# Number of coefficients each supported ROS distortion model carries (sensor_msgs/distortion_models.h).
_N_COEFFS = {"plumb_bob": 5, "rational_polynomial": 8}


class CameraInfoError(ValueError):
    """A camera description (YAML or values) is missing fields or inconsistent."""


class CameraModel:
    """Intrinsics ``K`` (3x3, pixels), distortion ``D`` (OpenCV order k1 k2 p1 p2 k3 [k4 k5 k6]) and image size."""

    def __init__(self, width: int, height: int, K, D, distortion_model: str = "plumb_bob",
                 frame_id: str = "wrist_camera_optical", name: str = "wrist_camera"):
        try:
            K = np.array(K, dtype=float).reshape(3, 3)
            D = np.array(D, dtype=float).ravel()
        except (TypeError, ValueError) as exc:
            raise CameraInfoError(f"K must be 3x3 and D a vector of numbers: {exc}") from exc
        if int(width) <= 0 or int(height) <= 0:
            raise CameraInfoError(f"image size must be positive, got {width}x{height}")
        if distortion_model not in _N_COEFFS:
            raise CameraInfoError(f"unsupported distortion model '{distortion_model}' "
                                  f"(supported: {', '.join(sorted(_N_COEFFS))})")
        need = _N_COEFFS[distortion_model]
        if len(D) == 0:
            D = np.zeros(need)  # an empty D means an ideal lens in sensor_msgs/CameraInfo
        if len(D) != need:
            raise CameraInfoError(f"{distortion_model} needs {need} distortion coefficients, got {len(D)}")
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(D))):
            raise CameraInfoError("K and D must be finite")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(K[2, 2] - 1.0) > 1e-9 or np.any(K[1:, 0]) or np.any(K[2, :2]):
            raise CameraInfoError(f"K is not an upper-triangular intrinsic matrix with positive focal lengths: "
                                  f"{K.tolist()}")
        self.width = int(width)
        self.height = int(height)
        self.K = K
        self.D = D
        self.distortion_model = distortion_model
        self.frame_id = frame_id
        self.name = name

    def __repr__(self) -> str:
        return (f"CameraModel({self.width}x{self.height}, fx={self.K[0, 0]:.1f}, fy={self.K[1, 1]:.1f}, "
                f"cx={self.K[0, 2]:.1f}, cy={self.K[1, 2]:.1f}, {self.distortion_model} D={self.D.tolist()})")

    # ------------------------------------------------------------------ projection

    def project(self, points_cam) -> np.ndarray:
        """Pixels (N, 2) of points (N, 3) in the optical frame, with distortion (cv2.projectPoints semantics).

        Points must lie in front of the camera (z > 0); the result for other points is meaningless.
        """
        pts = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        if len(pts) == 0:
            return np.zeros((0, 2))
        px, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), self.K, self.D)
        return px.reshape(-1, 2)

    def undistort_points(self, pixels, normalized: bool = False) -> np.ndarray:
        """Remove lens distortion from pixels (N, 2).

        Returns ideal pixel coordinates (same K, no distortion), or with ``normalized=True`` the normalized image
        coordinates (x/z, y/z) in the optical frame.
        """
        px = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
        if len(px) == 0:
            return np.zeros((0, 2))
        out = cv2.undistortPoints(px, self.K, self.D, P=None if normalized else self.K)
        return out.reshape(-1, 2)

    def pixel_rays(self, pixels) -> np.ndarray:
        """Unit viewing rays (N, 3) in the optical frame through distorted pixels (N, 2)."""
        n = self.undistort_points(pixels, normalized=True)
        rays = np.hstack([n, np.ones((len(n), 1))])
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def contains(self, pixels, margin: float = 0.0) -> np.ndarray:
        """Boolean mask (N,) of pixels inside the image, at least ``margin`` pixels from its border."""
        p = np.asarray(pixels, float).reshape(-1, 2)
        return ((p[:, 0] >= -0.5 + margin) & (p[:, 0] <= self.width - 0.5 - margin)
                & (p[:, 1] >= -0.5 + margin) & (p[:, 1] <= self.height - 0.5 - margin))

    def half_fov_rad(self) -> tuple:
        """Approximate horizontal and vertical half fields of view (rad), ignoring distortion."""
        fx, fy, cx, cy = self.K[0, 0], self.K[1, 1], self.K[0, 2], self.K[1, 2]
        return (math.atan(max(cx + 0.5, self.width - 0.5 - cx) / fx),
                math.atan(max(cy + 0.5, self.height - 0.5 - cy) / fy))

    # ------------------------------------------------------------------ ROS calibration YAML

    @classmethod
    def from_ros_yaml(cls, path: str, frame_id: str = "wrist_camera_optical") -> "CameraModel":
        """Load a camera_calibration_parsers YAML file; raises CameraInfoError."""
        try:
            with open(path, "r", encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CameraInfoError(f"cannot read camera info {path}: {exc}") from exc
        return cls.from_ros_yaml_text(text, frame_id=frame_id, origin=path)

    @classmethod
    def from_ros_yaml_text(cls, text: str, frame_id: str = "wrist_camera_optical",
                           origin: str = "<text>") -> "CameraModel":
        """Parse the text of a ROS camera calibration YAML; raises CameraInfoError naming the bad field."""
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CameraInfoError(f"{origin}: not valid YAML: {exc}") from exc
        if not isinstance(doc, dict):
            raise CameraInfoError(f"{origin}: expected a mapping with image_width, camera_matrix, ...")
        for key in ("image_width", "image_height", "camera_matrix", "distortion_coefficients"):
            if key not in doc:
                raise CameraInfoError(f"{origin}: missing field '{key}'")
        try:
            width, height = int(doc["image_width"]), int(doc["image_height"])
        except (TypeError, ValueError):
            raise CameraInfoError(f"{origin}: image_width / image_height must be integers") from None
        K = _matrix(doc, "camera_matrix", 3, 3, origin)
        model = doc.get("distortion_model", "plumb_bob")
        D = _matrix(doc, "distortion_coefficients", 1, None, origin).ravel()
        try:
            return cls(width, height, K, D, distortion_model=model, frame_id=frame_id,
                       name=str(doc.get("camera_name", "camera")))
        except CameraInfoError as exc:
            raise CameraInfoError(f"{origin}: {exc}") from None

    def to_ros_yaml_dict(self) -> dict:
        """The camera_calibration_parsers YAML structure (rectification identity, projection [K | 0])."""
        P = np.hstack([self.K, np.zeros((3, 1))])
        return {
            "image_width": self.width,
            "image_height": self.height,
            "camera_name": self.name,
            "camera_matrix": {"rows": 3, "cols": 3, "data": [float(v) for v in self.K.ravel()]},
            "distortion_model": self.distortion_model,
            "distortion_coefficients": {"rows": 1, "cols": len(self.D), "data": [float(v) for v in self.D]},
            "rectification_matrix": {"rows": 3, "cols": 3, "data": [float(v) for v in np.eye(3).ravel()]},
            "projection_matrix": {"rows": 3, "cols": 4, "data": [float(v) for v in P.ravel()]},
        }

    def to_ros_yaml(self) -> str:
        return yaml.safe_dump(self.to_ros_yaml_dict(), sort_keys=False)


def _matrix(doc: dict, key: str, rows: int, cols: Optional[int], origin: str) -> np.ndarray:
    entry = doc[key]
    if not isinstance(entry, dict) or "data" not in entry:
        raise CameraInfoError(f"{origin}: '{key}' must be a mapping with rows, cols and data")
    try:
        data = np.array(entry["data"], dtype=float).ravel()
        r = int(entry.get("rows", rows))
        c = int(entry.get("cols", cols if cols is not None else len(data)))
    except (TypeError, ValueError):
        raise CameraInfoError(f"{origin}: '{key}' has non-numeric rows, cols or data") from None
    if r != rows or (cols is not None and c != cols) or r * c != len(data):
        raise CameraInfoError(f"{origin}: '{key}' must be {rows}x{cols or 'n'} with rows*cols data values, "
                              f"got rows={r} cols={c} and {len(data)} values")
    return data.reshape(r, c)


def default_wrist_camera() -> CameraModel:
    """The simulated wrist camera: 640x480, fx = fy = 600 px (about 56 deg horizontal FOV), centred principal point,
    mild barrel distortion k1 = -0.05."""
    K = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])
    return CameraModel(640, 480, K, [-0.05, 0.0, 0.0, 0.0, 0.0], "plumb_bob", "wrist_camera_optical", "wrist_camera")
