/* trainer_eval.c: the `eval` and `predict` commands (the evaluation itself,
 * shared with train, is in trainer_common.c). */
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
    for (int k = 0; k < m->n_updates; k++) {
      char key[300];
      dl_tr_loss_key(m, k, key, sizeof key);
      printf("  %s_%s %.6g", which, key, ev.losses[k]);
    }
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
      printf("%s%" PRId64, t ? " " : "", dl_tr_argmax(o + (size_t)(t * per), per));
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
