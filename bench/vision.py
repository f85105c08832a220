"""Charge-port vision benchmark: detection rate, pose error and time per frame on widely randomised renders.

    scripts/run-clean-env.sh taskset -c 0 .venv/bin/python bench/vision.py [--quick] [--seed N]

Positives come from the loopback renderer (``mobicharge_robot/sim/renderer.py``) with wide randomisation: the ring
light on or off, garage light direction and strength (including grazing side light), face, bezel, hole and body
colours, pin metal and its glint, dirt, flap angle, a cable in front of the inlet, focus and motion blur, uneven
illumination, noise and JPEG. Every sample also perturbs the inlet's geometry (each hole centre, opening and pin by
up to +-0.5 mm, the pin tip depth by up to +-0.5 mm) and the camera intrinsics (fx, fy, cx, cy by up to +-0.5 %)
while the detector keeps the nominal model from ``config/inlets.yaml`` and the nominal camera_info. Views: 0.15-0.35 m
(fine) and 0.35-0.8 m (coarse), up to 30 deg off-axis in any direction, any roll within +-23 deg.

Negatives: fuel caps, badges, bolt grids, empty sockets, a Type 2 inlet when CCS2 is searched for (a partial
pattern) and bare panels; each is searched for all three inlet types. A detection on a negative is a false positive.

Figures printed: a condition table (detection rate per condition), pose errors by range (median, p95, max), time per
frame at 640x480 and 1280x960. The last line is one JSON object. Fixed seed: the same command prints the same
figures except for the timings.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mobicharge_robot.core.geometry import invert_transform, make_transform, rot_z, rotation_angle  # noqa: E402
from mobicharge_robot.core.vision.camera import CameraModel, default_wrist_camera  # noqa: E402
from mobicharge_robot.core.vision.inlets import load_inlets  # noqa: E402
from mobicharge_robot.core.vision.port_detector import PortNotFound, detect_port  # noqa: E402
from mobicharge_robot.sim.renderer import (BODY_COLORS, CarAppearance, InletLook, camera_looking_at,  # noqa: E402
                                           inlet_on_car, render, render_negative)

TYPES = ("ccs2", "type2", "ccs1")
FACE_BANDS = {"black": (0.02, 0.07), "dark grey": (0.07, 0.18), "mid grey": (0.18, 0.35), "light grey": (0.35, 0.6)}
WRONG_MM, WRONG_DEG = 10.0, 5.0


def perturbed_inlet(model, rng):
    """The inlet as built: every feature off the nominal drawing by up to +-0.5 mm."""
    n = len(model.keypoints)
    kp = model.keypoints.copy()
    kp[:, :2] += rng.uniform(-5e-4, 5e-4, (n, 2))
    holes = model.hole_diameters_m + rng.uniform(-5e-4, 5e-4, n)
    pins = np.minimum(model.pin_diameters_m + rng.uniform(-5e-4, 5e-4, n), 0.9 * holes)
    outline = model.outline.copy()
    outline[:, :2] *= 1.0 + rng.uniform(-5e-4, 5e-4) / 0.03
    return replace(model, keypoints=kp, hole_diameters_m=holes, pin_diameters_m=pins, outline=outline,
                   pin_tip_depth_m=model.pin_tip_depth_m + rng.uniform(-5e-4, 5e-4))


def perturbed_camera(cam, rng):
    K = cam.K.copy()
    K[0, 0] *= 1.0 + rng.uniform(-0.005, 0.005)
    K[1, 1] *= 1.0 + rng.uniform(-0.005, 0.005)
    K[0, 2] *= 1.0 + rng.uniform(-0.005, 0.005)
    K[1, 2] *= 1.0 + rng.uniform(-0.005, 0.005)
    return CameraModel(cam.width, cam.height, K, cam.D, cam.distortion_model, cam.frame_id, cam.name)


def scaled_camera(cam, s):
    K = cam.K.copy()
    K[:2, :] *= s
    K[0, 2] = (cam.K[0, 2] + 0.5) * s - 0.5
    K[1, 2] = (cam.K[1, 2] + 0.5) * s - 0.5
    return CameraModel(int(cam.width * s), int(cam.height * s), K, cam.D, cam.distortion_model, cam.frame_id)


def _grey(rng, lo, hi, tint=0.03):
    g = rng.uniform(lo, hi)
    return tuple(float(np.clip(g * (1.0 + rng.uniform(-tint, tint)), 0.0, 1.0)) for _ in range(3))


PERTURB = True  # --no-perturbation turns the inlet geometry and intrinsics perturbation off (diagnosis only)


def sample_scene(rng, inlet_name, band, inlets, cam):
    """One randomised positive: (conditions, kwargs for render, car, T_world_cam, true camera, truth pose)."""
    nominal = inlets[inlet_name]
    model = perturbed_inlet(nominal, rng)
    if not PERTURB:
        model = nominal
    cond = {"inlet": inlet_name, "range": band}
    dist = rng.uniform(0.15, 0.35) if band == "fine" else rng.uniform(0.35, 0.8)
    off_deg = rng.uniform(0.0, 30.0)
    off = math.radians(off_deg)
    cond["view angle"] = "0-10 deg" if off_deg < 10 else ("10-20 deg" if off_deg < 20 else "20-30 deg")
    phi = rng.uniform(0.0, 2.0 * math.pi)
    roll = rng.uniform(-0.4, 0.4)
    face_band = list(FACE_BANDS)[int(rng.integers(len(FACE_BANDS)))]
    cond["face"] = face_band
    face = _grey(rng, *FACE_BANDS[face_band])
    ring = rng.random() < 0.5
    cond["ring light"] = "on" if ring else "off"
    light = {"intensity": rng.uniform(0.2, 0.9), "ambient": rng.uniform(0.05, 0.35),
             "specular": rng.uniform(0.0, 0.5), "shininess": rng.uniform(5.0, 40.0)}
    if rng.random() < 0.3:  # grazing side light along the panel
        a = rng.uniform(0.0, 2.0 * math.pi)
        light["direction"] = (math.cos(a), math.sin(a), rng.uniform(-0.3, 0.3))
        cond["garage light"] = "side"
    else:
        light["direction"] = tuple(rng.normal(0.0, 1.0, 3) + (0.0, 0.0, 1.0))
        cond["garage light"] = "overhead"
    hole_wall = _grey(rng, 0.3 * face[0], 1.2 * face[0] + 0.03)
    look = InletLook(
        face_rgb=face, bezel_rgb=_grey(rng, 0.5 * face[0], min(0.9, 1.5 * face[0] + 0.05)),
        pocket_rgb=_grey(rng, 0.3 * face[0], face[0] + 0.02), hole_wall_rgb=hole_wall,
        hole_bottom_rgb=_grey(rng, 0.0, 0.1), pin_rgb=_grey(rng, 0.3, 0.9, 0.15),
        pin_gloss=rng.uniform(0.0, 1.2), face_gloss=rng.uniform(0.0, 0.3),
        dirt=int(rng.integers(0, 6)) if rng.random() < 0.4 else 0, dirt_rgb=_grey(rng, 0.05, 0.6),
        dirt_seed=int(rng.integers(1 << 30)))
    cond["dirt"] = "yes" if look.dirt else "no"
    occl = rng.random()
    if occl < 0.25:
        side = 1.0 if rng.random() < 0.5 else -1.0
        look = replace(look, cable=(side * rng.uniform(0.03, 0.045), rng.uniform(-0.3, 0.3), rng.uniform(0.008, 0.014),
                                    rng.uniform(0.02, 0.06)))
        cond["occlusion"] = "cable"
    elif occl < 0.45:
        cond["occlusion"] = "flap"
    else:
        cond["occlusion"] = "none"
    flap = math.radians(rng.uniform(85.0, 95.0)) if cond["occlusion"] == "flap" else math.radians(
        rng.uniform(100.0, 125.0))
    blur_level = ("none", "mild", "strong")[int(rng.integers(3))]
    cond["blur"] = blur_level
    sensor = {"noise_sigma": rng.uniform(0.5, 3.0), "blur_sigma": 0.4, "auto_exposure": rng.uniform(60.0, 140.0),
              "jpeg_quality": int(rng.integers(40, 95)) if rng.random() < 0.4 else None,
              "illumination_gradient": tuple(rng.uniform(-0.5, 0.5, 2)), "ring_light": rng.uniform(0.4, 1.1) if ring
              else 0.0}
    if blur_level == "mild":
        sensor["blur_sigma"] = rng.uniform(0.7, 1.2)
        sensor["motion_blur_px"] = rng.uniform(0.0, 3.0)
    elif blur_level == "strong":
        sensor["blur_sigma"] = rng.uniform(1.2, 1.8)
        sensor["motion_blur_px"] = rng.uniform(2.0, 5.0)
    sensor["motion_angle_rad"] = rng.uniform(0.0, math.pi)
    body = BODY_COLORS[list(BODY_COLORS)[int(rng.integers(len(BODY_COLORS)))]] if rng.random() < 0.6 else \
        tuple(rng.uniform(0.02, 0.9, 3))
    T_v = make_transform(rot_z(rng.uniform(-1.0, 1.0)), (3.0, 2.0, 0.0))
    T_i = inlet_on_car(T_v, 4.5, 1.85, model, height_m=rng.uniform(0.6, 0.9))
    car = CarAppearance(T_v, 4.5, 1.85, 1.5, body, model, T_i, flap_open_rad=flap, look=look)
    true_cam = perturbed_camera(cam, rng)
    if not PERTURB:
        true_cam = cam
    half_px = 0.5 * 0.11 * cam.K[0, 0] / dist
    room = max(0.0, 0.8 * (0.5 * cam.height - half_px))
    offset = tuple(rng.uniform(-room, room, 2) * cam.K[0, 0] / 600.0)
    T_cam = camera_looking_at(T_i, dist, off * math.cos(phi), off * math.sin(phi), roll, offset,
                              fx=cam.K[0, 0])
    T_true = invert_transform(T_cam) @ T_i
    return cond, sensor, light, car, T_cam, true_cam, T_true


def hole_polarity(img, cam, model, T_true):
    """'dark' or 'bright': the openings' mean grey against the face ring around them (labels the sample only)."""
    grey = img.mean(axis=2)
    pts = cam.project(model.keypoints @ T_true[:3, :3].T + T_true[:3, 3])
    z = T_true[2, 3]
    inside, ring = [], []
    h, w = grey.shape
    vv, uu = np.mgrid[0:h, 0:w]
    for (u, v), d in zip(pts, model.hole_diameters_m):
        r = 0.5 * d * cam.K[0, 0] / z
        x0, x1, y0, y1 = int(max(0, u - 2 * r - 2)), int(min(w, u + 2 * r + 3)), int(max(0, v - 2 * r - 2)), \
            int(min(h, v + 2 * r + 3))
        dd = np.hypot(uu[y0:y1, x0:x1] - u, vv[y0:y1, x0:x1] - v)
        g = grey[y0:y1, x0:x1]
        inside.append(g[dd < 0.8 * r].mean() if np.any(dd < 0.8 * r) else np.nan)
        sel = (dd > 1.2 * r) & (dd < 1.6 * r)
        ring.append(np.median(g[sel]) if np.any(sel) else np.nan)
    return "dark" if np.nanmedian(np.array(inside) - np.array(ring)) < 0 else "bright"


def pose_error(T_est, T_true):
    return (1e3 * float(np.linalg.norm(T_est[:3, 3] - T_true[:3, 3])),
            math.degrees(rotation_angle(T_est[:3, :3].T @ T_true[:3, :3])))


def timed_detect(img, cam, model):
    t0 = time.perf_counter()
    try:
        det = detect_port(img, cam, model)
    except PortNotFound as exc:
        det = exc
    return det, 1e3 * (time.perf_counter() - t0)


def sample_negative(rng, i, inlets, cam):
    kinds = ("decoys", "badge", "bolts", "socket", "partial", "bare")
    kind = kinds[i % len(kinds)]
    T_v = make_transform(rot_z(rng.uniform(-1.0, 1.0)), (3.0, 2.0, 0.0))
    body = BODY_COLORS[list(BODY_COLORS)[int(rng.integers(len(BODY_COLORS)))]]
    model = inlets["type2"]
    T_i = inlet_on_car(T_v, 4.5, 1.85, model, height_m=rng.uniform(0.6, 0.9))
    dist = rng.uniform(0.15, 0.8)
    off = math.radians(rng.uniform(0.0, 30.0))
    phi = rng.uniform(0.0, 2.0 * math.pi)
    T_cam = camera_looking_at(T_i, dist, off * math.cos(phi), off * math.sin(phi), rng.uniform(-0.4, 0.4))
    ring = float(rng.uniform(0.4, 1.1)) if rng.random() < 0.5 else 0.0
    sensor = {"noise_sigma": rng.uniform(0.5, 3.0), "blur_sigma": rng.uniform(0.4, 1.5),
              "auto_exposure": rng.uniform(60.0, 140.0),
              "jpeg_quality": int(rng.integers(40, 95)) if rng.random() < 0.4 else None}
    light = {"intensity": rng.uniform(0.2, 0.9), "ambient": rng.uniform(0.05, 0.35)}
    if kind == "partial":
        face = _grey(rng, 0.02, 0.5)
        look = InletLook(face_rgb=face, pin_rgb=_grey(rng, 0.3, 0.9), pin_gloss=rng.uniform(0.0, 1.2))
        car = CarAppearance(T_v, 4.5, 1.85, 1.5, body, model, T_i, look=look)
        img = render(cam, T_cam, [car], rng, light, ring_light=ring, **sensor)
        return kind, img, ("ccs2",)
    car = CarAppearance(T_v, 4.5, 1.85, 1.5, body, None, T_i)
    if kind == "bare":
        img = render(cam, T_cam, [car], rng, light, ring_light=ring, **sensor)
    else:
        img = render_negative(cam, T_cam, [car], rng, light, kind=kind, ring_light=ring, **sensor)
    return kind, img, TYPES


def pct(a, q):
    return float(np.percentile(a, q)) if len(a) else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run (100 positives per type, 60 negatives)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--n-per-type", type=int, default=None, help="positives per inlet type (default 1000)")
    ap.add_argument("--n-negative", type=int, default=None, help="negative images (default 504)")
    ap.add_argument("--save-failures", metavar="DIR", help="write missed and wrong positives as PNG here")
    ap.add_argument("--no-perturbation", action="store_true",
                    help="diagnosis only: render the nominal inlet with the nominal camera (not the benchmark)")
    args = ap.parse_args(argv)
    global PERTURB
    PERTURB = not args.no_perturbation
    n_per = args.n_per_type or (100 if args.quick else 1000)
    n_neg = args.n_negative or (60 if args.quick else 504)
    rng = np.random.default_rng(args.seed)
    inlets = load_inlets()
    cam = default_wrist_camera()
    stats = defaultdict(lambda: [0, 0])  # (condition, value) -> [found, total]
    errs = {"fine": [], "coarse": []}
    times = []
    render_ms = []
    confident_wrong = 0
    found_total = 0
    failures = []
    calib = []
    t_start = time.time()
    for k in range(n_per * len(TYPES)):
        name = TYPES[k % len(TYPES)]
        band = "fine" if (k // len(TYPES)) % 2 == 0 else "coarse"
        cond, sensor, light, car, T_cam, true_cam, T_true = sample_scene(rng, name, band, inlets, cam)
        t_r = time.perf_counter()
        img = render(true_cam, T_cam, [car], rng, light, **sensor)
        render_ms.append(1e3 * (time.perf_counter() - t_r))
        cond["hole polarity"] = hole_polarity(img, true_cam, car.inlet, T_true)
        if k % 500 == 499:
            print(f"... {k + 1} positives", file=sys.stderr, flush=True)
        det, ms = timed_detect(img, cam, inlets[name])
        times.append(ms)
        ok = not isinstance(det, Exception)
        for key, val in cond.items():
            stats[(key, val)][0] += int(ok)
            stats[(key, val)][1] += 1
        if ok:
            found_total += 1
            et, er = pose_error(det.T_cam_inlet, T_true)
            errs[band].append((et, er))
            if det.covariance is not None:
                sig_t = 1e3 * math.sqrt(max(np.trace(det.covariance[:3, :3]), 0.0))
                sig_r = math.degrees(math.sqrt(max(np.trace(det.covariance[3:, 3:]), 0.0)))
                calib.append((et <= 2.0 * sig_t, er <= 2.0 * sig_r, sig_t, sig_r))
            if et > WRONG_MM or er > WRONG_DEG:
                confident_wrong += 1
                failures.append(("wrong", k, cond, f"{et:.1f} mm {er:.1f} deg", img))
        else:
            failures.append(("missed", k, cond, det.reason, img))
    t_pos = time.time() - t_start

    fp = 0
    fp_kinds = defaultdict(int)
    neg_checks = 0
    for i in range(n_neg):
        kind, img, types = sample_negative(rng, i, inlets, cam)
        for name in types:
            det, ms = timed_detect(img, cam, inlets[name])
            neg_checks += 1
            if not isinstance(det, Exception):
                fp += 1
                fp_kinds[kind] += 1

    # 1280x960: the same kind of scenes with a camera of twice the resolution (timing only).
    cam2 = scaled_camera(cam, 2.0)
    times_1280 = []
    rng2 = np.random.default_rng(args.seed + 1)
    for k in range(30 if args.quick else 90):
        name = TYPES[k % len(TYPES)]
        cond, sensor, light, car, T_cam, true_cam, T_true = sample_scene(rng2, name, ("fine", "coarse")[k % 2],
                                                                          inlets, cam2)
        img = render(cam2, T_cam, [car], rng2, light, **sensor)
        _, ms = timed_detect(img, cam2, inlets[name])
        times_1280.append(ms)

    n_pos = n_per * len(TYPES)
    print(f"vision bench: {n_pos} positives ({n_per} per type), {n_neg} negative images "
          f"({neg_checks} searches), seed {args.seed}, {t_pos:.0f} s for the positives")
    try:
        load = os.getloadavg()
        print(f"machine load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"on {os.cpu_count()} cores; pin to one core with taskset -c 0")
    except OSError:
        pass
    print("\ncondition table (detection rate)")
    print(f"  {'condition':15s} {'value':12s} {'found':>6s} {'total':>6s} {'rate':>6s}")
    order = ["inlet", "range", "view angle", "ring light", "garage light", "hole polarity", "face", "blur", "occlusion", "dirt"]
    min_rate = 1.0
    for key in order:
        for (k2, val), (f, n) in sorted(stats.items(), key=lambda kv: str(kv[0][1])):
            if k2 != key:
                continue
            rate = f / n
            min_rate = min(min_rate, rate) if n >= 10 else min_rate
            print(f"  {key:15s} {str(val):12s} {f:6d} {n:6d} {rate:6.3f}")
    print("\npose error against ground truth (found positives)")
    out = {}
    for band in ("fine", "coarse"):
        e = np.array(errs[band]).reshape(-1, 2)
        print(f"  {band:6s} n={len(e):5d}  translation mm: median {pct(e[:, 0], 50):6.2f} p95 {pct(e[:, 0], 95):6.2f}"
              f" max {e[:, 0].max() if len(e) else float('nan'):7.2f}   rotation deg: median {pct(e[:, 1], 50):5.2f}"
              f" p95 {pct(e[:, 1], 95):5.2f} max {e[:, 1].max() if len(e) else float('nan'):6.2f}")
        out[band] = e
    if calib:
        c_arr = np.array(calib, float)
        print(f"  reported uncertainty (2 sigma of the covariance) covers the error: translation "
              f"{c_arr[:, 0].mean():.2f}, rotation {c_arr[:, 1].mean():.2f} of found positives "
              f"(median sigma {np.median(c_arr[:, 2]):.2f} mm, {np.median(c_arr[:, 3]):.2f} deg)")
    print(f"\nfalse positives: {fp} of {neg_checks} searches {dict(fp_kinds)}")
    print(f"confident wrong (> {WRONG_MM:.0f} mm or > {WRONG_DEG:.0f} deg): {confident_wrong}")
    print(f"time per frame 640x480: median {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms; "
          f"1280x960: median {pct(times_1280, 50):.1f} ms")
    print(f"loopback render 640x480 (simulator, not the robot): median {pct(render_ms, 50):.1f} ms, "
          f"p95 {pct(render_ms, 95):.1f} ms")
    reasons = defaultdict(int)
    for kind, _, _, why, _ in failures:
        reasons[why.split(":")[0].split(" (")[0] if kind == "missed" else "wrong pose"] += 1
    if reasons:
        print("misses by reason: " + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda t: -t[1])))
    if args.save_failures:
        import cv2
        os.makedirs(args.save_failures, exist_ok=True)
        for kind, k, cond, why, img in failures[:200]:
            cv2.imwrite(os.path.join(args.save_failures, f"{kind}_{k:05d}_{cond['inlet']}.png"), img[:, :, ::-1])
            with open(os.path.join(args.save_failures, "index.txt"), "a", encoding="utf-8") as fh:
                fh.write(f"{kind}_{k:05d}_{cond['inlet']}.png {why} {cond}\n")
    f, c = out["fine"], out["coarse"]
    result = {
        "detection_rate": round(found_total / n_pos, 4),
        "min_condition_detection_rate": round(min_rate, 4),
        "false_positives": fp,
        "confident_wrong": confident_wrong,
        "fine_trans_err_median_mm": round(pct(f[:, 0], 50), 3),
        "fine_trans_err_p95_mm": round(pct(f[:, 0], 95), 3),
        "fine_rot_err_median_deg": round(pct(f[:, 1], 50), 3),
        "fine_rot_err_p95_deg": round(pct(f[:, 1], 95), 3),
        "coarse_trans_err_median_mm": round(pct(c[:, 0], 50), 3),
        "coarse_trans_err_p95_mm": round(pct(c[:, 0], 95), 3),
        "coarse_rot_err_median_deg": round(pct(c[:, 1], 50), 3),
        "coarse_rot_err_p95_deg": round(pct(c[:, 1], 95), 3),
        "ms_per_frame_median_640": round(pct(times, 50), 2),
        "ms_per_frame_p95_640": round(pct(times, 95), 2),
        "ms_per_frame_median_1280": round(pct(times_1280, 50), 2),
        "render_ms_median_640": round(pct(render_ms, 50), 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
