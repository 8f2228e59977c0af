/* peak.c: this CPU's fp32 FMA throughput, one core and all cores, with
 * AVX-512 (zmm) and AVX2 (ymm) fused multiply-adds.
 *
 * Each thread runs NACC_* independent FMA chains (acc = acc * a + b) in
 * registers, enough to cover the FMA latency times the number of FMA pipes;
 * the best of several timed trials is kept (noise from other processes only
 * ever lowers a figure).  One FMA on a vector of L floats counts 2L flops.
 *
 * build: cc -O2 -pthread bench/peak.c -o peak   (no -march needed: the
 *        kernels carry their own target attributes and are chosen at run time)
 * usage: peak [--json] [--seconds S]
 *
 * With PEAK_LIB defined, including this file gives peak_fma_gflops() and no
 * main: bench/gemm_bench.c measures the same peak this way.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Independent chains per thread: FMA latency (4 cycles) x FMA pipes (2) = 8
 * are needed to fill the pipes; AVX-512 has 32 vector registers, so 16 zmm
 * chains fit with room to spare, while AVX2 code has only 16 ymm registers
 * (two hold the constants), so it gets 12. */
#define NACC_ZMM 16
#define NACC_YMM 12

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile float sink;

/* n iterations of one FMA per chain; returns the flops done.  The chains are named
 * variables, not an array, so that they stay in registers. */
#define CHAINS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define CHAINS16(X) CHAINS12(X) X(12) X(13) X(14) X(15)

#define Z_DECL(i) __m512 z##i = _mm512_set1_ps((float)(i));
#define Z_STEP(i) z##i = _mm512_fmadd_ps(z##i, a, b);
#define Z_SUM(i) s = _mm512_add_ps(s, z##i);
__attribute__((target("avx512f"))) static double fma_zmm(long n) {
  __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  CHAINS16(Z_DECL)
  for (long k = 0; k < n; k++) {
    CHAINS16(Z_STEP)
  }
  __m512 s = _mm512_setzero_ps();
  CHAINS16(Z_SUM)
  sink = _mm512_reduce_add_ps(s);
  return (double)n * NACC_ZMM * 16 * 2;
}

#define Y_DECL(i) __m256 y##i = _mm256_set1_ps((float)(i));
#define Y_STEP(i) y##i = _mm256_fmadd_ps(y##i, a, b);
#define Y_SUM(i) s = _mm256_add_ps(s, y##i);
__attribute__((target("avx2,fma"))) static double fma_ymm(long n) {
  __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  CHAINS12(Y_DECL)
  for (long k = 0; k < n; k++) {
    CHAINS12(Y_STEP)
  }
  __m256 s = _mm256_setzero_ps();
  CHAINS12(Y_SUM)
  float v[8];
  _mm256_storeu_ps(v, s);
  sink = v[0] + v[7];
  return (double)n * NACC_YMM * 8 * 2;
}

typedef double (*kernel_fn)(long);

typedef struct {
  kernel_fn fn;
  long n;
  int cpu;
  pthread_barrier_t *bar;
  double flops, t0, t1;
} job;

static void *worker(void *p) {
  job *j = p;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(j->cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
  pthread_barrier_wait(j->bar);
  j->t0 = now();
  j->flops = j->fn(j->n);
  j->t1 = now();
  return NULL;
}

/* GFLOP/s of `threads` threads each running fn(n): total flops / wall time,
 * from the first thread's start to the last one's end as the threads see them
 * (timed from the main thread, a main thread descheduled after the barrier
 * would start its clock late, once the work is done). */
static double run_threads(kernel_fn fn, long n, int threads) {
  pthread_t tid[256];
  job jobs[256];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){fn, n, t, &bar, 0.0, 0.0, 0.0};
    pthread_create(&tid[t], NULL, worker, &jobs[t]);
  }
  pthread_barrier_wait(&bar);
  double t0 = 0.0, t1 = 0.0, flops = 0.0;
  for (int t = 0; t < threads; t++) {
    pthread_join(tid[t], NULL);
    flops += jobs[t].flops;
    if (t == 0 || jobs[t].t0 < t0) t0 = jobs[t].t0;
    if (t == 0 || jobs[t].t1 > t1) t1 = jobs[t].t1;
  }
  double dt = t1 - t0;
  pthread_barrier_destroy(&bar);
  return flops / dt * 1e-9;
}

/* Best of `trials` runs of about `seconds` each. */
static double measure(kernel_fn fn, int threads, double seconds, int trials) {
  long n = 1 << 16;
  for (;;) { /* calibrate on one thread */
    double t0 = now();
    fn(n);
    double dt = now() - t0;
    if (dt > 0.02) {
      n = (long)((double)n * seconds / dt) + 1;
      break;
    }
    n *= 4;
  }
  double best = 0.0;
  for (int i = 0; i < trials; i++) {
    double g = run_threads(fn, n, threads);
    if (g > best) best = g;
  }
  return best;
}

#ifdef PEAK_LIB
/* The fp32 FMA peak of `threads` threads in GFLOP/s, with the widest vectors
 * this CPU has, best of `trials` runs of `seconds`; *isa names the vectors
 * ("AVX-512", "AVX2" or "none" with 0).  On a busy machine many short trials
 * find a quiet moment more surely than a few long ones. */
static double peak_fma_gflops(int threads, double seconds, int trials, const char **isa) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    *isa = "AVX-512";
    return measure(fma_zmm, threads, seconds, trials);
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *isa = "AVX2";
    return measure(fma_ymm, threads, seconds, trials);
  }
  *isa = "none";
  return 0.0;
}
#else
static void cpu_name(char *buf, size_t len) {
  snprintf(buf, len, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  int family = -1, model = -1;
  char name[256] = "";
  while (fgets(line, sizeof line, f)) {
    char *v = strchr(line, ':');
    if (!v) continue;
    v++;
    while (*v == ' ') v++;
    v[strcspn(v, "\n")] = '\0';
    if (!name[0] && !strncmp(line, "model name", 10)) snprintf(name, sizeof name, "%s", v);
    else if (family < 0 && !strncmp(line, "cpu family", 10)) family = atoi(v);
    else if (model < 0 && !strncmp(line, "model\t", 6)) model = atoi(v);
  }
  fclose(f);
  snprintf(buf, len, "%s (family %d model %d)", name, family, model);
}

int main(int argc, char **argv) {
  int json = 0;
  double seconds = 0.3;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--json] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  if (cores > 256) cores = 256;
  __builtin_cpu_init();
  int has512 = __builtin_cpu_supports("avx512f");
  int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  char name[300];
  cpu_name(name, sizeof name);

  double r512[2] = {0, 0}, r2[2] = {0, 0};
  const int trials = 5;
  if (has512) {
    r512[0] = measure(fma_zmm, 1, seconds, trials);
    r512[1] = measure(fma_zmm, cores, seconds, trials);
  }
  if (has2) {
    r2[0] = measure(fma_ymm, 1, seconds, trials);
    r2[1] = measure(fma_ymm, cores, seconds, trials);
  }
  if (json) {
    printf("{\"cpu\": \"%s\", \"cores\": %d, \"avx512\": %s, \"avx2\": %s, "
           "\"avx512_1core\": %.2f, \"avx512_allcore\": %.2f, "
           "\"avx2_1core\": %.2f, \"avx2_allcore\": %.2f}\n",
           name, cores, has512 ? "true" : "false", has2 ? "true" : "false", r512[0], r512[1],
           r2[0], r2[1]);
  } else {
    printf("cpu: %s, %d logical CPUs\n", name, cores);
    printf("fp32 FMA peak, best of %d trials of %.2f s (GFLOP/s):\n", trials, seconds);
    printf("  %-8s %10s %12s\n", "", "1 core", "all cores");
    if (has512) printf("  %-8s %10.1f %12.1f\n", "AVX-512", r512[0], r512[1]);
    else printf("  AVX-512  not supported\n");
    if (has2) printf("  %-8s %10.1f %12.1f\n", "AVX2", r2[0], r2[1]);
    else printf("  AVX2     not supported\n");
  }
  return 0;
}
#endif /* PEAK_LIB */
