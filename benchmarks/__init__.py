"""Benchmark harness (not part of the timed test suite): `python -m benchmarks.run`."""
