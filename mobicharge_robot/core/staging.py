"""Staging: where the robot stops beside a car so that its arm reaches the inlet (FailedToStage otherwise).

The robot stands parallel to the car face that carries the inlet, ``clearance_m`` between its side and that face,
its centre level with the inlet along the face. For a side inlet its yaw is the car's yaw (it drives in nose first,
as the car did); for a front or rear inlet its yaw is the inlet normal's yaw + pi/2.
"""
from __future__ import annotations

import math

import numpy as np

from .garage import Garage, Vehicle
from .geometry import Pose2D, convex_polygons_intersect, rect_polygon, wrap_angle


class StagingError(Exception):
    """FailedToStage: no valid staging pose beside the inlet; the message says why."""

    code = "FAILED_TO_STAGE"


def staging_pose(garage: Garage, vehicle: Vehicle, robot_length_m: float, robot_width_m: float,
                 clearance_m: float = 0.35, margin_m: float = 0.05) -> Pose2D:
    """The base_link pose (map frame) beside ``vehicle``'s inlet; raises StagingError when it is not free."""
    T = garage.inlet_pose(vehicle)
    normal = T[:2, 2] / max(np.linalg.norm(T[:2, 2]), 1e-12)
    offset = clearance_m + 0.5 * robot_width_m
    x, y = T[0, 3] + offset * normal[0], T[1, 3] + offset * normal[1]
    if vehicle.inlet.side in ("left", "right"):
        yaw = garage.vehicle_pose(vehicle).yaw
    else:
        yaw = wrap_angle(math.atan2(normal[1], normal[0]) + math.pi / 2)
    pose = Pose2D(x, y, yaw)
    fp = rect_polygon(pose, robot_length_m + 2 * margin_m, robot_width_m + 2 * margin_m)
    sx, sy = garage.size_m
    if fp[:, 0].min() < 0 or fp[:, 1].min() < 0 or fp[:, 0].max() > sx or fp[:, 1].max() > sy:
        raise StagingError(f"{vehicle.id}: the staging pose beside the {vehicle.inlet.side} inlet leaves the garage")
    for ob in garage.static_obstacles():
        if convex_polygons_intersect(fp, ob.polygon):
            raise StagingError(f"{vehicle.id}: no room beside the {vehicle.inlet.side} inlet: the robot would touch "
                               f"{ob.kind} '{ob.id}'")
    for poly in garage.keep_out_polygons():
        if convex_polygons_intersect(fp, poly):
            raise StagingError(f"{vehicle.id}: the staging pose lies in a keep-out zone")
    return pose


def inlet_relative_to_robot(garage: Garage, vehicle: Vehicle, staging: Pose2D) -> np.ndarray:
    """T_base_inlet expected from the garage description when the robot stands at ``staging``."""
    return np.linalg.inv(staging.to_matrix()) @ garage.inlet_pose(vehicle)
