/* dist_bench.c: what runtime/dist.c's tree sum costs without a model: the
 * recursive doubling of N floats over the ranks, best and median of R
 * rounds, as milliseconds a sum and per MB each rank sends
 * (docs/distributed.md's exchange figures, apart from any compute).
 *
 * build: mpicc -O2 -DDL_MPI -Iruntime bench/dist_bench.c runtime/dist.c -o dist_bench
 * usage: mpirun -np P dist_bench [MB] [ROUNDS]     (P a power of 2; 1 MB, 200)
 */
#define _POSIX_C_SOURCE 200809L
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (dl_dist_init(&argc, &argv)) return 1;
  double mb = argc > 1 ? atof(argv[1]) : 1.0;
  int rounds = argc > 2 ? atoi(argv[2]) : 200;
  size_t n = (size_t)(mb * 1e6 / sizeof(dl_real));
  dl_real *buf = malloc(n * sizeof *buf), *scratch = malloc(n * sizeof *scratch);
  double *t = malloc((size_t)rounds * sizeof *t);
  if (!buf || !scratch || !t || rounds < 1 || n == 0) return 1;
  for (size_t k = 0; k < n; k++) buf[k] = (dl_real)(k % 7) * 0.5f;
  for (int r = 0; r < rounds; r++) {
    dl_dist_all_ok(1); /* every rank at the start line */
    double t0 = now();
    dl_dist_sum_real(buf, scratch, n);
    t[r] = now() - t0;
  }
  qsort(t, (size_t)rounds, sizeof *t, by_value);
  int levels = 0;
  for (int d = 1; d < dl_dist_size(); d <<= 1) levels++;
  double sent = levels * (double)(n * sizeof(dl_real)) / 1e6;
  if (dl_dist_rank() == 0)
    printf("P=%d, %.2f MB a rank, %d level%s: best %.3f ms, median %.3f ms a sum; "
           "%.3f ms per MB sent (median)\n", dl_dist_size(), mb, levels, levels == 1 ? "" : "s",
           1e3 * t[0], 1e3 * t[rounds / 2], sent > 0 ? 1e3 * t[rounds / 2] / sent : 0.0);
  free(buf);
  free(scratch);
  free(t);
  dl_dist_finish();
  return 0;
}
