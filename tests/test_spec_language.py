"""Issue 14: the spec language is correct by construction.

One section per item: (1) hyperparameter defaults never leak between specs, (2) user names never
collide with names of the generated code, (3) numbers mean the same on both targets, (4) derivation
is bounded, (5) activations are stable by default, (6) float32 stays float32, (7) scalar optimizer
state. Every kernel test runs on both targets.
"""
import contextlib

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

from conftest import BACKENDS, rel_err

N, D = sg.dims("N D")
z = sp.Symbol("z", real=True)


@contextlib.contextmanager
def registered(*specs):
    for s in specs:
        sg.REGISTRY.add(s)
    try:
        yield
    finally:
        for s in specs:
            sg.REGISTRY.remove(s.name)


def _rows(n=3, d=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


# -- (1) hyperparameter defaults --------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_user_hyper_default_does_not_change_the_builtin_one(backend):
    @sg.layer(x=(N, D), register=False)
    def eps_user(x, eps=1e-6):
        return x / sg.sqrt(x * x + eps)

    ln = sg.REGISTRY.get("layernorm")
    assert eps_user.hypers[0].default == 1e-6 and ln.hypers[0].default == 1e-5
    assert eps_user.hypers[0] != ln.hypers[0]
    x, g, b = _rows(), np.ones(4), np.zeros(4)
    k = sg.load("layernorm", backend=backend)
    y, _ = k.forward(x, g, b)
    y5, _ = k.forward(x, g, b, eps=1e-5)
    assert np.array_equal(y, y5)
    files = sg.REGISTRY.emit(ln, "numpy")
    assert "1e-05" in files["numpy/layernorm.py"] and "1e-06" not in files["numpy/layernorm.py"]
    with registered(eps_user):
        u = sg.load("eps_user", backend=backend)
        a, _ = u.forward(x)
        assert rel_err(a, x / np.sqrt(x * x + 1e-6)) < 1e-14


def test_a_hyper_default_must_be_finite():
    with pytest.raises(sg.SpecError, match="eps.*finite default.*inf"):
        @sg.layer(x=(N, D), register=False)
        def bad_eps(x, eps=float("inf")):
            return x * eps


# -- (2) names that the generated code uses ---------------------------------------------------
def test_an_input_named_like_an_upstream_gradient_is_a_spec_error():
    with pytest.raises(sg.SpecError, match=r"c_dy: input 'dy' is the name of the gradient of 'y'"):
        @sg.layer(x=(N, D), dy=(N, D), register=False)
        def c_dy(x, dy):
            return x * dy


def test_a_hyper_named_like_a_dimension_is_a_spec_error():
    with pytest.raises(sg.SpecError, match=r"c_hn: dimension 'N' has the name of a hyperparameter"):
        @sg.layer(x=(N, D), register=False)
        def c_hn(x, N=2.0):
            return x * N


@pytest.mark.parametrize("name", ["n_elems", "t0", "i1", "scratch", "cache", "dtype", "exp", "NAME", "abs",
                                  "sg_max", "x_steps", "INFINITY", "len"])
def test_names_the_generated_code_uses_are_refused(name):
    with pytest.raises(sg.SpecError, match=f"{name}.*reserved in generated code"):
        sg.layer("c_reserved", **{name: (N, D)}, register=False)(eval(f"lambda {name}: {name} * 2"))  # noqa: S307
    with pytest.raises(sg.SpecError, match="reserved"):
        sg.dims(name)


def test_optimizer_names_that_c_uses_for_elements_are_refused():
    with pytest.raises(sg.SpecError, match=r"c_opt: name 'm_i' is what the generated C step calls"):
        @sg.optimizer(hypers=dict(lr=0.1, m_i=0.5), state=dict(m=0), register=False)
        def c_opt(s):
            return [(s.m, s.m_i * s.m + s.g), (s.p, s.p - s.lr * s.m)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sym", ["da", "n_elems", "dz", "exp", "t0"])
def test_an_activation_formula_in_any_symbol_is_renamed_and_correct(sym, backend):
    v = sp.Symbol(sym, real=True)
    spec = sg.activation(f"act_{sym}", v / (1 + sp.exp(-v)), register=False)
    assert [i.name for i in spec.inputs] == ["dz" if sym == "dz" else "z"]  # dz is free: its gradient is ddz
    with registered(spec):
        rep = sg.check([spec.name], backend=backend)
        assert rep.passed, rep.table()
        k = sg.load(spec.name, backend=backend)
        x = np.linspace(-5, 5, 7)
        a, cache = k.forward(x)
        (dz,) = k.backward(cache, np.ones_like(x))
        s = 1 / (1 + np.exp(-x))
        assert rel_err(a, x * s) < 1e-14 and rel_err(dz, s + x * s * (1 - s)) < 1e-13


# -- (3) one numeric meaning ------------------------------------------------------------------
CONSTANTS = {"two_70": (z * 2 ** 70, 2.0 ** 70), "ten_20": (z * 10 ** 20, 1e20), "pi": (z * sp.pi, np.pi),
             "e": (z * sp.E, np.e), "sqrt2": (z * sp.sqrt(2), np.sqrt(2)),
             "gelu_c": (z * sp.sqrt(2 / sp.pi), np.sqrt(2 / np.pi)), "ten_400": (z * 10 ** 400, np.inf),
             "inf": (z * sp.oo, np.inf), "third": (z / 3, 1 / 3), "big_ratio": (z * sp.Rational(2 ** 80 + 1, 3 ** 40), (2 ** 80 + 1) / 3 ** 40)}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CONSTANTS))
def test_constants_mean_the_same_on_both_targets(case, dtype):
    formula, value = CONSTANTS[case]
    spec = sg.activation(f"const_{case}", formula, register=False)
    x = np.array([0.5, -2.0, 3.0], dtype=dtype)
    with registered(spec), np.errstate(over="ignore", invalid="ignore"):
        c = np.dtype(dtype).type(value)  # what NumPy makes of the constant next to a float32 array
        for backend in [b.values[0] if hasattr(b, "values") else b for b in BACKENDS]:
            k = sg.load(spec.name, backend=backend, dtype=dtype)
            a, cache = k.forward(x)
            (dz,) = k.backward(cache, np.ones_like(x))
            assert a.dtype == dz.dtype == np.dtype(dtype)
            assert np.array_equal(a, x * c), (backend, a, x * c)
            assert np.array_equal(dz, np.full_like(x, c)), (backend, dz)


def test_files_print_constants_as_literals_of_each_target():
    spec = sg.activation("const_lit", z * sp.pi * 2 ** 70 + sp.sqrt(2) * z ** 2, register=False)
    import re
    files = {**sg.REGISTRY.emit(spec, "numpy"), **sg.REGISTRY.emit(spec, "c")}
    py = files["numpy/const_lit.py"].split('"""', 2)[2]            # the code after the docstring
    c = re.sub(r"/\*.*?\*/", "", files["c/const_lit.c"], flags=re.S)  # the code without comments
    for code in (py, c):
        assert "M_PI" not in code and "M_SQRT2" not in code and "1180591620717411303424" not in code
        assert "3.708937962535487e+21" in code  # 2**70 pi, one float64 literal on both targets


@pytest.mark.parametrize("text", ["f=z*9**9**9", "f=exp(exp(exp(100)))*z", "f=z*2**(-100000)"])
def test_absurd_constants_are_a_spec_error_before_evaluation(text):
    import time
    from symgrad.spec.parse import parse_definition
    t = time.perf_counter()
    with pytest.raises(sg.SpecError, match=r"formula .* the constant .* (digits|larger than)"):
        parse_definition(text)
    assert time.perf_counter() - t < 2.0


def test_absurd_constants_in_a_python_spec_are_a_spec_error():
    with pytest.raises(sg.SpecError, match=r"c_absurd: formula: the constant exp\(exp\(100\)\)"):
        @sg.layer(x=(N, D), register=False)
        def c_absurd(x):
            return x * sp.exp(sp.exp(sp.exp(100)))


# -- (6) float32 stays float32 -----------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_function_of_a_dimension_keeps_float32(backend):
    E = sg.dims("E")[0]

    @sg.layer(q=(N, E), register=False)
    def scaled(q, eps=1e-3):
        return q / sp.sqrt(E) + sg.exp(q) * sp.log(E) * sp.sqrt(eps)

    with registered(scaled):
        q = _rows(3, 5).astype(np.float32)
        k = sg.load("scaled", backend=backend, dtype="float32")
        y, cache = k.forward(q)
        (dq,) = k.backward(cache, np.ones_like(y))
        assert y.dtype == dq.dtype == np.float32
        q64 = q.astype(np.float64)
        assert rel_err(y, q64 / np.sqrt(5) + np.exp(q64) * np.log(5) * np.sqrt(1e-3)) < 2e-6
        assert rel_err(dq, 1 / np.sqrt(5) + np.exp(q64) * np.log(5) * np.sqrt(1e-3)) < 2e-6


# -- (4) the derivation budget -----------------------------------------------------------------
SLOW_FORMULAS = {
    "gelu_one": "0.5*z*(1+tanh(sqrt(2/pi)*(z+0.044715*z**3)))",
    "tanh3": "tanh(tanh(tanh(z)))",
    "tanh4": "tanh(tanh(tanh(tanh(z))))",
    "max30": "Max(" + ", ".join(f"tanh({k}*z)" for k in range(1, 31)) + ")",
    "div80": "/".join(["z"] * 80),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(SLOW_FORMULAS))
def test_formulas_that_hung_derive_within_ten_seconds_and_check(case, backend):
    import time
    from symgrad.spec.parse import parse_formula
    t = time.perf_counter()
    spec = sg.activation(f"slow_{case}", parse_formula(SLOW_FORMULAS[case]), register=False)
    spec.derivation
    sg.REGISTRY.emit(spec, backend)
    assert time.perf_counter() - t < 10.0
    with registered(spec):
        if case == "div80":  # z**-78: finite differences at random points near 0 mean nothing
            x = np.linspace(0.9, 1.1, 5)
            a, cache = sg.load(spec.name, backend=backend).forward(x)
            (dz,) = sg.load(spec.name, backend=backend).backward(cache, np.ones_like(x))
            assert rel_err(a, x ** -78.0) < 1e-13 and rel_err(dz, -78.0 * x ** -79.0) < 1e-13
        else:
            rep = sg.check([spec.name], backend=backend)
            assert rep.passed, rep.table()


def test_bounded_rewrites_fall_back():
    import time
    from symgrad.derive.budget import bounded
    big = sp.Add(*[sp.tanh(k * z) for k in range(1, 40)])
    assert bounded(sp.simplify, big, default="plain") == "plain"              # too many operations
    t = time.perf_counter()
    assert bounded(time.sleep, 5, default="plain", seconds=0.2) == "plain"     # too long
    assert time.perf_counter() - t < 2
    assert bounded(sp.solve, sp.Eq(z ** 2, 4), z) == [-2, 2]                   # small: done


def test_max_of_many_terms_has_a_log_depth_derivative():
    from symgrad.spec.minmax import PairMax
    spec = sg.activation("many_max", sp.Max(*[z + k for k in range(1, 4)], z * z, 2 * z), register=False)
    f = spec.outputs[0].expr
    assert isinstance(f, PairMax) and all(len(m.args) == 2 for m in f.atoms(sp.Max))
    with registered(spec):
        x = np.array([-3.0, -0.2, 0.5, 2.5, 4.0])
        for backend in [b.values[0] if hasattr(b, "values") else b for b in BACKENDS]:
            k = sg.load("many_max", backend=backend)
            a, cache = k.forward(x)
            (dz,) = k.backward(cache, np.ones_like(x))
            assert np.array_equal(a, np.maximum.reduce([x + 1, x + 2, x + 3, x * x, 2 * x]))
            assert np.array_equal(dz, np.where(x * x > x + 3, 2 * x, 1.0))


# -- (5) stable by default ---------------------------------------------------------------------
def _torch():
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    return torch


def _naive_and_torch():
    """Naively written formulas (SymPy) beside the stable functions torch ships for them."""
    torch = _torch()
    F = torch.nn.functional
    return {
        "swish": (lambda u: u / (1 + sp.exp(-u)), F.silu),
        "zsig": (lambda u: u * (1 / (1 + sp.exp(-u))), F.silu),
        "softplus": (lambda u: sp.log(1 + sp.exp(u)), lambda t: F.softplus(t, threshold=1e30)),
        "gelu_tanh": (lambda u: u / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (u + sp.Float(0.044715) * u ** 3))),
                      lambda t: F.gelu(t, approximate="tanh")),
        "mish": (lambda u: u * sp.tanh(sp.log(1 + sp.exp(u))), F.mish),
        "sigmoid": (lambda u: 1 / (1 + sp.exp(-u)), torch.sigmoid),
        "tanh": (sp.tanh, torch.tanh),
        "half": (lambda u: u / 2, lambda t: t / 2),
        "shift": (lambda u: u - 3, lambda t: t - 3),
    }


def _grid(dtype, extreme=True):
    """z in [-1e3, 1e3], exp's overflow thresholds (88.7 float32, 709.8 float64), 1e4 and, with
    ``extreme``, on to the largest float of the dtype."""
    big = float(np.finfo(dtype).max)
    edges = [88.7, 88.8, 103.9, 709.7, 709.8, 745.2, 1e4] + ([1e30, 3e38, big / 4, big] if extreme else [])
    return np.concatenate([np.linspace(-1e3, 1e3, 801), edges, [-e for e in edges], [0.0]]).astype(dtype)


def _finite_where_torch_is(spec, torch_fn, dtype, backend, extreme=True):
    torch = _torch()
    x = _grid(dtype, extreme)
    t = torch.tensor(x, requires_grad=True)  # torch in the same dtype
    with np.errstate(all="ignore"):
        torch_fn(t).sum().backward()
        ty, tg = torch_fn(torch.tensor(x)).detach().numpy(), t.grad.numpy()
        tg32 = tg
        k = sg.load(spec.name, backend=backend, dtype=dtype)
        a, cache = k.forward(x)
        (dz,) = k.backward(cache, np.ones_like(x))
    ref_ok = np.isfinite(ty.astype(dtype)) & np.isfinite(tg32)
    bad = ref_ok & ~np.isfinite(dz)
    assert not bad.any(), f"{spec.name} ({spec.doc}) {backend} {dtype}: non-finite gradient at z = {x[bad][:5]}"
    tol = 1e-9 if dtype == "float64" else 1e-4
    close = ref_ok & (np.abs(x) < 1e30)  # beyond, torch's own formulas lose all digits (z**3 overflows)
    err = np.abs(dz[close] - tg[close]) / (1 + np.abs(tg[close]))
    assert err.max() < tol, (spec.name, backend, dtype, x[close][np.argmax(err)], err.max())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["swish", "zsig", "softplus", "gelu_tanh", "mish"])
def test_naive_activations_get_stable_gradients(name, dtype):
    naive, torch_fn = _naive_and_torch()[name]
    spec = sg.activation(f"naive_{name}", naive(z), register=False)
    with registered(spec):
        for backend in [b.values[0] if hasattr(b, "values") else b for b in BACKENDS]:
            _finite_where_torch_is(spec, torch_fn, dtype, backend)


@pytest.mark.parametrize("seed", range(16))
def test_random_compositions_get_stable_gradients(seed):
    import random
    rng = random.Random(seed)
    prims = _naive_and_torch()
    names = [rng.choice(sorted(prims)) for _ in range(rng.randint(2, 3))]
    f, tf = z, (lambda t: t)
    for n in names:
        f = prims[n][0](f)
        tf = (lambda g, h: (lambda t: h(g(t))))(tf, prims[n][1])
    spec = sg.activation(f"composed_{seed}", f, register=False, doc=" o ".join(reversed(names)))
    with registered(spec):
        for backend in [b.values[0] if hasattr(b, "values") else b for b in BACKENDS]:
            for dtype in ("float64", "float32"):
                # SymPy distributes (z sigma(z))**3 into z**3 sigma(z)**3 (0 * inf past 1e102): up to 1e4
                _finite_where_torch_is(spec, tf, dtype, backend, extreme=False)


# -- (7) scalar optimizer state -----------------------------------------------------------------
def _nadam_radam_combos():
    import itertools
    for name, wd, dec, mx in itertools.product(["nadam", "radam"], [0, 0.01], [False, True], [False, True]):
        h = dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=wd, decoupled_weight_decay=dec, maximize=mx)
        if name == "nadam":
            h["momentum_decay"] = 0.004
        yield name, h


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,hyper", list(_nadam_radam_combos()),
                         ids=lambda x: x if isinstance(x, str) else ",".join(f"{k}={v}" for k, v in x.items()))
def test_nadam_radam_match_torch_every_flag_combination(name, hyper, backend):
    torch = _torch()
    rng = np.random.default_rng(3)
    a, b, p0 = rng.uniform(0.5, 2, 40), rng.standard_normal(40), rng.standard_normal(40)
    noise = 0.1 * rng.standard_normal((100, 40))
    sign = -1.0 if hyper["maximize"] else 1.0
    k = sg.load(name, backend=backend)
    p = p0.copy()
    state = k.init(p)
    if name == "nadam":
        assert state["mu_product"].shape == () and state["mu_product"].dtype == np.float64
    th = {key: v for key, v in hyper.items() if key not in ("beta1", "beta2")}
    tp = torch.tensor(p0.copy(), requires_grad=True)
    cls = torch.optim.NAdam if name == "nadam" else torch.optim.RAdam
    opt = cls([tp], betas=(hyper["beta1"], hyper["beta2"]), foreach=False, **th)
    for i in range(100):
        k.step(p, sign * (a * p - b + noise[i]), state, **hyper)
        tp.grad = torch.from_numpy(sign * (a * tp.detach().numpy() - b + noise[i]))
        opt.step()
    assert rel_err(p, tp.detach().numpy()) <= 1e-12
    assert np.max(np.abs(p - p0)) > 1e-3
    for key, v in opt.state[tp].items():
        if key in state and key != "step":
            assert rel_err(state[key], v.numpy()) <= 1e-12, key
    assert state["step"] == 100


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_user_optimizer_with_scalar_state(backend):
    @sg.optimizer(hypers=dict(lr=0.1, decay=sg.hparam(0.5, "[0, 1]")), state=dict(scale=sg.scalar(2.0), m=0),
                  register=False)
    def decayed(s):
        """scale = decay scale (once per step); m = m + g; p = p - lr scale m."""
        return [(s.scale, s.scale * s.decay), (s.m, s.m + s.g), (s.p, s.p - s.lr * s.scale * s.m)]

    with registered(decayed):
        for dtype in ("float64", "float32"):
            k = sg.load("decayed", backend=backend, dtype=dtype)
            p = np.ones((2, 3), dtype=dtype)
            st = k.init(p)
            assert st["scale"].shape == () and st["scale"].dtype == dtype and st["m"].shape == (2, 3)
            ref, m, scale = np.ones((2, 3)), 0.0, 2.0
            for i in range(5):
                g = np.full((2, 3), float(i + 1))
                k.step(p, g.astype(dtype), st)
                scale *= 0.5
                m = m + g
                ref = ref - 0.1 * scale * m
            assert float(st["scale"]) == scale and rel_err(p, ref) < (1e-15 if dtype == "float64" else 1e-6)
            with pytest.raises(ValueError, match=r"state\['scale'\]: expected an array of shape \(\)"):
                k.step(p, g.astype(dtype), {**st, "scale": np.ones(3, dtype=dtype)})
        assert sg.check(["decayed"], backend=backend).passed


def test_scalar_state_may_not_read_arrays():
    with pytest.raises(sg.SpecError, match=r"c_bad_scalar .*scalar state scale = .* may use only .* uses \['g'\]"):
        @sg.optimizer(hypers=dict(lr=0.1), state=dict(scale=sg.scalar(1.0)), register=False)
        def c_bad_scalar(s):
            return [(s.scale, s.scale * s.g), (s.p, s.p - s.lr * s.scale)]


# -- (8) documentation ---------------------------------------------------------------------------
SPEC_FUNCTIONS = ["abs", "activation", "apply", "constant", "dims", "einsum", "exp", "hparam", "hyper", "index",
                  "layer", "log", "loss", "max", "maximum", "mean", "one_hot", "optimizer", "recurrent", "scalar",
                  "schedule", "sqrt", "stop_gradient", "sum", "tanh", "where"]


@pytest.mark.parametrize("name", SPEC_FUNCTIONS)
def test_every_public_spec_function_documents_its_arguments_and_an_example(name):
    import inspect
    fn = getattr(sg, name)
    doc = inspect.getdoc(fn) or ""
    assert "Example" in doc, name
    for p in inspect.signature(fn).parameters:
        assert p in doc, (name, p)
    assert "shape" in doc.lower() or "Shape" in doc, name


def test_spec_language_reference_examples_run_and_check_on_both_targets():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "spec-language.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    ns = {}
    for code in blocks:
        exec(compile(code, "spec-language.md", "exec"), ns)  # noqa: S102 - our own documentation
    specs = [ns["my_conv2d"], ns["rmsnorm"], ns["gru"], ns["debiased_momentum"]]
    with registered(*specs):
        for backend in [b.values[0] if hasattr(b, "values") else b for b in BACKENDS]:
            rep = sg.check([s.name for s in specs], backend=backend)
            assert rep.passed, rep.table()
        st = sg.load("debiased_momentum").init(np.ones(3))
        assert st["beta_power"].shape == () and st["m"].shape == (3,)


def test_a_literal_size_in_a_shape_says_what_to_do():
    with pytest.raises(sg.SpecError, match=r"c_lit: shape of 'x': expected named dimensions .* got 3; "
                                           r"a literal size is not allowed: name it"):
        @sg.layer(x=(N, 3), register=False)
        def c_lit(x):
            return x * 2
