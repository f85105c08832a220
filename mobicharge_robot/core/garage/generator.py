"""Seeded garage generator: valid garage descriptions for operators who try layouts and for the scenario suite.

``generate_garage(seed, ...)`` returns the YAML data (plain dicts and lists) of one garage level; the same arguments
always give the same garage. ``garage_yaml`` turns it into the text of a file. Layout:

- shapes: ``rect``, ``L`` (a full-width lower block and an arm on the west side above it) and ``T`` (a full-width upper
  bar and a stem below its middle). L and T levels carry an ``outline`` polygon; the loader adds their walls.
- blocks of bays: a lane with a row of spots on each side; rows back to back across a 0.8 m pillar gap; rows facing
  a wall keep 1.0 m from the outline (the wall's 0.3 m plus room for wall pillars). Lanes are 5.5-7 m wide. In a block
  with cross lanes at both ends and two or more lanes, lanes may be one-way in alternating directions (a circuit) and
  their rows may be angled (60 or 45 degrees, leaning with the traffic); other lanes are two-way with 90-degree rows.
- the depot stands in the west cross lane, its dock against the west wall; a speed-limit zone covers it; a rect or T
  level may have a keep-out "ramp" in a dead corner of its east cross lane.
- cars from :data:`CATALOGUE` (real models 3.6-5.2 m long with their inlet type and position); 3-8 of them request
  energy. A requesting car has an inlet the robot's connector serves and on its side (front inlets face the wall in a
  nose-first row and cannot be reached); the spot on its inlet side stays empty, and ``staging_pose`` is checked for
  every request before the garage is returned.

Energy. The requests add up to at most ``demand`` x the pack's usable energy. The usable energy
(:func:`usable_energy_kwh`) is what the DC stage can hand to cars from a pack started at the energy node's
``initial_soc``: the open-circuit energy between that charge and :data:`USABLE_FLOOR_SOC` (20%, where the pack's
discharge power starts to derate and below which the robot keeps its charge for driving home), times the DC stage's
rated efficiency (:data:`DC_STAGE_EFFICIENCY`). For the nominal 50 kWh pack started at 0.9 that is about 33.8 kWh.

Departures. Cars are served in a nearest-neighbour order from the depot. A serve-in-order estimate gives each car's
finish time (driving at :data:`ESTIMATE_SPEED_MPS` along :data:`ESTIMATE_PATH_FACTOR` x the straight distance,
:data:`HANDLING_S` for staging, detection, plugging and unplugging, and charging at the lower of the robot's output
power and the car's DC limit); departures are those times stretched by a seeded factor of 1.5-2.0 plus 15 minutes,
rounded up to the minute, so there is room to serve every car in that order.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from .garage import DEFAULT_CONNECTORS, INLET_TYPES, OUTLINE_WALL_THICKNESS_M, GarageError, parse_garage
from .staging import StagingError, staging_pose
from ..energy.pack import PackParams, energy_content_wh
from ..geometry import wrap_angle
from ..paths import data_path

SHAPES = ("rect", "L", "T")
MIN_SPOTS, MAX_SPOTS = 20, 120
MIN_REQUESTS, MAX_REQUESTS = 3, 8
USABLE_FLOOR_SOC = 0.20
DC_STAGE_EFFICIENCY = 0.96
ESTIMATE_SPEED_MPS = 0.5
ESTIMATE_PATH_FACTOR = 1.4
HANDLING_S = 300.0
WALL_T = OUTLINE_WALL_THICKNESS_M   # the generator's own perimeter walls have the loader's outline thickness
WALL_GAP_M = 1.0                    # outline edge to the noses of a row facing the wall
INNER_GAP_M = 0.8                   # between back-to-back rows; pillars stand in it
LANE_END_GAP_M = 0.7                # end of a dead-end row to the wall
MIN_LANE_M, MAX_LANE_M = 5.5, 7.0


class GeneratorError(ValueError):
    """The requested garage cannot be generated (for example more spots than the given size holds)."""


@dataclass(frozen=True)
class CarModel:
    """A real car model: body (m), inlet type/side/position (m, as in the garage schema), battery (kWh, kW)."""

    name: str
    length: float
    width: float
    height: float
    inlet_type: str
    inlet_side: str
    inlet_pos: float  # from_front_m for a side inlet, lateral_m for a front/rear inlet
    inlet_height: float
    capacity_kwh: float
    max_dc_kw: float


# Published body sizes (rounded to 1 cm); inlet positions are estimates from photographs of each model (about +-5 cm;
# the models sim/variation.py also knows carry its values).
CATALOGUE: Tuple[CarModel, ...] = (
    CarModel("fiat_500e", 3.63, 1.68, 1.53, "ccs2", "right", 3.05, 0.85, 42.0, 85.0),
    CarModel("honda_e", 3.89, 1.75, 1.51, "ccs2", "front", 0.0, 0.85, 35.5, 56.0),
    CarModel("peugeot_e208", 4.06, 1.75, 1.43, "ccs2", "left", 3.65, 0.85, 50.0, 100.0),
    CarModel("renault_zoe", 4.09, 1.79, 1.56, "ccs2", "front", 0.0, 0.75, 52.0, 50.0),
    CarModel("chevrolet_bolt", 4.15, 1.77, 1.60, "ccs1", "left", 0.95, 0.95, 65.0, 55.0),
    CarModel("vw_id3", 4.26, 1.81, 1.57, "ccs2", "right", 3.70, 0.95, 58.0, 120.0),
    CarModel("nissan_leaf", 4.49, 1.79, 1.54, "type2", "front", 0.1, 0.80, 40.0, 50.0),
    CarModel("polestar_2", 4.61, 1.86, 1.48, "ccs2", "left", 4.00, 0.90, 78.0, 155.0),
    CarModel("hyundai_ioniq5", 4.64, 1.89, 1.60, "ccs2", "right", 4.00, 0.90, 77.0, 220.0),
    CarModel("skoda_enyaq", 4.65, 1.88, 1.62, "ccs2", "right", 3.95, 1.00, 77.0, 135.0),
    CarModel("kia_ev6", 4.68, 1.88, 1.55, "ccs2", "right", 4.00, 0.90, 77.4, 233.0),
    CarModel("tesla_model3", 4.69, 1.85, 1.44, "ccs2", "left", 4.35, 0.85, 75.0, 170.0),
    CarModel("vw_id_buzz", 4.71, 1.99, 1.94, "ccs2", "right", 4.05, 1.05, 77.0, 170.0),
    CarModel("tesla_modely", 4.75, 1.92, 1.62, "ccs2", "left", 4.40, 0.95, 75.0, 250.0),
    CarModel("bmw_i4", 4.78, 1.85, 1.45, "ccs2", "right", 4.05, 0.85, 80.7, 205.0),
    CarModel("audi_q8_etron", 4.92, 1.94, 1.63, "ccs2", "left", 0.95, 0.90, 95.0, 150.0),
    CarModel("mercedes_eqe", 4.95, 1.91, 1.49, "ccs2", "right", 4.15, 0.90, 90.0, 170.0),
)


# ----------------------------------------------------------------------------- energy and time


def usable_energy_kwh(pack: PackParams, initial_soc: float, floor_soc: float = USABLE_FLOOR_SOC,
                      dc_efficiency: float = DC_STAGE_EFFICIENCY) -> float:
    """Energy (kWh) the DC stage can deliver to cars from ``pack`` started at ``initial_soc`` down to ``floor_soc``:
    the pack's open-circuit energy between the two charges times ``dc_efficiency`` (see the module docstring)."""
    if not (0.0 <= floor_soc < initial_soc <= 1.0):
        raise ValueError(f"need 0 <= floor_soc < initial_soc <= 1, got {floor_soc!r} and {initial_soc!r}")
    if not 0.0 < dc_efficiency <= 1.0:
        raise ValueError(f"dc_efficiency must be within (0, 1], got {dc_efficiency!r}")
    wh = energy_content_wh(initial_soc, pack) - energy_content_wh(floor_soc, pack)
    return dc_efficiency * wh / 1000.0


def energy_defaults_from_config(path: str) -> Tuple[PackParams, float, float]:
    """(pack, initial_soc, max_output_power_kw) from the energy node's section of a parameter file such as
    ``config/mobicharge.yaml``; PackParams' defaults for what the file does not set. ValueError if unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        params = (doc.get("energy") or {}).get("ros__parameters") or {}
        pack = PackParams(capacity_kwh=float(params.get("pack_capacity_kwh", PackParams().capacity_kwh)))
        return pack, float(params.get("initial_soc", 0.9)), float(params.get("max_output_power_kw", 50.0))
    except (OSError, yaml.YAMLError, AttributeError, TypeError) as exc:
        raise ValueError(f"cannot read the energy node's defaults from {path}: {exc}") from exc


def serve_time_s(distance_m: float, energy_kwh: float, power_kw: float) -> float:
    """The estimate for one car: drive ``distance_m`` (straight line), handle the plug, deliver at ``power_kw``."""
    return (ESTIMATE_PATH_FACTOR * distance_m / ESTIMATE_SPEED_MPS + HANDLING_S
            + 3600.0 * energy_kwh / power_kw)


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _LaneSpec:
    angle_deg: float   # of the rows along this lane (90, 60 or 45)
    width: float
    one_way: bool


@dataclass
class _Frame:
    """Maps block coordinates (u along the lanes, v across) to the map frame: identity, or u=y, v=x."""

    vertical: bool = False

    def pt(self, u: float, v: float) -> Tuple[float, float]:
        return (v, u) if self.vertical else (u, v)

    def yaw(self, phi: float) -> float:
        return wrap_angle(0.5 * math.pi - phi) if self.vertical else wrap_angle(phi)


class _Layout:
    """Accumulates the geometry of one garage in map coordinates."""

    def __init__(self, spot_len: float, spot_wid: float):
        self.spot_len, self.spot_wid = spot_len, spot_wid
        self.rows: List[List[dict]] = []     # each row: its spots in order along u
        self.pillars: List[dict] = []
        self.lanes: List[dict] = []
        self.zones: List[dict] = []
        self.first_lane_centre: Optional[float] = None  # v (= y) of the main block's first lane, for the depot

    def lane(self, frame: _Frame, u0: float, u1: float, v: float, width: float, direction: int) -> None:
        a, b = (frame.pt(u0, v), frame.pt(u1, v)) if direction >= 0 else (frame.pt(u1, v), frame.pt(u0, v))
        self.lanes.append({"start": list(a), "end": list(b), "width_m": width,
                           "direction": "two_way" if direction == 0 else "one_way"})

    def row(self, frame: _Frame, u0: float, u1: float, v0: float, side: int, angle_deg: float,
            travel: int) -> None:
        """Spots between u0 and u1 in the band [v0, v0 + depth]; ``side`` +1 when the noses point to +v."""
        theta = math.radians(angle_deg)
        L, W = self.spot_len, self.spot_wid
        depth = _row_depth(angle_deg, L, W)
        if angle_deg >= 89.9:
            extent, pitch, phi = W, W, side * 0.5 * math.pi
        else:
            extent, pitch = L * math.cos(theta) + W * math.sin(theta), W / math.sin(theta)
            phi = math.atan2(side * math.sin(theta), travel * math.cos(theta))
        n = int(math.floor((u1 - u0 - extent) / pitch + 1e-9)) + 1 if u1 - u0 >= extent else 0
        spots = []
        for k in range(n):
            x, y = frame.pt(u0 + 0.5 * extent + k * pitch, v0 + 0.5 * depth)
            spots.append({"center": [x, y], "yaw_rad": frame.yaw(phi), "size_m": [L, W]})
        if spots:
            self.rows.append(spots)

    def pillar_line(self, frame: _Frame, u0: float, u1: float, v: float, size: float, pitch: float) -> None:
        if u1 - u0 < size:
            return
        n = max(1, int((u1 - u0) // pitch) + 1)
        step = (u1 - u0 - size) / max(1, n - 1)
        for k in range(n):
            x, y = frame.pt(u0 + 0.5 * size + k * step, v)
            self.pillars.append({"center": [x, y], "size_m": [size, size]})

    @property
    def spot_count(self) -> int:
        return sum(len(r) for r in self.rows)


def _row_depth(angle_deg: float, L: float, W: float) -> float:
    if angle_deg >= 89.9:
        return L
    t = math.radians(angle_deg)
    return L * math.sin(t) + W * math.cos(t)


def _stack(lay: _Layout, frame: _Frame, specs: Sequence[_LaneSpec], v0: float, v1: float, start: str, end: str,
           row_u: Tuple[float, float], lane_u: Tuple[float, float], loops: bool, pillar_pitch: float,
           main: bool = False, build: bool = True) -> float:
    """Fill the band v0..v1 of a block with lanes and rows; returns the v actually used (or inf if nothing fits).

    ``start``: 'wall' (a row facing the boundary at v0), 'lane_at_wall' (a lane along the wall) or 'foreign' (a row
    whose rear is on another block's lane that ends at v0). ``end``: 'wall' or 'lane_at_wall'. ``loops``: the lanes
    connect at both ends, so one-way lanes (and angled rows) are allowed when there are two or more.
    """
    L, W = lay.spot_len, lay.spot_wid

    def plan(n: int):
        lanes = []
        for k in range(n):
            s = specs[k % len(specs)]
            if not loops or n < 2:
                s = _LaneSpec(90.0, max(s.width, 6.0), False)
            elif s.angle_deg < 89.9:
                s = _LaneSpec(s.angle_deg, s.width, True)
            lanes.append(s)
        items = []  # (kind, size, extra): kinds wallgap, wall, row, gap, lane
        if n == 0:  # only a 'foreign' start has this: one row on the other block's lane, facing the wall
            items = [("row", None, (None, +1)), ("wallgap", WALL_GAP_M, None)]
            return lanes, items, [_row_depth(90.0, L, W), WALL_GAP_M]
        if start == "wall":
            items += [("wallgap", WALL_GAP_M, None), ("row", None, (0, -1))]
        elif start == "lane_at_wall":
            items += [("wall", WALL_T, None)]
        else:
            items += [("row", None, (None, +1)), ("gap", INNER_GAP_M, None), ("row", None, (0, -1))]
        for k in range(n):
            items.append(("lane", lanes[k].width, k))
            if k < n - 1:
                items += [("row", None, (k, +1)), ("gap", INNER_GAP_M, None), ("row", None, (k + 1, -1))]
        if end == "wall":
            items += [("row", None, (n - 1, +1)), ("wallgap", WALL_GAP_M, None)]
        else:
            items += [("wall", WALL_T, None)]
        sizes = []
        for kind, size, extra in items:
            if kind == "row":
                lane_k = extra[0]
                sizes.append(_row_depth(90.0 if lane_k is None else lanes[lane_k].angle_deg, L, W))
            else:
                sizes.append(size)
        return lanes, items, sizes

    best = None
    for n in range(0 if start == "foreign" and end == "wall" else 1, 40):
        lanes, items, sizes = plan(n)
        if v0 + sum(sizes) > v1 + 1e-9:
            break
        best = (lanes, items, sizes)
    if best is None:
        return math.inf
    if not build:
        return v0 + sum(best[2])
    lanes, items, sizes = best
    # Spare room widens the lanes (up to the maximum), then lies as open floor at the wall end of the stack.
    spare = v1 - v0 - sum(sizes)
    for i, (kind, size, extra) in enumerate(items):
        if kind == "lane" and spare > 0.0:
            grow = min(spare, MAX_LANE_M - sizes[i])
            sizes[i] += grow
            spare -= grow
    wall_end = next((i for i in (len(items) - 1, 0) if items[i][0] == "wallgap"), None)
    if wall_end is not None:
        sizes[wall_end] += spare
    v = v0
    lane_v: Dict[int, Tuple[float, float]] = {}
    for (kind, _, extra), size in zip(items, sizes):
        if kind == "lane":
            lane_v[extra] = (v, v + size)
        v += size
    v = v0
    for i, ((kind, _, extra), size) in enumerate(zip(items, sizes)):
        if kind == "lane":
            k = extra
            direction = 0 if not lanes[k].one_way else (1 if k % 2 == 0 else -1)
            lay.lane(frame, lane_u[0], lane_u[1], v + 0.5 * size, round(size, 2), direction)
            if main and lay.first_lane_centre is None:
                lay.first_lane_centre = v + 0.5 * size
        elif kind == "row":
            lane_k, side = extra
            spec = lanes[lane_k] if lane_k is not None else _LaneSpec(90.0, 6.0, False)
            travel = 1 if lane_k is None or not spec.one_way or lane_k % 2 == 0 else -1
            lay.row(frame, row_u[0], row_u[1], v, side, spec.angle_deg, travel)
        elif kind == "gap":
            lay.pillar_line(frame, row_u[0] + 0.5, row_u[1] - 0.5, v + 0.5 * size, 0.6, pillar_pitch)
        elif kind == "wallgap":
            # Wall pillars (0.5 m) 0.05 m off the wall's face, whatever spare floor the gap holds.
            centre = v + WALL_T + 0.3 if i == 0 else v + size - WALL_T - 0.3
            lay.pillar_line(frame, row_u[0] + 0.5, row_u[1] - 0.5, centre, 0.5, pillar_pitch)
        v += size
    return v


@dataclass(frozen=True)
class _Plan:
    """Seeded choices that do not depend on the size, so that a size search is deterministic."""

    specs: Tuple[_LaneSpec, ...]
    cross_w: float
    spot_len: float
    spot_wid: float
    pillar_pitch: float
    split_a: float   # L: lower block height / H;  T: bar height / H
    split_b: float   # L: arm width / W;           T: stem width / W
    stem_offset: float
    ramp: bool


def _draw_plan(rng: np.random.Generator) -> _Plan:
    specs = []
    for _ in range(8):
        angle = float(rng.choice([90.0, 90.0, 60.0, 45.0]))
        if angle < 90.0:
            specs.append(_LaneSpec(angle, round(float(rng.uniform(5.5, 6.0)), 1), True))
        else:
            one_way = bool(rng.random() < 0.3)
            lo = 5.5 if one_way else 6.0
            specs.append(_LaneSpec(90.0, round(float(rng.uniform(lo, 7.0)), 1), one_way))
    spot_wid = float(rng.choice([2.5, 2.6]))
    return _Plan(tuple(specs), round(float(rng.uniform(6.0, 7.0)), 1), float(rng.choice([5.0, 5.2])), spot_wid,
                 3 * spot_wid, float(rng.uniform(0.45, 0.6)), float(rng.uniform(0.4, 0.55)),
                 float(rng.uniform(-0.15, 0.15)), bool(rng.random() < 0.5))


def _layout(plan: _Plan, shape: str, W: float, H: float) -> Tuple[_Layout, Optional[list], Tuple[float, float]]:
    """The layout of a W x H level: (layout, outline or None, (depot zone's east x, depot y, the y range of floor
    beside the depot)). GeneratorError if it cannot fit."""
    lay = _Layout(plan.spot_len, plan.spot_wid)
    cw, pp = plan.cross_w, plan.pillar_pitch
    hz = _Frame(False)
    min_row = plan.spot_len + 1.0
    if shape == "rect":
        if W < 2 * (WALL_T + cw) + min_row + 2.0:
            raise GeneratorError(f"a {W:g} m wide level has no room for rows between its cross lanes")
        used = _stack(lay, hz, plan.specs, 0.0, H, "wall", "wall", (WALL_T + cw, W - WALL_T - cw),
                      (WALL_T, W - WALL_T), True, pp, main=True)
        if math.isinf(used):
            raise GeneratorError(f"a {H:g} m deep level has no room for a lane with rows")
        _cross_lane(lay, WALL_T, WALL_T + cw, WALL_T, H - WALL_T)
        top_lane = max(max(ln["start"][1], ln["end"][1]) + 0.5 * ln["width_m"] for ln in lay.lanes)
        if plan.ramp and H - WALL_T - (top_lane + 0.5) > 4.0:
            _ramp(lay, W - WALL_T - cw, W - WALL_T, top_lane + 0.5, H - WALL_T)
            _cross_lane(lay, W - WALL_T - cw, W - WALL_T, WALL_T, top_lane + 0.5)
        else:
            _cross_lane(lay, W - WALL_T - cw, W - WALL_T, WALL_T, H - WALL_T)
        return lay, None, (WALL_T + cw, lay.first_lane_centre, WALL_T, H - WALL_T)
    if shape == "L":
        Hb, Wa = round(plan.split_a * H, 1), round(plan.split_b * W, 1)
        if W < 2 * (WALL_T + cw) + min_row + 2.0 or Wa < WALL_T + cw + LANE_END_GAP_M + 2 * plan.spot_wid + WALL_T:
            raise GeneratorError(f"a {W:g} m wide L has no room for rows")
        used = _stack(lay, hz, plan.specs, 0.0, Hb, "wall", "lane_at_wall", (WALL_T + cw, W - WALL_T - cw),
                      (WALL_T, W - WALL_T), True, pp, main=True)
        if math.isinf(used):
            raise GeneratorError(f"the lower block of a {H:g} m deep L has no room for a lane with rows")
        used = _stack(lay, hz, plan.specs, Hb - WALL_T, H, "foreign", "wall",
                      (WALL_T + cw, Wa - WALL_T - LANE_END_GAP_M), (WALL_T, Wa - WALL_T), False, pp)
        if math.isinf(used):
            raise GeneratorError(f"the arm of a {H:g} m deep L has no room for a lane with rows")
        _cross_lane(lay, WALL_T, WALL_T + cw, WALL_T, H - WALL_T)
        _cross_lane(lay, W - WALL_T - cw, W - WALL_T, WALL_T, Hb - WALL_T)
        outline = [[0.0, 0.0], [W, 0.0], [W, Hb], [Wa, Hb], [Wa, H], [0.0, H]]
        return lay, outline, (WALL_T + cw, lay.first_lane_centre, WALL_T, H - WALL_T)
    # T: a full-width bar on top, a stem below it
    Ht, Ws = round(plan.split_a * H, 1), round(plan.split_b * W, 1)
    xs0 = round(0.5 * (W - Ws) + plan.stem_offset * (W - Ws), 1)
    xs1 = round(xs0 + Ws, 1)
    yb = H - Ht
    if W < 2 * (WALL_T + cw) + min_row + 2.0 or yb < WALL_T + cw + min_row:
        raise GeneratorError(f"a {W:g} x {H:g} m T has no room for rows")
    used = _stack(lay, hz, plan.specs, yb, H, "lane_at_wall", "wall", (WALL_T + cw, W - WALL_T - cw),
                  (WALL_T, W - WALL_T), True, pp, main=True)
    if math.isinf(used):
        raise GeneratorError(f"the bar of a {H:g} m deep T has no room for a lane with rows")
    bar_lane_v = lay.first_lane_centre
    vt = _Frame(True)
    stem_specs = plan.specs[3:] + plan.specs[:3]
    stem_args = ("wall", "wall", (WALL_T + cw, yb + WALL_T - 0.3), (WALL_T, bar_lane_v), True, pp)
    used = _stack(lay, vt, stem_specs, xs0, xs1, *stem_args, build=False)
    if math.isinf(used):
        raise GeneratorError(f"the {Ws:g} m wide stem of the T has no room for a lane with rows")
    xs1 = math.ceil(10.0 * used) / 10.0  # as wide as its lanes and rows need
    _stack(lay, vt, stem_specs, xs0, xs1, *stem_args)
    lay.lanes.append({"start": [xs0 + WALL_T, WALL_T + 0.5 * cw], "end": [xs1 - WALL_T, WALL_T + 0.5 * cw],
                      "width_m": cw, "direction": "two_way"})
    _cross_lane(lay, WALL_T, WALL_T + cw, yb + WALL_T, H - WALL_T)
    top_lane = max(max(ln["start"][1], ln["end"][1]) + 0.5 * ln["width_m"] for ln in lay.lanes)
    if plan.ramp and H - WALL_T - (top_lane + 0.5) > 4.0:
        _ramp(lay, W - WALL_T - cw, W - WALL_T, top_lane + 0.5, H - WALL_T)
        _cross_lane(lay, W - WALL_T - cw, W - WALL_T, yb + WALL_T, top_lane + 0.5)
    else:
        _cross_lane(lay, W - WALL_T - cw, W - WALL_T, yb + WALL_T, H - WALL_T)
    outline = [[0.0, yb], [xs0, yb], [xs0, 0.0], [xs1, 0.0], [xs1, yb], [W, yb], [W, H], [0.0, H]]
    return lay, outline, (WALL_T + cw, bar_lane_v, yb + WALL_T, H - WALL_T)


def _cross_lane(lay: _Layout, x0: float, x1: float, y0: float, y1: float) -> None:
    lay.lanes.append({"start": [0.5 * (x0 + x1), y0], "end": [0.5 * (x0 + x1), y1], "width_m": round(x1 - x0, 2),
                      "direction": "two_way"})


def _ramp(lay: _Layout, x0: float, x1: float, y0: float, y1: float) -> None:
    lay.zones.append({"kind": "keep_out", "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]})


def _trim(lay: _Layout, n: int) -> None:
    """Drop spots from the ends of the longest rows until ``n`` are left."""
    while lay.spot_count > n:
        longest = max(range(len(lay.rows)), key=lambda i: (len(lay.rows[i]), -i))
        lay.rows[longest].pop()
    lay.rows = [r for r in lay.rows if r]


# ----------------------------------------------------------------------------- the garage


def generate_garage(seed: int, robot_footprint: Optional[Tuple[float, float]] = None,
                    usable_kwh: Optional[float] = None, shape: str = "rect", spots: Optional[int] = None,
                    requests: Optional[int] = None, demand: float = 0.8, size: Optional[Tuple[float, float]] = None,
                    connectors: Sequence[str] = DEFAULT_CONNECTORS, robot_power_kw: Optional[float] = None,
                    staging_clearance_m: float = 0.35) -> dict:
    """The YAML data of a valid garage level (see the module docstring); deterministic for the arguments.

    ``robot_footprint``: (length, width) m, for the staging check (None: from the robot's URDF); ``usable_kwh``: the
    pack's usable energy (:func:`usable_energy_kwh`; None: from the energy node's defaults in
    ``config/mobicharge.yaml``); the requests total at most ``demand`` x that. ``robot_power_kw``: the robot's DC
    output power for the departure estimate (None: the energy node's ``max_output_power_kw``). ``size``: (W, H) m, or
    None to size the level for ``spots``. GeneratorError for arguments that cannot be met, ValueError for invalid ones.
    """
    if robot_footprint is None:
        robot_footprint = _urdf_footprint()
    if usable_kwh is None or robot_power_kw is None:
        pack, initial_soc, power_kw = energy_defaults_from_config(data_path("config", "mobicharge.yaml"))
        usable_kwh = usable_energy_kwh(pack, initial_soc) if usable_kwh is None else usable_kwh
        robot_power_kw = power_kw if robot_power_kw is None else robot_power_kw
    _check_args(shape, spots, requests, demand, size, connectors, usable_kwh, robot_power_kw)
    rng = np.random.default_rng([int(seed), SHAPES.index(shape)])
    plan = _draw_plan(rng)
    n_spots = spots if spots is not None else None
    if size is not None:
        W, H = size
        lay, outline, depot_xy = _layout(plan, shape, W, H)
        if n_spots is None:
            n_spots = min(MAX_SPOTS, lay.spot_count)
        if lay.spot_count < max(n_spots, MIN_SPOTS):
            raise GeneratorError(f"a {W:g} x {H:g} m {shape} level holds only {lay.spot_count} spots, "
                                 f"{max(n_spots, MIN_SPOTS)} wanted")
    else:
        if n_spots is None:
            n_spots = int(rng.integers(24, 101))
        aspect = float(rng.uniform(0.9, 1.5))
        lay, outline, depot_xy, W, H = _size_for(plan, shape, n_spots, (aspect, aspect + 0.8))
    _trim(lay, n_spots)
    n_req = requests if requests is not None else int(rng.integers(MIN_REQUESTS, MAX_REQUESTS + 1))
    data = _garage_data(shape, seed, lay, outline, depot_xy, W, H)
    return _place_cars(rng, data, lay, n_req, demand * usable_kwh, tuple(connectors), robot_footprint,
                       staging_clearance_m, robot_power_kw)


@functools.lru_cache(maxsize=1)
def _urdf_footprint() -> Tuple[float, float]:
    from ..arm.urdf_model import UrdfModel, default_urdf_path  # expanding the xacro is slow: only when needed
    return UrdfModel.from_xacro(default_urdf_path()).footprint()


def _check_args(shape, spots, requests, demand, size, connectors, usable_kwh, robot_power_kw) -> None:
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    if spots is not None and not (isinstance(spots, int) and MIN_SPOTS <= spots <= MAX_SPOTS):
        raise ValueError(f"spots must be an integer from {MIN_SPOTS} to {MAX_SPOTS}, got {spots!r}")
    if requests is not None and not (isinstance(requests, int) and MIN_REQUESTS <= requests <= MAX_REQUESTS):
        raise ValueError(f"requests must be an integer from {MIN_REQUESTS} to {MAX_REQUESTS}, got {requests!r}")
    if not (isinstance(demand, (int, float)) and math.isfinite(demand) and 0.05 <= demand <= 5.0):
        raise ValueError(f"demand must be a fraction of the usable energy from 0.05 to 5, got {demand!r}")
    if size is not None and not (len(size) == 2 and all(math.isfinite(s) and 20.0 <= s <= 400.0 for s in size)):
        raise ValueError(f"size must be two lengths from 20 to 400 m, got {size!r}")
    for c in connectors:
        if c not in INLET_TYPES:
            raise ValueError(f"connector must be one of {', '.join(INLET_TYPES)}, got {c!r}")
    if not (math.isfinite(usable_kwh) and usable_kwh > 0.0 and math.isfinite(robot_power_kw) and robot_power_kw > 0):
        raise ValueError("usable_kwh and robot_power_kw must be positive")


def _size_for(plan: _Plan, shape: str, n: int, aspect: Tuple[float, float]):
    """The level of least floor area, with width / depth within ``aspect``, that holds ``n`` spots (1 m steps in
    depth, 0.5 m in width)."""

    def capacity(W: float, H: float) -> int:
        try:
            return _layout(plan, shape, W, H)[0].spot_count
        except GeneratorError:
            return -1

    best = None
    for h in range(20, 301):
        H = float(h)
        if best is not None and aspect[0] * H * H >= best[0]:
            break  # every width allowed at this depth gives more area than the best so far
        lo, hi = max(20.0, aspect[0] * H), min(400.0, aspect[1] * H)
        if lo > hi or capacity(hi, H) < n:
            continue
        lo_i, hi_i = int(math.ceil(2 * lo)), int(math.floor(2 * hi))  # widths in half metres
        while lo_i < hi_i:  # the narrowest width that holds n spots (capacity grows with the width)
            mid = (lo_i + hi_i) // 2
            if capacity(0.5 * mid, H) >= n:
                hi_i = mid
            else:
                lo_i = mid + 1
        W = 0.5 * hi_i
        if capacity(W, H) >= n and (best is None or W * H < best[0]):
            best = (W * H, W, H)
    if best is None:
        raise GeneratorError(f"no {shape} level up to 300 m deep holds {n} spots")
    _, W, H = best
    lay, outline, depot_xy = _layout(plan, shape, W, H)
    return lay, outline, depot_xy, W, H


def _r(x: float, nd: int = 3) -> float:
    return float(round(x, nd)) + 0.0


def _garage_data(shape: str, seed: int, lay: _Layout, outline, depot_xy, W: float, H: float) -> dict:
    g: dict = {"name": f"gen_{shape}_{seed}", "size_m": [_r(W), _r(H)]}
    if outline is not None:
        g["outline"] = [[_r(x), _r(y)] for x, y in outline]
        g["walls"] = []
    else:
        h = 0.5 * WALL_T
        g["walls"] = [
            {"id": "w_south", "start": [0.0, h], "end": [_r(W), h], "thickness_m": WALL_T},
            {"id": "w_north", "start": [0.0, _r(H - h)], "end": [_r(W), _r(H - h)], "thickness_m": WALL_T},
            {"id": "w_west", "start": [h, 0.0], "end": [h, _r(H)], "thickness_m": WALL_T},
            {"id": "w_east", "start": [_r(W - h), 0.0], "end": [_r(W - h), _r(H)], "thickness_m": WALL_T}]
    g["pillars"] = [{"id": f"p{i + 1:02d}", "center": [_r(p["center"][0]), _r(p["center"][1])],
                     "size_m": p["size_m"]} for i, p in enumerate(lay.pillars)]
    g["lanes"] = [{"id": f"lane_{i + 1}", "start": [_r(ln["start"][0]), _r(ln["start"][1])],
                   "end": [_r(ln["end"][0]), _r(ln["end"][1])], "width_m": _r(ln["width_m"], 2),
                   "direction": ln["direction"]} for i, ln in enumerate(lay.lanes)]
    spots = []
    for ri, row in enumerate(lay.rows):
        letter = "ABCDEFGHJKLMNPQRSTUVWXYZ"[ri] if ri < 24 else f"R{ri + 1}_"  # R25_01: never clashes with A01
        for k, s in enumerate(row):
            spots.append({"id": f"{letter}{k + 1:02d}", "center": [_r(s["center"][0]), _r(s["center"][1])],
                          "yaw_rad": _r(s["yaw_rad"], 4), "size_m": s["size_m"]})
    g["spots"] = spots
    x, y, y_lo, y_hi = depot_xy
    dock_x = WALL_T + 0.9
    g["depot"] = {"pose": [_r(dock_x + 2.0), _r(y), 0.0], "dock": [_r(dock_x), _r(y), 3.1416]}
    zones = [{"id": f"ramp_keep_out{'' if i == 0 else i + 1}", "kind": "keep_out",
              "polygon": [[_r(a), _r(b)] for a, b in z["polygon"]]} for i, z in enumerate(lay.zones)]
    zones.append({"id": "depot_slow", "kind": "speed_limit", "max_speed_mps": 0.5,
                  "polygon": [[WALL_T, _r(max(y_lo, y - 5.0))], [_r(x), _r(max(y_lo, y - 5.0))],
                              [_r(x), _r(min(y_hi, y + 5.0))], [WALL_T, _r(min(y_hi, y + 5.0))]]})
    g["zones"] = zones
    return {"garage": g, "vehicles": []}


def _neighbours(spots: List[dict], rows: List[List[dict]]) -> List[Dict[str, int]]:
    """For each spot (in file order) the index of the adjacent spot of its row on its 'left' and 'right'."""
    out: List[Dict[str, int]] = [dict() for _ in spots]
    i = 0
    for row in rows:
        idx = list(range(i, i + len(row)))
        for a, b in zip(idx, idx[1:]):
            for me, other in ((a, b), (b, a)):
                yaw = spots[me]["yaw_rad"]
                d = np.subtract(spots[other]["center"], spots[me]["center"])
                left = float(d @ np.array([-math.sin(yaw), math.cos(yaw)]))
                out[me]["left" if left > 0 else "right"] = other
        i += len(row)
    return out


def _place_cars(rng: np.random.Generator, data: dict, lay: _Layout, n_req: int, budget_kwh: float,
                connectors: Tuple[str, ...], footprint, clearance: float, robot_power_kw: float) -> dict:
    spots = data["garage"]["spots"]
    nbr = _neighbours(spots, lay.rows)
    requestable = [m for m in CATALOGUE if m.inlet_type in connectors and m.inlet_side in ("left", "right")]
    if not requestable:
        raise GeneratorError(f"no car model in the catalogue has a side inlet of type {', '.join(connectors)}")
    occupancy = float(rng.uniform(0.4, 0.75))
    banned: set = set()
    for _attempt in range(40):
        order = [int(i) for i in rng.permutation(len(spots))]
        chosen: Dict[int, CarModel] = {}
        keep_empty: set = set()
        for i in order:
            if len(chosen) == n_req:
                break
            if i in banned or i in keep_empty or i in chosen:
                continue
            model = requestable[int(rng.integers(len(requestable)))]
            nb = nbr[i].get(model.inlet_side)
            if nb is not None and nb in chosen:
                continue
            chosen[i] = model
            if nb is not None:
                keep_empty.add(nb)
        if len(chosen) < n_req:
            raise GeneratorError(f"{len(spots)} spots leave no room for {n_req} requesting cars with an empty spot "
                                 "beside each inlet")
        parked: Dict[int, CarModel] = dict(chosen)
        for i in range(len(spots)):
            if i not in parked and i not in keep_empty and rng.random() < occupancy:
                parked[i] = CATALOGUE[int(rng.integers(len(CATALOGUE)))]
        vehicles = [_vehicle(rng, n, spots[i]["id"], m, i in chosen) for n, (i, m) in enumerate(sorted(parked.items()))]
        data["vehicles"] = vehicles
        garage = parse_garage(data, data["garage"]["name"], connectors)
        failed = []
        for v in garage.requested_vehicles():
            try:
                staging_pose(garage, v, footprint[0], footprint[1], clearance)
            except StagingError:
                failed.append(next(i for i, s in enumerate(spots) if s["id"] == v.spot))
        if not failed:
            break
        banned.update(failed)
    else:
        raise GeneratorError("could not place the requesting cars where the robot can stage beside them")
    _assign_requests(rng, data, garage, budget_kwh, robot_power_kw)
    final = parse_garage(data, data["garage"]["name"], connectors)  # the data as written must validate
    if len(final.requested_vehicles()) != n_req:
        raise GeneratorError(f"placed {len(final.requested_vehicles())} requests instead of {n_req}")
    return data


def _vehicle(rng: np.random.Generator, n: int, spot_id: str, m: CarModel, requesting: bool) -> dict:
    inlet: dict = {"type": m.inlet_type, "side": m.inlet_side, "height_m": m.inlet_height}
    if m.inlet_side in ("left", "right"):
        inlet["from_front_m"] = m.inlet_pos
    else:
        inlet["lateral_m"] = m.inlet_pos
    colour = [_r(float(c), 2) for c in rng.uniform(0.05, 0.95, 3)]
    v = {"id": f"car_{n + 1:03d}", "spot": spot_id, "model": m.name,
         "body_m": {"length": m.length, "width": m.width, "height": m.height}, "color_rgb": colour, "inlet": inlet,
         "battery": {"capacity_kwh": m.capacity_kwh, "soc": _r(float(rng.uniform(0.1, 0.5 if requesting else 0.9)), 2),
                     "max_dc_power_kw": m.max_dc_kw}}
    if requesting:
        v["request"] = {"energy_kwh": 0.1, "departure_s": 1.0}  # a placeholder until _assign_requests
    return v


def _assign_requests(rng: np.random.Generator, data: dict, garage, budget_kwh: float, robot_power_kw: float) -> None:
    """Energies within the budget and the car's room; departures from a serve-in-order estimate (module docstring)."""
    req = [v for v in data["vehicles"] if "request" in v]
    weights = rng.uniform(0.5, 1.5, len(req))
    target = budget_kwh * float(rng.uniform(0.7, 1.0))
    energies = {}
    for v, w in zip(req, weights):
        b = v["battery"]
        room = b["capacity_kwh"] * (1.0 - b["soc"])
        e = min(target * w / weights.sum(), 0.9 * room)
        energies[v["id"]] = max(0.1, math.floor(e * 10.0) / 10.0)
    depot = garage.depot.pose
    pos = np.array([depot.x, depot.y])
    todo = list(req)
    finish = {}
    t = 0.0
    while todo:  # nearest neighbour from where the robot is
        nxt = min(todo, key=lambda v: (float(np.linalg.norm(garage.spot(v["spot"]).pose.xy - pos)), v["id"]))
        todo.remove(nxt)
        here = garage.spot(nxt["spot"]).pose.xy
        power = min(robot_power_kw, nxt["battery"]["max_dc_power_kw"])
        t += serve_time_s(float(np.linalg.norm(here - pos)), energies[nxt["id"]], power)
        finish[nxt["id"]] = t
        pos = here
    stretch = float(rng.uniform(1.5, 2.0))
    for v in req:
        departure = 60.0 * math.ceil((stretch * finish[v["id"]] + 900.0) / 60.0)
        v["request"] = {"energy_kwh": energies[v["id"]], "departure_s": departure}


def garage_yaml(data: dict, header: Sequence[str] = ()) -> str:
    """The YAML text of generated garage data, with ``header`` lines as comments on top."""
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    return "".join(f"# {line}\n" for line in header) + body


def write_garage(data: dict, path: str, header: Sequence[str] = ()) -> None:
    """Write generated garage data to ``path`` as YAML (see :func:`garage_yaml`); OSError if it cannot be written."""
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        f.write(garage_yaml(data, header))


__all__ = ["CATALOGUE", "CarModel", "GarageError", "GeneratorError", "SHAPES", "energy_defaults_from_config",
           "garage_yaml", "generate_garage", "serve_time_s", "usable_energy_kwh", "write_garage"]


def generate_garage_file(path: str, seed: int, shape: str = "rect") -> str:
    """Generate the garage for ``seed`` and ``shape`` with the defaults and write it to ``path``; returns ``path``."""
    write_garage(generate_garage(seed=seed, shape=shape), path)
    return path
