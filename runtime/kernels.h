/* kernels.h: dense linear algebra for generated code.
 * Row-major; ld* are row strides in elements.  accumulate=0 overwrites C,
 * accumulate=1 adds to it.  Each C element is reduced over k in one fixed
 * order whatever the thread count, so results do not depend on --threads.
 * The body picks AVX-512, AVX2+FMA, NEON or portable C at compile time.
 * Compiled with -DDL_GEMM_BF16 (dlnc build --precision bf16), every product
 * below rounds both operands to bf16 and sums in fp32 (gemm_bf16.h has the
 * rule), and the packed layout is gemm_bf16.c's, within the same size.
 *
 * Large products keep their packed operands on the calling thread's stack:
 * up to 400 KiB (AVX-512; 290 KiB with AVX2), so threads that call these
 * need stacks of 1 MiB or more (glibc's default is 8 MiB). */
#ifndef DL_KERNELS_H
#define DL_KERNELS_H
#include "dl_real.h"
#include "threads.h"
#include <stddef.h>
#include <stdint.h>

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

/* b given by a function instead of a matrix (an implicit im2col): pack
 * writes b(k, j) for k0 <= k < k0+kc, j0 <= j < j0+nc into bp[(k - k0) *
 * ldbp + j - j0] and zeros into columns nc .. ldbp-1 (kc <= DL_GEMM_KC_MAX,
 * ldbp <= 32).  dl_gemm_custom_b is then C[M,N] (+)= A[M,K] . b. */
#define DL_GEMM_KC_MAX 256
typedef void (*dl_gemm_packer)(const void *arg, int k0, int kc, int j0, int nc, dl_real *bp,
                               int ldbp);
void dl_gemm_custom_b(dl_pool *pool, int M, int N, int K, const dl_real *A, int lda,
                      dl_gemm_packer pack, const void *pack_arg, dl_real *C, int ldc,
                      int accumulate);

/* C[i, j] = sum_{k<K} x[pos(p0 + i) + koff[k]] B[j*ldb + k] for i < np,
 * j < N, pos(p) = (p / OW) * row_stride + (p % OW) * col_stride: a
 * convolution's product with output positions as rows (C = y^T), each
 * receptive field gathered from the padded image x (element k of every
 * field at koff[k] from its corner) and B = W read as dl_gemm_nt reads it.
 * Single-threaded. */
void dl_gemm_gather_nt(int p0, int np, int N, int K, const dl_real *x, const int32_t *koff,
                       int OW, ptrdiff_t row_stride, ptrdiff_t col_stride, const dl_real *B,
                       int ldb, dl_real *C, int ldc);

/* A matrix of receptive fields read in place (a convolution's weight
 * gradient): row i = (c, ki, kj) = (i / (kh*kw), i / kw % kh, i % kw)
 * starts at c*cs + ki*is + kj*js, and column k = seg*seglen + t (K = nseg
 * * seglen: an output row of seglen positions per segment) is
 *   a(i, k) = A[row(i) + seg*segstride + t*kstride]. */
typedef struct {
  int kh, kw;
  ptrdiff_t cs, is, js;
  int nseg, seglen;
  ptrdiff_t segstride, kstride;
} dl_gemm_fields;
/* C[M,N] = sum over samples s < n of a_s . B_s^T, a_s the fields of
 * A + s*a_sample, B_s = B + s*b_sample read as dl_gemm_nt reads B [N, K]. */
void dl_gemm_fields_nt(dl_pool *pool, int M, int N, const dl_gemm_fields *f, int n,
                       const dl_real *A, ptrdiff_t a_sample, const dl_real *B, int ldb,
                       ptrdiff_t b_sample, dl_real *C, int ldc);

/* A 2-D convolution's shape (conv.c): C input and OC output channels in
 * `groups` groups, H x W in, OH x OW out, KH x KW kernel, strides SH SW,
 * zero padding PH PW, dilations DH DW (torch.nn.Conv2d's meaning). */
typedef struct {
  int C, H, W, OC, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, groups;
} dl_conv_shape;
/* One sample: its zero-padded image, [C][H + 2PH][W + 2PW], which the two
 * products below read. */
void dl_conv2d_pad(int C, int H, int W, int PH, int PW, const dl_real *x, dl_real *xpad);
/* One sample, group g: y[OC, OH*OW] (its group's rows) = W . fields(xpad). */
void dl_conv2d_forward(const dl_conv_shape *q, int g, const dl_real *xpad, const dl_real *w,
                       dl_real *y);
/* n samples: dwt[groups][C/groups*KH*KW][OC/groups] = sum over the batch of
 * fields(xpad_s) . dy_s^T: the weight gradient, transposed. */
void dl_conv2d_weight_grad(dl_pool *pool, const dl_conv_shape *q, int n, const dl_real *xpad,
                           const dl_real *dy, dl_real *dwt);

/* What the GEMMs' operands are: "f32" or "f64" (dl_real), or in a
 * --precision bf16 build (DL_GEMM_BF16) "bf16 (avx512bf16)" or
 * "bf16 (emulated)", after the kernel in use (gemm_bf16.c). */
const char *dl_gemm_precision(void);

/* Name of the code path compiled in: "avx512", "avx2", "neon" or "scalar". */
const char *dl_kernels_isa(void);

#endif
