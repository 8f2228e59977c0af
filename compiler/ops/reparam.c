/* reparam.c: parameter wrappers, the keyword arguments `weight_norm = true`
 * and `spectral_norm = true` of dense and conv2d (torch.nn.utils.weight_norm
 * and torch.nn.utils.spectral_norm with their defaults: dim 0, one power
 * iteration, eps 1e-12).  The wrapped weight W is an ordinary unbatched value
 * computed from parameters at the start of the layer's forward function, so
 * dense and conv2d read it, and differentiate into it, exactly as they do a
 * plain weight.  Rows are the weight's first dim (output units or channels),
 * a row the rest: [out, in] or [out, in/groups, k, k] as [R, C].
 *
 *   weight_norm     parameters NAME.weight_g [R, 1 (, 1, 1)] and NAME.weight_v
 *                   (the weight's shape); W = g v / ||v|| per row.  v starts
 *                   as the layer's usual weight and g as ||v|| per row
 *                   (DL_INIT_ROW_NORM), so the initial function is unchanged.
 *                   dg = sum(dW v) / ||v||,  dv = (g / ||v||) (dW - (dW . vh) vh),
 *                   vh = v / ||v||, per row.
 *   spectral_norm   parameter NAME.weight_orig (the weight's shape), buffers
 *                   NAME.weight_u [R] and NAME.weight_v [C] (random unit
 *                   vectors: DL_INIT_UNIT_NORMAL).  On a training step
 *                   (ctx->train_mode && ctx->track_stats, as batch norm's
 *                   running statistics) one power iteration
 *                   v = normalize(Wo^T u), u = normalize(Wo v) is stored back;
 *                   otherwise (evaluation, gradient checks, loss_only) u and v
 *                   are read as they are.  sigma = u . (Wo v), W = Wo / sigma.
 *                   u and v are constants for autodiff (torch computes them
 *                   under no_grad):  dWo = dW / sigma - (sum(dW Wo) / sigma^2) u v^T.
 *
 * The penalties (a layer's l1/l2 and the global ones) and weight decay apply
 * to the parameters (weight_g and weight_v, weight_orig), as torch.optim
 * sees them; never to the computed W. */
#include "ops.h"
#include "emit_text.h"
#include <string.h>
#include "../../runtime/dl_model.h"

int lower_wrap_arg(const arg_val *wn, const arg_val *sn) {
  if (wn->num != 0 && sn->num != 0) {
    /* at the second of the two */
    int sn_later = sn->loc.line > wn->loc.line ||
                   (sn->loc.line == wn->loc.line && sn->loc.col > wn->loc.col);
    diag_error(sn_later ? sn->loc : wn->loc, "weight_norm and spectral_norm cannot both wrap one layer's weight; "
               "choose one");
    return -1;
  }
  return wn->num != 0 ? WRAP_WEIGHT_NORM : sn->num != 0 ? WRAP_SPECTRAL_NORM : WRAP_NONE;
}

/* A wrapper's parameter: a weight matrix for the penalties and the init. */
static int wrap_param(lower_ctx *lc, const char *layer, const char *kind, int ndim,
                      const int64_t *dims, int64_t fan_in, int64_t fan_out, int init, double l1,
                      double l2, dl_loc loc) {
  int node = lower_param(lc, layer, kind, ndim, dims, fan_in, fan_out, init, l1, l2, loc);
  lc->g->params[ir_at(lc->g, node)->leaf.index].is_weight = 1;
  return node;
}

int lower_weight(lower_ctx *lc, const char *layer, int wrap, int ndim, const int64_t *dims,
                 int64_t fan_in, int64_t fan_out, int init, double l1, double l2, dl_loc loc) {
  if (wrap == WRAP_NONE)
    return lower_param(lc, layer, "weight", ndim, dims, fan_in, fan_out, init, l1, l2, loc);
  ir_graph *g = lc->g;
  int64_t R = dims[0], numel = 1;
  for (int k = 0; k < ndim; k++) numel *= dims[k];
  int in[3], id;
  if (wrap == WRAP_WEIGHT_NORM) {
    int64_t gdims[IR_MAX_DIMS];
    gdims[0] = R;
    for (int k = 1; k < ndim; k++) gdims[k] = 1;
    /* v first: g's initial value is read from v's */
    in[1] = wrap_param(lc, layer, "weight_v", ndim, dims, fan_in, fan_out, init, l1, l2, loc);
    in[0] = wrap_param(lc, layer, "weight_g", ndim, gdims, fan_in, fan_out, DL_INIT_ROW_NORM, l1,
                       l2, loc);
    ir_param *gp = &g->params[ir_at(g, in[0])->leaf.index];
    gp->init_src = ir_at(g, in[1])->leaf.index;
    id = lower_node(lc, OP_WEIGHT_NORM, in, 2, loc);
  } else {
    int64_t C = numel / R;
    in[0] = wrap_param(lc, layer, "weight_orig", ndim, dims, fan_in, fan_out, init, l1, l2, loc);
    in[1] = lower_buffer(lc, layer, "weight_u", 1, &R, 0, 0, loc);
    in[2] = lower_buffer(lc, layer, "weight_v", 1, &C, 0, 0, loc);
    for (int k = 1; k < 3; k++) g->buffers[ir_at(g, in[k])->leaf.index].init_kind = DL_INIT_UNIT_NORMAL;
    id = lower_node(lc, OP_SPECTRAL_NORM, in, 3, loc);
  }
  ir_node *w = ir_at(g, id);
  w->batched = 0;
  w->ndim = ndim;
  memcpy(w->dims, dims, (size_t)ndim * sizeof *dims);
  return id;
}

/* ---- backward -------------------------------------------------------------- */

void reparam_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (n.op == OP_WEIGHT_NORM) {
    for (int k = 0; k < 2; k++)
      if (ad_wants(ad, n.in[k])) {
        int in[3] = {dy, n.in[0], n.in[1]};
        int d = ad_node(ad, OP_WEIGHT_NORM_GRAD, in, 3, n.in[k], -1);
        g->nodes[d].reparam.wrt = k;
        ad_accumulate(ad, n.in[k], d);
      }
    return;
  }
  if (ad_wants(ad, n.in[0])) {
    int in[4] = {dy, n.in[0], n.in[1], n.in[2]};
    ad_accumulate(ad, n.in[0], ad_node(ad, OP_SPECTRAL_NORM_GRAD, in, 4, n.in[0], -1));
  }
}

/* ---- emission -------------------------------------------------------------- */

/* R rows of C values: the weight's first dim and the rest. */
static void rows_cols(const ir_node *w, long long *R, long long *C) {
  *R = w->dims[0];
  *C = ir_numel(w) / w->dims[0];
}

/* sigma = u . (Wo v), in double, the same code in the forward and the backward
 * pass so that both see the same bits. */
static void emit_sigma(emit_text *o, long long R, long long C) {
  emit_line(o, "double sigma = 0;");
  emit_line(o, "for (int r = 0; r < %lld; r++) {", R);
  emit_line(o, "double t = 0;");
  emit_line(o, "for (int k = 0; k < %lld; k++) t += (double)wo[(size_t)r * %lld + k] * (double)v[k];",
            C, C);
  emit_line(o, "sigma += (double)u[r] * (dl_real)t;");
  emit_line(o, "}");
}

static void emit_weight_norm(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pg[96], pv[96], pw[96];
  long long R, C;
  rows_cols(n, &R, &C);
  emit_ptr(ec, n->in[0], pg, sizeof pg);
  emit_ptr(ec, n->in[1], pv, sizeof pv);
  emit_ptr(ec, n->id, pw, sizeof pw);
  emit_line(o, "{ /* weight_norm: W = g * v / ||v|| per row (%lld rows of %lld) */", R, C);
  emit_line(o, "const dl_real *restrict wg = %s, *restrict v = %s;", pg, pv);
  emit_line(o, "dl_real *restrict W = %s;", pw);
  emit_line(o, "for (int r = 0; r < %lld; r++) {", R);
  emit_line(o, "const dl_real *restrict vr = v + (size_t)r * %lld;", C);
  emit_line(o, "double ss = 0;");
  emit_line(o, "for (int k = 0; k < %lld; k++) ss += (double)vr[k] * (double)vr[k];", C);
  emit_line(o, "const dl_real a = (dl_real)((double)wg[r] / sqrt(ss));");
  emit_line(o, "for (int k = 0; k < %lld; k++) W[(size_t)r * %lld + k] = vr[k] * a;", C, C);
  emit_line(o, "}");
  emit_line(o, "}");
}

static void emit_weight_norm_grad(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pdw[96], pg[96], pv[96], pout[96];
  const ir_node *v = &ec->g->nodes[n->in[2]];
  long long R, C;
  rows_cols(v, &R, &C);
  emit_ptr(ec, n->in[0], pdw, sizeof pdw);
  emit_ptr(ec, n->in[1], pg, sizeof pg);
  emit_ptr(ec, n->in[2], pv, sizeof pv);
  emit_ptr(ec, n->id, pout, sizeof pout);
  int dg = n->reparam.wrt == 0;
  emit_line(o, "{ /* weight_norm backward, per row: %s */",
            dg ? "dg = sum(dW v) / ||v||" : "dv = (g / ||v||) (dW - (sum(dW v) / ||v||^2) v)");
  emit_line(o, "const dl_real *restrict dW = %s, *restrict wg = %s, *restrict v = %s;",
            pdw, pg, pv);
  emit_line(o, "dl_real *restrict out = %s;", pout);
  emit_line(o, "for (int r = 0; r < %lld; r++) {", R);
  emit_line(o, "const dl_real *restrict vr = v + (size_t)r * %lld, *restrict dr = dW + (size_t)r * %lld;",
            C, C);
  emit_line(o, "double ss = 0, dot = 0;");
  emit_line(o, "for (int k = 0; k < %lld; k++) {", C);
  emit_line(o, "ss += (double)vr[k] * (double)vr[k];");
  emit_line(o, "dot += (double)dr[k] * (double)vr[k];");
  emit_line(o, "}");
  emit_line(o, "const double norm = sqrt(ss);");
  if (dg) {
    emit_line(o, "(void)wg;");
    emit_line(o, "out[r] = (dl_real)(dot / norm);");
    emit_line(o, "}");
    emit_line(o, "}");
    return;
  }
  emit_line(o, "const dl_real a = (dl_real)((double)wg[r] / norm), b = (dl_real)(dot / ss);");
  emit_line(o, "for (int k = 0; k < %lld; k++) out[(size_t)r * %lld + k] = a * (dr[k] - b * vr[k]);",
            C, C);
  emit_line(o, "}");
  emit_line(o, "}");
}

static void emit_spectral_norm(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pwo[96], pu[96], pv[96], pw[96];
  long long R, C;
  rows_cols(n, &R, &C);
  emit_ptr(ec, n->in[0], pwo, sizeof pwo);
  emit_ptr(ec, n->in[1], pu, sizeof pu);
  emit_ptr(ec, n->in[2], pv, sizeof pv);
  emit_ptr(ec, n->id, pw, sizeof pw);
  emit_line(o, "{ /* spectral_norm: W = Wo / sigma, sigma = u . (Wo v) (%lld rows of %lld) */",
            R, C);
  emit_line(o, "const dl_real *restrict wo = %s;", pwo);
  emit_line(o, "dl_real *restrict u = %s, *restrict v = %s, *restrict W = %s;", pu, pv, pw);
  emit_line(o, "if (ctx->train_mode && ctx->track_stats) {");
  emit_line(o, "/* a training step: one power iteration, stored back (torch: under no_grad)\n"
              " * v = normalize(Wo^T u), u = normalize(Wo v), normalize(x) = x / max(||x||, 1e-12) */");
  emit_line(o, "double ss = 0;");
  emit_line(o, "for (int k = 0; k < %lld; k++) v[k] = 0;", C);
  emit_line(o, "for (int r = 0; r < %lld; r++)", R);
  emit_line(o, "for (int k = 0; k < %lld; k++) v[k] += wo[(size_t)r * %lld + k] * u[r];", C, C);
  emit_line(o, "for (int k = 0; k < %lld; k++) ss += (double)v[k] * (double)v[k];", C);
  emit_line(o, "const dl_real nv = (dl_real)(sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12);");
  emit_line(o, "for (int k = 0; k < %lld; k++) v[k] /= nv;", C);
  emit_line(o, "ss = 0;");
  emit_line(o, "for (int r = 0; r < %lld; r++) {", R);
  emit_line(o, "double t = 0;");
  emit_line(o, "for (int k = 0; k < %lld; k++) t += (double)wo[(size_t)r * %lld + k] * (double)v[k];",
            C, C);
  emit_line(o, "u[r] = (dl_real)t;");
  emit_line(o, "ss += (double)u[r] * (double)u[r];");
  emit_line(o, "}");
  emit_line(o, "const dl_real nu = (dl_real)(sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12);");
  emit_line(o, "for (int r = 0; r < %lld; r++) u[r] /= nu;", R);
  emit_line(o, "}");
  emit_sigma(o, R, C);
  emit_line(o, "const dl_real s = (dl_real)sigma;");
  emit_line(o, "for (size_t i = 0; i < %lld; i++) W[i] = wo[i] / s;", R * C);
  emit_line(o, "}");
}

static void emit_spectral_norm_grad(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pdw[96], pwo[96], pu[96], pv[96], pout[96];
  long long R, C;
  rows_cols(n, &R, &C);
  emit_ptr(ec, n->in[0], pdw, sizeof pdw);
  emit_ptr(ec, n->in[1], pwo, sizeof pwo);
  emit_ptr(ec, n->in[2], pu, sizeof pu);
  emit_ptr(ec, n->in[3], pv, sizeof pv);
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_line(o, "{ /* spectral_norm backward (u, v constants):\n"
              "   * dWo = dW / sigma - (sum(dW Wo) / sigma^2) u v^T */");
  emit_line(o, "const dl_real *restrict dW = %s, *restrict wo = %s;", pdw, pwo);
  emit_line(o, "const dl_real *restrict u = %s, *restrict v = %s;", pu, pv);
  emit_line(o, "dl_real *restrict out = %s;", pout);
  emit_sigma(o, R, C);
  emit_line(o, "double dot = 0;");
  emit_line(o, "for (size_t i = 0; i < %lld; i++) dot += (double)dW[i] * (double)wo[i];", R * C);
  emit_line(o, "const dl_real s = (dl_real)sigma, c = (dl_real)(dot / (sigma * sigma));");
  emit_line(o, "for (int r = 0; r < %lld; r++)", R);
  emit_line(o, "for (int k = 0; k < %lld; k++) {", C);
  emit_line(o, "const size_t i = (size_t)r * %lld + k;", C);
  emit_line(o, "out[i] = dW[i] / s - c * u[r] * v[k];");
  emit_line(o, "}");
  emit_line(o, "}");
}

void reparam_emit(emit_ctx *ec, const ir_node *n) {
  switch (n->op) {
  case OP_WEIGHT_NORM: emit_weight_norm(ec, n); break;
  case OP_WEIGHT_NORM_GRAD: emit_weight_norm_grad(ec, n); break;
  case OP_SPECTRAL_NORM: emit_spectral_norm(ec, n); break;
  default: emit_spectral_norm_grad(ec, n); break;
  }
}

/* ---- ONNX ------------------------------------------------------------------- */

/* The effective weight, computed by the exporter from the checkpoint as
 * evaluation computes it (spectral norm's u and v as they are). */
void reparam_onnx(onnx_ctx *oc, const ir_node *n) {
  onnx_derived(oc, n, n->op == OP_WEIGHT_NORM ? DL_ONNX_INIT_WEIGHT_NORM : DL_ONNX_INIT_SPECTRAL_NORM,
               n->nin, n->in);
}
