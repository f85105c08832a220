"""Force-guided insertion against the MuJoCo inlet, its failure paths, the latch, keying, collision and reach checks."""
import math

import numpy as np
import pytest

from mobicharge_robot.core.arm import STOWED_POSITIONS
from mobicharge_robot.core.arm.collision import (ArmCollisionChecker, MotionInCollision, car_box_from_inlet,
                                                 inlet_in_reach)
from mobicharge_robot.core.arm.insertion import InsertionController, InsertionParams
from mobicharge_robot.core.arm.kinematics import rotation_from_vector
from mobicharge_robot.core.arm.trajectory import plan_joint_motion
from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path
from mobicharge_robot.core.geometry import make_transform
from mobicharge_robot.core.vision.inlets import load_inlets
from mobicharge_robot.sim.mujoco_contact import ForceTorqueSensor, MujocoInletContact

INLET = load_inlets()["ccs2"]


@pytest.fixture(scope="module")
def contact():
    return MujocoInletContact(INLET)


def _params(**kw):
    return InsertionParams(seat_depth_m=INLET.seat_depth_m, **kw)


def _run(contact, E, params, max_s=80.0, release=False, wrench_age=0.0, inlet_age=0.0):
    rng = np.random.default_rng(3)
    ctl = InsertionController(params)
    sensor = ForceTorqueSensor(rng)
    contact.reset(E @ ctl.pose())
    w, latched, t, peak, s = np.zeros(6), False, 0.0, 0.0, None
    while t < max_s:
        st = ctl.step(w[:3], w[3:], latched, 0.02, wrench_age, inlet_age)
        if st.state in ("seated", "failed"):
            return ctl, st, s, peak
        s = contact.step(E @ st.T_inlet_tip, 0.02, release or st.release_latch)
        peak = max(peak, abs(float(s.force_tip[2])))
        w = sensor.update(s.force_tip, s.torque_tip, 0.02)
        latched = s.latched
        t += 0.02
    raise AssertionError("insertion neither seated nor failed")


def _error(lat_m, tilt_rad, roll_rad):
    return make_transform(rotation_from_vector([tilt_rad, 0.0, 0.0]) @ rotation_from_vector([0.0, 0.0, roll_rad]),
                          (lat_m, 0.0, 0.0))


def test_aligned_and_misaligned_plugs_seat_and_latch_under_the_force_limit(contact):
    for E in (np.eye(4), _error(0.003, math.radians(2.0), math.radians(1.0))):
        ctl, st, s, peak = _run(contact, E, _params())
        assert st.state == "seated", ctl.reason
        assert s.latched and s.seated
        assert abs(s.depth_m - INLET.seat_depth_m) < 0.0015
        assert peak < 100.0


def test_a_latched_plug_is_held_until_the_latch_is_released(contact):
    ctl, st, s, _ = _run(contact, np.eye(4), _params())
    assert st.state == "seated"
    back = st.T_inlet_tip @ make_transform(np.eye(3), (0.0, 0.0, -0.01))  # pull 1 cm out along the axis
    for _ in range(25):
        held = contact.step(back, 0.02, release=False)
    assert held.depth_m > INLET.seat_depth_m - 0.003 and held.force_tip[2] > 100.0  # the latch holds it
    for _ in range(50):
        free = contact.step(back, 0.02, release=True)
    assert not free.latched and free.depth_m < INLET.seat_depth_m - 0.008


def test_a_plug_turned_half_a_turn_never_seats(contact):
    """Keying: the hole pattern is not symmetric, so a plug rolled by 180 degrees meets the face."""
    E = make_transform(rotation_from_vector([0.0, 0.0, math.pi]), (0, 0, 0))
    ctl, st, s, peak = _run(contact, E, _params(max_retries=1, attempt_timeout_s=6.0))
    assert st.state == "failed" and not contact.latched
    assert ctl.depth_cmd <= -ctl.p.standoff_m + 1e-9  # left retracted
    assert peak <= 100.0


def test_jam_beyond_the_search_range_retracts_and_fails_after_three_retries(contact):
    ctl, st, s, peak = _run(contact, _error(0.012, 0.0, 0.0), _params(attempt_timeout_s=8.0))
    assert st.state == "failed" and "after 3 retries" in st.reason
    assert ctl.attempt == 3
    assert ctl.depth_cmd <= -ctl.p.standoff_m + 1e-9 and not contact.latched
    assert peak <= 100.0


def test_over_force_retracts_and_fails_without_retry():
    ctl = InsertionController(_params())
    for _ in range(100):
        st = ctl.step([0.0, 0.0, -5.0], [0, 0, 0], False, 0.02)
    st = ctl.step([0.0, 0.0, -130.0], [0, 0, 0], False, 0.02)
    assert st.state == "retract" and "over-force" in st.reason
    while st.state == "retract":
        st = ctl.step([0.0, 0.0, 0.0], [0, 0, 0], False, 0.02)
    assert st.state == "failed" and "over-force" in st.reason
    assert ctl.depth_cmd <= -ctl.p.standoff_m + 1e-9


def test_stale_wrench_stops_at_once_and_lost_inlet_retracts():
    ctl = InsertionController(_params())
    depth0 = ctl.depth_cmd
    st = ctl.step([0, 0, 0], [0, 0, 0], False, 0.02, wrench_age_s=1.0)
    assert st.state != "failed" and ctl.depth_cmd == depth0  # holds still at once
    for _ in range(200):
        st = ctl.step([0, 0, 0], [0, 0, 0], False, 0.02, wrench_age_s=1.0)
        assert ctl.depth_cmd == depth0
    assert st.state == "failed" and "stale wrench" in st.reason
    ctl = InsertionController(_params())
    for _ in range(20):
        ctl.step([0, 0, 0], [0, 0, 0], False, 0.02)
    st = ctl.step([0, 0, 0], [0, 0, 0], False, 0.02, inlet_age_s=1000.0)
    while st.state == "retract":
        st = ctl.step([0, 0, 0], [0, 0, 0], False, 0.02)
    assert st.state == "failed" and "lost inlet" in st.reason
    assert ctl.depth_cmd <= -ctl.p.standoff_m + 1e-9
    bad = InsertionController(_params()).step([float("nan"), 0, 0], [0, 0, 0], False, 0.02)
    assert bad.state == "failed"


def test_collision_checks_and_workspace_check():
    model = UrdfModel.from_xacro(default_urdf_path())
    arm = model.chain("base_link", "connector_tip")
    checker = ArmCollisionChecker(model, arm)
    assert checker.configuration_collision(STOWED_POSITIONS) is None
    assert "base_link" in checker.configuration_collision([0.0, 1.2, 0.0, 0.0, 0.0, 0.0])  # into its own body
    z, y = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    inlet = make_transform(np.column_stack([np.cross(y, z), y, z]), (0.1, 0.7, 0.8))
    assert inlet_in_reach(arm, inlet, STOWED_POSITIONS, INLET.seat_depth_m, checker=checker).ok
    far = inlet.copy()
    far[1, 3] = 2.0
    report = inlet_in_reach(arm, far, STOWED_POSITIONS, INLET.seat_depth_m, checker=checker)
    assert not report.ok and "unreachable" in report.reason
    # A joint move that swings the arm through the car body is refused before it runs.
    car = car_box_from_inlet(inlet)
    q_in_car = arm.ik(inlet @ make_transform(np.eye(3), (0.0, 0.0, -0.3)) @ make_transform(
        rotation_from_vector([0.0, math.pi, 0.0]), (0, 0, 0)), STOWED_POSITIONS)
    with pytest.raises(MotionInCollision):
        checker.check_path(plan_joint_motion(arm, STOWED_POSITIONS, q_in_car).positions, car)
