"""Benchmark (not a test): the generated NumPy Adam step vs a plain NumPy Adam, 2**24 float32 params.

    PYTHONPATH=. python bench/bench_optim_numpy.py [--n 16777216] [--repeats 7]

Both run the same update (torch semantics) on the same arrays; prints the median time of each over
the repeats and the ratio generated / naive (goal: <= 0.5). The naive version is written plainly,
one NumPy expression per line of the textbook update, as most NumPy code is.
"""
import argparse
import statistics
import time

import numpy as np

import symgrad


def naive_adam(p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mhat = m / (1 - b1 ** t)
    vhat = v / (1 - b2 ** t)
    p -= lr * mhat / (np.sqrt(vhat) + eps)
    return m, v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2 ** 24)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    g = rng.standard_normal(a.n).astype(a.dtype)
    adam = symgrad.load("adam", dtype=a.dtype)

    p1 = rng.standard_normal(a.n).astype(a.dtype)
    p2 = p1.copy()
    state = adam.init(p1)
    m = np.zeros_like(p2)
    v = np.zeros_like(p2)
    t_gen, t_naive = [], []
    for t in range(1, a.repeats + 2):
        t0 = time.perf_counter()
        adam.step(p1, g, state)
        t1 = time.perf_counter()
        m, v = naive_adam(p2, g, m, v, t)
        t2 = time.perf_counter()
        if t > 1:  # the first round warms up both
            t_gen.append(t1 - t0)
            t_naive.append(t2 - t1)
    err = float(np.max(np.abs(p1.astype(np.float64) - p2)) / np.max(np.abs(p2)))
    gen, naive = statistics.median(t_gen), statistics.median(t_naive)
    print(f"n={a.n} {a.dtype}, {a.repeats} repeats (median)")
    print(f"generated adam.step: {gen * 1e3:8.2f} ms")
    print(f"naive NumPy Adam   : {naive * 1e3:8.2f} ms")
    print(f"max rel difference : {err:.2e}")
    print(f"ratio generated/naive = {gen / naive:.3f}  (goal <= 0.5)")


if __name__ == "__main__":
    main()
