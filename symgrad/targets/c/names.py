"""What a C statement computes, in the derivation's names: the text of the generated C's comments
(one per pass over memory, as llm.c writes ``// first: two reduce operations``) and the names of
its temporaries.

The C target inlines cheap named values (LayerNorm's ``xc = x - mean``, ``xhat = rstd*xc``,
``dxhat = dy*gamma``) into the statements that use them, so the statements themselves no longer
mention them. ``Glossary`` knows every value the lowering named (the spec's ``.named`` values and
the ``d<name>`` adjoints, from the kernel's equations) and ``fold`` writes an expression back in
those names: ``sum(dy*gamma*(x - mean))`` reads ``sum(dxhat*xc)`` again. ``describe`` says what one
IR statement computes in one phrase; ``pass_text`` what a pass of several statements computes.
"""
from __future__ import annotations

import re

import sympy as sp

from ...ir import nodes as ir
from ...ir.schedule import colred
from ...codegen.printers import mathstr
from .plan import gemm_form

GENERATED = re.compile(r"_?t\d+$")   # a name the lowering made up (t3), not the derivation's
WIDTH = 100                           # a comment longer than this lists names, not formulas
FORMULA = 80                          # a formula longer than this is shown by its name only


class Glossary:
    """The derivation's named values that a C function no longer holds (inlined away), each as an
    expression in the arrays it does hold; ``fold`` puts the names back into an expression."""

    def __init__(self, equations=(), present=()):
        defs = {n: e for n, e in equations if isinstance(e, sp.Expr) and not _is_copy(e)}
        gone = {n: e for n, e in defs.items() if n not in present}
        syms = {sp.Symbol(n): e for n, e in gone.items()}
        self.defs = {}
        for n, e in gone.items():
            for _ in range(len(gone) + 1):  # substitute until only held arrays are left
                e2 = e.xreplace(syms)
                if e2 == e:
                    break
                e = e2
            internal = isinstance(e, sp.Symbol) and e.name.startswith("_")   # the emitter's own name
            if not GENERATED.match(n) and (internal or not e.is_Atom) and not (e.free_symbols & set(syms)):
                self.defs[n] = e
        # larger values first: xhat = rstd*(x - mean) before xc = x - mean
        self.order = sorted(self.defs, key=lambda n: (-sp.count_ops(self.defs[n]), n))

    def fold(self, e):
        for n in self.order:
            d = self.defs[n]
            if d.free_symbols <= e.free_symbols:
                e = e.subs(d, sp.Symbol(n))
        return e

    def text(self, e) -> str:
        return mathstr(self.fold(e))


def _is_copy(e) -> bool:
    return any(type(a).__name__ == "_Copy" for a in sp.preorder_traversal(e))


def comment(text: str) -> str:
    return "/* " + text.replace("*/", "* /") + " */"


def _formula(out, text, short) -> str:
    if short:
        return out
    return f"{out} = {text}" if len(text) <= FORMULA else f"{out} (elementwise)"


def describe(s, g: Glossary, short=False) -> str:
    """One phrase for what statement ``s`` computes (``short``: its output's name, and its kind)."""
    if isinstance(s, ir.Elementwise):
        e = ir.full_expr(s)
        if _is_copy(e):
            return f"{s.out} = copy of {', '.join(sorted(x.name for x in e.free_symbols))}"
        return _formula(s.out, g.text(e), short)
    if isinstance(s, ir.Reduction):
        what = _formula(s.out, f"{s.kind}({g.text(ir.full_expr(s))})", short)
        if colred(s):
            return f"{what} over the rows"
        if len(s.axes) == len(s.src_shape):
            return f"{what} over all elements"
        return what
    if isinstance(s, ir.Einsum):
        gf = gemm_form(s)
        if gf is None:
            return f"{s.out} = einsum('{s.subscripts}', {', '.join(s.operands)}) (loops)"
        ta, tb, a, b = gf[0], gf[1], gf[5], gf[6]
        return f"{s.out} = {a}{'^T' if ta else ''} {b}{'^T' if tb else ''} (GEMM)"
    if isinstance(s, ir.OneHot):
        return f"{s.out} = one_hot({s.index}, {s.classes})"
    if isinstance(s, ir.Slice):
        return f"{s.out} = {s.src}[..., {s.start}:{s.stop}] (copy)"
    if isinstance(s, ir.Concat):
        return f"{s.out} = concat({', '.join(p or '0' for p in s.parts)}): the blocks not written in place"
    return f"{s.out} = copy of {s.src}"


PLURAL = {"sum": "sums", "max": "maxima", "min": "minima"}


def _kind(s) -> str:
    if colred(s):
        return "column " + PLURAL.get(s.kind, s.kind)
    if isinstance(s, ir.Reduction):
        return "row " + PLURAL.get(s.kind, s.kind)
    if isinstance(s, ir.OneHot):
        return "one-hot"
    return "elementwise"


def pass_text(stmts, g: Glossary, blocks=None) -> str:
    """What one pass over memory computes: its statements grouped by kind, in the derivation's names
    (``row sums drstd = sum(dxhat*xc), t2 = sum(dxhat); column sums dgamma, dbeta``); when that is
    too long, the last kinds list their outputs' names only. ``blocks``: part -> the concatenation
    it is written into (LSTM's ``dgates = [t7 | t8 | t9 | t10]``), its parts named together."""
    kinds: dict = {}
    blocks = blocks or {}
    for s in stmts:
        kinds.setdefault(_kind(s), []).append(s)
    whole = {}
    for s in stmts:
        if s.out in blocks:
            whole.setdefault(blocks[s.out], []).append(s.out)
    short = 0
    while True:
        parts = []
        for j, (kind, ss) in enumerate(kinds.items()):
            brief = j >= len(kinds) - short
            said, items = set(), []
            for s in ss:
                c = blocks.get(s.out)
                if c is None:
                    items.append(describe(s, g, brief).removesuffix(" over the rows"))
                elif c not in said:
                    said.add(c)
                    items.append(f"{c} = [{' | '.join(whole[c])}]")
            items = ", ".join(items)
            parts.append(items if kind == "elementwise" and not brief else f"{kind} {items}")
        text = "; ".join(parts)
        if len(text) <= WIDTH or short == len(kinds):
            return text
        short += 1
