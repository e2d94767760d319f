"""LayerNorm and LSTM: derived backward passes against torch, edge shapes, conditioning."""
import inspect
import re

import numpy as np
import pytest

import symgrad
from symgrad.ir.recurrent import plan

from conftest import BACKENDS, needs_torch, rel_err, require_target, torch


def _ln_exact(x, gamma, beta, dy, eps=1e-5):
    """LayerNorm forward and backward in extended precision (np.longdouble), as the oracle for
    ill-conditioned rows (REFERENCE.md: torch's own float64 result is ~1e-10 off there)."""
    x, gamma, beta, dy = (np.asarray(a, np.longdouble) for a in (x, gamma, beta, dy))
    mean = x.mean(-1, keepdims=True)
    xc = x - mean
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + np.longdouble(eps))
    xhat = xc * rstd
    dxhat = dy * gamma
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return xhat * gamma + beta, dx, (dy * xhat).sum(0), dy.sum(0)


@needs_torch
@pytest.mark.parametrize("N,D", [(1, 1), (1, 7), (5, 1), (4, 16), (33, 100)])
def test_layernorm_against_torch(N, D):
    rng = np.random.default_rng(N * 100 + D)
    x, g, b = rng.standard_normal((N, D)), rng.standard_normal(D), rng.standard_normal(D)
    dy = rng.standard_normal((N, D))
    k = symgrad.load("layernorm")
    y, cache = k.forward(x, g, b)
    dx, dg, db = k.backward(cache, dy)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, g, b))
    ty = torch.nn.functional.layer_norm(tx, (D,), tg, tb, eps=1e-5)
    ty.backward(torch.tensor(dy))
    assert rel_err(y, ty.detach()) <= 1e-10
    for ours, theirs in ((dx, tx.grad), (dg, tg.grad), (db, tb.grad)):
        assert rel_err(ours, theirs, floor=1.0) <= 1e-10


def test_layernorm_large_offset_tiny_spread():
    """Rows like 1e3 + 1e-3 * noise: a one-pass variance would be ~1e-6 off; two-pass is exact."""
    rng = np.random.default_rng(7)
    x = 1e3 + 1e-3 * rng.standard_normal((8, 64))
    g, b, dy = rng.standard_normal(64), rng.standard_normal(64), rng.standard_normal((8, 64))
    k = symgrad.load("layernorm")
    y, cache = k.forward(x, g, b)
    dx, dg, db = k.backward(cache, dy)
    ry, rdx, rdg, rdb = _ln_exact(x, g, b, dy)
    assert rel_err(y, ry.astype(np.float64)) <= 1e-8
    assert rel_err(dx, rdx.astype(np.float64)) <= 1e-8
    assert rel_err(dg, rdg.astype(np.float64)) <= 1e-8
    y32, c32 = symgrad.load("layernorm", dtype="float32").forward(x.astype(np.float32), g.astype(np.float32),
                                                                    b.astype(np.float32))
    assert np.all(np.isfinite(y32))


def test_layernorm_backward_is_compact_and_linear_in_D():
    """The engine drops the mean's reduction (sum of x - mean is 0): backward does two row
    reductions and elementwise work, no D x D Jacobian, no contraction."""
    from symgrad.ir import nodes as ir
    from symgrad.ir.lower import lower
    k = lower(symgrad.REGISTRY.get("layernorm"))
    N, D = k.dims
    rows = [s for s in k.backward.body if isinstance(s, ir.Reduction) and s.axes == (1,)]
    full = [s.out for s in k.backward.body if isinstance(s, ir.Elementwise) and tuple(s.shape) == (N, D)]
    assert len(rows) == 2, [s.out for s in rows]            # sum(dxhat), sum(dxhat * xc)
    assert full == ["dxhat", "dx"], full                    # no separate dxc pass
    assert not any(isinstance(s, ir.Einsum) for s in k.backward.body)
    src = inspect.getsource(symgrad.load("layernorm").module.backward)
    assert "@" not in src.split('"""')[-1]
    k = symgrad.load("layernorm")
    assert set(k.module.forward(np.ones((2, 3)), np.ones(3), np.zeros(3))[1]) >= {"rstd", "xhat"}


def _torch_lstm(x, h0, c0, W_ih, W_hh, b_ih, b_hh, dhs, dhT, dcT):
    T, N, D = x.shape
    H = h0.shape[1]
    lstm = torch.nn.LSTM(D, H)
    with torch.no_grad():
        for p, v in zip((lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0),
                        (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(torch.tensor(v))
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0[None], requires_grad=True)
    tc0 = torch.tensor(c0[None], requires_grad=True)
    out, (hT, cT) = lstm(tx, (th0, tc0))
    grads = [torch.tensor(dhs), torch.tensor(dhT[None]) if dhT is not None else torch.zeros_like(hT),
             torch.tensor(dcT[None]) if dcT is not None else torch.zeros_like(cT)]
    torch.autograd.backward([out, hT, cT], grads)
    outs = [out.detach().numpy(), hT[0].detach().numpy(), cT[0].detach().numpy()]
    gr = [tx.grad.numpy(), th0.grad[0].numpy(), tc0.grad[0].numpy(), lstm.weight_ih_l0.grad.numpy(),
          lstm.weight_hh_l0.grad.numpy(), lstm.bias_ih_l0.grad.numpy(), lstm.bias_hh_l0.grad.numpy()]
    return outs, gr


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("T,N,D,H", [(5, 3, 4, 2), (1, 1, 1, 1), (1, 4, 3, 5), (200, 2, 3, 4)])
@pytest.mark.parametrize("final_grads", [True, False])
def test_lstm_against_torch(T, N, D, H, final_grads, backend):
    require_target("lstm", backend)
    rng = np.random.default_rng(T + N + D + H)
    args = [rng.standard_normal(s) for s in ((T, N, D), (N, H), (N, H), (4 * H, D), (4 * H, H), (4 * H,), (4 * H,))]
    args[3:] = [a * 0.5 for a in args[3:]]
    k = symgrad.load("lstm", backend=backend)
    (hs, hT, cT), cache = k.forward(*args)
    dhs = rng.standard_normal(hs.shape)
    dhT, dcT = (rng.standard_normal(hT.shape), rng.standard_normal(cT.shape)) if final_grads else (None, None)
    grads = k.backward(cache, dhs, dhT, dcT)
    touts, tgrads = _torch_lstm(*args, dhs, dhT, dcT)
    for ours, theirs in zip((hs, hT, cT), touts):
        assert rel_err(ours, theirs) <= 1e-10
    names = ["dx", "dh0", "dc0", "dW_ih", "dW_hh", "db_ih", "db_hh"]
    for n, ours, theirs in zip(names, grads, tgrads):
        assert rel_err(ours, theirs) <= 1e-10, n


def test_lstm_cell_is_derived_not_written():
    """The cell's backward comes from the engine: the LSTM spec holds only the forward step."""
    spec = symgrad.REGISTRY.get("lstm")
    src = inspect.getsource(symgrad.builtins.layers.lstm.__class__) if False else None  # noqa: F841
    steps = spec.derivation.steps
    rules = {s.rule for s in steps}
    assert {"elementwise", "einsum", "slice"} <= rules
    assert any(s.local is not None and s.local != s.local_used for s in steps), \
        "sigmoid/tanh derivatives are rewritten in terms of the saved outputs"


def test_user_rnn_cell_needs_no_engine_change():
    """A user's own recurrent cell (an Elman RNN) goes through the same path."""
    import sympy as sp
    N, D, H = symgrad.dims("N D H")

    @symgrad.recurrent(state=("h",), sequence=("x",), register=False,
                       x=(N, D), h=(N, H), W=(D, H), U=(H, H), b=(H,))
    def elman(x, h, W, U, b):
        return symgrad.tanh(x @ W + h @ U + b)

    symgrad.REGISTRY.add(elman)
    try:
        rep = symgrad.check(["elman"])
        assert rep.passed and len(rep.rows) == 5, rep.table()
        rng = np.random.default_rng(0)
        x, h0 = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 5))
        W, U, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 5)) * 0.3, rng.standard_normal(5)
        (hs, hT), _ = symgrad.load("elman").forward(x, h0, W, U, b)
        h = h0
        for t in range(4):
            h = np.tanh(x[t] @ W + h @ U + b)
            assert rel_err(hs[t], h) < 1e-14
        del sp
    finally:
        symgrad.REGISTRY.remove("elman")


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_empty_sequence_and_bad_input(backend):
    """T = 0 returns the initial state and passes the final gradients through; bad input gets the
    NumPy backend's errors on both backends."""
    require_target("lstm", backend)
    k = symgrad.load("lstm", backend=backend)
    rng = np.random.default_rng(1)
    N, D, H = 2, 3, 4
    args = [np.zeros((0, N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H)),
            rng.standard_normal((4 * H, D)), rng.standard_normal((4 * H, H)), np.zeros(4 * H), np.zeros(4 * H)]
    (hs, hT, cT), cache = k.forward(*args)
    assert hs.shape == (0, N, H) and np.array_equal(hT, args[1]) and np.array_equal(cT, args[2])
    dhT, dcT = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    dx, dh0, dc0, dW_ih, *_ = k.backward(cache, np.zeros((0, N, H)), dhT, dcT)
    assert dx.shape == (0, N, D) and np.array_equal(dh0, dhT) and np.array_equal(dc0, dcT)
    assert not np.any(dW_ih)
    bad = [lambda: k.forward(np.ones((2, N, D)), *args[1:3], np.ones((4 * H, D + 1)), *args[4:]),
           lambda: k.forward(np.ones((2, N, D), np.float32), *args[1:]),
           lambda: k.backward(k.forward(np.ones((2, N, D)), *args[1:])[1], np.ones((2, N, H + 1))),
           lambda: k.backward(k.forward(np.ones((2, N, D)), *args[1:])[1], np.ones((2, N, H)), np.ones(3)),
           lambda: k.backward({"kernel": "dense"}, np.ones((2, N, H)))]
    ref = symgrad.load("lstm")
    for i, call in enumerate(bad):
        with pytest.raises((ValueError, TypeError)) as got:
            call()
        if backend == "c":
            want = [lambda: ref.forward(np.ones((2, N, D)), *args[1:3], np.ones((4 * H, D + 1)), *args[4:]),
                    lambda: ref.forward(np.ones((2, N, D), np.float32), *args[1:]),
                    lambda: ref.backward(ref.forward(np.ones((2, N, D)), *args[1:])[1], np.ones((2, N, H + 1))),
                    lambda: ref.backward(ref.forward(np.ones((2, N, D)), *args[1:])[1], np.ones((2, N, H)),
                                         np.ones(3)),
                    lambda: ref.backward({"kernel": "dense"}, np.ones((2, N, H)))][i]
            with pytest.raises(got.type) as exp:
                want()
            assert str(got.value) == str(exp.value), i


def test_c_lstm_generator_batches_over_time():
    """The C LSTM: x W_ih^T as one GEMM over T*N rows before the loop; dW_ih, dW_hh as one GEMM each
    after the backward loop; dx_t = dgates_t W_ih in the loop, on the step's rows while dgates_t is in
    cache, with W_ih prepared once like W_hh; gate slices are views and dgates' parts are written in
    place. Both time loops are split by batch rows (each thread every step of its rows, its part of
    each step's product) and every product runs on the OpenMP team."""
    src = symgrad.REGISTRY.emit(symgrad.REGISTRY.get("lstm"), "c")["c/lstm.c"]
    fwd, bwd = src.split("void lstm_backward_f32")[0], src.split("void lstm_backward_f32")[1]
    assert "sg_gemm_team_f32(0, 1, N*T, 4*H, D, x, D, W_ih, D, 0, xW_ih_steps, 4*H);" in fwd   # beta 0: overwrite
    for part in (fwd.split("void lstm_forward_f32")[1], bwd):
        assert "sg_gemm_f32(" not in part and "sg_rows_of(N, &_lo, &_hi);" in part
        assert "for (int64_t i0 = _lo; i0 < _hi; ++i0)" in part
    # both step products read W_hh prepared once before their loop (packed for the float kernel,
    # transposed for the forward's h W_hh^T), never W_hh itself; the forward's is added to the step's
    # slice of x W_ih^T (beta 1), not stored apart and summed in a pass of its own
    assert ("sg_gemm_prep_f32(0, _hi - _lo, 4*H, H, (h_steps + H*N*_t) + _lo*H, H, W_hh_T, 1, "
            "(xW_ih_steps + 4*H*N*_t) + _lo*4*H, 4*H);") in fwd
    assert "hW_hh" not in fwd.split("void lstm_forward_f32")[1]
    assert "gates[4*H*i0 + i1] = b_hh[i1] + b_ih[i1] + xW_ih_steps[4*H*N*_t + 4*H*i0 + i1];" in fwd
    assert fwd.index("sg_prep_b_f32(1, H, 4*H, W_hh, H, W_hh_T);") < fwd.index("for (int64_t _t = 0")
    assert "sg_gemm_prep_f32(0, _hi - _lo, H, 4*H, (dgates_steps + 4*H*N*_t) + _lo*4*H, 4*H, W_hh_P, 0, _gout_h + _lo*H, H);" in bwd
    assert bwd.index("sg_prep_b_f32(0, 4*H, H, W_hh, H, W_hh_P);") < bwd.index("for (int64_t _t = T - 1")
    assert fwd.index("N*T, 4*H, D, x") < fwd.index("for (int64_t _t = 0")
    loop_end = bwd.index("if (T == 0)")
    for gemm in ("(1, 0, 4*H, D, N*T, dgates_steps", "(1, 0, 4*H, H, N*T, dgates_steps"):
        assert bwd.index(gemm) > loop_end, gemm
    step_dx = ("sg_gemm_prep_f32(0, _hi - _lo, D, 4*H, (dgates_steps + 4*H*N*_t) + _lo*4*H, 4*H, W_ih_P, 0, "
               "(dx + D*N*_t) + _lo*D, D);")
    assert bwd.index("for (int64_t _t = T - 1") < bwd.index(step_dx) < loop_end
    assert bwd.index("sg_prep_b_f32(0, 4*H, D, W_ih, D, W_ih_P);") < bwd.index("for (int64_t _t = T - 1")
    assert "N*T, D, 4*H, dgates_steps" not in bwd
    # the NumPy module keeps dx after the loop, one product over the stacked steps (the plan's default)
    p = plan(symgrad.REGISTRY.get("lstm"))
    assert "dx" in [s.out for s in p.post] and "dx" not in p.loop_returns
    p = plan(symgrad.REGISTRY.get("lstm"), sequence_products_in_loop=True)
    assert "dx" not in [s.out for s in p.post] and "dx" in p.loop_returns
    assert "t2[" not in src and "t7[" not in src  # views, no copies
    # and no allocation: the one malloc of the helpers (the product kernel's packing space) is compiled
    # only in the runtime's builds, with SYMGRAD_PACK_MALLOC (docs/c-backend.md)
    without = re.sub(r"#ifdef SYMGRAD_PACK_MALLOC\n.*?#endif", "", src, flags=re.S)
    assert "malloc(" in src and "malloc(" not in without
    assert "gates[4*H*i0 + 3*H + i1]" in fwd



@pytest.mark.parametrize("T, N", [(4, 41), (1, 2), (0, 41), (4, 0)])
def test_c_lstm_cache_copies_written_inside_the_time_loop(T, N):
    """The C LSTM's usual call (the caller's own arrays, no borrow) runs lstm_forward_kept, whose
    threads write the cache's copies of x, W_ih and W_hh a slice per step (whole after the loop when no
    step or no row runs). The copies equal the arguments exactly, share no memory with them and are
    read-only; edits of the caller's arrays after forward do not reach backward; and outputs, caches
    and gradients equal those of the borrowed call and of a strided x (both the plain forward).
    T=4, N=41, H=96 is large enough for the loop to be split by rows over the threads."""
    require_target("lstm", "c")
    k = symgrad.load("lstm", "c", "float64")
    g = k.module.forward.__globals__
    original, calls = g["_FWDK"], []
    g["_FWDK"] = {dt: (lambda *a, f=f: calls.append(1) or f(*a)) for dt, f in original.items()}
    D, H = 7, 96
    rng = np.random.default_rng(3)
    args = dict(x=rng.standard_normal((T, N, D)), h0=rng.standard_normal((N, H)) * 0.5,
                c0=rng.standard_normal((N, H)) * 0.5, W_ih=rng.standard_normal((4 * H, D)) * 0.3,
                W_hh=rng.standard_normal((4 * H, H)) * 0.1, b_ih=rng.standard_normal(4 * H),
                b_hh=rng.standard_normal(4 * H))
    dhs = rng.standard_normal((T, N, H))
    try:
        runs = []
        for how in ("usual", "borrow", "strided"):
            borrow = how == "borrow"
            a = {n: v.copy() for n, v in args.items()}
            if how == "strided":   # made contiguous by the call (a copy already): the plain forward
                a["x"] = np.repeat(a["x"], 2, axis=-1)[..., ::2]
            before = len(calls)
            outs, cache = k.forward(**a, borrow=borrow)
            # an empty strided x is C-contiguous already (nothing to copy): the usual path then
            assert (len(calls) > before) == (how == "usual" or (how == "strided" and a["x"].flags.c_contiguous)), how
            if how == "usual":
                for n in ("x", "W_ih", "W_hh"):
                    assert np.array_equal(cache[n], args[n]) and not np.shares_memory(cache[n], a[n])
                    assert not cache[n].flags.writeable
                    a[n][...] = 7.0   # edited after forward: backward still sees what forward saw
            grads = k.backward(cache, dhs)
            runs.append([np.asarray(o) for o in outs] + list(grads))
        for other in runs[1:]:
            for u, v in zip(runs[0], other):
                np.testing.assert_array_equal(u, v)
    finally:
        g["_FWDK"] = original

@pytest.mark.parametrize("backend", BACKENDS)
def test_user_rnn_cell_on_both_backends(backend):
    """A user's Elman RNN through the same path, on both backends (finite differences)."""
    N, D, H = symgrad.dims("N D H")

    @symgrad.recurrent(state=("h",), sequence=("x",), register=False,
                       x=(N, D), h=(N, H), W=(D, H), U=(H, H), b=(H,))
    def elman2(x, h, W, U, b):
        return symgrad.tanh(x @ W + h @ U + b)

    symgrad.REGISTRY.add(elman2)
    try:
        require_target("elman2", backend)
        rep = symgrad.check(["elman2"], backend=backend)
        assert rep.passed and len(rep.rows) == 5, rep.table()
        rng = np.random.default_rng(0)
        args = (rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 5)), rng.standard_normal((3, 5)),
                rng.standard_normal((5, 5)) * 0.3, rng.standard_normal(5))
        (hs, hT), cache = symgrad.load("elman2", backend=backend).forward(*args)
        (hs2, hT2), cache2 = symgrad.load("elman2").forward(*args)
        assert rel_err(hs, hs2) < 1e-14 and rel_err(hT, hT2) < 1e-14
        dhs = rng.standard_normal(hs.shape)
        for a, b in zip(symgrad.load("elman2", backend=backend).backward(cache, dhs),
                        symgrad.load("elman2").backward(cache2, dhs)):
            assert rel_err(a, b) < 1e-12
    finally:
        symgrad.REGISTRY.remove("elman2")


def test_c_lstm_split_by_rows_equals_numpy():
    """At T N H^2 >= 2^20 the C LSTM's time loops run split by batch rows on every thread (an odd N:
    uneven shares); forward and every gradient equal the NumPy backend's."""
    T, N, D, H = 4, 37, 5, 96
    rng = np.random.default_rng(3)
    args = [rng.standard_normal(s) * 0.3 for s in [(T, N, D), (N, H), (N, H), (4 * H, D), (4 * H, H), (4 * H,), (4 * H,)]]
    ups = [rng.standard_normal(s) for s in [(T, N, H), (N, H), (N, H)]]
    out = {}
    for backend in ("numpy", "c"):
        k = symgrad.load("lstm", backend=backend, dtype="float64")
        (hs, hT, cT), cache = k.forward(*args)
        out[backend] = [hs, hT, cT, *k.backward(cache, *ups)]
    for a, b in zip(out["numpy"], out["c"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


def test_c_user_cell_split_by_rows_equals_numpy():
    """A user's cell (an Elman RNN with a row statistic) takes the same row split at large sizes in
    forward (its backward sums db over the rows inside the loop, so that loop stays whole); forward
    and gradients equal the NumPy backend's."""
    N, D, H = symgrad.dims("N D H")

    @symgrad.recurrent(state=("h",), sequence=("x",), register=False,
                       x=(N, D), h=(N, H), W=(D, H), U=(H, H), b=(H,))
    def elman_norm(x, h, W, U, b):
        z = x @ W + h @ U + b
        return symgrad.tanh(z - symgrad.mean(z, axis=-1, keepdims=True))

    symgrad.REGISTRY.add(elman_norm)
    try:
        src = symgrad.REGISTRY.emit(elman_norm, "c")["c/elman_norm.c"]
        fwd, bwd = src.split("void elman_norm_backward_f32")
        # forward and forward_kept, both dtypes
        assert fwd.count("sg_rows_of(N, &_lo, &_hi);") == 4 and "sg_rows_of" not in bwd
        T, n, d, h = 4, 41, 7, 96
        rng = np.random.default_rng(5)
        args = (rng.standard_normal((T, n, d)), rng.standard_normal((n, h)) * 0.5, rng.standard_normal((d, h)) * 0.3,
                rng.standard_normal((h, h)) * 0.1, rng.standard_normal(h))
        dhs = rng.standard_normal((T, n, h))
        res = {}
        for backend in ("numpy", "c"):
            k = symgrad.load("elman_norm", backend=backend, dtype="float64")
            (hs, hT), cache = k.forward(*args)
            res[backend] = [hs, hT, *k.backward(cache, dhs)]
        for a, b in zip(res["numpy"], res["c"]):
            np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12)
    finally:
        symgrad.REGISTRY.remove("elman_norm")
