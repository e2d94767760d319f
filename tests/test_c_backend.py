"""The C target: agreement with the NumPy backend, the contract's errors, the compile cache, sanitizers,
the standalone XOR example, and the layout of the generated headers."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad
from symgrad.verify.layers import outputs_of, random_inputs

from c_driver import driver
from conftest import require_target, HAVE_CC, layer_names, rel_err

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not HAVE_CC, reason="no C compiler: apt-get install gcc")

SIZES = [None, {"N": 1, "D": 1, "M": 1, "C": 1}, {"N": 17, "D": 3, "M": 5, "C": 6}]
TOL = {"float64": 1e-12, "float32": 1e-5}


def _both(name, dtype, args, ups_seed=1):
    spec = symgrad.REGISTRY.get(name)
    res = []
    for backend in ("numpy", "c"):
        k = symgrad.load(name, backend=backend, dtype=dtype)
        outs, cache = outputs_of(spec, k.forward(**args))
        rng = np.random.default_rng(ups_seed)
        ups = [1.7] if spec.kind == "loss" else [rng.standard_normal(np.shape(o)).astype(dtype) for o in outs]
        res.append((outs, k.backward(cache, *ups)))
    return res


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("name", layer_names())
def test_agrees_with_numpy_backend(name, sizes, dtype):
    require_target(name, "c")
    spec = symgrad.REGISTRY.get(name)
    args = random_inputs(spec, np.random.default_rng(5), sizes)
    args = {n: (v.astype(dtype) if v.dtype.kind == "f" else v) for n, v in args.items()}
    (o_np, g_np), (o_c, g_c) = _both(name, dtype, args)
    for a, b in zip(o_np, o_c):
        assert np.asarray(b).dtype == dtype and np.shape(a) == np.shape(b)
        assert rel_err(b, a) <= TOL[dtype]
    assert len(g_np) == len(g_c)
    for inp, a, b in zip(spec.diff_inputs, g_np, g_c):
        assert b.dtype == dtype and b.shape == a.shape, inp.name
        assert rel_err(b, a) <= TOL[dtype], f"d{inp.name}"


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - compared across backends below
        return type(e), str(e)
    return None


BAD_CALLS = {
    "dense": [lambda k: k.forward(np.ones((2, 3)), np.ones((4, 5)), np.ones(5)),
              lambda k: k.forward(np.ones((2, 3)), np.ones((3, 5)), np.ones(4)),
              lambda k: k.forward(np.ones((2, 3, 1)), np.ones((3, 5)), np.ones(5)),
              lambda k: k.forward(np.ones((2, 3), np.float32), np.ones((3, 5)), np.ones(5)),
              lambda k: k.forward(np.ones((2, 3)), np.ones((3, 5)), "b"),
              lambda k: k.backward(k.forward(np.ones((2, 3)), np.ones((3, 5)), np.ones(5))[1], np.ones((2, 4))),
              lambda k: k.backward({"kernel": "softmax"}, np.ones((2, 5))),
              lambda k: k.backward(None, np.ones((2, 5)))],
    "softmax_cross_entropy": [lambda k: k.forward(np.ones((3, 4)), np.array([0, 4, 1])),
                              lambda k: k.forward(np.ones((3, 4)), np.array([0, -1, 1])),
                              lambda k: k.forward(np.ones((3, 4)), np.array([0.0, 1.0, 1.0])),
                              lambda k: k.forward(np.ones((3, 4)), np.array([0, 1])),
                              lambda k: k.backward(k.forward(np.ones((3, 4)), np.array([0, 1, 2]))[1], np.ones(2))],
    "mse": [lambda k: k.forward(np.ones((3, 4)), np.ones((4, 3)))],
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_errors_match_numpy_backend(name):
    for i, call in enumerate(BAD_CALLS[name]):
        want = _error(lambda: call(symgrad.load(name)))
        got = _error(lambda: call(symgrad.load(name, backend="c")))
        assert want is not None and issubclass(want[0], (ValueError, TypeError)), (i, want)
        assert got == want, f"case {i}"


def test_inputs_converted_exactly_and_cache_validated():
    k = symgrad.load("dense", backend="c")
    rng = np.random.default_rng(0)
    big = rng.standard_normal((6, 8))
    x, W, b = big[::2, ::2], rng.standard_normal((4, 3)).T.copy().T, np.arange(3)  # views, ints
    assert not x.flags.c_contiguous and not W.flags.c_contiguous
    y, cache = k.forward(x, W, b)
    np.testing.assert_array_equal(y, symgrad.load("dense").forward(x, W, b)[0])
    dy = rng.standard_normal((3, 6))[:, ::2]
    assert rel_err(k.backward(cache, dy)[1], x.T @ dy) < 1e-14
    for key, bad in (("x", np.ones((4, 4))), ("W", np.ones((4, 3), np.float32)), ("W", np.ones((8, 3))[::2]),
                     ("N", -1), ("N", 1.5), ("dtype", np.dtype(np.int32))):
        tampered = dict(cache, **{key: bad})
        with pytest.raises(TypeError, match="cache"):
            k.backward(tampered, np.ones((3, 3)))
    with pytest.raises(TypeError, match="cache"):
        k.backward({k_: v for k_, v in cache.items() if k_ != "W"}, np.ones((3, 3)))
    loss = symgrad.load("mse", backend="c", dtype="float32")
    val, c = loss.forward(pred=np.ones((2, 2), np.float32), target=np.zeros((2, 2), np.float32))
    assert isinstance(val, np.float32) and val == 1.0
    (dp,) = loss.backward(c)  # dloss defaults to 1.0
    assert dp.shape == (2, 2) and np.all(dp == 0.5)
    assert "backward(cache, dloss=1.0)" in loss.module.__doc__


def test_user_layers_with_other_contractions():
    """Generality of the emitter: a batched (T, N, D) @ (D, M) product (flattened into one GEMM),
    non-GEMM einsums, a transpose, a max over a non-leading axis, Expand, Piecewise(Eq), a hyper."""
    import symgrad as sg
    T_, N_, D_, M_ = sg.dims("T N D M")

    @sg.layer(x=(T_, N_, D_), W=(D_, M_), v=(N_, D_), register=False)
    def c_generality(x, W, v, alpha=0.3):
        y = sg.tanh(x @ W) * alpha
        s = sg.einsum("tnd,nd->tn", x, v)
        return sg.sum(y, axis=-1) + sg.exp(-s * s) + sg.sum(sg.max(v.T, axis=1))

    sg.REGISTRY.add(c_generality)
    try:
        src = symgrad.REGISTRY.emit(c_generality, "c")["c/c_generality.c"]
        assert "sg_gemm_f64(0, 0, N*T, M, D" in src.replace("T*N", "N*T")
        rng = np.random.default_rng(2)
        args = {"x": rng.standard_normal((2, 3, 4)), "W": rng.standard_normal((4, 5)),
                "v": rng.standard_normal((3, 4))}
        (o_np, g_np), (o_c, g_c) = _both("c_generality", "float64", args)
        assert rel_err(o_c[0], o_np[0]) <= 1e-12
        for a, b in zip(g_np, g_c):
            assert rel_err(b, a) <= 1e-12
        rep = sg.check(["c_generality"], backend="c")
        assert rep.passed and len(rep.rows) == 3, rep.table()
        y, cache = symgrad.load("c_generality", backend="c").forward(**args, alpha=2.0)
        assert rel_err(y, symgrad.load("c_generality").forward(**args, alpha=2.0)[0]) <= 1e-12
    finally:
        sg.REGISTRY.remove("c_generality")


def _run(code, env_extra, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)


LOAD = ("import numpy as np, symgrad\n"
        "k = symgrad.load('tanh', backend='c')\n"
        "a, c = k.forward(np.zeros(3))\n"
        "print(k.module.lib._name)\n")


def test_compile_cache_concurrent_builds_and_reuse(tmp_path):
    env = {"SYMGRAD_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", LOAD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env}) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    lib = Path(paths.pop())
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    probe = [n for n in names if n.startswith(("stream-", "sg_stream_probe-"))]   # streaming.py's measurement
    assert [n.split("-")[0] + n[n.index("."):] for n in probe] == [
        "sg_stream_probe.so", "sg_stream_probe.so.sha256", "stream.json"], "measured once, by one of the two"
    assert [n for n in names if n not in probe] == [lib.name, lib.name + ".sha256"], \
        "one library and its digest, no temporary files left"
    mtime = lib.stat().st_mtime_ns
    r = _run(LOAD, env)
    assert r.returncode == 0 and lib.stat().st_mtime_ns == mtime, "second load reuses the cached library"


def test_missing_or_failing_compiler_is_a_clear_error(tmp_path):
    code = ("import numpy as np, symgrad\n"
            "try:\n    symgrad.load('relu', backend='c')\n"
            "except symgrad.CompilerError as e:\n    print('CompilerError:', e)\n")
    r = _run(code, {"SYMGRAD_CACHE": str(tmp_path / "c1"), "CC": str(tmp_path / "no-such-cc")})
    assert "CompilerError: no working C compiler" in r.stdout and "apt-get install gcc" in r.stdout, r.stderr
    # a compiler killed half-way through writing its output leaves no library behind
    fake = tmp_path / "killed-cc"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --version ] && { echo fake-cc 1.0; exit 0; }; done\n"
                    "while [ $# -gt 0 ]; do [ \"$1\" = -o ] && echo garbage > \"$2\"; shift; done\nkill -9 $$\n")
    fake.chmod(0o755)
    r = _run(code, {"SYMGRAD_CACHE": str(tmp_path / "c2"), "CC": str(fake)})
    assert "CompilerError: compiling relu.c failed" in r.stdout, r.stdout + r.stderr
    assert not list((tmp_path / "c2").glob("*")), "no broken or temporary library in the cache"


def test_cli_check_backend_c():
    from click.testing import CliRunner
    from symgrad.cli import main
    r = CliRunner().invoke(main, ["check", "--backend", "c", "softmax_cross_entropy", "dense_relu"])
    assert r.exit_code == 0, r.output
    assert "dW" in r.output and "all 4 checks passed" in r.output


def _sanitizer_ok(tmp_path) -> bool:
    src = tmp_path / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    r = subprocess.run(["cc", "-fsanitize=address,undefined", str(src), "-o", str(tmp_path / "probe")],
                       capture_output=True)
    return r.returncode == 0 and subprocess.run([str(tmp_path / "probe")], capture_output=True).returncode == 0


WINOGRAD_ANY_SIZE = ["-DSG_WG_MIN_CIN=1", "-DSG_WG_MIN_TILES=1", "-DSG_WG_MIN_CIN_GRAD=1"]
# streaming stores in every call that can stream, in pieces of 7 elements (rows of any length): the
# buffered pieces, their unaligned heads and ragged tails, and the fences run under the sanitizers too
STREAM_ALWAYS = ["-DSYMGRAD_STREAM_BYTES=0", "-DSG_STREAM_MIN_ROW=0", "-DSG_STREAM_CHUNK=7"]


@pytest.mark.parametrize("native", [False, True])
def test_kernels_under_address_and_undefined_sanitizers(tmp_path, native):
    """Every C kernel under ASan/UBSan with buffers of exactly the stated sizes; ``native``: built for this
    CPU (-march=native), so that where it has AVX-512 the float kernels' own paths run too (the product
    kernel, windows read from x, the fold's gathers at strides 1 and 2, and the Winograd forms of a 3x3
    convolution, their size thresholds lowered so that the driver's small sizes take them), and every
    output that can be written with streaming stores is (``STREAM_ALWAYS``)."""
    if not _sanitizer_ok(tmp_path):
        pytest.skip("the ASan/UBSan runtime is missing (apt-get install libasan8 libubsan1)")
    from symgrad import REGISTRY
    specs = [s for s in symgrad.REGISTRY if REGISTRY.supports(s, "c")]   # layers, optimizers, schedules
    assert {"adam", "sgd", "ema", "exponential_decay"} <= {s.name for s in specs}
    (tmp_path / "driver.c").write_text(driver(specs))
    srcs = [str(ROOT / "generated" / "c" / f"{s.name}.c") for s in specs]
    exe = tmp_path / "driver"
    cmd = ["cc", "-std=c99", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-fno-omit-frame-pointer", *(["-march=native", *WINOGRAD_ANY_SIZE, *STREAM_ALWAYS] if native else []),
           "-I", str(ROOT / "generated" / "c"),
           str(tmp_path / "driver.c"), *srcs, "-o", str(exe), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ran {len(specs) * 6} kernels" in r.stdout


def test_xor_example_trains_with_the_readme_command(tmp_path):
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^(cc [^\n]*examples/c/xor\.c[^\n]*)$", readme, re.M)
    assert m, "README gives the command that builds examples/c/xor.c"
    cmd = m.group(1).replace("-o xor", f"-o {tmp_path / 'xor'}").split(" && ")[0]
    r = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(tmp_path / "xor")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    losses = [float(x) for x in re.findall(r"loss ([0-9.]+)", r.stdout)]
    assert losses[0] > 0.1 and losses[-1] < 0.01 and losses[-1] < losses[len(losses) // 2] < losses[0], r.stdout


def test_generated_headers_document_the_contract():
    h = (ROOT / "generated" / "c" / "dense_sigmoid.h").read_text()
    assert h.splitlines()[2].startswith(" * @generated by symgrad") and "targets/c/templates/layer.h.j2" in h
    assert "N = batch, axis 0 of x" in h and "xW = x @ W" in h and "a = sigmoid(b + xW)" in h and "dx = dz @ W.T" in h
    assert "dW (D, M): gradient, overwritten (not accumulated)" in h
    assert "int64_t dense_sigmoid_backward_scratch_size(int64_t N, int64_t D, int64_t M);" in h
    for v in ("_forward_f32(float *restrict a,", "_forward_f64(double *restrict a,"):
        assert v in h
    c = (ROOT / "generated" / "c" / "softmax.c").read_text()
    assert "malloc" not in c and "static " not in c.replace("static inline", "")
    assert "#ifdef SYMGRAD_CBLAS" in (ROOT / "generated" / "c" / "dense.c").read_text()


def test_c_generation_is_deterministic_across_hash_seeds(tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "symgrad.cli", "generate", "--target", "c", "softmax_cross_entropy",
                        "dense_sigmoid", "bce_logits", "--out", str(out)], check=True, env=env, capture_output=True)
        outs.append({p.name: p.read_bytes() for p in sorted(out.rglob("*.[ch]"))})
    assert outs[0] == outs[1] and len(outs[0]) == 6


def test_user_layer_with_slices():
    """Slices in a layer (a gated unit): read in place where they are temporaries, stored when
    backward needs them; agrees with the NumPy backend and passes finite differences."""
    import symgrad as sg
    N_, D_, H_ = sg.dims("N D H")

    @sg.layer(x=(N_, D_), W=(D_, 2 * H_), b=(H_,), register=False)
    def c_gated(x, W, b):
        a = x @ W
        return a[..., 0:H_] * sg.tanh(a[..., H_:2 * H_]) + b

    sg.REGISTRY.add(c_gated)
    try:
        rng = np.random.default_rng(4)
        args = {"x": rng.standard_normal((5, 3)), "W": rng.standard_normal((3, 8)), "b": rng.standard_normal(4)}
        for dtype in ("float64", "float32"):
            a = {n: v.astype(dtype) for n, v in args.items()}
            (o_np, g_np), (o_c, g_c) = _both("c_gated", dtype, a)
            assert rel_err(o_c[0], o_np[0]) <= TOL[dtype]
            for x, y in zip(g_np, g_c):
                assert rel_err(y, x) <= TOL[dtype]
        rep = sg.check(["c_gated"], backend="c")
        assert rep.passed and len(rep.rows) == 3, rep.table()
    finally:
        sg.REGISTRY.remove("c_gated")


def _poisoned(k):
    """``k`` (a loaded C layer) with every output, cache and scratch array it allocates filled with NaN
    first (np.empty and the pool may hand out memory that happens to hold zeros): a kernel that reads
    an array before writing all of it gives NaN."""
    ns = k.module.forward.__globals__

    def nan(alloc):
        def f(shape, dtype, *a, **kw):
            out = alloc(shape, dtype, *a, **kw)
            out.fill(np.nan)
            return out
        return f
    for name in ("_empty", "_npempty", "_scratch"):
        ns[name] = nan(ns[name])
    return k


def test_products_added_into_their_sum_write_every_element():
    """``y = b + x @ W`` runs as ``y = b; y += x @ W`` (BLAS beta 1) and a sum of two products as the
    first written, the second added (``ir.rewrite.add_into_product``): on outputs, caches and scratch
    poisoned with NaN, forward and backward match the NumPy backend, float and double, at sizes on
    BLAS's small-matrix path and on its threads (the first product of a sum must not add to what its
    output held)."""
    import symgrad as sg
    N, D, M = sg.dims("N D M")

    @sg.layer(x=(N, D), W=(D, M), V=(D, M), b=(M,))
    def two_products(x, W, V, b):
        "x W + x V + b (a product written, one added)."
        return x @ W + x @ V + b

    @sg.layer(x=(N, D), W=(D, M), V=(D, M))
    def sum_of_products(x, W, V):
        "x W + x V, no other term: the first product written into y."
        return x @ W + x @ V
    try:
        from symgrad.ir.rewrite import added_products, c_kernel
        for name in ("two_products", "sum_of_products", "dense", "dense_relu"):
            k = c_kernel(sg.REGISTRY.get(name))
            assert added_products(k.forward), name   # the rewrite applies to each of them
        rng = np.random.default_rng(5)
        for name in ("two_products", "sum_of_products", "dense"):
            for dtype in ("float32", "float64"):
                c = _poisoned(sg.load(name, backend="c", dtype=dtype))
                ref = sg.load(name, dtype=dtype)
                for n, d, m in ((3, 4, 5), (300, 256, 260)):
                    shape = {"x": (n, d), "W": (d, m), "V": (d, m), "b": (m,)}
                    args = [rng.standard_normal(shape[a.name]).astype(dtype) for a in ref.spec.inputs]
                    dy = rng.standard_normal((n, m)).astype(dtype)
                    y, cache = c.forward(*args)
                    yr, cr = ref.forward(*args)
                    assert rel_err(y, yr) <= TOL[dtype], (name, dtype, n)
                    for g, gr in zip(c.backward(cache, dy), ref.backward(cr, dy)):
                        assert rel_err(g, gr) <= TOL[dtype], (name, dtype, n)
    finally:
        sg.REGISTRY.remove("two_products")
        sg.REGISTRY.remove("sum_of_products")


# Sizes whose sums run long enough for the laned loops (64 terms a block) and end between blocks:
# LayerNorm's rows of 131 (two blocks and 3 more), softmax's of 70, the losses' 131 elements,
# BatchNorm2d's per-channel sums over H W = 350, conv2d's bias gradient over rows of 69.
LANED = {"N": 3, "D": 131, "M": 67, "C": 70, "H": 5, "W": 70, "n_elems": 131}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", layer_names())
def test_laned_sums_agree_with_a_float64_reference(name, dtype):
    """The C kernels' sums over 64 terms and more (``CBody.laned``: four terms a lane in the working
    precision, then double) against the NumPy backend in float64."""
    require_target(name, "c")
    spec = symgrad.REGISTRY.get(name)
    args = random_inputs(spec, np.random.default_rng(11), LANED)
    ref = symgrad.load(name, backend="numpy", dtype="float64")
    k = symgrad.load(name, backend="c", dtype=dtype)
    o_ref, c_ref = outputs_of(spec, ref.forward(**args))
    o_c, c_c = outputs_of(spec, k.forward(**{n: (v.astype(dtype) if v.dtype.kind == "f" else v)
                                              for n, v in args.items()}))
    rng = np.random.default_rng(2)
    ups = [1.7] if spec.kind == "loss" else [rng.standard_normal(np.shape(o)) for o in o_ref]
    g_ref = ref.backward(c_ref, *ups)
    g_c = k.backward(c_c, *[u if np.isscalar(u) else u.astype(dtype) for u in ups])
    for a, b in zip(o_ref, o_c):
        assert rel_err(b, a) <= TOL[dtype]
    for inp, a, b in zip(spec.diff_inputs, g_ref, g_c):
        assert rel_err(b, a) <= TOL[dtype], f"d{inp.name}"


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_kernels_run_in_a_thread_with_a_small_stack():
    """The C kernels keep their packing space off the stack past 80 KB (docs/c-backend.md): an LSTM, a
    dense layer and a convolution, float32 (the AVX-512 product kernel's large blocks: malloc'd), run in a
    Python thread of 192 KB of stack and agree with the NumPy backend. (With the large blocks on the stack
    such a thread died with SIGSEGV, taking the interpreter with it.)"""
    code = r"""
import threading, numpy as np, symgrad
rng = np.random.default_rng(0)
f = lambda *s: rng.standard_normal(s).astype(np.float32)
cases = {"lstm": (f(8, 64, 256), f(64, 256), f(64, 256), f(1024, 256) * 0.05, f(1024, 256) * 0.05, f(1024), f(1024)),
         "dense": (f(256, 300), f(300, 200), f(200)),
         "conv2d": (f(2, 16, 12, 12), f(32, 16, 3, 3), f(32))}
out = {}
def work():
    for name, args in cases.items():
        got = []
        for backend in ("c", "numpy"):
            k = symgrad.load(name, backend=backend, dtype="float32")
            y, cache = k.forward(*args)
            first = y[0] if isinstance(y, tuple) else y
            grads = k.backward(cache, *([np.ones_like(v) for v in y] if isinstance(y, tuple) else [np.ones_like(y)]))
            got.append([first] + list(grads))
        out[name] = max(float(np.max(np.abs(a - b)) / (1 + float(np.max(np.abs(b))))) for a, b in zip(*got))
threading.stack_size(192 << 10)
t = threading.Thread(target=work)
t.start()
t.join()
print(sorted(out.items()))
"""
    for name in ("lstm", "dense", "conv2d"):   # compiled here first (the build runs on this thread)
        symgrad.load(name, backend="c", dtype="float32")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    errors = dict(eval(r.stdout))   # noqa: S307 - our own printout: [(name, error), ...]
    assert set(errors) == {"lstm", "dense", "conv2d"}
    assert all(e < 1e-4 for e in errors.values()), errors
