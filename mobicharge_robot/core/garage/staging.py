"""Staging: the pose where the robot stops beside a car so that its arm can reach the inlet.

The robot stands parallel to the car face that carries the inlet, with ``clearance_m`` between its side and that
face and its centre level with the inlet along the face (so the inlet is straight out of the robot's flank):

- side inlet (left/right): yaw = the car's yaw, i.e. the robot faces the same way as the car. Beside a right-side
  inlet the car is on the robot's left; beside a left-side inlet it is on the robot's right.
- front/rear inlet: yaw = (yaw of the face's outward normal) + pi/2, so the car is always on the robot's left.

All poses are ``base_link`` in the ``map`` frame (metres, radians). A pose whose footprint, grown by ``margin_m``,
touches a wall, a pillar, a parked car (the served one included, so ``clearance_m`` must exceed ``margin_m``) or a
keep-out zone, or leaves the garage, raises :class:`StagingError`.
"""
from __future__ import annotations

import math

import numpy as np

from .garage import Garage, Vehicle
from ..geometry import Pose2D, convex_polygons_intersect, invert_transform, point_in_polygon, rect_polygon, wrap_angle

STAGING_MARGIN_M = 0.05


class FailedToStage(Exception):
    """No usable staging pose (named after opennav_docking's failure of the same meaning)."""


class StagingError(FailedToStage):
    """No valid staging pose beside ``vehicle_id``'s inlet; ``reason`` says why (and ``blocker`` what is in the way)."""

    def __init__(self, vehicle_id: str, reason: str, blocker: str = ""):
        super().__init__(f"{vehicle_id}: {reason}")
        self.vehicle_id, self.reason, self.blocker = vehicle_id, reason, blocker


def staging_pose(garage: Garage, vehicle: Vehicle, robot_length_m: float, robot_width_m: float,
                 clearance_m: float = 0.35, margin_m: float = STAGING_MARGIN_M) -> Pose2D:
    """The ``base_link`` pose (map frame) beside ``vehicle``'s inlet.

    ``robot_length_m`` x ``robot_width_m`` is the robot footprint (along its x and y); ``clearance_m`` is the gap
    between the robot's side and the car face. Raises StagingError when the footprint grown by ``margin_m`` on every
    side leaves the garage or touches a static obstacle or keep-out zone; ValueError for non-positive sizes.
    """
    for name, value in (("robot_length_m", robot_length_m), ("robot_width_m", robot_width_m),
                        ("clearance_m", clearance_m)):
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name} must be a positive number of metres, got {value!r}")
    if not (math.isfinite(margin_m) and margin_m >= 0.0):
        raise ValueError(f"margin_m must be a non-negative number of metres, got {margin_m!r}")

    T_map_inlet = garage.inlet_pose(vehicle)
    normal = T_map_inlet[:2, 2] / np.linalg.norm(T_map_inlet[:2, 2])  # the face's outward normal, horizontal
    centre = T_map_inlet[:2, 3] + (clearance_m + 0.5 * robot_width_m) * normal
    if vehicle.inlet.side in ("left", "right"):
        yaw = garage.vehicle_pose(vehicle).yaw
    else:
        yaw = wrap_angle(math.atan2(normal[1], normal[0]) + 0.5 * math.pi)
    pose = Pose2D(centre[0], centre[1], yaw)

    side = vehicle.inlet.side
    footprint = rect_polygon(pose, robot_length_m + 2.0 * margin_m, robot_width_m + 2.0 * margin_m)
    size_x, size_y = garage.size_m
    if (footprint[:, 0].min() < 0.0 or footprint[:, 1].min() < 0.0 or footprint[:, 0].max() > size_x
            or footprint[:, 1].max() > size_y):
        raise StagingError(vehicle.id, f"the staging pose beside the {side} inlet leaves the garage", "garage")
    for ob in garage.static_obstacles():
        if convex_polygons_intersect(footprint, ob.polygon):
            raise StagingError(vehicle.id, f"no room beside the {side} inlet: the robot would touch {ob.kind} "
                                           f"'{ob.id}'", ob.id)
    for zone in garage.zones:
        if zone.kind == "keep_out" and polygons_intersect(footprint, zone.polygon):
            raise StagingError(vehicle.id, f"the staging pose beside the {side} inlet lies in keep-out zone "
                                           f"'{zone.id}'", zone.id)
    return pose


def inlet_relative_to_robot(garage: Garage, vehicle: Vehicle, staging: Pose2D) -> np.ndarray:
    """T_base_inlet (4x4) expected from the garage description when ``base_link`` stands at ``staging`` (map)."""
    return invert_transform(staging.to_matrix()) @ garage.inlet_pose(vehicle)


def polygons_intersect(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two simple polygons (N, 2), convex or not, overlap or touch."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if point_in_polygon(a[0], b) or point_in_polygon(b[0], a):
        return True  # one inside the other, or at least one vertex inside: no edge needs to cross
    for p0, p1 in zip(a, np.roll(a, -1, axis=0)):
        for q0, q1 in zip(b, np.roll(b, -1, axis=0)):
            if _segments_intersect(p0, p1, q0, q1):
                return True
    return False


def _cross(o, a, b) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _segments_intersect(p0, p1, q0, q1) -> bool:
    d1, d2 = _cross(q0, q1, p0), _cross(q0, q1, p1)
    d3, d4 = _cross(p0, p1, q0), _cross(p0, p1, q1)
    if d1 * d2 < 0.0 and d3 * d4 < 0.0:
        return True  # a proper crossing

    def on_segment(a, b, c) -> bool:  # c collinear with a-b: is it within the segment's box?
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return ((d1 == 0 and on_segment(q0, q1, p0)) or (d2 == 0 and on_segment(q0, q1, p1))
            or (d3 == 0 and on_segment(p0, p1, q0)) or (d4 == 0 and on_segment(p0, p1, q1)))
