"""Output substitution and numerically stable rewrites of derived expressions.

Two general mechanisms, applied to every elementwise expression the engine produces:

1. ``in_terms_of_output(f, z)``: if the derivative of a one-argument formula ``y = f(z)`` can be written
   as a rational function of ``y`` alone (found by SymPy: solve ``y = f(z)`` for ``z``, substitute,
   simplify, and verify numerically), backward uses the saved output instead of ``z``:
   sigmoid' = y (1 - y), tanh' = 1 - y**2, exp' = y. Besides saving a recomputation, this removes
   overflow: exp(-z) / (1 + exp(-z))**2 is NaN at z = -1e4 in floating point, y (1 - y) is not.
2. ``stabilize(expr)``: rewrite patterns that overflow into stable primitives, each rule an identity
   SymPy verifies below (``RULES``): 1/(1+exp(-a)) -> Sigmoid(a), exp(a)/(1+exp(a)) -> Sigmoid(a),
   log(1+exp(a)) -> Softplus(a), log(1+x) -> log1p(x), (1+exp(-a))**-n -> Sigmoid(a)**n and
   exp(-a) Sigmoid(a)**n -> Sigmoid(-a) Sigmoid(a)**(n-1) (the derivative of z/(1+exp(-z)), swish).
"""
from __future__ import annotations

import random

import sympy as sp
from sympy.codegen.cfunctions import log1p

from .budget import bounded


class Sigmoid(sp.Function):
    """sigma(a) = 1 / (1 + exp(-a)), printed in a form that cannot overflow."""

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0]) * (1 - Sigmoid(self.args[0]))

    def _eval_rewrite_as_exp(self, a, **kw):
        return 1 / (1 + sp.exp(-a))

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])

    def _sympystr(self, printer):
        return "sigmoid(%s)" % printer._print(self.args[0])


class Softplus(sp.Function):
    """softplus(a) = log(1 + exp(a)), printed as max(a, 0) + log1p(exp(-|a|))."""

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, a, **kw):
        return sp.log(1 + sp.exp(a))

    def _sympystr(self, printer):
        return "softplus(%s)" % printer._print(self.args[0])


def _is_exp(e):
    return isinstance(e, sp.exp)


def _rewrite_node(e: sp.Expr) -> sp.Expr:
    # (1 + exp(-a))**-n = sigma(a)**n   (n = 1: the logistic function; n = 2: in d/dz of z sigma(z))
    if isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp < 0 and isinstance(e.base, sp.Add):
        terms = e.base.args
        if len(terms) == 2 and sp.Integer(1) in terms:
            other = terms[0] if terms[1] == 1 else terms[1]
            if _is_exp(other):
                return Sigmoid(-other.args[0]) ** (-e.exp)
    if isinstance(e, sp.Mul):
        for ex in [f for f in e.args if _is_exp(f)]:  # exp(-a) sigma(a)**n = sigma(-a) sigma(a)**(n-1)
            for sg in [f for f in e.args if _sigmoid_power(f)]:
                base, n = (sg.base, sg.exp) if isinstance(sg, sp.Pow) else (sg, 1)
                if _is_zero(ex.args[0] + base.args[0]):
                    rest = [f for f in e.args if f is not ex and f is not sg]
                    return sp.Mul(*rest) * Sigmoid(ex.args[0]) * base ** (n - 1)
        exps = [f for f in e.args if _is_exp(f)]
        dens = [f for f in e.args if isinstance(f, sp.Pow) and f.exp == -1 and isinstance(f.base, sp.Add)]
        for ex in exps:
            for den in dens:
                if set(den.base.args) == {sp.Integer(1), ex}:
                    rest = [f for f in e.args if f is not ex and f is not den]
                    return sp.Mul(*rest) * Sigmoid(ex.args[0])
    if isinstance(e, sp.log) and isinstance(e.args[0], sp.Add):
        terms = e.args[0].args
        if len(terms) == 2 and sp.Integer(1) in terms:
            other = terms[0] if terms[1] == 1 else terms[1]
            if _is_exp(other) and not _bounded_exp(other):
                return Softplus(other.args[0])
            return log1p(other)
    return e


def _sigmoid_power(f) -> bool:
    """sigma(a) or sigma(a)**n with n a positive integer."""
    return isinstance(f, Sigmoid) or (isinstance(f, sp.Pow) and isinstance(f.base, Sigmoid)
                                      and f.exp.is_Integer and f.exp > 0)


def _is_zero(e: sp.Expr) -> bool:
    return e == 0 or sp.expand(e) == 0 or bounded(sp.simplify, e, default=e) == 0


def _bounded_exp(e: sp.exp) -> bool:
    """exp(-|a|) and the like cannot overflow: keep log1p(exp(-|a|)) as it is."""
    a = e.args[0]
    real = {s: sp.Dummy(s.name, real=True) for s in a.free_symbols}  # array values are real
    return bool(a.xreplace(real).is_nonpositive)


def stabilize(expr: sp.Expr) -> sp.Expr:
    """Apply the stable rewrites bottom-up until nothing changes."""
    prev = None
    while prev != expr:
        prev = expr
        expr = _bottom_up(expr)
    return expr


def _bottom_up(e):
    if not e.args or isinstance(e, (sp.Symbol, sp.Number)):
        return e
    if isinstance(e, sp.Piecewise):
        new = sp.Piecewise(*[(_bottom_up(x), c) for x, c in e.args])
    else:  # rebuilt only when an argument changed: Max(30 terms) re-checks all pairs when rebuilt
        args = [_bottom_up(a) for a in e.args]
        new = e if all(a is b for a, b in zip(args, e.args)) else e.func(*args)
    return _rewrite_node(new)


RULES = [
    (lambda a: 1 / (1 + sp.exp(-a)), Sigmoid),
    (lambda a: sp.exp(a) / (1 + sp.exp(a)), Sigmoid),
    (lambda a: sp.log(1 + sp.exp(a)), Softplus),
    (lambda a: 1 / (1 + sp.exp(-a)) ** 2, lambda a: Sigmoid(a) ** 2),
    (lambda a: sp.exp(-a) / (1 + sp.exp(-a)) ** 2, lambda a: Sigmoid(-a) * Sigmoid(a)),
]
"""Identities behind the rewrites; tests check each with SymPy and numerically."""


def in_terms_of_output(f: sp.Expr, z: sp.Symbol, y: sp.Symbol, seed: int = 0) -> sp.Expr | None:
    """``g`` with ``g(f(z)) == f'(z)`` and ``g`` rational in ``y`` only, or None.

    Found by SymPy: direct substitution of ``f`` by ``y`` in ``f'`` first, then by solving
    ``y = f(z)`` for ``z``. Every candidate is verified at random points before it is used.
    """
    if f.has(sp.Piecewise, sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign):
        return None  # not injective or not smooth: keep the input
    try:
        return _in_terms_of_output(f, z, y, seed)
    except (TypeError, ValueError, NotImplementedError, ZeroDivisionError):
        return None


def invertible(f: sp.Expr, z: sp.Symbol) -> bool:
    """Whether solving ``y = f(z)`` for ``z`` is worth trying (the derivation budget's structural
    bound): ``z`` occurs once, under at most ``MAX_NESTING`` functions and powers, each power of it
    a square root, square or reciprocal (``z**-78`` has 78 complex roots; ``tanh(tanh(tanh(z)))``
    takes SymPy minutes)."""
    paths = []

    def walk(e, depth):
        if e == z:
            paths.append(depth)
            return
        for a in e.args:
            if isinstance(e, sp.Pow) and a is e.exp and z in e.exp.free_symbols:
                paths.append(MAX_NESTING + 1)  # z in an exponent
                continue
            nested = isinstance(e, (sp.Function, sp.Pow))
            if isinstance(e, sp.Pow) and z in e.base.free_symbols and e.exp not in SMALL_POWERS:
                paths.append(MAX_NESTING + 1)
            walk(a, depth + nested)
    walk(f, 0)
    return len(paths) == 1 and paths[0] <= MAX_NESTING


MAX_NESTING = 2
SMALL_POWERS = {sp.Integer(-1), sp.Integer(2), sp.Integer(-2), sp.Rational(1, 2), sp.Rational(-1, 2)}


def _in_terms_of_output(f, z, y, seed):
    d = sp.diff(f, z)
    if not d.has(sp.Function, sp.Pow) or d.is_polynomial(z):
        return None  # nothing transcendental to save: keep the plain derivative
    cands = []
    direct = d.subs(f, y)
    if z not in direct.free_symbols:
        cands.append(direct)
    elif invertible(f, z):
        sols = bounded(sp.solve, sp.Eq(y, f), z, default=[])
        outs = {bounded(lambda e: sp.factor(sp.simplify(e)), d.subs(z, s)) for s in sols}
        if len(outs) == 1 and None not in outs:
            cands.append(outs.pop())
    for g in cands:
        g = bounded(sp.simplify, g)
        if g is None:
            continue
        g = min([sp.expand(g), bounded(sp.factor, g, default=g)], key=lambda e: (sp.count_ops(e), len(str(e))))
        if z in g.free_symbols or g.has(sp.Function) or not g.is_rational_function(y):
            continue
        if _agrees(d, g.subs(y, f), z, seed):
            return g
    return None


def _agrees(a: sp.Expr, b: sp.Expr, z: sp.Symbol, seed: int) -> bool:
    rng = random.Random(seed)
    others = (a.free_symbols | b.free_symbols) - {z}
    for _ in range(6):
        env = {s: rng.uniform(0.2, 0.9) for s in others}
        env[z] = rng.uniform(-3, 3)
        try:
            va, vb = complex(a.evalf(subs=env)), complex(b.evalf(subs=env))
        except (TypeError, ValueError):
            return False
        if abs(va - vb) > 1e-9 * max(1.0, abs(va)):
            return False
    return True
