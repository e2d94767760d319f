"""Shared plumbing of the examples: loading kernels (with a clear error for a missing backend),
optimizers over a dict of parameters, and a lazily imported matplotlib drawing on the headless Agg canvas."""
from __future__ import annotations

from pathlib import Path

from ..errors import SpecError, SymgradError
from ..registry import REGISTRY
from ..runtime import load


class ExampleError(SymgradError, ValueError):
    """A bad option of an example (names the option, the expected and the received value)."""


def load_kernel(name: str, backend: str = "numpy", dtype: str = "float64"):
    """``symgrad.load`` with an error naming ``--backend`` when that backend is not available."""
    try:
        return load(name, backend=backend, dtype=dtype)
    except (ImportError, SpecError) as e:
        if backend == "numpy":
            raise
        raise ExampleError(f"backend: {backend!r} is not available in this installation ({e}); "
                           f"use backend 'numpy'") from e


def optimizer_names() -> list[str]:
    """Registered optimizers that take a learning rate (``ema`` is optimizer-shaped but averages)."""
    return [n for n in REGISTRY.names("optimizer") if "lr" in (getattr(REGISTRY.get(n), "hypers", None) or {})]


def hyper_listing(name: str) -> str:
    """``lr=0.001, momentum=0, ..., nesterov=False``: an optimizer's hyperparameters and flags, defaults."""
    spec = REGISTRY.get(name)
    items = [f"{k}={'(required)' if h.default is None else format(h.default, 'g')}" for k, h in spec.hypers.items()]
    items += [f"{k}={v}" for k, v in getattr(spec, "flags", {}).items()]
    return ", ".join(items)


def check_hypers(name: str, hyper: dict) -> None:
    """Names, types and combinations of ``hyper`` for optimizer ``name``, checked before any training:
    an ExampleError naming the bad one and listing the optimizer's hyperparameters."""
    import sympy as sp
    spec = REGISTRY.get(name)
    flags = dict(getattr(spec, "flags", {}))
    known = set(spec.hypers) | set(flags)
    for k, v in hyper.items():
        if k not in known:
            raise ExampleError(f"--hyper {k}: {name} has no hyperparameter {k!r}; its hyperparameters are "
                               f"{hyper_listing(name)}")
        if k in flags and not isinstance(v, bool):
            raise ExampleError(f"--hyper {k}: expected true or false, got {v!r} ({name}: {hyper_listing(name)})")
        if k not in flags and isinstance(v, bool):
            raise ExampleError(f"--hyper {k}: expected a number, got {v!r} ({name}: {hyper_listing(name)})")
    values = {**{k: h.default for k, h in spec.hypers.items() if h.default is not None}, **flags, **hyper}
    for r in getattr(spec, "requires", ()):
        sub = {sym: sp.sympify(values[sym.name]) for sym in r.condition.free_symbols if sym.name in values}
        ok = r.condition.xreplace(sub)
        if ok in (sp.false, False):
            given = ", ".join(f"{k}={v}" for k, v in hyper.items())
            raise ExampleError(f"--hyper: {r.message} (given {given}; {name}: {hyper_listing(name)})")


class Optimizer:
    """One generated optimizer kernel stepping every array of a parameter dict in place:
    ``state[k] = kernel.init(params[k])`` once, then ``kernel.step(params[k], grads[k], state[k], **hyper)``."""

    def __init__(self, name: str, params: dict, *, backend="numpy", dtype="float64", **hyper):
        if name not in optimizer_names():
            raise ExampleError(f"optimizer: expected one of {', '.join(optimizer_names())}, got {name!r}")
        check_hypers(name, hyper)
        self.name, self.kernel = name, load_kernel(name, backend, dtype)
        init_names = getattr(REGISTRY.get(name), "init_hypers", ())   # e.g. initial_accumulator_value
        init_kw = {k: hyper.pop(k) for k in init_names if k in hyper}
        self.hyper = hyper
        self.state = {k: self.kernel.init(p, **init_kw) for k, p in params.items()}

    def step(self, params: dict, grads: dict) -> None:
        for k, p in params.items():
            self.kernel.step(p, grads[k], self.state[k], **self.hyper)


def new_figure(figsize=(10, 4.2)):
    """A matplotlib Figure drawn by the headless Agg canvas (no pyplot, so a notebook's own backend
    is left alone), or a clear error when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ExampleError("plotting needs matplotlib, which is not installed: "
                           "pip install 'symgrad[plot]'") from e
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path) -> Path:
    """Save ``fig`` as a PNG at ``path`` (parent folders created)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ExampleError(f"plot: expected a file name ending in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return path
