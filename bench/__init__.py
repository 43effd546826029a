"""Benchmarks: each module measures against a baseline taken in the same run."""
