"""The loopback camera renderer: output format, geometry where it belongs, and appearance (render time is printed by bench/vision.py)."""
import math

import cv2
import numpy as np
import pytest

from mobicharge_robot.core.vision.camera import default_wrist_camera
from mobicharge_robot.core.geometry import invert_transform, make_transform, rot_z
from mobicharge_robot.core.vision.inlets import load_inlets
from mobicharge_robot.sim.renderer import (BODY_COLORS, CarAppearance, camera_looking_at, inlet_on_car, render,
                                           render_negative)

CAM = default_wrist_camera()
INLETS = load_inlets()


def _scene(inlet="ccs2", dist=0.3, yaw=0.0, pitch=0.0, color="white"):
    T_v = make_transform(rot_z(0.4), (3.0, 2.0, 0.0))
    T_i = inlet_on_car(T_v, 4.5, 1.85, INLETS[inlet])
    car = CarAppearance(T_v, 4.5, 1.85, 1.5, BODY_COLORS[color], INLETS[inlet], T_i)
    return car, camera_looking_at(T_i, dist, yaw, pitch)


def _px(T_world_cam, T_world_inlet, pts_inlet):
    T = invert_transform(T_world_cam) @ T_world_inlet
    return CAM.project(np.asarray(pts_inlet) @ T[:3, :3].T + T[:3, 3])


def _mean(img, uv, r=1):
    u, v = int(round(uv[0])), int(round(uv[1]))
    return float(img[v - r:v + r + 1, u - r:u + r + 1].astype(float).mean())


def test_output_is_an_rgb_uint8_image_of_the_camera_size():
    car, T_cam = _scene()
    img = render(CAM, T_cam, [car], np.random.default_rng(0))
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert img.std() > 10  # not blank


def test_same_seed_same_image_and_noise_differs_between_seeds():
    car, T_cam = _scene()
    a = render(CAM, T_cam, [car], np.random.default_rng(7))
    b = render(CAM, T_cam, [car], np.random.default_rng(7))
    c = render(CAM, T_cam, [car], np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("inlet", ["ccs2", "type2", "ccs1"])
@pytest.mark.parametrize("color", ["white", "black", "grey"])
def test_hole_centres_are_darker_than_the_face(inlet, color):
    car, T_cam = _scene(inlet, 0.3, math.radians(8), 0.0, color)
    img = render(CAM, T_cam, [car], np.random.default_rng(1), noise_sigma=1.0).mean(axis=2)
    m = INLETS[inlet]
    # Face points well clear of every hole and of the face edge.
    face_pts = np.array([[0.0, -0.026, 0.0], [0.020, -0.018, 0.0], [-0.020, -0.018, 0.0]])
    if inlet == "ccs1":
        face_pts = np.array([[0.0, -0.025, 0.0], [0.0, 0.012, 0.0], [0.0, -0.040, 0.0]])
    face = np.mean([_mean(img, uv, 2) for uv in _px(T_cam, car.T_world_inlet, face_pts)])
    holes = [_mean(img, uv + d, 0) for uv, d in zip(_px(T_cam, car.T_world_inlet, m.keypoints),
                                                      [np.zeros(2)] * len(m.keypoints))]
    # The opening's ring (between the pin and the rim) is the darkest part of a hole seen off-axis; the centre
    # shows the recessed pin tip, which is still darker than the lit face.
    assert max(holes) < face - 5, (holes, face)
    ring = []
    for (x, y, _), d in zip(m.keypoints, m.hole_diameters_m):
        pts = [[x + 0.42 * d * math.cos(a), y + 0.42 * d * math.sin(a), 0.0] for a in np.linspace(0, 6.28, 12)]
        ring.append(min(_mean(img, uv, 0) for uv in _px(T_cam, car.T_world_inlet, pts)))
    assert max(ring) < 0.5 * face, (ring, face)


def test_body_colour_and_light_change_the_panel_brightness():
    car_w, T_cam = _scene(color="white")
    car_b, _ = _scene(color="black")
    rng = np.random.default_rng(2)
    corner = (40, 40)  # body panel, away from the inlet and the flap
    white = render(CAM, T_cam, [car_w], rng)[corner].mean()
    black = render(CAM, T_cam, [car_b], rng)[corner].mean()
    dim = render(CAM, T_cam, [car_w], rng, light={"intensity": 0.1, "camera_light": 0.1, "ambient": 0.1})
    assert white > black + 100
    assert dim[corner].mean() < 0.5 * white


def test_recess_perspective_shows_the_pin_tip_shifted_towards_the_camera_side():
    # Camera to the inlet's right (+x): deeper points appear displaced towards +x relative to the opening.
    car, T_cam = _scene("type2", 0.25, math.radians(15), 0.0, "white")
    img = render(CAM, T_cam, [car], np.random.default_rng(3), noise_sigma=0.5).mean(axis=2)
    m = INLETS["type2"]
    pe = m.keypoints[m.hole_index("PE")]
    r = 0.5 * m.hole_diameters_m[m.hole_index("PE")]
    left, right = _px(T_cam, car.T_world_inlet, [pe + [-0.75 * r, 0, 0], pe + [0.75 * r, 0, 0]])
    # On the far (left) side the dark wall shows; on the near (right) side the brighter pin tip does.
    assert _mean(img, right, 0) > _mean(img, left, 0) + 5


def test_jpeg_artefacts_are_optional():
    car, T_cam = _scene()
    a = render(CAM, T_cam, [car], np.random.default_rng(4))
    b = render(CAM, T_cam, [car], np.random.default_rng(4), jpeg_quality=40)
    assert a.shape == b.shape and b.dtype == np.uint8
    assert 0.5 < np.abs(a.astype(int) - b.astype(int)).mean() < 10


def test_negative_render_has_round_features_but_no_inlet_face():
    car, T_cam = _scene(dist=0.4)
    img = render_negative(CAM, T_cam, [car], np.random.default_rng(5)).mean(axis=2)
    m = INLETS["ccs2"]
    # Where the DC holes would be, there is only body paint.
    dc = _px(T_cam, car.T_world_inlet, m.keypoints[[m.hole_index("DC+"), m.hole_index("DC-")]])
    assert min(_mean(img, uv, 1) for uv in dc) > 120
    assert (img < 40).sum() > 50  # the bolt heads and the badge are there


def test_camera_facing_away_sees_no_car():
    car, T_cam = _scene()
    T_away = T_cam @ make_transform(np.diag([-1.0, 1.0, -1.0]), (0, 0, 0))
    img = render(CAM, T_away, [car], np.random.default_rng(6), noise_sigma=0.0)
    empty = render(CAM, T_away, [], np.random.default_rng(6), noise_sigma=0.0)
    seen = render(CAM, T_cam, [car], np.random.default_rng(6), noise_sigma=0.0)
    assert np.array_equal(img, empty)  # nothing of the car is in view
    assert np.abs(seen.astype(int) - empty.astype(int)).mean() > 20
