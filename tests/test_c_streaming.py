"""Streaming stores (``sg_stream_*`` in the C helpers; the threshold: symgrad/targets/c/streaming.py):
a kernel writes the same values with and without them, streams exactly the outputs and the calls it
should, and the threshold is measured once, kept in the compile cache, and overridable."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import HAVE_CC

pytestmark = pytest.mark.skipif(not HAVE_CC, reason="no C compiler")

ROOT = Path(__file__).resolve().parents[1]

HARNESS = r"""
#include <stdint.h>
static int64_t sg_streamed;   /* elements written by sg_stream_* (SG_STREAM_PROBE, set on the command line) */
#include "layernorm.c"
#include <stdio.h>
#include <stdlib.h>
static uint64_t state = 88172645463325252ull;
static double rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                          return (double)(state >> 11) * (1.0 / 9007199254740992.0) - 0.5; }
#define RUN(real, sfx) { \
    real *x = malloc(sizeof(real) * n), *dy = malloc(sizeof(real) * n), *y = malloc(sizeof(real) * n); \
    real *xk = malloc(sizeof(real) * n), *dx = malloc(sizeof(real) * n); \
    real *g = malloc(sizeof(real) * D), *b = malloc(sizeof(real) * D), *gk = malloc(sizeof(real) * D); \
    real *dg = malloc(sizeof(real) * D), *db = malloc(sizeof(real) * D); \
    real *rstd = malloc(sizeof(real) * N), *mean = malloc(sizeof(real) * N); \
    int64_t sf = layernorm_forward_kept_scratch_size(N, D), sb = layernorm_backward_scratch_size(N, D); \
    real *scratch = malloc(sizeof(real) * (size_t)(sf > sb ? sf : sb)); \
    for (int64_t i = 0; i < n; ++i) { x[i] = (real)(3.0 * rnd()); dy[i] = (real)rnd(); } \
    for (int64_t i = 0; i < D; ++i) { g[i] = (real)(1.0 + rnd()); b[i] = (real)rnd(); } \
    layernorm_forward_kept_##sfx(y, rstd, mean, xk, gk, x, g, b, scratch, (real)1e-5, N, D); \
    layernorm_backward_##sfx(dx, dg, db, dy, xk, gk, rstd, mean, scratch, (real)1e-5, N, D); \
    fwrite(y, sizeof(real), n, out); fwrite(xk, sizeof(real), n, out); fwrite(dx, sizeof(real), n, out); \
    fwrite(dg, sizeof(real), D, out); fwrite(db, sizeof(real), D, out); \
    fwrite(rstd, sizeof(real), N, out); fwrite(mean, sizeof(real), N, out); \
    free(x); free(dy); free(y); free(xk); free(dx); free(g); free(b); free(gk); free(dg); free(db); \
    free(rstd); free(mean); free(scratch); }
int main(int argc, char **argv)
{
    const int64_t N = atoll(argv[1]), D = atoll(argv[2]), n = N * D;
    FILE *out = fopen(argv[3], "wb");
    RUN(float, f32)
    RUN(double, f64)
    fclose(out);
    printf("streamed %lld\n", (long long)sg_streamed);
    return 0;
}
"""


def _run(tmp_path, tag, flags, N=37, D=2100):
    """Build the harness over the generated layernorm.c with ``flags``; (elements streamed, outputs)."""
    (tmp_path / "h.c").write_text(HARNESS)
    exe, out = tmp_path / f"h_{tag}", tmp_path / f"out_{tag}.bin"
    cmd = ["cc", "-std=c99", "-O2", "-march=native", "-fopenmp", "-I", str(ROOT / "generated" / "c"),
           "-DSG_STREAM_PROBE(n)=__atomic_fetch_add(&sg_streamed, (n), __ATOMIC_RELAXED)", *flags, str(tmp_path / "h.c"), "-o", str(exe), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe), str(N), str(D), str(out)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1]), out.read_bytes()


def test_streamed_layernorm_writes_what_the_ordinary_stores_write(tmp_path):
    """37 rows of 2100 (pieces of 1024 and a ragged 52; rows of 8400 bytes, so every other row starts
    off a 64-byte line): streamed whenever possible (threshold 0), never (-1, the default), and at a
    threshold between what the float and the double calls move (3 arrays of N x D each)."""
    N, D = 37, 2100
    plain, ref = _run(tmp_path, "never", [])
    assert plain == 0
    always, out = _run(tmp_path, "always", ["-DSYMGRAD_STREAM_BYTES=0"])
    assert always == 2 * 3 * N * D        # y, the copy of x and dx, in both variants
    assert out == ref                      # byte for byte: outputs, cache, gradients, statistics
    # pieces of 7: the row sums that share a streamed pass add in that order, the same with or without
    # streaming stores (a build's pieces fix the order; so compared with its own ordinary stores)
    _, ref7 = _run(tmp_path, "chunk7never", ["-DSG_STREAM_CHUNK=7"])
    small, out = _run(tmp_path, "chunk7", ["-DSYMGRAD_STREAM_BYTES=0", "-DSG_STREAM_CHUNK=7"])
    assert small == 2 * 3 * N * D and out == ref7
    between, out = _run(tmp_path, "between", [f"-DSYMGRAD_STREAM_BYTES={3 * N * D * 4 + 1}"])
    assert between == 3 * N * D and out == ref   # only the double variant's calls move that much
    short, out = _run(tmp_path, "short", ["-DSYMGRAD_STREAM_BYTES=0", "-DSG_STREAM_MIN_ROW=8401"])
    assert short == 3 * N * D and out == ref     # float rows (8400 bytes) too short, double rows not


RUNTIME = r"""
import sys, numpy as np, symgrad
from symgrad.targets.c import streaming
out = {"flags": np.array(streaming.flags())}
rng = np.random.default_rng(0)
for dt in ("float32", "float64"):
    x = rng.standard_normal((70, 300)).astype(dt); dy = rng.standard_normal((70, 300)).astype(dt)
    g = rng.standard_normal(300).astype(dt); b = rng.standard_normal(300).astype(dt)
    rm, rv = np.zeros(300, dt), np.ones(300, dt)   # batchnorm's running statistics, updated in place
    for name, args in (("layernorm", (x, g, b)), ("batchnorm", (x, g, b, rm, rv)), ("softmax", (x,))):
        k = symgrad.load(name, backend="c", dtype=dt)
        res = k.forward(*args)
        grads = k.backward(res[-1], dy)
        for i, a in enumerate(list(res[:-1]) + list(grads)):
            out[f"{name}_{dt}_{i}"] = np.asarray(a)
    out[f"running_{dt}"] = np.concatenate([rm, rv])
    W = rng.standard_normal((300, 200)).astype(dt); bias = rng.standard_normal(200).astype(dt)
    k = symgrad.load("dense", backend="c", dtype=dt)
    y, cache = k.forward(x, W, bias)
    for i, a in enumerate([y, *k.backward(cache, rng.standard_normal((70, 200)).astype(dt))]):
        out[f"dense_{dt}_{i}"] = a
np.savez(sys.argv[1], **out)
"""


def test_the_runtime_compiles_the_threshold_in_and_the_values_do_not_change(tmp_path):
    """Through ``symgrad.load``: kernels built with ``SYMGRAD_STREAM_BYTES=0`` (stream whenever they
    can) and ``off`` give the same arrays, bit for bit, forward and backward, float and double."""
    res = {}
    for setting in ("0", "off"):
        env = {**os.environ, "SYMGRAD_STREAM_BYTES": setting}   # the shared compile cache: built once a machine
        path = tmp_path / f"{setting}.npz"
        r = subprocess.run([sys.executable, "-c", RUNTIME, str(path)], env=env, capture_output=True, text=True,
                           timeout=600, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        res[setting] = dict(np.load(path))
    assert list(res["0"].pop("flags")) == ["-DSYMGRAD_STREAM_BYTES=0"] and list(res["off"].pop("flags")) == []
    assert res["0"].keys() == res["off"].keys() and len(res["0"]) >= 20
    for key, a in res["0"].items():
        assert a.dtype == res["off"][key].dtype and a.tobytes() == res["off"][key].tobytes(), key


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """streaming.stream_bytes() with its process cache cleared, the compile cache in tmp_path."""
    from symgrad.targets.c import streaming
    monkeypatch.setenv("SYMGRAD_CACHE", str(tmp_path))
    monkeypatch.delenv("SYMGRAD_STREAM_BYTES", raising=False)
    streaming.stream_bytes.cache_clear()
    yield streaming
    streaming.stream_bytes.cache_clear()


def test_the_threshold_setting_is_parsed_or_refused(fresh, monkeypatch):
    assert [fresh.parse(t) for t in ("0", "4096", " off ", "never", "-1")] == [0, 4096, -1, -1, -1]
    for bad in ("-5", "lots", "1.5"):
        with pytest.raises(ValueError, match="SYMGRAD_STREAM_BYTES"):
            fresh.parse(bad)
    monkeypatch.setenv("SYMGRAD_STREAM_BYTES", "12345")
    assert fresh.stream_bytes() == 12345 and fresh.flags() == ("-DSYMGRAD_STREAM_BYTES=12345",)
    fresh.stream_bytes.cache_clear()
    monkeypatch.setenv("SYMGRAD_STREAM_BYTES", "off")
    assert fresh.stream_bytes() == -1 and fresh.flags() == ()


def test_the_crossover_is_where_streaming_wins_from_then_on():
    from symgrad.targets.c.streaming import crossover
    mib = 1 << 20
    table = [(3 * mib, 1.0, 1.9), (6 * mib, 1.0, 0.9), (12 * mib, 1.0, 1.2), (24 * mib, 1.0, 0.94),
             (48 * mib, 1.0, 0.8)]
    assert crossover(table) == 24 * mib              # faster at 6 MiB, but not at 12: from 24 on
    assert crossover(table[:-1] + [(48 * mib, 1.0, 0.96)]) == -1   # not 5% faster at the largest: never
    assert crossover([(b, 1.0, 0.5) for b, _, _ in table]) == 3 * mib
    assert crossover(list(reversed(table))) == 24 * mib   # order of the rows does not matter


def test_the_measurement_runs_once_and_is_kept(fresh, monkeypatch, tmp_path):
    mib = 1 << 20
    calls = []

    def fake(*a, **k):
        calls.append(1)
        return [(3 * mib, 1.0, 1.5), (96 * mib, 1.0, 0.7)]
    monkeypatch.setattr(fresh, "measure", fake)
    assert fresh.stream_bytes() == 96 * mib and len(calls) == 1
    kept = json.loads(fresh.cache_file().read_text())
    assert kept["bytes"] == 96 * mib and len(kept["table"]) == 2
    assert not list(tmp_path.glob(".stream-*"))          # no temporary left behind
    fresh.stream_bytes.cache_clear()
    assert fresh.stream_bytes() == 96 * mib and len(calls) == 1   # read back, not measured again
    monkeypatch.setenv("SYMGRAD_STREAM_BYTES", "0")
    fresh.stream_bytes.cache_clear()
    assert fresh.stream_bytes() == 0 and len(calls) == 1           # the setting wins over the file


def test_a_probe_that_cannot_run_leaves_the_kernels_without_streaming(fresh, monkeypatch):
    def fails(*a, **k):
        raise MemoryError("the streaming-store probe could not allocate its arrays")
    monkeypatch.setattr(fresh, "measure", fails)
    assert fresh.flags() == () and not fresh.cache_file().exists()   # nothing kept: measured next time


def test_the_probe_measures_both_kinds_of_store(fresh):
    """The compiled probe itself, small: sizes 64..256 rows of 1024 floats, the bytes its pass moves
    (three arrays), positive times for both kinds of store."""
    table = fresh.measure(max_rows=256, reps=1)
    assert [b for b, _, _ in table] == [3 * rows * 1024 * 4 for rows in (64, 128, 256)]
    assert all(0 < p < 1 and 0 < s < 1 for _, p, s in table)


ROW_SUM = r"""
import numpy as np, symgrad as sg
N, D = sg.dims("N D")

@sg.layer(x=(N, D), register=False)
def doubled_with_row_sums(x):
    "2 x and the row sums of x."
    return 2 * x, sg.sum(x, axis=-1, keepdims=True)
sg.REGISTRY.add(doubled_with_row_sums)
rng = np.random.default_rng(0)
for dt, tol in (("float32", 1e-6), ("float64", 1e-14)):
    x = rng.standard_normal((40, 2100)).astype(dt)
    k = sg.load("doubled_with_row_sums", backend="c", dtype=dt)
    (y, s), cache = k.forward(x)
    ref = x.astype(np.float64).sum(1, keepdims=True)
    assert np.array_equal(y, 2 * x), dt
    assert np.max(np.abs(s - ref)) <= tol * np.max(np.abs(x).sum(1)), (dt, np.max(np.abs(s - ref)))
print("ok")
"""


def test_a_sum_in_a_streamed_pass_counts_every_piece_once():
    """A pass that streams y = 2 x and sums the row: rows of 2100 go in pieces of 1024, 1024 and 52,
    each piece's sum laned from its own start (``laned(..., "_s0", "_s1", ...)``); starting each at 0
    counted the earlier pieces again."""
    env = {**os.environ, "SYMGRAD_STREAM_BYTES": "0"}
    r = subprocess.run([sys.executable, "-c", ROW_SUM], env=env, capture_output=True, text=True, timeout=600,
                       cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
