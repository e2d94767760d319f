"""The result as textbooks and papers state it, at the end of a page, proven equal by SymPy.

Optimizers: the step in the form of Kingma & Ba (2015, Algorithm 1: Adam with m̂ and v̂), Loshchilov &
Hutter (AdamW) and the CS231n notes (momentum with a velocity v, Adagrad and RMSprop with a cache),
written as SymPy update lines; both the derived update (the spec's variant for the stated flags) and the
textbook lines are composed into the new parameter and state, and SymPy simplifies their difference to
0 on the page. LayerNorm: dx = rstd (dx̂ − mean(dx̂) − x̂ mean(dx̂ x̂)) against the page's derived dx.
The forms are teaching data keyed by kernel name; no kernel is generated from them.
"""
from __future__ import annotations

import sympy as sp

from .cancel import linear_sum
from .model import Equation, Heading, Para, m
from .symbols import MeanOver
from .typeset import textbook

S_ = sp.Symbol
p, g, t, lr, eps = S_("p"), S_("g"), S_("t"), S_("lr"), S_("eps")
b1, b2, mom, wd, alpha = S_("beta1"), S_("beta2"), S_("momentum"), S_("weight_decay"), S_("alpha")
M, V, buf, acc, sq = S_("exp_avg"), S_("exp_avg_sq"), S_("momentum_buffer"), S_("sum"), S_("square_avg")
mhat, vhat, vel, cache = S_("mhat"), S_("vhat"), S_("v"), S_("cache")

_ADAM = [(M, b1 * M + (1 - b1) * g), (V, b2 * V + (1 - b2) * g ** 2), (mhat, M / (1 - b1 ** t)),
         (vhat, V / (1 - b2 ** t))]
OPTIMIZERS = {
    "adam": ("Kingma & Ba 2015, Algorithm 1 (CS231n writes the same)", {}, {},
             _ADAM + [(p, p - lr * mhat / (sp.sqrt(vhat) + eps))]),
    "adamw": ("Loshchilov & Hutter 2019, decoupled weight decay", {"has_weight_decay": True}, {},
              _ADAM + [(p, p - lr * (mhat / (sp.sqrt(vhat) + eps) + wd * p))]),
    "sgd": ("CS231n: momentum with a velocity v = −η b (η constant)", {"has_momentum": True},
            {vel: -lr * buf, S_("dampening"): 0},
            [(vel, mom * vel - lr * g), (p, p + vel)]),
    "adagrad": ("CS231n: Adagrad with a cache (lr_decay = 0)", {}, {S_("lr_decay"): 0, cache: acc},
                [(cache, cache + g ** 2), (p, p - lr * g / (sp.sqrt(cache) + eps))]),
    "rmsprop": ("CS231n: RMSprop with a cache", {}, {cache: sq},
                [(cache, alpha * cache + (1 - alpha) * g ** 2), (p, p - lr * g / (sp.sqrt(cache) + eps))]),
}


def compose(lines) -> dict:
    """Each symbol's value after the update lines, in terms of the values before (later lines read
    the new values)."""
    cur: dict = {}
    for lhs, rhs in lines:
        cur[lhs] = sp.sympify(rhs).xreplace(cur)
    return cur


def plain(e):
    """``e`` with every symbol replaced by the assumption-free symbol of its name (spec symbols are real)."""
    return e.xreplace({s: sp.Symbol(s.name) for s in e.free_symbols if isinstance(s, sp.Symbol)})


def by_name(e, sub):
    names = {k.name: v for k, v in sub.items()}
    return e.xreplace({s: names[s.name] for s in e.free_symbols if s.name in names})


def variant(spec, want):
    for v in spec.variants():
        flags = dict(v.flags)
        if all(flags.get(k, False) == want.get(k, False) for k in flags):
            return v
    return None


def proves_zero(diff) -> bool:
    """SymPy's verdict on ``diff == 0`` for v ≥ 0 and 1 − β₂ᵗ > 0 (√(v/c) = √v/√c)."""
    c1, c2 = sp.symbols("c1 c2", positive=True)          # 1 - beta^t > 0 for beta in [0, 1), t >= 1
    diff = diff.xreplace({sp.Symbol("beta1") ** sp.Symbol("t"): 1 - c1, sp.Symbol("beta2") ** sp.Symbol("t"): 1 - c2})
    diff = sp.expand_power_base(sp.powdenest(diff, force=True), force=True)
    return sp.simplify(diff) == 0


def add_optimizer_form(doc, spec, S, D):
    form = OPTIMIZERS.get(spec.name)
    if form is None:
        return
    source, flags, given, lines = form
    v = variant(spec, flags)
    if v is None:
        return
    derived = {k.name: e for k, e in compose([(eq.lhs, eq.rhs) for eq in v.equations]).items()}
    book = {k.name: e for k, e in compose(lines).items()}
    doc.add(Heading(2, S.text("h_textbook")))
    doc.add(Para(S("textbook_opt", source=source)))
    for lhs, rhs in lines:
        arrays = [D(x) for x in (p, g, M, V, buf, acc, sq, mhat, vhat, vel, cache)]
        doc.add(Equation(D(lhs), textbook(D(rhs), D(lhs), arrays), role="textbook", rel="<-"))
    diff = by_name(plain(book["p"]) - plain(derived["p"]), given)
    ok = proves_zero(diff)
    doc.add(Para(S("textbook_proof", x=m(D(p)))))
    doc.add(Equation(m(None, latex=r"p'_{\mathrm{textbook}} - p'_{\mathrm{derived}}", text="p'_textbook − p'_derived"),
                     sp.Integer(0) if ok else D(sp.simplify(diff)), role="proof"))
    doc.textbook_ok = getattr(doc, "textbook_ok", True) and ok


def add_layer_form(B):
    """LayerNorm's dx with mean(·) (the form of the CS231n batch/layer-norm notes), against the page."""
    nt, doc, S = B.nt, B.doc, B.S
    names = set(nt.names.values())
    if not {"dxhat", "xhat", "rstd"} <= names or "dx" not in names:
        return
    derived = [e for e in doc.equations() if e.defines == "dx" and e.role in ("final", "simplified")]
    if not derived:
        return
    d = next(e for e in derived[-1:]).indices
    n_, d_ = d[0], d[-1]
    dp = sp.Symbol(d_.name + "'", integer=True)
    X, DX, R = sp.IndexedBase("xhat"), sp.IndexedBase("dxhat"), sp.IndexedBase("rstd")
    mean1, mean2 = MeanOver(DX[n_, dp], dp), MeanOver(DX[n_, dp] * X[n_, dp], dp)
    book = sp.Mul(R[n_], sp.Add(DX[n_, d_], sp.Mul(-1, mean1, evaluate=False),
                                sp.Mul(-1, X[n_, d_], mean2, evaluate=False), evaluate=False), evaluate=False)
    D = nt.dim_of(d_)
    plain = book.replace(lambda e: isinstance(e, MeanOver), lambda e: sp.Sum(e.args[0], (e.args[1], 0, D - 1)) / D)
    ok = _same_sums(plain, derived[-1].rhs, D)
    doc.add(Heading(2, S.text("h_textbook")))
    doc.add(Para(S("textbook_layernorm")))
    doc.add(Equation(sp.IndexedBase("dx")[n_, d_], book, role="textbook"))
    doc.add(Para(S("textbook_proof_layer")))
    doc.add(Equation(m(None, latex=r"dx_{\mathrm{textbook}} - dx_{\mathrm{derived}}", text="dx_textbook − dx_derived"),
                     sp.Integer(0) if ok else sp.Symbol("nonzero"), role="proof"))
    doc.textbook_ok = ok


def _same_sums(a, b, D) -> bool:
    """``a == b`` for expressions with single sums: every sum expanded by linearity, constants out,
    summation indices renamed alike, then ``sympy.simplify`` of the difference."""
    def canon(e):
        e = sp.expand(e)
        return e.replace(lambda x: isinstance(x, sp.Sum),
                         lambda x: linear_sum(x.function, x.limits[0][0], x.limits[0][2] + 1))
    return sp.simplify(sp.expand(canon(a) - canon(b))) == 0
