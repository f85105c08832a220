"""Energy node: the onboard pack's estimate (``battery_state``), the return reserve (``energy/budget``), the charging
session with the IEC 61851 pilot, and the depot recharge.

It energizes the DC output only while the arm reports the plug seated (``connector/seated``), the latch sensor
confirms it (``connector/latched``), the isolation check is good and the car's pilot is in state C or D. It meters
delivered energy from the output stage's measured voltage and current over (sim) time and stops at the requested
energy, or earlier at the return reserve: the pack never goes below the energy needed to drive home (the planned path
length from ``localized_pose`` to the dock x the measured Wh/m + margins, ``core/energy/reserve.py``). Every input
the session depends on is watched (``core/energy/guard.py``): a stale or implausible pilot, output measurement, BMS
or latch signal, a diode fault, over-current, over-voltage or over-temperature switches the output off and records
the fault; there is no automatic restart (a new session request is the reset). A pilot change is handled in its own
callback, so the output is switched off at once rather than on the next control tick; a steady-clock timer catches
a stalled sim clock.
"""
from __future__ import annotations

import math
import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from ..core.arm.urdf_model import UrdfError, UrdfModel
from ..core.energy.charging import ChargingSession
from ..core.energy.guard import ClockWatch, GuardLimits, OutputGuard
from ..core.energy.pack import PackParams, SocEstimator
from ..core.energy.pilot import ChargerPilotFSM, PilotState, classify_pilot_voltage
from ..core.energy.reserve import ConsumptionMeter, ReserveError, ReservePolicy, session_cap_kwh
from ..core.garage.garage import GarageError, load_garage
from ..core.mission.distances import PathLengths
from ..core.mission.requests import RequestError, parse_session_request
from ..core.paths import data_path
from .ros_common import (
    LATCHED_QOS,
    METER_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    ConfigurationError,
    StatusPublisher,
    declare,
    live_parameters,
    pose_to_pose2d,
    run_node,
    stamp_seconds,
    task_status,
)

COMMAND_REPEAT_S = 0.5  # sim s between repeats of unchanged DC stage and pilot commands


class EnergyNode(Node):
    def __init__(self):
        super().__init__("energy")
        garage_file = declare(self, "garage_file", data_path("config", "garages", "default.yaml"),
                              "Garage description (the dock the reserve is computed to).", read_only=True)
        urdf_file = declare(self, "urdf_file", data_path("urdf", "mobicharge.urdf.xacro"),
                            "Robot description (footprint for the path home).", read_only=True)
        self.capacity = declare(self, "pack_capacity_kwh", 50.0, "Onboard pack capacity (kWh).", read_only=True,
                                lo=1.0, hi=500.0)
        self.initial_soc = declare(self, "initial_soc", 0.9, "Pack state of charge at start-up (0..1), before "
                                   "the estimator corrects it.", read_only=True, lo=0.0, hi=1.0)
        self.max_current = declare(self, "max_output_current_a", 125.0, "DC output current limit (A).",
                                   lo=1.0, hi=500.0)
        self.max_power = declare(self, "max_output_power_kw", 50.0, "DC output power limit (kW).", lo=1.0,
                                 hi=350.0)
        self.rate_hz = declare(self, "control_rate_hz", 20.0, "Session control rate in (sim) time (Hz).",
                               read_only=True, lo=5.0, hi=200.0)
        self.frame_id = declare(self, "battery_frame", "base_link", "Frame id of battery_state.", read_only=True)
        self.grid_kw = declare(self, "grid_power_limit_kw", 11.0, "Depot recharge power limit from the grid (kW).",
                               lo=0.5, hi=350.0)
        self.recharge_to = declare(self, "recharge_to_soc", 0.95, "A depot recharge ends at this state of charge.",
                                   lo=0.2, hi=1.0)
        floor = declare(self, "reserve_floor_soc", 0.10, "The reserve is counted above this state of charge.",
                        read_only=True, lo=0.0, hi=0.5)
        path_margin = declare(self, "reserve_path_margin", 0.5, "Extra fraction on the energy of the path home.",
                              read_only=True, lo=0.0, hi=5.0)
        k_sigma = declare(self, "reserve_k_sigma", 2.0, "Standard deviations of the soc estimate kept in reserve.",
                          read_only=True, lo=0.0, hi=10.0)
        fixed = declare(self, "reserve_fixed_kwh", 0.3, "Fixed part of the reserve (kWh).", read_only=True,
                        lo=0.0, hi=50.0)
        prior_wh_m = declare(self, "consumption_prior_wh_per_m", 0.6, "Driving consumption before any is measured "
                             "(Wh/m).", read_only=True, lo=0.05, hi=20.0)
        self.efficiency = declare(self, "stage_efficiency", 0.94, "Output stage efficiency assumed when capping a "
                                  "session at the reserve (conservative).", read_only=True, lo=0.5, hi=1.0)
        limits = GuardLimits(
            input_timeout_s=declare(self, "input_timeout_s", 2.0, "Pilot and output measurement older than this "
                                    "(sim s, and input_timeout_wall_s of wall time): output off.", read_only=True,
                                    lo=0.05, hi=10.0),
            input_timeout_wall_s=declare(self, "input_timeout_wall_s", 1.5, "Steady-clock part of the input "
                                         "timeout (s).", read_only=True, lo=0.05, hi=10.0),
            bms_timeout_s=declare(self, "bms_timeout_s", 5.0, "BMS samples older than this (sim s): output off, "
                                  "estimate unreliable.", read_only=True, lo=0.5, hi=30.0),
            latched_timeout_s=declare(self, "latched_timeout_s", 5.0, "Latch sensor older than this (sim s): "
                                      "output off.", read_only=True, lo=0.5, hi=30.0),
            overvoltage_v=declare(self, "output_overvoltage_v", 450.0, "Output voltage stop threshold (V).",
                                  read_only=True, lo=50.0, hi=1000.0),
            derate_temp_c=declare(self, "derate_temp_c", 45.0, "Pack temperature where output power starts to "
                                  "fall (degC).", read_only=True, lo=20.0, hi=70.0),
            stop_temp_c=declare(self, "stop_temp_c", 55.0, "Pack temperature where a session stops (degC).",
                                read_only=True, lo=25.0, hi=80.0))
        self.clock_stall_s = declare(self, "clock_stall_s", 3.0, "Output off when the sim clock has not advanced "
                                     "for this long on the steady clock (s).", read_only=True, lo=0.1, hi=10.0)
        live_parameters(self, {"max_output_current_a": "max_current", "max_output_power_kw": "max_power",
                               "grid_power_limit_kw": "grid_kw", "recharge_to_soc": "recharge_to"})
        try:
            garage = load_garage(garage_file)
            width = UrdfModel.from_xacro(urdf_file).footprint()[1]
            self.policy = ReservePolicy(floor_soc=floor, path_margin=path_margin, k_sigma=k_sigma,
                                        fixed_margin_kwh=fixed)
            self.guard = OutputGuard(limits)
        except (GarageError, UrdfError, OSError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self.dock = garage.depot.dock
        self._lengths = None  # built in the worker thread (a fraction of a second)
        self._length_args = (garage, width)
        self.pack = PackParams(capacity_kwh=self.capacity)
        self.estimator = SocEstimator(self.pack, self.initial_soc)
        self.meter = ConsumptionMeter(prior_wh_per_m=prior_wh_m)
        self.clock_watch = ClockWatch(self.clock_stall_s)
        self.fsm = ChargerPilotFSM()
        self.session = None
        self.session_id = ""
        self.vehicle_id = ""
        self.recharge = None  # {"id", "t0", "wh", "target"} while docked to the grid
        self.pilot = PilotState.A
        self.pilot_low = -12.0
        self.seated = False
        self.latched = False
        self.isolation_ok = False
        self.out_v = self.out_i = 0.0
        self.bms = None
        self._last_bms_t = None
        self._last_meas_t = None
        self._last_status_t = -1.0
        self._last_cmd, self._last_cmd_t = None, -math.inf
        self._last_budget_t = -1.0
        self._last_budget_wall = -1e9
        self._budget_reliable = None
        self._dock_sent, self._dock_sent_wall = None, -1e9
        self._recharge_status_wall = -1e9
        self.energize = False
        self.fault = ""
        self.pack_out_wh = 0.0
        self.distance_m = 0.0
        self.moving = False
        self._last_pose_t = None
        self.pose = None
        self.path_home_m = math.nan
        self._home_for = None
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running = True

        self.battery_pub = self.create_publisher(BatteryState, "battery_state", RELIABLE_QOS)
        self.enable_pub = self.create_publisher(Bool, "dc_output/enable", RELIABLE_QOS)
        self.current_pub = self.create_publisher(Float64, "dc_output/current_request", RELIABLE_QOS)
        self.duty_pub = self.create_publisher(Float64, "pilot/duty", RELIABLE_QOS)
        self.dock_pub = self.create_publisher(Bool, "dock/enable", RELIABLE_QOS)
        self.dock_limit_pub = self.create_publisher(Float64, "dock/power_limit_w", RELIABLE_QOS)
        self.status_pub = StatusPublisher(self, "charge/status")
        self.budget_pub = self.create_publisher(DiagnosticStatus, "energy/budget", LATCHED_QOS)
        self.create_subscription(BatteryState, "bms/state", self._on_bms, SENSOR_QOS)
        self.create_subscription(BatteryState, "dc_output/measurement", self._on_output, METER_QOS)
        self.create_subscription(Float64, "pilot/voltage", self._on_pilot, RELIABLE_QOS)
        self.create_subscription(Float64, "pilot/voltage_low", self._on_pilot_low, RELIABLE_QOS)
        self.create_subscription(Bool, "dc_output/isolation_ok", self._on_isolation, RELIABLE_QOS)
        self.create_subscription(Bool, "connector/seated", self._on_seated, LATCHED_QOS)
        self.create_subscription(Bool, "connector/latched", self._on_latched, RELIABLE_QOS)
        self.create_subscription(String, "charge/session_request", self._on_request, RELIABLE_QOS)
        self.create_subscription(PoseStamped, "localized_pose", self._on_pose, RELIABLE_QOS)
        self.create_service(Trigger, "charge/stop", self._on_stop)
        self._control_timer = self.create_timer(1.0 / self.rate_hz, self._control_tick)
        self.create_timer(0.5, self._publish_battery)
        self.create_timer(0.05, self._steady_watchdog, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._worker = threading.Thread(target=self._path_worker, name="path_home", daemon=True)
        self._worker.start()
        self._publish_status("idle")

    # ------------------------------------------------------------------ clocks
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    @staticmethod
    def _wall() -> float:
        return time.monotonic()

    # ------------------------------------------------------------------ inputs
    def _on_bms(self, msg: BatteryState):
        t = stamp_seconds(msg.header.stamp)
        dt = 0.0 if self._last_bms_t is None else t - self._last_bms_t
        self._last_bms_t = t
        if dt < 0.0 or dt > 5.0:
            dt = 0.0  # a clock jump must not inject or remove charge
        self.estimator.update(msg.voltage, msg.current, msg.temperature, dt)
        if math.isfinite(msg.voltage) and math.isfinite(msg.current):
            # Pack energy out for the consumption meter, with the estimated sensor offset removed.
            self.pack_out_wh += -msg.voltage * (msg.current - self.estimator.current_offset_a) * dt / 3600.0
            self.meter.update(self.distance_m, self.pack_out_wh, self.moving)
        self.bms = msg
        self.guard.fresh.seen("bms", self._now(), self._wall())
        self._update_budget()
        self._step_recharge()

    def _on_output(self, msg: BatteryState):
        """Each output measurement is metered over the time since the previous one (the stage's own stamps),
        so the kWh count does not depend on how promptly this node's timers run."""
        v, i = msg.voltage, msg.current
        self.out_v = v if math.isfinite(v) else float("nan")
        self.out_i = i if math.isfinite(i) else float("nan")
        self.guard.fresh.seen("output", self._now(), self._wall())
        self.guard.note_output(self.out_i, self._wall())
        t = stamp_seconds(msg.header.stamp)
        dt = 0.0 if self._last_meas_t is None else t - self._last_meas_t
        self._last_meas_t = t
        self._control(dt if 0.0 < dt <= 30.0 else 0.0)  # a clock jump (or a dead stage) is never bridged

    def _on_pilot(self, msg: Float64):
        self.pilot = classify_pilot_voltage(msg.data)
        self.guard.fresh.seen("pilot", self._now(), self._wall())
        self._control(0.0)  # react now: leaving C must de-energize without waiting for the next tick

    def _on_pilot_low(self, msg: Float64):
        self.pilot_low = msg.data if math.isfinite(msg.data) else float("nan")
        self._control(0.0)

    def _on_isolation(self, msg: Bool):
        self.isolation_ok = bool(msg.data)
        if not self.isolation_ok:
            self._control(0.0)

    def _on_seated(self, msg: Bool):
        self.seated = bool(msg.data)
        if not self.seated:
            self._control(0.0)

    def _on_latched(self, msg: Bool):
        self.latched = bool(msg.data)
        self.guard.fresh.seen("latched", self._now(), self._wall())
        if not self.latched:
            self._control(0.0)

    def _on_pose(self, msg: PoseStamped):
        """The localized pose: where the path home starts, and the distance driven for the consumption meter."""
        try:
            pose = pose_to_pose2d(msg.pose)
        except ValueError:
            return
        t = stamp_seconds(msg.header.stamp)
        last, last_t = self.pose, self._last_pose_t
        if last is not None and last_t is not None and 0.0 < t - last_t < 1.0:
            step = math.hypot(pose.x - last.x, pose.y - last.y)
            self.distance_m += step
            self.moving = step / (t - last_t) > 0.05
        elif last_t is None or t != last_t:
            self.moving = False
        self._last_pose_t = t
        with self._lock:
            self.pose = pose
            home = self._home_for
        if not self.moving and (home is None or math.hypot(pose.x - home.x, pose.y - home.y) >= 0.5):
            self._wake.set()

    def _on_request(self, msg: String):
        try:
            req = parse_session_request(msg.data)
        except RequestError as exc:
            self.get_logger().warning(f"charge request rejected: {exc}")
            self._publish_status("rejected", reason=str(exc))
            return
        if (self.session is not None and not self.session_finished()) or self.recharge is not None:
            self._publish_status("rejected", reason=f"session {self.session_id} is still running")
            return
        self.session_id, self.vehicle_id = req.session_id, req.vehicle_id
        self.fault = ""
        if req.kind == "recharge":
            self.session = None
            self.recharge = {"id": req.session_id, "t0": self._now(), "wh": 0.0, "max_wh": 1e3 * req.target_kwh}
            self.get_logger().info(f"depot recharge {req.session_id} to {self.recharge_to:.0%} at "
                                   f"{self.grid_kw:.1f} kW")
            self._step_recharge()
            return
        self.fsm.reset()
        # A 10 s taper (not the 4 s default): the end of a session then spans several of the simulator's slow
        # steps, so node latency at a high sim speed-up cannot overshoot the target.
        self.session = ChargingSession(req.target_kwh, self.max_current, 1e3 * self.max_power, taper_s=10.0)
        self._control_timer.reset()
        self.get_logger().info(f"session {req.session_id}: {req.target_kwh:.2f} kWh for {req.vehicle_id}")

    def _on_stop(self, request, response):
        if self.recharge is not None:
            self._end_recharge("stopped", "stopped on request")
            response.success, response.message = True, "stopped"
            return response
        if self.session is None or self.session_finished():
            response.success, response.message = False, "no session running"
            return response
        self.session.stop("stopped on request")
        self._control(0.0)
        response.success, response.message = True, "stopped"
        return response

    def session_finished(self) -> bool:
        return self.session is not None and self.session.state in ("complete", "stopped")

    # ------------------------------------------------------------------ reserve
    def _path_worker(self):
        """Plans the path home off the executor thread (0.1-0.5 s each), only while the robot stands still."""
        while self._running:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if not self._running:
                return
            if self._lengths is None:
                self._lengths = PathLengths(*self._length_args)
            with self._lock:
                pose = self.pose
            if pose is None or self.moving:
                continue
            if self._home_for is not None and math.hypot(pose.x - self._home_for.x, pose.y - self._home_for.y) < 0.5:
                continue
            length = self._lengths.length_m(pose, self.dock)
            if not math.isfinite(length):
                length = 2.0 * math.hypot(pose.x - self.dock.x, pose.y - self.dock.y)  # no plan: be generous
            with self._lock:
                self.path_home_m, self._home_for = length, pose

    def _reserve_kwh(self) -> float:
        with self._lock:
            home = self.path_home_m
        if not math.isfinite(home):
            home = 0.0 if self.pose is None else 2.0 * math.hypot(self.pose.x - self.dock.x,
                                                                    self.pose.y - self.dock.y)
        try:
            return self.policy.reserve_kwh(home, self.meter.wh_per_m, self.estimator.soc_sigma,
                                           self.estimator.capacity_kwh)
        except ReserveError:
            return math.inf

    def _update_budget(self):
        usable = self.estimator.remaining_kwh(self.policy.floor_soc)
        reserve = self._reserve_kwh()
        if self.session is not None and not self.session_finished() and math.isfinite(reserve):
            self.session.cap_kwh = session_cap_kwh(self.session.delivered_kwh, usable, reserve, self.efficiency)
            temp = self.bms.temperature if self.bms is not None else math.nan
            self.session.max_power_w = 1e3 * self.max_power * max(0.05, self.guard.temperature_factor(temp))
        now, wall = self._now(), self._wall()
        est = self.estimator
        # At most once a second of sim time and 0.25 s of wall time (a fast simulation must not flood DDS), and at
        # once when the estimate's reliability changes.
        if est.reliable == self._budget_reliable and (
                (0.0 <= now - self._last_budget_t < 1.0) or wall - self._last_budget_wall < 0.25):
            return
        self._last_budget_t, self._last_budget_wall, self._budget_reliable = now, wall, est.reliable
        values = {"usable_kwh": round(usable, 4), "reserve_kwh": round(reserve, 4),
                  "path_home_m": round(self.path_home_m, 2) if math.isfinite(self.path_home_m) else "nan",
                  "wh_per_m": round(self.meter.wh_per_m, 4), "soc": round(est.soc, 4),
                  "soc_sigma": round(est.soc_sigma, 5), "capacity_kwh": round(est.capacity_kwh, 3),
                  "current_offset_a": round(est.current_offset_a, 3), "reliable": est.reliable,
                  "floor_soc": self.policy.floor_soc, "path_margin": self.policy.path_margin,
                  "k_sigma": self.policy.k_sigma, "fixed_margin_kwh": self.policy.fixed_margin_kwh}
        msg = task_status("energy_budget", "reliable" if est.reliable else "unreliable", "", reason=est.reason,
                          **values)
        self.budget_pub.publish(msg)

    # ------------------------------------------------------------------ depot recharge
    def _step_recharge(self):
        rec = self.recharge
        if rec is None:
            return
        now = self._now()
        bms = self.bms
        trip = ""
        if self.guard.fresh.stale("bms", now, self._wall(), self.guard.limits.bms_timeout_s,
                                  self.guard.limits.input_timeout_wall_s):
            trip = "BMS stale"
        elif bms is not None and self.guard.temperature_factor(bms.temperature) <= 0.0:
            trip = f"over-temperature: pack at {bms.temperature:.1f} degC"
        elif not self.estimator.reliable:
            trip = f"pack estimate unreliable: {self.estimator.reason}"
        if trip:
            self._end_recharge("stopped", trip)
            return
        if bms is not None and math.isfinite(bms.voltage) and math.isfinite(bms.current):
            rec["wh"] += max(0.0, bms.voltage * (bms.current - self.estimator.current_offset_a)) / 3600.0
            charging = bms.current - self.estimator.current_offset_a > 1.0
            if charging:
                rec["charging_t"] = now
        if self.estimator.soc >= self.recharge_to or rec["wh"] >= rec["max_wh"]:
            self._end_recharge("complete", "")
            return
        if now - rec.get("charging_t", rec["t0"]) > 30.0:
            self._end_recharge("stopped", "the dock delivers no current (not docked?)")
            return
        self._send_dock(True)
        if (now - self._last_status_t >= 0.5 or now < self._last_status_t) and \
                self._wall() - self._recharge_status_wall >= 0.25:
            self._last_status_t, self._recharge_status_wall = now, self._wall()
            self._publish_status("recharging", soc=round(self.estimator.soc, 4),
                                 delivered_kwh=round(rec["wh"] / 1e3, 4))

    def _send_dock(self, enable: bool):
        """The dock command: on change, else at most once a wall second (a BMS sample at 400x sim speed must not
        become 400 dock commands a second)."""
        limit = 1e3 * self.grid_kw if enable else 0.0
        wall = self._wall()
        if (enable, limit) == self._dock_sent and wall - self._dock_sent_wall < 1.0:
            return
        self._dock_sent, self._dock_sent_wall = (enable, limit), wall
        self.dock_limit_pub.publish(Float64(data=limit))
        self.dock_pub.publish(Bool(data=enable))

    def _end_recharge(self, state: str, reason: str):
        rec, self.recharge = self.recharge, None
        self._send_dock(False)
        if rec is not None:
            if reason:
                self.get_logger().warning(f"depot recharge {rec['id']} {state}: {reason}")
            self._publish_status(state, reason=reason, soc=round(self.estimator.soc, 4),
                                 delivered_kwh=round(rec["wh"] / 1e3, 4))

    # ------------------------------------------------------------------ control
    def _steady_watchdog(self):
        """Steady-clock timer: catches a stalled sim clock and streams that stopped, even when no message and no
        sim-time timer would call the control step."""
        now = self._now()
        if self.clock_watch.stalled(now, self._wall()) and (self.energize or self.recharge is not None):
            reason = "sim clock stalled"
            if self.session is not None:
                self.session.stop(reason)
            self.fault = self.fault or reason
            if self.recharge is not None:
                self._end_recharge("stopped", reason)
        if self.session is not None and not self.session_finished() or self.energize:
            self._control(0.0)
        elif self.recharge is not None:
            self._step_recharge()

    def _control_tick(self):
        """The periodic control step, at ``control_rate_hz`` while a session runs or the output is on. Idle, the
        timer stops (each message from the pilot or the stage still runs the step): at a high sim speed-up it would
        otherwise cost hundreds of empty callbacks a second."""
        self._control(0.0)
        if (self.session is None or self.session_finished()) and not self.energize:
            self._control_timer.cancel()

    def _control(self, dt: float = 0.0):
        """Watchdogs, pilot state machine and session step; ``dt`` > 0 only when a new output measurement is
        metered."""
        now = self._now()
        running = self.session is not None and not self.session_finished()
        if running:
            temp = self.bms.temperature if self.bms is not None else math.nan
            trip = self.guard.trip(now, self._wall(), energized=self.energize, pilot=self.pilot,
                                   pilot_low_v=self.pilot_low, out_v=self.out_v, out_i=self.out_i, temp_c=temp,
                                   seated=self.seated, latched=self.latched,
                                   estimate_reliable=self.estimator.reliable, estimate_reason=self.estimator.reason)
            if trip:
                self.session.stop(trip)
                self.fault = self.fault or trip
                self.get_logger().error(f"session {self.session_id}: output off: {trip}")
        want = self.session is not None and not self.session_finished()
        locked = self.seated and self.latched and self.guard.inputs_present()
        decision = self.fsm.update(now, self.pilot, locked, self.isolation_ok, want)
        if self.session is None:
            enable, current = False, 0.0
        else:
            was_done = self.session.done
            out = self.session.update(now, dt, decision, self.out_v, self.out_i)
            if out.done and not was_done and not self.session.ever_energized:
                missing = [name for name, ok in (("seated", self.seated), ("latched", self.latched),
                                                 ("isolation", self.isolation_ok)) if not ok]
                missing += [f"no {name} yet" for name in ("pilot", "bms", "latched", "output")
                            if not self.guard.fresh.has(name)]
                self.get_logger().error(f"session {self.session_id}: {out.stop_reason} (pilot {self.pilot.name}; "
                                        f"missing: {', '.join(missing) or 'nothing'})")
            enable, current = out.enable and decision.energize, out.current_request_a
            if decision.fault and not self.fault:
                self.fault = decision.fault
        changed = enable != self.energize
        self.energize = enable
        self.guard.note_request(now, current if enable else 0.0, self._wall())
        self._send_commands(now, bool(enable), float(current if enable else 0.0), float(decision.duty))
        if self.session is not None and (changed or now - self._last_status_t >= 0.5 or now < self._last_status_t):
            self._last_status_t = now
            s = self.session
            self._publish_status(s.state, reason=s.stop_reason or self.fault, delivered_kwh=round(s.delivered_kwh, 5),
                                 current_a=round(self.out_i, 2), pilot=self.pilot.name)

    def _send_commands(self, now: float, enable: bool, current: float, duty: float) -> None:
        """The DC stage and pilot commands: at once on any change, otherwise repeated every ``COMMAND_REPEAT_S``
        (sim time) so that a driver that (re)starts learns the state. Sending all three at every control tick
        cost the stage's driver three callbacks per tick for nothing."""
        cmd = (enable, current, duty)
        if cmd == self._last_cmd and 0.0 <= now - self._last_cmd_t < COMMAND_REPEAT_S:
            return
        self._last_cmd, self._last_cmd_t = cmd, now
        self.enable_pub.publish(Bool(data=enable))
        self.current_pub.publish(Float64(data=current))
        self.duty_pub.publish(Float64(data=duty))

    def _publish_status(self, state, reason="", **values):
        self.status_pub.publish(task_status("energy", state, self.session_id, reason=reason,
                                            vehicle=self.vehicle_id, **values))

    def _publish_battery(self):
        msg = BatteryState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        msg.design_capacity = float("nan")
        msg.capacity = float("nan")
        msg.charge = float("nan")
        msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LIFE
        if self.bms is None:
            msg.present = False
            msg.percentage = float("nan")
            msg.voltage = msg.current = msg.temperature = float("nan")
            msg.power_supply_health = BatteryState.POWER_SUPPLY_HEALTH_UNKNOWN
        else:
            msg.present = True
            msg.voltage, msg.temperature = self.bms.voltage, self.bms.temperature
            msg.current = self.bms.current - self.estimator.current_offset_a  # the sensor offset removed
            msg.percentage = float(min(1.0, max(0.0, self.estimator.soc)))
            msg.power_supply_status = (BatteryState.POWER_SUPPLY_STATUS_DISCHARGING if msg.current < -0.5
                                       else BatteryState.POWER_SUPPLY_STATUS_CHARGING if msg.current > 0.5
                                       else BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING)
            msg.power_supply_health = (BatteryState.POWER_SUPPLY_HEALTH_GOOD if self.estimator.reliable
                                       else BatteryState.POWER_SUPPLY_HEALTH_UNKNOWN)
            if self.bms.temperature >= self.guard.limits.derate_temp_c:
                msg.power_supply_health = BatteryState.POWER_SUPPLY_HEALTH_OVERHEAT
        msg.location = "onboard"
        self.battery_pub.publish(msg)
        if self.bms is not None and self.guard.fresh.stale("bms", self._now(), self._wall(),
                                                           self.guard.limits.bms_timeout_s,
                                                           self.guard.limits.input_timeout_wall_s):
            self.estimator.flag("BMS samples stopped arriving")
            self._update_budget()

    def destroy_node(self):
        self._running = False
        self._wake.set()
        return super().destroy_node()


def main(args=None):
    return run_node(EnergyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
