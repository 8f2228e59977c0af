/* gemm_bench.c: GFLOP/s of dlnc's GEMM (runtime/gemm.c) against oneDNN's
 * dnnl_sgemm on the products one training step of each bench/run workload
 * makes (the table is bench/gemm_shapes.h), as a share of this CPU's fp32 FMA
 * peak (bench/peak.c).  Before timing a shape, both compute it from the same
 * operands and the largest difference, relative to the largest |C|, must stay
 * within 1e-4, else the run fails: the two are timed on the same product.
 * Per workload it adds up the GEMM time of one training step (calls x time).
 *
 * The oneDNN column is there when built with DLNC_HAVE_DNNL (CMake does when
 * it finds Debian's libdnnl-dev and OpenMP); without it only dlnc is timed
 * and nothing is checked.
 *
 * build: `cmake --build build --target gemm_bench` (build/tests/kernels/gemm_bench), or
 *   cc -std=c11 -O2 -march=native -D_GNU_SOURCE -I runtime -I bench -fopenmp \
 *      -DDLNC_HAVE_DNNL bench/gemm_bench.c runtime/gemm.c runtime/threads.c -ldnnl -lpthread -lm
 * usage: gemm_bench [--workload W[,W...]] [--threads N] [--runs N] [--stat median|best]
 *                   [--peak GFLOPS] [--list] [THREADS [RUNS]]   (the old positional form)
 * --stat best reports each library's fastest run: on a busy machine other
 * processes only ever slow a run down, so the fastest is the least disturbed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gemm_shapes.h"
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define PEAK_LIB
#include "peak.c"
#define HAVE_PEAK 1
#else
#define HAVE_PEAK 0
#endif

#ifdef DLNC_HAVE_DNNL
#include <dnnl.h>
#include <omp.h>
#endif

#if DL_REAL_IS_F64
#error "gemm_bench needs the f32 runtime (dlnc_rt_f32): oneDNN's sgemm is f32"
#endif

#define MAX_REL_ERR 1e-4

typedef struct {
    const char *workloads; /* comma-separated filter, NULL = all but "check" */
    int threads, runs, list;
    int best;     /* --stat best: the fastest run instead of the median */
    double peak;  /* single-core GFLOP/s; 0 = measure */
    double skew;  /* test hook (--skew): scale dlnc's result before the check */
} options;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *xalloc(size_t n)
{
    /* 64-byte aligned (dl_gemm_packed wants its packed b so) */
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        perror("gemm_bench: malloc");
        exit(1);
    }
    return p;
}

static float *rand_buf(size_t n)
{
    float *p = xalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(rand() / (double)RAND_MAX - 0.5);
    return p;
}

/* One shape's operands, leading dimensions resolved. */
typedef struct {
    const shape *s;
    int lda, ldb, ldc, acc;
    float *A, *B, *C, *C0, *packed;
    dl_pool *pool; /* NULL for SH_SERIAL shapes */
} problem;

static size_t a_rows(const shape *s) { return (size_t)(s->kind == 'T' ? s->K : s->M); }
static size_t b_rows(const shape *s) { return (size_t)(s->kind == 't' ? s->N : s->K); }

static void problem_init(problem *p, const shape *s, dl_pool *pool)
{
    p->s = s;
    p->lda = s->lda ? s->lda : s->kind == 'T' ? s->M : s->K;
    p->ldb = s->ldb ? s->ldb : s->kind == 't' ? s->K : s->N;
    p->ldc = s->ldc ? s->ldc : s->N;
    p->acc = (s->flags & SH_ACC) != 0;
    p->A = rand_buf(a_rows(s) * (size_t)p->lda);
    p->B = rand_buf(b_rows(s) * (size_t)p->ldb);
    p->C0 = rand_buf((size_t)s->M * (size_t)p->ldc);
    p->C = xalloc((size_t)s->M * (size_t)p->ldc * sizeof *p->C);
    p->packed = NULL;
    if (s->flags & SH_PACKED) {
        /* packed once, outside the timing, as the generated code does */
        p->packed = xalloc(DL_GEMM_PACKED_SIZE(s->N, s->K) * sizeof *p->packed);
        if (s->kind == 't')
            dl_gemm_pack_nt(s->N, s->K, p->B, p->ldb, p->packed);
        else
            dl_gemm_pack_nn(s->N, s->K, p->B, p->ldb, p->packed);
    }
    p->pool = s->flags & SH_SERIAL ? NULL : pool;
}

static void problem_free(problem *p)
{
    free(p->A);
    free(p->B);
    free(p->C);
    free(p->C0);
    free(p->packed);
}

static void run_dlnc(const problem *p)
{
    const shape *s = p->s;
    if (p->packed)
        dl_gemm_packed(p->pool, s->M, s->N, s->K, p->A, p->lda, p->packed, p->C, p->ldc, p->acc);
    else if (s->kind == 't')
        dl_gemm_nt(p->pool, s->M, s->N, s->K, p->A, p->lda, p->B, p->ldb, p->C, p->ldc, p->acc);
    else if (s->kind == 'n')
        dl_gemm_nn(p->pool, s->M, s->N, s->K, p->A, p->lda, p->B, p->ldb, p->C, p->ldc, p->acc);
    else
        dl_gemm_tn(p->pool, s->M, s->N, s->K, p->A, p->lda, p->B, p->ldb, p->C, p->ldc, p->acc);
}

#ifdef DLNC_HAVE_DNNL
static void run_dnnl(const problem *p)
{
    const shape *s = p->s;
    dnnl_status_t st = dnnl_sgemm(s->kind == 'T' ? 'T' : 'N', s->kind == 't' ? 'T' : 'N', s->M,
                                  s->N, s->K, 1.0f, p->A, p->lda, p->B, p->ldb,
                                  p->acc ? 1.0f : 0.0f, p->C, p->ldc);
    if (st != dnnl_success) {
        fprintf(stderr, "gemm_bench: error: dnnl_sgemm failed (status %d) on %s %s\n", (int)st,
                s->workload, s->what);
        exit(1);
    }
}
#endif

static void reset_c(const problem *p)
{
    memcpy(p->C, p->C0, (size_t)p->s->M * (size_t)p->ldc * sizeof *p->C);
}

/* max |dlnc - oneDNN| / max |oneDNN| over C, both from the same C0; -1 without oneDNN */
static double check(const problem *p, double skew)
{
#ifdef DLNC_HAVE_DNNL
    const shape *s = p->s;
    size_t n = (size_t)s->M * (size_t)p->ldc;
    float *mine = xalloc(n * sizeof *mine);
    reset_c(p);
    run_dlnc(p);
    memcpy(mine, p->C, n * sizeof *mine);
    reset_c(p);
    run_dnnl(p);
    double diff = 0.0, big = 0.0;
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            size_t k = (size_t)i * (size_t)p->ldc + (size_t)j;
            double ref = p->C[k], d = fabs(mine[k] * (1.0 + skew) - ref);
            if (!(d <= diff)) /* a NaN counts as the largest */
                diff = isnan(d) ? INFINITY : d;
            if (fabs(ref) > big)
                big = fabs(ref);
        }
    free(mine);
    return big > 0 ? diff / big : diff;
#else
    (void)p, (void)skew;
    return -1.0;
#endif
}

/* Seconds per call of fn, over one timed run of `reps` calls. */
static double time_block(void (*fn)(const problem *), const problem *p, long reps)
{
    double t0 = now_s();
    for (long k = 0; k < reps; k++)
        fn(p);
    return (now_s() - t0) / (double)reps;
}

/* Calls per timed run: about 2 ms of work, at least one. */
static long calibrate(void (*fn)(const problem *), const problem *p)
{
    fn(p); /* warm-up: first touch, oneDNN's JIT */
    double one = time_block(fn, p, 1);
    long reps = one > 0 ? (long)(2e-3 / one) + 1 : 1000;
    return reps > 1000000 ? 1000000 : reps;
}

typedef struct {
    double dlnc_s, dnnl_s; /* median seconds per call; dnnl_s 0 without it */
    double err;
} result;

static result measure_shape(const problem *p, const options *o)
{
    result r = {0, 0, check(p, o->skew)};
    double *td = xalloc((size_t)o->runs * sizeof *td), *to = xalloc((size_t)o->runs * sizeof *to);
    reset_c(p);
    long rd = calibrate(run_dlnc, p);
#ifdef DLNC_HAVE_DNNL
    long ro = calibrate(run_dnnl, p);
#endif
    for (int i = 0; i < o->runs; i++) {
        td[i] = time_block(run_dlnc, p, rd);
#ifdef DLNC_HAVE_DNNL
        to[i] = time_block(run_dnnl, p, ro);
#endif
    }
    qsort(td, (size_t)o->runs, sizeof *td, cmp_double);
    r.dlnc_s = td[o->best ? 0 : o->runs / 2];
#ifdef DLNC_HAVE_DNNL
    qsort(to, (size_t)o->runs, sizeof *to, cmp_double);
    r.dnnl_s = to[o->best ? 0 : o->runs / 2];
#endif
    free(td);
    free(to);
    return r;
}

/* nt, nn, tn; pt, pn: dl_gemm_packed on a b packed as nt or nn reads it */
static const char *op_name(const shape *s)
{
    if (s->flags & SH_PACKED)
        return s->kind == 't' ? "pt" : "pn";
    return s->kind == 't' ? "nt" : s->kind == 'n' ? "nn" : "tn";
}

static int selected(const options *o, const char *workload)
{
    if (!o->workloads)
        return strcmp(workload, "check") != 0;
    size_t n = strlen(workload);
    for (const char *w = o->workloads; *w;) {
        size_t len = strcspn(w, ",");
        if (len == n && !strncmp(w, workload, n))
            return 1;
        w += len + (w[len] == ',');
    }
    return 0;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--workload W[,W...]] [--threads N] [--runs N] [--stat median|best]\n"
            "          [--peak GFLOPS] [--list]\n"
            "       %s [THREADS [RUNS]]\n"
            "W: mlp wide cnn lstm transformer vae gan autoencoder extra check\n"
            "(default: all but check); --peak: single-core fp32 GFLOP/s (default: measured)\n",
            argv0, argv0);
    exit(2);
}

static int int_arg(const char *argv0, const char *v, int lo, int hi)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "gemm_bench: error: '%s' is not a whole number in [%d, %d]\n", v, lo, hi);
        usage(argv0);
    }
    return (int)x;
}

static options parse(int argc, char **argv)
{
    options o = {NULL, 1, 15, 0, 0, 0.0, 0.0};
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list"))
            o.list = 1;
        else if (v && !strcmp(a, "--workload"))
            o.workloads = argv[++i];
        else if (v && !strcmp(a, "--threads"))
            o.threads = int_arg(argv[0], argv[++i], 1, 256);
        else if (v && !strcmp(a, "--runs"))
            o.runs = int_arg(argv[0], argv[++i], 1, 1000);
        else if (v && !strcmp(a, "--stat") && (!strcmp(v, "median") || !strcmp(v, "best")))
            o.best = !strcmp(argv[++i], "best");
        else if (v && !strcmp(a, "--peak"))
            o.peak = atof(argv[++i]);
        else if (v && !strcmp(a, "--skew"))
            o.skew = atof(argv[++i]);
        else if (a[0] != '-' && positional == 0 && ++positional)
            o.threads = int_arg(argv[0], a, 1, 256);
        else if (a[0] != '-' && positional == 1 && ++positional)
            o.runs = int_arg(argv[0], a, 1, 1000);
        else
            usage(argv[0]);
    }
    return o;
}

static void print_header(const options *o, const char *isa)
{
    printf("dlnc gemm: isa %s, %s; threads %d; %s of %d runs; fp32 FMA peak %.1f GFLOP/s "
           "per core (%s)\n",
           dl_kernels_isa(), "f32", o->threads, o->best ? "best" : "median", o->runs, o->peak, isa);
#ifdef DLNC_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    printf("oneDNN %d.%d.%d (%s), dnnl_sgemm, OpenMP threads as above\n", v->major, v->minor,
           v->patch, v->hash);
#else
    printf("oneDNN: not built in (no dnnl.h), dlnc only, results unchecked\n");
#endif
    printf("%-11s %-16s %-3s %-2s %5s %5s %5s %5s %8s %8s %8s %6s %6s %6s %8s\n", "workload",
           "layer", "role", "op", "M", "N", "K", "calls", "us/call", "dlnc", "oneDNN", "ratio",
           "dlnc%", "oDNN%", "rel.err");
}

#ifdef DLNC_HAVE_DNNL
/* oneDNN's OpenMP threads spin after each of its calls (libgomp's default
 * wait policy), and the next dlnc call's pool worker then shares its core
 * with a spinner: dlnc's 2-thread figures came out at 50% of peak where
 * they are 80% (wide's dW, Zen 3).  libgomp reads OMP_WAIT_POLICY when it
 * is loaded, before main, so run again with it set, as bench/run does for
 * PyTorch. */
static void passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    /* no /proc: go on, with spinning OpenMP threads */
}
#endif

int main(int argc, char **argv)
{
#ifdef DLNC_HAVE_DNNL
    passive_openmp(argv);
#endif
    options o = parse(argc, argv);
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    size_t matched = 0;
    for (size_t i = 0; i < nshapes; i++)
        matched += selected(&o, shapes[i].workload);
    if (!matched) {
        fprintf(stderr, "gemm_bench: error: no shape of workload '%s'\n", o.workloads);
        usage(argv[0]);
    }
    if (o.list) {
        for (size_t i = 0; i < nshapes; i++) {
            const shape *s = &shapes[i];
            if (selected(&o, s->workload))
                printf("%-11s %-16s %-3s %-2s %5d %5d %5d x%d\n", s->workload, s->what, s->role,
                       op_name(s), s->M, s->N, s->K, s->calls);
        }
        return 0;
    }
    const char *isa = o.peak > 0 ? "given with --peak" : "not measured";
#if HAVE_PEAK
    if (o.peak <= 0)
        o.peak = peak_fma_gflops(1, 0.01, 40, &isa);
#endif
#ifdef DLNC_HAVE_DNNL
    omp_set_num_threads(o.threads);
#endif
    dl_pool *pool = dl_pool_new(o.threads);
    print_header(&o, isa);
    int bad = 0;
    const char *group = NULL;
    double step_dlnc = 0, step_dnnl = 0;
    for (size_t i = 0; i <= nshapes; i++) {
        const shape *s = i < nshapes ? &shapes[i] : NULL;
        if (s && !selected(&o, s->workload))
            continue;
        if (group && (!s || strcmp(s->workload, group))) {
            /* the workload's GEMM time per training step */
            printf("%-11s %-16s GEMM time per step: dlnc %.3f ms", group, "(sum)", 1e3 * step_dlnc);
            if (step_dnnl > 0)
                printf(", oneDNN %.3f ms, ratio %.2f", 1e3 * step_dnnl, step_dnnl / step_dlnc);
            printf("\n");
            step_dlnc = step_dnnl = 0;
        }
        if (!s)
            break;
        group = s->workload;
        problem p;
        problem_init(&p, s, pool);
        int threads = s->flags & SH_SERIAL ? 1 : o.threads;
#ifdef DLNC_HAVE_DNNL
        omp_set_num_threads(threads);
#endif
        result r = measure_shape(&p, &o);
        problem_free(&p);
        double flops = 2.0 * s->M * s->N * s->K, gd = flops / r.dlnc_s * 1e-9;
        double peak = o.peak > 0 ? o.peak * threads : 0;
        /* a serial shape's calls are spread over the threads by the loop around them */
        double share = (double)s->calls / (s->flags & SH_SERIAL ? o.threads : 1);
        step_dlnc += share * r.dlnc_s;
        step_dnnl += share * r.dnnl_s;
        const char *op = op_name(s);
        printf("%-11s %-16s %-3s %-2s %5d %5d %5d %5d %8.2f %8.1f", s->workload, s->what, s->role,
               op, s->M, s->N, s->K, s->calls, 1e6 * r.dlnc_s, gd);
        if (r.dnnl_s > 0) {
            double go = flops / r.dnnl_s * 1e-9;
            printf(" %8.1f %6.2f", go, gd / go);
            if (peak > 0)
                printf(" %5.1f%% %5.1f%%", 100 * gd / peak, 100 * go / peak);
            printf(" %8.1e%s\n", r.err, r.err > MAX_REL_ERR ? "  MISMATCH" : "");
        } else {
            printf(" %8s %6s", "-", "-");
            if (peak > 0)
                printf(" %5.1f%% %6s", 100 * gd / peak, "-");
            printf(" %8s\n", "-");
        }
        fflush(stdout);
        if (r.err > MAX_REL_ERR) {
            fprintf(stderr,
                    "gemm_bench: error: %s %s %s (%c %dx%dx%d): dlnc and oneDNN differ by %.2e "
                    "of the largest |C| (limit %.0e)\n",
                    s->workload, s->what, s->role, s->kind, s->M, s->N, s->K, r.err, MAX_REL_ERR);
            bad++;
        }
    }
    printf("ratio = dlnc GFLOP/s / oneDNN GFLOP/s (above 1: dlnc faster); %%: of threads x the "
           "single-core peak; rel.err: max |dlnc - oneDNN| / max |C|\n");
    dl_pool_free(pool);
    if (bad) {
        fprintf(stderr, "gemm_bench: error: %d shape%s where dlnc and oneDNN disagree\n", bad,
                bad == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
