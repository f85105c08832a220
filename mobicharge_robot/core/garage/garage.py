"""The garage description: one YAML file per garage level, loaded and validated here and nowhere else.

Schema (units are in the key names; the map frame's origin is the garage's lower-left corner, x east, y north)::

    garage:
      name: default
      size_m: [60.0, 40.0]                     # extent in x and y
      outline: [[0, 0], [60, 0], [60, 20], [30, 20], [30, 40], [0, 40]]   # optional usable floor polygon
      walls:   [{id: w_south, start: [x, y], end: [x, y], thickness_m: 0.3}]
      pillars: [{id: p1, center: [x, y], size_m: [0.6, 0.6]}]            # optional
      lanes:   [{id: lane_1, start: [x, y], end: [x, y], width_m: 6.0, direction: two_way}]  # or one_way (start->end)
      spots:   [{id: S01, center: [x, y], yaw_rad: -1.5708, size_m: [5.0, 2.6]}]  # length along yaw, width
      depot:   {pose: [x, y, yaw_rad], dock: [x, y, yaw_rad]}
      zones:   [{id: z1, kind: keep_out, polygon: [[x, y], ...]},            # optional
                {id: z2, kind: speed_limit, polygon: [[x, y], ...], max_speed_mps: 0.5}]
    vehicles:                                  # optional
      - id: car_01
        spot: S03
        model: compact_hatch                   # optional
        body_m: {length: 4.26, width: 1.81, height: 1.57}
        color_rgb: [0.8, 0.1, 0.1]             # optional, 0..1
        inlet: {type: ccs2, side: right, height_m: 0.95, from_front_m: 3.75}
        battery: {capacity_kwh: 58.0, soc: 0.35, max_dc_power_kw: 120.0}
        request: {energy_kwh: 8.0, departure_s: 7200}   # optional; departure in seconds after mission start

Inlet ``type`` is ccs2 (default), type2 or ccs1; ``side`` is left, right, front or rear. A side inlet is placed by
``from_front_m``, its distance from the front bumper along the body; a front or rear inlet by ``lateral_m``, its offset
from the centre line (+ towards the car's left, default 0). ``height_m`` is the inlet centre above the floor.

Cars park nose first: the vehicle frame is the spot centre with the spot's yaw (x to the car's front, y to its left,
z up), on the floor. The car body is modelled as a box of ``body_m`` centred on that frame.

``outline`` (optional) is the usable floor as a simple polygon (at least 3 corners, map frame, inside ``size_m``);
without it the floor is the whole ``size_m`` rectangle. An L- or T-shaped level is described by its outline. The
loader adds a wall along every outline edge (ids ``outline_wall_1``, ``outline_wall_2``, ... in outline order,
``OUTLINE_WALL_THICKNESS_M`` thick, lying on the floor side of the edge), so every consumer of ``walls`` (the map, the
simulator's world, the report) sees the boundary; do not list those walls again. Spots, pillars, lanes, the depot and
the dock must lie inside the outline.

The validator also rejects a depot or dock pose inside a wall, a pillar or a keep-out zone; a spot that overlaps a
wall, a pillar or a keep-out zone; and a request from a car whose inlet type the robot's connector cannot serve
(``load_garage(path, connectors=("ccs2",))``; a car without a request may have any inlet type).

Ids share one namespace across walls, pillars, lanes, spots, zones and vehicles, so that a marker or frame name built
from an id is unambiguous. Every mistake raises :class:`GarageError` naming the file, the field (a dotted path such
as ``vehicles[2].inlet.height_m``) and the problem.
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from ..geometry import (Pose2D, convex_polygons_intersect, make_transform, point_in_polygon, polygon_area,
                       rect_polygon, segment_rect_polygon)

INLET_TYPES = ("ccs2", "type2", "ccs1")
INLET_SIDES = ("left", "right", "front", "rear")
LANE_DIRECTIONS = ("two_way", "one_way")
ZONE_KINDS = ("keep_out", "speed_limit")
WALL_HEIGHT_M = 2.5
# Walls the loader adds along the outline: thick enough to show on a 5 cm map and to stop the simulated lidar.
OUTLINE_WALL_THICKNESS_M = 0.3
# Inlet types the robot's connector serves unless the caller says otherwise (a CCS2 plug).
DEFAULT_CONNECTORS = ("ccs2",)
PILLAR_HEIGHT_M = 2.5
# Spots are shrunk by this much on every side before the overlap test, so that neighbours sharing a line are fine.
SPOT_OVERLAP_TOLERANCE_M = 0.01


class GarageError(Exception):
    """A garage description that cannot be used. ``str(e)`` is ``"<source>: <field>: <problem>"``."""

    def __init__(self, source: str, field: str, problem: str):
        super().__init__(f"{source}: {field}: {problem}")
        self.source, self.field, self.problem = source, field, problem


# ----------------------------------------------------------------------------- the model (map frame, metres)


@dataclass(frozen=True)
class Wall:
    """A straight wall from ``start`` to ``end`` (map frame, m), ``thickness_m`` centred on that line."""

    id: str
    start: Tuple[float, float]
    end: Tuple[float, float]
    thickness_m: float

    @property
    def polygon(self) -> np.ndarray:
        """Corners (4, 2) in the map frame, metres."""
        return segment_rect_polygon(self.start, self.end, self.thickness_m)


@dataclass(frozen=True)
class Pillar:
    """An axis-aligned pillar: ``center`` (map frame, m) and ``size_m`` (x extent, y extent)."""

    id: str
    center: Tuple[float, float]
    size_m: Tuple[float, float]

    @property
    def polygon(self) -> np.ndarray:
        """Corners (4, 2) in the map frame, metres."""
        return rect_polygon(Pose2D(self.center[0], self.center[1], 0.0), self.size_m[0], self.size_m[1])


@dataclass(frozen=True)
class Lane:
    """A driving lane's centre line (map frame, m) and width; ``direction`` is 'two_way' or 'one_way' (start->end)."""

    id: str
    start: Tuple[float, float]
    end: Tuple[float, float]
    width_m: float
    direction: str


@dataclass(frozen=True)
class Spot:
    """A parking spot: centre (map frame, m), yaw (rad) of the parked car's front, length along yaw and width."""

    id: str
    center: Tuple[float, float]
    yaw_rad: float
    length_m: float
    width_m: float

    @property
    def pose(self) -> Pose2D:
        """The spot frame in the map frame: also the vehicle frame of a car parked here."""
        return Pose2D(self.center[0], self.center[1], self.yaw_rad)

    @property
    def polygon(self) -> np.ndarray:
        """Corners (4, 2) in the map frame, metres."""
        return rect_polygon(self.pose, self.length_m, self.width_m)


@dataclass(frozen=True)
class Depot:
    """The robot's home: ``pose`` where it starts and ends a mission, ``dock`` where it recharges (map frame)."""

    pose: Pose2D
    dock: Pose2D


def _frozen_points(a) -> np.ndarray:
    out = np.array(a, dtype=float).reshape(-1, 2)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)  # identity equality: an ndarray field has no single truth value
class Zone:
    """A 'keep_out' or 'speed_limit' area: ``polygon`` (N, 2) in the map frame (m); speed in m/s, None if keep_out."""

    id: str
    kind: str
    polygon: np.ndarray
    max_speed_mps: Optional[float]

    def __post_init__(self):
        object.__setattr__(self, "polygon", _frozen_points(self.polygon))


@dataclass(frozen=True)
class Inlet:
    """Where the charge inlet sits on the car body.

    ``height_m`` is above the floor. A side inlet's ``from_front_m`` is its distance behind the front bumper and its
    ``lateral_m`` is 0; a front or rear inlet's ``lateral_m`` is its offset towards the car's left and its
    ``from_front_m`` is 0 (front) or the body length (rear).
    """

    type: str
    side: str
    height_m: float
    from_front_m: float
    lateral_m: float


@dataclass(frozen=True)
class Battery:
    """The car's traction battery: capacity (kWh), state of charge (0..1) and maximum DC charging power (kW)."""

    capacity_kwh: float
    soc: float
    max_dc_power_kw: float


@dataclass(frozen=True)
class Request:
    """A charging request: energy to deliver (kWh) and departure time (s after the mission starts)."""

    energy_kwh: float
    departure_s: float


@dataclass(frozen=True)
class Vehicle:
    """A parked car. Its body is a ``length_m`` x ``width_m`` x ``height_m`` box on its spot's frame."""

    id: str
    spot: str
    model: str
    length_m: float
    width_m: float
    height_m: float
    color_rgb: Optional[Tuple[float, float, float]]
    inlet: Inlet
    battery: Battery
    request: Optional[Request]


@dataclass(frozen=True, eq=False)
class Obstacle:
    """A static obstacle: ``kind`` is 'wall', 'pillar' or 'vehicle'; ``polygon`` (N, 2) in the map frame, metres."""

    kind: str
    id: str
    polygon: np.ndarray
    height_m: float

    def __post_init__(self):
        object.__setattr__(self, "polygon", _frozen_points(self.polygon))


@dataclass(frozen=True)
class Garage:
    """One validated garage level. All geometry is in the map frame, metres and radians."""

    name: str
    size_m: Tuple[float, float]
    walls: Tuple[Wall, ...]
    pillars: Tuple[Pillar, ...]
    lanes: Tuple[Lane, ...]
    spots: Tuple[Spot, ...]
    depot: Depot
    zones: Tuple[Zone, ...]
    vehicles: Tuple[Vehicle, ...]
    source: str
    # The usable floor polygon (counter-clockwise corners, map frame, m): the size_m rectangle when the file has none.
    outline: Tuple[Tuple[float, float], ...] = ()

    def __post_init__(self):
        if not self.outline:
            sx, sy = self.size_m
            object.__setattr__(self, "outline", ((0.0, 0.0), (sx, 0.0), (sx, sy), (0.0, sy)))

    def spot(self, spot_id: str) -> Spot:
        """The spot with this id; GarageError if there is none."""
        for s in self.spots:
            if s.id == spot_id:
                return s
        raise GarageError(self.source, "garage.spots", f"no spot with id '{spot_id}'")

    def vehicle(self, vehicle_id: str) -> Vehicle:
        """The vehicle with this id; GarageError if there is none."""
        for v in self.vehicles:
            if v.id == vehicle_id:
                return v
        raise GarageError(self.source, "vehicles", f"no vehicle with id '{vehicle_id}'")

    def vehicle_pose(self, v: Vehicle) -> Pose2D:
        """The vehicle frame in the map frame (its spot's pose: cars park nose first)."""
        return self.spot(v.spot).pose

    def vehicle_polygon(self, v: Vehicle) -> np.ndarray:
        """The car body's footprint corners (4, 2) in the map frame, metres."""
        return rect_polygon(self.vehicle_pose(v), v.length_m, v.width_m)

    def static_obstacles(self) -> List[Obstacle]:
        """Walls, pillars and parked cars, in that order, with their heights in metres."""
        obs = [Obstacle("wall", w.id, w.polygon, WALL_HEIGHT_M) for w in self.walls]
        obs += [Obstacle("pillar", p.id, p.polygon, PILLAR_HEIGHT_M) for p in self.pillars]
        obs += [Obstacle("vehicle", v.id, self.vehicle_polygon(v), v.height_m) for v in self.vehicles]
        return obs

    def keep_out_polygons(self) -> List[np.ndarray]:
        """The keep_out zones' polygons (N, 2), map frame, metres."""
        return [z.polygon for z in self.zones if z.kind == "keep_out"]

    def requested_vehicles(self) -> List[Vehicle]:
        """Vehicles that asked for energy, in file order."""
        return [v for v in self.vehicles if v.request is not None]

    def inlet_pose(self, v: Vehicle) -> np.ndarray:
        """T_map_inlet (4x4): origin on the body surface at the inlet, z out of that face, y up, x = y cross z."""
        return self.vehicle_pose(v).to_matrix() @ inlet_in_vehicle(v)


def inlet_in_vehicle(v: Vehicle) -> np.ndarray:
    """T_vehicle_inlet (4x4) for the car's box body: the inlet frame on the face named by ``v.inlet.side``."""
    inlet = v.inlet
    half_l, half_w = 0.5 * v.length_m, 0.5 * v.width_m
    if inlet.side in ("left", "right"):
        sign = 1.0 if inlet.side == "left" else -1.0
        position = (half_l - inlet.from_front_m, sign * half_w, inlet.height_m)
        normal = np.array([0.0, sign, 0.0])
    else:
        sign = 1.0 if inlet.side == "front" else -1.0
        position = (sign * half_l, inlet.lateral_m, inlet.height_m)
        normal = np.array([sign, 0.0, 0.0])
    up = np.array([0.0, 0.0, 1.0])
    rotation = np.column_stack([np.cross(up, normal), up, normal])  # columns x, y, z of the inlet frame
    return make_transform(rotation, position)


# ----------------------------------------------------------------------------- loading and validation


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML would silently keep the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {seen[key] + 1})", key_node.start_mark)
        if isinstance(key, (str, int, float, bool)):
            seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_garage(path: Union[str, "os.PathLike[str]"], connectors: Sequence[str] = DEFAULT_CONNECTORS) -> Garage:
    """Read and validate a garage YAML file; GarageError (never another exception) for any mistake in it.

    ``connectors`` are the inlet types the robot's connector serves: a request from a car with another inlet type is
    a mistake."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise GarageError(source, "file", f"cannot be read: {reason}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise GarageError(source, where, f"invalid YAML: {problem}") from exc
    return parse_garage(data, source, connectors)


class _Reader:
    """Typed access to nested YAML values; every failure names the field."""

    def __init__(self, source: str):
        self.source = source
        self.ids: Dict[str, str] = {}  # id -> field that introduced it

    def fail(self, field: str, problem: str):
        raise GarageError(self.source, field, problem)

    def mapping(self, data, field: str, required, optional=()) -> dict:
        if not isinstance(data, dict):
            self.fail(field or "file", f"expected a mapping, got {_kind(data)}")
        allowed = tuple(required) + tuple(optional)
        for key in data:
            if key not in allowed:
                self.fail(_join(field, key), "unknown field" + _suggest(str(key), allowed))
        for key in required:
            if key not in data:
                self.fail(_join(field, key), "missing required field")
        return data

    def seq(self, data, field: str, required: bool = False) -> list:
        if data is None and not required:
            return []
        if not isinstance(data, list):
            self.fail(field, f"expected a list, got {_kind(data)}")
        if required and not data:
            self.fail(field, "must not be empty")
        return data

    def num(self, data, field: str, unit: str, lo: float = -math.inf, hi: float = math.inf,
            positive: bool = False) -> float:
        """A finite number in [lo, hi] (and > 0 when ``positive``); ``unit`` is spelt out in messages."""
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            expected = "a fraction" if unit == "fraction" else f"a number{' in ' + unit if unit else ''}"
            self.fail(field, f"expected {expected}, got {_kind(data)} {data!r}")
        value = float(data)
        if not math.isfinite(value):
            self.fail(field, f"must be a finite number, got {data!r}")
        if positive and value <= 0.0:
            self.fail(field, f"must be positive, got {value:g}")
        if not lo <= value <= hi:
            hint = ""
            if unit == "metres" and value > hi and lo <= value / 1000.0 <= hi:
                hint = "; it looks like millimetres"
            noun = "a fraction" if unit == "fraction" else unit
            self.fail(field, f"{value:g} is implausible, expected {noun + ' ' if noun else ''}({lo:g}..{hi:g}){hint}")
        return value

    def text(self, data, field: str, choices=None) -> str:
        if not isinstance(data, str) or not data.strip():
            self.fail(field, f"expected a non-empty string, got {_kind(data)} {data!r}")
        if choices is not None and data not in choices:
            self.fail(field, f"'{data}' is not one of {', '.join(choices)}{_suggest(data, choices)}")
        return data

    def point(self, data, field: str, n: int = 2, unit: str = "metres", lo=-math.inf, hi=math.inf) -> tuple:
        if not isinstance(data, list) or len(data) != n:
            self.fail(field, f"expected a list of {n} numbers, got {data!r}")
        return tuple(self.num(x, f"{field}[{i}]", unit, lo, hi) for i, x in enumerate(data))

    def new_id(self, data, field: str) -> str:
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        ident = self.text(data, field)
        if ident in self.ids:
            self.fail(field, f"duplicate id '{ident}' (already used by {self.ids[ident]})")
        self.ids[ident] = field.rsplit(".", 1)[0]
        return ident


def _join(field: str, key) -> str:
    return f"{field}.{key}" if field else str(key)


def _kind(v) -> str:
    return "nothing" if v is None else type(v).__name__


def _suggest(key: str, allowed) -> str:
    """A hint for a misspelt key or a key with the wrong unit suffix (height_mm -> height_m)."""
    stem = key.rsplit("_", 1)[0]
    for a in allowed:
        if a != key and "_" in a and a.rsplit("_", 1)[0] == stem:
            return f"; did you mean '{a}'? (units are part of the name and are SI)"
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_garage(data, source: str = "<garage>", connectors: Sequence[str] = DEFAULT_CONNECTORS) -> Garage:
    """Validate already-parsed YAML data (``source`` names it in messages) and build the Garage.

    ``connectors``: the inlet types the robot's connector serves (a request from another inlet type is rejected)."""
    connectors = tuple(connectors)
    for c in connectors:
        if c not in INLET_TYPES:
            raise ValueError(f"unknown connector type {c!r}; expected one of {', '.join(INLET_TYPES)}")
    r = _Reader(source)
    top = r.mapping(data, "", ("garage",), ("vehicles",))
    g = r.mapping(top["garage"], "garage", ("name", "size_m", "walls", "spots", "depot"),
                  ("outline", "pillars", "lanes", "zones"))
    name = r.text(g["name"], "garage.name")
    size = r.point(g["size_m"], "garage.size_m", lo=1.0, hi=2000.0)

    def inside_size(points, field: str, what: str) -> None:
        for x, y in np.asarray(points, float).reshape(-1, 2):
            if not (-1e-9 <= x <= size[0] + 1e-9 and -1e-9 <= y <= size[1] + 1e-9):
                r.fail(field, f"{what} ({round(x, 3):g}, {round(y, 3):g}) lies outside the garage "
                              f"(0..{size[0]:g} x 0..{size[1]:g} m)")

    outline = None
    if g.get("outline") is not None:
        outline = _parse_outline(r, g["outline"], "garage.outline", inside_size)

    def inside(points, field: str, what: str) -> None:
        inside_size(points, field, what)
        if outline is None:
            return
        pts = np.asarray(points, float).reshape(-1, 2)
        for x, y in pts:
            if not _in_outline((x, y), outline):
                r.fail(field, f"{what} ({round(x, 3):g}, {round(y, 3):g}) lies outside the garage outline")
        if len(pts) >= 3:  # a convex polygon with every corner inside: no outline corner may poke into it
            for corner in outline:
                if _strictly_inside_convex(corner, pts):
                    r.fail(field, f"{what.split(' corner')[0]} reaches outside the garage outline (outline corner "
                                  f"({corner[0]:g}, {corner[1]:g}) lies within it)")
        elif len(pts) == 2:  # a segment with both ends inside must not cross the outline's boundary
            for a, b in zip(outline, outline[1:] + outline[:1]):
                if _segments_cross(pts[0], pts[1], a, b):
                    r.fail(field, "leaves the garage outline between its start and end")

    walls = []
    for i, w in enumerate(r.seq(g["walls"], "garage.walls")):
        f = f"garage.walls[{i}]"
        r.mapping(w, f, ("id", "start", "end", "thickness_m"))
        wid = r.new_id(w["id"], f + ".id")
        start, end = r.point(w["start"], f + ".start"), r.point(w["end"], f + ".end")
        inside_size(start, f + ".start", "start")
        inside_size(end, f + ".end", "end")
        if math.dist(start, end) < 0.01:
            r.fail(f, "start and end are the same point")
        walls.append(Wall(wid, start, end, r.num(w["thickness_m"], f + ".thickness_m", "metres", 0.01, 2.0)))
    if outline is not None:
        walls += _outline_walls(r, outline)

    pillars = []
    for i, p in enumerate(r.seq(g.get("pillars"), "garage.pillars")):
        f = f"garage.pillars[{i}]"
        r.mapping(p, f, ("id", "center", "size_m"))
        pillar = Pillar(r.new_id(p["id"], f + ".id"), r.point(p["center"], f + ".center"),
                        r.point(p["size_m"], f + ".size_m", lo=0.05, hi=5.0))
        inside(pillar.center, f + ".center", "centre")
        inside(pillar.polygon, f, f"pillar '{pillar.id}' corner")
        pillars.append(pillar)

    lanes = []
    for i, ln in enumerate(r.seq(g.get("lanes"), "garage.lanes")):
        f = f"garage.lanes[{i}]"
        r.mapping(ln, f, ("id", "start", "end", "width_m"), ("direction",))
        lid = r.new_id(ln["id"], f + ".id")
        start, end = r.point(ln["start"], f + ".start"), r.point(ln["end"], f + ".end")
        inside(start, f + ".start", "start")
        inside(end, f + ".end", "end")
        if math.dist(start, end) < 0.01:
            r.fail(f, "start and end are the same point")
        inside((start, end), f, "centre line")
        lanes.append(Lane(lid, start, end, r.num(ln["width_m"], f + ".width_m", "metres", 1.0, 30.0),
                          r.text(ln.get("direction", "two_way"), f + ".direction", LANE_DIRECTIONS)))

    fixed = [(f"wall '{w.id}'", w.polygon) for w in walls] + [(f"pillar '{p.id}'", p.polygon) for p in pillars]
    # Bounding boxes first: the exact test for every spot against every wall and pillar is slow in big garages.
    fixed_boxes = [(what, poly, (poly.min(axis=0), poly.max(axis=0))) for what, poly in fixed]
    spots = []
    shrunk = []  # (polygon, bounding radius) of each accepted spot, for the overlap test
    shrink = 2.0 * SPOT_OVERLAP_TOLERANCE_M
    for i, s in enumerate(r.seq(g["spots"], "garage.spots", required=True)):
        f = f"garage.spots[{i}]"
        r.mapping(s, f, ("id", "center", "yaw_rad", "size_m"))
        spot = Spot(r.new_id(s["id"], f + ".id"), r.point(s["center"], f + ".center"),
                    r.num(s["yaw_rad"], f + ".yaw_rad", "radians", -2.0 * math.pi, 2.0 * math.pi),
                    *r.point(s["size_m"], f + ".size_m", lo=2.0, hi=20.0))
        inside(spot.polygon, f, f"spot '{spot.id}' corner")
        mine = rect_polygon(spot.pose, spot.length_m - shrink, spot.width_m - shrink)
        for what, poly, box in fixed_boxes:
            if _boxes_overlap(mine, box) and convex_polygons_intersect(mine, poly):
                r.fail(f, f"spot '{spot.id}' overlaps {what}")
        radius = 0.5 * math.hypot(spot.length_m, spot.width_m)
        for j, (other, (theirs, other_radius)) in enumerate(zip(spots, shrunk)):
            if math.dist(spot.center, other.center) > radius + other_radius:
                continue  # bounding circles apart: the exact test is not needed (keeps big garages fast)
            if convex_polygons_intersect(mine, theirs):
                r.fail(f, f"spot '{spot.id}' overlaps spot '{other.id}' (garage.spots[{j}])")
        spots.append(spot)
        shrunk.append((mine, radius))

    d = r.mapping(g["depot"], "garage.depot", ("pose", "dock"))
    pose = r.point(d["pose"], "garage.depot.pose", 3)
    dock = r.point(d["dock"], "garage.depot.dock", 3)
    inside(pose[:2], "garage.depot.pose", "depot")
    inside(dock[:2], "garage.depot.dock", "dock")
    depot = Depot(Pose2D(*pose), Pose2D(*dock))

    zones = []
    for i, z in enumerate(r.seq(g.get("zones"), "garage.zones")):
        zones.append(_parse_zone(r, z, f"garage.zones[{i}]"))

    # Checks that need the zones: nothing may stand where the robot must never be.
    from .staging import polygons_intersect  # a keep-out zone may be concave; staging holds the general test
    keep_out = [(f"keep-out zone '{z.id}'", z.polygon) for z in zones if z.kind == "keep_out"]
    for field, what, p in (("garage.depot.pose", "depot", pose), ("garage.depot.dock", "dock", dock)):
        for blocker, poly in fixed + keep_out:
            if point_in_polygon(p[:2], poly):
                r.fail(field, f"the {what} ({p[0]:g}, {p[1]:g}) lies inside {blocker}")
    for i, spot in enumerate(spots):
        mine = shrunk[i][0]
        for blocker, poly in keep_out:
            if polygons_intersect(mine, poly):
                r.fail(f"garage.spots[{i}]", f"spot '{spot.id}' overlaps {blocker}")

    spot_by_id = {s.id: s for s in spots}
    vehicles: List[Vehicle] = []
    taken: Dict[str, str] = {}
    for i, v in enumerate(r.seq(top.get("vehicles"), "vehicles")):
        f = f"vehicles[{i}]"
        vehicle = _parse_vehicle(r, v, f, spot_by_id, taken)
        if vehicle.request is not None and vehicle.inlet.type not in connectors:
            r.fail(f + ".request", f"car '{vehicle.id}' has a {vehicle.inlet.type} inlet, which the robot's connector "
                                   f"({', '.join(connectors)}) cannot serve")
        body = rect_polygon(spot_by_id[vehicle.spot].pose, vehicle.length_m, vehicle.width_m)
        for what, poly, box in fixed_boxes:
            if _boxes_overlap(body, box) and convex_polygons_intersect(body, poly):
                r.fail(f + ".spot", f"car '{vehicle.id}' in spot '{vehicle.spot}' would stand in {what}")
        vehicles.append(vehicle)
    return Garage(name, size, tuple(walls), tuple(pillars), tuple(lanes), tuple(spots), depot, tuple(zones),
                  tuple(vehicles), source, outline or ())


def _parse_outline(r: _Reader, data, f: str, inside_size) -> Tuple[Tuple[float, float], ...]:
    """The outline as counter-clockwise corners; GarageError unless it is a simple polygon inside size_m."""
    pts = r.seq(data, f, required=True)
    if len(pts) < 3:
        r.fail(f, f"needs at least 3 corners, got {len(pts)}")
    corners = [r.point(p, f"{f}[{k}]") for k, p in enumerate(pts)]
    for k, c in enumerate(corners):
        inside_size(c, f"{f}[{k}]", "corner")
    n = len(corners)
    for k in range(n):
        if math.dist(corners[k], corners[(k + 1) % n]) < 0.01:
            r.fail(f"{f}[{(k + 1) % n}]", f"repeats corner {k} (an edge of zero length)")
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbouring edges share a corner
            if _segments_touch(corners[i], corners[(i + 1) % n], corners[j], corners[(j + 1) % n]):
                r.fail(f, f"is not a simple polygon: edge {i} ({_fmt(corners[i])}-{_fmt(corners[(i + 1) % n])}) "
                          f"meets edge {j} ({_fmt(corners[j])}-{_fmt(corners[(j + 1) % n])})")
    area = polygon_area(np.array(corners))
    if abs(area) < 1.0:
        r.fail(f, f"encloses {abs(area):g} m^2, too little floor")
    if area < 0.0:
        corners.reverse()
    return tuple((float(x), float(y)) for x, y in corners)


def _outline_walls(r: _Reader, outline) -> List[Wall]:
    """One wall per outline edge, on the floor side of it (the outline is counter-clockwise: the floor is left)."""
    half = 0.5 * OUTLINE_WALL_THICKNESS_M
    walls = []
    for k, (a, b) in enumerate(zip(outline, outline[1:] + outline[:1])):
        d = np.subtract(b, a) / math.dist(a, b)
        n = np.array([-d[1], d[0]]) * half
        wid = f"outline_wall_{k + 1}"
        if wid in r.ids:
            r.fail(r.ids[wid] + ".id", f"id '{wid}' is reserved for the wall the loader adds along outline edge {k}")
        r.ids[wid] = "garage.outline"
        walls.append(Wall(wid, (float(a[0] + n[0]), float(a[1] + n[1])), (float(b[0] + n[0]), float(b[1] + n[1])),
                          OUTLINE_WALL_THICKNESS_M))
    return walls


def _boxes_overlap(poly: np.ndarray, box) -> bool:
    """Whether the axis-aligned bounding box of ``poly`` meets ``box`` = (min corner, max corner), touching included."""
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    return bool(np.all(lo <= box[1]) and np.all(box[0] <= hi))


def _fmt(p) -> str:
    return f"({p[0]:g}, {p[1]:g})"


def _orient(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p0, p1, q0, q1) -> bool:
    """A proper crossing: each segment has the other's ends strictly on opposite sides."""
    return (_orient(q0, q1, p0) * _orient(q0, q1, p1) < -1e-12
            and _orient(p0, p1, q0) * _orient(p0, p1, q1) < -1e-12)


def _segments_touch(p0, p1, q0, q1) -> bool:
    """Whether two segments share any point (crossing, touching or overlapping)."""
    if _segments_cross(p0, p1, q0, q1):
        return True
    return any(_point_segment_distance(p, a, b) < 1e-9 for p, a, b in ((p0, q0, q1), (p1, q0, q1), (q0, p0, p1),
                                                                        (q1, p0, p1)))


def _point_segment_distance(p, a, b) -> float:
    p, a, b = (np.asarray(v, float) for v in (p, a, b))
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-18), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def _in_outline(p, outline, tol: float = 1e-6) -> bool:
    """Inside the outline polygon or on its boundary (within ``tol`` m)."""
    if point_in_polygon(p, np.asarray(outline)):
        return True
    return any(_point_segment_distance(p, a, b) <= tol for a, b in zip(outline, outline[1:] + outline[:1]))


def _strictly_inside_convex(p, poly, tol: float = 1e-6) -> bool:
    """Whether ``p`` lies inside the convex polygon ``poly`` by more than ``tol`` m from every edge."""
    poly = np.asarray(poly, float)
    if polygon_area(poly) < 0.0:
        poly = poly[::-1]
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        edge = b - a
        if _orient(a, b, p) / max(float(np.linalg.norm(edge)), 1e-12) <= tol:
            return False
    return True


def _parse_zone(r: _Reader, z, f: str) -> Zone:
    r.mapping(z, f, ("id", "kind", "polygon"), ("max_speed_mps",))
    zid = r.new_id(z["id"], f + ".id")
    kind = r.text(z["kind"], f + ".kind", ZONE_KINDS)
    pts = r.seq(z["polygon"], f + ".polygon", required=True)
    if len(pts) < 3:
        r.fail(f + ".polygon", f"needs at least 3 points, got {len(pts)}")
    poly = np.array([r.point(p, f"{f}.polygon[{k}]") for k, p in enumerate(pts)])
    if abs(polygon_area(poly)) < 1e-6:
        r.fail(f + ".polygon", "has no area")
    speed = None
    if kind == "speed_limit":
        if "max_speed_mps" not in z:
            r.fail(f + ".max_speed_mps", "missing required field (a speed_limit zone needs it)")
        speed = r.num(z["max_speed_mps"], f + ".max_speed_mps", "m/s", 0.0, 5.0, positive=True)
    elif "max_speed_mps" in z:
        r.fail(f + ".max_speed_mps", "only a speed_limit zone has a speed")
    return Zone(zid, kind, poly, speed)


def _parse_vehicle(r: _Reader, v, f: str, spots: Dict[str, Spot], taken: Dict[str, str]) -> Vehicle:
    r.mapping(v, f, ("id", "spot", "body_m", "inlet", "battery"), ("model", "color_rgb", "request"))
    vid = r.new_id(v["id"], f + ".id")
    spot_id = str(v["spot"]) if isinstance(v["spot"], int) and not isinstance(v["spot"], bool) else v["spot"]
    spot_id = r.text(spot_id, f + ".spot")
    if spot_id not in spots:
        r.fail(f + ".spot", f"spot '{spot_id}' does not exist{_suggest(spot_id, tuple(spots))}")
    if spot_id in taken:
        r.fail(f + ".spot", f"spot '{spot_id}' is already taken by '{taken[spot_id]}'")
    taken[spot_id] = vid
    model = r.text(v.get("model", "unknown"), f + ".model")

    body = r.mapping(v["body_m"], f + ".body_m", ("length", "width", "height"))
    length = r.num(body["length"], f + ".body_m.length", "metres", 2.0, 7.0)
    width = r.num(body["width"], f + ".body_m.width", "metres", 1.2, 2.6)
    height = r.num(body["height"], f + ".body_m.height", "metres", 1.0, 3.0)
    spot = spots[spot_id]
    if length > spot.length_m or width > spot.width_m:
        r.fail(f + ".body_m", f"a {length:g} x {width:g} m car is larger than spot '{spot_id}' "
                              f"({spot.length_m:g} x {spot.width_m:g} m)")
    color = None
    if "color_rgb" in v:
        color = r.point(v["color_rgb"], f + ".color_rgb", 3, unit="fraction", lo=0.0, hi=1.0)

    fi = f + ".inlet"
    ind = r.mapping(v["inlet"], fi, ("side", "height_m"), ("type", "from_front_m", "lateral_m"))
    itype = r.text(ind.get("type", "ccs2"), fi + ".type", INLET_TYPES)
    side = r.text(ind["side"], fi + ".side", INLET_SIDES)
    inlet_h = r.num(ind["height_m"], fi + ".height_m", "metres", 0.1, 2.5)
    if inlet_h >= height:
        r.fail(fi + ".height_m", f"{inlet_h:g} m is not below the body height ({height:g} m)")
    if side in ("left", "right"):
        if "lateral_m" in ind:
            r.fail(fi + ".lateral_m", "only a front or rear inlet has a lateral offset; use from_front_m")
        if "from_front_m" not in ind:
            r.fail(fi + ".from_front_m", "missing required field (a side inlet needs it)")
        from_front = r.num(ind["from_front_m"], fi + ".from_front_m", "metres")
        if not 0.0 < from_front < length:
            r.fail(fi + ".from_front_m", f"{from_front:g} m is outside the {length:g} m long body")
        lateral = 0.0
    else:
        if "from_front_m" in ind:
            r.fail(fi + ".from_front_m", "a front or rear inlet is placed with lateral_m")
        lateral = r.num(ind.get("lateral_m", 0.0), fi + ".lateral_m", "metres", -0.5 * width, 0.5 * width)
        from_front = 0.0 if side == "front" else length

    b = r.mapping(v["battery"], f + ".battery", ("capacity_kwh", "soc", "max_dc_power_kw"))
    battery = Battery(r.num(b["capacity_kwh"], f + ".battery.capacity_kwh", "kWh", 0.0, 300.0, positive=True),
                      r.num(b["soc"], f + ".battery.soc", "fraction", 0.0, 1.0),
                      r.num(b["max_dc_power_kw"], f + ".battery.max_dc_power_kw", "kW", 0.0, 1000.0, positive=True))
    request = None
    if v.get("request") is not None:
        q = r.mapping(v["request"], f + ".request", ("energy_kwh", "departure_s"))
        energy = r.num(q["energy_kwh"], f + ".request.energy_kwh", "kWh", 0.0, 300.0, positive=True)
        room = battery.capacity_kwh * (1.0 - battery.soc)
        if energy > room + 1e-9:
            r.fail(f + ".request.energy_kwh", f"{energy:g} kWh does not fit: the battery has room for {room:.2f} kWh")
        departure = r.num(q["departure_s"], f + ".request.departure_s", "seconds", 0.0, 7 * 86400.0, positive=True)
        request = Request(energy, departure)
    return Vehicle(vid, spot_id, model, length, width, height, color, Inlet(itype, side, inlet_h, from_front, lateral),
                   battery, request)
