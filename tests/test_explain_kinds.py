"""Explanations of optimizers, the EMA, the schedule and the LSTM: the printed equations are run.

Optimizers: the printed update listing (every variant merged, each line with its condition) is
evaluated for several steps and compared with ``symgrad.load(name).step``. The schedule: each printed
formula against ``value``. The LSTM: the printed one-step equations against a T = 1 run of the
generated kernel, and the printed back-propagation-through-time equations, looped over the steps,
against a T = 3 run.
"""
import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.explanation import explain, explainable
from symgrad.explanation.evaluate import MODULES, evaluate, run

OPTIMIZERS = [s.name for s in sg.REGISTRY if s.kind == "optimizer"]


def _value(expr, env):
    expr = sp.sympify(expr)
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    f = sp.lambdify(syms, expr, modules=MODULES)
    return f(*[env[s.name] for s in syms])


def _holds(cond, env) -> bool:
    if cond is None:
        return True
    res = cond.xreplace({s: sp.sympify(env[s.name]) for s in cond.free_symbols})
    assert res in (sp.true, sp.false), (cond, res)
    return bool(res)


def _examples(spec):
    """Hyperparameter sets: the spec's examples, with every required hyperparameter given."""
    out = []
    for ex in spec.meta["examples"]:
        ex = dict(ex)
        for n, h in spec.hypers.items():
            ex.setdefault(n, 0.05 if h.default is None else h.default_value())
        ex.setdefault("lr", 0.05) if "lr" in spec.hypers and ex.get("lr") is None else None
        out.append(ex)
    return out


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_printed_update_equations_run_like_the_kernel(name):
    spec = sg.REGISTRY.get(name)
    doc = explain(name).doc
    eqs = doc.equations("update")
    assert eqs, "no update equations printed"
    code_of = doc.symbols                       # display name -> code name
    disp = {v: k for k, v in code_of.items()}
    k = sg.load(name)
    rng = np.random.default_rng(1)
    for ex in _examples(spec):
        flags = {f: bool(ex.get(f, d)) for f, d in spec.flags.items()}
        hyp = {n: float(v) for n, v in ex.items() if n in spec.hypers}
        p0 = rng.standard_normal(6)
        p = p0.copy()
        state = k.init(p, **{n: hyp[n] for n in spec.init_hypers if n in hyp})
        env = {disp.get(spec.param, spec.param): p0.copy()}
        for n, init in spec.state.items():
            env[disp.get(n, n)] = np.full(6, float(init.xreplace({s: hyp[s.name] for s in init.free_symbols})))
        for t in range(1, 6):
            g = rng.standard_normal(6)
            k.step(p, g.copy(), state, **{n: v for n, v in hyp.items() if n in spec.step_hypers}, **flags)
            env.update({disp.get(n, n): v for n, v in hyp.items()}, t=t, **flags)
            env[disp.get(spec.grad, spec.grad)] = g
            derived = {n: bool(c.xreplace({s: sp.sympify({**hyp, "t": t}[s.name]) for s in c.free_symbols}))
                       for n, c in spec.derived.items()}
            env.update(derived)
            applied = 0
            for e in eqs:
                if _holds(e.when, env):
                    env[str(e.lhs)] = np.broadcast_to(_value(e.rhs, env), (6,)).astype(float)
                    applied += 1
            assert applied >= 1
            got = env[disp.get(spec.param, spec.param)]
            assert np.allclose(got, p, rtol=1e-12, atol=1e-14), (name, ex, t, got - p)
            for n in spec.state:
                assert np.allclose(env[disp.get(n, n)], state[n], rtol=1e-12, atol=1e-14), (name, n, t)


def test_merged_listing_covers_every_variant():
    """Each variant's equations are exactly the printed lines whose condition its flags satisfy."""
    from symgrad.explanation.optimizers import program
    for name in OPTIMIZERS:
        spec = sg.REGISTRY.get(name)
        prog = program(spec, expand_derived=False)
        assert prog is not None, name
        for v in spec.variants():
            env = dict(v.flags)
            sub = {}
            for eq, cond in prog:
                c = cond.xreplace({sp.Symbol(n): sp.sympify(b) for n, b in env.items()})
                if c == sp.true:
                    sub.setdefault("eqs", []).append(eq)
                else:
                    assert c == sp.false, (name, eq, c)
            assert tuple(sub.get("eqs", [])) == v.equations, (name, v.flags)


def test_adam_page_shows_bias_correction_and_eps_hat():
    doc = explain("adam").doc
    facts = [e for e in doc.equations("fact")]
    b1, t = sp.Symbol("beta1", positive=True), sp.Symbol("t", integer=True, positive=True)
    g = sp.Symbol("g", real=True)
    assert any(sp.simplify(e.rhs - g * (1 - b1 ** t)) == 0 for e in facts)
    eps_hat = [e for e in facts if str(e.lhs) == "epsilonhat"][0]
    eps, b2 = sp.Symbol("epsilon", real=True), sp.Symbol("beta2", real=True)
    assert sp.simplify(eps_hat.rhs - eps * sp.sqrt(1 - b2 ** t)) == 0
    assert "epsilonhat" in {str(e.lhs) for e in explain("tf_adam").doc.equations("fact")}
    sgd = explain("sgd").doc.equations("fact")
    mu, bb = sp.Symbol("mu", real=True), sp.Symbol("b", real=True)
    eta, prev = sp.Symbol("eta", real=True), sp.Symbol("eta_prev", positive=True)
    assert sp.simplify(sgd[-1].rhs - mu ** 2 * bb * (eta - prev)) == 0
    zh = explain("adam", lang="zh").markdown()
    assert "偏差修正" in zh and "参数更新" in zh and r"\leftarrow" in zh


def test_ema_worked_example_is_computed_by_the_kernel():
    from symgrad.explanation.model import Table
    from symgrad.explanation.teaching import ema_example
    table = [b for b in explain("ema").doc.blocks if isinstance(b, Table)][-1]
    col = [float(r[2][0]) for r in table.rows]
    assert col == pytest.approx([1, 1.9, 2.89, 3.889, 4.8889], rel=1e-12)        # REFERENCE.md
    assert [float(r[3][0]) for r in table.rows] == pytest.approx([1, 1.1, 1.29, 1.561, 1.9049], rel=1e-12)
    assert ema_example()[0.1] == pytest.approx(col, rel=1e-11)


def test_schedule_formulas_evaluate_to_the_kernel():
    spec = sg.REGISTRY.get("exponential_decay")
    doc = explain("exponential_decay").doc
    eqs = doc.equations("schedule")
    assert len(eqs) == 2
    k = sg.load("exponential_decay")
    disp = {v: k_ for k_, v in doc.symbols.items()}
    for eq in eqs:
        flags = dict(eq.note)
        for step in (0, 1, 2, 3, 7, 10):
            args = dict(lr=0.1, global_step=float(step), decay_steps=3.0, decay_rate=0.5)
            env = {disp.get(n, n): v for n, v in args.items()}
            got = float(_value(eq.rhs, env))
            assert got == pytest.approx(k.value(**args, **flags), rel=1e-14), (flags, step)
    assert spec.variants()[1].equations[0].rhs.has(sp.floor)
    md = explain("exponential_decay", lang="zh").markdown()
    assert r"\rfloor" in md and "staircase" in md


def test_every_builtin_has_an_explanation():
    builtin = {s.name for s in sg.REGISTRY}
    assert builtin <= set(explainable())
    for name in ("sgd", "exponential_decay", "lstm"):
        for lang in ("en", "zh"):
            ex = explain(name, lang=lang)
            assert ex.text() and ex.latex() and ex.markdown()


def test_condition_lines_render_in_every_format():
    ex = explain("sgd")
    assert r"\qquad \text{if }" in ex.markdown() and "if maximize" in ex.text()
    assert r"\text{若 }" in explain("sgd", lang="zh").latex()


def _sizes(doc, dim_sizes):
    sizes = dict(dim_sizes)
    for i, d in doc.dims.items():
        sizes[i] = int(sp.sympify(sp.sympify(d).xreplace(dim_sizes)))
    return sizes


def test_lstm_bptt_equations_looped_over_time_match_the_kernel():
    """Run the printed one-step equations for t = 0..T-1, then backward for t = T-1..0 with the printed
    BPTT recurrences, and the printed sums over t; compare with the generated kernel at T = 3."""
    spec = sg.REGISTRY.get("lstm")
    doc = explain("lstm").doc
    dims = {str(d): d for d in spec.dims}
    dim_sizes = {dims["T"]: 3, dims["N"]: 2, dims["D"]: 3, dims["H"]: 2}
    sizes = _sizes(doc, dim_sizes)
    rng = np.random.default_rng(3)
    shape = lambda s: tuple(int(sp.sympify(sp.sympify(d).xreplace(dim_sizes))) for d in s)  # noqa: E731
    vals = {i.name: rng.standard_normal(shape(i.shape)) for i in spec.inputs}
    k = sg.load("lstm")
    (hs, hT, cT), cache = k.forward(*vals.values())
    dhs, dhT, dcT = rng.standard_normal(hs.shape), rng.standard_normal(hT.shape), rng.standard_normal(cT.shape)
    ref = dict(zip(["dx", "dh0", "dc0", "dW_ih", "dW_hh", "db_ih", "db_hh"], k.backward(cache, dhs, dhT, dcT)))
    params = {n: vals[n] for n in ("W_ih", "W_hh", "b_ih", "b_hh")}
    T = 3

    def step(t, h, c, dh_new, dc_new):
        env = {"x": vals["x"][t], "h": h, "c": c, **params, "dh_new": dh_new, "dc_new": dc_new}
        return {eq.defines: v for eq, v in run(doc, env, dim_sizes)}

    hin, cin = [], []
    h, c = vals["h0"], vals["c0"]
    zero = np.zeros_like(h)
    for t in range(T):
        hin.append(h)
        cin.append(c)
        r = step(t, h, c, zero, zero)
        h, c = r["h_new"], r["c_new"]
    assert np.allclose(np.stack([*hin[1:], h]), hs, rtol=1e-12) and np.allclose(c, cT, rtol=1e-12)

    bptt = {e.defines: e for e in doc.equations("bptt")}
    dh = np.zeros((T + 1,) + hT.shape)
    dc = np.zeros_like(dh)
    dh[T], dc[T] = dhT, dcT
    dgates = [None] * T
    for t in reversed(range(T)):
        env = {"dh": dh, "dc": dc, "dhs": dhs}
        ups = {n: evaluate(bptt[n].rhs, env, sizes, bptt[n].indices)[t] for n in ("dh_new", "dc_new")}
        r = step(t, hin[t], cin[t], ups["dh_new"], ups["dc_new"])
        dh[t], dc[t], dgates[t] = r["dh"], r["dc"], r["dgates"]
    env = {"dh": dh, "dc": dc, "dgates": np.stack(dgates), "x": vals["x"], "h": np.stack(hin), **params}
    for name, want in ref.items():
        e = bptt[name]
        got = evaluate(e.rhs, env, sizes, e.indices)
        assert np.allclose(got, want, rtol=1e-10, atol=1e-12), (name, np.max(np.abs(got - want)))


def test_lstm_page_shows_gates_blocks_and_the_plan():
    ex = explain("lstm")
    doc = ex.doc
    blocks = doc.equations("blocks")
    assert len(blocks) == 1 and [str(a) for a in blocks[0].rhs.args] == ["dz_i", "dz_f", "dz_g", "dz_o"]
    text = ex.text()
    assert "dgates = [dz_i | dz_f | dz_g | dz_o]" in text and "t7 = dz_i" in text
    assert "dgates[n, H + k] = dz_f[n, k]" in text          # the transpose of the slice z_f
    assert "dc_new_total[n, k] = " in text                   # the output c_new is used again in the step
    assert r"\middle|" in ex.markdown()
    zh = explain("lstm", lang="zh").markdown()
    assert "随时间反向传播" in zh and "链式法则" in zh and "前向传播" in zh
    from symgrad.ir.recurrent import plan
    p = plan(sg.REGISTRY.get("lstm"))
    assert p.pre and p.post and "循环之前" in zh
