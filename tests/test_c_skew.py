"""Skewed rows (``Fusion.skewed``): a row loop whose first pass sums over the row and its columns and
whose last pass only writes runs each row's last pass beside the next row's first, in one loop. The values must be
the same bit for bit as one row after the other (``SG_SKEW`` 0), and the skew must run on exactly
the rows after the first of each chunk of rows, never where the call streams its stores."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import HAVE_CC

pytestmark = pytest.mark.skipif(not HAVE_CC, reason="no C compiler")

ROOT = Path(__file__).resolve().parents[1]

HARNESS = r"""
#include <stdint.h>
int64_t sg_skewed;   /* rows whose last pass ran beside the next row's first (SG_SKEW: COUNT) */
#include "layernorm.h"
#include "softmax.h"
#include <stdio.h>
#include <stdlib.h>
static uint64_t state = 88172645463325252ull;
static double rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                          return (double)(state >> 11) * (1.0 / 9007199254740992.0) - 0.5; }
#define RUN(real, sfx) { \
    real *x = malloc(sizeof(real) * n), *dy = malloc(sizeof(real) * n), *y = malloc(sizeof(real) * n); \
    real *xk = malloc(sizeof(real) * n), *dx = malloc(sizeof(real) * n), *e = malloc(sizeof(real) * n); \
    real *g = malloc(sizeof(real) * D), *b = malloc(sizeof(real) * D), *gk = malloc(sizeof(real) * D); \
    real *dg = malloc(sizeof(real) * D), *db = malloc(sizeof(real) * D), *t1 = malloc(sizeof(real) * N); \
    real *rstd = malloc(sizeof(real) * N), *mean = malloc(sizeof(real) * N); \
    int64_t s[4] = {layernorm_forward_kept_scratch_size(N, D), layernorm_backward_scratch_size(N, D), \
                    softmax_forward_scratch_size(N, D), softmax_backward_scratch_size(N, D)}, sm = 1; \
    for (int k = 0; k < 4; ++k) sm = s[k] > sm ? s[k] : sm; \
    real *scratch = malloc(sizeof(real) * (size_t)sm); \
    for (int64_t i = 0; i < n; ++i) { x[i] = (real)(3.0 * rnd()); dy[i] = (real)rnd(); } \
    for (int64_t i = 0; i < D; ++i) { g[i] = (real)(1.0 + rnd()); b[i] = (real)rnd(); } \
    layernorm_forward_kept_##sfx(y, rstd, mean, xk, gk, x, g, b, scratch, (real)1e-5, N, D); \
    layernorm_backward_##sfx(dx, dg, db, dy, xk, gk, rstd, mean, scratch, (real)1e-5, N, D); \
    fwrite(y, sizeof(real), n, out); fwrite(xk, sizeof(real), n, out); fwrite(dx, sizeof(real), n, out); \
    fwrite(dg, sizeof(real), D, out); fwrite(db, sizeof(real), D, out); \
    fwrite(rstd, sizeof(real), N, out); fwrite(mean, sizeof(real), N, out); \
    softmax_forward_##sfx(y, e, t1, x, scratch, N, D); \
    softmax_backward_##sfx(dx, dy, e, t1, scratch, N, D); \
    fwrite(y, sizeof(real), n, out); fwrite(dx, sizeof(real), n, out); \
    free(x); free(dy); free(y); free(xk); free(dx); free(e); free(g); free(b); free(gk); free(dg); free(db); \
    free(t1); free(rstd); free(mean); free(scratch); }
int main(int argc, char **argv)
{
    const int64_t N = atoll(argv[1]), D = atoll(argv[2]), n = N * D;
    FILE *out = fopen(argv[3], "wb");
    RUN(float, f32)
    RUN(double, f64)
    fclose(out);
    printf("skewed %lld\n", (long long)sg_skewed);
    return 0;
}
"""

COUNT = "-DSG_SKEW=(__atomic_add_fetch(&sg_skewed, 1, __ATOMIC_RELAXED) > 0)"


def _build(tmp_path, tag, flags):
    """The harness with the generated layernorm.c and softmax.c, each its own translation unit."""
    (tmp_path / "h.c").write_text(HARNESS)
    (tmp_path / "probe.h").write_text("#include <stdint.h>\nextern int64_t sg_skewed;\n")
    exe, gen = tmp_path / f"h_{tag}", ROOT / "generated" / "c"
    cmd = ["cc", "-std=c99", "-O2", "-march=native", "-fopenmp", "-I", str(gen), "-include", str(tmp_path / "probe.h"),
           *flags, str(tmp_path / "h.c"), str(gen / "layernorm.c"), str(gen / "softmax.c"), "-o", str(exe), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


def _run(exe, N, D, out):
    r = subprocess.run([str(exe), str(N), str(D), str(out)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1]), out.read_bytes()


def _chunks(N):
    return (N + 7) // 8 if N < 128 else 16   # Fusion.row_group's chunks of rows


@pytest.mark.parametrize("N,D", [(1, 5), (9, 30), (64, 64), (37, 2100), (130, 1000), (300, 129)])
def test_skewed_rows_compute_what_one_row_after_another_computes(tmp_path, N, D):
    """Rows shorter than a block of 64 (the skewed loop is its tails only), one block, a row longer
    than the stream pieces of 1024 with a ragged end, 16 chunks of rows, and a row of two blocks and
    one column. Counted per call: LayerNorm's backward (its first pass adds column sums) and forward
    (passes in between) skew; softmax's backward (two passes, no column sums) and forward (a max
    first) do not (``Fusion.skew``), and compute the same."""
    plain, ref = _run(_build(tmp_path, "off", ["-DSG_SKEW=0"]), N, D, tmp_path / "off.bin")
    count, out = _run(_build(tmp_path, "on", [COUNT]), N, D, tmp_path / "on.bin")
    assert plain == 0
    assert count == 2 * 2 * (N - _chunks(N))   # float and double: LayerNorm's forward and backward
    assert out == ref


def test_no_skew_where_the_call_streams(tmp_path):
    """Streaming stores write a row's piece from a buffer after the pass (``stream_loop``): a call
    that streams runs its rows one after the other; the values stay the same."""
    N, D = 37, 2100
    _, ref = _run(_build(tmp_path, "off", ["-DSG_SKEW=0"]), N, D, tmp_path / "off.bin")
    count, out = _run(_build(tmp_path, "nt", [COUNT, "-DSYMGRAD_STREAM_BYTES=0"]), N, D, tmp_path / "nt.bin")
    assert count == 0          # both stream at threshold 0 (rows of 8400 bytes)
    assert out == ref
    count, out = _run(_build(tmp_path, "short", [COUNT, "-DSYMGRAD_STREAM_BYTES=0", "-DSG_STREAM_MIN_ROW=8401"]),
                      N, D, tmp_path / "short.bin")
    assert count == 2 * (N - _chunks(N))   # float rows too short to stream: those skew; double rows do not
    assert out == ref
