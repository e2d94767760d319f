"""Optimizers, the EMA and exponential_decay: torch.optim / TF1 semantics, convergence, dtypes, errors."""
import itertools

import numpy as np
import pytest

import symgrad as sg
from symgrad.cli import main

from conftest import BACKENDS, needs_torch, rel_err, torch

OPTIMIZERS = ["sgd", "adagrad", "rmsprop", "adam", "adamw", "tf_momentum", "tf_adam"]
STEPS = 100


def _problem(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2, n), rng.standard_normal(n), rng.standard_normal(n), \
        0.1 * rng.standard_normal((STEPS, n))


def _grad(a, b, noise, p, sign=1.0):
    """Gradient of the noisy quadratic sum(a p^2 / 2 - b p) (of its negative with sign=-1)."""
    return sign * (a * p - b + noise)


# ---- torch.optim, every flag combination, float64 single-tensor path ------------------------
def _combos():
    for mom, damp, wd, nest, mx in itertools.product([0, 0.9], [0, 0.3], [0, 0.01], [False, True],
                                                     [False, True]):
        if not nest or (mom > 0 and damp == 0):
            yield "sgd", dict(lr=0.01, momentum=mom, dampening=damp, weight_decay=wd, nesterov=nest,
                              maximize=mx), {}
    for lrd, wd, iav in itertools.product([0, 0.05], [0, 0.01], [0, 0.1]):
        yield "adagrad", dict(lr=0.1, lr_decay=lrd, weight_decay=wd, eps=1e-10), \
            dict(initial_accumulator_value=iav)
    for c, mom, wd in itertools.product([False, True], [0, 0.9], [0, 0.01]):
        yield "rmsprop", dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=wd, momentum=mom, centered=c), {}
    for name, ams, wd in itertools.product(["adam", "adamw"], [False, True], [0, 0.01]):
        yield name, dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=wd, amsgrad=ams), {}


def _torch_optimizer(name, params, h, init):
    O = torch.optim
    if name in ("adam", "adamw"):
        h = dict(h)
        h["betas"] = (h.pop("beta1"), h.pop("beta2"))
    cls = {"sgd": O.SGD, "adagrad": O.Adagrad, "rmsprop": O.RMSprop, "adam": O.Adam, "adamw": O.AdamW}[name]
    return cls(params, foreach=False, **h, **init)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,hyper,init", list(_combos()),
                         ids=lambda x: x if isinstance(x, str) else ",".join(f"{k}={v}" for k, v in x.items()))
def test_matches_torch_every_flag_combination(name, hyper, init, backend):
    a, b, p0, noise = _problem()
    k = sg.load(name, backend=backend)
    p = p0.copy()
    state = k.init(p, **init)
    tp = torch.tensor(p0.copy(), dtype=torch.float64, requires_grad=True)
    opt = _torch_optimizer(name, [tp], hyper, init)
    sign = -1.0 if hyper.get("maximize") else 1.0
    for i in range(STEPS):
        assert k.step(p, _grad(a, b, noise[i], p, sign), state, **hyper) is None
        tp.grad = torch.from_numpy(_grad(a, b, noise[i], tp.detach().numpy(), sign))
        opt.step()
    ref = tp.detach().numpy()
    assert rel_err(p, ref) <= 1e-12
    assert np.max(np.abs(p - p0)) > 1e-3, "the parameter moved"
    tstate = opt.state[tp]
    compared = [key for key in tstate if key in state and key != "step"]
    for key in compared:  # state buffers carry torch's names
        assert rel_err(state[key], tstate[key].numpy()) <= 1e-12, key
    assert state["step"] == STEPS


# ---- TF1 forms against REFERENCE.md's formulas ------------------------------------------------
def _tf_momentum_ref(p, grads, lr, momentum, use_nesterov):
    accum = np.zeros_like(p)
    for g in grads:
        accum = momentum * accum + g
        p = p - (lr * g + lr * momentum * accum) if use_nesterov else p - lr * accum
    return p


def _tf_adam_ref(p, grads, lr, b1, b2, eps):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        p = p - lr_t * m / (np.sqrt(v) + eps)
    return p


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nesterov", [False, True])
def test_tf_momentum_formula(nesterov, backend):
    rng = np.random.default_rng(3)
    p0, grads = rng.standard_normal(30), rng.standard_normal((STEPS, 30))
    k, p = sg.load("tf_momentum", backend=backend), p0.copy()
    st = k.init(p)
    for g in grads:
        k.step(p, g, st, lr=0.01, momentum=0.9, use_nesterov=nesterov)
    assert rel_err(p, _tf_momentum_ref(p0, grads, 0.01, 0.9, nesterov)) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_tf_adam_formula_and_eps_hat_relation_to_torch_adam(backend):
    rng = np.random.default_rng(4)
    p0, grads = rng.standard_normal(30), rng.standard_normal((STEPS, 30))
    k, p = sg.load("tf_adam", backend=backend), p0.copy()
    st = k.init(p)
    for g in grads:
        k.step(p, g, st, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-3)
    assert rel_err(p, _tf_adam_ref(p0, grads, 0.01, 0.9, 0.99, 1e-3)) <= 1e-12
    # with a large eps the two forms differ visibly: TF is not torch
    q, adam = p0.copy(), sg.load("adam", backend=backend)
    st = adam.init(q)
    for g in grads:
        adam.step(q, g, st, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-3)
    assert rel_err(p, q) > 1e-6


# ---- EMA and exponential_decay ------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("beta,expected", [(0.1, [1, 1.9, 2.89, 3.889, 4.8889]),
                                           (0.9, [1, 1.1, 1.29, 1.561, 1.9049])])
def test_ema_worked_example(beta, expected, backend):
    ema = sg.load("ema", backend=backend)
    avg = np.zeros(1)
    st = ema.init(avg)
    got, plain = [], None
    for x in [1.0, 2.0, 3.0, 4.0, 5.0]:
        ema.step(avg, np.array([x]), st, beta=beta)
        plain = x if plain is None else beta * plain + (1 - beta) * x
        got.append(avg[0])
        assert avg[0] == plain  # the same float operations as the recurrence
    np.testing.assert_allclose(got, expected, rtol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_formula(staircase, backend):
    ed = sg.load("exponential_decay", backend=backend)
    for step in [0, 1, 7, 99, 100, 101, 12345]:
        q = step / 100 if not staircase else step // 100
        assert ed.value(0.1, step, 100, 0.96, staircase=staircase) == pytest.approx(0.1 * 0.96 ** q, rel=1e-15)
    assert ed.value(0.1, 150, 100, 0.5, staircase=True) == 0.05
    assert ed.value(0.1, 150, 100, 0.5) == pytest.approx(0.1 * 0.5 ** 1.5, rel=1e-15)
    assert isinstance(ed.value(0.1, 3, 10, 0.5), float)


def test_exponential_decay_drives_sgd_like_tf1_minimize():
    """TF1's minimize(..., global_step): update t uses lr = decay(global_step = t - 1)."""
    ed, sgd = sg.load("exponential_decay"), sg.load("sgd")
    rng = np.random.default_rng(5)
    p0, grads = rng.standard_normal(5), rng.standard_normal((20, 5))
    p, st, ref = p0.copy(), sgd.init(p0), p0.copy()
    for t, g in enumerate(grads, 1):
        lr = ed.value(0.1, t - 1, 5, 0.5, staircase=True)
        sgd.step(p, g, st, lr=lr)
        ref = ref - 0.1 * 0.5 ** ((t - 1) // 5) * g
    assert rel_err(p, ref) <= 1e-14


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kwargs,arg", [(dict(decay_steps=0), "decay_steps"), (dict(lr=-1.0), "lr"),
                                        (dict(global_step=-1), "global_step")])
def test_exponential_decay_errors(kwargs, arg, backend):
    full = dict(lr=0.1, global_step=3, decay_steps=10, decay_rate=0.5, **{})
    full.update(kwargs)
    with pytest.raises(ValueError, match=arg):
        sg.load("exponential_decay", backend=backend).value(**full)


# ---- convergence: a quadratic bowl and the Rosenbrock function ---------------------------------
def _rosenbrock_grad(p):
    x, y = p
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def _bowl_grad(p):
    return np.array([1.0, 10.0]) * p


# name, hyperparameters, steps allowed on the bowl (|p| < 1e-3), on Rosenbrock (|p - 1| < 1e-2);
# about twice the steps measured when this table was written
CONVERGENCE = [
    ("sgd", dict(lr=1e-3, momentum=0.9), 1500, 2500),
    ("sgd", dict(lr=1e-3, momentum=0.9, nesterov=True), 1500, 2500),
    ("adagrad", dict(lr=0.5), 200, 20000),
    ("rmsprop", dict(lr=1e-3, momentum=0.9), 1000, 2500),
    ("rmsprop", dict(lr=1e-3, momentum=0.9, centered=True), 1000, 2500),
    ("adam", dict(lr=2e-2), 1000, 4000),
    ("adam", dict(lr=2e-2, amsgrad=True), 1000, 4000),
    ("adamw", dict(lr=2e-2, weight_decay=0.0), 1000, 4000),
    ("tf_momentum", dict(lr=1e-3, momentum=0.9), 1500, 2500),
    ("tf_momentum", dict(lr=1e-3, momentum=0.9, use_nesterov=True), 1500, 2500),
    ("tf_adam", dict(lr=2e-2), 1000, 4000),
]


@pytest.mark.parametrize("name,hyper,bowl_steps,rosen_steps", CONVERGENCE)
def test_minimizes_bowl_and_rosenbrock(name, hyper, bowl_steps, rosen_steps):
    k = sg.load(name)
    for grad, start, target, tol, budget in [(_bowl_grad, [3.0, -2.0], 0.0, 1e-3, bowl_steps),
                                             (_rosenbrock_grad, [-1.5, 2.0], 1.0, 1e-2, rosen_steps)]:
        p = np.array(start)
        st = k.init(p)
        for _ in range(budget):
            k.step(p, grad(p), st, **hyper)
            if np.max(np.abs(p - target)) < tol:
                break
        assert np.max(np.abs(p - target)) < tol, (grad.__name__, p, st["step"])
    assert sorted({c[0] for c in CONVERGENCE}) == sorted(OPTIMIZERS)


# ---- float32 against float64 --------------------------------------------------------------------
F32_CASES = [("sgd", dict(lr=0.01, momentum=0.9, nesterov=True)), ("sgd", dict(lr=0.01, maximize=True)),
             ("adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
             ("rmsprop", dict(lr=0.01, momentum=0.9, centered=True)), ("rmsprop", dict(lr=0.01)),
             ("adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)), ("adam", dict(lr=0.01)),
             ("adamw", dict(lr=0.01)), ("tf_momentum", dict(lr=0.01, momentum=0.9, use_nesterov=True)),
             ("tf_adam", dict(lr=0.01)), ("ema", dict(beta=0.9))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,hyper", F32_CASES)
def test_float32_tracks_float64(name, hyper, backend):
    a, b, p0, noise = _problem(n=1000)
    res = {}
    sign = -1.0 if hyper.get("maximize") else 1.0
    for dt in ("float32", "float64"):
        k = sg.load(name, backend=backend, dtype=dt)
        p = p0.astype(dt)
        st = k.init(p)
        assert all(v.dtype == dt for v in st.values() if isinstance(v, np.ndarray))
        for i in range(STEPS):
            k.step(p, _grad(a, b, noise[i], p.astype(np.float64), sign).astype(dt), st, **hyper)
        res[dt] = p
    assert res["float32"].dtype == np.float32
    assert rel_err(res["float32"], res["float64"]) <= 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_rows_for_every_optimizer_both_dtypes(backend):
    names = OPTIMIZERS + ["ema", "exponential_decay"]
    for dt in ("float64", "float32"):
        rep = sg.check(names, backend=backend, dtype=dt)
        assert rep.passed, rep.table()
        assert {r.kernel for r in rep.rows} == set(names)


def test_cli_check_shows_optimizer_rows_in_the_table():
    from click.testing import CliRunner
    r = CliRunner().invoke(main, ["check", "dense", "adam", "sgd"])
    assert r.exit_code == 0, r.output
    assert "dW" in r.output and "adam" in r.output and "f decreases" in r.output and "FAIL" not in r.output
    r = CliRunner().invoke(main, ["check", "--dtype", "float32", "rmsprop"])
    assert r.exit_code == 0 and "float32 vs f64" in r.output


def test_check_fails_for_a_rule_that_climbs():
    """The numeric check can fail: an 'optimizer' that steps uphill is reported."""
    @sg.optimizer(hypers=dict(lr=sg.hparam(0.1, "[0, inf)")), register=False)
    def uphill(s):
        return [(s.p, s.p + s.lr * s.g)]
    sg.REGISTRY.add(uphill)
    try:
        rows = sg.check(["uphill"]).rows
        assert rows and not any(r.passed for r in rows)
    finally:
        sg.REGISTRY.remove("uphill")
