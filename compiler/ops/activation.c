/* activation.c: relu, leaky_relu, sigmoid, tanh, gelu, softmax and dropout:
 * lowering, backward rules and emitters.  Each activation's forward and
 * derivative are written once here as C expressions, so the fused kernels
 * (dense + activation, activation gradient + bias gradient) share them. */
#include "ops.h"
#include "emit_text.h"
#include <string.h>

static ir_op activation_op(const char *name) {
  if (!strcmp(name, "relu")) return OP_RELU;
  if (!strcmp(name, "leaky_relu")) return OP_LEAKY_RELU;
  if (!strcmp(name, "sigmoid")) return OP_SIGMOID;
  if (!strcmp(name, "tanh")) return OP_TANH;
  if (!strcmp(name, "gelu")) return OP_GELU;
  return OP_SOFTMAX;
}

/* relu(x) sigmoid(x) tanh(x) gelu(x) softmax(x) leaky_relu(x, slope = 0.01) */
int lower_activation(lower_ctx *lc, const ast_expr *call) {
  ir_op op = activation_op(call->str);
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}, {"slope", ARG_NUMBER, 0, 0.01}};
  arg_val v[2];
  if (lower_bind_args(lc, call, spec, op == OP_LEAKY_RELU ? 2 : 1, v)) return -1;
  ir_node *x = ir_at(lc->g, v[0].node);
  if (!x->batched || x->ndim == 0) {
    diag_error(v[0].loc, "%s() needs a per-sample tensor, not %s", call->str,
               x->batched ? "a class label" : "a scalar");
    return -1;
  }
  int id = lower_node(lc, op, &v[0].node, 1, call->loc);
  ir_node *n = ir_at(lc->g, id);
  ir_copy_shape(n, ir_at(lc->g, v[0].node));
  n->act.slope = v[1].num;
  return id;
}

/* dropout(x, p): inverted dropout, identity in eval mode. */
int lower_dropout(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}, {"p", ARG_NUMBER, 1, 0}};
  arg_val v[2];
  if (lower_bind_args(lc, call, spec, 2, v)) return -1;
  if (!(v[1].num >= 0 && v[1].num < 1)) {
    diag_error(v[1].loc, "dropout probability must be in [0, 1), not %g", v[1].num);
    return -1;
  }
  ir_node *x = ir_at(lc->g, v[0].node);
  if (!x->batched || x->ndim == 0) {
    diag_error(v[0].loc, "dropout() needs a per-sample tensor, not %s",
               x->batched ? "a class label" : "a scalar");
    return -1;
  }
  int id = lower_node(lc, OP_DROPOUT, &v[0].node, 1, call->loc);
  ir_node *n = ir_at(lc->g, id);
  ir_copy_shape(n, ir_at(lc->g, v[0].node));
  n->act.p = v[1].num;
  n->act.site = lc->g->ndropout++;
  return id;
}

/* The gradient of an activation reads its output (relu, leaky, sigmoid,
 * tanh) or its input (gelu): only that is kept alive for backward. */
void activation_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (!ad_wants(ad, n.in[0])) return;
  int grad;
  if (n.op == OP_DROPOUT) {
    int in[1] = {dy};
    grad = ad_node(ad, OP_DROPOUT_GRAD, in, 1, n.in[0], -1);
    g->nodes[grad].act = n.act;
  } else if (n.op == OP_SOFTMAX) {
    int in[2] = {dy, id};
    grad = ad_node(ad, OP_SOFTMAX_GRAD, in, 2, n.in[0], -1);
  } else {
    int saved = n.op == OP_GELU ? n.in[0] : id;
    int in[2] = {dy, saved};
    grad = ad_node(ad, OP_ACT_GRAD, in, 2, n.in[0], -1);
    g->nodes[grad].act = n.act;
    g->nodes[grad].act.fwd = n.op;
  }
  ad_accumulate(ad, n.in[0], grad);
}

/* act(v) as a C expression in dl_real. */
const char *activation_expr(const ir_node *act, const char *v, char *buf, size_t len) {
  switch (act->op) {
  case OP_RELU: snprintf(buf, len, "%s > 0 ? %s : 0", v, v); break;
  case OP_LEAKY_RELU: snprintf(buf, len, "%s > 0 ? %s : (dl_real)%.17g * %s", v, v, act->act.slope, v); break;
  case OP_SIGMOID: snprintf(buf, len, "dl_sigmoid(%s)", v); break;
  case OP_TANH: snprintf(buf, len, "dl_tanh(%s)", v); break;
  case OP_GELU: snprintf(buf, len, "dl_gelu(%s)", v); break;
  default: snprintf(buf, len, "%s", v); break;
  }
  return buf;
}

/* An epilogue activation overwrites its input and its derivative is taken
 * from its output alone (dense_db and maxpool_grad pass the output as x). */
_Static_assert(!(OPF_OF_GELU & OPF_EPILOGUE_ACT) && !(OPF_OF_SOFTMAX & OPF_EPILOGUE_ACT) &&
                   !(OPF_OF_DROPOUT & OPF_EPILOGUE_ACT),
               "only activations whose derivative reads their output are epilogues (ops.def)");

/* dy * act'(.) from the saved output y (or input x for gelu). */
const char *activation_grad_expr(ir_op op, double slope, const char *dy, const char *y,
                                 const char *x, char *buf, size_t len) {
  switch (op) {
  case OP_RELU: snprintf(buf, len, "%s > 0 ? %s : 0", y, dy); break;
  case OP_LEAKY_RELU: snprintf(buf, len, "%s > 0 ? %s : (dl_real)%.17g * %s", y, dy, slope, dy); break;
  case OP_SIGMOID: snprintf(buf, len, "%s * %s * (1 - %s)", dy, y, y); break;
  case OP_TANH: snprintf(buf, len, "%s * (1 - %s * %s)", dy, y, y); break;
  default: snprintf(buf, len, "%s * dl_gelu_grad(%s)", dy, x); break;
  }
  return buf;
}

/* dropout: keep with probability 1-p, scaled by 1/(1-p); the mask is a hash
 * of (seed, step, site, k), so backward recomputes it instead of storing it.
 * In eval mode forward copies x (emit_elementwise's eval_identity). */
static void emit_dropout(emit_ctx *ec, const ir_node *n, const char *px, const char *py, int grad) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char decls[256], body[160];
  double p = n->act.p;
  snprintf(decls, sizeof decls, "const dl_real *x = %s;\ndl_real *y = %s;", px, py);
  snprintf(body, sizeof body, "y[k] = dl_dropout_keep(ctx, %d, k, (float)%.9g) ? x[k] * (dl_real)%.17g : 0",
           n->act.site, p, 1.0 / (1.0 - p));
  emit_line(o, "/* %s = keep ? %s / (1 - p) : 0,  p = %g */", grad ? "dx" : "y", grad ? "dy" : "x", p);
  emit_elementwise(ec, n, grad ? "dropout_dx" : "dropout", decls, body, !grad);
}

static void emit_softmax(emit_ctx *ec, const ir_node *n, const char *px, const char *py) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char rows[64];
  emit_rows(n, rows, sizeof rows);
  long long C = ll(ir_last_dim(n));
  emit_line(o, "{");
  emit_line(o, "const dl_real *x = %s;", px);
  emit_line(o, "dl_real *y = %s;", py);
  emit_line(o, "/* y = exp(x - max x) / sum exp(x - max x), per row */");
  emit_line(o, "for (int r = 0; r < %s; r++)", rows);
  emit_line(o, "dl_softmax_row(x + (size_t)r * %lld, y + (size_t)r * %lld, %lld);", C, C, C);
  emit_line(o, "}");
}

void activation_emit(emit_ctx *ec, const ir_node *n) {
  char px[96], py[96], decls[300], body[256], e[200];
  emit_ptr(ec, n->in[0], px, sizeof px);
  emit_ptr(ec, n->id, py, sizeof py);
  if (n->op == OP_DROPOUT) {
    emit_dropout(ec, n, px, py, 0);
    return;
  }
  if (n->op == OP_SOFTMAX) {
    emit_softmax(ec, n, px, py);
    return;
  }
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  snprintf(decls, sizeof decls, "const dl_real *x = %s;\ndl_real *y = %s;", px, py);
  snprintf(body, sizeof body, "{ const dl_real v = x[k]; y[k] = %s; }",
           activation_expr(n, "v", e, sizeof e));
  emit_line(o, "/* y = %s(x) */", ir_op_name(n->op));
  emit_elementwise(ec, n, "act", decls, body, 0);
}

void activation_grad_emit(emit_ctx *ec, const ir_node *n) {
  char pdy[96], ps[96], pdx[96], decls[400], body[300], e[200];
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_ptr(ec, n->id, pdx, sizeof pdx);
  if (n->op == OP_DROPOUT_GRAD) {
    emit_dropout(ec, n, pdy, pdx, 1);
    return;
  }
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_ptr(ec, n->in[1], ps, sizeof ps);
  if (n->op == OP_SOFTMAX_GRAD) {
    char rows[64];
    emit_rows(n, rows, sizeof rows);
    long long C = ll(ir_last_dim(n));
    emit_line(o, "{");
    emit_line(o, "const dl_real *dy = %s, *y = %s;", pdy, ps);
    emit_line(o, "dl_real *dx = %s;", pdx);
    emit_line(o, "/* dx = y * (dy - sum(dy * y)), per row */");
    emit_line(o, "for (int r = 0; r < %s; r++)", rows);
    emit_line(o, "dl_softmax_grad_row(dy + (size_t)r * %lld, y + (size_t)r * %lld, "
                 "dx + (size_t)r * %lld, %lld);", C, C, C, C);
    emit_line(o, "}");
    return;
  }
  snprintf(decls, sizeof decls, "const dl_real *dy = %s, *s = %s;\ndl_real *dx = %s;", pdy, ps, pdx);
  snprintf(body, sizeof body, "dx[k] = %s",
           activation_grad_expr(n->act.fwd, n->act.slope, "dy[k]", "s[k]", "s[k]", e, sizeof e));
  emit_line(o, "/* dx = dy * %s'(.) */", ir_op_name(n->act.fwd));
  emit_elementwise(ec, n, "act_dx", decls, body, 0);
}

/* ---- ONNX ------------------------------------------------------------------- */

/* The activations; softmax over the last axis; dropout is the identity in
 * inference.  GELU is x * (1 + erf(x / sqrt 2)) / 2 through Erf: the Gelu
 * op is opset 20. */
void activation_onnx(onnx_ctx *oc, const ir_node *n) {
  const char *x = onnx_value(oc, n->in[0]);
  switch (n->op) {
  case OP_RELU: onnx_unary(oc, n, "Relu"); return;
  case OP_SIGMOID: onnx_unary(oc, n, "Sigmoid"); return;
  case OP_TANH: onnx_unary(oc, n, "Tanh"); return;
  case OP_LEAKY_RELU:
    onnx_attr_float(oc, "alpha", n->act.slope);
    onnx_unary(oc, n, "LeakyRelu");
    return;
  case OP_SOFTMAX:
    onnx_attr_int(oc, "axis", n->ndim); /* the last: the batch is axis 0 */
    onnx_unary(oc, n, "Softmax");
    return;
  case OP_DROPOUT: onnx_alias(oc, n, x); return;
  case OP_GELU: {
    const char *s = onnx_binary(oc, n, "Mul", onnx_temp(oc, n), x, onnx_scalar(oc, 0.70710678118654752440));
    const char *in[1] = {s};
    const char *e = onnx_node(oc, n, "Erf", onnx_temp(oc, n), 1, in);
    const char *e1 = onnx_binary(oc, n, "Add", onnx_temp(oc, n), e, onnx_scalar(oc, 1.0));
    const char *xe = onnx_binary(oc, n, "Mul", onnx_temp(oc, n), x, e1);
    onnx_binary(oc, n, "Mul", NULL, xe, onnx_scalar(oc, 0.5));
    return;
  }
  default: return;
  }
}
