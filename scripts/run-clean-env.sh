#!/usr/bin/env bash
# Runs a command with the .venv's ROS 2 wheels only: paths from a sourced ROS installation are dropped so the two
# never mix (bootstrap.sh refuses a sourced ROS unless MOBICHARGE_ALLOW_SOURCED_ROS=1).
set -euo pipefail
if [ -n "${ROS_DISTRO:-}" ]; then
  unset ROS_DISTRO ROS_VERSION ROS_PYTHON_VERSION AMENT_PREFIX_PATH COLCON_PREFIX_PATH CMAKE_PREFIX_PATH PYTHONPATH LD_LIBRARY_PATH
fi
exec "$@"
