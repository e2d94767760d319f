"""Extreme values (issue 16, rows 3 to 6): the same answer as torch on both backends."""
import numpy as np
import pytest

import symgrad

from conftest import BACKENDS, needs_torch, rel_err, require_target, torch


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_propagates_nan_like_torch(backend, dtype):
    z = np.array([np.nan, 1.0, -1.0, 0.0, np.inf, -np.inf], dtype=dtype)
    k = symgrad.load("relu", backend, dtype)
    a, cache = k.forward(z)
    (dz,) = k.backward(cache, np.ones_like(z))
    zt = torch.tensor(z, requires_grad=True)
    at = torch.relu(zt)
    at.backward(torch.ones_like(zt))
    np.testing.assert_array_equal(a, at.detach().numpy())
    np.testing.assert_array_equal(dz, zt.grad.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_relu_row_with_nan_stays_nan(backend):
    k = symgrad.load("dense_relu", backend)
    y, _ = k.forward(np.array([[np.nan, 1.0], [1.0, 2.0]]), np.eye(2), np.zeros(2))
    assert np.isnan(y[0]).all() and np.array_equal(y[1], [1.0, 2.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_huge_integer_hyperparameter_is_a_value_error(backend, name):
    k = symgrad.load(name, backend)
    p = np.ones(3)
    st = k.init(p)
    with pytest.raises(ValueError, match="too large for a float"):
        k.step(p, np.ones(3), st, lr=10 ** 400)
    assert np.array_equal(p, np.ones(3)) and st["step"] == 0


def _empty_case(name):
    rng = np.random.default_rng(0)
    if name == "layernorm":
        return (rng.standard_normal((2, 0)), np.ones(0), np.zeros(0)), [np.ones((2, 0))]
    if name == "softmax":
        return (np.ones((2, 0)),), [np.ones((2, 0))]
    if name == "dense":
        return (np.ones((0, 3)), np.ones((3, 2)), np.ones(2)), [np.ones((0, 2))]
    T, N, D, H = 2, 3, 4, 0
    return ((rng.standard_normal((T, N, D)), np.ones((N, H)), np.ones((N, H)), np.ones((4 * H, D)),
             np.ones((4 * H, H)), np.ones(4 * H), np.ones(4 * H)), [np.ones((T, N, H))])


@pytest.mark.parametrize("name", ["layernorm", "softmax", "dense", "lstm"])
def test_empty_dims_give_the_same_answer_on_both_backends(name):
    """An axis of size 0 (D = 0, C = 0, N = 0, H = 0) is no error on either backend, and both give
    the same arrays (empty, or the zeros a sum over nothing gives)."""
    args, ups = _empty_case(name)
    got = {}
    for backend in [b.values[0] for b in BACKENDS if not b.marks or not b.marks[0].args[0]]:
        k = symgrad.load(name, backend)
        with np.errstate(all="ignore"):
            out, cache = k.forward(*args)
            grads = k.backward(cache, *ups)
        outs = list(out) if isinstance(out, tuple) else [out]
        got[backend] = [np.asarray(a) for a in outs + list(grads)]
    ref = got.pop("numpy")
    for arrays in got.values():
        assert [a.shape for a in arrays] == [a.shape for a in ref]
        for a, r in zip(arrays, ref):
            np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("step", [2 ** 63 - 1, 2 ** 64, -1, 2.0, True])
def test_a_step_count_out_of_range_is_refused_before_any_write(step):
    for backend in [b.values[0] for b in BACKENDS if not b.marks or not b.marks[0].args[0]]:
        for name, hyper in (("adam", {}), ("sgd", {"momentum": 0.9})):
            k = symgrad.load(name, backend)
            p = np.ones(3)
            st = k.init(p)
            before = {n: np.copy(v) for n, v in st.items() if isinstance(v, np.ndarray)}
            st["step"] = step
            with pytest.raises(ValueError, match=r"state\['step'\]"):
                k.step(p, np.ones(3), st, lr=0.1, **hyper)
            assert np.array_equal(p, np.ones(3)) and all(np.array_equal(st[n], v) for n, v in before.items())


def test_a_numpy_integer_step_does_not_wrap_and_both_backends_agree():
    results = []
    for backend in [b.values[0] for b in BACKENDS if not b.marks or not b.marks[0].args[0]]:
        k = symgrad.load("adam", backend)
        p = np.ones(3)
        st = k.init(p)
        st["step"] = np.int8(127)            # at its maximum: step + 1 must be 128, not -128
        k.step(p, np.ones(3), st, lr=0.1)
        assert st["step"] == 128 and np.isfinite(p).all()
        results.append(p)
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-15)


def test_an_overlapping_gradient_is_read_before_the_update_writes():
    """Row 10: param and grad views of one buffer, one element apart: both backends give p - lr g."""
    for backend in [b.values[0] for b in BACKENDS if not b.marks or not b.marks[0].args[0]]:
        k = symgrad.load("sgd", backend)
        buf = np.random.default_rng(0).standard_normal(65537)
        p, g = buf[1:], buf[:-1]
        want = p - 0.1 * g
        k.step(p, g, k.init(p), lr=0.1)
        np.testing.assert_allclose(p, want, rtol=0, atol=0)


def test_a_read_only_scratch_is_refused_before_any_write():
    """Row 11: every check before the first write, so a retry does not apply an update twice."""
    for backend in [b.values[0] for b in BACKENDS if not b.marks or not b.marks[0].args[0]]:
        k = symgrad.load("adam", backend)
        p = np.ones(3)
        st = k.init(p)
        st["scratch"][1].flags.writeable = False
        with pytest.raises(ValueError, match="scratch"):
            k.step(p, np.ones(3), st)
        assert np.array_equal(p, np.ones(3)) and not st["exp_avg"].any() and st["step"] == 0


def _torch_layernorm(x, gamma, beta, dy, dtype):
    """torch's LayerNorm forward and backward on ``x`` etc. in ``dtype``: (y, dx)."""
    tx, tg, tb = (torch.tensor(np.asarray(a, dtype), requires_grad=True) for a in (x, gamma, beta))
    ty = torch.nn.functional.layer_norm(tx, (x.shape[-1],), tg, tb, eps=1e-5)
    ty.backward(torch.tensor(np.asarray(dy, dtype)))
    return ty.detach().numpy(), tx.grad.numpy()


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,value,D", [("float32", 7777.7, 512), ("float32", 123456.7, 6),
                                           ("float64", 1e30, 3), ("float64", 1e30, 8), ("float64", 0.1, 10)])
def test_layernorm_of_a_constant_row_is_beta_like_torch(backend, dtype, value, D):
    """Row 3: a constant row has xc = 0 exactly (its mean is not rounded away from the value), so
    y = beta as in torch; before, rows of 7777.7 (D = 512) gave max|y| = 0.295."""
    x = np.full((3, D), value, dtype=dtype)
    gamma, beta = np.linspace(0.5, 2.0, D).astype(dtype), np.zeros(D, dtype)
    dy = np.random.default_rng(D).standard_normal((3, D)).astype(dtype)
    k = symgrad.load("layernorm", backend=backend, dtype=dtype)
    y, cache = k.forward(x, gamma, beta)
    dx, _, _ = k.backward(cache, dy)
    ty, _ = _torch_layernorm(x, gamma, beta, dy, dtype)
    assert np.abs(ty).max() == 0 and np.abs(y).max() == 0
    # xhat = 0, so dx = rstd (dxhat - mean(dxhat)) with rstd = eps**-1/2 (torch's own float32 dx is
    # 1e-2 off here: its b*x + c form cancels at x = 7777.7)
    dxhat = np.asarray(dy, np.longdouble) * np.asarray(gamma, np.longdouble)
    ref = (dxhat - dxhat.mean(-1, keepdims=True)) / np.sqrt(np.longdouble(1e-5))
    assert rel_err(dx, ref) <= 8 * np.finfo(dtype).eps


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,scale", [("float32", 1e16), ("float32", 1e18), ("float32", 1e-16),
                                         ("float64", 1e110), ("float64", 1e150), ("float64", 1e-150)])
def test_layernorm_backward_on_huge_and_tiny_rows_as_accurate_as_torch(backend, dtype, scale):
    """Row 4: rows of size 1e16 in float32 (1e110 in float64): dx was 50 % off because backward formed
    rstd**3 (1e-48 underflows). Compared with torch in float64 on the same inputs, our error in
    ``dtype`` stays within a few times torch's own error in ``dtype``."""
    rng = np.random.default_rng(int(np.log10(scale)) + 200)
    N, D = 6, 64
    x = (scale * rng.standard_normal((N, D))).astype(dtype)
    gamma, beta = rng.standard_normal(D).astype(dtype), rng.standard_normal(D).astype(dtype)
    dy = rng.standard_normal((N, D)).astype(dtype)
    k = symgrad.load("layernorm", backend=backend, dtype=dtype)
    y, cache = k.forward(x, gamma, beta)
    dx, dgamma, dbeta = k.backward(cache, dy)
    ref_y, ref_dx = _torch_layernorm(x, gamma, beta, dy, "float64")
    t_y, t_dx = _torch_layernorm(x, gamma, beta, dy, dtype)
    unit = float(np.finfo(dtype).eps)
    for ours, theirs, ref in ((y, t_y, ref_y), (dx, t_dx, ref_dx)):
        assert np.isfinite(ours).all()
        assert rel_err(ours, ref) <= max(4 * rel_err(theirs, ref), 64 * unit), (rel_err(ours, ref), rel_err(theirs, ref))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_user_rmsnorm_gets_the_balanced_backward_too(backend):
    """The rewrite behind row 4 is the engine's, not LayerNorm's: a user's RMSNorm (w = x rrms with
    rrms a row statistic) on float32 rows of size 1e16 has no rrms**3 either (longdouble reference)."""
    N, D = symgrad.dims("N D")

    @symgrad.layer(register=False, x=(N, D), gamma=(D,))
    def rmsnorm_scaled(x, gamma, eps=1e-6):
        rrms = (1 / symgrad.sqrt(symgrad.mean(x * x, axis=-1, keepdims=True) + eps)).named("rrms")
        return (x * rrms).named("xhat") * gamma

    symgrad.REGISTRY.add(rmsnorm_scaled)
    try:
        require_target("rmsnorm_scaled", backend)
        from symgrad.ir.lower import lower
        assert "**3" not in str([s.expr for s in lower(rmsnorm_scaled).backward.body])
        rng = np.random.default_rng(5)
        x = (1e16 * rng.standard_normal((4, 32))).astype(np.float32)
        gamma, dy = rng.standard_normal(32).astype(np.float32), rng.standard_normal((4, 32)).astype(np.float32)
        k = symgrad.load("rmsnorm_scaled", backend=backend, dtype="float32")
        _, cache = k.forward(x, gamma)
        dx, _ = k.backward(cache, dy)
        xl, gl, dyl = (np.asarray(a, np.longdouble) for a in (x, gamma, dy))
        r = 1 / np.sqrt((xl * xl).mean(-1, keepdims=True) + np.longdouble(1e-6))
        w, dw = xl * r, dyl * gl
        ref = r * (dw - w * (dw * w).mean(-1, keepdims=True))
        assert rel_err(dx, ref) < 1e-5
    finally:
        symgrad.REGISTRY.remove("rmsnorm_scaled")


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_with_a_masked_logit_is_finite_like_torch(backend, dtype):
    """Row 5: a logit of -inf at a class other than the target (a masked class) gave loss NaN, from
    0 * (-inf) in the one-hot product that picked the target's logit; it is now selected, and the
    loss (1.3133 for [-inf, 0, 1], target 1) and gradient equal torch's."""
    z = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -np.inf], [0.5, -1.0, -np.inf]], dtype=dtype)
    target = np.array([1, 0, 0])
    k = symgrad.load("softmax_cross_entropy", backend=backend, dtype=dtype)
    loss, cache = k.forward(z, target)
    (dz,) = k.backward(cache)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(target))
    lt.backward()
    assert np.isfinite(loss) and np.isfinite(dz).all()
    tol = 1e-6 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(loss, lt.item(), rtol=tol)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=tol, atol=tol)
    one, _ = k.forward(z[:1], target[:1])
    np.testing.assert_allclose(one, 1.3132616875182228, rtol=tol)


def test_selecting_by_a_one_hot_differentiates_to_the_one_hot():
    """Row 5's selection where(Y > 0, z, 0) has the local derivative Piecewise((1, Y > 0), (0, True));
    on a one-hot (0 or 1) that is Y itself, so backward stays p - Y, without a branch."""
    import sympy as sp
    from symgrad.ir.lower import lower
    spec = symgrad.REGISTRY.get("softmax_cross_entropy")
    assert [s.why for s in spec.derivation.steps if s.why == "indicator"] == ["indicator"]
    for s in lower(spec).backward.body:
        assert not s.expr.has(sp.Piecewise)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_hyperparameters_checked_once_are_still_checked_when_they_change(backend):
    """Checked hyperparameters are remembered by (type, value) (optimizer template, _SEEN): a value that
    equals a remembered one but is of another type (True == 1) or a new bad value is still refused,
    before any write."""
    k = symgrad.load("sgd", backend=backend, dtype="float64")
    p, g = np.ones(5), np.full(5, 0.5)
    st = k.init(p)
    k.step(p, g, st, lr=1, momentum=0.9)           # remembered
    k.step(p, g, st, lr=1, momentum=0.9)
    before, step = p.copy(), st["step"]
    for bad, err in ((dict(lr=True), TypeError), (dict(lr=-1), ValueError), (dict(lr=float("nan")), ValueError),
                     (dict(lr=[1]), TypeError), (dict(momentum=0.0, nesterov=True), ValueError)):
        with pytest.raises(err):
            k.step(p, g, st, **{"lr": 1, "momentum": 0.9, **bad})
    np.testing.assert_array_equal(p, before)
    assert st["step"] == step
    k.step(p, g, st, lr=1, momentum=0.9)
    assert st["step"] == step + 1 and not np.array_equal(p, before)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_hyperparameters_remembered_by_identity_are_still_checked_when_they_change(backend):
    """The previous step's hyperparameter objects are reused by identity only when all are immutable
    (optimizer template, _LAST): any other object is checked again (a bad value refused before any
    write, a 0-d array refused as ever), and a new good value is used."""
    k = symgrad.load("sgd", backend=backend, dtype="float64")
    p, g = np.ones(5), np.full(5, 0.5)
    st = k.init(p)
    lr = 0.25
    k.step(p, g, st, lr=lr)
    k.step(p, g, st, lr=lr)                       # the same object: remembered
    before = p.copy()
    for bad, err in ((-1.0, ValueError), (np.array(0.25), TypeError), (True, TypeError)):
        with pytest.raises(err, match="lr"):
            k.step(p, g, st, lr=bad)
    np.testing.assert_array_equal(p, before)
    k.step(p, g, st, lr=np.float64(0.5))
    np.testing.assert_allclose(p, before - 0.5 * g)
    k.step(p, g, st, lr=lr)
    np.testing.assert_allclose(p, before - 0.75 * g)


def test_only_a_corrected_means_first_sum_may_be_rough():
    """``ir.accuracy.corrected_means`` marks the first pass's sum ``rough`` (a target may add its terms
    in the working precision: the correction pass removes that error), and only when nothing else
    reads it: a layer that also returns the row sums keeps them exact."""
    from symgrad.ir import nodes as ir
    from symgrad.ir.lower import lower

    def sums(k):
        return {s.out: s.rough for s in k.forward.body if isinstance(s, ir.Reduction)}
    ln = sums(lower(symgrad.REGISTRY.get("layernorm")))
    assert sorted(ln.values()) == [False, False, True]   # sum(x) rough; sum(x - m0), sum(xc^2) not

    N, D = symgrad.dims("N D")

    @symgrad.layer(x=(N, D), register=False)
    def centered_and_sums(x):
        "x - mean(x) and the row sums of x."
        s = symgrad.sum(x, axis=-1, keepdims=True).named("s")
        return x - (s / D).named("m"), s
    k = lower(centered_and_sums)
    assert k.meta.get("accuracy") == [("mean", "m", "x")]   # corrected: a second sum, neither rough
    assert sums(k) == {"s": False, next(n for n in sums(k) if n != "s"): False} and len(sums(k)) == 2
