"""A regulated pure-pursuit path follower for a differential-drive base, with a precise final approach.

Pure and clock-free: the caller passes the robot pose (``map`` frame, m and rad), the last commanded or measured
velocities and the control period ``dt`` (s, sim time), and gets back ``cmd_vel`` values: ``v`` m/s forward along
``base_link`` x and ``w`` rad/s about z. The base only drives forwards.

States:
- ``rotating_to_path``: the point to steer for is more than ``rotate_in_place_threshold_rad`` off the heading, so
  the robot turns in place first;
- ``following``: regulated pure pursuit, slowed by path curvature and before the final approach;
- ``approach``: within ``approach_distance_m`` of the goal along the path, at ``approach_speed_mps`` or less, aiming
  at the path and finally at the exact goal point (the arc through that point ends on it);
- ``rotating_to_goal``: position reached, turning in place to the goal yaw;
- ``arrived``: within both tolerances with the base stopped. It stays so until ``set_path``.

Speed limits: a path may carry ``speed_limits`` (m/s per point, for the stretch to the next point; see
``planner.Path``). The follower never exceeds the limit of the stretch it is on and brakes (at ``_DECEL_MARGIN`` of
``max_linear_accel``) so that it enters each slower stretch at that stretch's limit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..geometry import Pose2D, wrap_angle

ROTATING_TO_PATH = "rotating_to_path"
FOLLOWING = "following"
APPROACH = "approach"
ROTATING_TO_GOAL = "rotating_to_goal"
ARRIVED = "arrived"

# Stopping profiles are planned at this fraction of the acceleration limit, so that discrete steps stay within it.
_DECEL_MARGIN = 0.8


class FollowerError(ValueError):
    """Bad parameters, a malformed path, a call before ``set_path`` or a bad control period."""


@dataclass
class FollowerParams:
    """Limits (SI units) and tuning. Mutable so that a node can apply parameter updates in place."""

    max_linear_mps: float = 1.0
    max_angular_rps: float = 1.0
    max_linear_accel: float = 0.8  # m/s^2
    max_angular_accel: float = 1.5  # rad/s^2
    lookahead_m: float = 0.8  # at full speed; shrinks linearly with speed down to min_lookahead_m
    min_lookahead_m: float = 0.3
    approach_distance_m: float = 1.0
    approach_speed_mps: float = 0.15
    goal_xy_tolerance_m: float = 0.02
    goal_yaw_tolerance_rad: float = 0.017
    rotate_in_place_threshold_rad: float = 0.6
    regulation_radius_m: float = 0.9  # below this turning radius the speed is scaled by radius / this
    min_regulated_speed_mps: float = 0.1
    position_gain: float = 1.5  # 1/s, speed per metre to the goal on the final approach
    rotation_gain: float = 2.0  # 1/s, yaw rate per radian of error close to the target heading
    creep_speed_mps: float = 0.02  # floor so the final centimetres do not take forever
    creep_rate_rps: float = 0.05
    progress_window_m: float = 2.0  # how far along the path the closest point may jump in one step

    def validate(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
                raise FollowerError(f"FollowerParams.{name} must be a positive number, got {value!r}")
        if self.min_lookahead_m > self.lookahead_m:
            raise FollowerError("min_lookahead_m must not exceed lookahead_m")


@dataclass(frozen=True)
class FollowerCommand:
    """A velocity command: ``v`` m/s, ``w`` rad/s, and the follower state that produced it."""

    v: float
    w: float
    state: str


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


class PathFollower:
    """Follows one ``Path`` (see ``planner.Path``: ``points`` (N, 2) and ``yaws`` (N,) in the map frame)."""

    def __init__(self, params: Optional[FollowerParams] = None):
        self.params = params if params is not None else FollowerParams()
        self.params.validate()
        self._pts: Optional[np.ndarray] = None
        self._s = np.zeros(0)
        self._v_env: Optional[np.ndarray] = None  # per point: the path's speed limit with braking ahead folded in
        self._goal: Optional[Pose2D] = None
        self._seg = 0
        self._state = ROTATING_TO_PATH
        self._in_approach = False
        self._position_reached = False
        self._turning = False

    @property
    def state(self) -> str:
        return self._state

    @property
    def goal(self) -> Optional[Pose2D]:
        return self._goal

    def set_path(self, path) -> None:
        """Start following ``path``; resets progress and state."""
        pts = np.asarray(path.points, dtype=float).reshape(-1, 2)
        yaws = np.asarray(path.yaws, dtype=float).ravel()
        if len(pts) == 0 or len(yaws) != len(pts):
            raise FollowerError(f"path needs matching points and yaws, got {len(pts)} and {len(yaws)}")
        if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(yaws))):
            raise FollowerError("path has non-finite values")
        limits = getattr(path, "speed_limits", None)
        if limits is not None:
            limits = np.asarray(limits, dtype=float).ravel()
            if len(limits) != len(pts):
                raise FollowerError(f"path has {len(pts)} points but {len(limits)} speed limits")
            if not np.all(np.isfinite(limits)) or np.any(limits < 0.0):
                raise FollowerError("path speed limits must be finite and non-negative")
        if len(pts) == 1:
            pts = np.vstack([pts, pts])
            limits = None if limits is None else np.concatenate([limits, limits])
        self._pts = pts
        self._s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
        self._v_env = None if limits is None else self._braking_envelope(limits)
        self._goal = Pose2D(float(pts[-1, 0]), float(pts[-1, 1]), float(yaws[-1]))
        self._seg = 0
        self._state = ROTATING_TO_PATH
        self._in_approach = False
        self._position_reached = False
        self._turning = False

    def _braking_envelope(self, limits: np.ndarray) -> np.ndarray:
        """Per point, the highest speed from which the robot can still slow to every later limit in time."""
        decel = _DECEL_MARGIN * self.params.max_linear_accel
        env = limits.copy()
        ds = np.diff(self._s)
        for i in range(len(env) - 2, -1, -1):
            env[i] = min(env[i], math.sqrt(env[i + 1] ** 2 + 2.0 * decel * ds[i]))
        return env

    def path_speed_limit(self, pose: Pose2D) -> float:
        """The path's speed limit (m/s) where ``pose`` projects, with braking for slower stretches ahead; inf when
        the path carries no limits. Does not advance the follower's progress."""
        if self._pts is None:
            raise FollowerError("no path set")
        if self._v_env is None:
            return math.inf
        seg, arc = self._project(pose, self._seg)
        return self._limit_at(seg, arc)

    def _limit_at(self, seg: int, arc: float) -> float:
        env = self._v_env
        nxt = min(seg + 1, len(env) - 1)
        s0, s1 = self._s[seg], self._s[nxt]
        t = 0.0 if s1 <= s0 else min(1.0, max(0.0, (arc - s0) / (s1 - s0)))
        return float(min(env[seg], env[seg] + t * (env[nxt] - env[seg])))

    # ------------------------------------------------------------------ path geometry
    def _project(self, pose: Pose2D, first_seg: int) -> tuple:
        """(segment index, arc length m) of the closest path point, searching segments from ``first_seg`` over
        ``progress_window_m`` of arc length."""
        s = self._s
        last = int(np.searchsorted(s, s[first_seg] + self.params.progress_window_m, side="right"))
        last = max(first_seg + 1, min(last, len(s) - 1))
        a = self._pts[first_seg:last]
        d = self._pts[first_seg + 1:last + 1] - a
        len2 = np.einsum("ij,ij->i", d, d)
        rel = np.array([pose.x, pose.y]) - a
        t = np.clip(np.einsum("ij,ij->i", rel, d) / np.where(len2 > 0.0, len2, 1.0), 0.0, 1.0)
        off = rel - t[:, None] * d
        i = int(np.argmin(np.einsum("ij,ij->i", off, off)))
        seg = first_seg + i
        return seg, float(s[seg] + t[i] * math.sqrt(len2[i]))

    def _point_at(self, arc_m: float) -> np.ndarray:
        if arc_m >= self._s[-1]:
            return self._pts[-1].copy()
        return np.array([np.interp(arc_m, self._s, self._pts[:, 0]), np.interp(arc_m, self._s, self._pts[:, 1])])

    def distance_remaining(self, pose: Pose2D) -> float:
        """Metres still to go: the path length beyond the robot's closest point, and at least the straight-line
        distance to the goal. Does not advance the follower's progress."""
        if self._pts is None:
            raise FollowerError("no path set")
        _, arc = self._project(pose, self._seg)
        return max(float(self._s[-1]) - arc, pose.distance_to(self._goal))

    # ------------------------------------------------------------------ control
    def step(self, pose: Pose2D, v_prev: float, w_prev: float, dt: float,
             speed_limit_mps: Optional[float] = None) -> FollowerCommand:
        """The command for this control period.

        ``v_prev``/``w_prev`` (m/s, rad/s) anchor the acceleration limits (non-finite values count as 0);
        ``speed_limit_mps`` caps the forward speed (None: no extra cap; NaN: stop).
        """
        if self._pts is None:
            raise FollowerError("step() called before set_path()")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0.0):
            raise FollowerError(f"dt must be positive and finite, got {dt!r}")
        if not (math.isfinite(pose.x) and math.isfinite(pose.y) and math.isfinite(pose.yaw)):
            raise FollowerError("pose must be finite")
        p = self.params
        v_prev = float(v_prev) if math.isfinite(v_prev) else 0.0
        w_prev = float(w_prev) if math.isfinite(w_prev) else 0.0
        v_max = p.max_linear_mps
        if speed_limit_mps is not None:
            v_max = min(v_max, max(0.0, speed_limit_mps)) if not math.isnan(speed_limit_mps) else 0.0
        if self._state == ARRIVED:
            return FollowerCommand(0.0, 0.0, ARRIVED)

        self._seg, arc = self._project(pose, self._seg)
        if self._v_env is not None:
            v_max = min(v_max, self._limit_at(self._seg, arc))
        goal = self._goal
        d_goal = pose.distance_to(goal)
        remaining = max(float(self._s[-1]) - arc, d_goal)

        if self._position_reached and d_goal > 3.0 * p.goal_xy_tolerance_m:
            self._position_reached = False  # pushed off the goal: approach again
        if not self._position_reached and remaining <= p.approach_distance_m:
            self._in_approach = True
        if self._in_approach and not self._position_reached:
            gx, _ = self._to_base(pose, goal.xy)
            if d_goal <= 0.5 * p.goal_xy_tolerance_m or (d_goal <= p.goal_xy_tolerance_m and gx <= 0.0):
                self._position_reached = True

        if self._position_reached:
            state = ROTATING_TO_GOAL
            err = wrap_angle(goal.yaw - pose.yaw)
            w_t = 0.0 if abs(err) <= p.goal_yaw_tolerance_rad else self._turn_rate(err)
            v, w = self._limit(0.0, w_t, v_prev, w_prev, dt, v_max)
            if abs(err) <= p.goal_yaw_tolerance_rad and v == 0.0 and w == 0.0:
                state = ARRIVED
            self._state = state
            return FollowerCommand(v, w, state)

        if self._in_approach:
            target = goal.xy if d_goal <= p.min_lookahead_m else self._point_at(arc + p.min_lookahead_m)
            speed = _clamp(p.position_gain * d_goal, p.creep_speed_mps, p.approach_speed_mps)
            drive_state = APPROACH
        else:
            frac = _clamp(abs(v_prev) / p.max_linear_mps, 0.0, 1.0)
            look = p.min_lookahead_m + (p.lookahead_m - p.min_lookahead_m) * frac
            target = self._point_at(arc + look)
            # Brake in time to enter the final approach at approach speed.
            to_approach = max(0.0, remaining - p.approach_distance_m)
            speed = math.sqrt(p.approach_speed_mps ** 2 + 2.0 * _DECEL_MARGIN * p.max_linear_accel * to_approach)
            drive_state = FOLLOWING

        lx, ly = self._to_base(pose, target)
        alpha = math.atan2(ly, lx) if (lx != 0.0 or ly != 0.0) else 0.0
        exit_turn = 0.5 * p.rotate_in_place_threshold_rad
        if abs(alpha) > p.rotate_in_place_threshold_rad or (self._turning and abs(alpha) > exit_turn):
            self._turning = True
            self._state = ROTATING_TO_PATH
            v, w = self._limit(0.0, self._turn_rate(alpha), v_prev, w_prev, dt, v_max)
            return FollowerCommand(v, w, ROTATING_TO_PATH)
        self._turning = False

        d2 = lx * lx + ly * ly
        curvature = 2.0 * ly / d2 if d2 > 1e-12 else 0.0
        v_t = min(speed, v_max)
        if drive_state == FOLLOWING and abs(curvature) > 1.0 / p.regulation_radius_m:
            radius = 1.0 / abs(curvature)
            v_t = min(v_t, max(v_max * radius / p.regulation_radius_m, p.min_regulated_speed_mps))
        if abs(curvature) * v_t > p.max_angular_rps:
            v_t = p.max_angular_rps / abs(curvature)
        v = self._limit_one(v_t, v_prev, p.max_linear_accel * dt, 0.0, v_max)
        w_t = curvature * v
        w = self._limit_one(w_t, w_prev, p.max_angular_accel * dt, -p.max_angular_rps, p.max_angular_rps)
        self._state = drive_state
        return FollowerCommand(v, w, drive_state)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _to_base(pose: Pose2D, xy) -> tuple:
        """Map point ``xy`` in the robot's frame (x forward, y left)."""
        dx, dy = float(xy[0]) - pose.x, float(xy[1]) - pose.y
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        return c * dx + s * dy, -s * dx + c * dy

    def _turn_rate(self, err: float) -> float:
        """Yaw rate (rad/s) for turning in place through ``err`` rad: capped, slowing so it can stop on target."""
        p = self.params
        mag = min(p.max_angular_rps,
                  math.sqrt(2.0 * _DECEL_MARGIN * p.max_angular_accel * abs(err)),
                  max(p.rotation_gain * abs(err), p.creep_rate_rps))
        return math.copysign(mag, err)

    @staticmethod
    def _limit_one(target: float, prev: float, step: float, lo: float, hi: float) -> float:
        """``target`` clamped to [lo, hi] and then to within ``step`` of ``prev`` (the acceleration limit wins)."""
        value = _clamp(_clamp(target, lo, hi), prev - step, prev + step)
        # Inputs are checked in step(), so this only guards the contract "never command NaN": zero is the safe value.
        return value if math.isfinite(value) else 0.0

    def _limit(self, v_t: float, w_t: float, v_prev: float, w_prev: float, dt: float, v_max: float) -> tuple:
        p = self.params
        v = self._limit_one(v_t, v_prev, p.max_linear_accel * dt, 0.0, v_max)
        w = self._limit_one(w_t, w_prev, p.max_angular_accel * dt, -p.max_angular_rps, p.max_angular_rps)
        return v, w
