"""Sliding windows in the spec language: integer sizes, ``unfold`` and its transpose ``Fold``.

A convolution, a pooling layer or any other sliding-window operation is written as a *window read*
followed by ordinary tensor operations (an einsum with the kernel, a max or a mean over the window)::

    N, C, H, W, O, KH, KW = sg.dims("N C H W O KH KW")

    @sg.layer(x=(N, C, H, W), w=(O, C, KH, KW), b=(O,))
    def conv2d(x, w, b, stride=sg.size(1), padding=sg.size(0, minimum=0), dilation=sg.size(1)):
        u = sg.unfold(x, (KH, KW), stride, padding, dilation)   # (N, C, KH, KW, Ho, Wo)
        return sg.einsum("ncabhw,ocab->nohw", u, w) + sg.expand_dims(b, (1, 2))

``unfold`` reads ``x`` at affine positions of an output index ``i`` and a window index ``k`` on each
windowed axis (the last ``len(size)`` axes of ``x``)::

    u[..., k, i] = x[..., s*i + d*k - p]      (``fill`` where s*i + d*k - p lies outside [0, L))

with ``L_out = floor((L + 2p - d (K - 1) - 1) / s) + 1`` outputs per axis (torch.nn.functional.unfold's
formula; the layout ``(..., K..., L_out...)`` is its "columns" layout, the ``im2col`` of a GEMM
convolution). Its vector-Jacobian product is derived like every other node's: the transpose of a
read at computed positions is a scatter-add to those positions (``Fold``, col2im); the transpose of
``Fold`` is ``unfold`` again. The max over a window is ``symgrad.max`` over the window axes, whose
derived gradient is the mask of the arg-max: nothing about convolution or pooling is hand-written.

Sizes
-----
``symgrad.size(default, minimum=1)`` declares an integer hyperparameter that fixes shapes (stride,
padding, dilation, a kernel size): a keyword argument of ``forward`` like a scalar hyperparameter,
but an integer, checked against ``minimum``, and a dimension inside the kernel (an ``int64_t`` in C).
A default naming another size (``size("kernel_size")``) makes the keyword default to ``None``,
meaning "the value of that size" (max-pooling's ``stride=None``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import sympy as sp

from ..errors import SpecError
from .names import check_identifier
from .tensor import Expand, Node, as_node


@dataclass(frozen=True)
class SizeDecl:
    """What ``symgrad.size`` returns: the default of a layer parameter that becomes a ``Size``."""

    default: int | str
    minimum: int = 1


def size(default: int | str, minimum: int = 1) -> SizeDecl:
    """Declare an integer hyperparameter that fixes shapes, as a layer parameter's default.

    Args:
        default: the default value (an int >= ``minimum``), or the name of another size parameter of
            the same layer: the keyword then defaults to ``None``, which means that size's value
            (``stride=symgrad.size("kernel_size")`` is max-pooling's ``stride=None``).
        minimum: the smallest value accepted at run time (1, or 0 for a padding).

    Shape: a scalar integer; use it in ``unfold`` and in shapes (a window of ``kernel_size`` cells).

    Example::

        @symgrad.layer(x=(N, C, L))
        def pool1d(x, kernel_size=symgrad.size(2), stride=symgrad.size("kernel_size")):
            return symgrad.max(symgrad.unfold(x, (kernel_size,), stride), axis=2)
    """
    if isinstance(default, bool) or not isinstance(default, (int, str)):
        raise SpecError(f"size: the default must be an int or the name of another size, got {default!r}")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise SpecError(f"size: minimum must be a non-negative int, got {minimum!r}")
    if isinstance(default, int) and default < minimum:
        raise SpecError(f"size: default {default} is below the minimum {minimum}")
    return SizeDecl(default, minimum)


class Size(sp.Symbol):
    """An integer hyperparameter that fixes shapes (a dimension bound from a keyword argument).

    Uncached like ``Hyper``: two layers' ``stride`` are different objects with their own defaults."""

    def __new__(cls, name: str, default: int | str, minimum: int = 1):
        assumptions = dict(integer=True, nonnegative=True) if minimum == 0 else dict(integer=True, positive=True)
        obj = sp.Symbol.__xnew__(cls, check_identifier(name, "size parameter"), **assumptions)
        obj.default, obj.minimum = default, minimum
        return obj

    def __getnewargs_ex__(self):
        return ((self.name, self.default, self.minimum), {})

    def _hashable_content(self):
        return super()._hashable_content() + (self.default, self.minimum)


class OutDim(sp.Symbol):
    """The number of window positions along one axis: ``(length + 2 padding - dilation (size - 1) - 1)
    // stride + 1``, a dimension computed from the others at run time (and checked to be >= 1)."""

    def __new__(cls, name: str, length, size, stride, padding, dilation):
        obj = sp.Symbol.__xnew__(cls, name, integer=True, positive=True)
        obj.parts = tuple(sp.sympify(v) for v in (length, size, stride, padding, dilation))
        return obj

    def __getnewargs_ex__(self):
        return ((self.name,) + self.parts, {})

    def _hashable_content(self):
        return super()._hashable_content() + self.parts

    @property
    def numerator(self) -> sp.Expr:
        """``length + 2 padding - dilation (size - 1) - 1``: the span the window's first cell slides over."""
        length, size, _, padding, dilation = self.parts
        return sp.expand(length + 2 * padding - dilation * (size - 1) - 1)

    @property
    def stride(self) -> sp.Expr:
        return self.parts[2]


def _per_axis(value, n: int, what: str) -> tuple:
    vals = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(vals) != n:
        raise SpecError(f"unfold: {what} gives {len(vals)} values for {n} windowed axes")
    out = []
    for v in vals:
        e = sp.sympify(v)
        if not (e.is_Integer and e >= 0) and not (isinstance(e, Size) or (e.free_symbols and e.is_integer)):
            raise SpecError(f"unfold: {what} must be a non-negative int or a symgrad.size parameter, got {v!r}")
        out.append(e)
    return tuple(out)


class Unfold(Node):
    """Windows of the last ``len(size)`` axes of ``arg``: shape ``lead + size + out`` (see the module)."""

    op = "unfold"

    def __init__(self, arg: Node, size: tuple, stride: tuple, padding: tuple, dilation: tuple,
                 out: tuple, fill: sp.Expr = sp.Integer(0)):
        n = len(size)
        super().__init__((arg,), tuple(arg.shape[:-n]) + tuple(size) + tuple(out))
        self.size, self.stride, self.padding, self.dilation = size, stride, padding, dilation
        self.out, self.fill = tuple(out), sp.sympify(fill)
        self.lengths = tuple(arg.shape[-n:])


class Fold(Node):
    """The transpose of ``Unfold``: ``g`` (shape ``lead + size + out``) added into a zero tensor of
    shape ``lead + lengths`` at the positions the windows read (col2im); reads of the fill add nothing."""

    op = "fold"

    def __init__(self, g: Node, like: Unfold):
        n = len(like.size)
        super().__init__((g,), tuple(g.shape[:-2 * n]) + like.lengths)
        self.size, self.stride, self.padding, self.dilation = like.size, like.stride, like.padding, like.dilation
        self.out, self.lengths = like.out, like.lengths


def unfold(x: Node, size: Sequence, stride=1, padding=0, dilation=1, fill=0, names: Sequence[str] | None = None) -> Node:
    """Sliding windows over the last ``len(size)`` axes of ``x`` (torch.nn.functional.unfold).

    Args:
        x: a tensor ``(..., L1, ..., Ln)``.
        size: the window's size on each windowed axis: named dims (a kernel's ``KH, KW``) or
            ``symgrad.size`` parameters.
        stride, padding, dilation: an int or size parameter for all axes, or one per axis.
        fill: the value read outside ``x`` (0 for a convolution; ``-inf`` for max-pooling, so a padded
            cell never wins).
        names: the names of the output-position dims (default ``L_out`` for an axis named ``L``).

    Returns: a tensor ``(..., K1, ..., Kn, L1_out, ..., Ln_out)`` with
    ``u[..., k, i] = x[..., s*i + d*k - p]`` and ``L_out = (L + 2p - d (K - 1) - 1) // s + 1``.

    Example::

        u = symgrad.unfold(x, (KH, KW), stride=2, padding=1)       # x (N, C, H, W)
        y = symgrad.einsum("ncabhw,ocab->nohw", u, w)             # a 2-D convolution
    """
    x = as_node(x)
    size = tuple(sp.sympify(s) for s in (size if isinstance(size, (tuple, list)) else (size,)))
    n = len(size)
    if not 1 <= n <= x.ndim:
        raise SpecError(f"unfold: {n} windowed axes for a tensor with {x.ndim} axes")
    for s in size:
        if not (s.is_Integer and s >= 1) and not (s.free_symbols and s.is_integer and s.is_positive):
            raise SpecError(f"unfold: a window size must be a named dim or a symgrad.size parameter, got {s}")
    stride = _per_axis(stride, n, "stride")
    padding = _per_axis(padding, n, "padding")
    dilation = _per_axis(dilation, n, "dilation")
    for what, vals in (("stride", stride), ("dilation", dilation)):
        if any(v.is_Integer and v < 1 for v in vals):
            raise SpecError(f"unfold: {what} must be >= 1")
    fill = sp.sympify(fill)
    if fill.free_symbols or not (fill.is_real or fill in (sp.oo, -sp.oo)):
        raise SpecError(f"unfold: fill must be a number (0, -inf), got {fill!r}")
    lengths = x.shape[-n:]
    if names is None:
        names = [f"{length}_out" if isinstance(length, sp.Symbol) else f"L{k}_out" for k, length in enumerate(lengths)]
    if len(names) != n:
        raise SpecError(f"unfold: {len(names)} names for {n} windowed axes")
    out = tuple(OutDim(check_identifier(nm, "dimension"), L, K, s, p, d)
                for nm, L, K, s, p, d in zip(names, lengths, size, stride, padding, dilation))
    return Unfold(x, size, stride, padding, dilation, out, fill)


def expand_dims(x: Node, axis) -> Node:
    """Insert size-1 axes at ``axis`` (an int or a tuple, positions in the result; numpy.expand_dims).

    Example::

        y = conv + symgrad.expand_dims(b, (1, 2))   # b (O,) -> (O, 1, 1), broadcast over (N, O, Ho, Wo)
    """
    x = as_node(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = x.ndim + len(axes)
    norm = sorted({a % nd for a in axes if -nd <= a < nd})
    if len(norm) != len(axes):
        raise SpecError(f"expand_dims: axes {axes} invalid for a result with {nd} axes")
    return Expand(x, tuple(norm))


def sizes_of(nodes) -> tuple[list, list]:
    """The ``Size`` parameters and ``OutDim`` dims that the nodes of a graph use, in first-use order."""
    sizes, outs = [], []
    for n in nodes:
        syms = []
        for d in n.shape:
            syms += sorted(sp.sympify(d).free_symbols, key=str)
        if isinstance(n, (Unfold, Fold)):
            for group in (n.size, n.stride, n.padding, n.dilation):
                for v in group:
                    syms += sorted(v.free_symbols, key=str)
            for o in n.out:
                syms += sorted(set().union(*(p.free_symbols for p in o.parts)), key=str)
                syms.append(o)
        for s in syms:
            if isinstance(s, Size) and s not in sizes:
                sizes.append(s)
            elif isinstance(s, OutDim) and s not in outs:
                outs.append(s)
    return sizes, outs
