"""How names and update rules are typeset on the board (LaTeX), as a textbook writes them.

- A gradient ``dX`` is ``d`` followed by X typeset: ``dxhat`` is d\\hat{x} (not \\hat{dx}, "the hat of
  dx"), ``dgamma`` is d\\gamma, ``dmean`` is d\\mathrm{mean}.
- A name of several letters that is not a Greek letter (``mean``, ``rstd``, ``eps``, ``gates``) is one
  upright word, \\mathrm{mean}, not the italic product m·e·a·n.
- An array named ``tanh_c`` (the value tanh(c)) is (\\tanh c)_{n,k}: not tanh to the power c.
- ``textbook(expr, first)``: an update rule's right side as papers write it, β₁m + (1 − β₁)g rather
  than SymPy's (1 − β₁)(−m + g) + m: a polynomial in the arrays is collected by monomial with factored
  coefficients, the term of the assigned array first, coefficients before the arrays. The result is an
  unevaluated SymPy object equal to ``expr``; print it with ``order="none"``.
"""
from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter, greek_letters_set

FUNCTIONS = {"tanh", "sigmoid", "exp", "log", "sin", "cos", "relu"}
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_GREEK = set(greek_letters_set) | {"lamda"}


def _default(name: str) -> str:
    return LatexPrinter()._print(sp.Symbol(name))


def word_latex(name: str) -> str:
    """A name without underscores: Greek and one-letter names as SymPy prints them, gradients as d X,
    ``Xhat`` as \\hat{X}, other words upright."""
    letters = name.rstrip("0123456789")
    if not _PLAIN.match(name) or len(letters) <= 1 or letters.lower() in _GREEK:
        return _default(name)
    if name[0] == "d" and len(name) > 1:
        return "d" + word_latex(name[1:])
    if name.endswith("hat") and len(name) > 3:
        return r"\hat{%s}" % word_latex(name[:-3])
    return r"\mathrm{%s}" % name


def _tag(tag: str) -> str:
    return tag if len(tag) == 1 or tag.isdigit() else r"\mathrm{%s}" % tag.replace("_", ",")


def symbol_latex(name: str):
    """LaTeX of a plain symbol's name, or None to let SymPy print it."""
    head, _, tag = name.partition("_")
    if not _PLAIN.match(head) or (tag and not re.match(r"^[A-Za-z0-9_]+$", tag)):
        return None
    return word_latex(head) + ("_{%s}" % _tag(tag) if tag else "")


def indexed_latex(name: str, idx: str):
    """LaTeX of the element ``name[idx]`` (``idx`` already printed), or None to let SymPy print it."""
    head, _, tag = name.partition("_")
    if not _PLAIN.match(head) or (tag and not re.match(r"^[A-Za-z0-9_]+$", tag)):
        return None
    grad = head[0] == "d" and head[1:] in FUNCTIONS
    fn = head[1:] if grad else head
    if fn in FUNCTIONS and tag:
        op = r"\%s" % fn if fn in ("tanh", "exp", "log", "sin", "cos") else r"\operatorname{%s}" % fn
        return r"%s{\left(%s %s\right)}_{%s}" % ("d" if grad else "", op, _tag(tag), idx)
    if tag:
        return r"{{%s}^{\mathrm{%s}}_{%s}}" % (word_latex(head), tag.replace("_", ","), idx)
    return r"{%s}_{%s}" % (word_latex(head), idx)


def textbook(expr, first=None, arrays=None):
    """``expr`` ordered as a textbook writes an update: see the module docstring."""
    expr = sp.sympify(expr)
    arrays = [a for a in (arrays if arrays is not None else expr.free_symbols) if isinstance(a, sp.Symbol)]
    arrays = sorted(set(arrays), key=lambda a: (a != first, a.name, str(a.assumptions0)))
    terms = None
    try:
        poly = sp.Poly(sp.expand(expr), *arrays) if arrays else None
    except sp.PolynomialError:
        poly = None
    if poly is not None and poly.total_degree() >= 1 and all(c.free_symbols.isdisjoint(arrays) for c in poly.coeffs()):
        terms = []
        for mono, coeff in poly.terms():
            base = sp.Mul(*[a ** k for a, k in zip(arrays, mono)])
            terms.append((base, min((sp.factor(coeff), coeff), key=sp.count_ops)))
        if len(terms) == 1:
            return expr                                  # one term: nothing to order
    if terms is None:
        parts = list(sp.Add.make_args(expr))
        parts.sort(key=lambda t: (not (first is not None and t == first),
                                  not (first is not None and t.has(first)), sp.default_sort_key(t)))
        return sp.Add(*parts, evaluate=False) if len(parts) > 1 else expr
    terms.sort(key=lambda bc: (not (first is not None and bc[0].has(first)), sp.default_sort_key(bc[0])))
    out = []
    for base, coeff in terms:
        if coeff == 1 or base == 1:
            out.append(coeff * base)
            continue
        num, rest = coeff.as_coeff_Mul()     # -eta g as Mul(-1, eta, g): printed "- eta g", not "+ -eta g"
        factors = [f for f in (num, rest, base) if f != 1]
        out.append(sp.Mul(*factors, evaluate=False) if len(factors) > 1 else factors[0])
    return sp.Add(*out, evaluate=False) if len(out) > 1 else out[0]
