"""Small geometry helpers shared by every core module.

Conventions: SI units, radians, right-handed frames (REP 103). 2-D poses are in the plane of the floor with yaw
about +z. Homogeneous transforms are 4x4 numpy arrays; ``T_a_b`` maps points given in frame b into frame a.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


def wrap_angle(a: float) -> float:
    """Wrap an angle in radians to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class Pose2D:
    """A planar pose: position in metres, yaw in radians."""

    x: float
    y: float
    yaw: float = 0.0

    def __post_init__(self):
        for name in ("x", "y", "yaw"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"Pose2D.{name} must be finite, got {v!r}")
            object.__setattr__(self, name, v)  # plain floats, whatever numeric type came in

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])

    def compose(self, other: "Pose2D") -> "Pose2D":
        """self * other: ``other`` is expressed in the frame of ``self``."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return Pose2D(self.x + c * other.x - s * other.y,
                      self.y + s * other.x + c * other.y,
                      wrap_angle(self.yaw + other.yaw))

    def inverse(self) -> "Pose2D":
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return Pose2D(-c * self.x - s * self.y, s * self.x - c * self.y, wrap_angle(-self.yaw))

    def transform_points(self, pts: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from this pose's frame into the parent frame."""
        pts = np.asarray(pts, dtype=float).reshape(-1, 2)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s], [s, c]])
        return pts @ rot.T + self.xy

    def distance_to(self, other: "Pose2D") -> float:
        return math.hypot(self.x - other.x, self.y - other.y)

    def to_matrix(self, z: float = 0.0) -> np.ndarray:
        """The 4x4 transform of this pose lifted to 3-D at height ``z``."""
        return make_transform(rot_z(self.yaw), (self.x, self.y, z))


def rect_polygon(center: Pose2D, length: float, width: float) -> np.ndarray:
    """Corners (4, 2) of a rectangle of ``length`` along the pose's x axis and ``width`` along y, counter-clockwise."""
    hl, hw = 0.5 * length, 0.5 * width
    local = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]])
    return center.transform_points(local)


def segment_rect_polygon(start: Sequence[float], end: Sequence[float], thickness: float) -> np.ndarray:
    """The rectangle (4, 2) covering a thick line segment, e.g. a wall."""
    p0, p1 = np.asarray(start, float), np.asarray(end, float)
    d = p1 - p0
    length = float(np.hypot(*d))
    if length <= 0.0:
        raise ValueError("segment has zero length")
    mid = 0.5 * (p0 + p1)
    return rect_polygon(Pose2D(mid[0], mid[1], math.atan2(d[1], d[0])), length, thickness)


def polygon_area(poly: np.ndarray) -> float:
    """Signed area (positive when counter-clockwise)."""
    p = np.asarray(poly, float)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _axes(poly: np.ndarray) -> np.ndarray:
    edges = np.roll(poly, -1, axis=0) - poly
    normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
    norms = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(norms > 0, norms, 1.0)


def convex_polygons_intersect(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex polygons (touching counts as intersecting)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    for axes in (_axes(a), _axes(b)):
        pa = a @ axes.T
        pb = b @ axes.T
        if np.any(pa.max(axis=0) < pb.min(axis=0)) or np.any(pb.max(axis=0) < pa.min(axis=0)):
            return False
    return True


def point_in_polygon(pt: Sequence[float], poly: np.ndarray) -> bool:
    """Even-odd rule; works for any simple polygon."""
    x, y = float(pt[0]), float(pt[1])
    p = np.asarray(poly, float)
    inside = False
    n = len(p)
    j = n - 1
    for i in range(n):
        xi, yi = p[i]
        xj, yj = p[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


# ---------------------------------------------------------------- 3-D transforms

def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF convention: fixed-axis roll about x, then pitch about y, then yaw about z."""
    return rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)


def make_transform(rotation: np.ndarray, translation: Sequence[float]) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = np.asarray(translation, float)
    return t


def invert_transform(t: np.ndarray) -> np.ndarray:
    r = t[:3, :3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ t[:3, 3]
    return out


def rotation_angle(r: np.ndarray) -> float:
    """The angle in radians of a rotation matrix (0..pi)."""
    c = (np.trace(r[:3, :3]) - 1.0) * 0.5
    return float(math.acos(max(-1.0, min(1.0, c))))


def matrix_to_quaternion(r: np.ndarray) -> tuple:
    """Rotation matrix to quaternion (x, y, z, w), w >= 0."""
    from transforms3d.quaternions import mat2quat

    w, x, y, z = mat2quat(np.asarray(r, float)[:3, :3])
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    return float(x), float(y), float(z), float(w)


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    from transforms3d.quaternions import quat2mat

    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError("quaternion has zero or non-finite norm")
    return quat2mat([w / n, x / n, y / n, z / n])


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
