"""The public API in one module: what ``import symgrad as sg`` gives, minus the built-in kernels.

The built-ins (``symgrad.builtins``) are written against this module (``import symgrad.api as sg``),
exactly as a user's own spec file is written against ``symgrad``; the package ``__init__`` imports this
module and then the built-ins, so neither imports the other back.
"""
from .errors import CompilerError, DTypeError, ShapeError, SpecError, SymgradError, UnknownKernelError
from .version import __version__
from .registry import REGISTRY
from .spec.decls import buffer, constant, flag, index, update
from .spec.layer import ANYSHAPE, activation, layer, loss
from .spec.recurrent import recurrent
from .spec.tensor import apply, dims, einsum, hyper
from .spec.functions import (abs, exp, log, max, maximum, mean, one_hot, sqrt,  # noqa: A004
                             stop_gradient, sum, tanh, where)
from .spec.optimizer import hparam, optimizer, scalar, schedule
from .spec.window import expand_dims, size, unfold
from .targets import load_all as _load_targets

_load_targets()   # every package under symgrad/targets registers its target
from .runtime import load
from .verify import check
from .generation import generate
from .explanation import explain

__all__ = [
    "ANYSHAPE", "REGISTRY", "buffer", "flag", "update", "CompilerError", "DTypeError", "ShapeError", "SpecError", "SymgradError",
    "UnknownKernelError", "__version__", "abs", "activation", "apply", "check", "constant", "dims", "einsum",
    "exp", "expand_dims", "explain", "generate", "hparam", "hyper", "index", "layer", "load", "log", "loss", "max",
    "maximum", "mean", "one_hot", "optimizer", "recurrent", "scalar", "schedule", "size", "sqrt", "stop_gradient", "sum",
    "tanh", "unfold", "where",
]
