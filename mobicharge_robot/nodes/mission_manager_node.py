"""Mission manager: serves every car with a charge request in the garage file, then returns to the depot.

It owns no behaviour of its own: :class:`mobicharge_robot.core.mission.mission.Mission` decides, this node carries out its
commands over the other nodes' topics and services and feeds their status back. ``mission/state`` (latched) and
``mission/events`` carry JSON (schemas in the README).
"""
from __future__ import annotations

import json
import math

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from ..core.energy.reserve import ReserveError, ReservePolicy
from ..core.mission import mission as m
from ..core.mission.distances import PathLengths
from ..core.garage.garage import GarageError, load_garage
from ..core.paths import data_path
from ..core.mission.requests import SessionRequest, session_request_json
from ..core.garage.staging import StagingError, inlet_relative_to_robot, staging_pose
from ..core.arm.urdf_model import UrdfError, UrdfModel
from .ros_common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    ConfigurationError,
    declare,
    live_parameters,
    matrix_to_pose_stamped,
    pose2d_to_msg,
    run_node,
    status_values,
)

_TASKS = ("navigation", "arm", "port_detection", "energy")


class MissionManagerNode(Node):
    def __init__(self):
        super().__init__("mission_manager")
        garage_file = declare(self, "garage_file", data_path("config", "garages", "default.yaml"),
                              "Garage description with the vehicles and their requests.", read_only=True)
        urdf_file = declare(self, "urdf_file", data_path("urdf", "mobicharge.urdf.xacro"),
                            "Robot description (footprint for staging).", read_only=True)
        self.map_frame = declare(self, "map_frame", "map", "Global frame id.", read_only=True)
        self.base_frame = declare(self, "base_frame", "base_link", "Robot base frame id.", read_only=True)
        self.autostart = declare(self, "autostart", True, "Start as soon as every node reports ready.")
        self.clearance = declare(self, "staging_clearance_m", 0.35,
                                 "Gap between the robot's side and the car body when staged (m).", read_only=True,
                                 lo=0.1, hi=1.0)
        self.output_kw = declare(self, "max_output_power_kw", 50.0, "The robot's DC output limit, for the time a "
                                 "car's useful share takes (kW).", read_only=True, lo=1.0, hi=350.0)
        self.useful_fraction = declare(self, "useful_fraction", 0.5, "A car is started only if this share of its "
                                       "request (at least useful_min_kwh) fits before its departure and within the "
                                       "pack's energy above the return reserve.", read_only=True, lo=0.05, hi=1.0)
        self.useful_min = declare(self, "useful_min_kwh", 2.0, "Smallest useful delivery (kWh).", read_only=True,
                                  lo=0.1, hi=100.0)
        self.release_margin = declare(self, "release_margin_s", 60.0, "The connector is released this long "
                                      "before a car's departure (s).", read_only=True, lo=0.0, hi=3600.0)
        self.energy_planning = declare(self, "energy_planning", True, "Plan the reserve, departures and depot "
                                       "recharges (false: serve the jobs in order, as before).", read_only=True)
        live_parameters(self, {"autostart": "autostart"})
        try:
            garage = load_garage(garage_file)
            length, width = UrdfModel.from_xacro(urdf_file).footprint()
            max_kw = {v.id: v.battery.max_dc_power_kw for v in garage.vehicles}
            jobs = []
            for v in garage.requested_vehicles():
                try:
                    staging, failure = staging_pose(garage, v, length, width, self.clearance), ""
                except StagingError as exc:
                    staging, failure = None, f"FailedToStage: {exc}"
                    self.get_logger().warning(f"{v.id} will be skipped: {failure}")
                jobs.append(m.Job(vehicle_id=v.id, spot=v.spot, inlet_type=v.inlet.type,
                                  requested_kwh=v.request.energy_kwh, staging=staging,
                                  T_base_inlet=(inlet_relative_to_robot(garage, v, staging) if staging is not None
                                                else None),
                                  failure=failure, departure_s=(v.request.departure_s if v.request.departure_s is not None
                                                                   else math.inf),
                                  max_power_kw=max_kw.get(v.id, math.inf)))
            energy = None
            if self.energy_planning:
                energy = m.EnergyPlan(path_length_m=PathLengths(garage, width), dock=garage.depot.dock,
                                      output_kw=self.output_kw, useful_fraction=self.useful_fraction,
                                      useful_min_kwh=self.useful_min, release_margin_s=self.release_margin)
            self.mission = m.Mission(jobs, garage.depot.pose, energy=energy)
        except (GarageError, UrdfError, m.MissionError, OSError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self.ready = set()
        self._goal_ids = {}  # navigation goal stamp -> mission goal id

        self.state_pub = self.create_publisher(String, "mission/state", LATCHED_QOS)
        self.event_pub = self.create_publisher(String, "mission/events", RELIABLE_QOS)
        self.goal_pub = self.create_publisher(PoseStamped, "goal_pose", RELIABLE_QOS)
        self.observe_pub = self.create_publisher(PoseStamped, "arm/observe_target", RELIABLE_QOS)
        self.inlet_type_pub = self.create_publisher(String, "inlet_type", LATCHED_QOS)
        self.session_pub = self.create_publisher(String, "charge/session_request", RELIABLE_QOS)
        self.arm_clients = {a: self.create_client(Trigger, f"arm/{a}")
                            for a in ("plug", "unplug", "stow")}
        self.detect_client = self.create_client(SetBool, "detect_port/enable")
        self.stop_client = self.create_client(Trigger, "charge/stop")
        self.create_subscription(DiagnosticStatus, "navigate/status", self._on_nav, LATCHED_QOS)
        self.create_subscription(DiagnosticStatus, "arm/status", self._on_arm, LATCHED_QOS)
        self.create_subscription(DiagnosticStatus, "detect_port/status", self._on_detect, LATCHED_QOS)
        self.create_subscription(DiagnosticStatus, "charge/status", self._on_charge, LATCHED_QOS)
        self.create_subscription(DiagnosticStatus, "energy/budget", self._on_budget, LATCHED_QOS)
        self.create_service(Trigger, "mission/start", self._on_start)
        self.create_timer(0.1, self._tick)
        self._publish_state()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ start
    def _can_start(self) -> str:
        missing = [t for t in _TASKS if t not in self.ready]
        if self.mission.energy is not None and self.mission.budget is None:
            missing.append("energy budget")
        if missing:
            return "waiting for: " + ", ".join(missing)
        if self._now() <= 0.0:
            return "waiting for the clock"
        services = list(self.arm_clients.values()) + [self.detect_client, self.stop_client]
        if not all(c.service_is_ready() for c in services):
            return "waiting for services"
        return ""

    def _on_start(self, request, response):
        why = self._can_start()
        if why or self.mission.phase != "idle":
            response.success, response.message = False, why or f"already {self.mission.phase}"
            return response
        self._run(self.mission.start(self._now()))
        response.success, response.message = True, "started"
        return response

    def _tick(self):
        now = self._now()
        if self.mission.phase == "idle":
            if self.autostart and not self._can_start():
                self._run(self.mission.start(now))
            return
        self._run(self.mission.tick(now))

    # ------------------------------------------------------------------ status inputs
    def _on_nav(self, msg: DiagnosticStatus):
        v = status_values(msg)
        if v.get("localized") == "True":
            self.ready.add("navigation")
        goal = self._goal_ids.get(msg.hardware_id, "")
        self._run(self.mission.on_navigation(self._now(), goal, msg.message, v.get("code", ""), v.get("reason", "")))

    def _on_arm(self, msg: DiagnosticStatus):
        self.ready.add("arm")
        self._run(self.mission.on_arm(self._now(), msg.hardware_id, msg.message, status_values(msg).get("reason", "")))

    def _on_detect(self, msg: DiagnosticStatus):
        self.ready.add("port_detection")
        self._run(self.mission.on_detection(self._now(), msg.message, status_values(msg).get("reason", "")))

    def _on_charge(self, msg: DiagnosticStatus):
        self.ready.add("energy")
        v = status_values(msg)
        try:
            delivered = float(v.get("delivered_kwh", "0") or 0.0)
        except ValueError:
            delivered = 0.0
        self._run(self.mission.on_charging(self._now(), msg.hardware_id, msg.message,
                                           delivered if math.isfinite(delivered) else 0.0, v.get("reason", "")))

    def _on_budget(self, msg: DiagnosticStatus):
        v = status_values(msg)
        try:
            budget = m.Budget(usable_kwh=float(v["usable_kwh"]), wh_per_m=float(v["wh_per_m"]),
                              soc_sigma=float(v["soc_sigma"]), capacity_kwh=float(v["capacity_kwh"]),
                              reliable=v.get("reliable") == "True", reason=v.get("reason", ""),
                              policy=ReservePolicy(floor_soc=float(v["floor_soc"]),
                                                   path_margin=float(v["path_margin"]),
                                                   k_sigma=float(v["k_sigma"]),
                                                   fixed_margin_kwh=float(v["fixed_margin_kwh"])))
        except (KeyError, ValueError, ReserveError) as exc:
            self.get_logger().warning(f"energy/budget ignored: {exc}")
            return
        if not all(math.isfinite(x) for x in (budget.usable_kwh, budget.wh_per_m, budget.soc_sigma,
                                               budget.capacity_kwh)):
            self.get_logger().warning("energy/budget ignored: non-finite values")
            return
        self._run(self.mission.on_budget(self._now(), budget))

    # ------------------------------------------------------------------ command outputs
    def _run(self, commands):
        if not commands:
            return
        for cmd in commands:
            if isinstance(cmd, m.Navigate):
                msg = pose2d_to_msg(cmd.goal, self.map_frame, self.get_clock().now().to_msg())
                self._goal_ids[f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"] = cmd.goal_id
                self.goal_pub.publish(msg)
            elif isinstance(cmd, m.ArmCommand):
                self._arm(cmd)
            elif isinstance(cmd, m.Detection):
                if cmd.enable:
                    self.inlet_type_pub.publish(String(data=cmd.inlet_type))
                self.detect_client.call_async(SetBool.Request(data=cmd.enable))
            elif isinstance(cmd, m.StartCharging):
                self.session_pub.publish(String(data=session_request_json(
                    SessionRequest(cmd.session_id, cmd.vehicle_id, cmd.target_kwh))))
            elif isinstance(cmd, m.StartRecharge):
                self.session_pub.publish(String(data=session_request_json(
                    SessionRequest(cmd.session_id, "dock", 500.0, "recharge"))))
            elif isinstance(cmd, m.StopCharging):
                self.stop_client.call_async(Trigger.Request())
            elif isinstance(cmd, m.Event):
                self.event_pub.publish(String(data=json.dumps({"event": cmd.kind, "t": round(self._now(), 3),
                                                               **cmd.data})))
                self.get_logger().info(f"{cmd.kind}: {json.dumps(cmd.data)}")
        self._publish_state()

    def _arm(self, cmd: m.ArmCommand):
        if cmd.action == "observe":
            self.observe_pub.publish(matrix_to_pose_stamped(cmd.T_base_inlet, self.base_frame,
                                                            self.get_clock().now().to_msg()))
            return
        future = self.arm_clients[cmd.action].call_async(Trigger.Request())

        def done(fut, action=cmd.action):
            result = fut.result()
            if result is not None and not result.success:
                self._run(self.mission.on_arm(self._now(), action, "failed", result.message))

        future.add_done_callback(done)

    def _publish_state(self):
        self.state_pub.publish(String(data=json.dumps(self.mission.state())))


def main(args=None):
    return run_node(MissionManagerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
