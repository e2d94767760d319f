"""Convolution and pooling pages: the derived gradients re-indexed by SymPy into the textbook statements.

The input gradient of a window read is a scatter-add (``Fold``): a sum over every window position
``i`` with the condition ``s i + d a - p = h``. SymPy solves the condition for ``i``
(``i = (h + p - d a)/s``), so each such sum keeps one term, present when that ``i`` is an integer in
``0 .. H_out - 1`` (``reindex``). Substituting the forward window reads into what is left gives

- conv2d: ``dx[n, c, h, w] = sum_{o, a, b} dy[n, o, (h + p - d a)/s, (w + p - d b)/s] weight[o, c, a, b]``, a
  *full convolution* of dy with the kernel (dy read as 0 off its grid); for stride 1 the change of
  summation variable ``a -> KH - 1 - a`` shows the 180°-rotated kernel; and ``dweight`` is the
  correlation of x with dy: ``sum_{n, i, j} dy[n, o, i, j] x[n, c, s i + d a - p, s j + d b - p]``;
- max pooling: dy of every window that covers x[n, c, h, w], times the mask ``x[n, c, h, w] = y[...]``
  of the arg-max (over the number of ties): the gradient goes to each window's maximum.

Every equation is a SymPy result on the derived expressions, and carries ``defines``: the test suite
evaluates it against the generated kernel at several strides, paddings and dilations.
"""
from __future__ import annotations

import sympy as sp

from ..spec import tensor as T
from ..spec.window import Unfold
from .model import Equation, Heading, Para, m
from .render import inline_text, latex_of
from .symbols import OnGrid
from .windows import reads_windows


def reindex(e):
    """Each ``Sum_i Piecewise((f, Eq(.., i-linear) & rest), (0, True))`` as the one term it keeps:
    ``Piecewise((f at i = i*, i* ∈ {0..n-1} & rest), (0, True))`` with ``i*`` solved by SymPy."""
    solved = []

    def collapse(body, i, lo, hi):
        if not (isinstance(body, sp.Piecewise) and len(body.args) == 2 and body.args[1].expr == 0
                and body.args[1].cond == sp.true and lo == 0):
            return None
        f, cond = body.args[0]
        conds = list(sp.And.make_args(cond))
        eq = next((c for c in conds if isinstance(c, sp.Eq) and c.has(i)      # s i + d a - p = h, not a
                   and not any(r.has(i) for r in c.atoms(sp.Indexed))), None)   # mask's y = u
        sol = sp.solve(eq, i) if eq is not None else []
        if len(sol) != 1:
            return None
        star = sol[0]
        solved.append((i, eq, star))
        rest = [c.xreplace({i: star}) for c in conds if c is not eq]
        return sp.Piecewise((f.xreplace({i: star}), sp.And(OnGrid(star, hi + 1), *rest)), (0, True))

    def one(s):              # SymPy merges nested sums: the limits run from the innermost out
        body, keep = s.function, []
        for (i, lo, hi) in s.limits:
            new = collapse(body, i, lo, hi)
            if new is None:
                keep.append((i, lo, hi))
            else:
                body = new
        if len(keep) == len(s.limits):
            return s
        return sp.Sum(body, *keep) if keep else body

    return e.replace(lambda x: isinstance(x, sp.Sum), one), solved


def _vanishes(f, stars) -> bool:
    """``f`` is 0 whenever its reads at the solved indices are 0: a sum of products each with such a
    read, dividing by nothing that reads there (then the grid condition can be left to zero padding)."""
    f = sp.expand(f) if not isinstance(f, sp.Sum) else f
    if isinstance(f, sp.Add):
        return all(_vanishes(t, stars) for t in f.args)
    if isinstance(f, sp.Sum):
        return _vanishes(f.function, stars)
    if isinstance(f, sp.Mul):
        if any(isinstance(x, sp.Pow) and x.exp.is_negative and x.has(*stars) for x in f.args):
            return False
        return any(_vanishes(x, stars) for x in f.args)
    return isinstance(f, sp.Indexed) and any(i.has(*stars) for i in f.indices)


def _zero_padded(e, stars):
    """Drop a grid condition ``i* ∈ {0..n-1}`` where the term vanishes off the grid anyway."""
    def drop(p):
        if len(p.args) != 2 or p.args[1].expr != 0:
            return p
        f, cond = p.args[0]
        keep = [c for c in sp.And.make_args(cond) if not isinstance(c, OnGrid)]
        if len(keep) == len(sp.And.make_args(cond)) or not _vanishes(f, stars):
            return p
        return sp.Piecewise((f, sp.And(*keep)), (0, True)) if keep else f
    return e.replace(lambda x: isinstance(x, sp.Piecewise), drop)


def _in_range(e, nt):
    """Conditions ``0 <= h``, ``h < H`` on an index h of axis length H are true: replace them."""
    def true(r):
        lhs, rhs = (r.lts, r.gts) if isinstance(r, (sp.StrictLessThan, sp.LessThan)) else (r.gts, r.lts)
        try:
            if isinstance(lhs, sp.Symbol) and lhs.is_integer and rhs == nt.dim_of(lhs):
                return isinstance(r, (sp.StrictLessThan, sp.StrictGreaterThan))
            if isinstance(rhs, sp.Symbol) and lhs == 0 and rhs.is_integer:
                nt.dim_of(rhs)
                return isinstance(r, (sp.LessThan, sp.GreaterThan))
        except KeyError:
            return False
        return False
    return e.replace(lambda x: isinstance(x, (sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan,
                                              sp.GreaterThan)) and true(x), lambda x: sp.true)


def _read_windows(e, B):
    """The forward window reads (``u[n, c, a, b, i, j]``) in ``e`` replaced by the input they read."""
    nt = B.nt
    reads = {nt.name(n): n for n in B.d.forward_nodes if isinstance(n, Unfold)}
    def read(x):       # only where the read is a plain element of the input (no fill branch left)
        got = _in_range(nt.element(reads[str(x.base)], list(x.indices), stop=lambda _: True), nt)
        return x if got.has(sp.Piecewise) else got
    return e.replace(lambda x: isinstance(x, sp.Indexed) and str(x.base) in reads, read)


def _flip(e, nt, kernel):
    """``a -> K - 1 - a`` for the window indices of the kernel read: the same range, summed in reverse."""
    wins = [i for r in e.atoms(sp.Indexed) if str(r.base) == kernel for i in r.indices
            if isinstance(i, sp.Symbol) and isinstance(e, sp.Basic)]
    summed = {lim[0]: lim for x in e.atoms(sp.Sum) for lim in x.limits}
    wins = [i for i in dict.fromkeys(wins) if i in summed]
    wins = [i for i in wins if nt.dim_of(i) in {d for n in nt.d.forward_nodes if isinstance(n, Unfold)
                                                for d in n.size}]

    def flip(s):
        sub = {lim[0]: lim[2] - lim[0] for lim in s.limits if lim[0] in wins}
        return sp.Sum(s.function.xreplace(sub), *s.limits) if sub else s
    return e.replace(lambda x: isinstance(x, sp.Sum), flip), wins


def add_window_form(B):
    nt, doc, S, d = B.nt, B.doc, B.S, B.d
    if not any(isinstance(n, Unfold) for n in d.forward_nodes):
        return
    grad_ids = {g.id for g in d.grad_inputs}
    full_of = {}
    for inp in B.spec.diff_inputs:
        g = d.grads[inp.name]
        full_of[inp.name] = (g, nt.idx(inp.shape),
                             nt.element(g, nt.idx(inp.shape), stop=lambda n: n.id in B.fwd_ids or n.id in grad_ids))
    is_max = any(isinstance(n, T.Reduce) and n.kind == "max" for n in d.forward_nodes)
    kernels = [i.name for i in B.spec.diff_inputs if not reads_windows(d.grads[i.name])
               and any(isinstance(n, T.Contract) and i in n.args for n in d.forward_nodes)]
    up = m(sp.Symbol(d.grad_inputs[0].name)) if d.grad_inputs else None
    doc.add(Heading(2, S.text("h_textbook")))
    for name, (g, idx, full) in full_of.items():
        live = tuple(i for i in idx if i is not None)
        lhs = nt.ref(g, idx)
        if reads_windows(g):
            re, solved = reindex(full)
            if not solved:
                continue
            stars = [st for _, _, st in solved]
            shown = _zero_padded(_read_windows(re, B), stars)
            i, eq, star = solved[-1]
            sol = sp.Eq(i, star)
            sol = m(sol, latex=latex_of(sol), text=f"{i} = {inline_text(star)}")
            doc.add(Para(S("win_reindex", g=m(lhs), i=m(i), eq=m(eq), sol=sol,
                           grid=m(OnGrid(star, nt.dim_of(i))))))
            doc.add(Equation(lhs, shown, defines=nt.name(g), indices=live, role="simplified"))
            if kernels:
                doc.add(Para(S("win_conv", g=m(lhs), dy=up, w=m(sp.Symbol(kernels[0])))))
                s1 = {v: 1 for k, v in nt.size_sym.items() if k.name == "stride"}
                flipped, wins = _flip(shown.xreplace(s1), nt, kernels[0])
                if wins and s1:
                    doc.add(Para(S("win_flip", a=m(sp.Tuple(*wins)), w=m(sp.Symbol(kernels[0])), dy=up)))
                    (stride,) = s1
                    doc.add(Equation(lhs, flipped, defines=nt.name(g), indices=live, role="simplified",
                                     when=sp.Eq(stride, 1), note=[S.text("update_if")]))
            else:
                doc.add(Para(S("win_pool_max" if is_max else "win_pool", g=m(lhs), dy=up)))
        elif any(isinstance(r, sp.Indexed) and str(r.base) in {nt.name(n) for n in d.forward_nodes
                                                                if isinstance(n, Unfold)} for r in full.atoms(sp.Indexed)):
            shown = _read_windows(full, B)
            doc.add(Para(S("win_weight", g=m(lhs), dy=up)))
            doc.add(Equation(lhs, shown, defines=nt.name(g), indices=live, role="simplified"))
        elif full.has(sp.Sum) and not full.atoms(sp.Piecewise):
            doc.add(Para(S("win_bias", g=m(lhs), dy=up)))
