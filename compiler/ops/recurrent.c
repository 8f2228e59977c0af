/* recurrent.c: rnn, lstm and gru layers (torch.nn.RNN, LSTM, GRU with one
 * layer, batch_first, optionally bidirectional), unrolled over the
 * compile-time length T with backpropagation through time.
 *
 * A layer is, per direction:
 *   xg   = dense(x, W_ih, b_ih)       [T, G*H]  every step's input part, one GEMM
 *   scan = OP_RNN_SCAN(xg, W_hh, b_hh) [T, SW]  the recurrence, a step at a time
 *   h    = OP_RNN_H(scan)             [T, H]    (or [H]: the final state)
 * The scan runs all samples of the batch together: at each step one GEMM
 * h_{t-1} W_hh^T over the batch, then the cell's elementwise math.  What a
 * step saves for backward, per sample (SW values), h always first:
 *   rnn:  h
 *   lstm: h, c, then the activated gates i, f, g, o           (6H)
 *   gru:  h, the activated gates r, z, n, then hh = h_{t-1} W_hh^T + b_hh (7H)
 * Backward (OP_RNN_SCAN_GRAD) walks the steps in reverse order and writes
 * per step (GW values): the gradient of the hidden-side pre-activations
 * (dhh, G*H: what dW_hh and db_hh sum), that of the input-side ones (dxg,
 * G*H, the same numbers except for gru's n gate, so stored once for rnn and
 * lstm), then scratch: dh coming from the next step (H) and lstm's dc (H).
 * Memory and time are linear in T: nothing is ever T x T.  W_hh is packed
 * for the GEMM once per pass (dl_gemm_pack_*, into an OP_SCRATCH node), not
 * at each of the T steps.
 *
 * carry = true (truncated backpropagation through time): a batch row starts
 * from the state the same row ended the previous batch with, when the
 * trainer streams the data (ctx->carry: DL_CARRY_ON, or DL_CARRY_START for
 * an epoch's first batch, which starts from zeros); gradients stop at the
 * batch's start.  The state lives in an OP_RNN_CARRY node (OPF_PERSISTENT) that
 * the memory plan never reuses, per sample [2, CW] (CW: h, and lstm's c): row 0 is the
 * state this batch started from (backward reads it), row 1 the state to
 * start the next one from.  Without ctx->carry (gradient checks, predict,
 * sample) every batch starts from zeros, as without carry.
 * Gate order and parameter names are torch's, so a checkpoint loads into
 * torch.nn.LSTM(..., batch_first=True) as it is. */
#include "../../runtime/dl_hints.h" /* DL_GRAIN_VALUES */
#include "ops.h"
#include "emit_text.h"
#include <string.h>
#include "../../runtime/dl_model.h"

enum { CELL_RNN_TANH, CELL_RNN_RELU, CELL_LSTM, CELL_GRU };
_Static_assert(OPF_OF_RNN_CARRY & OPF_PERSISTENT, "the carried state outlives a step (ops.def)");

static int gates_of(int cell) { return cell == CELL_LSTM ? 4 : cell == CELL_GRU ? 3 : 1; }
static int64_t saved_width(int cell, int64_t H) {
  return cell == CELL_LSTM ? 6 * H : cell == CELL_GRU ? 7 * H : H;
}
static int64_t grad_width(int cell, int64_t H) {
  return cell == CELL_LSTM ? 6 * H : cell == CELL_GRU ? 7 * H : 2 * H;
}
/* where dxg starts in a step of the scan gradient */
static int64_t dxg_offset(int cell, int64_t H) { return cell == CELL_GRU ? 3 * H : 0; }
/* the state a step hands to the next: h, and lstm's c */
static int64_t carry_width(int cell, int64_t H) { return cell == CELL_LSTM ? 2 * H : H; }
/* where the scratch dh (from the step after) starts */
static int64_t rec_offset(int cell, int64_t H) { return cell == CELL_GRU ? 6 * H : gates_of(cell) * H; }

static const char *cell_name(int cell) {
  static const char *const names[] = {"rnn (tanh)", "rnn (relu)", "lstm", "gru"};
  return names[cell];
}

/* Room for W_hh packed as the GEMMs of the scan (forward: N = G*H, K = H)
 * or of its gradient (N = H, K = G*H) read it: DL_GEMM_PACKED_SIZE. */
static int packed_weight(ir_graph *g, int node, int64_t N, int64_t K) {
  ir_node *n = &g->nodes[node];
  n->batched = 0;
  n->ndim = 1;
  n->dims[0] = (N + 31) * K;
  return node;
}

/* One direction: its parameters, input projection, scan and states. */
static int lower_direction(lower_ctx *lc, const ast_expr *call, int cell, int x, int64_t H,
                           int reverse, int bias, int last, int carry, int init, const char *layer) {
  ir_graph *g = lc->g;
  ir_node *xn = ir_at(g, x);
  int64_t T = xn->dims[0], D = xn->dims[1], GH = gates_of(cell) * H;
  const char *sfx = reverse ? "_reverse" : "";
  char kind[64];
  /* torch: every parameter U(-1/sqrt(H), 1/sqrt(H)) */
  int pinit = init == INIT_DEFAULT ? DL_INIT_TORCH_DEFAULT : init;
  int64_t wih[2] = {GH, D}, whh[2] = {GH, H};
  snprintf(kind, sizeof kind, "weight_ih_l0%s", sfx);
  int w_ih = lower_param(lc, layer, kind, 2, wih, H, GH, pinit, 0, 0, call->loc);
  snprintf(kind, sizeof kind, "weight_hh_l0%s", sfx);
  int w_hh = lower_param(lc, layer, kind, 2, whh, H, GH, pinit, 0, 0, call->loc);
  g->params[g->nodes[w_ih].leaf.index].is_weight = g->params[g->nodes[w_hh].leaf.index].is_weight = 1;
  int b_ih = -1, b_hh = -1;
  if (bias) {
    snprintf(kind, sizeof kind, "bias_ih_l0%s", sfx);
    b_ih = lower_param(lc, layer, kind, 1, &GH, H, GH, pinit, 0, 0, call->loc);
    snprintf(kind, sizeof kind, "bias_hh_l0%s", sfx);
    b_hh = lower_param(lc, layer, kind, 1, &GH, H, GH, pinit, 0, 0, call->loc);
  }
  int din[3] = {x, w_ih, b_ih};
  int xg = lower_node(lc, OP_DENSE, din, bias ? 3 : 2, call->loc);
  ir_node *xgn = ir_at(g, xg);
  ir_copy_shape(xgn, ir_at(g, x));
  xgn->dims[1] = GH;
  int sin[4] = {xg, w_hh, b_hh, -1}, nsin = bias ? 3 : 2;
  if (carry) {
    int c = lower_node(lc, OP_RNN_CARRY, NULL, 0, call->loc);
    ir_node *cn = ir_at(g, c);
    cn->batched = 1;
    cn->ndim = 2;
    cn->dims[0] = 2;
    cn->dims[1] = carry_width(cell, H);
    sin[nsin++] = c;
  }
  int scan = lower_node(lc, OP_RNN_SCAN, sin, nsin, call->loc);
  ir_node *sn = ir_at(g, scan);
  ir_copy_shape(sn, ir_at(g, x));
  sn->dims[1] = saved_width(cell, H);
  sn->rnn = (ir_rnn_attr){.cell = cell, .H = (int)H, .reverse = reverse, .bias = bias, .carry = carry};
  sn->scratch = packed_weight(g, lower_node(lc, OP_SCRATCH, NULL, 0, call->loc), GH, H);
  int h = lower_node(lc, OP_RNN_H, &scan, 1, call->loc);
  ir_node *hn = ir_at(g, h);
  hn->rnn = ir_at(g, scan)->rnn;
  hn->rnn.last = last;
  hn->batched = 1;
  hn->ndim = last ? 1 : 2;
  hn->dims[0] = last ? H : T;
  hn->dims[1] = last ? 0 : H;
  return h;
}

/* rnn(x, hidden, activation = tanh, bidirectional = false, last = false, bias = true, init, carry)
 * lstm(x, hidden, ...) gru(x, hidden, ...): x [T, D] -> [T, H] (or [T, 2H]
 * bidirectional; [H] / [2H] with last = true: the final state, as torch's h_n) */
int lower_recurrent(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0}, {"hidden", ARG_INT, 1, 0}, {"bidirectional", ARG_BOOL, 0, 0},
    {"last", ARG_BOOL, 0, 0}, {"bias", ARG_BOOL, 0, 1}, {"init", ARG_IDENT, 0, 0},
    {"carry", ARG_BOOL, 0, 0}, {"activation", ARG_IDENT, 0, 0},
  };
  /* rnn takes its activation third, as documented (torch's nonlinearity) */
  const arg_spec rnn_spec[] = {spec[0], spec[1], spec[7], spec[2], spec[3], spec[4], spec[5], spec[6]};
  int is_rnn = !strcmp(call->str, "rnn");
  arg_val v[8];
  if (is_rnn) {
    arg_val r[8];
    if (lower_bind_args(lc, call, rnn_spec, 8, r)) return -1;
    for (int k = 0; k < 8; k++) v[k] = r[k < 2 ? k : k == 7 ? 2 : k + 1];
  } else if (lower_bind_args(lc, call, spec, 7, v)) {
    return -1;
  }
  if (lower_sequence_arg(lc, &v[0], call->str)) return -1;
  ir_graph *g = lc->g;
  if (v[1].num < 1 || v[1].num > (1 << 16)) {
    diag_error(v[1].loc, "hidden must be between 1 and %d", 1 << 16);
    return -1;
  }
  int cell = !strcmp(call->str, "lstm") ? CELL_LSTM : !strcmp(call->str, "gru") ? CELL_GRU : CELL_RNN_TANH;
  if (is_rnn && v[7].present) {
    if (!strcmp(v[7].str, "relu")) cell = CELL_RNN_RELU;
    else if (strcmp(v[7].str, "tanh")) {
      diag_error(v[7].loc, "rnn()'s activation is tanh or relu, not '%s'", v[7].str);
      return -1;
    }
  }
  if (v[6].num && v[2].num) {
    diag_error(v[6].loc, "carry = true needs a forward-only %s(): the reverse direction would "
                         "start from the text after the batch", call->str);
    return -1;
  }
  int init = lower_init_arg(&v[5]);
  if (init == -2) return -1;
  int64_t H = (int64_t)v[1].num;
  char layer[256];
  lower_layer_name(lc, layer, sizeof layer);
  int dirs = v[2].num ? 2 : 1, last = v[3].num != 0, out[2];
  for (int d = 0; d < dirs; d++)
    out[d] = lower_direction(lc, call, cell, v[0].node, H, d, v[4].num != 0, last, v[6].num != 0,
                             init, layer);
  if (dirs == 1) return out[0];
  int id = lower_node(lc, OP_CONCAT, out, 2, call->loc);
  ir_node *n = ir_at(g, id);
  ir_copy_shape(n, ir_at(g, out[0]));
  n->dims[n->ndim - 1] = 2 * H;
  return id;
}

/* d h -> the scan's gradient, then d xg (to the input projection's dense),
 * d W_hh and d b_hh. */
void recurrent_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node h = g->nodes[id];
  int scan = h.in[0];
  ir_node sn = g->nodes[scan];
  int cell = h.rnn.cell;
  int64_t H = h.rnn.H, GH = gates_of(cell) * H;
  int carry = sn.rnn.carry ? sn.in[sn.nin - 1] : -1;
  int gin[4] = {dy, scan, sn.in[1], carry};
  int d = ad_node(ad, OP_RNN_SCAN_GRAD, gin, carry >= 0 ? 4 : 3, scan, -1);
  int scratch = ad_node(ad, OP_SCRATCH, NULL, 0, sn.in[1], -1);
  ir_node *dn = &g->nodes[d];
  dn->rnn = h.rnn;
  dn->scratch = packed_weight(g, scratch, H, GH);
  dn->dims[1] = grad_width(cell, H);
  if (ad_wants(ad, sn.in[0])) {
    int dxg = ad_node(ad, OP_SLICE, &d, 1, sn.in[0], -1);
    g->nodes[dxg].ew.from = (int)dxg_offset(cell, H);
    ad_accumulate(ad, sn.in[0], dxg);
  }
  if (ad_wants(ad, sn.in[1])) {
    int win[3] = {d, scan, carry};
    int dw = ad_node(ad, OP_RNN_DW, win, carry >= 0 ? 3 : 2, sn.in[1], -1);
    g->nodes[dw].rnn = h.rnn;
    ad_accumulate(ad, sn.in[1], dw);
  }
  if (sn.rnn.bias && ad_wants(ad, sn.in[2])) {
    int db = ad_node(ad, OP_RNN_DB, &d, 1, sn.in[2], -1);
    g->nodes[db].rnn = h.rnn;
    ad_accumulate(ad, sn.in[2], db);
  }
}

/* ---- emission -------------------------------------------------------------- */

/* The geometry every kernel of a layer shares. */
typedef struct {
  int cell, reverse, last, carry;
  long long T, H, GH, SW, GW, CW;
} rnn_dims;

static rnn_dims dims_of(const ir_graph *g, const ir_node *n) {
  rnn_dims d;
  const ir_node *scan = n->op == OP_RNN_SCAN ? n
                        : n->op == OP_RNN_H ? &g->nodes[n->in[0]]
                        : n->op == OP_RNN_SCAN_GRAD ? &g->nodes[n->in[1]]
                        : n->op == OP_RNN_DW ? &g->nodes[n->in[1]]
                                             : &g->nodes[g->nodes[n->in[0]].in[1]];
  d.cell = n->rnn.cell;
  d.reverse = n->rnn.reverse;
  d.last = n->op == OP_RNN_H || n->op == OP_RNN_SCAN_GRAD ? n->rnn.last : 0;
  d.T = scan->dims[0];
  d.H = n->rnn.H;
  d.GH = gates_of(d.cell) * d.H;
  d.SW = saved_width(d.cell, d.H);
  d.GW = grad_width(d.cell, d.H);
  d.carry = scan->rnn.carry;
  d.CW = carry_width(d.cell, d.H);
  return d;
}

/* t, the time index of step `step`, tp that of the step before it and tn
 * that of the step after it (in processing order). */
static void emit_time_indices(emit_text *o, const rnn_dims *d) {
  if (d->reverse) emit_line(o, "const int t = %lld - step, tp = t + 1, tn = t - 1;", d->T - 1);
  else emit_line(o, "const int t = step, tp = t - 1, tn = t + 1;");
  emit_line(o, "(void)tp;");
  emit_line(o, "(void)tn;");
}

/* `for (int step ...)` with t, tp and tn */
static void emit_steps(emit_text *o, const rnn_dims *d, int backward) {
  if (backward) emit_line(o, "for (int step = %lld; step >= 0; step--) {", d->T - 1);
  else emit_line(o, "for (int step = 0; step < %lld; step++) {", d->T);
  emit_time_indices(o, d);
}

/* A step's cells over the batch's samples are independent: a job over
 * samples [lo, hi) (helper NAME, opened in ec->helpers at depth 1, with
 * ctx, n, step, t, tp and tn declared), so both threads share each step.
 * A hidden value's cell (its gates' activations and products, forward or
 * back) is about 8 simple values' work: DL_GRAIN_VALUES / 8 to a thread. */
#define SAMPLE_GRAIN_VALUES (DL_GRAIN_VALUES / 8)
static void step_job_begin(emit_ctx *ec, emit_text *h, const ir_node *n, const rnn_dims *d,
                           const char *what, char *name, size_t len) {
  snprintf(name, len, "%s_%s_%d", what, ec->g->groups[n->group].name, n->id);
  h->depth = 0;
  emit_line(h, "/* %s: step `step`'s %s, samples [lo, hi) */", ec->g->groups[n->group].name,
            what);
  emit_line(h, "static void %s(void *arg, int64_t lo, int64_t hi) {", name);
  emit_line(h, "const dl_step_job *job = arg;");
  emit_line(h, "dl_ctx *ctx = job->ctx;");
  emit_line(h, "const int step = job->step;");
  emit_line(h, "(void)ctx;");
  emit_time_indices(h, d);
}

static void step_job_call(emit_text *o, const rnn_dims *d, const char *name) {
  emit_line(o, "{");
  emit_line(o, "dl_step_job job = {ctx, n, step};");
  emit_line(o, "dl_parallel_for(ctx->pool, n, %lld, %s, &job);", 1 + SAMPLE_GRAIN_VALUES / d->H, name);
  emit_line(o, "}");
}

/* The state before the first step, for sample s: the carried one (h, then
 * lstm's c, as a step saves them) or none (zeros). */
static const char *start_state(const rnn_dims *d, char *buf, size_t len) {
  if (d->carry) snprintf(buf, len, "C + (size_t)s * %lld", 2 * d->CW);
  else snprintf(buf, len, "NULL");
  return buf;
}

/* The name of an all-zero state (h, c) or gradient (dh) array the kernels
 * read where there is no step before or after; emitted once per node. */
static const char *zeros_name(emit_ctx *ec, const ir_node *n) {
  static char name[128];
  snprintf(name, sizeof name, "zeros_%s_%d", ec->g->groups[n->group].name, n->id);
  return name;
}

static void emit_zeros(emit_ctx *ec, emit_text *o, const ir_node *n, const rnn_dims *d) {
  emit_line(o, "static const dl_real %s[%lld];\n",
            zeros_name(ec, n), d->SW > d->GW ? d->SW : d->GW);
}

/* static void NAME(St, prev, x): one step's cell for one sample, in place on
 * its saved row St (pre-activations in, activations and state out), prev
 * the row before (or zeros), x its input part (gru).  Separate restrict
 * pointers and no branches: the C compiler vectorises it. */
static void emit_cell_fn(emit_ctx *ec, const ir_node *n, const rnn_dims *d, char *name, size_t len) {
  emit_text o[1] = {{.f = ec->helpers}};
  long long H = d->H;
  snprintf(name, len, "cell_%s_%d", ec->g->groups[n->group].name, n->id);
  emit_zeros(ec, o, n, d);
  emit_line(o, "/* %s cell: %s */", cell_name(d->cell),
            d->cell == CELL_LSTM ? "i, f, g, o = sigmoid, sigmoid, tanh, sigmoid; c = f c' + i g; h = o tanh(c)"
            : d->cell == CELL_GRU ? "r, z = sigmoid(x + hh), n = tanh(x_n + r hh_n), h = (1 - z) n + z h'"
                                  : "h = act(a)");
  emit_line(o, "static void %s(dl_real *restrict St, const dl_real *restrict prev, const dl_real *restrict x) {",
            name);
  emit_line(o, "(void)prev;");
  emit_line(o, "(void)x;");
  emit_line(o, "for (int j = 0; j < %lld; j++) {", H);
  switch (d->cell) {
  case CELL_RNN_TANH: emit_line(o, "St[j] = dl_tanh(St[j]);"); break;
  case CELL_RNN_RELU: emit_line(o, "St[j] = St[j] > 0 ? St[j] : 0;"); break;
  case CELL_LSTM:
    emit_line(o, "const dl_real i = dl_sigmoid(St[%lld + j]), f = dl_sigmoid(St[%lld + j]);",
              2 * H, 3 * H);
    emit_line(o, "const dl_real gg = dl_tanh(St[%lld + j]), og = dl_sigmoid(St[%lld + j]);",
              4 * H, 5 * H);
    emit_line(o, "const dl_real c = f * prev[%lld + j] + i * gg;", H);
    emit_line(o, "St[%lld + j] = i;", 2 * H);
    emit_line(o, "St[%lld + j] = f;", 3 * H);
    emit_line(o, "St[%lld + j] = gg;", 4 * H);
    emit_line(o, "St[%lld + j] = og;", 5 * H);
    emit_line(o, "St[%lld + j] = c;", H);
    emit_line(o, "St[j] = og * dl_tanh(c);");
    break;
  default:
    emit_line(o, "const dl_real r = dl_sigmoid(x[j] + St[%lld + j]), z = dl_sigmoid(x[%lld + j] + St[%lld + j]);",
              4 * H, H, 5 * H);
    emit_line(o, "const dl_real nn = dl_tanh(x[%lld + j] + r * St[%lld + j]);", 2 * H, 6 * H);
    emit_line(o, "St[%lld + j] = r;", H);
    emit_line(o, "St[%lld + j] = z;", 2 * H);
    emit_line(o, "St[%lld + j] = nn;", 3 * H);
    emit_line(o, "St[j] = (1 - z) * nn + z * prev[j];");
    break;
  }
  emit_line(o, "}");
  emit_line(o, "}\n");
}

static void emit_scan(emit_ctx *ec, const ir_node *n, const rnn_dims *d) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pxg[96], ps[96], pw[96], pb[96] = "";
  emit_ptr(ec, n->in[0], pxg, sizeof pxg);
  emit_ptr(ec, n->id, ps, sizeof ps);
  emit_ptr(ec, n->in[1], pw, sizeof pw);
  if (n->rnn.bias) emit_ptr(ec, n->in[2], pb, sizeof pb);
  long long T = d->T, H = d->H, GH = d->GH, SW = d->SW, ST = T * SW, CW = d->CW;
  /* where the hidden-side pre-activations accumulate: lstm and rnn add them
   * to the input side's in place; gru keeps them apart (r scales hh_n) */
  long long acc = d->cell == CELL_GRU ? 4 * H : d->cell == CELL_LSTM ? 2 * H : 0;
  emit_line(o, "{");
  emit_line(o, "/* %s over %lld steps%s, the whole batch a step at a time:\n"
              " * %s = xg_t + b_hh + h_{t-1} W_hh^T (one GEMM), then the cell */",
            cell_name(d->cell), T, d->reverse ? " (reversed)" : "",
            d->cell == CELL_GRU ? "hh_t = b_hh + h_{t-1} W_hh^T; gates from xg_t and hh_t" : "a_t");
  if (d->cell != CELL_GRU) /* gru reads xg in its cells alone */
    emit_line(o, "const dl_real *restrict xg = %s;", pxg);
  emit_line(o, "dl_real *restrict S = %s;", ps);
  char pp[96];
  emit_ptr(ec, n->scratch, pp, sizeof pp);
  emit_line(o, "dl_real *restrict Wp = %s; /* W_hh packed for the %lld GEMMs */", pp, T);
  emit_line(o, "dl_gemm_pack_nt(%lld, %lld, %s, %lld, Wp);", GH, H, pw, H);
  if (n->rnn.bias) emit_line(o, "const dl_real *restrict b = %s;", pb);
  if (d->carry) {
    char pc[96];
    emit_ptr(ec, n->in[n->nin - 1], pc, sizeof pc);
    emit_line(o, "/* each row's start state: where the row's last batch ended when streaming, else 0 */");
    emit_line(o, "dl_real *restrict C = %s;", pc);
    emit_line(o, "for (int s = 0; s < n; s++) {");
    emit_line(o, "dl_real *c = C + (size_t)s * %lld;", 2 * CW);
    emit_line(o, "if (ctx->carry == DL_CARRY_ON) memcpy(c, c + %lld, %lld * sizeof *c);", CW, CW);
    emit_line(o, "else memset(c, 0, %lld * sizeof *c);", CW);
    emit_line(o, "}");
  }
  /* every step's accumulator starts as xg_t + b_hh: one pass, before the
   * steps (it does not depend on them) */
  emit_line(o, "for (size_t r = 0; r < (size_t)n * %lld; r++) {", T);
  emit_line(o, "dl_real *restrict a = S + r * %lld + %lld;", SW, acc);
  if (d->cell != CELL_GRU) emit_line(o, "const dl_real *restrict x = xg + r * %lld;", GH);
  emit_line(o, "for (int j = 0; j < %lld; j++) a[j] = %s;",
            GH, d->cell == CELL_GRU ? (n->rnn.bias ? "b[j]" : "0") : n->rnn.bias ? "x[j] + b[j]" : "x[j]");
  emit_line(o, "}");
  emit_steps(o, d, 0);
  emit_line(o, "if (step > 0)");
  emit_line(o, "dl_gemm_packed(ctx->pool, n, %lld, %lld, S + (size_t)tp * %lld, %lld, Wp, S + (size_t)t * %lld + %lld, %lld, 1);",
            GH, H, SW, ST, SW, acc, ST);
  if (d->carry) {
    emit_line(o, "else");
    emit_line(o, "dl_gemm_packed(ctx->pool, n, %lld, %lld, C, %lld, Wp, S + (size_t)t * %lld + %lld, %lld, 1);",
              GH, H, 2 * CW, SW, acc, ST);
  }
  char start[64], cell[128], job[128];
  start_state(d, start, sizeof start);
  emit_cell_fn(ec, n, d, cell, sizeof cell);
  emit_text h[1] = {{.f = ec->helpers}};
  step_job_begin(ec, h, n, d, "cells", job, sizeof job);
  emit_line(h, "const dl_real *restrict xg = %s;", pxg);
  emit_line(h, "dl_real *restrict S = %s;", ps);
  if (d->carry) {
    char pc[96];
    emit_ptr(ec, n->in[n->nin - 1], pc, sizeof pc);
    emit_line(h, "const dl_real *restrict C = %s;", pc);
  }
  emit_line(h, "for (int s = (int)lo; s < (int)hi; s++) {");
  emit_line(h, "const dl_real *Sp = step > 0 ? S + ((size_t)s * %lld + tp) * %lld : %s;",
            T, SW, start);
  emit_line(h, "%s(S + ((size_t)s * %lld + t) * %lld, Sp ? Sp : %s, xg + ((size_t)s * %lld + t) * %lld);",
            cell, T, SW, zeros_name(ec, n), T, GH);
  emit_line(h, "}");
  emit_line(h, "}\n");
  step_job_call(o, d, job);
  emit_line(o, "}");
  if (d->carry) {
    emit_line(o, "if (ctx->carry) /* where the next batch's row starts */");
    emit_line(o, "for (int s = 0; s < n; s++)");
    emit_line(o, "memcpy(C + (size_t)s * %lld + %lld, S + ((size_t)s * %lld + %lld) * %lld, %lld * sizeof *C);",
              2 * CW, CW, T, d->reverse ? 0 : T - 1, SW, CW);
  }
  emit_line(o, "}");
}

/* h [T, H] (or the final state [H]) out of the scan's saved steps */
static void emit_states(emit_ctx *ec, const ir_node *n, const rnn_dims *d) {
  char py[96], ps[96];
  emit_ptr(ec, n->id, py, sizeof py);
  emit_ptr(ec, n->in[0], ps, sizeof ps);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  long long T = d->T, H = d->H, SW = d->SW;
  emit_line(o, "{");
  emit_line(o, "dl_real *restrict y = %s;", py);
  emit_line(o, "const dl_real *restrict S = %s;", ps);
  if (d->last) {
    emit_line(o, "/* the final state: h after the last step (t = %lld) */", d->reverse ? 0 : T - 1);
    emit_line(o, "for (int s = 0; s < n; s++)");
    emit_line(o, "memcpy(y + (size_t)s * %lld, S + ((size_t)s * %lld + %lld) * %lld, %lld * sizeof *y);",
              H, T, d->reverse ? 0 : T - 1, SW, H);
    emit_line(o, "}");
    return;
  }
  emit_line(o, "/* h_t of every step */");
  emit_line(o, "for (size_t r = 0; r < (size_t)n * %lld; r++)", T);
  emit_line(o, "memcpy(y + r * %lld, S + r * %lld, %lld * sizeof *y);", H, SW, H);
  emit_line(o, "}");
}

/* static void NAME(Dt, dyt, rec, St, prev, dcn, fn, dprev): one sample's
 * step of backpropagation through time.  dh = dyt + rec (dh from the step
 * after, or zeros); St, prev: this step's and the previous step's saved
 * rows; lstm: dcn, fn the next step's dc and forget gate (or zeros); gru:
 * dprev, where the direct path z dh to h_{t-1} goes. */
static void emit_cell_grad_fn(emit_ctx *ec, const ir_node *n, const rnn_dims *d, char *name, size_t len) {
  emit_text o[1] = {{.f = ec->helpers}};
  long long H = d->H;
  snprintf(name, len, "cell_grad_%s_%d", ec->g->groups[n->group].name, n->id);
  emit_zeros(ec, o, n, d);
  emit_line(o, "/* %s cell backward */", cell_name(d->cell));
  emit_line(o, "static void %s(dl_real *restrict Dt, const dl_real *restrict dyt, const dl_real *restrict rec,\n"
               "    const dl_real *restrict St, const dl_real *restrict prev, const dl_real *restrict dcn,\n"
               "    const dl_real *restrict fn, dl_real *restrict dprev) {", name);
  emit_line(o, "(void)prev;");
  emit_line(o, "(void)dcn;");
  emit_line(o, "(void)fn;");
  emit_line(o, "(void)dprev;");
  emit_line(o, "for (int j = 0; j < %lld; j++) {", H);
  emit_line(o, "const dl_real dh = dyt[j] + rec[j];");
  switch (d->cell) {
  case CELL_RNN_TANH: emit_line(o, "Dt[j] = dh * (1 - St[j] * St[j]);"); break;
  case CELL_RNN_RELU: emit_line(o, "Dt[j] = St[j] > 0 ? dh : 0;"); break;
  case CELL_LSTM:
    /* dc = dh o tanh'(c) + dc_{t+1} f_{t+1}; then each gate's pre-activation */
    emit_line(o, "const dl_real i = St[%lld + j], f = St[%lld + j], gg = St[%lld + j], og = St[%lld + j];",
              2 * H, 3 * H, 4 * H, 5 * H);
    emit_line(o, "const dl_real tc = dl_tanh(St[%lld + j]);", H);
    emit_line(o, "const dl_real dc = dh * og * (1 - tc * tc) + dcn[j] * fn[j];");
    emit_line(o, "Dt[%lld + j] = dc;", 5 * H);
    emit_line(o, "Dt[j] = dc * gg * i * (1 - i);");
    emit_line(o, "Dt[%lld + j] = dc * prev[%lld + j] * f * (1 - f);", H, H);
    emit_line(o, "Dt[%lld + j] = dc * i * (1 - gg * gg);", 2 * H);
    emit_line(o, "Dt[%lld + j] = dh * tc * og * (1 - og);", 3 * H);
    break;
  default: /* GRU */
    emit_line(o, "const dl_real r = St[%lld + j], z = St[%lld + j], nn = St[%lld + j], hhn = St[%lld + j];",
              H, 2 * H, 3 * H, 6 * H);
    emit_line(o, "const dl_real dnp = dh * (1 - z) * (1 - nn * nn), dzp = dh * (prev[j] - nn) * z * (1 - z);");
    emit_line(o, "const dl_real dr = dnp * hhn * r * (1 - r);");
    emit_line(o, "Dt[j] = dr;");
    emit_line(o, "Dt[%lld + j] = dzp;", H);
    emit_line(o, "Dt[%lld + j] = dnp * r;", 2 * H);
    emit_line(o, "Dt[%lld + j] = dr;", 3 * H);
    emit_line(o, "Dt[%lld + j] = dzp;", 4 * H);
    emit_line(o, "Dt[%lld + j] = dnp;", 5 * H);
    emit_line(o, "dprev[j] = dh * z;");
    break;
  }
  emit_line(o, "}");
  emit_line(o, "}\n");
}

/* Backpropagation through time, the steps in reverse order.  At each step
 * dh = (dh_t from above) + (dh from the step after: dhh_{t+1} W_hh, one GEMM
 * over the batch, plus gru's direct z path), then the cell's derivatives. */
static void emit_scan_grad(emit_ctx *ec, const ir_node *n, const rnn_dims *d) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pd[96], pdy[96], ps[96], pw[96];
  emit_ptr(ec, n->id, pd, sizeof pd);
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_ptr(ec, n->in[1], ps, sizeof ps);
  emit_ptr(ec, n->in[2], pw, sizeof pw);
  long long T = d->T, H = d->H, GH = d->GH, SW = d->SW, GW = d->GW, REC = rec_offset(d->cell, d->H);
  int gru = d->cell == CELL_GRU;
  char start[64], pc[96];
  start_state(d, start, sizeof start);
  emit_line(o, "{");
  emit_line(o, "/* %s backward through %lld steps: dh_t = dy_t + dhh_{t+1} W_hh%s */",
            cell_name(d->cell), T, gru ? " + z_{t+1} dh_{t+1}" : "");
  emit_line(o, "dl_real *restrict D = %s;", pd);
  char pp[96];
  emit_ptr(ec, n->scratch, pp, sizeof pp);
  emit_line(o, "dl_real *restrict Wp = %s; /* W_hh packed for the %lld GEMMs */", pp, T - 1);
  emit_line(o, "dl_gemm_pack_nn(%lld, %lld, %s, %lld, Wp);", H, GH, pw, H);
  if (d->carry) emit_ptr(ec, n->in[3], pc, sizeof pc);
  emit_steps(o, d, 1);
  emit_line(o, "if (step < %lld)", T - 1);
  emit_line(o, "dl_gemm_packed(ctx->pool, n, %lld, %lld, D + (size_t)tn * %lld, %lld, Wp, D + (size_t)t * %lld + %lld, %lld, %d);",
            H, GH, GW, T * GW, GW, REC, T * GW, gru);
  char cell[128], job[128];
  const char *zeros = zeros_name(ec, n);
  emit_cell_grad_fn(ec, n, d, cell, sizeof cell);
  emit_text h[1] = {{.f = ec->helpers}};
  step_job_begin(ec, h, n, d, "cell_grads", job, sizeof job);
  emit_line(h, "dl_real *restrict D = %s;", pd);
  emit_line(h, "const dl_real *restrict dy = %s;", pdy);
  emit_line(h, "const dl_real *restrict S = %s;", ps);
  if (d->carry) emit_line(h, "const dl_real *restrict C = %s; /* the state the batch started from */", pc);
  if (gru) emit_line(h, "dl_real sink[%lld]; /* the first step's dh for h_{-1}: not needed */", H);
  emit_line(h, "for (int s = (int)lo; s < (int)hi; s++) {");
  emit_line(h, "const dl_real *Sp = step > 0 ? S + ((size_t)s * %lld + tp) * %lld : %s;",
            T, SW, start);
  emit_line(h, "const int next = step < %lld;", T - 1);
  if (d->last)
    emit_line(h, "const dl_real *dyt = step == %lld ? dy + (size_t)s * %lld : %s;",
              T - 1, H, zeros);
  else
    emit_line(h, "const dl_real *dyt = dy + ((size_t)s * %lld + t) * %lld;", T, H);
  emit_line(h, "dl_real *Dt = D + ((size_t)s * %lld + t) * %lld;", T, GW);
  /* the call's last three arguments, on a line of their own */
  char tail[384];
  if (d->cell == CELL_LSTM)
    snprintf(tail, sizeof tail, "next ? D + ((size_t)s * %lld + tn) * %lld + %lld : %s, "
             "next ? S + ((size_t)s * %lld + tn) * %lld + %lld : %s, NULL", T, GW, 5 * H, zeros, T,
             SW, 3 * H, zeros);
  else if (gru)
    snprintf(tail, sizeof tail, "NULL, NULL, step > 0 ? D + ((size_t)s * %lld + tp) * %lld + %lld : sink",
             T, GW, REC);
  else
    snprintf(tail, sizeof tail, "NULL, NULL, NULL");
  emit_line(h, "%s(Dt, dyt, next ? Dt + %lld : %s, S + ((size_t)s * %lld + t) * %lld, Sp ? Sp : %s,\n"
               "   %s);", cell, REC, zeros, T, SW, zeros, tail);
  emit_line(h, "}");
  emit_line(h, "}\n");
  step_job_call(o, d, job);
  emit_line(o, "}");
  emit_line(o, "}");
}

/* dW_hh = sum over steps with a predecessor of dhh_t^T h_{t-1} (the first
 * step's h_{t-1} is 0), a GEMM over the batch per step; db_hh = sum of dhh */
static void emit_param_grads(emit_ctx *ec, const ir_node *n, const rnn_dims *d) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pout[96], pd[96], ps[96];
  emit_ptr(ec, n->id, pout, sizeof pout);
  emit_ptr(ec, n->in[0], pd, sizeof pd);
  long long T = d->T, H = d->H, GH = d->GH, SW = d->SW, GW = d->GW;
  if (n->op == OP_RNN_DB) {
    emit_line(o, "{");
    emit_line(o, "/* db_hh[j] = sum over samples and steps of dhh[j] */");
    emit_line(o, "dl_real *restrict db = %s;", pout);
    emit_line(o, "const dl_real *restrict D = %s;", pd);
    emit_line(o, "memset(db, 0, %lld * sizeof *db);", GH);
    emit_line(o, "for (size_t r = 0; r < (size_t)n * %lld; r++)", T);
    emit_line(o, "for (int j = 0; j < %lld; j++) db[j] += D[r * %lld + j];", GH, GW);
    emit_line(o, "}");
    return;
  }
  emit_ptr(ec, n->in[1], ps, sizeof ps);
  emit_line(o, "{");
  emit_line(o, "/* dW_hh = sum_t dhh_t^T h_{t-1} */");
  emit_line(o, "dl_real *dw = %s;", pout);
  emit_line(o, "const dl_real *D = %s, *S = %s;", pd, ps);
  if (d->carry) {
    char pc[96];
    emit_ptr(ec, n->in[2], pc, sizeof pc);
    emit_line(o, "/* the first step's h_{t-1}: the state the batch started from */");
    emit_line(o, "dl_gemm_tn(ctx->pool, %lld, %lld, n, D + (size_t)%lld * %lld, %lld, %s, %lld, dw, %lld, 0);",
              GH, H, d->reverse ? T - 1 : 0, GW, T * GW, pc, 2 * d->CW, H);
  }
  if (T == 1 && d->carry) {
    emit_line(o, "(void)S;");
    emit_line(o, "}");
    return;
  }
  if (T == 1) {
    emit_line(o, "(void)D;");
    emit_line(o, "(void)S;");
    emit_line(o, "memset(dw, 0, %lld * sizeof *dw);", GH * H);
    emit_line(o, "}");
    return;
  }
  emit_steps(o, d, 0);
  emit_line(o, "if (step > 0)");
  emit_line(o, "dl_gemm_tn(ctx->pool, %lld, %lld, n, D + (size_t)t * %lld, %lld, S + (size_t)tp * %lld, %lld, dw, %lld, %s);",
            GH, H, GW, T * GW, SW, T * SW, H, d->carry ? "1" : "step > 1");
  emit_line(o, "}");
  emit_line(o, "}");
}

void recurrent_emit(emit_ctx *ec, const ir_node *n) {
  rnn_dims d = dims_of(ec->g, n);
  switch (n->op) {
  case OP_RNN_SCAN: emit_scan(ec, n, &d); break;
  case OP_RNN_H: emit_states(ec, n, &d); break;
  case OP_RNN_SCAN_GRAD: emit_scan_grad(ec, n, &d); break;
  default: emit_param_grads(ec, n, &d); break;
  }
}
