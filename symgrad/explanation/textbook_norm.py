"""BatchNorm's page: the derived dx simplified by SymPy into the compact form of the textbooks.

The derived dx is one expression for both modes (``Piecewise`` on the ``training`` flag). SymPy sets
the flag: in eval mode (0) every term through the batch statistics drops and dx = dy γ rstd; in
training mode (1) ``mu = mean``, every ``x`` is written as ``x̂ / rstd + mean`` (exact: x̂ = (x − mean)
rstd), the double sums are split into products of single sums, and ``Σ_n x̂[n, d] = 0`` (SymPy:
``Σ_n (x − Σ_n' x / N) = 0``) removes the term through the variance's mean. What is left is
``dx = (γ rstd / N) (N dy − Σ_n dy − x̂ Σ_n dy x̂)`` (the CS231n / Ioffe & Szegedy form); SymPy
simplifies its difference with the textbook line to 0, and the test suite evaluates both modes'
equations against the generated kernel.
"""
from __future__ import annotations

import sympy as sp

from ..spec import tensor as T
from .cancel import linear_sum
from .model import Equation, Heading, Para, m


def split_sums(e):
    """Sums of products as products of single sums (``Σ_{i,j} a_i b_j = Σ_i a_i Σ_j b_j``), constants
    taken out, an empty sum over ``j`` counted ``hi - lo + 1`` times."""
    def split(s):
        limits = list(s.limits)
        out = 0
        for term in sp.Add.make_args(sp.expand(s.function)):
            factors = sp.Mul.make_args(term)
            res = sp.Mul(*[x for x in factors if not any(x.has(v) for v, _, _ in limits)])
            for v, lo, hi in limits:
                mine = [x for x in factors if x.has(v)]
                if any(sum(x.has(w) for w, _, _ in limits) > 1 for x in mine):
                    return s
                res *= sp.Sum(sp.Mul(*mine), (v, lo, hi)) if mine else (hi - lo + 1)
            out += res
        return out
    prev = None
    while prev != e:
        prev, e = e, sp.expand(e.replace(lambda x: isinstance(x, sp.Sum), split))
    return e


def _canon(e):
    k = sp.Symbol("k_", integer=True)
    return sp.expand(split_sums(e).replace(lambda x: isinstance(x, sp.Sum) and len(x.limits) == 1,
                                           lambda x: x.xreplace({x.limits[0][0]: k})))


def add_batchnorm_form(B):
    nt, doc, S, d = B.nt, B.doc, B.S, B.d
    by = {nt.name(n): n for n in d.forward_nodes if n.id in nt.names}
    flags = [h for h in B.spec.hypers if isinstance(h, T.Flag)]
    if not ({"xhat", "rstd", "mu", "mean"} <= set(by) and "x" in by and len(flags) == 1):
        return
    x, xhat, rstd = by["x"], by["xhat"], by["rstd"]
    if "gamma" not in by:
        return
    flag = flags[0]
    grad_ids = {g.id for g in d.grad_inputs}
    g = d.grads["x"]
    idx = nt.idx(x.shape)
    live = tuple(i for i in idx if i is not None)
    lhs = nt.ref(g, idx)
    full = nt.element(g, idx, stop=lambda n: n.id in B.fwd_ids or n.id in grad_ids)
    X, XH, R, MEAN, MU = (sp.IndexedBase(s) for s in ("x", "xhat", "rstd", "mean", "mu"))
    batch = [i for i in live if i not in nt.ref(rstd, nt.align(idx, x.shape, rstd.shape)).free_symbols]
    if len(batch) != 1 or batch[0] != live[0]:   # statistics over the batch axis (not LayerNorm's rows)
        return
    (n_,) = batch
    N = nt.dim_of(n_)
    r_of = lambda ix: nt.ref(rstd, nt.align(list(ix), x.shape, rstd.shape))  # noqa: E731
    m_of = lambda ix: nt.ref(by["mean"], nt.align(list(ix), x.shape, by["mean"].shape))  # noqa: E731

    evalmode = sp.factor(split_sums(full.xreplace({flag: 0})))
    train = full.xreplace({flag: 1}).replace(lambda e: isinstance(e, sp.Indexed) and e.base == MU,
                                             lambda e: MEAN[e.indices])
    train = train.replace(lambda e: isinstance(e, sp.Indexed) and e.base == X,
                          lambda e: XH[e.indices] / r_of(e.indices) + m_of(e.indices))
    if "xc" in by:   # a named centred value xc = x - mean is x̂ / rstd
        XC = sp.IndexedBase("xc")
        train = train.replace(lambda e: isinstance(e, sp.Indexed) and e.base == XC,
                              lambda e: XH[e.indices] / r_of(e.indices))
    train = split_sums(train)
    # Σ_n xhat[n, d] = 0: xhat = (x - mean) rstd and mean = Σ_n x / N, summed by linearity (SymPy)
    nn = sp.Symbol(n_.name + "'", integer=True)
    xi = [nn if i == n_ else i for i in idx]
    el = nt.element(xhat, xi, stop=lambda n: False).xreplace({flag: 1})
    zero = sp.simplify(linear_sum(el, nn, N)) == 0
    hat_sum = sp.Sum(nt.ref(xhat, xi), (nn, 0, N - 1))
    if zero:
        train = train.replace(lambda e: isinstance(e, sp.Sum) and len(e.limits) == 1
                              and e.function == XH[tuple(e.limits[0][0] if i == n_ else i for i in live)],
                              lambda e: sp.Integer(0))
    derived = sp.factor_terms(sp.collect(sp.expand(train), [nt.ref(d.grad_inputs[0], idx)]))
    dy, gamma = sp.IndexedBase(d.grad_inputs[0].name), nt.ref(by["gamma"], nt.align(idx, x.shape, by["gamma"].shape))
    dyp = dy[tuple(nn if i == n_ else i for i in live)]
    xhp = XH[tuple(nn if i == n_ else i for i in live)]
    book = sp.Mul(gamma * r_of(idx) / N, sp.Add(N * dy[live], -sp.Sum(dyp, (nn, 0, N - 1)),
                                                 -XH[live] * sp.Sum(dyp * xhp, (nn, 0, N - 1)), evaluate=False),
                  evaluate=False)
    ok = zero and sp.simplify(_canon(book) - _canon(derived)) == 0
    flag_sym = sp.Symbol(flag.name)
    doc.add(Heading(2, S.text("h_textbook")))
    doc.add(Para(S("bn_modes", t=m(flag_sym))))
    doc.add(Equation(lhs, evalmode, defines=nt.name(g), indices=live, role="simplified",
                     when=sp.Eq(flag, 0), note=[S.text("update_if")]))
    doc.add(Para(S("bn_train", t=m(flag_sym), x=m(nt.ref(x, idx)), xhat=m(nt.ref(xhat, idx)), r=m(r_of(idx)),
                   mean=m(m_of(idx)))))
    doc.add(Equation(hat_sum, sp.Integer(0), role="aux"))
    doc.add(Equation(lhs, derived, defines=nt.name(g), indices=live, role="simplified",
                     when=sp.Eq(flag, 1), note=[S.text("update_if")]))
    doc.add(Para(S("bn_textbook")))
    doc.add(Equation(lhs, book, defines=nt.name(g), indices=live, role="simplified", when=sp.Eq(flag, 1),
                     note=[S.text("update_if")]))
    doc.add(Equation(m(None, latex=r"dx_{\mathrm{textbook}} - dx_{\mathrm{derived}}", text="dx_textbook − dx_derived"),
                     sp.Integer(0) if ok else sp.Symbol("nonzero"), role="proof"))
    doc.textbook_ok = ok
