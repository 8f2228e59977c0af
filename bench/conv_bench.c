/* conv_bench.c: dlnc's convolution kernels (runtime/conv.c) on the cnn
 * workload's shapes (examples/fashion_cnn.dln, batch 64), one thread: the
 * padded images, the forward product, the input gradient as a convolution
 * of padded dy (conv2 only: conv1's input needs none) and the weight
 * gradient, each the best of RUNS batches, in microseconds per batch,
 * GFLOP/s and share of the fp32 FMA peak (bench/peak.c).  Each product is
 * first checked against a naive convolution (largest difference over the
 * largest value); above 1e-4 the run fails.
 *
 *   conv_bench [--runs N] [--peak GFLOPS]
 *
 * Built as build/tests/kernels/conv_bench (tests/kernels/CMakeLists.txt). */
#define _GNU_SOURCE /* peak.c pins its threads */
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define PEAK_LIB
#include "peak.c"
#define HAVE_PEAK 1
#else
#define HAVE_PEAK 0
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#endif

enum { BATCH = 64 };

typedef struct {
    const char *name;
    dl_conv_shape q;   /* OH, OW filled in by main */
} layer;

static float *buffer(size_t n, int random)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "conv_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = random ? (float)rand() / (float)RAND_MAX - 0.5f : 0.0f;
    return p;
}

/* max |y - naive conv| / max |naive conv| over the first sample */
static double forward_error(const dl_conv_shape *q, const float *x, const float *w, const float *y)
{
    int Cg = q->C / q->groups, OCg = q->OC / q->groups, P = q->OH * q->OW;
    double err = 0, top = 0;
    for (int oc = 0; oc < q->OC; oc++)
        for (int p = 0; p < P; p++) {
            int g = oc / OCg, oh = p / q->OW, ow = p % q->OW;
            double sum = 0;
            for (int c = 0; c < Cg; c++)
                for (int i = 0; i < q->KH; i++)
                    for (int j = 0; j < q->KW; j++) {
                        int ih = oh * q->SH - q->PH + i * q->DH, iw = ow * q->SW - q->PW + j * q->DW;
                        if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W)
                            continue;
                        sum += (double)w[((oc * Cg + c) * q->KH + i) * q->KW + j] *
                               x[((size_t)(g * Cg + c) * q->H + ih) * q->W + iw];
                    }
            err = fmax(err, fabs(sum - y[(size_t)oc * P + p]));
            top = fmax(top, fabs(sum));
        }
    return top > 0 ? err / top : err;
}

static void report(const char *name, const char *what, double secs, double flops, double peak)
{
    printf("%-6s %-14s %9.1f", name, what, secs * 1e6);
    if (flops > 0)
        printf(" %8.1f", flops / secs * 1e-9);
    if (flops > 0 && peak > 0)
        printf(" %6.1f%%", 100.0 * flops / secs * 1e-9 / peak);
    printf("\n");
}

int main(int argc, char **argv)
{
    int runs = 15;
    double peak = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc)
            peak = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: conv_bench [--runs N] [--peak GFLOPS]\n");
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
#if HAVE_PEAK
    const char *isa = "none";
    if (peak <= 0)
        peak = peak_fma_gflops(1, 0.05, 20, &isa);
#endif
    /* C, H, W, OC, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, groups */
    layer layers[] = {
        {"conv1", {1, 28, 28, 16, 0, 0, 5, 5, 1, 1, 2, 2, 1, 1, 1}},
        {"conv2", {16, 14, 14, 32, 0, 0, 5, 5, 1, 1, 2, 2, 1, 1, 1}},
    };
    printf("dlnc conv kernels (%s), batch %d, 1 thread, best of %d; fp32 FMA peak %.1f GFLOP/s\n",
           dl_kernels_isa(), BATCH, runs, peak);
    printf("layer  product         us/batch  GFLOP/s  of peak\n");
    int bad = 0;
    for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
        dl_conv_shape q = layers[l].q;
        q.OH = (q.H + 2 * q.PH - q.DH * (q.KH - 1) - 1) / q.SH + 1;
        q.OW = (q.W + 2 * q.PW - q.DW * (q.KW - 1) - 1) / q.SW + 1;
        int CK = q.C / q.groups * q.KH * q.KW, P = q.OH * q.OW;
        size_t in = (size_t)q.C * q.H * q.W, out = (size_t)q.OC * P;
        size_t pad = (size_t)q.C * (q.H + 2 * q.PH) * (q.W + 2 * q.PW);
        /* dx as a convolution: dy padded by K-1-P, the flipped weight [C][OC*K*K] */
        dl_conv_shape t = {q.OC, q.OH, q.OW, q.C, q.H, q.W, q.KH, q.KW, 1, 1,
                           q.KH - 1 - q.PH, q.KW - 1 - q.PW, 1, 1, 1};
        size_t dpad = (size_t)q.OC * (q.OH + 2 * t.PH) * (q.OW + 2 * t.PW);
        float *x = buffer(BATCH * in, 1), *w = buffer((size_t)q.OC * CK, 1);
        float *xpad = buffer(BATCH * pad, 0), *y = buffer(BATCH * out, 0);
        float *dy = buffer(BATCH * out, 1), *dypad = buffer(BATCH * dpad, 0);
        float *dx = buffer(BATCH * in, 0), *dwt = buffer((size_t)q.OC * CK, 0);
        double flops = 2.0 * q.OC * CK * P * BATCH;
        double best[4] = {1e30, 1e30, 1e30, 1e30};
        for (int r = 0; r < runs; r++) {
            double t0 = now();
            for (int s = 0; s < BATCH; s++)
                dl_conv2d_pad(q.C, q.H, q.W, q.PH, q.PW, x + s * in, xpad + s * pad);
            double t1 = now();
            for (int s = 0; s < BATCH; s++)
                dl_conv2d_forward(&q, 0, xpad + s * pad, w, y + s * out);
            double t2 = now();
            for (int s = 0; s < BATCH && l > 0; s++) {
                dl_conv2d_pad(q.OC, q.OH, q.OW, t.PH, t.PW, dy + s * out, dypad + s * dpad);
                dl_conv2d_forward(&t, 0, dypad + s * dpad, w, dx + s * in);
            }
            double t3 = now();
            dl_conv2d_weight_grad(NULL, &q, BATCH, xpad, dy, dwt);
            double t4 = now();
            double d[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
            for (int k = 0; k < 4; k++)
                best[k] = d[k] < best[k] ? d[k] : best[k];
        }
        double err = forward_error(&q, x, w, y);
        if (!(err <= 1e-4)) {
            printf("%s: forward differs from the naive convolution by %.3g\n", layers[l].name, err);
            bad = 1;
        }
        report(layers[l].name, "pad", best[0], 0, 0);
        report(layers[l].name, "forward", best[1], flops, peak);
        if (l > 0)  /* the weight here is not flipped: same work, other values */
            report(layers[l].name, "dx (pad+conv)", best[2], flops, peak);
        report(layers[l].name, "dW", best[3], flops, peak);
        free(x), free(w), free(xpad), free(y), free(dy), free(dypad), free(dx), free(dwt);
    }
    return bad;
}
