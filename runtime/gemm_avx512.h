/* gemm_avx512.h: AVX-512 vector primitives for the gemm template in
 * gemm_kernels.h (included only from there), plus a transposing B packer for fp32.
 * 8 rows x 2 vectors of accumulators: 16 zmm for C, 2 for B, 1 broadcast. */
#include <immintrin.h>

#define GEMM_ISA "avx512"
#define GEMM_MR 8
#define GEMM_NV 2
#define GEMM_NV_WIDE 4   /* vectors per row in the unpacked small-M kernel */

#if DL_REAL_IS_F64
typedef __m512d gvec;
#define GV_LEN 8
#define gv_load(p) _mm512_loadu_pd(p)
#define gv_store(p, v) _mm512_storeu_pd((p), (v))
#define gv_bcast(x) _mm512_set1_pd(x)
#define gv_fma(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define gv_add(a, b) _mm512_add_pd((a), (b))
#define gv_zero() _mm512_setzero_pd()
#define gv_hsum(v) _mm512_reduce_add_pd(v)
/* lanes 0 .. n-1 (0 < n <= GV_LEN) of p, untouched memory beyond */
#define GV_HAVE_PART 1
#define gv_load_part(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), (p))
#define gv_store_part(p, v, n) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (n)) - 1), (v))
#else
typedef __m512 gvec;
#define GV_LEN 16
#define gv_load(p) _mm512_loadu_ps(p)
#define gv_store(p, v) _mm512_storeu_ps((p), (v))
#define gv_bcast(x) _mm512_set1_ps(x)
#define gv_fma(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define gv_add(a, b) _mm512_add_ps((a), (b))
#define gv_zero() _mm512_setzero_ps()
#define gv_hsum(v) _mm512_reduce_add_ps(v)
/* lanes 0 .. n-1 (0 < n <= GV_LEN) of p, untouched memory beyond */
#define GV_HAVE_PART 1
#define gv_load_part(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), (p))
#define gv_store_part(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1), (v))

/* In-register transpose of 16 rows of 16 floats: r[i][j] -> r[j][i].
 * Stage 1/2 (unpack ps, pd) transpose 4x4 blocks inside each 128-bit lane;
 * stage 3/4 (shuffle_f32x4) transpose the 4x4 grid of lanes. */
static inline void tr16x16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g+q], lane l = column 4l+q of rows 4g..4g+3 */
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* column 4l+q = lane l of u[q], u[4+q], u[8+q], u[12+q] */
    for (int q = 0; q < 4; q++) {
        __m512 x0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44);
        __m512 x1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);
        __m512 x2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);
        __m512 x3 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);
        r[q] = _mm512_shuffle_f32x4(x0, x2, 0x88);
        r[4 + q] = _mm512_shuffle_f32x4(x0, x2, 0xDD);
        r[8 + q] = _mm512_shuffle_f32x4(x1, x3, 0x88);
        r[12 + q] = _mm512_shuffle_f32x4(x1, x3, 0xDD);
    }
}

/* bp[k*NR + c] = B[c*ldb + k] for c < nr, 0 for nr <= c < NR; k < kc.
 * Done as 16x16 tiles: masked loads cover the k and c edges. */
#define GEMM_HAVE_PACK_BT 1
static void pack_b_t(int kc, int nr, const float *B, ptrdiff_t ldb, float *bp)
{
    for (int k0 = 0; k0 < kc; k0 += 16) {
        int kn = kc - k0 < 16 ? kc - k0 : 16;
        __mmask16 km = (__mmask16)(kn == 16 ? 0xFFFF : (1u << kn) - 1);
        for (int c0 = 0; c0 < 2 * 16; c0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = c0 + i < nr
                     ? _mm512_maskz_loadu_ps(km, B + (ptrdiff_t)(c0 + i) * ldb + k0)
                     : _mm512_setzero_ps();
            tr16x16(r);
            for (int i = 0; i < kn; i++)
                _mm512_store_ps(bp + (ptrdiff_t)(k0 + i) * 32 + c0, r[i]);
        }
    }
}
#endif
