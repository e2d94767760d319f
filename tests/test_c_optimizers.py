"""C optimizer, EMA and schedule kernels: agreement with the NumPy backend on every rule, the same
errors, in-place updates, the generated files' layout, and that the element loops vectorize."""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.targets.c.optimizer import driver_cases

from conftest import HAVE_CC, rel_err

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not HAVE_CC, reason="no C compiler: apt-get install gcc")
OPTIMIZERS = [s.name for s in sg.REGISTRY if s.kind == "optimizer"]
TOL = {"float64": 1e-12, "float32": 1e-5}


def _cases():
    for name in OPTIMIZERS:
        for hyper, _ in driver_cases(sg.REGISTRY.get(name)):
            yield name, hyper


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,hyper", list(_cases()),
                         ids=lambda x: x if isinstance(x, str) else ",".join(f"{k}={v}" for k, v in x.items()))
def test_every_rule_agrees_with_numpy_backend(name, hyper, dtype):
    """Hyperparameters chosen so that every rule (flag combination) of every optimizer runs; 100 steps;
    1003 elements (a vector tail), and 70001 (OpenMP threads) for a few steps."""
    spec = sg.REGISTRY.get(name)
    rng = np.random.default_rng(7)
    for n, steps in ((1003, 100), (70001, 3)):
        p0 = rng.standard_normal(n).astype(dtype)
        grads = rng.standard_normal((steps, n)).astype(dtype)
        res = {}
        for backend in ("numpy", "c"):
            k = sg.load(name, backend=backend, dtype=dtype)
            p = p0.copy()
            st = k.init(p)
            for g in grads:
                k.step(p, g, st, **hyper)
            res[backend] = (p, st)
        (pn, sn), (pc, sc) = res["numpy"], res["c"]
        assert pc.dtype == dtype and rel_err(pc, pn) <= TOL[dtype]
        for key in spec.state:
            assert rel_err(sc[key], sn[key]) <= TOL[dtype], key
        assert sc["step"] == sn["step"] == steps


BAD = [
    ("adam", lambda k, p, st: k.step(p, np.ones(4), st, beta1=1.0)),
    ("adam", lambda k, p, st: k.step(p, np.ones(4), st, lr=float("nan"))),
    ("adam", lambda k, p, st: k.step(p, np.ones(4, np.float32), st)),
    ("adam", lambda k, p, st: k.step(p, np.ones(5), st)),
    ("adam", lambda k, p, st: k.step(np.ones(5), np.ones(5), st)),
    ("adam", lambda k, p, st: k.step(p, np.ones(4), st, amsgrad=1)),
    ("adam", lambda k, p, st: k.step(p, np.ones(4), dict(st, kernel="sgd"))),
    ("adam", lambda k, p, st: k.step(p, np.ones(4), dict(st, exp_avg=np.ones(4, np.float32)))),
    ("adam", lambda k, p, st: k.step(p, np.ones(4), dict(st, step=-1))),
    ("adam", lambda k, p, st: k.step(list(p), np.ones(4), st)),
    ("adam", lambda k, p, st: k.step(p, np.ones(4), st, betas=(0.9, 0.99))),
    ("adam", lambda k, p, st: k.step(p, np.ones(4))),
    ("adam", lambda k, p, st: k.step(p, np.ones(4), st, 0.1)),
    ("sgd", lambda k, p, st: k.step(p, np.ones(4), st, nesterov=True)),
    ("tf_momentum", lambda k, p, st: k.step(p, np.ones(4), st, lr=0.1)),
    ("adagrad", lambda k, p, st: k.init(p, initial_accumulator_value=-1.0)),
    ("ema", lambda k, p, st: k.step(p, np.ones(4), st, beta=2.0)),
    ("exponential_decay", lambda k, p, st: k.value(0.1, 3, 0, 0.5)),
    ("exponential_decay", lambda k, p, st: k.value(0.1, 3, 10, 0.5, staircase=1)),
]


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - compared across backends below
        return type(e), str(e)
    return None


@pytest.mark.parametrize("i", range(len(BAD)))
def test_errors_match_numpy_backend(i):
    name, call = BAD[i]
    got = {}
    for backend in ("numpy", "c"):
        k = sg.load(name, backend=backend)
        p = np.ones(4)
        st = k.init(p) if hasattr(k.module, "init") else None
        got[backend] = _error(lambda: call(k, p, st))
        if st is not None:
            assert np.all(p == 1) and st["step"] == 0, "nothing changes on error"
    assert got["numpy"] is not None and issubclass(got["numpy"][0], (ValueError, TypeError))
    assert got["c"] == got["numpy"]


def test_in_place_views_read_only_and_aliasing():
    adam = sg.load("adam", backend="c")
    ro = np.ones(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="param: expected a writeable array"):
        adam.step(ro, np.ones(4), adam.init(ro))
    # the gradient may be the parameter itself (or overlap a state array): same result as NumPy
    res = []
    for backend in ("numpy", "c"):
        k = sg.load("sgd", backend=backend)
        p = np.linspace(-1, 1, 9)
        st = k.init(p)
        for _ in range(3):
            k.step(p, p, st, lr=0.1, momentum=0.9)
            k.step(p, st["momentum_buffer"], st, lr=0.1, momentum=0.9)
        res.append(p)
    assert np.array_equal(res[0], res[1])
    # a non-contiguous float32 parameter: updated in place, float32 state
    big = np.ones((4, 6), np.float32)
    k = sg.load("rmsprop", backend="c", dtype="float32")
    view = big[:, ::3]
    st = k.init(view)
    k.step(view, np.ones_like(view), st, lr=0.1)
    assert np.all(big[:, ::3] < 1) and np.all(big[:, 1::3] == 1) and st["square_avg"].dtype == np.float32


def test_state_is_shared_with_the_numpy_backend():
    """One state dict, two backends: steps may alternate between them."""
    rng = np.random.default_rng(3)
    p0, grads = rng.standard_normal(50), rng.standard_normal((10, 50))
    kn, kc = sg.load("adam"), sg.load("adam", backend="c")
    p, q = p0.copy(), p0.copy()
    sp_, sq = kn.init(p), kc.init(q)
    assert sorted(sp_) == sorted(sq)
    for i, g in enumerate(grads):
        kn.step(p, g, sp_, lr=0.1)
        (kc if i % 2 else kn).step(q, g, sq, lr=0.1)
    assert rel_err(q, p) <= 1e-14 and sq["step"] == 10


class _TwoFaced(dict):
    """A state dict whose ``[]`` hands out copies of its arrays, while ``get`` (what the checks read)
    hands out the arrays themselves."""

    def __getitem__(self, key):
        v = super().__getitem__(key)
        return v.copy() if isinstance(v, np.ndarray) else v


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_a_step_updates_the_state_arrays_it_checked(name, backend):
    # the step writes the arrays its checks saw, never entries looked up again: a state dict (or another
    # thread) could otherwise hand the C kernel an array of another size after the checks
    k = sg.load(name, backend=backend, dtype="float64")
    rng = np.random.default_rng(0)
    p0, g = rng.standard_normal(50), rng.standard_normal(50)
    hyper = {"momentum": 0.9} if name == "sgd" else {}
    p1, s1 = p0.copy(), k.init(p0)
    p2, s2 = p0.copy(), _TwoFaced(k.init(p0))
    for _ in range(2):
        k.step(p1, g, s1, **hyper)
        k.step(p2, g, s2, **hyper)
    key = "exp_avg" if name == "adam" else "momentum_buffer"
    assert np.abs(s1[key]).max() > 0 and np.array_equal(dict.get(s2, key), s1[key])
    assert np.array_equal(p1, p2)


def test_generated_files_document_the_contract():
    h = (ROOT / "generated" / "c" / "adam.h").read_text()
    assert h.splitlines()[2].startswith(" * @generated by symgrad") and "targets/c/templates/optimizer.h.j2" in h
    assert "p <- p - exp_avg*lr/((1 - beta1**t)*(eps + sqrt(exp_avg_sq)/sqrt(1 - beta2**t)))" in h
    assert "has_weight_decay = (weight_decay != 0)" in h
    assert "param (n,): the parameter, updated in place" in h and "grad (n,): its gradient, read" in h
    assert "exp_avg (n,): state, updated in place (initially 0)" in h
    assert "int adam_step_f32(float *restrict param, const float *restrict grad," in h
    assert "int adam_step_f64(double *restrict param," in h
    c = (ROOT / "generated" / "c" / "adam.c").read_text()
    assert "malloc" not in c and "SG_PARALLEL_FOR(n)" in c
    for loop in re.findall(r"for \(int64_t i = 0; i < n; \+\+i\) \{(.*?)\n    \}", c, re.S):
        assert "pow(" not in loop and "/(1 - " not in loop, "scalar factors are hoisted out of the loop"
        assert loop.count("param[i] =") == 1 and loop.count("= param[i];") == 1
    assert "double exponential_decay_value(double lr, double global_step, double decay_steps, " \
           "double decay_rate, int staircase);" in (ROOT / "generated" / "c" / "exponential_decay.h").read_text()


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc for -fopt-info-vec")
def test_element_loops_vectorize(tmp_path):
    """gcc -O3 -march=native vectorizes every optimizer's element loop (both dtypes, every rule)."""
    for name in ("adam", "rmsprop", "sgd", "ema"):
        c = ROOT / "generated" / "c" / f"{name}.c"
        r = subprocess.run(["gcc", "-O3", "-march=native", "-std=c99", "-fno-math-errno", "-fopenmp",
                            "-fopt-info-vec-optimized", "-I", str(c.parent), "-c", str(c), "-o",
                            str(tmp_path / f"{name}.o")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        loops = {m.start() for m in re.finditer(r"for \(int64_t i = 0; i < n; \+\+i\)", c.read_text())}
        lines = {int(m) for m in re.findall(rf"{name}\.c:(\d+):\d+: optimized: loop vectorized", r.stderr)}
        assert len(lines) == len(loops), (name, len(lines), len(loops))


def test_cli_check_backend_c_includes_optimizers():
    from click.testing import CliRunner
    from symgrad.cli import main
    r = CliRunner().invoke(main, ["check", "--backend", "c", "adam", "sgd", "ema", "exponential_decay"])
    assert r.exit_code == 0, r.output
    assert "f decreases" in r.output and "tracks constant" in r.output and "value" in r.output
    r = CliRunner().invoke(main, ["check", "--backend", "c", "--dtype", "float32", "rmsprop"])
    assert r.exit_code == 0 and "float32 vs f64" in r.output, r.output
