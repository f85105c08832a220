"""The simulator's true world: drawn from the garage description, a seed and a variation profile.

The robot's nodes believe the garage file, the URDF and their parameters. The loopback simulator does not: it draws
here, once per run, the world it actually simulates, and publishes every drawn value only on ``sim/truth/world`` and
in the run folder (tests and benchmarks read those; production nodes never do).

Profiles (``none`` reproduces the file exactly; ``nominal`` is what ``make demo`` uses; ``hard`` stresses):

=========================  ===================  ===================  ==========================================
what                        nominal              hard                 where it acts
=========================  ===================  ===================  ==========================================
listed car offset           lat +-0.25 m,        lat +-0.30 m,        true pose of each listed car in its spot
                            lon +-0.40 m,        lon +-0.45 m,
                            yaw +-5 deg          yaw +-7 deg
car body                    catalogue model      catalogue model      body size, inlet position/height, flap
unlisted cars               0-2                  0-5                  in spots the file calls free
static objects in lanes     0-2                  0-5                  cones, trolleys (lidar, collisions)
pedestrians                 0-2, 0.8-1.5 m/s     0-5, 0.8-1.5 m/s     along and across lanes
car pulling out             no                   one, sometimes       a parked, non-requesting car leaves
odometry                    radius +-1 %,        radius +-1 %,        true wheel geometry vs. the URDF's
                            track +-2 %,         track +-2 %,
                            slip 0.5 %           slip 1 %
lidar                       sigma 1 cm, 0.5 %    sigma 1 cm, 2 %      range noise and dropouts
                            dropouts             dropouts
camera                      K +-0.5 %, mount     K +-0.5 %, mount     true intrinsics and wrist mounting vs.
                            1 mm / 0.3 deg       1 mm / 0.3 deg       camera_info and the URDF
pack                        capacity +-5 %,      capacity +-8 %,      true pack vs. the estimator's model;
                            R +-20 %, start      R +-30 %, start      estimator start = nominal initial SoC
                            SoC +-5 %            SoC +-5 %
cars' batteries             capacity +-10 %,     capacity +-15 %,     the simulated car side
                            taper 0.75-0.85      taper 0.70-0.85
DC stage efficiency         +-1 %                +-1.5 %
message latency             0-20 ms              0-20 ms              odom, scan, joint states, wrench
=========================  ===================  ===================  ==========================================

The car catalogue is the garage generator's (``core/garage/generator.py``: published exterior sizes, inlet positions
from photographs to about 5 cm), so the generator and the simulator know the same real models.

Unlisted cars never park in the staging area beside a requesting car, and lane objects leave a passage of at least
2.5 m: the world is harder than the file, not impossible by construction.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.garage.garage import Battery, Garage, Inlet, Vehicle
from ..core.garage.generator import CATALOGUE, CarModel
from ..core.geometry import Pose2D, convex_polygons_intersect, rect_polygon

PROFILE_NAMES = ("none", "nominal", "hard")


@dataclass(frozen=True)
class Profile:
    """The ranges one variation profile draws from (each value is +- the half-range unless named min/max)."""

    car_lat_m: float
    car_lon_m: float
    car_yaw_deg: float
    catalogue: bool
    unlisted_cars_max: int
    lane_objects_max: int
    pedestrians_max: int
    car_pulls_out: bool
    wheel_radius_pct: float
    track_pct: float
    slip_pct: float
    lidar_sigma_m: float
    lidar_dropout: float
    camera_k_pct: float
    camera_mount_mm: float
    camera_mount_deg: float
    pack_capacity_pct: float
    pack_resistance_pct: float
    pack_start_soc_pct: float
    car_capacity_pct: float
    car_taper_min: float
    dc_efficiency_pct: float
    latency_max_ms: float


PROFILES: Dict[str, Profile] = {
    "none": Profile(0.0, 0.0, 0.0, False, 0, 0, 0, False, 0.0, 0.0, 0.0, 0.005, 0.0, 0.0, 0.0, 0.0,
                    0.0, 0.0, 0.0, 0.0, 0.80, 0.0, 0.0),
    "nominal": Profile(0.25, 0.40, 5.0, True, 2, 2, 2, False, 1.0, 2.0, 0.5, 0.01, 0.005, 0.5, 1.0, 0.3,
                       5.0, 20.0, 5.0, 10.0, 0.75, 1.0, 20.0),
    "hard": Profile(0.30, 0.45, 7.0, True, 5, 5, 5, True, 1.0, 2.0, 1.0, 0.01, 0.02, 0.5, 1.0, 0.3,
                    8.0, 30.0, 5.0, 15.0, 0.70, 1.5, 20.0),
}


@dataclass(frozen=True)
class TrueCar:
    """A car as it really stands: ``vehicle`` carries the true body and inlet (garage types, so the garage's inlet
    helpers apply), ``pose`` the true vehicle frame in the map frame. ``listed`` is False for cars the file does not
    know. ``taper_start_soc`` and ``target_soc`` shape its acceptance; ``leaves_s`` is when it drives away (inf:
    never); ``flap_deg`` the inlet flap's opening angle."""

    vehicle: Vehicle
    pose: Pose2D
    listed: bool
    model: str
    taper_start_soc: float
    target_soc: float
    leaves_s: float
    flap_deg: float


@dataclass(frozen=True)
class Mover:
    """Something that moves along a polyline at a constant speed, pausing at the ends: a pedestrian (a circle of
    ``radius_m``) or a car pulling out (a box ``length_m`` x ``width_m``). Active from ``start_s``; ``one_way``
    movers vanish at the end of their path (a car that has left), the others walk back and forth."""

    id: str
    kind: str
    waypoints: Tuple[Tuple[float, float], ...]
    speed_mps: float
    start_s: float
    pause_s: float
    one_way: bool
    radius_m: float = 0.25
    length_m: float = 0.0
    width_m: float = 0.0

    def _segments(self):
        pts = np.asarray(self.waypoints, float)
        seg = np.hypot(*(pts[1:] - pts[:-1]).T)
        return pts, seg, float(seg.sum())

    def state(self, t: float) -> Optional[Tuple[float, float, float]]:
        """(x, y, heading) at sim time ``t`` (s) if present, else None, ignoring waits (see ``MoverState``)."""
        return self.at_distance(t * self.speed_mps)

    def at_distance(self, s: float) -> Optional[Tuple[float, float, float]]:
        """(x, y, heading) after travelling ``s`` metres along its route (back and forth unless one_way)."""
        pts, seg, total = self._segments()
        if total <= 0.0:
            return float(pts[0, 0]), float(pts[0, 1]), 0.0
        if self.one_way:
            if s > total:
                return None
            d, direction = s, 1.0
        else:
            period = 2.0 * total
            d = s % period
            direction = 1.0
            if d > total:
                d, direction = period - d, -1.0
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        i = int(min(len(seg) - 1, np.searchsorted(cum, d, side="right") - 1))
        f = (d - cum[i]) / seg[i] if seg[i] > 0 else 0.0
        p = pts[i] + f * (pts[i + 1] - pts[i])
        v = (pts[i + 1] - pts[i]) * direction
        return float(p[0]), float(p[1]), math.atan2(v[1], v[0])

    def polygon(self, x: float, y: float, heading: float) -> np.ndarray:
        if self.kind == "pedestrian":
            a = np.linspace(0.0, 2.0 * math.pi, 8, endpoint=False)
            return np.column_stack([x + self.radius_m * np.cos(a), y + self.radius_m * np.sin(a)])
        return rect_polygon(Pose2D(x, y, heading), self.length_m, self.width_m)


@dataclass
class MoverState:
    """A mover's progress: it advances along its route unless told to wait (people and drivers yield to the
    robot), so its position depends on the run, not only on time."""

    mover: Mover
    travelled_m: float = 0.0
    pause_left_s: float = 0.0

    def pose(self, t: float) -> Optional[Tuple[float, float, float]]:
        if t < self.mover.start_s:
            return None  # not there yet (a car that will pull out is still a parked, static car)
        return self.mover.at_distance(self.travelled_m)

    def advance(self, t: float, dt: float, blocked: bool) -> None:
        if t < self.mover.start_s or blocked:
            return
        if self.pause_left_s > 0.0:
            self.pause_left_s -= dt
            return
        _, _, total = self.mover._segments()
        before = self.travelled_m
        self.travelled_m += self.mover.speed_mps * dt
        if not self.mover.one_way and total > 0 and int(before / total) != int(self.travelled_m / total):
            self.pause_left_s = self.mover.pause_s  # turn around at the end of the route after a pause


@dataclass(frozen=True)
class StaticObject:
    id: str
    kind: str
    pose: Pose2D
    length_m: float
    width_m: float
    height_m: float

    @property
    def polygon(self) -> np.ndarray:
        return rect_polygon(self.pose, self.length_m, self.width_m)


@dataclass(frozen=True)
class Odometry:
    """True wheel geometry relative to the URDF's (fractions: 0.01 = 1 % larger) and per-step slip noise (fraction
    of the wheel travel, 1 sigma)."""

    left_radius_err: float
    right_radius_err: float
    track_err: float
    slip_sigma: float


@dataclass(frozen=True)
class Sensors:
    lidar_sigma_m: float
    lidar_dropout: float
    camera_k_scale: Tuple[float, float, float, float]  # fx, fy, cx, cy multipliers (true / nominal)
    camera_mount_xyz_m: Tuple[float, float, float]
    camera_mount_rpy_rad: Tuple[float, float, float]
    latency_max_s: float


@dataclass(frozen=True)
class Plant:
    pack_capacity_scale: float
    pack_resistance_scale: float
    pack_start_soc_offset: float
    dc_efficiency: float


@dataclass(frozen=True)
class TrueWorld:
    profile: str
    seed: int
    cars: Tuple[TrueCar, ...]
    objects: Tuple[StaticObject, ...]
    movers: Tuple[Mover, ...]
    odometry: Odometry
    sensors: Sensors
    plant: Plant

    def car(self, vehicle_id: str) -> TrueCar:
        for c in self.cars:
            if c.vehicle.id == vehicle_id:
                return c
        raise KeyError(vehicle_id)

    def to_dict(self) -> dict:
        """Every drawn value, JSON-serialisable (for ``sim/truth/world`` and the run folder)."""
        out = {"profile": self.profile, "seed": self.seed, "cars": [], "objects": [], "movers": []}
        for c in self.cars:
            v = c.vehicle
            out["cars"].append({
                "id": v.id, "spot": v.spot, "listed": c.listed, "model": c.model,
                "pose": [c.pose.x, c.pose.y, c.pose.yaw], "body_m": [v.length_m, v.width_m, v.height_m],
                "color_rgb": list(v.color_rgb) if v.color_rgb else None, "inlet": asdict(v.inlet),
                "battery": asdict(v.battery), "request": asdict(v.request) if v.request else None,
                "taper_start_soc": c.taper_start_soc, "target_soc": c.target_soc,
                "leaves_s": None if math.isinf(c.leaves_s) else c.leaves_s, "flap_deg": c.flap_deg})
        for o in self.objects:
            out["objects"].append({"id": o.id, "kind": o.kind, "pose": [o.pose.x, o.pose.y, o.pose.yaw],
                                   "size_m": [o.length_m, o.width_m, o.height_m]})
        for m in self.movers:
            out["movers"].append({"id": m.id, "kind": m.kind, "waypoints": [list(p) for p in m.waypoints],
                                  "speed_mps": m.speed_mps, "start_s": m.start_s, "one_way": m.one_way})
        out["odometry"] = asdict(self.odometry)
        out["sensors"] = asdict(self.sensors)
        out["plant"] = asdict(self.plant)
        return out


class VariationError(ValueError):
    """An unknown profile or a garage the variation cannot be drawn for."""


# ----------------------------------------------------------------------------------------------- drawing


def draw_world(garage: Garage, seed: int, profile: str, robot_footprint: Tuple[float, float] = (1.2, 0.8),
               staging_areas: Sequence[np.ndarray] = ()) -> TrueWorld:
    """Draw the true world for ``garage`` from ``seed`` and the named ``profile``.

    ``staging_areas`` are map-frame polygons where the robot will stand beside requesting cars: unlisted cars and
    lane objects keep out of them (and of the depot), so that every listed request stays servable.
    """
    if profile not in PROFILES:
        raise VariationError(f"unknown variation profile '{profile}' (choose from {', '.join(PROFILE_NAMES)})")
    pr = PROFILES[profile]
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])

    def u(half: float) -> float:
        return float(rng.uniform(-half, half)) if half > 0 else 0.0

    keep_clear = [np.asarray(a, float) for a in staging_areas]
    d = garage.depot.pose
    keep_clear.append(rect_polygon(d, robot_footprint[0] + 3.0, robot_footprint[1] + 3.0))
    keep_clear.append(rect_polygon(garage.depot.dock, robot_footprint[0] + 2.0, robot_footprint[1] + 2.0))

    cars: List[TrueCar] = []
    for v in garage.vehicles:
        cars.append(_true_listed_car(garage, v, pr, rng, u))
    taken = {v.spot for v in garage.vehicles}
    n_unlisted = int(rng.integers(0, pr.unlisted_cars_max + 1)) if pr.unlisted_cars_max else 0
    free = [s for s in garage.spots if s.id not in taken
            and not any(convex_polygons_intersect(s.polygon, a) for a in keep_clear)]
    rng.shuffle(free)
    for k, spot in enumerate(free[:n_unlisted]):
        model = CATALOGUE[int(rng.integers(len(CATALOGUE)))]
        car = _unlisted_car(f"unlisted_{k + 1}", spot, model, pr, rng, u)
        cars.append(car)
        taken.add(spot.id)

    objects = _lane_objects(garage, pr, rng, keep_clear, robot_footprint)
    movers = _pedestrians(garage, pr, rng)
    if pr.car_pulls_out and rng.random() < 0.5:
        leaving = [c for c in cars if c.vehicle.request is None]
        if leaving:
            c = leaving[int(rng.integers(len(leaving)))]
            mover = _pull_out(garage, c, rng)
            if mover is not None:
                movers.append(mover)
                cars[cars.index(c)] = replace(c, leaves_s=mover.start_s)

    odo = Odometry(u(pr.wheel_radius_pct) / 100, u(pr.wheel_radius_pct) / 100, u(pr.track_pct) / 100,
                   pr.slip_pct / 100)
    k_scale = tuple(1.0 + u(pr.camera_k_pct) / 100 for _ in range(4))
    sensors = Sensors(pr.lidar_sigma_m, pr.lidar_dropout, k_scale,
                      tuple(u(pr.camera_mount_mm) / 1000 for _ in range(3)),
                      tuple(math.radians(u(pr.camera_mount_deg)) for _ in range(3)),
                      pr.latency_max_ms / 1000)
    plant = Plant(1.0 + u(pr.pack_capacity_pct) / 100, 1.0 + u(pr.pack_resistance_pct) / 100,
                  u(pr.pack_start_soc_pct) / 100, 0.96 + u(pr.dc_efficiency_pct) / 100)
    return TrueWorld(profile, int(seed), tuple(cars), tuple(objects), tuple(movers), odo, sensors, plant)


def _pick_model(v: Vehicle, rng) -> Optional[CarModel]:
    """A catalogue model like the file's car: the same inlet side, a length within 0.35 m if there is one."""
    same = [m for m in CATALOGUE if m.inlet_side == v.inlet.side]
    near = [m for m in same if abs(m.length - v.length_m) <= 0.35]
    pool = near or same
    if not pool:
        return None
    return pool[int(rng.integers(len(pool)))]


def _true_listed_car(garage: Garage, v: Vehicle, pr: Profile, rng, u) -> TrueCar:
    spot = garage.spot(v.spot)
    body, inlet, model_name = (v.length_m, v.width_m, v.height_m), v.inlet, v.model
    if pr.catalogue:
        model = _pick_model(v, rng)
        if model is not None:
            model_name = model.name
            length, width, height = model.length, model.width, model.height
            if inlet.side in ("left", "right"):
                # The inlet keeps its place relative to the nearer bumper (front or rear quarter) within 5 cm.
                if inlet.from_front_m > 0.5 * v.length_m:
                    from_front = length - (v.length_m - inlet.from_front_m) + u(0.05)
                else:
                    from_front = inlet.from_front_m + u(0.05)
                from_front = min(max(from_front, 0.3), length - 0.3)
                inlet = replace(inlet, from_front_m=from_front, height_m=inlet.height_m + u(0.05))
            else:
                from_front = length if inlet.side == "rear" else 0.0
                inlet = replace(inlet, from_front_m=from_front, height_m=inlet.height_m + u(0.05),
                                lateral_m=max(-0.5 * width + 0.2, min(0.5 * width - 0.2, inlet.lateral_m + u(0.05))))
            body = (length, width, height)
    # The car stands off its spot centre; the body never leaves the spot by more than its offset allows.
    lat, lon, yaw = u(pr.car_lat_m), u(pr.car_lon_m), math.radians(u(pr.car_yaw_deg))
    true_pose = spot.pose.compose(Pose2D(lon, lat, yaw)) if (lat, lon, yaw) != (0.0, 0.0, 0.0) else spot.pose
    color = v.color_rgb
    if color is None and pr.catalogue:
        color = tuple(float(c) for c in rng.uniform(0.1, 0.9, 3))
    battery = v.battery
    if pr.car_capacity_pct > 0:
        battery = Battery(battery.capacity_kwh * (1.0 + u(pr.car_capacity_pct) / 100),
                          min(0.95, max(0.02, battery.soc + u(0.05))),
                          battery.max_dc_power_kw * (1.0 + u(0.1)))
    true_v = replace(v, model=model_name, length_m=body[0], width_m=body[1], height_m=body[2], color_rgb=color,
                     inlet=inlet, battery=battery)
    taper = float(rng.uniform(pr.car_taper_min, 0.85)) if pr.car_capacity_pct > 0 else 0.8
    return TrueCar(true_v, true_pose, True, model_name, taper, 1.0, math.inf,
                   float(rng.uniform(85.0, 110.0)) if pr.catalogue else 95.0)


def _unlisted_car(vid: str, spot, model: CarModel, pr: Profile, rng, u) -> TrueCar:
    lat, lon, yaw = u(pr.car_lat_m), u(pr.car_lon_m), math.radians(u(pr.car_yaw_deg))
    pose = spot.pose.compose(Pose2D(lon, lat, yaw))
    side = model.inlet_side
    if side in ("left", "right"):
        inlet = Inlet(model.inlet_type, side, model.inlet_height, model.inlet_pos, 0.0)
    else:
        inlet = Inlet(model.inlet_type, side, model.inlet_height, model.length if side == "rear" else 0.0,
                      model.inlet_pos)
    vehicle = Vehicle(vid, spot.id, model.name, model.length, model.width, model.height,
                      tuple(float(c) for c in rng.uniform(0.1, 0.9, 3)), inlet,
                      Battery(model.capacity_kwh, float(rng.uniform(0.2, 0.9)), model.max_dc_kw), None)
    return TrueCar(vehicle, pose, False, model.name, 0.8, 1.0, math.inf, 0.0)


def _lane_axes(garage: Garage):
    for lane in garage.lanes:
        p0, p1 = np.asarray(lane.start, float), np.asarray(lane.end, float)
        length = float(np.hypot(*(p1 - p0)))
        if length < 4.0:
            continue
        yield lane, p0, (p1 - p0) / length, length


def _lane_objects(garage: Garage, pr: Profile, rng, keep_clear, footprint) -> List[StaticObject]:
    n = int(rng.integers(0, pr.lane_objects_max + 1)) if pr.lane_objects_max else 0
    lanes = list(_lane_axes(garage))
    statics = [o.polygon for o in garage.static_obstacles()]
    out: List[StaticObject] = []
    tries = 0
    while len(out) < n and lanes and tries < 200:
        tries += 1
        lane, p0, axis, length = lanes[int(rng.integers(len(lanes)))]
        kind, size = ("cone", (0.35, 0.35, 0.7)) if rng.random() < 0.6 else ("trolley", (0.9, 0.55, 1.0))
        # Near one edge of the lane, so that a passage of at least 2.5 m stays open beside it.
        half = 0.5 * lane.width_m
        room = half - 0.5 * max(size[:2]) - 0.3
        if 2.0 * half - max(size[:2]) - 0.3 < 2.5 or room <= 0.0:
            continue
        s = float(rng.uniform(2.0, length - 2.0))
        off = float(rng.choice([-1.0, 1.0])) * room
        normal = np.array([-axis[1], axis[0]])
        c = p0 + s * axis + off * normal
        pose = Pose2D(float(c[0]), float(c[1]), float(rng.uniform(-math.pi, math.pi)))
        obj = StaticObject(f"{kind}_{len(out) + 1}", kind, pose, *size)
        poly = obj.polygon
        grown = rect_polygon(pose, size[0] + 1.0, size[1] + 1.0)
        if any(convex_polygons_intersect(grown, a) for a in keep_clear):
            continue
        if any(convex_polygons_intersect(poly, s_) for s_ in statics):
            continue
        if any(convex_polygons_intersect(grown, o.polygon) for o in out):
            continue
        out.append(obj)
    return out


def _pedestrians(garage: Garage, pr: Profile, rng) -> List[Mover]:
    n = int(rng.integers(0, pr.pedestrians_max + 1)) if pr.pedestrians_max else 0
    lanes = list(_lane_axes(garage))
    out: List[Mover] = []
    for k in range(n):
        if not lanes:
            break
        lane, p0, axis, length = lanes[int(rng.integers(len(lanes)))]
        normal = np.array([-axis[1], axis[0]])
        half = 0.5 * lane.width_m - 0.4
        if rng.random() < 0.5:  # along the lane, near one side
            off = float(rng.uniform(-half, half))
            a = float(rng.uniform(0.0, max(0.1, length - 10.0)))
            b = min(length, a + float(rng.uniform(8.0, 25.0)))
            pts = (p0 + a * axis + off * normal, p0 + b * axis + off * normal)
        else:  # across the lane
            s = float(rng.uniform(1.0, length - 1.0))
            pts = (p0 + s * axis - half * normal, p0 + s * axis + half * normal)
        out.append(Mover(f"person_{k + 1}", "pedestrian", tuple((float(p[0]), float(p[1])) for p in pts),
                         float(rng.uniform(0.8, 1.5)), float(rng.uniform(0.0, 600.0)),
                         float(rng.uniform(2.0, 20.0)), False))
    return out


def _pull_out(garage: Garage, car: TrueCar, rng) -> Optional[Mover]:
    """A parked car that backs out of its spot into the nearest lane and drives to the lane's end."""
    best = None
    for lane, p0, axis, length in _lane_axes(garage):
        c = np.array([car.pose.x, car.pose.y])
        s = float(np.clip(np.dot(c - p0, axis), 0.0, length))
        foot = p0 + s * axis
        dist = float(np.hypot(*(c - foot)))
        if best is None or dist < best[0]:
            best = (dist, lane, p0, axis, length, s, foot)
    if best is None or best[0] > 8.0:
        return None
    _, lane, p0, axis, length, s, foot = best
    end = p0 + (length if rng.random() < 0.5 else 0.0) * axis
    pts = ((car.pose.x, car.pose.y), (float(foot[0]), float(foot[1])), (float(end[0]), float(end[1])))
    v = car.vehicle
    return Mover(f"leaving_{v.id}", "car", pts, 1.5, float(rng.uniform(120.0, 1200.0)), 0.0, True,
                 length_m=v.length_m, width_m=v.width_m)


def true_inlet_pose(car: TrueCar) -> np.ndarray:
    """T_map_inlet (4x4) of a true car."""
    from ..core.garage.garage import inlet_in_vehicle

    return car.pose.to_matrix() @ inlet_in_vehicle(car.vehicle)
