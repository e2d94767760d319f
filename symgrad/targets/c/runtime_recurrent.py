"""The C backend of ``symgrad.load`` for recurrent layers (``symgrad.recurrent``, e.g. the LSTM).

Same signatures, checks and error messages as the NumPy backend (the argument checks are the NumPy
module's own lines, compiled here): ``forward(*inputs) -> ((hs, hT, cT), cache)`` and
``backward(cache, dhs, dhT=None, dcT=None) -> grads``. Buffers are allocated at the sizes of
``symgrad.targets.c.recurrent`` (the code that emits the C), so the C code never writes out of bounds.
"""
from __future__ import annotations

import inspect

import numpy as np

from ...ir import nodes as ir
from ...ir.nodes import shape_text
from ..numpy.layer import NumpyLayerEmitter
from .recurrent import CRecurrent
from .runtime import REAL, CKernel


class CRecurrentLayer(CKernel):
    def __init__(self, spec, lib):
        self.r = CRecurrent(spec)
        super().__init__(spec, lib, self.r.dims)
        k = self.r.k
        for cf in (self.r.fwd, self.r.bwd):
            self.bind(cf.name, cf.args)
        user = [ir.Arg(i.name, i.shape, i.kind, i.bound, i.differentiable) for i in spec.inputs]
        binds, checks, _ = NumpyLayerEmitter(k).validation(user)
        names = [a.name for a in user]
        src = (f"def _validate({', '.join(names)}):\n" + "".join(f"    {l}\n" for l in binds + checks)
               + f"    return {{{', '.join(repr(d) + ': ' + d for d in self.dims)}}}\n")
        ns = dict(vars(self.h))
        exec(compile(src, f"<symgrad c/{spec.name} checks>", "exec"), ns)  # noqa: S102 - our own lines
        self._validate = ns["_validate"]
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
        self.alloc(self.r.fwd, ("out", "cache"), dims, dtype, arr)
        ct = REAL[dtype][0]
        self.call(self.r.fwd, dtype, arr, {n: ct(x) for n, x in hypers.items()}, dims)
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
        cache, dtype, dims = self.cache_header(v["cache"])
        arr, ups = {}, {f"d{o}s" for o in spec.outputs} | {f"d{s}T" for s in spec.state}
        for a in self.r.bwd.args:
            if a.role != "in":
                continue
            shape = self.shape(a.shape, dims)
            if a.name in ups:
                given = v[a.name]
                if given is None:
                    arr[a.name] = np.zeros(shape, dtype=dtype)
                    continue
                g = h._real(a.name, given, dtype)
                h._check_shape(a.name, g, shape, shape_text(a.shape))
                arr[a.name] = np.ascontiguousarray(g)
            else:
                arr[a.name] = self.cached(cache, a.name, shape, dtype)
        ct = REAL[dtype][0]
        values = {n: ct(h._hyper(n, cache.get(n))) for n, _ in k.hypers}
        self.alloc(self.r.bwd, ("out",), dims, dtype, arr)
        self.call(self.r.bwd, dtype, arr, values, dims)
        return tuple(arr[a.name] for a in self.r.bwd.args if a.role == "out")
