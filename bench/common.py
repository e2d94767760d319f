"""Shared timing helpers for the benchmark scripts: median of repeats after warm-up."""
import statistics
import time


def median_time(fn, repeats=7, warmup=2, min_time=0.0):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def row(name, t, ref=None):
    ratio = f"{t / ref:6.2f}x" if ref else "   ref "
    return f"{name:<44} {t * 1e3:10.2f} ms  {ratio}"
