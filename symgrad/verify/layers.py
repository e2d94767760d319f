"""Numerical checks of generated kernels: central finite differences (torch.autograd.gradcheck's
yardstick, ``docs/reference.md``): h = 1e-6 in float64, pass when |analytic - numeric| <= atol + rtol*|numeric|
with atol = 1e-5, rtol = 1e-3. float32 kernels are compared with the float64 kernel instead
(relative 2e-4, ``docs/contract.md``).
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..spec.tensor import ANY, walk
from ..spec.window import Unfold
from .report import Row
from ..runtime import load

H, ATOL, RTOL = 1e-6, 1e-5, 1e-3
F32_RTOL = 2e-4
DEFAULT_SIZES = {"N": 3, "D": 4, "M": 5, "C": 4, "H": 3, "T": 3}


def sizes_for(spec, sizes=None) -> dict:
    """Small sizes for the dims of ``spec``; a window's size (a kernel's ``K``) gets 2, so that the
    window fits in the other axes at every checked stride, padding and dilation."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    nodes = walk(spec.outputs) if getattr(spec, "sizes", None) else []   # recurrent specs name outputs
    windows = {s for n in nodes if isinstance(n, Unfold) for s in n.size}
    lengths = {s for n in nodes if isinstance(n, Unfold) for s in n.lengths}
    out = {}
    for k, d in enumerate(spec.dims):
        out[d] = sizes.get(str(d), 2 if d in windows else 3 + k)
        if d in lengths:   # a windowed axis holds a window of 2-3 cells at every checked setting
            out[d] = max(out[d], 4)
    return out


def size_settings(spec) -> list[dict]:
    """The size-parameter values a layer is checked at: its defaults, then each int default + 1
    (stride 2, padding 1, dilation 2; a size that defaults to another keeps following it)."""
    if not getattr(spec, "sizes", None):
        return [{}]
    bumped = {s.name: s.default + 1 for s in spec.sizes if isinstance(s.default, int)}
    return [{}, bumped]


def random_inputs(spec, rng, sizes=None) -> dict:
    """Random arguments for a layer spec: normal reals, uniform [0, 1] targets, valid class ids."""
    dims = sizes_for(spec, sizes)
    args = {}
    any_shape = (3, 4)
    for a in spec.inputs:
        if tuple(a.shape) == (ANY,):
            shape = any_shape
        else:
            shape = tuple(int(sp.sympify(d).subs(dims)) for d in a.shape)
        if a.kind == "index":
            args[a.name] = rng.integers(0, int(sp.sympify(a.bound).subs(dims)), size=shape)
        elif not a.differentiable:
            args[a.name] = rng.uniform(0, 1, size=shape)
        else:
            args[a.name] = rng.standard_normal(shape)
    return args


def outputs_of(spec, result):
    """``forward``'s result as (list of outputs, cache): ``(out, cache)``, out a tuple when several."""
    out, cache = result
    return (list(out) if isinstance(out, tuple) else [out]), cache


def _upstreams(spec, outs, rng):
    if getattr(spec, "loss", False):
        return [float(rng.uniform(0.5, 2.0))]
    return [rng.standard_normal(np.shape(o)) for o in outs]


def check_layer(spec, backend="numpy", dtype="float64", seed=0, sizes=None) -> list[Row]:
    """Rows of the finite-difference (float64) or float32-vs-float64 check of a layer, at every
    setting of its size parameters (``size_settings``)."""
    rows = []
    for hyp in size_settings(spec):
        note = ", ".join(f"{k}={v}" for k, v in hyp.items())
        for row in _check_layer(spec, backend, dtype, seed, sizes, hyp):
            if note:
                row.note = f"{row.note}; {note}" if row.note else note
            rows.append(row)
    return rows


def _check_layer(spec, backend, dtype, seed, sizes, hyp) -> list[Row]:
    rng = np.random.default_rng(seed)
    args = random_inputs(spec, rng, sizes)
    k64 = load(spec.name, backend, "float64")
    outs, cache = outputs_of(spec, k64.forward(**args, **hyp))
    ups = _upstreams(spec, outs, rng)
    grads = k64.backward(cache, *ups)
    rows = []
    if dtype == "float32":
        k32 = load(spec.name, backend, "float32")
        a32 = {n: (v.astype(np.float32) if v.dtype.kind == "f" else v) for n, v in args.items()}
        o32, c32 = outputs_of(spec, k32.forward(**a32, **hyp))
        g32 = k32.backward(c32, *[np.asarray(u, dtype=np.float32) if np.ndim(u) else u for u in ups])
        for name, ref, got in list(zip(spec.output_names, outs, o32)) + \
                list(zip(["d" + i.name for i in spec.diff_inputs], grads, g32)):
            ab, rel, ok = _compare(np.asarray(got, np.float64), np.asarray(ref), F32_RTOL, 0.0, scale=True)
            note = "float32 vs float64"
            if np.asarray(got).dtype != np.float32:
                ok, note = False, f"returned {np.asarray(got).dtype}, expected float32"
            rows.append(Row(spec.name, name, ab, rel, ok, note))
        return rows

    def objective(a):
        o, _ = outputs_of(spec, k64.forward(**a, **hyp))
        return float(sum(np.sum(np.asarray(oo) * u) for oo, u in zip(o, ups)))

    for inp, g in zip(spec.diff_inputs, grads):
        x = args[inp.name]
        num = np.zeros_like(x, dtype=np.float64)
        flat, nflat = x.reshape(-1), num.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + H
            fp = objective(args)
            flat[i] = old - H
            fm = objective(args)
            flat[i] = old
            nflat[i] = (fp - fm) / (2 * H)
        ab, rel, ok = _compare(np.asarray(g), num, RTOL, ATOL)
        rows.append(Row(spec.name, "d" + inp.name, ab, rel, ok))
    return rows


def _compare(got, ref, rtol, atol, scale=False):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return float("inf"), float("inf"), False
    if got.size == 0:
        return 0.0, 0.0, True
    err = np.abs(got - ref)
    denom = np.abs(ref)
    if scale:  # relative to the array's magnitude: cancellation in one element is not a failure
        denom = np.maximum(denom, np.max(np.abs(ref)) * 1e-3)
    rel = err / np.maximum(denom, 1e-300)
    ok = bool(np.all(err <= atol + rtol * denom)) and bool(np.all(np.isfinite(got)))
    return float(err.max()), float(np.where(denom > 0, rel, 0).max()), ok
