"""Helpers for node-level tests over real DDS: start node processes by handle, spin a probe node until a condition."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import rclpy
from rclpy.node import Node

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_node(module: str, name: str, params: dict | None = None, log_path: str | None = None,
               remaps: dict | None = None) -> subprocess.Popen:
    """Start ``python -m module`` as node ``name`` with the test session's ROS environment (``remaps``: topic ->
    new name)."""
    args = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}"]
    for old, new in (remaps or {}).items():
        args += ["-r", f"{old}:={new}"]
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        args += ["-p", f"{key}:={value}"]
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    if log_path:
        out.close()
    return proc


def stop_node(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=2.0)


def spin_until(node: Node, predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.02)
        if predicate():
            return True
    return False


def spin_for(node: Node, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.02)
