/* trainer_common.c: what the trainer's commands share: loading the data,
 * the batch capacity, contexts (also one loaded from --load), evaluation
 * and streaming.  The commands (trainer_train.c, trainer_eval.c,
 * trainer_gradcheck.c, trainer_sample.c) call it, and trainer.c calls the
 * commands: no file here calls back into the one that calls it. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"
#include "dist.h"
#include "dl_model.h"
#include "progress.h"
#include "threads.h"
#include "trainer_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- data and contexts ------------------------------------------------ */

/* Relative data paths hang off --data; absolute ones are used as they are. */
static char *join_path(const char *dir, const char *path) {
  int rel = path[0] != '/' && dir && dir[0];
  size_t n = (rel ? strlen(dir) + 1 : 0) + strlen(path) + 1;
  char *p = malloc(n);
  if (!p) return NULL;
  if (rel)
    snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", path);
  else
    snprintf(p, n, "%s", path);
  return p;
}

/* Text data is a byte per token and the next byte as the label of every
 * position: the model must take token ids and label each position with a
 * class that can be any token.  0, or -1 with what does not fit in why. */
static int text_fits(const dl_model_desc *m, char *why, size_t len) {
  if (m->x_vocab < 1)
    snprintf(why, len, "its inputs are real values");
  else if (m->y_kind != DL_Y_CLASS)
    snprintf(why, len, m->y_kind == DL_Y_NONE ? "it has no label" : "its labels are real values");
  else if (dl_model_y_len(m) != m->x_size)
    snprintf(why, len, "it has %" PRId64 " label(s) per sample for %" PRId64 " input tokens",
             dl_model_y_len(m), m->x_size);
  else if (m->y_size < m->x_vocab)
    snprintf(why, len, "its %" PRId64 " label classes are fewer than its %" PRId64 " input tokens",
             m->y_size, m->x_vocab);
  else
    return 0;
  return -1;
}

/* What a loaded set must agree on with the model beyond what its loader
 * checked: labels per sample, and token ids where the inputs are tokens
 * (an id out of range would index outside an embedding). */
static int check_loaded(const dl_model_desc *m, const dl_data_spec *s, const dl_dataset *d,
                        char *err, size_t errlen) {
  int64_t have = d->y_len > 1 ? d->y_len : 1;
  if (have != dl_model_y_len(m)) {
    snprintf(err, errlen, "the data has %" PRId64 " label(s) per sample, model '%s' takes %" PRId64,
             have, m->name, dl_model_y_len(m));
    return -1;
  }
  if (m->x_vocab > 0 && s->kind != DL_DATA_TEXT &&
      dl_dataset_check_tokens(d, m->x_vocab, err, errlen) != 0) {
    size_t used = strlen(err);
    snprintf(err + used, errlen - used, " (model '%s' takes token ids)", m->name);
    return -1;
  }
  return 0;
}

static int load_spec(const dl_model_desc *m, const dl_data_spec *s, const char *dir,
                     dl_dataset *d, char *err, size_t errlen) {
  int is_idx = s->kind == DL_DATA_IDX;
  /* idx(images, labels) for a labelled model, idx(images) for one without */
  int want_labels = is_idx && m->y_kind != DL_Y_NONE;
  char *p0 = s->path[0] ? join_path(dir, s->path[0]) : NULL;
  char *p1 = want_labels && s->path[1] ? join_path(dir, s->path[1]) : NULL;
  int rc = -1;
  if (!s->path[0] || (want_labels && !s->path[1])) {
    snprintf(err, errlen, "the data spec names no %s", s->path[0] ? "labels file" : "file");
  } else if (!p0 || (want_labels && !p1)) {
    snprintf(err, errlen, "out of memory");
  } else if (is_idx) {
    rc = dl_load_idx(d, p0, p1, s->scale, m->x_size, m->y_size, err, errlen);
  } else if (s->kind == DL_DATA_TEXT) {
    rc = dl_load_text(d, p0, s->from, s->to, m->x_size, m->x_vocab, err, errlen);
  } else {
    /* DL_Y_NONE: y_size 0, rows of input values alone */
    int cls = m->y_kind == DL_Y_CLASS;
    rc = dl_load_csv_labels(d, p0, s->header, s->scale, m->x_size, cls,
                            m->y_kind == DL_Y_NONE ? 0 : m->y_size,
                            cls ? dl_model_y_len(m) : 1, err, errlen);
  }
  if (rc == 0 && check_loaded(m, s, d, err, errlen) != 0) {
    dl_dataset_free(d);
    rc = -1;
  }
  /* Loaders name the file; if one did not, say which it was. */
  if (rc && p0 && !strstr(err, p0) && !(p1 && strstr(err, p1))) {
    size_t used = strlen(err);
    snprintf(err + used, errlen - used, " (%s%s%s)", p0, p1 ? ", " : "", p1 ? p1 : "");
  }
  free(p0);
  free(p1);
  return rc;
}

int dl_tr_load_data(const dl_model_desc *m, const dl_opts *o, int which, dl_dataset *d) {
  const dl_data_spec *s = which == 2 ? &m->defaults.val_data
                          : which ? &m->defaults.test : &m->defaults.train;
  const char *what = which == 2 ? "validation" : which ? "test" : "train";
  const char *src = m->source ? m->source : m->name;
  memset(d, 0, sizeof *d);
  if (s->kind == DL_DATA_NONE) return 0;
  if (s->kind == DL_DATA_IDX && m->y_kind == DL_Y_NONE && s->path[1]) {
    fprintf(stderr, "error: %s:%d: %s data: model '%s' has no label, but the data names a "
            "labels file (%s)\n", src, s->line, what, m->name, s->path[1]);
    return -1;
  }
  if (s->kind == DL_DATA_IDX && m->y_kind == DL_Y_REAL) {
    /* IDX label files hold class indices; there is nowhere to put them. */
    fprintf(stderr, "error: %s:%d: %s data: IDX labels are class indices, but model '%s' "
            "has real-valued labels\n", src, s->line, what, m->name);
    return -1;
  }
  char err[1024] = "";
  if (s->kind == DL_DATA_TEXT && text_fits(m, err, sizeof err)) {
    fprintf(stderr, "error: %s:%d: %s data: text data needs token inputs and a label per "
            "position (x : class[T, V], y : class[T, V]), but model '%s' does not fit: %s\n",
            src, s->line, what, m->name, err);
    return -1;
  }
  if (load_spec(m, s, o->data_dir, d, err, sizeof err) == 0) return 1;
  fprintf(stderr, "error: cannot load the %s data declared at %s:%d: %s\n", what, src, s->line,
          err);
  dl_dataset_free(d);
  memset(d, 0, sizeof *d);
  return -1;
}

int dl_tr_capacity(const dl_model_desc *m, int batch, int64_t n) {
  if (n < 1) {
    fprintf(stderr, "error: model '%s': the data set is empty\n", m->name);
    return -1;
  }
  /* A batch larger than the set would only waste memory. */
  if (batch > 0 && batch < n) return batch;
  if (n > INT_MAX) {
    fprintf(stderr, "error: model '%s': %" PRId64 " rows do not fit one batch; use --batch\n",
            m->name, n);
    return -1;
  }
  return (int)n;
}

dl_ctx *dl_tr_ctx_open(const dl_model_desc *m, const dl_opts *o, int capacity) {
  char err[512];
  dl_ctx *ctx = dl_ctx_new(m, capacity, err, sizeof err);
  if (!ctx) {
    fprintf(stderr, "error: %s\n", err);
    return NULL;
  }
  if (o->threads > 1) {
    ctx->pool = dl_pool_new(o->threads);
    if (!ctx->pool) {
      fprintf(stderr, "error: cannot start %d worker threads\n", o->threads);
      dl_ctx_free(ctx);
      return NULL;
    }
  }
  return ctx;
}

void dl_tr_ctx_close(dl_ctx *ctx) {
  if (!ctx) return;
  if (ctx->pool) dl_pool_free(ctx->pool);
  ctx->pool = NULL;
  dl_ctx_free(ctx);
}

/* ---- evaluation ------------------------------------------------------ */

int64_t dl_tr_argmax(const dl_real *v, int64_t n) {
  int64_t best = 0;
  for (int64_t k = 1; k < n; k++)
    if (v[k] > v[best]) best = k;
  return best;
}

/* Right answers in the first n rows of ctx->out; *total counts the
 * decisions (rows for ARGMAX, elements for BINARY).  With class labels per
 * position (y_len L > 1) every position is a row of its own: out[r] is L
 * slices of out_size / L, position-major, and label r*L + t goes with
 * slice t. */
void dl_tr_count_correct(const dl_ctx *ctx, int n, int64_t *correct, int64_t *total) {
  const dl_model_desc *m = ctx->m;
  int cls = m->y_kind == DL_Y_CLASS;
  int64_t len = cls ? dl_model_y_len(m) : 1;
  int64_t os = m->out_size / len, ys = m->y_size;
  int64_t rows = (int64_t)n * len;
  for (int64_t r = 0; r < rows; r++) {
    const dl_real *o = ctx->out + (size_t)r * (size_t)os;
    if (m->pred_kind == DL_PRED_ARGMAX) {
      /* Real-valued labels for an argmax head are one-hot (or soft) targets. */
      int64_t want =
          cls ? ctx->y_class[r] : dl_tr_argmax(ctx->y_real + (size_t)r * (size_t)ys, ys);
      *correct += dl_tr_argmax(o, os) == want;
      *total += 1;
      continue;
    }
    for (int64_t k = 0; k < os; k++) {
      int want;
      if (cls)
        want = os == 1 ? ctx->y_class[r] > 0 : ctx->y_class[r] == k;
      else
        want = k < ys && ctx->y_real[(size_t)r * (size_t)ys + (size_t)k] > 0.5;
      *correct += (o[k] > 0.5) == want;
      *total += 1;
    }
  }
}

/* An evaluation batch's share of the result, the leaf of its sums: the
 * loss times the rows, right answers and decisions (integers, exact in a
 * double), the rows and the rank that ran it (for --dist-stats), then each
 * update's loss times the rows. */
enum { PART_LOSS, PART_CORRECT, PART_TOTAL, PART_ROWS, PART_RANK, PART_LOSSES };

/* Batch b of d: rows [b*cap, b*cap + nb), or a stateful model's streams. */
static void eval_batch(dl_ctx *ctx, const dl_dataset *d, int64_t *idx, int64_t b, int has_acc,
                       double *part) {
  const dl_model_desc *m = ctx->m;
  int cap = ctx->capacity;
  int64_t start = b * cap;
  int nb = (int)(d->n - start < cap ? d->n - start : cap);
  for (int k = 0; k < nb; k++)
    idx[k] = m->stateful ? dl_tr_stream_sample(d->n, cap, b, k) : start + k;
  if (m->stateful) ctx->carry = dl_tr_stream_carry(d->n, cap, b);
  dl_dataset_gather_pool(ctx->pool, d, idx, nb, ctx->x, ctx->y_class, ctx->y_real);
  part[PART_LOSS] = m->forward(ctx, nb, 1) * nb;
  for (int k = 0; k < m->n_updates; k++) part[PART_LOSSES + k] = m->updates[k].loss(ctx) * nb;
  int64_t correct = 0, total = 0;
  if (has_acc) dl_tr_count_correct(ctx, nb, &correct, &total);
  part[PART_CORRECT] = (double)correct;
  part[PART_TOTAL] = (double)total;
  part[PART_ROWS] = nb;
  part[PART_RANK] = dl_dist_rank();
}

/* The sums, one batch after another in batch order, whoever ran them. */
typedef struct eval_sums {
  double loss, losses[DL_MAX_UPDATES];
  int64_t correct, total;
} eval_sums;

static void eval_add(eval_sums *t, const double *part, int n_updates, int64_t *rank_rows) {
  t->loss += part[PART_LOSS];
  for (int k = 0; k < n_updates; k++) t->losses[k] += part[PART_LOSSES + k];
  t->correct += (int64_t)part[PART_CORRECT];
  t->total += (int64_t)part[PART_TOTAL];
  if (rank_rows) rank_rows[(int)part[PART_RANK]] += (int64_t)part[PART_ROWS];
}

int dl_tr_eval_stats_init(dl_eval_stats *st) {
  memset(st, 0, sizeof *st);
  st->digest = 0xcbf29ce484222325ull; /* FNV-1a's offset basis */
  st->rank_rows = calloc((size_t)dl_dist_size(), sizeof *st->rank_rows);
  return st->rank_rows ? 0 : -1;
}

void dl_tr_eval_stats_free(dl_eval_stats *st) {
  free(st->rank_rows);
  st->rank_rows = NULL;
}

void dl_tr_eval_stats_report(const dl_eval_stats *st) {
  if (!st->passes) return;
  fprintf(stderr, "evaluation: %" PRId64 " pass%s, %.3f ms a pass; rows evaluated by rank:",
          st->passes, st->passes == 1 ? "" : "es", 1e3 * st->seconds / (double)st->passes);
  for (int k = 0; k < dl_dist_size(); k++) fprintf(stderr, " %d:%" PRId64, k, st->rank_rows[k]);
  fprintf(stderr, "; results %016" PRIx64 "\n", st->digest);
}

/* A pass's result into the digest, bit for bit. */
static void eval_digest(dl_eval_stats *st, const dl_eval_result *res) {
  double v[2 + DL_MAX_UPDATES] = {res->loss, res->acc};
  memcpy(v + 2, res->losses, sizeof res->losses);
  for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
    uint64_t bits;
    memcpy(&bits, &v[k], sizeof bits);
    for (int b = 0; b < 64; b += 8)
      st->digest = (st->digest ^ ((bits >> b) & 0xff)) * 0x100000001b3ull;
  }
}

/* DLNC_TEST_FAULT=eval-die:R:N or eval-hang:R:N (tests/mpi only): rank R
 * exits, or stops answering, as its Nth evaluation starts, so that the
 * others wait for it in the gather and must end the job.  (The steps'
 * faults, trainer_shard.c's, have names of at most 7 letters, which this
 * one's are not, so neither reads the other's.) */
static void eval_fault(const dl_eval_stats *st) {
  const char *f = getenv("DLNC_TEST_FAULT");
  char kind[16] = "";
  int rank = -1;
  long long pass = 0;
  if (!f || sscanf(f, "eval-%4[a-z]:%d:%lld", kind, &rank, &pass) != 3) return;
  if (rank != dl_dist_rank() || pass != st->passes + 1) return;
  int hang = !strcmp(kind, "hang");
  fprintf(stderr, "rank %d: DLNC_TEST_FAULT: %s at evaluation %lld\n", rank,
          hang ? "hanging" : "exiting", pass);
  if (!hang) _exit(3);
  for (;;) pause();
}

/* Under several processes each runs its share of the batches (dist.h's
 * dl_dist_share), and the batches' leaves are gathered, so every rank adds
 * all of them in batch order: the bits of one process, whatever P.  A
 * stateful model's batches carry state from one to the next: every rank
 * runs them all (its context holds a whole batch's rows even with
 * --shards, so the streams are those of one process). */
void dl_tr_evaluate(dl_ctx *ctx, const dl_dataset *d, int64_t *idx, dl_eval_result *res,
                    dl_eval_stats *st) {
  double t0 = dl_progress_now();
  if (st) eval_fault(st);
  int64_t *rank_rows = st ? st->rank_rows : NULL;
  const dl_model_desc *m = ctx->m;
  int has_acc = dl_tr_has_acc(m);
  int64_t n_batches = (d->n + ctx->capacity - 1) / ctx->capacity, lo = 0, hi = n_batches;
  size_t width = PART_LOSSES + (size_t)m->n_updates;
  double one[PART_LOSSES + DL_MAX_UPDATES];
  double *parts = NULL;
  if (dl_dist_size() > 1 && !m->stateful) {
    parts = calloc((size_t)(n_batches ? n_batches : 1) * width, sizeof *parts);
    if (!parts)
      dl_dist_abort(DL_EXIT_FAIL, "out of memory for the evaluation's %" PRId64 " batches",
                    n_batches);
    dl_dist_share(n_batches, &lo, &hi);
  }
  eval_sums t;
  memset(&t, 0, sizeof t);
  for (int64_t b = lo; b < hi; b++) {
    double *part = parts ? parts + (size_t)b * width : one;
    eval_batch(ctx, d, idx, b, has_acc, part);
    if (!parts) eval_add(&t, part, m->n_updates, rank_rows);
  }
  ctx->carry = DL_CARRY_OFF;
  if (parts) {
    dl_dist_gather_f64(parts, n_batches, width);
    for (int64_t b = 0; b < n_batches; b++)
      eval_add(&t, parts + (size_t)b * width, m->n_updates, rank_rows);
    free(parts);
  }
  res->has_acc = has_acc;
  res->loss = d->n > 0 ? t.loss / (double)d->n : 0.0;
  for (int k = 0; k < DL_MAX_UPDATES; k++)
    res->losses[k] = k < m->n_updates && d->n > 0 ? t.losses[k] / (double)d->n : 0.0;
  res->acc = t.total > 0 ? (double)t.correct / (double)t.total : 0.0;
  if (!st) return;
  eval_digest(st, res);
  st->passes++;
  st->seconds += dl_progress_now() - t0;
}

void dl_tr_loss_key(const dl_model_desc *m, int k, char *buf, size_t len) {
  const dl_update_desc *u = &m->updates[k];
  int again = !strcmp(u->loss_name, "loss") || !strcmp(u->loss_name, "bpc") ||
              !strcmp(u->loss_name, "acc");
  for (int j = 0; j < k; j++) again |= !strcmp(m->updates[j].loss_name, u->loss_name);
  if (again) snprintf(buf, len, "%s.%s", u->name, u->loss_name);
  else snprintf(buf, len, "%s", u->loss_name);
}

int64_t dl_tr_stream_sample(int64_t n, int cap, int64_t batch, int r) {
  int64_t L = n / cap;
  return batch < L ? (int64_t)r * L + batch : L * cap + r;
}

int dl_tr_stream_carry(int64_t n, int cap, int64_t batch) {
  return batch == 0 || batch >= n / cap ? DL_CARRY_START : DL_CARRY_ON;
}

dl_ctx *dl_tr_open_loaded(const dl_model_desc *m, const dl_opts *o, int cap) {
  dl_ctx *ctx = dl_tr_ctx_open(m, o, cap);
  if (!ctx) return NULL;
  char err[1024];
  dl_ctx_init_params(ctx, o->seed);
  if (dl_ctx_load(ctx, o->load, 1, NULL, err, sizeof err)) {
    fprintf(stderr, "error: --load: %s\n", err);
    dl_tr_ctx_close(ctx);
    return NULL;
  }
  ctx->train_mode = 0;
  return ctx;
}
