/* dist.h: the trainer's processes (data-parallel training over MPI).
 *
 * Every MPI call of the runtime is in dist.c, behind this interface.  A
 * build without DL_MPI (`dlnc build` without --mpi) compiles dist.c to the
 * one-process versions, so the rest of the runtime has no #ifdef: one rank,
 * and a tree sum over one rank changes nothing.
 *
 * Sums are bit-identical for every process count because they follow one
 * fixed tree: rank r holds the sum of leaves [r*L, (r+1)*L) of S = P*L
 * leaves, and the ranks then add with partners at distance 1, 2, 4, ...
 * (recursive doubling), the lower rank's value on the left, which is the
 * balanced binary tree over the S leaves whatever P is.  MPI's own
 * reductions pick their algorithm by message size and process count, so
 * they would not give the same bits. */
#ifndef DL_DIST_H
#define DL_DIST_H
#include <stddef.h>
#include <stdint.h>
#include "dl_real.h"

/* Starts MPI in an MPI build (a no-op otherwise); the number of ranks and
 * this one's.  0, or -1 after a message. */
int dl_dist_init(int *argc, char ***argv);
int dl_dist_rank(void);
int dl_dist_size(void);
/* --shards' default: 8 in an MPI build (so the results of 1, 2, 4 and 8
 * processes agree without asking), 1 otherwise (a plain step). */
int dl_dist_default_shards(void);
/* Seconds any one exchange may wait for its partner before the job is
 * ended (a rank that died or hangs): DLNC_MPI_TIMEOUT, default 120. */
double dl_dist_timeout(void);

/* Recursive doubling (above): after it every rank holds the sum of every
 * rank's buf.  scratch holds n values.  P must be a power of 2. */
void dl_dist_sum_real(dl_real *buf, dl_real *scratch, size_t n);
void dl_dist_sum_f64(double *buf, double *scratch, size_t n);

/* Sharing out work that needs no fixed tree (the evaluation's batches):
 * rank r's contiguous share of n items is [r*n/P, (r+1)*n/P). */
void dl_dist_share(int64_t n, int64_t *lo, int64_t *hi);
/* buf holds n items of `width` doubles, and this rank has filled those of
 * its share: after it every rank holds all of them, copied, not added
 * (recursive doubling: at distance d a rank swaps the items of its group of
 * d ranks for the partner group's).  Waits with the sums' deadline; not
 * counted in dl_dist_stats, which describe the steps. */
void dl_dist_gather_f64(double *buf, int64_t n, size_t width);

/* Sums in flight, for the gradients' buckets while backward goes on (as
 * DDP's): each started sum is dl_dist_sum_real's recursive doubling on its
 * n values, advanced level by level whenever the ranks poll, with the same
 * additions, so the same bits.  Without MPI, or on one rank, a sum is done
 * when started.  Every rank starts the same sums in the same order. */
void dl_dist_isum_start(dl_real *buf, dl_real *scratch, size_t n);
/* Advances every started sum whose exchange has arrived; never waits. */
void dl_dist_isum_poll(void);
/* Waits (up to the timeout) until every started sum is done, then forgets
 * them. */
void dl_dist_isum_wait(void);

/* After it every rank holds the n values of a rank that had them (have);
 * all that have them must hold the same, and one at least must.  scratch
 * holds n values. */
void dl_dist_share_real(dl_real *buf, dl_real *scratch, size_t n, int have);

/* Every rank agrees that `ok` holds on all of them (1), or not (0): a
 * setup that failed on one rank stops all of them. */
int dl_dist_all_ok(int ok);

/* Ends every rank with `code`, after "rank R: " and the message on stderr
 * (in a one-process build: just exits). */
void dl_dist_abort(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* MPI_Finalize (a no-op without MPI). */
void dl_dist_finish(void);

/* --dist-stats: from now on each sum first waits for every rank (an
 * exchange of one value, timed apart), so that the sum's own time is the
 * transfer and the additions, not the wait for a slower rank. */
void dl_dist_measure(void);
/* Since start: the time in the sums, the time waiting for the other ranks
 * (with dl_dist_measure), the bytes this rank sent in the sums. */
void dl_dist_stats(double *seconds, double *wait, double *bytes);
#endif
