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

import dataclasses
import re

import sympy as sp

from ...ir import nodes as ir
from ...ir.schedule import colred
from ...codegen.printers import mathstr
from .plan import C_KEYWORDS, gemm_form

GENERATED = re.compile(r"_?t\d+$")   # a name the lowering made up (t3), not the derivation's
WIDTH = 110                           # a comment longer than this lists names, not formulas
FORMULA = 80                          # a formula longer than this is shown by its name only


class Glossary:
    """The derivation's named values that a C function no longer holds (inlined away), each as an
    expression in the arrays it does hold; ``fold`` puts the names back into an expression."""

    def __init__(self, equations=(), present=()):
        self.names: dict = {}
        self.used: set = set()    # names ``fold`` put back (for ``legend``)
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

    def renamed(self, names: dict) -> "Glossary":
        """The same glossary for a function whose temporaries the C code names ``names[old]``
        (``temp_names``): ``text`` and ``name`` show those names."""
        g = Glossary()
        g.defs, g.order, g.names, g.used = self.defs, self.order, dict(names), set()
        return g

    def name(self, n: str) -> str:
        return self.names.get(n, n)

    def fold(self, e, names=None):
        for n in self.order if names is None else names:
            d = self.defs[n]
            if d.free_symbols <= e.free_symbols:
                e2 = e.subs(d, sp.Symbol(n))
                if e2 != e:
                    self.used.add(n)
                    e = e2
        return e

    def legend(self) -> str | None:
        """The names ``fold`` used, each defined in the smaller ones (``xhat = rstd*xc``)."""
        out, todo = {}, [n for n in self.order if n in self.used]
        while todo:
            n = todo.pop(0)
            if n in out or any(x.name.startswith("_") for x in self.defs[n].free_symbols):
                continue
            smaller = self.order[self.order.index(n) + 1:]
            before = set(self.used)
            out[n] = self.show(self.fold(self.defs[n], smaller))
            todo += [m for m in self.order if m in self.used - before]
        if not out:
            return None
        defs = ", ".join(f"{n} = {out[n]}" for n in reversed([m for m in self.order if m in out]))
        return f"{defs}: the derivation's values, recomputed where they are used"

    def text(self, e) -> str:
        return self.show(self.fold(e))

    def show(self, e) -> str:
        return mathstr(e.xreplace({sp.Symbol(a): sp.Symbol(b) for a, b in self.names.items()}))


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
    out = g.name(s.out)
    if isinstance(s, ir.Elementwise):
        e = ir.full_expr(s)
        if _is_copy(e):
            return f"{out} = copy of {', '.join(sorted(g.name(x.name) for x in e.free_symbols))}"
        return _formula(out, g.text(e), short)
    if isinstance(s, ir.Reduction):
        e = ir.full_expr(s)
        said = short or out == f"{s.kind}_{slug(g.fold(e))}"   # sum_x says it already
        what = _formula(out, f"{s.kind}({g.text(e)})", said)
        if colred(s):
            return f"{what} over the rows"
        if len(s.axes) == len(s.src_shape):
            return f"{what} over all elements"
        return what
    if isinstance(s, ir.Einsum):
        gf = gemm_form(s)
        if gf is None:
            return f"{out} = einsum('{s.subscripts}', {', '.join(map(g.name, s.operands))}) (loops)"
        ta, tb, a, b = gf[0], gf[1], g.name(gf[5]), g.name(gf[6])
        return f"{out} = {a}{'^T' if ta else ''} {b}{'^T' if tb else ''} (GEMM)"
    if isinstance(s, ir.OneHot):
        return f"{out} = one_hot({g.name(s.index)}, {s.classes})"
    if isinstance(s, ir.Slice):
        return f"{out} = {g.name(s.src)}[..., {s.start}:{s.stop}] (copy)"
    if isinstance(s, ir.Concat):
        return f"{out} = concat({', '.join(g.name(p) if p else '0' for p in s.parts)}): the blocks not written in place"
    if isinstance(s, ir.Window):
        return f"{out} = the windows of {g.name(s.src)} (unfold, im2col)"
    if isinstance(s, ir.WindowAdd):
        return f"{out} = {g.name(s.src)} added back at the window positions (fold, col2im)"
    return f"{out} = copy of {g.name(s.src)}"


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
                    items.append(f"{g.name(c)} = [{' | '.join(map(g.name, whole[c]))}]")
            items = ", ".join(items)
            parts.append(items if kind == "elementwise" and not brief else f"{kind} {items}")
        text = "; ".join(parts)
        if len(text) <= WIDTH or short == len(kinds):
            return text
        short += 1


# -- names of temporaries -------------------------------------------------------------------------
def slug(e) -> str | None:
    """A C identifier for a simple expression in the derivation's names: ``x`` -> ``x``,
    ``da*e`` -> ``da_e``, ``xc**2`` -> ``xc_sq``, ``1/D`` -> ``inv_D``; None if there is none."""
    if isinstance(e, sp.Symbol):
        return None if GENERATED.match(e.name) or e.name.startswith("_") else e.name
    if isinstance(e, sp.Pow) and e.exp in (2, -1):
        base = slug(e.base)
        return base and (f"{base}_sq" if e.exp == 2 else f"inv_{base}")
    if isinstance(e, sp.Mul) and all(not a.is_Number for a in e.args):
        parts = [slug(a) for a in e.args]
        return None if None in parts else "_".join(parts)
    return None


def proposed(s, g: Glossary) -> str | None:
    """A name for the value statement ``s`` computes, from what it reads (``sum_x``, ``max_z``,
    ``xW``), or None."""
    if isinstance(s, ir.Reduction):
        body = slug(g.fold(ir.full_expr(s)))
        return body and f"{s.kind}_{body}"
    if isinstance(s, ir.Einsum) and len(s.operands) == 2:
        parts = [slug(sp.Symbol(o)) for o in s.operands]
        return None if None in parts else "".join(parts)
    return None


def temp_names(f: ir.Function, fixed: set, g: Glossary) -> dict:
    """Names for the generated temporaries of ``f`` (``t0``, CSE's ``t3``) that are not in ``fixed``
    (arguments): ``{old: new}``; unique, never a C keyword, an argument or another array's name."""
    taken = set(fixed) | set(f.shapes) | set(g.defs) | C_KEYWORDS
    for s in f.body:
        taken |= {s.out} | {t.name for t, _ in getattr(s, "temps", [])}
    out = {}

    def claim(old, want):
        if want and GENERATED.match(old) and old not in fixed and want not in taken \
                and not re.match(r"i\d$", want) and len(want) <= 24:
            out[old] = want
            taken.add(want)

    for s in f.body:
        for t, e in getattr(s, "temps", []):
            claim(t.name, slug(g.fold(e)))
        claim(s.out, proposed(s, g))
    return out


def renamed(f: ir.Function, names: dict) -> ir.Function:
    """``f`` with its arrays and CSE temporaries renamed by ``names``."""
    if not names:
        return f
    syms = {sp.Symbol(a): sp.Symbol(b) for a, b in names.items()}

    def n(x):
        return names.get(x, x) if isinstance(x, str) else x

    body = []
    for s in f.body:
        kw = {k: n(getattr(s, k)) for k in ("out", "src", "index") if hasattr(s, k)}
        for k in ("operands", "parts"):
            if hasattr(s, k):
                kw[k] = tuple(n(x) for x in getattr(s, k))
        if hasattr(s, "expr"):
            kw["expr"] = s.expr.xreplace(syms)
            kw["temps"] = [(t.xreplace(syms), e.xreplace(syms)) for t, e in s.temps]
        body.append(dataclasses.replace(s, **kw))
    return dataclasses.replace(f, body=body, returns=[n(x) for x in f.returns], saved=[n(x) for x in f.saved],
                               shapes={n(k): v for k, v in f.shapes.items()})


def cell_names(k: ir.Kernel, body: list) -> dict:
    """``temp_names`` for the forward statements ``body`` of a recurrent cell ``k`` (before and in
    the time loop): its generated temporaries that are neither cached nor arguments."""
    f = ir.Function("cell", [], list(body), [], [], dict(k.forward.shapes))
    fixed = {a.name for a in k.inputs} | {o.name for o in k.outputs} | set(k.forward.saved)
    fixed |= set(k.backward.shapes) | {n for n, _ in k.hypers} | {str(d) for d in k.dims}
    return temp_names(f, fixed, Glossary(list(k.equations)))
