"""Expression printers, one class per target (after SymPy's ``printing/numpy.py`` and ``c.py``).

Target differences are data: the functions each target knows, and how a stable primitive
(``Sigmoid``, ``Softplus``) is spelled there.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.c import C99CodePrinter as _SympyC99
from sympy.printing.numpy import NumPyPrinter as _SympyNumPy
from sympy.printing.str import StrPrinter

from ..errors import UnsupportedFunction
from .numbers import c_literal, fold_coefficient, is_constant, py_literal, value64

C_TYPES = (("f32", "float32", "float"), ("f64", "float64", "double"))
"""The real types of the C target: (function suffix, NumPy dtype, C type), one variant each."""


class NumpyPrinter(_SympyNumPy):
    """Prints with the ``np.`` prefix; elementwise Max/Min/Piecewise; stable sigmoid/softplus."""

    def __init__(self, sizes=()):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False,
                          "inline": True})
        self.sizes = frozenset(sizes)   # dimension names: 1/D prints as _inv(D) (inf, not an error, at D = 0)

    def _print(self, expr, **kwargs):
        if is_constant(expr):  # one literal, the same value as the C target's (codegen/numbers.py)
            return py_literal(value64(expr))
        if isinstance(expr, sp.Mul) and (folded := fold_coefficient(expr)) is not None:
            return self._print(folded, **kwargs)
        text = super()._print(expr, **kwargs)
        if _scalar_call(expr) and "np." in text:  # np.sqrt(N) is a strong np.float64: keep float32 float32
            return f"float({text})"
        return text

    def _module_format(self, fqn, register=True):
        if "." in fqn and not fqn.startswith("numpy."):  # math.gamma, scipy.special...: not vectorized / not imported
            raise UnsupportedFunction(f"{fqn.rsplit('.', 1)[-1]} has no NumPy equivalent")
        s = super()._module_format(fqn, register)
        return "np." + s[len("numpy."):] if s.startswith("numpy.") else s

    def _nested(self, fn, args):
        args = [self._print(a) for a in args]
        out = args[0]
        for a in args[1:]:
            out = f"np.{fn}({out}, {a})"
        return out

    def _print_Max(self, e):
        return self._nested("maximum", e.args)

    def _print_Min(self, e):
        return self._nested("minimum", e.args)

    def _print_Piecewise(self, e):
        if e.args[-1].cond != True:  # noqa: E712 - SymPy's true
            raise ValueError(f"Piecewise without a default branch: {e}")
        def branch(v):  # a bare number would make np.where's result int64/float64 whatever the dtype
            return f"dtype.type({self._print(v)})" if v.is_Number else self._print(v)
        out = branch(e.args[-1].expr)
        for val, cond in reversed(e.args[:-1]):
            out = f"np.where({self._print(cond)}, {branch(val)}, {out})"
        return out

    def _print_Heaviside(self, e):
        h0 = e.args[1] if len(e.args) > 1 else sp.Rational(1, 2)
        return f"np.heaviside({self._print(e.args[0])}, {self._print(h0)})"

    def _print_PairStep(self, e):  # spec/minmax.py: SymPy skips a renamed subclass's parent printer
        return self._print_Heaviside(e)

    def _print_Sigmoid(self, e):
        return f"_sigmoid({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"np.logaddexp(0, {self._print(e.args[0])})"

    def _print__Copy(self, e):
        return f"np.array({self._print(e.args[0])}, dtype=dtype)"

    def _print_Rational(self, e):
        return f"{e.p}/{e.q}"

    def _print_Integer(self, e):
        return str(e.p)

    def _print_Mul(self, e):
        # 1/(H*N*W) of sizes prints as _inv(H*N*W): inf, not ZeroDivisionError, at an empty axis
        if self.sizes:
            num, den = e.as_numer_denom()
            if den != 1 and den.free_symbols and all(
                    f.is_Integer or (isinstance(f, sp.Symbol) and f.name in self.sizes)
                    or (f.is_Pow and isinstance(f.base, sp.Symbol) and f.base.name in self.sizes and f.exp.is_Integer)
                    for f in sp.Mul.make_args(den)):
                inv = f"_inv({self._print(den)})"
                return inv if num == 1 else f"{self.parenthesize(num, 50)}*{inv}"
        return super()._print_Mul(e)

    def _print_Pow(self, e, rational=False):
        if e.exp == -1 and isinstance(e.base, sp.Symbol) and e.base.name in self.sizes:
            return f"_inv({e.base.name})"
        if e.exp == -1:
            return f"1/{self.parenthesize(e.base, 50)}"
        return super()._print_Pow(e, rational)

    def _print_Float(self, e):
        return py_literal(value64(e))


def _scalar_call(e) -> bool:
    """A function of dimensions and hyperparameters only (real scalar symbols, never arrays)."""
    return isinstance(e, (sp.Function, sp.Pow)) and bool(e.free_symbols) and \
        all(s.is_real for s in e.free_symbols)


class MathPrinter(StrPrinter):
    """Plain-text formulas for docstrings and headers."""

    def _print__Copy(self, e):
        return f"copy({self._print(e.args[0])})"

    def _print_Sigmoid(self, e):
        return f"sigmoid({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"softplus({self._print(e.args[0])})"

    def _print_PairStep(self, e):
        return f"Heaviside({self._print(e.args[0])})"

    def _print_Float(self, e):
        return repr(float(e))


def pycode(e, sizes=()) -> str:
    """NumPy source of ``e``; ``sizes``: names of dimensions (see ``NumpyPrinter``)."""
    try:
        return NumpyPrinter(sizes).doprint(e)
    except UnsupportedFunction:
        raise
    except NotImplementedError as exc:  # SymPy's PrintMethodNotImplementedError
        name = str(exc).split(": ", 1)[-1].splitlines()[0]
        raise UnsupportedFunction(f"{name} is not supported by the NumPy target") from None


def pyscalar(e) -> str:
    """A scalar of hyperparameters and dimensions as a Python float (weak under NEP 50)."""
    text = pycode(e)
    return text if _scalar_call(sp.sympify(e)) and "np." in text else f"float({text})"


def mathstr(e) -> str:
    return MathPrinter({"order": "none"}).doprint(e)


class CPrinter(_SympyC99):
    """C99 expressions for one real type (after SymPy's ``printing/c.py``).

    ``dtype`` "float32" prints ``expf``/``tanhf``/``1.0F`` (SymPy's type aliases), "float64" ``exp``...;
    ``refs`` maps a symbol name to its C spelling (``x[i0*D + i1]``, ``((double)N)``). Max/Min and the
    stable primitives call static inline helpers of the generated file (``sg_max_f32``,
    ``sg_sigmoid_f64``, ...), which propagate NaN like NumPy and never overflow.
    """

    SUFFIX = {dtype: sfx for sfx, dtype, _ in C_TYPES}

    def __init__(self, dtype: str = "float64", refs: dict | None = None, inline_math: bool = False):
        from sympy.codegen.ast import float32, float64, real
        super().__init__({"type_aliases": {real: float32 if dtype == "float32" else float64}})
        self.dtype, self.sfx, self.refs = dtype, self.SUFFIX[dtype], dict(refs or {})
        self.inline_math = inline_math  # sg_exp_*/sg_tanh_* of the layer template: loops vectorize
        self.real = "float" if dtype == "float32" else "double"

    def _print(self, expr, **kwargs):
        if is_constant(expr):  # never M_PI, a truncated integer literal or an overflowing float literal
            return c_literal(value64(expr), self.dtype)
        if isinstance(expr, sp.Mul) and (folded := fold_coefficient(expr)) is not None:
            return self._print(folded, **kwargs)
        return super()._print(expr, **kwargs)

    def _print_Symbol(self, e):
        return self.refs.get(e.name, e.name)

    def _helper(self, fn, args):
        return f"sg_{fn}_{self.sfx}({', '.join(self._print(a) for a in args)})"

    def _nested(self, fn, args):
        out = self._print(args[0])
        for a in args[1:]:
            out = f"sg_{fn}_{self.sfx}({out}, {self._print(a)})"
        return out

    def _print_Max(self, e):
        return self._nested("max", e.args)

    def _print_Min(self, e):
        return self._nested("min", e.args)

    def _print_Sigmoid(self, e):
        return self._helper("sigmoid", e.args)

    def _print_exp(self, e):  # float: the generated file's branch-free exp, which loops vectorize
        return self._helper("exp", e.args) if self.inline_math else super()._print_Function(e)

    def _print_tanh(self, e):
        return self._helper("tanh", e.args) if self.inline_math else super()._print_Function(e)

    def _print_Softplus(self, e):
        return self._helper("softplus", e.args)

    def _print_Heaviside(self, e):
        h0 = e.args[1] if len(e.args) > 1 else sp.Rational(1, 2)
        return self._helper("heaviside", (e.args[0], h0))

    def _print_sign(self, e):
        return self._helper("sign", e.args)

    def _print_PairStep(self, e):
        return self._print_Heaviside(e)

    def _print__Copy(self, e):
        return self._print(e.args[0])

    def _print_Piecewise(self, e):
        if e.args[-1].cond != True:  # noqa: E712 - SymPy's true
            raise ValueError(f"Piecewise without a default branch: {e}")
        out = self._print(e.args[-1].expr)
        for val, cond in reversed(e.args[:-1]):
            out = f"(({self._print(cond)}) ? ({self._print(val)}) : ({out}))"
        return out

    def _print_Pow(self, e):
        b, x = e.args
        if x.is_Integer and 1 <= abs(int(x)) <= 3:
            base = self.parenthesize(b, 1000)  # tighter than any operator
            prod = "*".join([base] * abs(int(x)))
            one = "1.0F" if self.dtype == "float32" else "1.0"
            return f"({prod})" if x > 0 else f"({one}/({prod}))"
        return super()._print_Pow(e)


def ccode(e, dtype: str = "float64", refs: dict | None = None, inline_math: bool = False) -> str:
    return CPrinter(dtype, refs, inline_math).doprint(e)
