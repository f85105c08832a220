"""Connector-inlet contact for the loopback simulator (ground truth; production code never imports this).

A kinematic contact model, evaluated on the commanded tip pose each step:
- outside the inlet face plane there is no contact;
- inside, a connector within the capture funnel (lateral <= ``capture_lateral_m``, tilt <= ``capture_angle_rad``)
  slides in against friction, with a latch detent over the last few millimetres; it latches at full seat depth and
  bottoms out just past it;
- outside the funnel it jams at the face: the arm stays where it touched and the reaction force grows with how far
  the command tries to push past that point (the arm's compliance ``stiffness_n_per_m``).

Capture tolerances (a foundation choice, to be refined by the insertion issue): the chamfers of Type 2 / CCS2 pin
sleeves and of the connector housing forgive a few millimetres; 3 mm lateral and 2.5 degrees is a deliberately
conservative reading of that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.geometry import invert_transform


@dataclass
class ContactResult:
    blocked: bool  # the commanded motion cannot be followed: keep the previous arm configuration
    force_tip: np.ndarray  # reaction force on the connector in the tip frame (N)
    depth_m: float  # how far the tip is inside the inlet face plane
    latched: bool


@dataclass
class InletContact:
    seat_depth_m: float
    capture_lateral_m: float = 0.003
    capture_angle_rad: float = math.radians(2.5)
    friction_n: float = 25.0
    detent_n: float = 45.0
    detent_width_m: float = 0.004
    stiffness_n_per_m: float = 5000.0
    latched: bool = False
    released: bool = False  # the latch release actuator is held open

    def evaluate(self, T_inlet_tip_cmd: np.ndarray, T_inlet_tip_prev: np.ndarray) -> ContactResult:
        depth_cmd = -float(T_inlet_tip_cmd[2, 3])
        depth_prev = -float(T_inlet_tip_prev[2, 3])
        lateral = float(math.hypot(T_inlet_tip_cmd[0, 3], T_inlet_tip_cmd[1, 3]))
        # Tilt between the tip's insertion axis and the inlet's inward axis (-z).
        cos_tilt = float(np.clip(-T_inlet_tip_cmd[2, 2], -1.0, 1.0))
        tilt = math.acos(cos_tilt)
        zero = np.zeros(3)
        if self.latched and not self.released and depth_cmd < depth_prev - 1e-6:
            pull = self.stiffness_n_per_m * (depth_prev - depth_cmd)
            return ContactResult(True, np.array([0.0, 0.0, pull]), depth_prev, True)
        if self.latched and (self.released and depth_cmd < self.seat_depth_m - 0.002):
            self.latched = False
        if depth_cmd <= 0.0:
            return ContactResult(False, zero, depth_cmd, self.latched)
        aligned = lateral <= self.capture_lateral_m and tilt <= self.capture_angle_rad
        if not aligned and not self.latched and depth_prev < 0.002:
            # Jammed at the face: the command pushes into the body panel.
            push = self.stiffness_n_per_m * depth_cmd
            lateral_f = 0.3 * push
            direction = np.array([T_inlet_tip_cmd[0, 3], T_inlet_tip_cmd[1, 3]]) / max(lateral, 1e-9)
            return ContactResult(True, np.array([-lateral_f * direction[0], -lateral_f * direction[1], -push]),
                                 max(depth_prev, 0.0), self.latched)
        bottom = self.seat_depth_m + 0.001
        if depth_cmd > bottom:
            push = self.stiffness_n_per_m * (depth_cmd - bottom) + self.friction_n
            self.latched = self.latched or not self.released
            return ContactResult(True, np.array([0.0, 0.0, -push]), bottom, self.latched)
        resist = self.friction_n
        if self.seat_depth_m - self.detent_width_m <= depth_cmd < self.seat_depth_m - 0.0005 and not self.latched:
            resist += self.detent_n
        if depth_cmd >= self.seat_depth_m - 0.0005 and not self.released:
            self.latched = True
        moving_in = depth_cmd >= depth_prev
        return ContactResult(False, np.array([0.0, 0.0, -resist if moving_in else resist]), depth_cmd, self.latched)


def tip_in_inlet(T_world_inlet: np.ndarray, T_world_tip: np.ndarray) -> np.ndarray:
    return invert_transform(T_world_inlet) @ T_world_tip
