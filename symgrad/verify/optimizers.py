"""Numerical sanity checks of generated optimizer, average and schedule kernels (``symgrad check``).

float64: on a random convex quadratic f(p) = sum(a p^2 / 2 - b p) (a in [0.5, 2]) each example
hyperparameter set must lower f over 50 steps (an average must track a constant signal);
float32: 100 steps of the float32 kernel agree with the float64 kernel within relative 1e-4
(``docs/contract.md``), relative to the largest element. Exact framework comparisons live in the tests.
"""
from __future__ import annotations

import numpy as np

from .report import Row
from ..runtime import load

F32_RTOL = 1e-4
STEPS = 50


def _problem(seed, n=16):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, n), rng.standard_normal(n), rng.standard_normal(n)


def _run(spec, backend, dtype, hypers, steps, seed):
    k = load(spec.name, backend, dtype)
    a, b, p0 = _problem(seed)
    p = p0.astype(dtype)
    init_kw = {h: hypers[h] for h in spec.init_hypers if h in hypers}
    step_kw = {h: v for h, v in hypers.items() if h not in init_kw}
    state = k.init(p, **init_kw)
    sign = -1.0 if step_kw.get("maximize") else 1.0
    for _ in range(steps):
        if spec.meta.get("sanity") == "tracking":
            x = b.astype(dtype)                  # a constant signal
        else:
            x = (sign * (a * p.astype(np.float64) - b)).astype(dtype)   # gradient of f (of -f: maximize)
        k.step(p, x, state, **step_kw)
    return p0, p, a, b


def _f(p, a, b):
    p = np.asarray(p, np.float64)
    return float(np.sum(0.5 * a * p * p - b * p))


def check_optimizer(spec, backend="numpy", dtype="float64", seed=0, sizes=None) -> list[Row]:
    """Each example hyperparameter set of ``spec`` on a quadratic (``sizes`` is unused: the problem
    has 16 elements)."""
    rows = []
    for ex in spec.meta.get("examples", [{}]):
        note = ", ".join(f"{k}={v}" for k, v in ex.items()) or "defaults"
        try:
            if dtype == "float32":
                _, p32, _, _ = _run(spec, backend, "float32", ex, 100, seed)
                _, p64, _, _ = _run(spec, backend, "float64", ex, 100, seed)
                err = np.abs(p32.astype(np.float64) - p64)
                scale = max(float(np.max(np.abs(p64))), 1e-300)
                rows.append(Row(spec.name, "float32 vs f64", float(err.max()), float(err.max()) / scale,
                                bool(np.all(np.isfinite(p32))) and float(err.max()) <= F32_RTOL * scale,
                                f"{note}; 100 steps"))
                continue
            p0, p, a, b = _run(spec, backend, "float64", ex, STEPS, seed)
            if spec.meta.get("sanity") == "tracking":
                err = float(np.max(np.abs(p - b)))
                rows.append(Row(spec.name, "tracks constant", err, err / float(np.max(np.abs(b))),
                                err <= 1e-3 * float(np.max(np.abs(b))), note, ("max abs dev", "max rel dev")))
            else:
                f0, f1 = _f(p0, a, b), _f(p, a, b)
                fmin = _f(b / a, a, b)
                rows.append(Row(spec.name, "f decreases", f1 - fmin, (f1 - fmin) / (f0 - fmin),
                                bool(np.isfinite(f1)) and f1 < f0,
                                f"{note}; f-f* over {STEPS} steps: {f0 - fmin:.3g} -> {f1 - fmin:.3g}",
                                ("f-f* at end", "end / start")))
        except (ValueError, TypeError) as e:
            rows.append(Row(spec.name, "example", float("nan"), float("nan"), False, f"{note}: {e}"))
    return rows


def check_schedule(spec, backend="numpy", dtype="float64", seed=0, sizes=None) -> list[Row]:
    """A schedule's value at random arguments against its SymPy formula evaluated exactly."""
    import sympy as sp
    k = load(spec.name, backend, dtype)
    rng = np.random.default_rng(seed)
    rows = []
    for var in spec.variants():
        flags = dict(var.flags)
        worst = worst_abs = 0.0
        for _ in range(5):
            args = {n: float(rng.integers(1, 50)) if "step" in n else float(rng.uniform(0.1, 1.0))
                    for n in spec.args}
            got = k.value(**args, **flags)
            ref = float(var.equations[0].rhs.subs({getattr(spec.symbols, n): sp.Float(v, 30)
                                                   for n, v in args.items()}).evalf(30))
            gap = abs(got - ref) if got == got else float("inf")   # a NaN must not drop out of max()
            worst = max(worst, gap / max(abs(ref), 1e-300))
            worst_abs = max(worst_abs, gap)
        rows.append(Row(spec.name, "value", worst_abs, worst, worst <= 1e-12,
                        ", ".join(f"{n}={v}" for n, v in flags.items()) + "; vs SymPy at 30 digits"))
    return rows
