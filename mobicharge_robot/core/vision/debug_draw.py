"""Drawing a detection onto its image, for ``--debug-image`` and the node's debug topic (pure: numpy and OpenCV)."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .camera import CameraModel
from .port_detector import Detection

AXIS_LENGTH_M = 0.03


def draw_detection(image_rgb: np.ndarray, camera: CameraModel, detection: Optional[Detection],
                   text: str = "") -> np.ndarray:
    """A copy of ``image_rgb`` with the model's holes where the pose puts them (green circles) and the inlet frame's
    axes (x red, y green, z blue, 3 cm each), plus an optional line of text (e.g. why nothing was found)."""
    out = np.ascontiguousarray(np.array(image_rgb, dtype=np.uint8, copy=True))
    if detection is not None:
        for u, v in np.asarray(detection.keypoints_px, float):
            if np.isfinite(u) and np.isfinite(v):
                cv2.circle(out, (int(round(u)), int(round(v))), 5, (0, 255, 0), 1, cv2.LINE_AA)
        T = np.asarray(detection.T_cam_inlet, float)
        axes = np.array([[0, 0, 0], [AXIS_LENGTH_M, 0, 0], [0, AXIS_LENGTH_M, 0], [0, 0, AXIS_LENGTH_M]], float)
        pts = axes @ T[:3, :3].T + T[:3, 3]
        if np.all(pts[:, 2] > 0):
            px = np.round(camera.project(pts)).astype(int)
            for i, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
                cv2.line(out, tuple(int(c) for c in px[0]), tuple(int(c) for c in px[i + 1]), color, 2, cv2.LINE_AA)
    if text:
        cv2.putText(out, text[:80], (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return out
