"""Garage markers for RViz: walls, pillars, spots, keep-out zones, parked cars and their inlets from the garage file,
with the charge requests, the mission state and the robot's battery as text.

Publishes ``garage/markers`` (visualization_msgs/MarkerArray, latched) once at start-up and again whenever
``mission/state`` or ``battery_state`` changes what is shown (at most ``max_rate_hz``). The car being served is drawn
yellow, served cars green, everything in the ``map_frame`` frame. Display only: no other node reads these markers.
"""
from __future__ import annotations

import json
import math

from geometry_msgs.msg import Point
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from ..core.garage.garage import PILLAR_HEIGHT_M, WALL_HEIGHT_M, GarageError, load_garage
from ..core.paths import data_path
from .ros_common import LATCHED_QOS, RELIABLE_QOS, ConfigurationError, declare, run_node

_GREY = (0.6, 0.6, 0.6, 1.0)
_WHITE = (0.95, 0.95, 0.95, 1.0)
_YELLOW = (1.0, 0.85, 0.1, 1.0)
_GREEN = (0.1, 0.8, 0.2, 1.0)
_KEEP_OUT = (0.95, 0.2, 0.1, 0.35)


def _color(marker: Marker, rgba) -> None:
    marker.color.r, marker.color.g, marker.color.b, marker.color.a = (float(v) for v in rgba)


def _yaw_quaternion(marker: Marker, yaw: float) -> None:
    marker.pose.orientation.z, marker.pose.orientation.w = math.sin(0.5 * yaw), math.cos(0.5 * yaw)


class GarageMarkersNode(Node):
    def __init__(self):
        super().__init__("garage_markers")
        garage_file = declare(self, "garage_file", data_path("config", "garages", "default.yaml"),
                              "Garage description YAML drawn as markers.", read_only=True)
        self.frame = declare(self, "map_frame", "map", "Frame of the markers (the garage's map frame).",
                             read_only=True)
        self.min_period = 1.0 / declare(self, "max_rate_hz", 1.0, "Highest republish rate on state changes (Hz).",
                                        read_only=True, lo=0.1, hi=10.0)
        try:
            self.garage = load_garage(garage_file)
        except GarageError as exc:
            raise ConfigurationError(str(exc)) from exc
        self.mission = {}
        self.battery = None
        self._last_pub = -math.inf
        self._dirty = False
        self.pub = self.create_publisher(MarkerArray, "garage/markers", LATCHED_QOS)
        self.create_subscription(String, "mission/state", self._on_state, LATCHED_QOS)
        self.create_subscription(BatteryState, "battery_state", self._on_battery, RELIABLE_QOS)
        self.create_timer(self.min_period, self._flush)
        self._publish()

    def _on_state(self, msg: String) -> None:
        try:
            state = json.loads(msg.data)
        except ValueError:
            self.get_logger().warning("ignoring mission/state that is not JSON", throttle_duration_sec=10.0)
            return
        if isinstance(state, dict) and state != self.mission:
            self.mission = state
            self._dirty = True

    def _on_battery(self, msg: BatteryState) -> None:
        pct = msg.percentage
        if not math.isfinite(pct):
            return
        pct = round(100.0 * pct)
        if pct != self.battery:
            self.battery = pct
            self._dirty = True

    def _flush(self) -> None:
        if self._dirty:
            self._publish()

    def _publish(self) -> None:
        self._dirty = False
        self.pub.publish(self.markers())

    # ------------------------------------------------------------------ drawing
    def _marker(self, ns: str, mid: int, kind: int) -> Marker:
        m = Marker()
        m.header.frame_id = self.frame
        m.header.stamp = self.get_clock().now().to_msg()
        m.ns, m.id, m.type, m.action = ns, mid, kind, Marker.ADD
        m.pose.orientation.w = 1.0
        m.frame_locked = True
        return m

    def markers(self) -> MarkerArray:
        g = self.garage
        out = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        out.markers.append(clear)
        for i, w in enumerate(g.walls):
            m = self._marker("walls", i, Marker.CUBE)
            dx, dy = w.end[0] - w.start[0], w.end[1] - w.start[1]
            m.pose.position.x, m.pose.position.y = 0.5 * (w.start[0] + w.end[0]), 0.5 * (w.start[1] + w.end[1])
            m.pose.position.z = 0.5 * WALL_HEIGHT_M
            _yaw_quaternion(m, math.atan2(dy, dx))
            m.scale.x, m.scale.y, m.scale.z = math.hypot(dx, dy), w.thickness_m, WALL_HEIGHT_M
            _color(m, _GREY)
            out.markers.append(m)
        for i, p in enumerate(g.pillars):
            m = self._marker("pillars", i, Marker.CUBE)
            m.pose.position.x, m.pose.position.y, m.pose.position.z = p.center[0], p.center[1], 0.5 * PILLAR_HEIGHT_M
            m.scale.x, m.scale.y, m.scale.z = p.size_m[0], p.size_m[1], PILLAR_HEIGHT_M
            _color(m, _GREY)
            out.markers.append(m)
        spots = self._marker("spots", 0, Marker.LINE_LIST)
        spots.scale.x = 0.08
        _color(spots, _WHITE)
        for s in g.spots:
            poly = s.polygon
            for k in range(len(poly)):
                a, b = poly[k], poly[(k + 1) % len(poly)]
                spots.points += [Point(x=float(a[0]), y=float(a[1])), Point(x=float(b[0]), y=float(b[1]))]
        out.markers.append(spots)
        for i, z in enumerate(g.zones):
            if z.kind != "keep_out":
                continue
            m = self._marker("keep_out", i, Marker.LINE_STRIP)
            m.scale.x = 0.1
            _color(m, _KEEP_OUT[:3] + (1.0,))
            m.points = [Point(x=float(x), y=float(y)) for x, y in list(z.polygon) + [z.polygon[0]]]
            out.markers.append(m)
        current = str(self.mission.get("vehicle", ""))
        served_count = self.mission.get("served", 0)
        for i, v in enumerate(g.vehicles):
            pose = g.vehicle_pose(v)
            m = self._marker("cars", i, Marker.CUBE)
            m.pose.position.x, m.pose.position.y, m.pose.position.z = pose.x, pose.y, 0.5 * v.height_m
            _yaw_quaternion(m, pose.yaw)
            m.scale.x, m.scale.y, m.scale.z = v.length_m, v.width_m, v.height_m
            _color(m, _YELLOW if v.id == current else (*(v.color_rgb or (0.5, 0.5, 0.5)), 0.8))
            out.markers.append(m)
            t = g.inlet_pose(v)
            inlet = self._marker("inlets", i, Marker.ARROW)
            inlet.pose.position.x, inlet.pose.position.y, inlet.pose.position.z = (float(c) for c in t[:3, 3])
            # The arrow points along the inlet's z (out of the face): rotate the marker's x onto it.
            z_axis = t[:3, 2]
            yaw = math.atan2(z_axis[1], z_axis[0])
            _yaw_quaternion(inlet, yaw)
            inlet.scale.x, inlet.scale.y, inlet.scale.z = 0.4, 0.05, 0.05
            _color(inlet, _GREEN if v.request else _GREY)
            out.markers.append(inlet)
            if v.request is not None:
                text = self._marker("requests", i, Marker.TEXT_VIEW_FACING)
                text.pose.position.x, text.pose.position.y = pose.x, pose.y
                text.pose.position.z = v.height_m + 0.6
                text.scale.z = 0.5
                text.text = f"{v.id}: {v.request.energy_kwh:g} kWh by t+{v.request.departure_s / 60.0:.0f} min"
                _color(text, _YELLOW if v.id == current else _WHITE)
                out.markers.append(text)
        status = self._marker("status", 0, Marker.TEXT_VIEW_FACING)
        sx, sy = g.size_m
        status.pose.position.x, status.pose.position.y, status.pose.position.z = 0.5 * sx, sy + 2.0, 1.0
        status.scale.z = 1.2
        phase = self.mission.get("phase", "unknown")
        jobs = self.mission.get("jobs_total", len(g.requested_vehicles()))
        battery = "battery ?" if self.battery is None else f"battery {self.battery:d}%"
        status.text = (f"mission: {phase}" + (f" ({current})" if current else "")
                       + f" | served {served_count}/{jobs} | {battery}")
        _color(status, _WHITE)
        out.markers.append(status)
        return out


def main(args=None):
    return run_node(GarageMarkersNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
