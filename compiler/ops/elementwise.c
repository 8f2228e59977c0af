/* elementwise.c: a + b, a - b, a * b, c * a, a / c, -a, concat, flatten,
 * and the gradient plumbing ops (slice, addn, the gradient seed).
 * They work on per-sample tensors and on scalars (losses) alike. */
#include "ops.h"
#include "emit_text.h"
#include <string.h>

static int same_shape(const ir_node *a, const ir_node *b) {
  if (a->batched != b->batched || a->ndim != b->ndim) return 0;
  for (int k = 0; k < a->ndim; k++)
    if (a->dims[k] != b->dims[k]) return 0;
  return 1;
}

static int scale_node(lower_ctx *lc, int x, double f, dl_loc loc) {
  int id = lower_node(lc, OP_SCALE, &x, 1, loc);
  ir_node *n = ir_at(lc->g, id);
  ir_copy_shape(n, ir_at(lc->g, x));
  n->ew.factor = f;
  return id;
}

/* Whether e is made of numbers only (it may still fail to fold: 1/0). */
static int is_constant(const ast_expr *e) {
  if (e->kind == EX_NUM) return 1;
  if (e->kind == EX_NEG) return is_constant(e->lhs);
  return e->kind == EX_BINOP && is_constant(e->lhs) && is_constant(e->rhs);
}

/* A constant where a tensor is expected: -1 after reporting. */
static int not_a_tensor(const ast_expr *e) {
  double c;
  if (lower_eval_number(e, &c))
    diag_error(e->loc, "this number cannot be computed (division by zero or overflow)");
  else
    diag_error(e->loc, "expected a tensor, found the number %g", c);
  return -1;
}

/* a + b, a - b, a * b (same shapes), c * a, a * c, a / c (c a number), -a;
 * a / b, a + c, c + a, a - c, c - a and c / a go to arith.c */
int lower_binop(lower_ctx *lc, const ast_expr *e) {
  double c;
  if (is_constant(e)) return not_a_tensor(e);
  if (e->kind == EX_NEG) {
    int x = lower_tensor(lc, e->lhs);
    return x < 0 ? -1 : scale_node(lc, x, -1, e->loc);
  }
  int lnum = is_constant(e->lhs), rnum = is_constant(e->rhs);
  if (lnum || rnum) {
    const ast_expr *t = lnum ? e->rhs : e->lhs;
    if (lower_eval_number(lnum ? e->lhs : e->rhs, &c)) return not_a_tensor(lnum ? e->lhs : e->rhs);
    int x = lower_tensor(lc, t);
    if (x < 0) return -1;
    if (e->op == '/' && rnum && c == 0) {
      diag_error(e->rhs->loc, "division by zero");
      return -1;
    }
    if (e->op == '*' || (e->op == '/' && rnum))
      return scale_node(lc, x, e->op == '/' ? 1 / c : c, e->loc);
    return lower_number_op(lc, x, e->op, lnum, c, e->loc); /* arith.c */
  }
  int a = lower_tensor(lc, e->lhs), b = lower_tensor(lc, e->rhs);
  if (a < 0 || b < 0) return -1;
  ir_node *na = ir_at(lc->g, a), *nb = ir_at(lc->g, b);
  if (!same_shape(na, nb)) {
    char sa[96], sb[96];
    diag_error(e->loc, "shapes differ in '%c': left is %s, right is %s", e->op,
               ir_shape_str(na, sa, sizeof sa), ir_shape_str(nb, sb, sizeof sb));
    return -1;
  }
  if (e->op == '/') return lower_div(lc, a, b, e->loc); /* arith.c */
  int in[2] = {a, b};
  int id = lower_node(lc, e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB : OP_MUL, in, 2, e->loc);
  ir_copy_shape(ir_at(lc->g, id), ir_at(lc->g, a));
  return id;
}

/* concat(a, b, ...): along the last dim; the other dims must agree. */
int lower_concat(lower_ctx *lc, const ast_expr *call) {
  if (call->nargs < 2 || call->nargs > IR_MAX_IN) {
    diag_error(call->loc, "concat() takes 2 to %d tensors", IR_MAX_IN);
    return -1;
  }
  int in[IR_MAX_IN];
  for (int k = 0; k < call->nargs; k++) {
    if (call->args[k].name) {
      diag_error(call->args[k].name_loc, "concat() takes no named arguments");
      return -1;
    }
    if ((in[k] = lower_tensor(lc, call->args[k].value)) < 0) return -1;
  }
  ir_node first = *ir_at(lc->g, in[0]);
  int64_t last = 0;
  for (int k = 0; k < call->nargs; k++) {
    ir_node *n = ir_at(lc->g, in[k]);
    if (!n->batched || n->ndim == 0) {
      diag_error(call->args[k].value->loc, "concat() needs per-sample tensors, not %s",
                 n->batched ? "a class label" : "a scalar");
      return -1;
    }
    int ok = n->ndim == first.ndim;
    for (int d = 0; ok && d + 1 < n->ndim; d++) ok = n->dims[d] == first.dims[d];
    if (!ok) {
      char s0[96], sk[96];
      diag_error(call->args[k].value->loc, "concat() needs tensors that differ only in the last dim: %s and %s",
                 ir_shape_str(&first, s0, sizeof s0), ir_shape_str(n, sk, sizeof sk));
      return -1;
    }
    last += ir_last_dim(n);
  }
  if ((double)ir_numel(&first) / ir_last_dim(&first) * last > 2147483648.0) {
    diag_error(call->loc, "concat() result is too large (the limit is 2147483648 values per sample)");
    return -1;
  }
  int id = lower_node(lc, OP_CONCAT, in, call->nargs, call->loc);
  ir_node *n = ir_at(lc->g, id);
  ir_copy_shape(n, &first);
  n->dims[n->ndim - 1] = last;
  return id;
}

/* flatten(x): [batch, d1, d2, ...] -> [batch, d1*d2*...] */
int lower_flatten(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}};
  arg_val v[1];
  if (lower_bind_args(lc, call, spec, 1, v)) return -1;
  ir_node *x = ir_at(lc->g, v[0].node);
  if (!x->batched || x->ndim == 0) {
    diag_error(v[0].loc, "flatten() needs a per-sample tensor, not %s",
               x->batched ? "a class label" : "a scalar");
    return -1;
  }
  int64_t numel = ir_numel(x);
  int id = lower_node(lc, OP_VIEW, &v[0].node, 1, call->loc);
  ir_node *n = ir_at(lc->g, id);
  n->batched = 1;
  n->ndim = 1;
  n->dims[0] = numel;
  return id;
}

/* reshape(x, d1, d2, ...): the same values in row-major order with another
 * per-sample shape (torch's x.reshape(batch, d1, d2, ...)). */
int lower_reshape(lower_ctx *lc, const ast_expr *call) {
  if (call->nargs < 2 || call->nargs > 1 + IR_MAX_DIMS) {
    diag_error(call->loc, "reshape() takes a tensor and 1 to %d dims", IR_MAX_DIMS);
    return -1;
  }
  for (int k = 0; k < call->nargs; k++)
    if (call->args[k].name) {
      diag_error(call->args[k].name_loc, "reshape() takes no named arguments");
      return -1;
    }
  int x = lower_tensor(lc, call->args[0].value);
  if (x < 0) return -1;
  ir_node *xn = ir_at(lc->g, x);
  if (!xn->batched || xn->ndim == 0) {
    diag_error(call->args[0].value->loc, "reshape() needs a per-sample tensor, not %s",
               xn->batched ? "a class label" : "a scalar");
    return -1;
  }
  int64_t dims[IR_MAX_DIMS], numel = 1;
  int ndim = call->nargs - 1;
  for (int k = 0; k < ndim; k++) {
    const ast_expr *e = call->args[k + 1].value;
    double v;
    if (lower_eval_number(e, &v) || v != (double)(int64_t)v || v < 1 || v > 2147483648.0) {
      diag_error(e->loc, "a dimension of reshape() must be a positive whole number");
      return -1;
    }
    dims[k] = (int64_t)v;
    numel = numel * dims[k] > 2147483648LL * 2 ? 2147483648LL * 2 : numel * dims[k];
  }
  if (numel != ir_numel(xn)) {
    char shape[96];
    diag_error(call->loc, "reshape() to %lld values per sample, but the input %s has %lld",
               (long long)numel, ir_shape_str(xn, shape, sizeof shape), (long long)ir_numel(xn));
    return -1;
  }
  int id = lower_node(lc, OP_VIEW, &x, 1, call->loc);
  ir_node *n = ir_at(lc->g, id);
  n->batched = 1;
  n->ndim = ndim;
  memcpy(n->dims, dims, sizeof(int64_t) * (size_t)ndim);
  return id;
}

void elementwise_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  switch (n.op) {
  case OP_ADD:
  case OP_SUB:
    ad_accumulate(ad, n.in[0], dy);
    if (ad_wants(ad, n.in[1])) {
      int neg = dy;
      if (n.op == OP_SUB) {
        neg = ad_node(ad, OP_SCALE, &dy, 1, n.in[1], -1);
        g->nodes[neg].ew.factor = -1;
      }
      ad_accumulate(ad, n.in[1], neg);
    }
    break;
  case OP_MUL:
    for (int k = 0; k < 2; k++)
      if (ad_wants(ad, n.in[k])) {
        int in[2] = {dy, n.in[1 - k]};
        ad_accumulate(ad, n.in[k], ad_node(ad, OP_MUL, in, 2, n.in[k], -1));
      }
    break;
  case OP_SCALE: {
    int s = ad_node(ad, OP_SCALE, &dy, 1, n.in[0], -1);
    g->nodes[s].ew.factor = n.ew.factor;
    ad_accumulate(ad, n.in[0], s);
    break;
  }
  case OP_VIEW:
    ad_accumulate(ad, n.in[0], ad_node(ad, OP_VIEW, &dy, 1, n.in[0], -1));
    break;
  case OP_CONCAT: {
    int64_t off = 0;
    for (int k = 0; k < n.nin; k++) {
      if (ad_wants(ad, n.in[k])) {
        int s = ad_node(ad, OP_SLICE, &dy, 1, n.in[k], -1);
        g->nodes[s].ew.from = (int)off;
        ad_accumulate(ad, n.in[k], s);
      }
      off += ir_last_dim(&g->nodes[n.in[k]]);
    }
    break;
  }
  default:
    break;
  }
}

static void emit_concat(emit_ctx *ec, const ir_node *n) {
  char py[96], px[96], rows[64];
  emit_ptr(ec, n->id, py, sizeof py);
  emit_rows(n, rows, sizeof rows);
  long long W = ir_last_dim(n), off = 0;
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "{");
  emit_line(o, "dl_real *y = %s;", py);
  emit_line(o, "const int rows = %s;", rows);
  for (int k = 0; k < n->nin; k++) {
    const ir_node *x = &ec->g->nodes[n->in[k]];
    long long w = ir_last_dim(x);
    emit_ptr(ec, n->in[k], px, sizeof px);
    emit_line(o, "/* y[:, %lld:%lld] = input %d */", off, off + w, k);
    emit_line(o, "for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * %lld + %lld, %s + (size_t)r * %lld, %lld * sizeof(dl_real));",
              W, off, px, w, w);
    off += w;
  }
  emit_line(o, "}");
}

static void emit_slice(emit_ctx *ec, const ir_node *n) {
  char py[96], px[96], rows[64];
  emit_ptr(ec, n->id, py, sizeof py);
  emit_ptr(ec, n->in[0], px, sizeof px);
  emit_rows(n, rows, sizeof rows);
  long long W = ir_last_dim(&ec->g->nodes[n->in[0]]), w = ir_last_dim(n);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "/* dx = dy[:, %d:%lld] */", n->ew.from, n->ew.from + w);
  emit_line(o, "for (int r = 0; r < %s; r++) memcpy(%s + (size_t)r * %lld, %s + (size_t)r * %lld + %d, %lld * sizeof(dl_real));",
            rows, py, w, px, W, n->ew.from, w);
}

void elementwise_emit(emit_ctx *ec, const ir_node *n) {
  char py[96], pa[96], pb[96], rows[64];
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  if (n->op == OP_CONCAT || n->op == OP_SLICE) {
    (n->op == OP_CONCAT ? emit_concat : emit_slice)(ec, n);
    return;
  }
  emit_ptr(ec, n->id, py, sizeof py);
  emit_rows(n, rows, sizeof rows);
  long long last = ir_last_dim(n);
  if (n->op == OP_GRAD_SEED) {
    emit_line(o, "%s[0] = 1; /* d loss / d loss */", py);
    return;
  }
  emit_ptr(ec, n->in[0], pa, sizeof pa);
  if (n->op == OP_VIEW) {
    /* the memory plan usually gives a reshape its input's buffer */
    if (!strcmp(py, pa)) emit_line(o, "/* same values, new shape: nothing to move */");
    else emit_line(o, "memcpy(%s, %s, (size_t)(%s) * %lld * sizeof(dl_real)); /* same values, new shape */",
              py, pa, rows, last);
    return;
  }
  char decls[128 + 96 * IR_MAX_IN], body[16 + 8 * IR_MAX_IN];
  snprintf(decls, sizeof decls, "dl_real *y = %s;\nconst dl_real *a = %s;", py, pa);
  for (int k = 1; k < n->nin; k++) {
    emit_ptr(ec, n->in[k], pb, sizeof pb);
    snprintf(decls + strlen(decls), sizeof decls - strlen(decls), "\nconst dl_real *%c = %s;",
             'a' + k, pb);
  }
  switch (n->op) {
  case OP_ADD: snprintf(body, sizeof body, "y[k] = a[k] + b[k]"); break;
  case OP_SUB: snprintf(body, sizeof body, "y[k] = a[k] - b[k]"); break;
  case OP_MUL: snprintf(body, sizeof body, "y[k] = a[k] * b[k]"); break;
  case OP_SCALE: snprintf(body, sizeof body, "y[k] = a[k] * (dl_real)%.17g", n->ew.factor); break;
  default: /* OP_ADDN: gradient contributions summed */
    snprintf(body, sizeof body, "y[k] = a[k]");
    for (int k = 1; k < n->nin; k++)
      snprintf(body + strlen(body), sizeof body - strlen(body), " + %c[k]", 'a' + k);
    break;
  }
  emit_elementwise(ec, n, ir_op_name(n->op), decls, body, 0);
}

/* ---- ONNX ------------------------------------------------------------------- */

/* + - * and scaling by a number; concat along the last axis; flatten and
 * reshape (the batch stays axis 0). */
void elementwise_onnx(onnx_ctx *oc, const ir_node *n) {
  const char *a = onnx_value(oc, n->in[0]);
  switch (n->op) {
  case OP_ADD: onnx_binary(oc, n, "Add", NULL, a, onnx_value(oc, n->in[1])); return;
  case OP_SUB: onnx_binary(oc, n, "Sub", NULL, a, onnx_value(oc, n->in[1])); return;
  case OP_MUL: onnx_binary(oc, n, "Mul", NULL, a, onnx_value(oc, n->in[1])); return;
  case OP_SCALE: onnx_binary(oc, n, "Mul", NULL, a, onnx_scalar(oc, n->ew.factor)); return;
  case OP_CONCAT: {
    const char *in[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) in[k] = onnx_value(oc, n->in[k]);
    onnx_attr_int(oc, "axis", n->ndim);
    onnx_node(oc, n, "Concat", NULL, n->nin, in);
    return;
  }
  case OP_VIEW: {
    if (n->ndim == 1) {
      onnx_attr_int(oc, "axis", 1);
      onnx_unary(oc, n, "Flatten");
      return;
    }
    int64_t shape[IR_MAX_DIMS + 1] = {-1};
    for (int d = 0; d < n->ndim; d++) shape[d + 1] = n->dims[d];
    onnx_binary(oc, n, "Reshape", NULL, a, onnx_ints(oc, n->ndim + 1, shape));
    return;
  }
  default: return;
  }
}
