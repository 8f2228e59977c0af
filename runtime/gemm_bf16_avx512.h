/* gemm_bf16_avx512.h: the native bf16 microkernel (AVX512_BF16's
 * vdpbf16ps) and its packing, for gemm_bf16.c (included only from there,
 * only when the compiler targets avx512bf16).
 *
 * The layouts of a and b (bf16 pairs) are gemm_bf16.c's (round_a_pairs,
 * pack_b_pairs), where its scalar "pairs" kernel tests them on any CPU.
 * One vdpbf16ps per pair and vector adds both products to 16 columns of a
 * row, in the order gemm_bf16.h gives, with DAZ and FTZ built in. */

/* A denormal C as the starting value reads as a zero of its sign (DAZ). */
static inline __m512 daz_ps(__m512 x)
{
    __m512i xi = _mm512_castps_si512(x);
    __m512i mag = _mm512_and_si512(xi, _mm512_set1_epi32(0x7fffffff));
    __mmask16 tiny = _mm512_cmplt_epi32_mask(mag, _mm512_set1_epi32(0x00800000));
    return _mm512_castsi512_ps(_mm512_mask_and_epi32(xi, tiny, xi, _mm512_set1_epi32((int)0x80000000u)));
}

static DL_ALWAYS_INLINE void ukr_nat(const int mr, int nr, int kc, const uint32_t *a,
                                     ptrdiff_t ars, ptrdiff_t aks, const uint32_t *b, float *c,
                                     ptrdiff_t ldc, int ow)
{
    __m512 acc[MR][NV];
    float tmp[NR];
    DL_UNROLL
    for (int r = 0; r < mr; r++) {
        const float *p = c + r * ldc;
        if (nr < NR)
            for (int j = 0; j < NR; j++)
                tmp[j] = ow || j >= nr ? 0.0f : p[j];
        DL_UNROLL
        for (int v = 0; v < NV; v++)
            acc[r][v] = ow ? _mm512_setzero_ps()
                           : daz_ps(_mm512_loadu_ps((nr < NR ? tmp : p) + v * BV_LEN));
    }
    int kp = (kc + 1) / 2;
    DL_NO_UNROLL
    for (int q = 0; q < kp; q++) {
        __m512bh bq[NV];
        DL_UNROLL
        for (int v = 0; v < NV; v++)
            bq[v] = (__m512bh)_mm512_loadu_si512(b + (ptrdiff_t)q * NR + v * BV_LEN);
        DL_UNROLL
        for (int r = 0; r < mr; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r * ars + q * aks]);
            DL_UNROLL
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, bq[v]);
        }
    }
    DL_UNROLL
    for (int r = 0; r < mr; r++) {
        float *p = c + r * ldc;
        DL_UNROLL
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps((nr < NR ? tmp : p) + v * BV_LEN, acc[r][v]);
        if (nr < NR)
            for (int j = 0; j < nr; j++)
                p[j] = tmp[j];
    }
}

/* nat_r: a's pairs by rows (ld apart); nat_c: by k (tn, ld = rows apart) */
#define NAT(m)                                                                          \
    static void nat_r##m(int nr, int kc, const void *a, ptrdiff_t ld, const void *b,    \
                         float *c, ptrdiff_t ldc, int ow)                               \
    {                                                                                   \
        ukr_nat(m, nr, kc, a, ld, 1, b, c, ldc, ow);                                    \
    }                                                                                   \
    static void nat_c##m(int nr, int kc, const void *a, ptrdiff_t ld, const void *b,    \
                         float *c, ptrdiff_t ldc, int ow)                               \
    {                                                                                   \
        ukr_nat(m, nr, kc, a, 1, ld, b, c, ldc, ow);                                    \
    }
NAT(1) NAT(2) NAT(3) NAT(4) NAT(5) NAT(6) NAT(7) NAT(8)
static const ukr_fn native_rows[MR + 1] = {
    NULL, nat_r1, nat_r2, nat_r3, nat_r4, nat_r5, nat_r6, nat_r7, nat_r8,
};
static const ukr_fn native_cols[MR + 1] = {
    NULL, nat_c1, nat_c2, nat_c3, nat_c4, nat_c5, nat_c6, nat_c7, nat_c8,
};
