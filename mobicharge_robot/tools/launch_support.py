"""Plain-Python helpers for the launch files (no ``launch`` import, so they are tested without a ROS installation).

- :func:`depot_pose` reads where the robot starts (the garage's depot) for spawning it in Gazebo and for AMCL's
  initial pose.
- :func:`rewritten_copy` writes a copy of a configuration file with strings replaced: the ros_gz bridge YAML gets the
  Gazebo model name of this robot (``/model/mobicharge/`` -> ``/model/<name>/``), and nav2_params.yaml gets the
  robot's namespace for the costmaps' topics (``<robot_namespace>`` -> ``/robot1`` or nothing).
- :func:`namespaced_params` puts a parameter file's node sections in the robot's namespace. A section named
  ``navigation`` applies to the node ``/navigation`` only (rcl reads a key without a leading slash as a name in the
  root namespace), so under ``namespace:=robot1`` the sections become ``/robot1/navigation`` and so on, which is what
  Nav2's RewrittenYaml(root_key=...) achieves for its own bringup.
"""
from __future__ import annotations

import os
import tempfile
from typing import Dict, Optional, Tuple

import yaml

from ..core.garage.garage import load_garage

BRIDGE_MODEL_PREFIX = "/model/mobicharge/"
NAMESPACE_PLACEHOLDER = "<robot_namespace>"


def depot_pose(garage_file: str) -> Tuple[float, float, float]:
    """(x, y, yaw) of the garage's depot pose, map frame (m, rad); GarageError for a bad file."""
    p = load_garage(garage_file).depot.pose
    return float(p.x), float(p.y), float(p.yaw)


def namespace_prefix(namespace: str) -> str:
    """'/robot1' for 'robot1' or '/robot1/', '' for no namespace."""
    ns = namespace.strip().strip("/")
    return f"/{ns}" if ns else ""


def model_name(namespace: str, default: str = "mobicharge") -> str:
    """The Gazebo model name of the robot in this namespace (Gazebo names cannot contain '/')."""
    ns = namespace.strip().strip("/")
    return ns.replace("/", "_") if ns else default


def rewritten_copy(path: str, replacements: Dict[str, str], suffix: str = ".yaml") -> str:
    """Write ``path``'s text with every key of ``replacements`` replaced by its value to a new temporary file and
    return that file's path (left for the launched processes to read; it lives in the system temp directory)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for old, new in replacements.items():
        text = text.replace(old, new)
    fd, out = tempfile.mkstemp(prefix="mobicharge_", suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return out


def bridge_config(path: str, gz_model: str, with_clock: bool = True) -> str:
    """The bridge YAML for the Gazebo model ``gz_model`` (the file itself for the default model with the clock).
    ``with_clock=False`` leaves the /clock entry out, for a robot added to a world whose clock is already bridged."""
    if gz_model == "mobicharge" and with_clock:
        return path
    with open(path, encoding="utf-8") as fh:
        entries = yaml.safe_load(fh.read().replace(BRIDGE_MODEL_PREFIX, f"/model/{gz_model}/"))
    if not with_clock:
        entries = [e for e in entries if e["ros_topic_name"] != "/clock"]
    fd, out = tempfile.mkstemp(prefix="mobicharge_bridge_", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(entries, fh, sort_keys=False)
    return out


def namespaced_params(path: str, namespace: str, replacements: Optional[Dict[str, str]] = None) -> str:
    """A copy of the parameter file ``path`` whose node sections apply in ``namespace`` (the file itself when there
    is no namespace and nothing to replace). Sections that are already absolute (``/x`` or ``/**``) are kept."""
    prefix = namespace_prefix(namespace)
    if not prefix and not replacements:
        return path
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for old, new in (replacements or {}).items():
        text = text.replace(old, new)
    data = yaml.safe_load(text) or {}
    out = {(key if str(key).startswith("/") else f"{prefix}/{key}" if prefix else key): value
           for key, value in data.items()}
    fd, result = tempfile.mkstemp(prefix="mobicharge_params_", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(out, fh, sort_keys=False)
    return result


def nav2_params(path: str, namespace: str) -> str:
    """nav2_params.yaml in ``namespace``: node sections under it and the costmaps' topics placed in it."""
    return namespaced_params(path, namespace, {NAMESPACE_PLACEHOLDER: namespace_prefix(namespace)})
