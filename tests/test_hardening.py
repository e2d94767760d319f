"""Bad input, bad specs, failed and concurrent runs: clear errors and nothing lost.

Each test here is a row of the table in docs/bad-input.md, "What bad input gets".
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symgrad as sg
from symgrad.cli import main

ROOT = Path(__file__).resolve().parents[1]
N, D, M = sg.dims("N D M")
z = sp.Symbol("z", real=True)


@pytest.fixture
def dense():
    return sg.load("dense")


def _xwb(n=3, d=4, m=5, dtype=np.float64):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((d, m)).astype(dtype),
            rng.standard_normal(m).astype(dtype))


# -- arrays at the kernel boundary ------------------------------------------------------------
def test_wrong_shape_names_argument_expected_and_received(dense):
    x, W, b = _xwb()
    with pytest.raises(ValueError, match=r"W: expected shape \(D, M\) = \(4, 5\), got \(3, 5\)"):
        dense.forward(x, W[:3], b)
    with pytest.raises(ValueError, match=r"b: expected 1 axes \(M\), got shape \(5, 1\)"):
        dense.forward(x, W, b[:, None])


def test_wrong_dtype_is_refused_not_cast(dense):
    x, W, b = _xwb()
    with pytest.raises(TypeError, match="W: expected dtype float64, got float32"):
        dense.forward(x, W.astype(np.float32), b)
    with pytest.raises(TypeError, match="x: expected dtype float32, got float64"):
        sg.load("dense", dtype="float32").forward(x, W.astype(np.float32), b.astype(np.float32))
    with pytest.raises(TypeError, match="x: expected dtype float64, got complex128"):
        dense.forward(x.astype(complex), W, b)


def test_integer_arrays_are_converted_exactly(dense):
    x, W, b = _xwb()
    xi = np.arange(12).reshape(3, 4)
    y, _ = dense.forward(xi, W, b)
    assert y.dtype == np.float64 and np.array_equal(y, xi.astype(float) @ W + b)


def test_non_contiguous_views_give_the_right_answer(dense):
    x, W, b = _xwb(n=6, d=8)
    y, c = dense.forward(x[::2, ::2], W[::2], b)
    assert np.allclose(y, x[::2, ::2] @ W[::2] + b, rtol=1e-14)
    dx, dW, db = dense.backward(c, np.ones_like(y)[:, ::1])
    assert dx.shape == (3, 4)


def test_wrong_number_of_arguments(dense):
    x, W, b = _xwb()
    with pytest.raises(TypeError):
        dense.forward(x, W)
    with pytest.raises(TypeError):
        dense.forward(x, W, b, b)


def test_cache_from_another_kernel(dense):
    x, W, b = _xwb()
    _, cache = sg.load("tanh").forward(x)
    with pytest.raises(TypeError, match="cache: expected the cache returned by dense.forward, got 'tanh'"):
        dense.backward(cache, np.ones((3, 5)))
    with pytest.raises(TypeError, match="cache: expected"):
        dense.backward((1, 2), np.ones((3, 5)))


def test_upstream_gradient_shape_and_scalar_dloss(dense):
    x, W, b = _xwb()
    y, c = dense.forward(x, W, b)
    with pytest.raises(ValueError, match=r"dy: expected shape \(N, M\) = \(3, 5\), got \(5, 3\)"):
        dense.backward(c, np.ones((5, 3)))
    loss, lc = sg.load("mse").forward(y, y + 1)
    with pytest.raises(ValueError, match="dloss: expected a scalar"):
        sg.load("mse").backward(lc, np.ones(2))


@pytest.mark.parametrize("name", [n for n in sg.REGISTRY.names() if sg.REGISTRY.get(n).kind != "optimizer"
                                  and sg.REGISTRY.get(n).kind in ("layer", "activation", "loss", "recurrent")])
def test_empty_batch_works(name):
    from symgrad.verify.layers import outputs_of, random_inputs
    spec = sg.REGISTRY.get(name)
    args = random_inputs(spec, np.random.default_rng(0), {"N": 0})
    if spec.kind == "activation" or name in ("mse", "bce_logits"):
        args = {k: v[:0] for k, v in args.items()}
    k = sg.load(name)
    with np.errstate(invalid="ignore", divide="ignore"):  # the mean of an empty batch is nan, as in torch
        outs, cache = outputs_of(spec, k.forward(**args))
        ups = [1.0] if spec.kind == "loss" else [np.zeros(np.shape(o)) for o in outs]
        grads = k.backward(cache, *ups)
    for inp, g in zip(spec.diff_inputs, grads):
        assert g.shape == args[inp.name].shape
    if spec.kind == "loss":
        assert np.isnan(outs[0])


def test_nan_and_inf_propagate_without_crashing():
    z = np.array([[np.nan, 1.0, np.inf], [0.0, -np.inf, 2.0]])
    with np.errstate(invalid="ignore", over="ignore"):
        a, c = sg.load("softmax").forward(z)
        (dz,) = sg.load("softmax").backward(c, np.ones_like(z))
        s, c2 = sg.load("sigmoid").forward(z)
    assert np.isnan(a[0]).all() and np.isnan(dz[0]).all()
    assert s[0, 2] == 1.0 and s[1, 1] == 0.0 and np.isnan(s[0, 0])


@pytest.mark.parametrize("bad,match", [(np.array([0, 4]), "range.0, 4.*got 4"),
                                       (np.array([-1, 0]), "got -1")])
def test_class_ids_out_of_range(bad, match):
    with pytest.raises(ValueError, match=match):
        sg.load("softmax_cross_entropy").forward(np.zeros((2, 4)), bad)


def test_class_ids_must_be_integers():
    with pytest.raises(TypeError, match="target: expected integer class ids, got dtype float64"):
        sg.load("softmax_cross_entropy").forward(np.zeros((2, 4)), np.array([0.0, 1.0]))
    loss, _ = sg.load("softmax_cross_entropy").forward(np.zeros((2, 4)), np.array([0, 3], dtype=np.uint8))
    assert np.isclose(loss, np.log(4))


def test_bad_hyperparameter_type():
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match="eps: expected a real number, got str"):
        sg.load("layernorm").forward(x, np.ones(3), np.zeros(3), eps="small")


def test_unknown_name_and_bad_load_arguments():
    with pytest.raises(LookupError, match="unknown kernel 'densee'"):
        sg.load("densee")
    with pytest.raises(ValueError, match="dtype: expected one of float32, float64, got 'float16'"):
        sg.load("dense", dtype="float16")
    with pytest.raises(ValueError, match="backend"):
        sg.load("dense", backend="fortran")


# -- bad specs ----------------------------------------------------------------------------------
def test_bad_specs_fail_before_anything_is_written(tmp_path):
    with pytest.raises(sg.SpecError, match="not differentiable"):
        spec = sg.activation("user_floor", sp.floor(z), register=False)
        spec.derivation  # noqa: B018 - deriving raises
    gamma_act = sg.activation("user_gamma", sp.gamma(z), register=False)
    sg.REGISTRY.add(gamma_act)
    try:
        with pytest.raises(sg.SpecError, match="user_gamma: gamma has no NumPy equivalent"):
            sg.generate(["dense", "user_gamma"], out=tmp_path)
        assert not (tmp_path / "numpy").exists(), "a failed run must not write part of its files"
        r = CliRunner().invoke(main, ["generate", "dense", "user_gamma", "--out", str(tmp_path)])
        assert r.exit_code == 2 and "gamma has no NumPy equivalent" in r.output and "Traceback" not in r.output
    finally:
        sg.REGISTRY.remove("user_gamma")


@pytest.mark.parametrize("name", ["../evil", "a/b", "with space", "_private", "class", "np", ""])
def test_names_cannot_escape_or_inject(name):
    with pytest.raises(sg.SpecError, match="not a valid identifier|reserved"):
        sg.activation(name, z, register=False)


def test_formula_text_is_parsed_safely(tmp_path):
    for text in ["bad=__import__('os').system('true')", "bad=z.__class__", "bad=lambda: 1",
                 "bad=exp(z)[0]", "bad=z; import os", "bad='z'"]:
        r = CliRunner().invoke(main, ["generate", "--formula", text, "--out", str(tmp_path)])
        assert r.exit_code == 2 and "not allowed" in r.output or "cannot be read" in r.output, (text, r.output)
    assert not (tmp_path / "numpy").exists()


def test_user_formula_through_cli_is_stable(tmp_path):
    r = CliRunner().invoke(main, ["generate", "user_softplus", "--formula", "user_softplus=log(1+exp(u))",
                                  "--out", str(tmp_path)])
    try:
        assert r.exit_code == 0, r.output
        k = sg.load("user_softplus")
        with np.errstate(over="raise", invalid="raise"):
            a, c = k.forward(np.array([-1e4, 0.0, 1e4]))
            (du,) = k.backward(c, np.ones(3))
        assert np.allclose(a, [0.0, np.log(2), 1e4]) and np.allclose(du, [0.0, 0.5, 1.0])
    finally:
        sg.REGISTRY.remove("user_softplus")


# -- output folder, concurrency ------------------------------------------------------------------
def test_output_folder_problems(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = CliRunner().invoke(main, ["generate", "dense", "--out", str(f)])
    assert r.exit_code == 2 and "is a file" in r.output
    r = CliRunner().invoke(main, ["generate", "dense", "--out", str(tmp_path / "missing" / "deeper")])
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "numpy").write_text("not a folder")
    r = CliRunner().invoke(main, ["generate", "dense", "--out", str(tmp_path / "g")])
    assert r.exit_code == 2 and "cannot write" in r.output


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    r = CliRunner().invoke(main, ["generate", "dense", "--out", str(ro)])
    assert r.exit_code == 2 and "cannot write" in r.output


def test_concurrent_generate_leaves_a_consistent_tree(tmp_path):
    from symgrad.generation import render_all
    cmd = [sys.executable, "-m", "symgrad.cli", "generate", "--target", "numpy", "--out", str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    files = render_all(targets=("numpy",))
    for rel, text in files.items():
        assert (tmp_path / rel).read_text() == text
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files left"


def test_a_bad_streaming_threshold_setting_is_named(tmp_path):
    """docs/bad-input.md: ``SYMGRAD_STREAM_BYTES`` that is not a byte count or ``off`` stops the first
    C load with a ValueError naming the variable (the probe-without-memory half of the row:
    tests/test_c_streaming.py)."""
    code = ("import symgrad\ntry:\n    symgrad.load('relu', backend='c')\n"
            "except ValueError as e:\n    print('ValueError:', e)\n")
    for bad in ("lots", "-5"):
        env = {**os.environ, "SYMGRAD_STREAM_BYTES": bad, "SYMGRAD_CACHE": str(tmp_path)}
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert f"ValueError: SYMGRAD_STREAM_BYTES={bad!r}: expected a number of bytes" in r.stdout, r.stdout + r.stderr
