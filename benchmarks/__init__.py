"""Measured comparisons (not tests): `python -m benchmarks.run [--quick|--smoke]` writes the tables."""
