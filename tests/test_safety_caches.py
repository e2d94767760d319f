"""Edited caches (issue 16, row 8): backward on either backend refuses a cache that is not exactly what
its own forward returned (a dimension changed, an array truncated, retyped or removed, a cache of the
other backend), with a TypeError or ValueError, never a silently wrong gradient."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import symgrad
from symgrad.verify.layers import outputs_of, random_inputs

from conftest import BACKENDS, HAVE_CC

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
@given(how=st.sampled_from(["dim", "truncate", "retype", "drop", "dtype"]), pick=st.integers(0, 20))
def test_an_edited_cache_is_refused(backend, name, how, pick):
    k, cache, ups = _fresh(name, backend)
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
