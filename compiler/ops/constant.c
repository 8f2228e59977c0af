/* constant.c: values that carry no gradient.
 *
 *   detach(x)          x's value; no gradient flows back into x (torch's
 *                      x.detach(), a stop-gradient)
 *   zeros_like(x)      a per-sample tensor of x's shape filled with 0,
 *   ones_like(x)       with 1, and
 *   full_like(x, v)    with v, as torch.zeros_like/ones_like/full_like: the
 *                      constant targets of a GAN's bce_with_logits
 *   randn_like(x)      per-sample noise of x's shape, N(0, 1) or
 *   rand_like(x)       uniform in [0, 1), as torch.randn_like/rand_like:
 *                      a VAE's reparameterisation mu + exp(logvar/2) * eps.
 *                      The draws hash (seed, step, site, element) as
 *                      dropout's mask does (dl_noise in dl_ops.h), so they
 *                      change every step, are the same for a seed at any
 *                      thread count, and stay fixed in gradcheck (which
 *                      holds the step).  Drawn in eval and predict too, as
 *                      torch draws them; the site is the node's id.
 *   randn(d1, d2, ...) the same noise with the shape written out, needing
 *   rand(d1, d2, ...)  no input (torch.randn(batch, d1, ...)): a
 *                      generator's latent code.  The node has no inputs;
 *                      its rows are the batch's.
 *
 * x must be a per-sample tensor (its rows give the batch, its shape the
 * shape).  The whole family is this file: lowering, no backward rule (the
 * point of these ops is that no gradient passes), and the emitters of
 * OP_DETACH (a copy), OP_FILL (attribute: fill.value) and OP_NOISE
 * (fill.site; fill.value 1 for normal draws, 0 for uniform). */
#include "ops.h"
#include "emit_text.h"
#include <math.h>
#include <string.h>

/* The one argument check of the family: a class label has no elements to
 * copy or fill per sample, and a scalar has no batch rows. */
static int check_per_sample(lower_ctx *lc, const char *fn, const arg_val *x) {
  ir_node *n = ir_at(lc->g, x->node);
  if (n->batched && n->ndim > 0) return 0;
  diag_error(x->loc, "%s() needs a per-sample tensor, not %s", fn,
             n->batched ? "a class label" : "a scalar");
  return -1;
}

/* Only detach reads x's value; a fill or a draw takes x's shape and no edge
 * from it, so nothing x depends on is recomputed for it (a GAN's
 * ones_like(d_fake) in the generator's step would rerun D(detach(fake))). */
_Static_assert(OPF_OF_FILL & OPF_OF_NOISE & OPF_SHAPE_LIKE, "fill.like is x: the lints count x as used");
static int lower_same_shape(lower_ctx *lc, const ast_expr *call, ir_op op, int x, double value) {
  int id = op == OP_DETACH ? lower_node(lc, op, &x, 1, call->loc) : lower_node(lc, op, NULL, 0, call->loc);
  ir_node *n = ir_at(lc->g, id);
  ir_copy_shape(n, ir_at(lc->g, x));
  n->fill.value = value;
  n->fill.like = x;
  return id;
}

int lower_detach(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}};
  arg_val v[1];
  if (lower_bind_args(lc, call, spec, 1, v) || check_per_sample(lc, "detach", &v[0])) return -1;
  return lower_same_shape(lc, call, OP_DETACH, v[0].node, 0);
}

/* zeros_like and ones_like: the value is in the name. */
int lower_fill_like(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}};
  const char *fn = call->str;
  arg_val v[1];
  if (lower_bind_args(lc, call, spec, 1, v) || check_per_sample(lc, fn, &v[0])) return -1;
  return lower_same_shape(lc, call, OP_FILL, v[0].node, strcmp(fn, "ones_like") == 0);
}

int lower_full_like(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}, {"value", ARG_NUMBER, 1, 0}};
  arg_val v[2];
  if (lower_bind_args(lc, call, spec, 2, v) || check_per_sample(lc, "full_like", &v[0]))
    return -1;
  if (!isfinite(v[1].num)) {
    diag_error(v[1].loc, "full_like() needs a finite value, not %g", v[1].num);
    return -1;
  }
  return lower_same_shape(lc, call, OP_FILL, v[0].node, v[1].num);
}

/* randn_like and rand_like: normal or uniform, by name. */
int lower_noise_like(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}};
  const char *fn = call->str;
  arg_val v[1];
  if (lower_bind_args(lc, call, spec, 1, v) || check_per_sample(lc, fn, &v[0])) return -1;
  int id = lower_same_shape(lc, call, OP_NOISE, v[0].node, strcmp(fn, "randn_like") == 0);
  ir_at(lc->g, id)->fill.site = id;
  return id;
}

/* randn(d1, d2, ...) and rand(...): per-sample noise of the given shape,
 * an OP_NOISE without inputs (its rows are the batch's). */
int lower_noise(lower_ctx *lc, const ast_expr *call) {
  const char *fn = call->str;
  if (call->nargs < 1 || call->nargs > IR_MAX_DIMS) {
    diag_error(call->loc, "%s() takes the shape of a sample: 1 to %d dimensions, like %s(64)", fn,
               IR_MAX_DIMS, fn);
    return -1;
  }
  int64_t dims[IR_MAX_DIMS];
  double numel = 1;
  for (int k = 0; k < call->nargs; k++) {
    const ast_expr *e = call->args[k].value;
    double v;
    if (call->args[k].name) {
      diag_error(call->args[k].name_loc, "%s() takes no named arguments, only dimensions", fn);
      return -1;
    }
    if (lower_eval_number(e, &v) || !lower_is_int(e) || v < 1 || v > (1 << 24)) {
      diag_error(e->loc, "a dimension of %s() must be a whole number from 1 to %d", fn, 1 << 24);
      return -1;
    }
    dims[k] = (int64_t)v;
    numel *= v;
  }
  if (numel > 2147483648.0) {
    diag_error(call->loc, "%s() of %.0f values per sample; the limit is 2147483648", fn, numel);
    return -1;
  }
  int id = lower_node(lc, OP_NOISE, NULL, 0, call->loc);
  ir_node *n = ir_at(lc->g, id);
  n->batched = 1;
  n->ndim = call->nargs;
  memcpy(n->dims, dims, sizeof(int64_t) * (size_t)n->ndim);
  n->fill.value = strcmp(fn, "randn") == 0;
  n->fill.site = id;
  n->fill.like = -1;
  return id;
}

/* One loop over every element of the batch: a copy of x for detach, the
 * constant for fill, a draw for noise (x, when there, only gives the shape and rows). */
void constant_emit(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char px[96], pout[96], rows[64];
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_rows(n, rows, sizeof rows);
  emit_line(o, "{");
  emit_line(o, "dl_real *y = %s;", pout);
  emit_line(o, "const size_t count = (size_t)(%s) * %lld;", rows, ll(ir_last_dim(n)));
  if (n->op == OP_DETACH) {
    emit_line(o, "const dl_real *x = %s;", emit_ptr(ec, n->in[0], px, sizeof px));
    emit_line(o, "/* y = x; no gradient flows back to x */");
    emit_line(o, EW_FOR " y[k] = x[k];");
  } else if (n->op == OP_NOISE) {
    int normal = n->fill.value != 0;
    emit_line(o, "/* y = %s noise of site %d: a hash of (seed, step, site, k) */",
              normal ? "N(0, 1)" : "U[0, 1)", n->fill.site);
    emit_line(o, "for (size_t k = 0; k < count; k++) y[k] = (dl_real)dl_noise(ctx, %d, k, %d);",
              n->fill.site, normal);
  } else {
    emit_line(o, "/* y = %.17g, a constant of x's shape */", n->fill.value);
    emit_line(o, EW_FOR " y[k] = (dl_real)%.17g;", n->fill.value);
  }
  emit_line(o, "}");
}

/* ---- ONNX ------------------------------------------------------------------- */

/* detach: the value itself (inference has no gradient). */
void constant_onnx(onnx_ctx *oc, const ir_node *n) {
  onnx_alias(oc, n, onnx_value(oc, n->in[0]));
}
