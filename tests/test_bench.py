"""Smoke test of the benchmark harness on tiny sizes (no timing is asserted)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad
from symgrad.bench import suite as benchmarks, hand as hand_reference


def test_harness_runs_on_tiny_sizes(tmp_path):
    report = benchmarks.run(["dense", "layernorm", "lstm", "adam"], ("float32",), threads=1, repeats=1,
                            small=True, with_generate=False)
    got = {r.workload: r for r in report["results"]}
    assert set(got) == {"dense", "layernorm", "lstm", "adam"}
    for w in ("dense", "layernorm", "lstm"):
        assert {"NumPy", "hand NumPy"} <= set(got[w].times) and all(t > 0 for t in got[w].times.values())
    assert got["layernorm"].bound > 0 and report["bandwidth"] > 0
    text = benchmarks.table(report, markdown=True)
    if report["fma_peak"] is not None:   # a C compiler was found: the FMA bound is measured and printed
        assert report["fma_peak"] > 0 and f"FMA bound {report['fma_peak'] / 1e9:.0f}" in text
    assert text.startswith("| workload |") and "layernorm float32: NumPy / hand NumPy" in text
    from symgrad.targets.c.streaming import stream_bytes   # the threshold the C columns ran with
    n = stream_bytes()
    assert ("streaming stores: never" if n < 0 else f"streaming stores from {n / 2 ** 20:g} MiB moved") in text


def test_cli_bench_smoke(tmp_path):
    md = tmp_path / "bench.md"
    r = subprocess.run([sys.executable, "-m", "symgrad.cli", "bench", "layernorm", "--small", "--repeats", "1",
                        "--dtype", "float32", "--no-generate", "--markdown", str(md)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "layernorm" in r.stdout and md.read_text().startswith("| workload |")


def test_cli_bench_torch_last_runs_the_kernels_on_the_systems_openmp(tmp_path):
    """--torch-last: torch comes in after the first C kernel, so the one libgomp of the process is the
    system's, started with symgrad's wait settings (build.load_library), and the report says so; by
    default torch is imported first and its own libgomp runs the kernels."""
    pytest.importorskip("torch")
    from conftest import HAVE_CC
    if not HAVE_CC:
        pytest.skip("no C compiler")
    cmd = [sys.executable, "-m", "symgrad.cli", "bench", "batchnorm2d", "--small", "--repeats", "1",
           "--dtype", "float32", "--no-generate"]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    last = subprocess.run(cmd + ["--torch-last"], capture_output=True, text=True, timeout=300, env=env)
    assert last.returncode == 0, last.stderr
    assert "torch imported after the kernels (libgomp.so" in last.stdout
    from symgrad.targets.c.build import SPIN_COUNT
    assert f"OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT={SPIN_COUNT}" in last.stdout and "torch's libgomp" not in last.stdout
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    assert "torch imported first (torch's libgomp, with the wait policy it started with)" in first.stdout


def test_hand_references_agree_with_generated_kernels():
    """The benchmarks' yardsticks compute the same thing as the generated kernels."""
    import symgrad
    rng = np.random.default_rng(0)
    a = benchmarks._args("lstm", benchmarks.SMALL["lstm"], "float64", rng)
    ours = symgrad.load("lstm").backward(
        symgrad.load("lstm").forward(*[a[n] for n in ("x", "h0", "c0", "W_ih", "W_hh", "b_ih", "b_hh")])[1],
        a["dhs"])
    ref = hand_reference.lstm_runner(a)()
    for o, h in zip(ours, ref):
        np.testing.assert_allclose(o, h, rtol=1e-10, atol=1e-12)
    a = benchmarks._args("layernorm", benchmarks.SMALL["layernorm"], "float64", rng)
    k = symgrad.load("layernorm")
    ours = k.backward(k.forward(a["x"], a["gamma"], a["beta"])[1], a["dy"])
    for o, h in zip(ours, hand_reference.layernorm_runner(a)()):
        np.testing.assert_allclose(o, h, rtol=1e-10, atol=1e-12)


def test_ab_script_alternates_two_libraries_and_refuses_one(tmp_path):
    """bench/ab_c.py: the child that alternates two builds in one process (here one library twice, so
    the script's own bookkeeping is what is checked: pairs, the order alternating, a ratio near 1), and
    the parent's refusal when both checkouts build the same library."""
    root = Path(__file__).resolve().parents[1]
    script = str(root / "bench" / "ab_c.py")
    lib = symgrad.load("maxpool2d", backend="c", dtype="float32").module.lib._name
    env = {**os.environ, "PYTHONPATH": str(root)}
    r = subprocess.run([sys.executable, script, "maxpool2d", "--old", str(root), "--pairs", "3", "--repeats", "1",
                        "--old-lib", lib, "--new-lib", lib], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines[:3]] == ["pair 1", "pair 2", "pair 3"]
    assert lines[0].split(": ")[1].startswith("old") and lines[1].split(": ")[1].startswith("new")
    median = float(lines[3].split("median ")[1].split()[0])
    assert lines[3].startswith("maxpool2d new / old") and 0.5 < median < 2.0
    r = subprocess.run([sys.executable, script, "maxpool2d", "--old", str(root), "--new", str(root)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0 and "both checkouts build the same library" in r.stderr


def test_settle_heap_lets_numpy_reuse_heap_memory_for_large_temporaries():
    """After ``settle_heap`` a 4 MiB NumPy array comes from glibc's heap, not from a fresh mapping
    (glibc's ``mallinfo2().hblkhd``: bytes in mapped blocks); the references are timed in that state."""
    import ctypes
    code = r"""
import ctypes, numpy as np
from symgrad.bench.suite import settle_heap
class MI(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
f = ctypes.CDLL(None).mallinfo2
f.restype = MI
def mapped_while_alive():
    base = f().hblkhd
    a = np.empty(4 << 20, np.uint8)
    grew = f().hblkhd - base
    del a
    return grew
print(mapped_while_alive() >= 4 << 20)   # a fresh process: mapped
settle_heap()
print(mapped_while_alive())              # settled: 0 bytes more mapped
"""
    try:
        ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        pytest.skip("not glibc >= 2.33 (no mallinfo2)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "0"], r.stdout


def test_fma_probe_runs_only_independent_full_width_multiply_adds(tmp_path):
    """The FMA bound ``symgrad bench`` prints is a loop of independent FMAs of the widest vectors the
    kernels' flags give (16 zmm with AVX-512, 12 ymm with AVX2), nothing else in the loop: compiled to
    assembly with the kernels' own compiler and flags and read back (and with AVX-512 taken away, the
    AVX2 form too, whose 16 registers hold 12 accumulators and the two constants)."""
    import re
    from symgrad.targets.c import build
    try:
        cc, _ = build.compiler()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no C compiler: {e}")
    flags = [f for f in (*build.BASE_FLAGS, *build.extra_flags()) if f != "-shared"]
    if "-march=native" not in flags or not re.search(r"\bavx2\b", build.cpu_id()):
        pytest.skip("an x86 vector ISA with FMA (AVX2 or AVX-512) is what this checks")
    src = tmp_path / "sg_fma.c"
    src.write_text(benchmarks.FMA_C)
    avx512 = bool(re.search(r"\bavx512f\b", build.cpu_id()))
    for extra, reg, rows in ([[], "zmm", 16], [["-mno-avx512f"], "ymm", 12]) if avx512 else ([[], "ymm", 12],):
        asm = subprocess.run([cc, *flags, *extra, "-S", str(src), "-o", "-"], capture_output=True, text=True,
                             check=True).stdout
        loops = [body for body in re.split(r"\n\.L\d+:\n", asm) if "vfmadd" in body]
        assert loops, "no FMA in the probe's assembly"
        body = max(loops, key=lambda b: b.count("vfmadd")).split("\tj")[0]   # up to the loop's branch
        fmas = re.findall(r"vfmadd\d+ps\t%(\w+), %(\w+), %(\w+)", body)
        assert len(fmas) >= rows and all(r.startswith(reg) for f in fmas for r in f), body
        assert len({f[2] for f in fmas}) >= rows, f"{rows} independent accumulators"
        assert not re.search(r"\tvmov|\(%r", body), "no loads or stores in the FMA loop"
