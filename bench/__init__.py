"""Benchmarks: each `bench/<name>_bench.py` writes `bench/results/<name>.json` (see _harness)."""
