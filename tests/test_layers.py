"""One parametrized test over the registry: finite differences, torch, float32, stability."""
import numpy as np
import pytest

import symgrad
from symgrad.verify.layers import outputs_of, random_inputs

from conftest import require_target, BACKENDS, layer_names, needs_torch, rel_err, torch


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", layer_names())
def test_finite_differences(name, backend):
    require_target(name, backend)
    rep = symgrad.check([name], backend=backend)
    assert rep.rows, "the checker produced no rows"
    assert rep.passed, rep.table()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", layer_names())
def test_float32_against_float64(name, backend):
    require_target(name, backend)
    rep = symgrad.check([name], dtype="float32", backend=backend)
    assert rep.passed, rep.table()


def _run_both(name, args, seed=1, backend="numpy"):
    """Our kernel and torch autograd on the same inputs; returns (ours, theirs) outputs and grads."""
    from torch_refs import REFS
    spec = symgrad.REGISTRY.get(name)
    k = symgrad.load(name, backend=backend)
    outs, cache = outputs_of(spec, k.forward(**args))
    rng = np.random.default_rng(seed)
    ups = [1.7] if spec.kind == "loss" else [rng.standard_normal(np.shape(o)) for o in outs]
    grads = k.backward(cache, *ups)
    targs = {}
    for a in spec.inputs:
        v = torch.tensor(args[a.name])
        if a.differentiable:
            v.requires_grad_(True)
        targs[a.name] = v
    tout = REFS[name](*targs.values())
    tout = tout if isinstance(tout, tuple) else (tout,)
    torch.autograd.backward(list(tout), [torch.tensor(u) for u in ups])
    tgrads = [targs[a.name].grad.numpy() for a in spec.diff_inputs]
    return outs, grads, [t.detach().numpy() for t in tout], tgrads


def _builtin_with_ref():
    from conftest import torch as t
    if t is None:
        return layer_names()
    from torch_refs import REFS
    return [n for n in layer_names() if n in REFS]


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", _builtin_with_ref())
@pytest.mark.parametrize("sizes", [None, {"N": 1, "D": 1, "M": 1, "C": 1}, {"N": 7, "D": 5, "M": 3, "C": 6}])
def test_against_torch(name, sizes, backend):
    require_target(name, backend)
    spec = symgrad.REGISTRY.get(name)
    args = random_inputs(spec, np.random.default_rng(3), sizes)
    outs, grads, touts, tgrads = _run_both(name, args, backend=backend)
    for o, t in zip(outs, touts):
        assert rel_err(o, t) <= 1e-10
    for a, g, t in zip(spec.diff_inputs, grads, tgrads):
        assert rel_err(g, t, floor=1.0) <= 1e-10, f"d{a.name}"


EXTREME = np.array([-1e4, -800.0, -50.0, -1.0, 0.0, 1e-8, 1.0, 50.0, 800.0, 1e4])


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "softmax", "bce_logits",
                                  "softmax_cross_entropy", "mse"])
def test_stable_at_extremes(name, backend):
    require_target(name, backend)
    spec = symgrad.REGISTRY.get(name)
    rng = np.random.default_rng(0)
    z = np.stack([EXTREME, -EXTREME, rng.permutation(EXTREME)])
    args = {spec.inputs[0].name: z}
    if name in ("bce_logits", "mse"):
        args["target"] = rng.uniform(0, 1, z.shape)
    if name == "softmax_cross_entropy":
        args["target"] = np.array([0, 4, 9])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow or NaN anywhere
        outs, grads, touts, tgrads = _run_both(name, args, backend=backend)
    for o, t in zip(outs, touts):
        assert np.all(np.isfinite(o))
        assert rel_err(o, t) <= 1e-10
    for g, t in zip(grads, tgrads):
        assert np.all(np.isfinite(g))
        assert rel_err(g, t) <= 1e-10


def test_sigmoid_derivative_is_rewritten_in_terms_of_output():
    """SymPy's raw derivative exp(-z)/(1+exp(-z))^2 overflows; the engine saves sigma instead."""
    src = symgrad.load("sigmoid").module
    assert "exp" not in src.backward.__code__.co_names
    k = symgrad.load("sigmoid")
    a, cache = k.forward(np.array([-1e4, 0.0, 1e4]))
    assert set(cache) >= {"a"} and "z" not in cache
    (dz,) = k.backward(cache, np.ones(3))
    np.testing.assert_array_equal(dz, [0.0, 0.25, 0.0])
