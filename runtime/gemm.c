/* gemm.c: the dense products of kernels.h (nt, nn, tn, packed b, custom b)
 * and their packing and blocking.  The microkernels are gemm_kernels.h's,
 * the thread split gemm_split.h's; a convolution's products that read its
 * image in place are gemm_conv.c's.
 *
 * All three are C[i,j] (+)= sum_k a(i,k) b(k,j); they differ only in where
 * a(i,k) and b(k,j) live:
 *   nt: a(i,k) = A[i*lda + k]   b(k,j) = B[j*ldb + k]
 *   nn: a(i,k) = A[i*lda + k]   b(k,j) = B[k*ldb + j]
 *   tn: a(i,k) = A[k*lda + i]   b(k,j) = B[k*ldb + j]
 *
 * Scheme (BLIS-like, trimmed for small batch sizes): C is cut into NR-wide
 * column panels.  For each panel and each KC-long slice of k, the KC x NR
 * slice of b is copied ("packed") into a contiguous, zero-padded stack
 * buffer that stays in L1, then a register-blocked microkernel sweeps MR rows
 * of C at a time, broadcasting a(i,k) straight from A (A is read in place:
 * with batch-sized M it is small and packing it would cost as much as using
 * it).  The per-thread buffer is KC*NR elements on the stack: no allocation.
 *
 * Large products (packs_a: tn with 8+ column panels, nt/nn with 64+) pack
 * a too, BLIS-style (gemm_block_pa): per row block of at most MCA rows and
 * k slice, a goes into MR-row k-major panels (MCA*KC more on the stack),
 * and every column panel sweeps it; A read in place would there thrash L1
 * (tn: a tile's KC rows of A lda apart) or L2 (rows 8 KiB apart).
 *
 * For M <= MS (batch 1 .. 4 or so) packing b would cost as much as using
 * it, so nt uses dot products and nn/tn read B in place (small_block); up
 * to 2*MR rows nn/tn still read full b panels in place (gemm_block_rb).
 *
 * Determinism: every C element is computed as acc = 0; acc = fma(a, b, acc)
 * for k in increasing order inside each KC slice, then C = acc (first slice,
 * accumulate=0) or C = C + acc, slice after slice.  Slices start at fixed
 * multiples of KC, tiles never split k, and threads only get whole column
 * panels or row blocks, so the result is bit-identical for any pool size.
 * Which path runs (packed a, b in place) is decided by the shape alone and
 * changes only where operands are read from, never the order of the sums.
 * (The small-M kernels have their own fixed orders; they are chosen by M
 * alone, never by the thread count.) */
#include "gemm_kernels.h"
#include "gemm_split.h"
#include "gemm_bf16.h"   /* --precision bf16: every product goes there */

const char *dl_kernels_isa(void)
{
    return GEMM_ISA;
}

/* Instances.  ukr_rN / ukr_cN: packed panel, A read by rows (nt, nn) or by
 * columns (tn), N rows.  ukh_*: the same for a last panel of at most NR/2
 * columns, doing half the work (e.g. N = 10).  wide_rN / wide_cN: B read in
 * place, NRW columns, for M <= MS.  dot_N_J: dot_body, the small-M nt kernel. */
typedef void (*ukr_fn)(int nr, int kc, const dl_real *a, ptrdiff_t lda,
                       const dl_real *b, ptrdiff_t ldb, dl_real *c, ptrdiff_t ldc, int ow);
typedef void (*dot_fn)(int K, const dl_real *a, ptrdiff_t lda,
                       const dl_real *b, ptrdiff_t ldb, dl_real *c, ptrdiff_t ldc, int ow);

#define UKR(m)                                                                 \
    static void ukr_r##m(int nr, int kc, const dl_real *a, ptrdiff_t lda,      \
                         const dl_real *b, ptrdiff_t ldb, dl_real *c,          \
                         ptrdiff_t ldc, int ow)                                \
    {                                                                          \
        ukr_body(m, NV, nr, kc, a, lda, 1, b, ldb, c, ldc, ow);                \
    }                                                                          \
    static void ukr_c##m(int nr, int kc, const dl_real *a, ptrdiff_t lda,      \
                         const dl_real *b, ptrdiff_t ldb, dl_real *c,          \
                         ptrdiff_t ldc, int ow)                                \
    {                                                                          \
        ukr_body(m, NV, nr, kc, a, 1, lda, b, ldb, c, ldc, ow);                \
    }                                                                          \
    static void ukh_r##m(int nr, int kc, const dl_real *a, ptrdiff_t lda,      \
                         const dl_real *b, ptrdiff_t ldb, dl_real *c,          \
                         ptrdiff_t ldc, int ow)                                \
    {                                                                          \
        ukr_body(m, NV / 2, nr, kc, a, lda, 1, b, ldb, c, ldc, ow);            \
    }                                                                          \
    static void ukh_c##m(int nr, int kc, const dl_real *a, ptrdiff_t lda,      \
                         const dl_real *b, ptrdiff_t ldb, dl_real *c,          \
                         ptrdiff_t ldc, int ow)                                \
    {                                                                          \
        ukr_body(m, NV / 2, nr, kc, a, 1, lda, b, ldb, c, ldc, ow);            \
    }
#define SMALL(m)                                                               \
    static void wide_r##m(int nr, int kc, const dl_real *a, ptrdiff_t lda,     \
                          const dl_real *b, ptrdiff_t ldb, dl_real *c,         \
                          ptrdiff_t ldc, int ow)                               \
    {                                                                          \
        ukr_body(m, NVW, nr, kc, a, lda, 1, b, ldb, c, ldc, ow);               \
    }                                                                          \
    static void wide_c##m(int nr, int kc, const dl_real *a, ptrdiff_t lda,     \
                          const dl_real *b, ptrdiff_t ldb, dl_real *c,         \
                          ptrdiff_t ldc, int ow)                               \
    {                                                                          \
        ukr_body(m, NVW, nr, kc, a, 1, lda, b, ldb, c, ldc, ow);               \
    }                                                                          \
    DOT(m, 1) DOT(m, 2) DOT(m, 3) DOT(m, 4)
#define DOT(m, n)                                                              \
    static void dot_##m##_##n(int K, const dl_real *a, ptrdiff_t lda,          \
                              const dl_real *b, ptrdiff_t ldb, dl_real *c,     \
                              ptrdiff_t ldc, int ow)                           \
    {                                                                          \
        dot_body(m, n, K, a, lda, b, ldb, c, ldc, ow);                         \
    }
#define DOTS(m) {NULL, dot_##m##_1, dot_##m##_2, dot_##m##_3, dot_##m##_4}
/* The small-M kernels by M = 1 .. MS (MS = MR / 2), as FOR_ROWS and
 * BY_ROWS (gemm_kernels.h); DOTS_BY_SMALL is the table of DOTS. */
#if MS == 4
#define FOR_SMALL(X) X(1) X(2) X(3) X(4)
#define BY_SMALL(p) {NULL, p##1, p##2, p##3, p##4}
#define DOTS_BY_SMALL {{NULL}, DOTS(1), DOTS(2), DOTS(3), DOTS(4)}
#elif MS == 3
#define FOR_SMALL(X) X(1) X(2) X(3)
#define BY_SMALL(p) {NULL, p##1, p##2, p##3}
#define DOTS_BY_SMALL {{NULL}, DOTS(1), DOTS(2), DOTS(3)}
#else
#define FOR_SMALL(X) X(1) X(2)
#define BY_SMALL(p) {NULL, p##1, p##2}
#define DOTS_BY_SMALL {{NULL}, DOTS(1), DOTS(2)}
#endif
FOR_ROWS(UKR)
FOR_SMALL(SMALL)
static const ukr_fn ukr_rows[MR + 1] = BY_ROWS(ukr_r);
static const ukr_fn ukr_cols[MR + 1] = BY_ROWS(ukr_c);
static const ukr_fn ukh_rows[MR + 1] = BY_ROWS(ukh_r);
static const ukr_fn ukh_cols[MR + 1] = BY_ROWS(ukh_c);
static const ukr_fn wide_rows[MS + 1] = BY_SMALL(wide_r);
static const ukr_fn wide_cols[MS + 1] = BY_SMALL(wide_c);
static const dot_fn dots[MS + 1][DOT_NJ + 1] = DOTS_BY_SMALL;

/* ---- packing b ----------------------------------------------------------
 * bp[k*NR + c] = B[k*ldb + c] for c < nr, 0 for nr <= c < NR (nn, tn). */
static void pack_b_n(int kc, int nr, const dl_real *B, ptrdiff_t ldb, dl_real *bp)
{
    /* full panel: NV vector copies per k; edge panel: element by element */
    if (nr == NR) {
        for (int k = 0; k < kc; k++)
            for (int v = 0; v < NV; v++)
                gv_store(bp + (ptrdiff_t)k * NR + v * GV_LEN,
                         gv_load(B + k * ldb + v * GV_LEN));
    } else {
        for (int k = 0; k < kc; k++)
            for (int c = 0; c < NR; c++)
                bp[(ptrdiff_t)k * NR + c] = c < nr ? B[k * ldb + c] : (dl_real)0;
    }
}

/* ---- driver ---------------------------------------------------------- */
enum { GEMM_NT, GEMM_NN, GEMM_TN, GEMM_PACKED, GEMM_CUSTOM_B };
#ifdef DL_GEMM_BF16
_Static_assert((int)DL_BF16_NT == GEMM_NT && (int)DL_BF16_NN == GEMM_NN &&
                   (int)DL_BF16_TN == GEMM_TN && (int)DL_BF16_PACKED == GEMM_PACKED,
               "gemm_bf16.h's kinds follow gemm.c's");
#endif

typedef struct {
    int kind, M, N, K;
    const dl_real *A;
    ptrdiff_t lda;
    const dl_real *B;
    ptrdiff_t ldb;
    dl_real *C;
    ptrdiff_t ldc;
    int accumulate;
    int small;      /* M <= MS: unpacked small-M kernels                 */
    dl_gemm_packer pack;  /* GEMM_CUSTOM_B: fills each slice of b        */
    const void *pack_arg;
} gemm_job;

/* ---- packing a (large products) -----------------------------------------
 * ap[p*MR*kc + k*MR + r] = a(ic + p*MR + r, pc + k) for the rows [ic, ie):
 * MR-row panels, k-major, so a tile reads one contiguous stream
 * (ars = 1, aks = MR).  Rows past ie in the last panel are never read. */
static void pack_a(const gemm_job *g, int ic, int ie, int pc, int kc, dl_real *ap)
{
    int m = ie - ic;
    if (g->kind == GEMM_TN) {
        /* a(i, k) = A[k*lda + i]: row k of A feeds every panel's row k */
        const dl_real *A = g->A + (ptrdiff_t)pc * g->lda + ic;
        for (int k = 0; k < kc; k++) {
            const dl_real *row = A + (ptrdiff_t)k * g->lda;
            int i = 0;
            for (; i + MR <= m; i += MR)
                DL_UNROLL
                for (int r = 0; r < MR; r++)
                    ap[(ptrdiff_t)i * kc + k * MR + r] = row[i + r];
            for (int r = 0; i + r < m; r++)
                ap[(ptrdiff_t)i * kc + k * MR + r] = row[i + r];
        }
    } else {
        /* a(i, k) = A[i*lda + k]: each row of A is one lane of its panel */
        for (int i = 0; i < m; i++) {
            const dl_real *row = g->A + (ptrdiff_t)(ic + i) * g->lda + pc;
            dl_real *dst = ap + (ptrdiff_t)(i / MR) * MR * kc + i % MR;
            for (int k = 0; k < kc; k++)
                dst[k * MR] = row[k];
        }
    }
}

/* Whether a product packs a as well as b (gemm_block_pa): by shape only.
 * tn reads a(i, k) = A[k*lda + i], KC rows of A lda apart per tile (when
 * lda is a multiple of 1 KiB they fall in a few L1 sets and the broadcasts
 * miss: tn 256x256x4096 67 -> 79 GFLOP/s packed, 2048x2048x256 69 -> 90);
 * packing is one pass over a per row block, repaid once 8 column panels
 * reuse it.  nt and nn read rows of A in place, which
 * is fine until a row block's KC-wide slice stops fitting in L2 without
 * conflicts (rows 8 KiB apart: dX 256x2048x2048 at 68 instead of 89
 * GFLOP/s); their pack is a transpose, so it waits for wide products
 * (64 panels) where it is noise, and small M x N ones (mlp, cnn) keep
 * the in-place path, faster there by 5-10%. */
static int packs_a(const gemm_job *g)
{
    if (g->M < 4 * MR)
        return 0;
    if (g->kind == GEMM_TN) {
        /* rows of A a multiple of 1 KiB apart share a quarter of L1's sets
         * or less; otherwise the pack needs more panels to pay (tn
         * 128x256x64 with rows 512 B apart: 2% slower packed) */
        int aliased = (size_t)g->lda * sizeof(dl_real) % 1024 == 0;
        return g->N >= (aliased ? 8 : 32) * NR;
    }
    return (g->kind == GEMM_NT || g->kind == GEMM_NN) && g->N >= 64 * NR && g->K > 32;
}

/* Rows per packed block of a: M in equal MR-multiple blocks of at most MCA
 * rows (MCA x KC stays in L2 next to the b panel).  With M = 256 one block
 * packs each b panel once instead of twice (nt 256x2048x2048: 80 -> 86). */
static int rows_a(int M)
{
    int blocks = (M + MCA - 1) / MCA;
    int rows = (M + blocks - 1) / blocks;
    return (rows + MR - 1) / MR * MR;
}

/* Packed path with a packed too: per row block and k slice, a is packed
 * once (at most MCA x KC, stays in L2) and swept by every column panel;
 * ap is MCA*KC elements on the stack (264 KiB with AVX2, 352 KiB with
 * AVX-512; the same bytes in f64).  Each C
 * element still sums its slices in increasing pc, tile by tile as in
 * gemm_block, so the results are the same bits. */
static void gemm_block_pa(const gemm_job *g, int i0, int i1, int j0, int j1)
{
    _Alignas(64) dl_real bp[KC * NR];
    _Alignas(64) dl_real ap[MCA * KC];
    int mc = rows_a(g->M);
    for (int ic = i0; ic < i1; ic += mc) {
        int ie = i1 - ic > mc ? ic + mc : i1;
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = g->K - pc < KC ? g->K - pc : KC;
            int ow = !g->accumulate && pc == 0;
            pack_a(g, ic, ie, pc, kc, ap);
            for (int jr = j0; jr < j1; jr += NR) {
                int nr = j1 - jr < NR ? j1 - jr : NR;
                const ukr_fn *kern = nr > NR / 2 ? ukr_cols : ukh_cols;
                const dl_real *b = bp;   /* packs_a: nt, nn or tn only */
                if (g->kind == GEMM_NT)
                    pack_b_t(kc, nr, g->B + jr * g->ldb + pc, g->ldb, bp);
                else
                    pack_b_n(kc, nr, g->B + pc * g->ldb + jr, g->ldb, bp);
                for (int ir = ic; ir < ie; ir += MR) {
                    int mr = ie - ir < MR ? ie - ir : MR;
                    kern[mr](nr, kc, ap + (ptrdiff_t)(ir - ic) * kc, MR, b, NR,
                             g->C + ir * g->ldc + jr, g->ldc, ow);
                }
            }
        }
    }
}

/* Whether nn/tn with a few more rows than the small path (one or two row
 * tiles) read b in place: each b panel then serves at most two tiles, in a
 * row while it is in L1, so packing it costs as much as using it. */
static int reads_b(const gemm_job *g)
{
    return (g->kind == GEMM_NN || g->kind == GEMM_TN) && g->M <= 2 * MR;
}

/* gemm_block for reads_b: full panels read B in place (bks = ldb), the
 * last partial one is packed (the tiles load whole vectors).  Same slices
 * and order as gemm_block (tiles split rows, never k), so the same bits. */
static void gemm_block_rb(const gemm_job *g, int i0, int i1, int j0, int j1)
{
    _Alignas(64) dl_real bp[KC * NR];
    int tn = g->kind == GEMM_TN;
    /* two tiles of equal height: with 8 rows 6 + 2 leaves the 2-row tile
     * waiting on its 4 accumulators' FMA latency (tn 8x256x64: 74 -> 87) */
    int rows = g->M > MR ? (g->M + 1) / 2 : MR;
    for (int jr = j0; jr < j1; jr += NR) {
        int nr = j1 - jr < NR ? j1 - jr : NR;
        const ukr_fn *kern = nr > NR / 2 ? (tn ? ukr_cols : ukr_rows)
                                         : (tn ? ukh_cols : ukh_rows);
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = g->K - pc < KC ? g->K - pc : KC;
            int ow = !g->accumulate && pc == 0;
            const dl_real *b = g->B + pc * g->ldb + jr;
            ptrdiff_t bks = g->ldb;
            if (nr < NR) {
                pack_b_n(kc, nr, b, g->ldb, bp);
                b = bp;
                bks = NR;
            }
            for (int ir = i0; ir < i1; ir += rows) {
                int mr = i1 - ir < rows ? i1 - ir : rows;
                const dl_real *a = tn ? g->A + pc * g->lda + ir : g->A + ir * g->lda + pc;
                kern[mr](nr, kc, a, g->lda, b, bks, g->C + ir * g->ldc + jr, g->ldc, ow);
            }
        }
    }
}
/* Packed path: C rows [i0,i1) x columns [j0,j1), all of k. */
static void gemm_block(const gemm_job *g, int i0, int i1, int j0, int j1)
{
    if (packs_a(g)) {
        gemm_block_pa(g, i0, i1, j0, j1);
        return;
    }
    if (reads_b(g)) {
        gemm_block_rb(g, i0, i1, j0, j1);
        return;
    }
    _Alignas(64) dl_real bp[KC * NR];
    int tn = g->kind == GEMM_TN;
    /* C[ic:ie, jr:jr+nr] (+)= sum over slices pc of
     *     a(ic:ie, pc:pc+kc) . b(pc:pc+kc, jr:jr+nr)   (b packed into bp),
     * one MR-row tile at a time; slices in increasing pc.  The column
     * panels are inside the slice loop, so a row block's slice of A stays
     * in L2 for all of them (tn 400x32x12544: 42 -> 56 GFLOP/s; the other
     * order read all of A once per panel). */
    for (int ic = i0; ic < i1; ic += MC) {
        int ie = i1 - ic > MC ? ic + MC : i1;
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = g->K - pc < KC ? g->K - pc : KC;
            int ow = !g->accumulate && pc == 0;
            for (int jr = j0; jr < j1; jr += NR) {
                int nr = j1 - jr < NR ? j1 - jr : NR;
                const ukr_fn *kern = nr > NR / 2 ? (tn ? ukr_cols : ukr_rows)
                                                 : (tn ? ukh_cols : ukh_rows);
                const dl_real *b = bp;
                if (g->kind == GEMM_PACKED) /* panel jr/NR, rows pc.. (dl_gemm_pack_*) */
                    b = g->B + (ptrdiff_t)(jr / NR) * g->K * NR + (ptrdiff_t)pc * NR;
                else if (g->kind == GEMM_CUSTOM_B)
                    g->pack(g->pack_arg, pc, kc, jr, nr, bp, NR);
                else if (g->kind == GEMM_NT)
                    pack_b_t(kc, nr, g->B + jr * g->ldb + pc, g->ldb, bp);
                else
                    pack_b_n(kc, nr, g->B + pc * g->ldb + jr, g->ldb, bp);
                for (int ir = ic, mr; ir < ie; ir += mr) {
                    mr = tile_rows(ie - ir);
                    const dl_real *a = tn ? g->A + pc * g->lda + ir
                                          : g->A + ir * g->lda + pc;
                    kern[mr](nr, kc, a, g->lda, b, NR, g->C + ir * g->ldc + jr,
                             g->ldc, ow);
                }
            }
        }
    }
}

/* Small-M path: C columns [j0,j1), all rows, all of k in one go.  With a
 * handful of rows, packing b would cost as much as using it:
 *   nt:    dot products, DOT_NJ columns at a time;
 *   nn/tn: B read in place, NRW columns at a time; a last partial block
 *          (N % NRW) goes through the packed path. */
static void small_block(const gemm_job *g, int j0, int j1)
{
    int ow = !g->accumulate;
    if (g->kind == GEMM_NT) {
        const dot_fn *f = dots[g->M];
        /* C[:, j:j+nj] (+)= A . B[j:j+nj, :]^T */
        for (int j = j0; j < j1; j += DOT_NJ) {
            int nj = j1 - j < DOT_NJ ? j1 - j : DOT_NJ;
            f[nj](g->K, g->A, g->lda, g->B + j * g->ldb, g->ldb, g->C + j, g->ldc, ow);
        }
        return;
    }
    ukr_fn f = (g->kind == GEMM_TN ? wide_cols : wide_rows)[g->M];
    int j = j0;
    /* C[:, j:j+NRW] (+)= a(:, :) . B[:, j:j+NRW] */
    for (; j1 - j >= NRW; j += NRW)
        f(NRW, g->K, g->A, g->lda, g->B + j, g->ldb, g->C + j, g->ldc, ow);
    if (j < j1)
        gemm_block(g, 0, g->M, j, j1);
}

/* A block of C for gemm_split_run: the small path takes all rows of a
 * column block (it is only ever split by columns), the packed path any. */
static void gemm_part(const void *job, int i0, int i1, int j0, int j1)
{
    const gemm_job *g = job;
    if (g->small)
        small_block(g, j0, j1);
    else
        gemm_block(g, i0, i1, j0, j1);
}

static void gemm(dl_pool *pool, int kind, int M, int N, int K,
                 const dl_real *A, int lda, const dl_real *B, int ldb,
                 dl_real *C, int ldc, int accumulate, dl_gemm_epilogue ep, void *ep_arg,
                 dl_gemm_packer pack, const void *pack_arg)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        /* empty sum: C = 0 or C unchanged */
        if (!accumulate)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                    C[(ptrdiff_t)i * ldc + j] = 0;
        if (ep)
            ep(ep_arg, 0, M, 0, N);
        return;
    }
#ifdef DL_GEMM_BF16
    /* a convolution's packer (GEMM_CUSTOM_B) keeps fp32 operands for now */
    if (kind != GEMM_CUSTOM_B) {
        dl_bf16_gemm(pool, kind, M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, ep_arg);
        return;
    }
#endif
    gemm_job g = {kind, M, N, K, A, lda, B, ldb, C, ldc, accumulate,
                  M <= MS && kind < GEMM_PACKED, pack, pack_arg};
    gemm_split sp = {gemm_part, &g, M, N, ep, ep_arg, 0, 0};
    /* The small path always splits by columns; the packed path prefers
     * column panels (each thread packs only its own part of b) and takes
     * row blocks when they spread better, e.g. N = 10 with large M. */
    int cols = g.small ? (kind == GEMM_NT ? DOT_NJ : NRW) : NR;
    gemm_split_run(pool, &sp, 2.0 * M * N * K, cols, g.small ? 0 : MR);
}

void dl_gemm_nt(dl_pool *pool, int M, int N, int K,
                const dl_real *A, int lda, const dl_real *B, int ldb,
                dl_real *C, int ldc, int accumulate)
{
    gemm(pool, GEMM_NT, M, N, K, A, lda, B, ldb, C, ldc, accumulate, NULL, NULL, NULL, NULL);
}

void dl_gemm_nn(dl_pool *pool, int M, int N, int K,
                const dl_real *A, int lda, const dl_real *B, int ldb,
                dl_real *C, int ldc, int accumulate)
{
    gemm(pool, GEMM_NN, M, N, K, A, lda, B, ldb, C, ldc, accumulate, NULL, NULL, NULL, NULL);
}

void dl_gemm_tn(dl_pool *pool, int M, int N, int K,
                const dl_real *A, int lda, const dl_real *B, int ldb,
                dl_real *C, int ldc, int accumulate)
{
    gemm(pool, GEMM_TN, M, N, K, A, lda, B, ldb, C, ldc, accumulate, NULL, NULL, NULL, NULL);
}

void dl_gemm_nt_epilogue(dl_pool *pool, int M, int N, int K,
                         const dl_real *A, int lda, const dl_real *B, int ldb,
                         dl_real *C, int ldc, dl_gemm_epilogue ep, void *ep_arg)
{
    gemm(pool, GEMM_NT, M, N, K, A, lda, B, ldb, C, ldc, 0, ep, ep_arg, NULL, NULL);
}

/* The packed layout: panel p (columns p*NR ..) is K rows of NR values at
 * packed + p*K*NR, zero past N; what gemm_block packs a slice at a time. */
void dl_gemm_pack_nt(int N, int K, const dl_real *B, int ldb, dl_real *packed)
{
#ifdef DL_GEMM_BF16
    dl_bf16_pack(DL_BF16_NT, N, K, B, ldb, packed);
    return;
#endif
    for (int jr = 0; jr < N; jr += NR)
        pack_b_t(K, N - jr < NR ? N - jr : NR, B + (ptrdiff_t)jr * ldb, ldb,
                 packed + (ptrdiff_t)(jr / NR) * K * NR);
}

void dl_gemm_pack_nn(int N, int K, const dl_real *B, int ldb, dl_real *packed)
{
#ifdef DL_GEMM_BF16
    dl_bf16_pack(DL_BF16_NN, N, K, B, ldb, packed);
    return;
#endif
    for (int jr = 0; jr < N; jr += NR)
        pack_b_n(K, N - jr < NR ? N - jr : NR, B + jr, ldb,
                 packed + (ptrdiff_t)(jr / NR) * K * NR);
}

void dl_gemm_packed(dl_pool *pool, int M, int N, int K, const dl_real *A, int lda,
                    const dl_real *packed, dl_real *C, int ldc, int accumulate)
{
    gemm(pool, GEMM_PACKED, M, N, K, A, lda, packed, 0, C, ldc, accumulate, NULL, NULL, NULL, NULL);
}

void dl_gemm_custom_b(dl_pool *pool, int M, int N, int K, const dl_real *A, int lda,
                      dl_gemm_packer pack, const void *pack_arg, dl_real *C, int ldc,
                      int accumulate)
{
    gemm(pool, GEMM_CUSTOM_B, M, N, K, A, lda, NULL, 0, C, ldc, accumulate, NULL, NULL,
         pack, pack_arg);
}
