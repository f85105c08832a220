"""Starts and stops the loopback stack as separate processes (the embedded default; launch files do this on ROS).

Each node runs in its own Python process, so the two cores share the work and DDS carries every message. The
processes are stopped through their own handles, never by name.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..core.paths import data_path

# (executable module, node name, use_sim_time)
NODES = (
    ("mobicharge_robot.sim.loopback_node", "loopback_sim", False),
    ("mobicharge_robot.nodes.localization_node", "localization", True),
    ("mobicharge_robot.nodes.navigation_node", "navigation", True),
    ("mobicharge_robot.nodes.port_detection_node", "port_detection", True),
    ("mobicharge_robot.nodes.arm_node", "arm", True),
    ("mobicharge_robot.nodes.energy_node", "energy", True),
    ("mobicharge_robot.nodes.mission_manager_node", "mission_manager", True),
)


def isolated_ros_env(domain_id: Optional[int] = None) -> Dict[str, str]:
    """Environment for a private ROS graph: its own domain id and localhost-only discovery."""
    env = dict(os.environ)
    if domain_id is None:
        domain_id = int(env.get("ROS_DOMAIN_ID", "0")) or random.SystemRandom().randint(1, 100)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOCALHOST_ONLY"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Stack:
    procs: List[subprocess.Popen] = field(default_factory=list)
    names: List[str] = field(default_factory=list)
    logs: List[str] = field(default_factory=list)

    def dead(self) -> List[str]:
        """Names of processes that have exited."""
        return [n for n, p in zip(self.names, self.procs) if p.poll() is not None]

    def stop(self, timeout_s: float = 5.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=2.0)

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.logs[self.names.index(name)]
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def start_stack(log_dir: str, env: Dict[str, str], params_file: Optional[str] = None,
                overrides: Optional[Dict[str, Dict[str, object]]] = None,
                nodes=NODES) -> Stack:
    """Start every node; ``overrides`` maps a node name to extra parameters (name -> value)."""
    os.makedirs(log_dir, exist_ok=True)
    params_file = params_file or data_path("config", "mobicharge.yaml")
    stack = Stack()
    for module, name, sim_time in nodes:
        args = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}",
                "--params-file", params_file, "-p", f"use_sim_time:={'true' if sim_time else 'false'}"]
        for key, value in (overrides or {}).get(name, {}).items():
            args += ["-p", f"{key}:={_param_text(value)}"]
        log = os.path.join(log_dir, f"{name}.log")
        out = open(log, "w", encoding="utf-8")
        stack.procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL))
        out.close()
        stack.names.append(name)
        stack.logs.append(log)
    return stack


def _param_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    return str(value)
