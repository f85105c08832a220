"""Camera model: projection with distortion, undistortion, and the ROS calibration YAML round trip and errors."""
import numpy as np
import pytest
import yaml

from mobicharge_robot.core.vision.camera import CameraInfoError, CameraModel, default_wrist_camera


def test_default_wrist_camera():
    cam = default_wrist_camera()
    assert (cam.width, cam.height) == (640, 480)
    assert cam.K[0, 0] == cam.K[1, 1] == 600.0
    assert (cam.K[0, 2], cam.K[1, 2]) == (319.5, 239.5)
    assert cam.D[0] == -0.05 and cam.distortion_model == "plumb_bob"
    assert cam.frame_id == "wrist_camera_optical"


def test_projection_follows_the_plumb_bob_model():
    cam = CameraModel(640, 480, [[500, 0, 320], [0, 510, 240], [0, 0, 1]], [-0.1, 0.02, 0.001, -0.002, 0.0])
    pts = np.array([[0.0, 0.0, 1.0], [0.1, -0.05, 0.5], [-0.2, 0.15, 0.8]])
    k1, k2, p1, p2, k3 = cam.D
    x, y = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    expected = np.stack([500 * xd + 320, 510 * yd + 240], axis=1)
    assert cam.project(pts) == pytest.approx(expected, abs=1e-9)
    assert cam.project(pts[:1])[0] == pytest.approx([320.0, 240.0])


def test_barrel_distortion_pulls_corners_inwards():
    cam = default_wrist_camera()
    corner = cam.project([[0.5, 0.35, 1.0]])[0]
    ideal = np.array([600 * 0.5 + 319.5, 600 * 0.35 + 239.5])
    assert np.linalg.norm(corner - [319.5, 239.5]) < np.linalg.norm(ideal - [319.5, 239.5]) - 5.0


def test_undistort_inverts_project():
    cam = default_wrist_camera()
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-0.4, 0.4, 50), rng.uniform(-0.3, 0.3, 50), np.ones(50)])
    px = cam.project(pts)
    assert cam.undistort_points(px, normalized=True) == pytest.approx(pts[:, :2], abs=1e-6)
    ideal = cam.undistort_points(px)
    assert ideal == pytest.approx(pts[:, :2] * 600.0 + [319.5, 239.5], abs=1e-3)
    rays = cam.pixel_rays(px)
    assert np.linalg.norm(rays, axis=1) == pytest.approx(1.0)


def test_yaml_round_trip(tmp_path):
    cam = CameraModel(800, 600, [[700.5, 0, 401.2], [0, 702.25, 298.7], [0, 0, 1]],
                      [-0.12, 0.05, 0.0005, -0.0003, 0.001], name="wrist")
    d = cam.to_ros_yaml_dict()
    assert d["camera_matrix"]["rows"] == 3 and len(d["projection_matrix"]["data"]) == 12
    p = tmp_path / "cam.yaml"
    p.write_text(cam.to_ros_yaml())
    back = CameraModel.from_ros_yaml(str(p), frame_id="cam_optical")
    assert (back.width, back.height, back.name, back.frame_id) == (800, 600, "wrist", "cam_optical")
    assert np.array_equal(back.K, cam.K) and np.array_equal(back.D, cam.D)
    assert back.distortion_model == "plumb_bob"


def test_reads_a_typical_camera_calibration_file():
    text = """
image_width: 1280
image_height: 720
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [910.1, 0.0, 640.3, 0.0, 909.8, 361.2, 0.0, 0.0, 1.0]
distortion_model: rational_polynomial
distortion_coefficients:
  rows: 1
  cols: 8
  data: [0.1, -0.2, 0.001, 0.0, 0.05, 0.0, 0.0, 0.0]
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [910.1, 0, 640.3, 0, 0, 909.8, 361.2, 0, 0, 0, 1, 0]}
"""
    cam = CameraModel.from_ros_yaml_text(text)
    assert cam.width == 1280 and cam.distortion_model == "rational_polynomial" and len(cam.D) == 8


def _valid() -> dict:
    return default_wrist_camera().to_ros_yaml_dict()


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("camera_matrix"), "camera_matrix"),
    (lambda d: d.pop("image_width"), "image_width"),
    (lambda d: d["camera_matrix"].update(data=[1.0, 2.0, 3.0]), "camera_matrix"),
    (lambda d: d["camera_matrix"].update(data=["a"] * 9), "non-numeric"),
    (lambda d: d.update(distortion_model="fisheye_magic"), "unsupported distortion"),
    (lambda d: d["distortion_coefficients"].update(cols=3, data=[0.0, 0.0, 0.0]), "needs 5"),
    (lambda d: d.update(image_height=-5), "positive"),
    (lambda d: d["camera_matrix"].update(data=[-600, 0, 319.5, 0, 600, 239.5, 0, 0, 1]), "focal"),
])
def test_bad_yaml_raises_a_clear_error(mutate, match):
    d = _valid()
    mutate(d)
    with pytest.raises(CameraInfoError, match=match):
        CameraModel.from_ros_yaml_text(yaml.safe_dump(d))


@pytest.mark.parametrize("text", ["{{{", "- 1\n- 2\n", ""])
def test_not_a_mapping_or_not_yaml(text):
    with pytest.raises(CameraInfoError):
        CameraModel.from_ros_yaml_text(text)


def test_missing_file(tmp_path):
    with pytest.raises(CameraInfoError, match="cannot read"):
        CameraModel.from_ros_yaml(str(tmp_path / "none.yaml"))


def test_empty_distortion_means_an_ideal_lens():
    cam = CameraModel(10, 10, np.eye(3) * [5, 5, 1] + [[0, 0, 4.5], [0, 0, 4.5], [0, 0, 0]], [])
    assert np.array_equal(cam.D, np.zeros(5))
