"""The C backend of ``symgrad.load`` for optimizers (``init``/``step``) and schedules (``value``).

Signatures, state dicts and errors are the NumPy backend's: ``init`` *is* the NumPy module's ``init``
(a state from either backend works with both), and ``step`` runs the NumPy module's ``_checked``
(every argument, hyperparameter range and requirement checked, the step count advanced only on
success) before the C function ``NAME_step_f32``/``_f64`` updates the parameter and the state in
place. As in the NumPy backend a non-contiguous parameter is updated through a contiguous copy that is
copied back (never a silent write into a copy only), and a read-only one is an error. A gradient
that shares memory with the parameter or the state is copied first (the C arguments are ``restrict``).
"""
from __future__ import annotations

import ctypes
import inspect

import numpy as np

from .optimizer import step_args
from .runtime import CKernel


class COptimizer(CKernel):
    def __init__(self, spec, lib):
        super().__init__(spec, lib)
        self.args = step_args(spec)
        self.bind("step", self.args, restype=ctypes.c_int, hyper_type=ctypes.c_double)
        self.sig = inspect.signature(self.h.step)
        self.step = _forwarder("step", self.sig, self._step)
        self.init = self.h.init
        self.NAME, self.HYPERPARAMETERS, self.STATE = self.h.NAME, self.h.HYPERPARAMETERS, self.h.STATE
        self.__doc__ = f"C kernel {spec.name}: init{inspect.signature(self.h.init)}, step{self.sig}"

    def _step(self, *args):
        """One step: updates the parameter and the state in place, returns None (see the NumPy module)."""
        p, orig, g, t, hypers, flags, _ = self.h._checked(*args)
        state = args[2]
        arrays = [state[n] for n in self.spec.state]
        if any(np.may_share_memory(g, a) for a in [p, *arrays]):
            g = g.copy()
        vals, it_h, it_f = [], iter(hypers), iter(flags)
        for a in self.args:
            vals.append(p.ctypes.data if a.role == "param" else g.ctypes.data if a.role == "grad" else
                        state[a.name].ctypes.data if a.role in ("state", "scalar_state") else p.size if a.role == "n" else
                        t if a.role == "t" else int(next(it_f)) if a.role == "flag" else next(it_h))
        if self.funcs["step", p.dtype](*vals) != 0:
            raise ValueError(f"{self.spec.name}: no update rule for the flags {dict(zip(self.spec.flags, flags))}")
        if orig is not None:  # a non-contiguous parameter was updated through a contiguous copy
            np.copyto(orig, p)
        state["step"] = t


class CSchedule(CKernel):
    def __init__(self, spec, lib):
        super().__init__(spec, lib)
        self.fn = getattr(lib, f"{spec.name}_value")
        self.fn.restype = ctypes.c_double
        self.fn.argtypes = [ctypes.c_double] * len(spec.args) + [ctypes.c_int] * len(spec.flags)
        self.sig = inspect.signature(self.h.value)
        self.value = _forwarder("value", self.sig, self._value)
        self.__doc__ = f"C kernel {spec.name}: value{self.sig}"

    def _value(self, *args):
        reals, flags = self.h._checked(*args)
        return float(self.fn(*reals, *[int(f) for f in flags]))


def _forwarder(name, sig, impl):
    """A function ``name`` with exactly the signature ``sig`` (so a wrong call raises Python's own
    TypeError, word for word the NumPy module's) passing every argument in order to ``impl``."""
    ns, parts, star = {"_impl": impl}, [], False
    for i, prm in enumerate(sig.parameters.values()):
        if prm.kind is prm.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if prm.default is prm.empty:
            parts.append(prm.name)
        else:
            ns[f"_d{i}"] = prm.default
            parts.append(f"{prm.name}=_d{i}")
    names = ", ".join(sig.parameters)
    exec(f"def {name}({', '.join(parts)}):\n    return _impl({names})\n", ns)  # noqa: S102 - names are identifiers
    return ns[name]
