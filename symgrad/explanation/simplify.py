"""Simplifying a composed gradient for print, by SymPy: the shortest of a few verified rewrites.

Candidates for ``expr``: ``sympy.simplify(expr)``; if it branches on the sign of one value v (``Abs``,
``sign``, ``Heaviside`` of v), each branch simplified separately under ``v > 0`` and ``v < 0`` when
SymPy shows they agree; and a form with ``exp(v)`` written through ``sigma = sigma(v)``
(``exp(v) = sigma / (1 - sigma)``) when that removes every exponential (BCE on logits: ``sigma(z) - y``).
Every candidate must keep the free symbols of ``expr`` (SymPy can move a bound index out of a ``Sum``
of a ``Piecewise``) and equal ``expr`` at random points before it can be chosen; the test suite
evaluates the chosen form against the kernels as well.
"""
from __future__ import annotations

import random
from functools import lru_cache

import sympy as sp

from ..derive.stable import Sigmoid


def nice(e: sp.Expr) -> sp.Expr:
    """The shorter of ``e`` and its factored form, a leading minus moved into a factor."""
    f = sp.factor(e)
    if isinstance(f, sp.Mul) and f.could_extract_minus_sign():
        adds = [a for a in f.args if isinstance(a, sp.Add)]
        if len(adds) == 1:
            f = sp.Mul(*[a for a in (-f).args if a != adds[0]]) * (-adds[0])   # ==, not `is`: SymPy's cache
    return min([f, e], key=_cost)


def _cost(e):
    return (sp.count_ops(e), len(str(e)))


@lru_cache(maxsize=512)
def simplest(expr: sp.Expr) -> sp.Expr:
    cands = [expr, nice(sp.simplify(expr))]
    split = _sign_split(expr)
    if split is not None:
        cands.append(split)
    for c in list(cands):
        s = _through_sigmoid(c)
        if s is not None:
            cands.append(s)
    good = [c for c in cands if c is expr or (c.free_symbols <= expr.free_symbols and not c.has(sp.nan, sp.zoo)
                                              and agrees(expr, c))]
    return min(good, key=_cost)


def _sign_split(expr):
    vs = {a.args[0] for a in expr.atoms(sp.Abs, sp.sign, sp.Heaviside)}
    if len(vs) != 1:
        return None
    (v,) = vs
    pos, neg = sp.Dummy("p", positive=True), sp.Dummy("q", negative=True)
    e1 = sp.simplify(expr.xreplace({v: pos})).xreplace({pos: v})
    e2 = sp.simplify(expr.xreplace({v: neg})).xreplace({neg: v})
    if sp.simplify(e1 - e2) != 0:
        return None
    return min([e1, e2], key=_cost)


def _through_sigmoid(expr):
    exps = {a.args[0] for a in expr.atoms(sp.exp)}
    if len(exps) != 1:
        return None
    (v,) = exps
    s = sp.Dummy("sigma", positive=True)
    r = sp.factor(sp.simplify(expr.replace(lambda a: isinstance(a, sp.exp),
                                           lambda a: (s / (1 - s)) ** sp.simplify(a.args[0] / v))))
    if r.has(sp.exp) or not r.has(s):
        return None
    return nice(sp.expand(r)).xreplace({s: Sigmoid(v)})


def agrees(a, b, tries: int = 5) -> bool:
    rng = random.Random(0)
    atoms = sorted((a.free_symbols | b.free_symbols | a.atoms(sp.Indexed) | b.atoms(sp.Indexed)), key=str)
    atoms = [x for x in atoms if not isinstance(x, sp.IndexedBase)
             and not (isinstance(x, sp.Symbol) and x.is_integer and not x.is_positive)]
    for _ in range(tries):
        env = {x: sp.Integer(rng.randint(2, 5)) if x.is_integer else sp.Float(rng.uniform(-2, 2)) for x in atoms}
        try:
            va = complex(a.xreplace(env).doit().rewrite(sp.exp).evalf())
            vb = complex(b.xreplace(env).doit().rewrite(sp.exp).evalf())
        except (TypeError, ValueError):
            return False
        if abs(va - vb) > 1e-9 * max(1.0, abs(va)):
            return False
    return True
