"""Convolution, pooling and batch normalization (issue 15): the built-ins against torch.nn.functional
on both targets, the running statistics, the spec language's windows in a user layer, and misuse."""
import numpy as np
import pytest
import sympy as sp

import symgrad
import symgrad as sg

from conftest import BACKENDS, needs_torch, require_target, torch

F = torch.nn.functional if torch is not None else None

TOL64 = 1e-10


def rel(a, b):
    """Max relative error; infinite when ``a`` holds a NaN or an infinity that ``b`` does not (a NaN
    would otherwise drop out of the max() over several errors: NaN compares false)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if not b.size:
        return 0.0
    fin = np.isfinite(b)
    if not np.array_equal(np.isfinite(a), fin) or not np.array_equal(a[~fin], b[~fin]):
        return float("inf")
    return float(np.abs(a[fin] - b[fin]).max() / max(np.abs(b[fin]).max(), 1e-300)) if fin.any() else 0.0


def against_torch(name, backend, arrays, hyper, ref, dtype="float64", seed=0):
    """Max relative error of forward and every gradient of kernel ``name`` against torch ``ref``."""
    rng = np.random.default_rng(seed)
    k = symgrad.load(name, backend=backend, dtype=dtype)
    y, cache = k.forward(*[a.astype(dtype) for a in arrays], **hyper)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ty = ref(*ts)
    dy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(dy))
    grads = k.backward(cache, dy.astype(dtype))
    assert y.dtype == np.dtype(dtype) and all(g.dtype == np.dtype(dtype) for g in grads)
    return max([rel(y, ty.detach().numpy())] + [rel(g, t.grad.numpy()) for g, t in zip(grads, ts)])


CONV2D = [  # N, C, H, W, O, KH, KW, stride, padding, dilation
    (2, 3, 7, 6, 4, 3, 2, 1, 0, 1),
    (2, 3, 9, 8, 4, 3, 3, 2, 1, 2),     # stride 2, padding 1, dilation 2
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1),     # size-1 everything
    (3, 2, 5, 7, 5, 2, 3, 3, 2, 1),     # odd sizes, padding larger than the kernel's reach
    (2, 1, 4, 5, 3, 3, 3, 1, 1, 1),     # "same" convolution
    (2, 3, 7, 8, 4, 3, 2, 2, 1, 1),     # last axis: windows of 2 at stride 2 (interleaved rows), padding 1
    (2, 3, 6, 8, 5, 2, 2, 2, 0, 1),     # patches that tile the input (the fold stores, no zeroing)
    (3, 20, 6, 7, 5, 3, 3, 1, 1, 1),    # C in two blocks of channels on C (14 + 6 at 3x3: Windows._channel_blocks)
    (2, 45, 5, 5, 3, 1, 3, 2, 1, 2),    # 42 + 3 channels at 1x3, stride 2, dilation 2
    (6, 2, 9, 8, 3, 3, 3, 1, 1, 1),     # the bias gradient's sum over (N, H*W): 4 samples side by side, then 2
]


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CONV2D)
def test_conv2d_matches_torch(backend, case):
    require_target("conv2d", backend)
    n, c, h, w, o, kh, kw, s, p, d = case
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, kh, kw)), rng.standard_normal(o)]
    hyper = dict(stride=s, padding=p, dilation=d)
    err = against_torch("conv2d", backend, arrays, hyper, lambda x, W, b: F.conv2d(x, W, b, **hyper))
    assert err < TOL64, err


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [(2, 3, 11, 4, 3, 1, 0, 1), (2, 3, 11, 4, 3, 2, 1, 2), (1, 1, 1, 1, 1, 1, 0, 1),
                                  (3, 2, 7, 5, 2, 3, 2, 1), (2, 3, 12, 4, 3, 3, 0, 1),
                                  (2, 50, 9, 4, 3, 1, 1, 1)])   # 42 + 8 channels: two blocks on C
def test_conv1d_matches_torch(backend, case):
    require_target("conv1d", backend)
    n, c, length, o, k, s, p, d = case
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((n, c, length)), rng.standard_normal((o, c, k)), rng.standard_normal(o)]
    hyper = dict(stride=s, padding=p, dilation=d)
    err = against_torch("conv1d", backend, arrays, hyper, lambda x, W, b: F.conv1d(x, W, b, **hyper))
    assert err < TOL64, err


# float32 on C: at unit stride on the last axis the products read a convolution's windows straight from x
# (sg_gemm_window: forward and weight gradient), else from the window array; both against torch
WINDOWS_F32 = CONV2D + [
    (2, 20, 9, 37, 3, 3, 3, 1, 2, 2),   # 37 columns: the kernel's strips of 32 cross output rows, two blocks
    (1, 3, 5, 70, 2, 3, 5, 1, 3, 1),    # rows longer than a strip, wide padding
    (2, 2, 4, 6, 3, 3, 3, 1, 4, 1),     # padding beyond the kernel's reach on both axes
    (2, 3, 5, 5, 2, 1, 1, 1, 0, 1),     # 1x1 kernel
    (1, 2, 14, 15, 3, 12, 11, 1, 1, 1),  # 132 cells: a channel's window rows span two of the kernel's k blocks
    # 3x3 at unit stride with enough channels and tiles: the Winograd forms (sg_wino_ok), forward, the input
    # gradient's gather and (from 32 input channels) the weight gradient
    (2, 32, 16, 17, 20, 3, 3, 1, 1, 1),
    (1, 40, 19, 18, 17, 3, 3, 1, 0, 1),   # odd output rows: the last tile row's second row dropped
    (1, 33, 16, 16, 16, 3, 3, 1, 3, 1),   # padding 3: the gather's padding -1 crops
    (1, 16, 5, 300, 16, 3, 3, 1, 1, 1),   # a row of 150 tiles, more than a block of 128
]


def float32_conv_error(name, shapes, hyper, seed):
    """Max relative error of the float32 C kernel ``name`` (conv1d, conv2d), forward and every gradient,
    against torch in float64 on the same float32 inputs."""
    require_target(name, "c")
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(sh).astype(np.float32) for sh in shapes]
    k = symgrad.load(name, backend="c", dtype="float32")
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    ty = getattr(F, name)(*ts, **hyper)
    y, cache = k.forward(*arrays, **hyper)
    dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    return max([rel(y, ty.detach().numpy())] + [rel(g, t.grad.numpy()) for g, t in zip(k.backward(cache, dy), ts)])


@needs_torch
@pytest.mark.parametrize("case", WINDOWS_F32)
def test_conv_float32_windows_read_from_x(case):
    n, c, h, w, o, kh, kw, s, p, d = case
    err = float32_conv_error("conv2d", ((n, c, h, w), (o, c, kh, kw), (o,)), dict(stride=s, padding=p, dilation=d), 3)
    assert err < 2e-5, err


@needs_torch
@pytest.mark.parametrize("case", [(2, 3, 11, 4, 3, 1, 0, 1), (2, 3, 40, 4, 3, 1, 2, 3), (2, 50, 9, 4, 3, 1, 1, 1),
                                  (3, 2, 7, 5, 2, 3, 2, 1)])
def test_conv1d_float32_windows_read_from_x(case):
    n, c, length, o, k, s, p, d = case
    err = float32_conv_error("conv1d", ((n, c, length), (o, c, k), (o,)), dict(stride=s, padding=p, dilation=d), 5)
    assert err < 2e-5, err


POOL = [  # N, C, H, W, kernel_size, stride, padding
    (2, 3, 8, 8, 2, None, 0), (2, 3, 9, 7, 3, 2, 1), (1, 1, 1, 1, 1, None, 0), (2, 2, 5, 6, 3, 1, 1),
    (1, 2, 7, 5, 2, 3, 1),
    # non-overlapping windows of 2 (the C target's interleaved rows), with edges and padding
    (2, 3, 7, 9, 2, 2, 1), (2, 3, 6, 8, 2, 2, 1), (1, 2, 4, 6, 2, None, 0), (1, 1, 3, 1, 2, None, 1),
    # windows of 2 without padding, read in place (the C target's strided views), odd sizes leave a
    # row and a column out
    (2, 3, 7, 9, 2, None, 0), (3, 2, 5, 4, 2, 2, 0),
    # ... that tile x: the backward's one pass (Windows._cell_nest) over rows of 21 outputs (a block of
    # 16 and 5 after) and of 32 (two blocks)
    (2, 3, 6, 42, 2, None, 0), (1, 2, 4, 64, 2, 2, 0),
]


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", POOL)
@pytest.mark.parametrize("name,ref", [("maxpool2d", "max_pool2d"), ("avgpool2d", "avg_pool2d")])
def test_pooling_matches_torch(backend, case, name, ref):
    require_target(name, backend)
    n, c, h, w, k, s, p = case
    x = np.random.default_rng(3).standard_normal((n, c, h, w))
    fn = getattr(F, ref)
    err = against_torch(name, backend, [x], dict(kernel_size=k, stride=s, padding=p),
                        lambda t: fn(t, k, stride=s, padding=p))
    assert err < TOL64, err


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,shape", [("conv2d", None), ("maxpool2d", None), ("batchnorm2d", None)])
def test_float32_matches_torch_float32(backend, name, shape):
    """float32 kernels compute in float32 and agree with torch's float32 to float32 accuracy."""
    require_target(name, backend)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 9, 8))
    if name == "conv2d":
        arrays, hyper = [x, rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)], dict(padding=1)
        ref = lambda a, W, b: F.conv2d(a, W, b, padding=1)  # noqa: E731
    elif name == "maxpool2d":
        arrays, hyper, ref = [x], dict(kernel_size=3, stride=2, padding=1), \
            (lambda a: F.max_pool2d(a, 3, stride=2, padding=1))
    else:
        k = symgrad.load(name, backend=backend, dtype="float32")
        rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
        g, b = rng.standard_normal(3), rng.standard_normal(3)
        y, cache = k.forward(x.astype(np.float32), g.astype(np.float32), b.astype(np.float32), rm, rv)
        ty = F.batch_norm(torch.tensor(x, dtype=torch.float32), torch.zeros(3, dtype=torch.float32), torch.ones(3, dtype=torch.float32),
                          torch.tensor(g, dtype=torch.float32), torch.tensor(b, dtype=torch.float32), training=True)
        assert y.dtype == np.float32 and rel(y, ty.numpy()) < 1e-5
        return
    ts = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in arrays]
    k = symgrad.load(name, backend=backend, dtype="float32")
    y, cache = k.forward(*[a.astype(np.float32) for a in arrays], **hyper)
    ty = ref(*ts)
    dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(dy))
    grads = k.backward(cache, dy)
    assert rel(y, ty.detach().numpy()) < 1e-5
    for g, t in zip(grads, ts):
        assert g.dtype == np.float32 and rel(g, t.grad.numpy()) < 1e-5


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,shape", [("batchnorm", (5, 3)), ("batchnorm", (1, 4)), ("batchnorm2d", (4, 3, 5, 2)),
                                        ("batchnorm2d", (1, 2, 1, 3)), ("batchnorm2d", (3, 1, 3, 3)),
                                        # the C sums over a channel's samples: 4 at a time, then the last 3,
                                        # each over H*W = 72 (64 laned, 8 after)
                                        ("batchnorm2d", (7, 2, 9, 8))])
def test_batchnorm_matches_torch_over_training_and_eval_steps(backend, name, shape):
    """Forward and every gradient in both modes to 1e-10, and the running statistics after 10
    steps (7 training, 3 eval) to 1e-12: torch's EMA with the unbiased batch variance."""
    require_target(name, backend)
    rng = np.random.default_rng(5)
    k = symgrad.load(name, backend=backend)
    c = shape[1]
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    trm, trv = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    for step in range(10):
        training = step < 7
        if shape[0] * int(np.prod(shape[2:])) == 1 and training:
            continue   # torch refuses one value per channel in training mode
        x, g, b = rng.standard_normal(shape), rng.standard_normal(c), rng.standard_normal(c)
        y, cache = k.forward(x, g, b, rm, rv, momentum=0.2, eps=1e-3, training=training)
        tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, g, b))
        ty = F.batch_norm(tx, trm, trv, tg, tb, training=training, momentum=0.2, eps=1e-3)
        dy = rng.standard_normal(shape)
        ty.backward(torch.tensor(dy))
        dx, dg, db = k.backward(cache, dy)
        assert rel(y, ty.detach().numpy()) < TOL64
        for got, t in ((dx, tx), (dg, tg), (db, tb)):
            assert rel(got, t.grad.numpy()) < TOL64, (step, training)
    assert rel(rm, trm.numpy()) < 1e-12 and rel(rv, trv.numpy()) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_eval_does_not_touch_the_running_statistics(backend):
    require_target("batchnorm", backend)
    k = symgrad.load("batchnorm", backend=backend)
    rng = np.random.default_rng(6)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    before = rm.copy(), rv.copy()
    y, _ = k.forward(rng.standard_normal((4, 3)), np.ones(3), np.zeros(3), rm, rv, training=False)
    assert np.array_equal(rm, before[0]) and np.array_equal(rv, before[1])
    assert np.allclose(y, (y * 0 + 1) * y)  # finite


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_buffers_misuse_changes_nothing(backend):
    """A buffer that cannot take the update in place is refused before anything is written."""
    require_target("batchnorm", backend)
    k = symgrad.load("batchnorm", backend=backend)
    x, g, b = np.ones((4, 3)), np.ones(3), np.zeros(3)
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(TypeError, match="running_mean"):
        k.forward(x, g, b, rm.astype(np.float32), rv)             # would be a converted copy
    with pytest.raises(TypeError, match="running_mean"):
        k.forward(x, g, b, [0.0, 0.0, 0.0], rv)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="running_var"):
        k.forward(x, g, b, rm, ro)
    with pytest.raises(ValueError, match="running_var"):
        k.forward(x, g, b, rm, np.ones(6)[::2])
    with pytest.raises(ValueError, match="running_mean"):
        k.forward(x, g, b, np.zeros(4), rv)
    with pytest.raises(TypeError, match="training"):
        k.forward(x, g, b, rm, rv, training="no")
    with pytest.raises(ValueError, match="x"):
        k.forward(np.ones((4, 5)), g, b, rm, rv)                  # a bad input after good buffers
    assert np.array_equal(rm, np.zeros(3)) and np.array_equal(rv, np.ones(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_window_misuse(backend):
    require_target("conv2d", backend)
    k = symgrad.load("conv2d", backend=backend)
    x, w, b = np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3)), np.zeros(3)
    with pytest.raises(ValueError, match="H_out.*does not fit"):
        k.forward(np.ones((1, 2, 2, 4)), w, b)
    for bad, exc in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError),
                     (2**40, ValueError)):
        with pytest.raises(exc, match="stride"):
            k.forward(x, w, b, stride=bad)
    with pytest.raises(ValueError, match="padding"):
        k.forward(x, w, b, padding=-1)
    y, cache = k.forward(x, w, b, padding=1)
    assert y.shape == (1, 3, 4, 4)
    edited = dict(cache, H_out=3)
    with pytest.raises(TypeError, match="H_out"):
        k.backward(edited, np.ones((1, 3, 3, 4)))
    with pytest.raises(TypeError):
        k.backward(dict(cache, stride=2), np.ones(y.shape))      # sizes and positions disagree
    with pytest.raises(ValueError, match="dy"):
        k.backward(cache, np.ones((1, 3, 3, 4)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch_and_channels(backend):
    require_target("conv2d", backend)
    k = symgrad.load("conv2d", backend=backend)
    y, cache = k.forward(np.ones((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.zeros(3))
    assert y.shape == (0, 3, 3, 3)
    dx, dw, db = k.backward(cache, y)
    assert dx.shape == (0, 2, 5, 5) and not dw.any() and not db.any()
    p = symgrad.load("maxpool2d", backend=backend)
    y, cache = p.forward(np.ones((2, 0, 4, 4)))
    assert y.shape == (2, 0, 2, 2) and p.backward(cache, y)[0].shape == (2, 0, 4, 4)


N, C, L = sg.dims("N C L")


@pytest.fixture(scope="module")
def user_pool():
    """A user's layer with the window construct: a 1-D soft pooling (log-sum-exp over windows) whose
    stride defaults to its window size."""
    @sg.layer(x=(N, C, L), register=False)
    def lse_pool1d(x, width=sg.size(3), stride=sg.size("width"), padding=sg.size(0, minimum=0)):
        u = sg.unfold(x, (width,), stride, padding, fill=-sp.oo)
        return sg.log(sg.sum(sg.exp(u), axis=2))
    symgrad.REGISTRY.add(lse_pool1d)
    yield lse_pool1d
    symgrad.REGISTRY.remove("lse_pool1d")


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
def test_user_window_layer(user_pool, backend):
    k = symgrad.load("lse_pool1d", backend=backend)
    x = np.random.default_rng(7).standard_normal((2, 3, 10))
    long = np.random.default_rng(8).standard_normal((2, 3, 42))   # width 2: 21 windows, a block of 16 and 5
    for x, hyper in ((x, {}), (x, dict(width=4, stride=2, padding=1)),
                     (x, dict(width=2)), (long, dict(width=2))):   # width 2: windows read in place, one nest
        size = hyper.get("width", 3)
        ref = lambda t: torch.logsumexp(  # noqa: E731
            F.pad(t, (hyper.get("padding", 0),) * 2, value=-np.inf).unfold(2, size, hyper.get("stride", size)), -1)
        assert against_torch("lse_pool1d", backend, [x], hyper, ref) < TOL64
    assert symgrad.check(["lse_pool1d"], backend=backend).passed


def test_spec_errors():
    with pytest.raises(sg.SpecError, match="not used"):
        @sg.layer(x=(N, C, L), register=False)
        def f(x, stride=sg.size(1)):
            return x * 2
    with pytest.raises(sg.SpecError, match="not an int-valued size"):
        @sg.layer(x=(N, C, L), register=False)
        def g(x, stride=sg.size("nope")):
            return sg.sum(sg.unfold(x, (2,), stride), axis=2)
    with pytest.raises(sg.SpecError, match="minimum"):
        sg.size(0)
    with pytest.raises(sg.SpecError, match="window size"):
        @sg.layer(x=(N, C, L), register=False)
        def h(x):
            return sg.sum(sg.unfold(x, (0.5,)), axis=2)
    with pytest.raises(sg.SpecError, match="never updated"):
        @sg.layer(x=(N, C), avg=sg.buffer((C,)), register=False)
        def k(x, avg):
            return x * 2
    with pytest.raises(sg.SpecError, match="buffer"):
        sg.update(sg.dims("Q")[0], 1)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_function_and_jax_with_sizes_and_buffers(backend):
    """symgrad.torch.function takes the size keywords and updates a module's buffers in place;
    symgrad.jax.function returns the new running statistics instead (JAX state is functional)."""
    import symgrad.torch as sgt
    conv = sgt.function("conv2d", backend=backend)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: conv(*a, stride=2, padding=1, dilation=2), (x, w, b))
    bn = sgt.function("batchnorm2d", backend=backend)
    rm, rv = torch.zeros(3), torch.ones(3)
    y = bn(x, torch.ones(3, requires_grad=True), torch.zeros(3), rm, rv, momentum=0.5)
    ref_m, ref_v = torch.zeros(3), torch.ones(3)
    F.batch_norm(x.detach(), ref_m, ref_v, training=True, momentum=0.5)
    assert torch.allclose(rm, ref_m, rtol=1e-12, atol=0) and torch.allclose(rv, ref_v, rtol=1e-12, atol=0)
    y.sum().backward()
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import symgrad.jax as sgj
    f = sgj.function("batchnorm", backend=backend)
    xj = np.random.default_rng(8).standard_normal((5, 3))
    m0, v0 = np.zeros(3), np.ones(3)
    y, m1, v1 = f(xj, np.ones(3), np.zeros(3), m0, v0)
    assert np.array_equal(m0, np.zeros(3)) and np.allclose(np.asarray(m1), 0.1 * xj.mean(0), rtol=1e-12)
    assert np.allclose(np.asarray(v1), 0.9 + 0.1 * xj.var(0, ddof=1), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_module_batchnorm2d_is_nn_batchnorm2d(backend):
    """symgrad.torch.Module("batchnorm2d") holds the running statistics as buffers (running_var starts
    at 1: sg.buffer's init), follows train()/eval() like nn.BatchNorm2d, and matches it over steps."""
    require_target("batchnorm2d", backend)
    import symgrad.torch as sgt
    bn = sgt.Module("batchnorm2d", C=3, backend=backend, dtype=torch.float64)
    assert [n for n, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    ref = torch.nn.BatchNorm2d(3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(bn.gamma)
        ref.bias.copy_(bn.beta)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    for mode in ("train", "train", "eval", "train", "eval"):
        getattr(bn, mode)()
        getattr(ref, mode)()
        y, r = bn(x), ref(x)
        assert torch.allclose(y, r, rtol=1e-10, atol=1e-12), mode
        gy = torch.autograd.grad(y.sum(), x)[0]
        gr = torch.autograd.grad(r.sum(), x)[0]
        assert torch.allclose(gy, gr, rtol=1e-8, atol=1e-10), mode
    assert torch.allclose(bn.running_mean, ref.running_mean, rtol=1e-12, atol=1e-15)
    assert torch.allclose(bn.running_var, ref.running_var, rtol=1e-12, atol=1e-15)
