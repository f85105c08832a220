"""Connector-inlet contact helpers for the loopback simulator (ground truth; production code never imports this).

The contact itself is simulated by MuJoCo (``sim/mujoco_contact.py``); this module keeps the frame helper.
"""
from __future__ import annotations

import numpy as np

from ..core.geometry import invert_transform


def tip_in_inlet(T_world_inlet: np.ndarray, T_world_tip: np.ndarray) -> np.ndarray:
    """T_inlet_tip from two world poses."""
    return invert_transform(T_world_inlet) @ T_world_tip
