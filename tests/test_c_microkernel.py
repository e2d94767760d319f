"""The float products' own AVX-512 kernel (``sg_mk_f32`` in the C helpers, docs/c-backend.md) against a
double-precision reference: every transpose combination, beta 0 and 1, sizes on every edge of its
blocking (m % 8, n % 32, n % 16, k % 16, k % 128; for plain operands, as the
runtime builds the kernels, k % 256 and chunks of 256 rows in space from malloc),
leading dimensions wider than the matrices (the padding must stay untouched), on one thread and split
over the OpenMP team (by rows and by columns), and from a right operand prepared once (``sg_prep_b``:
packed) or a left one (``sg_prepa``); and once more under ASan/UBSan. Skipped where the compiler does
not target AVX-512 (the kernel is not compiled there)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_c_backend import _sanitizer_ok

ROOT = Path(__file__).resolve().parents[1]

HARNESS = r"""
#if defined(SG_TEST_WINOGRAD)
#define SG_TEST_WINDOW   /* the window harness's x between unreadable pages; its own main below */
#endif
#if defined(SG_TEST_WINDOW)
#define _DEFAULT_SOURCE   /* mmap, mprotect: x between two pages that cannot be read */
#include <sys/mman.h>
#include <unistd.h>
#include "conv2d.c"   /* a kernel whose products read windows from x (sg_gemm_window) */
#elif defined(SG_TEST_PREPA)
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
#ifdef SG_TEST_WINDOW
/* n floats that end where an unreadable page begins (at_end) or begin where one ends: a read of any element
 * outside them faults, masked-off lanes included if their faults were not suppressed */
static float *guarded(int64_t n, int at_end, void **map, size_t *len)
{
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = ((size_t)n * sizeof(float) + pg - 1) / pg * pg;
    *len = body + 2 * pg;
    char *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    mprotect(p, pg, PROT_NONE);
    mprotect(p + pg + body, pg, PROT_NONE);
    *map = p;
    return at_end ? (float *)(p + pg + body) - n : (float *)(p + pg);
}
/* c = A V or c += A V (tb 0), or A V^T (tb 1), V the window of x (C channels of H x W; window KH x KW,
 * stride sh on rows and 1 on columns, dilations, paddings) against a double reference over sg_window_at_f32 */
static int check_window(int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh, int64_t sw, int64_t dh,
                        int64_t dw, int64_t ph, int64_t pw, int64_t m, int ta, int tb, int beta, int prep, int at_end)
{
    if (H + 2 * ph - dh * (KH - 1) <= 0 || W + 2 * pw - dw * (KW - 1) <= 0)
        return 0;
    const int64_t Ho = (H + 2 * ph - dh * (KH - 1) - 1) / sh + 1, Wo = (W + 2 * pw - dw * (KW - 1) - 1) / sw + 1;
    void *map;
    size_t len;
    float *x = guarded(C * H * W, at_end, &map, &len);
    for (int64_t i = 0; i < C * H * W; ++i) x[i] = rnd();
    const sg_window_f32 w = {x, H, W, KH, KW, Wo, sh, sw, dh, dw, ph, pw};
    const int64_t rows = C * KH * KW, cols = Ho * Wo, k = tb ? cols : rows, n = tb ? rows : cols;
    const int64_t lda = (ta ? m : k) + 3, ldc = n + 2;
    float *a = malloc(sizeof(float) * (ta ? k : m) * lda), *c = malloc(sizeof(float) * m * ldc);
    float *c0 = malloc(sizeof(float) * m * ldc), *ap = malloc(sizeof(float) * (m + 7) * k);
    for (int64_t i = 0; i < (ta ? k : m) * lda; ++i) a[i] = rnd();
    for (int64_t i = 0; i < m * ldc; ++i) c[i] = c0[i] = rnd();
    if (!sg_window_ok_f32(sw, KH * KW, Wo)) { puts("window not taken"); abort(); }
    if (prep) {
        sg_prepa_f32(ta, m, k, a, lda, ap);
        sg_gemm_window_f32(0, m, n, k, NULL, 0, ap, &w, tb, beta, c, ldc);
    } else
        sg_gemm_window_f32(ta, m, n, k, a, lda, NULL, &w, tb, beta, c, ldc);
    int bad = 0;
    for (int64_t i = 0; i < m && !bad; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
            if (j >= n) { if (c[i * ldc + j] != c0[i * ldc + j]) bad = 1; continue; }
            double s = beta ? c0[i * ldc + j] : 0, mag = beta ? fabs(c0[i * ldc + j]) : 0;
            for (int64_t p = 0; p < k; ++p) {
                const double t = (double)(ta ? a[p * lda + i] : a[i * lda + p])
                                 * (tb ? sg_window_at_f32(&w, j, p) : sg_window_at_f32(&w, p, j));
                s += t; mag += fabs(t);
            }
            if (fabs(c[i * ldc + j] - s) > 1e-5 * mag + 1e-30) bad = 1;
        }
    if (bad) printf("MISMATCH C=%lld H=%lld W=%lld K=%lldx%lld s=%lld,%lld d=%lld,%lld p=%lld,%lld m=%lld ta=%d tb=%d beta=%d prep=%d\n",
                    (long long)C, (long long)H, (long long)W, (long long)KH, (long long)KW, (long long)sh, (long long)sw,
                    (long long)dh, (long long)dw, (long long)ph, (long long)pw, (long long)m, ta, tb, beta, prep);
    munmap(map, len);
    free(a); free(c); free(c0); free(ap);
    return bad;
}
/* sg_wino_f32 (Winograd F(2x2, 3x3), weights by sg_wino_weights_f32) against the 3x3 correlation's definition in
 * double: x (Cin x H x W) between unreadable pages, paddings ph, pw (negative: cropped, as the input gradient's
 * gathers run it at padding 2 - p), y with a guard band that must stay untouched, work sized as plan.winograd_sizes */
static int check_wino(int64_t Cin, int64_t Cout, int64_t H, int64_t W, int64_t ph, int64_t pw, int at_end)
{
    const int64_t Ho = H + 2 * ph - 2, Wo = W + 2 * pw - 2;
    if (Ho <= 0 || Wo <= 0)
        return 0;
    void *map;
    size_t len;
    float *x = guarded(Cin * H * W, at_end, &map, &len);
    for (int64_t i = 0; i < Cin * H * W; ++i) x[i] = rnd();
    float *g = malloc(sizeof(float) * Cout * Cin * 9), *upk = malloc(sizeof(float) * 16 * (Cout + 7) * Cin);
    float *y = malloc(sizeof(float) * (Cout * Ho * Wo + 64));
    const int64_t nw = SG_WG_WORK(Cin, Cout, Wo);   /* plan.winograd_work, from the test's flags */
    float *work = malloc(sizeof(float) * (size_t)(nw + 64));
    for (int64_t i = nw; i < nw + 64; ++i) work[i] = 7.0f;
    for (int64_t i = 0; i < Cout * Cin * 9; ++i) g[i] = rnd();
    for (int64_t i = 0; i < Cout * Ho * Wo + 64; ++i) y[i] = 7.0f;
    if (!sg_wino_ok_f32(3, 3, 1, 1, 1, 1, 64, 16, 16, 0)) { puts("winograd not taken"); abort(); }
    sg_wino_weights_f32(g, Cout, Cin, upk);
    sg_wino_f32(upk, x, Cin, H, W, ph, pw, Cout, y, Ho, Wo, work);
    int bad = 0;
    for (int64_t i = Cout * Ho * Wo; i < Cout * Ho * Wo + 64; ++i)
        if (y[i] != 7.0f) bad = 1;   /* nothing written past y */
    for (int64_t i = nw; i < nw + 64; ++i)
        if (work[i] != 7.0f) bad = 1;   /* nor past the work space */
    for (int64_t o = 0; o < Cout && !bad; ++o)
        for (int64_t i = 0; i < Ho; ++i)
            for (int64_t j = 0; j < Wo; ++j) {
                double s = 0, mag = 0;
                for (int64_t c = 0; c < Cin; ++c)
                    for (int64_t a = 0; a < 3; ++a)
                        for (int64_t b = 0; b < 3; ++b) {
                            const int64_t r = i + a - ph, q = j + b - pw;
                            if (r < 0 || r >= H || q < 0 || q >= W) continue;
                            const double v = (double)g[((o * Cin + c) * 3 + a) * 3 + b] * x[(c * H + r) * W + q];
                            s += v; mag += fabs(v);
                        }
                if (fabs(y[(o * Ho + i) * Wo + j] - s) > 1e-5 * mag + 1e-30) bad = 1;
            }
    if (bad) printf("MISMATCH Cin=%lld Cout=%lld H=%lld W=%lld p=%lld,%lld\n", (long long)Cin, (long long)Cout,
                    (long long)H, (long long)W, (long long)ph, (long long)pw);
    munmap(map, len);
    free(g); free(upk); free(y); free(work);
    return bad;
}
/* The weight gradient (sg_wino_grad_begin/_f32/_end) of two samples against its definition in double,
 * dw[o][c][a][b] += sum_n,i,j dy[n][o][i][j] x[n][c][i + a - ph][j + b - pw], dw holding values before; x of
 * each sample between unreadable pages; work exactly plan.winograd_grad_work, a guard band after it */
static int check_wino_grad(int64_t Cin, int64_t Cout, int64_t H, int64_t W, int64_t ph, int64_t pw, int at_end)
{
    const int64_t Ho = H + 2 * ph - 2, Wo = W + 2 * pw - 2;
    if (Ho <= 0 || Wo <= 0)
        return 0;
    void *map[2];
    size_t len[2];
    float *x[2], *dy = malloc(sizeof(float) * 2 * Cout * Ho * Wo);
    for (int n = 0; n < 2; ++n) {
        x[n] = guarded(Cin * H * W, (at_end + n) % 2, &map[n], &len[n]);
        for (int64_t i = 0; i < Cin * H * W; ++i) x[n][i] = rnd();
    }
    for (int64_t i = 0; i < 2 * Cout * Ho * Wo; ++i) dy[i] = rnd();
    const int64_t nw = SG_WG_GRAD_WORK(Cin, Cout, Wo);   /* plan.winograd_grad_work, from the test's flags */
    float *work = malloc(sizeof(float) * (size_t)(nw + 64)), *dw = malloc(sizeof(float) * Cout * Cin * 9);
    double *ref = malloc(sizeof(double) * Cout * Cin * 9), *mag = malloc(sizeof(double) * Cout * Cin * 9);
    for (int64_t i = nw; i < nw + 64; ++i) work[i] = 7.0f;
    for (int64_t i = 0; i < Cout * Cin * 9; ++i) { dw[i] = rnd(); ref[i] = dw[i]; mag[i] = fabs(dw[i]); }
    sg_wino_grad_begin_f32(work, Cout, Cin);
    for (int n = 0; n < 2; ++n)
        sg_wino_grad_f32(x[n], Cin, H, W, ph, pw, dy + n * Cout * Ho * Wo, Cout, Ho, Wo, work);
    sg_wino_grad_end_f32(work, Cout, Cin, dw);
    int bad = 0;
    for (int64_t i = nw; i < nw + 64; ++i)
        if (work[i] != 7.0f) bad = 1;   /* nothing written past the work space */
    for (int n = 0; n < 2; ++n)
        for (int64_t o = 0; o < Cout; ++o)
            for (int64_t c = 0; c < Cin; ++c)
                for (int64_t a = 0; a < 3; ++a)
                    for (int64_t b = 0; b < 3; ++b)
                        for (int64_t i = 0; i < Ho; ++i)
                            for (int64_t j = 0; j < Wo; ++j) {
                                const int64_t r = i + a - ph, q = j + b - pw;
                                if (r < 0 || r >= H || q < 0 || q >= W) continue;
                                const double v = (double)dy[((n * Cout + o) * Ho + i) * Wo + j] * x[n][(c * H + r) * W + q];
                                ref[((o * Cin + c) * 3 + a) * 3 + b] += v;
                                mag[((o * Cin + c) * 3 + a) * 3 + b] += fabs(v);
                            }
    for (int64_t i = 0; i < Cout * Cin * 9; ++i)
        if (fabs(dw[i] - ref[i]) > 1e-5 * mag[i] + 1e-30) bad = 1;
    if (bad) printf("GRAD MISMATCH Cin=%lld Cout=%lld H=%lld W=%lld p=%lld,%lld\n", (long long)Cin, (long long)Cout,
                    (long long)H, (long long)W, (long long)ph, (long long)pw);
    for (int n = 0; n < 2; ++n) munmap(map[n], len[n]);
    free(dy); free(work); free(dw); free(ref); free(mag);
    return bad;
}
#ifdef SG_TEST_WINOGRAD
int main(void)
{   /* Cin, Cout, H, W, ph, pw: one tile; odd sizes (a last tile's row or column dropped); 24 tiles a row (16 tiles
     * straddle strips of 32: the split stores); a row of 150 tiles (more than a block: one row per block); channels
     * over two k blocks (130) with 9 outputs (rows past 8); paddings 0, 2, 3 and the gathers' negative ones */
    static const int64_t g[][6] = {{1, 1, 3, 3, 0, 0}, {3, 4, 5, 7, 1, 1}, {2, 9, 9, 47, 1, 1}, {1, 2, 3, 300, 1, 1},
        {130, 9, 6, 5, 1, 0}, {4, 16, 32, 32, 1, 1}, {3, 5, 7, 6, 2, 2}, {2, 3, 9, 8, 3, 1}, {2, 3, 9, 10, -1, -1},
        {5, 17, 12, 13, 0, 2}, {1, 1, 2, 2, 1, 1}, {8, 8, 33, 65, 1, 1}};
    int bad = 0, runs = 0;
    for (int i = 0; i < 12; ++i)
        for (int at_end = 0; at_end < 2; ++at_end, ++runs)
            bad += check_wino(g[i][0], g[i][1], g[i][2], g[i][3], g[i][4], g[i][5], at_end);
    for (int i = 0; i < 12; ++i)
        for (int at_end = 0; at_end < 2; ++at_end, ++runs)
            bad += check_wino_grad(g[i][0], g[i][1], g[i][2], g[i][3], g[i][4], g[i][5], at_end);
    printf("%d winograd products, %d wrong\n", runs, bad);
    return bad != 0;
}
#else
int main(void)
{   /* C, H, W, KH, KW, sh, sw, dh, dw, ph, pw: strips across output rows (W_out < 32, 37, 70), padding beyond the
     * window's reach, a 1x1 and a 12x11 window (132 cells: a channel's rows over two k blocks), stride 2 on rows,
     * stride 2 on columns (two loads and a permute per run) with odd widths, dilation and padding */
    static const int64_t g[][11] = {{3, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1}, {2, 9, 37, 3, 3, 1, 1, 2, 2, 2, 2},
        {1, 5, 70, 3, 5, 1, 1, 1, 1, 3, 3}, {2, 4, 6, 3, 3, 1, 1, 1, 1, 4, 4}, {3, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 14, 15, 12, 11, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {3, 7, 6, 3, 2, 2, 1, 1, 1, 1, 0},
        {2, 11, 33, 2, 3, 2, 1, 2, 1, 0, 2}, {4, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1}, {1, 3, 200, 1, 7, 1, 1, 1, 3, 0, 9},
        {3, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1}, {2, 8, 75, 3, 3, 2, 2, 2, 2, 2, 2}, {2, 6, 66, 2, 4, 1, 2, 1, 1, 0, 3},
        {1, 4, 5, 3, 3, 2, 2, 1, 1, 4, 4}, {4, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1}};
    int bad = 0, runs = 0;
    for (int i = 0; i < 16; ++i)
        for (int tb = 0; tb < 2; ++tb) for (int beta = 0; beta < 2; ++beta) for (int prep = 0; prep < 2; ++prep, ++runs)
            bad += check_window(g[i][0], g[i][1], g[i][2], g[i][3], g[i][4], g[i][5], g[i][6], g[i][7], g[i][8], g[i][9],
                                g[i][10], prep ? 9 : 16, (i + tb) % 2, tb, beta, prep, (i + beta) % 2);
    printf("%d products, %d wrong\n", runs, bad);
    return bad != 0;
}
#endif
#else
int main(void)
{
    static const int64_t ms[] = {1, 7, 8, 9, 64, 67}, ns[] = {1, 15, 16, 17, 31, 32, 33, 100},
                         ks[] = {1, 15, 16, 17, 128, 129, 300};
    /* 402 x 680 by 140: each thread's C (200 or 202 rows x 680) past SG_MK_C_L2, so chunks of rows outer, two
     * k blocks (128 + 12) and two chunks (128 + 74: 2 rows one at a time) each */
    /* with SYMGRAD_PACK_MALLOC, plain operands past SG_MK_KB or SG_MK_MC (from SG_MK_PLAIN_MIN multiply-adds)
     * run in blocks of SG_MK_PLAIN (256) k and rows, packed at the sizes the product needs: k 256 exactly, 257
     * (256 + 1), 513 (three blocks); 260 rows (256 + 4), 16 (a short chunk) */
    static const int64_t big[][3] = {{64, 1024, 576}, {576, 1024, 64}, {64, 576, 1024}, {200, 50, 64}, {70, 300, 40},
                                     {402, 680, 140}, {129, 33, 256}, {260, 70, 257}, {16, 47, 513}, {1030, 65, 20}};
    int bad = 0, runs = 0;
    for (int prep = 0; prep < 2; ++prep)   /* prep = 1: from the prepared operand (SG_PREP_MODE says which) */
    for (int ta = 0; ta < 2; ++ta) for (int tb = 0; tb < 2; ++tb) for (int beta = 0; beta < 2; ++beta) {
        for (int i = 0; i < 6; ++i) for (int j = 0; j < 8; ++j) for (int q = 0; q < 7; ++q, ++runs)
            bad += check(ta, tb, ms[i], ns[j], ks[q], beta, prep);
        for (int i = 0; i < 10; ++i, ++runs) bad += check(ta, tb, big[i][0], big[i][1], big[i][2], beta, prep);
    }
    printf("%d products, %d wrong\n", runs, bad);
    return bad != 0;
}
#endif
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


# sg_prep_b (the LSTM's W_hh), sg_prepa (a convolution's dy); "B, 256": as "B" built as the runtime builds it
# (SYMGRAD_PACK_MALLOC), every plain product past 128 in k or rows in the 256-blocks from malloc
# (sg_mk_plain_f32; by default only from 2^22 multiply-adds)
PREPARED = {"B": [], "A": ["-DSG_TEST_PREPA"], "B, 256": ["-DSYMGRAD_PACK_MALLOC", "-DSG_MK_PLAIN_MIN=1"]}
WINDOW = ["-DSG_TEST_WINDOW"]   # sg_gemm_window: B read from x (a convolution's forward and weight gradient)
WINOGRAD = ["-DSG_TEST_WINOGRAD"]   # sg_wino: a 3x3 convolution's forward and input gradient (Winograd F(2x2, 3x3))


def _work_flag() -> str:
    """-DSG_WG_WORK(ci,co,wo)=...: plan.winograd_work, the work space the generated kernels give sg_wino_f32."""
    import sympy as sp
    from symgrad.targets.c.plan import winograd_work
    ci, co, wo = sp.symbols("ci co wo")
    return f"-DSG_WG_WORK(ci,co,wo)=({sp.ccode(sp.expand(winograd_work(ci, co, wo)))})"


def _grad_work_flag() -> str:
    """-DSG_WG_GRAD_WORK(ci,co,wo)=...: plan.winograd_grad_work, sg_wino_grad_f32's work in the kernels."""
    import sympy as sp
    from symgrad.targets.c.plan import winograd_grad_work
    ci, co, wo = sp.symbols("ci co wo")
    return f"-DSG_WG_GRAD_WORK(ci,co,wo)=({sp.ccode(sp.expand(winograd_grad_work(ci, co, wo)))})"


@pytest.mark.parametrize("prepared", PREPARED)
def test_microkernel_matches_a_double_reference_on_every_edge(tmp_path, prepared):
    r = _run(tmp_path, ["-O3", "-fopenmp", *PREPARED[prepared]], "mk")
    if r.returncode == 77:
        pytest.skip("the compiler does not target AVX-512 here: the kernel is not compiled")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5536 products, 0 wrong" in r.stdout


@pytest.mark.parametrize("prepared", PREPARED)
def test_microkernel_under_address_and_undefined_sanitizers(tmp_path, prepared):
    if not _sanitizer_ok(tmp_path):
        pytest.skip("the ASan/UBSan runtime is missing (apt-get install libasan8 libubsan1)")
    r = _run(tmp_path, ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                        *PREPARED[prepared]], "mk_asan")
    if r.returncode == 77:
        pytest.skip("the compiler does not target AVX-512 here: the kernel is not compiled")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5536 products, 0 wrong" in r.stdout


@pytest.mark.parametrize("sanitized", [False, True])
def test_window_products_read_only_x_and_match_a_double_reference(tmp_path, sanitized):
    """sg_gemm_window (the window packed from x by the kernel: docs/windows.md) against the window's
    definition, element by element, with x between two unreadable pages (a read of anything outside x,
    a masked-off lane included, would fault), both layouts (tb), beta 0 and 1, A prepared or not."""
    if sanitized and not _sanitizer_ok(tmp_path):
        pytest.skip("the ASan/UBSan runtime is missing (apt-get install libasan8 libubsan1)")
    flags = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitized else ["-O3"]
    r = _run(tmp_path, [*flags, *WINDOW], "win")
    if r.returncode == 77:
        pytest.skip("the compiler does not target AVX-512 here: the kernel is not compiled")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "128 products, 0 wrong" in r.stdout


@pytest.mark.parametrize("sanitized", [False, True])
def test_winograd_products_read_only_x_and_match_the_correlation(tmp_path, sanitized):
    """sg_wino_f32 (Winograd F(2x2, 3x3): docs/windows.md) and its weight gradient (sg_wino_grad, two samples
    added to weights already holding values) against the definitions in double,
    1e-5 of the sum of the terms' magnitudes, with x between two unreadable pages and a guard band after y:
    odd sizes, rows of tiles that straddle the kernel's strips, more tiles than a block, channels over two k
    blocks, paddings from -1 to 3; the work space exactly ``plan.winograd_work``, with a guard band after it
    and, under ASan/UBSan, nothing after it."""
    if sanitized and not _sanitizer_ok(tmp_path):
        pytest.skip("the ASan/UBSan runtime is missing (apt-get install libasan8 libubsan1)")
    flags = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitized else ["-O3"]
    r = _run(tmp_path, [*flags, *WINOGRAD, _work_flag(), _grad_work_flag()], "wino")
    if r.returncode == 77:
        pytest.skip("the compiler does not target AVX-512 here: the kernel is not compiled")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "48 winograd products, 0 wrong" in r.stdout
