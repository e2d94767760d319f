"""Kernel-IR rewrites for accuracy: the same formulas, evaluated with smaller rounding errors.

Both are exact identities (in real arithmetic the kernel computes the same values) and both act on
the kernel IR, not on the derivation, so the chain rule, the explain pages and every user layer that
has the same structure get them alike. Applied by ``lower`` for every target.

1. **Corrected mean** (``corrected_means``, forward): a mean ``m = sum_j v / n`` that the kernel then
   subtracts from ``v`` (LayerNorm's ``xc = x - mean``) is computed as ``m0 + sum_j (v - m0) / n``
   with ``m0 = sum_j v / n``: the corrected two-pass mean (Higham, *Accuracy and Stability of
   Numerical Algorithms*, 2nd ed., section 1.9, eq. 1.6b, the correction term of the two-pass
   variance). ``m0`` carries the rounding of a long sum (a float32 row of 7777.7 with D = 512, or of
   123456.7 with D = 6, has ``m0 != 7777.7``), ``v - m0`` is exact where ``v`` is near ``m0``, and
   the correction brings the mean within rounding of the true one: a constant row gives ``xc = 0``
   exactly, as in torch. Cost: one more sum over data the previous pass just read. The first sum is
   marked ``rough`` when nothing else reads it: its error is what the correction removes, so a
   target may add its terms in the working precision (the C target's laned sums).
2. **Balanced powers** (``balanced_powers``, backward): reverse mode through ``rstd = (var + eps)^(-1/2)``
   gives ``dvar = -drstd rstd^3 / 2`` and ``dx = ... + 2 dvar xc / D``; for rows of size 1e16 in
   float32, ``rstd^3`` (1e-48) underflows and dx is 50 % off although every factor and the result are
   representable. When a backward expression holds a power (>= 2) of a row statistic ``r`` (shape
   smaller than the expression's) and forward defined a normalized value ``w = r * v``
   (``xhat = rstd * xc``), each ``r`` is paired with what it normalizes: ``r v -> w`` in the
   expression, and ``r * sum_j (f v) -> sum_j (f w)`` for a row sum (``rstd * drstd = sum(dxhat xhat)``).
   The row-size values are inlined first (``dvar``). LayerNorm's ``dx`` becomes the standard form
   ``rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))`` (torch's, llm.c's), whose every
   intermediate has the scale of its inputs. Kept only when the largest such power goes down.
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from . import nodes as ir
from .nodes import full_expr, prod, reads, smaller


def _array_symbols(e, shapes):
    return {s for s in e.free_symbols if s.name in shapes}


# -- 1. corrected means (forward) ------------------------------------------------------------------

def corrected_means(f: ir.Function, fresh, notes: list) -> ir.Function:
    """``f`` with its centered means corrected; appends ``("mean", mean, summed value)`` to ``notes``."""
    body = list(f.body)
    producer = {s.out: s for s in body}
    out, changed = [], False
    for i, s in enumerate(body):
        src = _mean_of(s, producer)
        if src is None or not _centers(s.out, src, body[i + 1:]):
            out.append(s)
            continue
        red, size = src
        m0, corr = fresh(s.out + "0"), fresh()
        v = full_expr(red)
        if _only_for(red.out, s, body, f):   # the first pass's sum: the correction takes its error out
            out[out.index(red)] = dataclasses.replace(red, rough=True)
        out += [ir.Elementwise(m0.name, s.shape, sp.Symbol(red.out) / size),
                ir.Reduction(corr.name, red.shape, "sum", v - m0, red.src_shape, red.axes, True),
                ir.Elementwise(s.out, s.shape, m0 + corr / size)]
        f.shapes[m0.name], f.shapes[corr.name] = s.shape, red.shape
        notes.append(("mean", s.out, str(v)))
        changed = True
    return dataclasses.replace(f, body=out) if changed else f


def _only_for(name, s, body, f) -> bool:
    """Whether ``s`` is the only statement of ``f`` that reads array ``name``, which ``f`` neither
    returns nor saves for backward."""
    if name in f.returns or name in f.saved:
        return False
    return not any(t is not s and name in reads(t) for t in body)


def _mean_of(s, producer):
    """``(the sum, n)`` if ``s`` is ``sum_j v / n`` with n the size of the summed axes, else None."""
    if not isinstance(s, ir.Elementwise) or s.temps:
        return None
    num, den = sp.fraction(s.expr)
    red = producer.get(num.name) if isinstance(num, sp.Symbol) else None
    if not isinstance(red, ir.Reduction) or red.kind != "sum" or not red.keepdims:
        return None
    size = prod([red.src_shape[a] for a in red.axes])
    return (red, size) if sp.simplify(den - size) == 0 else None


def _centers(name, src, later) -> bool:
    """Whether a later statement subtracts the mean from the summed values (``v - m``)."""
    v = full_expr(src[0])
    centered = sp.expand(v - sp.Symbol(name))
    for s in later:
        if isinstance(s, (ir.Elementwise, ir.Reduction)):
            for a in sp.preorder_traversal(full_expr(s)):
                if isinstance(a, sp.Add) and sp.expand(a) == centered:
                    return True
    return False


# -- 2. balanced powers (backward) -----------------------------------------------------------------

def balanced_powers(fwd: ir.Function, bwd: ir.Function, fresh, cse, notes: list) -> tuple[ir.Function, ir.Function]:
    """``(forward, backward)``: backward rewritten, both functions' saved lists updated; appends
    ``("powers", statement, r, v, w)`` to ``notes`` for each normalized value ``w = r v`` it used."""
    shapes = {**fwd.shapes, **bwd.shapes}
    rules = {p: sp.Symbol(w) for p, w in _normalized_values(fwd, shapes).items()}
    if not rules:
        return fwd, bwd
    body = list(bwd.body)
    changed = False
    for i in range(len(body)):
        s = body[i]
        if not isinstance(s, ir.Elementwise):
            continue
        new = _balance(s, body[:i], rules, shapes, set(bwd.returns), fresh)
        if new is None:
            continue
        e, extra, used = new
        notes += [("powers", s.out, *u) for u in used]
        temps, e = cse(e)
        body[i] = ir.Elementwise(s.out, s.shape, e, temps)
        for after, r in extra:  # each new row sum right after the one it replaces (the same pass)
            body.insert(next(k for k, x in enumerate(body) if x.out == after) + 1, r)
            shapes[r.out] = bwd.shapes[r.out] = r.shape
        changed = True
    if not changed:
        return fwd, bwd
    body = _live(body, set(bwd.returns))
    needed = set().union(*(ir.reads(s) for s in body)) - {s.out for s in body}
    added = [w.name for w in rules.values() if w.name in needed and w.name not in bwd.saved]
    for n in added:
        bwd.shapes[n] = fwd.shapes[n]
    return (dataclasses.replace(fwd, saved=[n for n in fwd.saved if n in needed] + added),
            dataclasses.replace(bwd, body=body, saved=[n for n in bwd.saved if n in needed] + added))


def _normalized_values(fwd: ir.Function, shapes) -> dict:
    """``{r * v: w}`` for forward values ``w = r * v`` with ``r`` a row statistic of ``v``."""
    out = {}
    for s in fwd.body:
        if not isinstance(s, ir.Elementwise):
            continue
        e = full_expr(s)
        factors = sp.Mul.make_args(e)
        if len(factors) != 2 or not all(isinstance(a, sp.Symbol) and a.name in shapes for a in factors):
            continue
        a, b = factors
        if smaller(shapes[a.name], shapes[b.name]) or smaller(shapes[b.name], shapes[a.name]):
            out[e] = s.out
    return out


def _power(e, shapes, shape) -> int:
    """The largest power of a row statistic (an array smaller than ``shape``) in ``e``."""
    best = 0
    for p in e.atoms(sp.Pow):
        if isinstance(p.base, sp.Symbol) and p.base.name in shapes and p.exp.is_Integer \
                and smaller(shapes[p.base.name], shape):
            best = max(best, abs(int(p.exp)))
    return best


def _balance(s, before, rules, shapes, returns, fresh):
    """``(new expression, [(sum it follows, new row sum)])`` for statement ``s``, or None."""
    e = _inline_row_values(full_expr(s), before, returns, s.shape)
    start = _power(e, shapes, s.shape)
    if start < 2:
        return None
    sums = [x for x in before if isinstance(x, ir.Reduction) and x.kind == "sum" and x.keepdims]
    extra = []
    while True:
        prev = e
        for p, w in rules.items():
            e = e.subs(p, w)
            for red in sums:
                e = _into_sum(e, red, p, w, shapes, before, extra, fresh)
        if e == prev:
            break
    if _power(e, shapes, s.shape) >= start:
        return None
    used = [(str(r), str(p / r), w.name) for p, w in rules.items() if w in e.free_symbols
            for r in sorted(p.free_symbols, key=str) if r in e.free_symbols and smaller(shapes[r.name], s.shape)]
    return min([e, sp.factor_terms(e)], key=sp.count_ops), extra, used


def _into_sum(e, red, p, w, shapes, before, extra, fresh):
    """``r * sum_j (f v)`` in ``e`` -> ``sum_j (f w)`` for a rule ``r v -> w`` with ``r`` constant
    along the summed axes (of the sum's own shape)."""
    s = sp.Symbol(red.out)
    for r in sorted(p.free_symbols, key=str):
        if tuple(shapes[r.name]) != tuple(red.shape) or not smaller(red.shape, red.src_shape):
            continue
        if e.subs(s * r, sp.Dummy()) == e:
            continue
        f2 = sp.expand(full_expr(red) * r).subs(p, w)
        if r in f2.free_symbols:
            continue
        target = _same_sum(f2, red, before + [x for _, x in extra])
        if target is None:
            target = ir.Reduction(fresh().name, red.shape, "sum", f2, red.src_shape, red.axes, red.keepdims)
            extra.append((red.out, target))
        return e.subs(s * r, sp.Symbol(target.out))
    return e


def _same_sum(f, red, stmts):
    for x in stmts:
        if isinstance(x, ir.Reduction) and x.kind == "sum" and x.axes == red.axes and full_expr(x) == f:
            return x
    return None


def _inline_row_values(e, before, returns, shape):
    """``e`` with earlier backward row values (elementwise, rational, smaller than ``shape``) inlined."""
    defs = {x.out: x for x in before if isinstance(x, ir.Elementwise) and x.out not in returns
            and smaller(x.shape, shape) and _rational(full_expr(x))}
    for _ in range(4):
        subs = {sp.Symbol(n): full_expr(x) for n, x in defs.items() if sp.Symbol(n) in e.free_symbols}
        if not subs:
            break
        e = e.xreplace(subs)
    return e


def _rational(e) -> bool:
    return not e.has(sp.Function) and all(p.exp.is_Integer for p in e.atoms(sp.Pow))


def _live(body, returns):
    keep, need = [], set(returns)
    for s in reversed(body):
        if s.out in need:
            keep.append(s)
            need |= ir.reads(s)
    return keep[::-1]
