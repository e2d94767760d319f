"""Display-only SymPy objects of the explanations: how a textbook writes them in text and LaTeX.

``ReduceMax`` (max over an index), ``Partial`` (a fraction of partials), ``OpApply`` (fallback for an
unknown node kind), ``Blocks`` (``[a | b | c]``, arrays side by side) and ``Word`` (a name shown whole
and upright, ``global_step``). The numeric evaluator (``symgrad.explanation.evaluate``) knows ``ReduceMax``
and ``Blocks``; the others appear only on the left of an equation or in prose.
"""
from __future__ import annotations

import sympy as sp


class ReduceMax(sp.Function):
    """``max_j body``: the maximum of ``body`` over index ``j`` (printed like a textbook)."""

    nargs = 2

    def _latex(self, printer):
        return r"\max_{%s} %s" % (printer._print(self.args[1]), printer.parenthesize(self.args[0], 1000))

    def _sympystr(self, printer):
        return "max_%s(%s)" % (printer._print(self.args[1]), printer._print(self.args[0]))

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        body = printer._print(self.args[0])
        head = prettyForm("max_%s" % printer._print(self.args[1]))
        return prettyForm(*head.right(prettyForm(*body.parens())))


class Partial(sp.Expr):
    """The partial derivative of ``y`` by ``x`` as a textbook writes it: a fraction of two partials.

    Display only (an equation's left side); ``sympy.Derivative`` would print d/dx (y).
    """

    def __new__(cls, y, x):
        return sp.Expr.__new__(cls, sp.sympify(y), sp.sympify(x))

    def _latex(self, printer):
        return r"\frac{\partial %s}{\partial %s}" % (printer._print(self.args[0]), printer._print(self.args[1]))

    def _sympystr(self, printer):
        return "∂%s/∂%s" % (printer._print(self.args[0]), printer._print(self.args[1]))

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        num = prettyForm(*printer._print(self.args[0]).left("∂"))
        den = prettyForm(*printer._print(self.args[1]).left("∂"))
        return num / den


class OpApply(sp.Function):
    """Display fallback for a node kind this module has no notation for: ``op(args)``."""

    def _latex(self, printer):
        return r"\operatorname{%s}\left(%s\right)" % (
            str(self.args[0]).replace("_", r"\_"), ", ".join(printer._print(a) for a in self.args[1:]))


class Blocks(sp.Function):
    """``[a | b | c]``: arrays side by side along the last axis (the gradient of stacked slices)."""

    def _latex(self, printer):
        return r"\left[\, %s \,\right]" % r" \;\middle|\; ".join(printer._print(a) for a in self.args)

    def _sympystr(self, printer):
        return "[%s]" % " | ".join(printer._print(a) for a in self.args)

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        return prettyForm("[%s]" % " | ".join(a.name if isinstance(a, sp.Symbol) else sp.pretty(a, use_unicode=True)
                                              for a in self.args))


class Word(sp.Symbol):
    """A symbol shown as its whole name, upright (``global_step``, ``amsgrad``), not as x with a subscript."""

    def _latex(self, printer):
        return r"\mathrm{%s}" % self.name.replace("_", r"\_")

    def _sympystr(self, printer):
        return self.name

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        return prettyForm(self.name)


class MeanOver(sp.Function):
    """``mean_j(body)``: the mean of ``body`` over index ``j`` (a textbook's mean(·); display and proofs)."""

    nargs = 2

    def _latex(self, printer):
        return r"\operatorname{mean}_{%s}\left(%s\right)" % (printer._print(self.args[1]), printer._print(self.args[0]))

    def _sympystr(self, printer):
        return "mean_%s(%s)" % (printer._print(self.args[1]), printer._print(self.args[0]))

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        body = printer._print(self.args[0])
        head = prettyForm("mean_%s" % printer._print(self.args[1]))
        return prettyForm(*head.right(prettyForm(*body.parens())))


class OnGrid(sp.logic.boolalg.BooleanFunction):
    """``e ∈ {0, …, n − 1}``: the index ``e`` is an integer inside an axis of length ``n`` (a condition;
    the evaluator reads it as ``0 <= e < n`` and ``e`` integer)."""

    nargs = 2

    @classmethod
    def eval(cls, e, n):
        if e.is_Integer and n.is_Integer:
            return sp.true if 0 <= e < n else sp.false
        return None

    def as_relations(self):
        e, n = self.args
        return sp.And(e >= 0, e < n, sp.Eq(e, sp.floor(e)))

    def _latex(self, printer):
        return r"%s \in \left\{0, \ldots, %s\right\}" % (printer._print(self.args[0]), printer._print(self.args[1] - 1))

    def _sympystr(self, printer):
        return "%s ∈ {0, …, %s}" % (printer._print(self.args[0]), printer._print(self.args[1] - 1))

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        return prettyForm(*printer._print(self.args[0]).right(
            prettyForm(" ∈ {0, …, %s}" % sp.sstr(self.args[1] - 1))))


class Indicator(sp.Function):
    """``[c]``: 1 where the condition ``c`` holds, else 0 (Iverson's bracket; the arg-max mask ``[u = y]``).

    Equal to ``Piecewise((1, c), (0, True))``, but SymPy's ``piecewise_fold`` (run by every ``Sum``) does
    not pull it out of an enclosing sum, which it does to a Piecewise, leaving summation indices free."""

    nargs = 1

    @classmethod
    def eval(cls, c):
        if c in (sp.true, sp.false):
            return sp.Integer(1 if c == sp.true else 0)
        return None

    def as_piecewise(self):
        return sp.Piecewise((1, self.args[0]), (0, True))

    def _latex(self, printer):
        return r"\left[%s\right]" % printer._print(self.args[0])

    def _sympystr(self, printer):
        return "[%s]" % printer._print(self.args[0])

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        return prettyForm(*printer._print(self.args[0]).parens("[", "]"))
