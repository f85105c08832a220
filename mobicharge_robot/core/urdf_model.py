"""A small URDF reader: the link tree, joint origins and limits, collision primitives, and frame transforms.

It is the robot's one source of dimensions: the footprint and wheel data for navigation, sensor poses, and the arm's
kinematic chain all come from here. Lengths are metres, angles radians, transforms 4x4 ``T_a_b`` (frame b in a).
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from xml.parsers.expat import ExpatError
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from .geometry import make_transform, rpy_matrix
from .kinematics import MOVABLE_TYPES, KinematicChain, axis_rotation

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
    from .paths import data_path

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


def _origin(elem: Optional[ET.Element], what: str) -> np.ndarray:
    if elem is None:
        return np.eye(4)
    xyz = _floats(elem.get("xyz"), 3, (0.0, 0.0, 0.0), f"{what} origin xyz")
    rpy = _floats(elem.get("rpy"), 3, (0.0, 0.0, 0.0), f"{what} origin rpy")
    return make_transform(rpy_matrix(*rpy), xyz)


def _geometry(elem: ET.Element, what: str) -> Geometry:
    geom = elem.find("geometry")
    if geom is None or len(geom) == 0:
        raise UrdfError(f"{what}: collision without geometry")
    shape = geom[0]
    origin = _origin(elem.find("origin"), what)
    if shape.tag == "box":
        size = _floats(shape.get("size"), 3, (), f"{what} box size")
        if not size:
            raise UrdfError(f"{what}: box without size")
        return Geometry("box", origin, size=size)
    if shape.tag == "cylinder":
        return Geometry("cylinder", origin, radius=_attr_float(shape, "radius", None, what),
                        length=_attr_float(shape, "length", None, what))
    if shape.tag == "sphere":
        return Geometry("sphere", origin, radius=_attr_float(shape, "radius", None, what))
    if shape.tag == "mesh":
        return Geometry("mesh", origin, size=_floats(shape.get("scale"), 3, (1.0, 1.0, 1.0), what),
                        filename=shape.get("filename", ""))
    raise UrdfError(f"{what}: unknown geometry '{shape.tag}'")


def _parse_link(elem: ET.Element) -> Link:
    name = elem.get("name")
    if not name:
        raise UrdfError("a link has no name")
    mass = None
    inertial = elem.find("inertial")
    if inertial is not None and inertial.find("mass") is not None:
        mass = _attr_float(inertial.find("mass"), "value", None, f"link {name} mass")
    collisions = tuple(_geometry(c, f"link {name} collision") for c in elem.findall("collision"))
    return Link(name, mass, collisions)


def _parse_joint(elem: ET.Element) -> Joint:
    name = elem.get("name")
    jtype = elem.get("type")
    if not name:
        raise UrdfError("a joint has no name")
    if jtype not in JOINT_TYPES:
        raise UrdfError(f"joint {name}: unknown type '{jtype}'")
    parent, child = elem.find("parent"), elem.find("child")
    if parent is None or child is None or not parent.get("link") or not child.get("link"):
        raise UrdfError(f"joint {name}: needs a parent and a child link")
    axis = np.array(_floats(elem.find("axis").get("xyz") if elem.find("axis") is not None else None, 3,
                            (1.0, 0.0, 0.0), f"joint {name} axis"))
    norm = float(np.linalg.norm(axis))
    if jtype in MOVABLE_TYPES and norm < 1e-9:
        raise UrdfError(f"joint {name}: zero axis")
    axis = axis / norm if norm > 0 else axis
    limit = elem.find("limit")
    what = f"joint {name} limit"
    if jtype in ("revolute", "prismatic"):
        if limit is None:
            raise UrdfError(f"joint {name}: a {jtype} joint needs <limit>")
        lower = _attr_float(limit, "lower", 0.0, what)
        upper = _attr_float(limit, "upper", 0.0, what)
        if lower > upper:
            raise UrdfError(f"joint {name}: lower limit {lower} above upper limit {upper}")
    elif jtype == "continuous":
        lower, upper = -math.inf, math.inf
    else:
        lower = upper = 0.0
    if limit is not None and jtype != "fixed":
        velocity = _attr_float(limit, "velocity", None, what)
        effort = _attr_float(limit, "effort", None, what)
    else:
        velocity = effort = math.inf if jtype != "fixed" else 0.0
    return Joint(name, jtype, parent.get("link"), child.get("link"), _origin(elem.find("origin"), f"joint {name}"),
                 axis, lower, upper, velocity, effort)


class UrdfModel:
    """The parsed robot description. ``links`` and ``joints`` map names to :class:`Link` / :class:`Joint`."""

    def __init__(self, name: str, links: Mapping[str, Link], joints: Mapping[str, Joint]):
        self.name = name
        self.links: Dict[str, Link] = dict(links)
        self.joints: Dict[str, Joint] = dict(joints)
        self._parent_joint: Dict[str, Joint] = {}
        self._children: Dict[str, List[Joint]] = {n: [] for n in self.links}
        for j in self.joints.values():
            for link in (j.parent, j.child):
                if link not in self.links:
                    raise UrdfError(f"joint {j.name} refers to unknown link '{link}'")
            if j.child in self._parent_joint:
                raise UrdfError(f"link {j.child} has two parent joints")
            self._parent_joint[j.child] = j
            self._children[j.parent].append(j)
        roots = [n for n in self.links if n not in self._parent_joint]
        if len(roots) != 1:
            raise UrdfError(f"the link tree must have exactly one root, found {roots}")
        self.root = roots[0]
        reached = self._descendants(self.root)
        if len(reached) != len(self.links):
            raise UrdfError(f"links not connected to the root (a cycle?): {sorted(set(self.links) - reached)}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_string(cls, xml: str) -> "UrdfModel":
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise UrdfError(f"robot description is not valid XML: {exc}") from exc
        if root.tag != "robot":
            raise UrdfError(f"root element is <{root.tag}>, expected <robot>")
        links: Dict[str, Link] = {}
        for elem in root.findall("link"):
            link = _parse_link(elem)
            if link.name in links:
                raise UrdfError(f"duplicate link '{link.name}'")
            links[link.name] = link
        joints: Dict[str, Joint] = {}
        for elem in root.findall("joint"):
            joint = _parse_joint(elem)
            if joint.name in joints:
                raise UrdfError(f"duplicate joint '{joint.name}'")
            joints[joint.name] = joint
        if not links:
            raise UrdfError("robot description has no links")
        return cls(root.get("name", ""), links, joints)

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
        """Expand a xacro file (with ``mappings`` for its ``xacro:arg``s) and parse the result."""
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
    def _descendants(self, link: str) -> set:
        out, stack = set(), [link]
        while stack:
            cur = stack.pop()
            if cur in out:
                continue
            out.add(cur)
            stack.extend(j.child for j in self._children.get(cur, ()))
        return out

    def _path_from_root(self, link: str) -> List[Joint]:
        if link not in self.links:
            raise UrdfError(f"unknown frame '{link}'")
        path = []
        while link != self.root:
            j = self._parent_joint[link]
            path.append(j)
            link = j.parent
        path.reverse()
        return path

    @staticmethod
    def _joint_transform(j: Joint, position: float) -> np.ndarray:
        if j.type in ("revolute", "continuous"):
            return j.origin @ make_transform(axis_rotation(j.axis, position), (0.0, 0.0, 0.0))
        if j.type == "prismatic":
            return j.origin @ make_transform(np.eye(3), j.axis * position)
        return j.origin

    def _root_transform(self, joint_positions: Mapping[str, float], link: str) -> np.ndarray:
        t = np.eye(4)
        for j in self._path_from_root(link):
            pos = 0.0
            if j.type in MOVABLE_TYPES and j.name in joint_positions:
                pos = float(joint_positions[j.name])
                if not math.isfinite(pos):
                    raise ValueError(f"joint {j.name} position is not finite: {pos}")
            t = t @ self._joint_transform(j, pos)
        return t

    def transform(self, joint_positions: Mapping[str, float], frame: str, base: str = "base_link") -> np.ndarray:
        """T_base_frame (4x4) for any two links, with movable joints at ``joint_positions`` (name -> rad or m).

        Joints missing from the mapping are at zero; names the model does not have are ignored, so a whole
        joint_states message can be passed. Floating and planar joints stay at their origin.
        """
        return np.linalg.solve(self._root_transform(joint_positions, base),
                               self._root_transform(joint_positions, frame))

    def chain(self, base: str, tip: str) -> KinematicChain:
        """The serial chain from ``base`` down to ``tip``; frames rigidly attached to its links (such as a camera's
        optical frame) are available through ``KinematicChain.fk_frame``."""
        to_tip = self._path_from_root(tip)
        to_base = self._path_from_root(base)
        if to_tip[:len(to_base)] != to_base:
            raise UrdfError(f"'{base}' is not an ancestor of '{tip}'")
        path = to_tip[len(to_base):]
        names, types, origins, axes, lower, upper, vel = [], [], [], [], [], [], []
        frames: Dict[str, Tuple[int, np.ndarray]] = {base: (0, np.eye(4))}
        acc = np.eye(4)
        for j in path:
            acc = acc @ j.origin
            if j.type == "fixed":
                frames[j.child] = (len(names), acc.copy())
                continue
            if j.type not in MOVABLE_TYPES:
                raise UrdfError(f"joint {j.name} of type {j.type} cannot be part of a kinematic chain")
            names.append(j.name)
            types.append(j.type)
            origins.append(acc)
            axes.append(j.axis)
            lower.append(j.lower)
            upper.append(j.upper)
            vel.append(j.velocity)
            acc = np.eye(4)
            frames[j.child] = (len(names), np.eye(4))
        if not names:
            raise UrdfError(f"no movable joint between '{base}' and '{tip}'")
        on_path = {base} | {j.child for j in path}
        for link in list(on_path):
            k, t = frames[link]
            self._attach_fixed(link, k, t, on_path, frames)
        try:
            return KinematicChain(base, tip, names, types, origins, axes, lower, upper, vel, tip_offset=acc,
                                  frames=frames)
        except ValueError as exc:
            raise UrdfError(f"chain {base} -> {tip}: {exc}") from exc

    def _attach_fixed(self, link: str, k: int, t: np.ndarray, skip: set, frames: dict) -> None:
        for j in self._children.get(link, ()):
            if j.type == "fixed" and j.child not in skip:
                child_t = t @ j.origin
                frames[j.child] = (k, child_t)
                self._attach_fixed(j.child, k, child_t, skip, frames)

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
        pl, pr = (self._joint_origin_in_root(n)[:3, 3] for n in (left, right))
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

    def _joint_origin_in_root(self, name: str) -> np.ndarray:
        if name not in self.joints:
            raise UrdfError(f"no joint '{name}'")
        return self.transform({}, self.joints[name].child, self.root)

    def movable_joints(self) -> List[Joint]:
        return [j for j in self.joints.values() if j.type in MOVABLE_TYPES]


def _xacro_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
