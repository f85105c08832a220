"""Classical detection of a vehicle charge inlet in one RGB image, and a tracker that asks for consistent frames.

Pipeline of :func:`detect_port`:

1. Holes of either polarity, from two independent cues. (a) Regions: a morphological black-hat (dark features) and
   top-hat (bright features) of the grey image at three structuring-element sizes pick out features smaller than the
   element, whatever the face's shade: a hole may be darker than the face (shadowed) or brighter (metal pins lit by
   the ring light on a black face). Thresholds follow the image's own noise level. Each region is re-thresholded at a
   fraction of its own contrast, filled, and kept if it is a roughly elliptical, convex, plausibly sized blob; a
   crescent (the dark gap beside a pin tip seen obliquely) is fitted by its outer arc. (b) Rims: closed Canny edge
   contours that fit an ellipse, fitted by their outermost point in each direction (a hole's rim shows even when a
   lit pin, a dark gap and the face leave no region of one shade). A blob of a pin's size near the middle of a larger
   one becomes that hole's pin. Images wider than 800 px are searched at half resolution.
2. Correspondences (robust fitting over many holes): the hole centres are undistorted and matched to the model's hole
   pattern. Each hypothesis pairs two image blobs with two far-apart model holes of compatible relative size, which
   fixes a 2-D similarity transform (complex arithmetic, all pairs at once); the hypotheses that predict most other
   holes at the right place *and size* are refined with a homography and re-matched. Where the pattern's positions
   are symmetric (Type 2's hexagon), the holes' sizes must pick one orientation clearly. The matched holes must span
   enough of the pattern (a Type 2 face is not a CCS2 inlet).
3. Pose: IPPE (``cv2.solvePnPGeneric``) with the lens distortion gives both planar solutions; each one whose z axis
   faces the camera is refined with Levenberg-Marquardt. A bright blob is taken as the lit pin tip and fitted at its
   depth behind the face. A planar flip is settled by the reprojection error only when the alternative is much worse
   (a real inlet differs from its drawing by up to a millimetre), else by the pin tips' parallax (a pin tip sits
   behind the face, so it shows shifted inside its hole towards the camera's side). The chosen pose is refined on
   the hole centres *and* the pin-tip offsets together, because coplanar points alone fix a near-frontal tilt only to
   second order. Where nothing decides but the two refined solutions lie within a few degrees of each other, their
   mean is returned with an inflated covariance; else PortNotFound. Implausible distances or tilts, hole sizes that
   do not fit the pose, and large reprojection errors are rejected. The covariance counts the pixel noise and the
   model tolerance (0.5 mm per feature).

Frames: ``T_cam_inlet`` maps inlet-frame points (doc/architecture.md) into the camera optical frame; metres, radians.
Known limitation: the centre of a circle's image is not the image of its centre; for these hole sizes the bias is
below 0.15 mm at 0.2 m and is ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np
from scipy.optimize import least_squares

from .camera import CameraModel
from ..geometry import rotation_angle
from .inlets import InletModel

# ---- tuning (pixels unless named otherwise)
_KERNELS_PX = (15, 31, 61)  # black-hat element sizes: each finds holes smaller than itself
_MIN_CONTRAST = 8.0  # grey levels a hole must differ from its surroundings (at least; more in noisy images)
_CONTRAST_NOISE = 4.0  # ... and at least this many times the image noise
_REL_THRESHOLD = 0.22  # re-threshold each blob at this fraction of its contrast
_FLOOR = 4.0  # grey levels: lowest threshold on the black-hat (raised with the image noise)
_FLOOR_NOISE = 2.0
_HALF_RES_WIDTH = 800  # search wider images at half resolution
_EDGE_HI = 40.0  # Canny's upper threshold (Sobel magnitude: about 10 grey levels of step)
_EDGE_MAX_PX = 90  # rims larger than this are not holes
_RIM_BINS = 24  # directions in which the outermost edge point of a rim is kept
_MIN_AREA_PX, _MAX_AREA_PX = 8, 12000
_MIN_AXIS_RATIO = 0.35  # minor/major: a circle seen at up to ~70 deg
_MIN_SOLIDITY = 0.85
_MIN_CRESCENT_SOLIDITY = 0.45  # below _MIN_SOLIDITY a blob is tried as a crescent (a gap around an offset pin)
_MAX_CANDIDATES = 44
_SYMMETRY_MARGIN = 3.0  # the best symmetric assignment's size misfit must be this much below the next
_SYMMETRY_CACHE: dict = {}
_PIN_SIZE = (0.3, 0.85)
_TIP_MIN_RADIUS_PX = 3.0  # openings smaller than this show no measurable pin tip  # a blob this fraction of another's size, near its middle, is that hole's pin
_MISSING_PLAIN = 0.2  # an unmatched hole whose spot shows under this fraction of the matched holes' contrast: no inlet
_MIN_COVERAGE = 0.45  # matched holes' hull area / the whole pattern's
_N_ANCHOR_PAIRS = 6
_MATCH_TOL = 0.35  # of the model's smallest hole spacing
_SIZE_TOL = (0.7, 1.43)  # observed / predicted hole diameter (tight: sizes tell a pattern from its rotations)
_MAX_REPROJ_PX = 1.5
_SIZE_SPREAD_MAX = 1.3  # small holes' size ratio (observed / expected) over the large holes' ratio
_PIN_LEVEL = 0.7  # inside a hole, pin-tip pixels are below this fraction of the hole's black-hat contrast
_PIN_OFFSET_NOISE_PX = 0.15  # noise of a measured pin-tip offset
_OPENING_NOISE_PX = 0.1  # noise of a hole opening's centre
_CUT_WEIGHT = 6.0  # an opening whose pin tip is cut off by the rim counts with up to (1 + this) times the noise
_MODEL_TOL_M = 0.5e-3  # a real inlet's features differ from config/inlets.yaml by about this much
_PARALLAX_VOTE_MIN = 3.0  # votes (in noise units) needed to settle a planar flip by parallax
_FLIP_RATIO = 3.0  # without a parallax vote, the rejected IPPE solution must have this much more error...
_FLIP_SAME_RAD = math.radians(6.0)  # ...unless the two solutions are this close (no real ambiguity)
_FLIP_MEAN_RAD = math.radians(9.0)  # undecided solutions this close: return their mean
_DIST_RANGE_M = (0.05, 1.5)
_MAX_TILT_RAD = math.radians(60.0)


class PortNotFound(Exception):
    """No inlet was found; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Detection:
    """One inlet pose from one image.

    ``T_cam_inlet`` 4x4: inlet frame in the camera optical frame (m). ``reprojection_error_px``: RMS over the matched
    holes. ``confidence`` 0..1. ``n_points``: matched holes. ``keypoints_px`` (N, 2): the model's hole centres
    projected with the estimated pose, in model order. ``covariance`` 6x6 over (x, y, z, rx, ry, rz) of the pose in
    the camera frame (m, rad; rotation as a small rotation vector), first-order from the reprojection Jacobian.
    """

    T_cam_inlet: np.ndarray
    reprojection_error_px: float
    confidence: float
    n_points: int
    keypoints_px: np.ndarray
    covariance: Optional[np.ndarray] = None


@dataclass
class _Blob:
    center: np.ndarray  # distorted pixel (u, v)
    major: float  # ellipse full axes, pixels
    minor: float
    contrast: float  # black-hat (or top-hat) grey levels inside the hole
    patch: np.ndarray  # black-hat values around the blob (float32)
    filled: np.ndarray  # the opening, filled, in the patch (uint8 0/1)
    origin: tuple  # patch's top-left pixel (u, v)
    polarity: str = "dark"  # 'dark': darker than the face around it; 'bright': brighter; 'rim': an edge ellipse
    pin: Optional[np.ndarray] = None  # centre of a smaller blob inside this one (the pin tip), distorted pixels
    tip: Optional[np.ndarray] = None  # contrast centroid of what shows inside the opening (see _measure_tips)


# ------------------------------------------------------------------------------------------------ public API


def detect_port(image_rgb: np.ndarray, camera: CameraModel, inlet: InletModel) -> Detection:
    """Find ``inlet`` in ``image_rgb`` (H, W, 3) uint8 RGB taken by ``camera``; raises PortNotFound."""
    img = np.asarray(image_rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 16 or img.shape[1] < 16:
        raise PortNotFound(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    if img.shape[0] != camera.height or img.shape[1] != camera.width:
        raise PortNotFound(f"image is {img.shape[1]}x{img.shape[0]} but the camera model is "
                           f"{camera.width}x{camera.height}")
    grey = _grey(img)
    blobs = find_blobs(img, grey)
    n_model = len(inlet.keypoints)
    need = min_matches(n_model)
    if len(blobs) < need:
        raise PortNotFound(f"only {len(blobs)} hole-like blobs, need {need}")
    matches = _match_pattern(blobs, camera, inlet)
    if matches is None or len(matches) < need:
        got = 0 if matches is None else len(matches)
        raise PortNotFound(f"no {inlet.name} hole pattern ({got} of {n_model} holes matched, need {need})")
    if _symmetries(inlet) and len(matches) < n_model - 1:
        # A pattern whose positions repeat under rotation (a ring of equal studs matches Type 2's hexagon) is
        # accepted with at most one hole missing.
        raise PortNotFound(f"only {len(matches)} of {n_model} holes of the symmetric {inlet.name} pattern matched, "
                           f"need {n_model - 1}")
    matches = _resolve_symmetry(matches, blobs, inlet)
    coverage = _coverage(inlet, sorted(matches))
    if coverage < _MIN_COVERAGE:
        raise PortNotFound(f"matched holes span only {coverage:.0%} of the {inlet.name} pattern")
    _measure_tips(grey, [blobs[c] for c in matches.values()])
    det = _solve_pose(matches, blobs, camera, inlet)
    _check_missing_holes(grey, det, matches, camera, inlet)
    return det


def min_matches(n_model: int) -> int:
    """Holes that must be matched to accept a pattern: all but two, and never fewer than five."""
    return max(5, n_model - 2) if n_model > 5 else n_model


def _grey(image_rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)


def _measure_tips(grey: np.ndarray, blobs: List[_Blob]) -> None:
    """Where a matched rim shows something inside it (a pin tip of any shade) and no blob was found there, the
    contrast-weighted centroid of its inner part against the ring just inside the rim (``_Blob.tip``)."""
    h, w = grey.shape
    for b in blobs:
        if b.pin is not None or b.polarity != "rim":
            continue  # a dark region has its own pin measure (_pin_offset_observed); a bright one is the tip
        r = 0.5 * b.minor
        if r < _TIP_MIN_RADIUS_PX:
            continue
        x0, y0 = int(max(0, math.floor(b.center[0] - r - 1))), int(max(0, math.floor(b.center[1] - r - 1)))
        x1, y1 = int(min(w, math.ceil(b.center[0] + r + 2))), int(min(h, math.ceil(b.center[1] + r + 2)))
        patch = grey[y0:y1, x0:x1].astype(np.float32)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(xs - b.center[0], ys - b.center[1]) / r
        ring = patch[(d > 0.72) & (d < 0.92)]
        inner = d < 0.7
        if ring.size < 6 or not np.any(inner):
            continue
        contrast = np.abs(patch - float(np.median(ring)))
        floor = 2.0 * float(np.median(np.abs(ring - np.median(ring)))) + 3.0
        weight = np.clip(contrast - floor, 0.0, None) * inner
        total = float(weight.sum())
        if total < 0.5 * _MIN_CONTRAST * max(1.0, 0.1 * float(inner.sum())):
            continue
        b.tip = np.array([(weight * xs).sum() / total, (weight * ys).sum() / total])


def find_blobs(image_rgb: np.ndarray, grey: Optional[np.ndarray] = None) -> List[_Blob]:
    """Roughly elliptical, convex blobs darker or brighter than their surroundings (candidate holes), strongest
    first, in full-resolution pixels."""
    if grey is None:
        grey = _grey(image_rgb)
    scale = 1.0
    if grey.shape[1] > _HALF_RES_WIDTH:
        grey = cv2.pyrDown(grey)
        scale = 2.0
    grey = cv2.GaussianBlur(grey, (0, 0), 0.8)
    noise = _noise_level(grey)
    floor = max(_FLOOR, _FLOOR_NOISE * noise)
    min_contrast = max(_MIN_CONTRAST, _CONTRAST_NOISE * noise)
    found: List[_Blob] = []
    for polarity, op in (("dark", cv2.MORPH_BLACKHAT), ("bright", cv2.MORPH_TOPHAT)):
        own: List[_Blob] = []
        for k in _KERNELS_PX:
            bh = cv2.morphologyEx(grey, op, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
            for blob in _blobs_at_scale(bh, k, floor, min_contrast):
                if not any(_same_blob(blob, b) for b in own):
                    blob.polarity = polarity
                    own.append(blob)
        found.extend(own)
    # Rims: closed edge contours that are good ellipses, whatever lies inside them (a hole's rim shows even when
    # a lit pin, a dark annulus and the face leave no region of one shade).
    for blob in _edge_ellipses(grey, noise):
        if not any(_same_blob(blob, b) for b in found):
            found.append(blob)
    # A glinting pin inside a dark hole (or a dark pin inside a bright opening): keep the opening.
    found.sort(key=lambda b: -b.major)
    kept: List[_Blob] = []
    for b in found:
        # Only something of a pin's size near the middle: holes inside a face-sized blob stay holes.
        outer = [o for o in kept if (o.polarity != b.polarity or "rim" in (o.polarity, b.polarity))
                 and _PIN_SIZE[0] * o.major < b.major < _PIN_SIZE[1] * o.major
                 and np.linalg.norm(b.center - o.center) < 0.3 * o.major]
        if not outer:
            kept.append(b)
            continue
        o = min(outer, key=lambda o_: np.linalg.norm(b.center - o_.center))
        if o.pin is None or np.linalg.norm(b.center - o.center) < np.linalg.norm(o.pin - o.center):
            o.pin = b.center.copy()
    kept.sort(key=lambda b: -b.contrast * b.major)
    kept = kept[:_MAX_CANDIDATES]
    if scale != 1.0:
        for b in kept:
            b.center = b.center * scale
            b.major *= scale
            b.minor *= scale
            if b.pin is not None:
                b.pin = b.pin * scale
    return kept


def _edge_ellipses(grey: np.ndarray, noise: float) -> List[_Blob]:
    """Closed edge contours (Canny) that fit an ellipse to within a fraction of a pixel."""
    hi = max(_EDGE_HI, 12.0 * noise)
    edges = cv2.Canny(grey, 0.5 * hi, hi, L2gradient=True)
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    out: List[_Blob] = []
    h, w = grey.shape
    for c in contours:
        n = len(c)
        if n < 10 or n > 600:
            continue
        x, y, bw, bh = cv2.boundingRect(c)
        if max(bw, bh) > _EDGE_MAX_PX or min(bw, bh) < 3 or x <= 1 or y <= 1 or x + bw >= w - 1 or y + bh >= h - 1:
            continue
        (cx, cy), (a1, a2), ang = cv2.fitEllipse(c)
        # Where a pin's edge touches the rim's, the edge blob holds both: fit the rim to the outermost point in
        # each direction from the centre only.
        outer = _outermost(c.reshape(-1, 2).astype(np.float64), (cx, cy), _RIM_BINS)
        if len(outer) >= 0.75 * _RIM_BINS:
            (cx, cy), (a1, a2), ang = cv2.fitEllipse(outer.astype(np.float32))
            c = outer.reshape(-1, 1, 2)
        major, minor = max(a1, a2), min(a1, a2)
        if minor < 2.5 or minor / major < _MIN_AXIS_RATIO:
            continue
        # Closed: a traced one-pixel edge loop is about as long as the ellipse's perimeter (a spur adds some).
        perim = math.pi * (1.5 * (major + minor) / 2 - math.sqrt(major * minor) / 2)
        if not 0.75 * perim <= n <= 1.8 * perim + 8:
            continue
        pts = c.reshape(-1, 2).astype(np.float64) - (cx, cy)
        t = math.radians(ang)
        xr = pts[:, 0] * math.cos(t) + pts[:, 1] * math.sin(t)
        yr = -pts[:, 0] * math.sin(t) + pts[:, 1] * math.cos(t)
        rr = np.hypot(xr / (0.5 * a1), yr / (0.5 * a2))
        if _quantile(np.abs(rr - 1.0), 0.5) * 0.5 * minor > 0.6:
            continue
        out.append(_Blob(np.array([cx, cy]), major, minor, float(_EDGE_HI), np.zeros((1, 1), np.float32),
                         np.zeros((1, 1), np.uint8), (0, 0), "rim"))
    return out


def _quantile(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile (nearest rank) of a 1-D array; much cheaper than np.percentile on small arrays."""
    k = int(q * (len(values) - 1))
    return float(np.partition(values, k)[k])


def _noise_level(grey: np.ndarray) -> float:
    """Robust estimate of the image noise (grey levels) from the median absolute Laplacian on a coarse grid."""
    sub = grey[::2, ::2].astype(np.float32)
    lap = cv2.Laplacian(sub, cv2.CV_32F, ksize=1)
    return float(np.median(np.abs(lap))) * 1.4826 / math.sqrt(20.0)


# ------------------------------------------------------------------------------------------------ blobs


def _blobs_at_scale(bh: np.ndarray, kernel: int, floor: float, min_contrast: float) -> List[_Blob]:
    # Two-level hierarchy: outer boundaries are top level, even when they lie inside another region's hole.
    regions, hierarchy = cv2.findContours((bh > floor).astype(np.uint8), cv2.RETR_CCOMP,
                                          cv2.CHAIN_APPROX_SIMPLE)
    out = []
    h, w = bh.shape
    max_size = 0.9 * kernel  # a blob as large as the element is not a hole at this scale
    for region, links in zip(regions, hierarchy[0] if hierarchy is not None else []):
        if links[3] != -1:
            continue
        x, y, bw, bhgt = cv2.boundingRect(region)
        if bw * bhgt < _MIN_AREA_PX or max(bw, bhgt) > max_size:
            continue
        if x <= 1 or y <= 1 or x + bw >= w - 1 or y + bhgt >= h - 1:
            continue  # cut by the image border: its centre would be wrong
        x0, y0 = max(0, x - 3), max(0, y - 3)
        x1, y1 = min(w, x + bw + 3), min(h, y + bhgt + 3)
        roi = bh[y0:y1, x0:x1].astype(np.float32)
        own_u8 = np.zeros(roi.shape, np.uint8)
        cv2.drawContours(own_u8, [region], -1, 1, thickness=-1, offset=(-x0, -y0))
        own = own_u8.astype(bool)
        if own.sum() < _MIN_AREA_PX:
            continue
        peak = _quantile(roi[own], 0.9)
        if peak < min_contrast:
            continue
        thr = max(floor, _REL_THRESHOLD * peak)
        mask = ((roi > thr) & own).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for c in contours:
            blob = _blob_from_contour(c, roi, own, thr, peak, (x0, y0))
            if blob is not None:
                out.append(blob)
    return out


def _blob_from_contour(contour, roi, own, thr, peak, origin) -> Optional[_Blob]:
    area = cv2.contourArea(contour)
    if area < _MIN_AREA_PX or len(contour) < 6:
        return None
    hull = cv2.convexHull(contour)
    hull_area = cv2.contourArea(hull)
    if hull_area <= 0 or area / hull_area < _MIN_CRESCENT_SOLIDITY:
        return None
    if area / hull_area < _MIN_SOLIDITY:
        # A crescent: the dark gap of an opening whose pin tip, seen obliquely, reaches the rim. The opening is the
        # ellipse through the crescent's outer arc.
        return _crescent_blob(contour, roi, peak, origin)
    (_, _), (a1, a2), _ = cv2.fitEllipse(contour)
    major, minor = max(a1, a2), min(a1, a2)
    if major <= 0 or minor / major < _MIN_AXIS_RATIO:
        return None
    # Both the contour's area and the fitted ellipse run through the boundary pixels' centres.
    fill = area / (math.pi * 0.25 * major * minor)
    if not 0.8 <= fill <= 1.2:
        return None
    # Soft mask: 0 below half the threshold, 1 above it, filled inside (the pin tip is part of the hole); its
    # centroid is a sub-pixel estimate of the opening's centre.
    filled = np.zeros(roi.shape, np.uint8)
    cv2.drawContours(filled, [contour], -1, 1, thickness=-1)
    support = cv2.dilate(filled, np.ones((5, 5), np.uint8)).astype(bool) & own
    weight = np.clip((roi - 0.5 * thr) / (0.5 * thr), 0.0, 1.0)
    weight[filled.astype(bool)] = 1.0
    weight[~support] = 0.0
    total = float(weight.sum())
    if total <= 0:
        return None
    ys, xs = np.mgrid[0:roi.shape[0], 0:roi.shape[1]]
    centre = np.array([(weight * xs).sum() / total, (weight * ys).sum() / total])
    return _Blob(centre + origin, major, minor, peak, roi, filled, origin)


def _outermost(points: np.ndarray, centre, bins: int) -> np.ndarray:
    """The point farthest from ``centre`` in each of ``bins`` directions (only directions that hold points)."""
    rel = points - centre
    b = ((np.arctan2(rel[:, 1], rel[:, 0]) + math.pi) * (bins / (2.0 * math.pi))).astype(int) % bins
    order = np.lexsort((-np.hypot(rel[:, 0], rel[:, 1]), b))
    first = np.ones(len(order), bool)
    first[1:] = b[order][1:] != b[order][:-1]
    return points[order[first]]


def _crescent_blob(contour, roi, peak, origin) -> Optional[_Blob]:
    pts = contour.reshape(-1, 2).astype(np.float64)
    hull = cv2.convexHull(contour).reshape(-1, 2).astype(np.float64)
    outer = _outermost(pts, hull.mean(axis=0), _RIM_BINS)
    if len(outer) < 0.6 * _RIM_BINS:
        return None
    (cx, cy), (a1, a2), ang = cv2.fitEllipse(outer.astype(np.float32))
    major, minor = max(a1, a2), min(a1, a2)
    if minor < 3.0 or minor / major < _MIN_AXIS_RATIO:
        return None
    t = math.radians(ang)
    rel = outer - (cx, cy)
    xr = rel[:, 0] * math.cos(t) + rel[:, 1] * math.sin(t)
    yr = -rel[:, 0] * math.sin(t) + rel[:, 1] * math.cos(t)
    if np.median(np.abs(np.hypot(xr / (0.5 * a1), yr / (0.5 * a2)) - 1.0)) * 0.5 * minor > 0.5:
        return None
    filled = np.zeros(roi.shape, np.uint8)
    cv2.ellipse(filled, ((cx, cy), (a1, a2), ang), 1, -1)
    return _Blob(np.array([cx, cy]) + origin, major, minor, peak, roi, filled, origin)


def _same_blob(a: _Blob, b: _Blob) -> bool:
    close = np.linalg.norm(a.center - b.center) < 0.5 * min(a.minor, b.minor)
    return close and 0.6 < a.major / b.major < 1.67


# ------------------------------------------------------------------------------------------------ matching


def _anchor_pairs(inlet: InletModel) -> List[Tuple[int, int]]:
    """Model hole pairs that are far apart and large (easy to see, well conditioned)."""
    kp, d = inlet.keypoints[:, :2], inlet.hole_diameters_m
    pairs = []
    for a in range(len(kp)):
        for b in range(a + 1, len(kp)):
            pairs.append((np.linalg.norm(kp[a] - kp[b]) * min(d[a], d[b]), a, b))
    pairs.sort(reverse=True)
    return [(a, b) for _, a, b in pairs[:_N_ANCHOR_PAIRS]]


def _match_pattern(blobs: List[_Blob], camera: CameraModel, inlet: InletModel):
    """The best assignment {model index: blob index}, or None."""
    pts = camera.undistort_points(np.array([b.center for b in blobs]))
    z = pts[:, 0] + 1j * pts[:, 1]
    size = np.array([b.major for b in blobs])
    m = inlet.keypoints[:, 0] - 1j * inlet.keypoints[:, 1]  # inlet y up -> image v down
    diam = inlet.hole_diameters_m
    spacing = min(abs(m[a] - m[b]) for a in range(len(m)) for b in range(a + 1, len(m)))
    nb = len(blobs)
    ii, jj = np.meshgrid(np.arange(nb), np.arange(nb), indexing="ij")
    ii, jj = ii[ii != jj], jj[ii != jj]
    hypotheses = []
    for a, b in _anchor_pairs(inlet):
        # Relative size must agree (foreshortening affects both holes alike).
        ratio = (size[ii] / size[jj]) / (diam[a] / diam[b])
        # Pixels per metre from the pair's spacing must be plausible against the holes' apparent size
        # (spacing shrinks by up to cos(60 deg) when tilted).
        alpha = (z[jj] - z[ii]) / (m[b] - m[a])
        px_per_m_size = 0.5 * (size[ii] / diam[a] + size[jj] / diam[b])
        rel = np.abs(alpha) / px_per_m_size
        ok = (ratio > 0.6) & (ratio < 1.67) & (rel > 0.35) & (rel < 2.0)
        if not np.any(ok):
            continue
        al = alpha[ok]
        beta = z[ii[ok]] - al * m[a]
        pred = al[:, None] * m[None, :] + beta[:, None]  # (H, N)
        dist = np.abs(pred[:, :, None] - z[None, None, :])  # (H, N, B)
        tol = _MATCH_TOL * spacing * np.abs(al)
        size_ratio = size[None, None, :] / (px_per_m_size[ok][:, None, None] * diam[None, :, None])
        size_ok = (size_ratio > _SIZE_TOL[0]) & (size_ratio < _SIZE_TOL[1])
        hit = (dist < tol[:, None, None]) & size_ok
        count = hit.any(axis=2).sum(axis=1)
        for h in np.argsort(-count)[:4]:
            hypotheses.append((int(count[h]), complex(al[h]), complex(beta[h]), float(px_per_m_size[ok][h])))
    if not hypotheses:
        return None
    hypotheses.sort(key=lambda t: -t[0])
    best, best_key = None, None
    for count, al, beta, ppm in hypotheses[:6]:
        if count < 4:
            break
        pred = al * m + beta
        assign = _assign(pred, z, size, diam * ppm, _MATCH_TOL * spacing * abs(al))
        for _ in range(2):
            if len(assign) < 4:
                break
            src = np.array([[m[k].real, m[k].imag] for k in assign], np.float64)
            dst = np.array([[z[c].real, z[c].imag] for c in assign.values()], np.float64)
            H, _ = cv2.findHomography(src, dst, 0)
            if H is None:
                break
            mp = np.stack([m.real, m.imag, np.ones(len(m))], axis=1) @ H.T
            pred = (mp[:, 0] + 1j * mp[:, 1]) / mp[:, 2]
            assign = _assign(pred, z, size, diam * ppm, 0.5 * _MATCH_TOL * spacing * abs(al))
        if not assign:
            continue
        resid = float(np.mean([abs(pred[k] - z[c]) for k, c in assign.items()]))
        key = (len(assign), -resid)
        if best_key is None or key > best_key:
            best, best_key = assign, key
        if len(assign) == len(m) and resid < 1.0:
            break  # every hole where it belongs: nothing better to find
    return best


def _symmetries(inlet: InletModel) -> List[np.ndarray]:
    """Permutations of the holes under which the hole *positions* map onto themselves (Type 2's hexagon turned by
    60 deg): only the holes' sizes tell these apart. Each is an index array p with hole k moving to hole p[k]."""
    key = id(inlet)
    if key in _SYMMETRY_CACHE:
        return _SYMMETRY_CACHE[key][1]
    kp = inlet.keypoints[:, :2]
    out = []
    for deg in range(15, 360, 15):
        a = math.radians(deg)
        rot = kp @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        d = np.linalg.norm(rot[:, None, :] - kp[None, :, :], axis=2)
        perm = np.argmin(d, axis=1)
        if np.all(d[np.arange(len(kp)), perm] < 1.5e-3) and len(set(perm.tolist())) == len(kp):
            out.append(perm)
    _SYMMETRY_CACHE[key] = (inlet, out)
    return out


def _size_misfit(matches: dict, blobs: List[_Blob], inlet: InletModel) -> float:
    """Spread of log(observed size / model diameter) over the matched holes (0: sizes fit a common scale)."""
    r = np.array([math.log(blobs[c].major / inlet.hole_diameters_m[k]) for k, c in matches.items()])
    return float(np.mean((r - np.median(r)) ** 2))


def _resolve_symmetry(matches: dict, blobs: List[_Blob], inlet: InletModel) -> dict:
    """Among the pattern's position symmetries, the assignment whose hole sizes fit best; PortNotFound if sizes
    cannot tell them apart."""
    perms = _symmetries(inlet)
    if not perms:
        return matches
    diam = inlet.hole_diameters_m[list(matches)]
    if diam.max() / diam.min() < 1.2:
        # Only holes of one size matched (a ring of equal studs on a badge looks like Type 2's large holes):
        # nothing tells the orientation, nor that this is an inlet at all.
        raise PortNotFound(f"the {inlet.name} pattern's orientation is not settled: no holes of its other sizes")
    options = [matches] + [{int(p[k]): c for k, c in matches.items()} for p in perms]
    scores = [_size_misfit(m, blobs, inlet) for m in options]
    order = np.argsort(scores)
    best, second = scores[order[0]], scores[order[1]]
    if second < _SYMMETRY_MARGIN * best + 0.01:
        raise PortNotFound(f"the {inlet.name} pattern's orientation is not settled by its hole sizes")
    return options[int(order[0])]


def _coverage(inlet: InletModel, idx: List[int]) -> float:
    """Area of the matched holes' convex hull over the whole hole pattern's (0..1)."""
    whole = cv2.contourArea(cv2.convexHull(inlet.keypoints[:, :2].astype(np.float32)))
    if len(idx) < 3 or whole <= 0:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(inlet.keypoints[idx, :2].astype(np.float32))) / whole)


def _assign(pred: np.ndarray, z: np.ndarray, size: np.ndarray, exp_size: np.ndarray, tol: float) -> dict:
    """Greedy one-to-one nearest assignment of predicted model holes to blobs of compatible size."""
    dist = np.abs(pred[:, None] - z[None, :])
    ratio = size[None, :] / exp_size[:, None]
    dist[(ratio < _SIZE_TOL[0]) | (ratio > _SIZE_TOL[1]) | (dist > tol)] = np.inf
    assign = {}
    used = set()
    for flat in np.argsort(dist, axis=None):
        k, c = divmod(int(flat), dist.shape[1])
        if not np.isfinite(dist[k, c]):
            break
        if k in assign or c in used:
            continue
        assign[k] = c
        used.add(c)
    return assign


# ------------------------------------------------------------------------------------------------ pose


def _pin_offset_observed(blob: _Blob) -> Optional[np.ndarray]:
    """Pixels from the opening's centre to the centroid of whatever part of the pin tip shows (rim blur and a
    partly hidden tip shrink it, but its direction holds). Only for dark openings, where the pin tip is the lighter
    part; in a bright opening the lit pin cannot be told from the opening. A blob found inside the opening (the pin's
    own rim or region, of any shade) is used first."""
    if blob.pin is not None:
        return blob.pin - blob.center
    if blob.polarity != "dark":
        return None if blob.tip is None else blob.tip - blob.center
    interior = cv2.erode(blob.filled, np.ones((3, 3), np.uint8)).astype(bool)
    weight = np.clip((_PIN_LEVEL * blob.contrast - blob.patch) / (0.3 * blob.contrast), 0.0, 1.0) * interior
    total = float(weight.sum())
    if total < 1.0:
        return None
    ys, xs = np.mgrid[0:weight.shape[0], 0:weight.shape[1]]
    c = np.array([(weight * xs).sum() / total + blob.origin[0], (weight * ys).sum() / total + blob.origin[1]])
    return c - blob.center


def _pin_offset_predicted(R: np.ndarray, t: np.ndarray, k: int, camera: CameraModel,
                          inlet: InletModel) -> np.ndarray:
    """Pixels from hole ``k``'s opening centre to the centroid of its visible pin tip, for pose (R, t)."""
    cam = -R.T @ t  # camera centre in the inlet frame
    hole = inlet.keypoints[k]
    depth = inlet.pin_tip_depth_m
    s = cam[2] / (cam[2] + depth)  # casting the tip onto the face plane along the camera's rays
    tip_on_face = cam[:2] + s * (hole[:2] - cam[:2])
    a = np.linspace(0.0, 2.0 * math.pi, 24, endpoint=False)
    ring = np.stack([np.cos(a), np.sin(a)], axis=1)
    units = 1.0e4  # 0.1 mm: intersectConvexConvex has absolute tolerances
    tip = ((tip_on_face + 0.5 * s * inlet.pin_diameters_m[k] * ring) * units).astype(np.float32)
    opening = ((hole[:2] + 0.5 * inlet.hole_diameters_m[k] * ring) * units).astype(np.float32)
    area, inter = cv2.intersectConvexConvex(tip, opening)
    if inter is None or area <= 0:
        return np.zeros(2)
    centroid = np.append(_polygon_centroid(inter.reshape(-1, 2).astype(float) / units), 0.0)
    px = camera.project(np.stack([centroid, hole]) @ R.T + t)
    return px[0] - px[1]


def _pin_overlap(R: np.ndarray, t: np.ndarray, k: int, inlet: InletModel) -> float:
    """How far (m, on the face plane) hole ``k``'s pin tip, seen from the camera at pose (R, t), reaches past the
    opening's rim; negative while the whole tip shows."""
    cam = -R.T @ t
    hole = inlet.keypoints[k]
    s = cam[2] / (cam[2] + inlet.pin_tip_depth_m)
    shift = np.linalg.norm((1.0 - s) * (cam[:2] - hole[:2]))
    return float(shift + 0.5 * s * inlet.pin_diameters_m[k] - 0.5 * inlet.hole_diameters_m[k])


def _polygon_centroid(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = 0.5 * cross.sum()
    if abs(area) < 1e-18:
        return poly.mean(axis=0)
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6.0 * area)


def _parallax_vote(sol_a, sol_b, idx, blobs, matches, camera, inlet) -> float:
    """How strongly the pin tips' parallax favours pose a over pose b, in units of its noise (positive: a)."""
    num, den = 0.0, 0.0
    for k in idx:
        obs = _pin_offset_observed(blobs[matches[k]])
        if obs is None:
            continue
        pa = _pin_offset_predicted(sol_a[1], sol_a[2], k, camera, inlet)
        pb = _pin_offset_predicted(sol_b[1], sol_b[2], k, camera, inlet)
        diff = pa - pb
        num += float(np.dot(obs - 0.5 * (pa + pb), diff))
        den += float(np.dot(diff, diff))
    if den <= 1e-12:
        return 0.0
    return num / math.sqrt(den) / _PIN_OFFSET_NOISE_PX


def _refine_with_parallax(R, t, obj, img, idx, blobs, matches, camera, inlet):
    """Least-squares pose from the hole openings *and* the pin tips' parallax inside them.

    The openings alone are coplanar: near a frontal view they fix the tilt only to second order. A pin tip lies
    ``pin_tip_depth_m`` behind the face, so its offset inside its hole grows linearly with the tilt.
    """
    # Only whole pin tips: where the rim hides part of one, its measured offset runs long (rim blur) and would
    # pull the distance. Tilted far enough for that, the openings fix the pose well on their own.
    overlap = {k: _pin_overlap(R, t, k, inlet) for k in idx}
    offsets = [(k, _pin_offset_observed(blobs[matches[k]])) for k in idx if overlap[k] <= 0.0]
    offsets = [(k, o) for k, o in offsets if o is not None]
    if not offsets:
        return R, t
    obs = np.array([o for _, o in offsets])
    # Blur, a partly hidden tip and the rim make the measured offset imperfect: trust long offsets less.
    sigma = (_PIN_OFFSET_NOISE_PX + 0.5 * np.linalg.norm(obs, axis=1))[:, None]

    # A tip reaching over the rim leaves the dark region short of the whole opening, biasing its centre by up to
    # ~0.4 px: trust an opening less the more of its pin tip is cut off.
    cut = np.array([np.clip(overlap[k] / inlet.pin_diameters_m[k], 0.0, 1.0) for k in idx])
    sigma_open = (_OPENING_NOISE_PX * (1.0 + _CUT_WEIGHT * cut))[:, None]

    def residuals(x):
        Rx = cv2.Rodrigues(x[:3])[0]
        tx = x[3:]
        r_open = (camera.project(obj @ Rx.T + tx) - img) / sigma_open
        pred = np.array([_pin_offset_predicted(Rx, tx, k, camera, inlet) for k, _ in offsets])
        return np.concatenate([r_open.ravel(), ((pred - obs) / sigma).ravel()])

    x0 = np.concatenate([cv2.Rodrigues(R)[0].ravel(), t])
    fit = least_squares(residuals, x0, method="lm", diff_step=1e-4, max_nfev=200)
    if fit.status <= 0:
        return R, t  # the optimiser gave up: keep the planar pose
    return cv2.Rodrigues(fit.x[:3])[0], fit.x[3:]


def _refine(obj: np.ndarray, img: np.ndarray, camera: CameraModel, rvec, tvec):
    """Levenberg-Marquardt on the hole centres; returns (rvec, tvec, RMS reprojection error in px)."""
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera.K, camera.D, rvec.copy(), tvec.copy())
    proj, _ = cv2.projectPoints(obj, rvec, tvec, camera.K, camera.D)
    return rvec, tvec, float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))


def _solve_pose(matches: dict, blobs: List[_Blob], camera: CameraModel, inlet: InletModel) -> Detection:
    idx = sorted(matches)
    planar = inlet.keypoints[idx].astype(np.float64)
    # A bright blob in a hole is the lit metal pin tip, which lies pin_tip_depth_m behind the face: fit it there
    # (IPPE needs the plane; Levenberg-Marquardt then takes the true depths).
    obj = planar.copy()
    obj[[i for i, k in enumerate(idx) if blobs[matches[k]].polarity == "bright"], 2] = -inlet.pin_tip_depth_m
    img = np.array([blobs[matches[k]].center for k in idx], np.float64)
    n_sol, rvecs, tvecs, _ = cv2.solvePnPGeneric(planar, img, camera.K, camera.D, flags=cv2.SOLVEPNP_IPPE)
    if n_sol == 0:
        raise PortNotFound("pose estimation failed")
    sols = []
    for r, t in zip(rvecs, tvecs):
        if cv2.Rodrigues(r)[0][2, 2] >= 0.0:
            continue  # the inlet's z axis must point back towards the camera
        r2, t2, rms = _refine(obj, img, camera, r, t)
        R2 = cv2.Rodrigues(r2)[0]
        if R2[2, 2] < 0.0:
            sols.append((rms, R2, np.ravel(t2)))
    if not sols:
        raise PortNotFound("planar pose flip: the inlet would face away from the camera")
    sols.sort(key=lambda s_: s_[0])
    flip_margin = math.inf
    ambiguous_rad = 0.0
    refined = False
    if len(sols) == 2 and rotation_angle(sols[0][1].T @ sols[1][1]) >= _FLIP_SAME_RAD:
        # The mirrored tilts of a planar pattern. Reprojection separates them clearly only well off-axis: a real
        # inlet is off its drawing by up to a millimetre per feature. Short of that, ask the pins which side of
        # each hole they show on.
        margin = sols[1][0] / max(sols[0][0], 1e-6)
        vote = 0.0 if margin >= _FLIP_RATIO else _parallax_vote(sols[0], sols[1], idx, blobs, matches, camera,
                                                                 inlet)
        if margin >= _FLIP_RATIO:
            flip_margin = margin
        elif abs(vote) >= _PARALLAX_VOTE_MIN:
            if vote < 0:
                sols.reverse()
            flip_margin = 1.0 + abs(vote) / _PARALLAX_VOTE_MIN
        else:
            # Near a frontal view the two tilts are small, and a joint fit of openings and pin tips may join them.
            a = _refine_with_parallax(sols[0][1], sols[0][2], obj, img, idx, blobs, matches, camera, inlet)
            b = _refine_with_parallax(sols[1][1], sols[1][2], obj, img, idx, blobs, matches, camera, inlet)
            apart = rotation_angle(a[0].T @ b[0])
            if apart >= _FLIP_MEAN_RAD:
                raise PortNotFound(f"ambiguous planar pose (errors {sols[0][0]:.2f} vs {sols[1][0]:.2f} px, "
                                   f"pin parallax vote {vote:.1f})")
            if apart < _FLIP_SAME_RAD:
                sols[0] = (sols[0][0], a[0], a[1])  # joined: no ambiguity left
            else:
                # Both tilts fit: the truth lies near one of them, so their mean is off by at most half the gap.
                # Say so in the covariance.
                mean = _mean_pose([_to_matrix(a[0], a[1]), _to_matrix(b[0], b[1])])
                ambiguous_rad = apart
                sols[0] = (sols[0][0], mean[:3, :3], mean[:3, 3])
            refined = True
    R, t = sols[0][1], sols[0][2]
    if not refined:
        R, t = _refine_with_parallax(R, t, obj, img, idx, blobs, matches, camera, inlet)
    rvec = cv2.Rodrigues(R)[0]
    proj, jac = cv2.projectPoints(obj, rvec, t, camera.K, camera.D)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    if rms > _MAX_REPROJ_PX:
        raise PortNotFound(f"reprojection error {rms:.2f} px too large")
    _check_plausible(R, t)
    _check_sizes(R, t, idx, blobs, matches, camera, inlet)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    n = len(idx)
    confidence = (n / len(inlet.keypoints)) / (1.0 + rms ** 2)
    if math.isfinite(flip_margin):
        confidence *= min(1.0, (flip_margin - 1.0) / 2.0)
    # Pixel noise, plus how far a real inlet may differ from its drawing (about 0.5 mm per feature) seen from here.
    model_px = camera.K[0, 0] * _MODEL_TOL_M / max(float(t[2]), 1e-3)
    cov = _covariance(jac, math.hypot(max(rms, 0.2), model_px))
    if ambiguous_rad > 0.0:
        confidence *= 0.5
        if cov is not None:
            cov[3:, 3:] += np.eye(3) * (0.5 * ambiguous_rad) ** 2
    return Detection(T_cam_inlet=T, reprojection_error_px=rms, confidence=float(np.clip(confidence, 0.0, 1.0)),
                     n_points=n, keypoints_px=camera.project((inlet.keypoints @ R.T) + t), covariance=cov)


def _to_matrix(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, np.ravel(t)
    return T


def _check_sizes(R, t, idx, blobs, matches, camera, inlet) -> None:
    """The holes' apparent sizes must agree with the pose, relative to each other: a pattern matched rotated onto
    itself (Type 2's hexagon turned by 60 deg) puts small holes where large ones belong."""
    diam = inlet.hole_diameters_m[idx]
    if diam.max() / diam.min() < 1.2:
        return
    depth = (inlet.keypoints[idx] @ R.T + t)[:, 2]
    expected = camera.K[0, 0] * diam / depth
    ratio = np.array([blobs[matches[k]].major for k in idx]) / expected
    big = diam >= np.median(diam)
    small = ~big
    if np.any(small) and np.median(ratio[small]) / np.median(ratio[big]) > _SIZE_SPREAD_MAX:
        raise PortNotFound("hole sizes do not fit the pattern (small holes where large ones belong)")
    if np.max(ratio) / np.min(ratio) > 2.0 * _SIZE_SPREAD_MAX:
        raise PortNotFound("hole sizes do not fit the pattern")


def _disc_contrast(grey: np.ndarray, centre, r: float) -> Optional[float]:
    """|mean inside 0.7 r - median of the ring 1.3 r .. 1.8 r| in grey levels, or None off the image."""
    h, w = grey.shape
    R = 1.8 * r + 1.0
    x0, y0, x1, y1 = int(centre[0] - R), int(centre[1] - R), int(centre[0] + R) + 1, int(centre[1] + R) + 1
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h or r < 1.5:
        return None
    patch = grey[y0:y1, x0:x1].astype(np.float32)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    d = np.hypot(xs - centre[0], ys - centre[1])
    inside, ring = patch[d < 0.7 * r], patch[(d > 1.3 * r) & (d < 1.8 * r)]
    if inside.size == 0 or ring.size == 0:
        return None
    return abs(float(inside.mean()) - _quantile(ring, 0.5))


def _check_missing_holes(grey: np.ndarray, det: "Detection", matches: dict, camera: CameraModel,
                         inlet: InletModel) -> None:
    """A hole of the pattern that was not matched must not sit on plain face: where the pose puts it, the image must
    show some contrast at the hole's scale (a cable, the flap or a shadow do; a Type 2 face's empty surround, seen
    as a CCS2 inlet, does not)."""
    missing = [k for k in range(len(inlet.keypoints)) if k not in matches]
    if not missing:
        return
    T = det.T_cam_inlet
    cam_pts = inlet.keypoints @ T[:3, :3].T + T[:3, 3]
    px = camera.project(cam_pts)
    radius = 0.5 * camera.K[0, 0] * inlet.hole_diameters_m / cam_pts[:, 2]
    seen = [_disc_contrast(grey, px[k], radius[k]) for k in matches]
    seen = [c for c in seen if c is not None]
    if not seen:
        return
    typical = float(np.median(seen))
    for k in missing:
        c = _disc_contrast(grey, px[k], radius[k])
        if c is not None and c < _MISSING_PLAIN * typical:
            raise PortNotFound(f"hole {inlet.hole_names[k]} of the {inlet.name} pattern is missing where the face "
                               f"is plain")


def _check_plausible(R: np.ndarray, t: np.ndarray) -> None:
    dist = float(np.linalg.norm(t))
    if not _DIST_RANGE_M[0] <= dist <= _DIST_RANGE_M[1]:
        raise PortNotFound(f"implausible distance {dist:.3f} m")
    # Tilt: angle between the inlet's axis and the line of sight from the inlet to the camera.
    tilt = math.acos(float(np.clip(np.dot(R[:, 2], -t / dist), -1.0, 1.0)))
    if tilt > _MAX_TILT_RAD:
        raise PortNotFound(f"implausible tilt {math.degrees(tilt):.0f} deg")


def _covariance(jac: np.ndarray, sigma: float) -> Optional[np.ndarray]:
    J = jac[:, :6]  # d(pixels) / d(rvec, tvec)
    try:
        cov_rt = sigma ** 2 * np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        return None
    order = [3, 4, 5, 0, 1, 2]  # (rvec, tvec) -> (x, y, z, rx, ry, rz) as in geometry_msgs
    return cov_rt[np.ix_(order, order)]


# ------------------------------------------------------------------------------------------------ tracking


class PortTracker:
    """Turns per-frame detections into a decision: 'searching', 'located' or 'failed'.

    'located' needs ``required_consistent`` consecutive detections, each within ``max_jump_m`` and ``max_jump_rad``
    of the previous one; the reported :attr:`pose` is their mean. A detection that jumps starts a new run; a frame
    without a detection (``None``) neither extends nor breaks the run, but a run older than ``max_gap_s`` since its
    last detection is dropped. Without 'located' within ``timeout_s`` of :meth:`reset` the result is 'failed'
    ("failed to detect"). Both final states hold until the next reset. Times ``t`` are seconds on any one clock.
    """

    def __init__(self, required_consistent: int = 3, max_jump_m: float = 0.01, max_jump_rad: float = 0.05,
                 timeout_s: float = 5.0, max_gap_s: float = 2.0):
        if required_consistent < 1:
            raise ValueError("required_consistent must be >= 1")
        if max_jump_m <= 0 or max_jump_rad <= 0 or timeout_s <= 0 or max_gap_s <= 0:
            raise ValueError("jump limits, timeout_s and max_gap_s must be positive")
        self.required = int(required_consistent)
        self.max_jump_m = float(max_jump_m)
        self.max_jump_rad = float(max_jump_rad)
        self.timeout_s = float(timeout_s)
        self.max_gap_s = float(max_gap_s)
        self.status = "searching"
        self.pose: Optional[np.ndarray] = None
        self.reason = ""
        self._run: List[np.ndarray] = []
        self._t0: Optional[float] = None
        self._t_last = -math.inf

    def reset(self, t: float) -> None:
        """Start searching afresh at time ``t`` (s)."""
        self.status = "searching"
        self.pose = None
        self.reason = ""
        self._run = []
        self._t0 = float(t)
        self._t_last = -math.inf

    def update(self, detection: Optional[Detection], t: float) -> str:
        """Feed one frame's result (or None) at time ``t``; returns the status."""
        if self._t0 is None:
            self._t0 = float(t)
        if self.status != "searching":
            return self.status
        if detection is not None:
            T = np.asarray(detection.T_cam_inlet, float)
            if self._run and (t - self._t_last > self.max_gap_s or not self._consistent(self._run[-1], T)):
                self._run = []
            self._run.append(T)
            self._t_last = float(t)
            if len(self._run) >= self.required:
                self.pose = _mean_pose(self._run[-self.required:])
                self.status = "located"
                return self.status
        if t - self._t0 > self.timeout_s:
            self.status = "failed"
            self.reason = "failed to detect: no consistent inlet detection within the timeout"
        return self.status

    def _consistent(self, a: np.ndarray, b: np.ndarray) -> bool:
        return (np.linalg.norm(a[:3, 3] - b[:3, 3]) <= self.max_jump_m
                and rotation_angle(a[:3, :3].T @ b[:3, :3]) <= self.max_jump_rad)


def _mean_pose(poses: List[np.ndarray]) -> np.ndarray:
    """Mean translation, and the rotation nearest (Frobenius) to the mean rotation matrix."""
    t = np.mean([p[:3, 3] for p in poses], axis=0)
    U, _, Vt = np.linalg.svd(np.mean([p[:3, :3] for p in poses], axis=0))
    R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = R, t
    return out
