"""Joint trajectories for the arm: synchronised joint moves and straight-line Cartesian moves, timed by ruckig
(velocity, acceleration and jerk limits).

Times are seconds from the trajectory's start, positions rad (m for prismatic joints), velocities rad/s. Cartesian
poses are 4x4 transforms of the chain's tip in the chain's base frame (``base_link`` for the arm).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np

from .kinematics import IKError, KinematicChain, rotation_from_vector, rotation_vector

# IK tolerances while following a line or an insertion command: 0.1 mm and 0.06 deg, well inside what insertion
# needs, where the solver's default (10 um, 0.006 deg) can fail to converge beside a joint limit.
PATH_POS_TOL_M = 1e-4
PATH_ROT_TOL_RAD = 1e-3


class TrajectoryError(ValueError):
    """A motion request is malformed (wrong size, non-finite, goal outside the joint limits)."""


class PathDiscontinuity(IKError):
    """Following a Cartesian line would make a joint jump (a branch flip or a singularity on the way)."""


@dataclass
class JointTrajectory:
    """Waypoints of a joint-space trajectory: ``times`` (N,) s from start, ``positions`` and ``velocities`` (N, J)
    in the order of ``joint_names``."""

    joint_names: Tuple[str, ...]
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    def __post_init__(self):
        self.joint_names = tuple(self.joint_names)
        self.times = np.asarray(self.times, float).reshape(-1)
        n, j = len(self.times), len(self.joint_names)
        self.positions = np.asarray(self.positions, float).reshape(n, j)
        self.velocities = np.asarray(self.velocities, float).reshape(n, j)
        if n == 0:
            raise TrajectoryError("a trajectory needs at least one point")
        if np.any(np.diff(self.times) <= 0.0) or self.times[0] < 0.0:
            raise TrajectoryError("trajectory times must start at >= 0 and increase strictly")

    @property
    def duration(self) -> float:
        """Seconds from the start to the last point."""
        return float(self.times[-1])


def sample(traj: JointTrajectory, t: float) -> np.ndarray:
    """Joint positions at ``t`` s by linear interpolation between waypoints, held at the first/last point outside."""
    times = traj.times
    if t <= times[0]:
        return traj.positions[0].copy()
    if t >= times[-1]:
        return traj.positions[-1].copy()
    i = int(np.searchsorted(times, t, side="right")) - 1
    a = (t - times[i]) / (times[i + 1] - times[i])
    return (1.0 - a) * traj.positions[i] + a * traj.positions[i + 1]


class _Profile:
    """A rest-to-rest, jerk-limited profile of a path parameter s from 0 to 1, computed by ruckig: peak rate ``v``
    (1/s), rate of change ``a`` (1/s^2) and its rate ``j`` (1/s^3). Tabulated finely so that :meth:`time_at`
    (its inverse) is a lookup."""

    def __init__(self, v: float, a: float, j: float):
        from ruckig import InputParameter, Result, Ruckig, Trajectory

        inp = InputParameter(1)
        inp.current_position, inp.target_position = [0.0], [1.0]
        inp.max_velocity, inp.max_acceleration, inp.max_jerk = [v], [a], [j]
        self._traj = Trajectory(1)
        result = Ruckig(1).calculate(inp, self._traj)
        if result not in (Result.Working, Result.Finished):
            raise TrajectoryError(f"ruckig could not time the motion ({result})")
        self.duration = float(self._traj.duration)
        self._t = np.linspace(0.0, self.duration, 400)
        self._s = np.array([self.at(t)[0] for t in self._t])
        self._s = np.maximum.accumulate(self._s)

    def at(self, t: float) -> Tuple[float, float]:
        """(s, ds/dt) at time ``t``."""
        t = min(max(t, 0.0), self.duration)
        pos, vel, _ = self._traj.at_time(t)
        return min(max(float(pos[0]), 0.0), 1.0), max(float(vel[0]), 0.0)

    def time_at(self, s: float) -> float:
        """The time at which the profile reaches ``s`` (inverse of :meth:`at`)."""
        s = min(max(s, 0.0), 1.0)
        return float(np.interp(s, self._s, self._t))


def _as_q(chain: KinematicChain, q, what: str) -> np.ndarray:
    q = np.asarray(q, float).reshape(-1)
    if q.shape[0] != chain.n_joints or not np.all(np.isfinite(q)):
        raise TrajectoryError(f"{what} must be {chain.n_joints} finite joint positions, got {q}")
    return q


def _per_joint(value: Union[float, Sequence[float]], n: int, what: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, float), (n,)).copy()
    if not np.all(arr > 0.0) or not np.all(np.isfinite(arr)):
        raise TrajectoryError(f"{what} must be positive and finite, got {value}")
    return arr


def plan_joint_motion(chain: KinematicChain, q_start, q_goal, velocity_scale: float = 0.5,
                      accel_limit: Union[float, Sequence[float]] = 1.5,
                      jerk_limit: Union[float, Sequence[float]] = 10.0, dt: float = 0.05) -> JointTrajectory:
    """A straight line in joint space from ``q_start`` to ``q_goal`` on a synchronised jerk-limited profile (ruckig).

    All joints start and stop together. Each joint stays within ``velocity_scale`` times its URDF velocity limit,
    within ``accel_limit`` (rad/s^2) and ``jerk_limit`` (rad/s^3), one value or one per joint; the slowest joint
    sets the duration.
    Waypoints every ``dt`` s plus the end point. A goal outside the joint limits raises TrajectoryError.
    A start equal to the goal gives a single point at t = 0.
    """
    q0 = _as_q(chain, q_start, "q_start")
    q1 = _as_q(chain, q_goal, "q_goal")
    if not 0.0 < velocity_scale <= 1.0:
        raise TrajectoryError(f"velocity_scale must be in (0, 1], got {velocity_scale}")
    if not dt > 0.0:
        raise TrajectoryError(f"dt must be positive, got {dt}")
    if not chain.within_limits(q1, tol=1e-6):
        raise TrajectoryError(f"q_goal {np.round(q1, 4)} is outside the joint limits")
    accel = _per_joint(accel_limit, chain.n_joints, "accel_limit")
    jerk = _per_joint(jerk_limit, chain.n_joints, "jerk_limit")
    delta = q1 - q0
    moving = np.abs(delta) > 1e-12
    if not np.any(moving):
        return JointTrajectory(chain.joint_names, [0.0], [q0], [np.zeros_like(q0)])
    span = np.abs(delta[moving])
    profile = _Profile(float(np.min(velocity_scale * chain.velocity_limits[moving] / span)),
                       float(np.min(accel[moving] / span)), float(np.min(jerk[moving] / span)))
    n = max(1, int(math.ceil(profile.duration / dt - 1e-9)))
    times = np.minimum(np.arange(n + 1) * dt, profile.duration)
    times[-1] = profile.duration
    positions, velocities = [], []
    for t in times:
        s, ds = profile.at(float(t))
        positions.append(q0 + s * delta)
        velocities.append(ds * delta)
    positions[-1] = q1.copy()
    velocities[-1] = np.zeros_like(q1)
    return JointTrajectory(chain.joint_names, times, positions, velocities)


def interpolate_pose(T_a: np.ndarray, T_b: np.ndarray, s: float) -> np.ndarray:
    """The pose a fraction ``s`` of the way from ``T_a`` to ``T_b``: linear in position, slerp in rotation."""
    out = np.eye(4)
    out[:3, 3] = (1.0 - s) * T_a[:3, 3] + s * T_b[:3, 3]
    rel = rotation_vector(T_a[:3, :3].T @ T_b[:3, :3])
    out[:3, :3] = T_a[:3, :3] @ rotation_from_vector(s * rel)
    return out


def plan_linear_motion(chain: KinematicChain, q_start, T_goal, speed_mps: float = 0.05,
                       angular_speed_rps: float = 0.087, step_m: float = 0.002, step_rad: float = 0.01,
                       accel_mps2: float = 0.1, angular_accel_rps2: float = 0.2,
                       max_joint_step_rad: float = 0.1, jerk_mps3: float = 1.0,
                       angular_jerk_rps3: float = 2.0) -> JointTrajectory:
    """Move the tip along the straight line (and the slerp of the rotation) from ``fk(q_start)`` to ``T_goal``.

    The path is cut into steps of at most ``step_m`` metres and ``step_rad`` radians; each step is solved by IK
    seeded with the previous one and kept local (no restarts). The tip's speed follows a jerk-limited profile (ruckig) capped
    at ``speed_mps`` (m/s) and ``angular_speed_rps`` (rad/s) with accelerations ``accel_mps2`` and
    ``angular_accel_rps2`` and jerks ``jerk_mps3`` / ``angular_jerk_rps3``; a segment is slowed further where a joint would exceed its URDF velocity limit.

    Raises IKError (NoIKSolution, OutOfReach) when a step has no solution, and PathDiscontinuity when a joint moves
    more than ``max_joint_step_rad`` in one step (a branch flip or a singularity on the line).
    """
    q0 = _as_q(chain, q_start, "q_start")
    target = np.asarray(T_goal, float)
    if target.shape != (4, 4) or not np.all(np.isfinite(target)):
        raise TrajectoryError("T_goal must be a finite 4x4 transform")
    for name, val in (("speed_mps", speed_mps), ("angular_speed_rps", angular_speed_rps), ("step_m", step_m),
                      ("step_rad", step_rad), ("accel_mps2", accel_mps2),
                      ("angular_accel_rps2", angular_accel_rps2), ("max_joint_step_rad", max_joint_step_rad),
                      ("jerk_mps3", jerk_mps3), ("angular_jerk_rps3", angular_jerk_rps3)):
        if not (math.isfinite(val) and val > 0.0):
            raise TrajectoryError(f"{name} must be positive and finite, got {val}")
    T0 = chain.fk(q0)
    dist = float(np.linalg.norm(target[:3, 3] - T0[:3, 3]))
    angle = float(np.linalg.norm(rotation_vector(T0[:3, :3].T @ target[:3, :3])))
    if dist < 1e-9 and angle < 1e-9:
        return JointTrajectory(chain.joint_names, [0.0], [q0], [np.zeros_like(q0)])
    rates = [speed_mps / dist if dist > 1e-9 else math.inf, angular_speed_rps / angle if angle > 1e-9 else math.inf]
    accels = [accel_mps2 / dist if dist > 1e-9 else math.inf,
              angular_accel_rps2 / angle if angle > 1e-9 else math.inf]
    jerks = [jerk_mps3 / dist if dist > 1e-9 else math.inf,
             angular_jerk_rps3 / angle if angle > 1e-9 else math.inf]
    profile = _Profile(min(rates), min(accels), min(jerks))
    n = max(1, int(math.ceil(max(dist / step_m, angle / step_rad) - 1e-9)))

    positions = [q0]
    q = q0
    for k in range(1, n + 1):
        pose = target if k == n else interpolate_pose(T0, target, k / n)
        q_next = chain.ik(pose, q, pos_tol=PATH_POS_TOL_M, rot_tol=PATH_ROT_TOL_RAD, max_restarts=0)
        jump = float(np.max(np.abs(q_next - q)))
        if jump > max_joint_step_rad:
            raise PathDiscontinuity(f"joint jump of {jump:.3f} rad at {100.0 * k / n:.0f}% of the line "
                                    f"(limit {max_joint_step_rad} rad per step)")
        positions.append(q_next)
        q = q_next
    positions = np.array(positions)

    # Segment durations: the Cartesian profile's, stretched where a joint would exceed its velocity limit.
    nominal = np.diff([profile.time_at(k / n) for k in range(n + 1)])
    joint_bound = np.max(np.abs(np.diff(positions, axis=0)) / chain.velocity_limits, axis=1)
    seg = np.maximum(nominal, joint_bound)
    seg = np.maximum(seg, 1e-6)
    times = np.concatenate([[0.0], np.cumsum(seg)])
    seg_vel = np.diff(positions, axis=0) / seg[:, None]
    velocities = np.zeros_like(positions)
    velocities[1:-1] = 0.5 * (seg_vel[:-1] + seg_vel[1:])
    return JointTrajectory(chain.joint_names, times, positions, velocities)
