/* loss.c: mse, mae, binary_cross_entropy, bce_with_logits, cross_entropy
 * (softmax fused in) and the L1/L2 penalties, with PyTorch's definitions
 * (mean reduction).  The math lives in runtime/dl_ops.h next to each
 * loss's gradient; here are the shape rules, backward rules and calls. */
#include "ops.h"
#include "emit_text.h"
#include <string.h>
#include "../../runtime/dl_model.h"

static ir_op loss_op(const char *name) {
  if (!strcmp(name, "mse")) return OP_MSE;
  if (!strcmp(name, "mae")) return OP_MAE;
  if (!strcmp(name, "binary_cross_entropy")) return OP_BCE;
  if (!strcmp(name, "bce_with_logits")) return OP_BCE_LOGITS;
  return OP_CROSS_ENTROPY;
}

static int check_target(lower_ctx *lc, const ast_expr *call, ir_op op, const arg_val *v) {
  ir_graph *g = lc->g;
  ir_node *p = ir_at(g, v[0].node), *t = ir_at(g, v[1].node);
  char sp[96], st[96];
  if (!p->batched || p->ndim == 0) {
    diag_error(v[0].loc, "%s() needs per-sample predictions, not %s", call->str,
               p->batched ? "a class label" : "a scalar");
    return -1;
  }
  if (p->needs_label) {
    diag_error(v[0].loc, "the prediction of %s() must not depend on the label", call->str);
    return -1;
  }
  int is_class = v[1].node == g->label && g->label_is_class;
  if (op == OP_CROSS_ENTROPY) {
    if (!is_class) {
      diag_error(v[1].loc, "cross_entropy() needs the class label (label y : class[N]) as its "
                           "target; this is %s", ir_shape_str(t, st, sizeof st));
      return -1;
    }
    /* logits [..., N] for a label class[..., N]: one distribution per position */
    int fits = p->ndim == t->ndim + 1 && p->dims[t->ndim] == g->label_classes;
    for (int d = 0; fits && d < t->ndim; d++) fits = p->dims[d] == t->dims[d];
    if (!fits) {
      char want[96];
      int k = 0;
      for (int d = 0; d < t->ndim; d++) k += snprintf(want + k, sizeof want - k, "%lld, ", (long long)t->dims[d]);
      snprintf(want + k, sizeof want - k, "%lld", (long long)g->label_classes);
      diag_error(v[0].loc, "cross_entropy() needs logits of shape [batch, %s] for label class[%s]; these are %s",
                 want, want, ir_shape_str(p, sp, sizeof sp));
      return -1;
    }
    return 0;
  }
  if (is_class) {
    diag_error(v[1].loc, "%s() needs a real-valued target; the label is class[%lld] (use cross_entropy)",
               call->str, (long long)g->label_classes);
    return -1;
  }
  int same = p->batched == t->batched && p->ndim == t->ndim;
  for (int d = 0; same && d < p->ndim; d++) same = p->dims[d] == t->dims[d];
  if (!same) {
    diag_error(call->loc, "%s() needs prediction and target of one shape: %s and %s", call->str,
               ir_shape_str(p, sp, sizeof sp), ir_shape_str(t, st, sizeof st));
    return -1;
  }
  return 0;
}

/* cross_entropy(softmax(z), y) and bce_with_logits(sigmoid(z), y) apply the
 * squashing twice: the model trains, silently, to a poor accuracy. */
static void lint_squashed_logits(lower_ctx *lc, const ast_expr *call, ir_op op, const arg_val *logits) {
  ir_op squash = op == OP_CROSS_ENTROPY ? OP_SOFTMAX : op == OP_BCE_LOGITS ? OP_SIGMOID : OP_COUNT;
  if (squash == OP_COUNT || lc->g->nodes[logits->node].op != squash) return;
  int soft = squash == OP_SOFTMAX;
  diag_lint(LINT_SOFTMAX_LOSS, logits->loc,
            "%s() applies %s itself: give it the logits, not %s(...) of them%s", call->str,
            soft ? "log-softmax" : "the sigmoid", soft ? "softmax" : "sigmoid",
            soft ? "" : " (or use binary_cross_entropy on probabilities)");
}

/* mse(pred, target) mae(pred, target) binary_cross_entropy(prob, target)
 * bce_with_logits(logits, target) cross_entropy(logits, target) -> scalar;
 * the first argument is named for what each loss expects. */
int lower_loss(lower_ctx *lc, const ast_expr *call) {
  ir_op op = loss_op(call->str);
  const char *first = op == OP_BCE ? "prob" : op == OP_BCE_LOGITS || op == OP_CROSS_ENTROPY ? "logits" : "pred";
  const arg_spec spec[] = {{first, ARG_TENSOR, 1, 0}, {"target", ARG_TARGET, 1, 0}};
  arg_val v[2];
  if (lower_bind_args(lc, call, spec, 2, v) || check_target(lc, call, op, v)) return -1;
  lint_squashed_logits(lc, call, op, &v[0]);
  int in[2] = {v[0].node, v[1].node};
  int id = lower_node(lc, op, in, 2, call->loc);
  ir_graph *g = lc->g;
  if (g->pred < 0) {
    /* the first loss names the prediction head that eval and predict read */
    g->pred = v[0].node;
    g->pred_kind = op == OP_CROSS_ENTROPY ? DL_PRED_ARGMAX
                   : (op == OP_BCE || op == OP_BCE_LOGITS) ? DL_PRED_BINARY
                                                            : DL_PRED_VALUES;
    g->nodes[id].loss.names_pred = 1;
  }
  return id;
}

enum { MAX_PENALTY_NAME = 256 }; /* longer than any binding's name (lower.c) */

/* loss + l1 sum|W| + l2 sum W^2 for every weight with a penalty (of
 * update `upd`, or every one: -1): the total that training differentiates.
 * Biases are not penalised.  *group: the penalties' group, made once. */
static int add_penalties(lower_ctx *lc, int loss, int upd, int *group) {
  ir_graph *g = lc->g;
  int total = loss;
  for (int p = 0; p < g->nparams; p++) {
    ir_param *pp = &g->params[p];
    double l1 = pp->l1 + (pp->is_weight ? g->train.l1 : 0);
    double l2 = pp->l2 + (pp->is_weight ? g->train.l2 : 0);
    if (l1 == 0 && l2 == 0) continue;
    if (upd >= 0 && pp->update != upd) continue;
    if (*group < 0) {
      /* its C function is forward_NAME, as a binding's: not a binding's name */
      char name[MAX_PENALTY_NAME];
      snprintf(name, sizeof name, "penalties");
      for (size_t k = strlen(name); lower_is_binding_name(lc, name) && k + 1 < sizeof name; k++)
        name[k] = '_', name[k + 1] = 0;
      *group = g->penalty_group =
          ir_add_group(g, name, g->nodes[g->loss].loc.line, "L1/L2 penalties");
    }
    int pen = ir_add(g, OP_PENALTY, &pp->node, 1, *group, g->nodes[pp->node].loc);
    g->nodes[pen].loss.l1 = l1;
    g->nodes[pen].loss.l2 = l2;
    g->nodes[pen].name = pp->name;
    int in[2] = {total, pen};
    total = ir_add(g, OP_ADD, in, 2, *group, g->nodes[pen].loc);
    g->nodes[total].name = "loss";
  }
  return total;
}

/* The total loss of the model, or of each of the train block's updates
 * (penalties only on the parameters it trains). */
void lower_add_penalties(lower_ctx *lc) {
  ir_graph *g = lc->g;
  int group = -1;
  g->total_loss = g->loss;
  if (g->loss < 0) return;
  if (!g->nupdates) {
    g->total_loss = add_penalties(lc, g->loss, -1, &group);
    return;
  }
  for (int k = 0; k < g->nupdates; k++)
    g->updates[k].total_loss = add_penalties(lc, g->updates[k].loss, k, &group);
  g->total_loss = g->updates[0].total_loss;
}

void loss_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  if (n.op == OP_PENALTY) {
    int in[2] = {dy, n.in[0]};
    int d = ad_node(ad, OP_PENALTY_GRAD, in, 2, n.in[0], -1);
    g->nodes[d].loss = n.loss;
    ad_accumulate(ad, n.in[0], d);
    return;
  }
  int in[3] = {dy, n.in[0], n.in[1]};
  for (int k = 0; k < 2; k++) {
    if (!ad_wants(ad, n.in[k])) continue;
    int d = ad_node(ad, k ? OP_LOSS_GRAD_TARGET : OP_LOSS_GRAD, in, 3, n.in[k], -1);
    g->nodes[d].loss.loss = n.op;
    ad_accumulate(ad, n.in[k], d);
  }
}

/* The runtime kernels (dl_ops.h) of each elementwise loss: the loss, and its
 * gradient with respect to the prediction and to the target.  Full names, so
 * grep finds every caller.  (Cross entropy takes class labels: its own calls.) */
typedef struct loss_kernels {
  const char *loss, *grad, *grad_target;
} loss_kernels;
static const loss_kernels elementwise_loss[OP_COUNT] = {
  [OP_MSE] = {"dl_mse", "dl_mse_grad", "dl_mse_grad_target"},
  [OP_MAE] = {"dl_mae", "dl_mae_grad", "dl_mae_grad_target"},
  [OP_BCE] = {"dl_bce", "dl_bce_grad", "dl_bce_grad_target"},
  [OP_BCE_LOGITS] = {"dl_bce_logits", "dl_bce_logits_grad", "dl_bce_logits_grad_target"},
};

/* elements of a node as a C expression (n rows at run time if batched) */
static const char *count_expr(const ir_node *n, char *buf, size_t len) {
  char rows[64];
  emit_rows(n, rows, sizeof rows);
  snprintf(buf, len, "(size_t)(%s) * %lld", rows, ll(ir_last_dim(n)));
  return buf;
}

void loss_emit(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char py[96], pp[96], pt[96], cnt[96];
  emit_ptr(ec, n->id, py, sizeof py);
  emit_ptr(ec, n->in[0], pp, sizeof pp);
  const ir_node *pred = &ec->g->nodes[n->in[0]];
  if (n->op == OP_PENALTY) {
    emit_line(o, "/* %g * sum|W| + %g * sum W^2 */", n->loss.l1, n->loss.l2);
    emit_line(o, "%s[0] = dl_penalty(%s, %lld, %.17g, %.17g);", py, pp, ll(ir_numel(pred)),
              n->loss.l1, n->loss.l2);
    return;
  }
  emit_ptr(ec, n->in[1], pt, sizeof pt);
  if (n->op == OP_CROSS_ENTROPY) {
    char rows[64];
    emit_rows(pred, rows, sizeof rows);
    emit_line(o, "/* mean over rows of logsumexp(z) - z[label] */");
    emit_line(o, "%s[0] = (dl_real)dl_cross_entropy(ctx->pool, %s, %s, %s, %lld);", py, pp, pt, rows,
              ll(ir_last_dim(pred)));
    return;
  }
  emit_line(o, "%s[0] = (dl_real)%s(%s, %s, %s);", py, elementwise_loss[n->op].loss, pp, pt,
            count_expr(pred, cnt, sizeof cnt));
}

void loss_grad_emit(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char pd[96], ps[96], pp[96], pt[96], cnt[96];
  emit_ptr(ec, n->id, pd, sizeof pd);
  emit_ptr(ec, n->in[0], ps, sizeof ps);
  emit_ptr(ec, n->in[1], pp, sizeof pp);
  if (n->op == OP_PENALTY_GRAD) {
    emit_line(o, "/* dW = ds * (%g * sign(W) + 2 * %g * W) */", n->loss.l1, n->loss.l2);
    emit_line(o, "dl_penalty_grad(%s[0], %s, %s, %lld, %.17g, %.17g);", ps, pp, pd,
              ll(ir_numel(n)), n->loss.l1, n->loss.l2);
    return;
  }
  emit_ptr(ec, n->in[2], pt, sizeof pt);
  const ir_node *pred = &ec->g->nodes[n->in[1]];
  ir_op op = n->loss.loss;
  if (op == OP_CROSS_ENTROPY) {
    char rows[64];
    emit_rows(pred, rows, sizeof rows);
    emit_line(o, "/* dz = ds * (softmax(z) - onehot(label)) / rows */");
    emit_line(o, "dl_cross_entropy_grad(ctx->pool, %s[0], %s, %s, %s, %s, %lld);", ps, pp, pt, pd, rows,
              ll(ir_last_dim(pred)));
    return;
  }
  const loss_kernels *k = &elementwise_loss[op];
  const char *fn = n->op == OP_LOSS_GRAD_TARGET ? k->grad_target : k->grad;
  emit_line(o, "%s(%s[0], %s, %s, %s, %s);", fn, ps, pp, pt, pd, count_expr(pred, cnt, sizeof cnt));
}
