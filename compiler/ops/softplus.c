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
  FILE *o = ec->out;
  char px[96], pdy[96], pout[96], rows[64];
  int grad = n->op == OP_SOFTPLUS_GRAD;
  emit_ptr(ec, n->in[grad ? 1 : 0], px, sizeof px);
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_rows(n, rows, sizeof rows);
  fprintf(o, "  {\n    const dl_real *x = %s;\n", px);
  if (grad) fprintf(o, "    const dl_real *dy = %s;\n", emit_ptr(ec, n->in[0], pdy, sizeof pdy));
  fprintf(o, "    dl_real *%s = %s;\n", grad ? "dx" : "y", pout);
  fprintf(o, "    const dl_real beta = (dl_real)%.17g, threshold = (dl_real)%.17g;\n", n->softplus.beta,
          n->softplus.threshold);
  fprintf(o, "    const size_t count = (size_t)(%s) * %lld;\n", rows, (long long)ir_last_dim(n));
  if (grad) {
    fprintf(o, "    /* dx = dy * sigmoid(beta x), or dy where beta x > threshold */\n");
    fprintf(o, "    for (size_t k = 0; k < count; k++) {\n");
    fprintf(o, "      const dl_real bx = x[k] * beta, z = dl_exp(bx);\n");
    fprintf(o, "      dx[k] = bx > threshold ? dy[k] : dy[k] * z / (z + 1);\n    }\n  }\n");
  } else {
    fprintf(o, "    /* y = log(1 + e^(beta x)) / beta, or x where beta x > threshold */\n");
    fprintf(o, "    for (size_t k = 0; k < count; k++) {\n");
    fprintf(o, "      const dl_real bx = x[k] * beta;\n");
    fprintf(o, "      y[k] = bx > threshold ? x[k] : (dl_real)log1p((double)dl_exp(bx)) / beta;\n");
    fprintf(o, "    }\n  }\n");
  }
}
