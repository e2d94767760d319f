"""Plainly written NumPy references: what a person would type without symgrad.

They are the yardstick of the benchmarks (generated NumPy should be within 1.2x of them) and an
independent oracle in tests. Formulas from ``docs/reference.md``; nothing here is used by a kernel.
"""
from __future__ import annotations

import numpy as np


def dense_runner(a):
    x, W, b, dy = a["x"], a["W"], a["b"], a["dy"]

    def run():
        y = x @ W + b  # noqa: F841 - the forward pass is part of what is timed
        return dy @ W.T, x.T @ dy, dy.sum(0)
    return run


def layernorm_forward(x, g, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    xc = x - mean
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    xhat = xc * rstd
    return xhat * g + b, (xhat, rstd, g)


def layernorm_backward(cache, dy):
    xhat, rstd, g = cache
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, (dy * xhat).sum(0), dy.sum(0)


def layernorm_runner(a):
    return lambda: layernorm_backward(layernorm_forward(a["x"], a["gamma"], a["beta"])[1], a["dy"])


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    T, H = x.shape[0], h0.shape[1]
    h, c, hs, cache = h0, c0, [], []
    for t in range(T):
        gates = x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        i, f = _sigmoid(gates[:, :H]), _sigmoid(gates[:, H:2 * H])
        g, o = np.tanh(gates[:, 2 * H:3 * H]), _sigmoid(gates[:, 3 * H:])
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        cache.append((h, c, i, f, g, o, tc))
        h, c = o * tc, c_new
        hs.append(h)
    return np.stack(hs), h, c, cache


def lstm_backward(x, W_ih, W_hh, cache, dhs):
    T, H = x.shape[0], W_hh.shape[1]
    dx = np.empty_like(x)
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros(4 * H, x.dtype)
    dh_next, dc_next = np.zeros_like(dhs[0]), np.zeros_like(dhs[0])
    for t in reversed(range(T)):
        h, c, i, f, g, o, tc = cache[t]
        dh = dhs[t] + dh_next
        do = dh * tc
        dc = dc_next + dh * o * (1 - tc ** 2)
        di, df, dg = dc * g, dc * c, dc * i
        dgates = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)], axis=1)
        dx[t] = dgates @ W_ih
        dW_ih += dgates.T @ x[t]
        dW_hh += dgates.T @ h
        db += dgates.sum(0)
        dh_next, dc_next = dgates @ W_hh, dc * f
    return dx, dh_next, dc_next, dW_ih, dW_hh, db, db.copy()


def lstm_runner(a):
    names = ("x", "h0", "c0", "W_ih", "W_hh", "b_ih", "b_hh")

    def run():
        hs, h, c, cache = lstm_forward(*[a[n] for n in names])
        return lstm_backward(a["x"], a["W_ih"], a["W_hh"], cache, a["dhs"])
    return run


def adam_runner(p, g, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """A naive Adam step written plainly (torch semantics), state kept in the closure."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    t = [0]

    def step():
        nonlocal m, v
        t[0] += 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t[0])
        vhat = v / (1 - b2 ** t[0])
        p[...] = p - lr * mhat / (np.sqrt(vhat) + eps)
    return step
