"""symgrad.jax: generated kernels as jax.custom_vjp functions (pure_callback), under jit and grad."""
import numpy as np
import pytest

import symgrad
from symgrad.verify.layers import random_inputs

from conftest import BACKENDS, layer_names, require_target

jax = pytest.importorskip("jax", reason="jax not installed (pip install -e '.[test]')")
jnp = pytest.importorskip("jax.numpy")
from jax.test_util import check_grads  # noqa: E402


@pytest.fixture(autouse=True)
def x64():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def arrays_for(name, seed=0):
    spec = symgrad.REGISTRY.get(name)
    args = random_inputs(spec, np.random.default_rng(seed))
    return [jnp.asarray(args[a.name]) for a in spec.inputs], spec


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", layer_names())
def test_check_grads_every_layer(name, backend):
    require_target(name, backend)
    import symgrad.jax as sgj
    f = sgj.function(name, backend=backend)
    args, spec = arrays_for(name)
    diff = [i for i, a in enumerate(spec.inputs) if a.differentiable]

    buffers = any(getattr(a, "buffer", False) for a in spec.inputs)

    def only_diff(*d):        # check_grads perturbs every argument: fix the targets and class ids
        full = list(args)
        for i, v in zip(diff, d):
            full[i] = v
        out = f(*full)        # a layer with buffers also returns their new values: not differentiable
        return out[0] if buffers else out

    check_grads(only_diff, [args[i] for i in diff], order=1, modes=["rev"])
    ours = symgrad.load(name, backend=backend)
    out = ours.forward(*[np.array(a) for a in args])[0]   # writeable: buffers are updated in place
    got = jax.jit(only_diff)(*[args[i] for i in diff])
    for g, w in zip(got if isinstance(got, tuple) else (got,), out if isinstance(out, tuple) else (out,)):
        assert np.allclose(g, w, rtol=1e-13, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jit_grad_matches_load(backend):
    import symgrad.jax as sgj
    ln = sgj.function("layernorm", backend=backend)
    (x, g, b), _ = arrays_for("layernorm", seed=2)
    dy = jnp.asarray(np.random.default_rng(3).standard_normal(x.shape))
    grads = jax.jit(jax.grad(lambda x, g, b: (ln(x, g, b, eps=1e-3) * dy).sum(), argnums=(0, 1, 2)))(x, g, b)
    k = symgrad.load("layernorm", backend=backend)
    _, cache = k.forward(np.asarray(x), np.asarray(g), np.asarray(b), eps=1e-3)
    for got, want in zip(grads, k.backward(cache, np.asarray(dy))):
        assert np.allclose(got, want, rtol=1e-12, atol=1e-14)


def test_float32_vmap_and_errors():
    import symgrad.jax as sgj
    tanh = sgj.function("tanh")
    x = jnp.linspace(-2, 2, 12, dtype=jnp.float32).reshape(3, 4)
    y = jax.vmap(tanh)(x)
    assert y.dtype == jnp.float32 and np.allclose(y, np.tanh(np.asarray(x)), atol=1e-6)
    assert np.allclose(jax.grad(lambda v: tanh(v).sum())(x), 1 - np.tanh(np.asarray(x)) ** 2, atol=1e-6)
    with pytest.raises(TypeError, match="unexpected argument 'eps'"):
        tanh(x, eps=1.0)
    with pytest.raises(ValueError, match="expected a layer"):
        sgj.function("adam")
    with pytest.raises(TypeError, match="x: expected a float32 or float64 array, got int"):
        sgj.function("dense")(jnp.ones((2, 3), dtype=jnp.int32), jnp.ones((3, 2)), jnp.ones(2))
