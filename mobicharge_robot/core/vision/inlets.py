"""Vehicle inlet geometry (CCS2, Type 2, CCS1) loaded from ``config/inlets.yaml``.

All coordinates are in metres in the inlet frame (doc/architecture.md): origin at the centre of the AC pin circle on
the face plane, x to the right and y up as seen facing the inlet, z out of the face. The same model feeds the port
detector, the loopback renderer and the Gazebo world generator, so nothing here may be copied elsewhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import yaml

from .. import paths

_OUTLINE_STEP_RAD = math.radians(5.0)
DEFAULT_PIN_FRACTION = 0.55  # pin diameter / hole opening when the data file gives none


class InletConfigError(ValueError):
    """The inlet data file is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class InletModel:
    """One inlet type.

    ``keypoints`` (N, 3): hole centres on the face plane (z = 0), inlet frame, metres.
    ``hole_diameters_m`` (N,): hole opening diameters; ``hole_names``: contact names in the same order.
    ``outline`` (M, 3): the face's edge, counter-clockwise seen from +z, at z = 0.
    ``recess_depth_m``: the face lies this far behind the body surface (the surface is at z = +recess_depth_m).
    ``hole_depth_m``: depth of the holes behind the face. ``seat_depth_m``: plug travel inside the face when seated.
    ``pin_tip_depth_m``: the contact pins' tips lie this far behind the face; ``pin_diameters_m`` (N,) their
    diameters. The pins matter to vision: seen off-axis, a pin tip shifts inside its hole (parallax).
    """

    name: str
    keypoints: np.ndarray
    hole_diameters_m: np.ndarray
    hole_names: tuple
    outline: np.ndarray
    recess_depth_m: float
    hole_depth_m: float
    seat_depth_m: float
    pin_tip_depth_m: float = 0.008
    pin_diameters_m: Optional[np.ndarray] = None
    description: str = ""

    def __post_init__(self):
        if self.pin_diameters_m is None:
            object.__setattr__(self, "pin_diameters_m", DEFAULT_PIN_FRACTION * np.asarray(self.hole_diameters_m))

    def hole_index(self, name: str) -> int:
        """Index of the hole called ``name`` (raises KeyError)."""
        try:
            return self.hole_names.index(name)
        except ValueError:
            raise KeyError(f"inlet {self.name} has no hole '{name}' (holes: {', '.join(self.hole_names)})") from None


def data_path(relative: str) -> str:
    """Path of a package data file given as 'config/inlets.yaml': the source tree first, then the installed
    ``share/mobicharge_robot`` directory."""
    return paths.data_path(*[p for p in relative.replace("\\", "/").split("/") if p])


def load_inlets(path: Optional[str] = None) -> Dict[str, InletModel]:
    """Read every inlet from ``path`` (default: the package's ``config/inlets.yaml``); raises InletConfigError."""
    path = path or data_path("config/inlets.yaml")
    try:
        with open(path, "r", encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise InletConfigError(f"cannot read inlet file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InletConfigError(f"inlet file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("inlets"), dict) or not doc["inlets"]:
        raise InletConfigError(f"{path}: expected a top-level mapping 'inlets' with at least one entry")
    raw = doc["inlets"]
    return {name: _build(name, raw, path) for name in raw}


def _build(name: str, raw: dict, path: str) -> InletModel:
    spec = raw[name]
    if not isinstance(spec, dict):
        raise InletConfigError(f"{path}: inlet '{name}' must be a mapping")
    holes = _holes(name, raw, path, seen=())
    if len(holes) < 4:
        raise InletConfigError(f"{path}: inlet '{name}' needs at least 4 holes for pose estimation, has {len(holes)}")
    names = tuple(h["name"] for h in holes)
    if len(set(names)) != len(names):
        raise InletConfigError(f"{path}: inlet '{name}' has duplicate hole names {names}")
    kp = np.array([[h["x_m"], h["y_m"], 0.0] for h in holes], float)
    diam = np.array([h["diameter_m"] for h in holes], float)
    pins = np.array([h["pin_diameter_m"] for h in holes], float)
    outline = _outline(name, spec.get("outline"), path)
    model = InletModel(
        name=name, keypoints=kp, hole_diameters_m=diam, hole_names=names, outline=outline,
        recess_depth_m=_scalar(name, spec, "recess_depth_m", path),
        hole_depth_m=_scalar(name, spec, "hole_depth_m", path),
        seat_depth_m=_scalar(name, spec, "seat_depth_m", path),
        pin_tip_depth_m=_scalar(name, spec, "pin_tip_depth_m", path),
        pin_diameters_m=pins,
        description=str(spec.get("description", "")))
    _check_consistent(model, path)
    return model


def _holes(name: str, raw: dict, path: str, seen: tuple) -> List[dict]:
    if name in seen:
        raise InletConfigError(f"{path}: circular 'base' chain through '{name}'")
    if name not in raw:
        raise InletConfigError(f"{path}: unknown base inlet '{name}'")
    spec = raw[name]
    out = _holes(spec["base"], raw, path, seen + (name,)) if spec.get("base") else []
    entries = spec.get("holes")
    if not isinstance(entries, list):
        raise InletConfigError(f"{path}: inlet '{name}' needs a 'holes' list")
    for i, h in enumerate(entries):
        if not isinstance(h, dict):
            raise InletConfigError(f"{path}: {name} hole #{i} must be a mapping")
        for key in ("name", "x_m", "y_m", "diameter_m", "source"):
            if key not in h:
                raise InletConfigError(f"{path}: {name} hole #{i} lacks '{key}'")
        vals = [_finite(h[k], f"{name} hole {h['name']} {k}", path) for k in ("x_m", "y_m", "diameter_m")]
        if vals[2] <= 0.0 or vals[2] > 0.05:
            raise InletConfigError(f"{path}: {name} hole {h['name']} diameter_m {vals[2]} outside (0, 0.05]")
        pin = _finite(h.get("pin_diameter_m", DEFAULT_PIN_FRACTION * vals[2]), f"{name} hole {h['name']} pin", path)
        if not 0.0 < pin < vals[2]:
            raise InletConfigError(f"{path}: {name} hole {h['name']} pin_diameter_m must be in (0, diameter_m)")
        out.append({"name": str(h["name"]), "x_m": vals[0], "y_m": vals[1], "diameter_m": vals[2],
                    "pin_diameter_m": pin})
    return out


def _outline(name: str, spec, path: str) -> np.ndarray:
    if not isinstance(spec, dict) or "source" not in spec:
        raise InletConfigError(f"{path}: inlet '{name}' needs an 'outline' mapping with a 'source'")
    if "points_m" in spec:
        pts = np.array(spec["points_m"], float)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
            raise InletConfigError(f"{path}: {name} outline points_m must be a list of >= 3 [x, y] pairs")
    elif "circles" in spec:
        samples = []
        angles = np.arange(0.0, 2.0 * math.pi, _OUTLINE_STEP_RAD)
        for c in spec["circles"]:
            cx, cy, r = (_finite(c[k], f"{name} outline circle {k}", path) for k in ("x_m", "y_m", "radius_m"))
            samples.append(np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1))
        pts = _convex_hull(np.concatenate(samples))
        if spec.get("flat_top_y_m") is not None:
            pts = _clip_below(pts, _finite(spec["flat_top_y_m"], f"{name} flat_top_y_m", path))
    else:
        raise InletConfigError(f"{path}: {name} outline needs 'circles' or 'points_m'")
    area = 0.5 * float(np.dot(pts[:, 0], np.roll(pts[:, 1], -1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], -1)))
    if area < 0:
        pts = pts[::-1]
    return np.hstack([pts, np.zeros((len(pts), 1))])


def _scalar(name: str, spec: dict, key: str, path: str) -> float:
    entry = spec.get(key)
    if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
        raise InletConfigError(f"{path}: inlet '{name}' needs '{key}: {{value: ..., source: ...}}'")
    v = _finite(entry["value"], f"{name} {key}", path)
    if not 0.0 < v < 0.2:
        raise InletConfigError(f"{path}: {name} {key} = {v} m is outside (0, 0.2)")
    return v


def _finite(v, what: str, path: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InletConfigError(f"{path}: {what} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise InletConfigError(f"{path}: {what} must be finite, got {v!r}")
    return f


def _check_consistent(m: InletModel, path: str) -> None:
    """Holes must not overlap and must lie on the face, else the renderer and detector disagree with reality."""
    n = len(m.keypoints)
    for i in range(n):
        for j in range(i + 1, n):
            gap = np.linalg.norm(m.keypoints[i, :2] - m.keypoints[j, :2])
            if gap < 0.5 * (m.hole_diameters_m[i] + m.hole_diameters_m[j]):
                raise InletConfigError(f"{path}: {m.name} holes {m.hole_names[i]} and {m.hole_names[j]} overlap")
    poly = m.outline[:, :2]
    edges = np.roll(poly, -1, axis=0) - poly
    for k, (c, r) in enumerate(zip(m.keypoints[:, :2], 0.5 * m.hole_diameters_m)):
        # Signed distance from each (counter-clockwise, convex) edge: positive inside.
        rel = c - poly
        cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
        dist = cross / np.linalg.norm(edges, axis=1)
        if np.min(dist) < r:
            raise InletConfigError(f"{path}: {m.name} hole {m.hole_names[k]} is not inside the face outline")
    if m.seat_depth_m > m.hole_depth_m:
        raise InletConfigError(f"{path}: {m.name} seat_depth_m exceeds hole_depth_m")
    if m.pin_tip_depth_m >= m.hole_depth_m:
        raise InletConfigError(f"{path}: {m.name} pin_tip_depth_m must be less than hole_depth_m")


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain; counter-clockwise, no repeated end point."""
    p = sorted(map(tuple, np.round(pts, 12)))

    def half(seq):
        out = []
        for q in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (q[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (q[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(q)
        return out

    lower, upper = half(p), half(reversed(p))
    return np.array(lower[:-1] + upper[:-1], float)


def _clip_below(poly: np.ndarray, y_max: float) -> np.ndarray:
    """Cut a polygon with the half-plane y <= y_max (one Sutherland-Hodgman pass)."""
    out = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        a_in, b_in = a[1] <= y_max, b[1] <= y_max
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (y_max - a[1]) / (b[1] - a[1])
            out.append(a + t * (b - a))
    return np.array(out, float)
