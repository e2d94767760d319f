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
from ..numpy.layer import NumpyLayerEmitter
from .callpath import recurrent_source
from .memory import LARGE, scratch
from .recurrent import CRecurrent
from .runtime import CALL_NAMESPACE, REAL, CKernel, empty


class CRecurrentLayer(CKernel):
    def __init__(self, spec, lib):
        self.r = CRecurrent(spec)
        super().__init__(spec, lib, self.r.dims)
        k = self.r.k
        for cf in (self.r.fwd, self.r.fwdk, self.r.bwd):
            if cf is not None:
                self.bind(cf.name, cf.args)
        user = [ir.Arg(i.name, i.shape, i.kind, i.bound, i.differentiable) for i in spec.inputs]
        binds, checks, _ = NumpyLayerEmitter(k).validation(user)
        names = [a.name for a in user]
        src = (f"def _validate({', '.join(names)}):\n" + "".join(f"    {l}\n" for l in binds + checks)
               + f"    return {{{', '.join(repr(d) + ': ' + d for d in self.dims)}}}\n")
        ns = dict(vars(self.h))
        exec(compile(src, f"<symgrad c/{spec.name} checks>", "exec"), ns)  # noqa: S102 - our own lines
        self._validate = ns["_validate"]
        ns.update(CALL_NAMESPACE)
        ns.update(NAME=spec.name, _validate=self._validate, _FWD={dt: self.funcs["forward", dt] for dt in REAL},
                  _FWDK={dt: self.funcs["forward_kept", dt] for dt in REAL} if self.r.fwdk else None,
                  _BWD={dt: self.funcs["backward", dt] for dt in REAL},
                  _CT={dt: ct for dt, (ct, _) in REAL.items()}, _ITEM={dt: np.dtype(dt).itemsize for dt in REAL}, _empty=empty, _npempty=np.empty, _LARGE=LARGE, _scratch=scratch, _zeros=np.zeros,
                  _contig=np.ascontiguousarray, _header=self.header, _dims_of=self.dim_of, _cached=self.cached)
        src = recurrent_source(spec, k, self.r.fwd, self.r.bwd, self.dims,
                               (self.r.kept, self.r.fwdk) if self.r.fwdk else None, self.tupled)
        exec(compile(src, f"<symgrad c/{spec.name} call path>", "exec"), ns)  # noqa: S102 - our own lines
        self.forward, self.backward, self.source = ns["forward"], ns["backward"], src
        self.__doc__ = (f"C kernel {spec.name}: forward{inspect.signature(self.forward)}, "
                        f"backward{inspect.signature(self.backward)}")
