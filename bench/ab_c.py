"""Benchmark (not a test): two builds of one C kernel, alternated in one process.

A change to the C templates or helpers moves a kernel by a few percent: less than this shared
machine's drift between two processes (the LSTM's C time moved 22.8-25.6 ms across three
`symgrad bench` runs of the same code). Here both libraries run in the same process, on the same
arrays, in alternating blocks (old new, new old, ...; symgrad.bench.timing's idle gap and warm-up
calls before each), so the drift cancels out of the ratio: it prints the median of new / old over
the pairs of blocks and the quartiles. With --torch, torch's time in the same rounds too (C / torch
as `symgrad bench` reports it, for both builds).

The old build comes from another checkout (`git worktree add /tmp/old <rev>`), compiled there by its
own `symgrad.load` in a subprocess (same build cache); both libraries are then called through this
checkout's Python call path, so the change under test must keep the kernel's C functions and their
arguments (a template, a helper, a compiler flag: not a new argument). A checkout older than fd21f76
builds its library without the tuple entry points (symgrad/targets/c/shims.py), so its kernels are
called the slower way, about 0.75 us more per call: nothing against these workloads' milliseconds. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are unset for the measurement, as `symgrad bench` does (--keep-openblas-env keeps
them). Workloads: the single kernels of `symgrad bench` (dense, layernorm, lstm, conv2d, maxpool2d,
batchnorm2d), at its sizes, float32, forward + backward of the default call (--borrow: borrow=True).

    PYTHONPATH=. python bench/ab_c.py lstm --old /tmp/old [--new .] [--pairs 12] [--torch]

Used for the eighth session's changes (docs/bench-log.md): LSTM new/old 0.972 for the product kernel's
loop order, where eight alternating pairs of processes had ranged from 0.94 to 1.07.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

WORKLOADS = ("dense", "layernorm", "lstm", "conv2d", "maxpool2d", "batchnorm2d")


def library(checkout: Path, workload: str) -> str:
    """The shared library of ``workload``'s float32 C kernel as ``checkout`` builds it."""
    code = ("import symgrad; k = symgrad.load(%r, backend='c', dtype='float32'); print(k.module.lib._name)"
            % workload)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=checkout)
    if r.returncode != 0:
        sys.exit(f"building {workload} in {checkout} failed:\n{r.stderr}")
    return r.stdout.strip().splitlines()[-1]


def measure(args) -> None:
    import numpy as np
    import torch  # noqa: F401  (imported first, as in symgrad bench: the user's process has it)

    import symgrad
    from symgrad.bench import suite, timing
    from symgrad.runtime import LoadedKernel
    from symgrad.targets.c.runtime import load_library

    a = suite._args(args.workload, suite.SIZES[args.workload], "float32", np.random.default_rng(0))
    base = symgrad.load(args.workload, backend="c", dtype="float32")
    runners = {}
    for name, path in (("old", args.old_lib), ("new", args.new_lib)):
        try:
            k = LoadedKernel(base.spec, "c", base.dtype, type(base.module)(base.spec, load_library(path)))
        except AttributeError as e:   # ctypes: a C function this checkout's call path binds is missing
            sys.exit(f"the {name} build lacks a C function this checkout calls ({e}): the two builds must "
                     "have the same C functions and arguments")
        runners[name] = suite._layer_runner(k, args.workload, a, borrow=args.borrow)
    if args.torch:
        runners["torch"] = suite._torch_runner(args.workload, a, "float32", args.threads)

    def block(name):
        time.sleep(timing.GAP)
        return timing.median_time(runners[name], args.repeats, warmup=timing.WARM)

    ratios, vs_torch = [], {"old": [], "new": []}
    for i in range(args.pairs):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        t = {n: block(n) for n in order}
        if args.torch:
            t["torch"] = block("torch")
            for n in ("old", "new"):
                vs_torch[n].append(t[n] / t["torch"])
        ratios.append(t["new"] / t["old"])
        print(f"pair {i + 1}: " + ", ".join(f"{n} {v * 1e3:.3f} ms" for n, v in t.items()), flush=True)
    q = np.quantile(ratios, [0.25, 0.5, 0.75])
    print(f"{args.workload} new / old: median {q[1]:.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}) over {len(ratios)} pairs")
    if args.torch:
        print(f"C / torch: old {np.median(vs_torch['old']):.3f}, new {np.median(vs_torch['new']):.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload", choices=WORKLOADS)
    ap.add_argument("--old", type=Path, required=True, help="checkout of the old code")
    ap.add_argument("--new", type=Path, default=Path("."), help="checkout of the new code (default: here)")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=8, help="timed calls per block (median)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--borrow", action="store_true", help="time forward(..., borrow=True)")
    ap.add_argument("--torch", action="store_true", help="time torch in the same rounds")
    ap.add_argument("--keep-openblas-env", action="store_true")
    ap.add_argument("--old-lib", help=argparse.SUPPRESS)
    ap.add_argument("--new-lib", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.old_lib and args.new_lib:   # the child: measure
        return measure(args)
    old, new = library(args.old.resolve(), args.workload), library(args.new.resolve(), args.workload)
    if old == new:
        sys.exit(f"both checkouts build the same library ({old}): nothing to compare")
    print(f"old: {old}\nnew: {new}", flush=True)
    # BLAS and OpenMP read their settings when they load: measure in a child with them set
    from symgrad.bench.timing import measuring_env
    env = {**measuring_env(args.threads, args.keep_openblas_env), "PYTHONPATH": str(args.new.resolve())}
    child = [sys.executable, __file__, *sys.argv[1:], "--old-lib", old, "--new-lib", new]
    sys.exit(subprocess.run(child, env=env).returncode)


if __name__ == "__main__":
    main()
