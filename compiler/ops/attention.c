/* attention.c: multi-head self-attention (torch.nn.MultiheadAttention with
 * query = key = value, batch_first) and positional encodings.
 *
 * attention(x, heads) on x [T, D] is three nodes:
 *   qkv = dense(x, in_proj_weight [3D, D], in_proj_bias)     [T, 3D]
 *   o   = OP_ATTENTION(qkv)                                  [T, D]
 *   y   = dense(o, out_proj.weight [D, D], out_proj.bias)    [T, D]
 * OP_ATTENTION, per sample and head h (dh = D / heads columns each of q, k, v):
 *   P = softmax(q k^T / sqrt(dh)) over the keys a query may see (causal: not
 *   the later ones; padding: not the pad tokens), o_h = P v.
 * Backward recomputes P rather than keeping it (T x T per head and sample):
 *   dv = P^T do,  dP = do v^T,  dS = P (dP - rowsum(P dP)) / sqrt(dh),
 *   dq = dS k,    dk = dS^T q.
 * Each sample is one job item; its products are small GEMMs on that thread,
 * with P and dP in two T x T arrays on its stack. */
#include "ops.h"
#include "emit_text.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../../runtime/dl_model.h"

/* P and dP live on a worker's stack: at most this many values each. */
enum { MAX_SCORES = 256 * 256 };

/* A dense node y = x W^T + b with torch's parameter names NAME.W_NAME / NAME.B_NAME. */
static int named_dense(lower_ctx *lc, const ast_expr *call, int x, const char *layer,
                       const char *wname, const char *bname, int64_t out, int winit, int binit) {
  ir_graph *g = lc->g;
  int64_t in = ir_last_dim(ir_at(g, x)), wd[2] = {out, in};
  int ins[3] = {x, lower_param(lc, layer, wname, 2, wd, in, out, winit, 0, 0, call->loc), -1};
  g->params[g->nodes[ins[1]].leaf.index].is_weight = 1;
  ins[2] = lower_param(lc, layer, bname, 1, &out, in, out, binit, 0, 0, call->loc);
  int id = lower_node(lc, OP_DENSE, ins, 3, call->loc);
  ir_node *y = ir_at(g, id);
  ir_copy_shape(y, ir_at(g, x));
  y->dims[y->ndim - 1] = out;
  return id;
}

/* attention(x, heads, causal = false, padding = -1): x [T, D] -> [T, D].
 * padding = ID masks the keys where the token input holds ID. */
int lower_attention(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0}, {"heads", ARG_INT, 1, 0}, {"causal", ARG_BOOL, 0, 0},
    {"padding", ARG_INT, ARG_DERIVED, -1},
  };
  arg_val v[4];
  if (lower_bind_args(lc, call, spec, 4, v)) return -1;
  if (lower_sequence_arg(lc, &v[0], call->str)) return -1;
  ir_graph *g = lc->g;
  ir_node *x = ir_at(g, v[0].node);
  int64_t T = x->dims[0], D = x->dims[1], heads = (int64_t)v[1].num;
  if (heads < 1 || D % heads) {
    diag_error(v[1].loc, "heads = %lld must divide the %lld features of attention()'s input",
               (long long)heads, (long long)D);
    return -1;
  }
  if (T * T > MAX_SCORES) {
    diag_error(v[0].loc, "attention() over %lld positions: at most %d for now", (long long)T, 256);
    return -1;
  }
  int pad = v[3].present;
  if (pad) {
    const ir_node *ids = g->input >= 0 ? &g->nodes[g->input] : NULL;
    if (!g->input_vocab || ids->ndim != 1 || ids->dims[0] != T) {
      diag_error(v[3].loc, "padding needs token ids of the same length as the sequence (an input "
                           "class[%lld, V])", (long long)T);
      return -1;
    }
    if (v[3].num < 0 || v[3].num >= g->input_vocab) {
      diag_error(v[3].loc, "padding must be a token id in 0 .. %lld", (long long)g->input_vocab - 1);
      return -1;
    }
  }
  char layer[256];
  lower_layer_name(lc, layer, sizeof layer);
  /* torch: in_proj xavier_uniform, biases 0; out_proj.weight nn.Linear's default */
  int qkv = named_dense(lc, call, v[0].node, layer, "in_proj_weight", "in_proj_bias", 3 * D,
                        DL_INIT_XAVIER_UNIFORM, DL_INIT_ZERO);
  /* xavier over the whole [3D, D] matrix, as torch computes its fans */
  ir_param *w = &g->params[g->nodes[g->nodes[qkv].in[1]].leaf.index];
  w->fan_in = D;
  w->fan_out = 3 * D;
  int ain[2] = {qkv, g->input};
  int o = lower_node(lc, OP_ATTENTION, ain, pad ? 2 : 1, call->loc);
  ir_node *on = ir_at(g, o);
  ir_copy_shape(on, x);
  on->attn = (ir_attn_attr){.heads = (int)heads, .causal = v[2].num != 0, .pad = pad,
                            .pad_id = pad ? (int)v[3].num : -1};
  char out[300];
  snprintf(out, sizeof out, "%s.out_proj", layer);
  return named_dense(lc, call, o, out, "weight", "bias", D, DL_INIT_TORCH_DEFAULT, DL_INIT_ZERO);
}

/* positional(x, learned = false): x [T, D] + the sinusoidal encoding
 * (sin at even features, cos at odd, wavelengths 2 pi 10000^(2i/D), as in
 * "Attention is all you need"), or + a learned table NAME.weight [T, D]
 * starting at 0. */
int lower_positional(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TENSOR, 1, 0}, {"learned", ARG_BOOL, 0, 0}};
  arg_val v[2];
  if (lower_bind_args(lc, call, spec, 2, v)) return -1;
  if (lower_sequence_arg(lc, &v[0], call->str)) return -1;
  ir_graph *g = lc->g;
  ir_node *x = ir_at(g, v[0].node);
  int in[2] = {v[0].node, -1}, learned = v[1].num != 0;
  if (learned) {
    char layer[256];
    lower_layer_name(lc, layer, sizeof layer);
    in[1] = lower_param(lc, layer, "weight", 2, x->dims, x->dims[1], x->dims[1], DL_INIT_ZERO, 0, 0,
                        call->loc);
  }
  int id = lower_node(lc, OP_POSITIONAL, in, learned ? 2 : 1, call->loc);
  ir_copy_shape(ir_at(g, id), ir_at(g, v[0].node));
  return id;
}

void attention_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (n.op == OP_POSITIONAL) {
    ad_accumulate(ad, n.in[0], dy); /* d(x + pe)/dx = 1 */
    if (n.nin == 2 && ad_wants(ad, n.in[1]))
      ad_accumulate(ad, n.in[1], ad_node(ad, OP_POSITIONAL_DW, &dy, 1, n.in[1], -1));
    return;
  }
  if (!ad_wants(ad, n.in[0])) return;
  int in[3] = {dy, n.in[0], n.nin == 2 ? n.in[1] : -1};
  int d = ad_node(ad, OP_ATTENTION_GRAD, in, n.nin + 1, n.in[0], -1);
  g->nodes[d].attn = n.attn;
  ad_accumulate(ad, n.in[0], d);
}

/* ---- emission -------------------------------------------------------------- */

typedef struct {
  long long T, D, H, dh;
  int causal, pad, pad_id;
} attn_dims;

static attn_dims attn_dims_of(const ir_graph *g, const ir_node *n) {
  const ir_node *qkv = &g->nodes[n->op == OP_ATTENTION ? n->in[0] : n->in[1]];
  const ir_attn_attr *q = &n->attn;
  attn_dims a = {qkv->dims[0], qkv->dims[1] / 3, q->heads, qkv->dims[1] / 3 / q->heads, q->causal,
                 q->pad, q->pad_id};
  return a;
}

/* static void NAME_probs(dl_real *P, const dl_real *ids): the scores in P
 * (q k^T) become attention weights, row by row: scaled, masked, softmax.
 * A row with no key to see (every key padding) is all zeros. */
static void emit_probs_fn(emit_ctx *ec, const char *name, const attn_dims *a) {
  emit_text o[1] = {{.f = ec->helpers}};
  emit_line(o, "/* P = softmax(S / sqrt(%lld)) per row over the keys it sees%s%s */",
            a->dh, a->causal ? " (causal: k <= q)" : "", a->pad ? " (not padding)" : "");
  emit_line(o, "static void %s(dl_real *restrict P, const dl_real *restrict ids) {", name);
  emit_line(o, "(void)ids;");
  emit_line(o, "for (int i = 0; i < %lld; i++) {", a->T);
  emit_line(o, "dl_real *restrict row = P + (size_t)i * %lld;", a->T);
  if (a->causal) emit_line(o, "const int end = i + 1;");
  else emit_line(o, "const int end = %lld;", a->T);
  emit_line(o, "dl_real m = -INFINITY, sum = 0;");
  emit_line(o, "for (int j = 0; j < end; j++) {");
  if (a->pad) emit_line(o, "if (ids[j] == %d) continue;", a->pad_id);
  emit_line(o, "row[j] *= (dl_real)%.17g;", 1.0 / sqrt((double)a->dh));
  emit_line(o, "m = row[j] > m ? row[j] : m;");
  emit_line(o, "}");
  emit_line(o, "for (int j = 0; j < end; j++) {");
  if (a->pad) {
    emit_line(o, "if (ids[j] == %d) {", a->pad_id);
    emit_line(o, "row[j] = 0;");
    emit_line(o, "continue;");
    emit_line(o, "}");
  }
  emit_line(o, "row[j] = dl_exp(row[j] - m);");
  emit_line(o, "sum += row[j];");
  emit_line(o, "}");
  emit_line(o, "const dl_real inv = sum > 0 ? 1 / sum : 0;");
  emit_line(o, "for (int j = 0; j < end; j++) row[j] *= inv;");
  emit_line(o, "for (int j = end; j < %lld; j++) row[j] = 0;", a->T);
  emit_line(o, "}");
  emit_line(o, "}\n");
}

static void emit_attention(emit_ctx *ec, const ir_node *n) {
  attn_dims a = attn_dims_of(ec->g, n);
  int grad = n->op == OP_ATTENTION_GRAD;
  long long T = a.T, D = a.D, dh = a.dh, TD3 = 3 * D;
  char probs[128], name[128], pqkv[96], pout[96], pids[96] = "NULL", pdo[96];
  snprintf(probs, sizeof probs, "probs_%s_%d", ec->g->groups[n->group].name, n->id);
  emit_probs_fn(ec, probs, &a);
  emit_ptr(ec, n->in[grad ? 1 : 0], pqkv, sizeof pqkv);
  emit_ptr(ec, n->id, pout, sizeof pout);
  if (a.pad) emit_ptr(ec, n->in[grad ? 2 : 1], pids, sizeof pids);
  if (grad) emit_ptr(ec, n->in[0], pdo, sizeof pdo);
  emit_text o[1] = {{.f = ec->helpers, .depth = 1}}; /* in the job emit_job_begin opens */
  emit_job_begin(ec, n, grad ? "attention_dx" : "attention",
                 grad ? "attention backward, a sample per item: P again, then dv = P^T do, "
                        "dS = P (do v^T - rowsum) / sqrt(dh), dq = dS k, dk = dS^T q"
                      : "attention, a sample per item: o_h = softmax(q_h k_h^T / sqrt(dh)) v_h per head",
                 name, sizeof name);
  emit_line(o, "dl_real P[%lld];", T * T);
  if (grad) emit_line(o, "dl_real dP[%lld];", T * T);
  emit_line(o, "for (int64_t s = lo; s < hi; s++) {");
  emit_line(o, "const dl_real *qkv = %s + s * %lld;", pqkv, T * TD3);
  if (a.pad) emit_line(o, "const dl_real *ids = %s + s * %lld;", pids, T);
  else emit_line(o, "const dl_real *ids = NULL;");
  if (grad) {
    emit_line(o, "const dl_real *dout = %s + s * %lld;", pdo, T * D);
    emit_line(o, "dl_real *dqkv = %s + s * %lld;", pout, T * TD3);
  } else {
    emit_line(o, "dl_real *out = %s + s * %lld;", pout, T * D);
  }
  emit_line(o, "for (int h = 0; h < %lld; h++) {", a.H);
  emit_line(o, "const dl_real *q = qkv + h * %lld, *k = qkv + %lld + h * %lld, *v = qkv + %lld + h * %lld;",
            dh, D, dh, 2 * D, dh);
  emit_line(o, "dl_gemm_nt(NULL, %lld, %lld, %lld, q, %lld, k, %lld, P, %lld, 0);",
            T, T, dh, TD3, TD3, T);
  emit_line(o, "%s(P, ids);", probs);
  if (!grad) {
    emit_line(o, "dl_gemm_nn(NULL, %lld, %lld, %lld, P, %lld, v, %lld, out + h * %lld, %lld, 0);",
              T, dh, T, T, TD3, dh, D);
    emit_line(o, "}");
    emit_line(o, "}");
    emit_line(o, "}\n");
  } else {
    emit_line(o, "const dl_real *dO = dout + h * %lld;", dh);
    emit_line(o, "dl_real *dq = dqkv + h * %lld, *dk = dqkv + %lld + h * %lld, *dv = dqkv + %lld + h * %lld;",
              dh, D, dh, 2 * D, dh);
    emit_line(o, "dl_gemm_tn(NULL, %lld, %lld, %lld, P, %lld, dO, %lld, dv, %lld, 0);",
              T, dh, T, T, D, TD3);
    emit_line(o, "dl_gemm_nt(NULL, %lld, %lld, %lld, dO, %lld, v, %lld, dP, %lld, 0);",
              T, T, dh, D, TD3, T);
    emit_line(o, "for (int i = 0; i < %lld; i++) {", T);
    emit_line(o, "const dl_real *p = P + (size_t)i * %lld;", T);
    emit_line(o, "dl_real *d = dP + (size_t)i * %lld;", T);
    emit_line(o, "const dl_real r = dl_dot(p, d, %lld);", T);
    emit_line(o, "for (int j = 0; j < %lld; j++) d[j] = p[j] * (d[j] - r) * (dl_real)%.17g;",
              T, 1.0 / sqrt((double)dh));
    emit_line(o, "}");
    emit_line(o, "dl_gemm_nn(NULL, %lld, %lld, %lld, dP, %lld, k, %lld, dq, %lld, 0);",
              T, dh, T, T, TD3, TD3);
    emit_line(o, "dl_gemm_tn(NULL, %lld, %lld, %lld, dP, %lld, q, %lld, dk, %lld, 0);",
              T, dh, T, T, TD3, TD3);
    emit_line(o, "}");
    emit_line(o, "}");
    emit_line(o, "}\n");
  }
  emit_job_call(ec, name, "n", "1");
}

/* y = x + pe (a constant table) or x + W; dW = sum over the batch of dy */
static void emit_positional(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char py[96], px[96], pw[96];
  emit_ptr(ec, n->id, py, sizeof py);
  emit_ptr(ec, n->in[0], px, sizeof px);
  long long T = n->dims[0], D = n->dims[1];
  if (n->op == OP_POSITIONAL_DW) {
    emit_line(o, "{");
    emit_line(o, "/* dW[t, d] = sum over the batch of dy[s, t, d] */");
    emit_line(o, "dl_real *restrict dw = %s;", py);
    emit_line(o, "const dl_real *restrict dy = %s;", px);
    emit_line(o, "memset(dw, 0, %lld * sizeof *dw);", T * D);
    emit_line(o, "for (int s = 0; s < n; s++)");
    emit_line(o, "for (int k = 0; k < %lld; k++) dw[k] += dy[(size_t)s * %lld + k];", T * D, T * D);
    emit_line(o, "}");
    return;
  }
  emit_line(o, "{");
  emit_line(o, "dl_real *y = %s;", py);
  emit_line(o, "const dl_real *x = %s;", px);
  if (n->nin == 2) {
    emit_ptr(ec, n->in[1], pw, sizeof pw);
    emit_line(o, "const dl_real *restrict pe = %s; /* learned */", pw);
  } else {
    /* the table as constants: computed here, in double, once */
    emit_line(o, "/* pe[t, 2i] = sin(t / 10000^(2i/%lld)), pe[t, 2i+1] = cos(...) */", D);
    enum { VALUE_CHARS = 32 }; /* ",\n  " and a %.17g of a sine: at most 28 */
    size_t room = (size_t)(T * D) * VALUE_CHARS + 1, at = 0;
    char *table = malloc(room);
    if (!table) {
      fputs("dlnc: out of memory\n", stderr);
      exit(1);
    }
    table[0] = 0;
    for (long long t = 0; t < T; t++)
      for (long long d = 0; d < D; d++) {
        double angle = (double)t / pow(10000.0, (double)(d - d % 2) / (double)D);
        at += (size_t)snprintf(table + at, room - at, "%s%s%.*g", t + d ? "," : "",
                               (t * D + d) % 8 ? " " : "\n  ", ec->f64 ? 17 : 9,
                               d % 2 ? cos(angle) : sin(angle));
      }
    emit_line(o, "static const dl_real pe[%lld] = {%s};", T * D, table); /* 8 values a line */
    free(table);
  }
  emit_line(o, "for (int s = 0; s < n; s++)");
  emit_line(o, "for (int k = 0; k < %lld; k++)", T * D);
  emit_line(o, "y[(size_t)s * %lld + k] = x[(size_t)s * %lld + k] + pe[k];", T * D, T * D);
  emit_line(o, "}");
}

void attention_emit(emit_ctx *ec, const ir_node *n) {
  if (n->op == OP_POSITIONAL || n->op == OP_POSITIONAL_DW) emit_positional(ec, n);
  else emit_attention(ec, n);
}
