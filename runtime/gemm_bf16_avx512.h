/* gemm_bf16_avx512.h: the native bf16 microkernel (AVX512_BF16's
 * vdpbf16ps) and its packing, for gemm_bf16.c (included only from there,
 * only when the compiler targets avx512bf16).
 *
 * Layouts: a pair (x(k), x(k+1)) of bf16 values is one 32-bit word, x(k)
 * in the low half (vdpbf16ps's element 2i), x(k+1) in the high half
 * (element 2i+1, which it adds first); past K the half is a zero.
 *   a: ap[r*kp + p]   = (a(r,2p), a(r,2p+1))       kp = (kc+1)/2
 *   b: bp[p*NR + c]   = (b(2p,c), b(2p+1,c)), 0 for nr <= c < NR
 * One vdpbf16ps per pair and vector adds both products to 16 columns of a
 * row, in the order gemm_bf16.h gives, with DAZ and FTZ built in. */

static inline uint32_t bf16_pair(float lo, float hi)
{
    uint32_t l, h;
    memcpy(&l, &lo, sizeof l);
    memcpy(&h, &hi, sizeof h);
    return dl_bf16_bits(l) >> 16 | dl_bf16_bits(h);
}

static void round_a_pairs(int tn, int mr, int kc, const float *A, ptrdiff_t lda, uint32_t *ap)
{
    int kp = (kc + 1) / 2;
    for (int r = 0; r < mr; r++)
        for (int p = 0; p < kp; p++) {
            int k = 2 * p;
            float lo = tn ? A[k * lda + r] : A[r * lda + k];
            float hi = k + 1 < kc ? (tn ? A[(k + 1) * lda + r] : A[r * lda + k + 1]) : 0.0f;
            ap[(ptrdiff_t)r * kp + p] = bf16_pair(lo, hi);
        }
}

/* nt: b(k,c) = B[c*ldb + k]; nn: b(k,c) = B[k*ldb + c]. */
static void pack_b_pairs(int nt, int kc, int nr, const float *B, ptrdiff_t ldb, uint32_t *bp)
{
    int kp = (kc + 1) / 2;
    for (int p = 0; p < kp; p++)
        for (int c = 0; c < NR; c++) {
            int k = 2 * p;
            uint32_t w = 0;
            if (c < nr) {
                float lo = nt ? B[c * ldb + k] : B[k * ldb + c];
                float hi = k + 1 >= kc ? 0.0f : nt ? B[c * ldb + k + 1] : B[(k + 1) * ldb + c];
                w = bf16_pair(lo, hi);
            }
            bp[(ptrdiff_t)p * NR + c] = w;
        }
}

/* A denormal C as the starting value reads as a zero of its sign (DAZ). */
static inline __m512 daz_ps(__m512 x)
{
    __m512i xi = _mm512_castps_si512(x);
    __m512i mag = _mm512_and_si512(xi, _mm512_set1_epi32(0x7fffffff));
    __mmask16 tiny = _mm512_cmplt_epi32_mask(mag, _mm512_set1_epi32(0x00800000));
    return _mm512_castsi512_ps(_mm512_mask_and_epi32(xi, tiny, xi, _mm512_set1_epi32((int)0x80000000u)));
}

static ALWAYS_INLINE void ukr_nat(const int mr, int nr, int kc, const uint32_t *a, ptrdiff_t ars,
                                  const uint32_t *b, float *c, ptrdiff_t ldc, int ow)
{
    __m512 acc[MR][NV];
    float tmp[NR];
    UNROLL
    for (int r = 0; r < mr; r++) {
        const float *p = c + r * ldc;
        if (nr < NR)
            for (int j = 0; j < NR; j++)
                tmp[j] = ow || j >= nr ? 0.0f : p[j];
        UNROLL
        for (int v = 0; v < NV; v++)
            acc[r][v] = ow ? _mm512_setzero_ps()
                           : daz_ps(_mm512_loadu_ps((nr < NR ? tmp : p) + v * BV_LEN));
    }
    int kp = (kc + 1) / 2;
    ROLLED
    for (int q = 0; q < kp; q++) {
        __m512bh bq[NV];
        UNROLL
        for (int v = 0; v < NV; v++)
            bq[v] = (__m512bh)_mm512_loadu_si512(b + (ptrdiff_t)q * NR + v * BV_LEN);
        UNROLL
        for (int r = 0; r < mr; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r * ars + q]);
            UNROLL
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, bq[v]);
        }
    }
    UNROLL
    for (int r = 0; r < mr; r++) {
        float *p = c + r * ldc;
        UNROLL
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps((nr < NR ? tmp : p) + v * BV_LEN, acc[r][v]);
        if (nr < NR)
            for (int j = 0; j < nr; j++)
                p[j] = tmp[j];
    }
}

#define NAT(m)                                                                        \
    static void nat_##m(int nr, int kc, const void *a, ptrdiff_t ars, const void *b,  \
                        float *c, ptrdiff_t ldc, int ow)                              \
    {                                                                                 \
        ukr_nat(m, nr, kc, a, ars, b, c, ldc, ow);                                    \
    }
NAT(1) NAT(2) NAT(3) NAT(4) NAT(5) NAT(6) NAT(7) NAT(8)
static const ukr_fn native_rows[MR + 1] = {
    NULL, nat_1, nat_2, nat_3, nat_4, nat_5, nat_6, nat_7, nat_8,
};
