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
import math

import numpy as np

from ...ir.rewrite import c_kernel
from ..numpy.layer import NumpyLayerEmitter
from .callpath import layer_source
from .memory import LARGE, scratch
from .plan import kept as kept_names, plan, plan_kept
from .runtime import CALL_NAMESPACE, REAL, CKernel, empty


class CLayer(CKernel):
    """``forward``/``backward`` of a compiled layer, activation or loss; their Python side is written
    and compiled once, at load time (``callpath.layer_source``)."""

    def __init__(self, spec, lib):
        k = self.k = c_kernel(spec)
        super().__init__(spec, lib, k.dims)
        any_ref = NumpyLayerEmitter(k).any_ref
        self.fwd, self.bwd = plan(k)
        kept = plan_kept(k)   # NAME_forward_kept: the cache's copies written by the kernel
        self.fwdk = kept[1] if kept else None
        for cf in (self.fwd, self.bwd) + ((self.fwdk,) if kept else ()):
            self.bind(cf.name, cf.args)
        ns = dict(vars(self.h))
        ns.update(CALL_NAMESPACE)
        ns.update(NAME=k.name, _FWD={dt: self.funcs["forward", dt] for dt in REAL},
                  _BWD={dt: self.funcs["backward", dt] for dt in REAL},
                  _FWDK={dt: self.funcs["forward_kept", dt] for dt in REAL} if kept else None,
                  _CT={dt: ct for dt, (ct, _) in REAL.items()}, _ITEM={dt: np.dtype(dt).itemsize for dt in REAL}, _empty=empty, _npempty=np.empty, _LARGE=LARGE, _scratch=scratch, _prod=math.prod,
                  _contig=np.ascontiguousarray, _ndarray=np.ndarray, _copyto=np.copyto, _contig_ids=lambda a: np.ascontiguousarray(a, dtype=np.int64),
                  _header=self.header, _dims_of=self.dim_of, _cached=self.cached, _cached_ids=self.cached_ids)
        src = layer_source(k, self.fwd, self.bwd, any_ref, (kept_names(k), self.fwdk) if kept else None,
                           self.tupled)
        exec(compile(src, f"<symgrad c/{k.name} call path>", "exec"), ns)  # noqa: S102 - our own lines
        self.forward, self.backward = ns["forward"], ns["backward"]
        self.source = src
        self.__doc__ = (f"C kernel {k.name}: forward{inspect.signature(self.forward)}, "
                        f"backward{inspect.signature(self.backward)}")
