"""The CLI and the committed generated/ folder."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
