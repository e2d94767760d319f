"""What a symgrad kernel costs inside a PyTorch training step (issue 17), for ``symgrad bench``.

Two ratios, each of two contenders timed in the same process (torch imported first, so both share
its threads and OpenMP runtime), as medians over alternating blocks (ours, torch, ours, torch, ...)
so a slow stretch of the machine hits both alike:

- ``large``: LayerNorm forward + backward at N x D (default 8192 x 1024, float32) as a module in a
  training step: ``symgrad.torch.Module("layernorm")`` against ``torch.nn.LayerNorm``
  (issue 17's goal: ratio <= 0.6).
- ``tiny``: the same step on tiny tensors (4 x 8), where all the time is per-call overhead
  (autograd bookkeeping, argument checks, the ctypes call) against torch's built-in op
  (goal: ratio <= 2).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .timing import alternating_medians

GOALS = {"large": 0.6, "tiny": 2.0}


@dataclass
class InteropResult:
    sizes: dict
    dtype: str
    backend: str
    threads: int
    times: dict = field(default_factory=dict)    # (case, "symgrad" | "torch") -> seconds per call

    def ratio(self, case: str) -> float:
        return self.times[case, "symgrad"] / self.times[case, "torch"]

    def table(self) -> str:
        lines = [f"symgrad.torch vs torch, {self.dtype}, backend {self.backend}, {self.threads} thread(s); "
                 f"forward+backward per call, medians of alternating blocks"]
        for case, (n, d) in self.sizes.items():
            ours, theirs = self.times[case, "symgrad"], self.times[case, "torch"]
            lines.append(f"  layernorm {case:5s} N={n} D={d}: symgrad {ours * 1e6:10.1f} us   torch "
                         f"{theirs * 1e6:10.1f} us   ratio {ours / theirs:5.2f} (goal <= {GOALS[case]})")
        return "\n".join(lines)


def layernorm_steps(n: int, d: int, dtype, backend: str):
    """(ours, theirs): one forward + backward of a LayerNorm module on an (n, d) batch each."""
    import torch

    from ..torch.module import Module

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_(True)
    dy = torch.randn(n, d, generator=g, dtype=dtype)
    ours = Module("layernorm", D=d, backend=backend, dtype=dtype, init={"gamma": 1.0, "beta": 0.0})
    theirs = torch.nn.LayerNorm(d, dtype=dtype)

    def step(module):
        def run():
            y = module(x)
            y.backward(dy)
            x.grad = None
            for p in module.parameters():
                p.grad = None
        return run
    return step(ours), step(theirs)


def measure(large=(8192, 1024), tiny=(4, 8), dtype: str = "float32", backend: str = "c",
            threads: int | None = None, blocks: int = 7, calls_large: int = 3,
            calls_tiny: int = 200) -> InteropResult:
    """Time both cases; ``threads`` sets torch's thread count (the C kernels follow OMP_NUM_THREADS)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    res = InteropResult({"large": tuple(large), "tiny": tuple(tiny)}, dtype, backend, torch.get_num_threads())
    for case, calls in (("large", calls_large), ("tiny", calls_tiny)):
        ours, theirs = layernorm_steps(*res.sizes[case], tdtype, backend)
        t = alternating_medians({"symgrad": ours, "torch": theirs}, blocks, gap=0.0,
                                block=0.0 if calls <= 1 else 0.02)
        res.times[case, "symgrad"], res.times[case, "torch"] = t["symgrad"], t["torch"]
    return res
