"""Benchmarks: each runs with one command (`python -m bench.NAME`) and prints one JSON line."""
