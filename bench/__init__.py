"""Benchmarks: load generator, scenarios and server launchers (issue 6)."""
