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
 * the same numbers.
 *
 * A model with batch norm runs its shards side by side instead
 * (trainer_lanes.c), because each shard's statistics are the global
 * batch's; their leaves then enter the same tree, in the same order. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pause */
#endif
#include "dist.h"
#include "trainer_internal.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_LEVELS = 24 }; /* S <= 2^16: log2 L + 1 partial sums, and room */
/* the weighted loss, right answers, decisions, ranks asked to stop */
enum { N_METRICS = 4 };

/* A partial sum: the gradients (packed, in the order slots say) and the
 * metrics of 2^level consecutive leaves. */
typedef struct partial {
  dl_real *g;
  double metric[N_METRICS];
  int level;
} partial;

/* A gradient tensor in the packed buffers: by when compute_grads finishes
 * it (the model's grad_ready, latest last), so that a bucket is a range. */
typedef struct slot {
  int tensor, ready;         /* its index in the table; grad_ready (0: at the end) */
  size_t at;                 /* its first value in the packed buffers         */
} slot;

/* A bucket: packed values [lo, hi), slots [first, last], exchanged as soon
 * as compute_grads announces its last gradient (ready; 0: at the end). */
typedef struct bucket {
  int first, last, ready;
  size_t lo, hi;
} bucket;

struct dl_shards {
  const dl_model_desc *m;
  int S, L, rank, size;
  size_t n_grad;             /* gradient values, all tensors                 */
  slot *slots;
  int n_slots;
  bucket *buckets;
  int n_buckets;
  int overlap;               /* exchange buckets during the last shard's backward */
  partial *leaf;             /* that shard's leaf, while it runs              */
  double leaf_w;             /* its weight; 0: an empty shard, zeros          */
  int next_bucket;           /* the first bucket not yet started              */
  partial stack[MAX_LEVELS];
  int depth;
  dl_real *scratch;          /* the partner's values in an exchange          */
  dl_lanes *lanes;           /* batch norm: the shards side by side, or NULL */
  dl_real *buffers;          /* the buffers and counters, packed, and room   */
  size_t n_buffers;          /* for the partner's (share_buffers)            */
  int64_t steps;             /* steps summed, for the statistics             */
  int stopping;              /* a rank was asked to stop by the last step    */
  /* DLNC_TEST_FAULT=die:R:N, hang:R:N or signal:R:N (tests/mpi only):
     rank R exits, stops answering or gets SIGTERM at its Nth step, to test
     that the others end, or stop together (fault_hang 0, 1, 2) */
  int fault_rank, fault_hang;
  int64_t fault_step;
};

static int is_pow2(int x) { return x > 0 && (x & (x - 1)) == 0; }

/* S must be a power of 2 (a balanced tree over its leaves), divisible by
 * P (every rank the same number of leaves), and not above the batch. */
static int check_counts(int S, int P, int batch) {
  if (!is_pow2(S) || S > 65536) {
    fprintf(stderr, "error: --shards %d: must be a power of 2 up to 65536 (the micro-shards' "
            "gradients are summed in a balanced binary tree)\n", S);
    return -1;
  }
  if (S % P) {
    /* the shard count is a power of 2: so must the process count be */
    if (is_pow2(P))
      fprintf(stderr, "error: --shards %d cannot be divided among %d processes: the process count "
              "must divide the shard count (at most %d processes, or --shards %d or more)\n", S, P,
              S, P);
    else
      fprintf(stderr, "error: --shards %d cannot be divided among %d processes: the process count "
              "must divide the shard count, a power of 2, so it must be a power of 2 too (1, 2, "
              "4, 8, ...)\n", S, P);
    return -1;
  }
  if (S > batch) {
    fprintf(stderr, "error: --shards %d (8 by default in an MPI build) is more than the %d rows "
            "of a batch: give a larger --batch or fewer --shards\n", S, batch);
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

/* Latest first (a larger grad_ready is final sooner: backward runs from
 * the last line), 0 (at the end) last, then table order. */
static int slot_order(const void *pa, const void *pb) {
  const slot *a = pa, *b = pb;
  int ka = a->ready ? a->ready : INT_MIN, kb = b->ready ? b->ready : INT_MIN;
  if (ka != kb) return ka > kb ? -1 : 1;
  return (a->tensor > b->tensor) - (a->tensor < b->tensor);
}

/* DLNC_MPI_BUCKET: the fewest values a bucket holds before a new one
 * starts (default 65536, 256 KB of floats: fewer, larger messages); 1 gives
 * a bucket per line with gradients (tests/mpi). */
static size_t min_bucket(void) {
  const char *v = getenv("DLNC_MPI_BUCKET");
  long n = v && *v ? strtol(v, NULL, 10) : 0;
  return n > 0 ? (size_t)n : 65536;
}

/* The packed order of the gradients and their buckets.  The order changes
 * no addition (each value is summed alone), only when it can be sent. */
static int layout(dl_shards *s) {
  const dl_model_desc *m = s->m;
  int n = 0;
  for (int i = 0; i < m->n_tensors; i++) n += m->tensors[i].kind == DL_T_GRAD;
  s->slots = calloc((size_t)n + 1, sizeof *s->slots);
  s->buckets = calloc((size_t)n + 1, sizeof *s->buckets);
  if (!s->slots || !s->buckets) return -1;
  for (int i = 0, k = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_GRAD) {
      s->slots[k] = (slot){.tensor = i, .ready = m->grad_ready ? m->grad_ready[k] : 0};
      k++;
    }
  s->n_slots = n;
  qsort(s->slots, (size_t)n, sizeof *s->slots, slot_order);
  size_t at = 0, least = min_bucket();
  for (int k = 0; k < n; k++) {
    bucket *b = s->n_buckets ? &s->buckets[s->n_buckets - 1] : NULL;
    /* a new bucket where the announcement differs and this one is big enough */
    if (!b || (s->slots[k].ready != s->slots[k - 1].ready && b->hi - b->lo >= least &&
               s->n_buckets < 30000)) {
      b = &s->buckets[s->n_buckets++];
      *b = (bucket){.first = k, .lo = at};
    }
    s->slots[k].at = at;
    at += m->tensors[s->slots[k].tensor].numel;
    b->last = k;
    b->hi = at;
    b->ready = s->slots[k].ready; /* its last slot's: the latest to be final */
  }
  return 0;
}

static void read_fault(dl_shards *s) {
  const char *f = getenv("DLNC_TEST_FAULT");
  char kind[8] = "";
  long long step = 0;
  s->fault_rank = -1;
  if (f && sscanf(f, "%7[a-z]:%d:%lld", kind, &s->fault_rank, &step) == 3) {
    s->fault_hang = !strcmp(kind, "hang") ? 1 : !strcmp(kind, "signal") ? 2 : 0;
    s->fault_step = step;
  } else {
    s->fault_rank = -1;
  }
}

/* The injected fault, if this rank is to have it at this step. */
static void maybe_fault(const dl_shards *s) {
  if (s->fault_rank != s->rank || s->steps + 1 != s->fault_step) return;
  static const char *const what[] = {"exiting", "hanging", "raising SIGTERM"};
  fprintf(stderr, "rank %d: DLNC_TEST_FAULT: %s at step %lld\n", s->rank, what[s->fault_hang],
          (long long)s->fault_step);
  if (s->fault_hang == 2) {
    raise(SIGTERM); /* caught (trainer_signal.c): the step goes on */
    return;
  }
  if (!s->fault_hang) _exit(3);
  for (;;) pause();
}

dl_shards *dl_tr_shards_open(const dl_model_desc *m, int S, int batch) {
  int P = dl_dist_size();
  if (check_counts(S, P, batch)) return NULL;
  dl_shards *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->m = m;
  s->S = S;
  s->size = P;
  s->rank = dl_dist_rank();
  s->L = S / P;
  s->n_grad = grad_values(m);
  read_fault(s);
  const char *ov = getenv("DLNC_MPI_OVERLAP");
  /* with lanes every shard's backward ends together: nothing to overlap */
  s->overlap = P > 1 && m->grad_ready && !(ov && !strcmp(ov, "0")) && !dl_tr_lanes_needed(m);
  size_t bytes = (s->n_grad ? s->n_grad : 1) * sizeof(dl_real);
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_BUFFER || m->tensors[i].kind == DL_T_COUNT)
      s->n_buffers += m->tensors[i].numel;
  int ok = layout(s) == 0 && (s->scratch = malloc(bytes)) != NULL &&
           (s->buffers = malloc((2 * s->n_buffers + 1) * sizeof(dl_real))) != NULL;
  for (int i = 0; ok && i < MAX_LEVELS; i++) ok = (s->stack[i].g = malloc(bytes)) != NULL;
  if (!ok) {
    fprintf(stderr, "error: out of memory for the micro-shards' gradients (%zu values)\n",
            s->n_grad);
    dl_tr_shards_close(s);
    return NULL;
  }
  if (dl_tr_lanes_needed(m) && !(s->lanes = dl_tr_lanes_open(m, s->L, (batch + S - 1) / S))) {
    dl_tr_shards_close(s);
    return NULL;
  }
  return s;
}

void dl_tr_shards_close(dl_shards *s) {
  if (!s) return;
  for (int i = 0; i < MAX_LEVELS; i++) free(s->stack[i].g);
  dl_tr_lanes_close(s->lanes);
  free(s->buffers);
  free(s->scratch);
  free(s->slots);
  free(s->buckets);
  free(s);
}

/* Slots [first, last] of the gradients compute_grads wrote, times w,
 * into the leaf g (w 0: zeros, whatever the context holds). */
static void pack(const dl_shards *s, const dl_ctx *ctx, dl_real *g, double w, int first, int last) {
  dl_real wr = (dl_real)w;
  for (int k = first; k <= last; k++) {
    const dl_tensor_desc *t = &s->m->tensors[s->slots[k].tensor];
    const dl_real *src = ctx->state + t->offset;
    dl_real *dst = g + s->slots[k].at;
    if (w == 0) memset(dst, 0, t->numel * sizeof *dst);
    else
      for (size_t i = 0; i < t->numel; i++) dst[i] = src[i] * wr;
  }
}

/* Adds the top two partial sums while they cover equally many leaves: the
 * balanced tree, built left to right (grads 0: the metrics only, the
 * gradients being summed bucket by bucket already). */
static void fold(dl_shards *s, int grads) {
  while (s->depth >= 2 && s->stack[s->depth - 1].level == s->stack[s->depth - 2].level) {
    partial *a = &s->stack[s->depth - 2], *b = &s->stack[s->depth - 1];
    for (size_t k = 0; grads && k < s->n_grad; k++) a->g[k] = a->g[k] + b->g[k];
    for (int k = 0; k < N_METRICS; k++) a->metric[k] = a->metric[k] + b->metric[k];
    a->level++;
    s->depth--; /* b's buffer stays in its slot for the next leaf */
  }
}

/* The tree's root back into the model's gradients. */
static void unpack(const dl_shards *s, dl_ctx *ctx, const dl_real *g) {
  for (int k = 0; k < s->n_slots; k++) {
    const dl_tensor_desc *t = &s->m->tensors[s->slots[k].tensor];
    memcpy(ctx->state + t->offset, g + s->slots[k].at, t->numel * sizeof *g);
  }
}

/* The last shard's bucket b is final: into its leaf, through the rest of
 * this rank's tree (the leaf is the last, so every partial on the stack
 * takes it in, top first: fold's additions on this range), and off to the
 * other ranks. */
static void start_bucket(dl_shards *s, const dl_ctx *ctx, int b) {
  const bucket *u = &s->buckets[b];
  pack(s, ctx, s->leaf->g, s->leaf_w, u->first, u->last);
  for (int i = s->depth - 1; i >= 0; i--) {
    dl_real *a = s->stack[i].g, *c = s->stack[i + 1].g;
    for (size_t k = u->lo; k < u->hi; k++) a[k] = a[k] + c[k];
  }
  dl_dist_isum_start(s->stack[0].g + u->lo, s->scratch + u->lo, u->hi - u->lo);
}

/* compute_grads's DL_GRADS_READY: the buckets now final go. */
static void on_ready(dl_ctx *ctx, int k) {
  dl_shards *s = ctx->grads_arg;
  while (s->next_bucket < s->n_buckets && s->buckets[s->next_bucket].ready >= k &&
         s->buckets[s->next_bucket].ready > 0)
    start_bucket(s, ctx, s->next_bucket++);
  dl_dist_isum_poll();
}

/* The leaf on top of the stack is complete: its metrics in, and the tree
 * folded (its gradients too, unless they went bucket by bucket). */
static void close_leaf(dl_shards *s, const double metric[N_METRICS], int grads) {
  partial *p = &s->stack[s->depth++];
  memcpy(p->metric, metric, sizeof p->metric);
  p->level = 0;
  fold(s, grads);
}

/* A short last batch left shard m no rows: its leaf is zeros. */
static void empty_shard(dl_shards *s, const dl_ctx *ctx, int last) {
  static const double none[N_METRICS];
  if (!last) memset(s->stack[s->depth].g, 0, s->n_grad * sizeof(dl_real));
  for (int b = 0; last && b < s->n_buckets; b++) start_bucket(s, ctx, b);
  close_leaf(s, none, !last);
}

/* This shard's metrics: its weighted loss, and train_acc's counts. */
static void shard_metrics(const dl_ctx *ctx, int n, double loss, double w, int count_acc,
                          double metric[N_METRICS]) {
  metric[0] = loss * w;
  if (count_acc) {
    int64_t c = 0, t = 0;
    dl_tr_count_correct(ctx, n, &c, &t);
    metric[1] = (double)c;
    metric[2] = (double)t;
  }
}

/* Micro-shard m: its rows gathered, its gradient and metrics as a leaf.
 * The rank's last shard (with overlap) sends its buckets as backward
 * finishes them.  first: no shard of this rank has run yet this step.
 * 1 if it had rows. */
static int run_shard(dl_shards *s, dl_ctx *ctx, const dl_dataset *d, const int64_t *rows, int nb,
                     int m, int first, int count_acc) {
  int64_t lo = (int64_t)m * nb / s->S, hi = (int64_t)(m + 1) * nb / s->S;
  int n = (int)(hi - lo);
  double metric[N_METRICS] = {0};
  int last = s->overlap && m == s->rank * s->L + s->L - 1;
  if (last) {
    s->leaf = &s->stack[s->depth];
    s->leaf_w = n ? (double)n / (double)nb : 0.0;
    s->next_bucket = 0;
  }
  if (n == 0) {
    empty_shard(s, ctx, last);
    return 0;
  }
  dl_dataset_gather_pool(ctx->pool, d, rows + lo, n, ctx->x, ctx->y_class, ctx->y_real);
  int track = ctx->track_stats;
  /* spectral norm's power iteration once per step and rank: it reads only
     the weights, so every rank's first shard moves u and v alike */
  ctx->track_stats = track && first;
  ctx->shard = m;
  ctx->grads_ready = last ? on_ready : NULL;
  ctx->grads_arg = s;
  double w = (double)n / (double)nb, loss = s->m->compute_grads(ctx, n);
  ctx->grads_ready = NULL;
  ctx->track_stats = track;
  while (last && s->next_bucket < s->n_buckets) start_bucket(s, ctx, s->next_bucket++);
  shard_metrics(ctx, n, loss, w, count_acc, metric);
  if (!last && s->n_slots) pack(s, ctx, s->stack[s->depth].g, w, 0, s->n_slots - 1);
  close_leaf(s, metric, !last);
  return 1;
}

/* With batch norm: the rank's shards side by side, each in its lane's
 * context (trainer_lanes.c), then their leaves in order.  Every lane runs
 * the step's power iterations and moves the running statistics alike (from
 * the same state, with the global batch's statistics), so any lane's
 * buffers are the step's.  1 if a shard had rows. */
static int run_lanes(dl_shards *s, dl_ctx *ctx, const dl_dataset *d, const int64_t *rows, int nb,
                     int update, int count_acc) {
  dl_tr_lanes_load(s->lanes, ctx);
  for (int j = 0; update <= 0 && j < s->L; j++) { /* an update after the first: the same rows */
    int m = s->rank * s->L + j;
    int64_t lo = (int64_t)m * nb / s->S, hi = (int64_t)(m + 1) * nb / s->S;
    int n = (int)(hi - lo);
    dl_ctx *c = dl_tr_lanes_ctx(s->lanes, j);
    c->shard = m;
    dl_tr_lanes_set(s->lanes, j, n, (double)n / (double)nb, nb);
    if (n) dl_dataset_gather_pool(ctx->pool, d, rows + lo, n, c->x, c->y_class, c->y_real);
  }
  dl_tr_lanes_run(s->lanes, update < 0 ? s->m->compute_grads : s->m->updates[update].compute_grads);
  for (int j = 0; j < s->L; j++) {
    int m = s->rank * s->L + j;
    int n = (int)((int64_t)(m + 1) * nb / s->S - (int64_t)m * nb / s->S);
    if (!n) {
      empty_shard(s, ctx, 0);
      continue;
    }
    const dl_ctx *c = dl_tr_lanes_ctx(s->lanes, j);
    double metric[N_METRICS] = {0}, w = (double)n / (double)nb;
    shard_metrics(c, n, dl_tr_lanes_loss(s->lanes, j), w, count_acc, metric);
    if (s->n_slots) pack(s, c, s->stack[s->depth].g, w, 0, s->n_slots - 1);
    close_leaf(s, metric, 1);
  }
  return dl_tr_lanes_store(s->lanes, ctx) == 0;
}

/* A batch of fewer rows than processes left some rank no rows, so it moved
 * no running statistics and ran no power iteration: the buffers and
 * counters of a rank that did (all such are the same) go to every rank. */
static void share_buffers(dl_shards *s, dl_ctx *ctx, int have) {
  const dl_model_desc *m = s->m;
  size_t at = 0;
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_BUFFER || m->tensors[i].kind == DL_T_COUNT) {
      memcpy(s->buffers + at, ctx->state + m->tensors[i].offset, m->tensors[i].numel * sizeof(dl_real));
      at += m->tensors[i].numel;
    }
  dl_dist_share_real(s->buffers, s->buffers + s->n_buffers, s->n_buffers, have);
  at = 0;
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_BUFFER || m->tensors[i].kind == DL_T_COUNT) {
      memcpy(ctx->state + m->tensors[i].offset, s->buffers + at, m->tensors[i].numel * sizeof(dl_real));
      at += m->tensors[i].numel;
    }
}

double dl_tr_shards_grads(dl_shards *s, dl_ctx *ctx, const dl_dataset *d, const int64_t *rows,
                          int nb, int update, int count_acc, int64_t *correct, int64_t *total) {
  s->depth = 0;
  if (update <= 0) maybe_fault(s);
  int ran = 0;
  if (s->lanes) ran = run_lanes(s, ctx, d, rows, nb, update, count_acc);
  for (int j = 0; !s->lanes && j < s->L; j++)
    ran |= run_shard(s, ctx, d, rows, nb, s->rank * s->L + j, !ran, count_acc);
  ctx->shard = 0;
  if (nb < s->size && s->n_buffers) share_buffers(s, ctx, ran);
  partial *root = &s->stack[0];
  double scratch[N_METRICS];
  if (!s->overlap) dl_dist_sum_real(root->g, s->scratch, s->n_grad);
  /* a signal's vote travels with the metrics, so that every rank knows of
     it after the same step (dl_tr_shards_stopping) */
  root->metric[3] = dl_tr_stop_signal() != 0;
  dl_dist_sum_f64(root->metric, scratch, N_METRICS);
  s->stopping = root->metric[3] > 0;
  if (s->overlap) dl_dist_isum_wait();
  unpack(s, ctx, root->g);
  s->steps += update <= 0;
  if (count_acc) {
    *correct += (int64_t)root->metric[1];
    *total += (int64_t)root->metric[2];
  }
  return root->metric[0];
}

int dl_tr_shards_stopping(const dl_shards *s) { return s->stopping; }

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
