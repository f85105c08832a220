"""Latency compensation for the path follower.

Odometry arrives some time after it was measured, and a velocity command takes effect some time after it is sent. At
a high simulation speed-up, or on a loaded computer, that delay is a large part of a control period, and a follower
acting on the stale pose overshoots turns. :class:`CommandHistory` predicts where the base will be when the next
command takes effect, by replaying the commands already sent from the odometry's stamp onwards.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Deque, Tuple

from ..geometry import Pose2D, wrap_angle


def advance(pose: Pose2D, v: float, w: float, dt: float) -> Pose2D:
    """The pose after moving at (v m/s, w rad/s) for ``dt`` seconds along an exact arc."""
    if dt <= 0.0:
        return pose
    if abs(w) < 1e-9:
        return Pose2D(pose.x + v * dt * math.cos(pose.yaw), pose.y + v * dt * math.sin(pose.yaw), pose.yaw)
    r = v / w
    yaw = pose.yaw + w * dt
    return Pose2D(pose.x + r * (math.sin(yaw) - math.sin(pose.yaw)),
                  pose.y - r * (math.cos(yaw) - math.cos(pose.yaw)), wrap_angle(yaw))


class CommandHistory:
    """The velocity commands sent recently, with their send times (s, the node's clock)."""

    def __init__(self, keep_s: float = 1.0, max_horizon_s: float = 0.3):
        self.keep_s = keep_s
        self.max_horizon_s = max_horizon_s
        self._cmds: Deque[Tuple[float, float, float]] = deque()

    def record(self, t: float, v: float, w: float) -> None:
        if self._cmds and t < self._cmds[-1][0]:
            self._cmds.clear()  # the clock went back: the history means nothing now
        self._cmds.append((t, v, w))
        while self._cmds and self._cmds[0][0] < t - self.keep_s:
            self._cmds.popleft()

    def clear(self) -> None:
        self._cmds.clear()

    def predict(self, pose: Pose2D, v: float, w: float, t_pose: float, now: float) -> Tuple[Pose2D, float, float]:
        """Pose and velocity expected when a command sent ``now`` takes effect.

        ``pose``/``v``/``w`` are the odometry measured at ``t_pose``; the delay of a command is taken to equal the
        odometry's age (``now - t_pose``), and the prediction horizon is capped at ``max_horizon_s``.
        """
        age = now - t_pose
        if not (0.0 < age < self.max_horizon_s):
            return pose, v, w
        t_end = now + age
        t = t_pose
        cmds = list(self._cmds)
        # The command in force at t_pose is the last one sent before t_pose - age (it needed 'age' to arrive).
        for i, (ts, cv, cw) in enumerate(cmds):
            start = max(t, ts + age)
            stop = min(t_end, cmds[i + 1][0] + age) if i + 1 < len(cmds) else t_end
            if stop <= start:
                continue
            pose = advance(pose, v, w, start - t)
            v, w, t = cv, cw, start
            pose = advance(pose, v, w, stop - t)
            t = stop
        pose = advance(pose, v, w, t_end - t)
        return pose, v, w
