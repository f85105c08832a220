"""Nav2 backend of the navigation node: goals go to bt_navigator's ``NavigateToPose`` action instead of the builtin
planner and path follower (``navigation_backend: nav2``).

The mission's interface does not change: goals still arrive on ``goal_pose`` and their outcome is reported on
``navigate/status`` with the same states and goal ids. Nav2 then owns planning, control (``cmd_vel``), recovery and
localization (``map`` -> ``odom``); the navigation node stops driving and stops broadcasting that transform.

Humble's NavigateToPose result carries no error code, so a failure is reported from the goal status: ``NAV2_ABORTED``
(bt_navigator gave up, its log says why), ``CANCELED``, ``NAV2_REJECTED`` (goal refused), ``NAV2_UNAVAILABLE`` (no
action server). ``nav2_msgs`` is part of a Humble Nav2 installation; where it is missing, choosing this backend is a
:class:`ConfigurationError` at start-up (one line, no traceback).
"""
from __future__ import annotations

from typing import Callable, Optional

from action_msgs.msg import GoalStatus
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient
from rclpy.node import Node

from .ros_common import ACTIVE, FAILED, SUCCEEDED, ConfigurationError

ACTION_NAME = "navigate_to_pose"  # relative: bt_navigator in the same namespace
NAV2_MSGS_MISSING = ("navigation_backend 'nav2' needs the nav2_msgs package (NavigateToPose), which is not installed "
                     "here; install Nav2 (apt install ros-humble-navigation2) or set navigation_backend: builtin")

# report(state, goal_id, code, reason, **values): how the navigation node publishes navigate/status.
Report = Callable[..., None]


def load_action_type():
    """The NavigateToPose action type; ConfigurationError (not ImportError) where nav2_msgs is missing."""
    try:
        from nav2_msgs.action import NavigateToPose
    except ImportError as exc:
        raise ConfigurationError(NAV2_MSGS_MISSING) from exc
    return NavigateToPose


class Nav2Client:
    """Sends one NavigateToPose goal at a time; a new goal pre-empts (cancels) the previous one."""

    def __init__(self, node: Node, report: Report, action_name: str = ACTION_NAME, action_type=None):
        self._node = node
        self._report = report
        self._type = action_type or load_action_type()
        self._action_name = action_name
        self._client = ActionClient(node, self._type, action_name)
        self._handle = None
        self._goal_id = ""

    @property
    def active_goal(self) -> str:
        return self._goal_id if self._handle is not None else ""

    def send(self, goal_id: str, pose: PoseStamped) -> None:
        """Hand ``pose`` (map frame) to bt_navigator; the outcome comes back through ``report``."""
        if not self._client.server_is_ready():
            self._report(FAILED, goal_id, "NAV2_UNAVAILABLE",
                         f"no '{self._action_name}' action server (is bt_navigator active?)")
            return
        if self._handle is not None:
            previous = self._goal_id
            self._handle.cancel_goal_async()
            self._report(FAILED, previous, "CANCELED", f"pre-empted by goal {goal_id}")
        self._handle = None
        self._goal_id = goal_id
        goal = self._type.Goal()
        goal.pose = pose
        future = self._client.send_goal_async(goal, feedback_callback=self._on_feedback)
        future.add_done_callback(lambda f, gid=goal_id: self._on_accepted(gid, f))
        self._report(ACTIVE, goal_id)

    def cancel(self) -> bool:
        """Cancel the active goal; False when there is none."""
        if self._handle is None:
            return False
        self._handle.cancel_goal_async()
        return True

    # ------------------------------------------------------------------ callbacks
    def _on_accepted(self, goal_id: str, future) -> None:
        if goal_id != self._goal_id:
            return  # pre-empted before it was accepted
        try:
            handle = future.result()
        except Exception as exc:  # noqa: BLE001 - any transport failure is a failed goal, not a crash
            self._report(FAILED, goal_id, "NAV2_REJECTED", f"sending the goal failed: {exc}")
            return
        if not handle.accepted:
            self._report(FAILED, goal_id, "NAV2_REJECTED", "bt_navigator rejected the goal")
            return
        self._handle = handle
        handle.get_result_async().add_done_callback(lambda f, gid=goal_id: self._on_result(gid, f))

    def _on_feedback(self, msg) -> None:
        if self._handle is None:
            return
        fb = msg.feedback
        self._report(ACTIVE, self._goal_id, distance_remaining_m=float(fb.distance_remaining),
                     recoveries=int(fb.number_of_recoveries))

    def _on_result(self, goal_id: str, future) -> None:
        if goal_id != self._goal_id:
            return  # an old goal's end, already reported as pre-empted
        self._handle = None
        try:
            status = future.result().status
        except Exception as exc:  # noqa: BLE001
            self._report(FAILED, goal_id, "NAV2_ABORTED", f"no result from bt_navigator: {exc}")
            return
        if status == GoalStatus.STATUS_SUCCEEDED:
            self._report(SUCCEEDED, goal_id)
        elif status == GoalStatus.STATUS_CANCELED:
            self._report(FAILED, goal_id, "CANCELED", "cancelled")
        else:
            self._report(FAILED, goal_id, "NAV2_ABORTED", f"bt_navigator ended the goal with status {status}")


def make_client(node: Node, report: Report, action_name: Optional[str] = None) -> Nav2Client:
    """The client for ``navigation_backend: nav2``; ConfigurationError where nav2_msgs is missing."""
    return Nav2Client(node, report, action_name or ACTION_NAME)
