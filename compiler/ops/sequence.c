/* sequence.c: what turns token ids (an input declared class[T, V]) into
 * vectors: embedding (torch.nn.Embedding) and one_hot (F.one_hot). */
#include "ops.h"
#include "emit_text.h"
#include <string.h>
#include "../../runtime/dl_model.h"

/* The token input, or -1 after reporting that `v` is not it. */
static int token_input(lower_ctx *lc, const arg_val *v, const char *fn) {
  ir_graph *g = lc->g;
  if (v->node == g->input && g->input_vocab > 0) return v->node;
  char s[96];
  diag_error(v->loc, "%s() needs token ids, an input declared as class[T, V]; this is %s", fn,
             ir_shape_str(ir_at(g, v->node), s, sizeof s));
  return -1;
}

int lower_sequence_arg(lower_ctx *lc, const arg_val *v, const char *fn) {
  const ir_node *x = ir_at(lc->g, v->node);
  if (x->batched && x->ndim == 2) return 0;
  char s[96];
  diag_error(v->loc, "%s() needs a sequence [T, features] per sample; this is %s", fn,
             ir_shape_str(x, s, sizeof s));
  return -1;
}

/* Binds a call whose first argument is the token input; 0, or -1 after reporting. */
static int bind_token_args(lower_ctx *lc, const ast_expr *call, const arg_spec *spec, int nspec,
                           arg_val *v) {
  return lower_bind_args(lc, call, spec, nspec, v) || token_input(lc, &v[0], call->str) < 0 ? -1 : 0;
}

/* embedding(x, dim, init = normal): y[..., :] = W[x[...], :], W [V, dim],
 * N(0, 1) like torch unless `init` says otherwise */
int lower_embedding(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TOKENS, 1, 0}, {"dim", ARG_INT, 1, 0}, {"init", ARG_IDENT, 0, 0},
  };
  arg_val v[3];
  if (bind_token_args(lc, call, spec, 3, v)) return -1;
  if (v[1].num < 1 || v[1].num > (1 << 20)) {
    diag_error(v[1].loc, "dim must be between 1 and %d", 1 << 20);
    return -1;
  }
  int init = lower_init_arg(&v[2]);
  if (init == -2) return -1;
  ir_graph *g = lc->g;
  int64_t V = g->input_vocab, E = (int64_t)v[1].num;
  char layer[256];
  lower_layer_name(lc, layer, sizeof layer);
  int64_t wdims[2] = {V, E};
  int in[2] = {v[0].node, lower_param(lc, layer, "weight", 2, wdims, E, V,
                                      init == INIT_DEFAULT ? DL_INIT_NORMAL : init, 0, 0, call->loc)};
  int id = lower_node(lc, OP_EMBEDDING, in, 2, call->loc);
  ir_node *y = ir_at(g, id);
  ir_copy_shape(y, ir_at(g, v[0].node));
  y->dims[y->ndim++] = E;
  return id;
}

/* one_hot(x): y[..., v] = 1 where v = x[...], else 0 */
int lower_one_hot(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {{"x", ARG_TOKENS, 1, 0}};
  arg_val v[1];
  if (bind_token_args(lc, call, spec, 1, v)) return -1;
  ir_graph *g = lc->g;
  int id = lower_node(lc, OP_ONE_HOT, &v[0].node, 1, call->loc);
  ir_node *y = ir_at(g, id);
  ir_copy_shape(y, ir_at(g, v[0].node));
  y->dims[y->ndim++] = g->input_vocab;
  return id;
}

/* Token ids have no gradient; the table's is dW[x[r], :] += dy[r, :]. */
void sequence_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (n.op != OP_EMBEDDING || !ad_wants(ad, n.in[1])) return;
  int in[2] = {dy, n.in[0]};
  ad_accumulate(ad, n.in[1], ad_node(ad, OP_EMBEDDING_DW, in, 2, n.in[1], -1));
}

void sequence_emit(emit_ctx *ec, const ir_node *n) {
  ir_graph *g = ec->g;
  int64_t V = g->input_vocab;
  const ir_node *ids = &g->nodes[n->op == OP_EMBEDDING_DW ? n->in[1] : n->in[0]];
  char pids[96], py[96], pw[96], rows[64];
  emit_ptr(ec, ids->id, pids, sizeof pids);
  emit_ptr(ec, n->id, py, sizeof py);
  /* one row per id: the rows of the output (or of dy), whose last dim is
   * the one the id selects or indexes */
  emit_rows(n->op == OP_EMBEDDING_DW ? &g->nodes[n->in[0]] : n, rows, sizeof rows);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "{");
  emit_line(o, "const dl_real *restrict ids = %s;", pids);
  emit_line(o, "dl_real *restrict y = %s;", py);
  /* ids come from the data (checked against V when loaded) or from a caller
   * of the embedding API: one out of range reads as a row of zeros */
  if (n->op == OP_ONE_HOT) {
    emit_line(o, "/* y[r, v] = (v == ids[r]) */");
    emit_line(o, "memset(y, 0, (size_t)(%s) * %lld * sizeof *y);", rows, ll(V));
    emit_line(o, "for (int r = 0; r < %s; r++) {", rows);
    emit_line(o, "const int64_t id = (int64_t)ids[r];");
    emit_line(o, "if (id >= 0 && id < %lld) y[(size_t)r * %lld + id] = 1;", ll(V), ll(V));
    emit_line(o, "}");
    emit_line(o, "}");
    return;
  }
  int64_t E = n->op == OP_EMBEDDING ? ir_last_dim(n) : n->dims[1];
  if (n->op == OP_EMBEDDING) {
    emit_ptr(ec, n->in[1], pw, sizeof pw);
    emit_line(o, "const dl_real *restrict W = %s;", pw);
    emit_line(o, "/* y[r, :] = W[ids[r], :] */");
    emit_line(o, "for (int r = 0; r < %s; r++) {", rows);
    emit_line(o, "const int64_t id = (int64_t)ids[r];");
    emit_line(o, "dl_real *yr = y + (size_t)r * %lld;", ll(E));
    emit_line(o, "if (id >= 0 && id < %lld) memcpy(yr, W + id * %lld, %lld * sizeof *yr);",
              ll(V), ll(E), ll(E));
    emit_line(o, "else memset(yr, 0, %lld * sizeof *yr);", ll(E));
    emit_line(o, "}");
    emit_line(o, "}");
    return;
  }
  /* OP_EMBEDDING_DW: y is dW, in[0] is dy */
  char pdy[96];
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_line(o, "const dl_real *restrict dy = %s;", pdy);
  emit_line(o, "/* dW[ids[r], :] += dy[r, :], rows in order (deterministic) */");
  emit_line(o, "memset(y, 0, %lld * sizeof *y);", ll(V * E));
  emit_line(o, "for (int r = 0; r < %s; r++) {", rows);
  emit_line(o, "const int64_t id = (int64_t)ids[r];");
  emit_line(o, "if (id < 0 || id >= %lld) continue;", ll(V));
  emit_line(o, "dl_real *restrict w = y + id * %lld;", ll(E));
  emit_line(o, "const dl_real *restrict d = dy + (size_t)r * %lld;", ll(E));
  emit_line(o, "for (int k = 0; k < %lld; k++) w[k] += d[k];", ll(E));
  emit_line(o, "}");
  emit_line(o, "}");
}
