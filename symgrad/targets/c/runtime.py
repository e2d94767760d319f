"""The C backend of ``symgrad.load``: what every wrapper of a compiled kernel shares.

``CKernel`` is the one base of the layer, recurrent-layer, optimizer and schedule wrappers
(``runtime_layer``, ``runtime_recurrent``, ``runtime_optimizer``): it holds the kernel's NumPy module
(whose argument checks it runs, so both backends raise the same errors with the same messages), binds
the C functions with their ctypes argument types (the library's tuple entry points where it has them:
``shims.py``) and validates the arrays of a cache handed back to backward. Each wrapper's calls are
Python source written once at load time (``callpath.py``; an optimizer's step:
``runtime_optimizer.step_source``), which allocates every buffer at the size the emitter's plan gives
the C code (so C never writes out of bounds).
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

from ...codegen.printers import C_TYPES
from ..numpy import numpy_module
from .build import build, load_library
from .memory import LARGE, copy, empty
from .shims import shim_source
from .streaming import flags as stream_flags

REAL = {np.dtype(dtype): (getattr(ctypes, f"c_{real}"), sfx) for sfx, dtype, real in C_TYPES}
"""NumPy dtype -> (ctypes type, C function suffix)."""
POINTER_ROLES = frozenset({"out", "cache", "in", "index", "scratch", "param", "grad", "state", "scalar_state"})
INT_ROLES = frozenset({"dim", "n", "t"})


@lru_cache(maxsize=None)
def data_offset() -> int | None:
    """Where an ndarray object keeps its data pointer: NumPy's ``PyArrayObject_fields.data`` follows
    ``PyObject_HEAD``. Reading it with ``ctypes.c_void_p.from_address(id(a) + offset)`` costs a fifth
    of ``a.ctypes.data`` (which builds a helper object per call: ~1.5 us, measured; a C call passes up
    to a dozen arrays). Verified here on arrays of several kinds; None (use ``a.ctypes.data``) if the
    layout differs."""
    off = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    for a in (base, base[1:, 2:], base.T, np.empty(0), np.zeros((3,), np.float32)):
        if ctypes.c_void_p.from_address(id(a) + off).value != a.ctypes.data:
            return None
    return off


@lru_cache(maxsize=None)
def tuple_offset() -> int | None:
    """Where a tuple keeps its items: CPython's ``PyTupleObject.ob_item`` ends the object, so its offset
    is the type's basic size (24 through CPython 3.13; 3.14 adds a cached hash before the items).
    Verified here on tuples of several lengths; None if the layout differs, and then the call path
    passes every array as its own ctypes argument (``address_source``)."""
    off, step = tuple.__basicsize__, ctypes.sizeof(ctypes.c_void_p)
    if tuple.__itemsize__ != step:
        return None
    for t in ((np.empty(1),), tuple(np.empty(i) for i in range(7)), ("a", 1, 2.5)):
        if any(ctypes.c_void_p.from_address(id(t) + off + i * step).value != id(v) for i, v in enumerate(t)):
            return None
    return off


def tupled() -> bool:
    """Whether kernels are called through their ``NAME_t`` entry points (``shims.shim_source``):
    the arrays of a call handed over as one tuple, whose items' data pointers the C side reads."""
    return data_offset() is not None and tuple_offset() is not None


def address_source(name: str) -> str:
    """Python source for the data address of array ``name`` (``_addr``/``_DATA`` in the namespace): a
    ``c_void_p`` viewing the array's own data pointer, which ctypes passes as it is (reading
    ``.value`` and converting it back cost 24 ns more per argument; a dense f+b passes 16)."""
    return f"_addr(id({name}) + _DATA)" if data_offset() is not None else f"{name}.ctypes.data"


def sealed(a: np.ndarray, borrow: bool) -> np.ndarray:
    """An array the kernel itself allocated for the cache, as the cache keeps it: read-only unless
    ``borrow``. It is fresh (``memory.empty``) and referred to by nothing else, so unlike ``_owned``
    it is never copied, although a pooled array owns no data."""
    if not borrow:
        a.setflags(write=False)   # (0.11 us; assigning flags.writeable 0.22 us: it builds a flags object)
    return a


def owned(a: np.ndarray, given, borrow: bool = False) -> np.ndarray:
    """The NumPy module's ``_owned`` (the cache's copy of what the caller may hold, read-only; its
    docstring says why), with a large copy made on the memory pool by several threads (``memory.copy``),
    so that a training loop reuses the same mapped memory for it every step."""
    if borrow and a.flags.c_contiguous:
        return a
    if a is given or not a.flags.owndata:
        a = a.copy() if a.nbytes < LARGE else copy(a)   # small: no second frame on a per-call path
    a.setflags(write=False)
    return a


CALL_NAMESPACE = {"_addr": ctypes.c_void_p.from_address, "_DATA": data_offset(), "_sealed": sealed, "_owned": owned}


def loader(cls, emit):
    """``load(spec)``: ``cls(spec, library)`` for the C files ``emit(spec)`` writes, compiled once
    (``build``, with this machine's streaming-store threshold: ``streaming.flags``) and cached per spec."""
    @lru_cache(maxsize=None)
    def load(spec):
        files = {k.split("/", 1)[1]: v for k, v in emit(spec).items()}
        if tupled():   # the runtime's entry points, only in the library (not in generated/)
            files[f"{spec.name}.c"] += shim_source(files[f"{spec.name}.h"], tuple_offset(), data_offset())
        return cls(spec, load_library(build(spec.name, files, stream_flags() + RUNTIME_DEFINES)))
    return load


RUNTIME_DEFINES = ("-DSYMGRAD_PACK_MALLOC",)
"""What the runtime's libraries add to generated/'s C: large float products pack into malloc'd space in
blocks of 256 (``sg_mk_plain_f32``; the LSTM's input product 329 -> 361 GFLOP/s). The generated files
compiled without it allocate nothing, as docs/c-backend.md promises C users."""


class CKernel:
    """Base of the C kernel wrappers. ``dims``: the dimension names the kernel's sizes are written in."""

    def __init__(self, spec, lib, dims=()):
        self.spec, self.lib = spec, lib
        self.h = numpy_module(spec)
        self.dims = [str(d) for d in dims]
        self.funcs: dict = {}
        self._twins = None   # whether the library has the NAME_t twins: known at the first bind of arrays

    @property
    def tupled(self) -> bool:
        """Whether the call paths pass a call's arrays as one tuple (to the twins, ``shims.py``)."""
        return bool(self._twins)

    # -- the C functions --------------------------------------------------------------------
    def bind(self, cname: str, args, restype=None, hyper_type=None):
        """Look up ``NAME_<cname>_f32``/``_f64`` and set their argument types from the roles of
        ``args``: pointers, int64 sizes, int flags, reals of the dtype (``hyper_type`` overrides the
        type of hyperparameters). Where the library has the tuple entry points (``self.tupled``), the
        function bound is ``NAME_<cname>_<sfx>_t``: the arrays as one tuple, then the other arguments."""
        # a function without arrays has no twin; the kernel's first function with arrays decides for all
        # of them whether the library has twins (one built without, as bench/ab_c.py's old checkout's,
        # is called as before)
        twin = any(a.role in POINTER_ROLES for a in args)
        if twin and self._twins is None:
            self._twins = tupled() and hasattr(self.lib, f"{self.spec.name}_{cname}_f32_t")
        twin = twin and self._twins
        for dt, (ct, sfx) in REAL.items():
            fn = getattr(self.lib, f"{self.spec.name}_{cname}_{sfx}" + ("_t" if twin else ""))
            fn.restype = restype
            types = [ctypes.c_void_p if a.role in POINTER_ROLES else ctypes.c_int64 if a.role in INT_ROLES
                     else ctypes.c_int if a.role == "flag" else
                     (hyper_type or ct) if a.role == "hyper" else ct for a in args]
            if twin:
                types = [ctypes.py_object] + [t for a, t in zip(args, types) if a.role not in POINTER_ROLES]
            fn.argtypes = types
            self.funcs[cname, dt] = fn

    # -- caches -----------------------------------------------------------------------------
    def header(self, cache) -> tuple:
        """(cache, dtype) of a cache handed to backward, validated with the NumPy module's ``_cache``
        helper: a forged or edited cache raises instead of reaching C with wrong sizes."""
        cache = self.h._cache(cache, self.spec.name, "c")
        dtype = cache.get("dtype")
        if dtype not in REAL:
            raise TypeError(f"cache: 'dtype' should be float32 or float64, got {dtype!r}")
        return cache, dtype

    @staticmethod
    def dim_of(cache, d: str) -> int:
        """The cache's size of dimension ``d``, which must be a non-negative int."""
        val = cache.get(d)
        if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, np.integer)) or val < 0:
            raise TypeError(f"cache: dimension {d} should be a non-negative int, got {val!r}")
        return int(val)

    def cache_header(self, cache) -> tuple:
        """(cache, dtype, dims) of a cache handed to backward (``header`` and every ``dim_of``)."""
        cache, dtype = self.header(cache)
        return cache, dtype, {d: self.dim_of(cache, d) for d in self.dims}

    def cached(self, cache, name, shape, dtype) -> np.ndarray:
        """The cache's array ``name``, which must be exactly what forward stored."""
        a = cache.get(name)
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
            got = (f"{type(a).__name__}" if not isinstance(a, np.ndarray) else
                   f"dtype {a.dtype}, shape {a.shape}, contiguous={a.flags.c_contiguous}")
            raise TypeError(f"cache: entry {name!r} should be a C-contiguous {dtype} array of shape {shape}, "
                            f"got {got}; pass the cache returned by {self.spec.name}.forward unchanged")
        return a

    @staticmethod
    def cached_ids(cache, name, shape) -> np.ndarray:
        """The cache's integer class ids ``name`` of ``shape``, as C-contiguous int64."""
        a = cache.get(name)
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.shape != shape:
            raise TypeError(f"cache: entry {name!r} should be integer class ids of shape {shape}, got {a!r}")
        return np.ascontiguousarray(a, dtype=np.int64)
