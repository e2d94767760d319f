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
