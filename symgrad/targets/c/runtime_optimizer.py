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
from .runtime import CALL_NAMESPACE, REAL, CKernel, address_source


class COptimizer(CKernel):
    """``init`` (the NumPy module's) and ``step``, whose Python side is written once at load time:
    the NumPy module's ``_checked``, then one C call with a fixed argument tuple."""

    def __init__(self, spec, lib):
        super().__init__(spec, lib)
        self.args = step_args(spec)
        self.bind("step", self.args, restype=ctypes.c_int, hyper_type=ctypes.c_double)
        self.sig = inspect.signature(self.h.step)
        ns = dict(CALL_NAMESPACE, _checked=self.h._checked, _copyto=np.copyto,
                  _STEP={dt: self.funcs["step", dt] for dt in REAL}, _no_rule=self._no_rule)
        ns.update({f"_d{i}": prm.default for i, prm in enumerate(self.sig.parameters.values())})
        exec(compile(self.step_source(), f"<symgrad c/{spec.name} call path>", "exec"), ns)  # noqa: S102
        self.step = ns["step"]
        self.init = self.h.init
        self.NAME, self.HYPERPARAMETERS, self.STATE = self.h.NAME, self.h.HYPERPARAMETERS, self.h.STATE
        self.__doc__ = f"C kernel {spec.name}: init{inspect.signature(self.h.init)}, step{self.sig}"

    def step_source(self) -> str:
        """``step`` with the NumPy module's signature (so a wrong call raises Python's own TypeError,
        word for word): the NumPy module's checks (which also copy a gradient that overlaps what the
        update writes: the C arguments are ``restrict``), the C update, the copy back into a
        non-contiguous parameter, the step count."""
        params, star = [], False
        for i, prm in enumerate(self.sig.parameters.values()):
            if prm.kind is prm.KEYWORD_ONLY and not star:
                params.append("*")
                star = True
            params.append(prm.name if prm.default is prm.empty else f"{prm.name}=_d{i}")   # the NumPy defaults
        names = list(self.sig.parameters)
        state = [a.name for a in self.args if a.role in ("state", "scalar_state")]
        L = [f"_p, _orig, _g, t, _h, _f, _key, _w = _checked({', '.join(names)})"]
        L += [f"_s{i} = _w[{1 + list(self.h.STATE).index(n)}]" for i, n in enumerate(state)]   # the checked arrays
        vals, arrays, nh, nf = [], [], 0, 0
        for a in self.args:
            if a.role in ("param", "grad", "state", "scalar_state"):
                arr = {"param": "_p", "grad": "_g"}.get(a.role) or f"_s{state.index(a.name)}"
                if self.tupled:   # one tuple of the arrays, first (shims.py)
                    arrays.append(arr)
                else:
                    vals.append(address_source(arr))
            elif a.role == "n":
                vals.append("_p.size")
            elif a.role == "t":
                vals.append("t")
            elif a.role == "flag":
                vals.append(f"_f[{nf}]")
                nf += 1
            else:
                vals.append(f"_h[{nh}]")
                nh += 1
        if arrays:
            vals.insert(0, "(" + "".join(f"{n}, " for n in arrays) + ")")
        L.append(f"if _STEP[_p.dtype]({', '.join(vals)}) != 0:")
        L.append("    _no_rule(_f)")
        L.append("if _orig is not None:  # a non-contiguous parameter was updated through a contiguous copy")
        L.append("    _copyto(_orig, _p)")
        L.append(f'{names[2]}["step"] = t')
        return f"def step({', '.join(params)}):\n" + "".join(f"    {line}\n" for line in L)

    def _no_rule(self, flags):
        raise ValueError(f"{self.spec.name}: no update rule for the flags {dict(zip(self.spec.flags, flags))}")


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
