/* Train a 2-layer network on XOR with nothing but the generated C kernels and plain SGD.
 *
 *   h = tanh(x W1 + b1)        dense_tanh     x (4, 2), W1 (2, 8), b1 (8,)
 *   p = sigmoid(h W2 + b2)     dense_sigmoid  W2 (8, 1), b2 (1,)
 *   loss = mean((p - y)^2)     mse
 *
 * Build and run from the repository root (README.md, "The C backend"):
 *   cc -O2 -std=c99 -I generated/c examples/c/xor.c generated/c/dense_tanh.c \
 *      generated/c/dense_sigmoid.c generated/c/mse.c -lm -o xor && ./xor
 * or with the generated build files (library `symgrad`, every kernel):
 *   cmake -S examples/c -B build/xor && cmake --build build/xor && ./build/xor/xor
 *   make -C examples/c BUILD=$PWD/build/xor && ./build/xor/xor
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dense_sigmoid.h"
#include "dense_tanh.h"
#include "mse.h"

enum { N = 4, D = 2, H = 8, M = 1, EPOCHS = 2000 };

static double uniform(uint64_t *state) /* a small LCG: the example needs no library */
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static int64_t max3(int64_t a, int64_t b, int64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

int main(void)
{
    const double x[N * D] = {0, 0, 0, 1, 1, 0, 1, 1};
    const double y[N * M] = {0, 1, 1, 0};
    double W1[D * H], b1[H] = {0}, W2[H * M], b2[M] = {0};
    double h[N * H], p[N * M], loss = 0;
    double dp[N * M], dh[N * H], dx[N * D], dW1[D * H], db1[H], dW2[H * M], db2[M];
    const double lr = 0.5;
    uint64_t seed = 42;
    for (int i = 0; i < D * H; ++i) W1[i] = uniform(&seed);
    for (int i = 0; i < H * M; ++i) W2[i] = uniform(&seed);

    /* the caller owns every buffer, scratch included */
    int64_t n_scratch = max3(dense_tanh_forward_scratch_size(N, D, H), dense_tanh_backward_scratch_size(N, D, H),
                             max3(dense_sigmoid_forward_scratch_size(N, H, M),
                                  dense_sigmoid_backward_scratch_size(N, H, M), 1));
    double *scratch = malloc((size_t)n_scratch * sizeof(double));
    if (!scratch) return 1;

    for (int epoch = 0; epoch <= EPOCHS; ++epoch) {
        dense_tanh_forward_f64(h, x, W1, b1, scratch, N, D, H);
        dense_sigmoid_forward_f64(p, h, W2, b2, scratch, N, H, M);
        mse_forward_f64(&loss, p, y, N * M);
        if (epoch % 200 == 0) printf("epoch %4d  loss %.6f\n", epoch, loss);

        mse_backward_f64(dp, 1.0, p, y, N * M);
        dense_sigmoid_backward_f64(dh, dW2, db2, dp, h, W2, p, scratch, N, H, M);
        dense_tanh_backward_f64(dx, dW1, db1, dh, x, W1, h, scratch, N, D, H);

        for (int i = 0; i < D * H; ++i) W1[i] -= lr * dW1[i];
        for (int i = 0; i < H; ++i) b1[i] -= lr * db1[i];
        for (int i = 0; i < H * M; ++i) W2[i] -= lr * dW2[i];
        for (int i = 0; i < M; ++i) b2[i] -= lr * db2[i];
    }
    printf("predictions:");
    for (int i = 0; i < N; ++i) printf(" %.3f", p[i]);
    printf("\nfinal loss %.6f\n", loss);
    free(scratch);
    return 0;
}
