"""workloads rules."""
