/* test_conv.c: runtime/conv.c's implicit-GEMM convolution against a naive
 * long-double convolution, over strides, paddings, dilations, groups,
 * non-square kernels and images narrower and wider than a GEMM panel:
 *   dl_conv2d_pad + dl_conv2d_forward   y = conv(x, W)
 *   dl_conv2d_weight_grad               dW^T summed over a batch
 * (forward through the gather kernel, and through packed panels of fields
 * where they are too long for it).  Every buffer starts as NaN, so a value
 * the kernels read without writing it first shows up; the weight gradient must be bit-identical for pools of 1,
 * 2 and 3 threads.  Built against dlnc_rt_f32 and dlnc_rt_f64. */
#include "kernels.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if DL_REAL_IS_F64
#define EPS DBL_EPSILON
#else
#define EPS FLT_EPSILON
#endif

static int n_pass, n_fail;

static uint64_t rng = 0x2545F4914F6CDD1Du;
static double urand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

static dl_real *nan_buffer(size_t n)
{
    dl_real *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "test_conv: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static dl_real *random_buffer(size_t n)
{
    dl_real *p = nan_buffer(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (dl_real)urand();
    return p;
}

static int out_dim(int in, int k, int s, int p, int d)
{
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* x[c, ih, iw] or 0 in the padding */
static long double at(const dl_conv_shape *q, const dl_real *x, int c, int ih, int iw)
{
    if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W)
        return 0;
    return x[((size_t)c * q->H + ih) * q->W + iw];
}

static void check(const char *what, const dl_conv_shape *q, double got, long double want,
                  long double scale, int terms)
{
    double tol = 4.0 * (terms + 2) * EPS * (double)scale + 1e-300;
    if (fabs(got - (double)want) <= tol && !isnan(got)) {
        n_pass++;
        return;
    }
    if (n_fail < 20)
        printf("FAIL %s C=%d H=%d W=%d OC=%d K=%dx%d S=%d,%d P=%d,%d D=%d,%d G=%d: got %.9g "
               "want %.9g (tol %.3g)\n", what, q->C, q->H, q->W, q->OC, q->KH, q->KW, q->SH,
               q->SW, q->PH, q->PW, q->DH, q->DW, q->groups, got, (double)want, tol);
    n_fail++;
}

static void test_shape(dl_conv_shape q, int n, dl_pool *const *pools, int npools)
{
    q.OH = out_dim(q.H, q.KH, q.SH, q.PH, q.DH);
    q.OW = out_dim(q.W, q.KW, q.SW, q.PW, q.DW);
    int G = q.groups, Cg = q.C / G, OCg = q.OC / G, CKg = Cg * q.KH * q.KW;
    int P = q.OH * q.OW;
    size_t pad = (size_t)q.C * (q.H + 2 * q.PH) * (q.W + 2 * q.PW);
    dl_real *x = random_buffer((size_t)n * q.C * q.H * q.W);
    dl_real *w = random_buffer((size_t)q.OC * CKg);
    dl_real *dy = random_buffer((size_t)n * q.OC * P);
    dl_real *xpad = nan_buffer(n * pad), *y = nan_buffer((size_t)n * q.OC * P);
    for (int s = 0; s < n; s++) {
        dl_conv2d_pad(q.C, q.H, q.W, q.PH, q.PW, x + (size_t)s * q.C * q.H * q.W, xpad + s * pad);
        for (int g = 0; g < G; g++)
            dl_conv2d_forward(&q, g, xpad + s * pad, w, y + (size_t)s * q.OC * P);
    }
    /* y[s, oc, oh, ow] = sum over the group's c, ki, kj of W x */
    for (int s = 0; s < n; s++)
        for (int oc = 0; oc < q.OC; oc++)
            for (int p = 0; p < P; p++) {
                int g = oc / OCg, oh = p / q.OW, ow = p % q.OW;
                long double sum = 0, scale = 0;
                for (int k = 0; k < CKg; k++) {
                    int c = g * Cg + k / (q.KH * q.KW), ki = k / q.KW % q.KH, kj = k % q.KW;
                    long double t = (long double)w[(size_t)oc * CKg + k] *
                                    at(&q, x + (size_t)s * q.C * q.H * q.W, c,
                                       oh * q.SH - q.PH + ki * q.DH, ow * q.SW - q.PW + kj * q.DW);
                    sum += t;
                    scale += fabsl(t);
                }
                check("forward", &q, y[((size_t)s * q.OC + oc) * P + p], sum, scale, CKg);
            }
    /* dW^T[g, k, oc] = sum over s and p of field_s(k, p) dy_s[g*OCg + oc, p] */
    dl_real *dwt[3];
    for (int t = 0; t < npools; t++) {
        dwt[t] = nan_buffer((size_t)G * CKg * OCg);
        dl_conv2d_weight_grad(pools[t], &q, n, xpad, dy, dwt[t]);
    }
    for (int g = 0; g < G; g++)
        for (int k = 0; k < CKg; k++)
            for (int o = 0; o < OCg; o++) {
                int c = g * Cg + k / (q.KH * q.KW), ki = k / q.KW % q.KH, kj = k % q.KW;
                long double sum = 0, scale = 0;
                for (int s = 0; s < n; s++)
                    for (int p = 0; p < P; p++) {
                        int oh = p / q.OW, ow = p % q.OW;
                        long double t = at(&q, x + (size_t)s * q.C * q.H * q.W, c,
                                           oh * q.SH - q.PH + ki * q.DH,
                                           ow * q.SW - q.PW + kj * q.DW) *
                                        (long double)dy[((size_t)s * q.OC + g * OCg + o) * P + p];
                        sum += t;
                        scale += fabsl(t);
                    }
                size_t i = ((size_t)g * CKg + k) * OCg + o;
                check("weight_grad", &q, dwt[0][i], sum, scale, n * P);
                for (int t = 1; t < npools; t++) {
                    if (memcmp(&dwt[t][i], &dwt[0][i], sizeof(dl_real)) == 0) {
                        n_pass++;
                    } else {
                        if (n_fail < 20)
                            printf("FAIL weight_grad threads: %d threads differ at %zu\n",
                                   dl_pool_size(pools[t]), i);
                        n_fail++;
                    }
                }
            }
    for (int t = 0; t < npools; t++)
        free(dwt[t]);
    free(x), free(w), free(dy), free(xpad), free(y);
}

int main(void)
{
    dl_pool *pools[3] = {NULL, dl_pool_new(2), dl_pool_new(3)};
    /* C, H, W, OC, OH, OW (computed), KH, KW, SH, SW, PH, PW, DH, DW, groups */
    static const dl_conv_shape shapes[] = {
        {1, 28, 28, 16, 0, 0, 5, 5, 1, 1, 2, 2, 1, 1, 1},   /* fashion_cnn c1 */
        {16, 14, 14, 32, 0, 0, 5, 5, 1, 1, 2, 2, 1, 1, 1},  /* fashion_cnn c2 */
        {3, 7, 6, 5, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1},      /* narrower than a panel */
        {2, 9, 40, 3, 0, 0, 3, 2, 1, 1, 0, 1, 1, 1, 1},     /* wider, non-square kernel */
        {4, 11, 13, 6, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1, 2},    /* stride 2, groups */
        {3, 12, 10, 4, 0, 0, 2, 2, 2, 2, 1, 1, 2, 2, 1},    /* stride and dilation 2 */
        {6, 5, 5, 6, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 3},      /* 1x1, grouped */
        {2, 3, 3, 2, 0, 0, 3, 3, 1, 1, 0, 0, 1, 1, 1},      /* one output position */
        {8, 17, 17, 40, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* positions over a k slice */
        {32, 9, 9, 20, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* fields over a k slice */
        /* fields too long for the gather kernel's offset table: packed panels */
        {520, 3, 10, 3, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {520, 6, 5, 2, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        test_shape(shapes[i], i < 2 ? 3 : 4, pools, 3);
    dl_pool_free(pools[1]);
    dl_pool_free(pools[2]);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
