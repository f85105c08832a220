"""The mission state machine, driven by hand-made status events (no ROS)."""
import numpy as np
import pytest

from mobicharge_robot.core import mission as m
from mobicharge_robot.core.geometry import Pose2D


def _job(vid, x):
    T = np.eye(4)
    T[:3, 3] = (x, 5.0, 0.9)
    return m.Job(vehicle_id=vid, spot=f"S{vid}", inlet_type="ccs2", requested_kwh=5.0,
                 staging=Pose2D(x, 4.0, 0.0), T_base_inlet=T)


def _of(cmds, kind):
    return [c for c in cmds if isinstance(c, kind)]


def _serve(mis, last_cmds, t, delivered=5.0):
    """Drive one job through every phase; return the commands of the last step and the time."""
    nav = _of(last_cmds, m.Navigate)[-1]
    cmds = mis.on_navigation(t, nav.goal_id, "succeeded")
    assert mis.phase == "locating_port"
    observe = _of(cmds, m.ArmCommand)[0]
    assert observe.action == "observe" and observe.T_base_inlet is not None
    cmds = mis.on_arm(t + 1, "observe", "succeeded")
    assert _of(cmds, m.Detection)[0].enable
    cmds = mis.on_detection(t + 2, "located")
    assert mis.phase == "plugging" and _of(cmds, m.ArmCommand)[0].action == "plug"
    cmds = mis.on_arm(t + 3, "plug", "succeeded")
    start = _of(cmds, m.StartCharging)[0]
    assert mis.phase == "charging"
    assert mis.on_charging(t + 4, "someone-else", "complete", 99.0) == []  # a stale session is ignored
    cmds = mis.on_charging(t + 100, start.session_id, "complete", delivered)
    assert mis.phase == "unplugging"
    cmds = mis.on_arm(t + 110, "unplug", "succeeded")
    return cmds, t + 110


def test_serves_every_job_then_returns_to_depot():
    depot = Pose2D(1.0, 1.0, 0.0)
    mis = m.Mission([_job("a", 10.0), _job("b", 20.0)], depot)
    cmds = mis.start(0.0)
    assert mis.phase == "navigating"
    cmds, t = _serve(mis, cmds, 1.0)
    assert mis.phase == "navigating" and mis.job.vehicle_id == "b"
    cmds, t = _serve(mis, cmds, t + 10, delivered=4.9)
    assert mis.phase == "returning"
    nav = _of(cmds, m.Navigate)[-1]
    assert nav.goal == depot
    cmds = mis.on_navigation(t + 50, nav.goal_id, "succeeded")
    assert mis.finished
    done = [c for c in cmds if isinstance(c, m.Event) and c.kind == "mission_complete"][0]
    vs = done.data["vehicles"]
    assert [v["served"] for v in vs] == [True, True]
    assert vs[1]["delivered_kwh"] == pytest.approx(4.9)
    assert vs[0]["phase_s"]["charging"] == pytest.approx(97.0)  # entered at t=4, complete at t=101
    assert mis.state()["summary"]["vehicles"] == vs  # the latched state carries the summary too


def test_stale_navigation_status_is_ignored():
    mis = m.Mission([_job("a", 10.0)], Pose2D(0, 0, 0))
    mis.start(0.0)
    assert mis.on_navigation(1.0, "goal-999", "succeeded") == []
    assert mis.phase == "navigating"


def test_navigation_failure_skips_the_job_without_arm_motion():
    mis = m.Mission([_job("a", 10.0), _job("b", 20.0)], Pose2D(0, 0, 0))
    cmds = mis.start(0.0)
    nav = _of(cmds, m.Navigate)[0]
    cmds = mis.on_navigation(5.0, nav.goal_id, "failed", "NO_VALID_PATH", "blocked")
    assert mis.jobs[0].failure.startswith("navigation NO_VALID_PATH")
    assert not _of(cmds, m.ArmCommand)
    assert mis.phase == "navigating" and mis.job.vehicle_id == "b"


def test_detection_failure_stows_arm_before_moving_on():
    mis = m.Mission([_job("a", 10.0)], Pose2D(0, 0, 0))
    cmds = mis.start(0.0)
    mis.on_navigation(1.0, _of(cmds, m.Navigate)[0].goal_id, "succeeded")
    mis.on_arm(2.0, "observe", "succeeded")
    cmds = mis.on_detection(12.0, "failed", "no inlet")
    assert mis.phase == "unplugging"
    assert _of(cmds, m.ArmCommand)[0].action == "unplug"
    assert not _of(cmds, m.Navigate)  # never drive with the arm out
    cmds = mis.on_arm(20.0, "unplug", "succeeded")
    assert mis.phase == "returning" and _of(cmds, m.Navigate)
    assert not mis.jobs[0].served and "failed to detect" in mis.jobs[0].failure


def test_charging_stopped_keeps_partial_energy_and_releases():
    mis = m.Mission([_job("a", 10.0)], Pose2D(0, 0, 0))
    cmds = mis.start(0.0)
    mis.on_navigation(1.0, _of(cmds, m.Navigate)[0].goal_id, "succeeded")
    mis.on_arm(2.0, "observe", "succeeded")
    mis.on_detection(3.0, "located")
    cmds = mis.on_arm(4.0, "plug", "succeeded")
    sid = _of(cmds, m.StartCharging)[0].session_id
    cmds = mis.on_charging(50.0, sid, "stopped", 1.25, "pilot left state C")
    assert _of(cmds, m.StopCharging) and _of(cmds, m.ArmCommand)[0].action == "unplug"
    assert mis.jobs[0].delivered_kwh == pytest.approx(1.25)


def test_phase_timeout_fails_the_job():
    mis = m.Mission([_job("a", 10.0)], Pose2D(0, 0, 0), m.Timeouts(navigating=10.0))
    mis.start(0.0)
    assert mis.tick(5.0) == []
    cmds = mis.tick(11.0)
    assert "timed out" in mis.jobs[0].failure
    assert mis.phase == "returning" and _of(cmds, m.Navigate)


def test_unplug_failure_stops_the_mission_in_place():
    mis = m.Mission([_job("a", 10.0)], Pose2D(0, 0, 0))
    cmds = mis.start(0.0)
    mis.on_navigation(1.0, _of(cmds, m.Navigate)[0].goal_id, "succeeded")
    mis.on_arm(2.0, "observe", "failed", "unreachable")
    assert mis.phase == "unplugging"
    cmds = mis.on_arm(3.0, "unplug", "failed", "joint fault")
    assert mis.phase == "failed" and not _of(cmds, m.Navigate)
    assert "joint fault" in mis.state()["reason"]


def test_empty_mission_is_an_error():
    with pytest.raises(m.MissionError):
        m.Mission([], Pose2D(0, 0, 0))


def test_time_of_a_failed_job_is_booked_to_that_job():
    mis = m.Mission([_job("a", 10.0), _job("b", 20.0)], Pose2D(0, 0, 0))
    cmds = mis.start(0.0)
    mis.on_navigation(40.0, _of(cmds, m.Navigate)[0].goal_id, "failed", "NO_PROGRESS", "blocked")
    assert mis.jobs[0].phase_s["navigating"] == pytest.approx(40.0)
    assert mis.jobs[1].phase_s["navigating"] == 0.0


def test_a_car_that_cannot_be_staged_is_skipped_with_the_reason():
    blocked = _job("blocked", 5.0)
    blocked.staging = None
    blocked.failure = "FailedToStage: a pillar is in the way"
    mis = m.Mission([blocked, _job("b", 20.0)], Pose2D(0, 0, 0))
    cmds = mis.start(0.0)
    failed = [c for c in cmds if isinstance(c, m.Event) and c.kind == "job_failed"]
    assert failed and "pillar" in failed[0].data["reason"]
    assert mis.job.vehicle_id == "b" and _of(cmds, m.Navigate)[0].goal == Pose2D(20.0, 4.0, 0.0)
