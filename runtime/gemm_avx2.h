/* gemm_avx2.h: AVX2+FMA vector primitives for the gemm template in
 * gemm_kernels.h (included only from there), plus a transposing B packer for fp32.
 * 6 rows x 2 vectors of accumulators: 12 ymm for C, 2 for B, 1 broadcast
 * (of 16). */
#include <immintrin.h>

#define GEMM_ISA "avx2"
#define GEMM_MR 6
#define GEMM_NV 2
#define GEMM_NV_WIDE 4   /* vectors per row in the unpacked small-M kernel */

#if DL_REAL_IS_F64
typedef __m256d gvec;
#define GV_LEN 4
#define gv_load(p) _mm256_loadu_pd(p)
#define gv_store(p, v) _mm256_storeu_pd((p), (v))
#define gv_bcast(x) _mm256_set1_pd(x)
#define gv_fma(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define gv_add(a, b) _mm256_add_pd((a), (b))
#define gv_zero() _mm256_setzero_pd()
#define gv_hsum(v) hsum_pd(v)
/* lanes 0 .. n-1 (0 < n <= GV_LEN) of p, untouched memory beyond */
#define GV_HAVE_PART 1
#define gv_part_mask(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
#define gv_load_part(p, n) _mm256_maskload_pd((p), gv_part_mask(n))
#define gv_store_part(p, v, n) _mm256_maskstore_pd((p), gv_part_mask(n), (v))
/* (v0 + v2) + (v1 + v3) */
static inline double hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
#else
typedef __m256 gvec;
#define GV_LEN 8
#define gv_load(p) _mm256_loadu_ps(p)
#define gv_store(p, v) _mm256_storeu_ps((p), (v))
#define gv_bcast(x) _mm256_set1_ps(x)
#define gv_fma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define gv_add(a, b) _mm256_add_ps((a), (b))
#define gv_zero() _mm256_setzero_ps()
#define gv_hsum(v) hsum_ps(v)
/* lanes 0 .. n-1 (0 < n <= GV_LEN) of p, untouched memory beyond */
#define GV_HAVE_PART 1
#define gv_part_mask(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define gv_load_part(p, n) _mm256_maskload_ps((p), gv_part_mask(n))
#define gv_store_part(p, v, n) _mm256_maskstore_ps((p), gv_part_mask(n), (v))
/* fixed tree: halves, then pairs, then the last two */
static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* In-register transpose of 8 rows of 8 floats: r[i][j] -> r[j][i].
 * unpack + shuffle transpose the 4x4 blocks inside each 128-bit half,
 * permute2f128 swaps the off-diagonal halves. */
static inline void tr8x8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g+q], half h = column 4h+q of rows 4g..4g+3 */
    for (int g = 0; g < 2; g++) {
        u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
        r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
}

/* bp[k*NR + c] = B[c*ldb + k] for c < nr, 0 for nr <= c < NR; k < kc.
 * Whole 8x8 tiles go through registers; the k tail is copied one by one. */
#define GEMM_HAVE_PACK_BT 1
static void pack_b_t(int kc, int nr, const float *B, ptrdiff_t ldb, float *bp)
{
    int k0 = 0;
    for (; k0 + 8 <= kc; k0 += 8) {
        for (int c0 = 0; c0 < 2 * 8; c0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = c0 + i < nr ? _mm256_loadu_ps(B + (ptrdiff_t)(c0 + i) * ldb + k0)
                                   : _mm256_setzero_ps();
            tr8x8(r);
            for (int i = 0; i < 8; i++)
                _mm256_store_ps(bp + (ptrdiff_t)(k0 + i) * 16 + c0, r[i]);
        }
    }
    for (int k = k0; k < kc; k++)
        for (int c = 0; c < 16; c++)
            bp[(ptrdiff_t)k * 16 + c] = c < nr ? B[(ptrdiff_t)c * ldb + k] : 0.0f;
}
#endif
