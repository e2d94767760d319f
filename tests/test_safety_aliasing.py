"""Aliasing (issue 16, rows 9 and 12), on both backends and both dtypes.

Row 12: optimizer arrays that a step writes (the parameter, the state arrays, the scratch buffers)
sharing memory are refused with a ValueError naming both, before any write: the update would read
what it had just overwritten, and differently on each backend (the C arguments are ``restrict``).
"""
import numpy as np
import pytest

import symgrad

from conftest import BACKENDS

DTYPES = ["float32", "float64"]


def _unchanged(p, p0, st, st0):
    assert np.array_equal(p, p0) and st["step"] == st0["step"]
    for n, v in st0.items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(st[n], v), n


def _snapshot(st):
    return {n: (np.copy(v) if isinstance(v, np.ndarray) else v) for n, v in st.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_state_entries_that_are_one_array_are_refused(backend, dtype):
    k = symgrad.load("adam", backend, dtype)
    p = np.linspace(-1, 1, 7).astype(dtype)
    st = k.init(p)
    k.step(p, np.ones(7, dtype), st, lr=0.1)
    st["exp_avg_sq"] = st["exp_avg"]
    p0, st0 = p.copy(), _snapshot(st)
    with pytest.raises(ValueError, match=r"state\['exp_avg'\] and state\['exp_avg_sq'\] share memory"):
        k.step(p, np.ones(7, dtype), st, lr=0.1)
    _unchanged(p, p0, st, st0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_momentum_buffer_that_is_the_parameter_is_refused(backend, dtype):
    k = symgrad.load("sgd", backend, dtype)
    p = np.ones(5, dtype)
    st = k.init(p)
    st["momentum_buffer"] = p
    with pytest.raises(ValueError, match=r"param and state\['momentum_buffer'\] share memory"):
        k.step(p, np.ones(5, dtype), st, lr=0.1, momentum=0.9)
    assert np.array_equal(p, np.ones(5)) and st["step"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["param-state", "state-state", "strided-param-state", "scratch-state",
                                  "scratch-scratch"])
def test_overlapping_views_are_refused_before_any_write(backend, dtype, case):
    """Views one element apart, not the same object: the byte spans, not identity, decide."""
    k = symgrad.load("adam", backend, dtype)
    buf = np.zeros(40, dtype)
    p = buf[:8] if case == "param-state" else np.ones(8, dtype)
    if case == "strided-param-state":
        p = buf[:16:2]
    st = k.init(p)
    if case in ("param-state", "strided-param-state"):
        st["exp_avg"] = buf[7:15] if case == "param-state" else buf[6:14]
    elif case == "state-state":
        st["exp_avg"], st["exp_avg_sq"] = buf[:8], buf[7:15]
    elif case == "scratch-state":
        st["scratch"] = (buf[7:15],) + st["scratch"][1:]
        st["exp_avg"] = buf[:8]
    else:
        st["scratch"] = (buf[:8], buf[7:15])
    p0, st0 = p.copy(), _snapshot(st)
    with pytest.raises(ValueError, match="share memory"):
        k.step(p, np.ones(8, dtype), st, lr=0.1)
    _unchanged(p, p0, st, st0)
    assert not buf.any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_disjoint_views_of_one_buffer_give_the_answer_of_separate_arrays(dtype):
    """No false alarm: a strided parameter whose state lies between its elements (byte spans that
    intersect, no element shared), and parameter and states as adjacent slices of one buffer (how a
    flat parameter buffer or torch tensors' .numpy() arrive)."""
    ref = symgrad.load("adam", "numpy", dtype)
    rp = np.linspace(-1, 1, 5).astype(dtype)
    rst = ref.init(rp)
    g = np.linspace(2, 3, 5).astype(dtype)
    for _ in range(3):
        ref.step(rp, g, rst, lr=0.1)
    for backend in [b.values[0] for b in BACKENDS if not b.marks or not b.marks[0].args[0]]:
        k = symgrad.load("adam", backend, dtype)
        big = np.zeros((5, 7), dtype)
        p = big[:, 0]
        p[:] = np.linspace(-1, 1, 5)
        st = k.init(p)
        st["exp_avg"] = big[1, 1:6]
        flat = np.zeros(10, dtype)
        st["exp_avg_sq"], st["max_exp_avg_sq"] = flat[:5], flat[5:]
        for _ in range(3):
            k.step(p, g, st, lr=0.1)
        np.testing.assert_allclose(p, rp, rtol=1e-6 if dtype == "float32" else 1e-15)
        np.testing.assert_allclose(st["exp_avg_sq"], rst["exp_avg_sq"], rtol=1e-6 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gradient_that_is_a_scratch_buffer_is_read_from_a_copy(backend):
    """The NumPy update writes its scratch buffers while it reads the gradient: a gradient sharing
    memory with one is read from a copy, as one sharing the parameter's (the C update has no scratch)."""
    k = symgrad.load("sgd", backend)
    p = np.ones(6)
    st = k.init(p)
    g = st["scratch"][0]
    g[:] = np.arange(6.0)
    want = p - 0.1 * g
    k.step(p, g, st, lr=0.1, momentum=0.5)
    np.testing.assert_allclose(p, want, rtol=0, atol=0)
