"""The loopback simulator's physics for the base: a differential drive with limits, a 2-D lidar and a collision check.

Pure Python (numpy). The simulator node wraps these; they hold the ground truth that only tests and benchmarks see.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

from ..core.geometry import Pose2D, convex_polygons_intersect, rect_polygon
from ..core.navigation.latency import advance


@dataclass
class BaseLimits:
    """Physical limits of the simulated base (SI units)."""

    max_linear_mps: float = 1.2
    max_angular_rps: float = 1.5
    max_linear_accel: float = 1.0
    max_angular_accel: float = 2.0


@dataclass
class DiffDriveBase:
    """A differential-drive base integrating commanded velocities under acceleration limits.

    ``pose`` is the true pose in the map frame; ``odom_pose`` is what wheel odometry reports in the odom frame, whose
    origin is the pose at start-up. The base driver turns a command into wheel speeds with the URDF's nominal wheel
    geometry and odometry integrates those same nominal speeds, while the true motion follows the true geometry
    (``odometry_error``: relative errors of the left and right wheel radius and of the track) plus slip noise (a
    fraction of each wheel's travel, 1 sigma, drawn from ``rng``). So odometry drifts as on a real robot.
    """

    pose: Pose2D
    limits: BaseLimits = field(default_factory=BaseLimits)
    v: float = 0.0
    w: float = 0.0
    distance_m: float = 0.0
    track_m: float = 0.5
    left_radius_err: float = 0.0
    right_radius_err: float = 0.0
    track_err: float = 0.0
    slip_sigma: float = 0.0
    rng: np.random.Generator | None = None

    def __post_init__(self):
        self._start = self.pose
        self.odom_pose = Pose2D(0.0, 0.0, 0.0)

    def step(self, cmd_v: float, cmd_w: float, dt: float) -> None:
        """Advance by ``dt`` seconds towards the commanded (m/s, rad/s); NaN commands count as zero."""
        lim = self.limits
        cmd_v = 0.0 if not math.isfinite(cmd_v) else max(-lim.max_linear_mps, min(lim.max_linear_mps, cmd_v))
        cmd_w = 0.0 if not math.isfinite(cmd_w) else max(-lim.max_angular_rps, min(lim.max_angular_rps, cmd_w))
        dv = max(-lim.max_linear_accel * dt, min(lim.max_linear_accel * dt, cmd_v - self.v))
        dw = max(-lim.max_angular_accel * dt, min(lim.max_angular_accel * dt, cmd_w - self.w))
        self.v += dv
        self.w += dw
        # Odometry: the encoders' view, integrated with the nominal geometry (exact arcs: no discretisation drift).
        self.odom_pose = advance(self.odom_pose, self.v, self.w, dt)
        # Truth: the same wheel turns on the true wheels, with slip.
        half = 0.5 * self.track_m
        left = (self.v - half * self.w) * (1.0 + self.left_radius_err)
        right = (self.v + half * self.w) * (1.0 + self.right_radius_err)
        if self.slip_sigma > 0.0 and self.rng is not None and (left or right):
            left *= 1.0 + self.rng.normal(0.0, self.slip_sigma)
            right *= 1.0 + self.rng.normal(0.0, self.slip_sigma)
        v_true = 0.5 * (left + right)
        w_true = (right - left) / (self.track_m * (1.0 + self.track_err))
        self.pose = advance(self.pose, v_true, w_true, dt)
        self.distance_m += abs(v_true) * dt

    def stop(self) -> None:
        self.v = 0.0
        self.w = 0.0


def polygon_edges(polygons: Sequence[np.ndarray]) -> np.ndarray:
    """All edges of the polygons as an (M, 4) array of x0, y0, x1, y1."""
    edges = []
    for poly in polygons:
        p = np.asarray(poly, float)
        q = np.roll(p, -1, axis=0)
        edges.append(np.hstack([p, q]))
    return np.vstack(edges) if edges else np.zeros((0, 4))


@dataclass
class Lidar:
    """A planar lidar: ``n_rays`` beams over ``fov_rad`` centred on the sensor's x axis."""

    n_rays: int = 360
    fov_rad: float = 2.0 * math.pi
    range_min_m: float = 0.05
    range_max_m: float = 20.0
    noise_std_m: float = 0.005
    dropout: float = 0.0  # probability that a beam returns nothing

    @property
    def angle_min(self) -> float:
        return -0.5 * self.fov_rad

    @property
    def angle_increment(self) -> float:
        full = abs(self.fov_rad - 2.0 * math.pi) < 1e-9
        return self.fov_rad / (self.n_rays if full else self.n_rays - 1)

    def scan(self, sensor: Pose2D, edges: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Ranges in metres for a sensor at ``sensor`` (map frame); ``inf`` where nothing is within range."""
        angles = sensor.yaw + self.angle_min + self.angle_increment * np.arange(self.n_rays)
        d = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (R, 2)
        o = np.array([sensor.x, sensor.y])
        if len(edges) == 0:
            return np.full(self.n_rays, np.inf)
        a = edges[:, 0:2] - o  # (M, 2)
        e = edges[:, 2:4] - edges[:, 0:2]  # (M, 2)
        # Solve o + t d = p0 + s e for every ray/edge pair.
        denom = d[:, 0:1] * e[None, :, 1] - d[:, 1:2] * e[None, :, 0]  # (R, M)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (a[None, :, 0] * e[None, :, 1] - a[None, :, 1] * e[None, :, 0]) / denom
            s = (a[None, :, 0] * d[:, 1:2] - a[None, :, 1] * d[:, 0:1]) / denom
        valid = (np.abs(denom) > 1e-12) & (t >= self.range_min_m) & (s >= 0.0) & (s <= 1.0)
        t = np.where(valid, t, np.inf)
        ranges = t.min(axis=1)
        if rng is not None and self.noise_std_m > 0:
            finite = np.isfinite(ranges)
            ranges[finite] += rng.normal(0.0, self.noise_std_m, finite.sum())
        ranges[ranges > self.range_max_m] = np.inf
        return ranges


class CollisionWorld:
    """Static obstacles (objects with ``.id`` and a convex ``.polygon``) with their edges pre-computed, so the check
    for a footprint costs a vectorised point-to-edge distance plus a separating-axis test on the near obstacles."""

    def __init__(self, obstacles: List):
        self.obstacles = list(obstacles)
        self.edges = polygon_edges([o.polygon for o in self.obstacles])
        self.owner = np.concatenate([np.full(len(o.polygon), i) for i, o in enumerate(self.obstacles)]) \
            if self.obstacles else np.zeros(0, dtype=int)

    def first_collision(self, pose: Pose2D, length_m: float, width_m: float) -> str | None:
        """The id of the first obstacle that the footprint at ``pose`` touches, or None."""
        if not self.obstacles:
            return None
        reach = 0.5 * math.hypot(length_m, width_m)
        p0, p1 = self.edges[:, 0:2], self.edges[:, 2:4]
        d = p1 - p0
        rel = np.array([pose.x, pose.y]) - p0
        t = np.clip(np.einsum("ij,ij->i", rel, d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-12), 0.0, 1.0)
        dist = np.hypot(*(rel - t[:, None] * d).T)
        near = set(self.owner[dist <= reach].tolist())
        fp = rect_polygon(pose, length_m, width_m)
        # Only obstacles with an edge within reach can touch: the base moves in small steps, so it cannot be
        # wholly inside an obstacle without first crossing one of its edges.
        for i in sorted(near):
            if convex_polygons_intersect(fp, self.obstacles[i].polygon):
                return self.obstacles[i].id
        return None
