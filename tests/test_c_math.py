"""The C target's own exp, tanh and sigmoid (sg_exp_f64, sg_tanh_f64, sg_sigmoid_f64 and the float
variants in templates/_helpers.c.j2): within a few ulp of NumPy's over the whole range, and inf,
-inf, NaN, signed zeros, overflow and the subnormals handled as libm handles them."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad
import symgrad as sg


N, D = sg.dims("N D")
ULP = {"float64": 4, "float32": 4}


def _ulps(got, want, dtype):
    """Error in units of the last place of ``want`` (at least the smallest normal's)."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    tiny = np.finfo(dtype).tiny
    spacing = np.spacing(np.maximum(np.abs(want), tiny).astype(dtype)).astype(np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    return np.where(same, 0.0, np.abs(got - want) / spacing)


@pytest.fixture(scope="module")
def exp_layer():
    @sg.layer(x=(N, D), register=False)
    def plain_exp(x):
        return sg.exp(x)
    symgrad.REGISTRY.add(plain_exp)
    yield plain_exp
    symgrad.REGISTRY.remove("plain_exp")


def _sweep(lo, hi, dtype):
    x = np.concatenate([np.linspace(lo, hi, 200_001), np.geomspace(1e-300 if dtype == "float64" else 1e-37, 1, 2001),
                        -np.geomspace(1e-300 if dtype == "float64" else 1e-37, 1, 2001),
                        [0.625, np.nextafter(0.625, 0), -0.625, 0.0, -0.0]])
    return x.astype(dtype).reshape(1, -1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exp_is_within_a_few_ulp_and_handles_the_edges(exp_layer, dtype):
    k = symgrad.load("plain_exp", backend="c", dtype=dtype)
    hi = 709.7 if dtype == "float64" else 88.7
    lo = -745.0 if dtype == "float64" else -103.0
    x = _sweep(lo, hi, dtype)
    y, _ = k.forward(x)
    normal = np.exp(x.astype(np.float64)) >= np.finfo(dtype).tiny   # subnormal results: absolute error
    err = _ulps(y, np.exp(x), dtype)
    assert err[normal].max() <= ULP[dtype]
    assert np.abs(y[~normal] - np.exp(x)[~normal]).max() <= 2 * np.finfo(dtype).smallest_subnormal
    edges = np.array([[np.inf, -np.inf, np.nan, 1000.0, -1000.0, 0.0]], dtype)
    y, _ = k.forward(edges)
    with np.errstate(over="ignore"):
        want = np.exp(edges)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, ref", [
    ("tanh", np.tanh),
    ("sigmoid", lambda x: (1 / (1 + np.exp(-x.astype(np.longdouble)))).astype(x.dtype)),
])
def test_tanh_and_sigmoid_are_within_a_few_ulp(name, ref, dtype):
    k = symgrad.load(name, backend="c", dtype=dtype)
    x = _sweep(-40.0, 40.0, dtype)
    with np.errstate(over="ignore"):
        y, _ = k.forward(x)
        want = ref(x)
    normal = np.abs(want) >= np.finfo(dtype).tiny
    assert _ulps(y, want, dtype)[normal].max() <= ULP[dtype]
    edges = np.array([[np.inf, -np.inf, np.nan, 0.0, -0.0, 800.0, -800.0]], dtype)
    with np.errstate(over="ignore"):
        y, _ = k.forward(edges)
        want = ref(edges)
    np.testing.assert_array_equal(y, want)
    assert np.signbit(y[0, 4]) == np.signbit(want[0, 4])   # tanh(-0) = -0
