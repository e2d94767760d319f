"""The functions of the spec language on tensors: reductions (``sum``, ``mean``, ``max``), elementwise
functions (``exp``, ``log``, ``tanh``, ``sqrt``, ``abs``, ``maximum``, ``where``), ``one_hot`` and
``stop_gradient``. Each builds nodes of ``symgrad/spec/tensor.py``; shapes follow NumPy.
"""
from __future__ import annotations

import sympy as sp

from ..errors import SpecError
from .tensor import Input, Map, Node, OneHot, Reduce, StopGradient, as_node, elementwise


def _axes(x: Node, axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    ax = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in ax:
        if not -x.ndim <= a < x.ndim:
            raise SpecError(f"axis {a} out of range for a tensor with {x.ndim} axes")
        out.append(a % x.ndim)
    return tuple(sorted(set(out)))


def sum(x: Node, axis=None, keepdims: bool = False) -> Node:  # noqa: A001 - mirrors numpy
    """Sum of ``x`` over ``axis`` (numpy.sum).

    Args:
        x: a tensor of shape (d0, ..., dk).
        axis: an int, a tuple of ints (negative counts from the end) or None for all axes.
        keepdims: keep the summed axes as size 1 (so the result broadcasts against ``x``).

    Example::

        s = symgrad.sum(x, axis=-1, keepdims=True)   # x (N, D) -> (N, 1)
    """
    x = as_node(x)
    return Reduce("sum", x, _axes(x, axis), keepdims)


def mean(x: Node, axis=None, keepdims: bool = False) -> Node:
    """Mean of ``x`` over ``axis``: ``sum(x, axis) / (product of the axes' sizes)`` (numpy.mean).

    Args: ``x``, ``axis``, ``keepdims`` as for ``symgrad.sum``. Shape: ``x``'s without the reduced
    axes (kept as 1 with ``keepdims``).

    Example::

        mu = symgrad.mean(x, axis=-1, keepdims=True)   # x (N, D) -> (N, 1)
    """
    x = as_node(x)
    axes = _axes(x, axis)
    count = sp.Mul(*[x.shape[a] for a in axes])
    return Reduce("sum", x, axes, keepdims) / count


def max(x: Node, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    """Maximum of ``x`` over ``axis`` (numpy.max); the gradient goes to the arg-max, shared equally
    among ties.

    Args: ``x``, ``axis``, ``keepdims`` as for ``symgrad.sum``. Shape: ``x``'s without the reduced
    axes (kept as 1 with ``keepdims``).

    Example::

        shift = symgrad.stop_gradient(symgrad.max(z, axis=-1, keepdims=True))   # z (N, C) -> (N, 1)
    """
    x = as_node(x)
    return Reduce("max", x, _axes(x, axis), keepdims)


def stop_gradient(x: Node) -> Node:
    """``x`` itself in forward; no gradient flows through it in backward.

    Args:
        x: a tensor of any shape; the result has the same shape.

    Use it where the result provably does not depend on the value (the max shift of a stable
    softmax), never to hide a term.

    Example::

        e = symgrad.exp(z - symgrad.stop_gradient(symgrad.max(z, axis=-1, keepdims=True)))
    """
    return StopGradient(as_node(x))


def one_hot(index: Input, classes: sp.Symbol) -> Node:
    """The (..., C) indicator ``[index[..., None] == arange(C)]`` of integer class ids (no gradient).

    Args:
        index: an argument declared ``symgrad.index(shape, bound=C)`` (integer ids in range(C)).
        classes: the dimension C, the same as the index's bound.

    Example::

        @symgrad.loss(z=(N, C), y=symgrad.index((N,), bound=C))
        def nll(z, y):
            return -symgrad.sum(symgrad.one_hot(y, C) * z) / N
    """
    return OneHot(index, classes)


def _fn(f, name):
    def wrapped(x: Node) -> Map:
        return elementwise(f, as_node(x))
    wrapped.__name__ = wrapped.__qualname__ = name
    wrapped.__doc__ = f"""Elementwise ``{name}`` of a tensor (SymPy's ``{f.__name__}``; the derivative is SymPy's).

    Args:
        x: a tensor of any shape; the result has the same shape.

    Example::

        y = symgrad.{name}(x)
    """
    return wrapped


exp = _fn(sp.exp, "exp")
log = _fn(sp.log, "log")
tanh = _fn(sp.tanh, "tanh")
sqrt = _fn(sp.sqrt, "sqrt")
abs = _fn(sp.Abs, "abs")  # noqa: A001


def maximum(a, b) -> Map:
    """Elementwise maximum of ``a`` and ``b`` (numpy.maximum); at ties each gets half the gradient.

    Args:
        a, b: tensors or numbers; the shapes broadcast (NumPy rules).

    Example::

        relu = symgrad.maximum(x, 0)
    """
    return elementwise(lambda x, y: sp.Max(x, y), a, b)


def where(cond_fn, a, b, *on: Node) -> Map:
    """Elementwise choice ``a if cond else b`` (a SymPy Piecewise).

    Args:
        cond_fn: a function of one SymPy symbol returning a relation, ``lambda v: v > 0``.
        a, b: the branches: tensors or numbers (a tensor branch may be any expression of tensors).
        on: the tensor the condition is about (one); all shapes broadcast (NumPy rules).

    The derivative is taken branch by branch (the condition has none).

    Example::

        leaky = symgrad.where(lambda v: v > 0, z, 0.01 * z, z)   # leaky ReLU
    """
    return elementwise(lambda c, x, y: sp.Piecewise((x, cond_fn(c)), (y, True)), on[0], a, b)
