"""The C kernels split their matrix products over their own OpenMP team with one-thread BLAS calls
(``sg_gemm``): NumPy's BLAS thread count must be what it was after any kernel ran, on every thread."""
import os
import subprocess
import sys

import numpy as np
import pytest

import symgrad
from symgrad.targets.c.build import SPIN_COUNT

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


SHOW_POLICY = "import symgrad; symgrad.load('dense', 'c', 'float32')"


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("user,policy,spins", [
    ({}, "PASSIVE", str(SPIN_COUNT)),                          # ours: a short spin, then sleep
    ({"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE", "0"),          # the user's choice stands
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE", None),
    ({"GOMP_SPINCOUNT": "1234"}, "PASSIVE", "1234")])
def test_openmp_waits_a_short_spin_unless_the_user_chose(user, policy, spins):
    """What the process's libgomp runs with (it prints its settings when it starts, with
    OMP_DISPLAY_ENV=VERBOSE), symgrad being the first to load OpenMP (no torch imported before):
    ``build.load_library`` sets the policy before the library loads, so it is the one libgomp reads."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user, OMP_DISPLAY_ENV="VERBOSE")
    r = subprocess.run([sys.executable, "-c", SHOW_POLICY], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    if "GOMP_SPINCOUNT" not in r.stderr:
        pytest.skip("the kernels' OpenMP runtime is not libgomp")
    assert f"OMP_WAIT_POLICY = '{policy}'" in r.stderr
    if spins is not None:
        assert f"GOMP_SPINCOUNT = '{spins}'" in r.stderr
    else:
        assert f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" not in r.stderr and "GOMP_SPINCOUNT = '0'" not in r.stderr
