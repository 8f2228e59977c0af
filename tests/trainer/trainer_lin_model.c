/* A hand-written model descriptor standing in for dlnc's generated code:
 * z = x W^T + b, IN inputs -> OUT outputs, plus an L2 penalty on W, trained
 * by SGD with momentum (so there is optimiser state to checkpoint).
 *
 * Compile-time variants (see CMakeLists.txt):
 *   LIN_IN=N          input width (a different width = different shapes)
 *   LIN_CLASSIFY      softmax cross-entropy over OUT classes, argmax head;
 *                     otherwise MSE regression with a values head
 *   LIN_WRONG_GRAD    a deliberately wrong bias gradient (gradcheck must fail)
 *   LIN_IDX           (with LIN_CLASSIFY) IDX byte data scaled by 1/255, and
 *                     no test set
 *   LIN_RAISE_ENV     the environment variable LIN_RAISE="STEP:SIGNAL" makes
 *                     optimiser step STEP (1-based) raise SIGNAL in the middle
 *                     of computing its gradients: a signal at an exact,
 *                     repeatable moment (tests/robust)
 *
 * The step functions abort on contract violations the trainer must not
 * commit (wrong mode, batch out of range), so the shell tests catch them. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl_model.h"

#ifndef LIN_IN
#define LIN_IN 3
#endif
#define LIN_OUT 2
#define NW (LIN_OUT * LIN_IN)
#define LAMBDA 0.01   /* L2 penalty: exercises "loss with penalties" */
#define MOMENTUM 0.9

/* State layout (element offsets). */
enum { W = 0, B = NW, GW = NW + LIN_OUT, GB = GW + NW, MW = GB + LIN_OUT, MB = MW + NW,
       STATE = MB + LIN_OUT };

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "lin model: contract violated: %s\n", #cond);          \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* z[r] = W x[r] + b into act; the head (identity or softmax) into out. */
static void lin_forward_rows(dl_ctx *ctx, int n) {
  const dl_real *w = ctx->state + W, *b = ctx->state + B;
  for (int r = 0; r < n; r++) {
    dl_real *z = ctx->act + r * LIN_OUT, *o = ctx->out + r * LIN_OUT;
    const dl_real *x = ctx->x + r * LIN_IN;
    for (int k = 0; k < LIN_OUT; k++) {
      double s = b[k];
      for (int j = 0; j < LIN_IN; j++) s += (double)w[k * LIN_IN + j] * x[j];
      z[k] = (dl_real)s;
    }
#ifdef LIN_CLASSIFY
    double mx = z[0], sum = 0;
    for (int k = 1; k < LIN_OUT; k++) mx = z[k] > mx ? z[k] : mx;
    for (int k = 0; k < LIN_OUT; k++) sum += exp(z[k] - mx);
    for (int k = 0; k < LIN_OUT; k++) o[k] = (dl_real)(exp(z[k] - mx) / sum);
#else
    for (int k = 0; k < LIN_OUT; k++) o[k] = z[k];
#endif
  }
}

/* Mean data loss of the rows in out. */
static double lin_data_loss(const dl_ctx *ctx, int n) {
  double s = 0;
  for (int r = 0; r < n; r++) {
#ifdef LIN_CLASSIFY
    s -= log(fmax((double)ctx->out[r * LIN_OUT + ctx->y_class[r]], 1e-300));
#else
    for (int k = 0; k < LIN_OUT; k++) {
      double d = (double)ctx->out[r * LIN_OUT + k] - ctx->y_real[r * LIN_OUT + k];
      s += d * d / LIN_OUT;
    }
#endif
  }
  return s / n;
}

static double lin_penalty(const dl_ctx *ctx) {
  double s = 0;
  for (int i = 0; i < NW; i++) s += (double)ctx->state[W + i] * ctx->state[W + i];
  return 0.5 * LAMBDA * s;
}

static double lin_forward(dl_ctx *ctx, int n, int with_loss) {
  CHECK(n >= 1 && n <= ctx->capacity);
  CHECK(ctx->train_mode == 0); /* the trainer evaluates and predicts in eval mode */
  lin_forward_rows(ctx, n);
  return with_loss ? lin_data_loss(ctx, n) : 0.0;
}

static double lin_loss_only(dl_ctx *ctx, int n) {
  CHECK(n >= 1 && n <= ctx->capacity);
  lin_forward_rows(ctx, n);
  return lin_data_loss(ctx, n) + lin_penalty(ctx);
}

/* dL/dz of row r, output k. */
static double dz(const dl_ctx *ctx, int n, int r, int k) {
  double o = ctx->out[r * LIN_OUT + k];
#ifdef LIN_CLASSIFY
  return (o - (ctx->y_class[r] == k)) / n;
#else
  return 2.0 * (o - ctx->y_real[r * LIN_OUT + k]) / (LIN_OUT * n);
#endif
}

#ifdef LIN_RAISE_ENV
static void maybe_raise(const dl_ctx *ctx) {
  const char *spec = getenv("LIN_RAISE");
  long step, sig;
  if (spec && sscanf(spec, "%ld:%ld", &step, &sig) == 2 && ctx->step + 1 == step) raise((int)sig);
}
#else
static void maybe_raise(const dl_ctx *ctx) { (void)ctx; }
#endif

static double lin_compute_grads(dl_ctx *ctx, int n) {
  CHECK(n >= 1 && n <= ctx->capacity);
  CHECK(ctx->train_mode == 1);
  maybe_raise(ctx);
  double loss = lin_loss_only(ctx, n);
  dl_real *gw = ctx->state + GW, *gb = ctx->state + GB;
  for (int i = 0; i < NW; i++) gw[i] = (dl_real)(LAMBDA * ctx->state[W + i]);
  for (int k = 0; k < LIN_OUT; k++) gb[k] = 0;
  for (int r = 0; r < n; r++)
    for (int k = 0; k < LIN_OUT; k++) {
      double g = dz(ctx, n, r, k);
      gb[k] += (dl_real)g;
      for (int j = 0; j < LIN_IN; j++) gw[k * LIN_IN + j] += (dl_real)(g * ctx->x[r * LIN_IN + j]);
    }
#ifdef LIN_WRONG_GRAD
  gb[0] *= (dl_real)1.5;
#endif
  return loss;
}

/* Nonzero if a weight or momentum value it wrote is not finite (the
 * contract of dl_model.h). */
static int lin_apply_update(dl_ctx *ctx) {
  dl_real *s = ctx->state;
  dl_bits top = 0;
  for (int i = 0; i < NW + LIN_OUT; i++) {
    /* Params W|B, grads GW|GB and buffers MW|MB are laid out alike. */
    s[MW + i] = (dl_real)(MOMENTUM * s[MW + i] + s[GW + i]);
    s[W + i] -= (dl_real)(ctx->lr * s[MW + i]);
    top = dl_bits_max(top, dl_bits_max(dl_abs_bits(s[MW + i]), dl_abs_bits(s[W + i])));
  }
  ctx->step++;
  return top >= DL_INF_BITS;
}

static const dl_tensor_desc lin_tensors[] = {
    {"lin.weight", DL_T_PARAM, 2, {LIN_OUT, LIN_IN}, W, NW, DL_INIT_TORCH_DEFAULT, LIN_IN, LIN_OUT, 0, 3, -1},
    {"lin.bias", DL_T_PARAM, 1, {LIN_OUT}, B, LIN_OUT, DL_INIT_TORCH_DEFAULT, LIN_IN, LIN_OUT, 0, 3, -1},
    {"lin.weight.grad", DL_T_GRAD, 2, {LIN_OUT, LIN_IN}, GW, NW, DL_INIT_ZERO, 0, 0, 0, 3, -1},
    {"lin.bias.grad", DL_T_GRAD, 1, {LIN_OUT}, GB, LIN_OUT, DL_INIT_ZERO, 0, 0, 0, 3, -1},
    {"lin.weight.momentum_buffer", DL_T_OPT, 2, {LIN_OUT, LIN_IN}, MW, NW, DL_INIT_ZERO, 0, 0, 0, 3, -1},
    {"lin.bias.momentum_buffer", DL_T_OPT, 1, {LIN_OUT}, MB, LIN_OUT, DL_INIT_ZERO, 0, 0, 0, 3, -1},
};

static const dl_model_desc lin_desc = {
    .name = "lin",
    .source = "lin.dln",
    .x_ndim = 1,
    .x_shape = {LIN_IN},
    .x_size = LIN_IN,
#ifdef LIN_CLASSIFY
    .y_kind = DL_Y_CLASS,
    .pred_kind = DL_PRED_ARGMAX,
#else
    .y_kind = DL_Y_REAL,
    .pred_kind = DL_PRED_VALUES,
#endif
    .y_size = LIN_OUT,
    .out_size = LIN_OUT,
    .state_elems = STATE,
    .act_elems_per_sample = LIN_OUT,
    .act_elems_fixed = 0,
    .n_tensors = (int)(sizeof lin_tensors / sizeof lin_tensors[0]),
    .tensors = lin_tensors,
    .defaults = {
        .batch = 16,
        .epochs = 3,
        .lr = 0.05,
        .seed = 7,
        /* StepLR and warm-up, so resume must get the rate right too. */
        .schedule = {.kind = DL_SCHED_STEP, .step_size = 1, .gamma = 0.7, .warmup_steps = 5},
        .data_dir = ".",
#ifdef LIN_IDX
        .train = {.kind = DL_DATA_IDX, .path = {"train-x.idx", "train-y.idx"}, .scale = 1.0 / 255,
                  .line = 5},
        .test = {.kind = DL_DATA_NONE},
#else
        .train = {.kind = DL_DATA_CSV, .path = {"train.csv", NULL}, .scale = 1.0, .header = 1, .line = 5},
        .test = {.kind = DL_DATA_CSV, .path = {"test.csv", NULL}, .scale = 1.0, .header = 1, .line = 6},
#endif
    },
    .compute_grads = lin_compute_grads,
    .apply_update = lin_apply_update,
    .forward = lin_forward,
    .loss_only = lin_loss_only,
};

int main(int argc, char **argv) { return dl_trainer_main(&lin_desc, argc, argv); }
