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
    rstd = next(n for n in B.d.forward_nodes if nt.names.get(n.id) == "rstd")
    if not rstd.shape or rstd.shape[-1] != 1:     # a statistic per row (LayerNorm), not per feature (BatchNorm)
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


TORCH_GATES = (("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"), ("o", "sigmoid"))


def add_recurrent_form(doc, cell, nt, S):
    """The LSTM cell in torch.nn.LSTM's documented equations (gates i, f, g, o with their own weight
    blocks W_ii = W_ih[0:H], W_if = W_ih[H:2H], ...), each proven equal to the derived forward step."""
    from ..derive.stable import Sigmoid
    names = {nt.names.get(n.id): n for n in cell.derivation.forward_nodes}
    if not all(g in names for g, _ in TORCH_GATES) or not {"c_new", "h_new", "x", "h", "c"} <= set(names):
        return
    n_, k_ = nt.idx(names["i"].shape)
    H = nt.dim_of(k_)
    d_ = nt.idx(names["x"].shape)[-1]
    kp = sp.Symbol(k_.name + "'", integer=True)
    x, h, c = (sp.IndexedBase(s) for s in ("x", "h", "c"))
    sub, ok, shown = {}, True, []
    for pos, (gate, fn) in enumerate(TORCH_GATES):
        Wi, Wh = sp.IndexedBase("W_i" + gate), sp.IndexedBase("W_h" + gate)
        bi, bh = sp.IndexedBase("b_i" + gate), sp.IndexedBase("b_h" + gate)
        top_d, top_h = sp.Add(nt.dim_of(d_), -1, evaluate=False), sp.Add(H, -1, evaluate=False)   # D - 1
        arg = sp.Add(sp.Sum(Wi[k_, d_] * x[n_, d_], (d_, 0, top_d)), bi[k_],
                     sp.Sum(Wh[k_, kp] * h[n_, kp], (kp, 0, top_h)), bh[k_], evaluate=False)
        shown.append((sp.IndexedBase(gate)[n_, k_], Sigmoid(arg) if fn == "sigmoid" else sp.tanh(arg)))
        off = pos * H
        sub.update({Wi: (sp.IndexedBase("W_ih"), off), Wh: (sp.IndexedBase("W_hh"), off),
                    bi: (sp.IndexedBase("b_ih"), off), bh: (sp.IndexedBase("b_hh"), off)})
        book = sp.Add(*arg.args).xreplace({top_d: nt.dim_of(d_) - 1, top_h: H - 1}).replace(lambda e: isinstance(e, sp.Indexed) and e.base in sub,
                           lambda e: sub[e.base][0][(e.indices[0] + sub[e.base][1],) + tuple(e.indices[1:])])
        derived = nt.element(names[gate], [n_, k_], stop=lambda m: False)
        inner = derived.args[0] if fn == "tanh" else -next(iter(derived.atoms(sp.exp))).args[0]   # 1/(1 + e^-a)
        if fn == "sigmoid" and sp.simplify(derived - 1 / (1 + sp.exp(-inner))) != 0:
            ok = False
        ok = ok and _same_sums(sp.expand(book), sp.expand(inner), H)
    cn, hn = sp.IndexedBase("c_new")[n_, k_], sp.IndexedBase("h_new")[n_, k_]
    i, f, g, o = (sp.IndexedBase(s)[n_, k_] for s in "ifgo")
    gates = {names[s].id for s in ("i", "f", "g", "o", "c_new")}
    for lhs, rhs, node in ((cn, sp.Add(sp.Mul(f, c[n_, k_], evaluate=False), sp.Mul(i, g, evaluate=False),
                                       evaluate=False), names["c_new"]),
                           (hn, sp.Mul(o, sp.tanh(cn), evaluate=False), names["h_new"])):
        shown.append((lhs, rhs))
        derived = nt.element(node, [n_, k_], stop=lambda m: m.id in gates)
        ok = ok and sp.simplify(sp.expand(sp.Add(*[a for a in [rhs]]).doit() - derived)) == 0
    doc.add(Heading(2, S.text("h_textbook")))
    doc.add(Para(S("textbook_lstm")))
    for lhs, rhs in shown:
        doc.add(Equation(lhs, rhs, role="textbook"))
    doc.add(Para(S("textbook_proof_lstm")))
    doc.add(Equation(m(None, latex=r"\mathrm{torch} - \mathrm{derived}", text="torch − derived"),
                     sp.Integer(0) if ok else sp.Symbol("nonzero"), role="proof"))
