"""Data-parallel training with symgrad kernels: torch.distributed moves the gradients, symgrad's
generated C kernels compute them (forward, backward) and apply them (the optimizer step).

The model is two symgrad.torch.Modules (dense_tanh, dense) and the loss symgrad.torch.function("mse");
the optimizer is symgrad.torch.Optimizer("adam"). Under DistributedDataParallel every process
computes the gradient of its own slice of the batch and DDP averages them (gloo all-reduce), so
with equal slices each step is the step of one process on the whole batch. The script checks that:
after training it trains a single-process copy on the whole batch and compares the parameters.

One machine, processes spawned here (gloo on 127.0.0.1):
    python examples/ddp_train.py --procs 2 --steps 20

Many machines: the same file under torchrun, which sets RANK/WORLD_SIZE/MASTER_ADDR for each process
(run on every machine, with the first machine's address):
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
        examples/ddp_train.py --steps 20
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import symgrad.torch as sgt

N, D, H, M = 64, 8, 16, 3          # whole batch, input features, hidden units, outputs


def make_model(backend: str) -> torch.nn.Module:
    torch.manual_seed(0)           # the same initial parameters in every process
    return torch.nn.Sequential(sgt.Module("dense_tanh", D=D, M=H, backend=backend, dtype=torch.float64),
                               sgt.Module("dense", D=H, M=M, backend=backend, dtype=torch.float64))


def make_batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    y = torch.sin(x[:, :M] * 2) + 0.1 * torch.randn(N, M, generator=g, dtype=torch.float64)
    return x, y


def train(model, x, y, steps: int, backend: str, lr: float):
    mse = sgt.function("mse", backend=backend)
    opt = sgt.Optimizer("adam", model.parameters(), backend=backend, lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = mse(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def worker(rank: int, world: int, args, init_method: str | None = None):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=args.timeout))
    try:
        if N % world:
            raise SystemExit(f"--procs: the batch of {N} rows must split evenly, got {world} processes")
        model = DistributedDataParallel(make_model(args.backend))
        x, y = make_batch()
        rows = slice(rank * N // world, (rank + 1) * N // world)     # this process's slice of the batch
        losses = train(model, x[rows], y[rows], args.steps, args.backend, args.lr)
        if rank == 0:
            report(model.module, losses, args)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def report(model, losses, args):
    """Train one process on the whole batch and compare its parameters with the data-parallel ones."""
    single = make_model(args.backend)
    train(single, *make_batch(), args.steps, args.backend, args.lr)
    worst = max(float(((a - b).abs().max() / b.abs().max()).detach())
                for a, b in zip(model.parameters(), single.parameters()))
    print(f"{dist.get_world_size()} processes, {args.steps} steps: loss {losses[0]:.6f} -> {losses[-1]:.6f} "
          f"(slice of rank 0); max relative difference to one process on the whole batch: {worst:.3e}")
    if worst > args.tolerance:
        print(f"FAILED: difference above {args.tolerance:g}", file=sys.stderr)
        os._exit(1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=2, help="processes to spawn on this machine (ignored under torchrun)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--backend", default="c", help="symgrad backend: c or numpy")
    ap.add_argument("--tolerance", type=float, default=1e-12)
    ap.add_argument("--timeout", type=float, default=120, help="seconds a process waits for the others")
    args = ap.parse_args(argv)
    if "RANK" in os.environ:                        # started by torchrun: one process of many
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args, "env://")
        return
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")   # spawned here: loopback only
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # rendezvous through a file: a port picked by binding port 0 and releasing it can be taken by
    # another process before the store binds it (one run of the suite ended with rank 1 aborted)
    with tempfile.TemporaryDirectory(prefix="symgrad-ddp-") as tmp:
        init = "file://" + os.path.join(tmp, "rendezvous")
        mp.spawn(worker, args=(args.procs, args, init), nprocs=args.procs, join=True)


if __name__ == "__main__":
    main()
