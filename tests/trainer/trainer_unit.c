/* trainer_unit.c: unit tests of the trainer's runtime pieces that the shell
 * tests cannot see well: learning-rate schedules against PyTorch's values,
 * initialisers, checkpoint validation (messages, no half-loading,
 * params-only loads, dtype conversion), labels per position in the context,
 * and sample's draw (softmax with a temperature).
 * Usage: trainer_unit WORKDIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl_model.h"
#include "progress.h"
#include "safetensors.h"
#include "schedule.h"
#include "trainer_internal.h"
#include "../expect.h"

#define EXPECT_NEAR(a, b, tol) EXPECT(fabs((double)(a) - (double)(b)) <= (tol))

/* ---- a model description without step functions ------------------------ */

enum { NBIG = 100 * 100, NU = 1000 };
enum { O_W = 0, O_BIG = 6, O_U = O_BIG + NBIG, O_WG = O_U + NU, O_ACC = O_WG + 6, N_STATE = O_ACC + 6 };

static const dl_tensor_desc tensors_a[] = {
    {"w", DL_T_PARAM, 2, {2, 3}, O_W, 6, DL_INIT_TORCH_DEFAULT, 3, 2, 0, 1, -1},
    {"big", DL_T_PARAM, 2, {100, 100}, O_BIG, NBIG, DL_INIT_HE_NORMAL, 100, 100, 0, 2, -1},
    {"u", DL_T_PARAM, 1, {NU}, O_U, NU, DL_INIT_XAVIER_UNIFORM, 30, 70, 0, 3, -1},
    {"w.grad", DL_T_GRAD, 2, {2, 3}, O_WG, 6, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"acc", DL_T_OPT, 2, {2, 3}, O_ACC, 6, DL_INIT_ZERO, 0, 0, 0.1, 1, -1},
};
/* Same model name, "w" one column wider (everything after it shifted). */
static const dl_tensor_desc tensors_b[] = {
    {"w", DL_T_PARAM, 2, {2, 4}, O_W, 8, DL_INIT_TORCH_DEFAULT, 4, 2, 0, 1, -1},
    {"big", DL_T_PARAM, 2, {100, 100}, O_BIG + 2, NBIG, DL_INIT_HE_NORMAL, 100, 100, 0, 2, -1},
    {"u", DL_T_PARAM, 1, {NU}, O_U + 2, NU, DL_INIT_XAVIER_UNIFORM, 30, 70, 0, 3, -1},
    {"w.grad", DL_T_GRAD, 2, {2, 4}, O_WG + 2, 8, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"acc", DL_T_OPT, 2, {2, 4}, O_ACC + 2, 8, DL_INIT_ZERO, 0, 0, 0.1, 1, -1},
};

static dl_model_desc make_desc(const dl_tensor_desc *t, size_t state) {
  dl_model_desc m;
  memset(&m, 0, sizeof m);
  m.name = "u";
  m.source = "u.dln";
  m.x_size = 3;
  m.y_kind = DL_Y_REAL;
  m.y_size = 2;
  m.out_size = 2;
  m.state_elems = state;
  m.act_elems_per_sample = 4;
  m.n_tensors = 5;
  m.tensors = t;
  return m;
}

/* ---- schedules ---------------------------------------------------------- */

static void test_schedules(void) {
  dl_schedule s = {DL_SCHED_CONSTANT, 0, 0, 0, 0, 0};
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 7, 10, 100), 0.1, 1e-15);
  /* StepLR(step_size=2, gamma=0.5): 0.1 0.1 0.05 0.05 0.025 */
  s = (dl_schedule){DL_SCHED_STEP, 2, 0.5, 0, 0, 0};
  const double step_lr[] = {0.1, 0.1, 0.05, 0.05, 0.025};
  for (int e = 0; e < 5; e++) EXPECT_NEAR(dl_sched_lr(&s, 0.1, e, 10, 0), step_lr[e], 1e-15);
  /* ExponentialLR(gamma=0.9) at epoch 3: 0.1 * 0.729 */
  s = (dl_schedule){DL_SCHED_EXPONENTIAL, 0, 0.9, 0, 0, 0};
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 3, 10, 0), 0.0729, 1e-15);
  /* CosineAnnealingLR(T_max=10, eta_min=0.001): start, middle, end */
  s = (dl_schedule){DL_SCHED_COSINE, 0, 0, 10, 0.001, 0};
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 0, 99, 0), 0.1, 1e-15);
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 5, 99, 0), 0.0505, 1e-15);
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 10, 99, 0), 0.001, 1e-15);
  /* T_max 0 = the total epochs (here 4): epoch 2 is the middle */
  s.t_max = 0;
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 2, 4, 0), 0.0505, 1e-15);
  /* Linear warm-up over 4 steps, then full rate. */
  s = (dl_schedule){DL_SCHED_CONSTANT, 0, 0, 0, 0, 4};
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 0, 10, 0), 0.025, 1e-15);
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 0, 10, 2), 0.075, 1e-15);
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 3, 10, 3), 0.1, 1e-15);
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 3, 10, 1000), 0.1, 1e-15);
  /* A zero step size must not divide by zero. */
  s = (dl_schedule){DL_SCHED_STEP, 0, 0.5, 0, 0, 0};
  EXPECT_NEAR(dl_sched_lr(&s, 0.1, 5, 10, 0), 0.1, 1e-15);
}

/* ---- contexts and initialisers ------------------------------------------ */

/* The progress bar's ETA: 250 of 1000 samples in 10 s leaves 30 s of the
 * epoch, and epoch 2 of 5 three more epochs of 40 s: 150 s of the run. */
static void test_eta(void) {
  double e, r;
  dl_progress_eta(10.0, 0, 250, 1000, 2, 5, &e, &r);
  EXPECT_NEAR(e, 30.0, 1e-12);
  EXPECT_NEAR(r, 150.0, 1e-12);
  /* resumed 500 samples in: 250 more in 10 s, 250 left */
  dl_progress_eta(10.0, 500, 750, 1000, 5, 5, &e, &r);
  EXPECT_NEAR(e, 10.0, 1e-12);
  EXPECT_NEAR(r, 10.0, 1e-12);
  dl_progress_eta(10.0, 0, 1000, 1000, 5, 5, &e, &r); /* the last epoch done */
  EXPECT_NEAR(e, 0.0, 1e-12);
  EXPECT_NEAR(r, 0.0, 1e-12);
  dl_progress_eta(0.0, 0, 0, 1000, 1, 5, &e, &r); /* nothing known yet */
  EXPECT(e < 0 && r < 0);
}

static void test_ctx_new(void) {
  dl_model_desc m = make_desc(tensors_a, N_STATE);
  char err[256] = "";
  EXPECT(dl_ctx_new(&m, 0, err, sizeof err) == NULL);
  EXPECT_MSG(err, "at least 1");
  m.act_elems_per_sample = SIZE_MAX / 4; /* overflows with capacity 8 */
  err[0] = '\0';
  EXPECT(dl_ctx_new(&m, 8, err, sizeof err) == NULL);
  EXPECT_MSG(err, "out of memory");
  m = make_desc(tensors_a, N_STATE);
  dl_ctx *ctx = dl_ctx_new(&m, 5, err, sizeof err);
  EXPECT(ctx && ctx->capacity == 5 && ctx->y_real && !ctx->y_class);
  if (ctx) {
    EXPECT(((uintptr_t)ctx->state & 63) == 0 && ((uintptr_t)ctx->act & 63) == 0);
    EXPECT(((uintptr_t)ctx->x & 63) == 0 && ((uintptr_t)ctx->out & 63) == 0);
    /* The whole act block is addressable (ASan checks the bound). */
    ctx->act[4 * 5 - 1] = 1;
    ctx->x[3 * 5 - 1] = 1;
    ctx->out[2 * 5 - 1] = 1;
    ctx->y_real[2 * 5 - 1] = 1;
  }
  dl_ctx_free(ctx);
}

static void moments(const dl_real *p, size_t n, double *mean, double *sd, double *maxabs) {
  double s = 0, s2 = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    s += p[i];
    s2 += (double)p[i] * p[i];
    mx = fmax(mx, fabs((double)p[i]));
  }
  *mean = s / (double)n;
  *sd = sqrt(s2 / (double)n - *mean * *mean);
  *maxabs = mx;
}

static void test_init(void) {
  dl_model_desc m = make_desc(tensors_a, N_STATE);
  char err[256];
  dl_ctx *a = dl_ctx_new(&m, 1, err, sizeof err), *b = dl_ctx_new(&m, 1, err, sizeof err);
  if (!a || !b) {
    EXPECT(!"dl_ctx_new");
    dl_ctx_free(a);
    dl_ctx_free(b);
    return;
  }
  a->state[O_WG] = 5; /* must be zeroed */
  a->step = 9;
  dl_ctx_init_params(a, 11);
  dl_ctx_init_params(b, 11);
  EXPECT(memcmp(a->state, b->state, N_STATE * sizeof(dl_real)) == 0);
  EXPECT(a->step == 0 && a->seed == 11);
  double mean, sd, mx;
  moments(a->state + O_BIG, NBIG, &mean, &sd, &mx);      /* he_normal: sd sqrt(2/100) */
  EXPECT_NEAR(mean, 0.0, 0.005);
  EXPECT_NEAR(sd, sqrt(0.02), 0.03 * sqrt(0.02));
  moments(a->state + O_U, NU, &mean, &sd, &mx);          /* xavier_uniform: bound sqrt(6/100) */
  EXPECT(mx <= sqrt(0.06) && mx > 0.95 * sqrt(0.06));
  EXPECT_NEAR(sd, sqrt(0.06 / 3), 0.1 * sqrt(0.06 / 3));
  moments(a->state + O_W, 6, &mean, &sd, &mx);           /* torch default: bound 1/sqrt(3) */
  EXPECT(mx <= 1 / sqrt(3.0) && mx > 0);
  EXPECT(a->state[O_WG] == 0);
  for (int i = 0; i < 6; i++) EXPECT_NEAR(a->state[O_ACC + i], 0.1, 1e-7);
  dl_ctx_init_params(b, 12);
  EXPECT(memcmp(a->state + O_BIG, b->state + O_BIG, NBIG * sizeof(dl_real)) != 0);
  dl_ctx_free(a);
  dl_ctx_free(b);
}

/* ---- labels per position ------------------------------------------------ */

static void test_ctx_labels(void) {
  dl_model_desc m = make_desc(tensors_a, N_STATE);
  m.y_kind = DL_Y_CLASS;
  m.y_size = 5;
  m.y_len = 7;
  m.x_vocab = 5;
  char err[256];
  dl_ctx *ctx = dl_ctx_new(&m, 3, err, sizeof err);
  EXPECT(ctx && ctx->y_class && !ctx->y_real);
  if (ctx) for (int i = 0; i < 3 * 7; i++) EXPECT(ctx->y_class[i] == 0); /* [capacity, y_len] */
  dl_ctx_free(ctx);
  EXPECT(dl_model_y_len(&m) == 7);
  m.y_len = 0;
  EXPECT(dl_model_y_len(&m) == 1);
  m.y_len = -1;
  EXPECT(dl_ctx_new(&m, 3, err, sizeof err) == NULL);
  EXPECT_MSG(err, "negative size");
}

/* ---- sample's draw -------------------------------------------------------- */

static void test_draw(void) {
  /* softmax([0, ln 3]) = [1/4, 3/4]: the inverse CDF splits u at 1/4 */
  dl_real l2[2] = {0, (dl_real)log(3.0)};
  EXPECT(dl_tr_draw(l2, 2, 1.0, 0.0) == 0);
  EXPECT(dl_tr_draw(l2, 2, 1.0, 0.2) == 0);
  EXPECT(dl_tr_draw(l2, 2, 1.0, 0.26) == 1);
  EXPECT(dl_tr_draw(l2, 2, 1.0, 0.999999) == 1);
  /* temperature 2 on doubled logits: the same distribution */
  dl_real l2x[2] = {0, (dl_real)(2 * log(3.0))};
  EXPECT(dl_tr_draw(l2x, 2, 2.0, 0.2) == 0 && dl_tr_draw(l2x, 2, 2.0, 0.26) == 1);
  /* frequencies over an even grid of u match softmax(l / t) */
  enum { K = 5, DRAWS = 100000 };
  dl_real l[K] = {1, -2, 0.5f, 3, 1};
  const double t = 0.7;
  int count[K] = {0};
  for (int i = 0; i < DRAWS; i++) {
    int64_t k = dl_tr_draw(l, K, t, (i + 0.5) / DRAWS);
    EXPECT(k >= 0 && k < K);
    if (k >= 0 && k < K) count[k]++;
  }
  double z = 0;
  for (int k = 0; k < K; k++) z += exp((double)l[k] / t);
  for (int k = 0; k < K; k++) EXPECT_NEAR((double)count[k] / DRAWS, exp((double)l[k] / t) / z, 1e-4);
  /* a tiny temperature is argmax (equal maxima share), without overflow
     even for huge logits */
  dl_real big[4] = {(dl_real)1e30, (dl_real)3e30, (dl_real)-1e30, (dl_real)3e30};
  EXPECT(dl_tr_draw(big, 4, 1e-30, 0.0) == 1);
  EXPECT(dl_tr_draw(big, 4, 1e-30, 0.4999) == 1);
  EXPECT(dl_tr_draw(big, 4, 1e-30, 0.5001) == 3);
  EXPECT(dl_tr_draw(big, 4, 1e-30, 0.9999999) == 3);
  EXPECT(dl_tr_draw(l, K, 1e-300, 0.5) == 3);
  /* a huge one is uniform */
  EXPECT(dl_tr_draw(l, K, 1e300, 0.1) == 0 && dl_tr_draw(l, K, 1e300, 0.9) == 4);
  /* NaN or infinite logits: no draw */
  dl_real bad[3] = {0, (dl_real)NAN, 1};
  EXPECT(dl_tr_draw(bad, 3, 1.0, 0.5) == -1);
  bad[1] = (dl_real)INFINITY;
  EXPECT(dl_tr_draw(bad, 3, 1.0, 0.5) == -1);
}

/* ---- checkpoints ---------------------------------------------------------- */

static char dir[512];

static const char *path_in(const char *name) {
  static char buf[4][600];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void test_roundtrip(dl_ctx *a) {
  char err[1024];
  dl_ctx_init_params(a, 1);
  a->state[O_ACC + 2] = 0.75f;
  a->step = 42;
  EXPECT(dl_ctx_save(a, path_in("a.st"), 3, err, sizeof err) == 0);
  dl_real saved[N_STATE];
  memcpy(saved, a->state, sizeof saved);
  dl_ctx_init_params(a, 2);
  int64_t epoch = -1;
  EXPECT(dl_ctx_load(a, path_in("a.st"), 0, &epoch, err, sizeof err) == 0);
  EXPECT(epoch == 3 && a->step == 42 && a->seed == 1);
  EXPECT(memcmp(saved + O_W, a->state + O_W, (O_WG - O_W) * sizeof(dl_real)) == 0);
  EXPECT(memcmp(saved + O_ACC, a->state + O_ACC, 6 * sizeof(dl_real)) == 0);
}

static void test_shape_mismatch(void) {
  dl_model_desc mb = make_desc(tensors_b, N_STATE + 4);
  char err[1024] = "";
  dl_ctx *b = dl_ctx_new(&mb, 1, err, sizeof err);
  if (!b) return;
  dl_ctx_init_params(b, 5);
  dl_real before[N_STATE + 4];
  memcpy(before, b->state, sizeof before);
  EXPECT(dl_ctx_load(b, path_in("a.st"), 0, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, path_in("a.st"));
  EXPECT_MSG(err, "tensor 'w' has shape [2, 3] but model 'u' expects [2, 4]");
  /* Never half-loaded: nothing changed, not even the tensors that fit. */
  EXPECT(memcmp(before, b->state, sizeof before) == 0);
  dl_ctx_free(b);
}

/* Writes a checkpoint by hand: params as F64 (converted on load), no
 * optimiser state, plus optional extra/odd entries. */
static int write_custom(const char *name, const char *model, int with_acc, int extra,
                        dl_st_dtype w_dtype) {
  static const double w[6] = {1, 2, 3, 4, 5, 6.5};
  static double big[NBIG], u[NU], acc[6] = {7, 7, 7, 7, 7, 7};
  static const int32_t wi[6] = {1, 2, 3, 4, 5, 6};
  dl_st_tensor t[5] = {
      {"w", w_dtype, 2, {2, 3}, w_dtype == DL_ST_I32 ? (const void *)wi : (const void *)w},
      {"big", DL_ST_F64, 2, {100, 100}, big},
      {"u", DL_ST_F64, 1, {NU}, u},
  };
  int n = 3;
  if (with_acc) t[n++] = (dl_st_tensor){"acc", DL_ST_F64, 2, {2, 3}, acc};
  if (extra) t[n++] = (dl_st_tensor){"zzz", DL_ST_F64, 1, {6}, acc};
  dl_st_meta meta[] = {{"format", "dlnc-checkpoint-1"}, {"model", model}, {"dtype", "F64"},
                       {"epoch", "1"}, {"step", "5"}, {"seed", "9"}};
  char err[512];
  int rc = dl_st_write(path_in(name), t, n, meta, 6, err, sizeof err);
  if (rc) fprintf(stderr, "dl_st_write: %s\n", err);
  return rc;
}

static void test_custom_files(dl_ctx *a) {
  char err[1024];
  dl_ctx_init_params(a, 1);
  if (write_custom("noacc.st", "u", 0, 0, DL_ST_F64)) failures++;
  /* Full load: the optimiser state is required. */
  EXPECT(dl_ctx_load(a, path_in("noacc.st"), 0, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, "missing");
  EXPECT_MSG(err, "'acc'");
  /* Params-only: fine, F64 converted, optimiser state at its initial value. */
  a->state[O_ACC] = 3;
  EXPECT(dl_ctx_load(a, path_in("noacc.st"), 1, NULL, err, sizeof err) == 0);
  EXPECT(a->state[O_W + 5] == (dl_real)6.5 && a->state[O_W] == 1);
  EXPECT_NEAR(a->state[O_ACC], 0.1, 1e-7);
  if (write_custom("extra.st", "u", 1, 1, DL_ST_F64)) failures++;
  EXPECT(dl_ctx_load(a, path_in("extra.st"), 1, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, "unexpected");
  EXPECT_MSG(err, "'zzz'");
  if (write_custom("other.st", "other", 1, 0, DL_ST_F64)) failures++;
  EXPECT(dl_ctx_load(a, path_in("other.st"), 0, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, "'other'");
  if (write_custom("int.st", "u", 1, 0, DL_ST_I32)) failures++;
  EXPECT(dl_ctx_load(a, path_in("int.st"), 0, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, "tensor 'w' has dtype I32");
}

/* A mid-epoch checkpoint carries train_acc's counts (epoch_acc) beside the
 * loss sum; one without counts loads them as zero. */
static void test_epoch_acc(dl_ctx *a) {
  char err[1024] = "";
  dl_ckpt_pos pos = {.epoch = 0, .step_in_epoch = 2, .batch = 4, .loss_sum = 1.5,
                     .acc_correct = 5, .acc_total = 8}, got;
  EXPECT(dl_ckpt_save(a, path_in("acc.st"), &pos, err, sizeof err) == 0);
  memset(&got, 0xff, sizeof got);
  EXPECT(dl_ckpt_load(a, path_in("acc.st"), 0, &got, err, sizeof err) == 0);
  EXPECT(got.acc_correct == 5 && got.acc_total == 8 && got.step_in_epoch == 2);
  pos.acc_correct = pos.acc_total = 0;
  EXPECT(dl_ckpt_save(a, path_in("noacc2.st"), &pos, err, sizeof err) == 0);
  EXPECT(dl_ckpt_load(a, path_in("noacc2.st"), 0, &got, err, sizeof err) == 0);
  EXPECT(got.acc_correct == 0 && got.acc_total == 0);
}

static void test_corrupt(dl_ctx *a) {
  char err[1024] = "";
  FILE *f = fopen(path_in("junk.st"), "wb");
  if (!f) {
    failures++;
    return;
  }
  fputs("this is not a checkpoint at all", f);
  fclose(f);
  EXPECT(dl_ctx_load(a, path_in("junk.st"), 0, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, path_in("junk.st"));
  EXPECT(dl_ctx_load(a, path_in("absent.st"), 0, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, path_in("absent.st"));
}

int main(int argc, char **argv) {
  snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
  test_schedules();
  test_eta();
  test_ctx_new();
  test_init();
  test_ctx_labels();
  test_draw();
  dl_model_desc m = make_desc(tensors_a, N_STATE);
  char err[256];
  dl_ctx *a = dl_ctx_new(&m, 2, err, sizeof err);
  EXPECT(a != NULL);
  if (a) {
    test_roundtrip(a);
    test_shape_mismatch();
    test_custom_files(a);
    test_corrupt(a);
    test_epoch_acc(a);
  }
  dl_ctx_free(a);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("trainer_unit: all checks passed\n");
  return failures ? 1 : 0;
}
