"""The benchmark harness behind ``symgrad bench``: one run, every contender, ratios in a table.

All contenders of a workload run in this one process, torch included and imported before any
symgrad kernel loads (a researcher's process has both), in alternating blocks with idle gaps between
them (so neither side's spinning threads slow the other); a time is the median over blocks, and a
ratio compares two contenders of the same run (never an absolute time against a fixed number).
Memory-bound kernels are compared with the bandwidth bound (bytes moved / a STREAM triad measured in
the same run), GEMM-bound ones with the SGEMM peak NumPy reaches at 2048^3 in the same run. Goals
(issues 7 and 13) are printed next to the measured ratio.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from . import hand
from .interop import layernorm_steps
from .timing import GAP, alternating_medians, median_time
from .steps import BUILDERS as STEP_BUILDERS, STEP_SIZES, STEP_SMALL, flops, torch_step

SIZES = {  # workload -> dims (full size; --small shrinks them for the smoke test)
    "dense": dict(N=512, D=1024, M=1024),
    "layernorm": dict(N=8192, D=1024),
    "lstm": dict(T=32, N=64, D=256, H=256),
    "adam": dict(P=2 ** 24),
    **STEP_SIZES,
    "torch_layernorm": dict(N=8192, D=1024), "torch_tiny": dict(N=4, D=8),
    # issue 15: a ResNet-style 3x3 "same" convolution, 2x2 max-pooling and per-channel BatchNorm
    "conv2d": dict(N=32, C=64, H=32, W=32, O=64, K=3), "maxpool2d": dict(N=32, C=64, H=32, W=32),
    "batchnorm2d": dict(N=32, C=64, H=32, W=32),
}
WINDOWS = ("conv2d", "maxpool2d", "batchnorm2d")
SMALL = {"dense": dict(N=8, D=16, M=8), "layernorm": dict(N=16, D=32), "lstm": dict(T=3, N=4, D=5, H=6),
         "adam": dict(P=1000), **STEP_SMALL, "torch_layernorm": dict(N=16, D=32), "torch_tiny": dict(N=2, D=4),
         "conv2d": dict(N=2, C=3, H=6, W=5, O=4, K=3), "maxpool2d": dict(N=2, C=3, H=6, W=6),
         "batchnorm2d": dict(N=2, C=3, H=4, W=5)}
INTEROP = ("torch_layernorm", "torch_tiny")   # a symgrad.torch.Module inside a torch training step
TARGETS = [  # (workload, contender, reference, goal): ratio contender/reference <= goal, float32
    ("percall", "C", "NumPy", 1.0), ("torch_layernorm", "C", "torch", 0.6), ("torch_tiny", "C", "torch", 2.0), ("mlp", "C", "torch", 0.33), ("mlp", "NumPy", "torch", 0.75),
    ("lstm_step", "C", "torch", 0.5), ("lstm_step", "NumPy", "torch", 1.0),
    ("dense", "C", "hand NumPy", 1.0), ("lstm", "C", "torch", 1.0), ("lstm", "C", "NumPy", 0.8),
    ("layernorm", "C", "torch", 0.3), ("adam", "C", "torch", 1.05),
    ("dense", "NumPy", "hand NumPy", 1.2), ("layernorm", "NumPy", "hand NumPy", 1.2),
    ("lstm", "NumPy", "hand NumPy", 1.2), ("adam", "NumPy", "hand NumPy", 0.5),
    ("conv2d", "C", "torch", 1.0),
]
BANDWIDTH_GOALS = {"adam": 0.6, "maxpool2d": 0.6, "batchnorm2d": 0.6}   # C's share of the triad bound


@dataclass
class Result:
    workload: str
    dtype: str
    times: dict = field(default_factory=dict)     # contender -> seconds
    bound: float | None = None                    # seconds at the triad bandwidth
    flops: float | None = None                    # floating-point operations of the GEMMs


def sgemm_peak(n: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of NumPy's float32 matmul at n x n x n (its BLAS, this run's threads): the GEMM bound."""
    a = np.ones((n, n), np.float32)
    t = min(median_time(lambda: a @ a, 1) for _ in range(repeats))
    return 2 * n ** 3 / t


def settle_heap(nbytes: int = 16 << 20) -> None:
    """Put glibc's allocator in the state a long-running NumPy process reaches, before anything is timed.
    Freeing a block glibc had mapped for itself raises its mmap threshold to that block's size (up to
    32 MiB) and its trim threshold to twice that; from then on NumPy's temporaries below the threshold
    reuse heap memory instead of being mapped, and zeroed by the kernel, at every call. The references
    are timed in that state, their best: hand NumPy's dense forward+backward (10 MiB of temporaries a
    call) took 12.5-14.0 ms in a process where nothing of 8 MiB or more had been freed, 10.7-11.7 ms
    after (the C kernels' arrays come from symgrad's pool, 10.7-11.4 ms either way). Until this was
    made a step of its own, the SGEMM peak's 16 MiB arrays did it by chance. (Elsewhere than glibc:
    an allocation and a free, harmless.)"""
    np.empty(nbytes, np.uint8)   # mapped and freed at once: the threshold follows the freed size


def blas_info() -> str:
    """NumPy's BLAS as threadpoolctl sees it: library, core type (architecture) and threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    rows = [f"{i.get('internal_api')} {i.get('architecture') or ''} x{i.get('num_threads')}".replace("  ", " ")
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(rows) or "no BLAS found"


TRIAD_C = r"""
#include <stddef.h>
/* STREAM triad a = b + s c over n doubles, threads from OMP_NUM_THREADS. */
void sg_triad(double *restrict a, const double *restrict b, const double *restrict c, double s, long n) {
#ifdef _OPENMP
    #pragma omp parallel for schedule(static)
#endif
    for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
"""


def _probe(name: str, source: str, restype, argtypes):
    """C function ``name`` of ``source``, compiled with the kernels' compiler and flags (and cached as
    they are), or None without a compiler."""
    try:
        from ..targets.c.build import build, load_library
        f = getattr(load_library(build(name, {f"{name}.c": source})), name)
    except Exception:  # noqa: BLE001 - no compiler: the caller falls back or leaves the figure out
        return None
    f.restype, f.argtypes = restype, argtypes
    return f


def _triad_kernel():
    """The compiled triad, or None without a compiler."""
    import ctypes
    return _probe("sg_triad", TRIAD_C, None, [ctypes.c_void_p] * 3 + [ctypes.c_double, ctypes.c_long])


FMA_C = r"""
#include <math.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif
/* The float multiply-add bound of the cores: on every OpenMP thread, SG_FMA_ROWS independent rows of one
 * vector (SG_FMA_LANES floats), each acc = acc a + b, iters times: with the kernels' flags an AVX-512 core
 * runs 16 zmm FMAs per iteration (AVX2: 12 ymm, which with a and b fill its 16 registers), no loads or
 * stores; either is more than the FMA units' latency times their count. Returns a checksum; the thread
 * count and the multiply-adds per iteration in *threads and *per_iter. */
#ifdef __AVX512F__
#define SG_FMA_LANES 16
#define SG_FMA_ROWS 16
#else
#define SG_FMA_LANES 8
#define SG_FMA_ROWS 12
#endif
double sg_fma(int64_t iters, int *threads, int *per_iter)
{
    double total = 0;
    int nt = 1;
#ifdef _OPENMP
    #pragma omp parallel reduction(+:total)
#endif
    {
        float acc[SG_FMA_ROWS][SG_FMA_LANES];
        for (int i = 0; i < SG_FMA_ROWS; ++i)
            for (int l = 0; l < SG_FMA_LANES; ++l) acc[i][l] = (float)(i * SG_FMA_LANES + l) * 1e-4f;
        const float a = 0.9999999f, b = 1e-7f;
        for (int64_t t = 0; t < iters; ++t)
            for (int i = 0; i < SG_FMA_ROWS; ++i)
#ifdef _OPENMP
                #pragma omp simd
#endif
                for (int l = 0; l < SG_FMA_LANES; ++l) acc[i][l] = fmaf(acc[i][l], a, b);
        float s = 0;
        for (int i = 0; i < SG_FMA_ROWS; ++i)
            for (int l = 0; l < SG_FMA_LANES; ++l) s += acc[i][l];
        total += s;
#ifdef _OPENMP
        #pragma omp single
        nt = omp_get_num_threads();
#endif
    }
    *threads = nt;
    *per_iter = SG_FMA_ROWS * SG_FMA_LANES;
    return total;
}
"""


def fma_peak(iters: int = 20_000_000, repeats: int = 5) -> float | None:
    """FLOP/s of float32 multiply-adds with nothing else to do (``FMA_C``: 12-16 independent vectors a
    thread, compiled like the kernels, on their threads), best of ``repeats``: the bound no product
    kernel can pass. None without a C compiler. On the development machine 225-242 GFLOP/s a core and
    455-484 on two (two 16-lane FMA units at about 3.5-3.7 GHz), where NumPy's SGEMM peak at 2048^3 read
    320-375 for two."""
    import ctypes
    f = _probe("sg_fma", FMA_C, ctypes.c_double,
               [ctypes.c_int64, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)])
    if f is None:
        return None
    threads, per_iter = ctypes.c_int(0), ctypes.c_int(0)
    t = min(median_time(lambda: f(iters, ctypes.byref(threads), ctypes.byref(per_iter)), 1) for _ in range(repeats))
    return threads.value * iters * per_iter.value * 2 / t


def triad_bandwidth(n: int = 2 ** 24, repeats: int = 5) -> tuple[float, str]:
    """Bytes per second of the STREAM triad a = b + s c (3 arrays of n doubles moved), best of
    ``repeats``, threaded like the C kernels; returns (bandwidth, how it was measured)."""
    b, c = np.ones(n), np.full(n, 2.0)
    a = np.zeros(n)
    f = _triad_kernel()
    if f is not None:
        run, how = (lambda: f(a.ctypes.data, b.ctypes.data, c.ctypes.data, 3.0, n)), "C STREAM triad"
    else:
        run, how = (lambda: np.add(b, c, out=a)), "NumPy add (no C compiler; one thread)"
    t = min(median_time(run, 1) for _ in range(repeats))
    return 3 * n * 8 / t, how


def _args(workload, dims, dtype, rng):
    if workload in STEP_BUILDERS or workload in INTEROP:   # they make their own data from the dims
        return dims
    f = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    if workload == "dense":
        return dict(x=f(dims["N"], dims["D"]), W=f(dims["D"], dims["M"]) * 0.03, b=f(dims["M"]),
                    dy=f(dims["N"], dims["M"]))
    if workload == "layernorm":
        return dict(x=f(dims["N"], dims["D"]), gamma=f(dims["D"]), beta=f(dims["D"]), dy=f(dims["N"], dims["D"]))
    if workload == "lstm":
        T, N, D, H = dims["T"], dims["N"], dims["D"], dims["H"]
        return dict(x=f(T, N, D), h0=np.zeros((N, H), dtype), c0=np.zeros((N, H), dtype),
                    W_ih=f(4 * H, D) * 0.05, W_hh=f(4 * H, H) * 0.05, b_ih=f(4 * H), b_hh=f(4 * H),
                    dhs=f(T, N, H))
    if workload in WINDOWS:
        n, c, h, w = dims["N"], dims["C"], dims["H"], dims["W"]
        out = dict(x=f(n, c, h, w))
        if workload == "conv2d":
            k, o = dims["K"], dims["O"]
            out.update(weight=f(o, c, k, k) * (1 / (c * k * k) ** 0.5), bias=f(o), dy=f(n, o, h, w))
        elif workload == "maxpool2d":
            out.update(dy=f(n, c, h // 2, w // 2))
        else:
            out.update(gamma=f(c), beta=f(c), running_mean=np.zeros(c, dtype), running_var=np.ones(c, dtype),
                       dy=f(n, c, h, w))
        return out
    return dict(p=f(dims["P"]), g=f(dims["P"]))


def _bytes(workload, dims, itemsize):
    if workload in ("maxpool2d", "batchnorm2d"):
        x = dims["N"] * dims["C"] * dims["H"] * dims["W"] * itemsize
        # max-pooling: forward reads x, writes y (x/4); backward reads x, dy (x/4), writes dx.
        # BatchNorm as LayerNorm: forward reads x, writes y; backward reads dy and x, writes dx
        return 3.5 * x if workload == "maxpool2d" else 5 * x
    if workload == "layernorm":  # forward reads x, writes y; backward reads dy and x, writes dx
        return 5 * dims["N"] * dims["D"] * itemsize
    if workload == "adam":  # reads p, g, m, v; writes p, m, v
        return 7 * dims["P"] * itemsize
    return None


def contenders(workload, a, dtype, threads):
    """name -> zero-argument callable running forward+backward (or one optimizer step)."""
    import symgrad
    out = {}
    if workload in INTEROP:   # torch's own module is the reference column, added by run()
        import torch
        for backend, label in (("numpy", "NumPy"), ("c", "C")):
            out[label] = layernorm_steps(a["N"], a["D"], getattr(torch, dtype), backend)[0]
        return out
    if workload in STEP_BUILDERS:
        for backend, label in (("numpy", "NumPy"), ("c", "C")):
            load = lambda name, backend=backend: symgrad.load(name, backend=backend, dtype=dtype)  # noqa: E731
            try:
                out[label] = STEP_BUILDERS[workload](load, a, dtype, np.random.default_rng(0))
            except Exception:  # noqa: BLE001 - a backend not available: no column
                continue
        return out
    if workload == "adam":
        out["hand NumPy"] = hand.adam_runner(a["p"].copy(), a["g"])
        for backend, label in (("numpy", "NumPy"), ("c", "C")):
            try:
                k = symgrad.load("adam", backend=backend, dtype=dtype)
            except Exception:  # noqa: BLE001 - a backend or kernel not available: no column
                continue
            p = a["p"].copy()
            st = k.init(p)
            out[label] = lambda k=k, p=p, st=st: k.step(p, a["g"], st, lr=1e-3)
    else:
        if workload not in WINDOWS:
            out["hand NumPy"] = getattr(hand, f"{workload}_runner")(a)
        for backend, label in (("numpy", "NumPy"), ("c", "C")):
            try:
                k = symgrad.load(workload, backend=backend, dtype=dtype)
            except Exception:  # noqa: BLE001
                continue
            out[label] = _layer_runner(k, workload, a)
            if label == "C":   # the same kernels without the cache's copies (as symgrad.torch calls them)
                out["C borrow"] = _layer_runner(k, workload, a, borrow=True)
    return out


def _layer_runner(k, workload, a, borrow=False):
    """forward+backward of layer ``k``; ``borrow``: the cache refers to the arguments and outputs
    instead of copying them (docs/contract.md, "Caches")."""
    b = dict(borrow=True) if borrow else {}
    if workload == "conv2d":
        return lambda: k.backward(k.forward(a["x"], a["weight"], a["bias"], padding=1, **b)[1], a["dy"])
    if workload == "maxpool2d":
        return lambda: k.backward(k.forward(a["x"], kernel_size=2, **b)[1], a["dy"])
    if workload == "batchnorm2d":
        return lambda: k.backward(k.forward(a["x"], a["gamma"], a["beta"], a["running_mean"],
                                            a["running_var"], **b)[1], a["dy"])
    if workload == "dense":
        return lambda: k.backward(k.forward(a["x"], a["W"], a["b"], **b)[1], a["dy"])
    if workload == "layernorm":
        return lambda: k.backward(k.forward(a["x"], a["gamma"], a["beta"], **b)[1], a["dy"])
    names = ("x", "h0", "c0", "W_ih", "W_hh", "b_ih", "b_hh")
    return lambda: k.backward(k.forward(*[a[n] for n in names], **b)[1], a["dhs"])


def _torch_interop(d, dtype, threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return layernorm_steps(d["N"], d["D"], getattr(torch, dtype), "c")[1]


def _torch_runner(workload, a, dtype, threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    T = lambda v, g=True: torch.tensor(v, requires_grad=g)  # noqa: E731
    if workload == "dense":
        x, W, b, dy = T(a["x"]), T(a["W"]), T(a["b"]), torch.tensor(a["dy"])
        return lambda: (x @ W + b).backward(dy)
    if workload == "layernorm":
        x, g, b, dy = T(a["x"]), T(a["gamma"]), T(a["beta"]), torch.tensor(a["dy"])
        return lambda: torch.nn.functional.layer_norm(x, (x.shape[-1],), g, b, 1e-5).backward(dy)
    F = torch.nn.functional
    if workload == "conv2d":
        x, w, b, dy = T(a["x"]), T(a["weight"]), T(a["bias"]), torch.tensor(a["dy"])
        return lambda: F.conv2d(x, w, b, padding=1).backward(dy)
    if workload == "maxpool2d":
        x, dy = T(a["x"]), torch.tensor(a["dy"])
        return lambda: F.max_pool2d(x, 2).backward(dy)
    if workload == "batchnorm2d":
        x, g, b, dy = T(a["x"]), T(a["gamma"]), T(a["beta"]), torch.tensor(a["dy"])
        rm, rv = torch.tensor(a["running_mean"]), torch.tensor(a["running_var"])
        return lambda: F.batch_norm(x, rm, rv, g, b, training=True).backward(dy)
    if workload == "lstm":
        D, H = a["W_ih"].shape[1], a["W_hh"].shape[1]
        lstm = torch.nn.LSTM(D, H).to(getattr(torch, dtype))
        x, h0, c0, dhs = T(a["x"]), torch.tensor(a["h0"])[None], torch.tensor(a["c0"])[None], torch.tensor(a["dhs"])
        return lambda: lstm(x, (h0, c0))[0].backward(dhs)
    p = torch.nn.Parameter(torch.tensor(a["p"]))
    p.grad = torch.tensor(a["g"])
    try:
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
        opt.step()
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam([p], lr=1e-3, foreach=False)
    return opt.step


def generate_time(cold: bool) -> float:
    """Seconds of ``symgrad generate`` for every built-in into a fresh folder, in a new process
    (cold: empty compile cache too)."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ)
        if cold:
            env["SYMGRAD_CACHE"] = os.path.join(d, "cache")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "symgrad.cli", "generate", "--out", os.path.join(d, "g")],
                       check=True, env=env, capture_output=True)
        return time.perf_counter() - t0


def run(workloads=None, dtypes=("float32", "float64"), threads=2, repeats=5, small=False, progress=None,
        with_generate=True, torch_first=True):
    """``torch_first``: import torch before anything else, as in a researcher's process: its OpenMP
    runtime (torch's own libgomp) starts with its own wait policy and runs the C kernels too. False:
    torch comes in only with the first torch contender, after the probes and the first C kernel have
    loaded the system's libgomp with the policy ``build.load_library`` sets, which torch then shares
    (a process that imports symgrad first, or no torch at all for the C columns)."""
    if torch_first:
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
    workloads = list(workloads or SIZES)
    sizes = SMALL if small else SIZES
    settle_heap()

    def bounds():
        return (triad_bandwidth(2 ** 16 if small else 2 ** 24), sgemm_peak(256 if small else 2048),
                fma_peak(200_000 if small else 20_000_000))
    (bw, bw_how), peak, fma = bounds()
    results, nbytes = [], {}
    jobs = [(w, dt) for w in workloads for dt in dtypes]
    for w, dt in (progress(jobs) if progress else jobs):
        a = _args(w, sizes[w], dt, np.random.default_rng(0))
        r = Result(w, dt)
        runs = contenders(w, a, dt, threads)
        t = (torch_step(w, sizes[w], dt, np.random.default_rng(0), threads) if w in STEP_BUILDERS
             else _torch_interop(a, dt, threads) if w in INTEROP else _torch_runner(w, a, dt, threads))
        if t is not None:
            runs["torch"] = t
        r.times = alternating_medians(runs, repeats, gap=0.0 if small else GAP, block=0.005 if small else 0.05)
        nbytes[r.workload, r.dtype] = _bytes(w, sizes[w], np.dtype(dt).itemsize)
        r.flops = flops(w, sizes[w])
        results.append(r)
    # The bounds again after the workloads, the better of each pair kept: a bound is the best this
    # machine does, and one measurement in a busy moment understates it (a run's FMA bound read 120
    # GFLOP/s, below the 147 its C dense layer reached, where the runs beside it read 230-232)
    (bw2, how2), peak2, fma2 = bounds()
    if bw2 > bw:
        bw, bw_how = bw2, how2
    peak = max(peak, peak2)
    fma = max(fma, fma2) if fma and fma2 else fma or fma2
    for r in results:
        r.bound = nbytes[r.workload, r.dtype] / bw if nbytes[r.workload, r.dtype] else None
    gen = (generate_time(True), generate_time(False)) if with_generate else None
    order = "torch imported first" if torch_first else "torch imported after the kernels"
    return dict(results=results, bandwidth=bw, bandwidth_how=bw_how, generate=gen,
                machine=f"{machine(threads)}; {order} ({openmp_info(torch_first)})",
                sizes=sizes, sgemm_peak=peak, fma_peak=fma, blas=blas_info(), stream=stream_info())


def stream_info() -> str:
    """The C kernels' streaming-store threshold (symgrad/targets/c/streaming.py), as this run's
    kernels were compiled with it."""
    from ..errors import CompilerError
    from ..targets.c.streaming import stream_bytes
    try:
        n = stream_bytes()
    except (CompilerError, OSError, ValueError) as e:   # no compiler (no C columns either), a bad setting
        return f"streaming stores: unknown ({e})"
    return "streaming stores: never" if n < 0 else f"streaming stores from {n / 2 ** 20:g} MiB moved"


def openmp_info(torch_first: bool) -> str:
    """Which libgomp ran the kernels (one per process: torch's, or the system's that torch then shares)
    and with what wait settings: those ``build.load_library`` set (or the user's), which a libgomp that
    started before them (torch's, imported first) did not read unless the user set them beforehand."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f if "libgomp" in l})
    except OSError:
        libs = []
    who = ", ".join("torch's libgomp" if "torch" in p else os.path.basename(p) for p in libs) or "no libgomp"
    if torch_first:
        return f"{who}, with the wait policy it started with"
    wait = ", ".join(f"{v}={os.environ[v]}" for v in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if v in os.environ)
    return f"{who}; {wait or 'no wait settings'}"


def machine(threads) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    vers = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    try:
        from importlib.metadata import version
        vers.append(f"torch {version('torch')}")
    except Exception:  # noqa: BLE001 - torch not installed
        pass
    return f"{os.cpu_count()} cores ({cpu}), {threads} threads; " + ", ".join(vers)


def table(report, markdown=False) -> str:
    cols = ["NumPy", "C", "C borrow", "hand NumPy", "torch"]
    lines = []
    if markdown:
        lines += ["| workload | dtype | " + " | ".join(f"{c} (ms)" for c in cols) + " | bandwidth bound (ms) |",
                  "|" + " --- |" * (len(cols) + 3)]
    else:
        lines.append(f"{'workload':<16} {'dtype':<8} " + " ".join(f"{c + ' ms':>14}" for c in cols)
                     + f" {'bound ms':>10}")
    for r in report["results"]:
        cells = [f"{r.times[c] * 1e3:.3g}" if c in r.times else "-" for c in cols]
        bound = f"{r.bound * 1e3:.2f}" if r.bound else "-"
        if markdown:
            lines.append(f"| {r.workload} | {r.dtype} | " + " | ".join(cells) + f" | {bound} |")
        else:
            lines.append(f"{r.workload:<16} {r.dtype:<8} " + " ".join(f"{c:>14}" for c in cells) + f" {bound:>10}")
    lines.append("")
    lines += targets(report, markdown)
    if report["generate"]:
        cold, warm = report["generate"]
        lines.append(("- " if markdown else "") + f"symgrad generate (all built-ins): cold {cold:.1f} s, "
                     f"warm {warm:.1f} s (goal cold <= 10 s)")
    lines.append(("- " if markdown else "") + f"triad bandwidth {report['bandwidth'] / 1e9:.1f} GB/s "
                 f"({report['bandwidth_how']}); NumPy SGEMM peak {report['sgemm_peak'] / 1e9:.0f} GFLOP/s"
                 + (f", FMA bound {report['fma_peak'] / 1e9:.0f} GFLOP/s" if report.get("fma_peak") else "") + " "
                 f"(BLAS: {report['blas']}); {report['stream']}; {report['machine']}")
    return "\n".join(lines)


def targets(report, markdown=False) -> list[str]:
    by = {(r.workload, r.dtype): r for r in report["results"]}
    out = []
    for w, c, ref, goal in TARGETS:
        r = by.get((w, "float32"))
        if r is None or c not in r.times or ref not in r.times:
            continue
        ratio = r.times[c] / r.times[ref]
        mark = "met" if ratio <= goal else "MISSED"
        borrow = (f"; C borrow / {ref} = {r.times['C borrow'] / r.times[ref]:.2f}"
                  if c == "C" and "C borrow" in r.times else "")
        out.append(("- " if markdown else "") + f"{w} float32: {c} / {ref} = {ratio:.2f} (goal <= {goal}) {mark}"
                   + borrow)
    for r in report["results"]:
        if r.flops and r.dtype == "float32":
            rates = ", ".join(f"{c} {r.flops / r.times[c] / 1e9:.0f}" for c in ("C", "NumPy", "torch") if c in r.times)
            what = ("rate of the direct convolution's FLOPs (GFLOP/s; C's 3x3 products by Winograd F(2x2, 3x3) do "
                    "2.25x fewer)" if r.workload in WINDOWS else "GEMM rate (GFLOP/s)")
            fma = f", FMA bound {report['fma_peak'] / 1e9:.0f}" if report.get("fma_peak") else ""
            out.append(("- " if markdown else "") + f"{r.workload} float32 {what}: {rates} "
                       f"(NumPy SGEMM peak {report['sgemm_peak'] / 1e9:.0f}{fma})")
        if r.bound and "C" in r.times and r.dtype == "float32":
            frac = r.bound / r.times["C"]
            out.append(("- " if markdown else "") + f"{r.workload} float32: C reaches {frac:.0%} of the triad "
                       "bandwidth" + (f" (goal >= {BANDWIDTH_GOALS[r.workload]:.0%})"
                                      if r.workload in BANDWIDTH_GOALS else "")
                       + (f"; {r.bound / r.times['C borrow']:.0%} with borrow=True (no cache copies)"
                          if "C borrow" in r.times else ""))
    return out


def plot(report, path):
    """A bar chart of every contender's time relative to torch (or to hand NumPy without torch)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - optional extra
        from ..errors import SymgradError
        raise SymgradError("plotting needs matplotlib: pip install 'symgrad[plot]'") from e
    rs = report["results"]
    names = ["NumPy", "C", "hand NumPy", "torch"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.2
    for j, n in enumerate(names):
        vals = []
        for r in rs:
            ref = r.times.get("torch") or r.times.get("hand NumPy")
            vals.append(r.times[n] / ref if n in r.times else 0)
        ax.bar([i + j * width for i in range(len(rs))], vals, width, label=n)
    ax.set_xticks([i + 1.5 * width for i in range(len(rs))], [f"{r.workload}\n{r.dtype}" for r in rs])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("time relative to torch (log scale, lower is faster)")
    ax.set_title("symgrad kernels, forward+backward (Adam: one step)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
