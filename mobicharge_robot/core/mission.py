"""The mission: depot -> car -> stage -> locate port -> plug -> charge -> unplug -> next car -> depot.

A pure, event-driven state machine. The mission manager node feeds it observations (task status from navigation,
port detection, the arm and the energy node, plus time) and carries out the commands it returns. It never blocks and
never reads the simulator. Time is the node's clock in seconds (sim time under ``use_sim_time``).

Phases of one job: ``navigating`` -> ``locating_port`` -> ``plugging`` -> ``charging`` -> ``unplugging``; then the
next job, or ``returning`` to the depot and ``done``. A failed job is skipped with its reason after the arm is made
safe (unplug/stow); the robot never drives while the arm is out of its stowed pose.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .geometry import Pose2D

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
    delivered_kwh: float = 0.0
    served: bool = False
    failure: str = ""
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


class MissionError(Exception):
    """An invalid mission (for example no jobs, or a NaN pose)."""


class Mission:
    """Orchestrates the jobs in order. Call :meth:`start`, then the ``on_*`` handlers and :meth:`tick`."""

    def __init__(self, jobs: List[Job], depot: Pose2D, timeouts: Optional[Timeouts] = None):
        if not jobs:
            raise MissionError("the mission has no jobs: no vehicle has a charge request")
        self.jobs = jobs
        self.depot = depot
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
        elif self.phase == "returning":
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
        cmds = self._enter("navigating", now)
        return cmds + [Event("job_started", {"vehicle": job.vehicle_id, "spot": job.spot,
                                             "requested_kwh": job.requested_kwh}),
                       self._navigate(job.staging)]

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
        if self.phase == "navigating":
            if state == "failed":
                return self._fail(now, f"navigation {code}: {reason}".strip())
            job = self.job
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
        if self.phase != "charging" or session_id != self._session_id:
            return []
        job = self.job
        job.delivered_kwh = max(job.delivered_kwh, delivered_kwh)
        if state == "complete":
            cmds = self._enter("unplugging", now)
            self._arm_pending = "unplug"
            return cmds + [ArmCommand("unplug")]
        if state == "stopped":
            # Partial energy is kept on record; the job counts as failed with the reason.
            return self._fail(now, f"charging stopped: {reason}")
        return []

    def tick(self, now: float) -> list:
        limit = getattr(self.timeouts, self.phase, None)
        if limit is None or now - self._phase_start <= limit:
            return []
        if self.phase == "returning":
            return self._mission_failed(now, "timed out returning to the depot")
        return self._fail(now, f"timed out in phase {self.phase} after {limit:.0f} s")

    # ------------------------------------------------------------------ report
    def summary(self) -> dict:
        return {
            "vehicles": [{
                "id": j.vehicle_id, "spot": j.spot, "requested_kwh": j.requested_kwh,
                "delivered_kwh": round(j.delivered_kwh, 4), "served": j.served,
                "failure": j.failure, "phase_s": {k: round(v, 2) for k, v in j.phase_s.items()},
            } for j in self.jobs],
            "return_s": round(self.return_s, 2),
            "mission_s": round((self.finished_at or 0.0) - (self.started_at or 0.0), 2),
        }
