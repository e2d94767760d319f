"""Compiling generated C kernels into a cached shared library.

``build(name, files)`` compiles ``NAME.c`` (+ ``NAME.h``) with the system C compiler
(``$CC``, else ``cc``/``gcc``/``clang``): ``-O3 -march=native -std=c99 -fno-math-errno -fno-trapping-math -fPIC
-shared``;
``-fopenmp`` and ``-mprefer-vector-width=512`` when the compiler supports them; and CBLAS when a BLAS
library is found (``blas()``). The library is cached in ``$SYMGRAD_CACHE`` (default
``~/.cache/symgrad``) under a hash of the sources, the flags, the compiler's version and the CPU's
flags; it is built into a temporary file and renamed into place, so two processes may build at once
and a killed compiler never leaves a broken library behind.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from ...codegen.render import pid_alive
from ...errors import CompilerError

# -fno-math-errno: no errno to set, so sqrt and friends vectorize. -fno-trapping-math: no floating-point
# trap is ever enabled, so GCC may evaluate both arms of a select like sigmoid's `z >= 0 ? s : e * s` or
# tanh's `|x| < 0.625 ? small : big` in every lane and blend (Clang's default). Without it GCC if-converts
# them into masked copies of each arm: the LSTM forward's gate pass had three masked divisions per sigmoid
# (30 vdivps in the loop, 10 with the flag; 1.27 -> 1.06 ms for its 32 steps on one thread) and the LSTM
# T32 N64 D256 H256 forward+backward measured 26.1-26.9 -> 25.4-25.9 ms (alternating processes). Neither
# flag changes a computed value: the kernels read no errno and no floating-point exception flag. The
# generated Makefile and CMakeLists.txt compile with the same MATH_FLAGS.
MATH_FLAGS = ("-fno-math-errno", "-fno-trapping-math")
BASE_FLAGS = ["-O3", "-std=c99", *MATH_FLAGS, "-fPIC", "-shared"]
INSTALL_HINT = ("install a C compiler (Debian/Ubuntu: `apt-get install gcc`; macOS: `xcode-select --install`) "
                "or set CC to one")


def cache_dir() -> Path:
    d = os.environ.get("SYMGRAD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "symgrad")
    return Path(d)


@lru_cache(maxsize=None)
def compiler() -> tuple[str, str]:
    """(path, version line) of the C compiler; CompilerError when there is none."""
    names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for n in names:
        path = shutil.which(n)
        if path:
            try:
                out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.returncode == 0:
                return path, out.stdout.strip()
    raise CompilerError(f"no working C compiler found (tried {', '.join(names)}): {INSTALL_HINT}")


def _try(flags: list[str], src: str = "int sg_probe(void) { return 0; }\n") -> bool:
    cc, _ = compiler()
    with tempfile.TemporaryDirectory(prefix="symgrad-probe-") as d:
        c = Path(d) / "probe.c"
        c.write_text(src)
        r = subprocess.run([cc, *BASE_FLAGS, *flags, str(c), "-o", str(Path(d) / "probe.so")],
                           capture_output=True, text=True, timeout=120)
        return r.returncode == 0


@lru_cache(maxsize=None)
def extra_flags() -> tuple[str, ...]:
    """-march=native (with -mprefer-vector-width=512) and -fopenmp, each only when the compiler accepts
    it. GCC's -march=native on an AVX-512 machine still vectorizes with 256-bit registers; 512 measured
    on the bench at N32 C64 32x32: max-pooling 55% -> 58-61% of the triad bound, BatchNorm2d 81% ->
    89%, LSTM C / torch 1.05 -> 1.03; the small per-call workloads unchanged (3 runs each way)."""
    out = []
    if _try(["-march=native"]):
        out.append("-march=native")
        if _try(["-march=native", "-mprefer-vector-width=512"]):
            out.append("-mprefer-vector-width=512")
    if _try(["-fopenmp"], "#include <omp.h>\nint sg_probe(void) { return omp_get_max_threads(); }\n"):
        out.append("-fopenmp")
    return tuple(out)


@lru_cache(maxsize=None)
def blas() -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """(compile flags, link flags, description) for CBLAS, or empty flags and "loops".

    Looks first for the BLAS NumPy itself runs, as threadpoolctl finds it among the loaded libraries
    (the wheel's ``libscipy_openblas64_``, symbols ``scipy_cblas_dgemm64_`` with 64-bit ints), so the
    kernels share NumPy's BLAS, its core type and its thread pool; then a system
    ``libopenblas``/``libcblas``. ``SYMGRAD_BLAS=none`` forces the portable loops.
    """
    if os.environ.get("SYMGRAD_BLAS", "").lower() in ("none", "0", "off", "loops"):
        return (), (), "loops (SYMGRAD_BLAS=none)"
    for so in numpy_blas_files():
        try:
            lib = ctypes.CDLL(so)
        except OSError:
            continue
        for sfx, itype in (("64_", "int64_t"), ("", "int")):
            if hasattr(lib, f"scipy_cblas_dgemm{sfx}") and hasattr(lib, f"scipy_cblas_sgemm{sfx}"):
                cflags = ("-DSYMGRAD_CBLAS", f"-DSYMGRAD_BLAS_INT={itype}",
                          f"-DSYMGRAD_CBLAS_SGEMM=scipy_cblas_sgemm{sfx}",
                          f"-DSYMGRAD_CBLAS_DGEMM=scipy_cblas_dgemm{sfx}")
                for setter, getter in ((f"scipy_openblas_set_num_threads{sfx}", f"scipy_openblas_get_num_threads{sfx}"),
                                       ("openblas_set_num_threads", "openblas_get_num_threads")):
                    # one-thread BLAS inside our OpenMP team: the thread count is global in this
                    # pthreads build (openblas_set_num_threads_local changes nothing: measured, two
                    # OpenMP threads' calls still went to BLAS's own threads, 332 us a step against
                    # 191 with the global count at 1)
                    if hasattr(lib, setter) and hasattr(lib, getter):
                        cflags += (f"-DSYMGRAD_BLAS_SET_THREADS={setter}", f"-DSYMGRAD_BLAS_GET_THREADS={getter}")
                        break
                return cflags, (so, f"-Wl,-rpath,{Path(so).parent}"), f"NumPy's OpenBLAS ({Path(so).name})"
    for name in ("openblas", "cblas", "blas"):
        found = ctypes.util.find_library(name)
        if not found:
            continue
        try:
            lib = ctypes.CDLL(found)
        except OSError:
            continue
        if hasattr(lib, "cblas_dgemm") and hasattr(lib, "cblas_sgemm"):
            return ("-DSYMGRAD_CBLAS",), (f"-l{name}",), f"system {found}"
    return (), (), "loops (no CBLAS library found)"


def numpy_blas_files() -> list[str]:
    """Paths of the BLAS libraries NumPy has loaded (threadpoolctl), else the wheel's bundled ones."""
    import numpy
    try:
        from threadpoolctl import threadpool_info
        found = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        found = []
    libs = Path(numpy.__file__).resolve().parent.parent / "numpy.libs"
    return found + [f for f in sorted(glob.glob(str(libs / "libscipy_openblas*.so*"))) if f not in found]


def cpu_id() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return next((l for l in f if l.startswith(("flags", "Features"))), "")
    except OSError:
        import platform
        return platform.processor() + platform.machine()


def _digest(path: Path) -> str | None:
    """``sha256 size`` of a file, None when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return f"{hashlib.sha256(data).hexdigest()} {len(data)}"


def verified(target: Path) -> bool:
    """Whether the cached library is exactly what its build wrote: its size and hash match the
    ``.sha256`` file written beside it after the compiler succeeded (a truncated copy, a killed
    write or a foreign file of the same name is rebuilt instead of being loaded: loading a
    truncated library can kill the interpreter with SIGBUS)."""
    try:
        want = target.with_name(target.name + ".sha256").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return want == _digest(target)


def remove_stale_temporaries(folder: Path, pattern: str, field: int):
    """Delete temporaries ``pattern`` whose ``field``-th dash-separated part is the process id of a
    build that is gone (killed while the compiler ran); those of running builds stay."""
    for p in folder.glob(pattern):
        parts = p.name.split("-")
        pid = int(parts[field]) if len(parts) > field + 1 and parts[field].isdigit() else None
        if pid is not None and not pid_alive(pid):
            try:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink()
            except OSError:
                pass


def build(name: str, files: dict[str, str], defines: tuple[str, ...] = ()) -> Path:
    """Compile ``files`` (file name -> text; ``NAME.c`` among them) into a cached shared library.

    ``defines``: more compile flags (the kernels': this machine's streaming-store threshold,
    ``streaming.flags``). The library is built into a temporary file, its digest written beside it,
    then both renamed into place; a cached library whose digest does not match is rebuilt
    (``verified``)."""
    cc, version = compiler()
    cflags, ldflags, _ = blas()
    flags = [*BASE_FLAGS, *extra_flags(), *cflags, *defines]
    h = hashlib.sha256()
    for part in [version, cpu_id(), *flags, *ldflags] + [f"{k}\0{v}" for k, v in sorted(files.items())]:
        h.update(part.encode() + b"\0")
    out_dir = cache_dir()
    target = out_dir / f"{name}-{h.hexdigest()[:20]}.so"
    if target.is_file() and verified(target):
        return target
    pid = os.getpid()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_dir, ".*-*-*.tmp", 1)                         # .NAME-PID-xxx.so.tmp
        remove_stale_temporaries(Path(tempfile.gettempdir()), "symgrad-*-*-*", 2)   # symgrad-NAME-PID-xxx/
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-{pid}-", suffix=".so.tmp", dir=str(out_dir))
        os.close(fd)
    except OSError as e:
        raise CompilerError(f"cannot write to the compile cache {out_dir}: {e.strerror or e}; "
                            f"set SYMGRAD_CACHE to a writable folder") from e
    meta_tmp = f"{tmp[:-len('.so.tmp')]}.sha256.tmp"
    try:
        with tempfile.TemporaryDirectory(prefix=f"symgrad-{name}-{pid}-") as d:
            for fn, text in files.items():
                Path(d, fn).write_text(text, encoding="utf-8")
            cmd = [cc, *flags, "-I", d, str(Path(d) / f"{name}.c"), "-o", tmp, *ldflags, "-lm"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise CompilerError(f"compiling {name}.c failed ({' '.join(cmd)}):\n{r.stderr.strip()}")
        with open(meta_tmp, "w", encoding="ascii") as f:
            f.write(_digest(Path(tmp)) + "\n")
        os.replace(tmp, target)
        os.replace(meta_tmp, target.with_name(target.name + ".sha256"))
    except OSError as e:
        raise CompilerError(f"cannot write {target}: {e.strerror or e}; set SYMGRAD_CACHE to a writable folder") from e
    finally:
        for t in (tmp, meta_tmp):
            if os.path.exists(t):
                os.unlink(t)
    return target


SPIN_COUNT = 30000
"""GOMP_SPINCOUNT set beside OMP_WAIT_POLICY=PASSIVE when the user chose no wait policy: how many
times (a ``pause`` each) libgomp's threads poll for new work before they sleep. About 0.45 ms of a
worker's CPU after each parallel region on an AMD EPYC (Zen 4; 0.19 ms at 10000, 1.4 ms at 100000,
5.5 ms at libgomp's own default of 300000); a CPU with a longer ``pause`` (Intel since Skylake) spins
about three times as long."""


def load_library(path: Path):
    """``ctypes.CDLL`` of a built library. The first library that brings OpenMP fixes its wait
    policy for the whole process, so this sets it first, unless the user chose one: a short spin, then
    sleep (``OMP_WAIT_POLICY=PASSIVE`` with ``GOMP_SPINCOUNT=SPIN_COUNT``; other OpenMP runtimes read
    the passive policy alone).

    Why both: threads that spin for milliseconds after a parallel region steal the cores OpenBLAS's
    own threads need next (dense forward+backward measured 1.5x slower; libgomp's default spins about
    5 ms here). But threads that sleep at once must be woken for every parallel region, and on a
    virtual machine a wake takes long: with no torch in the process (symgrad's libgomp, not torch's,
    runs the kernels), BatchNorm2d forward+backward at N32 C64 32x32 float32 took 3.3-4.3 ms passive
    against 2.5-3.1 ms with the short spin, max-pooling 1.9-2.9 against 1.1-1.7 ms, the other
    workloads of ``symgrad bench`` within the noise (dense 0.87-1.09 of hand NumPy against 0.80-1.23;
    six processes of each setting in alternating rounds, AMD EPYC, 2 threads; docs/bench-log.md).
    With torch imported first its libgomp, already started with its own policy, runs symgrad's
    kernels too: nothing here applies."""
    import ctypes
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))
    try:
        return ctypes.CDLL(str(path))
    except OSError as e:
        raise CompilerError(f"cannot load the compiled kernel {path}: {e}") from e
