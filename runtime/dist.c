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
#include <string.h>
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

/* The first item of rank r's share of n items over p ranks, floor(n*r/p)
 * without overflow (n = q*p + m); r = p gives n. */
static int64_t share_of(int64_t n, int r, int p) {
  return n / p * r + n % p * r / p;
}

#ifdef DL_MPI
#include <mpi.h>

static int g_rank, g_size = 1, g_started;

static void fail_mpi(int rc, const char *what, int partner) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  dl_dist_abort(1, "%s with rank %d failed: %.*s", what, partner, len, msg);
}

/* The processes a launcher started, by its environment (Open MPI's
 * mpirun, MPICH's hydra and Slurm's PMI), and the variable that says so;
 * 0 if none says. */
static long launched(const char **var) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  for (size_t k = 0; k < sizeof vars / sizeof *vars; k++) {
    const char *v = getenv(vars[k]);
    if (v && *v) {
      *var = vars[k];
      return strtol(v, NULL, 10);
    }
  }
  return 0;
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
  /* Another MPI's launcher (hydra for an Open MPI trainer, or the reverse)
     starts processes that each find themselves alone: as many separate
     trainings writing the same files, and nothing would say so. */
  const char *var = "";
  long n = launched(&var);
  if (g_size == 1 && n > 1)
    dl_dist_abort(1, "the launcher started %ld processes (%s), but MPI sees one: this trainer "
                  "was started by another MPI's mpirun than the one it was built with (Open "
                  "MPI's mpirun, MPICH's mpirun.mpich); start it with its own", n, var);
  return 0;
}

int dl_dist_rank(void) { return g_rank; }
int dl_dist_default_shards(void) { return 8; }
int dl_dist_size(void) { return g_size; }

/* Sends ns values to partner and receives nr from it, polling until the
 * deadline: first a short spin (a fast partner answers within
 * microseconds), then with sleeps, so oversubscribed ranks leave the cores
 * to those working. */
static void exchange2(void *send, size_t ns, void *recv, size_t nr, MPI_Datatype type,
                      int partner) {
  if (ns > (size_t)0x7fffffff || nr > (size_t)0x7fffffff)
    dl_dist_abort(1, "an exchange of %zu values is too large", ns > nr ? ns : nr);
  MPI_Request req[2];
  int rc = MPI_Irecv(recv, (int)nr, type, partner, 0, MPI_COMM_WORLD, &req[0]);
  if (rc == MPI_SUCCESS) rc = MPI_Isend(send, (int)ns, type, partner, 0, MPI_COMM_WORLD, &req[1]);
  if (rc != MPI_SUCCESS) fail_mpi(rc, "starting an exchange", partner);
  double limit = dl_dist_timeout(), deadline = now() + limit;
  /* statuses, not MPI_STATUSES_IGNORE: gcc 12 takes MPICH's (a pointer
     constant) for an array of none and warns (-Wstringop-overflow) */
  MPI_Status status[2];
  for (long spins = 0;; spins++) {
    int done = 0;
    rc = MPI_Testall(2, req, &done, status);
    if (rc != MPI_SUCCESS) fail_mpi(rc, "an exchange", partner);
    if (done) break;
    if (spins < 20000) continue;
    if (now() > deadline)
      dl_dist_abort(1, "no answer from rank %d within %g s (DLNC_MPI_TIMEOUT): it died, hangs "
                    "or is far behind; ending the job", partner, limit);
    struct timespec pause = {0, 20000};
    nanosleep(&pause, NULL);
  }
}

/* n values each way, counted in dl_dist_stats' bytes. */
static void exchange(void *send, void *recv, size_t n, MPI_Datatype type, size_t size,
                     int partner) {
  exchange2(send, n, recv, n, type, partner);
  g_bytes += (double)(n * size);
}

static int64_t share_at(int64_t n, int r) { return share_of(n, r, g_size); }

void dl_dist_gather_f64(double *buf, int64_t n, size_t width) {
  for (int d = 1; d < g_size; d <<= 1) {
    int partner = g_rank ^ d, mine = g_rank & ~(d - 1), theirs = partner & ~(d - 1);
    int64_t ms = share_at(n, mine), me = share_at(n, mine + d);
    int64_t ts = share_at(n, theirs), te = share_at(n, theirs + d);
    exchange2(buf + (size_t)ms * width, (size_t)(me - ms) * width, buf + (size_t)ts * width,
              (size_t)(te - ts) * width, MPI_DOUBLE, partner);
  }
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

void dl_dist_share_real(dl_real *buf, dl_real *scratch, size_t n, int have) {
  for (int d = 1; d < g_size; d <<= 1) {
    int partner = g_rank ^ d;
    double mine = have, theirs = 0;
    exchange(&mine, &theirs, 1, MPI_DOUBLE, sizeof(double), partner);
    exchange(buf, scratch, n, DL_REAL_IS_F64 ? MPI_DOUBLE : MPI_FLOAT, sizeof(dl_real), partner);
    if (!have && theirs != 0) {
      memcpy(buf, scratch, n * sizeof *buf);
      have = 1;
    }
  }
}

/* ---- sums in flight ---- */

typedef struct isum {
  dl_real *buf, *scratch;
  size_t n;
  int dist;               /* the level in flight: the partner is rank ^ dist */
  MPI_Request req[2];
} isum;
static isum *g_isums;
static int g_nisums, g_isum_cap, g_isum_done;
enum { MAX_ISUMS = 30000 }; /* tags stay below MPI's least MPI_TAG_UB, 32767 */

/* Posts level `dist` of sum i (its tag: i + 1, so that the levels of
 * different buckets with one partner never meet). */
static void isum_post(int i) {
  isum *q = &g_isums[i];
  int partner = g_rank ^ q->dist;
  int rc = MPI_Irecv(q->scratch, (int)q->n, DL_REAL_IS_F64 ? MPI_DOUBLE : MPI_FLOAT, partner, i + 1,
                     MPI_COMM_WORLD, &q->req[0]);
  if (rc == MPI_SUCCESS)
    rc = MPI_Isend(q->buf, (int)q->n, DL_REAL_IS_F64 ? MPI_DOUBLE : MPI_FLOAT, partner, i + 1,
                   MPI_COMM_WORLD, &q->req[1]);
  if (rc != MPI_SUCCESS) fail_mpi(rc, "starting a bucket's exchange", partner);
  g_bytes += (double)(q->n * sizeof(dl_real));
}

void dl_dist_isum_start(dl_real *buf, dl_real *scratch, size_t n) {
  if (g_size == 1) return;
  if (n > (size_t)0x7fffffff || g_nisums >= MAX_ISUMS)
    dl_dist_abort(1, "too many or too large gradient buckets (%d, %zu values)", g_nisums, n);
  if (g_nisums == g_isum_cap) {
    int cap = g_isum_cap ? 2 * g_isum_cap : 64;
    isum *q = realloc(g_isums, (size_t)cap * sizeof *q);
    if (!q) dl_dist_abort(1, "out of memory for the gradient buckets");
    g_isums = q;
    g_isum_cap = cap;
  }
  g_isums[g_nisums] = (isum){.buf = buf, .scratch = scratch, .n = n, .dist = 1};
  isum_post(g_nisums++);
}

/* Sum i's level arrived: add it and post the next, if any; 1 when done. */
static int isum_advance(int i) {
  isum *q = &g_isums[i];
  if (q->dist >= g_size) return 1;
  MPI_Status status[2]; /* not MPI_STATUSES_IGNORE: see exchange2 */
  int done = 0, rc = MPI_Testall(2, q->req, &done, status);
  if (rc != MPI_SUCCESS) fail_mpi(rc, "a bucket's exchange", g_rank ^ q->dist);
  if (!done) return 0;
  int partner = g_rank ^ q->dist;
  add_dl_real(q->buf, q->scratch, q->n, g_rank < partner);
  q->dist <<= 1;
  if (q->dist >= g_size) return 1;
  isum_post(i);
  return 0;
}

/* Advances every sum in flight; they finish roughly in the order started,
 * so those done at the front are skipped from then on. */
static void isum_sweep(void) {
  while (g_isum_done < g_nisums && isum_advance(g_isum_done)) g_isum_done++;
  for (int i = g_isum_done + 1; i < g_nisums; i++) isum_advance(i);
}

void dl_dist_isum_poll(void) {
  double t0 = now();
  isum_sweep();
  g_seconds += now() - t0;
}

void dl_dist_isum_wait(void) {
  double t0 = now(), limit = dl_dist_timeout(), deadline = t0 + limit;
  for (long spins = 0; g_isum_done < g_nisums; spins++) {
    isum_sweep();
    if (g_isum_done == g_nisums || spins < 20000) continue;
    if (now() > deadline)
      dl_dist_abort(1, "no answer from rank %d within %g s (DLNC_MPI_TIMEOUT): it died, hangs "
                    "or is far behind; ending the job", g_rank ^ g_isums[g_isum_done].dist, limit);
    struct timespec pause = {0, 20000};
    nanosleep(&pause, NULL);
  }
  g_nisums = g_isum_done = 0;
  g_seconds += now() - t0;
}

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
  free(g_isums);
  g_isums = NULL;
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
void dl_dist_share_real(dl_real *buf, dl_real *scratch, size_t n, int have) {
  (void)buf, (void)scratch, (void)n, (void)have;
}
void dl_dist_gather_f64(double *buf, int64_t n, size_t width) {
  (void)buf, (void)n, (void)width;
}
void dl_dist_isum_start(dl_real *buf, dl_real *scratch, size_t n) {
  (void)buf, (void)scratch, (void)n;
}
void dl_dist_isum_poll(void) {}
void dl_dist_isum_wait(void) {}
#endif

int dl_dist_all_ok(int ok) {
  double v = ok ? 0.0 : 1.0, scratch;
  dl_dist_sum_f64(&v, &scratch, 1);
  return v == 0.0;
}

void dl_dist_share(int64_t n, int64_t *lo, int64_t *hi) {
  int r = dl_dist_rank(), p = dl_dist_size();
  *lo = share_of(n, r, p);
  *hi = share_of(n, r + 1, p);
}
