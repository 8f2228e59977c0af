/* gemm_bf16.c: bf16 GEMMs (`dlnc build --precision bf16`, -DDL_GEMM_BF16);
 * what they compute is in gemm_bf16.h.  Compiled to nothing otherwise.
 *
 * Scheme: gemm.c's, trimmed.  C is cut into row blocks of BM rows; for each
 * block and each KC-long slice of k, the block's a is rounded to bf16 once
 * into a stack buffer (a row at a time, so it is read and rounded at memory
 * speed, not once per column panel), then for each NR-wide column panel the
 * slice of b is rounded and packed (or read from dl_bf16_pack's layout) and
 * a register-blocked microkernel sweeps MR rows at a time.
 *
 * Microkernels:
 *  - emulated (every CPU): a and b are bf16-rounded fp32 values; per pair
 *    of k, one fma for k+1, then one for k, as vdpbf16ps orders them.  On
 *    x86 the flushes (DAZ on inputs, FTZ on results) are MXCSR's, set for
 *    the duration of a call on the thread that runs it (the trainer sets
 *    them for good anyway); on AArch64 FPCR.FZ; elsewhere explicit.
 *  - native (#if __AVX512BF16__, gemm_bf16_avx512.h): b packed as bf16
 *    pairs (k, k+1) in each 32-bit lane, a(i,k), a(i,k+1) broadcast as one
 *    32-bit pair, one vdpbf16ps per pair.
 *  - pairs (tests only): the native kernel's layouts in scalar C.
 * tests/kernels/test_gemm_bf16.c holds all three to the same bits (the
 * native one where the CPU has the instruction).
 *
 * A slice starts from C (pc > 0, or accumulate) and an accumulator's
 * additions are one chain over k, so neither KC, BM nor the thread split
 * changes a result. */
#include "gemm_bf16.h"

#if defined(DL_GEMM_BF16)
#include "dl_hints.h"
#include "gemm_split.h"

#include <float.h>
#include <math.h>
#include <stddef.h>

#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 bvec;
#define BV_LEN 16
#define MR 8
#define NV 2
#define bv_load(p) _mm512_loadu_ps(p)
#define bv_store(p, v) _mm512_storeu_ps((p), (v))
#define bv_bcast(x) _mm512_set1_ps(x)
#define bv_fma(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define bv_add(a, b) _mm512_add_ps((a), (b))
#define bv_zero() _mm512_setzero_ps()
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
typedef __m256 bvec;
#define BV_LEN 8
#define MR 6
#define NV 2
#define bv_load(p) _mm256_loadu_ps(p)
#define bv_store(p, v) _mm256_storeu_ps((p), (v))
#define bv_bcast(x) _mm256_set1_ps(x)
#define bv_fma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define bv_add(a, b) _mm256_add_ps((a), (b))
#define bv_zero() _mm256_setzero_ps()
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
typedef float32x4_t bvec;
#define BV_LEN 4
#define MR 6
#define NV 4
#define bv_load(p) vld1q_f32(p)
#define bv_store(p, v) vst1q_f32((p), (v))
#define bv_bcast(x) vdupq_n_f32(x)
#define bv_fma(a, b, c) vfmaq_f32((c), (a), (b))
#define bv_add(a, b) vaddq_f32((a), (b))
#define bv_zero() vdupq_n_f32(0.0f)
#else
#if defined(__SSE__)
#include <xmmintrin.h>   /* _mm_getcsr */
#endif
typedef float bvec;
#define BV_LEN 1
#define MR 4
#define NV 4
#define bv_load(p) (*(p))
#define bv_store(p, v) (*(p) = (v))
#define bv_bcast(x) (x)
#define bv_fma(a, b, c) fmaf((a), (b), (c))
#define bv_add(a, b) ((a) + (b))
#define bv_zero() 0.0f
/* no flush mode to set: flush by hand (a zero of the value's sign) */
#define BV_FTZ(x) (fabsf(x) < FLT_MIN ? copysignf(0.0f, (x)) : (x))
#endif
#ifndef BV_FTZ
#define BV_FTZ(x) (x)   /* the flush mode set by flush_mode_on does it */
#endif

#define NR (NV * BV_LEN)   /* columns of C per microkernel call */
#define KC 256             /* k slice (even: pairs never straddle slices) */
#define BM (MR * 16)       /* rows of a rounded at once: BM*KC floats (96-128 KB
                              of stack: a batch of 64 or 128 is one block, so
                              each panel of b is rounded once per product) */

#if NR > 32
#error "gemm_bf16.c: DL_GEMM_PACKED_SIZE (kernels.h) assumes panels of at most 32 columns"
#endif

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#define HAVE_NATIVE 1
#else
#define HAVE_NATIVE 0
#endif

/* ---- flush modes --------------------------------------------------------
 * DAZ and FTZ for the emulated kernel's FMAs, on the calling thread, for
 * one block of work; returns what to restore. */
static unsigned long flush_mode_on(void)
{
#if defined(__SSE__) && (defined(__x86_64__) || defined(__i386__))
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);   /* FTZ (bit 15) | DAZ (bit 6) */
    return csr;
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ul << 24)));   /* FZ */
    return fpcr;
#else
    return 0;
#endif
}

static void flush_mode_off(unsigned long saved)
{
#if defined(__SSE__) && (defined(__x86_64__) || defined(__i386__))
    _mm_setcsr((unsigned)saved);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"(saved));
#else
    (void)saved;
#endif
}

static int selected = DL_BF16_AUTO;   /* tests only: set between calls, never during */

int dl_bf16_select(int kernel)
{
    selected = kernel;
    return HAVE_NATIVE;
}

static int use_native(void)
{
    return HAVE_NATIVE && selected == DL_BF16_AUTO;
}

/* the native kernel's layouts: bf16 pairs */
static int use_pairs(void)
{
    return use_native() || selected == DL_BF16_PAIRS;
}

const char *dl_bf16_kernel(void)
{
    return use_native() ? "avx512bf16" : selected == DL_BF16_PAIRS ? "pairs" : "emulated";
}

const char *dl_gemm_precision(void)
{
    return use_native() ? "bf16 (avx512bf16)" : "bf16 (emulated)";
}

/* ---- emulated microkernel -----------------------------------------------
 * C[r*ldc + c] = acc, acc starting at 0 (ow) or C, over k < kc in pairs as
 * gemm_bf16.h says; a[r*ars + k*aks] and b[k*NR + c] are bf16-rounded
 * already.
 * r < mr, c < nr <= NR.  An odd kc's last pair has 0 * 0 for its k+1 term:
 * acc + 0, which is what an fma of zeros gives (it turns -0 into +0). */
static DL_ALWAYS_INLINE void ukr_emu(const int mr, int nr, int kc, const float *a, ptrdiff_t ars,
                                     ptrdiff_t aks, const float *b, float *c, ptrdiff_t ldc, int ow)
{
    bvec acc[MR][NV];
    float tmp[NR];
    DL_UNROLL
    for (int r = 0; r < mr; r++) {
        const float *p = c + r * ldc;
        if (nr < NR)
            for (int j = 0; j < NR; j++)
                tmp[j] = ow || j >= nr ? 0.0f : BV_FTZ(p[j]);
        DL_UNROLL
        for (int v = 0; v < NV; v++)
            acc[r][v] = ow ? bv_zero() : nr < NR ? bv_load(tmp + v * BV_LEN)
                                                 : BV_FTZ(bv_load(p + v * BV_LEN));
    }
    /* k+1's products into every accumulator, then k's: each accumulator
     * sees the pair's order, and only one row of b is live at a time (MR x
     * NV accumulators, NV of b and a broadcast fill AVX2's 16 registers) */
    int k = 0;
    DL_NO_UNROLL
    for (; k + 2 <= kc; k += 2) {
        DL_UNROLL
        for (int h = 1; h >= 0; h--) {
            bvec bk[NV];
            DL_UNROLL
            for (int v = 0; v < NV; v++)
                bk[v] = bv_load(b + (k + h) * NR + v * BV_LEN);
            DL_UNROLL
            for (int r = 0; r < mr; r++) {
                bvec ar = bv_bcast(a[r * ars + (k + h) * aks]);
                DL_UNROLL
                for (int v = 0; v < NV; v++)
                    acc[r][v] = BV_FTZ(bv_fma(ar, bk[v], acc[r][v]));
            }
        }
    }
    if (k < kc) {   /* odd kc: the last pair is (k, zero) */
        DL_UNROLL
        for (int r = 0; r < mr; r++) {
            bvec a0 = bv_bcast(a[r * ars + k * aks]);
            DL_UNROLL
            for (int v = 0; v < NV; v++)
                acc[r][v] = BV_FTZ(bv_fma(a0, bv_load(b + k * NR + v * BV_LEN),
                                          bv_add(acc[r][v], bv_zero())));
        }
    }
    DL_UNROLL
    for (int r = 0; r < mr; r++) {
        float *p = c + r * ldc;
        if (nr == NR) {
            DL_UNROLL
            for (int v = 0; v < NV; v++)
                bv_store(p + v * BV_LEN, acc[r][v]);
        } else {
            DL_UNROLL
            for (int v = 0; v < NV; v++)
                bv_store(tmp + v * BV_LEN, acc[r][v]);
            for (int j = 0; j < nr; j++)
                p[j] = tmp[j];
        }
    }
}

/* a's rows lda apart (emu_r: a rounded by rows) or its k's (emu_c: by
 * columns, for tn) */
typedef void (*ukr_fn)(int nr, int kc, const void *a, ptrdiff_t lda, const void *b,
                       float *c, ptrdiff_t ldc, int ow);

#define EMU(m)                                                                          \
    static void emu_r##m(int nr, int kc, const void *a, ptrdiff_t lda, const void *b,   \
                         float *c, ptrdiff_t ldc, int ow)                               \
    {                                                                                   \
        ukr_emu(m, nr, kc, a, lda, 1, b, c, ldc, ow);                                   \
    }                                                                                   \
    static void emu_c##m(int nr, int kc, const void *a, ptrdiff_t lda, const void *b,   \
                         float *c, ptrdiff_t ldc, int ow)                               \
    {                                                                                   \
        ukr_emu(m, nr, kc, a, 1, lda, b, c, ldc, ow);                                   \
    }
EMU(1) EMU(2) EMU(3) EMU(4)
#if MR >= 6
EMU(5) EMU(6)
#endif
#if MR >= 8
EMU(7) EMU(8)
#endif
static const ukr_fn emu_rows[MR + 1] = {
    NULL, emu_r1, emu_r2, emu_r3, emu_r4,
#if MR >= 6
    emu_r5, emu_r6,
#endif
#if MR >= 8
    emu_r7, emu_r8,
#endif
};
static const ukr_fn emu_cols[MR + 1] = {
    NULL, emu_c1, emu_c2, emu_c3, emu_c4,
#if MR >= 6
    emu_c5, emu_c6,
#endif
#if MR >= 8
    emu_c7, emu_c8,
#endif
};

/* ---- packing as bf16 pairs (the native kernel's layout) -------------------
 * A pair (x(k), x(k+1)) of bf16 values is one 32-bit word, x(k) in the low
 * half (vdpbf16ps's element 2i), x(k+1) in the high half (element 2i+1,
 * which it adds first); past K the half is a zero.
 *   a: ap[r*kp + p]   = (a(r,2p), a(r,2p+1))       kp = (kc+1)/2
 *      (tn: ap[p*mr + r], so both are built from A's rows by loops the
 *      compiler vectorises)
 *   b: bp[p*NR + c]   = (b(2p,c), b(2p+1,c)), 0 for nr <= c < NR */
static inline uint32_t bf16_pair(float lo, float hi)
{
    uint32_t l, h;
    memcpy(&l, &lo, sizeof l);
    memcpy(&h, &hi, sizeof h);
    return dl_bf16_bits(l) >> 16 | (dl_bf16_bits(h) & 0xffff0000u);
}

/* w[p] = (x[2p], x[2p+1]) for 2p < n, a zero past n: a row's own pairs */
static void pairs_along(const float *x, int n, uint32_t *w)
{
    int p = 0;
    for (; 2 * p + 1 < n; p++)
        w[p] = bf16_pair(x[2 * p], x[2 * p + 1]);
    if (2 * p < n)
        w[p] = bf16_pair(x[2 * p], 0.0f);
}

/* w[c] = (x0[c], x1[c]) for c < n, x1 NULL: zeros (pairs across two rows) */
static void pairs_across(const float *x0, const float *x1, int n, uint32_t *w)
{
    if (x1)
        for (int c = 0; c < n; c++)
            w[c] = bf16_pair(x0[c], x1[c]);
    else
        for (int c = 0; c < n; c++)
            w[c] = bf16_pair(x0[c], 0.0f);
}

/* a: by rows ap[r*kp + p] (nt, nn: A's rows are a's), or for tn by pairs of
 * k, ap[p*mr + r] (A's rows are a's columns). */
static void round_a_pairs(int tn, int mr, int kc, const float *A, ptrdiff_t lda, uint32_t *ap)
{
    int kp = (kc + 1) / 2;
    if (tn) {
        for (int p = 0; p < kp; p++)
            pairs_across(A + 2 * p * lda, 2 * p + 1 < kc ? A + (2 * p + 1) * lda : NULL, mr,
                         ap + (ptrdiff_t)p * mr);
    } else {
        for (int r = 0; r < mr; r++)
            pairs_along(A + r * lda, kc, ap + (ptrdiff_t)r * kp);
    }
}

/* nt: b(k,c) = B[c*ldb + k]; nn: b(k,c) = B[k*ldb + c]. */
static void pack_b_pairs(int nt, int kc, int nr, const float *B, ptrdiff_t ldb, uint32_t *bp)
{
    int kp = (kc + 1) / 2;
    for (int p = 0; p < kp; p++)
        for (int c = nr; c < NR; c++)
            bp[(ptrdiff_t)p * NR + c] = 0;
    if (nt) {   /* a column of b is a row of B: its pairs, then spread */
        uint32_t w[KC / 2];
        for (int c = 0; c < nr; c++)
            /* KC (even) at a time: dl_bf16_pack packs all of K at once */
            for (int k0 = 0; k0 < kc; k0 += KC) {
                int n = kc - k0 < KC ? kc - k0 : KC;
                pairs_along(B + c * ldb + k0, n, w);
                for (int p = 0; p < (n + 1) / 2; p++)
                    bp[(ptrdiff_t)(k0 / 2 + p) * NR + c] = w[p];
            }
    } else {
        for (int p = 0; p < kp; p++)
            pairs_across(B + 2 * p * ldb, 2 * p + 1 < kc ? B + (2 * p + 1) * ldb : NULL, nr,
                         bp + (ptrdiff_t)p * NR);
    }
}

/* ---- the pairs kernel -----------------------------------------------------
 * The native kernel's arithmetic in scalar C on the pair layouts: for
 * tests (DL_BF16_PAIRS), so the packing above is checked on any CPU. */
static inline float pair_half(uint32_t w, int hi)
{
    uint32_t u = hi ? w & 0xffff0000u : w << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline float ftz(float x)
{
    return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x;
}

static void ukr_pairs(int mr, int nr, int kc, const uint32_t *a, ptrdiff_t ars, ptrdiff_t aks,
                      const uint32_t *b, float *c, ptrdiff_t ldc, int ow)
{
    int kp = (kc + 1) / 2;
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float acc = ow ? 0.0f : ftz(c[r * ldc + j]);
            for (int q = 0; q < kp; q++) {
                uint32_t wa = a[r * ars + q * aks], wb = b[(ptrdiff_t)q * NR + j];
                acc = ftz(fmaf(pair_half(wa, 1), pair_half(wb, 1), acc));
                acc = ftz(fmaf(pair_half(wa, 0), pair_half(wb, 0), acc));
            }
            c[r * ldc + j] = acc;
        }
}

#define PAIRS(m)                                                                        \
    static void pairs_r##m(int nr, int kc, const void *a, ptrdiff_t ld, const void *b,  \
                           float *c, ptrdiff_t ldc, int ow)                             \
    {                                                                                   \
        ukr_pairs(m, nr, kc, a, ld, 1, b, c, ldc, ow);                                  \
    }                                                                                   \
    static void pairs_c##m(int nr, int kc, const void *a, ptrdiff_t ld, const void *b,  \
                           float *c, ptrdiff_t ldc, int ow)                             \
    {                                                                                   \
        ukr_pairs(m, nr, kc, a, 1, ld, b, c, ldc, ow);                                  \
    }
PAIRS(1) PAIRS(2) PAIRS(3) PAIRS(4)
#if MR >= 6
PAIRS(5) PAIRS(6)
#endif
#if MR >= 8
PAIRS(7) PAIRS(8)
#endif
static const ukr_fn pairs_rows[MR + 1] = {
    NULL, pairs_r1, pairs_r2, pairs_r3, pairs_r4,
#if MR >= 6
    pairs_r5, pairs_r6,
#endif
#if MR >= 8
    pairs_r7, pairs_r8,
#endif
};
static const ukr_fn pairs_cols[MR + 1] = {
    NULL, pairs_c1, pairs_c2, pairs_c3, pairs_c4,
#if MR >= 6
    pairs_c5, pairs_c6,
#endif
#if MR >= 8
    pairs_c7, pairs_c8,
#endif
};

#if HAVE_NATIVE
#include "gemm_bf16_avx512.h"
#endif

/* ---- rounding and packing (emulated layout) ------------------------------
 * a: ap[r*kc + k] = bf(a(i0+r, pc+k)), r < mr, k < kc; for tn (A's rows
 *    are a's columns) ap[k*mr + r].
 * b: bp[k*NR + c] = bf(b(k, c)) for c < nr, 0 for nr <= c < NR.
 * Values are copied (transposed where the source's layout is the other
 * one), then rounded in place over the contiguous buffer: a loop the
 * compiler vectorises, where rounding during a strided copy would not be. */
static void round_in_place(float *p, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + i, sizeof u);
        u = dl_bf16_bits(u);
        memcpy(p + i, &u, sizeof u);
    }
}

static void round_a(int tn, int mr, int kc, const float *A, ptrdiff_t lda, float *ap)
{
    if (tn) {
        for (int k = 0; k < kc; k++)
            memcpy(ap + (ptrdiff_t)k * mr, A + k * lda, (size_t)mr * sizeof *ap);
    } else {
        for (int r = 0; r < mr; r++)
            memcpy(ap + (ptrdiff_t)r * kc, A + r * lda, (size_t)kc * sizeof *ap);
    }
    round_in_place(ap, (ptrdiff_t)mr * kc);
}

static void pack_b(int nt, int kc, int nr, const float *B, ptrdiff_t ldb, float *bp)
{
    for (int k = 0; k < kc; k++)
        for (int c = nr; c < NR; c++)
            bp[(ptrdiff_t)k * NR + c] = 0.0f;
    if (nt) {   /* b(k,c) = B[c*ldb + k] */
        for (int c = 0; c < nr; c++)
            for (int k = 0; k < kc; k++)
                bp[(ptrdiff_t)k * NR + c] = B[c * ldb + k];
    } else {    /* b(k,c) = B[k*ldb + c] */
        for (int k = 0; k < kc; k++)
            memcpy(bp + (ptrdiff_t)k * NR, B + k * ldb, (size_t)nr * sizeof *bp);
    }
    round_in_place(bp, (ptrdiff_t)kc * NR);
}

/* ---- driver ------------------------------------------------------------ */
typedef struct {
    int kind, M, N, K;
    const float *A;
    ptrdiff_t lda;
    const float *B;
    ptrdiff_t ldb;
    float *C;
    ptrdiff_t ldc;
    int accumulate;
} bf16_job;

/* The rounded slices of a and b, per thread (on its stack: 128 + 32 KB at most). */
typedef union {
    float f[BM * KC];
    uint32_t u[BM * KC / 2];
} a_buf;
typedef union {
    float f[KC * NR];
    uint32_t u[KC / 2 * NR];
} b_buf;

/* C rows [i0,i1) x columns [j0,j1), all of k (gemm_split_run's block). */
static void bf16_block(const void *job, int i0, int i1, int j0, int j1)
{
    const bf16_job *g = job;
    _Alignas(64) a_buf ap;
    _Alignas(64) b_buf bp;
    int tn = g->kind == DL_BF16_TN, native = use_native(), pairs = use_pairs();
    unsigned long saved = native ? 0 : flush_mode_on();
    for (int ib = i0; ib < i1; ib += BM) {
        int ie = i1 - ib > BM ? ib + BM : i1;
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = g->K - pc < KC ? g->K - pc : KC;
            int ow = !g->accumulate && pc == 0;
            const float *a = tn ? g->A + pc * g->lda + ib : g->A + ib * g->lda + pc;
            /* ap by rows (stride: kc values, or (kc+1)/2 pairs) or, for tn,
             * by k (stride: the block's rows); ld is the stride, step goes
             * from one MR-row tile to the next */
            ptrdiff_t ld = kc, step = kc;
            if (pairs) {
                round_a_pairs(tn, ie - ib, kc, a, g->lda, ap.u);
                ld = step = (kc + 1) / 2;
            } else {
                round_a(tn, ie - ib, kc, a, g->lda, ap.f);
            }
            if (tn) {
                ld = ie - ib;
                step = 1;
            }
            for (int jr = j0; jr < j1; jr += NR) {
                int nr = j1 - jr < NR ? j1 - jr : NR;
                const void *b = bp.f;
                /* dl_bf16_pack's panel jr/NR, rows pc.. (pairs pc/2.. natively) */
                if (g->kind == DL_BF16_PACKED) {
                    const float *panel = g->B + (ptrdiff_t)(jr / NR) * g->K * NR;
                    b = pairs ? (const void *)((const uint32_t *)panel + (ptrdiff_t)pc / 2 * NR)
                              : (const void *)(panel + (ptrdiff_t)pc * NR);
                } else {
                    const float *B = g->kind == DL_BF16_NT ? g->B + jr * g->ldb + pc
                                                           : g->B + pc * g->ldb + jr;
                    if (pairs)
                        pack_b_pairs(g->kind == DL_BF16_NT, kc, nr, B, g->ldb, bp.u);
                    else
                        pack_b(g->kind == DL_BF16_NT, kc, nr, B, g->ldb, bp.f);
                }
                const ukr_fn *kern = pairs ? (tn ? pairs_cols : pairs_rows)
                                           : (tn ? emu_cols : emu_rows);
#if HAVE_NATIVE
                if (native)
                    kern = tn ? native_cols : native_rows;
#endif
                for (int ir = ib; ir < ie; ir += MR) {
                    int mr = ie - ir < MR ? ie - ir : MR;
                    const void *ar = pairs ? (const void *)(ap.u + (ir - ib) * step)
                                           : (const void *)(ap.f + (ir - ib) * step);
                    kern[mr](nr, kc, ar, ld, b, g->C + ir * g->ldc + jr, g->ldc, ow);
                }
            }
        }
    }
    if (!native)
        flush_mode_off(saved);
}

void dl_bf16_gemm(dl_pool *pool, int kind, int M, int N, int K,
                  const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, int accumulate, dl_gemm_epilogue ep, void *ep_arg)
{
    bf16_job g = {kind, M, N, K, A, lda, B, ldb, C, ldc, accumulate};
    gemm_split sp = {bf16_block, &g, M, N, ep, ep_arg, 0, 0};
    gemm_split_run(pool, &sp, 2.0 * M * N * K, NR, MR);
}

/* Panel p (columns p*NR ..) at packed + p*K*NR floats: K rows of NR
 * rounded values (emulated), or (K+1)/2 rows of NR bf16 pairs (native). */
void dl_bf16_pack(int kind, int N, int K, const float *B, int ldb, float *packed)
{
    int nt = kind == DL_BF16_NT;
    for (int jr = 0; jr < N; jr += NR) {
        int nr = N - jr < NR ? N - jr : NR;
        const float *src = nt ? B + (ptrdiff_t)jr * ldb : B + jr;
        float *panel = packed + (ptrdiff_t)(jr / NR) * K * NR;
        if (use_pairs())
            pack_b_pairs(nt, K, nr, src, ldb, (uint32_t *)panel);
        else
            pack_b(nt, K, nr, src, ldb, panel);
    }
}

#else
/* an f32 or f64 build */
const char *dl_gemm_precision(void)
{
    return DL_REAL_IS_F64 ? "f64" : "f32";
}
#endif
