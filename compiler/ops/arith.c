/* arith.c: the arithmetic elementwise.c's a + b, a - b, a * b and c * x do
 * not cover: a / b between tensors of one shape (torch's a / b), x + c and
 * x - c and c - x with a number c, and c / x.  lower_binop (elementwise.c)
 * decides which case an expression is and calls the lowerings below.
 *
 * OP_DIV: y = a / b  in: a, b
 * OP_DIV_GRAD: db = -dy * a / (b * b)  in: dy, a, b (da is dy / b, an OP_DIV)
 * OP_SHIFT: y = x + arith.c  in: x (its gradient is dy itself)
 * OP_RDIV: y = arith.c / x  in: x
 * OP_RDIV_GRAD: dx = -dy * arith.c / (x * x)  in: dy, x
 * The gradients read the inputs, as torch's do, not the output. */
#include "ops.h"
#include "emit_text.h"

static int arith_node(lower_ctx *lc, ir_op op, int *in, int nin, double c, dl_loc loc) {
  int id = lower_node(lc, op, in, nin, loc);
  ir_node *n = ir_at(lc->g, id);
  ir_copy_shape(n, ir_at(lc->g, in[0]));
  n->arith.c = c;
  return id;
}

/* a / b: the shapes were checked by the caller */
int lower_div(lower_ctx *lc, int a, int b, dl_loc loc) {
  int in[2] = {a, b};
  return arith_node(lc, OP_DIV, in, 2, 0, loc);
}

/* x + c, x - c, c - x, c / x (op is the operator, number_left whether c
 * is its left operand); x * c and x / c stay elementwise.c's scale. */
int lower_number_op(lower_ctx *lc, int x, int op, int number_left, double c, dl_loc loc) {
  if (op == '/') return arith_node(lc, OP_RDIV, &x, 1, c, loc);
  if (op == '-' && number_left) { /* c - x = (-x) + c */
    int neg = lower_node(lc, OP_SCALE, &x, 1, loc);
    ir_node *n = ir_at(lc->g, neg);
    ir_copy_shape(n, ir_at(lc->g, x));
    n->ew.factor = -1;
    return arith_node(lc, OP_SHIFT, &neg, 1, c, loc);
  }
  return arith_node(lc, OP_SHIFT, &x, 1, op == '-' ? -c : c, loc);
}

void arith_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (n.op == OP_SHIFT) {
    ad_accumulate(ad, n.in[0], dy);
  } else if (n.op == OP_RDIV) {
    if (!ad_wants(ad, n.in[0])) return;
    int in[2] = {dy, n.in[0]};
    int grad = ad_node(ad, OP_RDIV_GRAD, in, 2, n.in[0], -1);
    g->nodes[grad].arith = n.arith;
    ad_accumulate(ad, n.in[0], grad);
  } else if (n.op == OP_DIV) {
    if (ad_wants(ad, n.in[0])) {
      int in[2] = {dy, n.in[1]};
      ad_accumulate(ad, n.in[0], ad_node(ad, OP_DIV, in, 2, n.in[0], -1));
    }
    if (ad_wants(ad, n.in[1])) {
      int in[3] = {dy, n.in[0], n.in[1]};
      ad_accumulate(ad, n.in[1], ad_node(ad, OP_DIV_GRAD, in, 3, n.in[1], -1));
    }
  }
}

void arith_emit(emit_ctx *ec, const ir_node *n) {
  static const struct { ir_op op; const char *comment, *loop; } forms[] = {
    {OP_DIV, "y = a / b", "y[k] = a[k] / b[k];"},
    {OP_DIV_GRAD, "db = -dy * a / (b * b)", "y[k] = -a[k] * b[k] / (c[k] * c[k]);"},
    {OP_SHIFT, "y = x + c", "y[k] = a[k] + cst;"},
    {OP_RDIV, "y = c / x", "y[k] = cst / a[k];"},
    {OP_RDIV_GRAD, "dx = -dy * c / (x * x)", "y[k] = -a[k] * cst / (b[k] * b[k]);"},
  };
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char py[96], pa[96], rows[64];
  int f = 0;
  while (forms[f].op != n->op) f++;
  emit_ptr(ec, n->id, py, sizeof py);
  emit_rows(n, rows, sizeof rows);
  emit_line(o, "{");
  emit_line(o, "/* %s */", forms[f].comment);
  emit_line(o, "dl_real *y = %s;", py);
  for (int k = 0; k < n->nin; k++)
    emit_line(o, "const dl_real *%c = %s;", 'a' + k, emit_ptr(ec, n->in[k], pa, sizeof pa));
  if (n->op != OP_DIV && n->op != OP_DIV_GRAD)
    emit_line(o, "const dl_real cst = (dl_real)%.17g;", n->arith.c);
  emit_line(o, "const size_t count = (size_t)(%s) * %lld;", rows, ll(ir_last_dim(n)));
  emit_line(o, EW_FOR " %s", forms[f].loop);
  emit_line(o, "}");
}

/* ---- ONNX ------------------------------------------------------------------- */

/* a / b, x + c, c / x (x - c and c - x are lowered to these and scale). */
void arith_onnx(onnx_ctx *oc, const ir_node *n) {
  const char *x = onnx_value(oc, n->in[0]);
  switch (n->op) {
  case OP_DIV: onnx_binary(oc, n, "Div", NULL, x, onnx_value(oc, n->in[1])); return;
  case OP_SHIFT: onnx_binary(oc, n, "Add", NULL, x, onnx_scalar(oc, n->arith.c)); return;
  case OP_RDIV: onnx_binary(oc, n, "Div", NULL, onnx_scalar(oc, n->arith.c), x); return;
  default: return;
  }
}
