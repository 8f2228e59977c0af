/* math.c: the elementwise functions exp, log, sqrt, square, abs and
 * clamp(x, min =, max =), each with its gradient as torch defines both:
 *
 *   exp     y = e^x                  dx = dy * y          (in: dy, y)
 *   log     y = log x                dx = dy / x          (in: dy, x)
 *   sqrt    y = sqrt x               dx = dy / (2 y)      (in: dy, y)
 *   square  y = x * x                dx = dy * (2 x)      (in: dy, x)
 *   abs     y = |x|                  dx = dy * sgn(x)     (in: dy, x)
 *   clamp   y = min(max(x, lo), hi)  dx = dy where lo <= x <= hi, else 0
 *
 * so the edge cases are torch's: log(0) = -inf and log(-1) = NaN,
 * sqrt'(0) = dy / 0 = inf, abs'(0) = 0, and clamp passes the gradient at
 * its bounds.  exp and sqrt differentiate from their output, as torch's
 * autograd does; the others read x.  Every op may run in place: memplan
 * overwrites an input only when the op is its one reader, and a gradient
 * that reads x is a second reader.
 *
 * The whole family is this file: lowering, backward rule, and one emitter
 * for all twelve op codes (attributes: clamp.lo/hi/has_lo/has_hi). */
#include "ops.h"
#include "emit_text.h"
#include <string.h>

/* Per op code: the forward op of the pair, whether this is the gradient,
 * and the loop body's formula over v = x[k] (or dy = dy[k], v = the second
 * input) writing r.  Plain expressions, so gcc -O3 vectorises the loops of
 * sqrt, square, abs, clamp and every gradient; exp's (dl_exp: its
 * bit-cast keeps gcc 12 from vectorising even a loop of dl_exp alone) and
 * log's (a libm call) stay scalar. */
typedef struct math_rule {
  ir_op op, grad;
  const char *name, *formula, *body;
} math_rule;

/* exp: dl_exp is Cephes' polynomial (about 1 ulp) but clamped to
 * [-87.3, 88] for sigmoid's sake; torch's exp overflows to inf and
 * underflows through the denormals, so outside that range e^x is computed
 * as (e^(x/2))^2, which does both.  Both are computed so the loop has no
 * branch.  log is dl_log: in float a branch-free polynomial (about 1 ulp)
 * with torch's -inf at 0 and NaN below; libm's in double.  sqrt is one
 * instruction. */
static const math_rule rules[] = {
  {OP_EXP, OP_EXP_GRAD, "exp", "y = e^x",
   "const dl_real h = dl_exp(v * (dl_real)0.5), e = dl_exp(v);\n"
   "r = v > (dl_real)88 || v < (dl_real)-87 ? h * h : e;"},
  {OP_LOG, OP_LOG_GRAD, "log", "y = log x", "r = dl_log(v);"},
  {OP_SQRT, OP_SQRT_GRAD, "sqrt", "y = sqrt x", "r = dl_sqrt(v);"},
  {OP_SQUARE, OP_SQUARE_GRAD, "square", "y = x * x", "r = v * v;"},
  {OP_ABS, OP_ABS_GRAD, "abs", "y = |x|", "r = v < 0 ? -v : v;"},
  {OP_CLAMP, OP_CLAMP_GRAD, "clamp", "y = min(max(x, lo), hi)", NULL},
};
static const math_rule grad_rules[] = {
  {OP_EXP, OP_EXP_GRAD, "exp", "dx = dy * y", "r = dy * v;"},
  {OP_LOG, OP_LOG_GRAD, "log", "dx = dy / x", "r = dy / v;"},
  {OP_SQRT, OP_SQRT_GRAD, "sqrt", "dx = dy / (2 y)", "r = dy / (2 * v);"},
  {OP_SQUARE, OP_SQUARE_GRAD, "square", "dx = dy * (2 x)", "r = dy * (2 * v);"},
  {OP_ABS, OP_ABS_GRAD, "abs", "dx = dy * sgn(x), 0 at x = 0",
   "r = dy * (dl_real)((v > 0) - (v < 0));"},
  {OP_CLAMP, OP_CLAMP_GRAD, "clamp", "dx = dy where lo <= x <= hi, else 0", NULL},
};
enum { NRULES = sizeof rules / sizeof rules[0] };

/* The rule for a forward op code or a gradient op code; NULL for neither. */
static const math_rule *rule_of(ir_op op, int *grad) {
  for (int i = 0; i < NRULES; i++) {
    if (rules[i].op == op) return *grad = 0, &rules[i];
    if (rules[i].grad == op) return *grad = 1, &grad_rules[i];
  }
  return NULL;
}

static const math_rule *rule_named(const char *name) {
  for (int i = 0; i < NRULES; i++)
    if (!strcmp(rules[i].name, name)) return &rules[i];
  return NULL;
}

/* The shared part of every lowering: x must be a per-sample tensor. */
static int lower_math_node(lower_ctx *lc, const ast_expr *call, const arg_val *x, ir_op op,
                           const char *name) {
  ir_node *in = ir_at(lc->g, x->node);
  if (!in->batched || in->ndim == 0) {
    diag_error(x->loc, "%s() needs a per-sample tensor, not %s", name,
               in->batched ? "a class label" : "a scalar");
    return -1;
  }
  int id = lower_node(lc, op, &x->node, 1, call->loc);
  ir_copy_shape(ir_at(lc->g, id), ir_at(lc->g, x->node));
  return id;
}

/* exp, log, sqrt, square, abs: one tensor argument. */
int lower_math(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}};
  const math_rule *r = rule_named(call->str);
  arg_val v[1];
  if (!r || lower_bind_args(lc, call, spec, 1, v)) return -1;
  return lower_math_node(lc, call, &v[0], r->op, r->name);
}

/* clamp(x, min =, max =): as torch.clamp, at least one bound, and (our
 * rule, where torch silently returns max everywhere) min <= max. */
int lower_clamp(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0}, {"min", ARG_NUMBER, ARG_DERIVED, 0}, {"max", ARG_NUMBER, ARG_DERIVED, 0},
  };
  arg_val v[3];
  if (lower_bind_args(lc, call, spec, 3, v)) return -1;
  if (!v[1].present && !v[2].present) {
    diag_error(call->loc, "clamp() needs at least one of min and max");
    return -1;
  }
  if (v[1].present && v[2].present && !(v[1].num <= v[2].num)) {
    diag_error(v[1].loc, "clamp() needs min <= max, not min %g and max %g", v[1].num, v[2].num);
    return -1;
  }
  int id = lower_math_node(lc, call, &v[0], OP_CLAMP, "clamp");
  if (id < 0) return -1;
  ir_node *n = ir_at(lc->g, id);
  n->clamp = (ir_clamp_attr){.lo = v[1].num, .hi = v[2].num, .has_lo = v[1].present,
                             .has_hi = v[2].present};
  return id;
}

void math_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  int grad_flag = 0;
  const math_rule *r = rule_of(n.op, &grad_flag);
  if (!r || !ad_wants(ad, n.in[0])) return;
  /* exp and sqrt read their output, the rest their input */
  int from_y = n.op == OP_EXP || n.op == OP_SQRT;
  int in[2] = {dy, from_y ? id : n.in[0]};
  int grad = ad_node(ad, r->grad, in, 2, n.in[0], -1);
  if (n.op == OP_CLAMP) g->nodes[grad].clamp = n.clamp;
  ad_accumulate(ad, n.in[0], grad);
}

/* clamp's bounds as C conditions on v; one side only when both are absent
 * cannot happen (lowering refuses it). */
static void emit_clamp_body(emit_text *o, const ir_node *n, int grad) {
  const ir_clamp_attr *c = &n->clamp;
  if (c->has_lo) emit_line(o, "const dl_real lo = (dl_real)%.17g;", c->lo);
  if (c->has_hi) emit_line(o, "const dl_real hi = (dl_real)%.17g;", c->hi);
  if (grad) {
    /* torch: dy * (x >= lo & x <= hi), so NaN x passes no gradient */
    emit_line(o, "r = %s%s%s ? dy : 0;", c->has_lo ? "v >= lo" : "",
              c->has_lo && c->has_hi ? " && " : "", c->has_hi ? "v <= hi" : "");
    return;
  }
  /* written so a NaN x stays NaN, as torch's clamp keeps it */
  if (c->has_lo) emit_line(o, "r = v < lo ? lo : v;");
  else emit_line(o, "r = v;");
  if (c->has_hi) emit_line(o, "r = r > hi ? hi : r;");
}

/* One loop over every element of the batch. */
void math_emit(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char px[96], pdy[96], pout[96], rows[64];
  int grad = 0;
  const math_rule *r = rule_of(n->op, &grad);
  emit_ptr(ec, n->in[grad ? 1 : 0], px, sizeof px);
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_rows(n, rows, sizeof rows);
  emit_line(o, "{");
  emit_line(o, "/* %s: %s */", r->name, r->formula);
  emit_line(o, "const dl_real *in = %s;", px);
  if (grad) emit_line(o, "const dl_real *din = %s;", emit_ptr(ec, n->in[0], pdy, sizeof pdy));
  emit_line(o, "dl_real *out = %s;", pout);
  emit_line(o, "const size_t count = (size_t)(%s) * %lld;", rows, ll(ir_last_dim(n)));
  emit_line(o, EW_FOR " {");
  emit_line(o, "const dl_real v = in[k];");
  if (grad) emit_line(o, "const dl_real dy = din[k];");
  emit_line(o, "dl_real r;");
  if (r->body) {
    /* one emit_line per statement of the body */
    for (const char *s = r->body; *s;) {
      const char *e = strchr(s, '\n');
      int len = e ? (int)(e - s) : (int)strlen(s);
      emit_line(o, "%.*s", len, s);
      s += len + (e != NULL);
    }
  } else {
    emit_clamp_body(o, n, grad);
  }
  emit_line(o, "out[k] = r;");
  emit_line(o, "}");
  emit_line(o, "}");
}

/* ---- ONNX ------------------------------------------------------------------- */

/* exp, log, sqrt, abs; square as x * x.  clamp is max(x, lo) = Relu(x -
 * lo) + lo and min(y, hi) = hi - Relu(hi - y): Clip with its bounds as
 * inputs (opset 11 on), and Max and Min with a constant, are what OpenCV
 * 4.6 cannot import, and this differs from them by at most an ulp of the
 * bounds' size. */
void math_onnx(onnx_ctx *oc, const ir_node *n) {
  const char *x = onnx_value(oc, n->in[0]);
  switch (n->op) {
  case OP_EXP: onnx_unary(oc, n, "Exp"); return;
  case OP_LOG: onnx_unary(oc, n, "Log"); return;
  case OP_SQRT: onnx_unary(oc, n, "Sqrt"); return;
  case OP_ABS: onnx_unary(oc, n, "Abs"); return;
  case OP_SQUARE: onnx_binary(oc, n, "Mul", NULL, x, x); return;
  case OP_CLAMP: {
    const char *y = x, *in[1];
    if (n->clamp.has_lo) {
      const char *lo = onnx_scalar(oc, n->clamp.lo);
      in[0] = onnx_binary(oc, n, "Sub", onnx_temp(oc, n), y, lo);
      const char *r = onnx_node(oc, n, "Relu", onnx_temp(oc, n), 1, in);
      y = onnx_binary(oc, n, "Add", n->clamp.has_hi ? onnx_temp(oc, n) : NULL, r, lo);
    }
    if (n->clamp.has_hi) {
      const char *hi = onnx_scalar(oc, n->clamp.hi);
      in[0] = onnx_binary(oc, n, "Sub", onnx_temp(oc, n), hi, y);
      const char *r = onnx_node(oc, n, "Relu", onnx_temp(oc, n), 1, in);
      onnx_binary(oc, n, "Sub", NULL, hi, r);
    }
    return;
  }
  default: return;
  }
}
