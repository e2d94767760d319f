"""Algebra of row reductions: the simplification that turns LayerNorm's backward into its compact form.

When reverse mode sums a contribution over broadcast axes (``sum_j c_ij``), the summand is inlined
through the elementwise nodes that vary along those axes, expanded, and each term split into a
factor constant along the axes (pulled out of the sum) and a varying product (summed). A varying
product that is exactly a value some existing reduction already sums is replaced by that reduction.
So ``sum_j (x_ij - mean_i)`` becomes ``sum_j x_ij - D mean_i = t0_i - D t0_i / D = 0`` and drops out:
the gradient of LayerNorm's mean needs no reduction of its own, and
``dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))`` is what remains.

The expanded form is used only when it needs no more new reductions than the plain sum.
"""
from __future__ import annotations

import sympy as sp

from ..spec import tensor as T

MAX_TERMS = 12
MAX_DEPTH = 4


class ReductionTable:
    """The graph's reductions and elementwise values, looked up by what they compute."""

    def __init__(self, nodes):
        self.by_sym: dict[sp.Symbol, T.Node] = {}
        self.sums: dict[tuple, T.Node] = {}
        self.maps: dict[sp.Expr, T.Node] = {}
        for n in nodes:
            self.add(n)

    def add(self, n: T.Node):
        self.by_sym[n.sym] = n
        for a in n.args:
            self.by_sym.setdefault(a.sym, a)
        if isinstance(n, T.Reduce) and n.kind == "sum" and n.keepdims:
            self.sums.setdefault((n.args[0].id, n.axes), n)
        if isinstance(n, T.Map) and n.args:
            self.maps.setdefault(n.expr, n)


def _varies(node: T.Node, axes, ndim) -> bool:
    off = ndim - len(node.shape)
    return any(a - off >= 0 and node.shape[a - off] != 1 for a in axes)


def simplify_sum(c: T.Node, axes: tuple, table: ReductionTable) -> T.Node:
    """``sum(c, axes, keepdims=True)``, simplified when that needs fewer new reductions."""
    plain = T.Reduce("sum", c, axes, True)
    if not isinstance(c, T.Map):
        return plain
    ndim = len(c.shape)
    for a in c.args:
        table.by_sym.setdefault(a.sym, a)

    def inline(e, depth):
        subs = {}
        for s in e.free_symbols:
            n = table.by_sym.get(s)
            if isinstance(n, T.Map) and depth < MAX_DEPTH and _varies(n, axes, ndim) and _rational(n):
                for a in n.args:
                    table.by_sym.setdefault(a.sym, a)
                subs[s] = inline(n.expr, depth + 1)
        return e.xreplace(subs) if subs else e

    expanded = _expand(inline(c.expr, 0))
    terms = sp.Add.make_args(expanded)
    if len(terms) > MAX_TERMS:
        return plain
    size = sp.Mul(*[c.shape[a] for a in axes])
    groups: dict[sp.Expr, sp.Expr] = {}
    for term in terms:
        const, vary = [], []
        for f in sp.Mul.make_args(term):
            nodes = [table.by_sym.get(s) for s in f.free_symbols]
            (vary if any(n is not None and _varies(n, axes, ndim) for n in nodes) else const).append(f)
        v = sp.Mul(*vary)
        groups[v] = groups.get(v, 0) + sp.Mul(*const)
    new, pieces, args = 0, [], []
    for v, k in groups.items():
        k = sp.factor_terms(k)
        if k == 0:
            continue
        if v == 1:
            pieces.append(size * k)
            args += _nodes_of(k, table)
            continue
        red = _existing_sum(v, axes, table)
        if red is None:
            new += 1
            src = table.maps.get(v)  # reuse a value computed already
            if src is None:
                src = T.Map(v, _nodes_of(v, table))
            red = T.Reduce("sum", src, axes, True)
            table.add(red)
        pieces.append(k * red.sym)
        args += [red] + _nodes_of(k, table)
    if new > 1:
        return plain
    total = sp.Add(*pieces)
    rational = _expand(_inline_rational(total, table))
    if sp.count_ops(rational) < sp.count_ops(total):  # e.g. 2 dvar mean - 2 dvar t0 / D = 0
        total = rational
        args = _nodes_of(total, table)
    return T.Map(total, args, shape=plain.shape)


def _rational(n: T.Map) -> bool:
    """Only values rational in others are looked through (x - mean, dxhat rstd + ...): inlining a
    transcendental one (e = exp(z - m)) would recompute it."""
    return not n.expr.has(sp.Function) and all(x.exp.is_integer for x in n.expr.atoms(sp.Pow))


def _expand(e):
    """Distribute products over sums only: exp(z - m) must stay whole (exp(z) alone overflows)."""
    return sp.expand(e, power_exp=False, power_base=False, log=False)


def _inline_rational(e, table, depth=0):
    """``e`` with elementwise nodes that are rational in other values (mean = t0 / D) replaced by
    their formulas, so that terms which cancel can be seen to cancel."""
    subs = {}
    for s in e.free_symbols:
        n = table.by_sym.get(s)
        if isinstance(n, T.Map) and depth < MAX_DEPTH and _rational(n):
            subs[s] = _inline_rational(n.expr, table, depth + 1)
    return e.xreplace(subs) if subs else e


def _nodes_of(e, table) -> list:
    return [table.by_sym[s] for s in sorted(e.free_symbols, key=str) if s in table.by_sym]


def _existing_sum(v, axes, table):
    n = table.by_sym.get(v) if isinstance(v, sp.Symbol) else None
    if n is not None:
        return table.sums.get((n.id, axes))
    return None
