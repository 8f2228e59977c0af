/* conv.c: 2-D convolution as implicit GEMMs (kernels.h), with no im2col
 * matrix in memory.
 *
 * Each sample's input is first copied into a zero-padded image, [C][HP][WP]
 * with HP = H + 2*PH, WP = W + 2*PW.  Then every element of the
 * receptive-field matrix is an element of that image:
 *   field(kidx = (c, ki, kj), p = (oh, ow))
 *     = xpad[c][oh*SH + ki*DH][ow*SW + kj*DW]
 * and no bounds check is needed.  The products read it in place:
 *   forward:  y^T[p, oc] = sum_kidx field(kidx, p) W[oc, kidx]
 *             dl_gemm_gather_nt: output positions are the GEMM's rows,
 *             each tile's fields gathered from the image (any stride or
 *             dilation), then transposed into NCHW a block at a time; for
 *             very large fields, dl_gemm_custom_b with panels of fields
 *             that pack_fields copies from the image;
 *   dW:       dW^T[kidx, oc] = sum_s sum_p field_s(kidx, p) dy_s[oc, p]
 *             dl_gemm_fields_nt, whose kernel reads the field rows straight
 *             from the image, an output row of positions per segment.
 * The input gradient is the forward product of padded dy with the weight
 * flipped (stride 1) or a GEMM into the column layout plus col2im, in the
 * generated code (compiler/ops/conv.c). */
#include "kernels.h"

#include <string.h>

static ptrdiff_t plane(const dl_conv_shape *q)
{
    return (ptrdiff_t)(q->H + 2 * q->PH) * (q->W + 2 * q->PW);
}

/* One sample: xpad = x [C][H][W] with PH zero rows above and below and PW
 * zero columns left and right of each channel. */
void dl_conv2d_pad(int C, int H, int W, int PH, int PW, const dl_real *x, dl_real *xpad)
{
    int WP = W + 2 * PW;
    ptrdiff_t P = (ptrdiff_t)(H + 2 * PH) * WP;
    for (int c = 0; c < C; c++) {
        dl_real *dst = xpad + c * P;
        const dl_real *src = x + (ptrdiff_t)c * H * W;
        memset(dst, 0, (size_t)PH * WP * sizeof *dst);
        for (int h = 0; h < H; h++) {
            dl_real *row = dst + (ptrdiff_t)(h + PH) * WP;
            memset(row, 0, (size_t)PW * sizeof *row);
            memcpy(row + PW, src + (ptrdiff_t)h * W, (size_t)W * sizeof *row);
            memset(row + PW + W, 0, (size_t)PW * sizeof *row);
        }
        memset(dst + (ptrdiff_t)(H + PH) * WP, 0, (size_t)PH * WP * sizeof *dst);
    }
}

typedef struct {
    const dl_conv_shape *q;
    const dl_real *xpad;  /* this group's first channel */
} fields_arg;

/* b(kidx, p) = field(kidx, p) for kidx in [k0, k0+kc), p in [j0, j0+nc),
 * columns nc .. ldbp-1 zero.  The panel's positions fall into runs along
 * output rows.  With SW = 1 a run is contiguous in the image and is copied
 * 8 elements at a time, its last copy overlapping the one before rather
 * than running past its end (runs shorter than 8 go element by element),
 * so no copy writes outside its own columns; then each piece is copied
 * down all kc rows. */
static void pack_fields(const void *arg, int k0, int kc, int j0, int nc, dl_real *bp, int ldbp)
{
    const fields_arg *fa = arg;
    const dl_conv_shape *q = fa->q;
    int WP = q->W + 2 * q->PW, khw = q->KH * q->KW;
    ptrdiff_t P = plane(q);
    /* pieces: 8-element copies or single elements; ldbp <= 32 columns make
     * at most 32 of either kind */
    enum { MAX_PIECES = 64 };
    int dst[MAX_PIECES], wide[MAX_PIECES], npiece = 0;
    ptrdiff_t src[MAX_PIECES];
    for (int col = 0; col < nc && npiece + 32 <= MAX_PIECES;) {
        int p = j0 + col, oh = p / q->OW, ow = p % q->OW;
        int len = q->OW - ow < nc - col ? q->OW - ow : nc - col;
        int step = q->SW == 1 && len >= 8 ? 8 : 1;
        for (int t = 0; t < len; t += step, npiece++) {
            int u = t + step > len ? len - step : t; /* the last copy ends at the run's end */
            dst[npiece] = col + u;
            src[npiece] = (ptrdiff_t)oh * q->SH * WP + (ptrdiff_t)(ow + u) * q->SW;
            wide[npiece] = step == 8;
        }
        col += len;
    }
    /* where row k0 + k = (c, ki, kj) of the fields starts in the image,
     * stepped without dividing */
    ptrdiff_t koff[DL_GEMM_KC_MAX];
    int ki = k0 / q->KW % q->KH, kj = k0 % q->KW;
    ptrdiff_t off = k0 / khw * P + (ptrdiff_t)ki * q->DH * WP + kj * q->DW;
    ptrdiff_t row_step = (ptrdiff_t)q->DH * WP - (ptrdiff_t)q->KW * q->DW;
    ptrdiff_t plane_step = P - (ptrdiff_t)q->KH * q->DH * WP;
    for (int k = 0; k < kc; k++) {
        koff[k] = off;
        off += q->DW;
        if (++kj == q->KW) {
            kj = 0, off += row_step;
            if (++ki == q->KH)
                ki = 0, off += plane_step;
        }
    }
    for (int i = 0; i < npiece; i++) {
        const dl_real *x = fa->xpad + src[i];
        dl_real *col = bp + dst[i];
        if (wide[i])
            for (int k = 0; k < kc; k++)
                memcpy(col + (ptrdiff_t)k * ldbp, x + koff[k], 8 * sizeof *col);
        else
            for (int k = 0; k < kc; k++)
                col[(ptrdiff_t)k * ldbp] = x[koff[k]];
    }
    if (nc < ldbp)
        for (int k = 0; k < kc; k++)
            for (int j = nc; j < ldbp; j++)
                bp[(ptrdiff_t)k * ldbp + j] = 0;
}

/* One sample, group g: y[g*OCg + oc, p] = sum_kidx W_g[oc, kidx] field(kidx, p).
 * With up to GATHER_MAX_K fields (offsets on the stack) the product runs
 * transposed, positions as rows, each tile's fields gathered from the image
 * (dl_gemm_gather_nt), into blocks of yT that are then transposed into y;
 * larger fields pack panels of them (dl_gemm_custom_b). */
enum { GATHER_MAX_K = 4608,   /* 512 channels of 3x3: 18 KiB of offsets */
       YT_BLOCK = 8192 };     /* elements of yT per block: 32 KiB in f32 */
void dl_conv2d_forward(const dl_conv_shape *q, int g, const dl_real *xpad, const dl_real *w,
                       dl_real *y)
{
    int Cg = q->C / q->groups, OCg = q->OC / q->groups, CKg = Cg * q->KH * q->KW;
    int P = q->OH * q->OW, WP = q->W + 2 * q->PW;
    const dl_real *xg = xpad + g * Cg * plane(q), *wg = w + (ptrdiff_t)g * OCg * CKg;
    dl_real *yg = y + (ptrdiff_t)g * OCg * P;
    if (CKg <= GATHER_MAX_K && OCg <= YT_BLOCK) {
        int32_t koff[GATHER_MAX_K];
        int32_t off = 0, row_step = q->DH * WP - q->KW * q->DW;
        int32_t plane_step = (int32_t)plane(q) - q->KH * q->DH * WP;
        for (int k = 0, ki = 0, kj = 0; k < CKg; k++) {
            koff[k] = off;
            off += q->DW;
            if (++kj == q->KW) {
                kj = 0, off += row_step;
                if (++ki == q->KH)
                    ki = 0, off += plane_step;
            }
        }
        dl_real yt[YT_BLOCK];
        int rows = YT_BLOCK / OCg;
        for (int p0 = 0; p0 < P; p0 += rows) {
            int np = P - p0 < rows ? P - p0 : rows;
            dl_gemm_gather_nt(p0, np, OCg, CKg, xg, koff, q->OW, (ptrdiff_t)q->SH * WP, q->SW,
                              wg, CKg, yt, OCg);
            /* y[oc, p0 + i] = yT[i, oc] */
            for (int oc = 0; oc < OCg; oc++)
                for (int i = 0; i < np; i++)
                    yg[(ptrdiff_t)oc * P + p0 + i] = yt[i * OCg + oc];
        }
        return;
    }
    fields_arg fa = {q, xg};
    dl_gemm_custom_b(NULL, OCg, P, CKg, wg, CKg, pack_fields, &fa, yg, P, 0);
}

/* The batch: dwt[g][kidx][oc] = sum_s sum_p field_s(kidx, p) dy_s[g*OCg + oc, p],
 * xpad and dy holding n samples of dl_conv2d_pad's size and OC*OH*OW. */
void dl_conv2d_weight_grad(dl_pool *pool, const dl_conv_shape *q, int n, const dl_real *xpad,
                           const dl_real *dy, dl_real *dwt)
{
    int Cg = q->C / q->groups, OCg = q->OC / q->groups, CKg = Cg * q->KH * q->KW;
    int WP = q->W + 2 * q->PW, P = q->OH * q->OW;
    ptrdiff_t pad_size = q->C * plane(q);
    dl_gemm_fields f = {q->KH, q->KW, plane(q), (ptrdiff_t)q->DH * WP, q->DW,
                        q->OH, q->OW, (ptrdiff_t)q->SH * WP, q->SW};
    for (int g = 0; g < q->groups; g++)
        dl_gemm_fields_nt(pool, CKg, OCg, &f, n, xpad + g * Cg * plane(q), pad_size,
                          dy + (ptrdiff_t)g * OCg * P, P, (ptrdiff_t)q->OC * P,
                          dwt + (ptrdiff_t)g * CKg * OCg, OCg);
}
