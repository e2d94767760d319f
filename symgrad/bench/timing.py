"""Timing helpers of the benchmarks: medians, and alternating blocks of several contenders."""
from __future__ import annotations

import statistics
import time

GAP = 0.15
"""Seconds idle before each timed block, so that the previous contender's threads have gone to sleep:
OpenBLAS's workers spin for 2^28 TSC cycles after their last product (THREAD_TIMEOUT 28: 0.10 s at
this machine's 2.6 GHz) before they sleep. With 0.05 s the C convolution, timed after the NumPy
backend's (OpenBLAS products), took 63 ms against 36-39 ms alone; 38.9 ms with 0.25 s."""


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def alternating_medians(runs: dict, repeats: int, gap: float = GAP, block: float = 0.05) -> dict:
    """name -> seconds per call: every contender warmed up and sized to blocks of about ``block``
    seconds, then ``repeats`` rounds that time one block of each contender in turn, each after
    ``gap`` seconds idle; the median over rounds."""
    counts = {}
    for name, fn in runs.items():
        fn()
        t0 = time.perf_counter()
        fn()
        counts[name] = max(1, int(block / max(time.perf_counter() - t0, 1e-7)))
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            time.sleep(gap)
            n = counts[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}
