"""symgrad.torch: generated kernels under torch.autograd (gradcheck over the whole registry, both
backends), as nn.Modules, and as torch.optim optimizers against torch.optim itself."""
import numpy as np
import pytest
import sympy as sp

import symgrad
from symgrad.verify.layers import random_inputs

from conftest import BACKENDS, layer_names, needs_torch, require_target, torch

pytestmark = needs_torch

N, D, M = symgrad.dims("N D M")
u = sp.Symbol("u", real=True)


def tensors_for(name, seed=0, dtype=None):
    """Random float64 tensors for every argument of ``name`` (reals require grad)."""
    spec = symgrad.REGISTRY.get(name)
    args = random_inputs(spec, np.random.default_rng(seed))
    out = []
    for a in spec.inputs:
        t = torch.from_numpy(np.asarray(args[a.name]))
        if a.kind == "real":
            t = t.to(dtype or torch.float64).requires_grad_(a.differentiable)
        out.append(t)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", layer_names())
def test_gradcheck_every_layer(name, backend):
    require_target(name, backend)
    import symgrad.torch as sgt
    f = sgt.function(name, backend=backend)
    args = tensors_for(name)
    assert torch.autograd.gradcheck(f, args)


@pytest.fixture
def user_layer():
    @symgrad.layer(x=(N, D), W=(D, M), V=(D, M))
    def user_glu(x, W, V, scale=0.5):
        "Gated linear unit: (x W) * sigmoid(scale * x V)."
        return (x @ W) * symgrad.apply(1 / (1 + sp.exp(-u)), fn="sigmoid", u=scale * (x @ V))
    yield "user_glu"
    symgrad.REGISTRY.remove("user_glu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_user_layer(user_layer, backend):
    import symgrad.torch as sgt
    f = sgt.function(user_layer, backend=backend)
    args = tensors_for(user_layer, seed=3)
    assert torch.autograd.gradcheck(lambda *a: f(*a, scale=0.7), args)
    y = f(*args, scale=0.7)
    x, W, V = (a.detach() for a in args)
    assert torch.allclose(y, (x @ W) * torch.sigmoid(0.7 * (x @ V)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_matches_nn_lstm(backend):
    import symgrad.torch as sgt
    T, B, Din, H = 5, 3, 4, 6
    ref = torch.nn.LSTM(Din, H, dtype=torch.float64)
    x = torch.randn(T, B, Din, requires_grad=True)
    hs, (hT, cT) = ref(x)
    (hs.sum() + 2 * hT.sum() + 3 * cT.sum()).backward()
    xr = x.detach().clone().requires_grad_(True)
    zeros = torch.zeros(B, H)
    params = [p.detach().clone().requires_grad_(True) for p in
              (ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0)]
    out = sgt.function("lstm", backend=backend)(xr, zeros, zeros, *params)
    assert len(out) == 3
    (out[0].sum() + 2 * out[1].sum() + 3 * out[2].sum()).backward()
    for got, want in zip((*out, xr.grad, *(p.grad for p in params)),
                         (hs, hT[0], cT[0], x.grad, ref.weight_ih_l0.grad, ref.weight_hh_l0.grad,
                          ref.bias_ih_l0.grad, ref.bias_hh_l0.grad)):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_copies_and_float32(backend):
    import symgrad.torch as sgt
    from symgrad.torch.autograd import as_tensor, cpu_array
    x = torch.randn(8, 5, dtype=torch.float32)
    assert cpu_array("x", x).ctypes.data == x.data_ptr()
    a = np.ones((2, 3))
    assert as_tensor(a, a.dtype).data_ptr() == a.ctypes.data
    xt = x.t()                                  # a non-contiguous view stays a view (the kernel copies it)
    assert np.array_equal(cpu_array("x", xt), xt.numpy()) and cpu_array("x", xt).ctypes.data == x.data_ptr()
    W, b = torch.randn(5, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    xd = torch.randn(5, 4, dtype=torch.float64)
    y = sgt.function("dense", backend=backend)(xd.t(), W, b)          # strided input: right answer
    assert torch.allclose(y, xd.t() @ W + b, rtol=1e-13)
    g, b = torch.ones(5, dtype=torch.float32), torch.zeros(5, dtype=torch.float32)
    y = sgt.function("layernorm", backend=backend)(x.requires_grad_(True), g, b)
    assert y.dtype == torch.float32
    assert torch.allclose(y, torch.nn.functional.layer_norm(x, (5,)), atol=1e-5)
    y.sum().backward()
    assert x.grad.dtype == torch.float32 and g.grad is None   # no gradient asked, none given


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_requested_gradients(backend):
    import symgrad.torch as sgt
    x, W, b = tensors_for("dense")
    W.requires_grad_(False)
    sgt.function("dense", backend=backend)(x, W, b).sum().backward()
    assert W.grad is None and x.grad is not None and b.grad is not None
    assert torch.allclose(b.grad, torch.full_like(b, x.shape[0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_clear_errors(backend):
    import symgrad.torch as sgt
    f = sgt.function("dense", backend=backend)
    x, W, b = (t.detach() for t in tensors_for("dense"))
    with pytest.raises(TypeError, match="x: expected a CPU tensor, got a tensor on meta"):
        f(x.to("meta"), W, b)
    with pytest.raises(TypeError, match="x: expected a float32 or float64 tensor, got torch.float16"):
        f(x.half(), W, b)
    with pytest.raises(TypeError, match="W: expected dtype float64, got float32"):
        f(x, W.float(), b)
    with pytest.raises(ValueError, match="b"):
        f(x, W, b[:-1])
    with pytest.raises(TypeError, match="missing argument"):
        f(x, W)
    with pytest.raises(ValueError, match="expected a layer"):
        sgt.function("adam")
    y = f(x.requires_grad_(True), W, b)
    with torch.no_grad():
        x.add_(1.0)            # changed in place after forward: torch's own version check fires
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("backend", BACKENDS)
def test_module_matches_linear_and_layernorm(backend):
    import symgrad.torch as sgt
    torch.manual_seed(0)
    lin, ln = torch.nn.Linear(5, 4), torch.nn.LayerNorm(4)
    dense = sgt.Module("dense", backend=backend, W=lin.weight.detach().T.clone(), b=lin.bias.detach().clone())
    norm = sgt.Module("layernorm", D=4, backend=backend, init={"gamma": 1.0, "beta": torch.nn.init.zeros_})
    assert [n for n, _ in dense.named_parameters()] == ["W", "b"] and dense.data_names == ["x"]
    assert norm.data_names == ["x"] and torch.equal(norm.gamma, torch.ones(4))
    x = torch.randn(3, 5)
    norm(dense(x)).square().sum().backward()
    ln(lin(x)).square().sum().backward()
    assert torch.allclose(dense.W.grad, lin.weight.grad.T, rtol=1e-10)
    assert torch.allclose(norm.gamma.grad, ln.weight.grad, rtol=1e-10)
    fresh = sgt.Module("dense", D=100, M=3)
    assert fresh.W.shape == (100, 3) and float(fresh.W.detach().abs().max()) <= 0.1
    lstm = sgt.Module("lstm", D=3, H=2, backend=backend)
    assert lstm.data_names == ["x", "h0", "c0"] and lstm.W_ih.shape == (8, 3) and lstm.b_hh.shape == (8,)
    hs, hT, cT = lstm(torch.randn(4, 5, 3), torch.zeros(5, 2), torch.zeros(5, 2))
    assert hs.shape == (4, 5, 2) and torch.equal(hs[-1], hT)
    with pytest.raises(TypeError, match="init: unknown parameter"):
        sgt.Module("dense", D=2, M=2, init={"V": 1.0})


def train(make, steps=100, groups=False, seed=1):
    torch.manual_seed(seed)
    ps = [torch.randn(5, 3, requires_grad=True), torch.randn(7, requires_grad=True)]
    opt = make([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.003}] if groups else ps)
    for s in range(steps):
        opt.zero_grad()
        loss = sum(((p - 0.3) ** 2 * (1 + s % 3)).sum() + p.sin().sum() for p in ps)
        loss.backward()
        opt.step()
    return ps, opt


def max_rel(a, b):
    return max(float(((x - y).abs().max() / y.abs().max()).detach()) for x, y in zip(a, b))


OPTIMIZERS = [
    ("adam", dict(lr=0.01, beta1=0.8, weight_decay=0.1), torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.999), weight_decay=0.1)),
    ("adam", dict(lr=0.01, amsgrad=True), torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    ("sgd", dict(lr=0.01, momentum=0.9, nesterov=True), torch.optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.01, momentum=0.5, dampening=0.1), torch.optim.SGD, dict(lr=0.01, momentum=0.5, dampening=0.1)),
    ("rmsprop", dict(lr=0.01, centered=True, momentum=0.5), torch.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
    ("adamw", dict(lr=0.01), torch.optim.AdamW, dict(lr=0.01)),
    ("adagrad", dict(lr=0.1, initial_accumulator_value=0.2), torch.optim.Adagrad, dict(lr=0.1, initial_accumulator_value=0.2)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, ours, ref, theirs", OPTIMIZERS, ids=[f"{o[0]}{i}" for i, o in enumerate(OPTIMIZERS)])
def test_optimizer_matches_torch_optim(name, ours, ref, theirs, backend):
    import symgrad.torch as sgt
    a, opt = train(lambda ps: sgt.Optimizer(name, ps, backend=backend, **ours), groups=True)
    b, _ = train(lambda ps: ref(ps, **theirs), groups=True)
    assert isinstance(opt, torch.optim.Optimizer)
    assert max_rel(a, b) <= 1e-12
    assert opt.param_groups[1]["lr"] == 0.003 and opt.param_groups[0]["lr"] == ours["lr"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_optimizer_state_dict_round_trip(backend):
    import symgrad.torch as sgt
    ref, _ = train(lambda ps: torch.optim.Adam(ps, lr=0.02), steps=60)
    half, opt = train(lambda ps: sgt.Optimizer("adam", ps, backend=backend, lr=0.02), steps=30)
    saved = opt.state_dict()
    assert saved["state"][0]["step"] == 30 and set(saved["state"][0]) == {"step", "exp_avg", "exp_avg_sq",
                                                                          "max_exp_avg_sq"}
    torch.manual_seed(1)

    def resume(ps):
        with torch.no_grad():
            for p, h in zip(ps, half):
                p.copy_(h)
        new = sgt.Optimizer("adam", ps, backend=backend, lr=0.5)
        new.load_state_dict(saved)                   # lr comes back too
        return new

    # 30 more steps after loading: same as 60 uninterrupted (the loss depends on s % 3: 30 = 0 mod 3)
    full, new = train(resume, steps=30)
    assert new.param_groups[0]["lr"] == 0.02 and new.state_dict()["state"][0]["step"] == 60
    assert max_rel(full, ref) <= 1e-12


def test_optimizer_errors():
    import symgrad.torch as sgt
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(TypeError, match="unexpected hyperparameter.*betas"):
        sgt.Optimizer("adam", [p], betas=(0.9, 0.99))
    with pytest.raises(TypeError, match="required hyperparameter.*lr"):
        sgt.Optimizer("tf_momentum", [p], momentum=0.9)
    with pytest.raises(ValueError, match="expected an optimizer"):
        sgt.Optimizer("dense", [p])
    opt = sgt.Optimizer("adam", [p], lr=-1.0)
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    q = torch.zeros(3, dtype=torch.float16, requires_grad=True)
    q.grad = torch.ones(3, dtype=torch.float16)
    with pytest.raises(TypeError, match="float32 or float64 parameters, got torch.float16"):
        sgt.Optimizer("sgd", [q], lr=0.1).step()


def test_import_without_using_torch_does_not_import_it():
    import subprocess
    import sys
    code = "import sys, symgrad, symgrad.torch, symgrad.jax; assert 'torch' not in sys.modules; " \
           "assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
def test_second_derivative_is_refused_not_wrong(backend):
    """backward(create_graph=True) through a kernel would differentiate nothing (its backward is
    plain NumPy/C): it raises instead of returning a second derivative of zero."""
    require_target("tanh", backend)
    import symgrad.torch as sgt
    f = sgt.function("tanh", backend=backend)
    x = torch.randn(3, requires_grad=True)
    (g,) = torch.autograd.grad(f(x).sum(), x)            # first derivative: fine
    assert torch.allclose(g, 1 - torch.tanh(x) ** 2)
    with pytest.raises(RuntimeError, match="not differentiable"):
        torch.autograd.grad(f(x).sum(), x, create_graph=True)
