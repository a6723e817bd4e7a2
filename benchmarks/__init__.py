"""Timestep's benchmarks and chaos soak: ``python -m benchmarks`` (see README.md)."""
