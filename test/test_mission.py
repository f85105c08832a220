"""The mission state machine, driven by hand-made status events (no ROS)."""
import numpy as np
import pytest

from mobicharge_robot.core.mission import mission as m
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


# ---------------------------------------------------------------- energy and departures
from mobicharge_robot.core.energy.reserve import ConsumptionMeter, ReservePolicy, session_cap_kwh  # noqa: E402

DOCK = Pose2D(0.0, 0.0, 0.0)


def _plan(**kw):
    return m.EnergyPlan(path_length_m=lambda a, b: abs(a.x - b.x) + abs(a.y - b.y), dock=DOCK, **kw)


def _budget(usable, reliable=True, reason=""):
    return m.Budget(usable_kwh=usable, wh_per_m=1.0, soc_sigma=0.01, capacity_kwh=50.0, reliable=reliable,
                    reason=reason)


def _energy_mission(jobs, usable=30.0, **kw):
    mis = m.Mission(jobs, DOCK, energy=_plan(**kw))
    mis.on_budget(0.0, _budget(usable))
    return mis


def test_reserve_policy_and_session_cap():
    pol = ReservePolicy(floor_soc=0.1, path_margin=0.5, k_sigma=2.0, fixed_margin_kwh=0.3)
    # 100 m at 1 Wh/m with 50% margin, 2 sigma of 1% of 50 kWh, 0.3 kWh: 0.15 + 1.0 + 0.3
    assert pol.reserve_kwh(100.0, 1.0, 0.01, 50.0) == pytest.approx(1.45)
    assert session_cap_kwh(2.0, 5.0, 1.45, 0.94) == pytest.approx(2.0 + 3.55 * 0.94)
    assert session_cap_kwh(2.0, 1.0, 1.45) == 2.0  # below the reserve: nothing more
    with pytest.raises(ValueError):
        pol.reserve_kwh(-1.0, 1.0, 0.01, 50.0)
    with pytest.raises(ValueError):
        ReservePolicy(floor_soc=1.5)


def test_consumption_meter_learns_from_driving_only():
    meter = ConsumptionMeter(prior_wh_per_m=0.6, prior_m=50.0)
    assert meter.wh_per_m == pytest.approx(0.6)
    for k in range(1, 501):  # 500 m at 1.2 Wh/m
        meter.update(float(k), 1.2 * k, moving=True)
    meter.update(500.0, 2000.0, moving=False)  # a charging session: not driving consumption
    meter.update(501.0, 2001.2, moving=True)
    assert meter.wh_per_m == pytest.approx((0.6 * 50 + 1.2 * 500) / 550, rel=1e-6)  # the first sample is a start


def test_a_job_that_would_break_the_reserve_goes_to_recharge_then_resumes():
    mis = _energy_mission([_job("a", 20.0)], usable=3.0)  # needs 20 m + reserve + 5 kWh useful / 0.94
    cmds = mis.start(0.0)
    assert mis.phase == "to_dock"
    assert any(isinstance(c, m.Event) and c.kind == "recharge_needed" for c in cmds)
    nav = _of(cmds, m.Navigate)[-1]
    assert nav.goal == DOCK
    cmds = mis.on_navigation(50.0, nav.goal_id, "succeeded")
    assert mis.phase == "recharging"
    rec = _of(cmds, m.StartRecharge)[0]
    mis.on_budget(60.0, _budget(40.0))
    cmds = mis.on_charging(3000.0, rec.session_id, "complete", 0.0)
    assert mis.phase == "navigating" and _of(cmds, m.Navigate)[-1].goal == Pose2D(20.0, 4.0, 0.0)
    cmds, t = _serve(mis, cmds, 3100.0)
    assert mis.phase == "returning" and mis.jobs[0].served and mis.recharges == 1


def test_a_job_too_big_even_after_a_recharge_is_skipped():
    mis = _energy_mission([_job("a", 20.0)], usable=3.0)
    cmds = mis.start(0.0)
    cmds = mis.on_navigation(50.0, _of(cmds, m.Navigate)[-1].goal_id, "succeeded")
    mis.on_budget(60.0, _budget(3.5))  # the grid could not fill it
    cmds = mis.on_charging(3000.0, _of(cmds, m.StartRecharge)[0].session_id, "complete", 0.0)
    assert mis.phase == "returning"
    assert "not enough energy" in mis.jobs[0].failure


def test_an_unreliable_estimate_takes_no_new_jobs():
    mis = m.Mission([_job("a", 20.0), _job("b", 30.0)], DOCK, energy=_plan())
    mis.on_budget(0.0, _budget(40.0, reliable=False, reason="voltage stuck"))
    mis.start(0.0)
    assert mis.phase == "returning"
    assert all("unreliable" in j.failure and "voltage stuck" in j.failure for j in mis.jobs)


def test_a_car_leaving_before_a_useful_share_fits_is_skipped():
    late = _job("a", 20.0)
    late.departure_s = 300.0  # 5 kWh at 50 kW takes 360 s alone
    ok = _job("b", 30.0)
    ok.departure_s = 7200.0
    mis = _energy_mission([late, ok])
    cmds = mis.start(0.0)
    assert "departure" in late.failure and mis.phase == "navigating"
    assert _of(cmds, m.Navigate)[-1].goal == ok.staging


def test_a_session_ends_and_releases_before_the_departure():
    job = _job("a", 20.0)
    job.departure_s = 1000.0
    mis = _energy_mission([job])
    cmds = mis.start(0.0)
    nav = _of(cmds, m.Navigate)[-1]
    mis.on_navigation(100.0, nav.goal_id, "succeeded")
    mis.on_arm(101.0, "observe", "succeeded")
    mis.on_detection(102.0, "located")
    cmds = mis.on_arm(103.0, "plug", "succeeded")
    sid = _of(cmds, m.StartCharging)[0].session_id
    mis.on_charging(500.0, sid, "energized", 2.0)
    assert mis.tick(900.0) == []  # release by 1000 - 30 - 60 = 910 s
    cmds = mis.tick(910.0)
    assert _of(cmds, m.StopCharging)[0].reason == "departure"
    assert mis.phase == "unplugging" and _of(cmds, m.ArmCommand)[0].action == "unplug"
    assert mis.on_charging(911.0, sid, "stopped", 2.5, "stopped on request") == []  # the stop it asked for
    mis.on_arm(930.0, "unplug", "succeeded")
    assert job.served and "before departure" in job.note


def test_planned_path_lengths_on_the_default_garage():
    from mobicharge_robot.core.arm.urdf_model import UrdfModel
    from mobicharge_robot.core.garage.garage import load_garage
    from mobicharge_robot.core.mission.distances import PathLengths
    from mobicharge_robot.core.paths import data_path

    garage = load_garage(data_path("config", "garages", "default.yaml"))
    width = UrdfModel.from_xacro(data_path("urdf", "mobicharge.urdf.xacro")).footprint()[1]
    lengths = PathLengths(garage, width)
    d = garage.depot
    home = lengths(d.pose, d.dock)
    straight = ((d.pose.x - d.dock.x) ** 2 + (d.pose.y - d.dock.y) ** 2) ** 0.5
    assert straight <= home < 3.0 * straight + 5.0
    assert lengths(d.pose, d.dock) == home  # cached
    assert lengths(d.pose, Pose2D(-50.0, -50.0, 0.0)) == float("inf")  # off the map: no path
