"""mobicharge_robot: software for an autonomous mobile EV charger (ROS 2, rclpy)."""

__version__ = "0.1.0"
