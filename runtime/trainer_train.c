/* trainer_train.c: the `train` command: epochs over shuffled batches (or,
 * for a stateful model, streamed ones: dl_tr_stream_sample),
 * per-epoch evaluation, summary lines, metrics and checkpoints.
 *
 * Reproducibility: the permutation of epoch e is a pure function of
 * (seed, e), the learning rate of a step a pure function of (epoch, step),
 * and a checkpoint carries params, optimiser state, step, seed and the
 * batches of an unfinished epoch already trained; so training E epochs
 * straight and training part of the way, saving, resuming to E give
 * bit-identical weights for the same thread count.
 *
 * Failure: every step's loss, gradients, updated weights, optimiser state
 * and buffers must be finite (trainer_finite.c); the first step where one
 * is not ends the run with the tensor's name, without saving.  SIGINT,
 * SIGTERM, SIGHUP and SIGPIPE finish the current step, save, and exit with
 * 128 + the signal (trainer_signal.c).  Saves are atomic (atomic_file.c),
 * so a run killed or failing at any moment leaves the previous checkpoint
 * as it was; the --save target is checked before the first epoch, so a
 * place that cannot take a checkpoint is not found only after one. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* stat */
#endif
#include "atomic_file.h"
#include "data.h"
#include "dist.h"
#include "dl_model.h"
#include "progress.h"
#include "rng.h"
#include "schedule.h"
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How a step or an epoch ended. */
enum { RUN_OK = 0, RUN_FAIL = -1, RUN_STOPPED = 1 };

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
  int64_t n_batches;        /* optimiser steps per epoch               */
  int first_epoch;          /* 0, or the epochs a resumed checkpoint had */
  dl_ckpt_pos resumed;      /* where the --resume checkpoint was taken (zero: fresh) */
  int saved;                /* a checkpoint was written by this run     */
  int stop_signal;          /* the signal that stopped the run, or 0    */
  double lr0;               /* with updates: the first update's last rate */
  char keys[DL_MAX_UPDATES][300]; /* each update's loss's name in the reports */
  dl_dataset val;           /* validation rows: a view of train's last ones (not owned) */
  int has_val, own_val;      /* own_val: loaded from the train block's own set */
  const char *judge;        /* the metric --early-stop / --save-best judge by, or NULL */
  dl_ckpt_pos best;         /* the best epoch so far by it (best_metric "" : none yet) */
  dl_shards *shards;        /* --shards or several processes: the step's gradient
                               over micro-shards (trainer_shard.c), else NULL */
  int rank;                 /* this process (dist.h); only rank 0 prints and saves */
  int batch;                /* rows per optimiser step: the context's capacity, or
                               with shards the global batch, of which the context
                               holds one micro-shard at a time */
  dl_eval_stats evstats;    /* the evaluations, for --dist-stats */
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

/* A checkpoint can be there: a regular file (fopen would open a directory). */
static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The checkpoint a failed run leaves behind, as the end of a message. */
static void report_kept(const train_run *r) {
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

/* `what` ("loss", "gradient of 'h1.weight'", ...) is `value` (NaN or
 * infinite) at the given epoch (0-based) and step (1-based). */
static int report_divergence(train_run *r, int epoch, int64_t step, const char *what,
                             double value) {
  dl_progress_end(&r->prog);
  fprintf(stderr, "error: training diverged at epoch %d, step %" PRId64 ": %s is %s (lr %g); ",
          epoch + 1, step, what, dl_tr_nonfinite_name(value), r->ctx->lr);
  report_kept(r);
  return RUN_FAIL;
}

/* Gradients are named after their parameter plus ".grad": say "gradient of
 * 'h1.weight'", which is what the user declared. */
static void describe_tensor(const dl_tensor_desc *t, char *buf, size_t len) {
  size_t n = strlen(t->name);
  static const char suffix[] = ".grad";
  switch (t->kind) {
  case DL_T_GRAD:
    if (n > sizeof suffix - 1 && strcmp(t->name + n - (sizeof suffix - 1), suffix) == 0)
      n -= sizeof suffix - 1;
    snprintf(buf, len, "gradient of '%.*s'", (int)n, t->name);
    break;
  case DL_T_PARAM: snprintf(buf, len, "weight '%s'", t->name); break;
  case DL_T_BUFFER: snprintf(buf, len, "buffer '%s'", t->name); break;
  default: snprintf(buf, len, "optimiser state '%s'", t->name); break;
  }
}

/* Every tensor of `kind` finite, else the divergence report. */
static int check_finite(train_run *r, int epoch, int64_t step, dl_tensor_kind kind) {
  double bad = 0.0;
  const dl_tensor_desc *t = dl_tr_find_nonfinite(r->ctx, kind, &bad);
  if (!t) return RUN_OK;
  char what[300];
  describe_tensor(t, what, sizeof what);
  return report_divergence(r, epoch, step, what, bad);
}

/* After an update, which said whether a weight or an optimiser state value
 * it wrote is NaN or infinite (the check is folded into the update's own
 * loop: it costs next to nothing).  A bad gradient always leaves such a
 * value (every optimiser adds or multiplies it into its state or weight,
 * and inf - inf, 0 * inf, inf / inf are NaN), and the gradients, which the
 * update only reads, tell whether they were the cause: they are blamed
 * first, then the weights, then the state.  The buffers (running
 * statistics), written by the forward pass, are few and small: scanned. */
static int check_step(train_run *r, int epoch, int64_t step, int update_bad) {
  static const dl_tensor_kind order[] = {DL_T_GRAD, DL_T_PARAM, DL_T_OPT};
  if (update_bad)
    for (int k = 0; k < 3; k++)
      if (check_finite(r, epoch, step, order[k])) return RUN_FAIL;
  return check_finite(r, epoch, step, DL_T_BUFFER);
}

/* The train block's updates in order on the batch gathered: each one's
 * loss and what its optimiser wrote are checked before the next runs (a
 * divergence names the update's loss); they share ctx->step, which the
 * batch advances once, so every update sees the batch's noise.  The
 * schedule and warm-up act on each update's own base rate. */
/* The rate of a step: the schedule's (dl_sched_lr_steps), then a plateau's
 * reductions so far, not below its min_lr (torch lowers the rate only to
 * min_lr; an unreduced rate stays as it is). */
static double run_lr(const train_run *r, double base, int epoch, int64_t step) {
  const dl_train_config *d = &r->m->defaults;
  double lr = dl_sched_lr_steps(&d->schedule, &d->sched_steps, base, epoch, r->o->epochs, step,
                                r->n_batches);
  if (!r->best.has_plateau || r->best.plateau_scale >= 1.0) return lr;
  lr *= r->best.plateau_scale;
  return lr > d->sched_steps.min_lr ? lr : d->sched_steps.min_lr;
}

static int train_updates(train_run *r, int epoch, int64_t start, int nb, double *losses) {
  const dl_model_desc *m = r->m;
  dl_ctx *ctx = r->ctx;
  int64_t step = ctx->step + 1;
  for (int k = 0; k < m->n_updates; k++) {
    const dl_update_desc *u = &m->updates[k];
    ctx->lr = run_lr(r, dl_tr_base_lr(m, r->o, k), epoch, ctx->step);
    if (k == 0) r->lr0 = ctx->lr;
    losses[k] = r->shards ? dl_tr_shards_grads(r->shards, ctx, &r->train, r->perm + start, nb, k, 0,
                                               NULL, NULL)
                          : u->compute_grads(ctx, nb);
    if (!isfinite(losses[k])) {
      char what[300];
      snprintf(what, sizeof what, "loss '%s' (update '%s')", u->loss_name, u->name);
      return report_divergence(r, epoch, step, what, losses[k]);
    }
    if (check_step(r, epoch, step, u->apply_update(ctx))) return RUN_FAIL;
  }
  ctx->step = step;
  return RUN_OK;
}

/* One optimiser step on rows perm[start, start + nb): the loss (free to
 * check), then what the update wrote.  With updates, losses[k] gets each
 * one's and *loss the first's.  acc (NULL: none) gets train_acc's counts. */
static int train_step(train_run *r, int epoch, int64_t start, int nb, double *loss, double *losses,
                      dl_ckpt_pos *acc) {
  const dl_model_desc *m = r->m;
  dl_ctx *ctx = r->ctx;
  int64_t step = ctx->step + 1;
  ctx->lr = run_lr(r, r->o->lr, epoch, ctx->step);
  if (m->n_updates) {
    if (!r->shards)
      dl_dataset_gather_pool(ctx->pool, &r->train, r->perm + start, nb, ctx->x, ctx->y_class,
                             ctx->y_real);
    int rc = train_updates(r, epoch, start, nb, losses);
    *loss = losses[0];
    return rc;
  }
  if (r->shards) {
    int64_t c = 0, t = 0;
    *loss = dl_tr_shards_grads(r->shards, ctx, &r->train, r->perm + start, nb, -1, acc != NULL,
                               &c, &t);
    if (acc) acc->acc_correct += c, acc->acc_total += t;
  } else {
    dl_dataset_gather_pool(ctx->pool, &r->train, r->perm + start, nb, ctx->x, ctx->y_class,
                           ctx->y_real);
    *loss = m->compute_grads(ctx, nb);
    if (acc) dl_tr_count_correct(ctx, nb, &acc->acc_correct, &acc->acc_total);
  }
  if (!isfinite(*loss)) return report_divergence(r, epoch, step, "loss", *loss);
  return check_step(r, epoch, step, m->apply_update(ctx));
}

/* Writes --save at pos.  The weights, the optimiser state and the buffers
 * are checked first, although every step checks them: a checkpoint must
 * never hold what a resumed run cannot use, and a save is rare. */
static int save_checkpoint(train_run *r, const dl_ckpt_pos *pos) {
  /* The epoch (0-based) of the last step: at an epoch boundary, the one before. */
  int epoch = (int)(pos->step_in_epoch > 0 || pos->epoch == 0 ? pos->epoch : pos->epoch - 1);
  if (check_finite(r, epoch, r->ctx->step, DL_T_PARAM) ||
      check_finite(r, epoch, r->ctx->step, DL_T_OPT) ||
      check_finite(r, epoch, r->ctx->step, DL_T_BUFFER))
    return RUN_FAIL;
  if (r->rank != 0) { /* every process holds the same state: one writes it */
    r->saved = 1;
    return RUN_OK;
  }
  char err[1024];
  dl_tr_signals_saving(1);
  int rc = dl_ckpt_save(r->ctx, r->o->save, pos, err, sizeof err);
  dl_tr_signals_saving(0);
  if (rc) {
    dl_progress_end(&r->prog);
    fprintf(stderr, "error: %s%s\n", err,
            file_exists(r->o->save) ? "; the previous checkpoint there is unchanged" : "");
    return RUN_FAIL;
  }
  r->saved = 1;
  return RUN_OK;
}

static void report_stop(const train_run *r, int epoch) {
  if (r->rank != 0) return; /* the one that saves */
  fprintf(stderr, "interrupted at epoch %d, step %" PRId64 ": %s%s\n", epoch + 1, r->ctx->step,
          r->o->save ? "saved " : "nothing saved (no --save)", r->o->save ? r->o->save : "");
}

/* Whether to stop before the next step.  Several processes must stop
 * after the same step, or one would wait for the others forever: they stop
 * when the last step's sum says a signal reached any of them. */
static int stop_asked(const train_run *r) {
  if (r->shards && dl_dist_size() > 1) return dl_tr_shards_stopping(r->shards);
  return dl_tr_stop_signal() != 0;
}

/* A signal asked to stop between two steps: save where we are (a process
 * that saw none itself reports SIGTERM, mpirun's). */
static int stop_run(train_run *r, const dl_ckpt_pos *pos) {
  r->stop_signal = dl_tr_stop_signal() ? dl_tr_stop_signal() : SIGTERM;
  dl_progress_end(&r->prog);
  if (r->o->save && save_checkpoint(r, pos)) return RUN_FAIL;
  report_stop(r, (int)pos->epoch);
  return RUN_STOPPED;
}

/* --save-every: on the global step count, so a resumed run saves at the
 * same steps; not after an epoch's last batch, where the epoch's own save
 * follows. */
static int periodic_save_due(const train_run *r, const dl_ckpt_pos *pos) {
  int n = r->o->save_every;
  return n > 0 && r->ctx->step % n == 0 && pos->step_in_epoch < r->n_batches;
}

/* A checkpoint carries the best epoch so far (dl_ckpt_pos). */
static void with_best(const train_run *r, dl_ckpt_pos *pos) {
  memcpy(pos->best_metric, r->best.best_metric, sizeof pos->best_metric);
  pos->best_value = r->best.best_value;
  pos->best_epoch = r->best.best_epoch;
  pos->best_since = r->best.best_since;
  pos->has_plateau = r->best.has_plateau;
  pos->plateau_scale = r->best.plateau_scale;
  pos->plateau_best = r->best.plateau_best;
  pos->plateau_bad = r->best.plateau_bad;
}

/* One pass over the training set, or what is left of it after a mid-epoch
 * checkpoint; *trained gets the samples this call trained on. */
static int run_epoch(train_run *r, int epoch, dl_epoch_stats *s, int64_t *trained) {
  dl_ctx *ctx = r->ctx;
  int64_t n = r->train.n;
  int cap = r->batch;
  int resumed = epoch == r->first_epoch;
  dl_ckpt_pos pos = {.epoch = epoch, .step_in_epoch = resumed ? r->resumed.step_in_epoch : 0,
                     .batch = cap, .loss_sum = resumed ? r->resumed.loss_sum : 0.0};
  int64_t first = pos.step_in_epoch;
  with_best(r, &pos);
  if (r->m->stateful) {
    /* streams, not a shuffle: row r of each batch continues row r's text */
    for (int64_t b = 0; b * cap < n; b++)
      for (int k = 0; k < cap && b * cap + k < n; k++)
        r->perm[b * cap + k] = dl_tr_stream_sample(n, cap, b, k);
  } else {
    shuffle(r->perm, n, ctx->seed, epoch);
  }
  /* training steps: batch statistics, and the running ones follow them */
  ctx->train_mode = 1;
  ctx->track_stats = 1;
  /* The rate the summary reports if no batch is left to run. */
  ctx->lr = run_lr(r, dl_tr_base_lr(r->m, r->o, 0), epoch, ctx->step > 0 ? ctx->step - 1 : 0);
  double losses[DL_MAX_UPDATES] = {0};
  /* train_acc: the predictions each training step's forward pass left in
     ctx->out (train mode, before the update), counted as the epoch goes:
     free, where a second pass over the training set would cost a third of
     an epoch.  Models with updates have none (their prediction need not be
     computed by the first update's forward). */
  int count_acc = r->has_test && dl_tr_has_acc(r->m) && !r->m->n_updates;
  pos.acc_correct = resumed ? r->resumed.acc_correct : 0;
  pos.acc_total = resumed ? r->resumed.acc_total : 0;
  pos.n_loss_sums = r->m->n_updates;
  for (int k = 0; k < r->m->n_updates; k++)
    pos.loss_sums[k] = resumed && k < r->resumed.n_loss_sums ? r->resumed.loss_sums[k] : 0.0;
  dl_progress_begin(&r->prog, epoch + 1, r->o->epochs, n);
  dl_progress_skip(&r->prog, first * cap < n ? first * cap : n);
  while (pos.step_in_epoch < r->n_batches) {
    if (stop_asked(r)) return stop_run(r, &pos);
    int64_t start = pos.step_in_epoch * cap;
    int nb = (int)(n - start < cap ? n - start : cap);
    double loss;
    /* a resumed epoch's first batch starts from zeros: the state is not saved */
    ctx->carry = !r->m->stateful ? DL_CARRY_OFF
                 : pos.step_in_epoch == first ? DL_CARRY_START
                                               : dl_tr_stream_carry(n, cap, pos.step_in_epoch);
    if (train_step(r, epoch, start, nb, &loss, losses, count_acc ? &pos : NULL)) return RUN_FAIL;
    pos.loss_sum += loss * nb;
    for (int k = 0; k < r->m->n_updates; k++) pos.loss_sums[k] += losses[k] * nb;
    pos.step_in_epoch++;
    dl_progress_update(&r->prog, start + nb, pos.loss_sum / (double)(start + nb));
    if (periodic_save_due(r, &pos) && save_checkpoint(r, &pos)) return RUN_FAIL;
  }
  dl_progress_end(&r->prog);
  ctx->carry = DL_CARRY_OFF;
  s->train_loss = pos.loss_sum / (double)n;
  /* each update's mean loss (the first's is train_loss); a mid-epoch
     checkpoint keeps the sums, so a resumed epoch reports the same */
  s->n_losses = r->m->n_updates;
  for (int k = 0; k < r->m->n_updates; k++) {
    dl_tr_loss_key(r->m, k, r->keys[k], sizeof r->keys[k]);
    s->loss_names[k] = r->keys[k];
    s->train_losses[k] = pos.loss_sums[k] / (double)n;
  }
  s->has_train_acc = count_acc && pos.acc_total > 0;
  s->train_acc = s->has_train_acc ? (double)pos.acc_correct / (double)pos.acc_total : 0.0;
  s->has_bpc = dl_tr_reports_bpc(r->m);
  s->train_bpc = dl_tr_bpc(s->train_loss);
  s->lr = r->m->n_updates && pos.step_in_epoch > first ? r->lr0 : ctx->lr;
  int64_t skipped = first * cap;
  *trained = n - (skipped < n ? skipped : n);
  return RUN_OK;
}

/* The summary line, the metrics, the checkpoint.  A failed metrics write
 * ends the run, but only after the epoch's checkpoint is safe: losing a
 * line of metrics must not lose the epoch. */
static int finish_epoch(train_run *r, dl_epoch_stats *s) {
  dl_print_epoch(stdout, s);
  errno = 0;
  int metrics_failed = r->metrics && dl_metrics_append(r->metrics, s);
  int metrics_errno = errno ? errno : EIO;
  dl_ckpt_pos pos = r->best;
  pos.epoch = s->epoch;
  pos.batch = r->batch;
  int saved = r->o->save && save_checkpoint(r, &pos) == RUN_OK;
  if (metrics_failed) {
    fprintf(stderr, "error: writing metrics to %s failed: %s; ", r->o->metrics,
            strerror(metrics_errno));
    if (saved)
      fprintf(stderr, "the checkpoint of epoch %d was saved to %s\n", s->epoch, r->o->save);
    else if (r->o->save)
      fprintf(stderr, "the checkpoint of epoch %d was not saved either\n", s->epoch);
    else
      fprintf(stderr, "nothing was saved (no --save)\n");
  }
  return metrics_failed || (r->o->save && !saved) ? RUN_FAIL : RUN_OK;
}

static void evaluate_epoch(train_run *r, dl_epoch_stats *s) {
  dl_eval_result ev;
  r->ctx->train_mode = 0;
  dl_tr_evaluate(r->ctx, &r->test, r->evidx, &ev, &r->evstats);
  s->has_test = 1;
  s->test_loss = ev.loss;
  for (int k = 0; k < r->m->n_updates; k++) s->test_losses[k] = ev.losses[k];
  s->test_bpc = dl_tr_bpc(ev.loss);
  s->has_acc = ev.has_acc;
  s->test_acc = ev.acc;
}

/* schedule = plateau(...): its metric must be one this run reports; the
 * state starts fresh (the rate unscaled, torch's best of inf or -inf) or
 * from the --resume checkpoint. */
static int plateau_setup(train_run *r) {
  const dl_sched_steps *p = &r->m->defaults.sched_steps;
  if (r->m->defaults.schedule.kind != DL_SCHED_PLATEAU) return 0;
  const char *why = dl_tr_metric_missing(p->metric, r->has_val, r->has_test, dl_tr_has_acc(r->m));
  if (why) {
    fprintf(stderr, "error: schedule plateau(metric = %s): %s\n", p->metric, why);
    return -1;
  }
  r->best.has_plateau = 1;
  if (r->resumed.has_plateau) {
    r->best.plateau_scale = r->resumed.plateau_scale;
    r->best.plateau_best = r->resumed.plateau_best;
    r->best.plateau_bad = r->resumed.plateau_bad;
  } else {
    r->best.plateau_scale = 1.0;
    r->best.plateau_best = dl_tr_metric_maximise(p->metric) ? -INFINITY : INFINITY;
    r->best.plateau_bad = 0;
  }
  return 0;
}

/* After an epoch: torch's ReduceLROnPlateau.step(metric), threshold_mode
 * rel, cooldown 0; the reduction is kept as a factor of the base rate. */
static void plateau_step(train_run *r, const dl_epoch_stats *s) {
  const dl_sched_steps *p = &r->m->defaults.sched_steps;
  if (!r->best.has_plateau) return;
  double v = dl_tr_metric_value(p->metric, s), best = r->best.plateau_best;
  int better = dl_tr_metric_maximise(p->metric) ? v > best * (1.0 + p->threshold)
                                                : v < best * (1.0 - p->threshold);
  if (better) {
    r->best.plateau_best = v;
    r->best.plateau_bad = 0;
  } else {
    r->best.plateau_bad++;
  }
  if (r->best.plateau_bad > p->patience) {
    r->best.plateau_scale *= p->factor;
    r->best.plateau_bad = 0;
  }
}

/* The validation set, like the test set. */
static void evaluate_val(train_run *r, dl_epoch_stats *s) {
  dl_eval_result ev;
  r->ctx->train_mode = 0;
  dl_tr_evaluate(r->ctx, &r->val, r->evidx, &ev, &r->evstats);
  s->has_val = 1;
  s->val_loss = ev.loss;
  s->has_val_acc = ev.has_acc;
  s->val_acc = ev.acc;
  s->val_rows = r->val.n;
  s->train_rows = r->train.n;
}

/* --save-best: the epoch just finished, at an epoch boundary. */
static int save_best(train_run *r, const dl_epoch_stats *s) {
  if (r->rank != 0) return RUN_OK;
  dl_ckpt_pos pos = r->best;
  pos.epoch = s->epoch;
  pos.batch = r->batch;
  char err[1024];
  dl_tr_signals_saving(1);
  int rc = dl_ckpt_save(r->ctx, r->o->save_best, &pos, err, sizeof err);
  dl_tr_signals_saving(0);
  if (rc) fprintf(stderr, "error: --save-best: %s\n", err);
  return rc ? RUN_FAIL : RUN_OK;
}

/* Judges the epoch: the best so far is kept (--save-best); 1 when
 * --early-stop's patience has run out. */
static int judge_epoch(train_run *r, const dl_epoch_stats *s, int *stop) {
  *stop = 0;
  if (!r->judge) return RUN_OK;
  double v = dl_tr_metric_value(r->judge, s);
  if (dl_tr_best_update(&r->best, r->judge, r->o->min_delta, s->epoch, v) && r->o->save_best &&
      save_best(r, s))
    return RUN_FAIL;
  *stop = r->o->early_stop && r->best.best_since >= r->o->patience;
  return RUN_OK;
}

static void report_early_stop(const train_run *r, int epoch) {
  printf("stopped early at epoch %d: %s has not improved for %" PRId64 " epochs (best %.4f at "
         "epoch %" PRId64 ")\n", epoch, r->judge, r->best.best_since, r->best.best_value,
         r->best.best_epoch);
  fflush(stdout);
}

static int train_loop(train_run *r) {
  for (int e = r->first_epoch; e < r->o->epochs; e++) {
    dl_epoch_stats s;
    memset(&s, 0, sizeof s);
    s.epoch = e + 1;
    s.epochs = r->o->epochs;
    double t0 = dl_progress_now();
    int64_t trained = 0;
    int rc = run_epoch(r, e, &s, &trained);
    if (rc != RUN_OK) return rc;
    double t1 = dl_progress_now();
    if (r->has_test) evaluate_epoch(r, &s);
    if (r->has_val) evaluate_val(r, &s);
    s.seconds = dl_progress_now() - t0;
    s.samples_per_s = t1 > t0 ? (double)trained / (t1 - t0) : 0.0;
    /* judged first: the epoch's --save checkpoint carries the best so far */
    plateau_step(r, &s);
    int stop = 0;
    if (judge_epoch(r, &s, &stop)) return RUN_FAIL;
    if (finish_epoch(r, &s)) return RUN_FAIL;
    if (stop) {
      report_early_stop(r, s.epoch);
      return RUN_OK;
    }
    /* A signal during the last step or the evaluation: the epoch's
     * checkpoint was just written. */
    if (stop_asked(r) && e + 1 < r->o->epochs) {
      r->stop_signal = dl_tr_stop_signal() ? dl_tr_stop_signal() : SIGTERM;
      report_stop(r, e);
      return RUN_STOPPED;
    }
  }
  /* Nothing ran (the checkpoint already had the epochs): still honour --save. */
  if (r->o->save && !r->saved && save_checkpoint(r, &r->resumed)) return RUN_FAIL;
  return RUN_OK;
}

/* A mid-epoch checkpoint can only continue with the batches it was cut
 * into: same rows per batch, and the position inside this data set. */
static int check_resume_position(const train_run *r) {
  const dl_ckpt_pos *p = &r->resumed;
  const char *f = r->o->resume;
  if (p->step_in_epoch == 0 || p->epoch >= r->o->epochs) return 0;
  if (p->batch != r->batch) {
    fprintf(stderr, "error: --resume: %s was saved %" PRId64 " batches into epoch %" PRId64
            " with batches of %" PRId64 " rows, but this run's batches have %d rows "
            "(resume it with --batch %" PRId64 ")\n", f, p->step_in_epoch, p->epoch + 1, p->batch,
            r->batch, p->batch);
    return -1;
  }
  if (p->step_in_epoch > r->n_batches) {
    fprintf(stderr, "error: --resume: %s was saved %" PRId64 " batches into epoch %" PRId64
            ", but an epoch of this data has only %" PRId64 " batches (other data?)\n", f,
            p->step_in_epoch, p->epoch + 1, r->n_batches);
    return -1;
  }
  return 0;
}

/* Weights: from --resume (everything, including the seed), else fresh. */
static int start_state(train_run *r) {
  const dl_opts *o = r->o;
  memset(&r->resumed, 0, sizeof r->resumed);
  if (!o->resume) {
    dl_ctx_init_params(r->ctx, o->seed);
    r->first_epoch = 0;
    return 0;
  }
  char err[1024];
  if (dl_ckpt_load(r->ctx, o->resume, 0, &r->resumed, err, sizeof err)) {
    fprintf(stderr, "error: --resume: %s\n", err);
    return -1;
  }
  int64_t done = r->resumed.epoch;
  if (check_resume_position(r)) return -1;
  if (o->seed_given && o->seed != r->ctx->seed)
    fprintf(stderr, "note: --seed %" PRIu64 " ignored: resuming with the checkpoint's seed %" PRIu64 "\n",
            o->seed, r->ctx->seed);
  if (done >= o->epochs)
    fprintf(stderr, "note: %s already has %" PRId64 " epochs (--epochs %d is the total): "
            "nothing to train\n", o->resume, done, o->epochs);
  r->first_epoch = (int)(done < o->epochs ? done : o->epochs);
  return 0;
}

/* --validation F: the last rows of the training set (as loaded, before any
 * shuffle) become the validation set, as Keras's validation_split; the
 * rest trains.  A view: the rows stay in train's arrays. */
static int split_validation(train_run *r) {
  double f = r->o->validation;
  if (f <= 0) return 0;
  dl_dataset *t = &r->train;
  int64_t n = t->n, keep = (int64_t)((double)n * (1.0 - f));
  if (keep < 1 || keep >= n) {
    fprintf(stderr, "error: --validation %g of %" PRId64 " training rows leaves %s\n", f, n,
            keep < 1 ? "no rows to train on" : "no validation rows");
    return -1;
  }
  r->val = *t;
  r->val.n = n - keep;
  if (t->x_u8) r->val.x_u8 = t->x_u8 + keep * t->x_size;
  if (t->x_f32) r->val.x_f32 = t->x_f32 + keep * t->x_size;
  if (t->y_class) r->val.y_class = t->y_class + keep * t->y_len;
  if (t->y_real) r->val.y_real = t->y_real + keep * t->y_size;
  t->n = keep;
  r->has_val = 1;
  return 0;
}

/* What --early-stop and --save-best judge by: --early-stop's metric, else
 * val_loss for --save-best with a validation set; a metric this run cannot
 * report is refused now, not after an epoch. */
static int choose_judge(train_run *r) {
  const dl_opts *o = r->o;
  r->judge = o->early_stop ? o->early_stop : o->save_best && r->has_val ? "val_loss" : NULL;
  if (o->save_best && !r->judge) {
    fprintf(stderr, "error: --save-best %s: nothing to judge the best epoch by: give --early-stop "
            "METRIC or a validation set (--validation F)\n", o->save_best);
    return -1;
  }
  if (!r->judge) return 0;
  const char *why = dl_tr_metric_missing(r->judge, r->has_val, r->has_test, dl_tr_has_acc(r->m));
  if (why) {
    fprintf(stderr, "error: %s %s: %s\n", o->early_stop ? "--early-stop" : "--save-best",
            r->judge, why);
    return -1;
  }
  char err[512];
  if (o->save_best && dl_af_check(o->save_best, err, sizeof err)) {
    fprintf(stderr, "error: --save-best %s: cannot save a checkpoint there: %s\n", o->save_best,
            err);
    return -1;
  }
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
  /* a separate validation set, unless --validation F asks for a split */
  if (!r->o->validation_given && r->m->defaults.val_data.kind != DL_DATA_NONE) {
    if (dl_tr_load_data(r->m, r->o, 2, &r->val) != 1) return -1;
    r->own_val = 1;
    r->has_val = r->val.n > 0;
    return 0;
  }
  return split_validation(r);
}

/* --save names a place a checkpoint can go: found now, not after an epoch. */
static int check_save_target(const char *save) {
  char why[512];
  if (!save || dl_af_check(save, why, sizeof why) == 0) return 0;
  fprintf(stderr, "error: --save %s: cannot save a checkpoint there: %s\n", save, why);
  return -1;
}

/* The run's header record in the metrics.  A failed write is not an error
 * here: the stream's error sticks, so the first epoch's line reports it,
 * after that epoch's checkpoint is safe (see finish_epoch). */
static void write_header(train_run *r) {
  if (!r->metrics) return;
  const dl_opts *o = r->o;
  dl_run_header h = {.model = r->m->name, .source = r->m->source, .seed = r->ctx->seed,
                     .threads = o->threads, .batch = r->batch, .epochs = o->epochs,
                     .lr = o->lr, .resume = o->resume, .argc = o->argc, .argv = o->argv};
  (void)dl_metrics_header(r->metrics, &h);
}

static void with_best_from(train_run *r) {
  memcpy(r->best.best_metric, r->resumed.best_metric, sizeof r->best.best_metric);
  r->best.best_value = r->resumed.best_value;
  r->best.best_epoch = r->resumed.best_epoch;
  r->best.best_since = r->resumed.best_since;
}

static int o_stopped_already(const train_run *r) {
  return r->o->resume && r->o->early_stop && r->judge && r->best.best_metric[0] &&
         r->best.best_since >= r->o->patience && r->first_epoch < r->o->epochs;
}

/* --shards S > 1, or several processes: the step runs over micro-shards,
 * and the context needs room for one of them, B/S rows (rounded up), not
 * for the batch; but a model with carry = true evaluates its test text
 * streamed as B rows, as without shards, so its context keeps them.  A
 * checkpoint does not depend on how many processes wrote it, so a resumed
 * run may use another count.  The rows the context holds, or -1 after a
 * message. */
static int open_shards(train_run *r, int cap) {
  int S = r->o->shards ? r->o->shards : dl_dist_default_shards();
  if (S == 1 && dl_dist_size() == 1) return cap;
  r->shards = dl_tr_shards_open(r->m, S, cap);
  if (r->o->dist_stats) dl_dist_measure();
  return !r->shards ? -1 : r->m->stateful ? cap : (cap + S - 1) / S;
}

static int setup(train_run *r) {
  if (r->o->epochs < 1) {
    fprintf(stderr, "error: model '%s': epochs must be at least 1 (use --epochs N)\n", r->m->name);
    return -1;
  }
  if (r->rank == 0 && check_save_target(r->o->save)) return -1;
  if (load_sets(r)) return -1;
  int cap = dl_tr_capacity(r->m, r->o->batch, r->train.n);
  if (cap < 0) return -1;
  r->n_batches = (r->train.n + cap - 1) / cap;
  r->batch = cap;
  int rows = open_shards(r, cap);
  if (rows < 0) return -1;
  r->ctx = dl_tr_ctx_open(r->m, r->o, rows);
  if (!r->ctx) return -1;
  r->perm = malloc((size_t)r->train.n * sizeof *r->perm);
  r->evidx = malloc((size_t)cap * sizeof *r->evidx);
  if (!r->perm || !r->evidx || dl_tr_eval_stats_init(&r->evstats)) {
    fprintf(stderr, "error: out of memory for %" PRId64 " sample indices\n", r->train.n);
    return -1;
  }
  if (start_state(r)) return -1;
  if (choose_judge(r)) return -1;
  /* a resumed run judges against the checkpoint's best, if by the same metric */
  if (r->judge && strcmp(r->resumed.best_metric, r->judge) == 0) with_best_from(r);
  if (plateau_setup(r)) return -1;
  /* a checkpoint of a run that stopped early: training on would only stop again */
  if (o_stopped_already(r)) {
    fprintf(stderr, "note: %s stopped early at epoch %" PRId64 " (%s has not improved for %" PRId64
            " epochs, --patience %d): nothing to train\n", r->o->resume, r->resumed.epoch,
            r->judge, r->best.best_since, r->o->patience);
    r->first_epoch = r->o->epochs;
  }
  if (r->rank == 0 && r->o->metrics && !(r->metrics = fopen(r->o->metrics, "a"))) {
    fprintf(stderr, "error: cannot open %s for the metrics: %s\n", r->o->metrics, strerror(errno));
    return -1;
  }
  write_header(r);
  dl_progress_init(&r->prog, 0);
  return 0;
}

static void cleanup(train_run *r) {
  if (r->shards && r->o->dist_stats && r->rank == 0) {
    dl_tr_shards_report(r->shards);
    dl_tr_eval_stats_report(&r->evstats);
  }
  dl_tr_shards_close(r->shards);
  if (r->metrics) fclose(r->metrics);
  free(r->perm);
  free(r->evidx);
  dl_tr_eval_stats_free(&r->evstats);
  dl_tr_ctx_close(r->ctx);
  dl_dataset_free(&r->train);
  if (r->own_val) dl_dataset_free(&r->val); /* else a view of train's rows */
  dl_dataset_free(&r->test);
}

int dl_tr_cmd_train(const dl_model_desc *m, const dl_opts *o) {
  train_run r;
  memset(&r, 0, sizeof r);
  r.m = m;
  r.o = o;
  if (dl_dist_init(NULL, NULL)) return DL_EXIT_FAIL;
  r.rank = dl_dist_rank();
  /* one process reports: the others compute the same numbers */
  if (r.rank != 0 && !freopen("/dev/null", "w", stdout))
    dl_dist_abort(DL_EXIT_FAIL, "cannot silence stdout");
  int rc = setup(&r) == 0 ? RUN_OK : RUN_FAIL;
  /* a process that could not start (its data, its memory) stops them all */
  if (dl_dist_size() > 1 && !dl_dist_all_ok(rc == RUN_OK))
    dl_dist_abort(DL_EXIT_FAIL, "%s", rc == RUN_OK ? "another process failed to start (its message "
                  "is above); ending every process" : "could not start (above); ending every process");
  if (rc == RUN_OK) {
    /* Only now: before this, nothing would be lost by dying at once. */
    dl_tr_signals_catch(o->save);
    rc = train_loop(&r);
    dl_tr_signals_restore();
  }
  /* the processes fail together (same state, same checks); an error of
     one alone (a checkpoint rank 0 could not write) must not leave the
     others waiting for it */
  if (rc == RUN_FAIL && dl_dist_size() > 1)
    dl_dist_abort(DL_EXIT_FAIL, "training failed (above); ending every process");
  cleanup(&r);
  dl_dist_finish();
  if (rc == RUN_STOPPED) return DL_EXIT_SIGNAL_BASE + r.stop_signal;
  return rc == RUN_OK ? DL_EXIT_OK : DL_EXIT_FAIL;
}
