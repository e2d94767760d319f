"""The C backend's memory pool (symgrad/targets/c/memory.py): large outputs reuse mapped memory, and
no block is handed out while anything can still reach it."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import symgrad
from symgrad.targets.c import memory
from symgrad.targets.c.memory import LARGE, Pool

ROWS = LARGE // (4 * 1024) + 1          # a float32 (ROWS, 1024) array is just over LARGE


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_a_dropped_block_is_reused_and_a_live_one_never():
    pool = Pool(1 << 30)
    a = pool.empty((ROWS, 1024), np.float32)
    a[:] = 1.0
    b = pool.empty((ROWS, 1024), np.float32)      # a is alive: a new block
    assert _address(a) != _address(b)
    b[:] = 2.0
    assert (a == 1.0).all()
    first = _address(a)
    del a
    c = pool.empty((ROWS, 1024), np.float32)      # a's block, no longer reachable
    assert _address(c) == first
    assert _address(c) % memory.SMALL_ALIGN == 0 and c.flags.writeable and c.flags.c_contiguous


def test_blocks_of_huge_arrays_sit_on_huge_page_boundaries_and_smaller_ones_on_64_kib():
    pool = Pool(1 << 30)
    rows = memory.HUGE // (4 * 1024) + 1
    huge, small = pool.empty((rows, 1024), np.float32), pool.empty((ROWS, 1024), np.float32)
    assert _address(huge) % memory.ALIGN == 0 and not huge.flags.owndata
    assert _address(small) % memory.SMALL_ALIGN == 0 and not small.flags.owndata
    del huge, small
    held = -(-(rows * 1024 * 4) // memory.ALIGN) * memory.ALIGN + -(-(ROWS * 1024 * 4) // memory.SMALL_ALIGN) * memory.SMALL_ALIGN
    assert pool.held == held


def test_a_view_or_a_tensor_keeps_the_block():
    pool = Pool(1 << 30)
    a = pool.empty((ROWS, 1024), np.float32)
    first = _address(a)
    view = a[3:, 5:]
    del a
    assert _address(pool.empty((ROWS, 1024), np.float32)) != first
    del view
    assert _address(pool.empty((ROWS, 1024), np.float32)) == first
    torch = pytest.importorskip("torch")
    a = pool.empty((ROWS, 1024), np.float32)
    first = _address(a)
    t = torch.from_numpy(a)
    del a
    gc.collect()
    b = pool.empty((ROWS, 1024), np.float32)
    assert _address(b) != first
    t.fill_(7.0)
    b.fill(3.0)
    assert bool((t == 7.0).all())


def test_small_arrays_and_a_zero_limit_use_numpy():
    pool = Pool(1 << 30)
    small = pool.empty((10, 10), np.float64)
    assert small.flags.owndata
    off = Pool(0)
    big = off.empty((ROWS, 1024), np.float32)
    assert big.flags.owndata


def test_the_pool_keeps_no_more_than_its_limit():
    size = -(-ROWS * 1024 * 4 // memory.SMALL_ALIGN) * memory.SMALL_ALIGN
    pool = Pool(size)                              # room for one free block
    a, b = pool.empty((ROWS, 1024), np.float32), pool.empty((ROWS, 1024), np.float32)
    del a, b
    assert pool.held == size
    assert pool.release() == size and pool.held == 0


def test_threads_allocating_and_dropping_never_share_a_block():
    pool = Pool(1 << 30)
    errors = []

    def work(tag: float):
        for _ in range(20):
            a = pool.empty((ROWS, 1024), np.float32)
            a.fill(tag)
            if not (a[::997] == tag).all():
                errors.append(tag)
            del a

    threads = [threading.Thread(target=work, args=(float(i),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("make", [lambda a: a, lambda a: a[:, ::2], lambda a: a.T])
def test_copy_equals_the_array_and_is_contiguous(make):
    a = make(np.arange(ROWS * 1024 * 2, dtype=np.float32).reshape(ROWS, 2048))
    b = memory.copy(a)
    assert b.flags.c_contiguous and not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, b)


FORK_SCRIPT = """
import os, numpy as np
from symgrad.targets.c import memory
a = np.arange(memory.LARGE // 4 + 4096, dtype=np.float32).reshape(-1, 1024)
assert (memory.copy(a) == a).all()            # the parent's copying threads exist now
pid = os.fork()
if pid == 0:
    os._exit(0 if (memory.copy(a) == a).all() else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_copy_works_in_a_forked_child_after_the_parent_used_its_threads():
    # in a fresh interpreter: this one has JAX's and torch's threads, which fork does not mix with
    r = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "child 0"


def test_kernel_outputs_reuse_memory_and_the_cache_is_not_copied():
    k = symgrad.load("layernorm", backend="c", dtype="float32")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, 1024), dtype=np.float32)
    g, b = np.ones(1024, np.float32), np.zeros(1024, np.float32)
    y, cache = k.forward(x, g, b)
    assert not cache["x"].flags.writeable and not np.shares_memory(cache["x"], x)
    dropped = {_address(y), _address(cache["x"])}   # the output and the cache's copy of x: same size
    ref = y.copy()
    del y, cache
    y2, cache2 = k.forward(x, g, b)
    assert _address(y2) in dropped                 # a dropped block's memory, mapped already
    assert _address(cache2["x"]) in dropped - {_address(y2)}
    np.testing.assert_array_equal(y2, ref)
    dx, _, _ = k.backward(cache2, np.ones_like(x))
    assert not np.shares_memory(dx, y2)


def test_a_bad_pool_size_is_an_error_naming_the_variable():
    env = dict(os.environ, SYMGRAD_POOL_BYTES="lots")
    r = subprocess.run([sys.executable, "-c", "import symgrad.targets.c.memory"], env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "SYMGRAD_POOL_BYTES" in r.stderr
