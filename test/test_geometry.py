"""Shared geometry helpers."""
import math

import numpy as np
import pytest

from mobicharge_robot.core.geometry import (Pose2D, convex_polygons_intersect, invert_transform, make_transform,
                                            matrix_to_quaternion, point_in_polygon, polygon_area,
                                            quaternion_to_matrix, rect_polygon, rot_z, rotation_angle,
                                            rpy_matrix, segment_rect_polygon, wrap_angle, yaw_from_quaternion)


def test_wrap_angle_range():
    for a in np.linspace(-20, 20, 101):
        w = wrap_angle(float(a))
        assert -math.pi <= w < math.pi
        assert math.isclose(math.cos(w), math.cos(a), abs_tol=1e-9)


def test_pose_compose_and_inverse_round_trip():
    a, b = Pose2D(1.0, 2.0, 0.7), Pose2D(-0.5, 0.3, -2.0)
    c = a.compose(b)
    back = a.inverse().compose(c)
    assert (back.x, back.y, back.yaw) == pytest.approx((b.x, b.y, b.yaw))
    assert c.to_matrix() == pytest.approx(a.to_matrix() @ b.to_matrix())


def test_pose_rejects_nan_and_coerces_numpy():
    with pytest.raises(ValueError):
        Pose2D(float("nan"), 0.0)
    p = Pose2D(np.float64(1.5), np.int64(2))
    assert type(p.x) is float and type(p.y) is float


def test_rectangles_and_polygons():
    r = rect_polygon(Pose2D(0, 0, 0), 2.0, 1.0)
    assert polygon_area(r) == pytest.approx(2.0)
    assert point_in_polygon((0.9, 0.4), r) and not point_in_polygon((1.1, 0.0), r)
    wall = segment_rect_polygon((0, 0), (10, 0), 0.2)
    assert abs(polygon_area(wall)) == pytest.approx(2.0)
    assert convex_polygons_intersect(r, rect_polygon(Pose2D(1.4, 0, math.pi / 4), 1.0, 1.0))
    assert not convex_polygons_intersect(r, rect_polygon(Pose2D(3.0, 0, 0), 1.0, 1.0))


def test_transforms_and_quaternions():
    t = make_transform(rpy_matrix(0.1, -0.2, 0.3), (1, 2, 3))
    assert t @ invert_transform(t) == pytest.approx(np.eye(4))
    q = matrix_to_quaternion(t[:3, :3])
    assert q[3] >= 0
    assert quaternion_to_matrix(*q) == pytest.approx(t[:3, :3])
    assert yaw_from_quaternion(*matrix_to_quaternion(rot_z(2.5))) == pytest.approx(2.5)
    assert rotation_angle(rot_z(0.4)) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        quaternion_to_matrix(0, 0, 0, 0)
