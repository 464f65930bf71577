"""Benchmarks: each prints its figures and compares against a baseline measured in the same run."""
