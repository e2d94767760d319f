"""The C backend of ``symgrad.load`` for recurrent layers (``symgrad.recurrent``, e.g. the LSTM).

Same signatures, checks and error messages as the NumPy backend (the argument checks are the NumPy
module's own lines, compiled here): ``forward(*inputs) -> ((hs, hT, cT), cache)`` and
``backward(cache, dhs, dhT=None, dcT=None) -> grads``. Buffers are allocated at the sizes of
``symgrad.emit.c_recurrent`` (the code that emits the C), so the C code never writes out of bounds.
"""
from __future__ import annotations

import ctypes
import inspect

import numpy as np
import sympy as sp

from . import ir
from .c_runtime import cache_header
from .emit.c_recurrent import CRecurrent
from .emit.numpy_layer import NumpyLayerEmitter

_CT = {np.dtype(np.float32): (ctypes.c_float, "f32"), np.dtype(np.float64): (ctypes.c_double, "f64")}


class CRecurrentModule:
    def __init__(self, spec, lib):
        from .runtime import _numpy_module
        self.spec, self.lib = spec, lib
        self.h = _numpy_module(spec)
        self.r = CRecurrent(spec)
        k = self.r.k
        self.dims = [str(d) for d in self.r.dims]
        self.funcs, self._exprs = {}, {}
        for cf in (self.r.fwd, self.r.bwd):
            for dt, (ct, sfx) in _CT.items():
                fn = getattr(lib, f"{spec.name}_{cf.name}_{sfx}")
                fn.restype = None
                fn.argtypes = [ctypes.c_void_p if a.role in ("out", "cache", "in", "scratch")
                               else ctypes.c_int64 if a.role == "dim" else ct for a in cf.args]
                self.funcs[cf.name, dt] = fn
        user = [ir.Arg(i.name, i.shape, i.kind, i.bound, i.differentiable) for i in spec.inputs]
        e = NumpyLayerEmitter(k)
        binds, checks, _ = e.validation(user)
        names = [a.name for a in user]
        src = (f"def _validate({', '.join(names)}):\n" + "".join(f"    {l}\n" for l in binds + checks)
               + f"    return {{{', '.join(repr(d) + ': ' + d for d in self.dims)}}}\n")
        ns = dict(vars(self.h))
        exec(compile(src, f"<symgrad c/{spec.name} checks>", "exec"), ns)  # noqa: S102 - our own lines
        self._validate = ns["_validate"]
        self.e = e
        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v) for n, v in k.hypers]
        params.append(inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, default=None))
        self.fsig = inspect.Signature(params)
        bparams = [inspect.Parameter("cache", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        bparams += [inspect.Parameter(f"d{o}s", inspect.Parameter.POSITIONAL_OR_KEYWORD) for o in spec.outputs]
        bparams += [inspect.Parameter(f"d{s}T", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
                    for s in spec.state]
        self.bsig = inspect.Signature(bparams)
        self.__doc__ = f"C kernel {spec.name}: forward{self.fsig}, backward{self.bsig}"

    def _int(self, e, dims) -> int:
        fn = self._exprs.get(e)
        if fn is None:
            syms = [sp.Symbol(d) for d in self.dims]
            fn = self._exprs[e] = sp.lambdify(syms, sp.sympify(e).xreplace(
                {d: sp.Symbol(str(d)) for d in self.r.dims}))
        return int(fn(*[dims[d] for d in self.dims]))

    def _shape(self, shape, dims):
        return tuple(self._int(d, dims) for d in shape)

    def _call(self, cf, dtype, arrays, values, dims):
        args = []
        for a in cf.args:
            if a.role in ("out", "cache", "in", "scratch"):
                args.append(arrays[a.name].ctypes.data)
            elif a.role == "dim":
                args.append(int(dims[a.name]))
            else:
                args.append(values[a.name])
        self.funcs[cf.name, dtype](*args)

    def _alloc(self, cf, roles, dims, dtype, arrays):
        from .c_runtime import empty
        for a in cf.args:
            if a.role in roles:
                arrays[a.name] = empty(self._shape(a.shape, dims), dtype)
        if cf.scratch:
            arrays["scratch"] = empty((max(self._int(cf.scratch_size(), dims), 1),), dtype)

    def forward(self, *args, **kwargs):
        h, k, spec = self.h, self.r.k, self.spec
        v = self.fsig.bind(*args, **kwargs)
        v.apply_defaults()
        v = v.arguments
        dtype = h._dtype(v["dtype"], *[v[i.name] for i in spec.inputs])
        arr = {i.name: h._real(i.name, v[i.name], dtype) for i in spec.inputs}
        dims = self._validate(*[arr[i.name] for i in spec.inputs])
        arr = {n: np.ascontiguousarray(a) for n, a in arr.items()}
        hypers = {n: h._hyper(n, v[n]) for n, _ in k.hypers}
        self._alloc(self.r.fwd, ("out", "cache"), dims, dtype, arr)
        ct = _CT[dtype][0]
        self._call(self.r.fwd, dtype, arr, {n: ct(x) for n, x in hypers.items()}, dims)
        cache = {"kernel": spec.name, "backend": "c", "dtype": dtype, **dims, **hypers}
        for a in self.r.bwd.args:
            if a.role == "in" and a.name in arr:
                cache[a.name] = arr[a.name]
        outs = tuple(arr[n] for n in spec.output_names)
        return outs, cache

    def backward(self, *args, **kwargs):
        h, k, spec = self.h, self.r.k, self.spec
        v = self.bsig.bind(*args, **kwargs)
        v.apply_defaults()
        v = v.arguments
        cache, dtype, dims = cache_header(h, v["cache"], spec.name, list(self.dims))
        arr, ups = {}, {f"d{o}s" for o in spec.outputs} | {f"d{s}T" for s in spec.state}
        for a in self.r.bwd.args:
            if a.role != "in":
                continue
            shape = self._shape(a.shape, dims)
            if a.name in ups:
                text = self.e.shape_text(a.shape)
                given = v[a.name]
                if given is None:
                    arr[a.name] = np.zeros(shape, dtype=dtype)
                    continue
                g = h._real(a.name, given, dtype)
                h._check_shape(a.name, g, shape, text)
                arr[a.name] = np.ascontiguousarray(g)
            else:
                arr[a.name] = self._cached(cache, a.name, shape, dtype)
        ct = _CT[dtype][0]
        values = {n: ct(h._hyper(n, cache.get(n))) for n, _ in k.hypers}
        self._alloc(self.r.bwd, ("out",), dims, dtype, arr)
        self._call(self.r.bwd, dtype, arr, values, dims)
        return tuple(arr[a.name] for a in self.r.bwd.args if a.role == "out")

    def _cached(self, cache, name, shape, dtype):
        a = cache.get(name)
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
            got = (f"{type(a).__name__}" if not isinstance(a, np.ndarray) else
                   f"dtype {a.dtype}, shape {a.shape}, contiguous={a.flags.c_contiguous}")
            raise TypeError(f"cache: entry {name!r} should be a C-contiguous {dtype} array of shape {shape}, "
                            f"got {got}; pass the cache returned by {self.spec.name}.forward unchanged")
        return a
