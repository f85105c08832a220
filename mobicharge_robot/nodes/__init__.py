"""Thin rclpy adapters over core/."""
