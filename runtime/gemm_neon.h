/* gemm_neon.h: AArch64 NEON vector primitives for the gemm template in
 * gemm_kernels.h (included only from there).  6 rows x 4 vectors of accumulators:
 * 24 q registers for C, 4 for B, 1 broadcast (of 32). */
#include <arm_neon.h>

#define GEMM_ISA "neon"
#define GEMM_MR 6
#define GEMM_NV 4
#define GEMM_NV_WIDE 4   /* vectors per row in the unpacked small-M kernel */

#if DL_REAL_IS_F64
typedef float64x2_t gvec;
#define GV_LEN 2
#define gv_load(p) vld1q_f64(p)
#define gv_store(p, v) vst1q_f64((p), (v))
#define gv_bcast(x) vdupq_n_f64(x)
#define gv_fma(a, b, c) vfmaq_f64((c), (a), (b))
#define gv_add(a, b) vaddq_f64((a), (b))
#define gv_zero() vdupq_n_f64(0.0)
#define gv_hsum(v) vaddvq_f64(v)
#else
typedef float32x4_t gvec;
#define GV_LEN 4
#define gv_load(p) vld1q_f32(p)
#define gv_store(p, v) vst1q_f32((p), (v))
#define gv_bcast(x) vdupq_n_f32(x)
#define gv_fma(a, b, c) vfmaq_f32((c), (a), (b))
#define gv_add(a, b) vaddq_f32((a), (b))
#define gv_zero() vdupq_n_f32(0.0f)
#define gv_hsum(v) vaddvq_f32(v)
#endif
