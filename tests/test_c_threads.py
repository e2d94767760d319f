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


def _lstm_call(k, rng, N=64):
    T, D, H = 4, 16, 96    # T N H^2 >= 2^20: the time loops run split by batch rows
    args = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in
            [(T, N, D), (N, H), (N, H), (4 * H, D), (4 * H, H), (4 * H,), (4 * H,)]]
    (hs, hT, cT), cache = k.forward(*args)
    return k.backward(cache, np.ones_like(hs))


def _conv_call(k, rng):
    x, w, b = rng.standard_normal((6, 8, 12, 12)), rng.standard_normal((16, 8, 3, 3)), rng.standard_normal(16)
    y, cache = k.forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), padding=1)
    return k.backward(cache, np.ones_like(y))


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_blas_threads_are_restored_after_one_thread_regions_even_from_concurrent_callers():
    """The row-split LSTM and the convolution's chunks set OpenBLAS's process-wide count to 1 around
    their parallel regions; from one thread or four at once, NumPy's count is what it was after."""
    import threading
    before = _blas_threads()
    lstm, conv = symgrad.load("lstm", "c", "float32"), symgrad.load("conv2d", "c", "float32")
    _lstm_call(lstm, np.random.default_rng(0))
    _conv_call(conv, np.random.default_rng(0))
    assert _blas_threads() == before
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            for _ in range(5):
                _lstm_call(lstm, rng)
                _conv_call(conv, rng)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and _blas_threads() == before
