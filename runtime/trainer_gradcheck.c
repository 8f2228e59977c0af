/* trainer_gradcheck.c: the `gradcheck` command.  Compares compute_grads'
 * analytic gradients with central differences of loss_only on a synthetic
 * batch, for every parameter tensor.  In train mode (batch norm on the
 * batch's statistics, dropout on) or eval mode (running statistics);
 * ctx->track_stats stays 0 while checking, so no evaluation moves the
 * running statistics under the differences. */
#include "dl_model.h"
#include "rng.h"
#include "trainer_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CHECKED = 64 };

/* Central differences carry a rounding error of about |loss| * 1e-16 / eps
 * (1e-10 in f64): a gradient much smaller than this floor cannot be resolved
 * relatively, so errors are relative to max(|a|, |n|, rel_floor).  In
 * float32 each loss is off by a few ulps (2^-23 relative) of max(|loss|, 1),
 * which the difference divides by 2 eps: with eps 1e-3 that is ~3e-5 for a
 * loss of 0.6, a tenth of a gradient of 3e-4.  The floor is set well above
 * that noise (F32_NOISE_ULPS of it), so a correct model passes while a wrong
 * gradient larger than the floor still fails; smaller gradients are checked
 * only absolutely, as the note on stderr says (--f64 checks them all). */
static const double REL_FLOOR = 1e-3;
enum { F32_NOISE_ULPS = 128 };
static double rel_floor = REL_FLOOR;

static void set_rel_floor(double loss, double eps) {
  rel_floor = REL_FLOOR;
  if (DL_REAL_IS_F64 || !(eps > 0)) return;
  double noise = fmax(fabs(loss), 1.0) * F32_NOISE_ULPS * 0x1p-23 / (2 * eps);
  if (noise > rel_floor) rel_floor = noise;
  fprintf(stderr, "note: float32 build: gradients below %.2g are compared absolutely (the "
          "rounding of a float32 loss hides them); build with --f64 for a tight check\n", rel_floor);
}

/* Inputs ~ N(0,1), or token ids uniform over the vocabulary (inputs are
 * never perturbed: only parameters are, so ids stay ids); class labels
 * uniform over the classes, y_len of them a row; real labels U(0,1).
 * A pure function of the seed, like everything else here. */
static void synth_batch(dl_ctx *ctx, int n, uint64_t seed) {
  const dl_model_desc *m = ctx->m;
  size_t nx = (size_t)n * (size_t)m->x_size;
  for (size_t j = 0; j < nx; j++)
    ctx->x[j] = m->x_vocab > 0
                    ? (dl_real)(dl_rng_u64(seed, DL_STREAM_GC_X, j) % (uint64_t)m->x_vocab)
                    : (dl_real)dl_rng_normal(seed, DL_STREAM_GC_X, j);
  if (m->y_kind == DL_Y_CLASS) {
    size_t ny = (size_t)n * (size_t)dl_model_y_len(m);
    for (size_t j = 0; j < ny; j++)
      ctx->y_class[j] = (int32_t)(dl_rng_u64(seed, DL_STREAM_GC_Y, j) % (uint64_t)m->y_size);
  } else if (m->y_kind == DL_Y_REAL) { /* DL_Y_NONE: no labels to draw */
    size_t ny = (size_t)n * (size_t)m->y_size;
    for (size_t j = 0; j < ny; j++) ctx->y_real[j] = (dl_real)dl_rng_uniform(seed, DL_STREAM_GC_Y, j);
  }
}

static const dl_tensor_desc *find_grad(const dl_model_desc *m, const dl_tensor_desc *p) {
  size_t len = strlen(p->name);
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *t = &m->tensors[i];
    if (t->kind == DL_T_GRAD && strncmp(t->name, p->name, len) == 0 && strcmp(t->name + len, ".grad") == 0)
      return t;
  }
  return NULL;
}

/* Every parameter's gradient tensor, indexed like m->tensors; -1 with a
 * message if one is missing or has another size. */
static int map_grads(const dl_model_desc *m, const dl_tensor_desc **grad) {
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *p = &m->tensors[i];
    grad[i] = NULL;
    if (p->kind != DL_T_PARAM) continue;
    grad[i] = find_grad(m, p);
    if (!grad[i] || grad[i]->numel != p->numel) {
      fprintf(stderr, "error: model '%s': parameter '%s' (%s:%d) has %s gradient tensor '%s.grad'\n",
              m->name, p->name, m->source ? m->source : "?", p->line, grad[i] ? "a wrongly sized" : "no",
              p->name);
      return -1;
    }
  }
  return 0;
}

/* Element k of MAX_CHECKED spread evenly over [0, numel), first and last included. */
static size_t pick(size_t k, size_t count, size_t numel) {
  if (count >= numel) return k;
  return count > 1 ? (size_t)((double)k * (double)(numel - 1) / (double)(count - 1)) : 0;
}

static double elem_error(double a, double n) {
  return fabs(a - n) / fmax(fmax(fabs(a), fabs(n)), rel_floor);
}

typedef struct worst {
  double err, analytic, numeric;
  size_t index;
} worst;

/* Central difference at p[j]; the step actually taken (after rounding to
 * dl_real) is the denominator, which matters in float32 builds. */
typedef double (*loss_fn)(dl_ctx *ctx, int n);

static double numeric_grad(dl_ctx *ctx, loss_fn loss_only, dl_real *p, size_t j, double eps, int n) {
  dl_real saved = p[j];
  dl_real up = (dl_real)(saved + eps), down = (dl_real)(saved - eps);
  p[j] = up;
  double lp = loss_only(ctx, n);
  p[j] = down;
  double lm = loss_only(ctx, n);
  p[j] = saved;
  return (lp - lm) / ((double)up - (double)down);
}

/* Checks one tensor; returns the worst error seen (NaN if any was). */
static double check_tensor(dl_ctx *ctx, loss_fn loss_only, const dl_tensor_desc *pt,
                           const dl_tensor_desc *gt, const dl_opts *o, int n, size_t *checked,
                           worst *w) {
  size_t count = pt->numel < MAX_CHECKED ? pt->numel : MAX_CHECKED;
  dl_real *p = ctx->state + pt->offset;
  double analytic[MAX_CHECKED];
  /* Copy first: nothing below should touch gradients, but do not rely on it. */
  for (size_t k = 0; k < count; k++) analytic[k] = ctx->state[gt->offset + pick(k, count, pt->numel)];
  w->err = 0.0;
  for (size_t k = 0; k < count; k++) {
    size_t j = pick(k, count, pt->numel);
    double num = numeric_grad(ctx, loss_only, p, j, o->eps, n);
    double e = elem_error(analytic[k], num);
    if (!(e <= w->err)) {     /* also takes NaN, which must fail */
      w->err = e;
      w->analytic = analytic[k];
      w->numeric = num;
      w->index = j;
    }
  }
  *checked = count;
  return w->err;
}

/* The parameters of update u (NULL: every parameter) against loss_only. */
static int check_all(dl_ctx *ctx, const dl_update_desc *u, loss_fn loss_only,
                     const dl_tensor_desc **grad, const dl_opts *o, int n) {
  const dl_model_desc *m = ctx->m;
  int failed = 0;
  for (int i = 0; i < (u ? u->n_params : m->n_tensors); i++) {
    const dl_tensor_desc *pt = &m->tensors[u ? u->params[i] : i];
    if (pt->kind != DL_T_PARAM) continue;
    size_t checked = 0;
    worst w = {0, 0, 0, 0};
    double e = check_tensor(ctx, loss_only, pt, grad[u ? u->params[i] : i], o, n, &checked, &w);
    int bad = !(e <= o->tol);
    printf("%s  checked %zu  max_rel_err %.2g%s\n", pt->name, checked, e, bad ? "  FAILED" : "");
    if (bad)
      printf("  worst at element %zu: analytic %.9g, numeric %.9g\n", w.index, w.analytic, w.numeric);
    failed |= bad;
  }
  return failed;
}

/* With updates: each update's gradients w.r.t. its own parameters, against
 * central differences of its loss.  Its compute_grads reuses what the
 * updates before it computed in the batch, so they run first (without
 * stepping: the weights stay as they are). */
static int run_updates(dl_ctx *ctx, const dl_tensor_desc **grad, const dl_opts *o, int n) {
  const dl_model_desc *m = ctx->m;
  int failed = 0;
  for (int k = 0; k < m->n_updates; k++) {
    const dl_update_desc *u = &m->updates[k];
    double loss = 0;
    for (int j = 0; j <= k; j++) loss = m->updates[j].compute_grads(ctx, n);
    if (!isfinite(loss)) {
      fprintf(stderr, "error: gradcheck: loss '%s' of the synthetic batch is not finite (%g)\n",
              u->loss_name, loss);
      return DL_EXIT_FAIL;
    }
    set_rel_floor(loss, o->eps);
    printf("gradcheck: model '%s', update '%s' (loss '%s'), batch %d, seed %" PRIu64 ", %s mode, "
           "eps %g, tol %g, loss %.9g\n", m->name, u->name, u->loss_name, n, o->seed,
           o->eval_mode ? "eval" : "train", o->eps, o->tol, loss);
    failed |= check_all(ctx, u, u->loss_only, grad, o, n);
  }
  printf(failed ? "gradcheck FAILED\n" : "gradcheck passed\n");
  return failed ? DL_EXIT_FAIL : DL_EXIT_OK;
}

static int run(dl_ctx *ctx, const dl_tensor_desc **grad, const dl_opts *o, int n) {
  const dl_model_desc *m = ctx->m;
  dl_ctx_init_params(ctx, o->seed);
  synth_batch(ctx, n, o->seed);
  /* step stays fixed: dropout masks hash (seed, step, site, i), so every
     loss evaluation below sees the same masks as the analytic pass. */
  ctx->step = 0;
  ctx->lr = 0.0;
  ctx->train_mode = 1;
  if (o->eval_mode) {
    /* one tracked training pass, so the running statistics are not the
       initial zeros and ones that would make evaluation an identity */
    ctx->track_stats = 1;
    if (m->n_updates)
      for (int k = 0; k < m->n_updates; k++) m->updates[k].compute_grads(ctx, n);
    else
      m->compute_grads(ctx, n);
    ctx->track_stats = 0;
    ctx->train_mode = 0;
  }
  if (m->n_updates) return run_updates(ctx, grad, o, n);
  double loss = m->compute_grads(ctx, n);
  if (!isfinite(loss)) {
    fprintf(stderr, "error: gradcheck: loss of the synthetic batch is not finite (%g)\n", loss);
    return DL_EXIT_FAIL;
  }
  set_rel_floor(loss, o->eps);
  printf("gradcheck: model '%s', batch %d, seed %" PRIu64 ", %s mode, eps %g, tol %g, loss %.9g\n",
         m->name, n, o->seed, o->eval_mode ? "eval" : "train", o->eps, o->tol, loss);
  int failed = check_all(ctx, NULL, m->loss_only, grad, o, n);
  printf(failed ? "gradcheck FAILED\n" : "gradcheck passed\n");
  return failed ? DL_EXIT_FAIL : DL_EXIT_OK;
}

int dl_tr_cmd_gradcheck(const dl_model_desc *m, const dl_opts *o) {
  if (m->y_kind == DL_Y_CLASS && m->y_size < 1) {
    fprintf(stderr, "error: model '%s' has no classes\n", m->name);
    return DL_EXIT_FAIL;
  }
  int n = o->batch > 0 ? o->batch : 4;
  const dl_tensor_desc **grad = calloc((size_t)(m->n_tensors > 0 ? m->n_tensors : 1), sizeof *grad);
  if (!grad) {
    fprintf(stderr, "error: out of memory\n");
    return DL_EXIT_FAIL;
  }
  int rc = DL_EXIT_FAIL;
  if (map_grads(m, grad) == 0) {
    dl_ctx *ctx = dl_tr_ctx_open(m, o, n);
    if (ctx) rc = run(ctx, grad, o, n);
    dl_tr_ctx_close(ctx);
  }
  free(grad);
  fflush(stdout);
  return rc;
}
