"""Test-session isolation: every session gets its own ROS_DOMAIN_ID and localhost-only discovery, so parallel runs
on a shared machine never cross-talk. This runs before any test module imports rclpy."""
import os
import random

_domain = int(os.environ.get("MOBICHARGE_TEST_DOMAIN_ID", "0")) or random.SystemRandom().randint(1, 100)
os.environ["ROS_DOMAIN_ID"] = str(_domain)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # Iron and later
os.environ["ROS_LOCALHOST_ONLY"] = "1"  # Humble
os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
