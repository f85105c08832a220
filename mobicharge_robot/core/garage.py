"""The garage description: one YAML file per garage level, loaded and validated here and nowhere else.

Schema (units are in the key names; the map frame's origin is the garage's lower-left corner, x east, y north)::

    garage:
      name: default
      size_m: [60.0, 40.0]                     # extent in x and y
      walls:   [{id: w_south, start: [x, y], end: [x, y], thickness_m: 0.3}]
      pillars: [{id: p1, center: [x, y], size_m: [0.6, 0.6]}]
      lanes:   [{id: lane_1, start: [x, y], end: [x, y], width_m: 6.0, direction: two_way}]  # or one_way
      spots:   [{id: S01, center: [x, y], yaw_rad: -1.5708, size_m: [5.0, 2.6]}]  # length along yaw, width
      depot:   {pose: [x, y, yaw_rad], dock: [x, y, yaw_rad]}
      zones:   [{id: z1, kind: keep_out, polygon: [[x, y], ...]},
                {id: z2, kind: speed_limit, polygon: [[x, y], ...], max_speed_mps: 0.5}]
    vehicles:
      - id: car_01
        spot: S03
        model: compact_hatch
        body_m: {length: 4.26, width: 1.81, height: 1.57}
        color_rgb: [0.8, 0.1, 0.1]             # optional, 0..1
        inlet: {type: ccs2, side: right, height_m: 0.95, from_front_m: 3.75}
        battery: {capacity_kwh: 58.0, soc: 0.35, max_dc_power_kw: 120.0}
        request: {energy_kwh: 8.0, departure_s: 7200}   # optional; departure in seconds after mission start

Inlet ``type`` is ccs2 (default), type2 or ccs1; ``side`` is left, right, front or rear. For a side inlet
``from_front_m`` is its distance from the front bumper; for a front or rear inlet ``lateral_m`` is its offset from the
centre line (+ to the car's left). Cars park nose first: the vehicle frame is the spot centre with the spot's yaw
(x to the car's front, y to its left, z up).

Every mistake raises :class:`GarageError` naming the file, the field (a dotted path such as
``vehicles[2].inlet.height_m``) and the problem.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import yaml

from .geometry import (Pose2D, convex_polygons_intersect, make_transform, polygon_area, rect_polygon,
                       segment_rect_polygon)

INLET_TYPES = ("ccs2", "type2", "ccs1")
INLET_SIDES = ("left", "right", "front", "rear")
WALL_HEIGHT_M = 2.5


class GarageError(Exception):
    """A garage description that cannot be used. ``str(e)`` is ``"<source>: <field>: <problem>"``."""

    def __init__(self, source: str, field: str, problem: str):
        super().__init__(f"{source}: {field}: {problem}")
        self.source, self.field, self.problem = source, field, problem


@dataclass(frozen=True)
class Wall:
    id: str
    start: Tuple[float, float]
    end: Tuple[float, float]
    thickness_m: float

    @property
    def polygon(self) -> np.ndarray:
        return segment_rect_polygon(self.start, self.end, self.thickness_m)


@dataclass(frozen=True)
class Pillar:
    id: str
    center: Tuple[float, float]
    size_m: Tuple[float, float]

    @property
    def polygon(self) -> np.ndarray:
        return rect_polygon(Pose2D(self.center[0], self.center[1], 0.0), self.size_m[0], self.size_m[1])


@dataclass(frozen=True)
class Lane:
    id: str
    start: Tuple[float, float]
    end: Tuple[float, float]
    width_m: float
    direction: str


@dataclass(frozen=True)
class Spot:
    id: str
    center: Tuple[float, float]
    yaw_rad: float
    length_m: float
    width_m: float

    @property
    def pose(self) -> Pose2D:
        return Pose2D(self.center[0], self.center[1], self.yaw_rad)

    @property
    def polygon(self) -> np.ndarray:
        return rect_polygon(self.pose, self.length_m, self.width_m)


@dataclass(frozen=True)
class Depot:
    pose: Pose2D
    dock: Pose2D


@dataclass(frozen=True)
class Zone:
    id: str
    kind: str
    polygon: np.ndarray
    max_speed_mps: Optional[float]


@dataclass(frozen=True)
class Inlet:
    type: str
    side: str
    height_m: float
    from_front_m: float
    lateral_m: float


@dataclass(frozen=True)
class Battery:
    capacity_kwh: float
    soc: float
    max_dc_power_kw: float


@dataclass(frozen=True)
class Request:
    energy_kwh: float
    departure_s: float


@dataclass(frozen=True)
class Vehicle:
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


@dataclass(frozen=True)
class Obstacle:
    kind: str  # 'wall' | 'pillar' | 'vehicle'
    id: str
    polygon: np.ndarray
    height_m: float


@dataclass(frozen=True)
class Garage:
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

    def spot(self, spot_id: str) -> Spot:
        for s in self.spots:
            if s.id == spot_id:
                return s
        raise GarageError(self.source, "spots", f"no spot with id '{spot_id}'")

    def vehicle(self, vehicle_id: str) -> Vehicle:
        for v in self.vehicles:
            if v.id == vehicle_id:
                return v
        raise GarageError(self.source, "vehicles", f"no vehicle with id '{vehicle_id}'")

    def vehicle_pose(self, v: Vehicle) -> Pose2D:
        return self.spot(v.spot).pose

    def vehicle_polygon(self, v: Vehicle) -> np.ndarray:
        return rect_polygon(self.vehicle_pose(v), v.length_m, v.width_m)

    def static_obstacles(self) -> List[Obstacle]:
        obs = [Obstacle("wall", w.id, w.polygon, WALL_HEIGHT_M) for w in self.walls]
        obs += [Obstacle("pillar", p.id, p.polygon, WALL_HEIGHT_M) for p in self.pillars]
        obs += [Obstacle("vehicle", v.id, self.vehicle_polygon(v), v.height_m) for v in self.vehicles]
        return obs

    def keep_out_polygons(self) -> List[np.ndarray]:
        return [z.polygon for z in self.zones if z.kind == "keep_out"]

    def requested_vehicles(self) -> List[Vehicle]:
        return [v for v in self.vehicles if v.request is not None]

    def inlet_pose(self, v: Vehicle) -> np.ndarray:
        """T_map_inlet: origin on the body surface at the inlet, z out of that face, y up, x = y cross z."""
        return self.vehicle_pose(v).to_matrix() @ inlet_in_vehicle(v)


def inlet_in_vehicle(v: Vehicle) -> np.ndarray:
    """T_vehicle_inlet for the car's box body (the inlet sits on the face given by its side)."""
    inlet = v.inlet
    hl, hw = 0.5 * v.length_m, 0.5 * v.width_m
    if inlet.side in ("left", "right"):
        sign = 1.0 if inlet.side == "left" else -1.0
        pos = (hl - inlet.from_front_m, sign * hw, inlet.height_m)
        normal_yaw = sign * math.pi / 2
    else:
        sign = 1.0 if inlet.side == "front" else -1.0
        pos = (sign * hl, inlet.lateral_m, inlet.height_m)
        normal_yaw = 0.0 if sign > 0 else math.pi
    # Columns: x = y cross z, y = up, z = outward normal.
    n = np.array([math.cos(normal_yaw), math.sin(normal_yaw), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    rot = np.column_stack([np.cross(up, n), up, n])
    return make_transform(rot, pos)


# ----------------------------------------------------------------------------- parsing


class _Reader:
    """Typed access to nested YAML values with error messages that name the field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, field: str, problem: str):
        raise GarageError(self.source, field, problem)

    def mapping(self, data, field: str, keys_required, keys_optional=()) -> dict:
        if not isinstance(data, dict):
            self.fail(field, f"expected a mapping, got {_kind(data)}")
        allowed = set(keys_required) | set(keys_optional)
        for key in data:
            if key not in allowed:
                hint = _unit_hint(str(key), allowed)
                self.fail(f"{field}.{key}" if field else str(key), "unknown field" + hint)
        for key in keys_required:
            if key not in data:
                self.fail(f"{field}.{key}" if field else key, "missing required field")
        return data

    def seq(self, data, field: str, allow_empty: bool = True) -> list:
        if data is None and allow_empty:
            return []
        if not isinstance(data, list):
            self.fail(field, f"expected a list, got {_kind(data)}")
        if not data and not allow_empty:
            self.fail(field, "must not be empty")
        return data

    def num(self, data, field: str, lo: float = -math.inf, hi: float = math.inf, unit: str = "",
            lo_open: bool = False) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            what = f"a number in {unit}" if unit else "a number"
            self.fail(field, f"expected {what}, got {_kind(data)} {data!r}")
        value = float(data)
        if not math.isfinite(value):
            self.fail(field, f"must be finite, got {data!r}")
        if value < lo or value > hi or (lo_open and value == lo):
            rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            hint = ""
            if unit == "metres" and value > hi and value / 1000.0 <= hi:
                hint = " (it looks like millimetres; the unit is metres)"
            self.fail(field, f"{value:g} is implausible, expected {unit + ' ' if unit else ''}in {rng}{hint}")
        return value

    def text(self, data, field: str, choices=None) -> str:
        if not isinstance(data, str) or not data.strip():
            self.fail(field, f"expected a non-empty string, got {_kind(data)}")
        if choices is not None and data not in choices:
            self.fail(field, f"'{data}' is not one of {', '.join(choices)}")
        return data

    def ident(self, data, field: str) -> str:
        if isinstance(data, int) and not isinstance(data, bool):
            return str(data)
        return self.text(data, field)

    def vec(self, data, field: str, n: int, unit: str = "metres", lo=-math.inf, hi=math.inf) -> Tuple[float, ...]:
        if not isinstance(data, (list, tuple)) or len(data) != n:
            self.fail(field, f"expected a list of {n} numbers, got {data!r}")
        return tuple(self.num(x, f"{field}[{i}]", lo, hi, unit) for i, x in enumerate(data))


def _kind(v) -> str:
    return "nothing" if v is None else type(v).__name__


def _unit_hint(key: str, allowed) -> str:
    stem = key.rsplit("_", 1)[0] if "_" in key else key
    for a in sorted(allowed):
        if a.rsplit("_", 1)[0] == stem and a != key:
            return f" (did you mean '{a}'? units are part of the name)"
    return ""


def load_garage(path: str) -> Garage:
    """Read and validate a garage YAML file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise GarageError(str(path), "file", f"cannot be read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        raise GarageError(str(path), where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    return parse_garage(data, str(path))


def parse_garage(data, source: str = "<garage>") -> Garage:
    r = _Reader(source)
    top = r.mapping(data, "", ("garage",), ("vehicles",))
    g = r.mapping(top["garage"], "garage", ("name", "size_m", "walls", "spots", "depot"),
                  ("pillars", "lanes", "zones"))
    name = r.text(g["name"], "garage.name")
    size = r.vec(g["size_m"], "garage.size_m", 2, lo=1.0, hi=2000.0)

    def inside(pt, field):
        if not (0.0 <= pt[0] <= size[0] and 0.0 <= pt[1] <= size[1]):
            r.fail(field, f"({pt[0]:g}, {pt[1]:g}) lies outside the garage (0..{size[0]:g} x 0..{size[1]:g} m)")

    ids = set()

    def new_id(value, field):
        ident = r.ident(value, field)
        if ident in ids:
            r.fail(field, f"duplicate id '{ident}'")
        ids.add(ident)
        return ident

    walls = []
    for i, w in enumerate(r.seq(g["walls"], "garage.walls")):
        f = f"garage.walls[{i}]"
        r.mapping(w, f, ("id", "start", "end", "thickness_m"))
        start, end = r.vec(w["start"], f + ".start", 2), r.vec(w["end"], f + ".end", 2)
        inside(start, f + ".start")
        inside(end, f + ".end")
        if start == end:
            r.fail(f, "start and end are the same point")
        walls.append(Wall(new_id(w["id"], f + ".id"), start, end,
                          r.num(w["thickness_m"], f + ".thickness_m", 0.01, 2.0, "metres")))
    pillars = []
    for i, p in enumerate(r.seq(g.get("pillars"), "garage.pillars")):
        f = f"garage.pillars[{i}]"
        r.mapping(p, f, ("id", "center", "size_m"))
        center = r.vec(p["center"], f + ".center", 2)
        inside(center, f + ".center")
        pillars.append(Pillar(new_id(p["id"], f + ".id"), center,
                              r.vec(p["size_m"], f + ".size_m", 2, lo=0.05, hi=5.0)))
    lanes = []
    for i, ln in enumerate(r.seq(g.get("lanes"), "garage.lanes")):
        f = f"garage.lanes[{i}]"
        r.mapping(ln, f, ("id", "start", "end", "width_m"), ("direction",))
        start, end = r.vec(ln["start"], f + ".start", 2), r.vec(ln["end"], f + ".end", 2)
        inside(start, f + ".start")
        inside(end, f + ".end")
        lanes.append(Lane(new_id(ln["id"], f + ".id"), start, end,
                          r.num(ln["width_m"], f + ".width_m", 1.0, 30.0, "metres"),
                          r.text(ln.get("direction", "two_way"), f + ".direction", ("two_way", "one_way"))))
    spots = []
    for i, s in enumerate(r.seq(g["spots"], "garage.spots", allow_empty=False)):
        f = f"garage.spots[{i}]"
        r.mapping(s, f, ("id", "center", "yaw_rad", "size_m"))
        center = r.vec(s["center"], f + ".center", 2)
        spot = Spot(new_id(s["id"], f + ".id"), center, r.num(s["yaw_rad"], f + ".yaw_rad", -7.0, 7.0, "radians"),
                    *r.vec(s["size_m"], f + ".size_m", 2, lo=1.0, hi=20.0))
        for corner in spot.polygon:
            inside(corner, f)
        shrunk = rect_polygon(spot.pose, spot.length_m - 0.02, spot.width_m - 0.02)
        for j, other in enumerate(spots):
            if convex_polygons_intersect(shrunk, rect_polygon(other.pose, other.length_m - 0.02,
                                                              other.width_m - 0.02)):
                r.fail(f, f"spot '{spot.id}' overlaps spot '{other.id}' (garage.spots[{j}])")
        spots.append(spot)
    d = r.mapping(g["depot"], "garage.depot", ("pose", "dock"))
    depot = Depot(Pose2D(*r.vec(d["pose"], "garage.depot.pose", 3)), Pose2D(*r.vec(d["dock"], "garage.depot.dock", 3)))
    inside((depot.pose.x, depot.pose.y), "garage.depot.pose")
    inside((depot.dock.x, depot.dock.y), "garage.depot.dock")
    zones = []
    for i, z in enumerate(r.seq(g.get("zones"), "garage.zones")):
        f = f"garage.zones[{i}]"
        r.mapping(z, f, ("id", "kind", "polygon"), ("max_speed_mps",))
        kind = r.text(z["kind"], f + ".kind", ("keep_out", "speed_limit"))
        pts = r.seq(z["polygon"], f + ".polygon", allow_empty=False)
        if len(pts) < 3:
            r.fail(f + ".polygon", "needs at least 3 points")
        poly = np.array([r.vec(p, f"{f}.polygon[{k}]", 2) for k, p in enumerate(pts)])
        if abs(polygon_area(poly)) < 1e-6:
            r.fail(f + ".polygon", "has no area")
        speed = None
        if kind == "speed_limit":
            if "max_speed_mps" not in z:
                r.fail(f + ".max_speed_mps", "missing required field for a speed_limit zone")
            speed = r.num(z["max_speed_mps"], f + ".max_speed_mps", 0.0, 5.0, "m/s", lo_open=True)
        elif "max_speed_mps" in z:
            r.fail(f + ".max_speed_mps", "only a speed_limit zone has a speed")
        zones.append(Zone(new_id(z["id"], f + ".id"), kind, poly, speed))

    spot_ids = {s.id: s for s in spots}
    vehicles = []
    taken = {}
    for i, v in enumerate(r.seq(top.get("vehicles"), "vehicles")):
        vehicles.append(_parse_vehicle(r, v, f"vehicles[{i}]", spot_ids, taken, new_id))
    return Garage(name, size, tuple(walls), tuple(pillars), tuple(lanes), tuple(spots), depot, tuple(zones),
                  tuple(vehicles), source)


def _parse_vehicle(r: _Reader, v, f: str, spots: Dict[str, Spot], taken: Dict[str, str], new_id) -> Vehicle:
    r.mapping(v, f, ("id", "spot", "body_m", "inlet", "battery"), ("model", "color_rgb", "request"))
    vid = new_id(v["id"], f + ".id")
    spot_id = r.ident(v["spot"], f + ".spot")
    if spot_id not in spots:
        r.fail(f + ".spot", f"spot '{spot_id}' does not exist")
    if spot_id in taken:
        r.fail(f + ".spot", f"spot '{spot_id}' is already taken by '{taken[spot_id]}'")
    taken[spot_id] = vid
    body = r.mapping(v["body_m"], f + ".body_m", ("length", "width", "height"))
    length = r.num(body["length"], f + ".body_m.length", 2.0, 7.0, "metres")
    width = r.num(body["width"], f + ".body_m.width", 1.2, 2.6, "metres")
    height = r.num(body["height"], f + ".body_m.height", 1.0, 3.0, "metres")
    spot = spots[spot_id]
    if length > spot.length_m or width > spot.width_m:
        r.fail(f + ".body_m", f"a {length:g} x {width:g} m car does not fit spot '{spot_id}' "
               f"({spot.length_m:g} x {spot.width_m:g} m)")
    color = None
    if "color_rgb" in v:
        color = r.vec(v["color_rgb"], f + ".color_rgb", 3, unit="", lo=0.0, hi=1.0)
    ind = r.mapping(v["inlet"], f + ".inlet", ("side", "height_m"), ("type", "from_front_m", "lateral_m"))
    side = r.text(ind["side"], f + ".inlet.side", INLET_SIDES)
    itype = r.text(ind.get("type", "ccs2"), f + ".inlet.type", INLET_TYPES)
    inlet_h = r.num(ind["height_m"], f + ".inlet.height_m", 0.1, min(2.5, height), "metres")
    if side in ("left", "right"):
        if "from_front_m" not in ind:
            r.fail(f + ".inlet.from_front_m", "missing required field for a side inlet")
        from_front = r.num(ind["from_front_m"], f + ".inlet.from_front_m", 0.1, length - 0.1, "metres")
        lateral = 0.0
        if "lateral_m" in ind:
            r.fail(f + ".inlet.lateral_m", "only a front or rear inlet has a lateral offset")
    else:
        lateral = r.num(ind.get("lateral_m", 0.0), f + ".inlet.lateral_m", -0.5 * width + 0.1, 0.5 * width - 0.1,
                        "metres")
        from_front = 0.0 if side == "front" else length
        if "from_front_m" in ind:
            r.fail(f + ".inlet.from_front_m", "a front or rear inlet is placed with lateral_m")
    b = r.mapping(v["battery"], f + ".battery", ("capacity_kwh", "soc", "max_dc_power_kw"))
    battery = Battery(r.num(b["capacity_kwh"], f + ".battery.capacity_kwh", 0.0, 300.0, "kWh", lo_open=True),
                      r.num(b["soc"], f + ".battery.soc", 0.0, 1.0, "fraction"),
                      r.num(b["max_dc_power_kw"], f + ".battery.max_dc_power_kw", 0.0, 1000.0, "kW", lo_open=True))
    request = None
    if v.get("request") is not None:
        q = r.mapping(v["request"], f + ".request", ("energy_kwh", "departure_s"))
        energy = r.num(q["energy_kwh"], f + ".request.energy_kwh", 0.0, 300.0, "kWh", lo_open=True)
        room = battery.capacity_kwh * (1.0 - battery.soc)
        if energy > room + 1e-9:
            r.fail(f + ".request.energy_kwh", f"{energy:g} kWh does not fit: the battery has room for {room:.2f} kWh")
        request = Request(energy, r.num(q["departure_s"], f + ".request.departure_s", 0.0, 7 * 86400.0, "seconds",
                                        lo_open=True))
    model = r.text(v.get("model", "unknown"), f + ".model")
    return Vehicle(vid, spot_id, model, length, width, height, color,
                   Inlet(itype, side, inlet_h, from_front, lateral), battery, request)
