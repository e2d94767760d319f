"""Where the C backend's large arrays live: blocks of memory that stay mapped between calls.

A training loop allocates the same large outputs every step (LayerNorm's y and dx: 32 MB each at
8192 x 1024 float32) and drops them a step later. Fresh memory from the system is mapped page by page
on first touch, and the kernel zeroes every page it maps: measured with perf on
``symgrad.torch.Module("layernorm")`` at 8192 x 1024, ``clear_page_erms`` took 14% of the samples
and the step 12.9 ms, against 6.5 ms when the two outputs reuse memory already mapped (torch's
``nn.LayerNorm`` took 16-17 ms in the same process). So arrays of ``LARGE`` bytes and more come from
a pool, as torch's CUDA caching allocator does on the GPU. ``LARGE`` was 8 MiB at first; glibc maps
anything over its mmap threshold (128 KiB, rising with what was freed) fresh, and the LSTM's forward at
T32 N64 D256 H256 called alone in a loop (evaluation) took 3,900 page faults a call (15 MB of 2-8 MB
arrays): 13.5 ms, 9.6 ms with ``LARGE`` at 256 KiB (forward and backward in turn let glibc reuse the
memory: 26 ms both ways). Blocks under ``HUGE`` are rounded to 64 KiB, not to huge pages:

- ``empty(shape, dtype, populate=True)`` returns an ndarray on a block of the pool (a free block of
  the same rounded size, else a new block, from ``HUGE`` on 2 MiB-aligned and advised for huge pages,
  and unless
  ``populate`` is False, mapped at once with ``MADV_POPULATE_WRITE``; ``scratch`` passes False). The
  array's base is a small ctypes view of the block; when the last array (or tensor) that refers to
  it is gone, a ``weakref.finalize`` gives the block back to the pool.
  The memory is never handed out twice while anything can still reach it.
- The pool keeps at most ``limit`` bytes of free blocks (``SYMGRAD_POOL_BYTES``, default 1 GiB;
  0 turns the pool off) and at most ``PER_SIZE`` free blocks of one size; a block given back beyond
  that is freed. ``release()`` frees every free block now.
- Contents are undefined, as for ``np.empty``: every output is fully written by its kernel. The
  arrays do not own their data (``a.flags.owndata`` is False; ``a.resize`` refuses), like any view.
- ``copy(a)``: a copy of a large array on the pool, from ``HUGE`` on made by up to four threads
  (NumPy's copy loop releases the GIL): the cache's copy of a caller's 32 MB x took 2.3 ms on one thread, 1.25 ms on two.
"""
from __future__ import annotations

import ctypes
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

LARGE = 256 << 10        # bytes: smaller arrays come from NumPy's allocator
HUGE = 8 << 20           # bytes: blocks this large are huge-page aligned; copies this large use threads
ALIGN = 2 << 20          # a huge page
SMALL_ALIGN = 64 << 10   # the rounding of blocks under HUGE
PER_SIZE = 4
_MADV_HUGEPAGE = 14
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14


@lru_cache(maxsize=None)
def _madvise():
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return fn


def _limit_from_env() -> int:
    text = os.environ.get("SYMGRAD_POOL_BYTES", "").strip()
    if not text:
        return 1 << 30
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"SYMGRAD_POOL_BYTES must be a whole number of bytes, got {text!r}") from None
    if value < 0:
        raise ValueError(f"SYMGRAD_POOL_BYTES must be >= 0, got {value}")
    return value


class Pool:
    """Free blocks by size; thread-safe (a finalizer may run in any thread)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._free: dict[int, list] = {}
        self._held = 0              # bytes in free blocks
        self._lock = threading.Lock()

    def empty(self, shape, dtype, populate: bool = True) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = _count(shape) * dtype.itemsize
        if nbytes < LARGE or self.limit == 0:   # (np.empty also raises on a bad shape)
            return np.empty(shape, dtype)
        align = ALIGN if nbytes >= HUGE else SMALL_ALIGN
        size = -(-nbytes // align) * align
        with self._lock:
            blocks = self._free.get(size)
            block = blocks.pop() if blocks else None
            if block is not None:
                self._held -= size
        if block is None:
            block = _new_block(size, populate, align)
        view = (ctypes.c_char * nbytes).from_address(block[1])
        weakref.finalize(view, self._give_back, size, block).atexit = False
        return np.frombuffer(view, dtype).reshape(shape)

    def _give_back(self, size: int, block) -> None:
        with self._lock:
            blocks = self._free.setdefault(size, [])
            if len(blocks) < PER_SIZE and self._held + size <= self.limit:
                blocks.append(block)
                self._held += size

    def release(self) -> int:
        """Free every free block; returns the bytes released."""
        with self._lock:
            held, self._free, self._held = self._held, {}, 0
        return held

    @property
    def held(self) -> int:
        return self._held


def _count(shape) -> int:
    """Elements of ``shape`` (an int or a sequence of them), without allocating: ``np.empty`` of a large
    array only to read its size mapped and unmapped it, or moved glibc's heap top, on every call (an
    11 MB scratch: a TLB shootdown to the other core per call, 12% of a small conv2d's forward)."""
    if isinstance(shape, (tuple, list)):
        n = 1
        for d in shape:
            n *= int(d)
        return n
    return int(shape)


def _new_block(size: int, populate: bool, align: int = ALIGN):
    """(owner, address): ``size`` bytes at an ``align`` boundary (a 2 MiB one is advised for huge
    pages), mapped now if ``populate`` (best effort; a scratch buffer is not: a kernel may touch only
    part of it)."""
    raw = np.empty(size + align, np.uint8)
    address = raw.ctypes.data + (-raw.ctypes.data) % align
    fn = _madvise()
    if fn is not None:   # errors (an older kernel, no huge pages) only cost the mapping at first touch
        if align == ALIGN:
            fn(address, size, _MADV_HUGEPAGE)
        if populate:
            fn(address, size, _MADV_POPULATE_WRITE)
    return raw, address


_copiers: list = [None]   # a ThreadPoolExecutor, made at first use and again in a forked child


def _threads() -> int:
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:
        return max(1, min(4, os.cpu_count() or 1))


def copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a``; a large one on the pool, split over threads by rows."""
    if a.nbytes < LARGE or a.ndim == 0:
        return np.array(a, order="C")
    out = POOL.empty(a.shape, a.dtype)
    parts = min(_threads(), a.shape[0])
    if parts < 2 or a.nbytes < HUGE:
        np.copyto(out, a)
        return out
    if _copiers[0] is None:
        _copiers[0] = ThreadPoolExecutor(parts - 1, thread_name_prefix="symgrad-copy")
    cuts = [a.shape[0] * i // parts for i in range(parts + 1)]
    futures = [_copiers[0].submit(np.copyto, out[lo:hi], a[lo:hi]) for lo, hi in zip(cuts[1:-1], cuts[2:])]
    np.copyto(out[:cuts[1]], a[:cuts[1]])
    for f in futures:
        f.result()
    return out


if hasattr(os, "register_at_fork"):   # the executor's threads do not exist in a forked child
    os.register_at_fork(after_in_child=lambda: _copiers.__setitem__(0, None))


POOL = Pool(_limit_from_env())
empty = POOL.empty
release = POOL.release


def scratch(shape, dtype) -> np.ndarray:
    """A kernel's scratch buffer: from the pool, its pages mapped by the kernel as it touches them; a
    small one straight from NumPy. (The generated call path decides the size inline and calls this only
    for a large one: a second Python frame cost the small dense layer's f+b 0.8 us, 4%.)"""
    return POOL.empty(shape, dtype, False)
