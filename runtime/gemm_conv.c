/* gemm_conv.c: the products of a convolution that read its padded image
 * in place (kernels.h; conv.c calls them): dl_gemm_fields_nt (the weight
 * gradient) and dl_gemm_gather_nt (the forward product, positions as
 * rows).  Their microkernels (field_body, gather_body) and the blocking
 * are gemm_kernels.h's, shared with gemm.c, so each C element's sum has
 * gemm's fixed order. */
#include "gemm_kernels.h"
#include "gemm_split.h"

typedef void (*field_fn)(int nr, const dl_real *const *a_row, int k0, int kc, int seglen,
                         ptrdiff_t segstride, ptrdiff_t kstride, const dl_real *b,
                         dl_real *c, ptrdiff_t ldc, int ow);
#define FIELD(m)                                                               \
    static void field_##m(int nr, const dl_real *const *a_row, int k0, int kc, \
                          int seglen, ptrdiff_t segstride, ptrdiff_t kstride,  \
                          const dl_real *b, dl_real *c, ptrdiff_t ldc, int ow) \
    {                                                                          \
        field_body(m, NV, nr, a_row, k0, kc, seglen, segstride, kstride, b, c, \
                   ldc, ow);                                                   \
    }                                                                          \
    static void fieldh_##m(int nr, const dl_real *const *a_row, int k0,        \
                           int kc, int seglen, ptrdiff_t segstride,            \
                           ptrdiff_t kstride, const dl_real *b, dl_real *c,    \
                           ptrdiff_t ldc, int ow)                              \
    {                                                                          \
        field_body(m, NV / 2, nr, a_row, k0, kc, seglen, segstride, kstride,   \
                   b, c, ldc, ow);                                             \
    }

typedef void (*gather_fn)(int nr, const dl_real *const *a_row, const int32_t *koff, int kc,
                          const dl_real *b, dl_real *c, ptrdiff_t ldc, int ow);
#define GATHER(m)                                                              \
    static void gather_##m(int nr, const dl_real *const *a_row,                \
                           const int32_t *koff, int kc, const dl_real *b,      \
                           dl_real *c, ptrdiff_t ldc, int ow)                  \
    {                                                                          \
        gather_body(m, NV, nr, a_row, koff, kc, b, c, ldc, ow);                \
    }                                                                          \
    static void gatherh_##m(int nr, const dl_real *const *a_row,               \
                            const int32_t *koff, int kc, const dl_real *b,     \
                            dl_real *c, ptrdiff_t ldc, int ow)                 \
    {                                                                          \
        gather_body(m, NV / 2, nr, a_row, koff, kc, b, c, ldc, ow);            \
    }

FOR_ROWS(FIELD)
FOR_ROWS(GATHER)
static const gather_fn gathers[2][MR + 1] = {BY_ROWS(gather_), BY_ROWS(gatherh_)};
static const field_fn fields[2][MR + 1] = {BY_ROWS(field_), BY_ROWS(fieldh_)};

/* ---- receptive fields times a matrix, summed over samples ---------------
 * C[i, j] = sum over s < n, k < K of a_s(i, k) b_s(k, j), with a_s(i, k)
 * the field map's element of sample s and b_s(k, j) = B[s*b_sample + j*ldb
 * + k] (as nt reads B).  Threads take blocks of MR rows and run every
 * sample for them, so each C element is summed in one order (samples,
 * then KC slices of k, then k) whatever the thread count. */
typedef struct {
    int M, N, n;
    const dl_gemm_fields *f;
    const dl_real *A;
    ptrdiff_t a_sample;
    const dl_real *B;
    int ldb;
    ptrdiff_t b_sample;
    dl_real *C;
    int ldc;
} fields_job;

static ptrdiff_t field_row(const dl_gemm_fields *f, int i)
{
    int khw = f->kh * f->kw;
    return (ptrdiff_t)(i / khw) * f->cs + (ptrdiff_t)(i / f->kw % f->kh) * f->is +
           (ptrdiff_t)(i % f->kw) * f->js;
}

/* Rows [i0, i1) of C, all columns (gemm_split_run's block). */
static void fields_block(const void *job, int i0, int i1, int j0, int j1)
{
    (void)j0, (void)j1;   /* 0 and N: threads split rows only */
    const fields_job *g = job;
    const dl_gemm_fields *f = g->f;
    _Alignas(64) dl_real bp[KC * NR];
    enum { ROWS = 64 * MR };   /* rows whose offsets are worked out at once */
    ptrdiff_t off[ROWS];
    int K = f->nseg * f->seglen;
    for (int ib = i0; ib < i1; ib += ROWS) {
        int ie = i1 - ib < ROWS ? i1 : ib + ROWS;
        for (int i = ib; i < ie; i++)
            off[i - ib] = field_row(f, i);
        for (int jr = 0; jr < g->N; jr += NR) {
            int nr = g->N - jr < NR ? g->N - jr : NR;
            const field_fn *kern = fields[nr > NR / 2 ? 0 : 1];
            for (int s = 0; s < g->n; s++) {
                const dl_real *A = g->A + s * g->a_sample;
                for (int pc = 0; pc < K; pc += KC) {
                    int kc = K - pc < KC ? K - pc : KC;
                    pack_b_t(kc, nr, g->B + s * g->b_sample + (ptrdiff_t)jr * g->ldb + pc, g->ldb,
                             bp);
                    for (int ir = ib; ir < ie; ir += MR) {
                        int mr = ie - ir < MR ? ie - ir : MR;
                        const dl_real *a_row[MR];
                        for (int r = 0; r < mr; r++)
                            a_row[r] = A + off[ir - ib + r];
                        kern[mr](nr, a_row, pc, kc, f->seglen, f->segstride, f->kstride, bp,
                                 g->C + (ptrdiff_t)ir * g->ldc + jr, g->ldc, s == 0 && pc == 0);
                    }
                }
            }
        }
    }
}

void dl_gemm_fields_nt(dl_pool *pool, int M, int N, const dl_gemm_fields *f, int n,
                       const dl_real *A, ptrdiff_t a_sample, const dl_real *B, int ldb,
                       ptrdiff_t b_sample, dl_real *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (n <= 0 || f->nseg * f->seglen <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(ptrdiff_t)i * ldc + j] = 0;
        return;
    }
    fields_job g = {M, N, n, f, A, a_sample, B, ldb, b_sample, C, ldc};
    gemm_split sp = {fields_block, &g, M, N, NULL, NULL, 0, 0};
    gemm_split_run(pool, &sp, 2.0 * M * N * (double)f->nseg * f->seglen * n, 0, MR);
}

/* ---- a convolution's product, positions as rows ----------------------------
 * C[i, j] = sum_k x[pos(p0 + i) + koff[k]] B[j*ldb + k] for i < np, j < N:
 * pos(p) = (p / OW) * row_stride + (p % OW) * col_stride.  For each column
 * panel and k slice b is packed (as nt), then every tile of MR positions
 * gathers its fields from the image; tiles are taken as gemm_block takes
 * them, k in slices, so each element's sum has gemm's fixed order. */
void dl_gemm_gather_nt(int p0, int np, int N, int K, const dl_real *x, const int32_t *koff,
                       int OW, ptrdiff_t row_stride, ptrdiff_t col_stride, const dl_real *B,
                       int ldb, dl_real *C, int ldc)
{
    _Alignas(64) dl_real bp[KC * NR];
    for (int jr = 0; jr < N; jr += NR) {
        int nr = N - jr < NR ? N - jr : NR;
        const gather_fn *kern = gathers[nr > NR / 2 ? 0 : 1];
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            pack_b_t(kc, nr, B + (ptrdiff_t)jr * ldb + pc, ldb, bp);
            int oh = p0 / OW, ow = p0 % OW;   /* of tile row 0 */
            for (int ir = 0, mr; ir < np; ir += mr) {
                mr = tile_rows(np - ir);
                const dl_real *a_row[MR];
                for (int r = 0; r < mr; r++) {
                    a_row[r] = x + oh * row_stride + ow * col_stride;
                    if (++ow == OW)
                        ow = 0, oh++;
                }
                kern[mr](nr, a_row, koff + pc, kc, bp, C + (ptrdiff_t)ir * ldc + jr, ldc, pc == 0);
            }
        }
    }
}

