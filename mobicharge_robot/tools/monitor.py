"""Runs a mission on the loopback stack and watches it: live progress, the summary and time series for the report.

Used by the demo and by the end-to-end tests. Only with ``record_truth=True`` (tests, benchmarks) does it read the
simulator's ground-truth topic; the demo's figures are what the robot itself measured.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import String

from ..nodes.ros_common import LATCHED_QOS, RELIABLE_QOS, stamp_seconds, status_values
from .stack import isolated_ros_env, start_stack


@dataclass
class MissionResult:
    summary: dict
    error: str = ""
    events: List[dict] = field(default_factory=list)
    series: Dict[str, list] = field(default_factory=dict)
    truth: Dict[str, str] = field(default_factory=dict)
    truth_poses: List[tuple] = field(default_factory=list)


class _Monitor(Node):
    def __init__(self, record_truth: bool):
        # Sim time from the stamps of the odometry and battery streams rather than a /clock subscription: /clock
        # ticks a hundred times a wall second, and this observer only needs the time of what it records.
        super().__init__("mission_monitor")
        self._sim_t = 0.0
        self.state = {}
        self.events: List[dict] = []
        self.complete: Optional[dict] = None
        self.failed = ""
        self.soc_start = None
        self.soc = float("nan")
        self.delivered = 0.0
        self.distance = 0.0
        self._last_xy = None
        self.series = {"t": [], "soc": [], "x": [], "y": [], "kwh_t": [], "kwh": [], "kwh_vehicle": []}
        self.truth: Dict[str, str] = {}
        self.truth_poses: List[tuple] = []
        self.create_subscription(String, "mission/state", self._on_state, LATCHED_QOS)
        self.create_subscription(String, "mission/events", self._on_event, RELIABLE_QOS)
        self.create_subscription(BatteryState, "battery_state", self._on_battery, RELIABLE_QOS)
        self.create_subscription(DiagnosticStatus, "charge/status", self._on_charge, LATCHED_QOS)
        self.create_subscription(Odometry, "odom", self._on_odom, RELIABLE_QOS)
        if record_truth:
            from geometry_msgs.msg import PoseStamped

            self.create_subscription(DiagnosticStatus, "sim/truth/status", self._on_truth, LATCHED_QOS)
            self.create_subscription(PoseStamped, "sim/truth/robot_pose", self._on_truth_pose, RELIABLE_QOS)

    def now(self) -> float:
        """Sim time: the newest stamp seen on odometry or battery_state (s)."""
        return self._sim_t

    def _stamp(self, msg) -> None:
        self._sim_t = max(self._sim_t, stamp_seconds(msg.header.stamp))

    def _on_state(self, msg):
        try:
            self.state = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        # The state is latched, so an ending is seen even when its event was published before we subscribed.
        if self.state.get("phase") == "done" and self.complete is None:
            self.complete = dict(self.state.get("summary", {}), event="mission_complete")
        elif self.state.get("phase") == "failed" and not self.failed:
            self.failed = self.state.get("reason") or "mission failed"

    def _on_event(self, msg):
        try:
            ev = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        self.events.append(ev)
        if ev.get("event") == "mission_complete":
            self.complete = ev
        elif ev.get("event") == "mission_failed":
            self.failed = ev.get("reason", "mission failed")

    def _on_battery(self, msg: BatteryState):
        self._stamp(msg)
        if msg.present and math.isfinite(msg.percentage):
            self.soc = msg.percentage
            if self.soc_start is None:
                self.soc_start = msg.percentage
            self.series["t"].append(self.now())
            self.series["soc"].append(msg.percentage)

    def _on_charge(self, msg: DiagnosticStatus):
        v = status_values(msg)
        try:
            self.delivered = float(v.get("delivered_kwh", "0"))
        except ValueError:
            return
        self.series["kwh_t"].append(self.now())
        self.series["kwh"].append(self.delivered)
        self.series["kwh_vehicle"].append(v.get("vehicle", ""))

    def _on_odom(self, msg: Odometry):
        self._stamp(msg)
        p = msg.pose.pose.position
        if self._last_xy is not None:
            step = math.hypot(p.x - self._last_xy[0], p.y - self._last_xy[1])
            if step < 1.0:  # ignore a reset
                self.distance += step
        if self._last_xy is None or math.hypot(p.x - self._last_xy[0], p.y - self._last_xy[1]) > 0.0:
            self.series["x"].append(p.x)
            self.series["y"].append(p.y)
        self._last_xy = (p.x, p.y)

    def _on_truth(self, msg: DiagnosticStatus):
        self.truth = status_values(msg)

    def _on_truth_pose(self, msg):
        self.truth_poses.append((msg.pose.position.x, msg.pose.position.y, msg.pose.orientation.z,
                                 msg.pose.orientation.w))


def run_mission(garage_file: str, run_dir: str, timeout_s: float = 300.0, seed: int = 1, live: bool = True,
                record_truth: bool = False, overrides: Optional[dict] = None,
                domain_id: Optional[int] = None, variation: str = "nominal") -> MissionResult:
    env = isolated_ros_env(domain_id)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")})
    params = {name: {"garage_file": garage_file} for name in ("loopback_sim", "localization", "navigation",
                                                             "mission_manager")}
    params["loopback_sim"].update({"seed": seed, "variation": variation, "truth_dir": os.path.abspath(run_dir)})
    for name, extra in (overrides or {}).items():
        params.setdefault(name, {}).update(extra)
    wall0 = time.monotonic()
    rclpy.init()
    mon = _Monitor(record_truth)  # subscribed before the nodes start, so no early event is missed
    stack = start_stack(os.path.join(run_dir, "logs"), env, overrides=params)
    error = ""
    last_line = 0.0
    last_phase = None
    try:
        while True:
            rclpy.spin_once(mon, timeout_sec=0.05)
            wall = time.monotonic() - wall0
            if mon.complete is not None:
                break
            if mon.failed:
                error = mon.failed
                break
            dead = stack.dead()
            if dead:
                error = f"node process(es) exited: {', '.join(dead)}\n" + "\n".join(
                    f"--- {n} log tail ---\n{stack.tail(n)}" for n in dead)
                break
            if wall > timeout_s:
                error = f"timed out after {timeout_s:.0f} s wall-clock (phase {mon.state.get('phase', '?')})"
                break
            phase = (mon.state.get("phase"), mon.state.get("vehicle"))
            if live and (phase != last_phase or wall - last_line > (0.5 if sys.stdout.isatty() else 5.0)):
                line = (f"[sim {mon.now():7.1f} s | wall {wall:5.1f} s] {str(phase[0] or 'starting'):<14} "
                        f"{phase[1] or '':<8} served {mon.state.get('served', 0)}/{mon.state.get('jobs_total', '?')}"
                        f"  dist {mon.distance:6.1f} m  kWh {mon.delivered:6.2f}  pack "
                        f"{100 * mon.soc:5.1f}%")
                if sys.stdout.isatty():
                    end = "\n" if phase != last_phase else "\r"
                    print(line, end=end, flush=True)
                else:
                    print(line, flush=True)
                last_line, last_phase = wall, phase
        # Let the last messages (battery state, truth) arrive before the stack goes down.
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            rclpy.spin_once(mon, timeout_sec=0.05)
    finally:
        stack.stop()
        sim_s = mon.now()
        mon.destroy_node()
        rclpy.shutdown()
    wall_s = time.monotonic() - wall0
    if mon.complete is not None:
        vehicles = mon.complete.get("vehicles", [])
    else:
        vehicles = []
    summary = {
        "vehicles": [{k: v[k] for k in ("id", "spot", "requested_kwh", "delivered_kwh", "served", "phase_s")}
                     for v in vehicles],
        "pack_soc_start": mon.soc_start,
        "pack_soc_end": mon.soc if math.isfinite(mon.soc) else None,
        "distance_m": round(mon.distance, 2),
        "sim_s": round(sim_s, 2),
        "wall_s": round(wall_s, 2),
    }
    with open(os.path.join(run_dir, "events.jsonl"), "w", encoding="utf-8") as f:
        for ev in mon.events:
            f.write(json.dumps(ev) + "\n")
    return MissionResult(summary, error, mon.events, mon.series, mon.truth, mon.truth_poses)
