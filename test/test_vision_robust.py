"""Port detection beyond the loopback renderer's default look: lit pins, light faces, independent drawings,
negatives of every kind, the debug image, and joint states at an image's time stamp."""
import math
import os

import cv2
import numpy as np
import pytest

from mobicharge_robot.core.geometry import invert_transform, make_transform, rot_z, rotation_angle
from mobicharge_robot.core.vision import JointHistory, draw_detection
from mobicharge_robot.core.vision.camera import default_wrist_camera
from mobicharge_robot.core.vision.inlets import load_inlets
from mobicharge_robot.core.vision.port_detector import PortNotFound, detect_port, find_blobs
from mobicharge_robot.sim.renderer import (BODY_COLORS, CarAppearance, InletLook, camera_looking_at, inlet_on_car,
                                           render, render_negative)
from mobicharge_robot.tools.detect_port import main as cli_main

import vision_stress

CAM = default_wrist_camera()
INLETS = load_inlets()
DATA = os.path.join(os.path.dirname(__file__), "data")


def _scene(inlet, dist, yaw, pitch, look=None, color="silver"):
    T_v = make_transform(rot_z(0.3), (3.0, 2.0, 0.0))
    T_i = inlet_on_car(T_v, 4.5, 1.85, INLETS[inlet])
    car = CarAppearance(T_v, 4.5, 1.85, 1.5, BODY_COLORS[color], INLETS[inlet], T_i, look=look)
    T_cam = camera_looking_at(T_i, dist, yaw, pitch, 0.1)
    return car, T_cam, invert_transform(T_cam) @ T_i


def _err(det, T_true):
    return (1e3 * np.linalg.norm(det.T_cam_inlet[:3, 3] - T_true[:3, 3]),
            math.degrees(rotation_angle(det.T_cam_inlet[:3, :3].T @ T_true[:3, :3])))


@pytest.mark.parametrize("inlet", ["ccs2", pytest.param("type2", marks=pytest.mark.xfail(
    strict=True, reason="known: Type 2 with only lit pins showing comes out 14 deg off (a wrong tilt); see the "
                        "vision report")), "ccs1"])
def test_glinting_pins_on_a_black_face_under_the_ring_light(inlet):
    """Only the lit pins and their gaps show. Found, placed within 5 mm and not flipped; the tilt itself is the
    weak part here (up to about 6 deg: see the vision report), so this guards against the flip, not for accuracy."""
    look = InletLook(face_rgb=(0.03, 0.03, 0.03), bezel_rgb=(0.05,) * 3, pin_rgb=(0.85, 0.8, 0.7), pin_gloss=1.0)
    car, T_cam, T_true = _scene(inlet, 0.25, 0.25, 0.1, look)
    img = render(CAM, T_cam, [car], np.random.default_rng(1), ring_light=0.9, auto_exposure=100.0)
    det = detect_port(img, CAM, car.inlet)
    et, er = _err(det, T_true)
    assert et < 5.0 and er < 10.0, (et, er)


def test_holes_are_found_on_a_light_grey_face_with_side_light():
    look = InletLook(face_rgb=(0.55, 0.55, 0.55), bezel_rgb=(0.4,) * 3, hole_wall_rgb=(0.3,) * 3,
                     pin_rgb=(0.7, 0.65, 0.55), pin_gloss=0.5)
    car, T_cam, T_true = _scene("ccs2", 0.3, -0.2, 0.15, look, color="white")
    img = render(CAM, T_cam, [car], np.random.default_rng(2), light={"direction": (1.0, 0.1, 0.05)},
                 ring_light=0.0, illumination_gradient=(0.5, 0.0), auto_exposure=110.0)
    det = detect_port(img, CAM, car.inlet)
    et, er = _err(det, T_true)
    assert et < 5.0 and er < 5.0, (et, er)


def test_blobs_of_both_polarities_are_candidates():
    img = np.full((120, 160, 3), 128, np.uint8)
    cv2.circle(img, (40, 60), 8, (20, 20, 20), -1)
    cv2.circle(img, (110, 60), 8, (240, 240, 240), -1)
    blobs = find_blobs(img)
    kinds = {(round(b.center[0] / 10), b.polarity) for b in blobs}
    assert any(k[0] == 4 for k in kinds) and any(k[0] == 11 for k in kinds)
    near = lambda u: [b for b in blobs if abs(b.center[0] - u) < 1.0 and abs(b.center[1] - 60) < 1.0]
    assert near(40) and near(110)


def _independent_results(n=15):
    rng = np.random.default_rng(5)
    cam = vision_stress.ideal_camera()
    out = []
    for k in range(n):
        name = ("ccs2", "type2", "ccs1")[k % 3]
        T = vision_stress.random_pose(rng)
        img = vision_stress.draw(INLETS[name], T, cam, rng)
        try:
            out.append(_err(detect_port(img, cam, INLETS[name]), T))
        except PortNotFound:
            out.append(None)
    return out


def test_independent_style_drawings_light_faces_and_bright_pins():
    """Images drawn without the loopback renderer (flat texture warped by the plane homography, light face, bright
    pins in a thin dark gap, strong side light, a specular streak, JPEG): most are found, and typically well."""
    res = _independent_results()
    found = [r for r in res if r is not None]
    assert len(found) >= 10, len(found)
    # Measured: about 0.5-0.9 mm and 1.6-2.3 deg median (the tilt is the weak part; see the vision report).
    assert np.median([r[0] for r in found]) < 2.0 and np.median([r[1] for r in found]) < 3.0, found


@pytest.mark.xfail(strict=True, reason="known: some independent drawings give a mirrored tilt or a rotated pattern "
                                       "(confident wrong); see the vision report")
def test_independent_style_drawings_are_never_confidently_wrong():
    wrong = [r for r in _independent_results() if r is not None and (r[0] > 10.0 or r[1] > 5.0)]
    assert not wrong, wrong


@pytest.mark.parametrize("kind", ["decoys", "badge", "bolts", "socket"])
def test_round_distractors_are_not_inlets(kind):
    T_v = make_transform(rot_z(0.2), (3.0, 2.0, 0.0))
    T_i = inlet_on_car(T_v, 4.5, 1.85, INLETS["type2"])
    car = CarAppearance(T_v, 4.5, 1.85, 1.5, BODY_COLORS["white"], None, T_i)
    for i, dist in enumerate((0.2, 0.4, 0.7)):
        T_cam = camera_looking_at(T_i, dist, 0.2, -0.1)
        img = render_negative(CAM, T_cam, [car], np.random.default_rng(i), kind=kind, ring_light=0.8)
        for name in ("ccs2", "type2", "ccs1"):
            with pytest.raises(PortNotFound):
                detect_port(img, CAM, INLETS[name])


def test_a_type2_face_is_not_a_ccs2_inlet():
    car, T_cam, _ = _scene("type2", 0.3, 0.1, 0.0)
    img = render(CAM, T_cam, [car], np.random.default_rng(3))
    detect_port(img, CAM, INLETS["type2"])
    with pytest.raises(PortNotFound):
        detect_port(img, CAM, INLETS["ccs2"])


def test_unknown_negative_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown negative kind"):
        render_negative(CAM, np.eye(4), [], np.random.default_rng(0), kind="cat")


def test_debug_image_draws_axes_and_reason(tmp_path):
    out = tmp_path / "debug.png"
    example = os.path.join(DATA, "ccs2_example.png")
    rc = cli_main([example, "--camera-info", os.path.join(DATA, "wrist_camera.yaml"), "--debug-image", str(out)])
    assert rc == 0 and out.exists()
    drawn = cv2.imread(str(out))
    raw = cv2.imread(example)
    assert drawn.shape == raw.shape and np.count_nonzero(np.any(drawn != raw, axis=2)) > 200
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 90, np.uint8))
    rc = cli_main([str(blank), "--camera-info", os.path.join(DATA, "wrist_camera.yaml"), "--debug-image",
                   str(tmp_path / "nothing.png")])
    assert rc == 1 and (tmp_path / "nothing.png").exists()
    rc = cli_main([example, "--camera-info", os.path.join(DATA, "wrist_camera.yaml"), "--debug-image",
                   str(tmp_path / "no" / "such" / "dir.png")])
    assert rc == 2


def test_draw_detection_without_a_detection_returns_a_copy():
    img = np.zeros((40, 50, 3), np.uint8)
    out = draw_detection(img, CAM, None)
    assert out.shape == img.shape and out is not img


def test_joint_history_interpolates_at_the_stamp():
    h = JointHistory(horizon_s=1.0, max_extrapolate_s=0.1)
    h.add(10.0, {"a": 0.0, "b": 1.0})
    h.add(10.2, {"a": 1.0})
    h.add(10.1, {"b": 2.0})  # out of order
    at = h.at(10.05)
    assert at["a"] == pytest.approx(0.25) and at["b"] == pytest.approx(1.5)
    assert h.at(10.25)["a"] == pytest.approx(1.0)  # held within max_extrapolate_s
    assert "a" not in h.at(10.5)
    assert h.latest() == {"a": 1.0, "b": 2.0}
    h.add(12.0, {"a": 5.0})
    assert h.at(10.2).get("a") is None  # older than the horizon: dropped
    with pytest.raises(ValueError):
        JointHistory(horizon_s=0.0)
