"""Scan localization against the garage's static structure: a particle filter in the manner of AMCL, refined by
scan-to-map matching.

Frames and units: poses are ``base_link`` in ``map`` (m, rad); odometry poses are ``base_link`` in ``odom``; scan
points are (N, 2) in ``base_link`` (metres).

How it works (hand-written: no maintained Python AMCL exists; the design follows AMCL's published models):

- **Map.** Only walls and pillars (``static_structure_grid``): parked cars are not where the file says and must not
  pull the estimate. The map becomes a *signed* distance field at ``resolution_m`` (distance to the nearest
  obstacle surface outside, to the nearest free space inside), so a beam end inside a wall scores badly too.
- **Motion.** AMCL's odometry model for a differential drive (rotate, translate, rotate), with noise proportional
  to the motion (``alpha1..4``).
- **Measurement.** AMCL's likelihood field: each beam end scores ``z_hit * N(d; sigma_hit) + z_rand`` at its
  distance ``d`` from the map; the ``z_rand`` floor makes a return from a person or an unlisted car cost a bounded
  amount (outlier rejection). Beam skipping as in AMCL: beams that most particles cannot explain are dropped from
  the update, so a whole car side seen by every particle off the map does not skew the weights.
- **Refinement.** The particle mean is refined by Gauss-Newton on the bilinear distance field over the inlier beams
  (within ``inlier_distance_m``), with the particle cloud's spread as a prior: precise where the scan constrains the
  pose, the filter's estimate where it does not (a long corridor).
- **Lost and recovery.** Behind parked cars few beams reach a wall, so few inliers alone prove nothing. The scan
  *contradicts* the map when beams reach farther than a wall that the map puts in their way (traced through the
  distance field from the laser): the robot cannot be where it thinks. When more than ``lost_contradiction_fraction``
  of the judged beams contradict, or fewer than ``min_inliers`` beams fit while the map says at least
  ``min_inliers`` should, for ``lost_after_scans`` scans in a row, the status is LOST and the cloud is widened around
  the last good estimate; the filter then keeps updating every scan (even standing still) until the cloud has
  converged and the scan fits clearly again (``recover_min_inliers``, ``recover_inlier_fraction``): LOCALIZED.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ..geometry import Pose2D, wrap_angle
from .occupancy import OCCUPIED, OccupancyGrid, from_polygons

INITIALIZING = "initializing"
LOCALIZED = "localized"
LOST = "lost"


class LocalizationError(ValueError):
    """Bad parameters, a non-finite pose or malformed scan points."""


def static_structure_grid(garage, resolution_m: float) -> OccupancyGrid:
    """Walls and pillars of ``garage`` (no parked cars, no keep-out zones) as an occupancy grid over its extent,
    with every free region not connected to the depot's made solid: outside an L or T level's outline, or behind a
    wall set in from the map's edge. No scan can see there, and a thin wall with free space behind it would offer
    its back face as a second match one wall thickness away."""
    polys = [o.polygon for o in garage.static_obstacles() if o.kind in ("wall", "pillar")]
    grid = from_polygons(garage.size_m, resolution_m, polys)
    depot = getattr(garage, "depot", None)
    if depot is not None:
        r, c = grid.world_to_cell(depot.pose.x, depot.pose.y)
        free = (~grid.occupied_mask()).astype(np.uint8)
        if grid.cell_in_bounds(r, c) and free[r, c]:
            mask = np.zeros((free.shape[0] + 2, free.shape[1] + 2), dtype=np.uint8)
            cv2.floodFill(free, mask, (int(c), int(r)), 2, flags=4)  # 4-connected: no leak through a corner
            grid.data[free == 1] = OCCUPIED  # free but not reached from the depot
    return grid


def signed_distance_field(grid: OccupancyGrid) -> np.ndarray:
    """Float32 (height, width): metres from each cell centre to the nearest obstacle *surface* (cell boundary),
    positive outside and inside obstacles alike. The map's border is not an obstacle here."""
    occ = grid.occupied_mask()
    res = grid.resolution_m
    free = (~occ).astype(np.uint8)
    if not occ.any():
        return np.full(occ.shape, 1e3, dtype=np.float32)
    d_out = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # to the nearest occupied centre
    d_in = cv2.distanceTransform(occ.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # to the nearest free
    # Centre-to-centre distances overshoot the surface by half a cell.
    field = np.where(occ, d_in, d_out).astype(np.float32) * res - 0.5 * res
    return np.maximum(field, 0.0)


@dataclass
class LocalizerParams:
    """Tuning (SI units). Defaults suit a 360-beam lidar at 10 Hz with a few centimetres of noise."""

    n_particles: int = 500
    max_beams: int = 120  # beams used per particle update (evenly subsampled)
    sigma_hit_m: float = 0.08
    z_hit: float = 0.8
    z_rand: float = 0.2
    likelihood_scale: float = 0.25  # exponent on the per-beam product: beams are not independent
    alpha1: float = 0.1  # rotation noise from rotation
    alpha2: float = 0.05  # rotation noise from translation (rad per m)
    alpha3: float = 0.05  # translation noise from translation
    alpha4: float = 0.05  # translation noise from rotation (m per rad)
    update_min_d_m: float = 0.05
    update_min_a_rad: float = 0.05
    converge_scans: int = 8  # filter updates without motion right after a reset
    beam_skip_distance_m: float = 0.3
    beam_skip_threshold: float = 0.3
    beam_skip_error_threshold: float = 0.9
    inlier_distance_m: float = 0.12
    min_inliers: int = 12
    lost_inlier_fraction: float = 0.08
    lost_after_scans: int = 10
    lost_contradiction_fraction: float = 0.25
    contradiction_margin_m: float = 0.3  # a beam must pass this far beyond the wall the map expects
    recover_inlier_fraction: float = 0.2  # a lost filter must fit this well (and converge) to count as localized
    recover_min_inliers: int = 25
    recover_max_contradiction_fraction: float = 0.2  # a recovered pose must agree with the map
    recovery_sigma_xy_m: float = 0.6
    recovery_sigma_yaw_rad: float = 0.2
    converged_sigma_xy_m: float = 0.15
    converged_sigma_yaw_rad: float = 0.06
    refine_iterations: int = 8
    refine_sigma_m: float = 0.03  # assumed beam-end noise for the refinement (m)
    prior_floor_xy_m: float = 0.02
    prior_floor_yaw_rad: float = 0.005
    roughening_xy_m: float = 0.01  # jitter after resampling while standing still
    roughening_yaw_rad: float = 0.004

    def validate(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
                raise LocalizationError(f"LocalizerParams.{name} must be a non-negative number, got {value!r}")
        if self.n_particles < 10 or self.max_beams < 4:
            raise LocalizationError("n_particles must be >= 10 and max_beams >= 4")
        if self.sigma_hit_m <= 0.0 or self.refine_sigma_m <= 0.0 or self.z_hit + self.z_rand <= 0.0:
            raise LocalizationError("sigma_hit_m, refine_sigma_m and z_hit + z_rand must be positive")


@dataclass(frozen=True)
class LocalizationEstimate:
    """The estimate after a scan: ``pose`` (map), ``covariance`` 3x3 over (x, y, yaw), ``status``, the fit
    (``inlier_fraction`` of beams within the inlier distance, ``inliers`` count), whether the filter updated, and
    the beams ``judged`` against the map and ``contradicting`` it."""

    pose: Pose2D
    covariance: np.ndarray
    status: str
    inlier_fraction: float
    inliers: int
    updated: bool
    judged: int = 0
    contradicting: int = 0


@dataclass
class _Cloud:
    xy: np.ndarray  # (P, 2)
    yaw: np.ndarray  # (P,)
    w: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (P,) normalised


class ScanLocalizer:
    """Particle filter plus scan refinement on a static-structure grid (see the module docstring).

    Use: ``reset(pose, sigma_xy, sigma_yaw)``, then for every scan ``predict(odom_pose)`` with the odometry pose at
    the scan's time and ``update(points_base)``. ``pose``/``status`` hold the latest estimate.
    """

    def __init__(self, grid: OccupancyGrid, params: Optional[LocalizerParams] = None, seed: int = 0):
        self.params = params or LocalizerParams()
        self.params.validate()
        self.grid = grid
        self.field = signed_distance_field(grid)
        self._res = grid.resolution_m
        self._ox, self._oy = grid.origin_xy
        self._h, self._w = self.field.shape
        self._far = float(4.0 * self.params.sigma_hit_m + self.params.beam_skip_distance_m)
        # The field framed by one cell of "far" and flattened: a lookup clips its indices into the frame instead
        # of masking (off the map reads as far), which makes the lookup about four times as fast.
        pad = np.full((self._h + 2, self._w + 2), self._far, dtype=np.float32)
        pad[1:-1, 1:-1] = self.field
        self._flat = pad.ravel()
        self.rng = np.random.default_rng(seed)
        self._cloud: Optional[_Cloud] = None
        self._odom: Optional[Pose2D] = None
        self._moved = (0.0, 0.0)
        self._pending_converge = 0
        self._bad_scans = 0
        self.status = INITIALIZING
        self.pose: Optional[Pose2D] = None
        self.covariance = np.diag([1.0, 1.0, 0.1])
        self._last_good: Optional[Pose2D] = None

    # ------------------------------------------------------------------ set-up
    def reset(self, pose: Pose2D, sigma_xy_m: float, sigma_yaw_rad: float, uniform: bool = True) -> None:
        """Spread the particles around ``pose``: uniformly within ±sigma (``uniform``) or normally with that sigma."""
        for v in (pose.x, pose.y, pose.yaw, sigma_xy_m, sigma_yaw_rad):
            if not math.isfinite(v):
                raise LocalizationError("reset needs a finite pose and finite spreads")
        n = int(self.params.n_particles)
        if uniform:
            dxy = self.rng.uniform(-1.0, 1.0, (n, 2)) * sigma_xy_m
            dyaw = self.rng.uniform(-1.0, 1.0, n) * sigma_yaw_rad
        else:
            dxy = self.rng.normal(0.0, 1.0, (n, 2)) * sigma_xy_m
            dyaw = self.rng.normal(0.0, 1.0, n) * sigma_yaw_rad
        self._cloud = _Cloud(np.array([pose.x, pose.y]) + dxy, pose.yaw + dyaw, np.full(n, 1.0 / n))
        self.pose = pose
        self._last_good = pose
        self.covariance = np.diag([sigma_xy_m ** 2, sigma_xy_m ** 2, sigma_yaw_rad ** 2])
        self._pending_converge = int(self.params.converge_scans)
        self._bad_scans = 0
        self.status = INITIALIZING

    # ------------------------------------------------------------------ motion
    def predict(self, odom_pose: Pose2D) -> None:
        """Move the particles by the odometry increment since the previous call (AMCL's diff-drive model)."""
        if not (math.isfinite(odom_pose.x) and math.isfinite(odom_pose.y) and math.isfinite(odom_pose.yaw)):
            raise LocalizationError("odometry pose must be finite")
        prev, self._odom = self._odom, odom_pose
        if prev is None or self._cloud is None:
            return
        delta = prev.inverse().compose(odom_pose)  # in the previous base frame
        trans = math.hypot(delta.x, delta.y)
        if trans < 1e-6 and abs(delta.yaw) < 1e-7:
            return
        self._moved = (self._moved[0] + trans, self._moved[1] + abs(delta.yaw))
        p = self.params
        # Backwards motion: the first rotation is measured from the reversed heading.
        rot1 = math.atan2(delta.y, delta.x) if trans > 1e-3 else 0.0
        if abs(wrap_angle(rot1)) > 0.5 * math.pi:
            rot1 = wrap_angle(rot1 - math.pi)
            trans = -trans
        rot2 = wrap_angle(delta.yaw - rot1)
        r1, r2 = min(abs(rot1), abs(wrap_angle(rot1 - math.pi))), min(abs(rot2), abs(wrap_angle(rot2 - math.pi)))
        n = len(self._cloud.yaw)
        s_rot1 = math.sqrt(p.alpha1 * r1 ** 2 + p.alpha2 * trans ** 2)
        s_trans = math.sqrt(p.alpha3 * trans ** 2 + p.alpha4 * (r1 ** 2 + r2 ** 2))
        s_rot2 = math.sqrt(p.alpha1 * r2 ** 2 + p.alpha2 * trans ** 2)
        h_rot1 = rot1 - self.rng.normal(0.0, s_rot1, n) if s_rot1 > 0 else np.full(n, rot1)
        h_trans = trans - self.rng.normal(0.0, s_trans, n) if s_trans > 0 else np.full(n, trans)
        h_rot2 = rot2 - self.rng.normal(0.0, s_rot2, n) if s_rot2 > 0 else np.full(n, rot2)
        c = self._cloud
        heading = c.yaw + h_rot1
        c.xy = c.xy + np.stack([h_trans * np.cos(heading), h_trans * np.sin(heading)], axis=1)
        c.yaw = _wrap(c.yaw + h_rot1 + h_rot2)
        if self.pose is not None:
            self.pose = self.pose.compose(delta)
            if self._last_good is not None:  # recovery spreads around where the last good pose has moved to
                self._last_good = self._last_good.compose(delta)
            g = self._motion_var(trans, delta.yaw)
            self.covariance = self.covariance + np.diag([g[0], g[0], g[1]])

    def _motion_var(self, trans: float, dyaw: float) -> tuple:
        p = self.params
        return (p.alpha3 * trans ** 2 + p.alpha4 * dyaw ** 2, p.alpha1 * dyaw ** 2 + p.alpha2 * trans ** 2)

    # ------------------------------------------------------------------ measurement
    def update(self, points_base: np.ndarray, sensor_xy=(0.0, 0.0)) -> LocalizationEstimate:
        """Weigh the particles by the scan (points in base_link; ``sensor_xy`` the laser's position in base_link),
        resample, refine; returns the estimate."""
        if self._cloud is None:
            raise LocalizationError("update() before reset()")
        pts = np.asarray(points_base, dtype=float).reshape(-1, 2)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        p = self.params
        if len(pts) > p.max_beams:
            pts = pts[np.linspace(0, len(pts) - 1, int(p.max_beams)).astype(int)]
        moved = self._moved[0] >= p.update_min_d_m or self._moved[1] >= p.update_min_a_rad
        do_filter = len(pts) >= 4 and (moved or self._pending_converge > 0 or self.status == LOST)
        if do_filter:
            self._filter(pts, still=not moved)
            self._moved = (0.0, 0.0)
            self._pending_converge = max(0, self._pending_converge - 1)
        mean, cov = self._cloud_stats()
        if self.status != LOST or self._converged(cov):
            prior = self.pose if (self.pose is not None and self.status == LOCALIZED and not do_filter) else mean
            prior_cov = self.covariance if prior is self.pose else cov
            pose, cov_ref, inl, frac = self._refine(pts, prior, prior_cov)
        else:
            pose, cov_ref = mean, cov
            inl, frac = self._fit(pts, mean)
        judged, contra = self._contradictions(pts, pose, sensor_xy)
        contradicted = judged >= 10 and contra > p.lost_contradiction_fraction * judged
        starved = inl < p.min_inliers and judged >= p.min_inliers
        good = not (contradicted or starved)
        self._bad_scans = 0 if good else self._bad_scans + 1
        if self.status == LOST:
            if (inl >= p.recover_min_inliers and frac >= p.recover_inlier_fraction and self._converged(cov)
                    and self._pending_converge == 0 and judged > 0
                    and contra <= p.recover_max_contradiction_fraction * judged):
                self.status = LOCALIZED
        elif self._bad_scans >= p.lost_after_scans:
            self.status = LOST
            self._spread_for_recovery()
        elif good and self._pending_converge == 0 and self._converged(cov):
            self.status = LOCALIZED
        if self.status != LOST:
            if good or self.pose is None or self.status != LOCALIZED:
                self.pose, self.covariance = pose, cov_ref
            # A scan that contradicts the map must not pull the pose: odometry carries it until it fits again.
            if good:
                self._last_good = self.pose
        else:
            self.pose, self.covariance = mean, cov
        return LocalizationEstimate(self.pose, self.covariance.copy(), self.status, frac, inl, do_filter, judged,
                                    contra)

    def _filter(self, pts: np.ndarray, still: bool) -> None:
        p = self.params
        c = self._cloud
        d = self._distances(pts, c.xy, c.yaw)  # (P, B)
        # Beam skipping: keep beams that at least beam_skip_threshold of the particles explain.
        explained = (d < p.beam_skip_distance_m).mean(axis=0)
        keep = explained >= p.beam_skip_threshold
        if keep.mean() < 1.0 - p.beam_skip_error_threshold:
            keep[:] = True  # nearly nothing explained: the filter is off, use every beam
        d = d[:, keep]
        like = p.z_hit * np.exp(-0.5 * (d / p.sigma_hit_m) ** 2) + p.z_rand
        logw = p.likelihood_scale * np.log(like).sum(axis=1)
        logw -= logw.max()
        w = c.w * np.exp(logw)
        total = w.sum()
        c.w = w / total if total > 0 and math.isfinite(total) else np.full(len(w), 1.0 / len(w))
        n_eff = 1.0 / float(np.sum(c.w ** 2))
        if n_eff < 0.5 * len(c.w):
            self._resample(jitter=still)

    def _resample(self, jitter: bool) -> None:
        c = self._cloud
        n = len(c.w)
        positions = (self.rng.random() + np.arange(n)) / n  # low-variance (systematic) resampling
        idx = np.minimum(np.searchsorted(np.cumsum(c.w), positions), n - 1)
        c.xy, c.yaw = c.xy[idx].copy(), c.yaw[idx].copy()
        c.w = np.full(n, 1.0 / n)
        if jitter:  # without motion noise a resampled cloud would collapse onto a few copies
            c.xy += self.rng.normal(0.0, self.params.roughening_xy_m, (n, 2))
            c.yaw = _wrap(c.yaw + self.rng.normal(0.0, self.params.roughening_yaw_rad, n))

    def _spread_for_recovery(self) -> None:
        p = self.params
        centre = self._last_good or self.pose
        if centre is None:
            return
        self.reset(centre, p.recovery_sigma_xy_m, p.recovery_sigma_yaw_rad, uniform=False)
        self.status = LOST

    def _cloud_stats(self) -> tuple:
        c = self._cloud
        w = c.w
        mx, my = float(w @ c.xy[:, 0]), float(w @ c.xy[:, 1])
        s, co = float(w @ np.sin(c.yaw)), float(w @ np.cos(c.yaw))
        myaw = math.atan2(s, co)
        dev = np.stack([c.xy[:, 0] - mx, c.xy[:, 1] - my, _wrap(c.yaw - myaw)], axis=1)
        cov = (dev * w[:, None]).T @ dev
        return Pose2D(mx, my, myaw), cov

    def _converged(self, cov: np.ndarray) -> bool:
        p = self.params
        return (math.sqrt(max(cov[0, 0], cov[1, 1])) <= p.converged_sigma_xy_m
                and math.sqrt(cov[2, 2]) <= p.converged_sigma_yaw_rad)

    # ------------------------------------------------------------------ distance field
    def _distances(self, pts: np.ndarray, xy: np.ndarray, yaw: np.ndarray) -> np.ndarray:
        """Distance-field value (m) at every beam end for every pose: (P, B); off the map counts as far."""
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        wx = xy[:, 0:1] + c * pts[None, :, 0] - s * pts[None, :, 1]
        wy = xy[:, 1:2] + s * pts[None, :, 0] + c * pts[None, :, 1]
        col = np.floor((wx - self._ox) / self._res).astype(np.int64)
        row = np.floor((wy - self._oy) / self._res).astype(np.int64)
        np.clip(col + 1, 0, self._w + 1, out=col)
        np.clip(row + 1, 0, self._h + 1, out=row)
        row *= self._w + 2
        row += col
        return self._flat[row]

    def _bilinear(self, wx: np.ndarray, wy: np.ndarray) -> tuple:
        """Field value and gradient (m, unitless) at map points, bilinear between cell centres; (value, gx, gy, ok)."""
        u = (wx - self._ox) / self._res - 0.5
        v = (wy - self._oy) / self._res - 0.5
        c0, r0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        ok = (c0 >= 0) & (c0 < self._w - 1) & (r0 >= 0) & (r0 < self._h - 1)
        c0, r0 = np.where(ok, c0, 0), np.where(ok, r0, 0)
        fu, fv = u - c0, v - r0
        f = self.field
        f00, f01 = f[r0, c0], f[r0, c0 + 1]
        f10, f11 = f[r0 + 1, c0], f[r0 + 1, c0 + 1]
        val = (f00 * (1 - fu) * (1 - fv) + f01 * fu * (1 - fv) + f10 * (1 - fu) * fv + f11 * fu * fv)
        gx = ((f01 - f00) * (1 - fv) + (f11 - f10) * fv) / self._res
        gy = ((f10 - f00) * (1 - fu) + (f11 - f01) * fu) / self._res
        return val, gx, gy, ok

    def _contradictions(self, pts: np.ndarray, pose: Pose2D, sensor_xy, iterations: int = 80) -> tuple:
        """(beams judged, beams contradicting the map) at ``pose``: a beam is judged when tracing the distance field
        from the laser meets a wall before the beam's return or within the trace; it contradicts when its return
        lies more than ``contradiction_margin_m`` beyond that wall."""
        if len(pts) == 0:
            return 0, 0
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        ox = pose.x + c * sensor_xy[0] - s * sensor_xy[1]
        oy = pose.y + s * sensor_xy[0] + c * sensor_xy[1]
        ex = pose.x + c * pts[:, 0] - s * pts[:, 1]
        ey = pose.y + s * pts[:, 0] + c * pts[:, 1]
        r = np.hypot(ex - ox, ey - oy)
        ok = r > 0.2
        dx, dy, r = (ex - ox)[ok] / r[ok], (ey - oy)[ok] / r[ok], r[ok]
        margin = self.params.contradiction_margin_m
        t = np.full(len(r), 0.15)
        hit = np.full(len(r), np.inf)
        active = np.ones(len(r), dtype=bool)
        for _ in range(iterations):
            if not active.any():
                break
            idx = np.nonzero(active)[0]
            d = self._distances(np.stack([ox + t[idx] * dx[idx] - pose.x, oy + t[idx] * dy[idx] - pose.y], axis=1)
                                @ np.array([[c, -s], [s, c]]), np.array([[pose.x, pose.y]]),
                                np.array([pose.yaw]))[0]
            wall = d < self._res
            hit[idx[wall]] = t[idx[wall]]
            t[idx] += np.maximum(d, self._res)
            active[idx[wall | (t[idx] > r[idx] + margin)]] = False
        judged = np.isfinite(hit)
        return int(np.count_nonzero(judged)), int(np.count_nonzero(judged & (r > hit + margin)))

    def _fit(self, pts: np.ndarray, pose: Pose2D) -> tuple:
        if len(pts) == 0:
            return 0, 0.0
        d = self._distances(pts, np.array([[pose.x, pose.y]]), np.array([pose.yaw]))[0]
        inl = int(np.count_nonzero(d < self.params.inlier_distance_m))
        return inl, inl / len(pts)

    def _refine(self, pts: np.ndarray, prior: Pose2D, prior_cov: np.ndarray) -> tuple:
        """Gauss-Newton on the distance field over the inlier beams, with ``prior`` as a Gaussian prior."""
        p = self.params
        if len(pts) == 0:
            return prior, prior_cov, 0, 0.0
        floor = np.array([p.prior_floor_xy_m ** 2, p.prior_floor_xy_m ** 2, p.prior_floor_yaw_rad ** 2])
        pc = 0.5 * (prior_cov + prior_cov.T) + np.diag(floor)
        try:
            prior_info = np.linalg.inv(pc)
        except np.linalg.LinAlgError:
            prior_info = np.diag(1.0 / floor)
        x = np.array([prior.x, prior.y, prior.yaw])
        x0 = x.copy()
        w_meas = 1.0 / p.refine_sigma_m ** 2
        info = prior_info
        for _ in range(int(p.refine_iterations)):
            c, s = math.cos(x[2]), math.sin(x[2])
            wx = x[0] + c * pts[:, 0] - s * pts[:, 1]
            wy = x[1] + s * pts[:, 0] + c * pts[:, 1]
            val, gx, gy, ok = self._bilinear(wx, wy)
            use = ok & (val < p.inlier_distance_m)
            if np.count_nonzero(use) < 3:
                break
            dxdth = -s * pts[:, 0] - c * pts[:, 1]
            dydth = c * pts[:, 0] - s * pts[:, 1]
            J = np.stack([gx, gy, gx * dxdth + gy * dydth], axis=1)[use]
            r = val[use]
            dx = x - x0
            dx[2] = wrap_angle(dx[2])
            info = w_meas * (J.T @ J) + prior_info
            grad = w_meas * (J.T @ r) + prior_info @ dx
            try:
                step = -np.linalg.solve(info, grad)
            except np.linalg.LinAlgError:
                break
            x = x + step
            if np.hypot(step[0], step[1]) < 1e-5 and abs(step[2]) < 1e-6:
                break
        pose = Pose2D(x[0], x[1], wrap_angle(x[2]))
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            cov = pc
        inl, frac = self._fit(pts, pose)
        return pose, cov, inl, frac


class PoseHistory:
    """Recent timestamped poses (s, Pose2D), for looking up the odometry pose at a scan's time."""

    def __init__(self, horizon_s: float = 2.0):
        self.horizon_s = horizon_s
        self._t: list = []
        self._p: list = []

    def add(self, t: float, pose: Pose2D) -> None:
        if self._t and t < self._t[-1]:
            self._t.clear()  # time went backwards (a restarted clock): start again
            self._p.clear()
        self._t.append(t)
        self._p.append(pose)
        while len(self._t) > 2 and self._t[0] < t - self.horizon_s:
            self._t.pop(0)
            self._p.pop(0)

    def latest(self) -> Optional[Pose2D]:
        return self._p[-1] if self._p else None

    def newest_t(self) -> Optional[float]:
        """The time (s) of the newest stored pose; None when empty."""
        return self._t[-1] if self._t else None

    def at(self, t: float) -> Optional[Pose2D]:
        """The pose at time ``t``, interpolated; the nearest end outside the stored span; None when empty."""
        if not self._t:
            return None
        if t <= self._t[0]:
            return self._p[0]
        if t >= self._t[-1]:
            return self._p[-1]
        i = int(np.searchsorted(self._t, t))
        t0, t1 = self._t[i - 1], self._t[i]
        a, b = self._p[i - 1], self._p[i]
        f = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return Pose2D(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y), wrap_angle(a.yaw + f * wrap_angle(b.yaw - a.yaw)))


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2.0 * np.pi) - np.pi
