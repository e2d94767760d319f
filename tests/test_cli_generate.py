"""The CLI and the committed generated/ folder."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import symgrad
from symgrad.cli import main

from conftest import import_path, layer_names

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_help():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and symgrad.__version__ in r.output
    for cmd in (["--help"], ["generate", "--help"], ["check", "--help"], ["list", "--help"]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 0 and "Usage" in r.output


def test_list_names_every_builtin():
    r = CliRunner().invoke(main, ["list"])
    assert r.exit_code == 0
    for n in layer_names():
        assert n in r.output


def test_generate_writes_only_changes_and_check_detects_drift(tmp_path):
    r = CliRunner().invoke(main, ["generate", "dense", "sigmoid", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    f = tmp_path / "numpy" / "dense.py"
    assert f.is_file() and (tmp_path / "numpy" / "sigmoid.py").is_file()
    mtime = f.stat().st_mtime_ns
    r = CliRunner().invoke(main, ["generate", "dense", "--out", str(tmp_path)])
    assert "0 written" in r.output and f.stat().st_mtime_ns == mtime
    r = CliRunner().invoke(main, ["generate", "dense", "--out", str(tmp_path), "--check"])
    assert r.exit_code == 0
    f.write_text(f.read_text() + "# edited\n")
    r = CliRunner().invoke(main, ["generate", "dense", "--out", str(tmp_path), "--check"])
    assert r.exit_code == 1 and "dense.py" in r.output
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def test_user_errors_are_messages_not_tracebacks(tmp_path):
    r = CliRunner().invoke(main, ["generate", "no_such_layer", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "unknown kernel 'no_such_layer'" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "numpy").exists(), "nothing is written when a name is unknown"
    r = CliRunner().invoke(main, ["check", "nope"])
    assert r.exit_code == 2 and "unknown kernel" in r.output


def test_check_command_prints_table_and_passes():
    r = CliRunner().invoke(main, ["check", "dense", "softmax"])
    assert r.exit_code == 0, r.output
    assert "max abs err" in r.output and "dW" in r.output and "FAIL" not in r.output


def test_committed_generated_is_fresh(tmp_path):
    """generated/ must equal a fresh generation byte for byte."""
    from symgrad.generation import render_all
    files = render_all()
    stale = []
    for rel, text in files.items():
        p = ROOT / "generated" / rel
        if not p.is_file() or p.read_text(encoding="utf-8") != text:
            stale.append(rel)
    assert not stale, f"regenerate with `symgrad generate`: {stale}"
    committed = {str(p.relative_to(ROOT / "generated")) for p in (ROOT / "generated").rglob("*")
                 if p.is_file() and p.name != "README.md"}
    extra = committed - set(files)
    assert not extra, f"files in generated/ that no spec produces: {sorted(extra)}"


def test_generation_is_deterministic_across_hash_seeds(tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "symgrad.cli", "generate", "--target", "numpy",
                        "softmax_cross_entropy", "dense_sigmoid", "--out", str(out)],
                       check=True, env=env, capture_output=True)
        outs.append({p.name: p.read_bytes() for p in sorted(out.rglob("*.py"))})
    assert outs[0] == outs[1] and len(outs[0]) == 2


def test_generated_module_is_standalone(tmp_path):
    """The committed NumPy modules import only numpy and equal what symgrad.load returns."""
    code = ("import sys, importlib.util\n"
            "sys.modules['symgrad'] = None\n"  # any import of symgrad would fail
            f"spec = importlib.util.spec_from_file_location('m', {str(ROOT / 'generated/numpy/dense.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "import numpy as np\n"
            "y, c = m.forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))\n"
            "print(y.sum())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "24.0"
    mod = import_path(ROOT / "generated/numpy/softmax_cross_entropy.py")
    z = np.random.default_rng(0).standard_normal((4, 3))
    t = np.array([0, 2, 1, 1])
    loss_a, _ = mod.forward(z, t)
    loss_b, _ = symgrad.load("softmax_cross_entropy").forward(z, t)
    assert loss_a == loss_b


# -- user spec files: --spec FILE defines the default set of kernels -----------------------------
SPEC_FILE = '''import sympy as sp
import symgrad as sg

N, D, M = sg.dims("N D M")


@sg.layer(x=(N, D), W=(D, M))
def {prefix}_gated(x, W, scale=0.5):
    """y = tanh(x W) * scale"""
    return sg.tanh(x @ W) * scale


u = sp.Symbol("u", real=True)
sg.activation("{prefix}_swish", u / (1 + sp.exp(-u)))
'''


@pytest.fixture
def registry_restored():
    """Kernels that a test's spec files register are removed again afterwards."""
    before = set(symgrad.REGISTRY.names())
    yield
    for name in set(symgrad.REGISTRY.names()) - before:
        symgrad.REGISTRY.remove(name)


def spec_file(tmp_path, prefix):
    path = tmp_path / f"{prefix}_spec.py"
    path.write_text(SPEC_FILE.format(prefix=prefix), encoding="utf-8")
    return path


def written(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_generate_spec_without_names_generates_only_the_file_kernels(tmp_path, registry_restored):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["generate", "--spec", str(spec_file(tmp_path, "sa")), "--out", str(out)])
    assert r.exit_code == 0, r.output
    build_files = ["c/CMakeLists.txt", "c/Makefile", "c/symgrad.pc.in"]   # the C target's project files
    assert written(out) == sorted(build_files + ["c/sa_gated.c", "c/sa_gated.h", "c/sa_swish.c", "c/sa_swish.h",
                                                 "numpy/sa_gated.py", "numpy/sa_gated.pyi", "numpy/sa_swish.py",
                                                 "numpy/sa_swish.pyi"])
    assert "11 written" in r.output


def test_generate_spec_with_names_generates_those(tmp_path, registry_restored):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["generate", "sb_swish", "dense", "--target", "numpy",
                                  "--spec", str(spec_file(tmp_path, "sb")), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert written(out) == ["numpy/dense.py", "numpy/dense.pyi", "numpy/sb_swish.py", "numpy/sb_swish.pyi"]


def test_generate_formula_without_names_generates_only_it(tmp_path, registry_restored):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["generate", "--formula", "sc_softplus=log(1+exp(u))", "--target", "numpy",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert written(out) == ["numpy/sc_softplus.py", "numpy/sc_softplus.pyi"]


def test_list_spec_and_formula_list_what_they_define(tmp_path, registry_restored):
    r = CliRunner().invoke(main, ["list", "--spec", str(spec_file(tmp_path, "sd"))])
    assert r.exit_code == 0, r.output
    rows = [line.split()[:2] for line in r.output.splitlines()]
    assert rows == [["sd_gated", "layer"], ["sd_swish", "activation"]]
    r = CliRunner().invoke(main, ["list", "--formula", "sd_softsign=z/(1+abs(z))"])
    assert r.exit_code == 0, r.output
    assert [line.split()[:2] for line in r.output.splitlines()] == [["sd_softsign", "activation"]]
    r = CliRunner().invoke(main, ["list"])
    assert "dense" in r.output and "sd_gated" in r.output, "without --spec: every registered kernel"


@pytest.mark.parametrize("text, message", [
    ("import symgrad\nx = (\n", "bad.py:2: SyntaxError"),
    ("import symgrad\n\nx = 1 / 0\n", "bad.py:3: ZeroDivisionError: division by zero"),
    ("import symgrad as sg\nsg.activation('x y', sg.dims('N')[0])\n", "bad.py: layer name 'x y' is not a valid identifier"),
    ("import symgrad\n", "--spec BAD: defines no kernel"),
])
def test_bad_spec_file_is_an_error_message(tmp_path, registry_restored, text, message):
    bad = tmp_path / "bad.py"
    bad.write_text(text, encoding="utf-8")
    for cmd in (["generate", "--out", str(tmp_path / "out")], ["list"]):
        r = CliRunner().invoke(main, [*cmd, "--spec", str(bad)])
        assert r.exit_code == 2, r.output
        assert r.output.startswith("error: ") and message.replace("BAD", str(bad)) in r.output, r.output
        assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_spec_that_is_not_a_python_file(tmp_path):
    for path in (tmp_path / "missing.py", tmp_path):
        r = CliRunner().invoke(main, ["generate", "--spec", str(path), "--out", str(tmp_path / "out")])
        assert r.exit_code == 2 and f"error: --spec {path}: not a Python file" in r.output, r.output


def test_python_dash_m_symgrad():
    r = subprocess.run([sys.executable, "-m", "symgrad", "--version"], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"symgrad, version {symgrad.__version__}"
    r = subprocess.run([sys.executable, "-m", "symgrad", "list", "--help"], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.startswith("Usage: symgrad list"), r.stdout + r.stderr
