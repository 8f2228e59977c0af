/* robust_unit.c: unit tests of the trainer's non-finite scan
 * (trainer_finite.c) and of the checkpoint position and checksum
 * (checkpoint.c), in the build's precision.
 * Usage: robust_unit WORKDIR */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl_model.h"
#include "threads.h"
#include "trainer_internal.h"
#include "../expect.h"

static char dir[900];

static const char *path_in(const char *name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* ---- a model: one big parameter (so the scan goes parallel), one small ---- */

enum { NBIG = 3 * 65536 + 5, NS = 7 };
enum { O_BIG = 0, O_S = NBIG, O_GBIG = O_S + NS, O_GS = O_GBIG + NBIG, O_M = O_GS + NS,
       N_STATE = O_M + NS };

static const dl_tensor_desc tensors[] = {
    {"big.weight", DL_T_PARAM, 1, {NBIG}, O_BIG, NBIG, DL_INIT_HE_NORMAL, 100, 100, 0, 1, -1},
    {"s.bias", DL_T_PARAM, 1, {NS}, O_S, NS, DL_INIT_ZERO, 1, 1, 0, 2, -1},
    {"big.weight.grad", DL_T_GRAD, 1, {NBIG}, O_GBIG, NBIG, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"s.bias.grad", DL_T_GRAD, 1, {NS}, O_GS, NS, DL_INIT_ZERO, 0, 0, 0, 2, -1},
    {"s.bias.momentum_buffer", DL_T_OPT, 1, {NS}, O_M, NS, DL_INIT_ZERO, 0, 0, 0, 2, -1},
};

static dl_model_desc make_desc(void) {
  dl_model_desc m;
  memset(&m, 0, sizeof m);
  m.name = "r";
  m.source = "r.dln";
  m.x_size = 1;
  m.y_kind = DL_Y_REAL;
  m.y_size = 1;
  m.out_size = 1;
  m.state_elems = N_STATE;
  m.act_elems_per_sample = 1;
  m.n_tensors = (int)(sizeof tensors / sizeof tensors[0]);
  m.tensors = tensors;
  return m;
}

/* ---- the scan ------------------------------------------------------------ */

static void test_all_finite(void) {
  dl_real v[37];
  for (int i = 0; i < 37; i++) v[i] = (dl_real)(i - 18) * (dl_real)1e3;
  EXPECT(dl_tr_all_finite(v, 37));
  EXPECT(dl_tr_all_finite(v, 0));
  /* Extremes that are finite: no false alarm (a float sum would overflow). */
  v[3] = DL_REAL_IS_F64 ? DBL_MAX : FLT_MAX;
  v[4] = DL_REAL_IS_F64 ? -DBL_MAX : -FLT_MAX;
  v[5] = DL_REAL_IS_F64 ? DBL_MIN / 4 : FLT_MIN / 4; /* subnormal */
  v[6] = -0.0;
  EXPECT(dl_tr_all_finite(v, 37));
  const dl_real bad[] = {(dl_real)NAN, (dl_real)INFINITY, (dl_real)-INFINITY, -(dl_real)NAN};
  for (int b = 0; b < 4; b++)
    for (int at = 0; at < 37; at += 12) {
      dl_real keep = v[at];
      v[at] = bad[b];
      EXPECT(!dl_tr_all_finite(v, 37));
      EXPECT(dl_tr_all_finite(v, (size_t)at)); /* only what is before it */
      v[at] = keep;
    }
  EXPECT(strcmp(dl_tr_nonfinite_name(NAN), "nan") == 0);
  EXPECT(strcmp(dl_tr_nonfinite_name(INFINITY), "inf") == 0);
  EXPECT(strcmp(dl_tr_nonfinite_name(-INFINITY), "-inf") == 0);
}

/* A bad value at `at` of tensor `t` is found there, with or without workers. */
static void expect_found(dl_ctx *ctx, int t, size_t at, dl_real value, const char *name) {
  const dl_tensor_desc *d = &ctx->m->tensors[t];
  dl_real keep = ctx->state[d->offset + at];
  ctx->state[d->offset + at] = value;
  double bad = 0;
  const dl_tensor_desc *hit = dl_tr_find_nonfinite(ctx, d->kind, &bad);
  EXPECT(hit == d);
  EXPECT(strcmp(dl_tr_nonfinite_name(bad), name) == 0);
  /* Other kinds are not looked at. */
  EXPECT(dl_tr_find_nonfinite(ctx, d->kind == DL_T_GRAD ? DL_T_PARAM : DL_T_GRAD, NULL) == NULL);
  ctx->state[d->offset + at] = keep;
  EXPECT(dl_tr_find_nonfinite(ctx, d->kind, NULL) == NULL);
}

static void test_find(dl_ctx *ctx) {
  dl_ctx_init_params(ctx, 3);
  for (int k = 0; k < 3; k++) EXPECT(dl_tr_find_nonfinite(ctx, (dl_tensor_kind)k, NULL) == NULL);
  /* Every chunk of the parallel scan: first, middle, last element. */
  const size_t where[] = {0, 1, 65535, 65536, 2 * 65536 + 7, NBIG - 1};
  for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
    expect_found(ctx, 0, where[w], (dl_real)NAN, "nan");
    expect_found(ctx, 2, where[w], (dl_real)-INFINITY, "-inf");
  }
  expect_found(ctx, 1, NS - 1, (dl_real)INFINITY, "inf");
  expect_found(ctx, 3, 0, (dl_real)NAN, "nan");
  expect_found(ctx, 4, 3, (dl_real)INFINITY, "inf");
  /* The first bad tensor in table order, and the first bad value in it. */
  ctx->state[O_S + 2] = (dl_real)INFINITY;
  ctx->state[O_BIG + 9] = (dl_real)NAN;
  ctx->state[O_BIG + 99999] = (dl_real)INFINITY;
  double bad = 0;
  EXPECT(dl_tr_find_nonfinite(ctx, DL_T_PARAM, &bad) == &tensors[0] && isnan(bad));
  ctx->state[O_S + 2] = 0;
  ctx->state[O_BIG + 9] = 0;
  ctx->state[O_BIG + 99999] = 0;
}

/* ---- checkpoint position and checksum ------------------------------------- */

static void write_byte(const char *path, long at, int c) {
  FILE *f = fopen(path, "r+b");
  EXPECT(f != NULL);
  if (!f) return;
  fseek(f, at, SEEK_SET);
  fputc(c, f);
  fclose(f);
}

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

/* Byte offset of the first occurrence of s in the file, or -1. */
static long find_in_file(const char *path, const char *s) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  size_t len = strlen(s);
  for (size_t i = 0; i + len <= n; i++)
    if (memcmp(buf + i, s, len) == 0) return (long)i;
  return -1;
}

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  EXPECT(a && b);
  int c;
  while (a && b && (c = fgetc(a)) != EOF) fputc(c, b);
  if (a) fclose(a);
  if (b) fclose(b);
}

static void test_position(dl_ctx *ctx) {
  char err[1024] = "";
  dl_ctx_init_params(ctx, 4);
  ctx->step = 1234;
  /* 0.1 + 0.2 is not 0.3: only an exact round trip gives it back. */
  dl_ckpt_pos pos = {.epoch = 5, .step_in_epoch = 17, .batch = 32, .loss_sum = 0.1 + 0.2}, got;
  EXPECT(dl_ckpt_save(ctx, path_in("p.st"), &pos, err, sizeof err) == 0);
  dl_ctx_init_params(ctx, 5);
  memset(&got, 0xff, sizeof got);
  EXPECT(dl_ckpt_load(ctx, path_in("p.st"), 0, &got, err, sizeof err) == 0);
  EXPECT(got.epoch == 5 && got.step_in_epoch == 17 && got.batch == 32);
  EXPECT(got.loss_sum == 0.1 + 0.2);
  EXPECT(ctx->step == 1234);
  int64_t epoch = -1;
  EXPECT(dl_ctx_load(ctx, path_in("p.st"), 1, &epoch, err, sizeof err) == 0 && epoch == 5);
  /* dl_ctx_save writes an epoch boundary. */
  EXPECT(dl_ctx_save(ctx, path_in("q.st"), 2, err, sizeof err) == 0);
  EXPECT(dl_ckpt_load(ctx, path_in("q.st"), 0, &got, err, sizeof err) == 0);
  EXPECT(got.epoch == 2 && got.step_in_epoch == 0 && got.loss_sum == 0);
}

/* Damage the file in the data, then in a number of the metadata: the
 * safetensors structure stays valid, only the CRC can tell. */
static void test_crc(dl_ctx *ctx) {
  char err[1024] = "";
  const char *good = path_in("p.st"), *bad = path_in("bad.st");
  dl_real before[N_STATE];
  dl_ctx_init_params(ctx, 6);
  memcpy(before, ctx->state, sizeof before);
  copy_file(good, bad);
  long size = file_size(bad);
  EXPECT(size > 1000);
  write_byte(bad, size - 3, 0x5a);
  EXPECT(dl_ckpt_load(ctx, bad, 0, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, bad);
  EXPECT_MSG(err, "is corrupted");
  EXPECT(memcmp(before, ctx->state, sizeof before) == 0); /* nothing applied */
  copy_file(good, bad);
  long at = find_in_file(bad, "\"step\":\"1234\"");
  EXPECT(at > 0);
  write_byte(bad, at + 9, '9'); /* "1294" */
  EXPECT(dl_ckpt_load(ctx, bad, 1, NULL, err, sizeof err) == -1);
  EXPECT_MSG(err, "is corrupted");
  copy_file(good, bad);
  EXPECT(dl_ckpt_load(ctx, bad, 0, NULL, err, sizeof err) == 0);
}

int main(int argc, char **argv) {
  snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
  test_all_finite();
  dl_model_desc m = make_desc();
  char err[256];
  dl_ctx *ctx = dl_ctx_new(&m, 1, err, sizeof err);
  EXPECT(ctx != NULL);
  if (ctx) {
    test_find(ctx);
    ctx->pool = dl_pool_new(3);
    EXPECT(ctx->pool != NULL);
    test_find(ctx);
    dl_pool_free(ctx->pool);
    ctx->pool = NULL;
    test_position(ctx);
    test_crc(ctx);
  }
  dl_ctx_free(ctx);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("robust_unit: all checks passed\n");
  return failures ? 1 : 0;
}
