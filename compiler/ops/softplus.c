/* softplus.c: softplus(x, beta = 1, threshold = 20), as torch.nn.Softplus
 * defines it: log(1 + e^(beta x)) / beta, and x itself where beta x >
 * threshold (there the two differ by less than e^-threshold, and e^(beta x)
 * would overflow).  Its gradient, sigmoid(beta x) there and 1 above the
 * threshold, is computed from the input as torch does, so backward reads x.
 *
 * The whole op family is this file: lowering, backward rule, and the
 * emitters of OP_SOFTPLUS (attributes: softplus.beta, softplus.threshold)
 * and of OP_SOFTPLUS_GRAD (dx from dy and x, the same attributes).  It is not fused into a
 * dense or conv epilogue: those call activation.c's expressions. */
#include "ops.h"
#include "emit_text.h"

int lower_softplus(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0}, {"beta", ARG_NUMBER, 0, 1}, {"threshold", ARG_NUMBER, 0, 20},
  };
  arg_val v[3];
  if (lower_bind_args(lc, call, spec, 3, v)) return -1;
  ir_node *x = ir_at(lc->g, v[0].node);
  if (!x->batched || x->ndim == 0) {
    diag_error(v[0].loc, "softplus() needs a per-sample tensor, not %s",
               x->batched ? "a class label" : "a scalar");
    return -1;
  }
  /* torch divides by beta unchecked: 0 gives NaN, and below 0 the branch
     for large beta x would return x for the wrong side */
  if (!(v[1].num > 0)) {
    diag_error(v[1].loc, "softplus() needs beta > 0, not %g", v[1].num);
    return -1;
  }
  int id = lower_node(lc, OP_SOFTPLUS, &v[0].node, 1, call->loc);
  ir_node *n = ir_at(lc->g, id);
  ir_copy_shape(n, ir_at(lc->g, v[0].node));
  n->softplus.beta = v[1].num;
  n->softplus.threshold = v[2].num;
  return id;
}

void softplus_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (!ad_wants(ad, n.in[0])) return;
  int in[2] = {dy, n.in[0]};
  int grad = ad_node(ad, OP_SOFTPLUS_GRAD, in, 2, n.in[0], -1);
  g->nodes[grad].softplus = n.softplus;
  ad_accumulate(ad, n.in[0], grad);
}

/* One loop over every element: bx = beta x, then torch's two branches.
 * log1p in double keeps float's result within an ulp (there is no vector
 * log1pf to lose). */
void softplus_emit(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char px[96], pdy[96], pout[96], rows[64];
  int grad = n->op == OP_SOFTPLUS_GRAD;
  emit_ptr(ec, n->in[grad ? 1 : 0], px, sizeof px);
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_rows(n, rows, sizeof rows);
  emit_line(o, "{");
  emit_line(o, "const dl_real *x = %s;", px);
  if (grad) emit_line(o, "const dl_real *dy = %s;", emit_ptr(ec, n->in[0], pdy, sizeof pdy));
  emit_line(o, "dl_real *%s = %s;", grad ? "dx" : "y", pout);
  emit_line(o, "const dl_real beta = (dl_real)%.17g, threshold = (dl_real)%.17g;", n->softplus.beta,
            n->softplus.threshold);
  emit_line(o, "const size_t count = (size_t)(%s) * %lld;", rows, ll(ir_last_dim(n)));
  if (grad) {
    emit_line(o, "/* dx = dy * sigmoid(beta x), or dy where beta x > threshold */");
    emit_line(o, EW_FOR " {");
    emit_line(o, "const dl_real bx = x[k] * beta, z = dl_exp(bx);");
    emit_line(o, "dx[k] = bx > threshold ? dy[k] : dy[k] * z / (z + 1);");
  } else {
    emit_line(o, "/* y = log(1 + e^(beta x)) / beta, or x where beta x > threshold */");
    emit_line(o, EW_FOR " {");
    emit_line(o, "const dl_real bx = x[k] * beta;");
    emit_line(o, "y[k] = bx > threshold ? x[k] : (dl_real)log1p((double)dl_exp(bx)) / beta;");
  }
  emit_line(o, "}");
  emit_line(o, "}");
}

/* ---- ONNX ------------------------------------------------------------------- */

/* (Relu(z) + Log(1 + Exp(-|z|))) / beta with z = beta x: ONNX's Softplus,
 * log(exp(z) + 1), overflows to inf past z = 88 in float32 where torch
 * returns x (beta x > threshold); this form never overflows, and past the
 * threshold (20 by default) it is z + log(1 + e^-z) = z within float32's
 * precision, so neither beta nor the threshold needs a Where. */
void softplus_onnx(onnx_ctx *oc, const ir_node *n) {
  const char *x = onnx_value(oc, n->in[0]), *in[1];
  double beta = n->softplus.beta;
  const char *z = beta == 1 ? x : onnx_binary(oc, n, "Mul", onnx_temp(oc, n), x, onnx_scalar(oc, beta));
  in[0] = z;
  const char *a = onnx_node(oc, n, "Abs", onnx_temp(oc, n), 1, in);
  in[0] = onnx_binary(oc, n, "Mul", onnx_temp(oc, n), a, onnx_scalar(oc, -1));
  const char *e = onnx_node(oc, n, "Exp", onnx_temp(oc, n), 1, in);
  in[0] = onnx_binary(oc, n, "Add", onnx_temp(oc, n), e, onnx_scalar(oc, 1));
  const char *l = onnx_node(oc, n, "Log", onnx_temp(oc, n), 1, in);
  in[0] = z;
  const char *r = onnx_node(oc, n, "Relu", onnx_temp(oc, n), 1, in);
  if (beta == 1) {
    onnx_binary(oc, n, "Add", NULL, r, l);
    return;
  }
  const char *sp = onnx_binary(oc, n, "Add", onnx_temp(oc, n), r, l);
  onnx_binary(oc, n, "Mul", NULL, sp, onnx_scalar(oc, 1 / beta));
}
