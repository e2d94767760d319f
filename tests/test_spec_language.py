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
