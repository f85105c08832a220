"""User tools: demo, checks, generators."""
