/* emit_c.c: writes NAME.c (the kernels and the model descriptor), NAME.h
 * (the API to embed the model) and NAME_main.c (the trainer's main) from the
 * planned IR.  It sees only the IR, never the AST.  Every layer (source
 * binding) becomes one forward and one backward function whose comment
 * quotes its .dln line; every shape in them is a constant except the batch
 * rows n, chosen at run time.  Every line goes through emit_line
 * (emit_text.h). */
#include "emit.h"
#include "emit_api.h"
#include "emit_text.h"
#include "onnx_api.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "../../runtime/dl_model.h"

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* "d0, d1, ..." of a shape; a scalar's is "0" when zero is set (a
 * tensor_desc's dims, where empty braces are not C11). */
static const char *dims_list(const int64_t *dims, int ndim, int zero, char *buf, size_t len) {
  size_t at = 0;
  buf[0] = 0;
  for (int d = 0; d < ndim && at < len; d++)
    at += (size_t)snprintf(buf + at, len - at, "%s%lld", d ? ", " : "", ll(dims[d]));
  if (ndim == 0 && zero) snprintf(buf, len, "0");
  return buf;
}

/* ---- per-layer functions ---------------------------------------------------- */

/* Whether node id of group grp is emitted in the group's forward or
 * backward function (with updates, update ec->update's backward function). */
static int emitted_in(const emit_ctx *ec, const ir_node *n, int backward) {
  if (backward && ec->g->nupdates && n->update != ec->update) return 0;
  return n->backward == backward && n->fused_in < 0 && op_info_of(n->op)->emit;
}

static int group_has(const emit_ctx *ec, int grp, int backward) {
  for (int id = ec->group_first[grp]; id >= 0; id = ec->group_next[id])
    if (emitted_in(ec, &ec->g->nodes[id], backward)) return 1;
  return 0;
}

/* "backward", or with updates "backward_uK": update K's backward function
 * of a line is backward_uK_LINE (a group's name is an identifier, which
 * cannot start with a digit, so no two names meet). */
static const char *backward_prefix(const emit_ctx *ec, char *buf, size_t len) {
  if (!ec->g->nupdates) snprintf(buf, len, "backward");
  else snprintf(buf, len, "backward_u%d", ec->update);
  return buf;
}

/* The first loss names what predict returns; bce_with_logits returns sigmoid(z). */
static int pred_is_logit(const ir_graph *g) {
  for (int id = 0; id < g->nnodes; id++)
    if (ir_is_loss(g->nodes[id].op) && g->nodes[id].loss.names_pred) return g->nodes[id].op == OP_BCE_LOGITS;
  return 0;
}

/* Whether the first loss scores the prediction against the model's label:
 * only then does an accuracy mean something (not for an autoencoder's
 * reconstruction of its input). */
static int pred_scored(const ir_graph *g) {
  for (int id = 0; id < g->nnodes; id++)
    if (ir_is_loss(g->nodes[id].op) && g->nodes[id].loss.names_pred)
      return g->label >= 0 && g->nodes[id].in[1] == g->label;
  return 0;
}

static void emit_pred_copy(emit_ctx *ec) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char p[96], rows[64];
  const ir_node *n = &ec->g->nodes[ec->g->pred];
  emit_ptr(ec, n->id, p, sizeof p);
  emit_rows(n, rows, sizeof rows);
  emit_line(o, "/* the prediction head%s */", pred_is_logit(ec->g) ? ", as probabilities" : "");
  if (pred_is_logit(ec->g))
    emit_line(o, "for (size_t k = 0; k < (size_t)(%s) * %lld; k++) ctx->out[k] = dl_sigmoid(%s[k]);",
              rows, ll(ir_last_dim(n)), p);
  else
    emit_line(o, "memcpy(ctx->out, %s, (size_t)(%s) * %lld * sizeof(dl_real));", p, rows,
              ll(ir_last_dim(n)));
}

/* dense, conv_out and norm compute the activation that follows them (fuse.c). */
static int has_fused_act(const ir_node *n) {
  return ir_op_has(n->op, OPF_EPILOGUE_HOST) && n->epilogue >= 0;
}

static void emit_node(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  char shape[96];
  emit_line(o, "/* %s: %s%s -> %s */", n->name ? n->name : "", ir_op_name(n->op),
            n->op == OP_DENSE && n->epilogue >= 0 ? " + bias + activation" : "",
            ir_shape_str(n, shape, sizeof shape));
  op_info_of(n->op)->emit(ec, n);
}

/* A node that reads the labels runs only when the caller has them (not in
 * predict): its kernel is emitted inside `if (with_labels)`, one level
 * deeper (every kernel starts at ec->depth). */
static void emit_guarded(emit_ctx *ec, const ir_node *n) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "if (with_labels) {");
  ec->depth = o->depth;
  emit_node(ec, n);
  ec->depth--;
  emit_line(o, "}");
}

static void emit_group_nodes(emit_ctx *ec, int grp, int backward) {
  ir_graph *g = ec->g;
  for (int id = ec->group_first[grp]; id >= 0; id = ec->group_next[id]) {
    const ir_node *n = &g->nodes[id];
    if (!emitted_in(ec, n, backward)) continue;
    if (!backward && n->needs_label) emit_guarded(ec, n);
    else emit_node(ec, n);
    int computes_pred = id == g->pred || (has_fused_act(n) && n->epilogue == g->pred);
    if (!backward && computes_pred) emit_pred_copy(ec);
  }
}

/* The function for one .dln line, forward or backward.  Its body is
 * buffered so that helper functions its kernels ask for (ec->helpers) come
 * out before it. */
static void emit_group(emit_ctx *ec, int grp, int backward) {
  const ir_group *gr = &ec->g->groups[grp];
  emit_text o[1] = {{.f = ec->out}};
  char *body = NULL, *helpers = NULL;
  size_t body_len = 0, helpers_len = 0;
  FILE *bm = open_memstream(&body, &body_len);
  FILE *hm = open_memstream(&helpers, &helpers_len);
  if (!bm || !hm) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  ec->out = bm;
  ec->helpers = hm;
  emit_group_nodes(ec, grp, backward);
  fclose(hm);
  fclose(bm);
  ec->out = o->f;
  ec->helpers = NULL;
  char *file = emit_comment_text(base_name(ec->g->source_path));
  char *text = emit_comment_text(gr->text);
  char prefix[32], what[160];
  if (backward && ec->g->nupdates)
    snprintf(what, sizeof what, "backward of update %d ('%s'): gradients of this line's inputs and "
             "parameters", ec->update, ec->g->updates[ec->update].name);
  emit_line(o, "/* %s:%d: %s\n * %s */", file, gr->line, text,
            !backward ? "forward"
            : ec->g->nupdates ? what
                              : "backward: gradients of this line's inputs and parameters");
  free(file);
  free(text);
  fputs(helpers, o->f); /* whole functions, written by emit_line */
  emit_line(o, "%s void %s_%s(dl_ctx *ctx, int n, int with_labels) {", backward ? "static" : "DL_SPLIT",
            backward ? backward_prefix(ec, prefix, sizeof prefix) : "forward", gr->name);
  emit_line(o, "(void)ctx;");
  emit_line(o, "(void)n;");
  emit_line(o, "(void)with_labels;");
  fputs(body, o->f); /* the kernels, at depth 1 */
  emit_line(o, "}\n");
  free(helpers);
  free(body);
}

/* Update k's forward calls: the lines schedule.c has it compute. */
static void emit_update_forward(emit_ctx *ec, int k, int with_penalties, const char *labels) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out, .depth = 1}};
  for (int grp = 0; grp < g->ngroups; grp++)
    if (g->updates[k].runs[grp] && (with_penalties || grp != g->penalty_group) &&
        group_has(ec, grp, 0))
      emit_line(o, "forward_%s(ctx, n, %s);", g->groups[grp].name, labels);
}

/* With updates: per update compute_grads_uK (its forward, reusing what an
 * earlier update of the batch computed and did not change, then its
 * backward), loss_only_uK (every update's forward up to K: it starts from
 * nothing) and loss_uK (its data loss after forward); forward() runs every
 * update's forward lines, then those no loss needs. */
static void emit_update_grads(emit_ctx *ec) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  char total[96], prefix[32];
  for (int k = 0; k < g->nupdates; k++) {
    const ir_update *u = &g->updates[k];
    char *name = emit_comment_text(u->name), *lname = emit_comment_text(u->loss_name);
    emit_ptr(ec, u->total_loss, total, sizeof total);
    emit_line(o, "/* Update %d, '%s' (.dln line %d): the gradients of '%s' (with penalties) for "
                 "its parameters.\n * Lines computed by an earlier update of this batch and "
                 "not changed since are reused. */", k, name, u->line, lname);
    emit_line(o, "DL_SPLIT double compute_grads_u%d(dl_ctx *ctx, int n) {", k);
    emit_update_forward(ec, k, 1, "1");
    ec->update = k;
    for (int grp = g->ngroups - 1; grp >= 0; grp--)
      if (group_has(ec, grp, 1))
        emit_line(o, "%s_%s(ctx, n, 1);", backward_prefix(ec, prefix, sizeof prefix),
                  g->groups[grp].name);
    emit_line(o, "return (double)%s[0];", total);
    emit_line(o, "}\n");
    free(name);
    free(lname);
  }
}

static void emit_update_drivers(emit_ctx *ec) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  char loss[96], total[96];
  for (int k = 0; k < g->nupdates; k++) {
    const ir_update *u = &g->updates[k];
    char *lname = emit_comment_text(u->loss_name);
    emit_ptr(ec, u->loss, loss, sizeof loss);
    emit_ptr(ec, u->total_loss, total, sizeof total);
    emit_line(o, "/* '%s' with penalties, forward only, from scratch: for gradient checks. */", lname);
    emit_line(o, "static double loss_only_u%d(dl_ctx *ctx, int n) {", k);
    for (int j = 0; j <= k; j++) emit_update_forward(ec, j, 1, "1");
    emit_line(o, "return (double)%s[0];", total);
    emit_line(o, "}\n");
    emit_line(o, "/* '%s' as forward() left it. */", lname);
    emit_line(o, "static double loss_u%d(dl_ctx *ctx) {", k);
    emit_line(o, "return (double)%s[0];", loss);
    emit_line(o, "}\n");
    free(lname);
  }
  emit_ptr(ec, g->loss, loss, sizeof loss);
  emit_line(o, "/* Inference, or evaluation when with_loss: fills ctx->out, returns the first "
               "update's data loss\n * (loss_uK reads each after it). */");
  emit_line(o, "static double forward(dl_ctx *ctx, int n, int with_loss) {");
  for (int k = 0; k < g->nupdates; k++) emit_update_forward(ec, k, 0, "with_loss");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (g->tail_runs[grp] && group_has(ec, grp, 0))
      emit_line(o, "forward_%s(ctx, n, with_loss);", g->groups[grp].name);
  emit_line(o, "return with_loss ? (double)%s[0] : 0.0;", loss);
  emit_line(o, "}\n");
}

/* 1 + the group whose backward function computes parameter p's final
 * gradient, which compute_grads then announces (DL_GRADS_READY), so that a
 * data-parallel trainer can start sending it; 0 with updates. */
static int grad_ready(const ir_graph *g, int p) {
  int n = g->params[p].grad;
  return g->nupdates || n < 0 ? 0 : g->nodes[n].group + 1;
}

/* compute_grads (or each update's): the layers in order and back. */
static void emit_grads(emit_ctx *ec) {
  if (ec->g->nupdates) {
    emit_update_grads(ec);
    return;
  }
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  char total[96];
  emit_ptr(ec, g->total_loss, total, sizeof total);
  emit_line(o, "/* Forward and backward over the batch: every gradient, no update. */");
  emit_line(o, "DL_SPLIT double compute_grads(dl_ctx *ctx, int n) {");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (g->loss_runs[grp] && group_has(ec, grp, 0))
      emit_line(o, "forward_%s(ctx, n, 1);", g->groups[grp].name);
  char *ready = calloc((size_t)g->ngroups + 1, 1); /* [1 + grp]: a gradient is final there */
  for (int p = 0; ready && p < g->nparams; p++) ready[grad_ready(g, p)] = 1;
  for (int grp = g->ngroups - 1; grp >= 0; grp--) {
    if (!group_has(ec, grp, 1)) continue;
    emit_line(o, "backward_%s(ctx, n, 1);", g->groups[grp].name);
    if (!ready || ready[grp + 1]) emit_line(o, "DL_GRADS_READY(ctx, %d);", grp + 1);
  }
  free(ready);
  emit_line(o, "return (double)%s[0];", total);
  emit_line(o, "}\n");
}

/* forward, loss_only: the layers in order. */
static void emit_drivers(emit_ctx *ec) {
  if (ec->g->nupdates) {
    emit_update_drivers(ec);
    return;
  }
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  char loss[96], total[96];
  emit_ptr(ec, g->loss, loss, sizeof loss);
  emit_ptr(ec, g->total_loss, total, sizeof total);

  emit_line(o, "/* Inference, or evaluation when with_loss: fills ctx->out, returns the data loss. */");
  emit_line(o, "static double forward(dl_ctx *ctx, int n, int with_loss) {");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (g->loss_runs[grp] && grp != g->penalty_group && group_has(ec, grp, 0))
      emit_line(o, "forward_%s(ctx, n, with_loss);", g->groups[grp].name);
  emit_line(o, "return with_loss ? (double)%s[0] : 0.0;", loss);
  emit_line(o, "}\n");

  emit_line(o, "/* The differentiated loss (data loss + penalties), forward only. */");
  emit_line(o, "static double loss_only(dl_ctx *ctx, int n) {");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (g->loss_runs[grp] && group_has(ec, grp, 0))
      emit_line(o, "forward_%s(ctx, n, 1);", g->groups[grp].name);
  emit_line(o, "return (double)%s[0];", total);
  emit_line(o, "}\n");
}

/* The generator (BIN sample): the forward functions of the lines `sample`
 * depends on, in order, then its rows copied out.  Those lines read no
 * input and no label (lowering checked that `sample` depends on neither,
 * and a line's nodes are all ancestors of its value), so nothing else runs. */
static void emit_generator(emit_ctx *ec) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  char *mark = calloc((size_t)g->nnodes, 1), *grp_used = calloc((size_t)g->ngroups + 1, 1);
  if (!mark || !grp_used) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  mark[g->sample] = 1;
  for (int id = g->sample; id >= 0; id--) {
    if (!mark[id]) continue;
    /* a block's weights belong to its first application's line: not a reason to run it */
    if (!ir_op_has(g->nodes[id].op, OPF_LEAF)) grp_used[g->nodes[id].group] = 1;
    for (int k = 0; k < g->nodes[id].nin; k++) mark[g->nodes[id].in[k]] = 1;
  }
  const ir_node *n = &g->nodes[g->sample];
  char p[96];
  emit_ptr(ec, g->sample, p, sizeof p);
  emit_line(o, "/* The generator: the lines `sample` depends on (noise and parameters), then its rows. */");
  emit_line(o, "static void generate(dl_ctx *ctx, int n, dl_real *dst) {");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (grp_used[grp] && grp != g->penalty_group && group_has(ec, grp, 0))
      emit_line(o, "forward_%s(ctx, n, 0);", g->groups[grp].name);
  emit_line(o, "memcpy(dst, %s, (size_t)n * %lld * sizeof(dl_real));", p, ll(ir_numel(n)));
  emit_line(o, "}\n");
  free(mark);
  free(grp_used);
}

/* ---- the descriptor ---------------------------------------------------------- */

static int param_init(const ir_graph *g, const ir_param *p) {
  /* constants are what a layer asked for (a norm's scale and shift), never a user's choice */
  if (p->init == DL_INIT_ZERO || p->init == DL_INIT_ONE || p->init == DL_INIT_ROW_NORM ||
      p->init == DL_INIT_NORMAL)
    return p->init;
  int init = p->init == INIT_DEFAULT ? g->train.init : p->init;
  if (p->is_weight) return init;
  return init == DL_INIT_TORCH_DEFAULT ? DL_INIT_TORCH_DEFAULT : DL_INIT_ZERO;
}

static const char *init_enum(int k) {
  static const char *const names[] = {
    "DL_INIT_ZERO", "DL_INIT_ONE", "DL_INIT_HE_NORMAL", "DL_INIT_HE_UNIFORM",
    "DL_INIT_XAVIER_NORMAL", "DL_INIT_XAVIER_UNIFORM", "DL_INIT_TORCH_DEFAULT",
    "DL_INIT_ROW_NORM", "DL_INIT_UNIT_NORMAL", "DL_INIT_NORMAL",
  };
  return names[k];
}

static void emit_tensor(emit_text *o, const ir_param *p, const char *suffix, const char *kind,
                        size_t offset, const char *init, double init_value) {
  char name[512], dims[IR_MAX_DIMS * 24];
  snprintf(name, sizeof name, "%s%s", p->name, suffix);
  char *lit = emit_cstr(name);
  /* init_src: a parameter's index is its index in the table (parameters come first) */
  int src = !strcmp(kind, "DL_T_PARAM") && p->init == DL_INIT_ROW_NORM ? p->init_src : -1;
  emit_line(o, "{%s, %s, %d, {%s}, %zu, %lld, %s, %lld, %lld, %.17g, %d, %d},", lit, kind, p->ndim,
            dims_list(p->dims, p->ndim, 1, dims, sizeof dims), offset, ll(p->numel), init,
            ll(p->fan_in), ll(p->fan_out), init_value, p->line, src);
  free(lit);
}

/* A buffer: its constant start is init_value (a count starts at 0), or a
 * random unit vector (DL_INIT_UNIT_NORMAL). */
static void emit_buffer(emit_text *o, const ir_buffer *b) {
  char dims[IR_MAX_DIMS * 24];
  char *lit = emit_cstr(b->name);
  emit_line(o, "{%s, %s, %d, {%s}, %zu, %lld, %s, 0, 0, %.17g, %d, -1},", lit,
            b->is_count ? "DL_T_COUNT" : "DL_T_BUFFER", b->ndim,
            dims_list(b->dims, b->ndim, 1, dims, sizeof dims), b->offset, ll(b->numel),
            init_enum(b->init_kind), b->init, b->line);
  free(lit);
}

static int emit_tensors(emit_ctx *ec) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  const ir_optim *op = &g->train.optim;
  int count = 0;
  char suffix[64];
  emit_line(o, "/* Everything in the state block: parameters, gradients, optimiser state, buffers. */");
  emit_line(o, "static const dl_tensor_desc tensors[] = {");
  for (int p = 0; p < g->nparams; p++, count++)
    emit_tensor(o, &g->params[p], "", "DL_T_PARAM", g->params[p].offset,
                init_enum(param_init(g, &g->params[p])), 0);
  for (int p = 0; p < g->nparams; p++, count++)
    emit_tensor(o, &g->params[p], ".grad", "DL_T_GRAD", g->params[p].grad_offset, "DL_INIT_ZERO", 0);
  /* without updates every parameter has the optimiser's state; with them,
     each has its update's optimiser's (in memplan.c's order) */
  for (int k = 0; k < (g->nupdates ? g->nupdates : 1); k++) {
    if (g->nupdates) op = &g->updates[k].optim;
    for (int s = 0; s < op->nstate; s++)
      for (int p = 0; p < g->nparams; p++) {
        if (g->nupdates && g->params[p].update != k) continue;
        snprintf(suffix, sizeof suffix, ".%s", op->state[s].name);
        ir_param sp = g->params[p];
        if (op->state[s].scalar) sp.ndim = 0, sp.numel = 1; /* one number per parameter */
        emit_tensor(o, &sp, suffix, "DL_T_OPT", sp.opt_offset[s], "DL_INIT_ZERO", op->state[s].init);
        count++;
      }
  }
  for (int b = 0; b < g->nbuffers; b++, count++) emit_buffer(o, &g->buffers[b]);
  emit_line(o, "};\n");
  if (g->nupdates || !g->nparams) return count;
  emit_line(o, "/* Each gradient's DL_GRADS_READY in compute_grads (dl_model_desc). */");
  emit_line(o, "static const int grad_ready[] = {");
  for (int p = 0; p < g->nparams; p++) emit_line(o, "%d,", grad_ready(g, p));
  emit_line(o, "};\n");
  return count;
}

static void emit_data_spec(emit_text *o, const char *field, const ir_data *d) {
  static const char *const kinds[] = {"DL_DATA_NONE", "DL_DATA_IDX", "DL_DATA_CSV", "DL_DATA_TEXT"};
  char *path0 = emit_cstr(d->path[0]), *path1 = emit_cstr(d->path[1]);
  emit_line(o, ".%s = {%s, {%s, %s}, %.17g, %d, %d, %.17g, %.17g},", field, kinds[d->kind], path0,
            path1, d->kind ? d->scale : 1.0, d->header, d->line, d->from, d->to);
  free(path0);
  free(path1);
}

/* The updates' table: names, learning rates and entry points. */
static void emit_update_table(emit_ctx *ec) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  for (int k = 0; k < g->nupdates; k++) {
    char list[4096];
    size_t at = 0;
    int count = 0;
    list[0] = 0;
    emit_line(o, "/* update %d's parameters: their indexes in the tensor table */", k);
    emit_line(o, "static const int params_u%d[] = {", k);
    for (int p = 0; p < g->nparams; p++) {
      if (g->params[p].update != k) continue;
      at += (size_t)snprintf(list + at, sizeof list - at, "%s%d", count % 16 ? ", " : "", p);
      if (++count % 16 == 0 || at + 32 > sizeof list) {
        emit_line(o, "%s,", list);
        at = 0;
        list[0] = 0;
      }
    }
    if (at) emit_line(o, "%s,", list);
    emit_line(o, "};");
  }
  emit_line(o, "/* The train block's updates, run in this order on every batch. */");
  emit_line(o, "static const dl_update_desc updates[] = {");
  for (int k = 0; k < g->nupdates; k++) {
    char *name = emit_cstr(g->updates[k].name), *loss = emit_cstr(g->updates[k].loss_name);
    int count = 0;
    for (int p = 0; p < g->nparams; p++) count += g->params[p].update == k;
    emit_line(o, "{%s, %s, %.17g, compute_grads_u%d, apply_update_u%d, loss_only_u%d, loss_u%d, "
                 "%d, params_u%d},", name, loss, g->updates[k].optim.lr, k, k, k, k, count, k);
    free(name);
    free(loss);
  }
  emit_line(o, "};\n");
}

static void emit_desc(emit_ctx *ec, int ntensors) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  if (g->nupdates) emit_update_table(ec);
  const ir_node *x = &g->nodes[g->input], *pred = &g->nodes[g->pred];
  const ir_train *t = &g->train;
  static const char *const preds[] = {"DL_PRED_ARGMAX", "DL_PRED_BINARY", "DL_PRED_VALUES"};
  static const char *const scheds[] = {"DL_SCHED_CONSTANT", "DL_SCHED_STEP",
                                       "DL_SCHED_EXPONENTIAL", "DL_SCHED_COSINE",
                                       "DL_SCHED_ONE_CYCLE", "DL_SCHED_PLATEAU"};
  int64_t ysize = g->label < 0 ? 0 : g->label_is_class ? g->label_classes : ir_numel(&g->nodes[g->label]);
  char dims[IR_MAX_DIMS * 24];
  char *name = emit_cstr(g->model_name), *source = emit_cstr(g->source_path);
  char *data_dir = emit_cstr(t->data_dir ? t->data_dir : g->source_dir);
  emit_line(o, "const dl_model_desc %s_desc = {", g->model_name);
  emit_line(o, ".name = %s,", name);
  emit_line(o, ".source = %s,", source);
  emit_line(o, ".x_ndim = %d,", x->ndim);
  emit_line(o, ".x_shape = {%s},", dims_list(x->dims, x->ndim, 0, dims, sizeof dims));
  emit_line(o, ".x_size = %lld,", ll(ir_numel(x)));
  emit_line(o, ".y_kind = %s,", g->label < 0 ? "DL_Y_NONE" : g->label_is_class ? "DL_Y_CLASS" : "DL_Y_REAL");
  emit_line(o, ".y_size = %lld,", ll(ysize));
  if (g->input_vocab) emit_line(o, ".x_vocab = %lld,", ll(g->input_vocab));
  for (int id = 0; id < g->nnodes; id++)
    if (ir_op_has(g->nodes[id].op, OPF_PERSISTENT)) {
      emit_line(o, ".stateful = 1,");
      break;
    }
  if (g->label >= 0 && g->label_is_class) emit_line(o, ".y_len = %lld,", ll(ir_numel(&g->nodes[g->label])));
  emit_line(o, ".pred_kind = %s,", preds[g->pred_kind]);
  if (g->pred_kind != DL_PRED_VALUES && !pred_scored(g)) emit_line(o, ".no_acc = 1,");
  emit_line(o, ".out_size = %lld,", ll(ir_numel(pred)));
  emit_line(o, ".state_elems = %zu,", g->state_elems);
  emit_line(o, ".act_elems_per_sample = ACT_PER_SAMPLE,");
  emit_line(o, ".act_elems_fixed = %zu,", g->act_fixed);
  emit_line(o, ".n_tensors = %d,", ntensors);
  emit_line(o, ".tensors = tensors,");
  emit_line(o, ".defaults = {");
  emit_line(o, ".batch = %d,", t->batch);
  emit_line(o, ".epochs = %d,", t->epochs);
  emit_line(o, ".lr = %.17g,", t->optim.lr);
  emit_line(o, ".seed = %lluu,", ull(t->seed));
  emit_line(o, ".schedule = {%s, %d, %.17g, %d, %.17g, %lld},", scheds[t->sched_kind],
            t->sched_step_size, t->sched_gamma, t->sched_t_max, t->sched_eta_min, ll(t->warmup));
  emit_line(o, ".clip_norm = %.17g,", t->clip);
  emit_line(o, ".data_dir = %s,", data_dir);
  emit_data_spec(o, "train", &t->train);
  emit_data_spec(o, "test", &t->test);
  /* only when set: models without them generate the same C as before */
  if (t->validation > 0) emit_line(o, ".validation = %.17g,", t->validation);
  if (t->val.kind) emit_data_spec(o, "val_data", &t->val);
  if (t->early_stop) emit_line(o, ".early_stop = \"%s\",", t->early_stop);
  if (t->patience) emit_line(o, ".patience = %d,", t->patience);
  if (t->min_delta > 0) emit_line(o, ".min_delta = %.17g,", t->min_delta);
  if (t->sched_per_step || t->sched_kind >= DL_SCHED_ONE_CYCLE)
    emit_line(o, ".sched_steps = {%d, %.17g, %.17g, %.17g, %.17g, %.17g, %.17g, %.17g, %d, \"%s\"},",
              t->sched_per_step, t->sched_max_lr, t->sched_pct_start, t->sched_div,
              t->sched_final_div, t->plateau_factor, t->plateau_min_lr, t->plateau_threshold,
              t->plateau_patience, t->plateau_metric ? t->plateau_metric : "");
  emit_line(o, "},");
  if (g->nupdates) {
    /* a runtime that knows no updates trains the first one */
    emit_line(o, ".compute_grads = compute_grads_u0,");
    emit_line(o, ".apply_update = apply_update_u0,");
    emit_line(o, ".forward = forward,");
    emit_line(o, ".loss_only = loss_only_u0,");
    emit_line(o, ".n_updates = %d,", g->nupdates);
    emit_line(o, ".updates = updates,");
  } else {
    emit_line(o, ".compute_grads = compute_grads,");
    if (g->nparams) emit_line(o, ".grad_ready = grad_ready,");
    emit_line(o, ".apply_update = apply_update,");
    emit_line(o, ".forward = forward,");
    emit_line(o, ".loss_only = loss_only,");
  }
  if (g->sample >= 0) {
    const ir_node *smp = &g->nodes[g->sample];
    emit_line(o, ".generate = generate,");
    emit_line(o, ".sample_ndim = %d,", smp->ndim);
    emit_line(o, ".sample_shape = {%s},", dims_list(smp->dims, smp->ndim, 0, dims, sizeof dims));
    emit_line(o, ".sample_size = %lld,", ll(ir_numel(smp)));
  }
  emit_line(o, ".onnx = &onnx_graph,");
  emit_line(o, "};\n");
  free(name);
  free(source);
  free(data_dir);
}

/* ---- the embedding API ---------------------------------------------------------- */

static void emit_api_impl(emit_ctx *ec) {
  const char *m = ec->g->model_name;
  emit_text o[1] = {{.f = ec->out}};
  emit_line(o, "/* ---- the embedding API (%s.h) ---- */\n", m);
  emit_line(o, "struct %s_model {", m);
  emit_line(o, "dl_ctx *ctx;");
  emit_line(o, "};\n");
  emit_line(o, "%s_model *%s_new(int max_batch, char *err, size_t errlen) {", m, m);
  emit_line(o, "%s_model *m = calloc(1, sizeof *m);", m);
  emit_line(o, "if (!m) {");
  emit_line(o, "snprintf(err, errlen, \"out of memory\");");
  emit_line(o, "return NULL;");
  emit_line(o, "}");
  emit_line(o, "m->ctx = dl_ctx_new(&%s_desc, max_batch > 0 ? max_batch : 1, err, errlen);", m);
  emit_line(o, "if (!m->ctx) {");
  emit_line(o, "free(m);");
  emit_line(o, "return NULL;");
  emit_line(o, "}");
  emit_line(o, "dl_ctx_init_params(m->ctx, %s_desc.defaults.seed);", m);
  emit_line(o, "return m;");
  emit_line(o, "}\n");
  emit_line(o, "int %s_load(%s_model *m, const char *checkpoint, char *err, size_t errlen) {", m, m);
  emit_line(o, "int64_t epoch;");
  emit_line(o, "return dl_ctx_load(m->ctx, checkpoint, 1, &epoch, err, errlen);");
  emit_line(o, "}\n");
  emit_line(o, "int %s_predict(%s_model *m, const dl_real *x, int n, dl_real *out) {", m, m);
  emit_line(o, "if (n < 0 || n > m->ctx->capacity) return -1;");
  emit_line(o, "memcpy(m->ctx->x, x, (size_t)n * %lld * sizeof(dl_real));",
            ll(ir_numel(&ec->g->nodes[ec->g->input])));
  emit_line(o, "m->ctx->train_mode = 0;");
  emit_line(o, "forward(m->ctx, n, 0);");
  emit_line(o, "memcpy(out, m->ctx->out, (size_t)n * %lld * sizeof(dl_real));",
            ll(ir_numel(&ec->g->nodes[ec->g->pred])));
  emit_line(o, "return 0;");
  emit_line(o, "}\n");
  emit_line(o, "void %s_free(%s_model *m) {", m, m);
  emit_line(o, "if (!m) return;");
  emit_line(o, "dl_ctx_free(m->ctx);");
  emit_line(o, "free(m);");
  emit_line(o, "}");
}

static void emit_header(const ir_graph *g, FILE *f) {
  emit_text o[1] = {{.f = f}};
  const char *m = g->model_name;
  char upper[512];
  size_t k = 0;
  for (const char *s = m; *s && k + 1 < sizeof upper; s++)
    upper[k++] = (char)toupper((unsigned char)*s);
  upper[k] = 0;
  const ir_node *x = &g->nodes[g->input], *pred = &g->nodes[g->pred];
  static const char *const what[] = {"logits (class = argmax)", "probabilities",
                                     "predicted values"};
  char *file = emit_comment_text(base_name(g->source_path));
  emit_line(o, "/* %s.h: generated by dlnc from %s. The API to embed model '%s' in C.\n"
               " * Link with the dlnc runtime (the .c files in runtime/, -lpng -lz -lm -lpthread). */",
            m, file, m);
  free(file);
  /* a guard no system or runtime header uses (a model may be named zlib or
   * kernels); the runtime's header with <>: only NAME.h is in the generated
   * directory's "..." search path (-iquote) */
  emit_line(o, "#ifndef DLNC_MODEL_%s_H", upper);
  emit_line(o, "#define DLNC_MODEL_%s_H", upper);
  emit_line(o, "#include <stddef.h>");
  emit_line(o, "#include <dl_model.h>\n");
  emit_line(o, "enum { %s_INPUT_SIZE = %lld, %s_OUTPUT_SIZE = %lld };\n", upper, ll(ir_numel(x)),
            upper, ll(ir_numel(pred)));
  emit_line(o, "extern const dl_model_desc %s_desc;\n", m);
  emit_line(o, "typedef struct %s_model %s_model;\n", m, m);
  emit_line(o, "/* A model that predicts up to max_batch rows per call; NULL and a message on failure. */");
  emit_line(o, "%s_model *%s_new(int max_batch, char *err, size_t errlen);", m, m);
  emit_line(o, "/* Loads weights from a checkpoint written by the trainer (safetensors). 0 or -1. */");
  emit_line(o, "int %s_load(%s_model *m, const char *checkpoint, char *err, size_t errlen);", m, m);
  emit_line(o, "/* x: n rows of %s_INPUT_SIZE inputs (scaled as the training data was);\n"
               " * out: n rows of %s_OUTPUT_SIZE %s.  0, or -1 if n > max_batch. */",
            upper, upper, what[g->pred_kind]);
  emit_line(o, "int %s_predict(%s_model *m, const dl_real *x, int n, dl_real *out);", m, m);
  emit_line(o, "void %s_free(%s_model *m);\n", m, m);
  emit_line(o, "#endif");
}

static void emit_source(emit_ctx *ec) {
  ir_graph *g = ec->g;
  emit_text o[1] = {{.f = ec->out}};
  char *file = emit_comment_text(base_name(g->source_path));
  emit_line(o, "/* %s.c: generated by dlnc from %s. Do not edit; edit the .dln.\n"
               " * Model '%s': %d parameter tensors, %zu state elements, %zu activation\n"
               " * elements per sample in one planned arena.  n is the number of rows in\n"
               " * the batch (at most ctx->capacity); every other size is a constant. */",
            g->model_name, file, g->model_name, g->nparams, g->state_elems, g->act_per_sample);
  free(file);
  emit_line(o, "#include <math.h>");
  emit_line(o, "#include <stdio.h>");
  emit_line(o, "#include <stdlib.h>");
  emit_line(o, "#include <string.h>");
  emit_line(o, "#include <dl_ops.h>");
  emit_line(o, "#include <kernels.h>");
  emit_line(o, "#include \"%s.h\"\n", g->model_name);
  emit_line(o, "enum { ACT_PER_SAMPLE = %zu };", g->act_per_sample);
  emit_line(o, "#define ST(off) (ctx->state + (off))");
  emit_line(o, "#define ACT(off) (ctx->act + (size_t)(off) * (size_t)ctx->capacity)");
  emit_line(o, "#define FIX(off) (ctx->act + (size_t)ACT_PER_SAMPLE * (size_t)ctx->capacity + (off))\n");
  /* DL_NOINLINE: a line's forward function is called by forward(),
   * loss_only() and generate() once a step each; inlined into every caller
   * it was optimised and compiled again for each (a tenth of fashion_gan's
   * first half) for no speed */
  emit_line(o, "/* `dlnc build` compiles this file twice at once: -DDL_PART=1 is the forward\n"
               " * pass, -DDL_PART=2 the backward pass, and the rest (drivers, optimiser,\n"
               " * tables) goes with the shorter of the two.  Without DL_PART, all of it.\n"
               " * DL_SPLIT functions are not inlined: each runs once a step, and its\n"
               " * callers need not compile it again. */");
  emit_line(o, "#ifndef DL_PART\n#define DL_PART 0\n#define DL_SPLIT static DL_NOINLINE\n#else");
  emit_line(o, "#define DL_SPLIT __attribute__((visibility(\"hidden\"))) DL_NOINLINE\n#endif\n");
  emit_line(o, "#if DL_PART != 2");
  long forward_at = ftell(ec->out);
  for (int grp = 0; grp < g->ngroups; grp++)
    if (group_has(ec, grp, 0)) emit_group(ec, grp, 0);
  long forward_len = ftell(ec->out) - forward_at;
  emit_line(o, "#else");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (group_has(ec, grp, 0))
      emit_line(o, "DL_SPLIT void forward_%s(dl_ctx *ctx, int n, int with_labels);", g->groups[grp].name);
  emit_line(o, "#endif\n\n#if DL_PART != 1");
  long backward_at = ftell(ec->out);
  for (int k = 0; k < (g->nupdates ? g->nupdates : 1); k++) {
    ec->update = k;
    for (int grp = g->ngroups - 1; grp >= 0; grp--)
      if (group_has(ec, grp, 1)) emit_group(ec, grp, 1);
  }
  emit_grads(ec);
  long backward_len = ftell(ec->out) - backward_at;
  emit_line(o, "#else");
  if (!g->nupdates) emit_line(o, "DL_SPLIT double compute_grads(dl_ctx *ctx, int n);");
  for (int k = 0; k < g->nupdates; k++)
    emit_line(o, "DL_SPLIT double compute_grads_u%d(dl_ctx *ctx, int n);", k);
  /* The two halves compile at once on two cores, so the build waits for the
   * longer: the rest joins the half with less text (a GAN's forward pass,
   * its batch norms, outweighs its backward pass; a transformer's backward
   * pass its forward one).  The rest reaches the other half's functions
   * through the DL_SPLIT declarations above. */
  emit_line(o, "#endif\n\n#if DL_PART != %d", backward_len < forward_len ? 1 : 2);
  emit_drivers(ec);
  if (ec->g->sample >= 0) emit_generator(ec);
  optim_emit_update(ec);
  int ntensors = emit_tensors(ec);
  emit_onnx(g, o);
  emit_desc(ec, ntensors);
  emit_api_impl(ec);
  emit_line(o, "#endif");
}

/* NAME_main.c: the standalone trainer is the runtime's, on this model. */
static void emit_main(const ir_graph *g, FILE *f) {
  emit_text o[1] = {{.f = f}};
  char *file = emit_comment_text(base_name(g->source_path));
  emit_line(o, "/* %s_main.c: generated by dlnc from %s: the standalone trainer. */", g->model_name,
            file);
  free(file);
  emit_line(o, "#include \"%s.h\"\n", g->model_name);
  emit_line(o, "int main(int argc, char **argv) {");
  emit_line(o, "return dl_trainer_main(&%s_desc, argc, argv);", g->model_name);
  emit_line(o, "}");
}

static FILE *open_out(const char *dir, const char *name, const char *suffix, char *path, size_t len) {
  snprintf(path, len, "%s/%s%s", dir, name, suffix);
  FILE *f = fopen(path, "w");
  if (!f) fprintf(stderr, "dlnc: error: cannot write %s: %s\n", path, strerror(errno));
  return f;
}

static int close_out(FILE *f, const char *path) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    fprintf(stderr, "dlnc: error: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* The indexes that keep emission linear in the graph's size: each node's
 * buffer (the end of its alias chain) and each group's nodes in order. */
static int index_graph(emit_ctx *ec) {
  const ir_graph *g = ec->g;
  int *root = malloc((size_t)g->nnodes * sizeof *root);
  int *next = malloc((size_t)g->nnodes * sizeof *next);
  int *first = malloc((size_t)(g->ngroups ? g->ngroups : 1) * sizeof *first);
  int *last = malloc((size_t)(g->ngroups ? g->ngroups : 1) * sizeof *last);
  if (!root || !next || !first || !last) {
    free(root), free(next), free(first), free(last);
    fputs("dlnc: out of memory\n", stderr);
    return -1;
  }
  for (int grp = 0; grp < g->ngroups; grp++) first[grp] = last[grp] = -1;
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = &g->nodes[id];
    root[id] = n->storage == STORE_ALIAS ? root[n->alias_of] : id; /* alias_of < id */
    next[id] = -1;
    if (last[n->group] < 0) first[n->group] = id;
    else next[last[n->group]] = id;
    last[n->group] = id;
  }
  free(last);
  ec->root = root;
  ec->group_first = first;
  ec->group_next = next;
  return 0;
}

int emit_c(ir_graph *g, const char *dir, int f64) {
  char path[4096];
  emit_ctx ec = {.g = g, .f64 = f64, .depth = 1};
  int rc = 0;
  if (index_graph(&ec)) return -1;
  ec.out = open_out(dir, g->model_name, ".c", path, sizeof path);
  if (ec.out) {
    emit_source(&ec);
    rc |= close_out(ec.out, path);
  }
  free(ec.root);
  free(ec.group_first);
  free(ec.group_next);
  if (!ec.out) return -1;
  FILE *h = open_out(dir, g->model_name, ".h", path, sizeof path);
  if (!h) return -1;
  emit_header(g, h);
  rc |= close_out(h, path);
  FILE *m = open_out(dir, g->model_name, "_main.c", path, sizeof path);
  if (!m) return -1;
  emit_main(g, m);
  rc |= close_out(m, path);
  return rc;
}
