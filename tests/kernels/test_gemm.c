/* test_gemm.c: dl_gemm_{nt,nn,tn} against a naive long-double triple loop,
 * over edge shapes (1s, odd sizes, tile and k-slice boundaries), padded
 * strides, accumulate 0/1, and pools of 1, 2 and 3 threads, which must give
 * bit-identical results.  Built twice: against dlnc_rt_f32 and dlnc_rt_f64
 * (which defines DLNC_F64, so dl_real follows). */
#include "kernels.h"

#include <float.h>
#include <stdatomic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if DL_REAL_IS_F64
#define EPS DBL_EPSILON
#else
#define EPS FLT_EPSILON
#endif

enum { NT, NN, TN, PNT, PNN }; /* PNT, PNN: b packed first (dl_gemm_pack_*) */
static const char *const kind_name[] = {"nt", "nn", "tn", "packed_nt", "packed_nn"};

static int n_pass, n_fail;

static uint64_t rng = 0x9E3779B97F4A7C15u;
static double urand(void)   /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

static void fail(const char *fmt, int kind, int M, int N, int K, int acc,
                 int threads, double got, double want)
{
    if (n_fail < 25) {
        printf("FAIL %s %s M=%d N=%d K=%d acc=%d threads=%d got=%.17g want=%.17g\n",
               fmt, kind_name[kind], M, N, K, acc, threads, got, want);
    }
    n_fail++;
}

static void call(int kind, dl_pool *pool, int M, int N, int K, const dl_real *A,
                 int lda, const dl_real *B, int ldb, dl_real *C, int ldc, int acc)
{
    switch (kind) {
    case NT: dl_gemm_nt(pool, M, N, K, A, lda, B, ldb, C, ldc, acc); break;
    case NN: dl_gemm_nn(pool, M, N, K, A, lda, B, ldb, C, ldc, acc); break;
    case TN: dl_gemm_tn(pool, M, N, K, A, lda, B, ldb, C, ldc, acc); break;
    default: {
        size_t sz = (DL_GEMM_PACKED_SIZE(N, K) * sizeof(dl_real) + 63) / 64 * 64;
        dl_real *packed = aligned_alloc(64, sz > 0 ? sz : 64);
        memset(packed, 0xff, sz); /* NaN garbage: every value used must be written */
        if (kind == PNT) dl_gemm_pack_nt(N, K, B, ldb, packed);
        else dl_gemm_pack_nn(N, K, B, ldb, packed);
        dl_gemm_packed(pool, M, N, K, A, lda, packed, C, ldc, acc);
        free(packed);
        break;
    }
    }
}

static dl_pool *pools[3];   /* NULL, 2 threads, 3 threads */
static const int pool_threads[3] = {1, 2, 3};

/* One problem, run with every pool.  pad* widen the leading dimensions; the
 * padding of A and B holds NaN (reading it would poison the result) and the
 * padding of C a sentinel that must survive. */
static void check(int kind, int M, int N, int K, int padA, int padB, int padC,
                  int acc, int npools)
{
    /* storage shapes: nt A[M][K] B[N][K]; nn A[M][K] B[K][N]; tn A[K][M] B[K][N] */
    int arows = kind == TN ? K : M, acols = kind == TN ? M : K;
    int bt = kind == NT || kind == PNT; /* B stored [N][K] */
    int brows = bt ? N : K, bcols = bt ? K : N;
    int lda = acols + padA, ldb = bcols + padB, ldc = N + padC;
    size_t asz = (size_t)(arows > 0 ? arows : 1) * (size_t)lda;
    size_t bsz = (size_t)(brows > 0 ? brows : 1) * (size_t)ldb;
    size_t csz = (size_t)(M > 0 ? M : 1) * (size_t)ldc;
    dl_real *A = malloc(asz * sizeof *A), *B = malloc(bsz * sizeof *B);
    dl_real *C0 = malloc(csz * sizeof *C0), *C = malloc(csz * sizeof *C);
    dl_real *first = malloc(csz * sizeof *first);
    const dl_real sentinel = (dl_real)12345.0;
    for (size_t i = 0; i < asz; i++)
        A[i] = (i % (size_t)lda) < (size_t)acols ? (dl_real)urand() : (dl_real)NAN;
    for (size_t i = 0; i < bsz; i++)
        B[i] = (i % (size_t)ldb) < (size_t)bcols ? (dl_real)urand() : (dl_real)NAN;
    for (size_t i = 0; i < csz; i++)
        C0[i] = (i % (size_t)ldc) >= (size_t)N ? sentinel
              : acc ? (dl_real)urand() : (dl_real)NAN;   /* garbage to overwrite */

    for (int p = 0; p < npools; p++) {
        memcpy(C, C0, csz * sizeof *C);
        call(kind, pools[p], M, N, K, A, lda, B, ldb, C, ldc, acc);
        int bad = 0;
        for (int i = 0; i < M && !bad; i++) {
            for (int j = 0; j < ldc && !bad; j++) {
                double got = (double)C[(size_t)i * ldc + j];
                if (j >= N) {
                    if (got != (double)sentinel) {
                        fail("wrote padding", kind, M, N, K, acc, pool_threads[p], got, sentinel);
                        bad = 1;
                    }
                    continue;
                }
                long double want = acc ? (long double)C0[(size_t)i * ldc + j] : 0.0L;
                long double scale = fabsl(want);
                for (int k = 0; k < K; k++) {
                    dl_real a = kind == TN ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                    dl_real b = bt ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                    want += (long double)a * b;
                    scale += fabsl((long double)a * b);
                }
                /* any summation order: |err| <= (K+1) eps sum|terms| */
                double tol = (double)((K + 2) * EPS * scale) + 1e-300;
                if (!(fabs(got - (double)want) <= tol)) {
                    fail("value", kind, M, N, K, acc, pool_threads[p], got, (double)want);
                    bad = 1;
                }
            }
        }
        if (p == 0)
            memcpy(first, C, csz * sizeof *C);
        else if (memcmp(first, C, csz * sizeof *C) != 0) {
            fail("differs from 1 thread", kind, M, N, K, acc, pool_threads[p], 0, 0);
            bad = 1;
        }
        if (bad)
            continue;
        n_pass++;
    }
    free(A);
    free(B);
    free(C0);
    free(C);
    free(first);
}

/* dl_gemm_nt_epilogue: the epilogue sees each block of C once, only after
 * the block is final (equal to plain dl_gemm_nt's C), and every element of C
 * is in exactly one block, for every pool. */
typedef struct {
    const dl_real *C, *ref;
    int ldc;
    atomic_int *hits;
    atomic_int early;   /* elements seen before they were final */
} ep_check;

static void ep_count(void *arg, int i0, int i1, int j0, int j1)
{
    ep_check *e = arg;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) {
            size_t k = (size_t)i * e->ldc + j;
            atomic_fetch_add(&e->hits[k], 1);
            if (memcmp(&e->C[k], &e->ref[k], sizeof *e->C) != 0)
                atomic_fetch_add(&e->early, 1);
        }
}

static void check_epilogue(int M, int N, int K)
{
    size_t asz = (size_t)M * (size_t)(K ? K : 1), bsz = (size_t)N * (size_t)(K ? K : 1);
    size_t csz = (size_t)M * (size_t)N;
    dl_real *A = malloc(asz * sizeof *A), *B = malloc(bsz * sizeof *B);
    dl_real *ref = malloc(csz * sizeof *ref), *C = malloc(csz * sizeof *C);
    atomic_int *hits = malloc(csz * sizeof *hits);
    for (size_t i = 0; i < asz; i++) A[i] = (dl_real)urand();
    for (size_t i = 0; i < bsz; i++) B[i] = (dl_real)urand();
    dl_gemm_nt(NULL, M, N, K, A, K, B, K, ref, N, 0);
    for (int p = 0; p < 3; p++) {
        for (size_t i = 0; i < csz; i++) {
            C[i] = (dl_real)NAN;
            atomic_init(&hits[i], 0);
        }
        ep_check e = {C, ref, N, hits, 0};
        dl_gemm_nt_epilogue(pools[p], M, N, K, A, K, B, K, C, N, ep_count, &e);
        int bad = atomic_load(&e.early) != 0 || memcmp(C, ref, csz * sizeof *C) != 0;
        for (size_t i = 0; i < csz && !bad; i++) bad = atomic_load(&hits[i]) != 1;
        if (bad) {
            printf("FAIL epilogue M=%d N=%d K=%d threads=%d: blocks not final or not a tiling\n",
                   M, N, K, pool_threads[p]);
            n_fail++;
        } else {
            n_pass++;
        }
    }
    free(A);
    free(B);
    free(ref);
    free(C);
    free(hits);
}

int main(void)
{
    const char *isa = dl_kernels_isa();
    printf("isa %s, dl_real %s\n", isa, DL_REAL_IS_F64 ? "double" : "float");
    if (strcmp(isa, "avx512") && strcmp(isa, "avx2") && strcmp(isa, "neon") &&
        strcmp(isa, "scalar")) {
        printf("FAIL unknown isa name\n");
        n_fail++;
    }
    pools[0] = NULL;
    pools[1] = dl_pool_new(2);
    pools[2] = dl_pool_new(3);

    /* Edge shapes: around the register tile (MR <= 8, NR <= 32), the k slice
     * (256) and 1s; small enough that they run inline, so one pool. */
    static const int Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17};
    static const int Ns[] = {1, 3, 4, 8, 15, 16, 17, 32, 33, 65};
    static const int Ks[] = {1, 2, 7, 16, 17, 255, 256, 257, 600};
    int variant = 0;
    for (int kind = 0; kind < 5; kind++)
        for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
            for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
                for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++) {
                    variant++;
                    /* pads cycle through 0..3 independently */
                    check(kind, Ms[a], Ns[b], Ks[c], variant % 3, (variant / 3) % 4,
                          (variant / 2) % 3, variant % 2, 1);
                }

    /* Empty products: K = 0 sets C to 0 (acc 0) or leaves it (acc 1);
     * M or N = 0 touches nothing. */
    for (int kind = 0; kind < 5; kind++)
        for (int acc = 0; acc < 2; acc++) {
            check(kind, 5, 7, 0, 1, 1, 2, acc, 3);
            check(kind, 0, 7, 9, 1, 1, 2, acc, 3);
            check(kind, 5, 0, 9, 1, 1, 2, acc, 3);
        }

    /* Model shapes and big odd ones, with every pool: large enough to be
     * split across threads (by columns, or by rows when N is small). */
    static const int big[][4] = {
        /* kind, M, N, K */
        {NT, 64, 256, 784}, {NT, 64, 128, 256}, {NT, 64, 10, 128},
        {NN, 64, 256, 128}, {NN, 64, 128, 10},  {NN, 64, 784, 256},
        {TN, 256, 784, 64}, {TN, 128, 256, 64}, {TN, 10, 128, 64},
        {NT, 1, 256, 784},  {NT, 32, 256, 784}, {TN, 256, 784, 1},
        {NT, 97, 301, 513}, {NN, 97, 301, 513}, {TN, 97, 301, 513},
        {NT, 1000, 10, 300}, {NN, 999, 7, 301}, {TN, 1001, 5, 257},
        {NT, 4, 1000, 700}, {NN, 3, 2000, 500}, {TN, 5, 999, 600},
        /* a packed too (gemm_block_pa): several row blocks, edge panels */
        {TN, 401, 133, 520}, {TN, 1024, 128, 256},
        {NT, 300, 1030, 300}, {NN, 61, 1024, 257},
        /* a recurrent step: the batch's h times W_hh packed once */
        {PNT, 32, 1024, 256}, {PNN, 32, 256, 1024}, {PNT, 3, 301, 513}, {PNN, 97, 33, 600},
    };
    for (size_t i = 0; i < sizeof big / sizeof *big; i++)
        for (int acc = 0; acc < 2; acc++)
            check(big[i][0], big[i][1], big[i][2], big[i][3], (int)i % 3 * 5,
                  (int)i % 2 * 3, acc * 7, acc, 3);

    /* tn on the packed-a path both ways (gemm.c packs_a): rows of A 1 KiB
     * apart with an edge panel, and rows 1624 B apart with N >= 32 panels. */
    for (int acc = 0; acc < 2; acc++) {
        check(TN, 256, 133, 520, 0, 3, 7 * acc, acc, 3);
        check(TN, 401, 530, 300, 5, 0, 7 * acc, acc, 3);
    }

    /* Random shapes, every pool. */
    for (int t = 0; t < 60; t++) {
        int kind = t % 3;
        int M = 1 + (int)((urand() + 1) * 40), N = 1 + (int)((urand() + 1) * 80);
        int K = 1 + (int)((urand() + 1) * 300);
        check(kind, M, N, K, t % 4, t % 5, t % 2, t / 3 % 2, 3);
    }

    /* Epilogues: small-M path, column panels, row blocks (N small), K = 0. */
    static const int ep_shapes[][3] = {
        {1, 256, 784}, {5, 300, 100}, {64, 256, 784}, {64, 128, 256},
        {1000, 10, 300}, {97, 301, 513}, {7, 9, 0}, {2, 3, 4},
    };
    for (size_t i = 0; i < sizeof ep_shapes / sizeof *ep_shapes; i++)
        check_epilogue(ep_shapes[i][0], ep_shapes[i][1], ep_shapes[i][2]);

    dl_pool_free(pools[1]);
    dl_pool_free(pools[2]);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
