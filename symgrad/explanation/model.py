"""The explanation document: a format-neutral list of blocks holding SymPy objects.

Builders (``symgrad.explanation.layers``, one per kernel kind) collect a ``Document`` from a derivation;
renderers (``symgrad.explanation.render``) turn it into text, LaTeX or Markdown. Prose is already in the
requested language; mathematics stays SymPy until a renderer prints it, and equations that define a
value keep what they define (``defines``, ``indices``) so a test can evaluate them numerically.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


@dataclass
class Math:
    """Inline mathematics inside prose or a table cell: a SymPy object, or raw LaTeX with a text form."""

    expr: object
    latex: str | None = None
    text: str | None = None


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    parts: list            # str | Math


@dataclass
class Equation:
    """``lhs = rhs`` displayed on its own line. ``defines`` names the array it computes (for numeric
    checks), with its free indices ``indices`` in axis order; ``note`` is prose shown with it."""

    lhs: object
    rhs: object
    note: list = field(default_factory=list)
    defines: str | None = None
    indices: tuple = ()
    role: str = ""          # forward | chain | total | final | simplified | matrix | local | aux | update ...
    rel: str = "="          # "=" or "<-" (an assignment of an update rule)
    when: object = None     # a SymPy condition under which the equation applies (shown "if ...")


@dataclass
class Table:
    header: list            # str
    rows: list              # list of cells; a cell is a list of str | Math


@dataclass
class Bullets:
    items: list             # list of lists of str | Math


@dataclass
class Code:
    """Program text shown verbatim (the generated kernel's statements)."""

    lines: list
    language: str = "python"


@dataclass
class Document:
    name: str
    kind: str
    lang: str
    title: str
    blocks: list = field(default_factory=list)
    dims: dict = field(default_factory=dict)   # index symbol -> dimension (for numeric evaluation)
    symbols: dict = field(default_factory=dict)  # display symbol name -> name in the code
    saved: list = field(default_factory=list)    # display names of the values forward saves for backward
    inputs: list = field(default_factory=list)   # display names of the inputs, in argument order

    def add(self, block):
        self.blocks.append(block)
        return block

    def equations(self, role: str | None = None) -> list[Equation]:
        return [b for b in self.blocks if isinstance(b, Equation) and (role is None or b.role == role)]


def m(expr, latex: str | None = None, text: str | None = None) -> Math:
    return Math(sp.sympify(expr) if latex is None and not isinstance(expr, sp.Basic) else expr, latex, text)
