"""symgrad: derive back-propagation and optimizer updates with SymPy, emit checked kernels.

Public API
----------
Spec language: ``dims``, ``layer``, ``loss``, ``activation``, ``index``, ``constant``, ``hyper``,
``ANYSHAPE`` and the tensor functions (``exp``, ``log``, ``tanh``, ``sqrt``, ``abs``, ``maximum``,
``where``, ``sum``, ``mean``, ``max``, ``einsum``, ``apply``, ``one_hot``, ``stop_gradient``).
Optimizers: ``optimizer``, ``hparam``, ``schedule`` (update rules as SymPy equations).
Kernels: ``load(name, backend, dtype)``, ``check(names)``, ``generate(...)``, ``REGISTRY``.
Printouts: ``explain(name, lang="en"|"zh")`` (text, LaTeX, Markdown; Jupyter shows it richly).
"""
__version__ = "0.1.0"

from .errors import (CompilerError, DTypeError, ShapeError, SpecError, SymgradError,  # noqa: E402
                     UnknownKernelError)
from .registry import REGISTRY  # noqa: E402
from .spec.layer import ANYSHAPE, activation, constant, index, layer, loss  # noqa: E402
from .spec.recurrent import recurrent  # noqa: E402
from .spec.tensor import (abs, apply, dims, einsum, exp, hyper, log, max, maximum, mean,  # noqa: E402,A004
                          one_hot, sqrt, stop_gradient, sum, tanh, where)
from .spec.optimizer import hparam, optimizer, schedule  # noqa: E402
from .runtime import load  # noqa: E402
from .check import check  # noqa: E402
from .generate import generate  # noqa: E402
from .explain import explain  # noqa: E402  (the function; the package is symgrad/explain/)

from .builtins import layers as _builtin_layers  # noqa: E402,F401
from .builtins import optimizers as _builtin_optimizers  # noqa: E402,F401

__all__ = [
    "ANYSHAPE", "REGISTRY", "CompilerError", "DTypeError", "ShapeError", "SpecError", "SymgradError",
    "UnknownKernelError", "abs", "activation", "apply", "check", "constant", "dims", "einsum", "exp",
    "explain", "generate", "hparam", "hyper", "index", "layer", "load", "log", "loss", "max", "maximum",
    "mean", "one_hot", "optimizer", "recurrent", "schedule", "sqrt", "stop_gradient", "sum", "tanh", "where",
]
