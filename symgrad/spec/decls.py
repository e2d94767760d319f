"""Declarations of a layer's arguments beyond a plain shape: class ids (``index``), arrays without a
gradient (``constant``), arrays the layer updates in place (``buffer`` with ``update``) and boolean
keywords (``flag``). ``symgrad.layer`` reads them from the decorator and the parameter defaults.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..errors import SpecError
from . import tensor as T


@dataclass(frozen=True)
class ArgDecl:
    shape: tuple
    kind: str = "real"
    requires_grad: bool = True
    bound: sp.Symbol | None = None
    buffer: bool = False
    init: float = 0.0          # a buffer's initial value (what symgrad.torch.Module fills it with)


def buffer(shape: tuple, init: float = 0.0) -> ArgDecl:
    """Declare a real array that the layer updates in place and does not differentiate (BatchNorm's
    running statistics): ``symgrad.update(arg, value)`` in the layer gives its new value.

    Args:
        shape: a tuple of dimensions, e.g. ``(D,)``.
        init: its initial value where symgrad makes one (``symgrad.torch.Module``: a running variance
            starts at 1, a running mean at 0).

    At run time the argument must be a writeable array of the kernel's dtype (never converted: the
    update must reach the caller's array); forward writes it after every check and computation
    succeeded, so a failed call changes nothing.

    Example::

        @symgrad.layer(x=(N, D), avg=symgrad.buffer((D,)))
        def track(x, avg, momentum=0.1):
            return x * 1.0, symgrad.update(avg, (1 - momentum) * avg + momentum * symgrad.mean(x, axis=0))
    """
    return ArgDecl(tuple(shape), "real", False, None, True, float(init))


@dataclass(frozen=True)
class Update:
    """What ``symgrad.update`` returns: a buffer argument and its new value (a tensor)."""

    target: object
    value: object


def update(target, value) -> Update:
    """The new value of a buffer argument (``symgrad.buffer``), written in place by forward.

    Args:
        target: the buffer argument.
        value: a tensor of the buffer's shape (or broadcastable to it), computed from any arguments;
            no gradient flows through it.

    Return it from the layer function after the outputs: ``return y, symgrad.update(running_mean, m)``.
    """
    if not isinstance(target, T.Input) or not getattr(target, "buffer", False):
        raise SpecError(f"update: the target must be a symgrad.buffer argument, got {target!r}")
    return Update(target, value)


def flag(default: bool) -> "T.Flag":
    """A boolean keyword of forward (``training=True``), as a layer parameter's default.

    In formulas it is 1.0 (True) or 0.0 (False); choose with ``symgrad.where(lambda t: t > 0, a, b,
    training)``. The kernel accepts ``True``/``False`` (or 1/0).
    """
    if not isinstance(default, bool):
        raise SpecError(f"flag: the default must be True or False, got {default!r}")
    return FlagDecl(default)


@dataclass(frozen=True)
class FlagDecl:
    default: bool

def index(shape: tuple, bound: sp.Symbol) -> ArgDecl:
    """Declare an argument of integer class ids in ``range(bound)`` (a loss target); never differentiated.

    Args:
        shape: a tuple of dimensions, e.g. ``(N,)``.
        bound: the dimension of the class axis (C); ids outside range(C) raise ValueError at run time.

    Example::

        @symgrad.loss(z=(N, C), y=symgrad.index((N,), bound=C))
        def nll(z, y): ...
    """
    return ArgDecl(tuple(shape), "index", False, bound)


def constant(shape: tuple) -> ArgDecl:
    """Declare a real array argument that gets no gradient (e.g. a regression target or a mask).

    Args:
        shape: a tuple of dimensions, e.g. ``(N, D)`` or ``symgrad.ANYSHAPE``.

    Example::

        @symgrad.loss(pred=(N, D), target=symgrad.constant((N, D)))
        def l1(pred, target):
            return symgrad.mean(symgrad.abs(pred - target))
    """
    return ArgDecl(tuple(shape), "real", False)
