"""Timing a call the way the benchmarks report it: median and spread."""

import time

import numpy as np


def median_seconds(fn, repeats, warmup=1):
    """Seconds per call of fn(): `warmup` untimed calls (tracing,
    compilation), then the median and the spread (max - min) of `repeats`
    timed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.max(times) - np.min(times))
