"""Collision checks for arm motions (Pinocchio geometry with coal) and the workspace check the mission asks first.

Three kinds of contact are refused before a motion runs: the arm against the robot itself (URDF collision shapes,
pairs that touch by construction left out: neighbouring links and anything that does not move with the arm), the arm
against the ground (the plane z = 0 of ``base_link``), and the arm against the car body as perceived (a box placed
behind the perceived inlet, :func:`car_box_from_inlet`). Only the connector and its camera may enter the car box
(the charge-port pocket around the inlet, which the box does not model), and only on the straight line along the
inlet axis.

All poses are 4x4 transforms in the chain's base frame (``base_link``), lengths in metres.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .insertion import seated_tip_pose, tip_pose_on_axis
from .kinematics import IKError, KinematicChain

# The connector and the camera on it enter the charge-port pocket around the inlet, which the car box leaves out.
CONNECTOR_LINKS = ("connector_body", "wrist_camera", "wrist_camera_ring_light")


class MotionInCollision(Exception):
    """A planned motion would touch the robot, the ground or the car; ``reason`` names the pair and where."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Box:
    """An obstacle box: pose ``T_base_box`` (4x4, base frame) and ``half_extents`` (m) along its own axes."""

    T_base_box: np.ndarray
    half_extents: Tuple[float, float, float]


def car_box_from_inlet(T_base_inlet: np.ndarray, length_m: float = 4.8, depth_m: float = 1.9,
                       height_m: float = 1.6, surface_offset_m: float = 0.010) -> Box:
    """The car body as seen from its inlet: a box whose near face is the body surface ``surface_offset_m`` in front
    of the inlet face (the face sits recessed), ``depth_m`` deep behind it, ``length_m`` along the inlet's x
    centred on the inlet, and from the floor (z = 0 of the base frame) to ``height_m``. Assumes an upright inlet
    (y up), as the vision model does."""
    T = np.asarray(T_base_inlet, float)
    height_inlet = float(T[2, 3])
    y_lo, y_hi = -height_inlet, height_m - height_inlet
    centre = np.array([0.0, 0.5 * (y_lo + y_hi), surface_offset_m - 0.5 * depth_m, 1.0])
    T_box = T.copy()
    T_box[:, 3] = T @ centre
    return Box(T_box, (0.5 * length_m, 0.5 * (y_hi - y_lo), 0.5 * depth_m))


class ArmCollisionChecker:
    """Self, ground and car collision checks of arm configurations and trajectories.

    ``model`` is the :class:`~.urdf_model.UrdfModel`, ``chain`` its arm chain; ``margin_m`` is the clearance kept
    from the ground and the car (coal's security margin).
    """

    def __init__(self, model, chain: KinematicChain, margin_m: float = 0.01):
        import coal
        import pinocchio as pin

        self._pin, self._coal = pin, coal
        full = model.pin_model
        keep = {full.getJointId(n) for n in chain.joint_names}
        locked = [j for j in range(1, full.njoints) if j not in keep]
        self.model, self.geom = pin.buildReducedModel(full, model.collision_model, locked, pin.neutral(full))
        self.data = self.model.createData()
        self.chain = chain
        self.margin_m = float(margin_m)
        self._moving = [i for i, g in enumerate(self.geom.geometryObjects) if g.parentJoint > 0]
        self._names = [g.name for g in self.geom.geometryObjects]
        self._links = [self.model.frames[g.parentFrame].name for g in self.geom.geometryObjects]
        # Self-collision pairs: one geometry moves with the arm, the two are not on the same or neighbouring joints.
        for i in self._moving:
            for j in range(len(self._names)):
                gi, gj = self.geom.geometryObjects[i], self.geom.geometryObjects[j]
                if j == i or (j in self._moving and j < i):
                    continue
                ji, jj = gi.parentJoint, gj.parentJoint
                if ji == jj or self.model.parents[ji] == jj or self.model.parents[jj] == ji:
                    continue
                self.geom.addCollisionPair(pin.CollisionPair(i, j))
        self.gdata = pin.GeometryData(self.geom)
        # As a robot's SRDF does: pairs already touching in the zero configuration are touching by construction
        # (the shoulder housing over the pedestal), not a collision the planner could avoid.
        self._placements(np.zeros(chain.n_joints))
        pin.computeCollisions(self.geom, self.gdata, False)
        touching = [k for k, r in enumerate(self.gdata.collisionResults) if r.isCollision()]
        for k in reversed(touching):
            self.geom.removeCollisionPair(self.geom.collisionPairs[k])
        self.gdata = pin.GeometryData(self.geom)
        self._ground = coal.Halfspace(np.array([0.0, 0.0, 1.0]), 0.0)
        self._request = coal.CollisionRequest()
        self._request.security_margin = self.margin_m
        self.checked_configurations = 0
        self.checked_motions = 0

    def _placements(self, q: np.ndarray) -> None:
        self._pin.updateGeometryPlacements(self.model, self.data, self.geom, self.gdata, np.asarray(q, float))

    def _collide(self, i: int, shape, T: np.ndarray) -> bool:
        coal = self._coal
        result = coal.CollisionResult()
        tf = coal.Transform3s(T[:3, :3], T[:3, 3])
        obj = self.geom.geometryObjects[i]
        return coal.collide(obj.geometry, self.gdata.oMg[i], shape, tf, self._request, result) > 0

    def configuration_collision(self, q, car: Optional[Box] = None,
                                allow_car: Sequence[str] = ()) -> Optional[str]:
        """None when configuration ``q`` (chain order) is free, else a description of the first contact.
        Links named in ``allow_car`` may touch the car box."""
        q = self.chain._check_q(q)
        self.checked_configurations += 1
        self._placements(q)
        if self._pin.computeCollisions(self.geom, self.gdata, True):
            for k, res in enumerate(self.gdata.collisionResults):
                if res.isCollision():
                    pair = self.geom.collisionPairs[k]
                    return f"self-collision {self._links[pair.first]} / {self._links[pair.second]}"
        coal = self._coal
        car_shape = coal.Box(*(2.0 * np.asarray(car.half_extents))) if car is not None else None
        for i in self._moving:
            if self._collide(i, self._ground, np.eye(4)):
                return f"{self._links[i]} touches the ground"
            if car_shape is not None and self._links[i] not in allow_car and self._collide(i, car_shape,
                                                                                           car.T_base_box):
                return f"{self._links[i]} touches the car body"
        return None

    def check_path(self, positions: Iterable, car: Optional[Box] = None, allow_car: Sequence[str] = (),
                   max_step_rad: float = 0.05) -> None:
        """Raise MotionInCollision when any configuration along ``positions`` (waypoints, linearly densified to
        ``max_step_rad``) is in collision."""
        self.checked_motions += 1
        prev = None
        for q in positions:
            q = np.asarray(q, float)
            pts = [q]
            if prev is not None:
                n = int(math.ceil(float(np.max(np.abs(q - prev))) / max_step_rad))
                pts = [prev + (q - prev) * (k / n) for k in range(1, n + 1)] if n > 1 else [q]
            for p in pts:
                why = self.configuration_collision(p, car, allow_car)
                if why is not None:
                    raise MotionInCollision(why)
            prev = q


@dataclass
class ReachReport:
    """The workspace check's answer: ``ok``, a ``reason`` when not, and the poses that were tried."""

    ok: bool
    reason: str = ""
    poses_checked: int = 0


def inlet_in_reach(chain: KinematicChain, T_base_inlet: np.ndarray, q_seed, seat_depth_m: float,
                   standoff_m: float = 0.10, margin_m: float = 0.05, margin_rad: float = math.radians(5.0),
                   checker: Optional[ArmCollisionChecker] = None, extra_poses: Sequence[np.ndarray] = ()) \
        -> ReachReport:
    """Does a staging pose put this inlet in reach with margin?

    ``T_base_inlet`` is the expected inlet pose in the base frame at the staging pose. Every pose the plug-in needs
    (``extra_poses``, e.g. the camera view, then the stand-off and the seated pose) must have an IK solution within
    the joint limits, and so must the seated and stand-off poses shifted by ``margin_m`` along each inlet axis and
    turned by ``margin_rad`` about each (the error the inlet pose may still carry after staging). With a ``checker``
    the nominal configurations must also be free of self and ground collisions and of the car body box.
    A pure function: the mission calls it before it commits to a staging pose.
    """
    T = np.asarray(T_base_inlet, float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return ReachReport(False, "inlet pose is not a finite 4x4 transform")
    from ..geometry import make_transform, rot_x, rot_y, rot_z

    nominal = list(extra_poses) + [tip_pose_on_axis(T, standoff_m), seated_tip_pose(T, seat_depth_m)]
    shifted = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            d = np.zeros(3)
            d[axis] = sign * margin_m
            rot = (rot_x, rot_y, rot_z)[axis](sign * margin_rad)
            T_off = T @ make_transform(rot, d)
            shifted += [tip_pose_on_axis(T_off, standoff_m), seated_tip_pose(T_off, seat_depth_m)]
    car = car_box_from_inlet(T)
    checked = 0
    q = np.asarray(q_seed, float)
    for k, pose in enumerate(nominal + shifted):
        checked += 1
        try:
            q_k = chain.ik(pose, q)
        except IKError as exc:
            what = "nominal" if k < len(nominal) else "margin"
            return ReachReport(False, f"{what} pose {k} unreachable: {exc.reason}", checked)
        if checker is not None and k < len(nominal):
            allow = CONNECTOR_LINKS if k == len(nominal) - 1 else ()
            why = checker.configuration_collision(q_k, car, allow)
            if why is not None:
                return ReachReport(False, f"nominal pose {k} in collision: {why}", checked)
    return ReachReport(True, "", checked)


def _seed_grid(chain: KinematicChain, q0: np.ndarray, T_goal: np.ndarray):
    """Deterministic extra IK seeds: the first joint turned towards the goal, the shoulder, elbow and wrist pitch
    over a coarse grid (elbow up and down, wrist level and bent)."""
    turned = chain._turned_towards(q0, T_goal)
    for j2 in (-2.2, -1.4, -0.6):
        for j3 in (2.4, 1.6, 0.8, -1.2):
            for j4 in (-1.2, -0.4, 0.4, 1.2):
                q = turned.copy()
                q[1:4] = (j2, j3, j4)
                q[4:] = 0.0
                yield np.clip(q, chain.lower, chain.upper)


def plan_free_joint_motion(chain: KinematicChain, checker: ArmCollisionChecker, q_start, T_goal: np.ndarray,
                           car: Optional[Box] = None, via: Sequence[Sequence[float]] = (),
                           seeds: Sequence[Sequence[float]] = (), allow_car: Sequence[str] = ()) -> List:
    """Collision-checked joint motion(s) from ``q_start`` to a tip pose ``T_goal``: a list of JointTrajectory.

    IK candidates come from ``q_start`` and each of ``seeds`` (nearest first), then, only if none of those gives a
    free motion, from a deterministic grid of seeds (other elbow and wrist branches). For each collision-free goal
    the straight joint move is tried, then a move through each configuration of ``via`` (e.g. the stowed one).
    Raises MotionInCollision with the last reason when none is free, and IKError when no candidate exists at all.
    """
    from .trajectory import plan_joint_motion

    q0 = np.asarray(q_start, float)
    tried: List[np.ndarray] = []
    reason, last_ik = "", None

    def candidates(seed_list):
        nonlocal last_ik
        found = []
        for seed in seed_list:
            try:
                q = chain.ik(T_goal, seed, max_restarts=2)
            except IKError as exc:
                last_ik = exc
                continue
            if all(float(np.max(np.abs(q - c))) > 1e-3 for c in tried + found):
                found.append(q)
        found.sort(key=lambda q: float(np.linalg.norm(q - q0)))
        return found

    for group in ([q0] + [np.asarray(s, float) for s in seeds], _seed_grid(chain, q0, T_goal)):
        for q_goal in candidates(group):
            tried.append(q_goal)
            why = checker.configuration_collision(q_goal, car, allow_car)
            if why is not None:
                reason = f"goal in collision: {why}"
                continue
            routes = [[q0, q_goal]] + [[q0, np.asarray(v, float), q_goal] for v in via]
            for route in routes:
                try:
                    segments = [plan_joint_motion(chain, a, b) for a, b in zip(route[:-1], route[1:])]
                    for seg in segments:
                        checker.check_path(seg.positions, car, allow_car)
                    return segments
                except MotionInCollision as exc:
                    reason = exc.reason
    if not tried:
        raise last_ik if last_ik is not None else IKError("no IK candidate")
    raise MotionInCollision(f"{reason} (and {len(tried) - 1} other IK solutions)")
