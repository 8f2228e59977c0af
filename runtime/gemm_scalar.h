/* gemm_scalar.h: portable C "vectors" of one element for the gemm template
 * in gemm_kernels.h (included only from there).  4x4 accumulators fit the 16
 * registers of most targets; the compiler may still vectorise. */
#define GEMM_ISA "scalar"
#define GEMM_MR 4
#define GEMM_NV 4
#define GEMM_NV_WIDE 8   /* "vectors" per row in the unpacked small-M kernel */

typedef dl_real gvec;
#define GV_LEN 1
#define gv_load(p) (*(p))
#define gv_store(p, v) (*(p) = (v))
#define gv_bcast(x) (x)
#define gv_fma(a, b, c) ((a) * (b) + (c))
#define gv_add(a, b) ((a) + (b))
#define gv_zero() ((dl_real)0)
#define gv_hsum(v) (v)
