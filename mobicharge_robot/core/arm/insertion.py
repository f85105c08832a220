"""Connector poses around an inlet, and the monitor that decides seated / over-force during insertion.

All poses are 4x4 transforms in the arm's base frame (``base_link``). Frames follow doc/architecture.md: the inlet's
z points out of its face; the connector tip's z points along the insertion direction, so a tip aligned with an inlet
has ``R_inlet_tip = RotY(pi)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..geometry import make_transform, rot_x, rot_y

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


def camera_view_candidates(T_base_inlet: np.ndarray, T_tip_cam: np.ndarray, distance_m: float):
    """Tip poses that show the inlet to the camera, preferred first: straight in front at ``distance_m``, then 5 cm
    nearer or farther, then the same with the camera turned half a turn about its optical axis (the port detector
    matches the hole pattern under any in-plane rotation; the turned wrist avoids folding the arm onto itself
    when the inlet is low and near)."""
    from ..geometry import rot_z

    for roll in (0.0, math.pi):
        turned = T_base_inlet @ make_transform(rot_z(roll), (0.0, 0.0, 0.0))
        for d in (distance_m, distance_m - 0.05, distance_m + 0.05):
            yield camera_view_tip_pose(turned, T_tip_cam, d)


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


@dataclass
class InsertionParams:
    """Tuning of the force-guided insertion. Forces N, lengths m, angles rad, times s.

    ``force_limit_n``: the axial force the connector must never see (IEC 62196-1 bounds the insertion force of a
    vehicle connector by 100 N). The controller pushes with ``push_force_n``, stops advancing above it, backs off
    above ``backoff_fraction`` of the limit, and aborts at the limit. ``wrist_stiffness_n_per_m`` (axial) turns the
    measured force into the plug's lag behind the command (the compliant wrist's known stiffness).
    """

    force_limit_n: float = 100.0
    push_force_n: float = 65.0
    search_force_n: float = 20.0
    backoff_fraction: float = 0.85
    speed_mps: float = 0.02
    lateral_gain_m_per_n_s: float = 2.0e-4  # admittance: lateral command rate per newton of contact force
    angular_gain_rad_per_nm_s: float = 0.05
    max_angular_rate_rps: float = math.radians(5.0)
    max_lateral_rate_mps: float = 0.01
    wrist_stiffness_n_per_m: float = 20000.0
    standoff_m: float = 0.03
    seat_depth_m: float = 0.028
    seat_tolerance_m: float = 0.0015
    engage_depth_m: float = 0.004  # past this the carriers are in their bores: no more searching
    blocked_time_s: float = 0.3
    spiral_pitch_m: float = 0.0012
    spiral_radius_m: float = 0.007
    spiral_speed_mps: float = 0.012
    attempt_timeout_s: float = 12.0
    max_retries: int = 3
    stale_after_s: float = 0.25
    stale_fail_s: float = 2.0  # stale for this long in total during one wait: give up
    inlet_max_age_s: float = 60.0  # the inlet pose is measured from the camera pose before the plug-in starts


@dataclass
class InsertionStep:
    """One controller output: ``T_inlet_tip`` is the commanded tip pose in the (believed) inlet frame; ``state`` is
    'approach', 'insert', 'search', 'retract', 'seated' or 'failed' (then ``reason`` says why)."""

    T_inlet_tip: np.ndarray
    state: str
    reason: str = ""
    release_latch: bool = False  # hold the latch open: retracting a plug the latch still holds


class InsertionController:
    """Compliant, force-guided insertion along the believed inlet axis (pure: no I/O, one call per control tick).

    From the stand-off it moves in along the axis. Admittance control turns the measured contact force and torque
    (tip frame, the load on the wrist) into lateral and angular corrections of the command, so chamfers steer the
    plug into its bores. The axial push is regulated to ``push_force_n``. When the plug is blocked at the face
    (depth estimate short of ``engage_depth_m`` for ``blocked_time_s``) an Archimedean spiral search of bounded
    radius runs under a light push; when the spiral is exhausted, or an attempt times out, or the force passes the
    back-off level twice, it retracts to the stand-off and retries (at most ``max_retries`` retries, each spiral
    turned by a golden angle), then fails with the reason. The axial command never runs further than the force
    limit allows: the command is pulled back whenever the measured force nears it, and the attempt aborts at it.
    A wrench older than ``stale_after_s`` stops the command where it is; if no fresh wrench comes within
    ``stale_fail_s`` the insertion fails. An inlet pose older than ``inlet_max_age_s`` retracts and fails.
    Seated: the latch reports engaged and the depth estimate (force-based, so less exact than the latch's own
    depth check) is no more than twice ``seat_tolerance_m`` short of ``seat_depth_m``. A plug latched short of that
    is a partial insertion: the controller asks for the latch to be opened (``release_latch``) while it retracts.
    """

    def __init__(self, params: Optional[InsertionParams] = None):
        self.p = params or InsertionParams()
        self.attempt = 0
        self.peak_force_n = 0.0
        self.reason = ""
        self.t_stale = 0.0
        self._latched = False
        self.t_latch_hold = 0.0
        self._reset_attempt(start_depth=-self.p.standoff_m)
        self.state = "approach"

    def _reset_attempt(self, start_depth: float):
        self.depth_cmd = start_depth  # along the insertion axis, positive inside the face
        self.lateral = np.zeros(2)  # tip-frame x, y offset of the command
        self.tilt = np.zeros(3)  # rotation vector correction (tip frame)
        self.t_attempt = 0.0
        self.t_blocked = 0.0
        self.spiral_theta = 0.0
        self.spiral_centre = np.zeros(2)
        self.backoffs = 0
        self.t_latch_hold = 0.0

    def pose(self) -> np.ndarray:
        """The commanded tip pose in the believed inlet frame."""
        from .kinematics import rotation_from_vector

        T = tip_pose_on_axis(np.eye(4), -self.depth_cmd)
        corr = make_transform(rotation_from_vector(self.tilt), (self.lateral[0], self.lateral[1], 0.0))
        return T @ corr

    def depth_estimate(self, force_z: float) -> float:
        """The plug's depth: the command less the wrist's compression under the measured axial load."""
        return self.depth_cmd + min(0.0, force_z) / self.p.wrist_stiffness_n_per_m

    def _fail(self, reason: str) -> InsertionStep:
        self.state, self.reason = "failed", reason
        return InsertionStep(self.pose(), "failed", reason)

    def step(self, force_tip, torque_tip, latched: bool, dt: float, wrench_age_s: float = 0.0,
             inlet_age_s: float = 0.0) -> InsertionStep:
        p = self.p
        if self.state in ("seated", "failed"):
            return InsertionStep(self.pose(), self.state, self.reason)
        self._latched = bool(latched)
        f = np.asarray(force_tip, float)
        tau = np.asarray(torque_tip, float)
        if f.shape != (3,) or tau.shape != (3,) or not (np.all(np.isfinite(f)) and np.all(np.isfinite(tau))):
            return self._fail("wrist wrench is not finite: sensor fault")
        if not wrench_age_s <= p.stale_after_s:
            # No fresh force data: the command does not move at all; a lasting outage ends the insertion.
            self.t_stale += dt
            if self.t_stale > p.stale_fail_s:
                return self._fail(f"stale wrench ({wrench_age_s:.2f} s old, no fresh data for {self.t_stale:.1f} s)")
            return InsertionStep(self.pose(), self.state, "waiting for a fresh wrench")
        self.t_stale = 0.0
        if not inlet_age_s <= p.inlet_max_age_s and self.state != "retract":
            self.reason = f"lost inlet: pose {inlet_age_s:.1f} s old"
            self.attempt = p.max_retries
            self.state = "retract"
            return self._retract(dt, 0.0)
        axial = -float(f[2])  # the inlet pushes back against the insertion direction
        self.peak_force_n = max(self.peak_force_n, abs(float(f[2])))
        if abs(float(f[2])) >= p.force_limit_n:
            self.state = "retract"
            self.reason = f"over-force: {abs(float(f[2])):.0f} N at the {p.force_limit_n:.0f} N limit"
            self.attempt = p.max_retries  # an over-force is not retried: something is wrong with the inlet
            return self._retract(dt, axial)
        depth = self.depth_estimate(float(f[2]))
        # Seated: the latch reads engaged and the plug is at least at seat depth (the housing's shoulder stops it
        # there, so an estimate past the seat depth only means the command ran ahead of the plug).
        if latched and depth >= p.seat_depth_m - 2.0 * p.seat_tolerance_m:
            self.state = "seated"
            return InsertionStep(self.pose(), "seated")
        if self.state == "retract":
            return self._retract(dt, axial)
        self.t_attempt += dt
        if self.t_attempt > p.attempt_timeout_s:
            return self._next_attempt(f"not seated within {p.attempt_timeout_s:.0f} s", dt, axial)
        # Admittance: follow the contact force laterally and the contact torque in rotation, rate-limited.
        d_lat = np.clip(p.lateral_gain_m_per_n_s * f[:2] * dt, -p.max_lateral_rate_mps * dt,
                        p.max_lateral_rate_mps * dt)
        d_rot = np.clip(p.angular_gain_rad_per_nm_s * tau * dt, -p.max_angular_rate_rps * dt,
                        p.max_angular_rate_rps * dt)
        self.tilt = np.clip(self.tilt + d_rot, -math.radians(6.0), math.radians(6.0))
        if axial > p.backoff_fraction * p.force_limit_n:
            self.backoffs += 1
            self.depth_cmd -= (axial - p.push_force_n) / p.wrist_stiffness_n_per_m
            if self.backoffs > 25:
                return self._next_attempt(f"jammed: {axial:.0f} N at {1000 * depth:.1f} mm", dt, axial)
            return InsertionStep(self.pose(), self.state)
        if self.state == "search":
            if depth > p.engage_depth_m:
                self.state = "insert"
                self.t_blocked = 0.0
            else:
                r = p.spiral_pitch_m * self.spiral_theta / (2.0 * math.pi)
                if r > p.spiral_radius_m:
                    return self._next_attempt(f"jammed at the face: spiral search to {1000 * p.spiral_radius_m:.0f} "
                                              f"mm found no entry", dt, axial)
                self.spiral_theta += p.spiral_speed_mps * dt / max(r, p.spiral_pitch_m)
                phase = self.spiral_theta + 2.39996 * self.attempt
                self.lateral = self.spiral_centre + r * np.array([math.cos(phase), math.sin(phase)])
                self._regulate(axial, p.search_force_n, dt)
                return InsertionStep(self.pose(), "search")
        self.lateral = self.lateral + d_lat
        push = p.push_force_n
        self._regulate(axial, push, dt)
        if depth < p.engage_depth_m and axial > 0.8 * push and depth > -0.002:
            self.t_blocked += dt
            if self.t_blocked > p.blocked_time_s:
                self.state = "search"
                self.spiral_centre = self.lateral.copy()
                self.spiral_theta = 0.0
        else:
            self.t_blocked = 0.0
            if self.state == "approach" and depth > -0.002:
                self.state = "insert"
        return InsertionStep(self.pose(), self.state)

    def _regulate(self, axial: float, target: float, dt: float):
        """Advance at the insertion speed while the axial load is under ``target``; ease back above it."""
        p = self.p
        if axial < target:
            self.depth_cmd += p.speed_mps * dt
        else:
            self.depth_cmd -= min(p.speed_mps * dt, 0.5 * (axial - target) / p.wrist_stiffness_n_per_m)
        self.depth_cmd = min(self.depth_cmd, p.seat_depth_m + 0.004)

    def _next_attempt(self, why: str, dt: float, axial: float) -> InsertionStep:
        self.reason = why
        self.state = "retract"
        return self._retract(dt, axial)

    def _retract(self, dt: float, axial: float) -> InsertionStep:
        """Back out along the axis (lateral and tilt held) to the stand-off; then retry or fail."""
        p = self.p
        if self._latched:
            # Never pull against the latch: hold with the latch commanded open until it reads open.
            self.t_latch_hold += dt
            if self.t_latch_hold > 3.0:
                return self._fail(f"{self.reason}; the latch did not open to retract")
            return InsertionStep(self.pose(), "retract", self.reason, release_latch=True)
        if -axial > p.push_force_n:
            # Pulling against something that holds the plug: pause (the wrist relaxes) rather than pull harder.
            self.t_latch_hold += dt
            if self.t_latch_hold > 5.0:
                return self._fail(f"{self.reason}; the plug is stuck and cannot be withdrawn")
            self.depth_cmd += min(p.speed_mps * dt, 0.5 * (-axial - p.push_force_n) / p.wrist_stiffness_n_per_m)
            return InsertionStep(self.pose(), "retract", self.reason, release_latch=True)
        self.depth_cmd -= 2.0 * p.speed_mps * dt
        if self.depth_cmd > -p.standoff_m:
            return InsertionStep(self.pose(), "retract", self.reason, release_latch=True)
        if self.attempt >= p.max_retries:
            return self._fail(f"{self.reason} (after {self.attempt} retries)")
        self.attempt += 1
        self._reset_attempt(start_depth=-p.standoff_m)
        self.state = "approach"
        return InsertionStep(self.pose(), "approach", self.reason)
