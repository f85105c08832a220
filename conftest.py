"""Makes the package importable from a source checkout when it is not installed."""
