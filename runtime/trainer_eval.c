/* trainer_eval.c: evaluation (shared with train), the `eval` and `predict`
 * commands. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"
#include "dl_model.h"
#include "trainer_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- evaluation ------------------------------------------------------ */

static int64_t argmax(const dl_real *v, int64_t n) {
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
static void count_correct(const dl_ctx *ctx, int n, int64_t *correct, int64_t *total) {
  const dl_model_desc *m = ctx->m;
  int cls = m->y_kind == DL_Y_CLASS;
  int64_t len = cls ? dl_model_y_len(m) : 1;
  int64_t os = m->out_size / len, ys = m->y_size;
  int64_t rows = (int64_t)n * len;
  for (int64_t r = 0; r < rows; r++) {
    const dl_real *o = ctx->out + (size_t)r * (size_t)os;
    if (m->pred_kind == DL_PRED_ARGMAX) {
      /* Real-valued labels for an argmax head are one-hot (or soft) targets. */
      int64_t want = cls ? ctx->y_class[r] : argmax(ctx->y_real + (size_t)r * (size_t)ys, ys);
      *correct += argmax(o, os) == want;
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

void dl_tr_evaluate(dl_ctx *ctx, const dl_dataset *d, int64_t *idx, dl_eval_result *res) {
  const dl_model_desc *m = ctx->m;
  int cap = ctx->capacity;
  double sum = 0.0;
  int64_t correct = 0, total = 0;
  for (int64_t start = 0; start < d->n; start += cap) {
    int nb = (int)(d->n - start < cap ? d->n - start : cap);
    for (int k = 0; k < nb; k++)
      idx[k] = m->stateful ? dl_tr_stream_sample(d->n, cap, start / cap, k) : start + k;
    if (m->stateful) ctx->carry = dl_tr_stream_carry(d->n, cap, start / cap);
    dl_dataset_gather_pool(ctx->pool, d, idx, nb, ctx->x, ctx->y_class, ctx->y_real);
    sum += m->forward(ctx, nb, 1) * nb;
    if (m->pred_kind != DL_PRED_VALUES) count_correct(ctx, nb, &correct, &total);
  }
  ctx->carry = DL_CARRY_OFF;
  res->loss = d->n > 0 ? sum / (double)d->n : 0.0;
  res->has_acc = m->pred_kind != DL_PRED_VALUES;
  res->acc = total > 0 ? (double)correct / (double)total : 0.0;
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

/* ---- eval -------------------------------------------------------------- */

int dl_tr_cmd_eval(const dl_model_desc *m, const dl_opts *o) {
  dl_dataset d;
  const char *which = "test";
  int rc = dl_tr_load_data(m, o, 1, &d);
  if (rc == 0) {
    /* No test set declared: the train set is the only data there is. */
    which = "train";
    fprintf(stderr, "note: model '%s' declares no test data; evaluating on the train data\n", m->name);
    rc = dl_tr_load_data(m, o, 0, &d);
    if (rc == 0) fprintf(stderr, "error: model '%s' declares no data to evaluate on\n", m->name);
  }
  if (rc != 1) return DL_EXIT_FAIL;
  int status = DL_EXIT_FAIL;
  int cap = dl_tr_capacity(m, o->batch, d.n);
  dl_ctx *ctx = cap > 0 ? dl_tr_open_loaded(m, o, cap) : NULL;
  int64_t *idx = ctx ? malloc((size_t)cap * sizeof *idx) : NULL;
  if (ctx && !idx) fprintf(stderr, "error: out of memory\n");
  if (idx) {
    dl_eval_result ev;
    dl_tr_evaluate(ctx, &d, idx, &ev);
    printf("%s_loss %.6g", which, ev.loss);
    if (dl_tr_reports_bpc(m)) printf("  %s_bpc %.6g", which, dl_tr_bpc(ev.loss));
    if (ev.has_acc) printf("  %s_acc %.4f", which, ev.acc);
    printf("  samples %" PRId64 "\n", d.n);
    status = fflush(stdout) == 0 ? DL_EXIT_OK : DL_EXIT_FAIL;
  }
  free(idx);
  dl_tr_ctx_close(ctx);
  dl_dataset_free(&d);
  return status;
}

/* ---- predict ----------------------------------------------------------- */

static void print_row(const dl_model_desc *m, const dl_real *o) {
  int64_t len = m->y_kind == DL_Y_CLASS ? dl_model_y_len(m) : 1;
  if (m->pred_kind == DL_PRED_ARGMAX) {
    /* a class per position: out is len slices of out_size / len */
    int64_t per = m->out_size / len;
    for (int64_t t = 0; t < len; t++)
      printf("%s%" PRId64, t ? " " : "", argmax(o + (size_t)(t * per), per));
    putchar('\n');
    return;
  }
  const char *fmt = m->pred_kind == DL_PRED_BINARY ? "%s%.6g" : "%s%.9g";
  for (int64_t k = 0; k < m->out_size; k++) printf(fmt, k ? "," : "", (double)o[k]);
  putchar('\n');
}

static void predict_batch(dl_ctx *ctx, int n) {
  if (n == 0) return;
  ctx->m->forward(ctx, n, 0);
  for (int r = 0; r < n; r++) print_row(ctx->m, ctx->out + (size_t)r * (size_t)ctx->m->out_size);
  fflush(stdout);
}

static int is_blank(const char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  return *s == '\0';
}

/* The training data's scale: raw values (e.g. pixel bytes) go in as the
 * model saw them in training.  Every declared scale counts, 0 included;
 * text data has none (1). */
static double input_scale(const dl_model_desc *m) {
  const dl_data_spec *s = &m->defaults.train;
  return s->kind == DL_DATA_NONE || s->kind == DL_DATA_TEXT ? 1.0 : s->scale;
}

/* Parses `line` (row `row` of stdin) into x; 0, or -1 with a message.
 * The training loaders' rules and preprocessing: finite numbers within
 * float range, kept as float32, times the training scale; for a model
 * with token inputs, what that gives must be token ids (as the loaders
 * check a data set's). */
static int parse_input(const dl_model_desc *m, char *line, int64_t row, dl_real *x) {
  size_t len = strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
  int64_t bad = 0;
  double bad_val = 0;
  int got = dl_parse_csv_row(line, x, m->x_size, &bad, &bad_val);
  if (got == -2) {
    fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: %g is out of float range\n", row, bad,
            bad_val);
    return -1;
  }
  if (got < 0) {
    fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: malformed number\n", row, bad);
    return -1;
  }
  if (got != m->x_size) {
    /* Point at the first missing or the first extra field. */
    int64_t col = got < m->x_size ? got + 1 : m->x_size + 1;
    fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: expected %" PRId64 " values, got %d\n",
            row, col, m->x_size, got);
    return -1;
  }
  double scale = input_scale(m);
  for (int64_t k = 0; k < m->x_size; k++) {
    double v = (double)x[k] * scale;
    if (m->x_vocab > 0 && !dl_is_token_id(v, m->x_vocab)) {
      fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: %.15g is not a token id "
              "(an integer in [0, %" PRId64 "))\n", row, k + 1, v, m->x_vocab);
      return -1;
    }
    x[k] = dl_input_value(x[k], scale);
  }
  return 0;
}

/* Rows are batched up to capacity; on a terminal each row is answered as
 * it is typed. */
static int predict_stream(dl_ctx *ctx, FILE *in) {
  const dl_model_desc *m = ctx->m;
  int cap = isatty(fileno(in)) ? 1 : ctx->capacity;
  char *line = NULL;
  size_t linecap = 0;
  int64_t row = 0;
  int n = 0, rc = 0;
  while (getline(&line, &linecap, in) >= 0) {
    row++;
    if (is_blank(line)) continue;
    if (parse_input(m, line, row, ctx->x + (size_t)n * (size_t)m->x_size)) {
      rc = -1;
      break;
    }
    if (++n == cap) {
      predict_batch(ctx, n);
      n = 0;
    }
  }
  if (rc == 0 && ferror(in)) {
    fprintf(stderr, "error: reading stdin: %s\n", strerror(errno));
    rc = -1;
  }
  if (rc == 0) predict_batch(ctx, n);
  free(line);
  return rc;
}

int dl_tr_cmd_predict(const dl_model_desc *m, const dl_opts *o) {
  int cap = o->batch > 0 ? o->batch : 256;
  dl_ctx *ctx = dl_tr_open_loaded(m, o, cap);
  if (!ctx) return DL_EXIT_FAIL;
  int rc = predict_stream(ctx, stdin);
  if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
    fprintf(stderr, "error: writing predictions to stdout failed\n");
    rc = -1;
  }
  dl_tr_ctx_close(ctx);
  return rc == 0 ? DL_EXIT_OK : DL_EXIT_FAIL;
}
