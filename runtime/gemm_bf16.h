/* gemm_bf16.h: the GEMMs of a `dlnc build --precision bf16` trainer, which
 * compiles the runtime and the model with -DDL_GEMM_BF16.  gemm.c's public
 * functions hand every product to dl_bf16_gemm (gemm_bf16.c) in that mode;
 * the tests (tests/kernels/test_gemm_bf16.c) use the rest.
 *
 * What a bf16 GEMM computes, for each element of C:
 *
 *   acc = accumulate ? C : 0                      (a denormal C reads as 0)
 *   for k = 0, 2, 4, ... < K:                     (pairs, the odd one first)
 *       acc = ftz(fma(bf(a(i,k+1)), bf(b(k+1,j)), acc))    (0 * 0 past K)
 *       acc = ftz(fma(bf(a(i,k)),   bf(b(k,j)),   acc))
 *   C = acc
 *
 * bf() is dl_bf16_round below, ftz() flushes a denormal result to a zero of
 * its sign.  This is AVX512_BF16's vdpbf16ps exactly (Intel's pseudo-code:
 * per fp32 lane the odd product is added first, then the even one, each
 * product of two bf16 values exact in fp32, so each step is one rounding;
 * DAZ on its inputs, FTZ on its result, round to nearest even), so the
 * native kernel and the emulated one give the same bits, and both are
 * independent of the thread count and of how k is cut into slices: a slice
 * starts from what the one before left in C.  Only the operands are bf16;
 * C, the weights, the optimiser state and everything else stay fp32.
 *
 * AMX's tdpbf16ps sums differently: per instruction, Intel's pseudo-code
 * keeps the even and the odd products of a tile row in two chains started
 * from zero and adds them to C at the end.  An AMX kernel therefore cannot
 * give these bits; it would need a rule of its own (and its own emulation)
 * or a tolerance, which is why there is none yet. */
#ifndef DL_GEMM_BF16_H
#define DL_GEMM_BF16_H
#include "kernels.h"

#include <stdint.h>
#include <string.h>

#ifdef DL_GEMM_BF16
#if DL_REAL_IS_F64
#error "bf16 GEMMs are for f32 builds: dlnc build refuses --precision bf16 with --f64"
#endif

/* x rounded to bf16 (kept as the fp32 with those upper 16 bits), as
 * vcvtneps2bf16 does it: a zero or denormal becomes a zero of its sign,
 * infinities stay, a NaN stays a (quiet) NaN, anything else is rounded to
 * nearest, ties to even (a value past bf16's largest becomes infinite). */
static inline uint32_t dl_bf16_bits(uint32_t u)
{
    uint32_t rne = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    uint32_t quiet = (u | 0x00400000u) & 0xffff0000u;
    uint32_t e = u & 0x7f800000u;
    return e == 0 ? u & 0x80000000u : (u & 0x7fffffffu) > 0x7f800000u ? quiet : rne;
}

static inline float dl_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = dl_bf16_bits(u);
    memcpy(&x, &u, sizeof x);
    return x;
}

/* gemm.c's kinds, in its order (gemm.c asserts it). */
enum { DL_BF16_NT, DL_BF16_NN, DL_BF16_TN, DL_BF16_PACKED };

/* C[M,N] (+)= a . b as above; a and b are read as gemm.c's `kind` reads
 * them (PACKED: B is what dl_bf16_pack wrote); ep as dl_gemm_nt_epilogue's. */
void dl_bf16_gemm(dl_pool *pool, int kind, int M, int N, int K,
                  const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, int accumulate, dl_gemm_epilogue ep, void *ep_arg);
/* dl_gemm_pack_nt (kind NT) and dl_gemm_pack_nn (kind NN) in this mode:
 * b rounded to bf16, in the layout of the kernel in use; within
 * DL_GEMM_PACKED_SIZE(N, K) floats. */
void dl_bf16_pack(int kind, int N, int K, const float *B, int ldb, float *packed);

/* For tests: which kernel runs (pack and multiply under the same choice):
 * AUTO (the default) the native one where it is compiled in, else the
 * emulated one; EMULATED; PAIRS the native kernel's layouts (bf16 pairs)
 * with scalar arithmetic, to test that packing on any CPU.  Returns 1 if a
 * native kernel is compiled in (the CPU is the caller's to check). */
enum { DL_BF16_AUTO, DL_BF16_EMULATED, DL_BF16_PAIRS };
int dl_bf16_select(int kernel);
/* The kernel in use: "avx512bf16" (vdpbf16ps), "emulated" (fp32 FMAs) or
 * "pairs". */
const char *dl_bf16_kernel(void);
#endif
#endif
