/* test_noise.c: dl_noise, the draws of randn_like and rand_like.  For
 * fixed seeds (so the test is deterministic) it checks what a model relies
 * on: normal draws have mean 0, variance 1 and a normal's mass within one
 * and two sigma; uniform draws lie in [0, 1) with mean 1/2 and variance
 * 1/12; neighbouring elements, consecutive steps and two sites are
 * uncorrelated; the same (seed, step, site, k) gives the same draw and
 * another seed another draw. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "dl_ops.h"

enum { N = 200000 };
static int n_fail;

static void check(const char *what, double got, double want, double tol) {
  int ok = fabs(got - want) <= tol;
  printf("%-40s %.5f (want %.5f +- %.5f)%s\n", what, got, want, tol, ok ? "" : "  FAIL");
  if (!ok) n_fail++;
}

/* Pearson correlation of a[0..n) and b[0..n). */
static double correlation(const double *a, const double *b, size_t n) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (size_t k = 0; k < n; k++) ma += a[k], mb += b[k];
  ma /= (double)n, mb /= (double)n;
  for (size_t k = 0; k < n; k++) {
    sab += (a[k] - ma) * (b[k] - mb);
    saa += (a[k] - ma) * (a[k] - ma);
    sbb += (b[k] - mb) * (b[k] - mb);
  }
  return sab / sqrt(saa * sbb);
}

static void draw(double *out, uint64_t seed, int64_t step, int site, int normal) {
  dl_ctx ctx = {.seed = seed, .step = step};
  for (size_t k = 0; k < N; k++) out[k] = dl_noise(&ctx, site, k, normal);
}

int main(void) {
  double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
  if (!a || !b || !c) return 1;
  /* 5 standard errors: sd/sqrt(N) = 0.0022 for the mean of a normal */
  const double se = 1 / sqrt((double)N);

  draw(a, 42, 7, 3, 1);
  double mean = 0, var = 0, in1 = 0, in2 = 0;
  for (size_t k = 0; k < N; k++) mean += a[k];
  mean /= N;
  for (size_t k = 0; k < N; k++) {
    var += (a[k] - mean) * (a[k] - mean);
    in1 += fabs(a[k]) < 1, in2 += fabs(a[k]) < 2;
  }
  check("normal: mean", mean, 0, 5 * se);
  check("normal: variance", var / (N - 1), 1, 5 * sqrt(2.0) * se);
  check("normal: P(|x| < 1)", in1 / N, 0.682689, 5 * 0.466 * se);
  check("normal: P(|x| < 2)", in2 / N, 0.954500, 5 * 0.209 * se);
  check("normal: neighbours' correlation", correlation(a, a + 1, N - 1), 0, 5 * se);

  draw(b, 42, 8, 3, 1);
  check("normal: next step's correlation", correlation(a, b, N), 0, 5 * se);
  draw(b, 42, 7, 4, 1);
  check("normal: another site's correlation", correlation(a, b, N), 0, 5 * se);
  draw(b, 42, 7, 3, 1);
  draw(c, 43, 7, 3, 1);
  size_t same = 0, same_other_seed = 0;
  for (size_t k = 0; k < N; k++) same += a[k] == b[k], same_other_seed += a[k] == c[k];
  check("normal: same seed, same draws", (double)same / N, 1, 0);
  check("normal: another seed, other draws", (double)same_other_seed / N, 0, 0);

  draw(a, 42, 7, 3, 0);
  double lo = 1, hi = 0;
  mean = var = 0;
  for (size_t k = 0; k < N; k++) mean += a[k], lo = fmin(lo, a[k]), hi = fmax(hi, a[k]);
  mean /= N;
  for (size_t k = 0; k < N; k++) var += (a[k] - mean) * (a[k] - mean);
  check("uniform: smallest >= 0", lo >= 0, 1, 0);
  check("uniform: largest < 1", hi < 1, 1, 0);
  check("uniform: mean", mean, 0.5, 5 * sqrt(1 / 12.0) * se);
  check("uniform: variance", var / (N - 1), 1 / 12.0, 5 * sqrt(1 / 180.0) * se);
  check("uniform: neighbours' correlation", correlation(a, a + 1, N - 1), 0, 5 * se);
  draw(b, 42, 8, 3, 0);
  check("uniform: next step's correlation", correlation(a, b, N), 0, 5 * se);

  free(a), free(b), free(c);
  printf(n_fail ? "FAILED\n" : "passed\n");
  return n_fail != 0;
}
