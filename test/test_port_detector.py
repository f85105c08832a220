"""Port detector on rendered images (accuracy, false positives), the consistency tracker and the CLI."""
import json
import math
import os

import numpy as np
import pytest

from mobicharge_robot.core.vision.camera import default_wrist_camera
from mobicharge_robot.core.geometry import (invert_transform, make_transform, quaternion_to_matrix, rot_z,
                                            rotation_angle)
from mobicharge_robot.core.vision.inlets import load_inlets
from mobicharge_robot.core.vision.port_detector import Detection, PortNotFound, PortTracker, detect_port
from mobicharge_robot.sim.renderer import (BODY_COLORS, CarAppearance, camera_looking_at, inlet_on_car, render,
                                           render_negative)
from mobicharge_robot.tools.detect_port import main as cli_main

CAM = default_wrist_camera()
INLETS = load_inlets()
DATA = os.path.join(os.path.dirname(__file__), "data")
EXAMPLE_PNG = os.path.join(DATA, "ccs2_example.png")
EXAMPLE_CAMERA = os.path.join(DATA, "wrist_camera.yaml")
# Ground truth of test/data/ccs2_example.png (rendered 0.30 m from a silver car, 12 deg yaw, 5 deg pitch).
EXAMPLE_T_M = (0.00999, -0.00500, 0.29979)
EXAMPLE_Q_XYZW = (-0.99086, 0.02990, 0.11964, 0.05475)

COLORS = ["white", "black", "grey", "silver", "red", "blue"]


def _scene(inlet, dist, yaw, pitch, roll, color, offset_px, car_yaw):
    T_v = make_transform(rot_z(car_yaw), (3.0, 2.0, 0.0))
    T_i = inlet_on_car(T_v, 4.5, 1.85, INLETS[inlet])
    car = CarAppearance(T_v, 4.5, 1.85, 1.5, BODY_COLORS[color], INLETS[inlet], T_i)
    T_cam = camera_looking_at(T_i, dist, yaw, pitch, roll, offset_px)
    return car, T_cam, invert_transform(T_cam) @ T_i


def _cases():
    """0.2-0.6 m, 0-25 deg off-axis in varied directions, every body colour, some JPEG; fixed seed."""
    rng = np.random.default_rng(2024)
    out = []
    for inlet in ("ccs2", "type2", "ccs1"):
        for dist in (0.2, 0.3, 0.45, 0.6):
            for off_axis_deg in (0.0, 12.0, 25.0):
                phi = rng.uniform(0.0, 2.0 * math.pi)
                out.append(dict(inlet=inlet, dist=dist, off_axis_deg=off_axis_deg,
                                yaw=math.radians(off_axis_deg) * math.cos(phi),
                                pitch=math.radians(off_axis_deg) * math.sin(phi),
                                roll=rng.uniform(-0.3, 0.3), color=COLORS[int(rng.integers(len(COLORS)))],
                                offset_px=tuple(rng.uniform(-80, 80, 2)), car_yaw=rng.uniform(-1.0, 1.0),
                                jpeg=85 if rng.random() < 0.25 else None, seed=int(rng.integers(1 << 30))))
    return out


def test_pose_accuracy_on_rendered_images():
    rows, errors = [], []
    for c in _cases():
        car, T_cam, T_true = _scene(c["inlet"], c["dist"], c["yaw"], c["pitch"], c["roll"], c["color"],
                                    c["offset_px"], c["car_yaw"])
        img = render(CAM, T_cam, [car], np.random.default_rng(c["seed"]), jpeg_quality=c["jpeg"])
        det = detect_port(img, CAM, car.inlet)
        et_mm = 1e3 * float(np.linalg.norm(det.T_cam_inlet[:3, 3] - T_true[:3, 3]))
        er_deg = math.degrees(rotation_angle(det.T_cam_inlet[:3, :3].T @ T_true[:3, :3]))
        rows.append(f"{c['inlet']:5s} {c['dist']:.2f} m {c['off_axis_deg']:4.1f} deg {c['color']:6s} "
                    f"jpeg={c['jpeg']}: {et_mm:5.2f} mm {er_deg:5.2f} deg rms {det.reprojection_error_px:.2f} px "
                    f"conf {det.confidence:.2f} holes {det.n_points}")
        errors.append((c, et_mm, er_deg))
        assert det.keypoints_px.shape == (len(car.inlet.keypoints), 2)
        assert det.covariance is not None and np.all(np.linalg.eigvalsh(det.covariance) > 0)
        assert 0.0 < det.confidence <= 1.0
    print("\n" + "\n".join(rows))
    worst_t = max(e[1] for e in errors)
    worst_r = max(e[2] for e in errors)
    print(f"worst: {worst_t:.2f} mm, {worst_r:.2f} deg over {len(errors)} images")
    # 4 deg: the detector that also finds lit pins and rims (issue 14) reaches 3.6 deg on the worst of these
    # (Type 2 at 0.6 m, 12 deg off-axis); the previous dark-hole-only detector stayed under 3 deg here.
    bad = [(c["inlet"], c["dist"], c["off_axis_deg"], round(t, 2), round(r, 2)) for c, t, r in errors
           if t >= 5.0 or r >= 4.0]
    assert not bad, bad


def test_translation_error_at_working_distance_is_about_a_millimetre():
    # The arm observes the inlet from ~0.3 m: ask for ~1 mm there.
    for inlet in ("ccs2", "type2", "ccs1"):
        for k, off in enumerate((0.0, 10.0, 20.0)):
            car, T_cam, T_true = _scene(inlet, 0.3, math.radians(off), math.radians(0.3 * off), 0.1,
                                        COLORS[k], (10.0, -20.0), 0.3)
            det = detect_port(render(CAM, T_cam, [car], np.random.default_rng(k)), CAM, car.inlet)
            assert np.linalg.norm(det.T_cam_inlet[:3, 3] - T_true[:3, 3]) < 0.0015


def test_inlet_frame_axes_follow_the_convention():
    car, T_cam, T_true = _scene("ccs2", 0.3, 0.0, 0.0, 0.0, "white", (0.0, 0.0), 0.0)
    det = detect_port(render(CAM, T_cam, [car], np.random.default_rng(0)), CAM, car.inlet)
    R = det.T_cam_inlet[:3, :3]
    assert R[:, 2] @ [0, 0, 1] < -0.99  # inlet z points back at the camera
    assert R[:, 1] @ [0, 1, 0] < -0.99  # inlet y is up, optical y is down
    assert R[:, 0] @ [1, 0, 0] > 0.99


@pytest.mark.parametrize("color", ["white", "black", "grey", "red"])
@pytest.mark.parametrize("dist,off_axis", [(0.25, 0.0), (0.4, 15.0), (0.6, 5.0)])
def test_negative_images_give_port_not_found(color, dist, off_axis):
    car, T_cam, _ = _scene("ccs2", dist, math.radians(off_axis), 0.05, 0.0, color, (0.0, 0.0), 0.2)
    img = render_negative(CAM, T_cam, [car], np.random.default_rng(11))
    for inlet in INLETS.values():
        with pytest.raises(PortNotFound) as exc:
            detect_port(img, CAM, inlet)
        assert exc.value.reason


def test_empty_scene_and_wrong_image_give_port_not_found():
    car, T_cam, _ = _scene("ccs2", 0.3, 0.0, 0.0, 0.0, "white", (0.0, 0.0), 0.0)
    img = render(CAM, T_cam, [], np.random.default_rng(0))
    with pytest.raises(PortNotFound, match="blobs"):
        detect_port(img, CAM, INLETS["ccs2"])
    with pytest.raises(PortNotFound, match="camera model"):
        detect_port(img[:240], CAM, INLETS["ccs2"])
    with pytest.raises(PortNotFound, match="RGB"):
        detect_port(img[:, :, 0], CAM, INLETS["ccs2"])


def test_type2_detector_does_not_fire_on_a_ccs1_inlet():
    car, T_cam, _ = _scene("ccs1", 0.3, 0.1, 0.05, 0.0, "grey", (0.0, 0.0), 0.0)
    img = render(CAM, T_cam, [car], np.random.default_rng(3))
    with pytest.raises(PortNotFound):
        detect_port(img, CAM, INLETS["type2"])


# ------------------------------------------------------------------------------------------------ tracker


def _det(x=0.0, z=0.3, yaw=0.0):
    T = make_transform(rot_z(yaw), (x, 0.0, z))
    return Detection(T, 0.1, 0.9, 9, np.zeros((9, 2)), None)


def test_tracker_locates_after_n_consistent_detections_and_reports_their_mean():
    tr = PortTracker(required_consistent=3, max_jump_m=0.01, max_jump_rad=0.05, timeout_s=5.0)
    tr.reset(0.0)
    assert tr.update(_det(0.000), 0.1) == "searching"
    assert tr.update(None, 0.15) == "searching"  # a frame without a detection does not break the run
    assert tr.update(_det(0.004), 0.2) == "searching"
    assert tr.update(_det(0.008), 0.3) == "located"
    assert tr.pose[:3, 3] == pytest.approx([0.004, 0.0, 0.3])
    assert tr.update(None, 99.0) == "located"  # holds until reset


def test_tracker_restarts_the_run_on_a_jump_and_on_a_planar_flip():
    tr = PortTracker(required_consistent=3)
    tr.reset(0.0)
    tr.update(_det(0.0), 0.1)
    tr.update(_det(0.0), 0.2)
    assert tr.update(_det(0.05), 0.3) == "searching"  # 5 cm jump: a new run starts here
    assert tr.update(_det(0.05, yaw=0.3), 0.4) == "searching"  # rotation jump (e.g. a flip)
    tr.update(_det(0.05, yaw=0.3), 0.5)
    assert tr.update(_det(0.05, yaw=0.3), 0.6) == "located"
    assert rotation_angle(tr.pose[:3, :3] @ rot_z(-0.3)) < 1e-9


def test_tracker_fails_after_the_timeout_and_reset_recovers():
    tr = PortTracker(required_consistent=3, timeout_s=5.0)
    tr.reset(10.0)
    tr.update(_det(), 11.0)
    assert tr.update(None, 14.9) == "searching"
    assert tr.update(None, 15.1) == "failed"
    assert "failed to detect" in tr.reason
    assert tr.update(_det(), 15.2) == "failed"
    tr.reset(20.0)
    assert tr.status == "searching" and tr.pose is None
    for k in range(3):
        status = tr.update(_det(), 20.1 + 0.1 * k)
    assert status == "located"


def test_tracker_drops_a_stale_run():
    tr = PortTracker(required_consistent=2, timeout_s=100.0, max_gap_s=1.0)
    tr.reset(0.0)
    tr.update(_det(), 0.0)
    assert tr.update(_det(), 5.0) == "searching"  # too long since the previous detection
    assert tr.update(_det(), 5.5) == "located"


def test_tracker_rejects_bad_settings():
    with pytest.raises(ValueError):
        PortTracker(required_consistent=0)
    with pytest.raises(ValueError):
        PortTracker(timeout_s=0.0)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_finds_the_example_inlet_as_json(capsys):
    assert cli_main([EXAMPLE_PNG, "--camera-info", EXAMPLE_CAMERA, "--inlet", "ccs2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["found"] is True and out["inlet"] == "ccs2"
    assert out["translation_m"] == pytest.approx(EXAMPLE_T_M, abs=0.0015)
    R = quaternion_to_matrix(*out["quaternion_xyzw"])
    assert math.degrees(rotation_angle(R.T @ quaternion_to_matrix(*EXAMPLE_Q_XYZW))) < 1.5
    assert out["reprojection_error_px"] < 0.5 and 0.5 < out["confidence"] <= 1.0


def test_cli_prints_a_readable_summary(capsys):
    assert cli_main([EXAMPLE_PNG, "--camera-info", EXAMPLE_CAMERA]) == 0
    out = capsys.readouterr().out
    assert "translation (m)" in out and "quaternion (x y z w)" in out and "reprojection error" in out


def test_cli_not_found_exits_1_with_a_reason(tmp_path, capsys):
    car, T_cam, _ = _scene("ccs2", 0.3, 0.0, 0.0, 0.0, "grey", (0.0, 0.0), 0.0)
    img = render_negative(CAM, T_cam, [car], np.random.default_rng(0))
    path = str(tmp_path / "negative.png")
    import cv2

    assert cv2.imwrite(path, img[:, :, ::-1])
    assert cli_main([path, "--camera-info", EXAMPLE_CAMERA, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["found"] is False and out["reason"]


def test_cli_bad_inputs_exit_2_without_a_traceback(tmp_path, capsys):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("image_width: 640\n")
    not_image = tmp_path / "x.png"
    not_image.write_text("not a png")
    assert cli_main([str(tmp_path / "missing.png"), "--camera-info", EXAMPLE_CAMERA]) == 2
    assert cli_main([str(not_image), "--camera-info", EXAMPLE_CAMERA]) == 2
    assert cli_main([EXAMPLE_PNG, "--camera-info", str(bad_yaml)]) == 2
    assert cli_main([EXAMPLE_PNG, "--camera-info", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "camera info" in err and "cannot read image" in err
    with pytest.raises(SystemExit) as exc:
        cli_main([EXAMPLE_PNG, "--camera-info", EXAMPLE_CAMERA, "--inlet", "chademo"])
    assert exc.value.code == 2
