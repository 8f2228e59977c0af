/* kl.c: kl_normal(mu, logvar), the KL divergence of the diagonal Gaussian
 * N(mu, exp(logvar)) from N(0, I), summed over each sample's latent
 * dimensions as pytorch/examples/vae computes it,
 *
 *   KL_i = -0.5 * sum_j (1 + logvar_ij - mu_ij^2 - exp(logvar_ij)),
 *
 * then averaged over the batch: dlnc's losses are batch means (its
 * example sums over the batch instead; a mean only rescales the step by
 * the batch size, and keeps the loss comparable between batch sizes).
 * The result is a scalar, to be added to a reconstruction loss.
 *
 * The whole family is this file: lowering, backward rule, and the emitters
 * of OP_KL_NORMAL and of OP_KL_NORMAL_GRAD (kl.wrt: 0 d mu, 1 d logvar). */
#include "ops.h"
#include "emit_text.h"

int lower_kl_normal(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"mu", ARG_TENSOR, 1, 0}, {"logvar", ARG_TENSOR, 1, 0}};
  arg_val v[2];
  if (lower_bind_args(lc, call, spec, 2, v)) return -1;
  for (int k = 0; k < 2; k++) {
    ir_node *x = ir_at(lc->g, v[k].node);
    if (!x->batched || x->ndim == 0) {
      diag_error(v[k].loc, "kl_normal() needs a per-sample tensor for '%s', not %s",
                 spec[k].name, x->batched ? "a class label" : "a scalar");
      return -1;
    }
  }
  ir_node *mu = ir_at(lc->g, v[0].node), *lv = ir_at(lc->g, v[1].node);
  int same = mu->ndim == lv->ndim;
  for (int d = 0; same && d < mu->ndim; d++) same = mu->dims[d] == lv->dims[d];
  if (!same) {
    char sm[64], sl[64];
    diag_error(v[1].loc, "kl_normal() needs mu and logvar of one shape: %s and %s",
               ir_shape_str(mu, sm, sizeof sm), ir_shape_str(lv, sl, sizeof sl));
    return -1;
  }
  int in[2] = {v[0].node, v[1].node};
  return lower_node(lc, OP_KL_NORMAL, in, 2, call->loc);
}

/* d mu = ds * mu / rows, d logvar = ds * 0.5 (exp(logvar) - 1) / rows */
void kl_normal_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  int in[3] = {dy, n.in[0], n.in[1]};
  for (int k = 0; k < 2; k++) {
    if (!ad_wants(ad, n.in[k])) continue;
    int d = ad_node(ad, OP_KL_NORMAL_GRAD, in, 3, n.in[k], -1);
    g->nodes[d].kl.wrt = k;
    ad_accumulate(ad, n.in[k], d);
  }
}

void kl_normal_emit(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  int grad = n->op == OP_KL_NORMAL_GRAD;
  const ir_node *mu = &ec->g->nodes[n->in[grad]];
  char pm[96], pl[96], pout[96], pds[96], rows[64];
  emit_ptr(ec, n->in[grad], pm, sizeof pm);
  emit_ptr(ec, n->in[grad + 1], pl, sizeof pl);
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_rows(mu, rows, sizeof rows);
  emit_line(o, "{");
  /* the gradient reads only the input it differentiates */
  if (!grad) emit_line(o, "const dl_real *mu = %s, *logvar = %s;", pm, pl);
  else if (n->kl.wrt == 0) emit_line(o, "const dl_real *mu = %s;", pm);
  else emit_line(o, "const dl_real *logvar = %s;", pl);
  emit_line(o, "const size_t rows = (size_t)(%s), count = rows * %lld;", rows, ll(ir_last_dim(mu)));
  if (!grad) {
    emit_line(o, "/* -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) / rows */");
    emit_line(o, "double sum = 0;");
    emit_line(o, "for (size_t k = 0; k < count; k++)");
    emit_line(o, "  sum += 1.0 + (double)logvar[k] - (double)mu[k] * mu[k] - exp((double)logvar[k]);");
    emit_line(o, "%s[0] = (dl_real)(-0.5 * sum / (double)rows);", pout);
  } else {
    emit_line(o, "dl_real *d = %s;", pout);
    emit_line(o, "const dl_real s = %s[0] / (dl_real)rows;", emit_ptr(ec, n->in[0], pds, sizeof pds));
    if (n->kl.wrt == 0) {
      emit_line(o, "/* d mu = ds * mu / rows */");
      emit_line(o, EW_FOR " d[k] = s * mu[k];");
    } else {
      emit_line(o, "/* d logvar = ds * 0.5 (exp(logvar) - 1) / rows */");
      emit_line(o, EW_FOR " d[k] = s * (dl_real)0.5 * (dl_exp(logvar[k]) - 1);");
    }
  }
  emit_line(o, "}");
}
