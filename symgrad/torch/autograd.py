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


class KernelFunction(torch.autograd.Function):
    """forward(ctx, call, *tensors): ``call`` carries the kernel, its hyperparameters and the names
    of its arguments and outputs; the tensors are the kernel's array arguments in order."""

    @staticmethod
    def forward(ctx, call, *tensors):
        arrays = [cpu_array(n, t) for n, t in zip(call.input_names, tensors)]
        # borrow: the cache refers to the tensors' memory instead of copying it; save_for_backward
        # below makes torch raise if any of them is modified in place before backward
        result = call.kernel.forward(*arrays, **call.hyper, borrow=True)
        *outs, cache = result
        if len(outs) == 1 and isinstance(outs[0], tuple):
            outs = list(outs[0])
        outs = tuple(as_tensor(o, call.kernel.dtype) for o in outs)
        ctx.call, ctx.cache = call, cache
        ctx.save_for_backward(*[t for t in tensors if isinstance(t, torch.Tensor)], *outs)
        return outs if len(outs) > 1 else outs[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_outs):
        ctx.saved_tensors  # noqa: B018 - raises if an input or output was modified in place
        call = ctx.call
        grads = call.kernel.backward(ctx.cache, *[cpu_array(f"grad of {n}", g)
                                                  for n, g in zip(call.output_names, grad_outs)])
        by_name = dict(zip(call.diff_names, grads))
        res = [None]
        for n, need in zip(call.input_names, ctx.needs_input_grad[1:]):
            g = by_name.get(n)
            res.append(as_tensor(g, call.kernel.dtype) if need and g is not None else None)
        return tuple(res)


class Call:
    """What one call passes to ``KernelFunction``: kernel, hyperparameters, argument names."""

    def __init__(self, kernel, hyper, spec):
        self.kernel, self.hyper = kernel, hyper
        self.input_names = [i.name for i in spec.inputs]
        self.diff_names = [i.name for i in spec.diff_inputs]
        self.output_names = list(spec.output_names)


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
        self.reals = [i.name for i in self.spec.inputs if i.kind == "real"]
        self.hyper_names = [h.name for h in self.spec.hypers] + [z.name for z in getattr(self.spec, "sizes", [])]
        self.kernels = {}
        self.calls = {}       # (dtype, hyperparameters) -> Call, reused: a call's setup is per-call overhead
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

    def kernel_dtype(self, tensors) -> str:
        if self.dtype is not None:
            return self.dtype
        for n, t in zip(self.input_names, tensors):
            if n in self.reals and isinstance(t, torch.Tensor):
                if t.dtype not in FLOAT_DTYPES:
                    raise DTypeError(f"{n}: expected a float32 or float64 tensor, got {t.dtype}")
                return FLOAT_DTYPES[t.dtype]
        return "float64"

    def __call__(self, *args, **kwargs):
        tensors, hyper = self.bind(args, kwargs)
        for n, t in zip(self.input_names, tensors):
            if isinstance(t, torch.Tensor) and t.device.type != "cpu":
                raise DTypeError(f"{n}: expected a CPU tensor, got a tensor on {t.device} "
                                 f"(symgrad's kernels run on the CPU; move it with .cpu())")
        dtype = self.kernel_dtype(tensors)
        key = (dtype, tuple(sorted(hyper.items()))) if all(isinstance(v, (int, float)) for v in hyper.values()) \
            else None
        call = self.calls.get(key) if key is not None else None
        if call is None:
            call = Call(self.kernel(dtype), hyper, self.spec)
            if key is not None:
                self.calls[key] = call
        return KernelFunction.apply(call, *tensors)


def function(name: str, backend: str = "c", dtype=None) -> TorchKernel:
    """The kernel ``name`` (a layer, activation, loss or recurrent layer) as ``f(*tensors, **hyper)``
    that takes part in autograd.

    backend: "c" (default) or "numpy"; dtype: "float32"/"float64" (or the torch dtype), by default
    the dtype of the first real tensor. Inputs that need no gradient get None from backward; a loss
    returns a 0-d tensor; ``lstm`` returns ``(hs, hT, cT)``. CUDA tensors, other dtypes and wrong
    shapes raise the kernel's own ``TypeError``/``ValueError`` naming the argument.
    """
    return TorchKernel(name, backend, dtype)
