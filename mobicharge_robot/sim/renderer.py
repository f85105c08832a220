"""The loopback simulator's wrist camera: a small painter's-algorithm renderer of real 3-D geometry.

Everything drawn is a planar polygon in the world frame (metres), clipped to the view frustum, sampled densely along
its edges and projected through :class:`CameraModel` *with* lens distortion, then filled at twice the resolution and
averaged down (anti-aliasing). Each car is a box with a recessed inlet pocket, the inlet face (dark plastic) and its
holes: every hole shows the opening, its inner wall, the recessed pin tip and the hole bottom, with the parts that
the opening or the pocket rim hide cut away by casting the camera's rays onto the occluding plane. Shading is
Lambertian plus a soft Blinn-Phong highlight on painted panels; the sensor adds gain jitter, blur, Gaussian noise
and optional JPEG artefacts. The aim is an image on which detection is honest, not easy.

Ground truth only: production nodes never import this module.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..core.vision.camera import CameraModel
from ..core.geometry import invert_transform, make_transform, rot_x, rot_y, rot_z
from ..core.vision.inlets import InletModel

_SS = 2  # supersampling factor
_RADIANCE_SCALE = 180.0  # radiance 1.0 is stored as 180 in the 8-bit supersampled buffer (headroom for brights)
_SHIFT = 3  # fillPoly fractional bits
_NEAR_M = 0.02
_CLIP_UNITS = 1.0e4  # polygon clipping in units of 0.1 mm
_MAX_EDGE_PX = 12.0  # densify polygon edges so distortion bends them smoothly

DEFAULT_LIGHT = {
    "direction": (0.45, -0.55, 0.70),  # towards the light, world frame (a ceiling lamp to one side)
    "intensity": 0.55,
    "ambient": 0.30,
    "camera_light": 0.55,  # the wrist camera's LED ring: Lambertian light from the camera position
    "specular": 0.30,
    "shininess": 18.0,
}

# Appearance constants (albedo 0..1). Hole interiors get less light the deeper they are: ambient occlusion factors.
_FLOOR = (0.42, 0.42, 0.40)
_BACKGROUND = 0.12
_PLASTIC_FACE = (0.17, 0.17, 0.18)
_PLASTIC_BEZEL = (0.11, 0.11, 0.12)
_POCKET_WALL = (0.09, 0.09, 0.10)
_HOLE_WALL = (0.05, 0.05, 0.055)
_HOLE_BOTTOM = (0.03, 0.03, 0.03)
_PIN_METAL = (0.55, 0.50, 0.40)
_OCCL_POCKET, _OCCL_WALL, _OCCL_PIN, _OCCL_PIN_SIDE, _OCCL_BOTTOM = 0.6, 0.45, 0.22, 0.08, 0.15
_BEZEL_MARGIN_M = 0.018

BODY_COLORS = {
    "black": (0.04, 0.04, 0.045),
    "grey": (0.35, 0.36, 0.38),
    "white": (0.85, 0.85, 0.83),
    "red": (0.55, 0.06, 0.05),
    "blue": (0.08, 0.16, 0.45),
    "silver": (0.62, 0.63, 0.65),
}


@dataclass
class CarAppearance:
    """A parked car as the camera sees it.

    ``T_world_vehicle``: vehicle frame (origin on the floor at the footprint centre, x forward, z up).
    Body box ``length_m`` x ``width_m`` x ``height_m`` (m), ``color_rgb`` paint albedo in 0..1.
    ``T_world_inlet``: inlet frame (doc/architecture.md); the body surface around it is at inlet z = recess_depth_m.
    ``flap_open_rad``: how far the charge flap is swung open about its hinge (the pocket's left edge).
    """

    T_world_vehicle: np.ndarray
    length_m: float
    width_m: float
    height_m: float
    color_rgb: Sequence[float]
    inlet: Optional[InletModel]
    T_world_inlet: np.ndarray
    flap_open_rad: float = math.radians(105.0)
    clearance_m: float = 0.16
    look: Optional["InletLook"] = None


@dataclass
class InletLook:
    """How one inlet looks (albedos 0..1); the defaults are the loopback simulator's dark plastic inlet.

    ``pin_gloss``: strength of the glint on the pins' (domed) metal tips under the ring light; ``face_gloss``: the
    face's own specular sheen under the ring light. ``dirt``: number of irregular streaks of grime or dust on the face
    (``dirt_rgb``). ``cable``: an optional cable hanging in front of the inlet, ``(x_m, angle_rad, width_m,
    height_m)`` in the inlet frame: crossing the point (x_m, 0) at ``angle_rad`` from the inlet's y axis,
    ``height_m`` in front of the face; ``cable_rgb`` its albedo.
    """

    face_rgb: Sequence[float] = _PLASTIC_FACE
    bezel_rgb: Sequence[float] = _PLASTIC_BEZEL
    pocket_rgb: Sequence[float] = _POCKET_WALL
    hole_wall_rgb: Sequence[float] = _HOLE_WALL
    hole_bottom_rgb: Sequence[float] = _HOLE_BOTTOM
    pin_rgb: Sequence[float] = _PIN_METAL
    pin_gloss: float = 0.0
    face_gloss: float = 0.0
    dirt: int = 0
    dirt_rgb: Sequence[float] = (0.3, 0.28, 0.25)
    dirt_seed: int = 0
    cable: Optional[Sequence[float]] = None
    cable_rgb: Sequence[float] = (0.04, 0.04, 0.04)


def render(camera: CameraModel, T_world_cam: np.ndarray, cars: List[CarAppearance], rng: np.random.Generator,
           light: Optional[dict] = None, *, noise_sigma: float = 2.0, blur_sigma: float = 0.6,
           jpeg_quality: Optional[int] = None, ring_light: Optional[float] = None, motion_blur_px: float = 0.0,
           motion_angle_rad: float = 0.0, illumination_gradient: Sequence[float] = (0.0, 0.0),
           auto_exposure: Optional[float] = None) -> np.ndarray:
    """Render an RGB image (H, W, 3) uint8 seen from ``T_world_cam`` (the optical frame: z forward, y down).

    ``light``: overrides of :data:`DEFAULT_LIGHT` (``direction`` towards the light in the world frame,
    ``intensity``, ``ambient``, ``specular``, ``shininess``). ``noise_sigma`` is in 8-bit grey levels,
    ``blur_sigma`` in pixels (focus blur); ``jpeg_quality`` (1..100) adds compression artefacts.
    ``ring_light``: intensity of the wrist camera's LED ring (a light at the camera: 0 switches it off; None keeps
    the light's ``camera_light``); it also makes glossy pins glint. ``motion_blur_px``: length of a linear motion
    blur along ``motion_angle_rad`` (image frame). ``illumination_gradient``: relative brightness change per image
    width along u and per image height along v (uneven garage light, vignetting). ``auto_exposure``: a target mean
    grey level (0..255) of the image's central half that the exposure gain is set to, as a camera's auto exposure does
    (the gain is limited to 0.5..6 times the nominal one and amplifies the noise with the signal).
    """
    if ring_light is not None:
        light = dict(light or {})
        light["camera_light"] = float(ring_light)
    scene = _Scene(camera, T_world_cam, light)
    scene.draw_floor(cars)
    for car in scene.far_to_near(cars):
        scene.draw_car(car)
        if car.inlet is not None:
            scene.draw_inlet(car)
    return scene.finish(rng, noise_sigma, blur_sigma, jpeg_quality, motion_blur_px, motion_angle_rad,
                        illumination_gradient, auto_exposure)


def render_negative(camera: CameraModel, T_world_cam: np.ndarray, cars: List[CarAppearance],
                    rng: np.random.Generator, light: Optional[dict] = None, *, kind: str = "decoys",
                    ring_light: Optional[float] = None, **sensor) -> np.ndarray:
    """Like :func:`render`, but each car shows, where its inlet would be, only round features that are *not* an
    inlet. ``kind``: 'decoys' (a closed fuel-cap-like disc with a seam, a badge with rings, a row of dark bolt
    heads), 'badge' (a large emblem of concentric rings and round studs), 'bolts' (a grid of bolt heads at about the
    inlet's hole pitch) or 'socket' (an empty round socket: the inlet's bezel and pocket with a face that carries a
    different, sparser hole pattern). The port detector must find nothing here."""
    if kind not in ("decoys", "badge", "bolts", "socket"):
        raise ValueError(f"unknown negative kind '{kind}' (known: decoys, badge, bolts, socket)")
    if ring_light is not None:
        light = dict(light or {})
        light["camera_light"] = float(ring_light)
    scene = _Scene(camera, T_world_cam, light)
    scene.draw_floor(cars)
    for car in scene.far_to_near(cars):
        scene.draw_car(car)
        if kind == "decoys":
            scene.draw_decoys(car)
        else:
            getattr(scene, f"draw_{kind}")(car)
    return scene.finish(rng, sensor.get("noise_sigma", 2.0), sensor.get("blur_sigma", 0.6),
                        sensor.get("jpeg_quality"), sensor.get("motion_blur_px", 0.0),
                        sensor.get("motion_angle_rad", 0.0), sensor.get("illumination_gradient", (0.0, 0.0)),
                        sensor.get("auto_exposure"))


# ---------------------------------------------------------------------------------------------------------------


def _circle(cx: float, cy: float, r: float, z: float, n: int = 40) -> np.ndarray:
    a = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a), np.full(n, z)], axis=1)


def _offset_convex(poly_xy: np.ndarray, margin: float) -> np.ndarray:
    """Grow a convex counter-clockwise polygon by ``margin`` (m) along its vertex normals."""
    prev_e = poly_xy - np.roll(poly_xy, 1, axis=0)
    next_e = np.roll(poly_xy, -1, axis=0) - poly_xy
    n = np.stack([prev_e[:, 1], -prev_e[:, 0]], 1) / np.linalg.norm(prev_e, axis=1, keepdims=True)
    n += np.stack([next_e[:, 1], -next_e[:, 0]], 1) / np.linalg.norm(next_e, axis=1, keepdims=True)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return poly_xy + margin * n


def _clip_plane(poly: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Keep the part of a 3-D polygon where ``normal . p >= offset`` (Sutherland-Hodgman, one plane)."""
    d = poly @ normal - offset
    if np.all(d >= 0):
        return poly
    if np.all(d < 0):
        return poly[:0]
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if d[i] >= 0:
            out.append(poly[i])
        if (d[i] >= 0) != (d[j] >= 0):
            out.append(poly[i] + (d[i] / (d[i] - d[j])) * (poly[j] - poly[i]))
    return np.array(out)


class _Scene:
    def __init__(self, camera: CameraModel, T_world_cam: np.ndarray, light: Optional[dict]):
        self.cam = camera
        self.T_cam_world = invert_transform(np.asarray(T_world_cam, float))
        self.cam_pos = np.asarray(T_world_cam, float)[:3, 3]
        lt = dict(DEFAULT_LIGHT)
        lt.update(light or {})
        d = np.asarray(lt["direction"], float)
        self.light_dir = d / np.linalg.norm(d)
        self.light = lt
        self.img = np.empty((camera.height * _SS, camera.width * _SS, 3), np.uint8)
        self.img[:] = np.uint8(round(_RADIANCE_SCALE * _BACKGROUND))  # the dim far end of the garage
        # Which painted panel covers each (supersampled) pixel, for the per-pixel specular highlight.
        self.labels = np.zeros((camera.height * _SS, camera.width * _SS), np.uint8)
        self.glossy: Dict[int, np.ndarray] = {}  # label -> the painted panel's unit normal (world)
        hx, hy = camera.half_fov_rad()
        self.tan_x = math.tan(min(hx * 1.12, math.radians(80)))
        self.tan_y = math.tan(min(hy * 1.12, math.radians(80)))
        self.fx = float(camera.K[0, 0])

    # ---------------------------------------------------------------- primitives

    def far_to_near(self, cars):
        return sorted(cars, key=lambda c: -np.linalg.norm(np.asarray(c.T_world_vehicle)[:3, 3] - self.cam_pos))

    def _to_cam(self, pts_world: np.ndarray) -> np.ndarray:
        return pts_world @ self.T_cam_world[:3, :3].T + self.T_cam_world[:3, 3]

    def _frustum_clip(self, pc: np.ndarray) -> np.ndarray:
        tx, ty = self.tan_x, self.tan_y
        inside = ((pc[:, 2] >= _NEAR_M) & (np.abs(pc[:, 0]) <= tx * pc[:, 2])
                  & (np.abs(pc[:, 1]) <= ty * pc[:, 2]))
        if np.all(inside):
            return pc
        for normal, off in (((0.0, 0.0, 1.0), _NEAR_M), ((-1.0, 0.0, tx), 0.0), ((1.0, 0.0, tx), 0.0),
                            ((0.0, -1.0, ty), 0.0), ((0.0, 1.0, ty), 0.0)):
            pc = _clip_plane(pc, np.array(normal), off)
            if len(pc) < 3:
                return pc[:0]
        return pc

    def _densify(self, pc: np.ndarray) -> np.ndarray:
        nxt = np.roll(pc, -1, axis=0)
        seg_px = np.linalg.norm(nxt - pc, axis=1) / np.minimum(pc[:, 2], nxt[:, 2]) * self.fx
        steps = np.clip(np.ceil(seg_px / _MAX_EDGE_PX), 1, 96).astype(int)
        if np.all(steps == 1):
            return pc
        parts = [pc[i] + (nxt[i] - pc[i]) * (np.arange(k)[:, None] / k) for i, k in enumerate(steps)]
        return np.concatenate(parts)

    def _fill(self, pts_world: np.ndarray, color, label: Optional[int] = 0) -> bool:
        """Paint a planar polygon (world frame); ``label`` marks the glossy-panel buffer (0: not glossy, None:
        leave it, for parts that lie inside something already marked)."""
        pc = self._frustum_clip(self._to_cam(np.asarray(pts_world, float)))
        if len(pc) < 3:
            return False
        px = self.cam.project(self._densify(pc))
        pts = np.round((px * _SS + 0.5 * (_SS - 1)) * (1 << _SHIFT)).astype(np.int32)
        rgb = tuple(min(255.0, _RADIANCE_SCALE * float(c)) for c in color)
        cv2.fillPoly(self.img, [pts], rgb, lineType=cv2.LINE_8, shift=_SHIFT)
        if label is not None:
            cv2.fillPoly(self.labels, [pts], label, lineType=cv2.LINE_8, shift=_SHIFT)
        return True

    def _shade(self, albedo, normal_world: np.ndarray, occlusion: float = 1.0) -> np.ndarray:
        """Flat Lambertian shade: ambient, the ceiling lamp, and the camera's LED ring (treated as a directional
        light along the optical axis, which is close enough at arm's length)."""
        lt = self.light
        lit = lt["ambient"] + lt["intensity"] * max(0.0, float(np.dot(normal_world, self.light_dir)))
        lit += lt.get("camera_light", 0.0) * max(0.0, float(np.dot(normal_world, -self.T_cam_world[2, :3])))
        return np.asarray(albedo, float) * occlusion * lit

    def _facing(self, normal_world: np.ndarray, point_world: np.ndarray) -> bool:
        return float(np.dot(normal_world, self.cam_pos - point_world)) > 1e-9

    # ---------------------------------------------------------------- scene parts

    def draw_floor(self, cars):
        c = self.cam_pos
        half = 8.0
        quad = np.array([[c[0] - half, c[1] - half, 0.0], [c[0] + half, c[1] - half, 0.0],
                         [c[0] + half, c[1] + half, 0.0], [c[0] - half, c[1] + half, 0.0]])
        up = np.array([0.0, 0.0, 1.0])
        if not self._facing(up, quad[0]):
            return
        self._fill(quad, self._shade(_FLOOR, up))
        for car in cars:
            T = np.asarray(car.T_world_vehicle, float)
            hl, hw = 0.5 * car.length_m + 0.08, 0.5 * car.width_m + 0.08
            local = np.array([[hl, hw, 0.001], [-hl, hw, 0.001], [-hl, -hw, 0.001], [hl, -hw, 0.001]])
            self._fill(local @ T[:3, :3].T + T[:3, 3], self._shade(_FLOOR, up, 0.35))

    def draw_car(self, car: CarAppearance):
        T = np.asarray(car.T_world_vehicle, float)
        hl, hw = 0.5 * car.length_m, 0.5 * car.width_m
        z0, z1 = car.clearance_m, car.height_m
        faces = [  # (normal in vehicle frame, corners counter-clockwise seen from outside)
            ((1, 0, 0), [(hl, -hw, z0), (hl, hw, z0), (hl, hw, z1), (hl, -hw, z1)]),
            ((-1, 0, 0), [(-hl, hw, z0), (-hl, -hw, z0), (-hl, -hw, z1), (-hl, hw, z1)]),
            ((0, 1, 0), [(hl, hw, z0), (-hl, hw, z0), (-hl, hw, z1), (hl, hw, z1)]),
            ((0, -1, 0), [(-hl, -hw, z0), (hl, -hw, z0), (hl, -hw, z1), (-hl, -hw, z1)]),
            ((0, 0, 1), [(hl, -hw, z1), (hl, hw, z1), (-hl, hw, z1), (-hl, -hw, z1)]),
            ((0, 0, -1), [(hl, hw, z0), (hl, -hw, z0), (-hl, -hw, z0), (-hl, hw, z0)]),
        ]
        for n_v, corners in faces:
            n = T[:3, :3] @ np.asarray(n_v, float)
            pts = np.asarray(corners, float) @ T[:3, :3].T + T[:3, 3]
            if not self._facing(n, pts[0]):
                continue
            label = len(self.glossy) + 1
            if label < 255 and self._fill(pts, self._shade(car.color_rgb, n), label):
                self.glossy[label] = n

    def _inlet_world(self, car: CarAppearance, pts: np.ndarray) -> np.ndarray:
        T = np.asarray(car.T_world_inlet, float)
        return pts @ T[:3, :3].T + T[:3, 3]

    def _through(self, poly: np.ndarray, aperture_xy: np.ndarray, z_ap: float, cam_local: np.ndarray):
        """The part of ``poly`` (local frame, all at or below ``z_ap``) seen through a convex aperture at
        ``z = z_ap``, expressed as points on the aperture plane (they project to the same pixels)."""
        if cam_local[2] <= z_ap + 1e-6:
            return None
        s = (z_ap - cam_local[2]) / (poly[:, 2] - cam_local[2])
        on_plane = cam_local[:2] + s[:, None] * (poly[:, :2] - cam_local[:2])
        # The hull makes this also right for solids given as several outlines (a pin: its two end circles).
        # intersectConvexConvex uses absolute tolerances: work in 0.1 mm units, where it is exact enough.
        hull = cv2.convexHull((on_plane * _CLIP_UNITS).astype(np.float32))
        area, inter = cv2.intersectConvexConvex(hull, (aperture_xy * _CLIP_UNITS).astype(np.float32))
        if inter is None or area <= 1e-3:
            return None
        inter = inter.reshape(-1, 2).astype(float) / _CLIP_UNITS
        return np.hstack([inter, np.full((len(inter), 1), z_ap)])

    def _ring_gloss(self, normal_world: np.ndarray, point_world: np.ndarray, gloss: float,
                    shininess: float = 12.0) -> float:
        """Specular reflection of the ring light (at the camera) off a surface: the half vector is the view vector."""
        ring = float(self.light.get("camera_light", 0.0))
        if gloss <= 0.0 or ring <= 0.0:
            return 0.0
        v = self.cam_pos - point_world
        c = max(0.0, float(np.dot(normal_world, v / np.linalg.norm(v))))
        return gloss * ring * c ** shininess

    def draw_inlet(self, car: CarAppearance):
        m = car.inlet
        look = car.look or InletLook()
        T = np.asarray(car.T_world_inlet, float)
        cam_local = invert_transform(T)[:3, :3] @ self.cam_pos + invert_transform(T)[:3, 3]
        n_world = T[:3, 2]
        if cam_local[2] <= m.recess_depth_m:
            return  # seen from behind or edge-on: only the body panel shows
        rec = m.recess_depth_m
        outline = m.outline[:, :2]
        bezel = _offset_convex(outline, _BEZEL_MARGIN_M)
        self._fill(self._inlet_world(car, np.hstack([bezel, np.full((len(bezel), 1), rec + 5e-4)])),
                   self._shade(look.bezel_rgb, n_world))
        # The pocket's side walls: everything inside the rim that the face does not cover.
        self._fill(self._inlet_world(car, np.hstack([outline, np.full((len(outline), 1), rec)])),
                   self._shade(look.pocket_rgb, n_world, _OCCL_POCKET), None)
        face = self._through(m.outline, outline, rec, cam_local)
        if face is not None:
            sheen = self._ring_gloss(n_world, T[:3, 3], look.face_gloss, 6.0)
            self._fill(self._inlet_world(car, face), self._shade(look.face_rgb, n_world) + sheen, None)
        if look.dirt > 0:
            self._draw_dirt(car, look, outline, rec, cam_local, n_world)
        depth = m.hole_depth_m
        for (hx, hy, _), d, d_pin in zip(m.keypoints, m.hole_diameters_m, m.pin_diameters_m):
            r = 0.5 * d
            opening = _circle(hx, hy, r, 0.0)
            seen = self._through(opening, outline, rec, cam_local)
            if seen is None:
                continue
            self._fill(self._inlet_world(car, seen), self._shade(look.hole_wall_rgb, n_world, _OCCL_WALL), None)
            tip = _circle(hx, hy, 0.5 * d_pin, -m.pin_tip_depth_m, 28)
            pin_body = np.vstack([tip, _circle(hx, hy, 0.5 * d_pin, -depth, 28)])
            tip_point = self._inlet_world(car, np.array([[hx, hy, -m.pin_tip_depth_m]]))[0]
            # A domed tip always shows a glint near its middle; its flat shoulder reflects the ring light less.
            glint = self._ring_gloss(n_world, tip_point, look.pin_gloss, 1.0)
            parts = [(_circle(hx, hy, r, -depth, 28), self._shade(look.hole_bottom_rgb, n_world, _OCCL_BOTTOM)),
                     (pin_body, self._shade(look.pin_rgb, n_world, _OCCL_PIN_SIDE)),
                     (tip, self._shade(look.pin_rgb, n_world, _OCCL_PIN) + 0.3 * glint)]
            if glint > 0.0:
                parts.append((_circle(hx, hy, 0.22 * d_pin, -m.pin_tip_depth_m + 1e-4, 16),
                              np.full(3, 0.5 * _OCCL_PIN + 1.6 * glint)))
            for solid, color in parts:
                part = self._through(solid, opening[:, :2], 0.0, cam_local)
                if part is not None:
                    part = self._through(part, outline, rec, cam_local)
                if part is not None:
                    self._fill(self._inlet_world(car, part), color, None)
        self._draw_flap(car, bezel, rec)
        if look.cable is not None:
            self._draw_cable(car, look, n_world)

    def _draw_dirt(self, car, look, outline, rec, cam_local, n_world):
        """Irregular elongated streaks on the face (never round: dust and grime smear)."""
        rng = np.random.default_rng(look.dirt_seed)
        lo, hi = outline.min(axis=0), outline.max(axis=0)
        for _ in range(int(look.dirt)):
            c = rng.uniform(lo, hi)
            ang = rng.uniform(0.0, math.pi)
            length, width = rng.uniform(0.006, 0.03), rng.uniform(0.0015, 0.005)
            a = np.linspace(0.0, 2.0 * math.pi, 9, endpoint=False)
            rad = rng.uniform(0.6, 1.0, len(a))
            pts = np.stack([0.5 * length * rad * np.cos(a), 0.5 * width * rad * np.sin(a)], axis=1)
            rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
            poly = pts @ rot.T + c
            hull = cv2.convexHull((poly * _CLIP_UNITS).astype(np.float32))
            area, inter = cv2.intersectConvexConvex(hull, (outline * _CLIP_UNITS).astype(np.float32))
            if inter is None or area <= 1e-3:
                continue
            inter = inter.reshape(-1, 2).astype(float) / _CLIP_UNITS
            seen = self._through(np.hstack([inter, np.full((len(inter), 1), 1e-4)]), outline, rec, cam_local)
            if seen is not None:
                self._fill(self._inlet_world(car, seen), self._shade(look.dirt_rgb, n_world), None)

    def _draw_cable(self, car, look, n_world):
        x0, ang, width, height = (float(v) for v in look.cable)
        direction = np.array([math.sin(ang), math.cos(ang)])
        normal = np.array([-direction[1], direction[0]])
        centre = np.array([x0, 0.0])
        ends = [centre - 0.15 * direction, centre + 0.15 * direction]
        quad = np.array([ends[0] - 0.5 * width * normal, ends[1] - 0.5 * width * normal,
                         ends[1] + 0.5 * width * normal, ends[0] + 0.5 * width * normal])
        pts = self._inlet_world(car, np.hstack([quad, np.full((4, 1), height)]))
        self._fill(pts, self._shade(look.cable_rgb, n_world) + 0.05)

    def _draw_flap(self, car: CarAppearance, bezel: np.ndarray, rec: float):
        """The charge flap, hinged on the bezel's left edge and swung open towards the viewer's left."""
        x0, x1 = bezel[:, 0].min(), bezel[:, 0].max()
        y0, y1 = bezel[:, 1].min(), bezel[:, 1].max()
        hinge_z = rec + 0.002
        closed = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]]) - [x0, 0.0, 0.0]
        # Opening swings the free edge out of the body (+z): a rotation about the hinge's -y axis.
        R = rot_y(-car.flap_open_rad)
        local = closed @ R.T + [x0, 0.0, hinge_z]
        pts = self._inlet_world(car, local)
        T = np.asarray(car.T_world_inlet, float)
        n_outer = T[:3, :3] @ (R @ np.array([0.0, 0.0, 1.0]))
        if self._facing(n_outer, pts[0]):
            self._fill(pts, self._shade(car.color_rgb, n_outer))
        else:
            self._fill(pts, self._shade(_PLASTIC_BEZEL, -n_outer))

    def draw_decoys(self, car: CarAppearance):
        """Round things on a body panel that are not an inlet, centred where the inlet would be."""
        T = np.asarray(car.T_world_inlet, float)
        n_world = T[:3, 2]
        cam_local = invert_transform(T)[:3, :3] @ self.cam_pos + invert_transform(T)[:3, 3]
        if cam_local[2] <= 0.0:
            return
        z = 0.0005

        def shade(albedo, occlusion=1.0):
            return self._shade(albedo, n_world, occlusion)

        # A closed fuel cap: a slightly darker disc with a dark seam around it.
        self._fill(self._inlet_world(car, _circle(0.0, 0.0, 0.058, z, 64)), shade(_PLASTIC_BEZEL))
        self._fill(self._inlet_world(car, _circle(0.0, 0.0, 0.055, 2 * z, 64)),
                   shade(car.color_rgb, 0.9))
        self._fill(self._inlet_world(car, _circle(0.0, -0.035, 0.006, 3 * z, 24)),
                   shade(_HOLE_WALL))  # the finger recess
        # A badge: chrome ring with a dark centre and a dark inner dot.
        self._fill(self._inlet_world(car, _circle(0.11, 0.02, 0.022, z, 48)), shade((0.7, 0.7, 0.72)))
        self._fill(self._inlet_world(car, _circle(0.11, 0.02, 0.017, 2 * z, 48)), shade(_HOLE_WALL))
        self._fill(self._inlet_world(car, _circle(0.11, 0.02, 0.006, 3 * z, 24)),
                   shade((0.5, 0.5, 0.52)))
        # Bolt heads in a straight row, and two rivets.
        for i in range(4):
            self._fill(self._inlet_world(car, _circle(-0.10, -0.05 + 0.022 * i, 0.005, z, 24)), shade(_HOLE_BOTTOM))
        for x in (0.09, 0.135):
            self._fill(self._inlet_world(car, _circle(x, -0.06, 0.0035, z, 20)), shade(_HOLE_BOTTOM))

    def _decal(self, car, T, pts_xy, z, color):
        self._fill(self._inlet_world(car, np.hstack([pts_xy, np.full((len(pts_xy), 1), z)])), color)

    def draw_badge(self, car: CarAppearance):
        """A large emblem: concentric chrome and dark rings with a ring of round studs (a round-feature pattern)."""
        T = np.asarray(car.T_world_inlet, float)
        n = T[:3, 2]
        rng = np.random.default_rng(int(1e3 * abs(T[0, 3]) + 7))
        r0 = rng.uniform(0.025, 0.045)
        self._fill(self._inlet_world(car, _circle(0.0, 0.0, r0, 5e-4, 64)), self._shade((0.7, 0.7, 0.72), n))
        self._fill(self._inlet_world(car, _circle(0.0, 0.0, 0.8 * r0, 1e-3, 64)), self._shade((0.06,) * 3, n))
        k = int(rng.integers(5, 9))
        for i in range(k):
            a = 2.0 * math.pi * i / k
            self._fill(self._inlet_world(car, _circle(0.55 * r0 * math.cos(a), 0.55 * r0 * math.sin(a),
                                                      0.1 * r0, 1.5e-3, 20)), self._shade((0.75,) * 3, n))
        self._fill(self._inlet_world(car, _circle(0.0, 0.0, 0.15 * r0, 1.5e-3, 24)), self._shade((0.6,) * 3, n))

    def draw_bolts(self, car: CarAppearance):
        """Bolt heads (dark or bright) on a regular grid at about an inlet's hole pitch, with a few missing."""
        T = np.asarray(car.T_world_inlet, float)
        n = T[:3, 2]
        rng = np.random.default_rng(int(1e3 * abs(T[1, 3]) + 11))
        pitch = rng.uniform(0.012, 0.03)
        albedo = (0.03,) * 3 if rng.random() < 0.5 else (0.8,) * 3
        r = rng.uniform(0.2, 0.35) * pitch
        for i in range(-1, 2):
            for j in range(-2, 2):
                if rng.random() < 0.2:
                    continue
                self._fill(self._inlet_world(car, _circle(i * pitch, j * pitch, r, 5e-4, 20)),
                           self._shade(albedo, n))

    def draw_socket(self, car: CarAppearance):
        """An empty round socket (a 12 V outlet or a domestic socket in a recess): bezel, dark face and 1-3 holes."""
        T = np.asarray(car.T_world_inlet, float)
        n = T[:3, 2]
        rng = np.random.default_rng(int(1e3 * abs(T[2, 3]) + 13))
        R = rng.uniform(0.02, 0.03)
        self._fill(self._inlet_world(car, _circle(0.0, 0.0, R + 0.012, 5e-4, 64)), self._shade((0.1,) * 3, n))
        self._fill(self._inlet_world(car, _circle(0.0, 0.0, R, 1e-3, 64)), self._shade((0.2,) * 3, n))
        k = int(rng.integers(1, 4))
        for i in range(k):
            a = 2.0 * math.pi * i / k + 0.3
            rr = 0.0 if k == 1 else 0.5 * R
            self._fill(self._inlet_world(car, _circle(rr * math.cos(a), rr * math.sin(a),
                                                      0.25 * R if k == 1 else 0.12 * R, 1.5e-3, 24)),
                       self._shade((0.02,) * 3, n))

    # ---------------------------------------------------------------- sensor

    def _specular(self) -> np.ndarray:
        """A soft Blinn-Phong highlight per painted panel, evaluated on a coarse grid of viewing rays."""
        h, w = self.cam.height, self.cam.width
        step = 4
        spec = np.zeros((h // step, w // step), np.float32)
        if not self.glossy:
            return spec
        rays_cam = _grid_rays(self.cam, step)
        R = self.T_cam_world[:3, :3].T
        rays = rays_cam.reshape(-1, 3) @ R.T
        lab = self.labels[(_SS * step) // 2::_SS * step, (_SS * step) // 2::_SS * step][:h // step, :w // step]
        lab = lab.ravel()
        ks, shin = float(self.light["specular"]), float(self.light["shininess"])
        out = spec.ravel()
        for label, n in self.glossy.items():
            sel = lab == label
            if not np.any(sel):
                continue
            v = -rays[sel]
            hv = v + self.light_dir
            hv /= np.linalg.norm(hv, axis=1, keepdims=True)
            out[sel] = ks * self.light["intensity"] * np.clip(hv @ n, 0.0, 1.0) ** shin
        return out.reshape(spec.shape)

    def finish(self, rng: np.random.Generator, noise_sigma: float, blur_sigma: float,
               jpeg_quality: Optional[int], motion_blur_px: float = 0.0, motion_angle_rad: float = 0.0,
               illumination_gradient: Sequence[float] = (0.0, 0.0),
               auto_exposure: Optional[float] = None) -> np.ndarray:
        h, w = self.cam.height, self.cam.width
        gain = float(rng.uniform(0.9, 1.1)) * 255.0  # exposure jitter, radiance 1.0 -> 255 grey levels
        small = cv2.resize(self.img, (w, h), interpolation=cv2.INTER_AREA)
        if auto_exposure is not None:
            centre = float(small[h // 4:3 * h // 4, w // 4:3 * w // 4].mean()) * gain / _RADIANCE_SCALE
            gain *= float(np.clip(float(auto_exposure) / max(centre, 1e-3), 0.5, 6.0))
        if blur_sigma > 0:
            small = cv2.GaussianBlur(small, (0, 0), blur_sigma)  # optics; on 8 bits, which is cheap
        if motion_blur_px >= 1.0:
            small = cv2.filter2D(small, -1, _motion_kernel(motion_blur_px, motion_angle_rad))
        img = small.astype(np.float32)
        gu, gv = (float(g) for g in illumination_gradient)
        if gu or gv:
            ramp = (1.0 + gu * (np.arange(w, dtype=np.float32) / w - 0.5))[None, :] \
                * (1.0 + gv * (np.arange(h, dtype=np.float32) / h - 0.5))[:, None]
            img *= np.clip(ramp, 0.05, None)[:, :, None]
        if noise_sigma > 0:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            cv2.scaleAdd(_noise_window(rng, h, w), sign * float(noise_sigma) * _RADIANCE_SCALE / gain, img, dst=img)
        spec = self._specular()
        if spec.max() * gain > 0.5:  # skip highlights below half a grey level
            spec_full = cv2.resize(spec * _RADIANCE_SCALE, (w, h), interpolation=cv2.INTER_LINEAR)
            glossy = np.where(self.labels > 0, np.uint8(255), np.uint8(0))
            mask = cv2.resize(glossy, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) * (1.0 / 255.0)
            img += (spec_full * mask)[:, :, None]
        # gain * radiance, rounded and clipped like an ADC
        out = cv2.convertScaleAbs(np.maximum(img, 0.0, out=img), alpha=gain / _RADIANCE_SCALE)
        if jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
        return out


def _motion_kernel(length_px: float, angle_rad: float) -> np.ndarray:
    """A normalised line kernel ``length_px`` long along ``angle_rad`` (image u towards v)."""
    size = int(math.ceil(length_px)) | 1
    k = np.zeros((size, size), np.float32)
    c = 0.5 * (size - 1)
    for s in np.linspace(-0.5 * length_px, 0.5 * length_px, 4 * size):
        u, v = c + s * math.cos(angle_rad), c + s * math.sin(angle_rad)
        k[int(round(v)), int(round(u))] += 1.0
    return k / k.sum()


_RAY_CACHE: Dict[tuple, np.ndarray] = {}
_NOISE_BANK: Dict[tuple, np.ndarray] = {}
_NOISE_MARGIN = 64


def _noise_window(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Unit Gaussian noise (h, w, 3) float32: a randomly placed window of a cached field (its sign is drawn by the
    caller), which costs a fraction of drawing fresh noise every frame."""
    key = (h, w)
    if key not in _NOISE_BANK:
        _NOISE_BANK.clear()
        # A fixed seed, so that an image depends only on the caller's generator, not on what was rendered before.
        field = np.random.default_rng(0x5EED).standard_normal((h + _NOISE_MARGIN, w + _NOISE_MARGIN, 3),
                                                              dtype=np.float32)
        _NOISE_BANK[key] = field
    dy, dx = (int(v) for v in rng.integers(0, _NOISE_MARGIN, 2))
    return _NOISE_BANK[key][dy:dy + h, dx:dx + w]


def _grid_rays(camera: CameraModel, step: int) -> np.ndarray:
    """Unit viewing rays (optical frame) through every ``step``-th pixel, cached per camera."""
    key = (camera.width, camera.height, step, tuple(camera.K.ravel()), tuple(camera.D))
    if key not in _RAY_CACHE:
        us = np.arange(camera.width // step) * step + 0.5 * (step - 1)
        vs = np.arange(camera.height // step) * step + 0.5 * (step - 1)
        uu, vv = np.meshgrid(us, vs)
        rays = camera.pixel_rays(np.stack([uu.ravel(), vv.ravel()], axis=1))
        _RAY_CACHE.clear()
        _RAY_CACHE[key] = rays.reshape(len(vs), len(us), 3)
    return _RAY_CACHE[key]


# ---------------------------------------------------------------- scene helpers for tests, benchmarks and the CLI


def inlet_on_car(T_world_vehicle: np.ndarray, length_m: float, width_m: float, inlet: InletModel,
                 x_m: float = -1.4, height_m: float = 0.75, side: int = 1) -> np.ndarray:
    """T_world_inlet of an inlet on a car's side panel (``side`` +1 left, -1 right), ``x_m`` along the car from its
    centre and ``height_m`` above the floor; the body surface ends up at the inlet's z = recess_depth_m."""
    T = np.asarray(T_world_vehicle, float)
    y = side * (0.5 * width_m - inlet.recess_depth_m)
    # Inlet z along the panel normal (vehicle +-y), inlet y up (vehicle z), x = y cross z.
    z_axis = np.array([0.0, float(side), 0.0])
    y_axis = np.array([0.0, 0.0, 1.0])
    R_vi = np.stack([np.cross(y_axis, z_axis), y_axis, z_axis], axis=1)
    return T @ make_transform(R_vi, (x_m, y, height_m))


def camera_looking_at(T_world_inlet: np.ndarray, distance_m: float, yaw_rad: float = 0.0, pitch_rad: float = 0.0,
                      roll_rad: float = 0.0, offset_px=(0.0, 0.0), fx: float = 600.0) -> np.ndarray:
    """T_world_cam of a camera ``distance_m`` from the inlet origin, displaced by ``yaw_rad`` about the inlet's y
    axis and ``pitch_rad`` about its x axis (the off-axis viewing angle), rolled about its optical axis, and aimed
    so that the inlet appears ``offset_px`` (pixels, at focal length ``fx``) away from the image centre."""
    T_inlet = np.asarray(T_world_inlet, float)
    R_off = rot_y(yaw_rad) @ rot_x(-pitch_rad)
    pos_local = R_off @ np.array([0.0, 0.0, distance_m])
    # Optical axes: z towards the inlet, y down (inlet -y), x = y cross z.
    z_c = -pos_local / np.linalg.norm(pos_local)
    y_c = np.array([0.0, -1.0, 0.0]) - z_c * (-z_c[1])
    y_c /= np.linalg.norm(y_c)
    x_c = np.cross(y_c, z_c)
    R_look = np.stack([x_c, y_c, z_c], axis=1) @ rot_z(roll_rad)
    du, dv = offset_px
    aim = rot_y(math.atan2(-du, fx)) @ rot_x(math.atan2(dv, fx))
    return T_inlet @ make_transform(R_look @ aim, pos_local)
