/* gemm_kernels.h: the register-blocked microkernels of gemm.c and
 * gemm_conv.c (included only from those two), and what both need around
 * them: the target's vector primitives (one ISA header per target, chosen
 * below), the blocking constants, the tile store, b's transposing packer
 * and tile_rows.  Everything here is static and inlined into its caller,
 * so each file compiles its own copy of what it uses.  The scheme and the
 * determinism rules are gemm.c's. */
#ifndef DL_GEMM_KERNELS_H
#define DL_GEMM_KERNELS_H
#include "dl_hints.h"
#include "kernels.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__AVX512F__)
#include "gemm_avx512.h"
#elif defined(__AVX2__) && defined(__FMA__)
#include "gemm_avx2.h"
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include "gemm_neon.h"
#else
#include "gemm_scalar.h"
#endif

#define MR GEMM_MR                 /* rows of C per microkernel call      */
#define NV GEMM_NV                 /* vectors of C per row                */
#define NR (GEMM_NV * GV_LEN)      /* columns of C per microkernel call   */
#define KC DL_GEMM_KC_MAX            /* k slice: KC*NR packed b fits in L1  */
#define MC (MR * 32)               /* row block: MC*KC of A stays in L2   */
/* row block of packed a (gemm_block_pa): MR*44 rows in f32, MR*22 in f64,
 * so MCA*KC elements take the same bytes, about half of a 512 KiB L2 */
#define MCA (MR * 176 / (int)sizeof(dl_real))
#define MS (MR / 2)                /* M <= MS: the small-M kernels        */
#define NVW GEMM_NV_WIDE           /* vectors per row, small-M nn/tn      */
#define NRW (NVW * GV_LEN)         /* columns per call, small-M nn/tn     */
#define NVMAX (NV > NVW ? NV : NVW)
#define DOT_NJ 4                   /* columns per call, small-M nt        */

#if MR != 4 && MR != 6 && MR != 8
#error "gemm_kernels.h: GEMM_MR must be 4, 6 or 8"
#endif
/* A kernel's instances by tile height: FOR_ROWS(X) defines X(1) .. X(MR),
 * BY_ROWS(p) is the table {NULL, p1, .., pMR} of them. */
#if MR == 8
#define FOR_ROWS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
#define BY_ROWS(p) {NULL, p##1, p##2, p##3, p##4, p##5, p##6, p##7, p##8}
#elif MR == 6
#define FOR_ROWS(X) X(1) X(2) X(3) X(4) X(5) X(6)
#define BY_ROWS(p) {NULL, p##1, p##2, p##3, p##4, p##5, p##6}
#else
#define FOR_ROWS(X) X(1) X(2) X(3) X(4)
#define BY_ROWS(p) {NULL, p##1, p##2, p##3, p##4}
#endif
#if NR > 32
#error "gemm_kernels.h: DL_GEMM_PACKED_SIZE (kernels.h) assumes panels of at most 32 columns"
#endif
#if NV % 2
#error "gemm_kernels.h: GEMM_NV must be even (half panels use NV/2)"
#endif

/* GV_KEEP(v): v must be in a register here.  With registers to spare (the
 * tiles of 4 rows or fewer), gcc folds the loads of b into every FMA that
 * uses them: mr loads per vector of b instead of one, and the tile runs
 * at the load ports' pace (tn 10x128x64, tiles of 6 + 4 rows: 74 instead
 * of 90 GFLOP/s).  An empty asm that takes and returns v stops it, where
 * acc, b and the broadcast fit in the GV_NREGS vector registers (tn
 * 3x784x64, 12 + 4 + 1 of 16: 60 -> 36 GFLOP/s with it, spilling). */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__AVX2__) || defined(__AVX512F__))
#define GV_KEEP(v) __asm__("" : "+v"(v))
#else
#define GV_KEEP(v) ((void)0)
#endif
#if defined(__AVX512F__)
#define GV_NREGS 32
#else
#define GV_NREGS 16
#endif

/* C[r*ldc + c] = acc (ow) or C + acc, for r < mr, c < nr: the end of every
 * microkernel.  A partial tile goes through tmp and then masked loads and
 * stores where the ISA has them (never touching C past column nr; a copy
 * loop there became a memcpy call per row, 5% of fashion_cnn's step),
 * else element by element; the additions are the same either way, so edge
 * elements round like the rest. */
static DL_ALWAYS_INLINE void tile_store(const int mr, const int nv, int nr, gvec acc[MR][NVMAX],
                                        dl_real *c, ptrdiff_t ldc, int ow)
{
    if (nr == nv * GV_LEN) {
        DL_UNROLL
        for (int r = 0; r < mr; r++)
            DL_UNROLL
            for (int v = 0; v < nv; v++) {
                dl_real *p = c + r * ldc + v * GV_LEN;
                gv_store(p, ow ? acc[r][v] : gv_add(gv_load(p), acc[r][v]));
            }
        return;
    }
    /* acc goes through tmp (indexing acc by a loop variable would keep
     * clang from holding it in registers in the kernel's loop) */
    dl_real tmp[NVMAX * GV_LEN];
    DL_UNROLL
    for (int r = 0; r < mr; r++) {
        DL_UNROLL
        for (int v = 0; v < nv; v++)
            gv_store(tmp + v * GV_LEN, acc[r][v]);
        dl_real *p = c + r * ldc;
#ifdef GV_HAVE_PART
        for (int j = 0; j < nr; j += GV_LEN) {
            int n = nr - j < GV_LEN ? nr - j : GV_LEN;
            gvec t = gv_load(tmp + j);
            gv_store_part(p + j, ow ? t : gv_add(gv_load_part(p + j, n), t), n);
        }
#else
        for (int j = 0; j < nr; j++)
            p[j] = ow ? tmp[j] : p[j] + tmp[j];
#endif
    }
}

/* acc[r][v] = 0 for r < mr, v < nv: the start of every tile. */
static DL_ALWAYS_INLINE void tile_zero(const int mr, const int nv, gvec acc[MR][NVMAX])
{
    DL_UNROLL
    for (int r = 0; r < mr; r++)
        DL_UNROLL
        for (int v = 0; v < nv; v++)
            acc[r][v] = gv_zero();
}

/* acc[r][:] += a[r][off] * b[0 .. nv*GV_LEN) for r < mr: one k step of a
 * tile whose rows of a are reached through pointers (field_body,
 * gather_body), b's row in registers, a broadcast at a time. */
static DL_ALWAYS_INLINE void tile_step(const int mr, const int nv, const dl_real *const *a,
                                       ptrdiff_t off, const dl_real *b, gvec acc[MR][NVMAX])
{
    gvec bk[NVMAX];
    DL_UNROLL
    for (int v = 0; v < nv; v++)
        bk[v] = gv_load(b + v * GV_LEN);
    DL_UNROLL
    for (int r = 0; r < mr; r++) {
        gvec ar = gv_bcast(a[r][off]);
        DL_UNROLL
        for (int v = 0; v < nv; v++)
            acc[r][v] = gv_fma(ar, bk[v], acc[r][v]);
    }
}

/* ---- microkernel --------------------------------------------------------
 * C[r*ldc + c] (= if ow, else +=) sum_{k<kc} a[r*ars + k*aks] * b[k*bks + c]
 * for r < mr, c < nr <= nv*GV_LEN.  mr and nv are compile-time constants in
 * every instance, so acc[][] lives in registers.  Partial tiles go through
 * tmp with the same scalar additions, so edge elements round like the rest.
 * b is either a packed panel (bks = NR) or, for small M, B itself. */
static DL_ALWAYS_INLINE void ukr_body(const int mr, const int nv, int nr, int kc,
                                      const dl_real *a, ptrdiff_t ars, ptrdiff_t aks,
                                      const dl_real *b, ptrdiff_t bks,
                                      dl_real *c, ptrdiff_t ldc, int ow)
{
    gvec acc[MR][NVMAX];
    tile_zero(mr, nv, acc);
    /* acc[r][:] += a(r,k) * b[k][:]  for k = 0 .. kc-1 */
    DL_NO_UNROLL
    for (int k = 0; k < kc; k++) {
        if (mr * nv + nv + 1 <= GV_NREGS || mr * nv + mr + 1 > GV_NREGS) {
            /* b's row in registers, a broadcast at a time */
            gvec bk[NVMAX];
            DL_UNROLL
            for (int v = 0; v < nv; v++) {
                bk[v] = gv_load(b + k * bks + v * GV_LEN);
                if (mr * nv + nv + 1 <= GV_NREGS)
                    GV_KEEP(bk[v]);
            }
            DL_UNROLL
            for (int r = 0; r < mr; r++) {
                gvec ar = gv_bcast(a[r * ars + k * aks]);
                DL_UNROLL
                for (int v = 0; v < nv; v++)
                    acc[r][v] = gv_fma(ar, bk[v], acc[r][v]);
            }
        } else {
            /* wide and short (the small-M 3 x 4-vector tile): the mr
             * broadcasts in registers, b a vector at a time; b's whole row
             * would need one register too many and clang spilled an
             * accumulator every iteration (tn 3x784x64: 45 GFLOP/s) */
            gvec ar[MR];
            DL_UNROLL
            for (int r = 0; r < mr; r++) {
                ar[r] = gv_bcast(a[r * ars + k * aks]);
                GV_KEEP(ar[r]);
            }
            DL_UNROLL
            for (int v = 0; v < nv; v++) {
                gvec bv = gv_load(b + k * bks + v * GV_LEN);
                GV_KEEP(bv);
                DL_UNROLL
                for (int r = 0; r < mr; r++)
                    acc[r][v] = gv_fma(ar[r], bv, acc[r][v]);
            }
        }
    }
    tile_store(mr, nv, nr, acc, c, ldc, ow);
}

/* ---- dot kernel (nt with small M) ---------------------------------------
 * C[r*ldc + j] (= or +=) sum_{k<K} A[r*lda + k] * B[j*ldb + k], r < mr,
 * j < nj.  Both operands are contiguous in k, so nothing is packed: lane l
 * of acc sums the k = l (mod GV_LEN) terms, the lanes are added in gv_hsum's
 * fixed order, then the K % GV_LEN tail terms one by one. */
static DL_ALWAYS_INLINE void dot_body(const int mr, const int nj, int K,
                                      const dl_real *a, ptrdiff_t lda,
                                      const dl_real *b, ptrdiff_t ldb,
                                      dl_real *c, ptrdiff_t ldc, int ow)
{
    gvec acc[MS][DOT_NJ];
    DL_UNROLL
    for (int r = 0; r < mr; r++)
        DL_UNROLL
        for (int j = 0; j < nj; j++)
            acc[r][j] = gv_zero();
    int k = 0;
    /* acc[r][j] += A[r][k..k+L) * B[j][k..k+L)  lane-wise */
    DL_NO_UNROLL
    for (; k + GV_LEN <= K; k += GV_LEN) {
        gvec bj[DOT_NJ];
        DL_UNROLL
        for (int j = 0; j < nj; j++)
            bj[j] = gv_load(b + j * ldb + k);
        DL_UNROLL
        for (int r = 0; r < mr; r++) {
            gvec ar = gv_load(a + r * lda + k);
            DL_UNROLL
            for (int j = 0; j < nj; j++)
                acc[r][j] = gv_fma(ar, bj[j], acc[r][j]);
        }
    }
    DL_UNROLL
    for (int r = 0; r < mr; r++)
        DL_UNROLL
        for (int j = 0; j < nj; j++) {
            dl_real s = gv_hsum(acc[r][j]);
            for (int t = k; t < K; t++)
                s += a[r * lda + t] * b[j * ldb + t];
            dl_real *p = c + r * ldc + j;
            *p = ow ? s : *p + s;
        }
}

/* ---- field kernel (a convolution's weight gradient) ---------------------
 * As ukr_body, but row r of a is not a strided array: a(r, k) is
 * a_row[r][(k / seglen) * segstride + (k % seglen) * kstride], k walked as
 * nseg segments of seglen (an output row of positions at a time), so a
 * receptive-field matrix is read straight from the padded image.  This
 * call covers k = k0 .. k0+kc-1, b holding those kc rows. */
static DL_ALWAYS_INLINE void field_body(const int mr, const int nv, int nr,
                                        const dl_real *const *a_row,
                                        int k0, int kc, int seglen, ptrdiff_t segstride,
                                        ptrdiff_t kstride, const dl_real *b, dl_real *c,
                                        ptrdiff_t ldc, int ow)
{
    gvec acc[MR][NVMAX];
    tile_zero(mr, nv, acc);
    /* acc[r][:] += a(r,k) * b[k][:] for k = k0 .. k0+kc-1, a run of k
     * inside one segment at a time */
    int sg = k0 / seglen, t0 = k0 % seglen;
    DL_NO_UNROLL
    for (int done = 0; done < kc; sg++, t0 = 0) {
        int run = seglen - t0 < kc - done ? seglen - t0 : kc - done;
        done += run;
        const dl_real *a[MR];
        DL_UNROLL
        for (int r = 0; r < mr; r++)
            a[r] = a_row[r] + sg * segstride + t0 * kstride;
        DL_NO_UNROLL
        for (int t = 0; t < run; t++, b += NR) {
            tile_step(mr, nv, a, t * kstride, b, acc);
        }
    }
    tile_store(mr, nv, nr, acc, c, ldc, ow);
}

/* ---- gather kernel (a convolution's product, positions as rows) ---------
 * acc[r][:] += x_r[koff[k]] * b[k][:] for k < kc: row r of a is output
 * position r's receptive field, gathered from the padded image (x_r points
 * at the position's corner, koff[k] at field element k), so nothing of a
 * is packed and any stride or dilation works. */
static DL_ALWAYS_INLINE void gather_body(const int mr, const int nv, int nr,
                                         const dl_real *const *a_row, const int32_t *koff, int kc,
                                         const dl_real *b, dl_real *c, ptrdiff_t ldc, int ow)
{
    gvec acc[MR][NVMAX];
    tile_zero(mr, nv, acc);
    DL_NO_UNROLL
    for (int k = 0; k < kc; k++, b += NR) {
        tile_step(mr, nv, a_row, koff[k], b, acc);
    }
    tile_store(mr, nv, nr, acc, c, ldc, ow);
}

#ifndef GEMM_HAVE_PACK_BT
/* bp[k*NR + c] = B[c*ldb + k] for c < nr, 0 for nr <= c < NR (nt).  Reads
 * each row of B once, sequentially; writes land in the L1-sized buffer. */
static void pack_b_t(int kc, int nr, const dl_real *B, ptrdiff_t ldb, dl_real *bp)
{
    for (int c = 0; c < nr; c++) {
        const dl_real *row = B + c * ldb;
        for (int k = 0; k < kc; k++)
            bp[(ptrdiff_t)k * NR + c] = row[k];
    }
    for (int k = 0; k < kc; k++)
        for (int c = nr; c < NR; c++)
            bp[(ptrdiff_t)k * NR + c] = 0;
}
#endif

/* Rows of the next tile when `left` rows remain: MR, but a last MR + 1 or
 * MR + 2 rows as two tiles of about half, not MR and a tile of 1 or 2 rows
 * that waits on the latency of its few accumulators' FMAs (M = 32: 6 6 6
 * 6 4 4 instead of 6 6 6 6 6 2). */
static int tile_rows(int left)
{
    if (left <= MR)
        return left;
    return left <= MR + 2 ? (left + 1) / 2 : MR;
}

#endif
