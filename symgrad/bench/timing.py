"""Timing helpers of the benchmarks: medians, and alternating blocks of several contenders."""
from __future__ import annotations

import os
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


WARM = 2
"""Untimed calls after each idle gap, before the timed block. The first calls after 0.15 s idle are
slow for every contender on this (virtual) machine, whatever it runs: a single-threaded 8 MiB
``np.copyto`` took 1.21, 1.02, 0.64 ms and then 0.57 ms per call; BatchNorm2d forward+backward 4.9,
3.3, 2.3, then 2.2 ms. A training loop does not idle between steps, so the blocks measure the steady
state."""


def alternating_medians(runs: dict, repeats: int, gap: float = GAP, block: float = 0.05,
                        warm: int | None = None) -> dict:
    """name -> seconds per call: every contender warmed up and sized to blocks of about ``block``
    seconds, then ``repeats`` rounds that time one block of each contender in turn, each after
    ``gap`` seconds idle and ``warm`` untimed calls (``WARM`` after a gap, none without); the median
    over rounds."""
    if warm is None:
        warm = WARM if gap > 0 else 0
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
            for _ in range(warm):
                fn()
            n = counts[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}


def measuring_env(threads: int, keep_openblas_env: bool = False) -> dict:
    """The environment of a measuring child process. BLAS and OpenMP read their thread counts, and
    OpenBLAS its core type, when they load, so they are set before the child starts; OPENBLAS_CORETYPE
    and OPENBLAS_L2_SIZE are unset unless kept (this machine sets them for the tests: OpenBLAS then
    runs its Haswell kernels, about half as fast here as its own choice)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    if not keep_openblas_env:
        for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            env.pop(var, None)
    return env
