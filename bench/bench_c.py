"""Benchmark (not a test): the C dense kernel against NumPy's BLAS, measured in one run.

C: symgrad.load("dense", backend="c", dtype="float32") forward + backward (wrapper, validation and
allocation included). NumPy by hand: y = x @ W + b, dx = dy @ W.T, dW = x.T @ dy, db = dy.sum(0).
N=512, D=1024, M=1024 by default; goal: ratio C / NumPy <= 1.1. Prints the best of --repeat runs of each,
interleaved (and the median ratio of adjacent pairs, steadier on a busy machine), and which BLAS
the C build linked.

    PYTHONPATH=. python bench/bench_c.py [--n 512 --d 1024 --m 1024 --repeat 15 --dtype float32]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import symgrad
from symgrad.targets.c.build import blas, extra_flags


def numpy_dense(x, W, b, dy):
    y = x @ W + b
    return y, dy @ W.T, x.T @ dy, dy.sum(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    dt = np.dtype(args.dtype)
    x = rng.standard_normal((args.n, args.d)).astype(dt)
    W = rng.standard_normal((args.d, args.m)).astype(dt)
    b = rng.standard_normal(args.m).astype(dt)
    dy = rng.standard_normal((args.n, args.m)).astype(dt)
    k = symgrad.load("dense", backend="c", dtype=args.dtype)

    def c_dense():
        y, cache = k.forward(x, W, b)
        return (y, *k.backward(cache, dy))

    got, ref = c_dense(), numpy_dense(x, W, b, dy)
    err = max(float(np.max(np.abs(g - r)) / np.max(np.abs(r))) for g, r in zip(got, ref))
    t_c, t_np = [], []
    for _ in range(args.repeat):
        for fn, ts in ((c_dense, t_c), (lambda: numpy_dense(x, W, b, dy), t_np)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    c, n = min(t_c), min(t_np)
    print(f"dense forward+backward N={args.n} D={args.d} M={args.m} {args.dtype}")
    print(f"C build: BLAS = {blas()[2]}; flags {' '.join(extra_flags())}")
    print(f"C (symgrad.load backend='c'): best {c * 1e3:8.2f} ms  median {np.median(t_c) * 1e3:8.2f} ms")
    print(f"NumPy by hand (x@W+b, dy@W.T, x.T@dy, dy.sum(0)): best {n * 1e3:8.2f} ms  "
          f"median {np.median(t_np) * 1e3:8.2f} ms")
    print(f"max relative difference C vs NumPy: {err:.2e}")
    paired = np.median(np.array(t_c) / np.array(t_np))  # adjacent runs share the machine's load
    print(f"ratio C / NumPy (best): {c / n:.3f}; median of adjacent pairs: {paired:.3f}  (goal <= 1.1)")


if __name__ == "__main__":
    main()
