"""One numeric meaning for constants on every target.

A constant in a formula (an integer of any size, a float, ``oo``, ``pi``, ``E``, ``sqrt(2)``, ``2/pi``)
means its exact value rounded to float64 (overflow gives an infinity), and in a float32 kernel that
float64 rounded to float32, which is what NumPy does with a Python number next to a float32 array
(NEP 50: Python scalars are "weak"). Each target prints that value as a literal of its own
(``value64``, ``py_literal``, ``c_literal``), so neither C's integer literals (``2**70`` truncated),
nor its ``M_PI`` (undeclared under ``-std=c99``), nor a bare ``inf`` in Python can change the meaning.

Small integers and rationals (|p|, |q| <= 2**31 - 1) keep their exact spelling: ``2*x``, ``x/2``.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..errors import UnsupportedFunction

SMALL = 2 ** 31 - 1
"""Integers up to this size are exact in C's ``int`` and in float64, and print as they are."""


def is_small(e) -> bool:
    """An integer or rational printed exactly as ``p`` or ``p/q``."""
    return isinstance(e, sp.Rational) and abs(e.p) <= SMALL and e.q <= SMALL


def is_constant(e) -> bool:
    """A numeric value that prints as one literal: a number other than a small one, a number symbol
    (pi, E), or an expression of numbers alone (``sqrt(2)``, ``2/pi``)."""
    if not isinstance(e, sp.Expr) or is_small(e):
        return False
    return bool(e.is_Number or e.is_NumberSymbol or (e.is_number and not e.is_Atom))


def value64(e: sp.Expr) -> float:
    """The float64 meaning of constant ``e``: its exact value rounded to nearest, +-inf beyond range."""
    if e in (sp.oo, sp.S.NegativeInfinity):
        return math.inf if e == sp.oo else -math.inf
    if e is sp.nan:
        return math.nan
    if e is sp.zoo or e.has(sp.zoo):
        raise UnsupportedFunction(f"the constant {e} (complex infinity) has no real value")
    if isinstance(e, sp.Integer):
        try:
            return float(int(e))
        except OverflowError:
            return math.inf if e.p > 0 else -math.inf
    if isinstance(e, sp.Rational):
        try:
            return e.p / e.q  # Python's int true division is correctly rounded
        except OverflowError:
            return math.inf if (e.p > 0) == (e.q > 0) else -math.inf
    v = sp.N(e, 30)
    if not v.is_real:
        raise UnsupportedFunction(f"the constant {e} is not real ({v})")
    return float(v)


def fold_coefficient(e: sp.Mul):
    """``sqrt(2)*x/sqrt(pi)`` -> ``0.797...*x``: the numeric factors of a product as one constant (a
    Float of its float64 value), so both targets multiply by the same single number; None if there is
    nothing to fold."""
    nums = [a for a in e.args if a.is_number]
    if len(nums) < 2 and not any(is_constant(a) and not a.is_Number for a in nums):
        return None
    if not any(is_constant(a) for a in nums):
        return None
    rest = [a for a in e.args if not a.is_number]
    v = value64(sp.Mul(*nums))
    c = sp.Float(v) if math.isfinite(v) else (sp.oo if v > 0 else sp.S.NegativeInfinity) if v == v else sp.nan
    return sp.Mul(c, *rest, evaluate=False)


def value32(v: float) -> float:
    """float64 ``v`` rounded to float32 (as NumPy converts a Python float next to a float32 array)."""
    with np.errstate(over="ignore"):
        return float(np.float32(v))


def py_literal(v: float) -> str:
    """A Python expression for float ``v`` (a weak Python scalar: it keeps a float32 array float32)."""
    if math.isnan(v):
        return "np.nan"
    if math.isinf(v):
        return "np.inf" if v > 0 else "(-np.inf)"
    return repr(v) if v >= 0 else f"({v!r})"


def c_literal(v: float, dtype: str) -> str:
    """A C99 literal of ``v`` in ``dtype`` ("float32": the float32 value with an ``F`` suffix)."""
    if dtype == "float32":
        v = value32(v)
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    text = repr(abs(v))
    if "e" not in text and "." not in text:
        text += ".0"
    text += "F" if dtype == "float32" else ""
    return text if v >= 0 else f"(-{text})"
