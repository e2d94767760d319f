"""The C backend of ``symgrad.load`` for layers, activations and losses.

``forward(...) -> (out..., cache)`` and ``backward(cache, *grads) -> tuple`` as in ``docs/contract.md``.
Before every call the wrapper validates each array with the NumPy module's own checks (same errors,
same messages), converts read-only inputs to C-contiguous arrays of the kernel's dtype (exact), checks
class ids against their range and every cached array's dtype, shape and contiguity, and allocates the
outputs, cache and scratch buffers at the sizes ``symgrad.targets.c.plan`` gives the C code; so bad
input raises before C runs, and the C code never writes out of bounds.
"""
from __future__ import annotations

import inspect

import numpy as np
import sympy as sp

from ...ir.rewrite import c_kernel
from ...spec.tensor import ANY
from ..numpy.layer import NumpyLayerEmitter
from ...ir.nodes import shape_text
from .plan import plan
from .runtime import REAL, CKernel


class CLayer(CKernel):
    def __init__(self, spec, lib):
        self.k = c_kernel(spec)
        super().__init__(spec, lib, self.k.dims)
        self.any_ref = NumpyLayerEmitter(self.k).any_ref
        self.fwd, self.bwd = plan(self.k)
        for cf in (self.fwd, self.bwd):
            self.bind(cf.name, cf.args)
        params = [inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in self.k.inputs]
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v) for n, v in self.k.hypers]
        params.append(inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=None))
        self.fsig = inspect.Signature(params)
        bparams = [inspect.Parameter("cache", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for g in self.k.grad_outputs:
            default = 1.0 if self.k.loss else inspect.Parameter.empty
            bparams.append(inspect.Parameter(g.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
        self.bsig = inspect.Signature(bparams)
        self.__doc__ = f"C kernel {self.k.name}: forward{self.fsig}, backward{self.bsig}"

    def _concrete(self, shape, dims, any_shape):
        """Integer shape of a symbolic one; an any-shape array has the shape of its reference input."""
        if tuple(shape) == (ANY,):
            return tuple(any_shape)
        return self.shape(shape, dims)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        h, k = self.h, self.k
        bound = self.fsig.bind(*args, **kwargs)
        bound.apply_defaults()
        v = bound.arguments
        reals = [a for a in k.inputs if a.kind == "real"]
        dtype = h._dtype(v["dtype"], *[v[a.name] for a in reals])
        arr = {}
        for a in k.inputs:
            arr[a.name] = h._real(a.name, v[a.name], dtype) if a.kind == "real" else h._ids(a.name, v[a.name])
        hypers = {n: h._hyper(n, v[n]) for n, _ in k.hypers}
        dims, any_ref = {}, self.any_ref
        for a in k.inputs:
            if tuple(a.shape) != (ANY,):
                h._check_ndim(a.name, arr[a.name], len(a.shape), shape_text(a.shape))
                for ax, d in enumerate(a.shape):
                    if isinstance(d, sp.Symbol) and str(d) not in dims:
                        dims[str(d)] = arr[a.name].shape[ax]
        any_shape = arr[any_ref].shape if any_ref else ()
        if any_ref:
            dims[str(ANY)] = int(arr[any_ref].size)
        for a in k.inputs:
            if tuple(a.shape) == (ANY,):
                h._check_shape(a.name, arr[a.name], any_shape, f"the shape of {any_ref}")
            else:
                h._check_shape(a.name, arr[a.name], self._concrete(a.shape, dims, any_shape), shape_text(a.shape))
            if a.kind == "index":
                h._check_ids(a.name, arr[a.name], self.size(a.bound, dims))
                arr[a.name] = np.ascontiguousarray(arr[a.name], dtype=np.int64)
            else:
                arr[a.name] = np.ascontiguousarray(arr[a.name])
        self.alloc(self.fwd, ("out", "cache"), dims, dtype, arr, lambda s: self._concrete(s, dims, any_shape))
        ct = REAL[dtype][0]
        self.call(self.fwd, dtype, arr, {n: ct(x) for n, x in hypers.items()}, dims)
        cache = {"kernel": k.name, "backend": "c", "dtype": dtype, **dims, "shape": any_shape, **hypers}
        for n in k.backward.saved:
            cache[n] = arr[n]
        outs = [arr[o.name][()] if tuple(o.shape) == () else arr[o.name] for o in k.outputs]
        return (*outs, cache)

    # -- backward --------------------------------------------------------------------------
    def backward(self, *args, **kwargs):
        h, k = self.h, self.k
        bound = self.bsig.bind(*args, **kwargs)
        bound.apply_defaults()
        v = bound.arguments
        cache, dtype, dims = self.cache_header(v["cache"])
        any_shape = tuple(cache.get("shape", ()))
        if self.any_ref and int(np.prod(any_shape)) != dims[str(ANY)]:
            raise TypeError(f"cache: 'shape' {any_shape} does not match {ANY} = {dims[str(ANY)]}")
        arr, values = {}, {}
        kinds = {a.name: a.kind for a in k.inputs}
        for n in k.backward.saved:
            shape = self._concrete(k.backward.shapes[n], dims, any_shape)
            if kinds.get(n) == "index":
                arr[n] = np.ascontiguousarray(self._ids_from_cache(cache, n, shape), dtype=np.int64)
            else:
                arr[n] = self.cached(cache, n, shape, dtype)
        ct = REAL[dtype][0]
        for g in k.grad_outputs:
            if tuple(g.shape) == ():
                values[g.name] = ct(h._scalar(g.name, v[g.name], dtype))
            else:
                a = h._real(g.name, v[g.name], dtype)
                shape = self._concrete(g.shape, dims, any_shape)
                h._check_shape(g.name, a, shape, shape_text(g.shape))
                arr[g.name] = np.ascontiguousarray(a)
        for n, _ in k.hypers:
            values[n] = ct(h._hyper(n, cache.get(n)))
        self.alloc(self.bwd, ("out",), dims, dtype, arr, lambda s: self._concrete(s, dims, any_shape))
        self.call(self.bwd, dtype, arr, values, dims)
        return tuple(arr[r] for r in k.backward.returns)

    def _ids_from_cache(self, cache, n, shape):
        a = cache.get(n)
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.shape != shape:
            raise TypeError(f"cache: entry {n!r} should be integer class ids of shape {shape}, got {a!r}")
        return a
