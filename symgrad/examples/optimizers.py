"""Optimizer trajectories on 2-D test functions: every step is a generated optimizer kernel
(``symgrad.load(name).step``), every gradient is derived by SymPy from the function's formula.

Test functions (x, y):
- rosenbrock  f = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1) (Rosenbrock 1960, Comput. J. 3(3))
- beale       f = (1.5 - x + x y)^2 + (2.25 - x + x y^2)^2 + (2.625 - x + x y^3)^2, minimum 0 at (3, 0.5)
              (Beale 1958; Jamil & Yang 2013, "A literature survey of benchmark functions", no. 10)
- saddle      f = x^2 - y^2, a saddle point at (0, 0), unbounded below along y
- quadratic   f = x^2 / 2 + 5 y^2, an ill-conditioned bowl (condition number 10), minimum 0 at (0, 0)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ._common import ExampleError, load_kernel
from ._common import new_figure, save_figure

X, Y = sp.symbols("x y", real=True)

FUNCTIONS = {
    "rosenbrock": dict(f=(1 - X) ** 2 + 100 * (Y - X ** 2) ** 2, start=(-1.5, 2.0), minimum=(1.0, 1.0),
                       xlim=(-2.0, 2.0), ylim=(-1.0, 3.0), steps=1000, log_levels=True),
    "beale": dict(f=(sp.Rational(3, 2) - X + X * Y) ** 2 + (sp.Rational(9, 4) - X + X * Y ** 2) ** 2
                  + (sp.Rational(21, 8) - X + X * Y ** 3) ** 2,
                  start=(1.0, 1.4), minimum=(3.0, 0.5), xlim=(-1.0, 4.5), ylim=(-1.5, 2.0), steps=600,
                  log_levels=True),
    "saddle": dict(f=X ** 2 - Y ** 2, start=(-1.5, 1e-3), minimum=None, xlim=(-2.0, 2.0), ylim=(-2.0, 2.0),
                   steps=150, log_levels=False),
    "quadratic": dict(f=X ** 2 / 2 + 5 * Y ** 2, start=(-4.5, 1.5), minimum=(0.0, 0.0), xlim=(-5.0, 5.0),
                      ylim=(-2.5, 2.5), steps=100, log_levels=False),
}

# (label, kernel, hyperparameters); lr per function below (one lr cannot suit gradients of size 1 and 1e3)
OPTIMIZERS = [
    ("SGD", "sgd", {}),
    ("SGD + momentum 0.9", "sgd", {"momentum": 0.9}),
    ("Nesterov momentum 0.9", "sgd", {"momentum": 0.9, "nesterov": True}),
    ("Adagrad", "adagrad", {}),
    ("RMSprop", "rmsprop", {}),
    ("Adam", "adam", {}),
]
LR = {
    "rosenbrock": {"SGD": 1e-3, "SGD + momentum 0.9": 2e-4, "Nesterov momentum 0.9": 2e-4, "Adagrad": 0.5,
                   "RMSprop": 0.01, "Adam": 0.05},
    "beale": {"SGD": 0.01, "SGD + momentum 0.9": 2e-3, "Nesterov momentum 0.9": 2e-3, "Adagrad": 0.5,
              "RMSprop": 0.01, "Adam": 0.05},
    "saddle": {"SGD": 0.01, "SGD + momentum 0.9": 0.01, "Nesterov momentum 0.9": 0.01, "Adagrad": 0.1,
               "RMSprop": 0.01, "Adam": 0.03},
    "quadratic": {"SGD": 0.09, "SGD + momentum 0.9": 0.05, "Nesterov momentum 0.9": 0.05, "Adagrad": 1.0,
                  "RMSprop": 0.05, "Adam": 0.2},
}


@dataclass
class Run:
    label: str
    kernel: str
    hyper: dict
    path: np.ndarray     # (steps + 1, 2): the start, then the point after each step
    losses: np.ndarray   # f along the path


def function_and_gradient(name: str):
    """(f, grad) as NumPy callables of (x, y); grad = (df/dx, df/dy) derived by SymPy."""
    if name not in FUNCTIONS:
        raise ExampleError(f"function: expected one of {', '.join(FUNCTIONS)}, got {name!r}")
    f = FUNCTIONS[name]["f"]
    grad = [sp.diff(f, v) for v in (X, Y)]
    return sp.lambdify((X, Y), f, "numpy"), sp.lambdify((X, Y), grad, "numpy")


def trajectories(function="rosenbrock", steps=None, dtype="float64", optimizers=None,
                 backend="numpy") -> list[Run]:
    """Run each optimizer from the function's start for ``steps`` steps. A run that leaves the
    plotted region by far (or overflows) stops there."""
    cfg = FUNCTIONS.get(function)
    f, grad = function_and_gradient(function)
    steps = cfg["steps"] if steps is None else int(steps)
    if steps < 1:
        raise ExampleError(f"steps: expected a positive integer, got {steps!r}")
    bound = 10 * max(map(abs, cfg["xlim"] + cfg["ylim"]))
    runs = []
    for label, name, hyper in optimizers or OPTIMIZERS:
        k = load_kernel(name, backend, dtype)
        p = np.array(cfg["start"], dtype=dtype)
        state = k.init(p)
        kw = dict(hyper, lr=LR.get(function, {}).get(label, 0.01))
        path = [p.copy()]
        for _ in range(steps):
            g = np.asarray(grad(p[0], p[1]), dtype=dtype)
            k.step(p, g, state, **kw)
            path.append(p.copy())
            if not np.all(np.isfinite(p)) or np.max(np.abs(p)) > bound:
                break
        path = np.array(path)
        runs.append(Run(label, name, kw, path, np.asarray(f(path[:, 0], path[:, 1]), dtype=np.float64)))
    return runs


def plot_optimizers(function="rosenbrock", steps=None, out="optimizers.png", loss_curve=False,
                    dtype="float64", backend="numpy") -> list[Run]:
    """Contour plot of ``function`` with the optimizers' trajectories (and, with ``loss_curve``,
    a second panel with f against the step), saved as the PNG ``out``; returns the runs."""
    runs = trajectories(function, steps, dtype, backend=backend)
    cfg = FUNCTIONS[function]
    f, _ = function_and_gradient(function)
    fig = new_figure((12.5, 6) if loss_curve else (7.5, 7))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]}) if loss_curve else [fig.subplots()]
    ax = axes[0]
    xs, ys = np.linspace(*cfg["xlim"], 300), np.linspace(*cfg["ylim"], 300)
    gx, gy = np.meshgrid(xs, ys)
    gz = f(gx, gy)
    if cfg["log_levels"]:
        levels = np.logspace(np.log10(max(gz.min(), 1e-3)), np.log10(gz.max()), 25)
        ax.contourf(gx, gy, np.maximum(gz, levels[0]), levels=levels, cmap="Greys_r",
                         norm=_lognorm(), alpha=0.55)
        ax.contour(gx, gy, gz, levels=levels, colors="k", linewidths=0.3, alpha=0.4)
    else:
        ax.contourf(gx, gy, gz, levels=25, cmap="Greys_r", alpha=0.55)
        ax.contour(gx, gy, gz, levels=25, colors="k", linewidths=0.3, alpha=0.4)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    styles = line_styles(len(runs))
    for r, c, st in zip(runs, colors, styles):
        ax.plot(r.path[:, 0], r.path[:, 1], color=c, label=f"{r.label} (lr={r.hyper['lr']:g})", **st)
    ax.plot(*cfg["start"], "ko", ms=7, label="start")
    if cfg["minimum"]:
        ax.plot(*cfg["minimum"], "*", color="gold", mec="k", ms=16, label="minimum")
    else:
        ax.plot(0, 0, "X", color="gold", mec="k", ms=11, label="saddle point")
    ax.set_xlim(cfg["xlim"])
    ax.set_ylim(cfg["ylim"])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{function}: f = ${sp.latex(cfg['f'])}$", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.subplots_adjust(bottom=0.2 if loss_curve else 0.15)
    if loss_curve:
        ax2 = axes[1]
        for r, c, st in zip(runs, colors, styles):
            ax2.plot(np.arange(len(r.losses)), r.losses, color=c, label=r.label, **st)
        if cfg["minimum"]:
            ax2.set_yscale("log")
        else:
            ax2.set_yscale("symlog", linthresh=1e-2)
            ax2.set_ylim(bottom=-10 * max(map(abs, cfg["ylim"])) ** 2)
        ax2.set_xlabel("step")
        ax2.set_ylabel("f(x, y)" + (" (log scale)" if cfg["minimum"] else " (symlog scale)"))
        ax2.set_title("loss against steps")
        ax2.grid(alpha=0.3, which="both")
    pairs: dict = {}
    for a, b, where in overlaps(runs, function):
        if loss_curve or where == "paths":
            pairs.setdefault((a, b), []).append(where)
    notes = [f"{a} and {b} coincide ({' and '.join(w)}): the first is drawn wider underneath"
             for (a, b), w in pairs.items()]
    if notes:
        fig.text(0.5, 0.925, "; ".join(notes), ha="center", fontsize=8, style="italic")
    n_steps = cfg["steps"] if steps is None else steps
    fig.suptitle(f"Optimizers on the {function} function, {n_steps} steps each; "
                 f"every step a generated symgrad kernel, gradients derived by SymPy", fontsize=10)
    save_figure(fig, out)
    return runs


def line_styles(n: int) -> list[dict]:
    """Distinct line style and marker per run; earlier runs drawn wider and lower, so a curve that a
    later one covers still shows at its edges."""
    dashes = ["-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1))]
    marks = ["o", "s", "^", "D", "v", "P"]
    return [dict(linestyle=dashes[k % 6], marker=marks[k % 6], markevery=0.1, ms=5, mfc="none",
                 lw=max(3.4 - 0.45 * k, 1.0), zorder=2 + k) for k in range(n)]


def overlaps(runs, function: str, rtol: float = 0.02) -> list[tuple]:
    """Pairs of runs that would hide each other: ``(label, label, "paths" | "loss curves")`` when their
    paths stay within ``rtol`` of the axes' extent, or their losses within ``rtol`` decades (log scale) or
    ``rtol`` of the loss range."""
    cfg = FUNCTIONS[function]
    span = max(cfg["xlim"][1] - cfg["xlim"][0], cfg["ylim"][1] - cfg["ylim"][0])
    out = []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            n = min(len(a.path), len(b.path))
            if np.max(np.abs(a.path[:n] - b.path[:n])) <= rtol * span:
                out.append((a.label, b.label, "paths"))
            la, lb = np.asarray(a.losses[:n], float), np.asarray(b.losses[:n], float)
            if cfg["minimum"]:
                close = np.max(np.abs(np.log10(np.abs(la) + 1e-300) - np.log10(np.abs(lb) + 1e-300))) <= 10 * rtol
            else:
                close = np.max(np.abs(la - lb)) <= rtol * max(np.ptp(np.concatenate([la, lb])), 1e-12)
            if close:
                out.append((a.label, b.label, "loss curves"))
    return out


def _lognorm():
    from matplotlib.colors import LogNorm
    return LogNorm()
