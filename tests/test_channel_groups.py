"""C channel groups (symgrad/targets/c/channels.py): statistics that keep one inner axis (BatchNorm's
channel) run as one parallel loop over that axis, through strided views. Checked on user layers
whose kept axis is not the second one, against the NumPy backend and finite differences."""
import numpy as np
import pytest

import symgrad
import symgrad as sg
from symgrad.registry import REGISTRY

from conftest import require_target

A, B, K, L = sg.dims("A B K L")


@pytest.fixture(scope="module")
def user_norms():
    """Two user normalizations: over axes (0, 1, 3) of a 4-D tensor (the kept axis is the third) and
    over (0, 2) of a 3-D one, each with a per-feature scale and a centred second moment."""
    @sg.layer(x=(A, B, K, L), g=(K,), register=False)
    def norm_axis2(x, g, eps=1e-5):
        m = sg.mean(x, axis=(0, 1, 3), keepdims=True)
        v = sg.mean((x - m) ** 2, axis=(0, 1, 3), keepdims=True)
        return (x - m) / sg.sqrt(v + eps) * sg.expand_dims(g, (1,))

    @sg.layer(x=(A, K, L), g=(K,), register=False)
    def norm_axis1(x, g):
        m = sg.mean(x, axis=(0, 2), keepdims=True)
        return sg.tanh(x - m) * sg.expand_dims(g, (1,)) + sg.sum(x * x, axis=(0, 2), keepdims=True)

    for spec in (norm_axis2, norm_axis1):
        REGISTRY.add(spec)
    yield
    for name in ("norm_axis2", "norm_axis1"):
        REGISTRY.remove(name)


def _source(name):
    from symgrad.ir.rewrite import c_kernel
    from symgrad.targets.c.context import CLayerEmitter
    from symgrad.codegen.render import render
    ctx = CLayerEmitter(c_kernel(REGISTRY.get(name))).context()
    return render("symgrad.targets.c", "layer.c.j2", ctx=ctx)


@pytest.mark.parametrize("name,shape,g", [("norm_axis2", (3, 2, 5, 7), 5), ("norm_axis1", (4, 6, 9), 6),
                                          ("norm_axis2", (1, 1, 3, 1), 3), ("norm_axis1", (2, 1, 5), 1)])
def test_channel_group_equals_numpy(user_norms, name, shape, g):
    require_target(name, "c")
    rng = np.random.default_rng(3)
    x, gam = rng.standard_normal(shape), rng.standard_normal(g)
    out = {}
    for backend in ("numpy", "c"):
        k = symgrad.load(name, backend=backend)
        y, cache = k.forward(x, gam)
        dy = np.random.default_rng(4).standard_normal(y.shape)
        out[backend] = (y,) + tuple(k.backward(cache, dy))
    for a, b in zip(out["numpy"], out["c"]):
        assert np.abs(a - b).max() <= 1e-12 * max(1.0, np.abs(a).max())


def test_channel_group_is_one_loop_over_the_kept_axis(user_norms):
    """The forward's statistics and output are one parallel loop over K (one pass over memory);
    batchnorm2d's forward and backward likewise over C."""
    src = _source("norm_axis2")
    for part in ("forward_f64", "forward_kept_f64"):   # the copy of x for the cache: in the same loop
        fwd = src[src.index(f"void norm_axis2_{part}"):]
        fwd = fwd[:fwd.index("\n}\n")]
        assert "per channel (K in parallel)" in fwd
        assert fwd.count("SG_PARALLEL_FOR(") == 1, fwd
    assert "x_kept[" in fwd
    bn = _source("batchnorm2d")
    for part in ("forward_f32", "forward_kept_f32", "backward_f32"):
        body = bn[bn.index(f"void batchnorm2d_{part}"):]
        body = body[:body.index("\n}\n")]
        assert "per channel (C in parallel)" in body and body.count("SG_PARALLEL_FOR(") == 1, body


def test_channel_groups_pass_the_gradient_check(user_norms):
    for name in ("norm_axis2", "norm_axis1"):
        assert symgrad.check([name], backend="c").passed


def test_batchnorm2d_backward_reads_the_channel_twice():
    """``ir.rewrite.share_sums``: the backward's sums of dy*gamma*xc over (N, H, W) and of
    dy*rstd*xc over (H, W) share one sum of dy*xc, and dy's two sums one of dy, so a channel's values
    are read by two passes (those sums, both in one loop; then dx), not four."""
    from symgrad.ir import nodes as ir
    from symgrad.ir.rewrite import c_kernel
    bwd = c_kernel(REGISTRY.get("batchnorm2d")).backward
    full = [s for s in bwd.body if isinstance(s, (ir.Elementwise, ir.Reduction))
            and tuple(s.src_shape if isinstance(s, ir.Reduction) else s.shape) == tuple(bwd.shapes["x"])]
    assert [type(s).__name__ for s in full] == ["Reduction", "Reduction", "Elementwise"], full
    assert all(s.axes == (2, 3) for s in full[:2])
    body = _source("batchnorm2d")
    body = body[body.index("void batchnorm2d_backward_f32"):]
    body = body[:body.index("\n}\n")]
    first = body[body.index("pass 1:"):body.index("pass 2:")]
    assert "sum_dy" in first and "dy*(x - mu)" in first, first


def test_share_sums_keeps_sums_whose_factors_vary():
    """Two sums of x over (1,) and (0, 1) share one; a sum of x*w over (1,) with w varying along
    axis 0 does not factor out of the other sum of x over (0, 1), and stays as it is."""
    import sympy as sp
    from symgrad.ir import nodes as ir
    from symgrad.ir.rewrite import share_sums
    n, d = sp.symbols("n d")
    x, w = sp.Symbol("x"), sp.Symbol("w")
    shapes = {"x": (n, d), "w": (n, 1), "a": (1, 1), "b": (n, 1), "c": (n, 1)}
    a = ir.Reduction("a", (1, 1), "sum", 2 * x, (n, d), (0, 1), True)
    b = ir.Reduction("b", (n, 1), "sum", x, (n, d), (1,), True)
    c = ir.Reduction("c", (n, 1), "sum", w * x * x, (n, d), (1,), True)
    f = ir.Function("backward", [], [a, b, c], ["a", "b", "c"], shapes=shapes)
    g = share_sums(f)
    assert [(type(s).__name__, s.out) for s in g.body] == [("Reduction", "b"), ("Reduction", "t0"),
                                                           ("Elementwise", "a"), ("Reduction", "c")]
    assert g.body[1].expr == sp.Symbol("b") and g.body[1].axes == (0,) and g.body[2].expr == 2 * sp.Symbol("t0")
    assert g.body[3] is c
    lone = ir.Function("backward", [], [c, a], ["a", "c"], shapes=shapes)
    assert share_sums(lone).body == [c, a]   # w*x*x and x: different terms
