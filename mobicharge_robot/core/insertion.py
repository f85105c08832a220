"""Connector poses around an inlet, and the monitor that decides seated / over-force during insertion.

All poses are 4x4 transforms in the arm's base frame (``base_link``). Frames follow doc/architecture.md: the inlet's
z points out of its face; the connector tip's z points along the insertion direction, so a tip aligned with an inlet
has ``R_inlet_tip = RotY(pi)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .geometry import make_transform, rot_x, rot_y

# The arm's stowed configuration (rad, arm_joint_1..6): folded inside the footprint above the top plate. The arm node
# uses it as its default and the simulator starts there.
STOWED_POSITIONS = (0.0, -2.6, 2.4, 0.2, 0.0, 0.0)

_TIP_FACING_INLET = make_transform(rot_y(math.pi), (0.0, 0.0, 0.0))
# A camera looking straight at the inlet: optical z into the face, optical y down (inlet y is up).
_CAM_FACING_INLET = make_transform(rot_x(math.pi), (0.0, 0.0, 0.0))


class InsertionFailed(Exception):
    """Insertion did not reach a latched, fully seated connector; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def tip_pose_on_axis(T_base_inlet: np.ndarray, distance_m: float) -> np.ndarray:
    """The tip pose aligned with the inlet axis, ``distance_m`` out of the face (negative: inside the inlet)."""
    return T_base_inlet @ make_transform(np.eye(3), (0.0, 0.0, distance_m)) @ _TIP_FACING_INLET


def seated_tip_pose(T_base_inlet: np.ndarray, seat_depth_m: float) -> np.ndarray:
    return tip_pose_on_axis(T_base_inlet, -seat_depth_m)


def camera_view_tip_pose(T_base_inlet: np.ndarray, T_tip_cam: np.ndarray, distance_m: float) -> np.ndarray:
    """The tip pose that puts the camera ``distance_m`` in front of the inlet, looking at its centre."""
    T_base_cam = T_base_inlet @ make_transform(np.eye(3), (0.0, 0.0, distance_m)) @ _CAM_FACING_INLET
    return T_base_cam @ np.linalg.inv(T_tip_cam)


@dataclass
class InsertionMonitor:
    """Watches the wrist force and the latch while the connector moves in.

    ``update`` returns 'moving', 'seated' (latched and at depth) or 'over_force' (|axial force| above the limit, or
    the lateral force above half of it). Partial insertion is never 'seated'.
    """

    force_limit_n: float = 100.0
    depth_tolerance_m: float = 0.0015
    peak_force_n: float = 0.0

    def update(self, force_xyz, latched: bool, depth_error_m: float) -> str:
        f = np.asarray(force_xyz, float)
        if not np.all(np.isfinite(f)):
            return "over_force"  # a broken sensor must not let the arm push blindly
        axial = abs(float(f[2]))
        lateral = float(math.hypot(f[0], f[1]))
        self.peak_force_n = max(self.peak_force_n, axial)
        if axial > self.force_limit_n or lateral > 0.5 * self.force_limit_n:
            return "over_force"
        if latched and abs(depth_error_m) <= self.depth_tolerance_m:
            return "seated"
        return "moving"
