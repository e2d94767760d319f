"""Aliasing (issue 16, rows 9 and 12), on both backends and both dtypes.

Row 12: optimizer arrays that a step writes (the parameter, the state arrays, the scratch buffers)
sharing memory are refused with a ValueError naming both, before any write: the update would read
what it had just overwritten, and differently on each backend (the C arguments are ``restrict``).

Row 9: the cache keeps what backward reads in its own read-only memory: editing the returned output
or an argument in place between forward and backward leaves the gradient as it was (``a *= 0.5``
after sigmoid, ``W -= lr * dW`` before dense's backward), and editing a cached array raises at once.
"""
import numpy as np
import pytest

import symgrad
from symgrad.verify.layers import outputs_of, random_inputs

from conftest import BACKENDS, require_target

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


ROW9 = ["sigmoid", "tanh", "dense_sigmoid", "dense_tanh", "dense", "dense_relu", "relu", "layernorm", "softmax",
        "mse", "bce_logits", "softmax_cross_entropy", "lstm"]


def _forward(k, spec, dtype, seed):
    args = {n: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
            for n, v in random_inputs(spec, np.random.default_rng(seed)).items()}
    outs, cache = outputs_of(spec, k.forward(**args))
    return args, outs, cache


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ROW9)
def test_editing_outputs_and_arguments_in_place_leaves_the_gradient(backend, dtype, name):
    spec = symgrad.REGISTRY.get(name)
    k = symgrad.load(name, backend, dtype)
    args, outs, cache = _forward(k, spec, dtype, 3)
    ups = [1.0] if getattr(spec, "loss", False) else [np.linspace(-1, 2, np.size(o)).reshape(np.shape(o)).astype(dtype)
                                                      for o in outs]
    want = k.backward(cache, *ups)
    args, outs, cache = _forward(k, spec, dtype, 3)
    for o in outs:
        if isinstance(o, np.ndarray) and o.ndim:
            o *= 0.5                                  # a, c = sigmoid.forward(z); a *= 0.5
    for v in args.values():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            v -= 0.25 * v + 1                         # W -= lr * dW (an optimizer step) before backward
    got = k.backward(cache, *ups)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sigmoid", "dense", "layernorm", "lstm"])
def test_a_cached_array_is_read_only(backend, name):
    """An in-place edit of the cache itself raises at the edit (a replaced entry is checked by
    backward: tests/test_safety_caches.py)."""
    spec = symgrad.REGISTRY.get(name)
    k = symgrad.load(name, backend)
    _, _, cache = _forward(k, spec, "float64", 0)
    arrays = [n for n, v in cache.items() if isinstance(v, np.ndarray)]
    assert arrays
    for n in arrays:
        with pytest.raises(ValueError, match="read-only"):
            cache[n] *= 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_converted_or_non_contiguous_argument_is_copied_once(backend):
    """The conversion that makes an integer or strided argument a new array is the cache's copy:
    no second one (and the answer is the same as for the plain argument)."""
    k = symgrad.load("dense", backend)
    x, W, b = np.arange(12.0).reshape(3, 4), np.ones((4, 2)), np.zeros(2)
    _, cache = k.forward(x.astype(np.int64), np.asfortranarray(W), b)
    assert cache["x"].flags.owndata and cache["W"].flags.owndata
    assert cache["x"].flags.c_contiguous and not cache["x"].flags.writeable
    _, ref = k.forward(x, W, b)
    for g, w in zip(k.backward(cache, np.ones((3, 2))), k.backward(ref, np.ones((3, 2)))):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_borrow_keeps_references_and_still_refuses_a_strided_cache(backend):
    """forward(..., borrow=True) (what symgrad.torch passes: torch checks in-place edits itself)
    keeps the caller's contiguous arrays in the cache instead of copies; a strided argument is still
    made contiguous; the gradient is the same as without borrowing."""
    require_target("dense", backend)
    k = symgrad.load("dense", backend=backend)
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    dy = rng.standard_normal((4, 5))
    y, c = k.forward(x, W, b, borrow=True)
    assert c["x"] is x or np.shares_memory(c["x"], x)
    ref = k.backward(k.forward(x, W, b)[1], dy)
    for g, r in zip(k.backward(c, dy), ref):
        np.testing.assert_array_equal(g, r)
    Wt = np.asfortranarray(W)
    y2, c2 = k.forward(x, Wt, b, borrow=True)
    assert c2["W"].flags.c_contiguous
    np.testing.assert_array_equal(k.backward(c2, dy)[1], ref[1])
