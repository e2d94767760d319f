"""``symgrad.load``: kernels as Python objects, from the same sources ``symgrad generate`` writes.

The NumPy backend renders the registered spec's module and executes it in a fresh module object
(cached per process), so a user's own spec loads exactly like a built-in.
"""
from __future__ import annotations

import hashlib
import linecache
import types
from functools import lru_cache

import numpy as np

from .errors import SpecError
from .registry import REGISTRY

BACKENDS = ("numpy",)
DTYPES = ("float32", "float64")


def _module_from_source(name: str, source: str, backend: str) -> types.ModuleType:
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"<symgrad {backend}/{name}.py {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    mod = types.ModuleType(f"symgrad_generated.{backend}.{name}")
    mod.__file__ = filename
    exec(compile(source, filename, "exec"), mod.__dict__)  # noqa: S102 - our own generated code
    return mod


@lru_cache(maxsize=None)
def _numpy_module(spec) -> types.ModuleType:
    from .emit import numpy_source
    return _module_from_source(spec.name, numpy_source(spec), "numpy")


class LoadedKernel:
    """The functions of one kernel for one backend and dtype (``forward``/``backward`` or
    ``init``/``step``), with the signatures of ``CONTRACT.md``."""

    def __init__(self, spec, backend: str, dtype: np.dtype, module):
        self.spec, self.name, self.backend, self.dtype, self.module = spec, spec.name, backend, dtype, module

    def __repr__(self):
        return f"<symgrad kernel {self.name} backend={self.backend} dtype={self.dtype}>"

    # layers, activations, losses
    def forward(self, *args, **kwargs):
        return self.module.forward(*args, dtype=self.dtype, **kwargs)

    def backward(self, cache, *grads, **kwargs):
        out = self.module.backward(cache, *grads, **kwargs)
        return out

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
    """Load kernel ``name`` for ``backend`` ("numpy" or "c") and ``dtype`` ("float32"/"float64")."""
    spec = REGISTRY.get(name)
    if backend not in BACKENDS:
        if backend == "c":
            from .c_runtime import load_c  # noqa: F401 - present once the C target lands
        raise SpecError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if str(dtype) not in DTYPES:
        raise SpecError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    return LoadedKernel(spec, backend, np.dtype(str(dtype)), _numpy_module(spec))
