"""Teaching sections of optimizer pages, from ``symgrad.derive.facts`` and the generated kernels.

- Adam, AdamW: the bias correction, ``E[m_t] = (1 - beta1^t) g``, summed by ``sympy.summation``.
- adam, tf_adam: TensorFlow's epsilon hat, solved by ``sympy.solve`` from the two registered rules.
- sgd: torch's Nesterov vs the CS231n form, their difference ``mu^2 (lr - lr_prev) buf`` factored by SymPy.
- ema: the worked example of docs/reference.md, computed by running ``symgrad.load("ema")``.
Each section is attached to the optimizers whose rules the fact was derived from (``FACTS``).
"""
from __future__ import annotations

import sympy as sp

from ..derive import facts
from ..registry import REGISTRY
from ..runtime import load
from .names import display_map, rename
from .model import Equation, Heading, Para, Table, m

FACTS = {"adam": ("bias", "epshat"), "adamw": ("bias",), "tf_adam": ("epshat",), "sgd": ("nesterov",),
         "ema": ("ema",)}


def add_facts(doc, spec, S, D):
    if REGISTRY.get(spec.name) is not spec:   # a user's optimizer of the same name gets no built-in facts
        return
    for key in FACTS.get(spec.name, ()):
        {"bias": _bias, "epshat": _epshat, "nesterov": _nesterov, "ema": _ema}[key](doc, S, D)


def _bias(doc, S, D):
    f = facts.adam_bias_correction()
    st = f.steps
    E = sp.Symbol("E[m_t]")
    mt = sp.Symbol("m_t")
    doc.add(Heading(2, S.text("h_bias")))
    doc.add(Para(S("bias_intro")))
    doc.add(Equation(mt, st["m_t"], role="fact"))
    doc.add(Para(S("bias_expect")))
    Em = m(None, latex=r"\mathbb{E}[m_{t}]", text="E[m_t]")
    doc.add(Equation(Em, st[E], role="fact"))
    doc.add(Para(S("bias_sum")))
    doc.add(Equation(st[E], st["evaluated"], role="fact"))
    doc.add(Equation(Em, f.statement.rhs, role="fact"))
    doc.add(Para(S("bias_factor", f=m(st["bias factor"]))))


def _update_of(name, **flags):
    """The parameter change of one step, with the new state values as symbols: ``p_new - p``."""
    spec = REGISTRY.get(name)
    eqs = spec.equations(**{n: flags.get(n, False) for n in spec.flag_names})
    p = vars(spec.symbols)[spec.param]
    last = [e for e in eqs if e.lhs == p][-1]
    return last.rhs - p


def _epshat(doc, S, D):
    f = facts.tf_adam_epsilon_hat()
    torch_d, tf_d = _update_of("adam"), _update_of("tf_adam")
    syms = {s.name: s for s in torch_d.free_symbols | tf_d.free_symbols}
    tf_d = tf_d.xreplace({syms["m"]: syms["exp_avg"], syms["v"]: syms["exp_avg_sq"]})
    eps, eps_hat = syms["eps"], sp.Symbol("epsilonhat", positive=True)
    tf_hat = tf_d.xreplace({eps: eps_hat})
    sol = sp.solve(sp.Eq(tf_hat, torch_d), eps_hat)
    claimed = f.steps["eps_hat"]
    if len(sol) != 1 or sp.simplify(sol[0] - claimed) != 0:  # pragma: no cover - a bug in a rule or SymPy
        raise AssertionError(f"eps_hat: {sol} vs {claimed}")
    D = lambda e: rename(e, display_map(["lr", "eps", "exp_avg", "exp_avg_sq"]))  # noqa: E731 - adam's names
    doc.add(Heading(2, S.text("h_epshat")))
    doc.add(Para(S("epshat_intro")))
    doc.add(Equation(m(None, latex=r"\Delta p_{\mathrm{torch}}", text="Δp_torch"), D(torch_d), role="fact"))
    doc.add(Equation(m(None, latex=r"\Delta p_{\mathrm{TF}}(\hat{\epsilon})", text="Δp_TF(ε̂)"), D(tf_hat),
                     role="fact"))
    doc.add(Para(S("epshat_solve")))
    doc.add(Equation(eps_hat, D(sol[0]), role="fact"))
    doc.add(Para(S("epshat_note")))


def _nesterov(doc, S, D):
    f = facts.nesterov_torch_vs_cs231n()
    st = f.steps
    prev = {s.name: s for e in st.values() for s in e.free_symbols}.get("lr_prev")
    D0 = D
    D = lambda e: D0(e).xreplace({prev: sp.Symbol("eta_prev", positive=True)})  # noqa: E731
    doc.add(Heading(2, S.text("h_nesterov")))
    doc.add(Para(S("nesterov_intro")))
    doc.add(Equation(sp.Symbol("p'_torch"), D(st["torch p'"]), role="fact"))
    doc.add(Equation(sp.Symbol("p'_CS231n"), D(st["cs231n p'"]), role="fact"))
    doc.add(Para(S("nesterov_diff")))
    doc.add(Equation(sp.Symbol("p'_CS231n") - sp.Symbol("p'_torch"), D(st["difference"]), role="fact"))
    doc.add(Para(S("nesterov_note")))


EMA_X = (1.0, 2.0, 3.0, 4.0, 5.0)
EMA_BETAS = (0.1, 0.9)


def ema_example(betas=EMA_BETAS, xs=EMA_X) -> dict:
    """{beta: [avg after each step]} from the generated ema kernel (float64, numpy backend)."""
    import numpy as np

    k = load("ema")
    out = {}
    for beta in betas:
        avg = np.zeros(1)
        state = k.init(avg)
        vals = []
        for x in xs:
            k.step(avg, np.array([x]), state, beta=beta)
            vals.append(float(avg[0]))
        out[beta] = vals
    return out


def _num(x: float) -> str:
    return f"{x:.12g}"


def _ema(doc, S, D):
    res = ema_example()
    doc.add(Heading(2, S.text("h_worked")))
    doc.add(Para(S("ema_worked")))
    header = [S.text("col_step"), S.text("col_x")] + [f"avg (β = {b:g})" for b in EMA_BETAS]
    rows = [[[str(t + 1)], [_num(x)]] + [[_num(res[b][t])] for b in EMA_BETAS] for t, x in enumerate(EMA_X)]
    doc.add(Table(header, rows))
