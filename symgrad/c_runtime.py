"""The C backend of ``symgrad.load``: compiled generated C behind the NumPy backend's signatures.

``forward(...) -> (out..., cache)`` and ``backward(cache, *grads) -> tuple`` as in ``CONTRACT.md``.
Before every call the wrapper validates each array with the NumPy module's own checks (same errors,
same messages), converts read-only inputs to C-contiguous arrays of the kernel's dtype (exact), checks
class ids against their range and every cached array's dtype, shape and contiguity, and allocates
the outputs, cache and scratch buffers at the sizes ``symgrad.emit.c_plan`` gives the C code; so bad
input raises before C runs, and the C code never writes out of bounds.
"""
from __future__ import annotations

import ctypes
import inspect
from functools import lru_cache

import numpy as np
import sympy as sp

from .c_build import build, load_library
from .emit import c_sources
from .emit.c_plan import plan
from .emit.c_rewrite import c_kernel
from .emit.numpy_layer import NumpyLayerEmitter
from .errors import SpecError
from .spec.tensor import ANY

_CT = {np.dtype(np.float32): (ctypes.c_float, "f32"), np.dtype(np.float64): (ctypes.c_double, "f64")}


_MADV_POPULATE_WRITE = 23  # Linux >= 5.14


@lru_cache(maxsize=None)
def _madvise():
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return fn


def empty(shape, dtype) -> np.ndarray:
    """A new array; from 8 MiB on, its pages are mapped before the kernel runs (one madvise on
    Linux, best effort). Large fresh memory first touched by several OpenMP threads at once was
    measured to stall in bursts (LayerNorm 8192 x 1024 forward 3.6 ms, then 17 ms for seconds at a
    time); faulted in here, the kernel runs steadily."""
    a = np.empty(shape, dtype=dtype)
    fn = _madvise() if a.nbytes >= 8 << 20 else None
    if fn is not None:
        start = a.ctypes.data & ~4095
        fn(start, a.ctypes.data + a.nbytes - start, _MADV_POPULATE_WRITE)  # best effort: errors ignored
    return a


@lru_cache(maxsize=None)
def c_module(spec) -> "CModule":
    if spec.kind in ("optimizer", "schedule"):
        from .c_optim_runtime import c_optim_module
        return c_optim_module(spec)
    if spec.kind not in ("layer", "activation", "loss", "recurrent"):
        raise SpecError(f"{spec.name}: the C backend covers layers, activations, losses and recurrent "
                        f"layers, not {spec.kind!r}")
    files = {k.split("/", 1)[1]: v for k, v in c_sources(spec).items()}
    lib = load_library(build(spec.name, files))
    if spec.kind == "recurrent":
        from .c_recurrent_runtime import CRecurrentModule
        return CRecurrentModule(spec, lib)
    return CModule(spec, lib)


def cache_header(h, cache, name: str, dims: list[str]):
    """(cache, dtype, dims) of a cache handed to backward, validated with the NumPy module's
    ``_cache`` helper: a forged or edited cache raises instead of reaching C with wrong sizes."""
    cache = h._cache(cache, name)
    dtype = cache.get("dtype")
    if dtype not in _CT:
        raise TypeError(f"cache: 'dtype' should be float32 or float64, got {dtype!r}")
    out = {}
    for d in dims:
        val = cache.get(d)
        if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, np.integer)) or val < 0:
            raise TypeError(f"cache: dimension {d} should be a non-negative int, got {val!r}")
        out[d] = int(val)
    return cache, dtype, out


class CModule:
    def __init__(self, spec, lib):
        from .runtime import _numpy_module
        self.spec, self.lib, self.k = spec, lib, c_kernel(spec)
        self.h = _numpy_module(spec)   # its _real/_ids/_check_* helpers: one validation, two backends
        self.np_emit = NumpyLayerEmitter(self.k)
        self.fwd, self.bwd = plan(self.k)
        self.funcs, self._exprs = {}, {}
        for cf in (self.fwd, self.bwd):
            for dt, (ct, sfx) in _CT.items():
                fn = getattr(lib, f"{self.k.name}_{cf.name}_{sfx}")
                fn.restype = None
                fn.argtypes = [ctypes.c_void_p if a.role in ("out", "cache", "in", "index", "scratch")
                               else ctypes.c_int64 if a.role == "dim" else ct for a in cf.args]
                self.funcs[cf.name, dt] = fn
        params = [inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in self.k.inputs]
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v) for n, v in self.k.hypers]
        params.append(inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=None))
        self.fsig = inspect.Signature(params)
        bparams = [inspect.Parameter("cache", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for g in self.k.grad_outputs:
            default = 1.0 if self.k.kind == "loss" else inspect.Parameter.empty
            bparams.append(inspect.Parameter(g.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
        self.bsig = inspect.Signature(bparams)
        self.__doc__ = f"C kernel {self.k.name}: forward{self.fsig}, backward{self.bsig}"

    # -- shapes ----------------------------------------------------------------------------
    def _concrete(self, shape, dims, any_shape):
        """Integer shape of a symbolic one; ``dims`` maps dim names to sizes."""
        if tuple(shape) == (ANY,):
            return tuple(any_shape)
        return tuple(self._int(d, dims) for d in shape)

    def _int(self, e, dims) -> int:
        fn = self._exprs.get(e)
        if fn is None:
            fn = self._exprs[e] = sp.lambdify([sp.Symbol(str(d)) for d in self.k.dims],
                                              sp.sympify(e).xreplace({d: sp.Symbol(str(d)) for d in self.k.dims}))
        return int(fn(*[dims[str(d)] for d in self.k.dims]))

    def _call(self, cf, dtype, arrays, values, dims):
        fn = self.funcs[cf.name, dtype]
        args = []
        for a in cf.args:
            if a.role in ("out", "cache", "in", "index", "scratch"):
                args.append(arrays[a.name].ctypes.data)
            elif a.role == "dim":
                args.append(int(dims[a.name]))
            else:
                args.append(values[a.name])
        fn(*args)

    def _alloc(self, cf, roles, dims, any_shape, dtype, arrays):
        for a in cf.args:
            if a.role in roles:
                arrays[a.name] = empty(self._concrete(a.shape, dims, any_shape), dtype)
        if cf.scratch:
            n = self._int(cf.scratch_size(), dims)
            arrays["scratch"] = empty((max(n, 1),), dtype)

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
        dims, any_ref = {}, self.np_emit.any_ref
        for a in k.inputs:
            if tuple(a.shape) != (ANY,):
                h._check_ndim(a.name, arr[a.name], len(a.shape), self.np_emit.shape_text(a.shape))
                for ax, d in enumerate(a.shape):
                    if isinstance(d, sp.Symbol) and str(d) not in dims:
                        dims[str(d)] = arr[a.name].shape[ax]
        any_shape = arr[any_ref].shape if any_ref else ()
        if any_ref:
            dims[str(ANY)] = int(arr[any_ref].size)
        sym = dims
        for a in k.inputs:
            if tuple(a.shape) == (ANY,):
                h._check_shape(a.name, arr[a.name], any_shape, f"the shape of {any_ref}")
            else:
                h._check_shape(a.name, arr[a.name], self._concrete(a.shape, sym, any_shape),
                               self.np_emit.shape_text(a.shape))
            if a.kind == "index":
                h._check_ids(a.name, arr[a.name], self._int(a.bound, dims))
                arr[a.name] = np.ascontiguousarray(arr[a.name], dtype=np.int64)
            else:
                arr[a.name] = np.ascontiguousarray(arr[a.name])
        self._alloc(self.fwd, ("out", "cache"), sym, any_shape, dtype, arr)
        ct = _CT[dtype][0]
        self._call(self.fwd, dtype, arr, {n: ct(x) for n, x in hypers.items()}, dims)
        cache = {"kernel": k.name, "backend": "c", "dtype": dtype, **dims, "shape": any_shape, **hypers}
        for n in k.backward.saved:
            cache[n] = arr[n]
        outs = [arr[o.name][()] if tuple(o.shape) == () else arr[o.name] for o in k.outputs]
        return (*outs, cache)

    # -- backward --------------------------------------------------------------------------
    def _cached(self, cache, name, shape, dtype):
        a = cache.get(name)
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
            got = (f"{type(a).__name__}" if not isinstance(a, np.ndarray) else
                   f"dtype {a.dtype}, shape {a.shape}, contiguous={a.flags.c_contiguous}")
            raise TypeError(f"cache: entry {name!r} should be a C-contiguous {dtype} array of shape {shape}, "
                            f"got {got}; pass the cache returned by {self.k.name}.forward unchanged")
        return a

    def backward(self, *args, **kwargs):
        h, k = self.h, self.k
        bound = self.bsig.bind(*args, **kwargs)
        bound.apply_defaults()
        v = bound.arguments
        cache, dtype, dims = cache_header(h, v["cache"], k.name, [str(d) for d in k.dims])
        any_shape = tuple(cache.get("shape", ()))
        sym = dims
        if self.np_emit.any_ref and int(np.prod(any_shape)) != dims[str(ANY)]:
            raise TypeError(f"cache: 'shape' {any_shape} does not match {ANY} = {dims[str(ANY)]}")
        arr, values = {}, {}
        kinds = {a.name: a.kind for a in k.inputs}
        for n in k.backward.saved:
            want = np.dtype(np.int64) if kinds.get(n) == "index" else dtype
            shape = self._concrete(k.backward.shapes[n], sym, any_shape)
            if kinds.get(n) == "index":
                arr[n] = np.ascontiguousarray(self._ids_from_cache(cache, n, shape), dtype=np.int64)
            else:
                arr[n] = self._cached(cache, n, shape, want)
        ct = _CT[dtype][0]
        for g in k.grad_outputs:
            if tuple(g.shape) == ():
                values[g.name] = ct(h._scalar(g.name, v[g.name], dtype))
            else:
                a = h._real(g.name, v[g.name], dtype)
                shape = self._concrete(g.shape, sym, any_shape)
                h._check_shape(g.name, a, shape, self.np_emit.shape_text(g.shape))
                arr[g.name] = np.ascontiguousarray(a)
        for n, _ in k.hypers:
            values[n] = ct(h._hyper(n, cache.get(n)))
        self._alloc(self.bwd, ("out",), sym, any_shape, dtype, arr)
        self._call(self.bwd, dtype, arr, values, dims)
        return tuple(arr[r] for r in k.backward.returns)

    def _ids_from_cache(self, cache, n, shape):
        a = cache.get(n)
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.shape != shape:
            raise TypeError(f"cache: entry {n!r} should be integer class ids of shape {shape}, got {a!r}")
        return a
