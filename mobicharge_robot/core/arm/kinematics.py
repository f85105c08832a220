"""Serial-chain kinematics on Pinocchio: forward kinematics, the geometric Jacobian and numerical inverse kinematics.

A :class:`KinematicChain` is built from the URDF by ``UrdfModel.chain(base, tip)``: Pinocchio (which reads the URDF
through urdfdom) provides the model, and every joint outside the chain is locked at zero in a reduced model. Forward
kinematics and Jacobians are Pinocchio's; the inverse kinematics loop on top of them (damped least squares with
restarts, nearest solution to the current configuration) is ours because Pinocchio ships no IK solver and the
nearest-branch choice is specific to how the arm follows insertion lines. All transforms are 4x4 homogeneous
matrices ``T_base_x`` (points in frame x mapped into the chain's base frame), positions in metres, joint positions in
radians (revolute) or metres (prismatic).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

MOVABLE_TYPES = ("revolute", "continuous", "prismatic")


class IKError(Exception):
    """Inverse kinematics found no joint positions for a target; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OutOfReach(IKError):
    """The target position lies beyond what the chain's link lengths can span."""


class NoIKSolution(IKError):
    """No seed converged to the target within the tolerances and the joint limits."""


class FrameNotOnChain(ValueError):
    """The frame is neither a link of the chain nor rigidly attached to one."""


def axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix of ``angle`` rad about the unit vector ``axis`` (Rodrigues)."""
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    v = 1.0 - c
    return np.array([[c + x * x * v, x * y * v - z * s, x * z * v + y * s],
                     [y * x * v + z * s, c + y * y * v, y * z * v - x * s],
                     [z * x * v - y * s, z * y * v + x * s, c + z * z * v]])


def rotation_vector(r: np.ndarray) -> np.ndarray:
    """The rotation vector (axis times angle, rad) of a 3x3 rotation matrix; robust near 0 and pi."""
    r = np.asarray(r, float)[:3, :3]
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    cos_a = max(-1.0, min(1.0, 0.5 * (r[0, 0] + r[1, 1] + r[2, 2] - 1.0)))
    sin_a = 0.5 * float(np.linalg.norm(w))
    angle = math.atan2(sin_a, cos_a)
    if sin_a > 1e-6:
        return w * (angle / (2.0 * sin_a))
    if cos_a > 0.0:
        return 0.5 * w  # first-order: R ~ I + [angle * axis]x
    # Near pi the skew part vanishes; R + I = 2 k k^T gives the axis up to sign, and w (tiny) fixes the sign.
    b = 0.5 * (r + np.eye(3))
    i = int(np.argmax(np.diag(b)))
    k = b[:, i] / math.sqrt(max(b[i, i], 1e-12))
    k /= np.linalg.norm(k)
    if float(np.dot(k, w)) < 0.0:
        k = -k
    return k * angle


def _log3(r: np.ndarray) -> np.ndarray:
    """Pinocchio's rotation logarithm (the rotation vector, computed in C++)."""
    return np.asarray(_pin().log3(np.ascontiguousarray(r)), float)


def _pin():
    import pinocchio

    return pinocchio


def rotation_from_vector(v: np.ndarray) -> np.ndarray:
    """The rotation matrix of a rotation vector (axis times angle, rad)."""
    v = np.asarray(v, float)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    return axis_rotation(v / angle, angle)


def pose_error(T_target: np.ndarray, T_actual: np.ndarray) -> Tuple[float, float]:
    """(position error in metres, rotation error in radians) between two 4x4 poses."""
    dp = float(np.linalg.norm(T_target[:3, 3] - T_actual[:3, 3]))
    dr = float(np.linalg.norm(rotation_vector(T_target[:3, :3] @ T_actual[:3, :3].T)))
    return dp, dr


class KinematicChain:
    """A serial chain of 1-DoF joints from ``base`` to ``tip`` of a Pinocchio model.

    ``model`` is the full ``pinocchio.Model``; ``joint_ids`` the chain's joints (root to tip). Every other joint is
    locked at its neutral position. Frames rigidly attached to the base or to a chain link (such as the camera's
    optical frame) are available through :meth:`fk_frame`.

    Limits are arrays in chain order: ``lower``/``upper`` (rad or m) and ``velocity_limits`` (rad/s or m/s).
    """

    def __init__(self, model, base: str, tip: str, joint_ids: Sequence[int]):
        import pinocchio as pin

        self._pin = pin
        joint_ids = list(joint_ids)
        if not joint_ids:
            raise ValueError(f"chain {base} -> {tip} has no movable joint")
        for jid in joint_ids:
            if model.joints[jid].nq != 1 or model.joints[jid].nv != 1:
                raise ValueError(f"joint {model.names[jid]} is not a 1-DoF revolute or prismatic joint")
        locked = [j for j in range(1, model.njoints) if j not in joint_ids]
        self.model = pin.buildReducedModel(model, locked, pin.neutral(model)) if locked else model.copy()
        self.data = self.model.createData()
        self.base = base
        self.tip = tip
        self.joint_names = tuple(model.names[j] for j in joint_ids)
        if tuple(self.model.names[1:]) != self.joint_names:
            raise ValueError(f"reduced model joints {tuple(self.model.names[1:])} are not the chain's")
        self.joint_types = tuple("prismatic" if model.joints[j].shortname().startswith("JointModelP") else "revolute"
                                 for j in joint_ids)
        self._prismatic = np.array([t == "prismatic" for t in self.joint_types])
        self.lower = np.array(self.model.lowerPositionLimit, float)
        self.upper = np.array(self.model.upperPositionLimit, float)
        self.velocity_limits = np.array(self.model.velocityLimit, float)
        if np.any(self.lower > self.upper):
            raise ValueError("a joint's lower limit exceeds its upper limit")
        if np.any(~(self.velocity_limits > 0.0)):
            raise ValueError("velocity limits must be positive")
        for arr in (self.lower, self.upper, self.velocity_limits):
            arr.setflags(write=False)
        # Frames on the chain: attached to the base's own (locked) body or to a chain joint in the full model.
        base_joint = model.frames[model.getFrameId(base, pin.BODY)].parentJoint
        allowed = set(joint_ids) | {base_joint}
        self._frame_ids: Dict[str, int] = {}
        for fid, frame in enumerate(model.frames):
            if frame.type == pin.BODY and frame.parentJoint in allowed:
                self._frame_ids[frame.name] = self.model.getFrameId(frame.name, pin.BODY)
        self._base_id = self._frame_ids[base]
        self._tip_id = self._frame_ids[tip]
        pin.framesForwardKinematics(self.model, self.data, pin.neutral(self.model))
        self._T_root_base = self.data.oMf[self._base_id].homogeneous.copy()
        self._R_base_root = self._T_root_base[:3, :3].T.copy()
        self._T_base_root = np.linalg.inv(self._T_root_base)
        self._first = self._T_base_root @ self.data.oMi[1].homogeneous
        self._reach = self._reach_bound()

    # ------------------------------------------------------------------ forward kinematics
    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def frame_names(self) -> Tuple[str, ...]:
        """Every frame that :meth:`fk_frame` accepts."""
        return tuple(self._frame_ids)

    def _check_q(self, q) -> np.ndarray:
        q = np.asarray(q, float).reshape(-1)
        if q.shape[0] != self.n_joints:
            raise ValueError(f"expected {self.n_joints} joint positions, got {q.shape[0]}")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"joint positions must be finite, got {q}")
        return q

    def _tip(self, q: np.ndarray) -> np.ndarray:
        self._pin.forwardKinematics(self.model, self.data, q)
        return self._T_base_root @ self._pin.updateFramePlacement(self.model, self.data, self._tip_id).homogeneous

    def fk(self, q) -> np.ndarray:
        """T_base_tip (4x4) at joint positions ``q`` (chain order)."""
        return self._tip(self._check_q(q))

    def fk_frame(self, q, frame: str) -> np.ndarray:
        """T_base_frame (4x4) for a chain link or a frame rigidly attached to one (e.g. the camera optical frame)."""
        q = self._check_q(q)
        if frame not in self._frame_ids:
            raise FrameNotOnChain(f"frame '{frame}' is not on the chain {self.base} -> {self.tip} "
                                  f"nor fixed to one of its links")
        self._pin.forwardKinematics(self.model, self.data, q)
        placement = self._pin.updateFramePlacement(self.model, self.data, self._frame_ids[frame])
        return self._T_base_root @ placement.homogeneous

    def _tip_and_jacobian(self, q: np.ndarray):
        pin = self._pin
        pin.computeJointJacobians(self.model, self.data, q)
        tip = self._T_base_root @ pin.updateFramePlacement(self.model, self.data, self._tip_id).homogeneous
        jac = pin.getFrameJacobian(self.model, self.data, self._tip_id, pin.LOCAL_WORLD_ALIGNED)
        out = np.empty((6, self.n_joints))
        out[:3] = self._R_base_root @ jac[:3]
        out[3:] = self._R_base_root @ jac[3:]
        return tip, out

    def jacobian(self, q) -> np.ndarray:
        """The geometric Jacobian (6 x N) at the tip, in the base frame: rows are (v_x, v_y, v_z, w_x, w_y, w_z)."""
        return self._tip_and_jacobian(self._check_q(q))[1]

    def within_limits(self, q, tol: float = 1e-9) -> bool:
        q = self._check_q(q)
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))

    # ------------------------------------------------------------------ inverse kinematics
    def _reach_bound(self) -> float:
        """An upper bound (m) on the distance from the first joint's origin to the tip over all configurations."""
        total = 0.0
        for i in range(2, self.model.njoints):
            total += float(np.linalg.norm(self.model.jointPlacements[i].translation))
        tip_frame = self.model.frames[self._tip_id]
        total += float(np.linalg.norm(tip_frame.placement.translation))
        for i in range(self.n_joints):
            if self._prismatic[i]:
                total += max(abs(self.lower[i]), abs(self.upper[i]))
        return total

    def ik(self, T_target, q_seed, pos_tol: float = 1e-5, rot_tol: float = 1e-4, max_iter: int = 60,
           max_restarts: int = 8) -> np.ndarray:
        """Joint positions putting the tip at ``T_target`` (4x4, base frame), within the joint limits.

        Damped least squares (Levenberg-Marquardt) with clamping to the limits, from ``q_seed`` and from ``q_seed``
        with the first joint turned towards the target; if neither converges, up to ``max_restarts`` further seeds
        (near the seed and uniform over the limits, from a fixed random stream) are tried. Of the converged
        solutions the one nearest ``q_seed`` (Euclidean in joint space) is returned. Tolerances: ``pos_tol`` in
        metres, ``rot_tol`` in radians; ``max_iter`` bounds each solver run. ``max_restarts=0`` keeps the search
        local (used when following a path, where a jump to another branch must not happen).

        Raises OutOfReach when the target is provably too far, NoIKSolution when no seed converges, and ValueError
        for a malformed target or seed.
        """
        target = np.asarray(T_target, float)
        if target.shape != (4, 4) or not np.all(np.isfinite(target)):
            raise ValueError("T_target must be a finite 4x4 transform")
        r = target[:3, :3]
        if np.abs(r @ r.T - np.eye(3)).max() > 1e-6 or np.linalg.det(r) < 0.0:
            raise ValueError("T_target's rotation is not orthonormal")
        seed = self._check_q(q_seed)
        dist = float(np.linalg.norm(target[:3, 3] - self._first[:3, 3]))
        if dist > self._reach + pos_tol:
            raise OutOfReach(f"target is {dist:.3f} m from the first joint; the chain spans at most "
                             f"{self._reach:.3f} m")
        # The seed turned to face the target goes first when the turn is large: a local solver is worst at finding
        # a large turn of the first joint, and without it may settle on a far (flipped) branch although a near one
        # exists. The plain seed is tried when the turned one does not converge.
        aligned = self._turned_towards(seed, target) if max_restarts > 0 else seed
        turn = float(np.linalg.norm(aligned - seed))
        first = aligned if turn > 0.3 else seed
        q, best = self._solve(target, first, pos_tol, rot_tol, max_iter)
        found = [] if q is None else [self._nearest_equivalent(q, seed)]
        if max_restarts <= 0:
            starts = []
        elif first is aligned and turn > 0.3:
            starts = [] if found else [seed]
        else:
            moved = float(np.linalg.norm(found[0] - seed)) if found else math.inf
            starts = [aligned] if turn > 1e-3 and moved > turn else []
        for start in starts:
            q, err = self._solve(target, start, pos_tol, rot_tol, max_iter)
            best = min(best, err, key=lambda e: e[0] + e[1])
            if q is not None:
                found.append(self._nearest_equivalent(q, seed))
        if not found and max_restarts > 0:
            rng = np.random.default_rng(12345)  # fixed: the same request always gives the same answer
            lo = np.where(np.isfinite(self.lower), self.lower, -math.pi)
            hi = np.where(np.isfinite(self.upper), self.upper, math.pi)
            center = starts[0] if starts else seed
            for attempt in range(max_restarts):
                # Half the restarts stay near the (turned) seed so that a nearby branch is preferred when one
                # exists; half sample the whole joint space.
                if attempt % 2 == 0:
                    start = np.clip(center + rng.normal(0.0, 0.5, seed.shape), lo, hi)
                else:
                    start = rng.uniform(lo, hi)
                q, err = self._solve(target, start, pos_tol, rot_tol, max_iter)
                best = min(best, err, key=lambda e: e[0] + e[1])
                if q is not None:
                    found.append(self._nearest_equivalent(q, seed))
                    if len(found) >= 3:
                        break
        if found:
            return min(found, key=lambda s: float(np.linalg.norm(s - seed)))
        tried = 1 + len(starts) + (max_restarts if max_restarts > 0 else 0)
        raise NoIKSolution(f"no solution within the joint limits from {tried} seeds; best residual "
                           f"{best[0] * 1000.0:.2f} mm, {math.degrees(best[1]):.3f} deg")

    def reachable(self, T_target, q_seed) -> bool:
        """True when :meth:`ik` finds a solution for ``T_target`` from ``q_seed``."""
        try:
            self.ik(T_target, q_seed)
        except IKError:
            return False
        return True

    def _solve(self, target: np.ndarray, q0: np.ndarray, pos_tol: float, rot_tol: float, max_iter: int):
        """One damped least-squares run. Returns (q or None, (pos_err_m, rot_err_rad) of the best iterate)."""
        q = np.clip(q0, self.lower, self.upper)
        tip, jac = self._tip_and_jacobian(q)
        e = self._error(target, tip)
        cost = float(e @ e)
        damping = 1e-4
        for _ in range(max_iter):
            dp, dr = float(np.linalg.norm(e[:3])), float(np.linalg.norm(e[3:]))
            if dp <= pos_tol and dr <= rot_tol:
                return q, (dp, dr)
            a = jac @ jac.T + damping * np.eye(6)
            dq = jac.T @ np.linalg.solve(a, e)
            big = float(np.max(np.abs(dq)))
            if big > 0.4:
                dq *= 0.4 / big  # long steps jump between solution branches; keep each one local
            q_new = np.clip(q + dq, self.lower, self.upper)
            tip_new, jac_new = self._tip_and_jacobian(q_new)
            e_new = self._error(target, tip_new)
            cost_new = float(e_new @ e_new)
            if cost_new < cost:
                q, jac, tip, e, cost = q_new, jac_new, tip_new, e_new, cost_new
                damping = max(damping * 0.3, 1e-9)
            else:
                damping *= 10.0
                if damping > 1e4:
                    break  # stuck at a limit or a local minimum
        dp, dr = float(np.linalg.norm(e[:3])), float(np.linalg.norm(e[3:]))
        if dp <= pos_tol and dr <= rot_tol:
            return q, (dp, dr)
        return None, (dp, dr)

    def _turned_towards(self, q: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``q`` with the first joint (when revolute) turned so that the tip's azimuth about its axis matches the
        target's: the largest single correction a local solver is worst at finding on its own."""
        out = q.copy()
        if self._prismatic[0]:
            return out
        first = self._first
        axis = self.jacobian(q)[3:, 0]  # the first joint's axis in the base frame
        p = self.fk(q)[:3, 3] - first[:3, 3]
        t = target[:3, 3] - first[:3, 3]
        p -= axis * float(axis @ p)
        t -= axis * float(axis @ t)
        if np.linalg.norm(p) < 1e-3 or np.linalg.norm(t) < 1e-3:
            return out
        out[0] += math.atan2(float(axis @ np.cross(p, t)), float(p @ t))
        if out[0] > self.upper[0]:
            out[0] -= 2.0 * math.pi
        elif out[0] < self.lower[0]:
            out[0] += 2.0 * math.pi
        return np.clip(out, self.lower, self.upper)

    @staticmethod
    def _error(target: np.ndarray, tip: np.ndarray) -> np.ndarray:
        e = np.empty(6)
        e[:3] = target[:3, 3] - tip[:3, 3]
        e[3:] = _log3(target[:3, :3] @ tip[:3, :3].T)
        return e

    def _nearest_equivalent(self, q: np.ndarray, seed: np.ndarray) -> np.ndarray:
        """Shift revolute joints by whole turns towards the seed where the limits allow it."""
        out = q.copy()
        two_pi = 2.0 * math.pi
        for i in range(self.n_joints):
            if self._prismatic[i]:
                continue
            turns = round((seed[i] - out[i]) / two_pi)
            cand = out[i] + turns * two_pi
            if turns and self.lower[i] <= cand <= self.upper[i]:
                out[i] = cand
        return out
