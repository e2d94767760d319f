"""The float products' own AVX-512 kernel (``sg_mk_f32`` in the C helpers, docs/c-backend.md) against a
double-precision reference: every transpose combination, beta 0 and 1, sizes on every edge of its
blocking (m % 8, n % 32, n % 16, k % 16, k % 128), leading dimensions wider than the matrices (the
padding must stay untouched), on one thread and split over the OpenMP team (by rows and by columns),
and from a right operand prepared once (``sg_prep_b``: packed) or a left one (``sg_prepa``); and once
more under ASan/UBSan. Skipped where the compiler does not target AVX-512 (the kernel is not compiled there)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_c_backend import _sanitizer_ok

ROOT = Path(__file__).resolve().parents[1]

HARNESS = r"""
#ifdef SG_TEST_PREPA
#include "conv2d.c"   /* a kernel with a prepared left operand (sg_prepa) */
#define SG_PREP_MODE 2
#else
#include "lstm.c"     /* a kernel with products and prepared right operands (sg_prep_b) */
#define SG_PREP_MODE 1
#endif
#include <stdio.h>
#include <stdlib.h>
#ifndef SG_MK_F32
int main(void) { puts("no microkernel"); return 77; }
#else
static uint64_t state = 88172645463325252ull;
static float rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                         return (float)((state >> 40) * (1.0 / 16777216.0)) - 0.5f; }
static int check(int ta, int tb, int64_t m, int64_t n, int64_t k, int beta, int prep)
{
    const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    const int64_t lda = ac + 3, ldb = bc + 5, ldc = n + 2;
    float *a = malloc(sizeof(float) * ar * lda), *b = malloc(sizeof(float) * br * ldb);
    float *c = malloc(sizeof(float) * m * ldc), *c0 = malloc(sizeof(float) * m * ldc);
    for (int64_t i = 0; i < ar * lda; ++i) a[i] = rnd();
    for (int64_t i = 0; i < br * ldb; ++i) b[i] = rnd();
    for (int64_t i = 0; i < m * ldc; ++i) c[i] = c0[i] = rnd();
#ifndef SG_TEST_PREPA
    if (prep) {   /* B prepared once (sg_prep_b: packed), then the product from it */
        float *bp = malloc(sizeof(float) * k * (n + 31));
        sg_prep_b_f32(tb, k, n, b, ldb, bp);
        sg_gemm_prep_f32(ta, m, n, k, a, lda, bp, beta, c, ldc);
        free(bp);
    } else
#else
    if (prep) {   /* A prepared once (sg_prepa: packed, rows past m zeros), then the product from it */
        float *ap = malloc(sizeof(float) * (m + 7) * k);
        sg_prepa_f32(ta, m, k, a, lda, ap);
        sg_gemm_prepa_f32(m, n, k, ap, tb, b, ldb, beta, c, ldc);
        free(ap);
    } else
#endif
        sg_gemm_team_f32(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
    int bad = 0;
    for (int64_t i = 0; i < m && !bad; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
            if (j >= n) { if (c[i * ldc + j] != c0[i * ldc + j]) bad = 1; continue; }   /* padding untouched */
            double s = beta ? c0[i * ldc + j] : 0, mag = beta ? fabs(c0[i * ldc + j]) : 0;
            for (int64_t p = 0; p < k; ++p) {
                const double t = (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                s += t; mag += fabs(t);
            }
            if (fabs(c[i * ldc + j] - s) > 1e-5 * mag + 1e-30) bad = 1;
        }
    if (bad) printf("MISMATCH ta=%d tb=%d m=%lld n=%lld k=%lld beta=%d prep=%d\n", ta, tb, (long long)m,
                    (long long)n, (long long)k, beta, prep);
    free(a); free(b); free(c); free(c0);
    return bad;
}
int main(void)
{
    static const int64_t ms[] = {1, 7, 8, 9, 64, 67}, ns[] = {1, 15, 16, 17, 31, 32, 33, 100},
                         ks[] = {1, 15, 16, 17, 128, 129, 300};
    static const int64_t big[][3] = {{64, 1024, 576}, {576, 1024, 64}, {64, 576, 1024}, {200, 50, 64}, {70, 300, 40}};
    int bad = 0, runs = 0;
    for (int prep = 0; prep < 2; ++prep)   /* prep = 1: from the prepared operand (SG_PREP_MODE says which) */
    for (int ta = 0; ta < 2; ++ta) for (int tb = 0; tb < 2; ++tb) for (int beta = 0; beta < 2; ++beta) {
        for (int i = 0; i < 6; ++i) for (int j = 0; j < 8; ++j) for (int q = 0; q < 7; ++q, ++runs)
            bad += check(ta, tb, ms[i], ns[j], ks[q], beta, prep);
        for (int i = 0; i < 5; ++i, ++runs) bad += check(ta, tb, big[i][0], big[i][1], big[i][2], beta, prep);
    }
    printf("%d products, %d wrong\n", runs, bad);
    return bad != 0;
}
#endif
"""


def _run(tmp_path, flags, name):
    (tmp_path / "harness.c").write_text(HARNESS)
    exe = tmp_path / name
    r = subprocess.run(["cc", "-std=c99", "-march=native", *flags, "-I", str(ROOT / "generated" / "c"),
                        str(tmp_path / "harness.c"), "-o", str(exe), "-lm"], capture_output=True, text=True)
    if r.returncode != 0:
        return r
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)


PREPARED = {"B": [], "A": ["-DSG_TEST_PREPA"]}   # sg_prep_b (the LSTM's W_hh), sg_prepa (a convolution's dy)


@pytest.mark.parametrize("prepared", PREPARED)
def test_microkernel_matches_a_double_reference_on_every_edge(tmp_path, prepared):
    r = _run(tmp_path, ["-O3", "-fopenmp", *PREPARED[prepared]], "mk")
    if r.returncode == 77:
        pytest.skip("the compiler does not target AVX-512 here: the kernel is not compiled")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5456 products, 0 wrong" in r.stdout


@pytest.mark.parametrize("prepared", PREPARED)
def test_microkernel_under_address_and_undefined_sanitizers(tmp_path, prepared):
    if not _sanitizer_ok(tmp_path):
        pytest.skip("the ASan/UBSan runtime is missing (apt-get install libasan8 libubsan1)")
    r = _run(tmp_path, ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                        *PREPARED[prepared]], "mk_asan")
    if r.returncode == 77:
        pytest.skip("the compiler does not target AVX-512 here: the kernel is not compiled")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5456 products, 0 wrong" in r.stdout
