/* dist.c: the trainer's processes: every MPI call of the runtime (dist.h).
 *
 * Exchanges never block without a limit: each is an Isend/Irecv pair
 * polled until a deadline (DLNC_MPI_TIMEOUT seconds), so a rank that died
 * or hangs ends the whole job with a message naming the partner instead of
 * leaving the others waiting forever.  Errors are returned
 * (MPI_ERRORS_RETURN), reported with the rank, and end the job through
 * MPI_Abort, whose exit status is nonzero on every rank. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime */
#endif
#include "dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double g_seconds, g_wait, g_bytes; /* dl_dist_stats */
static int g_measure;                     /* dl_dist_measure */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double dl_dist_timeout(void) {
  const char *v = getenv("DLNC_MPI_TIMEOUT");
  double t = v && *v ? strtod(v, NULL) : 0.0;
  return t > 0 ? t : 120.0;
}

void dl_dist_measure(void) { g_measure = 1; }

void dl_dist_stats(double *seconds, double *wait, double *bytes) {
  *seconds = g_seconds;
  *wait = g_wait;
  *bytes = g_bytes;
}

/* The partner's half of a tree level: a + b with the lower rank's value
 * on the left (IEEE addition is commutative, so both ranks get the same
 * bits either way; the order is written out for the reader). */
#define ADD_LEVEL(T)                                                              \
  static void add_##T(T *mine, const T *theirs, size_t n, int left) {              \
    if (left)                                                                     \
      for (size_t k = 0; k < n; k++) mine[k] = mine[k] + theirs[k];               \
    else                                                                          \
      for (size_t k = 0; k < n; k++) mine[k] = theirs[k] + mine[k];               \
  }
ADD_LEVEL(dl_real)
ADD_LEVEL(double)

#ifdef DL_MPI
#include <mpi.h>

static int g_rank, g_size = 1, g_started;

static void fail_mpi(int rc, const char *what, int partner) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  dl_dist_abort(1, "%s with rank %d failed: %.*s", what, partner, len, msg);
}

int dl_dist_init(int *argc, char ***argv) {
  int rc = MPI_Init(argc, argv);
  if (rc != MPI_SUCCESS) {
    fprintf(stderr, "error: MPI_Init failed (code %d)\n", rc);
    return -1;
  }
  g_started = 1;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  return 0;
}

int dl_dist_rank(void) { return g_rank; }
int dl_dist_default_shards(void) { return 8; }
int dl_dist_size(void) { return g_size; }

/* Sends and receives n values with partner, polling until the deadline:
 * first a short spin (a fast partner answers within microseconds), then
 * with sleeps, so oversubscribed ranks leave the cores to those working. */
static void exchange(void *send, void *recv, size_t n, MPI_Datatype type, size_t size,
                     int partner) {
  if (n > (size_t)0x7fffffff) dl_dist_abort(1, "an exchange of %zu values is too large", n);
  MPI_Request req[2];
  int rc = MPI_Irecv(recv, (int)n, type, partner, 0, MPI_COMM_WORLD, &req[0]);
  if (rc == MPI_SUCCESS) rc = MPI_Isend(send, (int)n, type, partner, 0, MPI_COMM_WORLD, &req[1]);
  if (rc != MPI_SUCCESS) fail_mpi(rc, "starting an exchange", partner);
  double limit = dl_dist_timeout(), deadline = now() + limit;
  for (long spins = 0;; spins++) {
    int done = 0;
    rc = MPI_Testall(2, req, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) fail_mpi(rc, "an exchange", partner);
    if (done) break;
    if (spins < 20000) continue;
    if (now() > deadline)
      dl_dist_abort(1, "no answer from rank %d within %g s (DLNC_MPI_TIMEOUT): it died, hangs "
                    "or is far behind; ending the job", partner, limit);
    struct timespec pause = {0, 20000};
    nanosleep(&pause, NULL);
  }
  g_bytes += (double)(n * size);
}

/* dl_dist_measure: every rank here, so that what follows is timed alone. */
static void wait_all(void) {
  double t0 = now(), one = 0, other;
  for (int d = 1; d < g_size; d <<= 1) exchange(&one, &other, 1, MPI_DOUBLE, 0, g_rank ^ d);
  g_wait += now() - t0;
}

#define TREE_SUM(NAME, T, MPITYPE)                                                \
  void NAME(T *buf, T *scratch, size_t n) {                                      \
    if (g_measure) wait_all();                                                   \
    double t0 = now();                                                           \
    for (int d = 1; d < g_size; d <<= 1) {                                       \
      int partner = g_rank ^ d;                                                  \
      exchange(buf, scratch, n, MPITYPE, sizeof(T), partner);                    \
      add_##T(buf, scratch, n, g_rank < partner);                                \
    }                                                                            \
    g_seconds += now() - t0;                                                     \
  }
TREE_SUM(dl_dist_sum_real, dl_real, DL_REAL_IS_F64 ? MPI_DOUBLE : MPI_FLOAT)
TREE_SUM(dl_dist_sum_f64, double, MPI_DOUBLE)

void dl_dist_abort(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rank %d: error: ", g_rank);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  if (g_started && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
  if (g_started) MPI_Finalize();
  exit(code ? code : 1);
}

void dl_dist_finish(void) {
  if (g_started) MPI_Finalize();
  g_started = 0;
}

#else /* one process: nothing to exchange */

int dl_dist_init(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}
int dl_dist_rank(void) { return 0; }
int dl_dist_default_shards(void) { return 1; }
int dl_dist_size(void) { return 1; }
void dl_dist_sum_real(dl_real *buf, dl_real *scratch, size_t n) {
  (void)buf, (void)scratch, (void)n;
  (void)add_dl_real;
}
void dl_dist_sum_f64(double *buf, double *scratch, size_t n) {
  (void)buf, (void)scratch, (void)n;
  (void)add_double, (void)now;
}

void dl_dist_abort(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(code ? code : 1);
}

void dl_dist_finish(void) {}
#endif

int dl_dist_all_ok(int ok) {
  double v = ok ? 0.0 : 1.0, scratch;
  dl_dist_sum_f64(&v, &scratch, 1);
  return v == 0.0;
}
