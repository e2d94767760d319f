"""``symgrad.load``: kernels as Python objects, from the same sources ``symgrad generate`` writes.

The registry says how each target loads each kernel kind (``symgrad/targets/<target>/__init__.py``):
NumPy executes the rendered module in-process, C compiles the rendered files once and wraps them.
"""
from __future__ import annotations

import numpy as np

from .errors import SpecError
from .registry import REGISTRY

DTYPES = ("float32", "float64")


class LoadedKernel:
    """The functions of one kernel for one backend and dtype (``forward``/``backward`` or
    ``init``/``step``), with the signatures of ``docs/contract.md``."""

    def __init__(self, spec, backend: str, dtype: np.dtype, module):
        self.spec, self.name, self.backend, self.dtype, self.module = spec, spec.name, backend, dtype, module

    def __repr__(self):
        return f"<symgrad kernel {self.name} backend={self.backend} dtype={self.dtype}>"

    # layers, activations, losses
    def forward(self, *args, **kwargs):
        return self.module.forward(*args, dtype=self.dtype, **kwargs)

    def backward(self, cache, *grads, **kwargs):
        return self.module.backward(cache, *grads, **kwargs)

    # optimizers
    def init(self, *args, **kwargs):  # (param, **init hyperparameters); names as the kernel's
        return self.module.init(*args, dtype=self.dtype, **kwargs)

    def step(self, *args, **kwargs):  # (param, grad, state, **hyper); ema calls them (avg, x, state)
        return self.module.step(*args, **kwargs)

    # schedules
    def value(self, *args, **kwargs):
        return self.module.value(*args, **kwargs)

    def __getattr__(self, item):
        return getattr(self.module, item)


def load(name: str, backend: str = "numpy", dtype: str = "float64") -> LoadedKernel:
    """Load kernel ``name`` for ``backend`` (a registered target: "numpy", "c") and ``dtype``
    ("float32"/"float64")."""
    spec = REGISTRY.get(name)
    if backend not in REGISTRY.targets():
        raise SpecError(f"backend: expected one of {', '.join(REGISTRY.targets())}, got {backend!r}")
    if str(dtype) not in DTYPES:
        raise SpecError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    module = REGISTRY.target_rules(spec, backend).load(spec)
    return LoadedKernel(spec, backend, np.dtype(str(dtype)), module)
