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


class Optimizer:
    """One generated optimizer kernel stepping every array of a parameter dict in place:
    ``state[k] = kernel.init(params[k])`` once, then ``kernel.step(params[k], grads[k], state[k], **hyper)``."""

    def __init__(self, name: str, params: dict, *, backend="numpy", dtype="float64", **hyper):
        if name not in optimizer_names():
            raise ExampleError(f"optimizer: expected one of {', '.join(optimizer_names())}, got {name!r}")
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
