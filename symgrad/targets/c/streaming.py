"""Streaming stores: from what size they pay on this machine, measured once and compiled in.

A generated pass that writes an output nothing in its function reads again can write it with
streaming (non-temporal) stores: a piece of the row computed into a buffer in L1, then written past
the caches (``sg_stream_*`` in the C helpers; which arrays: ``Fusion.streamable``). An ordinary store
to a line that is not in the cache first reads the line from memory, so a pass that reads one array
and writes two moves four arrays' worth; streamed, three. But a streamed array is no longer in the
cache for its next reader, so below some size streaming is slower, and that size is the machine's:

- a 2-core Xeon VM (AVX-512; 2 MiB of L2 a core, a shared L3 that sysconf reports as 480 MiB):
  LayerNorm forward+backward float32 at 8192x1024 8.7 -> 7.0 ms streamed, 4096x1024 3.8 -> 3.5,
  2048x1024 1.84 -> 1.78, but 1024x1024 0.81 -> 0.96 and 256x1024 0.21 -> 0.31 (a C harness);
- a 2-core AMD EPYC VM: an array read right after it was written ran at 57-92 GB/s up to 32 MiB and
  at 20-31 GB/s after streaming stores (docs/bench-log.md, eighth session): streaming lost at every size
  the benchmarks use.

So no constant serves, and the cache size the system reports does not say where the crossover lies
(a VM shares its L3). ``stream_bytes()`` measures it: a compiled probe (``templates/stream_probe.c.j2``)
runs, on the kernels' OpenMP threads, a pass of a LayerNorm forward's shape (read x; write y = 2x + 1
and a copy of x) followed by a pass that reads y and the copy back (the next layer, the backward: the
reader that pays for a streamed array no longer being in the cache), with ordinary and with streaming
stores, at 256 KiB to 32 MiB an array. The threshold is the memory the first pass moves (its three
arrays) at the smallest size from which streaming takes at most ``GAIN`` of the ordinary time at that
size and at every larger one (-1, never, when it does not at the largest). Six runs on the Xeon
above, with and without torch in the process, found 24, 48 or 96 MiB (streaming took 0.73-0.79 of the
ordinary time at 96 MiB, 0.83-0.90 at 48, 0.92-1.24 at 24, 1.4-4x below), where LayerNorm, whose
passes move 48 MiB at 4096x1024, gains from that size on: the probe's reader, which always comes at
once, makes it err towards not streaming. The result is kept in the compile cache
(``stream-<key>.json``, per compiler, CPU and thread count: well under a second, once), and
``symgrad.load`` compiles every kernel with ``-DSYMGRAD_STREAM_BYTES=<threshold>`` (``flags``); a
kernel then streams in a call whose streaming loops move at least that many bytes (``sg_streams``;
LayerNorm at 8192x1024 float32: forward reads x and writes y and the cache's copy of x, 96 MiB;
backward 96 MiB too). The written values are the same either way.

``SYMGRAD_STREAM_BYTES`` sets the threshold instead: a number of bytes (0: whenever a kernel can),
or ``off`` (never). A C build of the generated files streams only with ``-DSYMGRAD_STREAM_BYTES=N``.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import tempfile
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

ENV = "SYMGRAD_STREAM_BYTES"
MAX_ROWS = 8192      # the probe's largest arrays: 8192 rows of 1024 floats, 32 MiB
REPS = 6             # passes per size and store kind (after one warm-up), fastest kept
GAIN = 0.95          # streaming counts as faster at a size when it takes at most this fraction


def parse(text: str) -> int:
    """The threshold ``SYMGRAD_STREAM_BYTES`` names: bytes >= 0, or -1 for ``off``/``never``/``-1``."""
    t = text.strip().lower()
    if t in ("off", "never", "none", "-1"):
        return -1
    try:
        n = int(t)
    except ValueError:
        n = -2
    if n < 0:
        raise ValueError(f"{ENV}={text!r}: expected a number of bytes (0 or more) or 'off'")
    return n


def crossover(table) -> int:
    """From rows ``(bytes moved, ordinary seconds, streaming seconds)`` in ascending size: the bytes
    of the smallest size from which streaming takes at most ``GAIN`` of the ordinary time at that size
    and at every larger one; -1 when it does not at the largest."""
    best = -1
    for moved, plain, stream in sorted(table, reverse=True):
        if not stream <= GAIN * plain:
            break
        best = int(moved)
    return best


def _key() -> str:
    from .build import cpu_id, compiler, extra_flags
    h = hashlib.sha256()
    for part in (compiler()[1], cpu_id(), *extra_flags(), os.environ.get("OMP_NUM_THREADS", ""),
                 str(os.cpu_count()), _source()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:20]


@lru_cache(maxsize=None)
def _source() -> str:
    from ...codegen.render import render
    from .context import HELPERS
    helpers = {h: False for h in HELPERS} | {"stream": True}
    return render("symgrad.targets.c", "stream_probe.c.j2", ctx={"helpers": helpers})


def measure(max_rows: int = MAX_ROWS, reps: int = REPS) -> list[tuple[int, float, float]]:
    """Run the probe: ``[(bytes its pass moves, ordinary seconds, streaming seconds)]`` per size."""
    from .build import build, load_library
    lib = load_library(build("sg_stream_probe", {"sg_stream_probe.c": _source()}))
    fn = lib.sg_stream_probe
    fn.argtypes = [ctypes.c_int64, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    fn.restype = ctypes.c_int
    out = (ctypes.c_double * (4 * 32))()
    n = fn(max_rows, reps, out)
    if n < 0:
        raise MemoryError("the streaming-store probe could not allocate its arrays")
    return [(int(out[4 * i + 1]), out[4 * i + 2], out[4 * i + 3]) for i in range(n)]


def cache_file() -> Path:
    from .build import cache_dir
    return cache_dir() / f"stream-{_key()}.json"


@lru_cache(maxsize=None)
def stream_bytes() -> int:
    """This machine's threshold (see the module docstring): ``SYMGRAD_STREAM_BYTES``, else the
    measurement kept in the compile cache, else a new measurement, kept there."""
    env = os.environ.get(ENV, "")
    if env.strip():
        return parse(env)
    path = cache_file()
    found = _kept(path)
    if found is not None:
        return found
    with _locked(path):   # one process measures (two at once would measure each other); the rest read it
        found = _kept(path)
        if found is None:
            found = _measure_and_keep(path)
    return found


def _kept(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path``'s ``.lock`` file while the block runs, the file removed after it
    (none where the file or ``fcntl`` is not available: then two first processes may both measure,
    and the last one's result is kept; so may one that opened the file just as it was removed)."""
    lock = path.with_suffix(".lock")
    try:
        import fcntl
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a")
    except (ImportError, OSError):
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            try:
                lock.unlink()
            except OSError:
                pass


def _measure_and_keep(path: Path) -> int:
    table = measure()
    found = crossover(table)
    record = {"bytes": found, "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "table": [{"bytes_moved": b, "ordinary_s": p, "streaming_s": s} for b, p, s in table]}
    tmp = None
    try:   # written whole, then renamed into place: a reader never sees half of it
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".stream-", suffix=".json.tmp", dir=str(path.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass   # an unwritable cache: build() says so; measured again next time
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return found


def flags() -> tuple[str, ...]:
    """The compile flag of the threshold, none when kernels never stream, or when the probe cannot be
    compiled or run (the kernel's own build then says what is wrong with the compiler; without the
    probe's 96 MiB the kernels run without streaming)."""
    from ...errors import CompilerError
    try:
        n = stream_bytes()
    except (CompilerError, MemoryError, OSError):
        return ()
    return (f"-DSYMGRAD_STREAM_BYTES={n}",) if n >= 0 else ()
