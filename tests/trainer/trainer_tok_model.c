/* A hand-written next-token model standing in for dlnc's generated code
 * (x : class[T, V], y : class[T, V]): a bigram table, logits[t] = W[x[t]] + b,
 * softmax cross-entropy at every position, trained by plain SGD.  Position t
 * reads token t only, so the model is causal, as `sample` assumes.
 *
 * Compile-time variants (see CMakeLists.txt):
 *   TOK_LAST        one label per sample (y : class[V]): the logits of the
 *                   last position only; trains on CSV rows of token ids
 *   TOK_LAST_TEXT   (with TOK_LAST) declares text data, which must be refused
 *
 * The step functions abort on contract violations the trainer must not
 * commit: an input that is not a token id, a label out of range, a wrong
 * mode, a batch out of range. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dl_model.h"

#define TOK_T 8
#define TOK_V 128
#ifdef TOK_LAST
#define TOK_L 1        /* labels per sample */
#else
#define TOK_L TOK_T
#endif

enum { W = 0, B = TOK_V * TOK_V, GW = B + TOK_V, GB = GW + TOK_V * TOK_V, STATE = GB + TOK_V };

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "tok model: contract violated: %s\n", #cond);          \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* The token at (row r, label position l): the position whose logits give label l. */
static int token(const dl_ctx *ctx, int r, int l) {
  dl_real v = ctx->x[r * TOK_T + (TOK_L == 1 ? TOK_T - 1 : l)];
  CHECK(v >= 0 && v < TOK_V && v == floor(v));
  return (int)v;
}

static void tok_forward_rows(dl_ctx *ctx, int n) {
  const dl_real *w = ctx->state + W, *b = ctx->state + B;
  for (int r = 0; r < n; r++)
    for (int l = 0; l < TOK_L; l++) {
      const dl_real *row = w + token(ctx, r, l) * TOK_V;
      dl_real *o = ctx->out + (r * TOK_L + l) * TOK_V;
      for (int c = 0; c < TOK_V; c++) o[c] = row[c] + b[c];
    }
}

/* softmax of the logits at o into p; returns log of the normaliser. */
static double softmax(const dl_real *o, double *p) {
  double mx = o[0], s = 0;
  for (int c = 1; c < TOK_V; c++) mx = o[c] > mx ? o[c] : mx;
  for (int c = 0; c < TOK_V; c++) s += p[c] = exp(o[c] - mx);
  for (int c = 0; c < TOK_V; c++) p[c] /= s;
  return mx + log(s);
}

/* Mean cross-entropy over every labelled position of the n rows. */
static double tok_loss(const dl_ctx *ctx, int n) {
  double s = 0, p[TOK_V];
  for (int i = 0; i < n * TOK_L; i++) {
    int y = ctx->y_class[i];
    CHECK(y >= 0 && y < TOK_V);
    s += softmax(ctx->out + i * TOK_V, p) - ctx->out[i * TOK_V + y];
  }
  return s / (n * TOK_L);
}

static double tok_forward(dl_ctx *ctx, int n, int with_loss) {
  CHECK(n >= 1 && n <= ctx->capacity);
  CHECK(ctx->train_mode == 0);
  tok_forward_rows(ctx, n);
  return with_loss ? tok_loss(ctx, n) : 0.0;
}

static double tok_loss_only(dl_ctx *ctx, int n) {
  CHECK(n >= 1 && n <= ctx->capacity);
  tok_forward_rows(ctx, n);
  return tok_loss(ctx, n);
}

static double tok_compute_grads(dl_ctx *ctx, int n) {
  CHECK(ctx->train_mode == 1);
  double loss = tok_loss_only(ctx, n), p[TOK_V];
  dl_real *gw = ctx->state + GW, *gb = ctx->state + GB;
  for (int i = 0; i < TOK_V * TOK_V; i++) gw[i] = 0;
  for (int c = 0; c < TOK_V; c++) gb[c] = 0;
  for (int r = 0; r < n; r++)
    for (int l = 0; l < TOK_L; l++) {
      int i = r * TOK_L + l;
      softmax(ctx->out + i * TOK_V, p);
      dl_real *g = gw + token(ctx, r, l) * TOK_V;
      for (int c = 0; c < TOK_V; c++) {
        double d = (p[c] - (c == ctx->y_class[i])) / (n * TOK_L);
        g[c] += (dl_real)d;
        gb[c] += (dl_real)d;
      }
    }
  return loss;
}

/* Nonzero if a weight it wrote is not finite (the contract of dl_model.h). */
static int tok_apply_update(dl_ctx *ctx) {
  dl_real *s = ctx->state;
  dl_bits top = 0;
  for (int i = 0; i < GW; i++) {
    s[i] -= (dl_real)(ctx->lr * s[GW + i]);
    top = dl_bits_max(top, dl_abs_bits(s[i]));
  }
  ctx->step++;
  return top >= DL_INF_BITS;
}

static const dl_tensor_desc tok_tensors[] = {
    {"bigram.weight", DL_T_PARAM, 2, {TOK_V, TOK_V}, W, TOK_V * TOK_V, DL_INIT_TORCH_DEFAULT, TOK_V, TOK_V, 0, 3, -1},
    {"bigram.bias", DL_T_PARAM, 1, {TOK_V}, B, TOK_V, DL_INIT_ZERO, 0, 0, 0, 3, -1},
    {"bigram.weight.grad", DL_T_GRAD, 2, {TOK_V, TOK_V}, GW, TOK_V * TOK_V, DL_INIT_ZERO, 0, 0, 0, 3, -1},
    {"bigram.bias.grad", DL_T_GRAD, 1, {TOK_V}, GB, TOK_V, DL_INIT_ZERO, 0, 0, 0, 3, -1},
};

static const dl_model_desc tok_desc = {
    .name = "tok",
    .source = "tok.dln",
    .x_ndim = 1,
    .x_shape = {TOK_T},
    .x_size = TOK_T,
    .x_vocab = TOK_V,
    .y_kind = DL_Y_CLASS,
    .y_size = TOK_V,
    .y_len = TOK_L,
    .pred_kind = DL_PRED_ARGMAX,
    .out_size = TOK_L * TOK_V,
    .state_elems = STATE,
    .act_elems_per_sample = 0,
    .act_elems_fixed = 0,
    .n_tensors = (int)(sizeof tok_tensors / sizeof tok_tensors[0]),
    .tensors = tok_tensors,
    .defaults = {
        .batch = 16,
        .epochs = 3,
        .lr = 20,
        .seed = 3,
        .schedule = {.kind = DL_SCHED_CONSTANT},
        .data_dir = ".",
#if defined(TOK_LAST) && !defined(TOK_LAST_TEXT)
        .train = {.kind = DL_DATA_CSV, .path = {"train.csv", NULL}, .scale = 1.0, .line = 5},
        .test = {.kind = DL_DATA_NONE},
#else
        /* the first 80% of the corpus to train on, the rest to test */
        .train = {DL_DATA_TEXT, {"corpus", NULL}, 1.0, 0, 5, 0.0, 0.8},
        .test = {DL_DATA_TEXT, {"corpus", NULL}, 1.0, 0, 6, 0.8, 1.0},
#endif
    },
    .compute_grads = tok_compute_grads,
    .apply_update = tok_apply_update,
    .forward = tok_forward,
    .loss_only = tok_loss_only,
};

int main(int argc, char **argv) { return dl_trainer_main(&tok_desc, argc, argv); }
