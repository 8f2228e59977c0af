/* dense.c: the fully connected layer, y = x W^T + b over the last dim
 * (torch.nn.Linear), its backward rule and its emitters. */
#include <stdio.h>
#include "ops.h"
#include <string.h>
#include "emit_text.h"
#include "../../runtime/dl_model.h"

/* dense(x, units, bias = true, init = <train init>, l1 = 0, l2 = 0,
 *       weight_norm = false, spectral_norm = false) */
/* dense acts on the last dimension only: on an image ([C, H, W], or an
 * input declared f32[H, W]) it mixes each row's pixels and keeps the rows
 * apart, which a Keras or torch user rarely means.  A sequence ([T, D], per
 * token, made by embedding or a recurrent layer) is what that is for. */
static void lint_image(const ir_node *x, const arg_val *arg) {
  if (x->ndim < 3 && !(x->ndim == 2 && x->op == OP_INPUT)) return;
  char buf[64] = "";
  size_t k = 0;
  for (int d = 0; d < x->ndim && k < sizeof buf; d++)
    k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld", d ? ", " : "", (long long)x->dims[d]);
  diag_lint(LINT_FLATTEN, arg->loc,
            "dense() acts on the last dimension only, and this is [%s] per sample: write "
            "dense(flatten(...), units) to connect every value", buf);
}

int lower_dense(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0}, {"units", ARG_INT, 1, 0}, {"bias", ARG_BOOL, 0, 1},
    {"init", ARG_IDENT, 0, 0}, {"l1", ARG_NUMBER, 0, 0}, {"l2", ARG_NUMBER, 0, 0},
    {"weight_norm", ARG_BOOL, 0, 0}, {"spectral_norm", ARG_BOOL, 0, 0},
  };
  arg_val v[8];
  /* weight_norm and spectral_norm are keyword-only */
  if (lower_bind_args_kw(lc, call, spec, 8, 6, v)) return -1;
  int wrap = lower_wrap_arg(&v[6], &v[7]);
  if (wrap < 0) return -1;
  ir_graph *g = lc->g;
  ir_node *x = ir_at(g, v[0].node);
  if (!x->batched || x->ndim == 0) {
    diag_error(v[0].loc, "dense() needs a per-sample tensor as input, not %s",
               x->batched ? "a class label" : "a scalar");
    return -1;
  }
  lint_image(x, &v[0]);
  if (v[1].num < 1 || v[1].num > (1 << 24)) {
    diag_error(v[1].loc, "units must be between 1 and %d", 1 << 24);
    return -1;
  }
  int init = lower_init_arg(&v[3]);
  if (init == -2) return -1;
  for (int k = 4; k < 6; k++)
    if (v[k].num < 0) {
      diag_error(v[k].loc, "argument '%s' of dense() must be at least 0, not %g", spec[k].name,
                 v[k].num);
      return -1;
    }
  int64_t in = ir_last_dim(x), units = (int64_t)v[1].num;
  if ((double)in * units > 2147483648.0 || (double)ir_numel(x) / in * units > 2147483648.0) {
    diag_error(v[1].loc, "dense() of %lld units on %lld inputs is too large (the limit is "
               "2147483648 weights and values per sample)", (long long)units, (long long)in);
    return -1;
  }
  char layer[256];
  lower_layer_name(lc, layer, sizeof layer);
  int64_t wdims[2] = {units, in};
  int ins[3] = {v[0].node, -1, -1}, nin = 2 + (v[2].num != 0);
  ins[1] = lower_weight(lc, layer, wrap, 2, wdims, in, units, init, v[4].num, v[5].num,
                        call->loc);
  if (nin == 3) ins[2] = lower_param(lc, layer, "bias", 1, &units, in, units, init, 0, 0, call->loc);
  int id = lower_node(lc, OP_DENSE, ins, nin, call->loc);
  ir_node *y = ir_at(g, id);
  ir_copy_shape(y, ir_at(g, v[0].node));
  y->dims[y->ndim - 1] = units;
  return id;
}

/* dy -> dx = dy W, dW = dy^T x, db = sum over rows of dy.  db first: when
 * dy comes from an activation, its gradient is fused into db's pass. */
void dense_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (n.nin == 3 && ad_wants(ad, n.in[2])) {
    int in[1] = {dy};
    ad_accumulate(ad, n.in[2], ad_node(ad, OP_DENSE_DB, in, 1, n.in[2], -1));
  }
  if (ad_wants(ad, n.in[1])) {
    int in[2] = {dy, n.in[0]};
    ad_accumulate(ad, n.in[1], ad_node(ad, OP_DENSE_DW, in, 2, n.in[1], -1));
  }
  if (ad_wants(ad, n.in[0])) {
    int in[2] = {dy, n.in[1]};
    ad_accumulate(ad, n.in[0], ad_node(ad, OP_DENSE_DX, in, 2, n.in[0], -1));
  }
}


/* Layers with at most this many weights skip the GEMM: straight loops with
 * constant trip counts, which the C compiler unrolls and vectorises, cost
 * less than a GEMM call's dispatch and packing (tiny networks, batch 1). */
enum { SMALL_LAYER = 512 };

static int small_layer(int64_t N, int64_t K) { return N * K <= SMALL_LAYER; }

/* y[r,j] = act(b[j] + sum_k x[r,k] W[j,k]): the dot products first, by
 * dl_dot's fixed lanes (the C compiler left to itself vectorises across j
 * with gathers, or not at all), then the bias and activation in a loop over
 * j that vectorises. */
static void emit_small_forward(emit_text *o, const ir_node *n, const ir_node *act, int64_t N,
                               int64_t K) {
  char e[256];
  emit_line(o, "/* small layer: y[r,j] = %s(b[j] + sum_k x[r,k] W[j,k]) with constant bounds */",
            act ? ir_op_name(act->op) : "");
  emit_line(o, "for (int r = 0; r < rows; r++) {");
  emit_line(o, "const dl_real *xr = x + (size_t)r * %lld;", ll(K));
  emit_line(o, "dl_real *yr = y + (size_t)r * %lld;", ll(N));
  emit_line(o, "for (int j = 0; j < %lld; j++) yr[j] = dl_dot(xr, W + j * %lld, %lld);",
            ll(N), ll(K), ll(K));
  if (n->nin < 3 && !act) {
    emit_line(o, "}");
    emit_line(o, "}");
    return;
  }
  emit_line(o, "for (int j = 0; j < %lld; j++) {", ll(N));
  emit_line(o, "const dl_real v = yr[j]%s;", n->nin == 3 ? " + b[j]" : "");
  emit_line(o, "yr[j] = %s;", act ? activation_expr(act, "v", e, sizeof e) : "v");
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}");
}

_Static_assert(OPF_OF_DENSE & OPF_EPILOGUE_HOST, "dense applies its epilogue (ops.def)");

/* A GEMM epilogue: y = act(y + b) on one block of y, as a static function
 * the GEMM calls on whichever thread finished the block. */
static void emit_epilogue(emit_ctx *ec, const ir_node *n, const ir_node *act, const char *name,
                          const char *py, const char *pb, int64_t N) {
  char e[256];
  emit_text o[1] = {{.f = ec->helpers}};
  emit_line(o, "/* %s: y = %s(y%s) on rows [i0,i1) x columns [j0,j1) of y, run by the GEMM */",
            n->name ? n->name : "dense", act ? ir_op_name(act->op) : "", pb ? " + b" : "");
  emit_line(o, "static void %s(void *arg, int i0, int i1, int j0, int j1) {", name);
  emit_line(o, "dl_ctx *ctx = arg;");
  emit_line(o, "dl_real *restrict y = %s;", py);
  if (pb) emit_line(o, "const dl_real *restrict b = %s;", pb);
  emit_line(o, "for (int r = i0; r < i1; r++)");
  emit_line(o, "for (int j = j0; j < j1; j++) {");
  emit_line(o, "const dl_real v = y[(size_t)r * %lld + j]%s;", ll(N), pb ? " + b[j]" : "");
  emit_line(o, "y[(size_t)r * %lld + j] = %s;",
            ll(N), act ? activation_expr(act, "v", e, sizeof e) : "v");
  emit_line(o, "}");
  emit_line(o, "}\n");
}

/* y = act(x W^T + b): one GEMM, then one pass adding the bias and applying
 * the activation that follows (when the scheduler fused it in). */
void dense_emit(emit_ctx *ec, const ir_node *n) {
  ir_graph *g = ec->g;
  const ir_node *x = &g->nodes[n->in[0]];
  int64_t K = ir_last_dim(x), N = ir_last_dim(n);
  char px[96], pw[96], pb[96], py[96], rows[64];
  const ir_node *act = n->epilogue >= 0 ? &g->nodes[n->epilogue] : NULL; /* fused activation */
  int out = act ? act->id : n->id;
  emit_ptr(ec, n->in[0], px, sizeof px);
  emit_ptr(ec, n->in[1], pw, sizeof pw);
  emit_ptr(ec, out, py, sizeof py);
  emit_rows(n, rows, sizeof rows);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  /* restrict: a dense layer's output never shares memory with its inputs */
  emit_line(o, "{");
  emit_line(o, "const dl_real *restrict x = %s, *restrict W = %s;", px, pw);
  emit_line(o, "dl_real *restrict y = %s;", py);
  emit_line(o, "const int rows = %s;", rows);
  if (small_layer(N, K)) {
    if (n->nin == 3) {
      emit_ptr(ec, n->in[2], pb, sizeof pb);
      emit_line(o, "const dl_real *restrict b = %s;", pb);
    }
    emit_small_forward(o, n, act, N, K);
    return;
  }
  emit_line(o, "/* y[rows,%lld] = x[rows,%lld] . W[%lld,%lld]^T */",
            ll(N), ll(K), ll(N), ll(K));
  if (n->nin < 3 && !act) {
    emit_line(o, "dl_gemm_nt(ctx->pool, rows, %lld, %lld, x, %lld, W, %lld, y, %lld, 0);",
              ll(N), ll(K), ll(K), ll(K), ll(N));
    emit_line(o, "}");
    return;
  }
  if (n->nin == 3) emit_ptr(ec, n->in[2], pb, sizeof pb);
  /* the epilogue runs inside the GEMM, on each block as it is finished */
  char name[96];
  snprintf(name, sizeof name, "epilogue_%s_%d", ec->g->groups[n->group].name, n->id);
  emit_epilogue(ec, n, act, name, py, n->nin == 3 ? pb : NULL, N);
  emit_line(o, "dl_gemm_nt_epilogue(ctx->pool, rows, %lld, %lld, x, %lld, W, %lld, y, %lld, %s, ctx);",
            ll(N), ll(K), ll(K), ll(K), ll(N), name);
  emit_line(o, "}");
}

/* The three gradients of a dense layer. */
void dense_grad_emit(emit_ctx *ec, const ir_node *n) {
  ir_graph *g = ec->g;
  const ir_node *dy = &g->nodes[n->in[0]];
  int64_t N = ir_last_dim(dy);
  char pdy[96], pa[96], pout[96], rows[64];
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_rows(dy, rows, sizeof rows);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  if (n->op == OP_DENSE_DB) {
    /* db[j] = sum_r dy[r,j]; if dy is an activation's input gradient, it is
     * computed here first: dy[r,j] = dout[r,j] * act'(...) */
    const ir_node *ag = dy->op == OP_ACT_GRAD && dy->fused_in == n->id ? dy : NULL;
    /* db lives in the state block, never in an activation: restrict */
    emit_line(o, "{");
    emit_line(o, "dl_real *restrict db = %s;", pout);
    emit_line(o, "const int rows = %s;", rows);
    if (ag) {
      char pin[96], psaved[96], e[256];
      emit_ptr(ec, ag->in[0], pin, sizeof pin);
      emit_ptr(ec, ag->in[1], psaved, sizeof psaved);
      /* in place (dy over dout) or two live buffers, which the plan keeps
       * apart: either way restrict holds, and the loop vectorises */
      int in_place = strcmp(pin, pdy) == 0;
      if (in_place) emit_line(o, "const dl_real *restrict s = %s;", psaved);
      else emit_line(o, "const dl_real *restrict dout = %s, *restrict s = %s;", pin, psaved);
      emit_line(o, "dl_real *restrict dy = %s;", pdy);
      emit_line(o, "const size_t count = (size_t)rows * %lld;", ll(N));
      emit_line(o, "/* fused: dy = dout * %s'(.), then db = column sums of dy */",
                ir_op_name(ag->act.fwd));
      emit_line(o, EW_FOR);
      emit_line(o, "dy[k] = %s;",
                activation_grad_expr(ag->act.fwd, ag->act.slope, in_place ? "dy[k]" : "dout[k]", "s[k]",
                                     "s[k]", e, sizeof e));
      emit_line(o, "dl_col_sums(db, dy, rows, %lld);", ll(N));
      emit_line(o, "}");
    } else {
      emit_line(o, "/* db[j] = sum_r dy[r,j] */");
      emit_line(o, "dl_col_sums(db, %s, rows, %lld);", pdy, ll(N));
      emit_line(o, "}");
    }
    return;
  }
  emit_ptr(ec, n->in[1], pa, sizeof pa);
  const ir_node *other = &g->nodes[n->in[1]];
  int64_t K = n->op == OP_DENSE_DW ? ir_last_dim(other) : ir_last_dim(n);
  emit_line(o, "{");
  emit_line(o, "const dl_real *restrict dy = %s, *restrict %s = %s;",
            pdy, n->op == OP_DENSE_DW ? "x" : "W", pa);
  emit_line(o, "dl_real *restrict out = %s;", pout);
  emit_line(o, "const int rows = %s;", rows);
  if (small_layer(N, K)) {
    if (n->op == OP_DENSE_DW) {
      /* one row of dW at a time, accumulated in a local the compiler keeps
       * in registers: r innermost but one, k innermost and vectorised */
      emit_line(o, "/* small layer: dW[j,k] = sum_r dy[r,j] x[r,k], a row of dW at a time */");
      emit_line(o, "for (int j = 0; j < %lld; j++) {", ll(N));
      emit_line(o, "dl_real acc[%lld];", ll(K));
      emit_line(o, "for (int k = 0; k < %lld; k++) acc[k] = 0;", ll(K));
      emit_line(o, "for (int r = 0; r < rows; r++) {");
      emit_line(o, "const dl_real d = dy[(size_t)r * %lld + j];", ll(N));
      emit_line(o, "for (int k = 0; k < %lld; k++) acc[k] += d * x[(size_t)r * %lld + k];",
                ll(K), ll(K));
      emit_line(o, "}");
      emit_line(o, "for (int k = 0; k < %lld; k++) out[j * %lld + k] = acc[k];", ll(K), ll(K));
      emit_line(o, "}");
      emit_line(o, "}");
    } else {
      emit_line(o, "/* small layer: dx[r,k] = sum_j dy[r,j] W[j,k] */");
      emit_line(o, "for (int r = 0; r < rows; r++) {");
      emit_line(o, "dl_real *dx = out + (size_t)r * %lld;", ll(K));
      emit_line(o, "for (int k = 0; k < %lld; k++) dx[k] = 0;", ll(K));
      emit_line(o, "for (int j = 0; j < %lld; j++)", ll(N));
      emit_line(o, "for (int k = 0; k < %lld; k++) dx[k] += dy[(size_t)r * %lld + j] * W[j * %lld + k];",
                ll(K), ll(N), ll(K));
      emit_line(o, "}");
      emit_line(o, "}");
    }
    return;
  }
  if (n->op == OP_DENSE_DW) {
    emit_line(o, "/* dW[%lld,%lld] = dy[rows,%lld]^T . x[rows,%lld] */",
              ll(N), ll(K), ll(N), ll(K));
    emit_line(o, "dl_gemm_tn(ctx->pool, %lld, %lld, rows, dy, %lld, x, %lld, out, %lld, 0);",
              ll(N), ll(K), ll(N), ll(K), ll(K));
    emit_line(o, "}");
  } else {
    emit_line(o, "/* dx[rows,%lld] = dy[rows,%lld] . W[%lld,%lld] */", ll(K), ll(N), ll(N), ll(K));
    emit_line(o, "dl_gemm_nn(ctx->pool, rows, %lld, %lld, dy, %lld, W, %lld, out, %lld, 0);",
              ll(K), ll(N), ll(N), ll(K), ll(K));
    emit_line(o, "}");
  }
}

/* ---- ONNX ------------------------------------------------------------------- */

/* y = x W^T + b as Gemm (transB = 1) on [batch, D].  A sequence [T, D] per
 * sample is folded into rows for it ([batch * T, D]) and unfolded after:
 * Gemm is 2-D only, and this keeps the weight as the checkpoint holds it
 * (MatMul would need W^T as a second initializer). */
void dense_onnx(onnx_ctx *oc, const ir_node *n) {
  const ir_graph *g = onnx_graph(oc);
  const ir_node *x = &g->nodes[n->in[0]];
  const char *in[3] = {onnx_value(oc, n->in[0]), onnx_value(oc, n->in[1]),
                       n->nin > 2 ? onnx_value(oc, n->in[2]) : ""};
  int seq = x->ndim > 1;
  if (seq) {
    int64_t rows[2] = {-1, ir_last_dim(x)};
    in[0] = onnx_binary(oc, n, "Reshape", onnx_temp(oc, n), in[0], onnx_ints(oc, 2, rows));
  }
  onnx_attr_int(oc, "transB", 1);
  const char *y = onnx_node(oc, n, "Gemm", seq ? onnx_temp(oc, n) : NULL, n->nin > 2 ? 3 : 2, in);
  if (seq) {
    int64_t shape[IR_MAX_DIMS + 1] = {-1};
    for (int d = 0; d < n->ndim; d++) shape[d + 1] = n->dims[d];
    onnx_binary(oc, n, "Reshape", NULL, y, onnx_ints(oc, n->ndim + 1, shape));
  }
}
