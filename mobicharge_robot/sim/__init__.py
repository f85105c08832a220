"""The loopback simulator: replaces the hardware at the boundary."""
