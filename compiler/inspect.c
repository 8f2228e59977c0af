/* inspect.c: `dlnc summary` and `dlnc graph`, two views of a planned model
 * for the person who wrote it.
 *
 * summary: a table like Keras's model.summary(): one row per .dln binding
 * (a group of the IR) with the ops it computes, its output shape and its
 * parameter count, then the totals and what the trainer will allocate (the
 * state block, and the activation arena per sample and at the train
 * block's batch, from the memory plan).
 *
 * graph: the IR as Graphviz DOT: one cluster per binding headed by its
 * .dln line, a box per op with its output shape, an ellipse per parameter
 * with its shape and size; with backward, the gradient ops too (dashed). */
#include "inspect.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* n with thousands separators, into buf. */
static const char *grouped(int64_t n, char *buf, size_t len) {
  char digits[32];
  snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n));
  size_t nd = strlen(digits), o = 0;
  if (n < 0 && o + 1 < len) buf[o++] = '-';
  for (size_t i = 0; i < nd && o + 2 < len; i++) {
    if (i && (nd - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = 0;
  return buf;
}

/* Bytes as "12.3 KiB", "4.0 MiB", ... */
static const char *human(double bytes, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
  snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

/* A node the table shows as a row of its own or inside its binding's row:
 * every forward node but the parameter and buffer leaves. */
static int is_computed(const ir_node *n) {
  return !n->backward && n->op != OP_PARAM && n->op != OP_BUFFER;
}

/* The distinct op names of a group's forward nodes, in order: "dense, relu". */
static void group_ops(const ir_graph *g, int grp, char *buf, size_t len) {
  buf[0] = 0;
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = &g->nodes[id];
    if (n->group != grp || !is_computed(n)) continue;
    int seen = 0;
    for (int j = 0; j < id && !seen; j++)
      seen = g->nodes[j].group == grp && is_computed(&g->nodes[j]) && g->nodes[j].op == n->op;
    if (seen) continue;
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", used ? ", " : "", ir_op_name(n->op));
  }
}

static int64_t group_params(const ir_graph *g, int grp, int64_t *buffers) {
  int64_t n = 0;
  *buffers = 0;
  for (int i = 0; i < g->nparams; i++)
    if (g->nodes[g->params[i].node].group == grp) n += g->params[i].numel;
  for (int i = 0; i < g->nbuffers; i++)
    if (g->nodes[g->buffers[i].node].group == grp) *buffers += g->buffers[i].numel;
  return n;
}

/* One row of the table: a binding, or the input or the label. */
typedef struct row {
  int line;
  char name[128], ops[256], shape[96], params[32];
} row;

static int add_row(row **rows, int *n, const row *r) {
  row *grown = realloc(*rows, (size_t)(*n + 1) * sizeof **rows);
  if (!grown) return -1;
  *rows = grown;
  grown[(*n)++] = *r;
  return 0;
}

/* The rows: the input and label declarations, then each binding with the
 * shape of its value (its last computed node). */
static int table_rows(const ir_graph *g, row **rows, int *n, int64_t *total, int64_t *buffers) {
  *total = *buffers = 0;
  for (int k = 0; k < 2; k++) {
    int id = k ? g->label : g->input;
    if (id < 0) continue;
    row r = {.line = g->nodes[id].loc.line};
    snprintf(r.name, sizeof r.name, "%s", g->nodes[id].name ? g->nodes[id].name : "");
    snprintf(r.ops, sizeof r.ops, "%s", k ? "label" : "input");
    ir_shape_str(&g->nodes[id], r.shape, sizeof r.shape);
    snprintf(r.params, sizeof r.params, "0");
    if (add_row(rows, n, &r)) return -1;
  }
  for (int grp = 0; grp < g->ngroups; grp++) {
    int value = -1;
    for (int id = 0; id < g->nnodes; id++) {
      const ir_node *nd = &g->nodes[id];
      if (nd->group == grp && is_computed(nd) && nd->op != OP_INPUT && nd->op != OP_LABEL) value = id;
    }
    if (value < 0) continue;
    int64_t nbuf, np = group_params(g, grp, &nbuf);
    *total += np;
    *buffers += nbuf;
    row r = {.line = g->groups[grp].line};
    snprintf(r.name, sizeof r.name, "%s", g->groups[grp].name);
    group_ops(g, grp, r.ops, sizeof r.ops);
    ir_shape_str(&g->nodes[value], r.shape, sizeof r.shape);
    grouped(np, r.params, sizeof r.params);
    if (add_row(rows, n, &r)) return -1;
  }
  return 0;
}

static int widest(const row *rows, int n, size_t off, int least) {
  int w = least;
  for (int i = 0; i < n; i++) {
    int len = (int)strlen((const char *)&rows[i] + off);
    if (len > w) w = len;
  }
  return w;
}

void inspect_summary(const ir_graph *g, int f64, FILE *out) {
  char a[64], b[64];
  const size_t real = f64 ? sizeof(double) : sizeof(float);
  row *rows = NULL;
  int n = 0;
  int64_t total, total_buffers;
  if (table_rows(g, &rows, &n, &total, &total_buffers)) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  int wn = widest(rows, n, offsetof(row, name), 5), wo = widest(rows, n, offsetof(row, ops), 8);
  int ws = widest(rows, n, offsetof(row, shape), 12), wp = widest(rows, n, offsetof(row, params), 10);
  int width = 5 + 2 + wn + 2 + wo + 2 + ws + 2 + wp;
  fprintf(out, "model %s (%s)\n\n", g->model_name, g->source_path);
  fprintf(out, "%5s  %-*s  %-*s  %-*s  %*s\n", "line", wn, "layer", wo, "computes", ws, "output shape",
          wp, "parameters");
  for (int i = 0; i < width; i++) fputc('-', out);
  fputc('\n', out);
  for (int i = 0; i < n; i++)
    fprintf(out, "%5d  %-*s  %-*s  %-*s  %*s\n", rows[i].line, wn, rows[i].name, wo, rows[i].ops, ws,
            rows[i].shape, wp, rows[i].params);
  for (int i = 0; i < width; i++) fputc('-', out);
  fputc('\n', out);
  free(rows);
  fprintf(out, "parameters: %s (%s as %s)", grouped(total, a, sizeof a),
          human((double)total * (double)real, b, sizeof b), f64 ? "f64" : "f32");
  if (total_buffers) fprintf(out, "; buffers: %s values", grouped(total_buffers, a, sizeof a));
  fputc('\n', out);
  fprintf(out, "state block: %s (parameters, gradients, optimiser state, buffers)\n",
          human((double)g->state_elems * (double)real, a, sizeof a));
  int batch = g->train.batch;
  fprintf(out, "activation arena: %s per sample + %s",
          human((double)g->act_per_sample * (double)real, a, sizeof a),
          human((double)g->act_fixed * (double)real, b, sizeof b));
  if (batch > 0)
    fprintf(out, "; %s at batch %d",
            human(((double)g->act_per_sample * batch + (double)g->act_fixed) * (double)real, a, sizeof a),
            batch);
  fputc('\n', out);
}

/* ---- DOT ------------------------------------------------------------------ */

/* A DOT string literal of s: quotes and backslashes escaped, a newline as
 * DOT's line break, other control bytes dropped, runs of blanks (a .dln
 * line's alignment) as one. */
static void dot_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const char *p = s; p && *p; p++) {
    if (*p == '\n') fputs("\\n", out);
    else if (*p == ' ' && p > s && p[-1] == ' ') continue;
    else if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
    else if ((unsigned char)*p >= 0x20) fputc(*p, out);
  }
  fputc('"', out);
}

static int shown(const ir_node *n, int backward) {
  return (backward || !n->backward) && n->op != OP_BUFFER;
}

static void dot_node(const ir_graph *g, const ir_node *n, FILE *out) {
  char shape[96], label[400];
  ir_shape_str(n, shape, sizeof shape);
  if (n->op == OP_PARAM) {
    const ir_param *p = &g->params[n->leaf.index];
    char count[64];
    snprintf(label, sizeof label, "%s\n%s, %s values", p->name, shape, grouped(p->numel, count, sizeof count));
    fprintf(out, "    n%d [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", label=", n->id);
  } else {
    int decl = n->op == OP_INPUT || n->op == OP_LABEL; /* named by the .dln */
    snprintf(label, sizeof label, "%s%s%s\n%s", ir_op_name(n->op), decl ? " " : "",
             decl && n->name ? n->name : "", shape);
    fprintf(out, "    n%d [shape=box, %slabel=", n->id,
            n->backward ? "style=\"dashed,filled\", fillcolor=\"#fde0dd\", " : "style=filled, fillcolor=\"#deebf7\", ");
  }
  dot_string(out, label);
  fputs("];\n", out);
}

void inspect_graph(const ir_graph *g, int backward, FILE *out) {
  fputs("digraph ", out);
  dot_string(out, g->model_name);
  fputs(" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
        "  edge [color=\"#555555\"];\n",
        out);
  for (int grp = 0; grp < g->ngroups; grp++) {
    int any = 0;
    for (int id = 0; id < g->nnodes && !any; id++) any = g->nodes[id].group == grp && shown(&g->nodes[id], backward);
    if (!any) continue;
    char title[512];
    snprintf(title, sizeof title, "line %d: %s", g->groups[grp].line,
             g->groups[grp].text ? g->groups[grp].text : g->groups[grp].name);
    fprintf(out, "  subgraph cluster_%d {\n    style=rounded; color=\"#999999\"; fontsize=10; label=", grp);
    dot_string(out, title);
    fputs(";\n", out);
    for (int id = 0; id < g->nnodes; id++)
      if (g->nodes[id].group == grp && shown(&g->nodes[id], backward)) dot_node(g, &g->nodes[id], out);
    fputs("  }\n", out);
  }
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = &g->nodes[id];
    if (!shown(n, backward)) continue;
    for (int k = 0; k < n->nin; k++)
      if (shown(&g->nodes[n->in[k]], backward))
        fprintf(out, "  n%d -> n%d%s;\n", n->in[k], id, n->backward ? " [style=dashed]" : "");
  }
  fputs("}\n", out);
}
