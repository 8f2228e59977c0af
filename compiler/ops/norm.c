/* norm.c: the normalisation layers (torch.nn.BatchNorm1d/2d, LayerNorm,
 * InstanceNorm2d, GroupNorm): lowering with the shape rules, the backward
 * rule and the emitters.
 *
 * A sample is seen as K channels of S contiguous values: [C, H, W] is K = C,
 * S = H*W; [F] is K = F, S = 1; for layer norm every element is a channel
 * (its weight and bias have the sample's shape).  Each norm is two nodes:
 *   norm_stats  the mean and rstd = 1/sqrt(var + eps) (biased variance) of
 *               each statistic: per channel over the batch and positions
 *               (batch norm), or per sample and group of K/G channels (group
 *               norm; instance norm has one channel per group, layer norm one
 *               group of everything);
 *   norm        y = (x - mean) * rstd * w + b, with the activation that
 *               follows fused in.
 * Batch norm in evaluation normalises with its running statistics instead.
 * In training it uses the batch's, and a training step (ctx->track_stats:
 * not a gradient check, not an evaluation) moves the running ones towards
 * them as torch does: momentum, unbiased variance, num_batches_tracked += 1.
 * The running statistics are buffers: state saved in checkpoints, outside
 * the optimiser.
 *
 * Backward goes through the statistics (norm_stats has no rule of its own):
 *   dx = rstd (g - mean(g) - xhat mean(g xhat)),  g = w dy, xhat = (x - mean) rstd,
 * the means over each statistic's values; batch norm in evaluation: dx = w rstd dy.
 * norm_sums holds per channel, over the batch, sum dy and sum dy xhat: db and
 * dw are its rows, and batch norm's dx reads them.
 * Batch norm's sums over the batch (the statistics' and norm_sums') are
 * made in double in a scratch node and go through DL_BATCH_SUM, which, when
 * a step runs over micro-shards (train --shards, MPI), adds every shard's
 * into the global batch's: SyncBatchNorm's meaning (trainer_shard.c).  Every reduction runs in
 * a fixed order (a channel's samples one after another, or within one
 * sample) in lanes whose chunks are added in double, and the work is split
 * over channels or over samples, never inside a sum: the bits do not depend
 * on the thread count. */
#include "../../runtime/dl_hints.h" /* DL_GRAIN_VALUES */
#include "ops.h"
#include "emit_text.h"
#include <stdlib.h>
#include <string.h>
#include "../../runtime/dl_model.h"

enum { NORM_BATCH, NORM_LAYER, NORM_INSTANCE, NORM_GROUP };

/* Channels summed at once, row by row.  (A chunk of a job has at least
 * DL_GRAIN_VALUES values, each a simple value's work.) */
enum { NORM_CHANNEL_BLOCK = 256 };

/* The geometry of a norm node (or of one of its backward nodes), from x. */
typedef struct norm_geo {
  int kind;
  int64_t K, S;   /* channels, values per channel in one sample        */
  int64_t G, Kg;  /* per-sample norms: statistics per sample, channels in each */
  int64_t M;      /* values behind one statistic in one sample: Kg * S  */
  int64_t P;      /* weights and biases: channel c has w[c % P]         */
  int affine;
  double eps, momentum;
} norm_geo;

static norm_geo geo_of(const ir_node *x, const ir_node *n) {
  norm_geo q = {.kind = n->norm.kind, .G = n->norm.groups, .affine = n->norm.affine,
                .eps = n->norm.eps, .momentum = n->norm.momentum};
  int64_t numel = ir_numel(x);
  q.K = q.kind == NORM_LAYER ? numel : x->dims[0];
  q.S = numel / q.K;
  if (q.kind != NORM_BATCH) {
    q.Kg = q.K / q.G;
    q.M = q.Kg * q.S;
  }
  q.P = q.kind == NORM_LAYER && n->norm.per ? n->norm.per : q.K;
  return q;
}

static const char *kind_name(int kind) {
  static const char *const names[] = {"batch_norm", "layer_norm", "instance_norm", "group_norm"};
  return names[kind];
}

/* ---- lowering -------------------------------------------------------------- */

/* A scale or shift: one at start (weight) or zero (bias) whatever the train
 * block's init, and outside the global l1/l2 (they are not weight matrices). */
static int lower_affine(lower_ctx *lc, const char *layer, const char *kind, int ndim,
                        const int64_t *dims, dl_loc loc) {
  int init = strcmp(kind, "weight") == 0 ? DL_INIT_ONE : DL_INIT_ZERO;
  int node = lower_param(lc, layer, kind, ndim, dims, 0, 0, init, 0, 0, loc);
  lc->g->params[ir_at(lc->g, node)->leaf.index].is_weight = 0;
  return node;
}

/* batch_norm's sums in double, 2 per channel (the statistics' sum x and
 * sum (x - mean)^2, or backward's sum dy and sum dy xhat), where the step
 * can add them over every micro-shard of the global batch (DL_BATCH_SUM):
 * room for 2C doubles, counted in values, 4C whatever dl_real is. */
static int batch_scratch(ir_graph *g, int node, int64_t C) {
  ir_node *n = &g->nodes[node];
  n->batched = 0;
  n->ndim = 1;
  n->dims[0] = 4 * C;
  return node;
}

/* Whether x has a shape the norm takes; reports and returns -1 if not. */
static int check_input(const arg_val *v, const ir_node *x, int kind) {
  int ok = x->batched && (kind == NORM_INSTANCE ? x->ndim >= 2 : x->ndim >= 1);
  if (ok) return 0;
  char shape[96];
  const char *what = x->batched && x->ndim ? ir_shape_str(x, shape, sizeof shape)
                     : x->batched          ? "a class label"
                                           : "a scalar";
  if (kind == NORM_INSTANCE)
    diag_error(v->loc, "instance_norm() needs per-sample channels of positions ([C, H, W] or [C, L]), "
               "not %s", what);
  else
    diag_error(v->loc, "%s() needs a per-sample tensor, not %s", kind_name(kind), what);
  return -1;
}

/* batch_norm(x, momentum = 0.1, eps = 1e-5, affine = true)
 * layer_norm(x, eps = 1e-5, affine = true, dims = all): over the last `dims` dims
 * instance_norm(x, eps = 1e-5, affine = false)
 * group_norm(x, groups, eps = 1e-5, affine = true)
 * The first dim of x is the channel (features for [F]); torch's defaults. */
int lower_norm(lower_ctx *lc, const ast_expr *call) {
  int kind = !strcmp(call->str, "batch_norm")      ? NORM_BATCH
             : !strcmp(call->str, "layer_norm")    ? NORM_LAYER
             : !strcmp(call->str, "instance_norm") ? NORM_INSTANCE
                                                   : NORM_GROUP;
  /* batch_norm's second argument is momentum, group_norm's groups;
   * layer_norm and instance_norm have none (their spec skips it) */
  const arg_spec second = kind == NORM_BATCH ? (arg_spec){"momentum", ARG_NUMBER, 0, 0.1}
                                             : (arg_spec){"groups", ARG_INT, 1, 0};
  const arg_spec spec[4] = {
    {"x", ARG_TENSOR, 1, 0}, second, {"eps", ARG_NUMBER, 0, 1e-5},
    {"affine", ARG_BOOL, 0, kind != NORM_INSTANCE},
  };
  arg_val v[4];
  int has_second = kind == NORM_BATCH || kind == NORM_GROUP;
  if (has_second) {
    if (lower_bind_args(lc, call, spec, 4, v)) return -1;
  } else {
    const arg_spec short_spec[4] = {spec[0], spec[2], spec[3], {"dims", ARG_INT, ARG_DERIVED, 0}};
    arg_val sv[4];
    if (lower_bind_args(lc, call, short_spec, kind == NORM_LAYER ? 4 : 3, sv)) return -1;
    v[0] = sv[0], v[2] = sv[1], v[3] = sv[2];
    v[1] = kind == NORM_LAYER ? sv[3] : (arg_val){0};
  }
  ir_graph *g = lc->g;
  ir_node x = *ir_at(g, v[0].node);
  if (check_input(&v[0], &x, kind)) return -1;
  if (!(v[2].num > 0)) {
    diag_error(v[2].loc, "eps of %s() must be positive, not %g", call->str, v[2].num);
    return -1;
  }
  if (kind == NORM_BATCH && !(v[1].num >= 0 && v[1].num <= 1)) {
    diag_error(v[1].loc, "momentum of batch_norm() must be in [0, 1], not %g", v[1].num);
    return -1;
  }
  int64_t C = x.dims[0], G = 1;
  int inner = x.ndim; /* layer norm: how many trailing dims it normalises */
  if (kind == NORM_LAYER && v[1].present) {
    if (v[1].num < 1 || v[1].num > x.ndim) {
      diag_error(v[1].loc, "dims of layer_norm() must be between 1 and %d (the input's dims), not %g",
                 x.ndim, v[1].num);
      return -1;
    }
    inner = (int)v[1].num;
    for (int d = 0; d < x.ndim - inner; d++) G *= x.dims[d];
  }
  if (kind == NORM_INSTANCE) G = C;
  if (kind == NORM_GROUP) {
    G = (int64_t)v[1].num;
    if (G < 1 || C % G) {
      diag_error(v[1].loc, "groups = %lld must divide the %lld channels of group_norm()'s input",
                 (long long)G, (long long)C);
      return -1;
    }
  }
  int affine = v[3].num != 0;
  /* tensors named as torch.nn names the layer's: NAME.weight, NAME.bias,
   * NAME.running_mean, NAME.running_var, NAME.num_batches_tracked */
  char layer[256] = "";
  if (affine || kind == NORM_BATCH) lower_layer_name(lc, layer, sizeof layer);
  /* layer norm scales every element; the others each channel */
  int pndim = kind == NORM_LAYER ? inner : 1;
  const int64_t *pdims = kind == NORM_LAYER ? x.dims + (x.ndim - inner) : &C;
  int sin[4] = {v[0].node, -1, -1, -1}, nsin = 1;
  int nin[4] = {v[0].node, -1, -1, -1}, nnin = 2;
  if (affine) {
    nin[nnin++] = lower_affine(lc, layer, "weight", pndim, pdims, call->loc);
    nin[nnin++] = lower_affine(lc, layer, "bias", pndim, pdims, call->loc);
  }
  if (kind == NORM_BATCH) {
    sin[nsin++] = lower_buffer(lc, layer, "running_mean", 1, &C, 0, 0, call->loc);
    sin[nsin++] = lower_buffer(lc, layer, "running_var", 1, &C, 1, 0, call->loc);
    sin[nsin++] = lower_buffer(lc, layer, "num_batches_tracked", 0, NULL, 0, 1, call->loc);
  }
  /* the statistics: [2, C] for the batch (mean row, rstd row), or [2, G] per sample */
  int stats = lower_node(lc, OP_NORM_STATS, sin, nsin, call->loc);
  nin[1] = stats;
  int id = lower_node(lc, OP_NORM, nin, nnin, call->loc);
  int ids[2] = {stats, id};
  for (int k = 0; k < 2; k++) {
    ir_node *n = ir_at(g, ids[k]);
    n->norm = (ir_norm_attr){.kind = kind, .groups = (int)G, .affine = affine, .eps = v[2].num,
                             .momentum = kind == NORM_BATCH ? v[1].num : 0,
                             .per = kind == NORM_LAYER ? (int)(ir_numel(&x) / G) : 0};
  }
  if (kind == NORM_BATCH) { /* made first: lower_node may move the nodes */
    int scratch = batch_scratch(g, lower_node(lc, OP_SCRATCH, NULL, 0, call->loc), C);
    ir_at(g, stats)->scratch = scratch;
  }
  ir_node *s = ir_at(g, stats);
  s->batched = kind != NORM_BATCH;
  s->ndim = 2;
  s->dims[0] = 2;
  s->dims[1] = kind == NORM_BATCH ? C : G;
  ir_copy_shape(ir_at(g, id), &x);
  return id;
}

/* ---- backward -------------------------------------------------------------- */

static void copy_attrs(ir_graph *g, int dst, const ir_node *src) { g->nodes[dst].norm = src->norm; }

void norm_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  int x = n.in[0], stats = n.in[1], batch = n.norm.kind == NORM_BATCH;
  int want_w = n.nin == 4 && ad_wants(ad, n.in[2]), want_b = n.nin == 4 && ad_wants(ad, n.in[3]);
  int want_x = ad_wants(ad, x);
  int sums = -1;
  if (want_w || want_b || (want_x && batch)) {
    int in[3] = {dy, x, stats};
    sums = ad_node(ad, OP_NORM_SUMS, in, 3, stats, -1);
    norm_geo q = geo_of(&g->nodes[x], &n);
    int scratch = batch ? batch_scratch(g, ad_node(ad, OP_SCRATCH, NULL, 0, stats, -1), q.K) : -1;
    ir_node *s = &g->nodes[sums];
    s->scratch = scratch;
    s->batched = 0;
    s->ndim = 2;
    s->dims[0] = batch ? 4 : 2; /* batch norm: this shard's sums, then the global batch's */
    s->dims[1] = q.K;
    copy_attrs(g, sums, &n);
  }
  if (want_b) {
    int in[1] = {sums};
    ad_accumulate(ad, n.in[3], ad_node(ad, OP_NORM_DB, in, 1, n.in[3], -1));
  }
  if (want_w) {
    int in[1] = {sums};
    ad_accumulate(ad, n.in[2], ad_node(ad, OP_NORM_DW, in, 1, n.in[2], -1));
  }
  if (want_x) {
    int in[5] = {dy, x, stats}, k = 3;
    if (n.nin == 4) in[k++] = n.in[2];
    if (batch) in[k++] = sums;
    int dx = ad_node(ad, OP_NORM_DX, in, k, x, -1);
    copy_attrs(g, dx, &n);
    ad_accumulate(ad, x, dx);
  }
}

/* ---- emission -------------------------------------------------------------- */

/* Sums in double over `count` values from base[idx]: straight expressions for
 * a single value, else dl_ops.h's lane kernels. */
static const char *sum_expr(char *buf, size_t len, const char *base, const char *idx,
                            int64_t count) {
  if (count == 1) snprintf(buf, len, "(double)%s[%s]", base, idx);
  else if (!strcmp(idx, "0")) snprintf(buf, len, "dl_sum_d(%s, %lld)", base, ll(count));
  else snprintf(buf, len, "dl_sum_d(%s + %s, %lld)", base, idx, ll(count));
  return buf;
}

/* sum (v - mean)^2 */
static const char *sq_dev_expr(char *buf, size_t len, const char *base, const char *idx,
                               const char *mean, int64_t count) {
  if (count == 1)
    snprintf(buf, len, "((double)%s[%s] - %s) * ((double)%s[%s] - %s)", base, idx, mean, base,
             idx, mean);
  else if (!strcmp(idx, "0"))
    snprintf(buf, len, "dl_sq_dev_d(%s, (dl_real)%s, %lld)", base, mean, ll(count));
  else snprintf(buf, len, "dl_sq_dev_d(%s + %s, (dl_real)%s, %lld)", base, idx, mean, ll(count));
  return buf;
}

/* sum dy (x - mean) */
static const char *dot_dev_expr(char *buf, size_t len, const char *idx, const char *mean,
                                int64_t count) {
  if (count == 1) snprintf(buf, len, "(double)dy[%s] * ((double)x[%s] - %s)", idx, idx, mean);
  else snprintf(buf, len, "dl_dot_dev_d(dy + %s, x + %s, %s, %lld)", idx, idx, mean, ll(count));
  return buf;
}

/* Where channel c's mean and rstd are in the statistics: st[c], st[K + c]
 * for the batch; for sample s, ss = st + s * 2G: ss[c / Kg], ss[G + c / Kg]. */
static void stat_index(const norm_geo *q, char *mean, char *rstd, size_t len) {
  if (q->kind == NORM_BATCH) {
    snprintf(mean, len, "st[c]");
    snprintf(rstd, len, "st[%lld + c]", ll(q->K));
  } else if (q->G == 1) {
    snprintf(mean, len, "ss[0]");
    snprintf(rstd, len, "ss[1]");
  } else if (q->Kg == 1) {
    snprintf(mean, len, "ss[c]");
    snprintf(rstd, len, "ss[%lld + c]", ll(q->G));
  } else {
    snprintf(mean, len, "ss[c / %lld]", ll(q->Kg));
    snprintf(rstd, len, "ss[%lld + c / %lld]", ll(q->G), ll(q->Kg));
  }
}

/* Where channel c of sample s starts. */
static const char *plane_index(char *buf, size_t len, const norm_geo *q) {
  if (q->S == 1) snprintf(buf, len, "(size_t)s * %lld + c", ll(q->K));
  else snprintf(buf, len, "((size_t)s * %lld + c) * %lld", ll(q->K), ll(q->S));
  return buf;
}

/* `static void NAME(void *arg, int64_t lo, int64_t hi)`, run through
 * dl_parallel_for by the layer's function, with ctx and n in scope. */
static void job_header(emit_ctx *ec, emit_text *o, const ir_node *n, const char *what, char *name,
                       size_t len) {
  emit_job_begin(ec, n, what, NULL, name, len);
  o->depth = 1; /* inside the function emit_job_begin opened */
}

/* Per-sample jobs: a sample's work is a constant. */
static void call_per_sample(emit_ctx *ec, const char *name, int64_t values) {
  char grain[32];
  snprintf(grain, sizeof grain, "%lld", ll(1 + DL_GRAIN_VALUES / values));
  emit_job_call(ec, name, "n", grain);
}

/* Per-channel jobs: a channel's work grows with the batch. */
static void call_per_channel(emit_ctx *ec, const char *name, const norm_geo *q) {
  char count[32], grain[96];
  snprintf(count, sizeof count, "%lld", ll(q->K));
  snprintf(grain, sizeof grain, "1 + %d / ((int64_t)n * %lld)", DL_GRAIN_VALUES, ll(q->S));
  emit_job_call(ec, name, count, grain);
}

/* The global batch's values per channel: the rows of every micro-shard
 * (DL_BATCH_ROWS) times the positions. */
static const char *batch_count(char *buf, size_t len, const norm_geo *q) {
  snprintf(buf, len, "(double)DL_BATCH_ROWS(ctx, n) * %lld", ll(q->S));
  return buf;
}

/* One pass of batch_norm's statistics over this shard's rows, one channel
 * per item, in double: pass 0 part[c] = sum x, pass 1 part[K + c] = sum
 * (x - mean)^2, mean = part[c] / count once part holds the global batch's
 * sums.  A dense layer's features (one position each) go row by row, a
 * block of channels at a time, so that the loads are contiguous and the
 * channel loop vectorises; each channel still adds its samples in
 * increasing order, the sums of the channel-by-channel loop, bit for bit. */
static void emit_bn_pass(emit_ctx *ec, const ir_node *n, const norm_geo *q, int pass, char *name,
                         size_t len) {
  emit_text o[1] = {{.f = ec->helpers}};
  char px[96], pp[96], count[96], idx[96], e[256];
  emit_ptr(ec, n->in[0], px, sizeof px);
  emit_ptr(ec, n->scratch, pp, sizeof pp);
  long long K = q->K;
  job_header(ec, o, n, pass ? "bn_sq" : "bn_sum", name, len);
  emit_line(o, "const dl_real *restrict x = %s;", px);
  emit_line(o, "double *restrict part = (double *)(%s);", pp);
  if (pass) emit_line(o, "const double count = %s;", batch_count(count, sizeof count, q));
  if (q->S == 1) {
    emit_line(o, "for (int64_t c0 = lo; c0 < hi; c0 += %d) {", NORM_CHANNEL_BLOCK);
    emit_line(o, "const int64_t c1 = c0 + %d < hi ? c0 + %d : hi;", NORM_CHANNEL_BLOCK, NORM_CHANNEL_BLOCK);
    emit_line(o, "double acc[%d] = {0};", NORM_CHANNEL_BLOCK);
    if (pass) {
      emit_line(o, "double mean[%d];", NORM_CHANNEL_BLOCK);
      emit_line(o, "for (int64_t c = c0; c < c1; c++) mean[c - c0] = part[c] / count;");
    }
    emit_line(o, "for (int s = 0; s < n; s++)");
    emit_line(o, "for (int64_t c = c0; c < c1; c++) {");
    if (pass) {
      emit_line(o, "const double d = (double)x[(size_t)s * %lld + c] - mean[c - c0];", K);
      emit_line(o, "acc[c - c0] += d * d;");
    } else {
      emit_line(o, "acc[c - c0] += (double)x[(size_t)s * %lld + c];", K);
    }
    emit_line(o, "}");
    if (pass) emit_line(o, "for (int64_t c = c0; c < c1; c++) part[%lld + c] = acc[c - c0];", K);
    else emit_line(o, "for (int64_t c = c0; c < c1; c++) part[c] = acc[c - c0];");
    emit_line(o, "}");
  } else {
    plane_index(idx, sizeof idx, q);
    emit_line(o, "for (int64_t c = lo; c < hi; c++) {");
    emit_line(o, "double acc = 0;");
    if (pass) {
      emit_line(o, "const double mean = part[c] / count;");
      emit_line(o, "for (int s = 0; s < n; s++) acc += %s;",
                sq_dev_expr(e, sizeof e, "x", idx, "mean", q->S));
      emit_line(o, "part[%lld + c] = acc;", K);
    } else {
      emit_line(o, "for (int s = 0; s < n; s++) acc += %s;", sum_expr(e, sizeof e, "x", idx, q->S));
      emit_line(o, "part[c] = acc;");
    }
    emit_line(o, "}");
  }
  emit_line(o, "}\n");
}

/* batch_norm's statistics: in training the batch's, per channel c over
 * the global batch and positions (every micro-shard's rows: DL_BATCH_SUM
 * adds the shards' sums, SyncBatchNorm's meaning), and a training step
 * moves the running statistics towards them; evaluation uses the running
 * ones. */
static void emit_batch_stats(emit_ctx *ec, const ir_node *n, const norm_geo *q) {
  char pst[96], prm[96], prv[96], pcount[96], pp[96], count[96];
  char sum_job[128], sq_job[128];
  emit_ptr(ec, n->id, pst, sizeof pst);
  emit_ptr(ec, n->in[1], prm, sizeof prm);
  emit_ptr(ec, n->in[2], prv, sizeof prv);
  emit_ptr(ec, n->in[3], pcount, sizeof pcount);
  emit_ptr(ec, n->scratch, pp, sizeof pp);
  long long K = q->K;
  emit_bn_pass(ec, n, q, 0, sum_job, sizeof sum_job);
  emit_bn_pass(ec, n, q, 1, sq_job, sizeof sq_job);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "/* %s: per channel over the batch and its %lld position%s, mean and\n"
               " * rstd = 1/sqrt(var + eps) (var biased); training moves the running\n"
               " * statistics towards them (momentum %g, var unbiased) */",
            n->name, ll(q->S), q->S == 1 ? "" : "s", q->momentum);
  emit_line(o, "if (ctx->train_mode) {");
  ec->depth++; /* emit_job_call's lines inside the braces (o counts its own) */
  emit_line(o, "double *part = (double *)(%s);", pp);
  emit_line(o, "const double count = %s;", batch_count(count, sizeof count, q));
  call_per_channel(ec, sum_job, q);
  emit_line(o, "DL_BATCH_SUM(ctx, part, %lld, 0);", K);
  call_per_channel(ec, sq_job, q);
  emit_line(o, "DL_BATCH_SUM(ctx, part + %lld, %lld, 0);", K, K);
  emit_line(o, "const int track = ctx->track_stats && count > 1;");
  emit_line(o, "dl_bn_stats(%s, %s, %s, part, %lld, count, %.17g, %.17g, track);", pst, prm, prv,
            K, q->momentum, q->eps);
  char *counter = emit_comment_text(ec->g->buffers[ec->g->nodes[n->in[3]].leaf.index].name);
  emit_line(o, "if (track) dl_count_add(%s, 1); /* %s += 1 */", pcount, counter);
  free(counter);
  ec->depth--;
  emit_line(o, "} else {");
  emit_line(o, "dl_bn_stats_running(%s, %s, %s, %lld, %.17g);", pst, prm, prv, K, q->eps);
  emit_line(o, "}");
}

/* The other norms' statistics, one sample per item. */
static void emit_sample_stats(emit_ctx *ec, const ir_node *n, const norm_geo *q) {
  emit_text o[1] = {{.f = ec->helpers}};
  char px[96], pst[96], name[128], e[256];
  emit_ptr(ec, n->in[0], px, sizeof px);
  emit_ptr(ec, n->id, pst, sizeof pst);
  long long G = q->G, M = q->M;
  emit_line(o, "/* %s: per sample and group of %lld channel%s (%lld values): mean and\n"
               " * rstd = 1/sqrt(var + eps), var biased */",
            n->name, ll(q->Kg), q->Kg == 1 ? "" : "s", M);
  job_header(ec, o, n, "norm_stats", name, sizeof name);
  emit_line(o, "const dl_real *restrict x = %s;", px);
  emit_line(o, "dl_real *restrict st = %s;", pst);
  emit_line(o, "for (int64_t s = lo; s < hi; s++)");
  emit_line(o, "for (int g = 0; g < %lld; g++) {", G);
  emit_line(o, "const dl_real *restrict v = x + (size_t)s * %lld + (size_t)g * %lld;",
            ll(q->K * q->S), M);
  emit_line(o, "const double mean = %s / %lld;", sum_expr(e, sizeof e, "v", "0", q->M), M);
  emit_line(o, "const double var = %s / %lld;",
            sq_dev_expr(e, sizeof e, "v", "0", "mean", q->M), M);
  emit_line(o, "st[(size_t)s * %lld + g] = (dl_real)mean;", 2 * G);
  emit_line(o, "st[(size_t)s * %lld + %lld + g] = (dl_real)(1 / sqrt(var + %.17g));",
            2 * G, G, q->eps);
  emit_line(o, "}");
  emit_line(o, "}\n");
  call_per_sample(ec, name, q->K * q->S);
}


/* "w[c]", or "w[c % P]" when the weights repeat (layer norm over the last dims) */
static const char *weight_at(const norm_geo *q, const char *w, char *buf, size_t len) {
  if (q->P < q->K) snprintf(buf, len, "%s[c %% %lld]", w, ll(q->P));
  else snprintf(buf, len, "%s[c]", w);
  return buf;
}

_Static_assert(OPF_OF_NORM & OPF_EPILOGUE_HOST, "norm applies its epilogue (ops.def)");

/* y = act((x - mean) * rstd * w + b), one sample per item. */
static void emit_apply(emit_ctx *ec, const ir_node *n, const norm_geo *q) {
  ir_graph *g = ec->g;
  const ir_node *act = n->epilogue >= 0 ? &g->nodes[n->epilogue] : NULL;
  emit_text o[1] = {{.f = ec->helpers}};
  char px[96], pst[96], py[96], pw[96], pb[96], name[128], mean[64], rstd[64], e[256];
  emit_ptr(ec, n->in[0], px, sizeof px);
  emit_ptr(ec, n->in[1], pst, sizeof pst);
  emit_ptr(ec, act ? act->id : n->id, py, sizeof py);
  stat_index(q, mean, rstd, sizeof mean);
  long long K = q->K, S = q->S, KS = K * S;
  emit_line(o, "/* %s: y = %s((x - mean) * rstd%s) */",
            n->name, act ? ir_op_name(act->op) : "", q->affine ? " * w + b" : "");
  job_header(ec, o, n, "norm", name, sizeof name);
  emit_line(o, "const dl_real *restrict x = %s, *restrict st = %s;", px, pst);
  if (q->affine) {
    emit_ptr(ec, n->in[2], pw, sizeof pw);
    emit_ptr(ec, n->in[3], pb, sizeof pb);
    emit_line(o, "const dl_real *restrict w = %s, *restrict b = %s;", pw, pb);
  }
  emit_line(o, "dl_real *restrict y = %s;", py);
  emit_line(o, "for (int64_t s = lo; s < hi; s++) {");
  emit_line(o, "const dl_real *restrict xs = x + s * %lld;", KS);
  emit_line(o, "dl_real *restrict ys = y + s * %lld;", KS);
  if (q->kind != NORM_BATCH) emit_line(o, "const dl_real *restrict ss = st + s * %lld;", 2 * ll(q->G));
  /* the p loop is the work (vectorised); unrolling c too only costs compile time */
  emit_line(o, "%sfor (int c = 0; c < %lld; c++) {", S > 1 ? "DL_NO_UNROLL " : "", K);
  char wc[64], bc[64];
  weight_at(q, "w", wc, sizeof wc);
  weight_at(q, "b", bc, sizeof bc);
  emit_line(o, "const dl_real mean = %s, a = %s%s%s;",
            mean, rstd, q->affine ? " * " : "", q->affine ? wc : "");
  emit_line(o, "for (int p = 0; p < %lld; p++) {", S);
  emit_line(o, "const dl_real v = (xs[c * %lld + p] - mean) * a%s%s;",
            S, q->affine ? " + " : "", q->affine ? bc : "");
  emit_line(o, "ys[c * %lld + p] = %s;", S, act ? activation_expr(act, "v", e, sizeof e) : "v");
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}\n");
  call_per_sample(ec, name, KS);
}

/* Where a channel's two sums go: sums[c] and sums[K + c]; batch norm's to
 * part in double first, to be added over the global batch (dl_bn_sums). */
static void emit_sums_store(emit_text *o, const norm_geo *q, const char *sdy, const char *sdx) {
  const char *to = q->kind == NORM_BATCH ? "part" : "sums", *cast = q->kind == NORM_BATCH ? "" : "(dl_real)";
  emit_line(o, "%s[c] = %s%s;", to, cast, sdy);
  emit_line(o, "%s[%lld + c] = %s%s;", to, ll(q->K), cast, sdx);
}

/* sums[c] = sum dy, sums[K + c] = sum dy xhat over the batch, one channel
 * per item; batch norm's are this shard's rows' sums, followed by the global
 * batch's, sums[2K + c] and sums[3K + c], which its dx reads. */
static void emit_sums(emit_ctx *ec, const ir_node *n, const norm_geo *q) {
  emit_text o[1] = {{.f = ec->helpers}};
  char pdy[96], px[96], pst[96], ps[96], pp[96], name[128], mean[64], rstd[64], e[256], idx[96];
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_ptr(ec, n->in[1], px, sizeof px);
  emit_ptr(ec, n->in[2], pst, sizeof pst);
  emit_ptr(ec, n->id, ps, sizeof ps);
  stat_index(q, mean, rstd, sizeof mean);
  long long K = q->K;
  emit_line(o, "/* %s backward: per channel c over the batch, sums[c] = sum dy and\n"
               " * sums[%lld + c] = sum dy * xhat, xhat = (x - mean) * rstd */",
            n->name, K);
  job_header(ec, o, n, "norm_sums", name, sizeof name);
  emit_line(o, "const dl_real *restrict dy = %s, *restrict x = %s, *restrict st = %s;",
            pdy, px, pst);
  if (q->kind == NORM_BATCH) emit_line(o, "double *restrict part = (double *)(%s);",
                                      emit_ptr(ec, n->scratch, pp, sizeof pp));
  else emit_line(o, "dl_real *restrict sums = %s;", ps);
  if (q->S == 1) {
    /* one value per channel and sample: a block of channels at a time,
     * the samples' rows read contiguously (the same sums, in the same order) */
    emit_line(o, "for (int64_t c0 = lo; c0 < hi; c0 += %d) {", NORM_CHANNEL_BLOCK);
    emit_line(o, "const int64_t c1 = c0 + %d < hi ? c0 + %d : hi;", NORM_CHANNEL_BLOCK, NORM_CHANNEL_BLOCK);
    emit_line(o, "double sdy[%d] = {0}, sdx[%d] = {0};", NORM_CHANNEL_BLOCK, NORM_CHANNEL_BLOCK);
    emit_line(o, "for (int s = 0; s < n; s++) {");
    emit_line(o, "const dl_real *restrict dys = dy + (size_t)s * %lld, *restrict xs = x + (size_t)s * %lld;",
              K, K);
    if (q->kind != NORM_BATCH) emit_line(o, "const dl_real *restrict ss = st + (size_t)s * %lld;", 2 * ll(q->G));
    emit_line(o, "for (int64_t c = c0; c < c1; c++) {");
    emit_line(o, "const dl_real mean = %s, rstd = %s;", mean, rstd);
    emit_line(o, "sdy[c - c0] += (double)dys[c];");
    emit_line(o, "sdx[c - c0] += rstd * ((double)dys[c] * ((double)xs[c] - mean));");
    emit_line(o, "}");
    emit_line(o, "}");
    emit_line(o, "for (int64_t c = c0; c < c1; c++) {");
    emit_sums_store(o, q, "sdy[c - c0]", "sdx[c - c0]");
    emit_line(o, "}");
    emit_line(o, "}");
  } else {
    emit_line(o, "for (int64_t c = lo; c < hi; c++) {");
    emit_line(o, "double sdy = 0, sdx = 0;");
    emit_line(o, "for (int s = 0; s < n; s++) {");
    emit_line(o, "const size_t o = %s;", plane_index(idx, sizeof idx, q));
    if (q->kind != NORM_BATCH) emit_line(o, "const dl_real *restrict ss = st + (size_t)s * %lld;", 2 * ll(q->G));
    emit_line(o, "const dl_real mean = %s, rstd = %s;", mean, rstd);
    emit_line(o, "sdy += %s;", sum_expr(e, sizeof e, "dy", "o", q->S));
    emit_line(o, "sdx += rstd * %s;", dot_dev_expr(e, sizeof e, "o", "mean", q->S));
    emit_line(o, "}");
    emit_sums_store(o, q, "sdy", "sdx");
    emit_line(o, "}");
  }
  emit_line(o, "}\n");
  call_per_channel(ec, name, q);
  if (q->kind != NORM_BATCH) return;
  emit_text t[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(t, "dl_bn_sums(ctx, %s, (double *)(%s), %lld); /* and over the global batch */", ps, pp, K);
}


/* batch_norm's dx, one channel per item: the batch's statistics depend on
 * every sample, so the sums over the batch come first (norm_sums). */
static void emit_batch_dx(emit_ctx *ec, const ir_node *n, const norm_geo *q) {
  emit_text o[1] = {{.f = ec->helpers}};
  char pdy[96], px[96], pst[96], pw[96], ps[96], pdx[96], name[128], idx[96];
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_ptr(ec, n->in[1], px, sizeof px);
  emit_ptr(ec, n->in[2], pst, sizeof pst);
  emit_ptr(ec, n->in[n->nin - 1], ps, sizeof ps);
  emit_ptr(ec, n->id, pdx, sizeof pdx);
  long long K = q->K, S = q->S;
  emit_line(o, "/* %s backward: dx = w rstd (dy - (sum dy + xhat sum dy xhat) / count) over\n"
               " * channel c in training; in evaluation the statistics are constants: dx = w rstd dy */",
            n->name);
  job_header(ec, o, n, "bn_dx", name, sizeof name);
  emit_line(o, "const dl_real *restrict dy = %s, *restrict x = %s, *restrict st = %s;",
            pdy, px, pst);
  emit_line(o, "const dl_real *restrict sums = %s;", ps);
  if (q->affine) {
    emit_ptr(ec, n->in[3], pw, sizeof pw);
    emit_line(o, "const dl_real *restrict w = %s;", pw);
  }
  emit_line(o, "dl_real *restrict dx = %s;", pdx);
  emit_line(o, "const dl_real count = (dl_real)DL_BATCH_ROWS(ctx, n) * %lld;", S);
  if (S == 1) { /* a dense layer's features: row by row, the channel loop vectorises */
    emit_line(o, "const int train = ctx->train_mode;");
    emit_line(o, "for (int s = 0; s < n; s++)");
    emit_line(o, "for (int64_t c = lo; c < hi; c++) {");
    emit_line(o, "const dl_real mean = st[c], rstd = st[%lld + c], wr = %srstd;",
              K, q->affine ? "w[c] * " : "");
    emit_line(o, "const dl_real mdy = sums[%lld + c] / count, mdx = sums[%lld + c] / count;", 2 * K, 3 * K);
    emit_line(o, "const size_t o = (size_t)s * %lld + c;", K);
    emit_line(o, "const dl_real xhat = (x[o] - mean) * rstd;");
    emit_line(o, "dx[o] = train ? wr * (dy[o] - mdy - xhat * mdx) : wr * dy[o];");
    emit_line(o, "}");
    emit_line(o, "}\n");
    call_per_channel(ec, name, q);
    return;
  }
  emit_line(o, "for (int64_t c = lo; c < hi; c++) {");
  emit_line(o, "const dl_real mean = st[c], rstd = st[%lld + c], wr = %srstd;",
            K, q->affine ? "w[c] * " : "");
  emit_line(o, "const dl_real mdy = sums[%lld + c] / count, mdx = sums[%lld + c] / count;", 2 * K, 3 * K);
  emit_line(o, "const int train = ctx->train_mode;");
  emit_line(o, "for (int s = 0; s < n; s++) {");
  emit_line(o, "const size_t o = %s;", plane_index(idx, sizeof idx, q));
  emit_line(o, "for (int p = 0; p < %lld; p++) {", S);
  emit_line(o, "const dl_real xhat = (x[o + p] - mean) * rstd;");
  emit_line(o, "dx[o + p] = train ? wr * (dy[o + p] - mdy - xhat * mdx) : wr * dy[o + p];");
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}\n");
  call_per_channel(ec, name, q);
}

/* The per-sample norms' dx, one sample per item: each group's two sums,
 * then its dx. */
static void emit_sample_dx(emit_ctx *ec, const ir_node *n, const norm_geo *q) {
  emit_text o[1] = {{.f = ec->helpers}};
  char pdy[96], px[96], pst[96], pw[96], pdx[96], name[128], e[256], idx[96];
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_ptr(ec, n->in[1], px, sizeof px);
  emit_ptr(ec, n->in[2], pst, sizeof pst);
  emit_ptr(ec, n->id, pdx, sizeof pdx);
  long long S = q->S, G = q->G, Kg = q->Kg;
  char wbuf[64];
  const char *wc = q->affine ? weight_at(q, "w", wbuf, sizeof wbuf) : "1";
  emit_line(o, "/* %s backward, per sample and group of %lld channel%s (M = %lld values):\n"
               " * dx = rstd (w dy - sum(w dy) / M - xhat sum(w dy xhat) / M) */",
            n->name, Kg, Kg == 1 ? "" : "s", ll(q->M));
  job_header(ec, o, n, "norm_dx", name, sizeof name);
  emit_line(o, "const dl_real *restrict dy = %s, *restrict x = %s, *restrict st = %s;",
            pdy, px, pst);
  if (q->affine) {
    emit_ptr(ec, n->in[3], pw, sizeof pw);
    emit_line(o, "const dl_real *restrict w = %s;", pw);
  }
  emit_line(o, "dl_real *restrict dx = %s;", pdx);
  emit_line(o, "for (int64_t s = lo; s < hi; s++)");
  emit_line(o, "for (int g = 0; g < %lld; g++) {", G);
  emit_line(o, "const dl_real mean = st[(size_t)s * %lld + g], rstd = st[(size_t)s * %lld + %lld + g];",
            2 * G, 2 * G, G);
  emit_line(o, "double sg = 0, sgx = 0;");
  emit_line(o, "for (int c = g * %lld; c < (g + 1) * %lld; c++) {", Kg, Kg);
  emit_line(o, "const size_t o = %s;", plane_index(idx, sizeof idx, q));
  char wd[80];
  wd[0] = 0;
  if (q->affine) snprintf(wd, sizeof wd, "(double)%s * ", wc);
  emit_line(o, "sg += %s%s;", wd, sum_expr(e, sizeof e, "dy", "o", q->S));
  emit_line(o, "sgx += %s%s;", wd, dot_dev_expr(e, sizeof e, "o", "mean", q->S));
  emit_line(o, "}");
  emit_line(o, "const dl_real mg = (dl_real)(sg / %lld), mgx = (dl_real)(sgx * rstd / %lld);",
            ll(q->M), ll(q->M));
  emit_line(o, "for (int c = g * %lld; c < (g + 1) * %lld; c++) {", Kg, Kg);
  emit_line(o, "const size_t o = %s;", plane_index(idx, sizeof idx, q));
  emit_line(o, "const dl_real wc = %s;", wc);
  emit_line(o, "for (int p = 0; p < %lld; p++) {", S);
  emit_line(o, "const dl_real xhat = (x[o + p] - mean) * rstd;");
  emit_line(o, "dx[o + p] = rstd * (wc * dy[o + p] - mg - xhat * mgx);");
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}\n");
  call_per_sample(ec, name, q->K * q->S);
}

/* dw and db: rows 1 and 0 of the sums over the batch. */
static void emit_param_grad(emit_ctx *ec, const ir_node *n) {
  char ps[96], pout[96];
  emit_ptr(ec, n->in[0], ps, sizeof ps);
  emit_ptr(ec, n->id, pout, sizeof pout);
  long long P = ir_numel(n), K = ec->g->nodes[n->in[0]].dims[1]; /* sums: [2 or 4, K] */
  int dw = n->op == OP_NORM_DW;
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "/* %s = sum over the batch of %s */",
            dw ? "dw" : "db", dw ? "dy * xhat" : "dy");
  if (P == K) {
    emit_line(o, "memcpy(%s, %s + %lld, %lld * sizeof(dl_real));", pout, ps, dw ? K : 0, K);
    return;
  }
  /* the weights repeat every P channels (layer norm over the last dims) */
  emit_line(o, "for (int j = 0; j < %lld; j++) {", P);
  emit_line(o, "double sum = 0;");
  emit_line(o, "DL_NO_UNROLL for (int r = 0; r < %lld; r++) sum += %s[%lld + r * %lld + j];",
            K / P, ps, dw ? K : 0, P);
  emit_line(o, "%s[j] = (dl_real)sum;", pout);
  emit_line(o, "}");
}

void norm_emit(emit_ctx *ec, const ir_node *n) {
  if (n->op == OP_NORM_DW || n->op == OP_NORM_DB) {
    emit_param_grad(ec, n);
    return;
  }
  const ir_node *x = &ec->g->nodes[n->in[n->op == OP_NORM || n->op == OP_NORM_STATS ? 0 : 1]];
  norm_geo q = geo_of(x, n);
  int batch = q.kind == NORM_BATCH;
  switch (n->op) {
  case OP_NORM_STATS: batch ? emit_batch_stats(ec, n, &q) : emit_sample_stats(ec, n, &q); break;
  case OP_NORM: emit_apply(ec, n, &q); break;
  case OP_NORM_SUMS: emit_sums(ec, n, &q); break;
  default: batch ? emit_batch_dx(ec, n, &q) : emit_sample_dx(ec, n, &q); break;
  }
}

/* ---- ONNX ------------------------------------------------------------------- */

/* Batch norm in evaluation is BatchNormalization on the running statistics
 * (scale 1 and shift 0 without affine).  The others normalise G groups of
 * M consecutive values of each sample: Reshape to [batch, G, M],
 * InstanceNormalization (scale 1, shift 0: G "channels" over M values),
 * Reshape back, then the affine scale and shift, broadcast (a channel's as
 * [C, 1, ...]; layer norm's have the normalised trailing dims' shape).
 * LayerNormalization is opset 17 but not in every runtime, nor group norm's
 * GroupNormalization (opset 18); this form also covers layer norm's dims.
 * norm_stats declares nothing: norm reads its inputs. */
void norm_onnx(onnx_ctx *oc, const ir_node *n) {
  if (n->op != OP_NORM) return;
  const ir_graph *g = onnx_graph(oc);
  const ir_node *x = &g->nodes[n->in[0]], *stats = &g->nodes[n->in[1]];
  norm_geo q = geo_of(x, n);
  const char *xv = onnx_value(oc, n->in[0]);
  if (q.kind == NORM_BATCH) {
    int64_t C = q.K;
    const char *in[5] = {xv, q.affine ? onnx_value(oc, n->in[2]) : onnx_fill(oc, 1, &C, 1),
                         q.affine ? onnx_value(oc, n->in[3]) : onnx_fill(oc, 1, &C, 0),
                         onnx_value(oc, stats->in[1]), onnx_value(oc, stats->in[2])};
    onnx_attr_float(oc, "epsilon", q.eps);
    onnx_node(oc, n, "BatchNormalization", NULL, 5, in);
    return;
  }
  int64_t grouped[3] = {-1, q.G, (q.K / q.G) * q.S}, G = q.G;
  const char *r = onnx_binary(oc, n, "Reshape", onnx_temp(oc, n), xv, onnx_ints(oc, 3, grouped));
  const char *in[3] = {r, onnx_fill(oc, 1, &G, 1), onnx_fill(oc, 1, &G, 0)};
  onnx_attr_float(oc, "epsilon", q.eps);
  const char *y = onnx_node(oc, n, "InstanceNormalization", onnx_temp(oc, n), 3, in);
  int64_t shape[IR_MAX_DIMS + 1] = {-1};
  for (int d = 0; d < n->ndim; d++) shape[d + 1] = n->dims[d];
  y = onnx_binary(oc, n, "Reshape", q.affine ? onnx_temp(oc, n) : NULL, y,
                  onnx_ints(oc, n->ndim + 1, shape));
  if (!q.affine) return;
  /* a channel's scale as [C, 1, ...]; layer norm's repeated over the
   * positions it does not normalise, as OpenCV 4.6 broadcasts a constant
   * only from axis 1 */
  int64_t shape_w[IR_MAX_DIMS] = {q.K};
  for (int d = 1; d < n->ndim; d++) shape_w[d] = q.kind == NORM_LAYER ? n->dims[d] : 1;
  if (q.kind == NORM_LAYER) shape_w[0] = n->dims[0];
  const char *w = onnx_reshaped(oc, n->in[2], n->ndim, shape_w);
  const char *b = onnx_reshaped(oc, n->in[3], n->ndim, shape_w);
  y = onnx_binary(oc, n, "Mul", onnx_temp(oc, n), y, w);
  onnx_binary(oc, n, "Add", NULL, y, b);
}
