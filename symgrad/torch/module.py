"""``symgrad.torch.Module``: a generated layer as an ``nn.Module`` that holds its parameters.

    dense = Module("dense", D=784, M=64)                 # parameters W (784, 64), b (64,)
    norm = Module("layernorm", D=64, init={"gamma": 1.0, "beta": 0.0})
    y = norm(dense(x))                                   # forward(x): the data arguments only

Which arguments are parameters: those given as tensors, and those whose shape the given dimensions
fix (``dense``'s x is (N, D): N is the batch, so x is data; W (D, M) and b (M,) are parameters).
The data arguments are passed to ``forward`` in the kernel's order (or by name).
"""
from __future__ import annotations

import math

import sympy as sp
import torch

from ..errors import ShapeError, SpecError
from ..spec.tensor import ANY
from .autograd import TorchKernel


def known_shape(shape, dims: dict):
    """The integer shape of symbolic ``shape`` under ``dims``, or None when a size is unknown."""
    if tuple(shape) == (ANY,):
        return None
    out = []
    for d in shape:
        v = sp.sympify(d).subs(dims)
        if not v.is_Integer:
            return None
        out.append(int(v))
    return tuple(out)


class Module(torch.nn.Module):
    """Layer ``name`` with its parameters: ``Module(name, backend="c", dtype=None, init=None,
    **dims_or_tensors_or_hyper)``.

    Keyword arguments are dimension sizes (``D=784``), parameter tensors (``W=torch.randn(...)``,
    used as given) or hyperparameters (``eps=1e-3``). ``init`` maps a parameter name to a number
    (constant fill) or a function filling the tensor in place; parameters not in it start uniform in
    [-1/sqrt(F), 1/sqrt(F)] with F the last dimension of the first data argument (nn.Linear's rule).
    """

    def __init__(self, name: str, backend: str = "c", dtype=None, init: dict | None = None, **given):
        super().__init__()
        self.fn = TorchKernel(name, backend)
        spec = self.fn.spec
        dim_names = {str(d): d for d in spec.dims}
        dims, tensors, self.hyper = {}, {}, {}
        for k, v in given.items():
            if k in dim_names:
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise SpecError(f"{k}: expected a non-negative int (a dimension of {name}), got {v!r}")
                dims[dim_names[k]] = v
            elif k in self.fn.input_names:
                if not isinstance(v, torch.Tensor):
                    raise TypeError(f"{k}: expected a tensor (a parameter of {name}), got {type(v).__name__}")
                tensors[k] = v
            elif k in self.fn.hyper_names:
                self.hyper[k] = v
            else:
                raise TypeError(f"{name}: unexpected argument {k!r}; expected dimensions "
                                f"{', '.join(dim_names)}, tensors {', '.join(self.fn.input_names)} or "
                                f"hyperparameters {', '.join(self.fn.hyper_names) or '(none)'}")
        inputs = {i.name: i for i in spec.inputs}
        for k, t in tensors.items():   # dimensions read off the given tensors
            shape = inputs[k].shape
            if tuple(shape) != (ANY,) and len(shape) == t.dim():
                for d, n in zip(shape, t.shape):
                    if isinstance(d, sp.Symbol) and d not in dims:
                        dims[d] = int(n)
        self.data_names = [n for n, i in inputs.items()
                           if n not in tensors and known_shape(i.shape, dims) is None]
        dtype = dtype or torch.get_default_dtype()
        init = dict(init or {})
        first = inputs[self.data_names[0]].shape if self.data_names else ()
        fan = known_shape(first[-1:], dims) if tuple(first) != (ANY,) and first else None
        bound = 1 / math.sqrt(fan[0]) if fan and fan[0] else 1.0
        self.param_names = [n for n in inputs if n not in self.data_names]
        # a `training` flag the caller did not fix follows the module's mode (train() / eval())
        self._follows_mode = "training" in self.fn.hyper_names and "training" not in self.hyper
        # the kernel's argument order: (position among the data arguments, or -1 for a parameter, name)
        self._order = [(self.data_names.index(n) if n in self.data_names else -1, n) for n in self.fn.input_names]
        for n in self.param_names:
            if getattr(inputs[n], "buffer", False):   # updated in place by forward (running statistics)
                t = tensors.get(n)
                if t is None:
                    t = torch.full(known_shape(inputs[n].shape, dims), inputs[n].init, dtype=dtype)
                self.register_buffer(n, t)
                continue
            if n in tensors:
                t = tensors[n]
                want = known_shape(inputs[n].shape, dims)
                if want is not None and tuple(t.shape) != want:
                    raise ShapeError(f"{n}: expected shape {want}, got {tuple(t.shape)}")
                p = t if isinstance(t, torch.nn.Parameter) else torch.nn.Parameter(t)
            else:
                p = torch.nn.Parameter(torch.empty(known_shape(inputs[n].shape, dims), dtype=dtype))
                how = init.pop(n, None)
                with torch.no_grad():
                    if how is None:
                        p.uniform_(-bound, bound)
                    elif callable(how):
                        how(p)
                    else:
                        p.fill_(float(how))
            self.register_parameter(n, p)
        if init:
            raise TypeError(f"init: unknown parameter(s) {', '.join(init)}; parameters of this "
                            f"{name}: {', '.join(self.param_names)}")
        self.dims = {str(k): v for k, v in dims.items()}

    def extra_repr(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        return f"{self.fn.name!r}, {dims}, backend={self.fn.backend!r}"

    def forward(self, *data, **kwargs):
        """The layer on the data arguments (``self.data_names``); returns what the kernel returns."""
        if len(data) > len(self.data_names):
            raise TypeError(f"{self.fn.name}: expected the data argument(s) {', '.join(self.data_names)}, "
                            f"got {len(data)} positional arguments")
        hyper = self.hyper
        if self._follows_mode and "training" not in kwargs:   # model.train() / model.eval(), as nn.BatchNorm
            hyper = {**hyper, "training": self.training}
        if not kwargs and len(data) == len(self.data_names):   # the usual call: no name binding
            params, buffers = self._parameters, self._buffers
            return self.fn.run([data[i] if i >= 0 else params[n] if n in params else buffers[n]
                                for i, n in self._order], hyper)
        args = dict(zip(self.data_names, data))
        args.update({n: getattr(self, n) for n in self.param_names})
        return self.fn(**args, **hyper, **kwargs)
