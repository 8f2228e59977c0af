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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- eval -------------------------------------------------------------- */

/* A classifier's confusion matrix: conf[t * classes + p] counts the
 * decisions (rows, or positions with a label per position) of true class t
 * predicted as p.  Only argmax heads (cross_entropy; the label a class, or
 * one-hot targets) and one-output binary heads (classes 0 and 1) have one. */
typedef struct confusion {
  int64_t classes, total;
  int64_t *conf;
} confusion;

/* Past this a matrix of int64 counts (128 MiB here) is not worth its memory. */
enum { CONFUSION_MAX_CLASSES = 4096 };

static int64_t confusion_classes(const dl_model_desc *m) {
  if (!dl_tr_has_acc(m)) return 0;
  int64_t len = m->y_kind == DL_Y_CLASS ? dl_model_y_len(m) : 1;
  if (m->pred_kind == DL_PRED_ARGMAX) return m->out_size / len;
  if (m->pred_kind == DL_PRED_BINARY && m->out_size / len == 1) return 2;
  return 0;
}

/* Counts the first n rows of ctx->out, as count_correct (trainer_common.c)
 * decides right answers: argmax, or p > 0.5. */
static void confusion_add(const dl_ctx *ctx, int n, confusion *c) {
  const dl_model_desc *m = ctx->m;
  int cls = m->y_kind == DL_Y_CLASS;
  int64_t len = cls ? dl_model_y_len(m) : 1;
  int64_t os = m->out_size / len, ys = m->y_size;
  for (int64_t r = 0; r < (int64_t)n * len; r++) {
    const dl_real *o = ctx->out + (size_t)r * (size_t)os;
    const dl_real *yr = cls ? NULL : ctx->y_real + (size_t)r * (size_t)ys;
    int64_t want, got;
    if (m->pred_kind == DL_PRED_ARGMAX) {
      want = cls ? ctx->y_class[r] : dl_tr_argmax(yr, ys);
      got = dl_tr_argmax(o, os);
    } else {
      want = cls ? ctx->y_class[r] > 0 : yr[0] > 0.5;
      got = o[0] > 0.5;
    }
    c->conf[want * c->classes + got]++;
    c->total++;
  }
}

/* One more forward pass over d for the matrix (dl_tr_evaluate's batches). */
static void confusion_run(dl_ctx *ctx, const dl_dataset *d, int64_t *idx, confusion *c) {
  const dl_model_desc *m = ctx->m;
  int cap = ctx->capacity;
  for (int64_t start = 0; start < d->n; start += cap) {
    int nb = (int)(d->n - start < cap ? d->n - start : cap);
    for (int k = 0; k < nb; k++)
      idx[k] = m->stateful ? dl_tr_stream_sample(d->n, cap, start / cap, k) : start + k;
    if (m->stateful) ctx->carry = dl_tr_stream_carry(d->n, cap, start / cap);
    dl_dataset_gather_pool(ctx->pool, d, idx, nb, ctx->x, ctx->y_class, ctx->y_real);
    m->forward(ctx, nb, 1);
    confusion_add(ctx, nb, c);
  }
  ctx->carry = DL_CARRY_OFF;
}

static int64_t row_sum(const confusion *c, int64_t t) {
  int64_t s = 0;
  for (int64_t p = 0; p < c->classes; p++) s += c->conf[t * c->classes + p];
  return s;
}

/* Beyond this many classes (a byte-level text model's 128 or 256) the
 * matrix is no longer readable as text: it is left to --json, and only the
 * classes that occur get a per-class line. */
enum { TEXT_MATRIX_MAX = 20 };

/* Per-class accuracy (the recall: right / decisions of the true class) and
 * the matrix, aligned for reading. */
static void confusion_print_text(const confusion *c) {
  int wide = c->classes > TEXT_MATRIX_MAX;
  printf("class    count  correct  accuracy\n");
  for (int64_t t = 0; t < c->classes; t++) {
    int64_t n = row_sum(c, t), right = c->conf[t * c->classes + t];
    if (wide && n == 0) continue;
    if (n) printf("%5" PRId64 "  %7" PRId64 "  %7" PRId64 "  %.4f\n", t, n, right,
                  (double)right / (double)n);
    else printf("%5" PRId64 "  %7" PRId64 "  %7" PRId64 "  -\n", t, n, right);
  }
  if (wide) {
    printf("confusion matrix: %" PRId64 " classes, too many to print here (see --json)\n",
           c->classes);
    return;
  }
  printf("confusion matrix (rows: true class, columns: predicted class)\n%5s", "");
  for (int64_t p = 0; p < c->classes; p++) printf(" %7" PRId64, p);
  putchar('\n');
  for (int64_t t = 0; t < c->classes; t++) {
    printf("%5" PRId64, t);
    for (int64_t p = 0; p < c->classes; p++) printf(" %7" PRId64, c->conf[t * c->classes + p]);
    putchar('\n');
  }
}

/* A number as JSON has them: NaN and infinities become null. */
static void json_num(const char *key, double v) {
  if (isfinite(v)) printf(", \"%s\": %.9g", key, v);
  else printf(", \"%s\": null", key);
}

static void eval_print_json(const dl_model_desc *m, const char *which, const dl_eval_result *ev,
                            int64_t n, const confusion *c) {
  printf("{\"data\": \"%s\", \"samples\": %" PRId64, which, n);
  json_num("loss", ev->loss);
  if (m->n_updates) {
    printf(", \"losses\": {");
    for (int k = 0; k < m->n_updates; k++) {
      char key[300];
      dl_tr_loss_key(m, k, key, sizeof key);
      printf("%s\"%s\": ", k ? ", " : "", key); /* binding names: no quotes or escapes */
      if (isfinite(ev->losses[k])) printf("%.9g", ev->losses[k]);
      else printf("null");
    }
    printf("}");
  }
  if (dl_tr_reports_bpc(m)) json_num("bpc", dl_tr_bpc(ev->loss));
  if (ev->has_acc) json_num("accuracy", ev->acc);
  if (c->classes) {
    printf(", \"classes\": %" PRId64 ", \"decisions\": %" PRId64 ", \"class_accuracy\": [",
           c->classes, c->total);
    for (int64_t t = 0; t < c->classes; t++) {
      int64_t rows = row_sum(c, t);
      if (rows) printf("%s%.9g", t ? ", " : "", (double)c->conf[t * c->classes + t] / (double)rows);
      else printf("%snull", t ? ", " : "");
    }
    printf("], \"class_counts\": [");
    for (int64_t t = 0; t < c->classes; t++) printf("%s%" PRId64, t ? ", " : "", row_sum(c, t));
    printf("], \"confusion\": [");
    for (int64_t t = 0; t < c->classes; t++) {
      printf("%s[", t ? ", " : "");
      for (int64_t p = 0; p < c->classes; p++)
        printf("%s%" PRId64, p ? ", " : "", c->conf[t * c->classes + p]);
      printf("]");
    }
    printf("]");
  }
  printf("}\n");
}

static void eval_print_text(const dl_model_desc *m, const char *which, const dl_eval_result *ev,
                            int64_t n, const confusion *c) {
  printf("%s_loss %.6g", which, ev->loss);
  for (int k = 0; k < m->n_updates; k++) {
    char key[300];
    dl_tr_loss_key(m, k, key, sizeof key);
    printf("  %s_%s %.6g", which, key, ev->losses[k]);
  }
  if (dl_tr_reports_bpc(m)) printf("  %s_bpc %.6g", which, dl_tr_bpc(ev->loss));
  if (ev->has_acc) printf("  %s_acc %.4f", which, ev->acc);
  printf("  samples %" PRId64 "\n", n);
  if (c->classes) confusion_print_text(c);
}

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
  confusion c = {confusion_classes(m), 0, NULL};
  if (idx && c.classes &&
      (c.classes > CONFUSION_MAX_CLASSES ||
       !(c.conf = calloc((size_t)(c.classes * c.classes), sizeof *c.conf)))) {
    /* the loss and accuracy still mean something without the matrix */
    fprintf(stderr, "note: model '%s' has %" PRId64 " classes: no confusion matrix (%s)\n", m->name,
            c.classes, c.classes > CONFUSION_MAX_CLASSES ? "too many" : "out of memory");
    c.classes = 0;
  }
  if (ctx && !idx) fprintf(stderr, "error: out of memory\n");
  if (idx) {
    dl_eval_result ev;
    dl_tr_evaluate(ctx, &d, idx, &ev, NULL);
    if (c.classes) confusion_run(ctx, &d, idx, &c);
    if (o->json) eval_print_json(m, which, &ev, d.n, &c);
    else eval_print_text(m, which, &ev, d.n, &c);
    status = fflush(stdout) == 0 ? DL_EXIT_OK : DL_EXIT_FAIL;
  }
  free(c.conf);
  free(idx);
  dl_tr_ctx_close(ctx);
  dl_dataset_free(&d);
  return status;
}

/* ---- predict ----------------------------------------------------------- */

/* What a row of predictions looks like (--proba, --top K, or the class). */
typedef struct pred_fmt {
  int proba, top;
  dl_real *prob;            /* [classes] scratch: one position's probabilities */
  int64_t *order;           /* [classes] scratch: classes, most likely first  */
} pred_fmt;

/* Classes of one position of a --proba/--top model: an argmax head's,
 * or 2 for a one-output binary head (0: p <= 0.5, 1: p > 0.5). */
static int64_t pred_classes(const dl_model_desc *m) {
  int64_t len = m->y_kind == DL_Y_CLASS ? dl_model_y_len(m) : 1;
  if (m->pred_kind == DL_PRED_ARGMAX) return m->out_size / len;
  return m->pred_kind == DL_PRED_BINARY && m->out_size == 1 ? 2 : 0;
}

/* Softmax of n logits (the cross_entropy head's out), max subtracted first. */
static void softmax(const dl_real *z, int64_t n, dl_real *p) {
  double mx = (double)z[0], sum = 0.0;
  for (int64_t k = 1; k < n; k++) mx = (double)z[k] > mx ? (double)z[k] : mx;
  for (int64_t k = 0; k < n; k++) sum += exp((double)z[k] - mx);
  for (int64_t k = 0; k < n; k++) p[k] = (dl_real)(exp((double)z[k] - mx) / sum);
}

/* --top K of one position: classes by score (the logits for an argmax
 * head, so the first is the class `predict` prints; equal scores in class
 * order), then class:probability pairs. */
static void print_top(const pred_fmt *f, const dl_real *score, int64_t n) {
  for (int64_t k = 0; k < n; k++) {
    int64_t j = k;
    for (; j > 0 && score[f->order[j - 1]] < score[k]; j--) f->order[j] = f->order[j - 1];
    f->order[j] = k;
  }
  for (int64_t k = 0; k < f->top; k++)
    printf("%s%" PRId64 ":%.6g", k ? "," : "", f->order[k], (double)f->prob[f->order[k]]);
}

static void print_row(const dl_model_desc *m, const pred_fmt *f, const dl_real *o) {
  int64_t len = m->y_kind == DL_Y_CLASS ? dl_model_y_len(m) : 1;
  if (m->pred_kind == DL_PRED_ARGMAX) {
    /* a class per position: out is len slices of out_size / len */
    int64_t per = m->out_size / len;
    for (int64_t t = 0; t < len; t++) {
      const dl_real *z = o + (size_t)(t * per);
      if (t) putchar(' ');
      if (!f->proba && !f->top) {
        printf("%" PRId64, dl_tr_argmax(z, per));
        continue;
      }
      softmax(z, per, f->prob);
      if (f->top) print_top(f, z, per);
      else
        for (int64_t k = 0; k < per; k++) printf("%s%.6g", k ? "," : "", (double)f->prob[k]);
    }
    putchar('\n');
    return;
  }
  if (f->top) { /* a one-output binary head: classes 0 and 1 */
    dl_real score[2] = {(dl_real)(1.0 - (double)o[0]), o[0]};
    f->prob[0] = score[0];
    f->prob[1] = score[1];
    /* class 1 first only where p > 0.5, as the class is decided */
    score[0] = o[0] > 0.5 ? 0 : 1;
    score[1] = o[0] > 0.5 ? 1 : 0;
    print_top(f, score, 2);
    putchar('\n');
    return;
  }
  /* --proba of a binary head: the probabilities it prints anyway */
  const char *fmt = m->pred_kind == DL_PRED_BINARY ? "%s%.6g" : "%s%.9g";
  for (int64_t k = 0; k < m->out_size; k++) printf(fmt, k ? "," : "", (double)o[k]);
  putchar('\n');
}

static void predict_batch(dl_ctx *ctx, const pred_fmt *f, int n) {
  if (n == 0) return;
  ctx->m->forward(ctx, n, 0);
  for (int r = 0; r < n; r++) print_row(ctx->m, f, ctx->out + (size_t)r * (size_t)ctx->m->out_size);
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

/* Label fields after the inputs in a training CSV row (data.c's layout):
 * one class per position, or the label's values; none without a label. */
static int64_t label_cols(const dl_model_desc *m) {
  if (m->y_kind == DL_Y_CLASS) return dl_model_y_len(m);
  return m->y_kind == DL_Y_REAL ? m->y_size : 0;
}

/* A --labelled row's label fields, checked as the training loader checks
 * them: class labels integers in [0, classes); values were checked finite
 * and in float range by the parser. */
static int check_labels(const dl_model_desc *m, const dl_real *y, int64_t row) {
  if (m->y_kind != DL_Y_CLASS) return 0;
  for (int64_t t = 0; t < dl_model_y_len(m); t++) {
    double v = (double)y[t];
    if (v == floor(v) && v >= 0 && v < (double)m->y_size) continue;
    fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: class label %g is %s [0, %" PRId64 ")\n",
            row, m->x_size + t + 1, v, v != floor(v) ? "not an integer in" : "out of range",
            m->y_size);
    return -1;
  }
  return 0;
}

/* Parses `line` (row `row` of stdin) into x (room for nf fields: the
 * inputs, then with --labelled the label fields); 0, or -1 with a message.
 * The training loaders' rules and preprocessing: finite numbers within
 * float range, kept as float32, times the training scale; for a model
 * with token inputs, what that gives must be token ids (as the loaders
 * check a data set's). */
static int parse_input(const dl_model_desc *m, char *line, int64_t row, int64_t nf, dl_real *x) {
  size_t len = strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
  int64_t bad = 0;
  double bad_val = 0;
  int got = dl_parse_csv_row(line, x, nf, &bad, &bad_val);
  if (got == -2) {
    fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: %g is out of float range\n", row, bad,
            bad_val);
    return -1;
  }
  if (got < 0) {
    fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: malformed number\n", row, bad);
    return -1;
  }
  if (got != nf) {
    /* Point at the first missing or the first extra field. */
    int64_t col = got < nf ? got + 1 : nf + 1;
    if (nf > m->x_size)
      fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: expected %" PRId64 " fields (%" PRId64
              " input values, then %" PRId64 " label fields), got %d\n",
              row, col, nf, m->x_size, nf - m->x_size, got);
    else
      fprintf(stderr, "stdin:%" PRId64 ":%" PRId64 ": error: expected %" PRId64 " values, got %d%s\n",
              row, col, nf, got,
              got == nf + label_cols(m) && label_cols(m) ? " (a labelled row? see --labelled)" : "");
    return -1;
  }
  if (nf > m->x_size && check_labels(m, x + m->x_size, row)) return -1;
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
 * it is typed.  Each row is parsed into `fields` (inputs and, with
 * --labelled, the label fields), then its inputs go to the batch.  With
 * --header the first non-blank line is skipped, as the training loader
 * skips a CSV's header. */
static int predict_stream(dl_ctx *ctx, const dl_opts *o, const pred_fmt *f, FILE *in) {
  const dl_model_desc *m = ctx->m;
  int cap = isatty(fileno(in)) ? 1 : ctx->capacity;
  int64_t nf = m->x_size + (o->labelled ? label_cols(m) : 0);
  dl_real *fields = malloc((size_t)nf * sizeof *fields);
  char *line = NULL;
  size_t linecap = 0;
  int64_t row = 0;
  int n = 0, rc = 0, skip = o->header;
  if (!fields) {
    fprintf(stderr, "error: out of memory\n");
    return -1;
  }
  while (getline(&line, &linecap, in) >= 0) {
    row++;
    if (is_blank(line)) continue;
    if (skip) {
      skip = 0;
      continue;
    }
    if (parse_input(m, line, row, nf, fields)) {
      rc = -1;
      break;
    }
    memcpy(ctx->x + (size_t)n * (size_t)m->x_size, fields, (size_t)m->x_size * sizeof *fields);
    if (++n == cap) {
      predict_batch(ctx, f, n);
      n = 0;
    }
  }
  if (rc == 0 && ferror(in)) {
    fprintf(stderr, "error: reading stdin: %s\n", strerror(errno));
    rc = -1;
  }
  if (rc == 0) predict_batch(ctx, f, n);
  free(fields);
  free(line);
  return rc;
}

/* --proba and --top need classes; --top at most their number. */
static int check_pred_opts(const dl_model_desc *m, const dl_opts *o) {
  int64_t classes = pred_classes(m);
  const char *flag = o->top ? "--top" : "--proba";
  if ((o->proba || o->top) && m->pred_kind == DL_PRED_VALUES) {
    fprintf(stderr, "error: predict: %s: model '%s' predicts values (regression or a "
            "reconstruction), not classes: there are no probabilities to print\n", flag, m->name);
    return -1;
  }
  if (o->top && classes == 0) {
    fprintf(stderr, "error: predict: --top: model '%s' has %" PRId64 " independent binary outputs, "
            "not one choice among classes; --proba prints each one's probability\n", m->name,
            m->out_size);
    return -1;
  }
  if (o->top > classes) {
    fprintf(stderr, "error: predict: --top %d: model '%s' has only %" PRId64 " classes\n", o->top,
            m->name, classes);
    return -1;
  }
  return 0;
}

int dl_tr_cmd_predict(const dl_model_desc *m, const dl_opts *o) {
  if (check_pred_opts(m, o)) return DL_EXIT_USAGE;
  int64_t classes = pred_classes(m);
  pred_fmt f = {o->proba, o->top, NULL, NULL};
  if (classes > 0) {
    f.prob = malloc((size_t)classes * sizeof *f.prob);
    f.order = malloc((size_t)classes * sizeof *f.order);
    if (!f.prob || !f.order) {
      fprintf(stderr, "error: out of memory\n");
      free(f.prob);
      free(f.order);
      return DL_EXIT_FAIL;
    }
  }
  int cap = o->batch > 0 ? o->batch : 256;
  dl_ctx *ctx = dl_tr_open_loaded(m, o, cap);
  if (!ctx) {
    free(f.prob);
    free(f.order);
    return DL_EXIT_FAIL;
  }
  int rc = predict_stream(ctx, o, &f, stdin);
  if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
    fprintf(stderr, "error: writing predictions to stdout failed\n");
    rc = -1;
  }
  dl_tr_ctx_close(ctx);
  free(f.prob);
  free(f.order);
  return rc == 0 ? DL_EXIT_OK : DL_EXIT_FAIL;
}
