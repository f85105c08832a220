"""The mission: depot -> car -> stage -> locate port -> plug -> charge -> unplug -> next car -> depot.

A pure, event-driven state machine. The mission manager node feeds it observations (task status from navigation,
port detection, the arm and the energy node, plus time) and carries out the commands it returns. It never blocks and
never reads the simulator. Time is the node's clock in seconds (sim time under ``use_sim_time``).

Phases of one job: ``navigating`` -> ``locating_port`` -> ``plugging`` -> ``charging`` -> ``unplugging``; then the
next job, or ``returning`` to the depot and ``done``. A failed job is skipped with its reason after the arm is made
safe (unplug/stow); the robot never drives while the arm is out of its stowed pose.

Energy and time (when an :class:`EnergyPlan` is given and the energy node has reported a budget): before a job
starts, the mission checks that the pack can drive to the car, deliver a useful share of the request
(``useful_kwh``) and still keep the return reserve at the car (the same :class:`ReservePolicy` the energy node caps
sessions with); if not, it goes to the dock (``to_dock``), recharges (``recharging``, at the energy node's grid
power limit) and resumes, or skips the job when even a full pack would not do. A job is skipped when the car cannot
be reached and given its useful share before its departure, and a running session is stopped and the connector
released ``release_margin_s`` before the departure. With an unreliable pack estimate no new job starts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from ..energy.reserve import ReservePolicy
from ..geometry import Pose2D

JOB_PHASES = ("navigating", "locating_port", "plugging", "charging", "unplugging")


@dataclass
class Job:
    """One car to serve: where to stage, what to expect, how much energy."""

    vehicle_id: str
    spot: str
    inlet_type: str
    requested_kwh: float
    staging: Optional[Pose2D]  # None when no staging pose exists (FailedToStage): the job is skipped
    T_base_inlet: np.ndarray  # expected inlet pose in base_link once staged (from the garage description)
    departure_s: float = math.inf  # after the mission's start (s)
    max_power_kw: float = math.inf  # the most the car accepts
    delivered_kwh: float = 0.0
    served: bool = False
    failure: str = ""
    note: str = ""  # why a served job got less than its request (reserve cap, departure)
    phase_s: Dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in JOB_PHASES})


# Commands returned to the node.
@dataclass(frozen=True)
class Navigate:
    goal: Pose2D
    goal_id: str


@dataclass(frozen=True)
class ArmCommand:
    action: str  # 'observe' | 'plug' | 'unplug' | 'stow'
    T_base_inlet: Optional[np.ndarray] = None  # the expected inlet, for 'observe'


@dataclass(frozen=True)
class Detection:
    enable: bool
    inlet_type: str = ""


@dataclass(frozen=True)
class StartCharging:
    session_id: str
    vehicle_id: str
    target_kwh: float


@dataclass(frozen=True)
class StopCharging:
    reason: str


@dataclass(frozen=True)
class StartRecharge:
    """Dock the pack to the grid until it reaches the energy node's recharge target."""

    session_id: str


@dataclass(frozen=True)
class Budget:
    """The energy node's view of the pack (``energy/budget``): usable energy above the reserve floor (kWh), the
    measured consumption (Wh/m), the soc estimate's standard deviation, the capacity (kWh), whether the estimate is
    reliable (and why not), and the reserve policy it caps sessions with."""

    usable_kwh: float
    wh_per_m: float
    soc_sigma: float
    capacity_kwh: float
    reliable: bool
    reason: str = ""
    policy: ReservePolicy = ReservePolicy()


@dataclass
class EnergyPlan:
    """What the mission needs to plan energy and time. ``path_length_m(a, b)`` is the planned path length (m)
    between two map poses (inf when there is none)."""

    path_length_m: Callable[[Pose2D, Pose2D], float]
    dock: Pose2D
    output_kw: float = 50.0  # the robot's DC output limit
    stage_efficiency: float = 0.94  # conservative
    useful_fraction: float = 0.5  # of the request ...
    useful_min_kwh: float = 2.0  # ... but at least this much (or the whole request when smaller)
    drive_speed_mps: float = 0.5  # average, for arrival times
    plug_overhead_s: float = 90.0  # locate the port and plug in
    unplug_s: float = 30.0
    release_margin_s: float = 60.0  # the connector is released this long before a departure

    def useful_kwh(self, job: Job) -> float:
        return min(job.requested_kwh, max(self.useful_min_kwh, self.useful_fraction * job.requested_kwh))


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict


@dataclass
class Timeouts:
    """Sim-time limits per phase, seconds. A phase that overruns fails the job with a timeout reason."""

    navigating: float = 600.0
    locating_port: float = 60.0
    plugging: float = 90.0
    charging: float = 4.0 * 3600.0
    unplugging: float = 90.0
    returning: float = 900.0
    to_dock: float = 900.0
    recharging: float = 8.0 * 3600.0


class MissionError(Exception):
    """An invalid mission (for example no jobs, or a NaN pose)."""


class Mission:
    """Orchestrates the jobs in order. Call :meth:`start`, then the ``on_*`` handlers and :meth:`tick`."""

    def __init__(self, jobs: List[Job], depot: Pose2D, timeouts: Optional[Timeouts] = None,
                 energy: Optional[EnergyPlan] = None):
        if not jobs:
            raise MissionError("the mission has no jobs: no vehicle has a charge request")
        self.jobs = jobs
        self.depot = depot
        self.energy = energy
        self.budget: Optional[Budget] = None
        self.position = depot
        self.recharges = 0
        self._recharged_for = -1  # the job index a recharge was made for (a second shortfall skips it)
        self.timeouts = timeouts or Timeouts()
        self.phase = "idle"
        self.index = -1
        self._phase_start = 0.0
        self._goal_seq = 0
        self._goal_id = ""
        self._arm_pending = ""
        self._session_id = ""
        self.started_at: Optional[float] = None
        self.finished_at: Optional[float] = None
        self.return_s = 0.0
        self.failure_reason = ""

    # ------------------------------------------------------------------ queries
    @property
    def job(self) -> Optional[Job]:
        return self.jobs[self.index] if 0 <= self.index < len(self.jobs) else None

    @property
    def finished(self) -> bool:
        return self.phase == "done"

    def state(self) -> dict:
        """The latched state; once the mission has ended it carries the summary (or the reason it failed)."""
        job = self.job
        out = {
            "phase": self.phase,
            "vehicle": job.vehicle_id if job and self.phase in JOB_PHASES else "",
            "job_index": self.index,
            "jobs_total": len(self.jobs),
            "served": sum(1 for j in self.jobs if j.served),
            "failed": sum(1 for j in self.jobs if j.failure),
        }
        if self.phase == "done":
            out["summary"] = self.summary()
        elif self.phase == "failed":
            out["reason"] = self.failure_reason
        return out

    # ------------------------------------------------------------------ transitions
    def start(self, now: float) -> list:
        if self.phase != "idle":
            return []
        self.started_at = now
        return [Event("mission_started", {"jobs": [j.vehicle_id for j in self.jobs]})] + self._next_job(now)

    def _close_phase(self, now: float) -> None:
        """Book the time spent in the current phase (on the current job) before anything changes."""
        job = self.job
        if self.phase in JOB_PHASES and job is not None:
            job.phase_s[self.phase] += now - self._phase_start
        elif self.phase in ("returning", "to_dock", "recharging"):
            self.return_s += now - self._phase_start
        self._phase_start = now

    def _enter(self, phase: str, now: float) -> list:
        self._close_phase(now)
        job = self.job
        old, self.phase = self.phase, phase
        data = {"from": old, "to": phase, "t": now}
        if job is not None and phase in JOB_PHASES:
            data["vehicle"] = job.vehicle_id
        return [Event("phase", data)]

    def _navigate(self, goal: Pose2D) -> Navigate:
        self._goal_seq += 1
        self._goal_id = f"goal-{self._goal_seq}"
        return Navigate(goal, self._goal_id)

    def _next_job(self, now: float) -> list:
        self._close_phase(now)
        self.index += 1
        skipped = []
        while self.job is not None and self.job.staging is None:
            job = self.job
            job.failure = job.failure or "FailedToStage: no staging pose beside the inlet"
            skipped.append(Event("job_failed", {"vehicle": job.vehicle_id, "phase": "queued",
                                                "reason": job.failure}))
            self.index += 1
        return skipped + self._start_job(now)

    def _start_job(self, now: float) -> list:
        job = self.job
        if job is None:
            cmds = self._enter("returning", now)
            return cmds + [self._navigate(self.depot)]
        verdict = self._check_job(now, job)
        if verdict == "recharge":
            self._recharged_for = self.index
            cmds = self._enter("to_dock", now)
            return cmds + [Event("recharge_needed", {"vehicle": job.vehicle_id,
                                                     "usable_kwh": round(self.budget.usable_kwh, 3)}),
                           self._navigate(self.energy.dock)]
        if verdict:
            job.failure = verdict
            return [Event("job_failed", {"vehicle": job.vehicle_id, "phase": "queued", "reason": verdict})] \
                + self._next_job(now)
        cmds = self._enter("navigating", now)
        return cmds + [Event("job_started", {"vehicle": job.vehicle_id, "spot": job.spot,
                                             "requested_kwh": job.requested_kwh}),
                       self._navigate(job.staging)]

    def _departure_abs(self, job: Job) -> float:
        return (self.started_at or 0.0) + job.departure_s

    def _check_job(self, now: float, job: Job) -> str:
        """'' to start the job, 'recharge' to recharge first, else the reason to skip it."""
        plan, budget = self.energy, self.budget
        if plan is None:
            return ""
        if budget is None:
            return "no energy budget from the energy node: the pack's charge is unknown"
        if not budget.reliable:
            return f"pack estimate unreliable ({budget.reason}): no new jobs"
        to_car = plan.path_length_m(self.position, job.staging)
        home = plan.path_length_m(job.staging, self.energy.dock)
        if not (math.isfinite(to_car) and math.isfinite(home)):
            return "no path to the car or from it back to the dock"
        useful = plan.useful_kwh(job)
        # Time: reach the car, plug in, deliver the useful share, release before the departure.
        power_kw = min(plan.output_kw, job.max_power_kw)
        t_done = now + to_car / plan.drive_speed_mps + plan.plug_overhead_s + 3600.0 * useful / power_kw
        latest = self._departure_abs(job) - plan.unplug_s - plan.release_margin_s
        if t_done > latest:
            return (f"departure: {useful:.1f} kWh could not be delivered before the car leaves "
                    f"(done at {t_done:.0f} s, release by {latest:.0f} s)")
        reserve = budget.policy.reserve_kwh(home, budget.wh_per_m, budget.soc_sigma, budget.capacity_kwh)
        need = to_car * budget.wh_per_m / 1000.0 + reserve + useful / plan.stage_efficiency
        if budget.usable_kwh >= need:
            return ""
        if self._recharged_for == self.index:
            return (f"not enough energy even after recharging: needs {need:.2f} kWh (with the reserve), the pack "
                    f"has {budget.usable_kwh:.2f} kWh")
        return "recharge"

    def on_budget(self, now: float, budget: Budget) -> list:
        self.budget = budget
        return []

    def _mission_failed(self, now: float, reason: str) -> list:
        self.failure_reason = reason
        return self._enter("failed", now) + [Event("mission_failed", {"reason": reason})]

    def _fail(self, now: float, reason: str) -> list:
        """Fail the current job; make the arm safe before moving on."""
        job = self.job
        cmds: list = []
        if job is not None and not job.failure:
            job.failure = reason
            cmds.append(Event("job_failed", {"vehicle": job.vehicle_id, "phase": self.phase, "reason": reason}))
        if self.phase == "charging":
            cmds.append(StopCharging(reason))
        if self.phase in ("locating_port", "plugging", "charging"):
            cmds.append(Detection(False))
            cmds += self._enter("unplugging", now)
            self._arm_pending = "unplug"
            cmds.append(ArmCommand("unplug"))
            return cmds
        if self.phase == "unplugging":
            # The arm could not be made safe: stay put, the robot must not drive with the arm out.
            return cmds + self._mission_failed(now, f"arm not clear: {reason}")
        return cmds + self._next_job(now)

    # ------------------------------------------------------------------ inputs
    def on_navigation(self, now: float, goal_id: str, state: str, code: str = "", reason: str = "") -> list:
        if goal_id != self._goal_id or state not in ("succeeded", "failed"):
            return []
        if self.phase == "to_dock":
            if state == "failed":
                return self._mission_failed(now, f"could not reach the dock to recharge {code}: {reason}")
            self.position = self.energy.dock
            self.recharges += 1
            cmds = self._enter("recharging", now)
            self._session_id = f"recharge-{self.recharges}"
            return cmds + [StartRecharge(self._session_id)]
        if self.phase == "navigating":
            if state == "failed":
                return self._fail(now, f"navigation {code}: {reason}".strip())
            job = self.job
            self.position = job.staging
            cmds = self._enter("locating_port", now)
            self._arm_pending = "observe"
            return cmds + [ArmCommand("observe", job.T_base_inlet)]
        if self.phase == "returning":
            if state == "failed":
                return self._mission_failed(now, f"return to depot {code}: {reason}")
            cmds = self._enter("done", now)
            self.finished_at = now
            return cmds + [Event("mission_complete", self.summary())]
        return []

    def on_arm(self, now: float, action: str, state: str, reason: str = "") -> list:
        if action != self._arm_pending or state not in ("succeeded", "failed"):
            return []
        self._arm_pending = ""
        job = self.job
        if self.phase == "locating_port" and action == "observe":
            if state == "failed":
                return self._fail(now, f"arm could not reach the camera pose: {reason}")
            return [Detection(True, job.inlet_type)]
        if self.phase == "plugging" and action == "plug":
            if state == "failed":
                return self._fail(now, f"insertion failed: {reason}")
            cmds = self._enter("charging", now)
            self._session_id = f"{job.vehicle_id}-{now:.3f}"
            return cmds + [StartCharging(self._session_id, job.vehicle_id, job.requested_kwh)]
        if self.phase == "unplugging" and action == "unplug":
            if state == "failed":
                return self._fail(now, f"release failed: {reason}")
            if not job.failure:
                job.served = True
                cmds = [Event("job_done", {"vehicle": job.vehicle_id, "delivered_kwh": job.delivered_kwh})]
            else:
                cmds = []
            return cmds + self._next_job(now)
        return []

    def on_detection(self, now: float, state: str, reason: str = "") -> list:
        if self.phase != "locating_port" or self._arm_pending:
            return []
        if state == "located":
            cmds = [Detection(False)] + self._enter("plugging", now)
            self._arm_pending = "plug"
            return cmds + [ArmCommand("plug")]
        if state == "failed":
            return self._fail(now, f"failed to detect the port: {reason}")
        return []

    def on_charging(self, now: float, session_id: str, state: str, delivered_kwh: float, reason: str = "") -> list:
        if session_id != self._session_id:
            return []
        if self.phase == "recharging":
            if state == "complete":
                return [Event("recharged", {"t": now})] + self._start_job(now)
            if state == "stopped":
                return self._mission_failed(now, f"depot recharge stopped: {reason}")
            return []
        if self.phase != "charging":
            if self.phase == "unplugging" and self.job is not None:
                # The meter keeps counting what was in flight when the session ended: record the final figure.
                self.job.delivered_kwh = max(self.job.delivered_kwh, delivered_kwh)
            return []
        job = self.job
        job.delivered_kwh = max(job.delivered_kwh, delivered_kwh)
        if state == "complete":
            if reason:
                job.note = reason  # capped by the reserve
            cmds = self._enter("unplugging", now)
            self._arm_pending = "unplug"
            return cmds + [ArmCommand("unplug")]
        if state == "stopped":
            # Partial energy is kept on record; the job counts as failed with the reason.
            return self._fail(now, f"charging stopped: {reason}")
        return []

    def tick(self, now: float) -> list:
        job = self.job
        if self.phase == "charging" and self.energy is not None and job is not None:
            release_by = self._departure_abs(job) - self.energy.unplug_s - self.energy.release_margin_s
            if now >= release_by:
                # The car leaves soon: end the session and release the connector in time (a served job).
                job.note = f"ended {self.energy.unplug_s + self.energy.release_margin_s:.0f} s before departure"
                cmds = [StopCharging("departure"), Event("departure_stop", {"vehicle": job.vehicle_id})]
                cmds += self._enter("unplugging", now)
                self._arm_pending = "unplug"
                return cmds + [ArmCommand("unplug")]
        limit = getattr(self.timeouts, self.phase, None)
        if limit is None or now - self._phase_start <= limit:
            return []
        if self.phase in ("returning", "to_dock", "recharging"):
            return self._mission_failed(now, f"timed out in phase {self.phase} after {limit:.0f} s")
        return self._fail(now, f"timed out in phase {self.phase} after {limit:.0f} s")

    # ------------------------------------------------------------------ report
    def summary(self) -> dict:
        return {
            "vehicles": [{
                "id": j.vehicle_id, "spot": j.spot, "requested_kwh": j.requested_kwh,
                "delivered_kwh": round(j.delivered_kwh, 4), "served": j.served,
                "failure": j.failure, "note": j.note, "departure_s": j.departure_s if math.isfinite(j.departure_s)
                else None, "phase_s": {k: round(v, 2) for k, v in j.phase_s.items()},
            } for j in self.jobs],
            "recharges": self.recharges,
            "return_s": round(self.return_s, 2),
            "mission_s": round((self.finished_at or 0.0) - (self.started_at or 0.0), 2),
        }
