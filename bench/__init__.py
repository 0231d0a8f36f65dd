"""Benchmarks of Yizhan, run with `make bench` (``python -m bench.<name>``)."""
