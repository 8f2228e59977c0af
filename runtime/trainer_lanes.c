/* trainer_lanes.c: a rank's micro-shards side by side, so that batch norm's
 * statistics are the global batch's (SyncBatchNorm's meaning).
 *
 * trainer_shard.c runs a rank's shards one after another, each to its end.
 * A model with batch norm cannot: a shard's statistics at a batch_norm
 * layer are sums over every shard's rows at that layer, known only when
 * every shard has got there, and so are its backward's sums; nor can a train block's updates, whose forward passes
 * reuse what the update before computed for the same rows, nor recurrent
 * layers with carry = true, whose rows start from the state the same rows
 * of the batch before ended with (shard j holds the same rows of every
 * full batch, so its lane's context keeps their states).  Here each of
 * the rank's L shards is a lane: a context of its own (activations, and a
 * copy of the state, so that its gradients are its own) and a thread of its
 * own.  The threads take turns; exactly one runs at a time, until its next
 * DL_BATCH_SUM or the end of compute_grads.  When every lane waits at the
 * same sum, the values of the L lanes are added in the balanced tree over
 * them, then across the ranks by dist.c's recursive doubling, which
 * continues the same tree over all S shards, and every lane goes on with
 * the total.  So the statistics, like the gradients, are the same bits for
 * any process count at the same S.
 *
 * Why threads and not makecontext/swapcontext: ASan and TSan follow threads;
 * they only partly follow stack switches.  The threads never run at once, so
 * the pool, the generated code and the rest of the runtime see one caller at
 * a time, as without lanes. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pthread_sigmask */
#endif
#include "dist.h"
#include "trainer_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lane {
  struct dl_lanes *owner;
  dl_ctx *ctx;
  pthread_t thread;
  int started;
  sem_t go;                 /* the owner lets this lane run              */
  int cpu;                  /* the CPU it is held on (hold_cpu), or -1    */
  int n;                    /* its rows this step; 0: an empty shard      */
  double w;                 /* its share of the global batch's rows       */
  double loss;              /* compute_grads's                            */
  double *v;                /* the sum it waits at (k values), or NULL:   */
  size_t k;                 /* it has finished                            */
  int weighted;
} lane;

typedef struct sum_log {
  double (*compute_grads)(dl_ctx *ctx, int n); /* whose sums; NULL: unused */
  size_t *k;                /* each sum's values                         */
  int *weighted;            /* and whether it is weighted                */
  int n, logged;            /* sums so far; 1 once a whole run is in     */
} sum_log;

struct dl_lanes {
  const dl_model_desc *m;
  double (*compute_grads)(dl_ctx *ctx, int n); /* the model's, or an update's */
  int L, quit;
  lane *lanes;
  sem_t back;               /* a lane has stopped: at a sum or at its end */
  int back_ok;
  size_t cap;               /* the most values one sum may have           */
  double *leaves;           /* L * cap: the tree's leaves                  */
  double *scratch;          /* cap: the partner's, in dist.c               */
  /* A step's sums in order, for a step in which this rank's shards are all
     empty and it must still take part: one log for each compute_grads
     (the model's, or each update's, whose sums differ), of log_cap. */
  sum_log logs[DL_MAX_UPDATES + 1];
  int n_logs, log_cap;
#ifdef __linux__
  cpu_set_t owner_cpus;     /* the owner's CPUs, while hold_cpu holds it  */
  int held;
#endif
};

/* sem_wait through signals: the trainer's handlers only set a flag. */
static void wait_sem(sem_t *s) {
  while (sem_wait(s) != 0 && errno == EINTR) {
  }
}

/* ctx->batch_sum: stop here until the owner has added the sums. */
static void lane_sum(dl_ctx *ctx, double *v, size_t k, int weighted) {
  lane *l = ctx->batch_sum_arg;
  l->v = v;
  l->k = k;
  l->weighted = weighted;
  sem_post(&l->owner->back);
  wait_sem(&l->go);
}

static void *lane_main(void *arg) {
  lane *l = arg;
  for (;;) {
    wait_sem(&l->go);
    if (l->owner->quit) return NULL;
    l->loss = l->owner->compute_grads(l->ctx, l->n);
    l->v = NULL;
    sem_post(&l->owner->back);
  }
}

/* The most values a sum can have: batch norm's backward sums 2 per
 * channel, and a batch norm's channels are its running mean's. */
static size_t sum_capacity(const dl_model_desc *m) {
  size_t most = 1;
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_BUFFER && 2 * m->tensors[i].numel > most)
      most = 2 * m->tensors[i].numel;
  return most;
}

int dl_tr_lanes_needed(const dl_model_desc *m) {
  if (m->n_updates) return 1; /* an update reuses the forward pass of the one before */
  if (m->stateful) return 1;  /* carry = true: a shard's rows continue its rows of the batch before */
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].kind == DL_T_COUNT) return 1; /* batch norm's num_batches_tracked */
  return 0;
}

void dl_tr_lanes_close(dl_lanes *z) {
  if (!z) return;
  z->quit = 1;
  for (int j = 0; z->lanes && j < z->L; j++) {
    lane *l = &z->lanes[j];
    if (l->started) {
      sem_post(&l->go);
      pthread_join(l->thread, NULL);
      sem_destroy(&l->go);
    }
    dl_ctx_free(l->ctx);
  }
  if (z->back_ok) sem_destroy(&z->back);
  free(z->lanes);
  free(z->leaves);
  free(z->scratch);
  for (int i = 0; i < z->n_logs; i++) {
    free(z->logs[i].k);
    free(z->logs[i].weighted);
  }
  free(z);
}

/* The lanes' threads, with every signal blocked (the main thread takes them). */
static int start_threads(dl_lanes *z) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int ok = 1;
  for (int j = 0; ok && j < z->L; j++) {
    lane *l = &z->lanes[j];
    ok = sem_init(&l->go, 0, 0) == 0;
    if (ok && pthread_create(&l->thread, NULL, lane_main, l) != 0) {
      sem_destroy(&l->go);
      ok = 0;
    }
    l->started = ok;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return ok ? 0 : -1;
}

dl_lanes *dl_tr_lanes_open(const dl_model_desc *m, int L, int rows) {
  dl_lanes *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  z->m = m;
  z->L = L;
  z->cap = sum_capacity(m);
  z->log_cap = 4 * m->n_tensors + 4; /* 3 sums per batch norm: 2 forward, 1 backward */
  z->lanes = calloc((size_t)L, sizeof *z->lanes);
  z->leaves = malloc((size_t)L * z->cap * sizeof *z->leaves);
  z->scratch = malloc(z->cap * sizeof *z->scratch);
  int ok = z->lanes && z->leaves && z->scratch;
  for (z->n_logs = 0; ok && z->n_logs < 1 + m->n_updates && z->n_logs <= DL_MAX_UPDATES; z->n_logs++) {
    sum_log *g = &z->logs[z->n_logs];
    g->k = malloc((size_t)z->log_cap * sizeof *g->k);
    g->weighted = malloc((size_t)z->log_cap * sizeof *g->weighted);
    ok = g->k && g->weighted;
  }
  if (ok) z->back_ok = ok = sem_init(&z->back, 0, 0) == 0;
  char err[256] = "out of memory";
  for (int j = 0; ok && j < L; j++) {
    lane *l = &z->lanes[j];
    l->owner = z;
    l->cpu = -1;
    ok = (l->ctx = dl_ctx_new(m, rows, err, sizeof err)) != NULL;
    if (ok) {
      l->ctx->batch_sum = lane_sum;
      l->ctx->batch_sum_arg = l;
    }
  }
  if (ok && start_threads(z)) {
    snprintf(err, sizeof err, "cannot start the micro-shards' threads");
    ok = 0;
  }
  if (!ok) {
    fprintf(stderr, "error: %d micro-shards side by side: %s\n", L, err);
    dl_tr_lanes_close(z);
    return NULL;
  }
  return z;
}

dl_ctx *dl_tr_lanes_ctx(dl_lanes *z, int j) { return z->lanes[j].ctx; }

void dl_tr_lanes_set(dl_lanes *z, int j, int n, double w, int batch_rows) {
  lane *l = &z->lanes[j];
  l->n = n;
  l->w = w;
  l->ctx->batch_rows = batch_rows;
}

/* The state compute_grads reads (parameters, buffers, counters) from the
 * trainer's context into every lane's. */
void dl_tr_lanes_load(dl_lanes *z, const dl_ctx *from) {
  const dl_model_desc *m = z->m;
  for (int j = 0; j < z->L; j++) {
    dl_ctx *c = z->lanes[j].ctx;
    /* (an update's forward reuses what the update before computed from
       weights it did not change: the same here as in the trainer's) */
    for (int i = 0; i < m->n_tensors; i++) {
      const dl_tensor_desc *t = &m->tensors[i];
      if (t->kind == DL_T_PARAM || t->kind == DL_T_BUFFER || t->kind == DL_T_COUNT)
        memcpy(c->state + t->offset, from->state + t->offset, t->numel * sizeof(dl_real));
    }
    c->step = from->step;
    c->seed = from->seed;
    c->lr = from->lr;
    c->train_mode = from->train_mode;
    c->carry = from->carry;
    c->track_stats = from->track_stats;
    c->pool = from->pool;
  }
}

/* What compute_grads changed besides the gradients (running statistics,
 * their counters, spectral norm's vectors), the same in every lane that
 * ran, back into the trainer's context.  0, or -1 if no lane ran. */
int dl_tr_lanes_store(dl_lanes *z, dl_ctx *to) {
  const dl_model_desc *m = z->m;
  for (int j = 0; j < z->L; j++) {
    if (!z->lanes[j].n) continue;
    const dl_ctx *c = z->lanes[j].ctx;
    for (int i = 0; i < m->n_tensors; i++) {
      const dl_tensor_desc *t = &m->tensors[i];
      if (t->kind == DL_T_BUFFER || t->kind == DL_T_COUNT)
        memcpy(to->state + t->offset, c->state + t->offset, t->numel * sizeof(dl_real));
    }
    return 0;
  }
  return -1;
}

double dl_tr_lanes_loss(const dl_lanes *z, int j) { return z->lanes[j].loss; }

/* The lanes take turns, each waking the next and going to sleep.  Linux
 * wakes a thread on an idle CPU when there is one, so on an idle machine
 * every turn moved to the other core, away from the data in its cache:
 * fashion_resnet at --shards 2 on one process spent 27% more CPU time than
 * at --shards 1 (29,549 migrations in an epoch), and 5% more pinned to one
 * CPU.  So for a step the owner stays on the CPU it is on, and every lane
 * is held there too (the pool's workers are not: they share the step's
 * kernels on the other CPUs).  Linux only; elsewhere the turns move. */
static void hold_cpu(dl_lanes *z) {
#ifdef __linux__
  int cpu = sched_getcpu();
  if (cpu < 0 || pthread_getaffinity_np(pthread_self(), sizeof z->owner_cpus, &z->owner_cpus))
    return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (pthread_setaffinity_np(pthread_self(), sizeof one, &one)) return;
  z->held = 1;
  for (int j = 0; j < z->L; j++) {
    lane *l = &z->lanes[j];
    if (l->cpu != cpu && pthread_setaffinity_np(l->thread, sizeof one, &one) == 0) l->cpu = cpu;
  }
#else
  (void)z;
#endif
}

static void release_cpu(dl_lanes *z) {
#ifdef __linux__
  if (z->held) pthread_setaffinity_np(pthread_self(), sizeof z->owner_cpus, &z->owner_cpus);
  z->held = 0;
#else
  (void)z;
#endif
}

static void resume(dl_lanes *z, lane *l) {
  sem_post(&l->go);
  wait_sem(&z->back);
}

/* The sum every live lane waits at: leaf j is lane j's values (times its
 * share when weighted; zeros for an empty shard), the leaves added in the
 * balanced tree, then across ranks; every live lane gets the total (divided
 * by its share when weighted).  live NULL: none (this rank only takes part). */
static void add_sums(dl_lanes *z, const lane *live, size_t k, int weighted) {
  if (k > z->cap) dl_dist_abort(1, "internal error: a batch norm sum of %zu values (room for %zu)",
                                k, z->cap);
  for (int j = 0; j < z->L; j++) {
    const lane *l = &z->lanes[j];
    double *leaf = z->leaves + (size_t)j * z->cap;
    if (!live || !l->n) memset(leaf, 0, k * sizeof *leaf);
    else
      for (size_t i = 0; i < k; i++) leaf[i] = weighted ? l->v[i] * l->w : l->v[i];
  }
  for (int step = 1; step < z->L; step *= 2)
    for (int j = 0; j + step < z->L; j += 2 * step) {
      double *a = z->leaves + (size_t)j * z->cap, *b = a + (size_t)step * z->cap;
      for (size_t i = 0; i < k; i++) a[i] = a[i] + b[i];
    }
  dl_dist_sum_f64(z->leaves, z->scratch, k);
  for (int j = 0; live && j < z->L; j++) {
    const lane *l = &z->lanes[j];
    for (size_t i = 0; l->n && i < k; i++) l->v[i] = weighted ? z->leaves[i] / l->w : z->leaves[i];
  }
}

/* compute_grads's log (a free one the first time). */
static sum_log *log_of(dl_lanes *z, double (*compute_grads)(dl_ctx *ctx, int n)) {
  for (int i = 0; i < z->n_logs; i++) {
    sum_log *g = &z->logs[i];
    if (!g->compute_grads) g->compute_grads = compute_grads;
    if (g->compute_grads == compute_grads) return g;
  }
  dl_dist_abort(1, "internal error: more kinds of step than the lanes' %d logs", z->n_logs);
}

/* Records a run's sums (its first), so that a later run whose shards are
 * all empty on this rank can take part in the same sums. */
static void log_sum(const dl_lanes *z, sum_log *g, size_t k, int weighted) {
  if (g->logged) return;
  if (g->n == z->log_cap)
    dl_dist_abort(1, "internal error: more batch norm sums in a step than %d", z->log_cap);
  g->k[g->n] = k;
  g->weighted[g->n++] = weighted;
}

void dl_tr_lanes_run(dl_lanes *z, double (*compute_grads)(dl_ctx *ctx, int n)) {
  z->compute_grads = compute_grads;
  sum_log *g = log_of(z, compute_grads);
  const lane *first = NULL;
  for (int j = 0; j < z->L; j++)
    if (z->lanes[j].n && !first) first = &z->lanes[j];
  if (!first) { /* every shard of this rank is empty: the others' sums still need it */
    if (!g->logged)
      dl_dist_abort(1, "the first batch left this rank no rows, so it cannot follow batch "
                    "norm's sums: give more training rows than processes");
    for (int i = 0; i < g->n; i++) add_sums(z, NULL, g->k[i], g->weighted[i]);
    return;
  }
  hold_cpu(z);
  for (int j = 0; j < z->L; j++)
    if (z->lanes[j].n) resume(z, &z->lanes[j]);
  while (first->v) {
    for (int j = 0; j < z->L; j++) {
      const lane *l = &z->lanes[j];
      if (l->n && (!l->v || l->k != first->k || l->weighted != first->weighted))
        dl_dist_abort(1, "internal error: the micro-shards reached different batch norm sums");
    }
    add_sums(z, first, first->k, first->weighted);
    log_sum(z, g, first->k, first->weighted);
    for (int j = 0; j < z->L; j++)
      if (z->lanes[j].n) resume(z, &z->lanes[j]);
  }
  for (int j = 0; j < z->L; j++)
    if (z->lanes[j].n && z->lanes[j].v)
      dl_dist_abort(1, "internal error: the micro-shards reached different batch norm sums");
  release_cpu(z);
  g->logged = 1;
}
