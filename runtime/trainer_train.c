/* trainer_train.c: the `train` command: epochs over shuffled batches,
 * per-epoch evaluation, summary lines, metrics and checkpoints.
 *
 * Reproducibility: the permutation of epoch e is a pure function of
 * (seed, e), the learning rate of a step a pure function of (epoch, step),
 * and a checkpoint carries params, optimiser state, step and seed; so
 * training E epochs straight and training k, saving, resuming to E give
 * bit-identical weights for the same thread count. */
#include "data.h"
#include "dl_model.h"
#include "progress.h"
#include "rng.h"
#include "schedule.h"
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct train_run {
  const dl_model_desc *m;
  const dl_opts *o;
  dl_ctx *ctx;
  dl_dataset train, test;
  int has_test;
  int64_t *perm;            /* [train.n] this epoch's order           */
  int64_t *evidx;           /* [capacity] rows of an evaluation batch  */
  FILE *metrics;
  dl_progress prog;
  int first_epoch;          /* 0, or the epochs a resumed checkpoint had */
  int64_t resumed_epochs;   /* epochs in the --resume checkpoint (0 fresh) */
  int saved;                /* a checkpoint was written by this run     */
} train_run;

/* Fisher-Yates from the identity, draw i of epoch e at index e*N + i: the
 * order depends on nothing but (seed, epoch). */
static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int epoch) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  uint64_t base = (uint64_t)epoch * (uint64_t)n;
  for (int64_t i = n - 1; i > 0; i--) {
    uint64_t j = dl_rng_u64(seed, DL_STREAM_SHUFFLE, base + (uint64_t)i) % (uint64_t)(i + 1);
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static void report_divergence(const train_run *r, double loss, int epoch, double lr) {
  const char *what = isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf";
  fprintf(stderr, "error: training diverged: loss is %s at epoch %d, step %" PRId64 " (lr %g); ",
          what, epoch + 1, r->ctx->step + 1, lr);
  const char *save = r->o->save, *resume = r->o->resume;
  if (save && (r->saved || file_exists(save)))
    fprintf(stderr, "the last checkpoint (%s) is kept\n", save);
  else if (resume)
    fprintf(stderr, "the last checkpoint (%s) is kept\n", resume);
  else if (save)
    fprintf(stderr, "no checkpoint was written to %s yet\n", save);
  else
    fprintf(stderr, "nothing was saved (no --save)\n");
}

/* One pass over the training set; -1 if the loss stopped being finite. */
static int run_epoch(train_run *r, int epoch, dl_epoch_stats *s) {
  const dl_model_desc *m = r->m;
  dl_ctx *ctx = r->ctx;
  int64_t n = r->train.n;
  int cap = ctx->capacity;
  double sum = 0.0;
  shuffle(r->perm, n, ctx->seed, epoch);
  ctx->train_mode = 1;
  dl_progress_begin(&r->prog, epoch + 1, r->o->epochs, n);
  for (int64_t start = 0; start < n; start += cap) {
    int nb = (int)(n - start < cap ? n - start : cap);
    ctx->lr = dl_sched_lr(&m->defaults.schedule, r->o->lr, epoch, r->o->epochs, ctx->step);
    dl_dataset_gather(&r->train, r->perm + start, nb, ctx->x, ctx->y_class, ctx->y_real);
    double loss = m->compute_grads(ctx, nb);
    if (!isfinite(loss)) {
      dl_progress_end(&r->prog);
      report_divergence(r, loss, epoch, ctx->lr);
      return -1;
    }
    m->apply_update(ctx);
    sum += loss * nb;
    dl_progress_update(&r->prog, start + nb, sum / (double)(start + nb));
  }
  dl_progress_end(&r->prog);
  s->train_loss = sum / (double)n;
  s->lr = ctx->lr;
  return 0;
}

static int save_checkpoint(train_run *r, int64_t epochs_done) {
  char err[1024];
  if (dl_ctx_save(r->ctx, r->o->save, epochs_done, err, sizeof err)) {
    fprintf(stderr, "error: saving the checkpoint: %s\n", err);
    return -1;
  }
  r->saved = 1;
  return 0;
}

static int finish_epoch(train_run *r, dl_epoch_stats *s) {
  dl_print_epoch(stdout, s);
  if (r->metrics && dl_metrics_append(r->metrics, s)) {
    fprintf(stderr, "error: writing metrics to %s failed\n", r->o->metrics);
    return -1;
  }
  if (r->o->save && save_checkpoint(r, s->epoch)) return -1;
  return 0;
}

static int train_loop(train_run *r) {
  dl_ctx *ctx = r->ctx;
  for (int e = r->first_epoch; e < r->o->epochs; e++) {
    dl_epoch_stats s;
    memset(&s, 0, sizeof s);
    s.epoch = e + 1;
    s.epochs = r->o->epochs;
    double t0 = dl_progress_now();
    if (run_epoch(r, e, &s)) return -1;
    double t1 = dl_progress_now();
    if (r->has_test) {
      dl_eval_result ev;
      ctx->train_mode = 0;
      dl_tr_evaluate(ctx, &r->test, r->evidx, &ev);
      s.has_test = 1;
      s.test_loss = ev.loss;
      s.has_acc = ev.has_acc;
      s.test_acc = ev.acc;
    }
    s.seconds = dl_progress_now() - t0;
    s.samples_per_s = t1 > t0 ? (double)r->train.n / (t1 - t0) : 0.0;
    if (finish_epoch(r, &s)) return -1;
  }
  /* Nothing ran (the checkpoint already had the epochs): still honour --save. */
  if (r->o->save && !r->saved && save_checkpoint(r, r->resumed_epochs)) return -1;
  return 0;
}

/* Weights: from --resume (everything, including the seed), else fresh. */
static int start_state(train_run *r) {
  const dl_opts *o = r->o;
  if (!o->resume) {
    dl_ctx_init_params(r->ctx, o->seed);
    r->first_epoch = 0;
    return 0;
  }
  char err[1024];
  int64_t done = 0;
  if (dl_ctx_load(r->ctx, o->resume, 0, &done, err, sizeof err)) {
    fprintf(stderr, "error: --resume: %s\n", err);
    return -1;
  }
  if (o->seed_given && o->seed != r->ctx->seed)
    fprintf(stderr, "note: --seed %" PRIu64 " ignored: resuming with the checkpoint's seed %" PRIu64 "\n",
            o->seed, r->ctx->seed);
  if (done >= o->epochs)
    fprintf(stderr, "note: %s already has %" PRId64 " epochs (--epochs %d is the total): "
            "nothing to train\n", o->resume, done, o->epochs);
  r->resumed_epochs = done;
  r->first_epoch = (int)(done < o->epochs ? done : o->epochs);
  return 0;
}

static int load_sets(train_run *r) {
  int rc = dl_tr_load_data(r->m, r->o, 0, &r->train);
  if (rc == 0)
    fprintf(stderr, "error: model '%s' (%s) declares no train data\n", r->m->name,
            r->m->source ? r->m->source : "?");
  if (rc != 1) return -1;
  rc = dl_tr_load_data(r->m, r->o, 1, &r->test);
  if (rc < 0) return -1;
  r->has_test = rc == 1 && r->test.n > 0;
  return 0;
}

static int setup(train_run *r) {
  if (r->o->epochs < 1) {
    fprintf(stderr, "error: model '%s': epochs must be at least 1 (use --epochs N)\n", r->m->name);
    return -1;
  }
  if (load_sets(r)) return -1;
  int cap = dl_tr_capacity(r->m, r->o->batch, r->train.n);
  if (cap < 0) return -1;
  r->ctx = dl_tr_ctx_open(r->m, r->o, cap);
  if (!r->ctx) return -1;
  r->perm = malloc((size_t)r->train.n * sizeof *r->perm);
  r->evidx = malloc((size_t)cap * sizeof *r->evidx);
  if (!r->perm || !r->evidx) {
    fprintf(stderr, "error: out of memory for %" PRId64 " sample indices\n", r->train.n);
    return -1;
  }
  if (start_state(r)) return -1;
  if (r->o->metrics && !(r->metrics = fopen(r->o->metrics, "a"))) {
    fprintf(stderr, "error: cannot open %s for the metrics: %s\n", r->o->metrics, strerror(errno));
    return -1;
  }
  dl_progress_init(&r->prog, 0);
  return 0;
}

static void cleanup(train_run *r) {
  if (r->metrics) fclose(r->metrics);
  free(r->perm);
  free(r->evidx);
  dl_tr_ctx_close(r->ctx);
  dl_dataset_free(&r->train);
  dl_dataset_free(&r->test);
}

int dl_tr_cmd_train(const dl_model_desc *m, const dl_opts *o) {
  train_run r;
  memset(&r, 0, sizeof r);
  r.m = m;
  r.o = o;
  int rc = setup(&r) == 0 && train_loop(&r) == 0 ? DL_EXIT_OK : DL_EXIT_FAIL;
  cleanup(&r);
  return rc;
}
