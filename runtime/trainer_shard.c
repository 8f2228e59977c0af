/* trainer_shard.c: a training step's gradient over micro-shards and ranks
 * (`train --shards S`, and `mpirun -np P BIN train` in an MPI build).
 *
 * The global batch of nb rows is cut into S micro-shards, shard m the rows
 * [m*nb/S, (m+1)*nb/S) of the batch; rank r of P runs shards [r*L, (r+1)*L),
 * L = S/P, one after another through the model's compute_grads (gradient
 * accumulation), each gradient weighted by its share of the rows.  The S
 * weighted gradients are summed in the balanced binary tree over the S
 * leaves: on each rank over its L leaves (a stack of partial sums, one per
 * level, so memory grows with log L), then across ranks by dist.c's
 * recursive doubling, which continues the same tree.  So the sum, and
 * every weight after the update, is the same bits for P = 1, 2, 4, ... and
 * any thread count: it depends on S, never on P.
 *
 * What keys the randomness: dropout and noise hash (seed, step, site,
 * element), the element counted within the shard, and ctx->shard = m
 * joins the stream (dl_ops.h): a pure function of the global sample's
 * place in the batch, whichever rank draws it.  The loss and train_acc's
 * counts are summed in the same tree (in double), so every rank reports
 * the same numbers. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pause */
#endif
#include "dist.h"
#include "trainer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_LEVELS = 24 }; /* S <= 2^16: log2 L + 1 partial sums, and room */
enum { N_METRICS = 3 };   /* the weighted loss, right answers, decisions    */

/* A partial sum: the gradients (packed in tensor-table order) and the
 * metrics of 2^level consecutive leaves. */
typedef struct partial {
  dl_real *g;
  double metric[N_METRICS];
  int level;
} partial;

struct dl_shards {
  const dl_model_desc *m;
  int S, L, rank, size;
  size_t n_grad;             /* gradient values, all tensors                 */
  partial stack[MAX_LEVELS];
  int depth;
  dl_real *scratch;          /* the partner's values in an exchange          */
  int64_t steps;             /* steps summed, for the statistics             */
  /* DLNC_TEST_FAULT=die:R:N or hang:R:N (tests/mpi only): rank R exits or
     stops answering at its Nth step, to test that the others end */
  int fault_rank, fault_hang;
  int64_t fault_step;
};

static int is_pow2(int x) { return x > 0 && (x & (x - 1)) == 0; }

/* A model that can be cut into micro-shards: its forward pass treats the
 * samples of a batch independently and a step is one update. */
static int check_model(const dl_model_desc *m, int S, int P) {
  const char *src = m->source ? m->source : m->name;
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_COUNT) {
      fprintf(stderr, "%s:%d: error: batch_norm is not yet supported with --shards %d over %d "
              "process%s: its statistics would be each micro-shard's, not the global batch's "
              "(SyncBatchNorm); use layer_norm or group_norm, or --shards 1 on one process\n",
              src, m->tensors[i].line, S, P, P == 1 ? "" : "es");
      return -1;
    }
  const char *why = m->stateful ? "a recurrent layer with carry = true streams its rows from "
                                  "batch to batch"
                    : m->n_updates ? "a train block with updates reuses one update's forward "
                                     "pass in the next, over the whole batch"
                                   : NULL;
  if (why) {
    fprintf(stderr, "%s: error: --shards %d over %d process%s: %s, which micro-shards cannot "
            "split (use --shards 1 on one process)\n", src, S, P, P == 1 ? "" : "es", why);
    return -1;
  }
  return 0;
}

/* S must be a power of 2 (a balanced tree over its leaves), divisible by
 * P (every rank the same number of leaves), and not above the batch. */
static int check_counts(int S, int P, int batch) {
  if (!is_pow2(S) || S > 65536) {
    fprintf(stderr, "error: --shards %d: must be a power of 2 up to 65536 (the micro-shards' "
            "gradients are summed in a balanced binary tree)\n", S);
    return -1;
  }
  if (S % P) {
    fprintf(stderr, "error: --shards %d cannot be divided among %d processes: the process count "
            "must divide the shard count (a power of 2 up to %d processes, or --shards a "
            "power of 2 that %d divides)\n", S, P, S, P);
    return -1;
  }
  if (S > batch) {
    fprintf(stderr, "error: --shards %d is more than the %d rows of a batch\n", S, batch);
    return -1;
  }
  return 0;
}

static size_t grad_values(const dl_model_desc *m) {
  size_t n = 0;
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_GRAD) n += m->tensors[i].numel;
  return n;
}

static void read_fault(dl_shards *s) {
  const char *f = getenv("DLNC_TEST_FAULT");
  char kind[8] = "";
  long long step = 0;
  s->fault_rank = -1;
  if (f && sscanf(f, "%7[a-z]:%d:%lld", kind, &s->fault_rank, &step) == 3) {
    s->fault_hang = !strcmp(kind, "hang");
    s->fault_step = step;
  } else {
    s->fault_rank = -1;
  }
}

/* The injected fault, if this rank is to have it at this step. */
static void maybe_fault(const dl_shards *s) {
  if (s->fault_rank != s->rank || s->steps + 1 != s->fault_step) return;
  fprintf(stderr, "rank %d: DLNC_TEST_FAULT: %s at step %lld\n", s->rank,
          s->fault_hang ? "hanging" : "exiting", (long long)s->fault_step);
  if (!s->fault_hang) _exit(3);
  for (;;) pause();
}

dl_shards *dl_tr_shards_open(const dl_model_desc *m, int S, int batch) {
  int P = dl_dist_size();
  if (check_counts(S, P, batch) || check_model(m, S, P)) return NULL;
  dl_shards *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->m = m;
  s->S = S;
  s->size = P;
  s->rank = dl_dist_rank();
  s->L = S / P;
  s->n_grad = grad_values(m);
  read_fault(s);
  size_t bytes = (s->n_grad ? s->n_grad : 1) * sizeof(dl_real);
  int ok = (s->scratch = malloc(bytes)) != NULL;
  for (int i = 0; ok && i < MAX_LEVELS; i++) ok = (s->stack[i].g = malloc(bytes)) != NULL;
  if (!ok) {
    fprintf(stderr, "error: out of memory for the micro-shards' gradients (%zu values)\n",
            s->n_grad);
    dl_tr_shards_close(s);
    return NULL;
  }
  return s;
}

void dl_tr_shards_close(dl_shards *s) {
  if (!s) return;
  for (int i = 0; i < MAX_LEVELS; i++) free(s->stack[i].g);
  free(s->scratch);
  free(s);
}

/* The gradients compute_grads just wrote, times w, as a new leaf. */
static void push_leaf(dl_shards *s, const dl_ctx *ctx, double w, const double metric[N_METRICS]) {
  partial *p = &s->stack[s->depth++];
  dl_real wr = (dl_real)w, *g = p->g;
  for (int i = 0; i < s->m->n_tensors; i++) {
    const dl_tensor_desc *t = &s->m->tensors[i];
    if (t->kind != DL_T_GRAD) continue;
    const dl_real *src = ctx->state + t->offset;
    for (size_t k = 0; k < t->numel; k++) g[k] = src[k] * wr;
    g += t->numel;
  }
  memcpy(p->metric, metric, sizeof p->metric);
  p->level = 0;
}

/* Adds the top two partial sums while they cover equally many leaves: the
 * balanced tree, built left to right. */
static void fold(dl_shards *s) {
  while (s->depth >= 2 && s->stack[s->depth - 1].level == s->stack[s->depth - 2].level) {
    partial *a = &s->stack[s->depth - 2], *b = &s->stack[s->depth - 1];
    for (size_t k = 0; k < s->n_grad; k++) a->g[k] = a->g[k] + b->g[k];
    for (int k = 0; k < N_METRICS; k++) a->metric[k] = a->metric[k] + b->metric[k];
    a->level++;
    s->depth--; /* b's buffer stays in its slot for the next leaf */
  }
}

/* The tree's root back into the model's gradients. */
static void unpack(const dl_shards *s, dl_ctx *ctx, const dl_real *g) {
  for (int i = 0; i < s->m->n_tensors; i++) {
    const dl_tensor_desc *t = &s->m->tensors[i];
    if (t->kind != DL_T_GRAD) continue;
    memcpy(ctx->state + t->offset, g, t->numel * sizeof *g);
    g += t->numel;
  }
}

/* Micro-shard m: its rows gathered, its gradient and metrics as a leaf. */
static void run_shard(dl_shards *s, dl_ctx *ctx, const dl_dataset *d, const int64_t *rows, int nb,
                      int m, int first, int count_acc) {
  int64_t lo = (int64_t)m * nb / s->S, hi = (int64_t)(m + 1) * nb / s->S;
  int n = (int)(hi - lo);
  double metric[N_METRICS] = {0};
  if (n == 0) { /* a short last batch: an empty shard adds zeros */
    partial *p = &s->stack[s->depth++];
    memset(p->g, 0, s->n_grad * sizeof *p->g);
    memset(p->metric, 0, sizeof p->metric);
    p->level = 0;
    fold(s);
    return;
  }
  dl_dataset_gather_pool(ctx->pool, d, rows + lo, n, ctx->x, ctx->y_class, ctx->y_real);
  int track = ctx->track_stats;
  /* spectral norm's power iteration once per step and rank: it reads only
     the weights, so every rank's first shard moves u and v alike */
  ctx->track_stats = track && first;
  ctx->shard = m;
  double w = (double)n / (double)nb, loss = s->m->compute_grads(ctx, n);
  ctx->track_stats = track;
  metric[0] = loss * w;
  if (count_acc) {
    int64_t c = 0, t = 0;
    dl_tr_count_correct(ctx, n, &c, &t);
    metric[1] = (double)c;
    metric[2] = (double)t;
  }
  push_leaf(s, ctx, w, metric);
  fold(s);
}

double dl_tr_shards_grads(dl_shards *s, dl_ctx *ctx, const dl_dataset *d, const int64_t *rows,
                          int nb, int count_acc, int64_t *correct, int64_t *total) {
  s->depth = 0;
  maybe_fault(s);
  for (int j = 0; j < s->L; j++)
    run_shard(s, ctx, d, rows, nb, s->rank * s->L + j, j == 0, count_acc);
  ctx->shard = 0;
  partial *root = &s->stack[0];
  double scratch[N_METRICS];
  dl_dist_sum_real(root->g, s->scratch, s->n_grad);
  dl_dist_sum_f64(root->metric, scratch, N_METRICS);
  unpack(s, ctx, root->g);
  s->steps++;
  if (count_acc) {
    *correct += (int64_t)root->metric[1];
    *total += (int64_t)root->metric[2];
  }
  return root->metric[0];
}

void dl_tr_shards_report(const dl_shards *s) {
  double sec, wait, bytes;
  dl_dist_stats(&sec, &wait, &bytes);
  if (!s->steps) return;
  double mb = bytes / 1e6, steps = (double)s->steps;
  fprintf(stderr, "shards: %d over %d process%s, %d per process; a step: exchange %.3f ms "
          "(%.3f MB sent, %.3f ms per MB), waiting for the other ranks %.3f ms\n", s->S, s->size,
          s->size == 1 ? "" : "es", s->L, 1e3 * sec / steps, mb / steps,
          mb > 0 ? 1e3 * sec / mb : 0.0, 1e3 * wait / steps);
}
