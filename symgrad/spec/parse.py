"""Formulas from text (the CLI's ``--formula NAME=EXPR``), parsed without trusting the text.

The text is tokenized first: only numbers, identifiers, ``+ - * / **`` and parentheses pass;
identifiers must be whitelisted functions or plain variable names. Only then does
``sympy.parse_expr`` read it, with a namespace holding nothing but those functions and
``__builtins__`` emptied — never ``eval`` or a plain ``sympify`` of raw input.
"""
from __future__ import annotations

import io
import keyword
import tokenize

import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

from ..errors import SpecError
from .constants import check_constants
from .minmax import max_of, min_of
from .names import IDENT

FUNCTIONS = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
    "sin": sp.sin, "cos": sp.cos, "atan": sp.atan, "abs": sp.Abs, "Abs": sp.Abs, "Max": max_of,
    "Min": min_of, "erf": sp.erf, "pi": sp.pi, "E": sp.E,
}
_OPS = {"+", "-", "*", "/", "**", "(", ")", ","}
MAX_LEN = 1000


def parse_formula(text: str) -> sp.Expr:
    """A SymPy expression from ``text``; its free symbols are real variables."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("formula: expected a non-empty expression")
    if len(text) > MAX_LEN:
        raise SpecError(f"formula: longer than {MAX_LEN} characters")
    names = set()
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as e:
        raise SpecError(f"formula {text!r}: cannot be read ({e})") from None
    for tok in toks:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NUMBER:
            if any(c in tok.string.lower() for c in "jx_") or tok.string.lower().startswith("0o"):
                raise SpecError(f"formula {text!r}: unsupported number {tok.string!r}")
            continue
        if tok.type == tokenize.NAME:
            if tok.string not in FUNCTIONS and (keyword.iskeyword(tok.string) or not IDENT.match(tok.string)):
                raise SpecError(f"formula {text!r}: {tok.string!r} is not allowed")
            if tok.string not in FUNCTIONS:
                names.add(tok.string)
            continue
        if tok.type == tokenize.OP and tok.string in _OPS:
            continue
        raise SpecError(f"formula {text!r}: {tok.string!r} is not allowed (only numbers, names, "
                        "+ - * / ** and parentheses)")
    local = dict(FUNCTIONS)
    local.update({n: sp.Symbol(n, real=True) for n in names})
    glob = {"__builtins__": {}, "Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
            "Symbol": sp.Symbol}
    try:  # constants are checked on the unevaluated tree: 9**9**9 is refused, never computed
        check_constants(parse_expr(text, local_dict=local, global_dict={**glob, "Add": sp.Add, "Mul": sp.Mul, "Pow": sp.Pow},
                                   transformations=standard_transformations, evaluate=False),
                        f"formula {text!r}")
        expr = parse_expr(text, local_dict=local, global_dict=glob, transformations=standard_transformations)
    except (SyntaxError, TypeError, ValueError, NameError) as e:
        if isinstance(e, SpecError):
            raise
        raise SpecError(f"formula {text!r}: {e}") from None
    if not isinstance(expr, sp.Expr):
        raise SpecError(f"formula {text!r}: not an expression")
    return expr


def parse_definition(text: str) -> tuple[str, sp.Expr]:
    """``NAME=EXPR`` -> (name, expression)."""
    if "=" not in text:
        raise SpecError(f"--formula {text!r}: expected NAME=EXPRESSION, e.g. swish=z/(1+exp(-z))")
    name, expr = text.split("=", 1)
    return name.strip(), parse_formula(expr)
