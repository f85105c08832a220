"""Where a parked car really stands: fit its body outline (a rectangle of the known size) to scan points.

Pure (numpy + scipy). Frames: map, metres, radians. The car's pose is its vehicle frame (centre of the footprint, x
towards the front), as in ``core/garage``. The fit minimises, with a robust (soft-L1) loss, the distance of every
point near the expected car to the rectangle's outline, plus a weak prior towards the expected pose so that a
direction the visible sides do not constrain (e.g. along the car when only its long side is seen) stays at the
file's value. scipy's ``least_squares`` does the minimisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.optimize import least_squares

from ..geometry import Pose2D, wrap_angle


@dataclass(frozen=True)
class CarFit:
    """A fitted car pose (map), its body ``length_m`` x ``width_m`` (the file's unless ``fit_size``), the number of
    scan points used and their RMS distance (m) to the outline."""

    pose: Pose2D
    points: int
    rms_m: float
    length_m: float = 0.0
    width_m: float = 0.0

    def carry(self, goal_in_car: Pose2D, length_m: float, width_m: float) -> Pose2D:
        """A pose given in the frame of the expected car (``length_m`` x ``width_m``) carried onto the fitted car,
        keeping its distance to the nearest face along each axis (a staging pose stays at its gap from the side and
        its distance from the bumper when the real body is longer or wider)."""
        gx = goal_in_car.x + math.copysign(0.5 * (self.length_m - length_m), goal_in_car.x)
        gy = goal_in_car.y + math.copysign(0.5 * (self.width_m - width_m), goal_in_car.y)
        return self.pose.compose(Pose2D(gx, gy, goal_in_car.yaw))


def median_fit(fits) -> Optional[CarFit]:
    """The element-wise median of several fits of one car (pose, size), robust to a bad view among them."""
    fits = [f for f in fits if f is not None]
    if not fits:
        return None
    a = np.array([[f.pose.x, f.pose.y, f.length_m, f.width_m] for f in fits])
    yaws = np.array([f.pose.yaw for f in fits])
    ref = yaws[0]
    yaw = ref + float(np.median([wrap_angle(y - ref) for y in yaws]))
    x, y, length, width = np.median(a, axis=0)
    return CarFit(Pose2D(x, y, wrap_angle(yaw)), int(sum(f.points for f in fits)),
                  float(np.median([f.rms_m for f in fits])), float(length), float(width))


def outline_distance(pts_car: np.ndarray, length_m: float, width_m: float) -> np.ndarray:
    """Distance (m) of points (N, 2) in the car frame to the outline of a centred ``length_m`` x ``width_m``
    rectangle (inside points count by their distance to the nearest side)."""
    hl, hw = 0.5 * length_m, 0.5 * width_m
    ax, ay = np.abs(pts_car[:, 0]) - hl, np.abs(pts_car[:, 1]) - hw
    outside = np.hypot(np.maximum(ax, 0.0), np.maximum(ay, 0.0))
    inside = np.minimum(-ax, -ay)
    return np.where((ax > 0.0) | (ay > 0.0), outside, inside)


def fit_car(points_map: np.ndarray, expected: Pose2D, length_m: float, width_m: float,
            search_margin_m: float = 0.6, min_points: int = 15, prior_sigma_m: float = 0.5,
            prior_sigma_yaw_rad: float = 0.2, max_rms_m: float = 0.05, fit_size: bool = False,
            size_sigma_m: float = 0.3) -> Optional[CarFit]:
    """Fit the car outline to the scan points (N, 2, map) lying within ``search_margin_m`` of the expected
    footprint. ``fit_size`` also fits the body's length and width (a different model than the file says), held
    near the file's by ``size_sigma_m``. None when too few points support it or the fit is poor (RMS above
    ``max_rms_m``)."""
    pts = np.asarray(points_map, float).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < min_points:
        return None
    local = expected.inverse().transform_points(pts)
    hl, hw = 0.5 * length_m + search_margin_m, 0.5 * width_m + search_margin_m
    near = (np.abs(local[:, 0]) <= hl) & (np.abs(local[:, 1]) <= hw)
    local = local[near]
    if len(local) < min_points:
        return None
    # Each prior weighs as much as a few points off by their noise (~3 cm): enough to hold a direction no face
    # constrains, far too little to hold against a seen face.
    w_prior = np.array([1.0 / prior_sigma_m, 1.0 / prior_sigma_m, 1.0 / prior_sigma_yaw_rad]
                       + ([1.0 / size_sigma_m] * 2 if fit_size else [])) * 0.06
    n_prior = len(w_prior)

    def residuals(x):
        c, s = math.cos(x[2]), math.sin(x[2])
        rel = local - x[:2]
        in_car = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], axis=1)
        dl, dw = (x[3], x[4]) if fit_size else (0.0, 0.0)
        return np.concatenate([outline_distance(in_car, length_m + dl, width_m + dw), w_prior * x])

    sol = least_squares(residuals, np.zeros(n_prior), loss="soft_l1", f_scale=0.03, max_nfev=80)
    d = residuals(sol.x)[:-n_prior]
    inliers = d < 0.1
    if np.count_nonzero(inliers) < min_points:
        return None
    rms = float(np.sqrt(np.mean(d[inliers] ** 2)))
    if rms > max_rms_m:
        return None
    pose = expected.compose(Pose2D(sol.x[0], sol.x[1], wrap_angle(sol.x[2])))
    dl, dw = (float(sol.x[3]), float(sol.x[4])) if fit_size else (0.0, 0.0)
    return CarFit(pose, int(np.count_nonzero(inliers)), rms, length_m + dl, width_m + dw)
