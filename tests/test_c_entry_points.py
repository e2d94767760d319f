"""The Python runtime's entry points into a kernel library (symgrad/targets/c/shims.py): every
function taking arrays has a twin ``NAME_t`` that takes them as one tuple. The twins must agree
with the ctypes bindings argument by argument, be what the runtime calls, and a library without
them (another checkout's build: bench/ab_c.py) must still be called correctly, the old way."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

import symgrad
from symgrad.registry import REGISTRY
from symgrad.ir.rewrite import c_kernel
from symgrad.targets.c import layer_files, recurrent_files, runtime
from symgrad.targets.c.build import build, load_library
from symgrad.targets.c.optimizer import optimizer_sources, step_args
from symgrad.targets.c.plan import plan, plan_kept
from symgrad.targets.c.recurrent import CRecurrent
from symgrad.targets.c.runtime import POINTER_ROLES
from symgrad.targets.c.runtime_layer import CLayer
from symgrad.targets.c.shims import prototypes, shim_source
from symgrad.targets.c.streaming import flags as stream_flags

C_TYPE = {"int64_t": ctypes.c_int64, "int": ctypes.c_int, "float": ctypes.c_float, "double": ctypes.c_double}
KINDS = ("dense", "layernorm", "softmax_cross_entropy", "batchnorm2d", "conv2d", "lstm", "adam")
"""One kernel of each kind of argument list: kept copies, a real hyperparameter, class ids (an
int64 array), buffers updated in place, windows, a recurrent layer, an optimizer (int result,
double hyperparameters, an int flag)."""


def test_this_python_gets_the_tuple_entry_points():
    # this CPython's layouts: were they not recognised, every call would silently take the slow path
    assert runtime.tuple_offset() is not None and runtime.data_offset() is not None and runtime.tupled()
    for name in ("dense", "lstm", "adam"):
        assert symgrad.load(name, backend="c", dtype="float32").module.tupled


@pytest.mark.parametrize("name", KINDS)
def test_each_twin_takes_the_arguments_its_binding_passes(name):
    m = symgrad.load(name, backend="c", dtype="float32").module
    defs = "".join(line + ";\n" for line in shim_source(_header(name), 24, 16).splitlines() if line.endswith(")"))
    twins = {n: (ret, params) for ret, n, params in prototypes(defs)}
    assert m.funcs
    for (cname, dt), fn in m.funcs.items():
        sfx = "f32" if dt == np.float32 else "f64"
        ret, params = twins[f"{name}_{cname}_{sfx}_t"]
        assert fn.__name__ == f"{name}_{cname}_{sfx}_t"
        assert params[0] == "const void *_a" and fn.argtypes[0] is ctypes.py_object
        assert [C_TYPE[p.split()[0]] for p in params[1:]] == list(fn.argtypes[1:]), (cname, params)
        assert fn.restype is (None if ret == "void" else C_TYPE[ret])


def _plans(spec):
    """(header text, [(C function name, its args)]) of a registered kernel, without compiling."""
    kind = REGISTRY.interface(spec)
    if kind == "optimizer":
        return optimizer_sources(spec), [("step", step_args(spec))]
    if hasattr(spec, "state"):   # a recurrent layer
        r = CRecurrent(spec)
        return recurrent_files(spec), [(cf.name, cf.args) for cf in (r.fwd, r.fwdk, r.bwd) if cf is not None]
    k = c_kernel(spec)
    kept = plan_kept(k)
    return layer_files(spec), [(cf.name, cf.args) for cf in (*plan(k), *([kept[1]] if kept else []))]


def test_every_header_lists_its_arrays_in_the_order_the_call_paths_pass_them():
    # the twin hands the tuple's item i to the prototype's i-th pointer; the call paths (callpath._call,
    # runtime_optimizer.step_source) put the arrays in the tuple in the order of the plan's args
    checked = 0
    for name in REGISTRY.names():
        spec = REGISTRY.get(name)
        if REGISTRY.interface(spec) not in ("layer", "optimizer"):
            continue
        files, funcs = _plans(spec)
        header = next(v for k, v in files.items() if k.endswith(f"{name}.h"))
        protos = {n: params for _, n, params in prototypes(header)}
        for cname, args in funcs:
            for sfx in ("f32", "f64"):
                params = protos[f"{name}_{cname}_{sfx}"]
                assert [p.split()[-1] for p in params if "*" in p] == \
                    [a.name for a in args if a.role in POINTER_ROLES], (name, cname)
                assert [p.split()[-1] for p in params if "*" not in p] == \
                    [a.name for a in args if a.role not in POINTER_ROLES], (name, cname)
                checked += 1
    assert checked > 60


def test_a_twin_passes_the_arrays_in_the_order_of_the_prototype():
    header = ("void k_f32(float *restrict y, int64_t N, const float *restrict x, double lr, "
              "const int64_t *restrict ids, int flag);\nint64_t k_scratch_size(int64_t N);\n")
    src = shim_source(header, 24, 16)
    assert "void k_f32_t(const void *_a, int64_t N, double lr, int flag)" in src
    assert "k_f32(SG_ARRAY(_a, 0), N, SG_ARRAY(_a, 1), lr, SG_ARRAY(_a, 2), flag);" in src
    assert "k_scratch_size_t" not in src   # no arrays, no twin


def test_a_library_without_twins_is_called_as_before():
    spec = REGISTRY.get("dense")
    files = {k.split("/", 1)[1]: v for k, v in layer_files(spec).items()}   # as generated/: no twins
    old = CLayer(spec, load_library(build(spec.name, files, stream_flags())))
    new = symgrad.load("dense", backend="c", dtype="float64").module
    assert not old.tupled and new.tupled
    assert "_addr(id(" in old.source and "_FWDK[dtype]((y, x_kept, W_kept, x, W, b, ), N, D, M)" in new.source
    rng = np.random.default_rng(0)
    x, W, b, dy = rng.standard_normal((5, 7)), rng.standard_normal((7, 3)), rng.standard_normal(3), \
        rng.standard_normal((5, 3))
    for borrow in (False, True):
        (y0, c0), (y1, c1) = old.forward(x, W, b, borrow=borrow), new.forward(x, W, b, borrow=borrow)
        assert np.array_equal(y0, y1) and np.allclose(y0, x @ W + b)
        for g0, g1 in zip(old.backward(c0, dy), new.backward(c1, dy)):
            assert np.array_equal(g0, g1)


def _header(name: str) -> str:
    from pathlib import Path
    return (Path(__file__).resolve().parents[1] / "generated" / "c" / f"{name}.h").read_text()
