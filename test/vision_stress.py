"""Inlet images drawn independently of the loopback renderer, for a stress check of the port detector.

Different conventions on purpose: the inlet face is painted as a flat texture (OpenCV drawing at 0.1 mm per texel)
and warped into the image by the plane's homography; the recessed pin tips are a second texture warped by the
homography of their own plane (``pin_tip_depth_m`` behind the face) and shown only through the openings. No 3-D hole
walls, no ray casting and no lens distortion in the drawing (the camera used here has none). Faces are light (grey to white), the pins are bright metal discs inside a
thin dark gap, a strong side light falls off across the face, and a specular streak crosses it. Only hole centres
and diameters are taken from the inlet model.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from mobicharge_robot.core.geometry import make_transform, rot_x, rot_y, rot_z
from mobicharge_robot.core.vision.camera import CameraModel

TEXEL_M = 1e-4
HALF_M = 0.06  # the texture covers +-6 cm around the inlet origin


def ideal_camera() -> CameraModel:
    K = np.array([[620.0, 0.0, 320.0], [0.0, 620.0, 240.0], [0.0, 0.0, 1.0]])
    return CameraModel(640, 480, K, [0.0] * 5)


def _px(x, y):  # inlet (x right, y up) -> texel (col, row)
    return int(round((x + HALF_M) / TEXEL_M)), int(round((HALF_M - y) / TEXEL_M))


def textures(inlet, rng):
    """(face, openings mask, pins, pins mask) as float32 textures."""
    n = int(round(2 * HALF_M / TEXEL_M))
    body = float(rng.uniform(0.25, 0.85))
    face = float(rng.uniform(0.45, 0.9))
    tex = np.full((n, n), body, np.float32)
    outline = np.array([_px(x, y) for x, y, _ in inlet.outline], np.int32)
    cv2.fillPoly(tex, [outline], face * 0.6)  # a darker rim band around the face
    inner = np.round((outline - outline.mean(axis=0)) * 0.93 + outline.mean(axis=0)).astype(np.int32)
    cv2.fillPoly(tex, [inner], face)
    openings = np.zeros((n, n), np.float32)
    pins = np.zeros((n, n), np.float32)
    pin_mask = np.zeros((n, n), np.float32)
    pin_level = float(rng.uniform(0.9, 1.3))
    gap = face * float(rng.uniform(0.05, 0.3))
    for (x, y, _), d, dp in zip(inlet.keypoints, inlet.hole_diameters_m, inlet.pin_diameters_m):
        c = _px(x, y)
        cv2.circle(tex, c, int(round(0.5 * d / TEXEL_M)), gap, -1, cv2.LINE_AA)  # the dark gap around the pin
        cv2.circle(openings, c, int(round(0.5 * d / TEXEL_M)), 1.0, -1, cv2.LINE_AA)
        cv2.circle(pins, c, int(round(0.5 * dp / TEXEL_M)), pin_level, -1, cv2.LINE_AA)  # the lit pin tip
        cv2.circle(pin_mask, c, int(round(0.5 * dp / TEXEL_M)), 1.0, -1, cv2.LINE_AA)
    return tex, openings, pins, pin_mask


def draw(inlet, T_cam_inlet, camera, rng) -> np.ndarray:
    tex, openings, pins, pin_mask = textures(inlet, rng)
    # texel (col, row) -> inlet (x, y, z) -> image: H = K [r1 r2 (t + z r3)] A
    A = np.array([[TEXEL_M, 0.0, -HALF_M], [0.0, -TEXEL_M, HALF_M], [0.0, 0.0, 1.0]])
    R, t = T_cam_inlet[:3, :3], T_cam_inlet[:3, 3]
    S = np.diag([2.0, 2.0, 1.0])  # supersample: warp at twice the size, then average down
    S[0, 2] = S[1, 2] = 0.5
    size = (2 * camera.width, 2 * camera.height)

    def warp(img, z, border=0.0):
        H = camera.K @ np.column_stack([R[:, 0], R[:, 1], t + z * R[:, 2]]) @ A
        return cv2.warpPerspective(img, S @ H, size, flags=cv2.INTER_AREA, borderValue=border)

    big = warp(tex, 0.0, float(rng.uniform(0.1, 0.4)))
    through = warp(openings, 0.0) * warp(pin_mask, -inlet.pin_tip_depth_m)
    big = big * (1.0 - through) + warp(pins, -inlet.pin_tip_depth_m) * through
    img = cv2.resize(big, (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    # Strong side light: brightness falls off across the image; a specular streak.
    u = np.linspace(-1.0, 1.0, camera.width)[None, :]
    v = np.linspace(-1.0, 1.0, camera.height)[:, None]
    a = rng.uniform(0, 2 * math.pi)
    light = 0.55 + 0.45 * np.clip(np.cos(a) * u + np.sin(a) * v, -1.0, 1.0)
    img = img * light
    streak = np.exp(-((np.cos(a + 1.2) * u + np.sin(a + 1.2) * v - rng.uniform(-0.5, 0.5)) / 0.08) ** 2)
    img = img + 0.25 * streak
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.3)))
    img = 210.0 * img + rng.normal(0.0, 2.5, img.shape)
    grey = np.clip(img, 0, 255).astype(np.uint8)
    rgb = np.stack([grey, grey, (grey * 0.95).astype(np.uint8)], axis=2)
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def random_pose(rng, dist_range=(0.18, 0.5), max_off_deg=25.0) -> np.ndarray:
    dist = rng.uniform(*dist_range)
    off = math.radians(rng.uniform(0.0, max_off_deg))
    phi = rng.uniform(0.0, 2 * math.pi)
    # Inlet z axis towards the camera: optical frame z forward, y down; the inlet's y up.
    R = rot_x(math.pi) @ rot_y(off * math.cos(phi)) @ rot_x(off * math.sin(phi)) @ rot_z(rng.uniform(-0.3, 0.3))
    t = np.array([rng.uniform(-0.2, 0.2) * dist, rng.uniform(-0.15, 0.15) * dist, dist])
    return make_transform(R, t)
