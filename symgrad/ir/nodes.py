"""Kernel IR: what the emitters print. Target-neutral: arrays with named dims, and statements.

A ``Kernel`` has a ``forward`` and a ``backward`` ``Function``; each is a list of statements over
named arrays. Elementwise and reduction statements carry SymPy expressions whose free symbols are
array names (``Symbol(name)``), dims and hyperparameters; the NumPy and C printers differ, the math
does not.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


@dataclass
class Arg:
    name: str
    shape: tuple            # dims (SymPy) or 1; (ANY,) for any shape
    kind: str = "real"      # real | index
    bound: sp.Expr | None = None   # for index args: ids lie in range(bound)
    grad: bool = True
    buffer: bool = False    # updated in place by forward (``Kernel.updates``)


@dataclass
class Elementwise:
    out: str
    shape: tuple
    expr: sp.Expr
    temps: list = field(default_factory=list)   # [(Symbol, Expr)] from cse, computed first
    broadcast: bool = False                      # expr's own shape is smaller than ``shape``


@dataclass
class Reduction:
    out: str
    shape: tuple
    kind: str               # sum | max
    expr: sp.Expr           # elementwise expression reduced
    src_shape: tuple
    axes: tuple
    keepdims: bool
    temps: list = field(default_factory=list)
    rough: bool = False     # only an estimate is read (a corrected mean's first pass, ``ir.accuracy``):
                            # a target may add its terms in the working precision


@dataclass
class Einsum:
    out: str
    shape: tuple
    subscripts: str
    operands: tuple         # array names
    operand_shapes: tuple


@dataclass
class OneHot:
    out: str
    shape: tuple
    index: str
    classes: sp.Expr


@dataclass
class Expand:
    out: str
    shape: tuple
    src: str
    axes: tuple


@dataclass
class Slice:
    out: str
    shape: tuple
    src: str
    start: sp.Expr
    stop: sp.Expr


@dataclass
class Concat:
    out: str
    shape: tuple
    parts: tuple            # array names, or None for a block of zeros of the matching width
    widths: tuple


@dataclass
class WindowFields:
    """What a window read and its transpose share: ``src``/``out`` and the window's geometry."""
    out: str
    shape: tuple
    src: str
    src_shape: tuple
    size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple


@dataclass
class Window(WindowFields):
    """``out[..., k, i] = src[..., stride*i + dilation*k - padding]`` on the last ``len(size)`` axes of
    ``src`` (``fill`` outside); ``out`` has shape ``lead + size + out_dims``."""
    fill: sp.Expr = sp.Integer(0)


@dataclass
class WindowAdd(WindowFields):
    """The transpose of ``Window``: ``out`` (shape ``lead + lengths``) is zero plus ``src[..., k, i]``
    added at ``stride*i + dilation*k - padding`` for every window cell inside the tensor (col2im)."""


def smaller(shape, big) -> bool:
    """``shape`` broadcasts into ``big`` and has fewer elements (a row statistic of a matrix)."""
    shape, big = tuple(shape), tuple(big)
    if len(shape) > len(big) or shape == big:
        return False
    off = len(big) - len(shape)
    return all(sp.sympify(d) == 1 or d == big[off + a] for a, d in enumerate(shape)) and prod(shape) != prod(big)


@dataclass
class Function:
    name: str
    params: list            # Arg (arrays in order)
    body: list              # statements
    returns: list           # array names returned (forward: outputs; backward: grads)
    saved: list = field(default_factory=list)   # forward: names stored in the cache
    shapes: dict = field(default_factory=dict)  # every array name -> shape


@dataclass
class Kernel:
    name: str
    kind: str
    doc: str
    inputs: list            # Arg
    hypers: list            # (name, default)
    outputs: list           # Arg
    grad_outputs: list      # Arg (dy / dloss)
    dims: list              # dim symbols
    forward: Function
    backward: Function
    equations: list         # [(name, Expr)] forward equations, for docstrings
    grad_equations: list    # [(name, Expr)] final gradient expressions, for docstrings
    meta: dict = field(default_factory=dict)
    node_names: dict = field(default_factory=dict)  # spec node id -> array name (for explain)
    loss: bool = False      # one scalar output; backward's dloss defaults to 1.0
    sizes: list = field(default_factory=list)      # (name, default int or size name, minimum): int keywords
    out_dims: list = field(default_factory=list)   # (name, numerator, stride): name = numerator // stride + 1
    updates: list = field(default_factory=list)    # (buffer argument, array of its new value): forward writes


def prod(shape) -> sp.Expr:
    out = sp.Integer(1)
    for d in shape:
        out *= sp.sympify(d)
    return out


def is_one(d) -> bool:
    """A size that is the literal 1 (a kept, broadcast axis)."""
    return sp.sympify(d) == 1


def shape_text(shape) -> str:
    """A shape as messages and docstrings print it: ``(N, D)``; ``(any shape)`` for ``(ANY,)``."""
    if len(shape) == 1 and str(shape[0]) == "n_elems":
        return "(any shape)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def full_expr(s) -> sp.Expr:
    """An elementwise or reduction statement's expression with its CSE temporaries substituted back."""
    e = s.expr
    for sym, t in reversed(s.temps):
        e = e.xreplace({sym: t})
    return e


def reads(s) -> set[str]:
    """The array names a statement reads (its CSE temporaries excluded)."""
    if isinstance(s, (Elementwise, Reduction)):
        temps = {t.name for t, _ in s.temps}
        names = {x.name for x in s.expr.free_symbols}
        for _, e in s.temps:
            names |= {x.name for x in e.free_symbols}
        return names - temps
    if isinstance(s, Einsum):
        return set(s.operands)
    if isinstance(s, (Slice, Expand, Window, WindowAdd)):
        return {s.src}
    if isinstance(s, Concat):
        return {p for p in s.parts if p}
    if isinstance(s, OneHot):
        return {s.index}
    raise TypeError(f"unknown IR statement {type(s).__name__}")
