"""Max and Min of many terms as balanced trees of two-argument nodes.

SymPy's n-ary ``Max`` compares every pair of its arguments when it is built (``_find_localzeros``)
and differentiates argument ``k`` as ``Heaviside(a_k - Max(all others))``, which rebuilds an
(n-1)-ary Max per argument: ``diff(Max(tanh(z), ..., tanh(30*z)), z)`` takes 90 s. ``PairMax`` and
``PairMin`` are SymPy's Max/Min restricted to two arguments that never flatten into an n-ary one,
so a Max of n terms is a tree of depth log2(n) and its derivative has n products of log2(n)
Heavisides. They are subclasses of ``sympy.Max``/``Min``: printers, the derivative rule
(``Max.fdiff``, Heaviside(a - b) with H(0) = 1/2, so ties share the gradient) and every
``isinstance(e, sympy.Max)`` treat them as SymPy's own.
"""
from __future__ import annotations

import sympy as sp


class PairStep(sp.Heaviside):
    """``Heaviside(a - b)`` from a PairMax/PairMin derivative, evaluated only at numbers: SymPy's own
    Heaviside asks the sign of ``a - b`` on every rebuild, which walks the whole Max tree below."""

    def __new__(cls, arg, H0=sp.S.Half, **options):  # Heaviside.__new__ recurses for subclasses
        return sp.Function.__new__(cls, arg, H0, **options)

    @classmethod
    def eval(cls, arg, H0=sp.S.Half):
        if arg.is_Number:
            return sp.Heaviside(arg, H0)
        return None


class PairMax(sp.Max):
    """``max(a, b)`` that stays a two-argument node."""

    def __new__(cls, a, b, **assumptions):
        a, b = sp.sympify(a), sp.sympify(b)
        if a == b:
            return a
        if a.is_number and b.is_number:
            return cls._plain(a, b)
        obj = sp.Expr.__new__(cls, *sp.ordered([a, b]))
        obj._argset = frozenset((a, b))
        return obj

    _plain = staticmethod(sp.Max)

    def fdiff(self, argindex):
        a, b = self.args if argindex == 1 else self.args[::-1]
        return PairStep(a - b)


class PairMin(sp.Min):
    """``min(a, b)`` that stays a two-argument node."""

    __new__ = PairMax.__new__
    _plain = staticmethod(sp.Min)

    def fdiff(self, argindex):
        a, b = self.args if argindex == 1 else self.args[::-1]
        return PairStep(b - a)


def tree(cls, args):
    """A balanced tree of ``cls`` (PairMax or PairMin) over ``args``."""
    args = list(args)
    if not args:
        raise ValueError("max/min of no arguments")
    if len(args) == 1:
        return sp.sympify(args[0])
    mid = len(args) // 2
    return cls(tree(cls, args[:mid]), tree(cls, args[mid:]))


def pairwise(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every Max/Min of more than two arguments as a balanced tree of pairs."""
    if not expr.has(sp.Max, sp.Min):
        return expr
    reps = {}
    for e in sp.postorder_traversal(expr):
        if isinstance(e, (sp.Max, sp.Min)) and not isinstance(e, (PairMax, PairMin)) and len(e.args) > 2:
            reps[e] = tree(PairMax if isinstance(e, sp.Max) else PairMin, [pairwise(a) for a in e.args])
    return expr.xreplace(reps) if reps else expr


def max_of(*args):
    """``Max`` for formula text: a balanced tree of two-argument maxima."""
    return tree(PairMax, args)


def min_of(*args):
    """``Min`` for formula text: a balanced tree of two-argument minima."""
    return tree(PairMin, args)
