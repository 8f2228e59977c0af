/* emit_onnx.c: the model's inference graph in ONNX's terms, written into
 * NAME.c as a static dl_onnx_graph (runtime/dl_model.h) for the trainer's
 * `export --onnx` (runtime/onnx.c), which adds the checkpoint's weights.
 *
 * The graph is what the prediction head depends on, in node order (inputs
 * come before their readers): each forward op's IR_ONNX mapping (ops.def,
 * in the op's family file) declares its ONNX nodes through onnx_api.h; the
 * leaves are the model input (named after the .dln input, with a symbolic
 * batch dimension) and the state tensors (initializers under their
 * checkpoint names).  The fusions of passes/ play no part: the IR keeps
 * every op as written.  An op without a mapping makes the table a refusal
 * naming the op and its .dln line, which `export` prints: the compiler
 * never fails a build for it, and no broken file is ever written.
 * Why a table rather than writing the file here: the weights exist only
 * after training, in the trainer; the table is small, static data. */
#include "emit_text.h"
#include "onnx_api.h"
#include "emit_api.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "../../runtime/dl_model.h"

struct onnx_ctx {
  const ir_graph *g;
  const char **names;         /* names[id]: node id's value, once declared */
  dl_onnx_node *nodes;
  int nnodes, node_cap;
  dl_onnx_init *inits;
  int ninits, init_cap;
  dl_onnx_attr attrs[DL_ONNX_MAX_ATTRS]; /* for the next node */
  int nattrs;
  char **strings;             /* every name handed out, freed at the end */
  int nstrings, string_cap;
  int temps;
  const char *output, *output_class; /* the graph's outputs (finish) */
  int failed;                 /* a mapping asked for more than the table holds */
};

static void *grow(void *p, int *cap, int need, size_t size) {
  if (need <= *cap) return p;
  int c = *cap ? *cap * 2 : 16;
  while (c < need) c *= 2;
  void *q = realloc(p, (size_t)c * size);
  if (!q) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  *cap = c;
  return q;
}

__attribute__((format(printf, 2, 3)))
static const char *str(onnx_ctx *oc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = malloc((size_t)n + 1);
  if (!s) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  oc->strings = grow(oc->strings, &oc->string_cap, oc->nstrings + 1, sizeof *oc->strings);
  oc->strings[oc->nstrings++] = s;
  return s;
}

const ir_graph *onnx_graph(const onnx_ctx *oc) { return oc->g; }

static dl_onnx_init *new_init(onnx_ctx *oc, const char *name, int kind, int ndim,
                              const int64_t *dims) {
  oc->inits = grow(oc->inits, &oc->init_cap, oc->ninits + 1, sizeof *oc->inits);
  dl_onnx_init *in = &oc->inits[oc->ninits++];
  *in = (dl_onnx_init){.name = name, .kind = (dl_onnx_init_kind)kind, .ndim = ndim};
  for (int d = 0; d < ndim; d++) in->dims[d] = dims[d];
  return in;
}

/* The checkpoint name of the state tensor leaf node id reads. */
static const char *state_name(const onnx_ctx *oc, int id) {
  const ir_node *n = &oc->g->nodes[id];
  return n->op == OP_PARAM ? oc->g->params[n->leaf.index].name : oc->g->buffers[n->leaf.index].name;
}

const char *onnx_value(onnx_ctx *oc, int id) {
  if (oc->names[id]) return oc->names[id];
  const ir_node *n = &oc->g->nodes[id];
  if (n->op == OP_PARAM || n->op == OP_BUFFER) {
    const char *name = state_name(oc, id);
    dl_onnx_init *in = new_init(oc, name, DL_ONNX_INIT_STATE, n->ndim, n->dims);
    in->src[0] = name;
    return oc->names[id] = name;
  }
  oc->failed = 1; /* a mapping read a value nothing declared: a bug of the mapping */
  return oc->names[id] = str(oc, "undeclared:%d", id);
}

const char *onnx_temp(onnx_ctx *oc, const ir_node *n) {
  return str(oc, "%s:%d:%d", oc->g->groups[n->group].name, n->id, ++oc->temps);
}

void onnx_alias(onnx_ctx *oc, const ir_node *n, const char *name) { oc->names[n->id] = name; }

static dl_onnx_attr *new_attr(onnx_ctx *oc, const char *name, dl_onnx_attr_type type) {
  if (oc->nattrs == DL_ONNX_MAX_ATTRS) {
    oc->failed = 1;
    oc->nattrs--;
  }
  dl_onnx_attr *a = &oc->attrs[oc->nattrs++];
  *a = (dl_onnx_attr){.name = name, .type = type};
  return a;
}

void onnx_attr_int(onnx_ctx *oc, const char *name, int64_t v) {
  new_attr(oc, name, DL_ONNX_INT)->i[0] = v;
}

void onnx_attr_float(onnx_ctx *oc, const char *name, double v) {
  new_attr(oc, name, DL_ONNX_FLOAT)->f = v;
}

void onnx_attr_ints(onnx_ctx *oc, const char *name, int n, const int64_t *v) {
  dl_onnx_attr *a = new_attr(oc, name, DL_ONNX_INTS);
  if (n > DL_ONNX_MAX_INTS) oc->failed = 1, n = DL_ONNX_MAX_INTS;
  a->n = n;
  for (int k = 0; k < n; k++) a->i[k] = v[k];
}

const char *onnx_node(onnx_ctx *oc, const ir_node *n, const char *op, const char *out, int nin,
                      const char *const *in) {
  if (!out) out = oc->names[n->id] = str(oc, "%s:%d", oc->g->groups[n->group].name, n->id);
  oc->nodes = grow(oc->nodes, &oc->node_cap, oc->nnodes + 1, sizeof *oc->nodes);
  dl_onnx_node *o = &oc->nodes[oc->nnodes++];
  *o = (dl_onnx_node){.op = op, .out = out, .nin = nin, .nattr = oc->nattrs};
  if (nin > DL_ONNX_MAX_IN) oc->failed = 1, o->nin = DL_ONNX_MAX_IN;
  for (int k = 0; k < o->nin; k++) o->in[k] = in[k];
  memcpy(o->attr, oc->attrs, sizeof oc->attrs);
  oc->nattrs = 0;
  return out;
}

const char *onnx_unary(onnx_ctx *oc, const ir_node *n, const char *op) {
  const char *in[1] = {onnx_value(oc, n->in[0])};
  return onnx_node(oc, n, op, NULL, 1, in);
}

const char *onnx_binary(onnx_ctx *oc, const ir_node *n, const char *op, const char *out,
                        const char *a, const char *b) {
  const char *in[2] = {a, b};
  return onnx_node(oc, n, op, out, 2, in);
}

const char *onnx_scalar(onnx_ctx *oc, double v) {
  int64_t one = 1;
  return onnx_fill(oc, 1, &one, v);
}

const char *onnx_fill(onnx_ctx *oc, int ndim, const int64_t *dims, double v) {
  const char *name = str(oc, "const#%d", oc->ninits);
  new_init(oc, name, DL_ONNX_INIT_FILL, ndim, dims)->value = v;
  return name;
}

const char *onnx_ints(onnx_ctx *oc, int n, const int64_t *v) {
  int64_t len = n;
  const char *name = str(oc, "const#%d", oc->ninits);
  dl_onnx_init *in = new_init(oc, name, DL_ONNX_INIT_INT64S, 1, &len);
  if (n > DL_ONNX_MAX_INTS) oc->failed = 1, n = DL_ONNX_MAX_INTS;
  for (int k = 0; k < n; k++) in->ints[k] = v[k];
  return name;
}

const char *onnx_reshaped(onnx_ctx *oc, int id, int ndim, const int64_t *dims) {
  const char *src = state_name(oc, id);
  const char *name = str(oc, "%s:%d", src, oc->ninits);
  new_init(oc, name, DL_ONNX_INIT_STATE, ndim, dims)->src[0] = src;
  return name;
}

void onnx_derived(onnx_ctx *oc, const ir_node *n, int kind, int nsrc, const int *src) {
  const char *name = str(oc, "%s:%d", oc->g->groups[n->group].name, n->id);
  dl_onnx_init *in = new_init(oc, name, kind, n->ndim, n->dims);
  for (int k = 0; k < nsrc && k < 3; k++) in->src[k] = state_name(oc, src[k]);
  oc->names[n->id] = name;
}

/* ---- the walk ------------------------------------------------------------------- */

/* need[id]: the prediction head depends on node id. */
static char *mark_needed(const ir_graph *g) {
  char *need = calloc((size_t)g->nnodes, 1);
  if (!need) return NULL;
  need[g->pred] = 1;
  for (int id = g->pred; id >= 0; id--)
    if (need[id])
      for (int k = 0; k < g->nodes[id].nin; k++)
        if (g->nodes[id].in[k] >= 0) need[g->nodes[id].in[k]] = 1;
  return need;
}

static int is_leaf(ir_op op) { return op == OP_INPUT || op == OP_PARAM || op == OP_BUFFER; }

/* The first op the head depends on that has no mapping, or -1. */
static int first_unmapped(const ir_graph *g, const char *need) {
  for (int id = 0; id < g->nnodes; id++)
    if (need[id] && !is_leaf(g->nodes[id].op) && !op_onnx_of(g->nodes[id].op)) return id;
  return -1;
}

/* Why the model cannot be exported (into why, returning 1), or 0: token
 * inputs, or the first op the head needs that has no mapping, with the
 * binding's line (the IR keeps it without its indentation, so without the
 * caret of the compiler's own errors). */
static int refusal(const ir_graph *g, const char *need, char *why, size_t len) {
  const ir_node *x = &g->nodes[g->input];
  if (g->input_vocab) {
    snprintf(why, len, "%s:%d:%d: error: the input '%s' holds token ids, which the ONNX export "
             "does not take", g->source_path, x->loc.line, x->loc.col, x->name);
    return 1;
  }
  int bad = first_unmapped(g, need);
  if (bad < 0) return 0;
  const ir_node *n = &g->nodes[bad];
  const ir_group *gr = &g->groups[n->group];
  int at = snprintf(why, len, "%s:%d:%d: error: %s (in binding '%s') has no ONNX mapping",
                    g->source_path, n->loc.line, n->loc.col, ir_op_name(n->op), gr->name);
  if (gr->line == n->loc.line && gr->text && at > 0 && (size_t)at < len)
    snprintf(why + at, len - (size_t)at, "\n%5d | %s", n->loc.line, gr->text);
  return 1;
}

static void emit_refusal(emit_text *o, const char *why) {
  char *lit = emit_cstr(why);
  emit_line(o, "/* BIN export --onnx refuses this model: */");
  emit_line(o, "static const dl_onnx_graph onnx_graph = {.refusal = %s};\n", lit);
  free(lit);
}

/* One line of the table: text appended with a printf format. */
typedef struct line {
  char *s;
  size_t len, cap;
} line;

__attribute__((format(printf, 2, 3)))
static void put(line *l, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (l->len + (size_t)n + 1 > l->cap) {
    l->cap = (l->len + (size_t)n + 1) * 2;
    l->s = realloc(l->s, l->cap);
    if (!l->s) {
      fputs("dlnc: out of memory\n", stderr);
      exit(1);
    }
  }
  va_start(ap, fmt);
  vsnprintf(l->s + l->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  l->len += (size_t)n;
}

/* A C string literal of s (escaped by emit_cstr). */
static void put_str(line *l, const char *s) {
  char *lit = emit_cstr(s);
  put(l, "%s", lit);
  free(lit);
}

static void put_attr(line *l, const dl_onnx_attr *a) {
  static const char *const types[] = {"0", "DL_ONNX_INT", "DL_ONNX_FLOAT", "DL_ONNX_INTS"};
  put(l, "{");
  put_str(l, a->name);
  put(l, ", %s, %d, {", types[a->type], a->n);
  int n = a->type == DL_ONNX_INTS ? a->n : 1;
  for (int k = 0; k < n; k++) put(l, "%s%lld", k ? ", " : "", ll(a->i[k]));
  put(l, "}, %.17g}", a->f);
}

static void emit_node(emit_text *o, const dl_onnx_node *n) {
  line l = {0};
  put(&l, "{");
  put_str(&l, n->op);
  put(&l, ", ");
  put_str(&l, n->out);
  put(&l, ", %d, {", n->nin);
  for (int k = 0; k < n->nin; k++) {
    put(&l, "%s", k ? ", " : "");
    put_str(&l, n->in[k]);
  }
  put(&l, "}, %d, {", n->nattr);
  for (int k = 0; k < n->nattr; k++) {
    put(&l, "%s", k ? ", " : "");
    put_attr(&l, &n->attr[k]);
  }
  put(&l, n->nattr ? "}}," : "{0}}},");
  emit_line(o, "%s", l.s);
  free(l.s);
}

/* "v0, v1, ..." of n values, or "0" for none (an initializer's {0}). */
static const char *join_ints(char *buf, size_t len, const int64_t *v, int64_t n) {
  size_t at = 0;
  snprintf(buf, len, "0");
  for (int64_t k = 0; k < n && at < len; k++)
    at += (size_t)snprintf(buf + at, len - at, "%s%lld", k ? ", " : "", ll(v[k]));
  return buf;
}

static void emit_init(emit_text *o, const dl_onnx_init *in) {
  static const char *const kinds[] = {"DL_ONNX_INIT_STATE", "DL_ONNX_INIT_WEIGHT_NORM",
                                      "DL_ONNX_INIT_SPECTRAL_NORM", "DL_ONNX_INIT_FILL",
                                      "DL_ONNX_INIT_INT64S"};
  char *name = emit_cstr(in->name), *src[3];
  for (int k = 0; k < 3; k++) src[k] = emit_cstr(in->src[k]);
  char dims[DL_MAX_DIMS * 24], ints[DL_ONNX_MAX_INTS * 24];
  int64_t nints = in->kind == DL_ONNX_INIT_INT64S ? in->dims[0] : 0;
  emit_line(o, "{%s, %s, {%s, %s, %s}, %d, {%s}, %.17g, {%s}},", name, kinds[in->kind], src[0],
            src[1], src[2], in->ndim, join_ints(dims, sizeof dims, in->dims, in->ndim), in->value,
            join_ints(ints, sizeof ints, in->ints, nints));
  free(name);
  for (int k = 0; k < 3; k++) free(src[k]);
}

/* The output: the head as `predict` reports it (probabilities for
 * bce_with_logits, whose head is the logits), named after its binding.
 * Names cannot collide: values are "binding:id[:k]", constants "const#k",
 * state tensors have a '.', the input and the output are identifiers (the
 * output renamed if it is the input's name). */
static void finish(onnx_ctx *oc, int logit) {
  const ir_graph *g = oc->g;
  const ir_node *pred = &g->nodes[g->pred];
  const char *in[1] = {onnx_value(oc, g->pred)};
  const char *out = logit ? str(oc, "%s_probability", g->groups[pred->group].name)
                          : str(oc, "%s", g->groups[pred->group].name);
  if (!strcmp(out, g->nodes[g->input].name)) out = str(oc, "%s_output", out);
  oc->output = onnx_node(oc, pred, logit ? "Sigmoid" : "Identity", out, 1, in);
  if (g->pred_kind != DL_PRED_ARGMAX) return;
  /* a classifier's class, as predict prints it: the first largest logit */
  in[0] = out;
  onnx_attr_int(oc, "axis", pred->ndim);
  onnx_attr_int(oc, "keepdims", 0);
  const char *cls = str(oc, "%s_class", out);
  if (!strcmp(cls, g->nodes[g->input].name)) cls = str(oc, "%s_output", cls);
  oc->output_class = onnx_node(oc, pred, "ArgMax", cls, 1, in);
}

static void emit_tables(onnx_ctx *oc, emit_text *o) {
  const ir_graph *g = oc->g;
  const ir_node *x = &g->nodes[g->input], *pred = &g->nodes[g->pred];
  emit_line(o, "static const dl_onnx_node onnx_nodes[] = {");
  for (int k = 0; k < oc->nnodes; k++) emit_node(o, &oc->nodes[k]);
  emit_line(o, "};");
  if (oc->ninits) {
    emit_line(o, "static const dl_onnx_init onnx_inits[] = {");
    for (int k = 0; k < oc->ninits; k++) emit_init(o, &oc->inits[k]);
    emit_line(o, "};");
  }
  char *in = emit_cstr(x->name), *out = emit_cstr(oc->output), dims[DL_MAX_DIMS * 24];
  char *cls = emit_cstr(oc->output_class);
  emit_line(o, "static const dl_onnx_graph onnx_graph = {");
  emit_line(o, ".input = %s,", in);
  emit_line(o, ".output = %s,", out);
  emit_line(o, ".out_ndim = %d,", pred->ndim);
  emit_line(o, ".out_dims = {%s},", join_ints(dims, sizeof dims, pred->dims, pred->ndim));
  if (oc->output_class) emit_line(o, ".output_class = %s,", cls);
  emit_line(o, ".n_nodes = %d,", oc->nnodes);
  emit_line(o, ".n_inits = %d,", oc->ninits);
  emit_line(o, ".nodes = onnx_nodes,");
  emit_line(o, ".inits = %s,", oc->ninits ? "onnx_inits" : "NULL");
  emit_line(o, "};\n");
  free(in), free(out), free(cls);
}

static int pred_is_logit(const ir_graph *g) {
  for (int id = 0; id < g->nnodes; id++)
    if (ir_is_loss(g->nodes[id].op) && g->nodes[id].loss.names_pred)
      return g->nodes[id].op == OP_BCE_LOGITS;
  return 0;
}

void emit_onnx(const ir_graph *g, emit_text *o) {
  emit_line(o, "/* ---- the inference graph in ONNX's terms (BIN export --onnx) ---- */");
  char why[1024];
  char *need = mark_needed(g);
  if (!need) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  if (refusal(g, need, why, sizeof why)) {
    emit_refusal(o, why);
    free(need);
    return;
  }
  onnx_ctx oc = {.g = g, .names = calloc((size_t)g->nnodes, sizeof(char *))};
  if (!oc.names) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  oc.names[g->input] = g->nodes[g->input].name;
  for (int id = 0; id < g->nnodes; id++)
    if (need[id] && !is_leaf(g->nodes[id].op)) op_onnx_of(g->nodes[id].op)(&oc, &g->nodes[id]);
  finish(&oc, pred_is_logit(g));
  if (oc.failed) {
    snprintf(why, sizeof why, "%s: the ONNX mapping of model '%s' is incomplete (a dlnc bug)",
             g->source_path, g->model_name);
    emit_refusal(o, why);
  } else {
    emit_tables(&oc, o);
  }
  for (int k = 0; k < oc.nstrings; k++) free(oc.strings[k]);
  free(oc.strings), free(oc.nodes), free(oc.inits), free(oc.names), free(need);
}
