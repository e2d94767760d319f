"""``symgrad.torch.Optimizer``: a generated optimizer as a ``torch.optim.Optimizer``.

    opt = Optimizer("adam", model.parameters(), lr=1e-3, beta1=0.9)
    opt.zero_grad(); loss.backward(); opt.step()

Every parameter with a gradient is updated in place by the kernel's ``step`` on NumPy views of the
parameter, its gradient and its state (no copies for contiguous CPU tensors). Hyperparameters are
the kernel's (names and defaults of ``docs/contract.md``: torch.optim's, betas split into beta1 and
beta2) and may differ per param group. ``state[p]`` holds the kernel's state arrays as tensors plus
``step``, so ``state_dict()``/``load_state_dict()`` save and restore it like torch's optimizers do;
the kernel's scratch buffers are working memory, rebuilt when needed and never saved.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import DTypeError, SpecError
from ..registry import REGISTRY
from ..runtime import load
from .autograd import FLOAT_DTYPES


def kernel_defaults(spec) -> dict:
    """{hyperparameter: default} of an optimizer spec (None = required), flags included."""
    out = {k: hp.default_value() for k, hp in spec.hypers.items()}
    out.update({k: bool(v) for k, v in spec.flags.items()})
    return out


class Optimizer(torch.optim.Optimizer):
    """``Optimizer(name, params, backend="c", **hyper)``: torch parameters stepped by kernel ``name``."""

    def __init__(self, name: str, params, backend: str = "c", **hyper):
        spec = REGISTRY.get(name)
        if REGISTRY.interface(spec) != "optimizer":
            raise SpecError(f"name: expected an optimizer, got {name!r} ({REGISTRY.interface(spec)}); "
                            f"use symgrad.torch.function for layers")
        defaults = kernel_defaults(spec)
        unknown = set(hyper) - set(defaults)
        if unknown:
            raise TypeError(f"{name}: unexpected hyperparameter(s) {', '.join(sorted(unknown))}; "
                            f"expected {', '.join(defaults)}")
        defaults.update(hyper)
        missing = [k for k, v in defaults.items() if v is None]
        if missing:
            raise TypeError(f"{name}: required hyperparameter(s) not given: {', '.join(missing)}")
        self.kernel_name, self.backend = name, backend
        self.init_hypers = list(spec.init_hypers)
        self.step_hypers = [k for k in defaults if k not in self.init_hypers]
        self.kernels: dict = {}
        self.scratch: dict = {}   # id(param) -> the kernel state's non-array entries (working memory)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("scratch", {})
        self.__dict__.setdefault("kernels", {})

    def kernel(self, dtype: str):
        k = self.kernels.get(dtype)
        if k is None:
            k = self.kernels[dtype] = load(self.kernel_name, self.backend, dtype)
        return k

    def kernel_state(self, p, kernel, group) -> dict:
        """The kernel's state dict for ``p``, on NumPy views of ``self.state[p]``'s tensors."""
        st = self.state[p]
        fresh = None
        if not st:
            fresh = kernel.init(p.detach().numpy(), **{k: group[k] for k in self.init_hypers})
            for k, v in fresh.items():
                if isinstance(v, np.ndarray):
                    st[k] = torch.from_numpy(v)
                elif k == "step":
                    st[k] = int(v)
        extra = self.scratch.get(id(p))
        if extra is None or extra[0] is not p:
            if fresh is None:
                fresh = kernel.init(p.detach().numpy(), **{k: group[k] for k in self.init_hypers})
            extra = self.scratch[id(p)] = (p, {k: v for k, v in fresh.items()
                                               if k != "step" and not isinstance(v, np.ndarray)})
        ks = dict(extra[1])
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                if v.dtype != p.dtype or not v.is_contiguous():
                    v = st[k] = v.to(p.dtype).contiguous()
                ks[k] = v.numpy()
            else:
                ks[k] = int(v)
        return ks

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
            hyper = {k: group[k] for k in self.step_hypers}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.device.type != "cpu":
                    raise DTypeError(f"param_groups[{gi}]: expected CPU parameters, got one on {p.device}")
                if p.dtype not in FLOAT_DTYPES:
                    raise DTypeError(f"param_groups[{gi}]: expected float32 or float64 parameters, got {p.dtype}")
                if p.grad.is_sparse:
                    raise TypeError(f"param_groups[{gi}]: sparse gradients are not supported")
                kernel = self.kernel(FLOAT_DTYPES[p.dtype])
                ks = self.kernel_state(p, kernel, group)
                kernel.step(p.detach().numpy(), p.grad.detach().contiguous().numpy(), ks, **hyper)
                self.state[p]["step"] = int(ks["step"])
        return loss
