"""Pure algorithms: no rclpy, no message types."""
