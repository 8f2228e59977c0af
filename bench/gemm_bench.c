/* gemm_bench.c: GFLOP/s of dl_gemm_{nt,nn,tn} on the shapes an MLP trainer
 * uses (fashion-MNIST 784-256-128-10 at batch 64, a few other batch sizes,
 * a tiny xor net, examples/fashion_cnn.dln's convolutions at batch 64).  Prints the median over several timed runs per shape.
 *
 * build: cc -std=c11 -O3 -march=native -D_GNU_SOURCE -I runtime \
 *          bench/gemm_bench.c runtime/gemm.c runtime/threads.c -lpthread -lm
 * usage: gemm_bench [threads=1] [runs=15] */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    const char *what;
    char kind;   /* 't' = nt, 'n' = nn, 'T' = tn */
    int M, N, K;
} shape;

static const shape shapes[] = {
    {"fc1 fwd  b64", 't', 64, 256, 784},
    {"fc2 fwd  b64", 't', 64, 128, 256},
    {"fc3 fwd  b64", 't', 64, 10, 128},
    {"fc2 dx   b64", 'n', 64, 256, 128},
    {"fc3 dx   b64", 'n', 64, 128, 10},
    {"fc1 dW   b64", 'T', 256, 784, 64},
    {"fc2 dW   b64", 'T', 128, 256, 64},
    {"fc3 dW   b64", 'T', 10, 128, 64},
    {"fc1 fwd  b32", 't', 32, 256, 784},
    {"fc1 dW   b32", 'T', 256, 784, 32},
    {"fc1 fwd  b1", 't', 1, 256, 784},
    {"fc2 dx   b1", 'n', 1, 256, 128},
    {"fc1 dW   b1", 'T', 256, 784, 1},
    {"fc1 fwd  b256", 't', 256, 256, 784},
    {"xor fwd  b4", 't', 4, 8, 2},
    {"conv1 fwd b64", 't', 50176, 16, 25},
    {"conv2 fwd b64", 't', 12544, 32, 400},
    {"conv2 dW  b64", 'T', 32, 400, 12544},
    {"conv2 dcol b64", 'n', 12544, 400, 32},
    {"conv1 dW  b64", 'T', 16, 25, 50176},
    {"conv2 dWT b64", 'T', 400, 32, 12544},
    {"conv1 dWT b64", 'T', 25, 16, 50176},
    {"square 512", 't', 512, 512, 512},
    {"square 512", 'n', 512, 512, 512},
    {"square 512", 'T', 512, 512, 512},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static dl_real *rand_buf(size_t n)
{
    dl_real *p = malloc(n * sizeof *p);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (dl_real)(rand() / (double)RAND_MAX - 0.5);
    return p;
}

static void run(dl_pool *pool, const shape *s, dl_real *A, dl_real *B, dl_real *C)
{
    /* Leading dimensions are the logical widths: nt A[M,K] B[N,K];
     * nn A[M,K] B[K,N]; tn A[K,M] B[K,N]; C[M,N]. */
    switch (s->kind) {
    case 't':
        dl_gemm_nt(pool, s->M, s->N, s->K, A, s->K, B, s->K, C, s->N, 0);
        break;
    case 'n':
        dl_gemm_nn(pool, s->M, s->N, s->K, A, s->K, B, s->N, C, s->N, 0);
        break;
    default:
        dl_gemm_tn(pool, s->M, s->N, s->K, A, s->M, B, s->N, C, s->N, 0);
        break;
    }
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int runs = argc > 2 ? atoi(argv[2]) : 15;
    if (runs < 1 || runs > 1000)
        runs = 15;
    dl_pool *pool = dl_pool_new(threads);
    printf("isa %s, %s, threads %d, median of %d runs\n", dl_kernels_isa(),
           DL_REAL_IS_F64 ? "f64" : "f32", dl_pool_size(pool), runs);
    printf("%-14s %-3s %5s %5s %5s %10s %9s %9s\n", "shape", "op", "M", "N", "K",
           "us/call", "GFLOP/s", "best");
    double *gf = malloc((size_t)runs * sizeof *gf);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        dl_real *A = rand_buf((size_t)s->M * s->K);
        dl_real *B = rand_buf((size_t)s->N * s->K);
        dl_real *C = rand_buf((size_t)s->M * s->N);
        double flops = 2.0 * s->M * s->N * s->K;
        /* calls per run: about 2 ms of work, at least one */
        run(pool, s, A, B, C);
        double t0 = now_s();
        run(pool, s, A, B, C);
        double one = now_s() - t0;
        long reps = one > 0 ? (long)(2e-3 / one) + 1 : 1000;
        if (reps > 1000000)
            reps = 1000000;
        for (int r = 0; r < runs; r++) {
            t0 = now_s();
            for (long k = 0; k < reps; k++)
                run(pool, s, A, B, C);
            double dt = (now_s() - t0) / (double)reps;
            gf[r] = flops / dt * 1e-9;
        }
        qsort(gf, (size_t)runs, sizeof *gf, cmp_double);
        double med = gf[runs / 2];
        const char *op = s->kind == 't' ? "nt" : s->kind == 'n' ? "nn" : "tn";
        printf("%-14s %-3s %5d %5d %5d %10.2f %9.1f %9.1f\n", s->what, op, s->M,
               s->N, s->K, flops / med * 1e-3, med, gf[runs - 1]);
        free(A);
        free(B);
        free(C);
    }
    free(gf);
    dl_pool_free(pool);
    return 0;
}
