"""A user's own layer and activation go through derive -> generate -> check like the built-ins."""
import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.cli import main

from conftest import BACKENDS, import_path, needs_torch, rel_err, torch

N, D, M = sg.dims("N D M")
u = sp.Symbol("u", real=True)

# A user activation by its scalar formula: swish / SiLU, u * sigmoid(u).
SWISH = sg.activation("user_swish", u / (1 + sp.exp(-u)), register=False)


# A user layer: a gated unit with a residual path and a scalar hyperparameter.
@sg.layer(x=(N, D), W=(D, M), V=(D, M), register=False)
def user_gated(x, W, V, scale=0.5):
    """y = tanh(x W) * sigmoid(x V) * scale + mean over features of x."""
    gate = sg.apply(1 / (1 + sp.exp(-u)), fn="sigmoid", u=x @ V)
    return sg.tanh(x @ W) * gate * scale + sg.mean(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module", autouse=True)
def registered():
    for s in (SWISH, user_gated):
        sg.REGISTRY.add(s)
    yield
    for s in (SWISH, user_gated):
        sg.REGISTRY.remove(s.name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["user_swish", "user_gated"])
def test_user_spec_checks(name, backend):
    rep = sg.check([name], backend=backend)
    assert rep.passed and len(rep.rows) == len(sg.REGISTRY.get(name).diff_inputs), rep.table()
    assert sg.check([name], dtype="float32", backend=backend).passed


def test_user_spec_generates_and_imports(tmp_path):
    sg.generate(["user_gated", "user_swish"], out=tmp_path)
    mod = import_path(tmp_path / "numpy" / "user_gated.py")
    rng = np.random.default_rng(0)
    x, W, V = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    y, cache = mod.forward(x, W, V, scale=2.0)
    ref = np.tanh(x @ W) / (1 + np.exp(-x @ V)) * 2.0 + x.mean(-1, keepdims=True)
    assert rel_err(y, ref) < 1e-14
    assert len(mod.backward(cache, np.ones_like(y))) == 3


def test_user_spec_from_file_through_cli(tmp_path):
    spec = tmp_path / "my_layers.py"
    spec.write_text(
        "import sympy as sp, symgrad as sg\n"
        "t = sp.Symbol('t', real=True)\n"
        "sg.activation('softsign_user', t / (1 + sp.Abs(t)))\n")
    from click.testing import CliRunner
    r = CliRunner().invoke(main, ["generate", "softsign_user", "--spec", str(spec), "--out", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g" / "numpy" / "softsign_user.py").is_file()
    r = CliRunner().invoke(main, ["check", "softsign_user"])
    assert r.exit_code == 0, r.output
    sg.REGISTRY.remove("softsign_user")


@needs_torch
def test_user_activation_matches_torch_silu():
    k = sg.load("user_swish")
    z = np.linspace(-30, 30, 61)
    a, cache = k.forward(z)
    (dz,) = k.backward(cache, np.ones_like(z))
    t = torch.tensor(z, requires_grad=True)
    ta = torch.nn.functional.silu(t)
    ta.sum().backward()
    assert rel_err(a, ta.detach().numpy()) < 1e-12
    assert rel_err(dz, t.grad.numpy()) < 1e-12


def test_bad_specs_raise_clear_errors():
    with pytest.raises(sg.SpecError, match="shape mismatch"):
        @sg.layer(x=(N, D), W=(M, D), register=False)
        def bad(x, W):
            return x @ W
    with pytest.raises(sg.SpecError, match="exactly one free symbol"):
        sg.activation("bad_act", u + sp.Symbol("v"), register=False)
    with pytest.raises(sg.SpecError, match="undefined symbol"):
        @sg.layer(x=(N, D), register=False)
        def bad2(x):
            return x * sp.Symbol("k")
    with pytest.raises(sg.SpecError, match="not a valid identifier"):
        sg.activation("../evil", u, register=False)
    with pytest.raises(sg.SpecError, match="already registered"):
        sg.activation("sigmoid", u, register=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_gradients_that_are_one_product_are_returned_as_two_arrays(backend):
    """``x @ W + x @ V``: dW and dV are the same product x^T dy, computed once and the second returned
    as a copy. The C target planned its buffers from the IR's shapes, which lacked the copy's: loading
    the layer was a KeyError."""
    N, D, M = sg.dims("N D M")

    @sg.layer(x=(N, D), W=(D, M), V=(D, M), register=False)
    def shared_gradient(x, W, V):
        "x W + x V: dW = dV."
        return x @ W + x @ V
    sg.REGISTRY.add(shared_gradient)
    try:
        k = sg.load("shared_gradient", backend=backend)
        rng = np.random.default_rng(0)
        x, W, V, dy = (rng.standard_normal(s) for s in ((3, 4), (4, 5), (4, 5), (3, 5)))
        y, cache = k.forward(x, W, V)
        dx, dW, dV = k.backward(cache, dy)
        assert rel_err(y, x @ (W + V)) <= 1e-12 and rel_err(dx, dy @ (W + V).T) <= 1e-12
        assert rel_err(dW, x.T @ dy) <= 1e-12 and np.array_equal(dW, dV) and not np.shares_memory(dW, dV)
    finally:
        sg.REGISTRY.remove("shared_gradient")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_axis_whose_size_is_a_sum(backend):
    """A feature axis of size D + M: the C target pasted such sizes into products (``_c*{size}``,
    ``{row}*i0``), which read ``_c*D + M``: y, dx and dw came out wrong without an error. The row sum
    runs over 131 elements (laned blocks of 64 and a tail)."""
    N, D, M = sg.dims("N D M")

    @sg.layer(x=(N, D + M), w=(D + M,), a=(D,), b=(M,), register=False)
    def scaled_cat(x, w, a, b):
        "x w + the row sums of x + sum(a) + sum(b)."
        return x * w + sg.sum(x, axis=-1, keepdims=True) + sg.sum(a) + sg.sum(b)
    sg.REGISTRY.add(scaled_cat)
    try:
        k = sg.load("scaled_cat", backend=backend)
        rng = np.random.default_rng(0)
        x, w, a, b = (rng.standard_normal(s) for s in ((40, 131), (131,), (70,), (61,)))
        dy = rng.standard_normal((40, 131))
        y, cache = k.forward(x, w, a, b)
        dx, dw, da, db = k.backward(cache, dy)
        assert rel_err(y, x * w + x.sum(1, keepdims=True) + a.sum() + b.sum()) <= 1e-12
        assert rel_err(dx, dy * w + dy.sum(1, keepdims=True)) <= 1e-12
        assert rel_err(dw, (x * dy).sum(0)) <= 1e-12
        assert rel_err(da, np.full(70, dy.sum())) <= 1e-12 and rel_err(db, np.full(61, dy.sum())) <= 1e-12
    finally:
        sg.REGISTRY.remove("scaled_cat")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_layer_with_two_outputs_returns_them_as_one_tuple(backend):
    """forward -> (out, cache), out a tuple when there are several (docs/contract.md): the C backend
    returned (y, s, cache)."""
    N, D = sg.dims("N D")

    @sg.layer(x=(N, D), register=False)
    def two_outputs(x):
        "2 x and the row sums of x."
        return 2 * x, sg.sum(x, axis=-1, keepdims=True)
    sg.REGISTRY.add(two_outputs)
    try:
        k = sg.load("two_outputs", backend=backend)
        x = np.random.default_rng(0).standard_normal((3, 70))
        (y, s), cache = k.forward(x)
        assert rel_err(y, 2 * x) == 0 and rel_err(s, x.sum(1, keepdims=True)) <= 1e-14
        (dx,) = k.backward(cache, np.ones_like(y), np.ones_like(s))
        assert rel_err(dx, np.full_like(x, 3.0)) == 0
    finally:
        sg.REGISTRY.remove("two_outputs")
