"""Energy node: the onboard pack's estimate (``battery_state``) and the charging session with the IEC 61851 pilot.

It energizes the DC output only while the arm reports the plug seated (``connector/seated``), the isolation check
is good and the car's pilot is in state C or D; it meters delivered energy from the output stage's measured voltage
and current over (sim) time and stops at the requested energy. A pilot change is handled in its own callback, so the
output is switched off at once rather than on the next control tick.
"""
from __future__ import annotations

import math

from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from ..core.charging import ChargingSession
from ..core.pack import PackParams, SocEstimator
from ..core.pilot import ChargerPilotFSM, PilotState, classify_pilot_voltage
from ..core.requests import RequestError, parse_session_request
from .ros_common import (
    LATCHED_QOS,
    METER_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    StatusPublisher,
    declare,
    live_parameters,
    run_node,
    stamp_seconds,
    task_status,
)


class EnergyNode(Node):
    def __init__(self):
        super().__init__("energy")
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

        live_parameters(self, {"max_output_current_a": "max_current", "max_output_power_kw": "max_power"})
        self.pack = PackParams(capacity_kwh=self.capacity)
        self.estimator = SocEstimator(self.pack, self.initial_soc)
        self.fsm = ChargerPilotFSM()
        self.session = None
        self.session_id = ""
        self.vehicle_id = ""
        self.pilot = PilotState.A
        self.seated = False
        self.isolation_ok = False
        self.out_v = self.out_i = 0.0
        self.bms = None
        self._last_bms_t = None
        self._last_meas_t = None
        self._last_status_t = -1.0
        self.energize = False
        self.fault = ""

        self.battery_pub = self.create_publisher(BatteryState, "battery_state", RELIABLE_QOS)
        self.enable_pub = self.create_publisher(Bool, "dc_output/enable", RELIABLE_QOS)
        self.current_pub = self.create_publisher(Float64, "dc_output/current_request", RELIABLE_QOS)
        self.duty_pub = self.create_publisher(Float64, "pilot/duty", RELIABLE_QOS)
        self.status_pub = StatusPublisher(self, "charge/status")
        self.create_subscription(BatteryState, "bms/state", self._on_bms, SENSOR_QOS)
        self.create_subscription(BatteryState, "dc_output/measurement", self._on_output, METER_QOS)
        self.create_subscription(Float64, "pilot/voltage", self._on_pilot, RELIABLE_QOS)
        self.create_subscription(Bool, "dc_output/isolation_ok", self._on_isolation, RELIABLE_QOS)
        self.create_subscription(Bool, "connector/seated", self._on_seated, LATCHED_QOS)
        self.create_subscription(String, "charge/session_request", self._on_request, RELIABLE_QOS)
        self.create_service(Trigger, "charge/stop", self._on_stop)
        self.create_timer(1.0 / self.rate_hz, lambda: self._control(0.0))
        self.create_timer(0.5, self._publish_battery)
        self._publish_status("idle")

    # ------------------------------------------------------------------ inputs
    def _on_bms(self, msg: BatteryState):
        t = stamp_seconds(msg.header.stamp)
        dt = 0.0 if self._last_bms_t is None else t - self._last_bms_t
        self._last_bms_t = t
        if dt < 0.0 or dt > 5.0:
            dt = 0.0  # a clock jump must not inject or remove charge
        self.estimator.update(msg.voltage, msg.current, msg.temperature, dt)
        self.bms = msg

    def _on_output(self, msg: BatteryState):
        """Each output measurement is metered over the time since the previous one (the stage's own stamps),
        so the kWh count does not depend on how promptly this node's timers run."""
        v, i = msg.voltage, msg.current
        self.out_v = v if math.isfinite(v) else float("nan")
        self.out_i = i if math.isfinite(i) else float("nan")
        t = stamp_seconds(msg.header.stamp)
        dt = 0.0 if self._last_meas_t is None else t - self._last_meas_t
        self._last_meas_t = t
        self._control(dt if 0.0 < dt <= 30.0 else 0.0)  # a clock jump (or a dead stage) is never bridged

    def _on_pilot(self, msg: Float64):
        self.pilot = classify_pilot_voltage(msg.data)
        self._control(0.0)  # react now: leaving C must de-energize without waiting for the next tick

    def _on_isolation(self, msg: Bool):
        self.isolation_ok = bool(msg.data)

    def _on_seated(self, msg: Bool):
        self.seated = bool(msg.data)
        if not self.seated:
            self._control(0.0)

    def _on_request(self, msg: String):
        try:
            req = parse_session_request(msg.data)
        except RequestError as exc:
            self.get_logger().warning(f"charge request rejected: {exc}")
            self._publish_status("rejected", reason=str(exc))
            return
        if self.session is not None and not self.session_finished():
            self._publish_status("rejected", reason=f"session {self.session_id} is still running")
            return
        self.fsm.reset()
        self.session = ChargingSession(req.target_kwh, self.max_current, 1e3 * self.max_power)
        self.session_id, self.vehicle_id = req.session_id, req.vehicle_id
        self.fault = ""
        self.get_logger().info(f"session {req.session_id}: {req.target_kwh:.2f} kWh for {req.vehicle_id}")

    def _on_stop(self, request, response):
        if self.session is None or self.session_finished():
            response.success, response.message = False, "no session running"
            return response
        self.session.stop("stopped on request")
        self._control(0.0)
        response.success, response.message = True, "stopped"
        return response

    def session_finished(self) -> bool:
        return self.session is not None and self.session.state in ("complete", "stopped")

    # ------------------------------------------------------------------ control
    def _control(self, dt: float = 0.0):
        """Pilot state machine and session step; ``dt`` > 0 only when a new output measurement is metered."""
        now = self.get_clock().now().nanoseconds * 1e-9
        want = self.session is not None and not self.session_finished()
        decision = self.fsm.update(now, self.pilot, self.seated, self.isolation_ok, want)
        if self.session is None:
            enable, current = False, 0.0
        else:
            out = self.session.update(now, dt, decision, self.out_v, self.out_i)
            enable, current = out.enable and decision.energize, out.current_request_a
            if decision.fault and not self.fault:
                self.fault = decision.fault
        changed = enable != self.energize
        self.energize = enable
        self.enable_pub.publish(Bool(data=bool(enable)))
        self.current_pub.publish(Float64(data=float(current if enable else 0.0)))
        self.duty_pub.publish(Float64(data=float(decision.duty)))
        if self.session is not None and (changed or now - self._last_status_t >= 0.5 or now < self._last_status_t):
            self._last_status_t = now
            s = self.session
            self._publish_status(s.state, reason=s.stop_reason or self.fault, delivered_kwh=round(s.delivered_kwh, 5),
                                 current_a=round(self.out_i, 2), pilot=self.pilot.name)

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
            msg.voltage, msg.current, msg.temperature = self.bms.voltage, self.bms.current, self.bms.temperature
            msg.percentage = float(min(1.0, max(0.0, self.estimator.soc)))
            msg.power_supply_status = (BatteryState.POWER_SUPPLY_STATUS_DISCHARGING if self.bms.current < -0.5
                                       else BatteryState.POWER_SUPPLY_STATUS_CHARGING if self.bms.current > 0.5
                                       else BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING)
            msg.power_supply_health = (BatteryState.POWER_SUPPLY_HEALTH_GOOD if self.estimator.reliable
                                       else BatteryState.POWER_SUPPLY_HEALTH_UNKNOWN)
        msg.location = "onboard"
        self.battery_pub.publish(msg)


def main(args=None):
    return run_node(EnergyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
