"""Names in a spec: every name a user gives reaches generated Python and C, so each must be a plain
identifier, differ from every name the generated code uses for itself, and mean one thing in its kernel.

Where the reserved names come from: the NumPy templates (``symgrad/targets/numpy/templates``: module
globals such as ``NAME``, locals such as ``cache``, ``dtype``, the builtins they call), the C templates
(C99 keywords, ``<math.h>`` functions the printers emit, loop indices ``i0``, helpers ``sg_*``) and the
lowering (temporaries ``t0``, gradients ``d<name>``).
"""
from __future__ import annotations

import keyword
import re

from ..errors import SpecError

IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_kernel_name(name: str, what: str) -> str:
    """A kernel's name prefixes its files and C functions (``tanh_forward_f64``): a plain identifier."""
    if not isinstance(name, str) or not IDENT.match(name) or keyword.iskeyword(name) or name.startswith("_"):
        raise SpecError(f"{what} {name!r} is not a valid identifier (letters, digits, '_', starting with a letter)")
    if name in ("np", "numpy", "symgrad"):  # generated/numpy/NAME.py would shadow the module it imports
        raise SpecError(f"{what} {name!r} is reserved (a module of that name is imported); choose another name")
    return name


def check_identifier(name: str, what: str) -> str:
    """Names reach generated Python and C: only plain identifiers, no keywords, no dunders, none of
    the names the generated code itself uses (``RESERVED``, ``RESERVED_PATTERN``)."""
    check_kernel_name(name, what)
    if name in RESERVED or RESERVED_PATTERN.match(name):
        raise SpecError(f"{what} {name!r} is reserved in generated code (it names a module, function, "
                        "loop index or temporary there); choose another name")
    return name


RESERVED = frozenset(
    # the generated NumPy modules: their globals, locals and the builtins they call
    "np numpy cache forward backward init step value state dtype shape size scratch NAME INPUTS STATE "
    "HYPERPARAMETERS NSCRATCH BLOCK n_elems abs any bool dict float getattr int isinstance len list max min "
    "range tuple type AssertionError TypeError ValueError "
    # C99: keywords, types, <math.h> functions a formula prints to, macros
    "auto break case char const continue default do double else enum extern for goto if inline long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void "
    "volatile while int64_t int32_t size_t "
    "exp expf expm1 log logf log1p log1pf log2 log10 pow powf sqrt sqrtf cbrt tanh tanhf sinh cosh sin "
    "cos tan asin acos atan atan2 asinh acosh atanh erf erff erfc tgamma lgamma fabs fabsf floor ceil "
    "fmax fmin fmod round trunc copysign copysignf hypot INFINITY NAN HUGE_VAL memcpy".split())
"""Names the generated code of some target uses for itself; a spec may not use them."""

RESERVED_PATTERN = re.compile(r"^([ti][0-9]+|(sg|SG|SYMGRAD)_.*|.*_steps)$")
"""Temporaries ``t0``, C loop indices ``i0``, helpers ``sg_*``, per-step buffers ``*_steps``."""


def check_distinct(kernel: str, names: dict) -> None:
    """One name, one meaning, in the generated code of ``kernel``: ``names`` maps a role ("input",
    "hyperparameter", "dimension", "output", ...) to its names. Names must differ across roles, and
    none may be ``d<X>`` for an input or output ``X``: that is the name of X's gradient."""
    seen: dict = {}
    for role, ns in names.items():
        for n in ns:
            if n in seen and seen[n] != role:
                raise SpecError(f"{kernel}: {role} {n!r} has the name of a {seen[n]}; names must differ")
            seen[n] = role
    grads = {"d" + n: n for role in ("input", "output") for n in names.get(role, ())}
    for n, role in seen.items():
        if n in grads:
            raise SpecError(f"{kernel}: {role} {n!r} is the name of the gradient of {grads[n]!r} "
                            "in the generated backward; choose another name")
