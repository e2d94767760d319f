"""symgrad kernels inside JAX: ``symgrad.jax.function(name, backend="numpy")``.

    import symgrad.jax as sgj
    layernorm = sgj.function("layernorm")
    loss = lambda x, g, b: layernorm(x, g, b, eps=1e-5).sum()
    jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(x, g, b)

A ``jax.custom_vjp`` function whose forward and backward run the generated kernel on the host
through ``jax.pure_callback``, so it works under ``jax.jit``, ``jax.grad`` and ``jax.vmap`` (one
kernel call per batch element) on CPU. The kernel's cache is a host-side Python object that JAX
cannot carry between the two callbacks, so the backward callback runs forward again and then
backward (rematerialization, as ``jax.checkpoint`` does): a gradient costs two forward passes.
Output shapes are found by running forward once on zeros per new combination of input shapes.
A layer with buffers (BatchNorm's running statistics) is functional here, as JAX state is: the
function returns the outputs followed by the buffers' new values (``y, new_mean, new_var``) and
leaves its arguments unchanged.
Importing this module does not import jax; ``function`` does.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .errors import DTypeError, SpecError
from .registry import REGISTRY
from .runtime import bind_arguments, load

__all__ = ["function"]


class JaxKernel:
    """``f(*arrays, **hyper)``: the kernel ``name`` as a differentiable JAX function."""

    def __init__(self, name: str, backend: str = "numpy"):
        self.spec = REGISTRY.get(name)
        if REGISTRY.interface(self.spec) != "layer":
            raise SpecError(f"name: expected a layer, activation, loss or recurrent layer, got {name!r} "
                            f"({REGISTRY.interface(self.spec)})")
        self.name, self.backend = name, backend
        self.input_names = [i.name for i in self.spec.inputs]
        self.reals = [i.name for i in self.spec.inputs if i.kind == "real"]
        self.diff = [i.differentiable for i in self.spec.inputs]
        self.hyper_names = [h.name for h in self.spec.hypers] + [z.name for z in getattr(self.spec, "sizes", [])]
        self.buffers = [i.name for i in self.spec.inputs if getattr(i, "buffer", False)]
        self.n_outputs = len(self.spec.outputs)

    def __repr__(self):
        return f"symgrad.jax.function({self.name!r}, backend={self.backend!r})"

    # -- host side --------------------------------------------------------------------------
    def dtype_of(self, arrays) -> str:
        for n, a in zip(self.input_names, arrays):
            if n in self.reals:
                dt = np.dtype(a.dtype)
                if dt not in (np.float32, np.float64):
                    raise DTypeError(f"{n}: expected a float32 or float64 array, got {dt}")
                return str(dt)
        return "float64"

    def host_forward(self, hyper: dict, *arrays):
        """(outputs as a tuple of arrays, cache) of the kernel on host arrays."""
        arrays = [np.array(a) if n in self.buffers else np.asarray(a) for n, a in zip(self.input_names, arrays)]
        kernel = load(self.name, self.backend, self.dtype_of(arrays))
        *outs, cache = kernel.forward(*arrays, **hyper)
        if len(outs) == 1 and isinstance(outs[0], tuple):
            outs = list(outs[0])
        outs += [a for n, a in zip(self.input_names, arrays) if n in self.buffers]   # their new values
        return tuple(np.asarray(o, dtype=kernel.dtype) for o in outs), cache, kernel

    def host_backward(self, hyper: dict, n_in: int, *arrays_and_grads):
        arrays, grads = arrays_and_grads[:n_in], arrays_and_grads[n_in:]
        _, cache, kernel = self.host_forward(hyper, *arrays)
        if self.buffers:   # the buffers' new values come last and take no gradient
            grads = grads[:self.n_outputs]
        res = kernel.backward(cache, *[np.asarray(g) for g in grads])
        return tuple(np.asarray(g, dtype=kernel.dtype) for g in res)

    @lru_cache(maxsize=None)
    def out_shapes(self, hyper_items, shapes) -> tuple:
        """Shapes and dtypes of the outputs for inputs of ``shapes`` ((shape, dtype) per input)."""
        zeros = [np.zeros(s, dtype=d) for s, d in shapes]
        with np.errstate(all="ignore"):      # only the shapes matter (log(0) would warn)
            outs, _, _ = self.host_forward(dict(hyper_items), *zeros)
        return tuple((o.shape, o.dtype) for o in outs)

    # -- JAX side ---------------------------------------------------------------------------
    @lru_cache(maxsize=None)
    def vjp_function(self, hyper_items: tuple):
        import jax

        hyper = dict(hyper_items)

        def result_types(args):
            shapes = tuple((tuple(a.shape), np.dtype(a.dtype)) for a in args)
            return tuple(jax.ShapeDtypeStruct(s, d) for s, d in self.out_shapes(hyper_items, shapes))

        def run(*args):
            return jax.pure_callback(lambda *a: self.host_forward(hyper, *a)[0], result_types(args), *args,
                                     vmap_method="sequential")

        @jax.custom_vjp
        def f(*args):
            return run(*args)

        def f_fwd(*args):
            return run(*args), args

        def f_bwd(args, grads):
            types = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a, d in zip(args, self.diff) if d)
            res = iter(jax.pure_callback(lambda *a: self.host_backward(hyper, len(args), *a), types,
                                         *args, *grads, vmap_method="sequential"))
            return tuple(next(res) if d else None for d in self.diff)

        f.defvjp(f_fwd, f_bwd)
        return f

    def __call__(self, *args, **kwargs):
        import jax.numpy as jnp

        values, hyper = bind_arguments(self.name, self.input_names, self.hyper_names, args, kwargs)
        arrays = [jnp.asarray(v) for v in values]
        outs = self.vjp_function(tuple(sorted(hyper.items())))(*arrays)
        return outs if len(outs) > 1 else outs[0]


def function(name: str, backend: str = "numpy") -> JaxKernel:
    """The kernel ``name`` (a layer, activation, loss or recurrent layer) as a JAX function with a
    custom VJP; ``backend`` "numpy" (default) or "c". Hyperparameters are keyword arguments."""
    return JaxKernel(name, backend)
