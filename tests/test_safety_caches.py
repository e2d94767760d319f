"""Edited caches (issue 16, row 8): backward on either backend refuses a cache that is not exactly what
its own forward returned (a dimension changed, an array truncated, retyped, made non-contiguous or
removed, a cache of the other backend), with a TypeError or ValueError, never a silently wrong
gradient; an in-place edit of a cached array raises at the edit (row 9: the arrays are read-only).
Optimizer states edited the way the C backend refuses are refused by both backends (row 12)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import symgrad
from symgrad.verify.layers import outputs_of, random_inputs

from conftest import BACKENDS, HAVE_CC
from symgrad.targets.c.plan import kept

LAYERS = ["dense", "layernorm", "softmax", "softmax_cross_entropy", "sigmoid", "mse", "lstm", "dense_tanh"]


def _fresh(name, backend):
    spec = symgrad.REGISTRY.get(name)
    k = symgrad.load(name, backend)
    args = random_inputs(spec, np.random.default_rng(0))
    outs, cache = outputs_of(spec, k.forward(**args))
    ups = [1.0] if getattr(spec, "loss", False) else [np.ones(np.shape(o)) for o in outs]
    return k, cache, ups


def _tamper(cache, how, pick):
    arrays = sorted(n for n, v in cache.items() if isinstance(v, np.ndarray))
    dims = sorted(n for n, v in cache.items() if isinstance(v, int) and not isinstance(v, bool))
    c = dict(cache)
    if how == "dim" and dims:
        c[dims[pick % len(dims)]] += 1
    elif how == "truncate" and arrays:
        n = arrays[pick % len(arrays)]
        c[n] = c[n].reshape(-1)[:-1] if c[n].size else np.zeros(1)
    elif how == "retype" and arrays:
        n = arrays[pick % len(arrays)]
        c[n] = c[n].astype(np.float32 if c[n].dtype != np.float32 else np.float64)
    elif how == "noncontig" and any(c[n].size > 1 for n in arrays):
        n = [n for n in arrays if c[n].size > 1][pick % len([n for n in arrays if c[n].size > 1])]
        wide = np.empty(c[n].shape + (2,), c[n].dtype)
        wide[..., 0] = c[n]
        c[n] = wide[..., 0]                          # the same values, every other element of a buffer
    elif how == "drop" and arrays:
        del c[arrays[pick % len(arrays)]]
    elif how == "dtype":
        c["dtype"] = "float16"
    else:
        return None
    return c


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", LAYERS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=st.sampled_from(["dim", "truncate", "retype", "noncontig", "drop", "dtype", "inplace"]),
       pick=st.integers(0, 20))
def test_an_edited_cache_is_refused(backend, name, how, pick):
    k, cache, ups = _fresh(name, backend)
    if how == "inplace":
        arrays = sorted(n for n, v in cache.items() if isinstance(v, np.ndarray))
        with pytest.raises(ValueError, match="read-only"):
            cache[arrays[pick % len(arrays)]] *= 0.5
        return
    bad = _tamper(cache, how, pick)
    if bad is None:
        return
    with pytest.raises((TypeError, ValueError)):
        k.backward(bad, *ups)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("name", ["layernorm", "softmax_cross_entropy", "lstm"])
def test_a_cache_from_the_other_backend_is_refused(name):
    kn, cn, ups = _fresh(name, "numpy")
    kc, cc, _ = _fresh(name, "c")
    with pytest.raises(TypeError, match="backend"):
        kn.backward(cc, *ups)
    with pytest.raises(TypeError, match="backend"):
        kc.backward(cn, *ups)


def _tamper_state(st, p, how, pick):
    """``st`` (a fresh state of ``p``) edited the way the C backend refuses, or None if ``how`` does
    not apply: every such edit must be refused by both backends before any write."""
    arrays = sorted(n for n, v in st.items() if isinstance(v, np.ndarray) and v.shape == p.shape)
    if not arrays:
        return None
    n, other = arrays[pick % len(arrays)], arrays[(pick + 1) % len(arrays)]
    s = dict(st)
    if how == "alias" and other != n:
        s[n] = s[other]                            # state["exp_avg_sq"] = state["exp_avg"]
    elif how == "param":
        s[n] = p                                   # a momentum buffer that is the parameter
    elif how == "overlap":
        buf = np.zeros(2 * p.size, p.dtype)        # views one element apart of one buffer
        s[n], s["scratch"] = buf[1:p.size + 1], (buf[:min(p.size, s["scratch"][0].size)],) + s["scratch"][1:]
    elif how == "noncontig":
        s[n] = np.zeros((p.size, 2), p.dtype)[:, 0]
    elif how == "readonly":
        s[n] = s[n].copy()
        s[n].flags.writeable = False
    elif how == "retype":
        s[n] = s[n].astype(np.float32 if p.dtype != np.float32 else np.float64)
    elif how == "truncate":
        s[n] = s[n][:-1]
    elif how == "drop":
        del s[n]
    else:
        return None
    return s


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "nadam"])
@settings(max_examples=25, deadline=None)
@given(how=st.sampled_from(["alias", "param", "overlap", "noncontig", "readonly", "retype", "truncate", "drop"]),
       pick=st.integers(0, 20), dtype=st.sampled_from(["float32", "float64"]))
def test_an_edited_optimizer_state_is_refused_before_any_write(name, how, pick, dtype):
    """Issue 16 row 12 and its neighbours: states edited the way the C backend refuses (two entries
    one array, an entry that is the parameter or overlaps another, a non-contiguous, read-only,
    retyped, truncated or missing entry) are refused by both backends alike, nothing written."""
    hyper = {"momentum": 0.9} if name in ("sgd", "rmsprop") else {}
    for backend in [b.values[0] for b in BACKENDS if not b.marks or not b.marks[0].args[0]]:
        k = symgrad.load(name, backend, dtype)
        p = np.linspace(-1, 1, 6).astype(dtype)
        state = k.init(p)
        bad = _tamper_state(state, p, how, pick)
        if bad is None:
            return
        before = p.copy(), {n: np.copy(v) for n, v in bad.items() if isinstance(v, np.ndarray)}
        with pytest.raises((TypeError, ValueError)):
            k.step(p, np.ones(6, dtype), bad, lr=0.1, **hyper)
        assert np.array_equal(p, before[0]) and bad["step"] == 0
        assert all(np.array_equal(bad[n], v) for n, v in before[1].items())


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("name", ["batchnorm2d", "maxpool2d", "layernorm", "sigmoid"])
def test_c_copies_written_by_the_kernel_equal_the_plain_path(name):
    """The C forward of a usual call (the caller's own arrays, no borrow) is NAME_forward_kept, which
    writes the cache's copies in its own passes; a borrowed or converted argument takes the plain
    forward. All three give the same outputs, caches and gradients, the copies are read-only and
    the caller's later edits do not reach backward."""
    spec = symgrad.REGISTRY.get(name)
    k = symgrad.load(name, "c")
    g = k.module.forward.__globals__
    original, calls = g["_FWDK"], []
    g["_FWDK"] = {dt: (lambda *a, f=f: calls.append(1) or f(*a)) for dt, f in original.items()}
    try:
        args = random_inputs(spec, np.random.default_rng(5))
        kept_names = [n for n in args if n in kept(k.module.k)]
        runs = []
        for how in ("usual", "borrow", "strided"):
            a = {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in args.items()}
            if how == "strided":
                a = {n: (np.repeat(v, 2, axis=-1)[..., ::2] if n in kept_names else v) for n, v in a.items()}
            before = len(calls)
            outs, cache = outputs_of(spec, k.forward(**a, borrow=how == "borrow"))
            # a converted input is copied once (by the conversion): the plain path; sigmoid keeps only its output
            assert (len(calls) > before) == (how == "usual" or (how == "strided" and not kept_names)), how
            if how == "usual":
                for n in kept_names:
                    assert not cache[n].flags.writeable and not np.shares_memory(cache[n], a[n])
                    a[n][...] = 7.0   # edited after forward: backward still sees what forward saw
            grads = k.backward(cache, *[np.ones(np.shape(o)) for o in outs])
            runs.append([np.asarray(o) for o in outs] + [np.asarray(x) for x in grads])
        for other in runs[1:]:
            for u, v in zip(runs[0], other):
                np.testing.assert_array_equal(u, v)
    finally:
        g["_FWDK"] = original
