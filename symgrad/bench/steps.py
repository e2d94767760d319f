"""Workloads where users run symgrad: one small layer call, and whole training steps, each on both
backends and in torch, all in one process (torch imported first, as in a researcher's process).

- ``percall``: dense forward+backward at N32 D64 M64 — what a call costs beyond its arithmetic.
- ``mlp``: one training step of dense -> layernorm -> tanh -> dense -> softmax CE (N32 D64 H64 C10),
  Adam on all six parameters; torch: the same ``nn.Sequential`` with ``torch.optim.Adam``.
- ``lstm_step``: LSTM (T8 N32 D8 H32) -> dense on the last state -> softmax CE, Adam on the six
  parameters; torch: ``nn.LSTM`` + ``nn.Linear``.

Each builder returns a zero-argument callable that runs one step and updates its own parameters.
"""
from __future__ import annotations

import numpy as np

STEP_SIZES = {"percall": dict(N=32, D=64, M=64), "mlp": dict(N=32, D=64, H=64, C=10),
              "lstm_step": dict(T=8, N=32, D=8, H=32, C=10)}
STEP_SMALL = {"percall": dict(N=4, D=5, M=3), "mlp": dict(N=4, D=5, H=6, C=3),
              "lstm_step": dict(T=2, N=3, D=4, H=5, C=3)}


def flops(workload, d) -> float | None:
    """Floating-point operations of the GEMMs of one forward+backward (2 m n k each)."""
    if workload in ("dense", "percall"):
        return 3 * 2 * d["N"] * d["D"] * d["M"]
    if workload == "lstm":
        T, N, D, H = d["T"], d["N"], d["D"], d["H"]
        return 3 * 2 * T * N * 4 * H * (D + H)
    if workload == "conv2d":   # "same" convolution: N H W output positions, O x C K K products each
        return 3 * 2 * d["N"] * d["H"] * d["W"] * d["O"] * d["C"] * d["K"] ** 2
    return None


def _data(d, dtype, rng):
    return rng.standard_normal((d["N"], d["D"])).astype(dtype), rng.integers(0, d["C"], d["N"])


def _adam_all(k, params):
    states = {n: k.init(p) for n, p in params.items()}

    def update(grads):
        for n, g in grads.items():
            k.step(params[n], g, states[n], lr=1e-3)
    return update


def percall_symgrad(load, d, dtype, rng):
    k = load("dense")
    x, W = rng.standard_normal((d["N"], d["D"])).astype(dtype), rng.standard_normal((d["D"], d["M"])).astype(dtype)
    b, dy = rng.standard_normal(d["M"]).astype(dtype), rng.standard_normal((d["N"], d["M"])).astype(dtype)
    return lambda: k.backward(k.forward(x, W, b)[1], dy)


def mlp_symgrad(load, d, dtype, rng):
    dense, ln, tanh, ce = load("dense"), load("layernorm"), load("tanh"), load("softmax_cross_entropy")
    X, Y = rng.standard_normal((d["N"], d["D"])).astype(dtype), rng.integers(0, d["C"], d["N"])
    P = dict(W1=(rng.standard_normal((d["D"], d["H"])) * 0.1).astype(dtype), b1=np.zeros(d["H"], dtype),
             g=np.ones(d["H"], dtype), be=np.zeros(d["H"], dtype),
             W2=(rng.standard_normal((d["H"], d["C"])) * 0.1).astype(dtype), b2=np.zeros(d["C"], dtype))
    adam = _adam_all(load("adam"), P)

    def step():
        h1, c1 = dense.forward(X, P["W1"], P["b1"])
        h2, c2 = ln.forward(h1, P["g"], P["be"])
        a, c3 = tanh.forward(h2)
        z, c4 = dense.forward(a, P["W2"], P["b2"])
        _, c5 = ce.forward(z, Y)
        (dz,) = ce.backward(c5)
        da, dW2, db2 = dense.backward(c4, dz)
        (dh2,) = tanh.backward(c3, da)
        dh1, dg, dbe = ln.backward(c2, dh2)
        _, dW1, db1 = dense.backward(c1, dh1)
        adam(dict(W1=dW1, b1=db1, g=dg, be=dbe, W2=dW2, b2=db2))
    return step


def lstm_step_symgrad(load, d, dtype, rng):
    lstm, dense, ce = load("lstm"), load("dense"), load("softmax_cross_entropy")
    T, N, D, H, C = d["T"], d["N"], d["D"], d["H"], d["C"]
    X, Y = rng.standard_normal((T, N, D)).astype(dtype), rng.integers(0, C, N)
    h0 = np.zeros((N, H), dtype)
    s = 1 / np.sqrt(H)
    P = dict(W_ih=rng.uniform(-s, s, (4 * H, D)).astype(dtype), W_hh=rng.uniform(-s, s, (4 * H, H)).astype(dtype),
             b_ih=rng.uniform(-s, s, 4 * H).astype(dtype), b_hh=rng.uniform(-s, s, 4 * H).astype(dtype),
             W=rng.uniform(-s, s, (H, C)).astype(dtype), b=np.zeros(C, dtype))
    adam = _adam_all(load("adam"), P)

    def step():
        (hs, hT, cT), c1 = lstm.forward(X, h0, h0, P["W_ih"], P["W_hh"], P["b_ih"], P["b_hh"])
        z, c2 = dense.forward(hT, P["W"], P["b"])
        _, c3 = ce.forward(z, Y)
        (dz,) = ce.backward(c3)
        dhT, dW, db = dense.backward(c2, dz)
        _, _, _, dW_ih, dW_hh, db_ih, db_hh = lstm.backward(c1, np.zeros_like(hs), dhT)
        adam(dict(W_ih=dW_ih, W_hh=dW_hh, b_ih=db_ih, b_hh=db_hh, W=dW, b=db))
    return step


def torch_step(workload, d, dtype, rng, threads):
    """The same step in torch eager (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tdt = getattr(torch, dtype)
    if workload == "percall":
        x = torch.tensor(rng.standard_normal((d["N"], d["D"])), dtype=tdt, requires_grad=True)
        W = torch.tensor(rng.standard_normal((d["D"], d["M"])), dtype=tdt, requires_grad=True)
        b = torch.tensor(rng.standard_normal(d["M"]), dtype=tdt, requires_grad=True)
        dy = torch.tensor(rng.standard_normal((d["N"], d["M"])), dtype=tdt)
        return lambda: (x @ W + b).backward(dy)
    if workload == "mlp":
        X, Y = _data(d, dtype, rng)
        model = torch.nn.Sequential(torch.nn.Linear(d["D"], d["H"]), torch.nn.LayerNorm(d["H"]), torch.nn.Tanh(),
                                    torch.nn.Linear(d["H"], d["C"])).to(tdt)
        X = torch.from_numpy(X)
    else:
        X = torch.from_numpy(rng.standard_normal((d["T"], d["N"], d["D"])).astype(dtype))
        Y = rng.integers(0, d["C"], d["N"])
        lstm, head = torch.nn.LSTM(d["D"], d["H"]).to(tdt), torch.nn.Linear(d["H"], d["C"]).to(tdt)
        model = torch.nn.ModuleList([lstm, head])
    Y = torch.from_numpy(Y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        out = model(X) if workload == "mlp" else model[1](model[0](X)[1][0][0])
        lossf(out, Y).backward()
        opt.step()
    return step


BUILDERS = {"percall": percall_symgrad, "mlp": mlp_symgrad, "lstm_step": lstm_step_symgrad}
