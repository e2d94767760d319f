"""The C kernels split their matrix products over their own OpenMP team with one-thread BLAS calls
(``sg_gemm``): NumPy's BLAS thread count must be what it was after any kernel ran, on every thread."""
import numpy as np
import pytest

import symgrad

from conftest import HAVE_CC

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("name", ["dense", "lstm"])
def test_numpy_blas_threads_are_left_as_they_were(name):
    before = _blas_threads()
    spec = symgrad.REGISTRY.get(name)
    from symgrad.verify.layers import outputs_of, random_inputs
    args = random_inputs(spec, np.random.default_rng(0), {"N": 64, "D": 96, "M": 80, "H": 48, "T": 3})
    k = symgrad.load(name, "c", "float32")
    outs, cache = outputs_of(spec, k.forward(**{n: v.astype(np.float32) for n, v in args.items()}))
    k.backward(cache, *[np.ones_like(o) for o in outs])
    assert _blas_threads() == before


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_large_products_split_over_threads_agree_with_numpy():
    rng = np.random.default_rng(1)
    x, W, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 170)), rng.standard_normal(170)
    dy = rng.standard_normal((300, 170))
    k = symgrad.load("dense", "c")
    y, cache = k.forward(x, W, b)
    dx, dW, db = k.backward(cache, dy)
    np.testing.assert_allclose(y, x @ W + b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dy @ W.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, x.T @ dy, rtol=1e-12, atol=1e-12)
