"""Property-based tests (hypothesis) over random shapes and values for every layer kernel."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad
from symgrad.verify.layers import check_layer, outputs_of

from conftest import BACKENDS, layer_names, needs_torch, rel_err, require_target, torch

SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.fixed_dictionaries({d: st.integers(1, 4) for d in ("N", "D", "M", "C", "H")}
                              | {"T": st.integers(1, 3)})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", layer_names())
@SETTINGS
@given(sizes=sizes, seed=st.integers(0, 2**31 - 1))
def test_finite_differences_hold_for_random_shapes(name, backend, sizes, seed):
    require_target(name, backend)
    rows = check_layer(symgrad.REGISTRY.get(name), backend=backend, sizes=sizes, seed=seed)
    assert rows and all(r.passed for r in rows), [(r.argument, r.max_abs, r.max_rel) for r in rows]


extreme = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@needs_torch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "softmax", "bce_logits", "softmax_cross_entropy",
                                  "mse", "dense_sigmoid", "dense_tanh", "layernorm"])
@SETTINGS
@given(data=st.data())
def test_extreme_values_stay_finite_and_match_torch(name, backend, data):
    from torch_refs import REFS
    require_target(name, backend)
    spec = symgrad.REGISTRY.get(name)
    n = data.draw(st.integers(1, 4))
    c = data.draw(st.integers(1, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    args = {}
    for inp in spec.inputs:
        if inp.kind == "index":
            args[inp.name] = rng.integers(0, c, size=n)
        elif not inp.differentiable:
            args[inp.name] = rng.uniform(0, 1, (n, c))
        elif name.startswith("dense") and inp.name != "x":
            args[inp.name] = rng.standard_normal((c, c) if inp.name == "W" else (c,))
        elif name == "layernorm" and inp.name != "x":
            args[inp.name] = rng.standard_normal(c)
        else:
            args[inp.name] = np.array(data.draw(st.lists(extreme, min_size=n * c, max_size=n * c))).reshape(n, c)
    if name == "layernorm":  # a row with a large offset and a tiny spread
        args["x"][0] = 1e3 + 1e-3 * rng.standard_normal(c)
    k = symgrad.load(name, backend=backend)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        outs, cache = outputs_of(spec, k.forward(**args))
        ups = [1.0] if spec.kind == "loss" else [rng.standard_normal(np.shape(o)) for o in outs]
        grads = k.backward(cache, *ups)
    targs = {a.name: torch.tensor(args[a.name], requires_grad=a.differentiable) for a in spec.inputs}
    tout = REFS[name](*targs.values())
    tout.backward(torch.tensor(ups[0]))
    assert np.all(np.isfinite(outs[0])) and all(np.all(np.isfinite(g)) for g in grads)
    tol = 1e-8 if name == "layernorm" else 1e-10  # REFERENCE.md: torch itself is ~1e-10 off on such rows
    assert rel_err(outs[0], tout.detach().numpy(), floor=1.0) <= tol
    for a, g in zip(spec.diff_inputs, grads):
        assert rel_err(g, targs[a.name].grad.numpy(), floor=1.0) <= tol, a.name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_float32_convolutions_match_float64_for_random_geometry(data):
    """conv1d/conv2d in float32 on C (the kernel's window packers, strips across output rows, strides 1
    and 2 read from x, the input gradient's phase gathers; other strides through the window arrays)
    against the NumPy backend in float64, forward and every gradient, over random geometry."""
    require_target("conv2d", "c")
    name = data.draw(st.sampled_from(["conv1d", "conv2d"]))
    d = {k: data.draw(st.integers(lo, hi)) for k, lo, hi in
         (("N", 1, 3), ("C", 1, 17), ("O", 1, 9), ("K", 1, 5), ("s", 1, 3), ("dil", 1, 3), ("p", 0, 4))}
    axes = 1 if name == "conv1d" else 2
    ks = [data.draw(st.integers(1, d["K"])) for _ in range(axes)]
    reach = [d["dil"] * (k - 1) + 1 for k in ks]
    lengths = [data.draw(st.integers(max(1, r - 2 * d["p"]), r + 40)) for r in reach]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    arrays = [rng.standard_normal((d["N"], d["C"], *lengths)), rng.standard_normal((d["O"], d["C"], *ks)),
              rng.standard_normal(d["O"])]
    hyper = dict(stride=d["s"], padding=d["p"], dilation=d["dil"])
    ref = symgrad.load(name, backend="numpy", dtype="float64")
    y64, c64 = ref.forward(*arrays, **hyper)
    dy = rng.standard_normal(y64.shape)
    g64 = ref.backward(c64, dy)
    k = symgrad.load(name, backend="c", dtype="float32")
    y32, c32 = k.forward(*[a.astype(np.float32) for a in arrays], **hyper)
    g32 = k.backward(c32, dy.astype(np.float32))
    for got, want in zip((y32, *g32), (y64, *g64)):
        assert got.shape == want.shape
        assert rel_err(got, want, floor=1.0) <= 2e-5
