/* reduce.c: sum(x, dims = all, batch = false) and mean(x, ...), torch's
 * x.sum(dim = ...) and x.mean(dim = ...) over the last `dims` per-sample
 * dims of x (all of them by default).  The leading dims stay, so [T, D]
 * with dims = 1 gives [T]; reducing every dim leaves one value per sample,
 * shape [1].  batch = true (with every dim) reduces over the batch as well
 * and gives a scalar, which a loss can be: a VAE's
 *   loss = mean(sum(bce_terms) + sum(kl_terms), batch = true)
 * sums over pixels and latent dims per image, then averages over images.
 *
 * OP_REDUCE: y[o] = sum (or mean) of x[o * inner .. o * inner + inner - 1]
 *            in: x; reduce.inner, reduce.mean, reduce.batch
 * OP_REDUCE_GRAD: dx[o * inner + i] = dy[o] (/ inner for a mean)
 *            in: dy; the same attributes and x's shape
 * With reduce.batch, o is 0 and inner is every value of the batch, known
 * when the step runs. */
#include "ops.h"
#include "emit_text.h"

int lower_sum(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0}, {"dims", ARG_INT, ARG_DERIVED, 0}, {"batch", ARG_BOOL, 0, 0},
  };
  arg_val v[3];
  if (lower_bind_args(lc, call, spec, 3, v)) return -1;
  ir_node x = *ir_at(lc->g, v[0].node);
  if (!x.batched || x.ndim == 0) {
    diag_error(v[0].loc, "%s() needs a per-sample tensor, not %s", call->str,
               x.batched ? "a class label" : "a scalar");
    return -1;
  }
  int k = x.ndim;
  if (v[1].present) {
    if (v[1].num < 1 || v[1].num > x.ndim) {
      diag_error(v[1].loc, "dims of %s() must be between 1 and %d (the input's dims), not %g",
                 call->str, x.ndim, v[1].num);
      return -1;
    }
    k = (int)v[1].num;
  }
  if (v[2].num && k != x.ndim) {
    diag_error(v[2].loc,
               "batch = true in %s() reduces every value: leave dims out (or give %d, all of "
               "the input's), not %d", call->str, x.ndim, k);
    return -1;
  }
  int id = lower_node(lc, OP_REDUCE, &v[0].node, 1, call->loc);
  ir_node *n = ir_at(lc->g, id);
  int64_t inner = 1;
  for (int d = x.ndim - k; d < x.ndim; d++) inner *= x.dims[d];
  n->reduce.inner = inner;
  n->reduce.mean = call->str[0] == 'm';
  n->reduce.batch = v[2].num != 0;
  n->batched = !n->reduce.batch;
  n->ndim = n->reduce.batch ? 0 : k == x.ndim ? 1 : x.ndim - k;
  if (k == x.ndim) n->dims[0] = 1;
  else for (int d = 0; d < n->ndim; d++) n->dims[d] = x.dims[d];
  return id;
}

void reduce_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (!ad_wants(ad, n.in[0])) return;
  int grad = ad_node(ad, OP_REDUCE_GRAD, &dy, 1, n.in[0], -1);
  g->nodes[grad].reduce = n.reduce;
  ad_accumulate(ad, n.in[0], grad);
}

/* The sum is kept in double, so a long mean in float loses nothing. */
void reduce_emit(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  int grad = n->op == OP_REDUCE_GRAD;
  const ir_node *big = grad ? n : &ec->g->nodes[n->in[0]];
  char py[96], px[96], rows[64];
  emit_ptr(ec, n->id, py, sizeof py);
  emit_ptr(ec, n->in[0], px, sizeof px);
  emit_rows(big, rows, sizeof rows);
  emit_line(o, "{");
  emit_line(o, "dl_real *y = %s;", py);
  emit_line(o, "const dl_real *x = %s;", px);
  if (n->reduce.batch)
    emit_line(o, "const size_t inner = (size_t)(%s) * %lld, outer = 1;", rows, ll(ir_last_dim(big)));
  else
    emit_line(o, "const size_t inner = %lld, outer = (size_t)(%s) * %lld / inner;", ll(n->reduce.inner),
              rows, ll(ir_last_dim(big)));
  emit_line(o, "const double scale = %s;", n->reduce.mean ? "1.0 / (double)inner" : "1.0");
  if (grad) {
    emit_line(o, "/* dx = dy of its group%s */", n->reduce.mean ? " / inner" : "");
    emit_line(o, "for (size_t g = 0; g < outer; g++)");
    emit_line(o, "  for (size_t i = 0; i < inner; i++) y[g * inner + i] = (dl_real)(x[g] * scale);");
  } else {
    emit_line(o, "/* y = the %s of each group of inner values */", n->reduce.mean ? "mean" : "sum");
    emit_line(o, "for (size_t g = 0; g < outer; g++) {");
    emit_line(o, "double s = 0;");
    emit_line(o, "for (size_t i = 0; i < inner; i++) s += x[g * inner + i];");
    emit_line(o, "y[g] = (dl_real)(s * scale);");
    emit_line(o, "}");
  }
  emit_line(o, "}");
}

/* ---- ONNX ------------------------------------------------------------------- */

/* The groups of inner values made the last axis ([batch, y's dims...,
 * inner]), then ReduceSum or ReduceMean over it; a batch reduction is over
 * every axis, a scalar.  (OpenCV 4.6 imports neither; tests/onnx runs
 * these in its torch interpreter.) */
void reduce_onnx(onnx_ctx *oc, const ir_node *n) {
  const char *x = onnx_value(oc, n->in[0]), *op = n->reduce.mean ? "ReduceMean" : "ReduceSum";
  int64_t shape[IR_MAX_DIMS + 2] = {-1};
  int nd = 1;
  if (!n->reduce.batch)
    for (int d = 0; d < n->ndim; d++) shape[nd++] = n->dims[d];
  shape[nd++] = n->reduce.batch ? ir_numel(&onnx_graph(oc)->nodes[n->in[0]]) : n->reduce.inner;
  const char *r = onnx_binary(oc, n, "Reshape", onnx_temp(oc, n), x, onnx_ints(oc, nd, shape));
  int64_t axes[2] = {0, nd - 1};
  const int64_t *ax = n->reduce.batch ? axes : axes + 1;
  int nax = n->reduce.batch ? 2 : 1;
  onnx_attr_int(oc, "keepdims", 0);
  if (n->reduce.mean) {
    onnx_attr_ints(oc, "axes", nax, ax); /* an attribute up to opset 17 */
    const char *in[1] = {r};
    onnx_node(oc, n, op, NULL, 1, in);
  } else {
    onnx_binary(oc, n, op, NULL, r, onnx_ints(oc, nax, ax)); /* an input from opset 13 */
  }
}
