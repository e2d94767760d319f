"""``symgrad.torch.function``: a generated layer, activation, loss or recurrent layer as a
``torch.autograd.Function``.

forward hands the kernel NumPy views of the tensors (``Tensor.numpy`` shares memory, so contiguous
CPU tensors are not copied) and wraps its outputs with ``torch.from_numpy`` (no copy); the kernel's
cache is kept on the autograd context, and backward calls the kernel's ``backward(cache, *grads)``.
Inputs and outputs are also saved with ``ctx.save_for_backward``, so an in-place change to any of
them between forward and backward raises torch's usual error instead of giving wrong gradients.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import DTypeError, SpecError
from ..registry import REGISTRY
from ..runtime import bind_arguments, load

FLOAT_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def cpu_array(name: str, t) -> np.ndarray:
    """A NumPy view of CPU tensor ``t``, never a copy (a strided tensor gives a strided view, which
    the kernel makes contiguous as it does any NumPy array); non-tensors pass through."""
    if not isinstance(t, torch.Tensor):
        return t
    if t.device.type != "cpu":
        raise DTypeError(f"{name}: expected a CPU tensor, got a tensor on {t.device} "
                         f"(symgrad's kernels run on the CPU; move it with .cpu())")
    return t.detach().numpy()


def as_tensor(a, dtype) -> torch.Tensor:
    """A tensor sharing ``a``'s memory (a scalar loss becomes a 0-d tensor of the kernel's dtype)."""
    if isinstance(a, np.ndarray) and a.ndim:
        return torch.from_numpy(a)
    return torch.from_numpy(np.array(a, dtype=dtype))


FUNCTION_SOURCE = """
def forward(ctx, {args}):
    {unpack}, cache = _FWD({arrays}, borrow=True, **_H)
    {wrap}
    ctx.cache = cache
    if {all_tensors}:
        ctx.save_for_backward({args}, {outs})
    else:
        ctx.save_for_backward(*[t for t in ({args},) if isinstance(t, _Tensor)], {outs})
    return {outs}


def backward(ctx, {grads}):
    ctx.saved_tensors  # raises if an input or output was modified in place
    if _grad_enabled():   # backward(create_graph=True): what once_differentiable refuses, cheaper
        raise RuntimeError(_SECOND)
    g = _BWD(ctx.cache, {grad_arrays})
    n = ctx.needs_input_grad
    return ({returns})
"""


def function_class(kernel, hyper: dict, spec) -> type:
    """A ``torch.autograd.Function`` for ``kernel`` with ``hyper`` fixed, its forward and backward
    written as Python source for this kernel's arguments (``FUNCTION_SOURCE``): a call only converts,
    calls and wraps. A generic forward looping over the arguments cost 7 us more per training step at
    4 x 8 (symgrad.torch's tiny-tensor goal is 2x a torch built-in op), as the C call path
    (``targets/c/callpath.py``) is written once per kernel for the same reason.

    forward hands the kernel NumPy views (``.detach().numpy()``), saves inputs and outputs with
    ``save_for_backward`` (so an in-place edit before backward raises torch's error) and keeps the
    kernel's cache on the context; backward returns None where no gradient is needed or the input
    has none."""
    names = [i.name for i in spec.inputs]
    outs = list(spec.output_names)
    diff = [i.name for i in spec.diff_inputs]
    recurrent = hasattr(spec, "state")
    out_list = ", ".join(f"o_{o}" for o in outs)
    src = FUNCTION_SOURCE.format(
        args=", ".join(f"a_{n}" for n in names),
        arrays=", ".join(f"_arr(a_{n})" for n in names),
        unpack=f"({out_list})" if recurrent else out_list,   # a recurrent layer: ((hs, hT, cT), cache)
        outs=out_list,
        wrap="; ".join(f"o_{o} = _t(o_{o})" for o in outs),
        all_tensors=" and ".join(f"isinstance(a_{n}, _Tensor)" for n in names),
        grads=", ".join(f"d_{o}" for o in outs),
        grad_arrays=", ".join(f"_grad(d_{o})" for o in outs),
        returns="".join(f"_t(g[{diff.index(n)}]) if n[{i}] else None, " if n in diff else "None, "
                        for i, n in enumerate(names)))
    dtype = kernel.dtype

    def _t(a):
        return torch.from_numpy(a) if type(a) is np.ndarray and a.ndim else as_tensor(a, dtype)

    ns = {"_FWD": kernel.forward, "_BWD": kernel.backward, "_H": dict(hyper), "_Tensor": torch.Tensor,
          "_arr": lambda t: t.detach().numpy() if isinstance(t, torch.Tensor) else t,
          "_grad": lambda g: g.detach().numpy() if g.is_cpu else cpu_array("grad", g),
          "_t": _t, "_grad_enabled": torch.is_grad_enabled,
          "_SECOND": f"{kernel.name}: a symgrad kernel's backward is not differentiable (create_graph=True / "
                     "a second derivative); differentiate the spec twice instead"}
    exec(compile(src, f"<symgrad.torch {kernel.name}>", "exec"), ns)  # noqa: S102 - our own lines
    return type(f"{kernel.name}_Function", (torch.autograd.Function,),
                {"forward": staticmethod(ns["forward"]), "backward": staticmethod(ns["backward"]),
                 "source": src, "__doc__": function_class.__doc__})


class TorchKernel:
    """``f(*tensors, **hyper)``: the kernel ``name`` through autograd (``symgrad.torch.function``)."""

    def __init__(self, name: str, backend: str = "c", dtype=None):
        self.spec = REGISTRY.get(name)
        if REGISTRY.interface(self.spec) != "layer":
            raise SpecError(f"name: expected a layer, activation, loss or recurrent layer, got {name!r} "
                            f"({REGISTRY.interface(self.spec)}); use symgrad.torch.Optimizer for optimizers")
        self.name, self.backend = name, backend
        self.dtype = None if dtype is None else str(dtype).replace("torch.", "")
        self.input_names = [i.name for i in self.spec.inputs]
        self.is_real = [i.kind == "real" for i in self.spec.inputs]
        self.hyper_names = [h.name for h in self.spec.hypers] + [z.name for z in getattr(self.spec, "sizes", [])]
        self.kernels = {}
        self.calls = {}       # (dtype, hyperparameters) -> its Function's apply, made once
        if self.dtype is not None:
            self.kernel(self.dtype)

    def __repr__(self):
        return f"symgrad.torch.function({self.name!r}, backend={self.backend!r}, dtype={self.dtype!r})"

    def kernel(self, dtype: str):
        k = self.kernels.get(dtype)
        if k is None:
            k = self.kernels[dtype] = load(self.name, self.backend, dtype)
        return k

    def bind(self, args, kwargs) -> tuple[list, dict]:
        """(tensors in the kernel's argument order, hyperparameters) of a call."""
        return bind_arguments(self.name, self.input_names, self.hyper_names, args, kwargs, "tensor")

    def __call__(self, *args, **kwargs):
        return self.run(*self.bind(args, kwargs))

    def run(self, tensors, hyper):
        """The kernel on ``tensors`` (in its argument order) with ``hyper``, through autograd."""
        for t in tensors:
            if isinstance(t, torch.Tensor) and not t.is_cpu:
                raise self._placement_error(tensors)
        dtype = self.dtype or self._dtype_of(tensors)
        if not hyper:
            key = (dtype, ())
        else:
            key = (dtype, tuple(sorted(hyper.items()))) if all(isinstance(v, (int, float)) for v in hyper.values()) \
                else None
        fn = self.calls.get(key) if key is not None else None
        if fn is None:
            fn = function_class(self.kernel(dtype), hyper, self.spec).apply
            if key is not None:
                self.calls[key] = fn
        return fn(*tensors)

    def _placement_error(self, tensors) -> DTypeError:
        n, t = next((n, t) for n, t in zip(self.input_names, tensors) if isinstance(t, torch.Tensor) and not t.is_cpu)
        return DTypeError(f"{n}: expected a CPU tensor, got a tensor on {t.device} "
                          f"(symgrad's kernels run on the CPU; move it with .cpu())")

    def _dtype_of(self, tensors) -> str:
        """The first real tensor's dtype (float64 when no real argument is a tensor)."""
        for n, t, real in zip(self.input_names, tensors, self.is_real):
            if real and isinstance(t, torch.Tensor):
                if t.dtype not in FLOAT_DTYPES:
                    raise DTypeError(f"{n}: expected a float32 or float64 tensor, got {t.dtype}")
                return FLOAT_DTYPES[t.dtype]
        return "float64"


def function(name: str, backend: str = "c", dtype=None) -> TorchKernel:
    """The kernel ``name`` (a layer, activation, loss or recurrent layer) as ``f(*tensors, **hyper)``
    that takes part in autograd.

    backend: "c" (default) or "numpy"; dtype: "float32"/"float64" (or the torch dtype), by default
    the dtype of the first real tensor. Inputs that need no gradient get None from backward; a loss
    returns a 0-d tensor; ``lstm`` returns ``(hs, hT, cT)``. CUDA tensors, other dtypes and wrong
    shapes raise the kernel's own ``TypeError``/``ValueError`` naming the argument.
    """
    return TorchKernel(name, backend, dtype)
