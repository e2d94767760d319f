"""``symgrad.load``: kernels as Python objects, from the same sources ``symgrad generate`` writes.

The registry says how each target loads each kernel kind (``symgrad/targets/<target>/__init__.py``):
NumPy executes the rendered module in-process, C compiles the rendered files once and wraps them.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from .errors import SpecError
from .registry import REGISTRY

DTYPES = ("float32", "float64")


class LoadedKernel:
    """The functions of one kernel for one backend and dtype (``forward``/``backward``,
    ``init``/``step`` or ``value``), with the signatures of ``docs/contract.md``.

    They are the module's own functions (``forward`` and ``init`` with this kernel's ``dtype`` bound
    by ``functools.partial``): no extra Python frame per call."""

    def __init__(self, spec, backend: str, dtype: np.dtype, module):
        self.spec, self.name, self.backend, self.dtype, self.module = spec, spec.name, backend, dtype, module
        for name in ("forward", "init"):
            if hasattr(module, name):
                setattr(self, name, partial(getattr(module, name), dtype=dtype))
        for name in ("backward", "step", "value"):
            if hasattr(module, name):
                setattr(self, name, getattr(module, name))

    def __repr__(self):
        return f"<symgrad kernel {self.name} backend={self.backend} dtype={self.dtype}>"

    def __getattr__(self, item):
        if item == "module":
            raise AttributeError(item)
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


def bind_arguments(name: str, input_names: list, hyper_names: list, args, kwargs, what: str = "array"):
    """(values of ``input_names`` in order, hyperparameters) of a call ``f(*args, **kwargs)`` of kernel
    ``name`` through a framework wrapper (``symgrad.torch``, ``symgrad.jax``): positional arrays, any by
    keyword, hyperparameters by keyword only; a ``TypeError`` names what is wrong."""
    if len(args) > len(input_names):
        raise TypeError(f"{name}: expected at most {len(input_names)} {what} arguments "
                        f"({', '.join(input_names)}), got {len(args)}")
    values = dict(zip(input_names, args))
    hyper = {}
    for k, v in kwargs.items():
        if k in input_names:
            if k in values:
                raise TypeError(f"{name}: argument {k!r} given twice")
            values[k] = v
        elif k in hyper_names:
            hyper[k] = v          # checked by the kernel
        else:
            raise TypeError(f"{name}: unexpected argument {k!r}; expected {', '.join(input_names + hyper_names)}")
    missing = [n for n in input_names if n not in values]
    if missing:
        raise TypeError(f"{name}: missing argument(s) {', '.join(missing)}")
    return [values[n] for n in input_names], hyper
