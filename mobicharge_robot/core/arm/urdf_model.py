"""The robot description, loaded by Pinocchio (through urdfdom, the ROS URDF parser) with its coal collision shapes.

A thin adapter: the frame tree, joint limits and collision geometry come from ``pinocchio.Model`` /
``pinocchio.GeometryModel``; this class only offers the queries the rest of the stack makes (frame transforms,
footprint and wheel data for navigation, sensor poses, the arm's kinematic chain). Lengths are metres, angles
radians, transforms 4x4 ``T_a_b`` (frame b in a).
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from xml.parsers.expat import ExpatError
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from .kinematics import MOVABLE_TYPES, KinematicChain

JOINT_TYPES = ("revolute", "continuous", "prismatic", "fixed", "floating", "planar")


class UrdfError(Exception):
    """The robot description is missing, malformed, or lacks something a caller needs from it."""


@dataclass(frozen=True, eq=False)
class Geometry:
    """A collision primitive in its link's frame: ``kind`` is box (``size`` x, y, z), cylinder (``radius``,
    ``length`` along its local z), sphere (``radius``) or mesh (``filename``, ``size`` = scale)."""

    kind: str
    origin: np.ndarray
    size: Tuple[float, ...] = ()
    radius: float = 0.0
    length: float = 0.0
    filename: str = ""


@dataclass(frozen=True, eq=False)
class Link:
    name: str
    mass: Optional[float] = None
    collisions: Tuple[Geometry, ...] = ()


@dataclass(frozen=True, eq=False)
class Joint:
    """A URDF joint. ``origin`` is T_parent_joint at zero position; ``axis`` is a unit vector in the joint frame.

    Limits: ``lower``/``upper`` in rad (m for prismatic), +-inf for continuous and 0 for fixed joints;
    ``velocity`` in rad/s (m/s) and ``effort`` in N m (N), +inf when the URDF gives none.
    """

    name: str
    type: str
    parent: str
    child: str
    origin: np.ndarray
    axis: np.ndarray
    lower: float
    upper: float
    velocity: float
    effort: float


def default_urdf_path() -> str:
    """``urdf/mobicharge.urdf.xacro`` from the source tree, or from share/mobicharge_robot when installed."""
    from ..paths import data_path

    path = data_path("urdf", "mobicharge.urdf.xacro")
    if not os.path.isfile(path):
        raise UrdfError(f"robot description not found (looked for {path} and the installed share directory)")
    return path


def _floats(text: Optional[str], n: int, default: Tuple[float, ...], what: str) -> Tuple[float, ...]:
    if text is None:
        return default
    try:
        vals = tuple(float(v) for v in text.split())
    except ValueError as exc:
        raise UrdfError(f"{what}: '{text}' is not {n} numbers") from exc
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise UrdfError(f"{what}: '{text}' is not {n} finite numbers")
    return vals


def _attr_float(elem: ET.Element, name: str, default: Optional[float], what: str) -> float:
    text = elem.get(name)
    if text is None:
        if default is None:
            raise UrdfError(f"{what}: missing attribute '{name}'")
        return default
    try:
        return float(text)
    except ValueError as exc:
        raise UrdfError(f"{what}: {name}='{text}' is not a number") from exc


class UrdfModel:
    """The loaded robot description. ``links`` and ``joints`` map names to :class:`Link` / :class:`Joint`;
    ``pin_model`` and ``collision_model`` are the Pinocchio model and its coal collision geometry."""

    def __init__(self, xml: str):
        import pinocchio as pin

        self._pin = pin
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise UrdfError(f"robot description is not valid XML: {exc}") from exc
        if root.tag != "robot":
            raise UrdfError(f"root element is <{root.tag}>, expected <robot>")
        if not root.get("name"):
            root.set("name", "robot")  # urdfdom insists on a robot name
        names = [e.get("name") for e in root.findall("link")]
        if len(set(names)) != len(names):
            raise UrdfError(f"duplicate link names in {names}")
        text = ET.tostring(root, encoding="unicode")
        try:
            self.pin_model = pin.buildModelFromXML(text)
            self.collision_model = pin.buildGeomFromUrdfString(self.pin_model, text, pin.COLLISION)
        except (ValueError, RuntimeError) as exc:
            raise UrdfError(f"urdfdom rejected the robot description: {exc}") from exc
        n_collisions = sum(len(e.findall("collision")) for e in root.findall("link"))
        if self.collision_model.ngeoms != n_collisions:
            raise UrdfError(f"urdfdom read {self.collision_model.ngeoms} of {n_collisions} collision elements "
                            f"(a malformed <collision>?)")
        self.name = root.get("name", "")
        model = self.pin_model
        self.root = model.frames[1].name if len(model.frames) > 1 else "universe"
        self._data = model.createData()
        masses = {}
        for e in root.findall("link"):
            m = e.find("inertial/mass")
            if m is not None:
                masses[e.get("name")] = _attr_float(m, "value", None, f"link {e.get('name')} mass")
        self.links: Dict[str, Link] = {}
        self.joints: Dict[str, Joint] = {}
        for fid, frame in enumerate(model.frames):
            if frame.type == pin.BODY:
                geoms = tuple(_geometry(o, frame) for o in self.collision_model.geometryObjects
                              if o.parentFrame == fid)
                self.links[frame.name] = Link(frame.name, masses.get(frame.name), geoms)
        for fid, frame in enumerate(model.frames):
            if frame.type == pin.FIXED_JOINT:
                child = model.frames[fid + 1].name if fid + 1 < len(model.frames) else ""
                self.joints[frame.name] = Joint(frame.name, "fixed", model.frames[frame.parentFrame].name, child,
                                                frame.placement.homogeneous, np.zeros(3), 0.0, 0.0, 0.0, 0.0)
        for jid in range(1, model.njoints):
            jm = model.joints[jid]
            short = jm.shortname()
            if "RUB" in short or "RevoluteUnbounded" in short:
                jtype, lower, upper = "continuous", -math.inf, math.inf
            else:
                jtype = "prismatic" if short.startswith("JointModelP") else "revolute"
                lower = float(model.lowerPositionLimit[jm.idx_q])
                upper = float(model.upperPositionLimit[jm.idx_q])
            name = model.names[jid]
            jf = model.getFrameId(name, pin.JOINT)
            self.joints[name] = Joint(name, jtype, model.frames[model.frames[jf].parentFrame].name,
                                      model.frames[jf + 1].name, model.jointPlacements[jid].homogeneous,
                                      _joint_axis(jm), lower, upper, float(model.velocityLimit[jm.idx_v]),
                                      float(model.effortLimit[jm.idx_v]))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_string(cls, xml: str) -> "UrdfModel":
        return cls(xml)

    @classmethod
    def from_file(cls, path: str) -> "UrdfModel":
        """Read a plain URDF file (use :meth:`from_xacro` for ``.xacro``)."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise UrdfError(f"cannot read robot description {path}: {exc}") from exc
        return cls.from_string(text)

    @classmethod
    def from_xacro(cls, path: str, mappings: Optional[Mapping[str, object]] = None) -> "UrdfModel":
        """Expand a xacro file (with ``mappings`` for its ``xacro:arg``s) and load the result."""
        import xacro

        if not os.path.isfile(path):
            raise UrdfError(f"robot description {path} does not exist")
        args = {str(k): _xacro_value(v) for k, v in (mappings or {}).items()}
        try:
            text = xacro.process_file(path, mappings=args).toxml()
        except (xacro.XacroException, ExpatError, OSError) as exc:
            raise UrdfError(f"xacro failed on {path}: {exc}") from exc
        return cls.from_string(text)

    # ------------------------------------------------------------------ tree queries
    def _frame_id(self, name: str) -> int:
        if name not in self.links:
            raise UrdfError(f"unknown frame '{name}'")
        return self.pin_model.getFrameId(name, self._pin.BODY)

    def configuration(self, joint_positions: Mapping[str, float]) -> np.ndarray:
        """Pinocchio's configuration vector with the named joints set (rad or m); others at zero, unknown names
        ignored (a whole joint_states message can be passed)."""
        model = self.pin_model
        q = self._pin.neutral(model)
        for name, value in joint_positions.items():
            if not model.existJointName(name):
                continue
            pos = float(value)
            if not math.isfinite(pos):
                raise ValueError(f"joint {name} position is not finite: {pos}")
            jm = model.joints[model.getJointId(name)]
            if jm.nq == 2:  # continuous joint: (cos, sin)
                q[jm.idx_q], q[jm.idx_q + 1] = math.cos(pos), math.sin(pos)
            elif jm.nq == 1:
                q[jm.idx_q] = pos
        return q

    def transform(self, joint_positions: Mapping[str, float], frame: str, base: str = "base_link") -> np.ndarray:
        """T_base_frame (4x4) for any two links, with movable joints at ``joint_positions`` (name -> rad or m).

        Joints missing from the mapping are at zero; names the model does not have are ignored.
        """
        fa, fb = self._frame_id(base), self._frame_id(frame)
        self._pin.framesForwardKinematics(self.pin_model, self._data, self.configuration(joint_positions))
        return (self._data.oMf[fa].inverse() * self._data.oMf[fb]).homogeneous

    def chain(self, base: str, tip: str) -> KinematicChain:
        """The serial chain from ``base`` down to ``tip`` (every other joint locked at zero); frames rigidly
        attached to its links (such as a camera's optical frame) are available through ``KinematicChain.fk_frame``."""
        model = self.pin_model
        jb = model.frames[self._frame_id(base)].parentJoint
        jt = model.frames[self._frame_id(tip)].parentJoint
        support_tip = list(model.supports[jt])
        if jb not in support_tip:
            raise UrdfError(f"'{base}' is not an ancestor of '{tip}'")
        path = support_tip[support_tip.index(jb) + 1:]
        if not path:
            raise UrdfError(f"no movable joint between '{base}' and '{tip}'")
        try:
            return KinematicChain(model, base, tip, path)
        except ValueError as exc:
            raise UrdfError(f"chain {base} -> {tip}: {exc}") from exc

    # ------------------------------------------------------------------ robot dimensions
    def footprint(self, link: str = "base_link") -> Tuple[float, float]:
        """(length along x, width along y) in metres of ``link``'s first box collision: the robot footprint."""
        if link not in self.links:
            raise UrdfError(f"no link '{link}'")
        for geom in self.links[link].collisions:
            if geom.kind == "box":
                r = geom.origin[:3, :3]
                if abs(abs(r[2, 2]) - 1.0) > 1e-9 or abs(r[0, 0]) < 1.0 - 1e-9:
                    raise UrdfError(f"link {link}'s footprint box is rotated; its sizes are not x/y extents")
                return float(geom.size[0]), float(geom.size[1])
        raise UrdfError(f"link {link} has no box collision to read the footprint from")

    def wheel_separation(self, left: str = "left_wheel_joint", right: str = "right_wheel_joint") -> float:
        """Distance in metres between the two drive wheels' contact planes (their joints' y offsets)."""
        for n in (left, right):
            if n not in self.joints:
                raise UrdfError(f"no joint '{n}'")
        pl, pr = (self.transform({}, self.joints[n].child, self.root)[:3, 3] for n in (left, right))
        sep = float(abs(pl[1] - pr[1]))
        if sep <= 0.0:
            raise UrdfError(f"{left} and {right} have the same y offset")
        return sep

    def wheel_radius(self, joint: str = "left_wheel_joint") -> float:
        """Radius in metres of the cylinder collision of the wheel driven by ``joint``."""
        if joint not in self.joints:
            raise UrdfError(f"no joint '{joint}'")
        wheel = self.links[self.joints[joint].child]
        for geom in wheel.collisions:
            if geom.kind in ("cylinder", "sphere"):
                return float(geom.radius)
        raise UrdfError(f"wheel link {wheel.name} has no cylinder or sphere collision")

    def movable_joints(self) -> List[Joint]:
        return [j for j in self.joints.values() if j.type in MOVABLE_TYPES]


def _joint_axis(jm) -> np.ndarray:
    short = jm.shortname()
    for key, axis in (("X", (1.0, 0.0, 0.0)), ("Y", (0.0, 1.0, 0.0)), ("Z", (0.0, 0.0, 1.0))):
        if short.endswith(key):
            return np.array(axis)
    return np.asarray(getattr(jm.extract(), "axis", (1.0, 0.0, 0.0)), float)


def _geometry(obj, frame) -> Geometry:
    """A coal collision object as a :class:`Geometry` in its link's frame."""
    import coal

    origin = (frame.placement.inverse() * obj.placement).homogeneous
    g = obj.geometry
    if isinstance(g, coal.Box):
        return Geometry("box", origin, size=tuple(float(v) for v in 2.0 * np.asarray(g.halfSide)))
    if isinstance(g, coal.Cylinder):
        return Geometry("cylinder", origin, radius=float(g.radius), length=float(2.0 * g.halfLength))
    if isinstance(g, coal.Sphere):
        return Geometry("sphere", origin, radius=float(g.radius))
    return Geometry("mesh", origin, filename=str(obj.meshPath))


def _xacro_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
