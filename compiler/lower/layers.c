/* layers.c: what every layer with weights is lowered with: its name, its
 * parameters ("NAME.weight", "NAME.bias") and buffers ("NAME.running_mean"),
 * each with its OP_PARAM or OP_BUFFER node, and its init argument.  Shared by
 * the op families (dense, conv, norm, recurrent, ...), which call it one way. */
#include "lower.h"
#include <stdio.h>
#include <string.h>

int lower_init_arg(const arg_val *v) {
  if (!v->present) return INIT_DEFAULT;
  ast_expr tmp = {.kind = EX_IDENT, .loc = v->loc, .str = (char *)v->str};
  int init = lower_init_name(&tmp);
  return init < 0 ? -2 : init;
}

/* Parameters are named after the binding, as torch.nn names a module:
 * "h1.weight"; a binding's second parameterised call is "h1_2", and so on. */
/* The first layer of a binding h is h, the next ones h_2, h_3, ...,
 * skipping a suffix whose name the model binds itself (a binding h_2 is its
 * own first layer).  So no two layers share a name: BINDING_N splits at its
 * last '_' into one binding and one N. */
const char *lower_layer_name(lower_ctx *lc, char *layer, size_t len) {
  if (lc->nparam_ops++ == 0) {
    lc->layer_suffix = 1;
    snprintf(layer, len, "%s", lc->binding);
    return layer;
  }
  do snprintf(layer, len, "%s_%d", lc->binding, ++lc->layer_suffix);
  while (lower_is_binding_name(lc, layer));
  return layer;
}

/* A tensor `name` made before: by the first application of the instance
 * this one applies again (blocks.c), whose tensors it reads.  Its index, or
 * -1 (none, or of another shape: reported, naming both applications). */
static int reuse(lower_ctx *lc, const char *name, int ndim,
                 const int64_t *dims, int old_ndim, const int64_t *old_dims, int old) {
  int same = ndim == old_ndim;
  for (int k = 0; same && k < ndim; k++) same = dims[k] == old_dims[k];
  if (same) return old;
  char a[96] = "", b[96] = "";
  for (int k = 0, n = 0; k < ndim && n < 80; k++)
    n += snprintf(a + n, sizeof a - (size_t)n, "%s%lld", k ? ", " : "", (long long)dims[k]);
  for (int k = 0, n = 0; k < old_ndim && n < 80; k++)
    n += snprintf(b + n, sizeof b - (size_t)n, "%s%lld", k ? ", " : "", (long long)old_dims[k]);
  dl_loc at = lc->apply_loc.line ? lc->apply_loc : (dl_loc){0, 0};
  lc->reuse_errors++;
  diag_error(at, "this application of '%s' gives its tensor '%s' the shape [%s], but its first "
             "application gave [%s]: every application of an instance shares its weights, so "
             "needs the same shapes", lc->instance ? lc->instance : "?", name, a, b);
  if (lc->first_apply_loc.line) diag_note(lc->first_apply_loc, "the first application of '%s'",
                                          lc->instance ? lc->instance : "?");
  return -1;
}

int lower_param(lower_ctx *lc, const char *layer, const char *kind, int ndim, const int64_t *dims,
                int64_t fan_in, int64_t fan_out, int init, double l1, double l2, dl_loc loc) {
  ir_graph *g = lc->g;
  char pname[300];
  snprintf(pname, sizeof pname, "%s.%s", layer, kind);
  int old = ir_names_get(&lc->param_index, pname);
  if (old >= 0) {
    const ir_param *op = &g->params[old];
    if (reuse(lc, pname, ndim, dims, op->ndim, op->dims, old) >= 0)
      return op->node;
  }
  int p = ir_add_param(g, pname, ndim, dims, loc.line);
  if (old < 0) ir_names_put(&lc->param_index, g->params[p].name, p);
  ir_param *pp = &g->params[p];
  pp->fan_in = fan_in;
  pp->fan_out = fan_out;
  pp->is_weight = !strcmp(kind, "weight");
  pp->init = init;
  pp->l1 = l1;
  pp->l2 = l2;
  int node = lower_node(lc, OP_PARAM, NULL, 0, loc);
  ir_node *pn = ir_at(g, node);
  pn->leaf.index = p;
  pn->ndim = pp->ndim;
  memcpy(pn->dims, pp->dims, sizeof pn->dims);
  pn->storage = STORE_STATE;
  pn->name = g->params[p].name;
  pp->node = node;
  return node;
}

/* A buffer of a layer ("NAME.running_mean") and its OP_BUFFER node. */
int lower_buffer(lower_ctx *lc, const char *layer, const char *kind, int ndim,
                 const int64_t *dims, double init, int is_count, dl_loc loc) {
  ir_graph *g = lc->g;
  char bname[300];
  snprintf(bname, sizeof bname, "%s.%s", layer, kind);
  int old = ir_names_get(&lc->buffer_index, bname);
  if (old >= 0) { /* a second application: the same statistics, updated by each (as torch's) */
    const ir_buffer *ob = &g->buffers[old];
    if (reuse(lc, bname, ndim, dims, ob->ndim, ob->dims, old) >= 0) return ob->node;
  }
  int b = ir_add_buffer(g, bname, ndim, dims, loc.line);
  if (old < 0) ir_names_put(&lc->buffer_index, g->buffers[b].name, b);
  g->buffers[b].init = init;
  g->buffers[b].is_count = is_count;
  int node = lower_node(lc, OP_BUFFER, NULL, 0, loc);
  ir_node *bn = ir_at(g, node);
  bn->leaf.index = b;
  bn->ndim = ndim;
  memcpy(bn->dims, g->buffers[b].dims, sizeof bn->dims);
  bn->storage = STORE_STATE;
  bn->name = g->buffers[b].name;
  g->buffers[b].node = node;
  return node;
}
