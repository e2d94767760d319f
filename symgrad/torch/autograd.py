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
    """forward(ctx, call, *tensors): ``call`` carries the kernel, its hyperparameters and where each
    argument's gradient is; the tensors are the kernel's array arguments in order."""

    @staticmethod
    def forward(ctx, call, *tensors):
        # CPU placement was checked by the caller (TorchKernel.run); .numpy() shares memory
        arrays = [t.detach().numpy() if isinstance(t, torch.Tensor) else t for t in tensors]
        # borrow: the cache refers to the tensors' memory instead of copying it; save_for_backward
        # below makes torch raise if any of them is modified in place before backward
        *outs, cache = call.kernel.forward(*arrays, **call.hyper, borrow=True)
        if len(outs) == 1 and type(outs[0]) is tuple:
            outs = outs[0]
        outs = tuple(torch.from_numpy(o) if type(o) is np.ndarray and o.ndim else as_tensor(o, call.kernel.dtype)
                     for o in outs)
        ctx.call, ctx.cache = call, cache
        ctx.save_for_backward(*[t for t in tensors if isinstance(t, torch.Tensor)], *outs)
        return outs if len(outs) > 1 else outs[0]

    @staticmethod
    def backward(ctx, *grad_outs):
        ctx.saved_tensors  # noqa: B018 - raises if an input or output was modified in place
        if torch.is_grad_enabled():   # backward(create_graph=True): what once_differentiable refuses, cheaper
            raise RuntimeError(f"{ctx.call.kernel.name}: a symgrad kernel's backward is not differentiable "
                               "(create_graph=True / a second derivative); differentiate the spec twice instead")
        call = ctx.call
        grads = call.kernel.backward(ctx.cache, *[g.detach().numpy() if g.is_cpu else cpu_array("grad", g)
                                                  for g in grad_outs])
        res = [None]
        for j, need in zip(call.grad_slot, ctx.needs_input_grad[1:]):
            if need and j >= 0:
                g = grads[j]
                res.append(torch.from_numpy(g) if type(g) is np.ndarray and g.ndim else as_tensor(g, call.kernel.dtype))
            else:
                res.append(None)
        return tuple(res)


class Call:
    """What one call passes to ``KernelFunction``: kernel, hyperparameters, and for each argument
    position the index of its gradient in backward's result (-1: none)."""

    def __init__(self, kernel, hyper, spec):
        self.kernel, self.hyper = kernel, hyper
        diff = [i.name for i in spec.diff_inputs]
        self.grad_slot = [diff.index(i.name) if i.name in diff else -1 for i in spec.inputs]


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

    def __call__(self, *args, **kwargs):
        return self.run(*self.bind(args, kwargs))

    def run(self, tensors, hyper):
        """The kernel on ``tensors`` (in its argument order) with ``hyper``, through autograd."""
        dtype, first = self.dtype, None   # the kernel's dtype: given, or the first real tensor's
        for n, t, real in zip(self.input_names, tensors, self.is_real):
            if isinstance(t, torch.Tensor):
                if not t.is_cpu:
                    raise DTypeError(f"{n}: expected a CPU tensor, got a tensor on {t.device} "
                                     f"(symgrad's kernels run on the CPU; move it with .cpu())")
                if real and first is None:
                    first = (n, t.dtype)
        if dtype is None:
            if first is None:
                dtype = "float64"
            elif first[1] not in FLOAT_DTYPES:
                raise DTypeError(f"{first[0]}: expected a float32 or float64 tensor, got {first[1]}")
            else:
                dtype = FLOAT_DTYPES[first[1]]
        if not hyper:
            key = (dtype, ())
        else:
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
