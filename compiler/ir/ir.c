/* ir.c: construction, verification and text dump of the graph IR. */
#include "ir.h"
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "dlnc: out of memory\n");
    exit(1);
  }
  return q;
}

char *ir_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = xrealloc(NULL, n);
  memcpy(d, s, n);
  return d;
}

/* ---- string index (FNV-1a, open addressing, at most half full) ------------ */

static unsigned names_hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The slot holding key, or the empty slot where it would go. */
static int names_slot(const ir_names *t, const char *key) {
  int mask = t->cap - 1, i = (int)(names_hash(key) & (unsigned)mask);
  while (t->key[i] && strcmp(t->key[i], key)) i = (i + 1) & mask;
  return i;
}

int ir_names_get(const ir_names *t, const char *key) {
  if (!t->cap) return -1;
  int i = names_slot(t, key);
  return t->key[i] ? t->val[i] : -1;
}

void ir_names_put(ir_names *t, const char *key, int val) {
  if (2 * (t->n + 1) > t->cap) {
    ir_names old = *t;
    t->cap = old.cap ? 2 * old.cap : 64;
    t->n = 0;
    t->key = xrealloc(NULL, (size_t)t->cap * sizeof *t->key);
    t->val = xrealloc(NULL, (size_t)t->cap * sizeof *t->val);
    memset(t->key, 0, (size_t)t->cap * sizeof *t->key);
    for (int i = 0; i < old.cap; i++)
      if (old.key[i]) ir_names_put(t, old.key[i], old.val[i]);
    ir_names_free(&old);
  }
  int i = names_slot(t, key);
  if (!t->key[i]) t->n++;
  t->key[i] = key;
  t->val[i] = val;
}

void ir_names_free(ir_names *t) {
  free(t->key);
  free(t->val);
  memset(t, 0, sizeof *t);
}

const char *ir_intern(ir_graph *g, const char *s) {
  if (!s) return NULL;
  int i = ir_names_get(&g->string_index, s);
  if (i >= 0) return g->strings[i];
  if (g->nstrings == g->string_cap) {
    g->string_cap = g->string_cap ? 2 * g->string_cap : 16;
    g->strings = xrealloc(g->strings, (size_t)g->string_cap * sizeof *g->strings);
  }
  g->strings[g->nstrings] = ir_strdup(s);
  ir_names_put(&g->string_index, g->strings[g->nstrings], g->nstrings);
  return g->strings[g->nstrings++];
}

ir_graph *ir_new(void) {
  ir_graph *g = calloc(1, sizeof *g);
  if (!g) return xrealloc(NULL, 0);
  g->input = g->label = g->loss = g->total_loss = g->pred = g->penalty_group = g->sample = -1;
  return g;
}

void ir_free(ir_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->nparams; i++) free(g->params[i].name);
  for (int i = 0; i < g->nbuffers; i++) free(g->buffers[i].name);
  free(g->buffers);
  for (int i = 0; i < g->nupdates; i++) free(g->updates[i].runs);
  free(g->updates);
  free(g->tail_runs);
  free(g->loss_runs);
  for (int i = 0; i < g->ngroups; i++) {
    free(g->groups[i].name);
    free(g->groups[i].text);
  }
  for (int i = 0; i < g->nstrings; i++) free(g->strings[i]);
  free(g->strings);
  ir_names_free(&g->string_index);
  free(g->nodes);
  free(g->params);
  free(g->groups);
  free(g->model_name);
  free(g->source_path);
  free(g->source_dir);
  free(g->train.data_dir);
  for (int k = 0; k < 2; k++) {
    free(g->train.train.path[k]);
    free(g->train.test.path[k]);
    free(g->train.val.path[k]);
  }
  free(g->train.early_stop);
  free(g);
}

int ir_add(ir_graph *g, ir_op op, const int *in, int nin, int group, dl_loc loc) {
  if (g->nnodes == g->cap) {
    g->cap = g->cap ? g->cap * 2 : 64;
    g->nodes = xrealloc(g->nodes, (size_t)g->cap * sizeof *g->nodes);
  }
  ir_node *n = &g->nodes[g->nnodes];
  memset(n, 0, sizeof *n);
  n->id = g->nnodes;
  n->op = op;
  n->nin = nin;
  for (int k = 0; k < nin; k++) {
    n->in[k] = in[k];
    if (g->nodes[in[k]].needs_label) n->needs_label = 1;
  }
  n->group = group;
  n->loc = loc;
  n->alias_of = -1;
  n->scratch = n->fused_in = n->epilogue = -1;
  return g->nnodes++;
}

ir_node *ir_at(ir_graph *g, int id) { return &g->nodes[id]; }

int64_t ir_numel(const ir_node *n) {
  int64_t e = 1;
  for (int k = 0; k < n->ndim; k++) e *= n->dims[k];
  return e;
}

int64_t ir_last_dim(const ir_node *n) { return n->ndim ? n->dims[n->ndim - 1] : 1; }

int64_t ir_rows(const ir_node *n) {
  int64_t r = 1;
  for (int k = 0; k + 1 < n->ndim; k++) r *= n->dims[k];
  return r;
}

void ir_copy_shape(ir_node *dst, const ir_node *src) {
  dst->batched = src->batched;
  dst->ndim = src->ndim;
  memcpy(dst->dims, src->dims, sizeof dst->dims);
}

int ir_add_group(ir_graph *g, const char *name, int line, const char *text) {
  if (g->ngroups == g->group_cap) {
    g->group_cap = g->group_cap ? g->group_cap * 2 : 16;
    g->groups = xrealloc(g->groups, (size_t)g->group_cap * sizeof *g->groups);
  }
  ir_group *gr = &g->groups[g->ngroups];
  memset(gr, 0, sizeof *gr);
  gr->name = ir_strdup(name);
  gr->line = line;
  gr->text = ir_strdup(text ? text : "");
  return g->ngroups++;
}

int ir_add_param(ir_graph *g, const char *name, int ndim, const int64_t *dims, int line) {
  if (g->nparams == g->param_cap) {
    g->param_cap = g->param_cap ? g->param_cap * 2 : 16;
    g->params = xrealloc(g->params, (size_t)g->param_cap * sizeof *g->params);
  }
  ir_param *p = &g->params[g->nparams];
  memset(p, 0, sizeof *p);
  p->name = ir_strdup(name);
  p->ndim = ndim;
  p->numel = 1;
  for (int k = 0; k < ndim; k++) {
    p->dims[k] = dims[k];
    p->numel *= dims[k];
  }
  p->init = INIT_DEFAULT;
  p->init_src = -1;
  p->grad = -1;
  p->update = -1;
  p->line = line;
  return g->nparams++;
}

int ir_add_buffer(ir_graph *g, const char *name, int ndim, const int64_t *dims, int line) {
  if (g->nbuffers == g->buffer_cap) {
    g->buffer_cap = g->buffer_cap ? g->buffer_cap * 2 : 8;
    g->buffers = xrealloc(g->buffers, (size_t)g->buffer_cap * sizeof *g->buffers);
  }
  ir_buffer *b = &g->buffers[g->nbuffers];
  memset(b, 0, sizeof *b);
  b->name = ir_strdup(name);
  b->ndim = ndim;
  b->numel = 1;
  for (int k = 0; k < ndim; k++) {
    b->dims[k] = dims[k];
    b->numel *= dims[k];
  }
  b->node = -1;
  b->line = line;
  return g->nbuffers++;
}

static const struct {
  const char *name;
  unsigned flags;
} op_rows[OP_COUNT] = {
#define IR_OP(id, name, flags, backward, emit) [OP_##id] = {name, flags},
#include "ops.def"
};

const char *ir_op_name(ir_op op) { return op < OP_COUNT ? op_rows[op].name : "?"; }

int ir_op_has(ir_op op, unsigned flags) { return op < OP_COUNT && (op_rows[op].flags & flags) == flags; }

int ir_is_loss(ir_op op) { return ir_op_has(op, OPF_LOSS); }

const char *ir_shape_str(const ir_node *n, char *buf, size_t len) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, len - k, "[");
  if (n->batched) k += (size_t)snprintf(buf + k, len - k, "batch");
  for (int d = 0; d < n->ndim && k < len; d++)
    k += (size_t)snprintf(buf + k, len - k, "%s%lld", (d || n->batched) ? ", " : "",
                          (long long)n->dims[d]);
  if (k < len) snprintf(buf + k, len - k, "]");
  if (!n->batched && n->ndim == 0) snprintf(buf, len, "scalar");
  return buf;
}

static int same_shape(const ir_node *a, const ir_node *b) {
  if (a->batched != b->batched || a->ndim != b->ndim) return 0;
  for (int k = 0; k < a->ndim; k++)
    if (a->dims[k] != b->dims[k]) return 0;
  return 1;
}

/* The edges that are not inputs point at nodes that exist: a scratch edge at
 * scratch memory; of the fusion edges (fuse.c) both ends agree, and a chain's
 * nodes follow its head.  A pass that moved or dropped a node would leave
 * one dangling. */
static const char *bad_edge(const ir_graph *g, const ir_node *n) {
  if (n->scratch >= 0 && (n->scratch >= g->nnodes || g->nodes[n->scratch].op != OP_SCRATCH))
    return "a scratch edge to no scratch node";
  if (n->fused_in >= g->nnodes || n->epilogue >= g->nnodes) return "a fusion edge to no node";
  if (n->epilogue >= 0 && g->nodes[n->epilogue].fused_in != n->id)
    return "an epilogue not fused into it";
  if (n->chain && (n->chain < 2 || n->id + n->chain > g->nnodes)) return "a chain past the graph";
  for (int k = 1; k < n->chain; k++) {
    int host = g->nodes[n->id + k].fused_in; /* the head, or a member it is the epilogue of */
    if (host != n->id && !(host > n->id && host < n->id + k && g->nodes[host].epilogue == n->id + k))
      return "a chain node not fused into its head";
  }
  return NULL;
}

/* Invariants every pass must keep: inputs come earlier, and elementwise ops
 * and gradients have the shape of what they combine: an OPF_SAME_SHAPE op
 * by its row in ops.def, the others that read inputs of other shapes by
 * their case below. */
int ir_verify(const ir_graph *g) {
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = &g->nodes[id];
    const char *why = bad_edge(g, n);
    if (why) {
      fprintf(stderr, "dlnc: internal error: node %d (%s) has %s\n", id, ir_op_name(n->op), why);
      return -1;
    }
    for (int k = 0; k < n->nin; k++) {
      if (n->in[k] < 0 || n->in[k] >= id) {
        fprintf(stderr, "dlnc: internal error: node %d (%s) reads node %d, not defined before it\n",
                id, ir_op_name(n->op), n->in[k]);
        return -1;
      }
    }
    int bad = 0;
    if (ir_op_has(n->op, OPF_SAME_SHAPE))
      for (int k = 0; k < n->nin; k++) bad |= !same_shape(n, &g->nodes[n->in[k]]);
    switch (n->op) {
    case OP_ACT_GRAD: case OP_SOFTMAX_GRAD: /* in: dy, and the saved x or y */
      bad = !same_shape(n, &g->nodes[n->in[0]]);
      break;
    case OP_NORM: /* in: x, stats */
      bad = !same_shape(n, &g->nodes[n->in[0]]);
      break;
    case OP_NORM_DX: /* in: dy, x, stats */
      bad = !same_shape(n, &g->nodes[n->in[0]]) || !same_shape(n, &g->nodes[n->in[1]]);
      break;
    case OP_NORM_SUMS: /* in: dy, x, stats */
      bad = !same_shape(&g->nodes[n->in[0]], &g->nodes[n->in[1]]);
      break;
    default:
      break;
    }
    if (bad) {
      fprintf(stderr, "dlnc: internal error: node %d (%s) has inconsistent shapes\n", id,
              ir_op_name(n->op));
      return -1;
    }
  }
  return 0;
}

static void dump_shape(const ir_node *n, FILE *out) {
  fputc('[', out);
  if (n->batched) fputs("B", out);
  for (int k = 0; k < n->ndim; k++)
    fprintf(out, "%s%lld", (k || n->batched) ? "," : "", (long long)n->dims[k]);
  fputc(']', out);
}

void ir_dump(const ir_graph *g, FILE *out) {
  fprintf(out, "model %s\n", g->model_name);
  for (int i = 0; i < g->nparams; i++) {
    const ir_param *p = &g->params[i];
    fprintf(out, "param %s numel=%lld node=%%%d grad=%%%d\n", p->name, (long long)p->numel,
            p->node, p->grad);
  }
  for (int i = 0; i < g->nbuffers; i++) {
    const ir_buffer *b = &g->buffers[i];
    fprintf(out, "buffer %s numel=%lld node=%%%d init=%g%s\n", b->name, (long long)b->numel, b->node,
            b->init, b->is_count ? " int64" : "");
  }
  for (int k = 0; k < g->nupdates; k++) {
    const ir_update *u = &g->updates[k];
    fprintf(out, "update %d %s loss=%%%d total=%%%d optimizer=%d lr=%g runs:", k, u->name, u->loss,
            u->total_loss, u->optim.kind, u->optim.lr);
    for (int grp = 0; u->runs && grp < g->ngroups; grp++)
      if (u->runs[grp]) fprintf(out, " %s", g->groups[grp].name);
    fputc('\n', out);
  }
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = &g->nodes[id];
    fprintf(out, "%%%d = %s(", id, ir_op_name(n->op));
    for (int k = 0; k < n->nin; k++) fprintf(out, "%s%%%d", k ? ", " : "", n->in[k]);
    fputs(") ", out);
    dump_shape(n, out);
    fprintf(out, " group=%s%s", g->groups[n->group].name, n->backward ? " bwd" : "");
    if (g->nupdates && n->backward) fprintf(out, " update=%d", n->update);
    if (n->storage == STORE_ACT)
      fprintf(out, " act@%zu%s", n->offset, n->batched ? "*B" : "");
    else if (n->storage == STORE_ALIAS)
      fprintf(out, " alias(%%%d)", n->alias_of);
    else if (n->storage == STORE_STATE)
      fprintf(out, " state@%zu", n->offset);
    if (n->scratch >= 0) fprintf(out, " scratch(%%%d)", n->scratch);
    if (n->fused_in >= 0) fprintf(out, " fused_in(%%%d)", n->fused_in);
    if (n->epilogue >= 0) fprintf(out, " epilogue(%%%d)", n->epilogue);
    if (n->chain) fprintf(out, " chain=%d", n->chain);
    fputc('\n', out);
  }
}
