"""Generated NumPy LayerNorm forward+backward vs a hand-written NumPy reference.

    python bench/bench_layernorm_numpy.py [--n 8192] [--d 1024] [--dtype float32]

Goal (issue 3): generated within 1.2x of the hand-written reference. Prints both times and the ratio.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import median_time, row  # noqa: E402

import symgrad  # noqa: E402


def hand_forward(x, g, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    xc = x - mean
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    xhat = xc * rstd
    return xhat * g + b, (xhat, rstd, g)


def hand_backward(cache, dy):
    xhat, rstd, g = cache
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, (dy * xhat).sum(0), dy.sum(0)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.n, a.d)).astype(a.dtype)
    g, b = rng.standard_normal(a.d).astype(a.dtype), rng.standard_normal(a.d).astype(a.dtype)
    dy = rng.standard_normal((a.n, a.d)).astype(a.dtype)
    k = symgrad.load("layernorm", dtype=a.dtype)

    def gen():
        y, c = k.forward(x, g, b)
        return k.backward(c, dy)

    def hand():
        y, c = hand_forward(x, g, b)
        return hand_backward(c, dy)

    ours, ref = gen(), hand()
    err = max(float(np.max(np.abs(o - r)) / np.max(np.abs(r))) for o, r in zip(ours, ref))
    th = median_time(hand, a.repeats)
    tg = median_time(gen, a.repeats)
    print(f"LayerNorm forward+backward, N={a.n}, D={a.d}, {a.dtype} (max rel diff {err:.1e})")
    print(row("hand-written NumPy", th))
    print(row("generated NumPy", tg, th))
    print(f"ratio generated/hand: {tg / th:.2f} (goal <= 1.2)")
    return tg / th


if __name__ == "__main__":
    main()
