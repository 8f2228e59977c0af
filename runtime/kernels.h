/* kernels.h: dense linear algebra for generated code.
 * Row-major; ld* are row strides in elements.  accumulate=0 overwrites C,
 * accumulate=1 adds to it.  Each C element is reduced over k in one fixed
 * order whatever the thread count, so results do not depend on --threads.
 * The body picks AVX-512, AVX2+FMA, NEON or portable C at compile time.
 * Large products keep their packed operands on the calling thread's stack:
 * up to 400 KiB (AVX-512; 290 KiB with AVX2), so threads that call these
 * need stacks of 1 MiB or more (glibc's default is 8 MiB). */
#ifndef DL_KERNELS_H
#define DL_KERNELS_H
#include "dl_real.h"
#include "threads.h"

/* C[M,N] (+)= A[M,K] . B[N,K]^T      (dense forward: y = x W^T) */
void dl_gemm_nt(dl_pool *pool, int M, int N, int K,
                const dl_real *A, int lda, const dl_real *B, int ldb,
                dl_real *C, int ldc, int accumulate);
/* Run on each block of C as soon as it is final, by the thread that computed
 * it: rows [i0,i1) x columns [j0,j1).  The blocks tile C exactly once. */
typedef void (*dl_gemm_epilogue)(void *arg, int i0, int i1, int j0, int j1);
/* dl_gemm_nt (overwriting C), then ep on every block: a dense layer's bias and
 * activation applied while its block is still in cache, on every thread. */
void dl_gemm_nt_epilogue(dl_pool *pool, int M, int N, int K,
                         const dl_real *A, int lda, const dl_real *B, int ldb,
                         dl_real *C, int ldc, dl_gemm_epilogue ep, void *ep_arg);
/* C[M,N] (+)= A[M,K] . B[K,N]        (dense backward: dx = dy W) */
void dl_gemm_nn(dl_pool *pool, int M, int N, int K,
                const dl_real *A, int lda, const dl_real *B, int ldb,
                dl_real *C, int ldc, int accumulate);
/* C[M,N] (+)= A[K,M]^T . B[K,N]      (dense backward: dW = dy^T x) */
void dl_gemm_tn(dl_pool *pool, int M, int N, int K,
                const dl_real *A, int lda, const dl_real *B, int ldb,
                dl_real *C, int ldc, int accumulate);

/* b packed once for many products that share it (a recurrent layer's W_hh,
 * read at every step): dl_gemm_pack_nt packs b(k,j) = B[j*ldb + k] (as
 * dl_gemm_nt reads B), dl_gemm_pack_nn b(k,j) = B[k*ldb + j] (as dl_gemm_nn),
 * into `packed`, which holds DL_GEMM_PACKED_SIZE(N, K) elements and is
 * 64-byte aligned; dl_gemm_packed is then C[M,N] (+)= A[M,K] . b, with the
 * same results as the unpacked call. */
#define DL_GEMM_PACKED_SIZE(N, K) (((size_t)(N) + 31) * (size_t)(K))
void dl_gemm_pack_nt(int N, int K, const dl_real *B, int ldb, dl_real *packed);
void dl_gemm_pack_nn(int N, int K, const dl_real *B, int ldb, dl_real *packed);
void dl_gemm_packed(dl_pool *pool, int M, int N, int K, const dl_real *A, int lda,
                    const dl_real *packed, dl_real *C, int ldc, int accumulate);

/* Name of the code path compiled in: "avx512", "avx2", "neon" or "scalar". */
const char *dl_kernels_isa(void);

#endif
