"""Micro-benchmarks of xling's CPU-side work, run as modules: `python -m xling.bench.grading`."""
