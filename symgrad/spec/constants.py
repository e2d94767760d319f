"""Constants in a formula must be evaluable: ``9**9**9`` or ``exp(exp(exp(100)))`` are a SpecError
before anything evaluates them (SymPy would compute all 370 million digits of ``9**387420489``).

Every numeric subexpression is estimated bottom-up in floating point with an unbounded exponent
(mpmath, 15 digits): a power ``b**x`` or an ``exp``/``sinh``/``cosh`` whose result would exceed
``10**LIMIT`` in magnitude is refused from the magnitude of its arguments alone, before it is
computed. Constants up to that size are fine: past float64's range they mean an infinity
(``symgrad/codegen/numbers.py``).
"""
from __future__ import annotations

import mpmath
import sympy as sp

from ..errors import SpecError

LIMIT = 4000
"""Largest accepted magnitude of a constant, as a power of ten (float64 stops near 10**308)."""

_GROWTH = (sp.exp, sp.sinh, sp.cosh)


def check_constants(expr, where: str) -> None:
    """Raise SpecError (naming ``where``) if a numeric subexpression of ``expr`` is absurdly large."""
    _estimate(sp.sympify(expr), where)


def _estimate(e, where):
    """log10 of |e| for a numeric ``e`` (None for a non-numeric one); raises on absurd sizes."""
    if e.is_Atom:
        if e.is_Number and e.is_finite and e != 0:
            return float(mpmath.log10(abs(mpmath.mpf(sp.Float(e, 15)._mpf_))))
        return 0.0 if e.is_number else None
    logs = [_estimate(a, where) for a in e.args]
    if not e.is_number:
        return None
    if isinstance(e, sp.Pow):
        b, x = e.args
        lb = logs[0]
        xv = float(sp.N(x, 15)) if logs[1] is not None and logs[1] < 300 else float("inf")
        size = abs(xv) * abs(lb) if lb else 0.0
        if size > LIMIT and not (b.is_number and abs(sp.N(b, 15)) == 1):
            raise SpecError(f"{where}: the constant {_short(e)} has about {_digits(size)} digits; "
                            f"constants must stay below 10**{LIMIT}")
    elif isinstance(e, _GROWTH):
        if logs[0] is not None and logs[0] > 4:  # |arg| > 10**4: exp(arg) > 10**4342
            raise SpecError(f"{where}: the constant {_short(e)} is larger than 10**{LIMIT}")
    v = sp.N(e, 15)
    if v.is_Number and v.is_finite and v != 0:
        return float(mpmath.log10(abs(mpmath.mpf(sp.Float(sp.re(v), 15)._mpf_)))) if v.is_real else 0.0
    return 0.0


def _digits(size: float) -> str:
    return f"{size:.3g}" if size < 1e300 else "inf"


def _short(e) -> str:
    text = sp.sstr(e)
    return text if len(text) < 60 else text[:57] + "..."
