"""symgrad kernels inside PyTorch: autograd functions, modules and optimizers.

    import symgrad.torch as sgt
    y = sgt.function("layernorm")(x, gamma, beta)        # forward by the kernel, backward too
    dense = sgt.Module("dense", D=784, M=64)             # holds W (D, M) and b (M,) like nn.Linear
    opt = sgt.Optimizer("adam", model.parameters(), lr=1e-3)

- ``function(name, backend="c", dtype=None)``: a callable ``f(*tensors, **hyper)`` that runs the
  kernel's forward and takes part in autograd (a ``torch.autograd.Function`` whose backward calls
  the kernel's backward with the cache forward saved). CPU float32/float64 tensors; contiguous ones
  are handed to the kernel without a copy (``Tensor.numpy`` shares memory), results come back
  through ``torch.from_numpy`` (no copy either).
- ``Module(name, **dims_or_tensors)``: an ``nn.Module`` holding a layer's parameters.
- ``Optimizer(name, params, backend="c", **hyper)``: a ``torch.optim.Optimizer`` stepping each
  parameter in place with the generated ``step`` kernel.

Importing this package does not import torch; each name imports it when first used.
"""
from __future__ import annotations

__all__ = ["Module", "Optimizer", "function"]


def function(name: str, backend: str = "c", dtype=None):
    """The kernel ``name`` as an autograd-aware callable (see ``symgrad.torch.function``)."""
    from .autograd import function as make
    return make(name, backend, dtype)


def __getattr__(item):
    if item == "Module":
        from .module import Module
        return Module
    if item == "Optimizer":
        from .optim import Optimizer
        return Optimizer
    raise AttributeError(f"module 'symgrad.torch' has no attribute {item!r}")
