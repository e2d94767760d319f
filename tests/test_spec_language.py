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
