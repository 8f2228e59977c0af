/* test_gemm_bf16.c: the GEMMs of a --precision bf16 build (gemm.c and
 * gemm_bf16.c compiled with -DDL_GEMM_BF16) against a plain C reference of
 * gemm_bf16.h's rule: operands rounded to bf16 (nearest even, DAZ, NaN kept),
 * k in pairs with the odd one first, one fma per step, denormal results
 * flushed.  Bit for bit, over every kind (nt, nn, tn, packed nt/nn, the
 * epilogue), odd K, edge tiles, strides, accumulate 0/1, 1 and 2 threads;
 * and the results must differ from plain fp32 ones (the mode is on).
 *
 *   test_gemm_bf16            the emulated kernel; the native kernel's
 *                             packing (bf16 pairs) with scalar arithmetic;
 *                             the native kernel where the CPU has it
 *   test_gemm_bf16 --native   the native vdpbf16ps kernel against the
 *                             emulated one, bit for bit; exit 77 (SKIP) where
 *                             it is not compiled in or the CPU lacks it */
#include "gemm_bf16.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NT, NN, TN, PNT, PNN, EPI }; /* PNT, PNN: b packed first; EPI: nt with an epilogue */
static const char *const kind_name[] = {"nt", "nn", "tn", "packed_nt", "packed_nn", "nt_epilogue"};
enum { SKIP = 77 };

static int n_pass, n_fail, n_differ, n_compared;

static uint64_t rng = 0x9E3779B97F4A7C15u;
static float urand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- the reference --------------------------------------------------- */
static float ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

/* one element: acc from C (DAZ) or 0, pairs (k+1 first), bf16 operands */
static float ref_elem(int kind, int i, int j, int K, const float *A, int lda, const float *B,
                      int ldb, float c0, int acc)
{
    int bt = kind == NT || kind == PNT || kind == EPI;
    float s = acc ? ftz(c0) : 0.0f;
    for (int k = 0; k < K; k += 2) {
        float a[2] = {0, 0}, b[2] = {0, 0};
        for (int t = 0; t < 2 && k + t < K; t++) {
            a[t] = dl_bf16_round(kind == TN ? A[(size_t)(k + t) * lda + i] : A[(size_t)i * lda + k + t]);
            b[t] = dl_bf16_round(bt ? B[(size_t)j * ldb + k + t] : B[(size_t)(k + t) * ldb + j]);
        }
        s = ftz(fmaf(a[1], b[1], s));
        s = ftz(fmaf(a[0], b[0], s));
    }
    return s;
}

/* the same sum in plain fp32, k in order: what the mode must differ from */
static float fp32_elem(int kind, int i, int j, int K, const float *A, int lda, const float *B,
                       int ldb)
{
    int bt = kind == NT || kind == PNT || kind == EPI;
    float s = 0.0f;
    for (int k = 0; k < K; k++)
        s = fmaf(kind == TN ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k],
                 bt ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j], s);
    return s;
}

/* ---- dl_bf16_round on chosen bit patterns ------------------------------ */
static void check_rounding(void)
{
    static const uint32_t cases[][2] = {
        {0x3f800000u, 0x3f800000u}, /* 1 */
        {0x3f808000u, 0x3f800000u}, /* tie, even below: down */
        {0x3f818000u, 0x3f820000u}, /* tie, odd below: up */
        {0x3f808001u, 0x3f810000u}, /* above the tie: up */
        {0x3f807fffu, 0x3f800000u}, /* below the tie: down */
        {0xbf818000u, 0xbf820000u}, /* negative tie: away from zero to even */
        {0x00000001u, 0x00000000u}, /* denormal: zero (DAZ) */
        {0x007fffffu, 0x00000000u}, /* largest denormal: zero, not FLT_MIN */
        {0x80400000u, 0x80000000u}, /* negative denormal: -0 */
        {0x00800000u, 0x00800000u}, /* FLT_MIN stays */
        {0x7f7fffffu, 0x7f800000u}, /* FLT_MAX rounds to infinity */
        {0x7f800000u, 0x7f800000u}, /* +inf */
        {0xff800000u, 0xff800000u}, /* -inf */
        {0x7f800001u, 0x7fc00000u}, /* signalling NaN: quiet NaN, not inf */
        {0xffc12345u, 0xffc10000u}, /* quiet NaN: payload truncated */
        {0x80000000u, 0x80000000u}, /* -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t got = bits(dl_bf16_round(from_bits(cases[i][0])));
        if (got != cases[i][1]) {
            printf("FAIL round 0x%08x: got 0x%08x want 0x%08x\n", (unsigned)cases[i][0],
                   (unsigned)got, (unsigned)cases[i][1]);
            n_fail++;
        } else {
            n_pass++;
        }
    }
}

/* ---- one problem ------------------------------------------------------- */
typedef struct {
    atomic_int *hits;
    int ldc;
} ep_arg;

static void ep_count(void *arg, int i0, int i1, int j0, int j1)
{
    ep_arg *e = arg;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) atomic_fetch_add(&e->hits[(size_t)i * e->ldc + j], 1);
}

static void call(int kind, dl_pool *pool, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc, int acc, atomic_int *hits)
{
    switch (kind) {
    case NT: dl_gemm_nt(pool, M, N, K, A, lda, B, ldb, C, ldc, acc); break;
    case NN: dl_gemm_nn(pool, M, N, K, A, lda, B, ldb, C, ldc, acc); break;
    case TN: dl_gemm_tn(pool, M, N, K, A, lda, B, ldb, C, ldc, acc); break;
    case EPI: {
        ep_arg e = {hits, ldc};
        dl_gemm_nt_epilogue(pool, M, N, K, A, lda, B, ldb, C, ldc, ep_count, &e);
        break;
    }
    default: {
        size_t sz = (DL_GEMM_PACKED_SIZE(N, K) * sizeof(float) + 63) / 64 * 64;
        float *packed = aligned_alloc(64, sz);
        memset(packed, 0xff, sz); /* NaN garbage: every value used must be written */
        if (kind == PNT) dl_gemm_pack_nt(N, K, B, ldb, packed);
        else dl_gemm_pack_nn(N, K, B, ldb, packed);
        dl_gemm_packed(pool, M, N, K, A, lda, packed, C, ldc, acc);
        free(packed);
    }
    }
}

static int same(float got, float want)
{
    return bits(got) == bits(want) || (isnan(got) && isnan(want));
}

static dl_pool *pools[2]; /* NULL (1 thread), 2 threads */
static int cross;         /* --native: also the emulated kernel, bit for bit */

/* Fill A and B with values in [-1, 1), a few of them tiny (products that
 * are denormal must be flushed), denormal or NaN where `special`; C with
 * garbage, or with values (some denormal) to accumulate onto.  Then
 * compare every pool's result with the reference, or (other != NULL) with
 * the results of the other kernel, which *other runs. */
static void check(int kind, int M, int N, int K, int pad, int acc, int special)
{
    int arows = kind == TN ? K : M, acols = kind == TN ? M : K;
    int bt = kind == NT || kind == PNT || kind == EPI;
    int brows = bt ? N : K, bcols = bt ? K : N;
    int lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    size_t asz = (size_t)arows * lda, bsz = (size_t)brows * ldb, csz = (size_t)M * ldc;
    float *A = malloc(asz * sizeof *A), *B = malloc(bsz * sizeof *B);
    float *C0 = malloc(csz * sizeof *C0), *C = malloc(csz * sizeof *C);
    atomic_int *hits = malloc(csz * sizeof *hits);
    const float sentinel = 12345.0f;
    for (size_t i = 0; i < asz; i++) A[i] = (i % lda) < (size_t)acols ? urand() : NAN;
    for (size_t i = 0; i < bsz; i++) B[i] = (i % ldb) < (size_t)bcols ? urand() : NAN;
    if (special) {
        /* row 0 of a and column 0 of b tiny: their products are denormal */
        for (int k = 0; k < K; k++) {
            A[kind == TN ? (size_t)k * lda : (size_t)k] *= 1e-20f;
            B[bt ? (size_t)k : (size_t)k * ldb] *= 1e-20f;
        }
        /* a(1,1) denormal (reads as zero), a(2,2) NaN (poisons row 2) */
        if (M > 1 && K > 1) A[(size_t)lda + 1] = from_bits(0x00400000u);
        if (M > 2 && K > 2) A[(size_t)2 * lda + 2] = NAN;
    }
    for (size_t i = 0; i < csz; i++)
        C0[i] = (i % ldc) >= (size_t)N ? sentinel
              : !acc ? NAN
              : special && i % 5 == 0 ? from_bits(0x00001234u)
              : urand();

    for (int p = 0; p < 2; p++) {
        memcpy(C, C0, csz * sizeof *C);
        for (size_t i = 0; i < csz; i++) atomic_init(&hits[i], 0);
        int a = kind == EPI ? 0 : acc;
        call(kind, pools[p], M, N, K, A, lda, B, ldb, C, ldc, a, hits);
        int bad = 0;
        for (int i = 0; i < M && !bad; i++)
            for (int j = 0; j < ldc && !bad; j++) {
                size_t at = (size_t)i * ldc + j;
                float got = C[at];
                if (j >= N) {
                    if (bits(got) != bits(sentinel)) {
                        printf("FAIL %s M=%d N=%d K=%d acc=%d threads=%d: wrote padding\n",
                               kind_name[kind], M, N, K, a, p + 1);
                        bad = 1;
                    }
                    continue;
                }
                float want = ref_elem(kind, i, j, K, A, lda, B, ldb, C0[at], a);
                if (!same(got, want) || (kind == EPI && atomic_load(&hits[at]) != 1)) {
                    printf("FAIL %s M=%d N=%d K=%d acc=%d threads=%d special=%d C[%d,%d]: got %a "
                           "want %a hits %d\n",
                           kind_name[kind], M, N, K, a, p + 1, special, i, j, got, want,
                           atomic_load(&hits[at]));
                    bad = 1;
                }
                if (!a && K >= 8 && !special) {
                    n_compared++;
                    n_differ += bits(got) != bits(fp32_elem(kind, i, j, K, A, lda, B, ldb));
                }
            }
        if (cross && !bad) {
            float *E = malloc(csz * sizeof *E);
            memcpy(E, C0, csz * sizeof *E);
            dl_bf16_select(DL_BF16_EMULATED);
            call(kind, pools[p], M, N, K, A, lda, B, ldb, E, ldc, a, hits);
            dl_bf16_select(DL_BF16_AUTO);
            int differ = 0;
            for (size_t i = 0; i < csz; i++) differ |= !same(E[i], C[i]);
            if (differ) {
                printf("FAIL %s M=%d N=%d K=%d acc=%d threads=%d: native and emulated "
                       "kernels differ\n", kind_name[kind], M, N, K, a, p + 1);
                bad = 1;
            }
            free(E);
        }
        if (bad) n_fail++;
        else n_pass++;
    }
    free(A);
    free(B);
    free(C0);
    free(C);
    free(hits);
}

static void run_all(void)
{
    static const int Ms[] = {1, 2, 5, 7, 8, 13, 49, 65};
    static const int Ns[] = {1, 3, 16, 17, 33, 40};
    static const int Ks[] = {1, 2, 3, 8, 9, 255, 256, 257, 600};
    for (int kind = NT; kind <= EPI; kind++)
        for (size_t m = 0; m < sizeof Ms / sizeof *Ms; m++)
            for (size_t n = 0; n < sizeof Ns / sizeof *Ns; n++)
                for (size_t k = 0; k < sizeof Ks / sizeof *Ks; k++) {
                    int acc = (int)((m + n + k) % 2), pad = (int)(k % 3);
                    check(kind, Ms[m], Ns[n], Ks[k], pad, acc, (int)((m + k) % 4 == 0));
                }
    /* large enough for 2 threads to split (by columns, then by rows) */
    for (int kind = NT; kind <= EPI; kind++) {
        check(kind, 130, 70, 301, 1, kind % 2, 0);
        check(kind, 300, 10, 777, 0, 1 - kind % 2, 1);
    }
}

/* The native kernel against the reference and against the emulated one,
 * bit for bit. */
static int native_main(void)
{
    int have = dl_bf16_select(DL_BF16_AUTO);
    if (!have) {
        printf("SKIP: no native bf16 kernel compiled in (the compiler did not target "
               "avx512bf16; kernel: %s)\n", dl_bf16_kernel());
        return SKIP;
    }
#if defined(__AVX512BF16__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) {
        printf("SKIP: this CPU lacks avx512bf16\n");
        return SKIP;
    }
#endif
    printf("kernel: %s, against the emulated one and the reference\n", dl_bf16_kernel());
    cross = 1;
    run_all();
    return 0;
}

int main(int argc, char **argv)
{
    pools[1] = dl_pool_new(2);
    int native = argc > 1 && !strcmp(argv[1], "--native");
    if (native) {
        int rc = native_main();
        if (rc == SKIP) return SKIP;
    } else {
        check_rounding();
        /* the emulated kernel, and the native kernel's packing (bf16 pairs)
         * under scalar arithmetic, on every CPU */
        int have = dl_bf16_select(DL_BF16_EMULATED);
        printf("kernel: %s\n", dl_bf16_kernel());
        run_all();
        dl_bf16_select(DL_BF16_PAIRS);
        printf("kernel: %s\n", dl_bf16_kernel());
        run_all();
        if (have) {
            /* also the native kernel, where this CPU can run it */
#if defined(__AVX512BF16__) && defined(__GNUC__)
            __builtin_cpu_init();
            if (__builtin_cpu_supports("avx512bf16")) {
                dl_bf16_select(DL_BF16_AUTO);
                printf("kernel: %s\n", dl_bf16_kernel());
                run_all();
            }
#endif
        }
        /* rounding the operands must change most results of K >= 8 sums */
        if (n_differ * 10 < n_compared * 9) {
            printf("FAIL only %d of %d results differ from fp32: is bf16 rounding on?\n", n_differ,
                   n_compared);
            n_fail++;
        }
        printf("%d of %d results differ from plain fp32\n", n_differ, n_compared);
    }
    dl_pool_free(pools[1]);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
