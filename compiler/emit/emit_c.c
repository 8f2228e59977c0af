/* emit_c.c: writes NAME.c (the kernels and the model descriptor), NAME.h
 * (the API to embed the model) and NAME_main.c (the trainer's main) from the
 * planned IR.  It sees only the IR, never the AST.  Every layer (source
 * binding) becomes one forward and one backward function whose comment
 * quotes its .dln line; every shape in them is a constant except the batch
 * rows n, chosen at run time. */
#include "emit.h"
#include "emit_api.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "../../runtime/dl_model.h"

const char *emit_job_begin(emit_ctx *ec, const ir_node *n, const char *what, const char *comment,
                           char *name, size_t len) {
  snprintf(name, len, "%s_%s_%d", what, ec->g->groups[n->group].name, n->id);
  if (comment) fprintf(ec->helpers, "/* %s */\n", comment);
  fprintf(ec->helpers, "static void %s(void *arg, int64_t lo, int64_t hi) {\n", name);
  fprintf(ec->helpers, "  const dl_job *job = arg;\n  dl_ctx *ctx = job->ctx;\n  const int n = job->n;\n");
  fprintf(ec->helpers, "  (void)ctx, (void)n;\n");
  return name;
}

void emit_job_call(emit_ctx *ec, const char *name, const char *count, const char *grain) {
  fprintf(ec->out, "  {\n    dl_job job = {ctx, n};\n");
  fprintf(ec->out, "    dl_parallel_for(ctx->pool, %s, %s, %s, &job);\n  }\n", count, grain, name);
}

const char *emit_ptr(emit_ctx *ec, int id, char *buf, size_t len) {
  const ir_graph *g = ec->g;
  id = ec->root[id];
  const ir_node *n = &g->nodes[id];
  switch (n->storage) {
  case STORE_INPUT: snprintf(buf, len, "ctx->x"); break;
  case STORE_LABEL: snprintf(buf, len, g->label_is_class ? "ctx->y_class" : "ctx->y_real"); break;
  case STORE_STATE: snprintf(buf, len, "ST(%zu)", n->offset); break;
  default: snprintf(buf, len, n->batched ? "ACT(%zu)" : "FIX(%zu)", n->offset); break;
  }
  return buf;
}

const char *emit_rows(const ir_node *n, char *buf, size_t len) {
  int64_t r = ir_rows(n);
  if (!n->batched) snprintf(buf, len, "%lld", (long long)r);
  else if (r == 1) snprintf(buf, len, "n");
  else snprintf(buf, len, "n * %lld", (long long)r);
  return buf;
}

/* Every string from the .dln (or its path) that reaches the C goes through
 * one of these two, so no file name can change the program: in a literal a
 * quote, a backslash, a control or non-ASCII byte and the second '?' of a
 * "??" (a trigraph under -std=c11: "d??/" would escape the quote) are
 * escaped; in a comment, what would end it ("*" "/") or open another, a
 * trigraph, and bytes that are not printable ASCII are written as visible
 * escapes instead. */
void emit_cstr(FILE *o, const char *s) {
  if (!s) {
    fputs("NULL", o);
    return;
  }
  fputc('"', o);
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') fprintf(o, "\\%c", c);
    else if (c < 32 || c >= 127) fprintf(o, "\\%03o", c);
    else if (c == '?' && p > s && p[-1] == '?') fputs("\\?", o);
    else fputc(c, o);
  }
  fputc('"', o);
}

void emit_comment_text(FILE *o, const char *s) {
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c < 32 && c != '\t') || c >= 127) fprintf(o, "\\x%02x", c);
    else if (c == '/' && p[1] == '*') fputs("/\\", o);   /* "/\*" */
    else if (c == '*' && p[1] == '/') fputs("*\\", o);   /* "*\/" */
    else if (c == '?' && p[1] == '?') fputs("?\\", o);   /* "?\?" */
    else fputc(c, o);
  }
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* ---- per-layer functions ---------------------------------------------------- */

/* Whether node id of group grp is emitted in the group's forward or backward function. */
static int emitted_in(const ir_node *n, int backward) {
  return n->backward == backward && n->fused_in < 0 && op_info_of(n->op)->emit;
}

static int group_has(const emit_ctx *ec, int grp, int backward) {
  for (int id = ec->group_first[grp]; id >= 0; id = ec->group_next[id])
    if (emitted_in(&ec->g->nodes[id], backward)) return 1;
  return 0;
}

/* The first loss names what predict returns; bce_with_logits returns sigmoid(z). */
static int pred_is_logit(const ir_graph *g) {
  for (int id = 0; id < g->nnodes; id++)
    if (ir_is_loss(g->nodes[id].op) && g->nodes[id].loss.names_pred) return g->nodes[id].op == OP_BCE_LOGITS;
  return 0;
}

static void emit_pred_copy(emit_ctx *ec) {
  char p[96], rows[64];
  const ir_node *n = &ec->g->nodes[ec->g->pred];
  emit_ptr(ec, n->id, p, sizeof p);
  emit_rows(n, rows, sizeof rows);
  fprintf(ec->out, "  /* the prediction head%s */\n", pred_is_logit(ec->g) ? ", as probabilities" : "");
  if (pred_is_logit(ec->g))
    fprintf(ec->out, "  for (size_t k = 0; k < (size_t)(%s) * %lld; k++) ctx->out[k] = dl_sigmoid(%s[k]);\n",
            rows, (long long)ir_last_dim(n), p);
  else
    fprintf(ec->out, "  memcpy(ctx->out, %s, (size_t)(%s) * %lld * sizeof(dl_real));\n", p, rows,
            (long long)ir_last_dim(n));
}

/* dense, conv_out and norm compute the activation that follows them (fuse.c). */
static int has_fused_act(const ir_node *n) {
  return ir_op_has(n->op, OPF_EPILOGUE_HOST) && n->epilogue >= 0;
}

static void emit_node(emit_ctx *ec, const ir_node *n) {
  char shape[96];
  fprintf(ec->out, "  /* %s: %s%s -> %s */\n", n->name ? n->name : "", ir_op_name(n->op),
          n->op == OP_DENSE && n->epilogue >= 0 ? " + bias + activation" : "",
          ir_shape_str(n, shape, sizeof shape));
  op_info_of(n->op)->emit(ec, n);
}

/* A node that reads the labels runs only when the caller has them (not in
 * predict): its kernel is emitted inside `if (with_labels)`, indented. */
static void emit_guarded(emit_ctx *ec, const ir_node *n) {
  FILE *out = ec->out;
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) {
    fprintf(out, "  if (with_labels) {\n");
    emit_node(ec, n);
    fprintf(out, "  }\n");
    return;
  }
  ec->out = mem;
  emit_node(ec, n);
  fclose(mem);
  ec->out = out;
  fprintf(out, "  if (with_labels) {\n");
  for (char *line = text; *line;) {
    size_t n = strcspn(line, "\n");
    fprintf(out, "  %.*s\n", (int)n, line);
    line += n + (line[n] == '\n');
  }
  fprintf(out, "  }\n");
  free(text);
}

static void emit_group_nodes(emit_ctx *ec, int grp, int backward) {
  ir_graph *g = ec->g;
  for (int id = ec->group_first[grp]; id >= 0; id = ec->group_next[id]) {
    const ir_node *n = &g->nodes[id];
    if (!emitted_in(n, backward)) continue;
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
  FILE *o = ec->out;
  char *body = NULL, *helpers = NULL;
  size_t body_len = 0, helpers_len = 0;
  FILE *bm = open_memstream(&body, &body_len);
  FILE *hm = open_memstream(&helpers, &helpers_len);
  if (!bm || !hm) {
    fprintf(stderr, "dlnc: out of memory\n");
    exit(1);
  }
  ec->out = bm;
  ec->helpers = hm;
  emit_group_nodes(ec, grp, backward);
  fclose(hm);
  fclose(bm);
  ec->out = o;
  ec->helpers = NULL;
  fputs("/* ", o);
  emit_comment_text(o, base_name(ec->g->source_path));
  fprintf(o, ":%d: ", gr->line);
  emit_comment_text(o, gr->text);
  fprintf(o, "\n * %s */\n", backward ? "backward: gradients of this line's inputs and parameters" : "forward");
  fputs(helpers, o);
  fprintf(o, "static void %s_%s(dl_ctx *ctx, int n, int with_labels) {\n",
          backward ? "backward" : "forward", gr->name);
  fprintf(o, "  (void)ctx;\n  (void)n;\n  (void)with_labels;\n%s}\n\n", body);
  free(helpers);
  free(body);
}

/* compute_grads, forward, loss_only: the layers in order (and back). */
static void emit_drivers(emit_ctx *ec) {
  ir_graph *g = ec->g;
  FILE *o = ec->out;
  char loss[96], total[96];
  emit_ptr(ec, g->loss, loss, sizeof loss);
  emit_ptr(ec, g->total_loss, total, sizeof total);
  fprintf(o, "/* Forward and backward over the batch: every gradient, no update. */\n");
  fprintf(o, "static double compute_grads(dl_ctx *ctx, int n) {\n");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (group_has(ec, grp, 0)) fprintf(o, "  forward_%s(ctx, n, 1);\n", g->groups[grp].name);
  for (int grp = g->ngroups - 1; grp >= 0; grp--)
    if (group_has(ec, grp, 1)) fprintf(o, "  backward_%s(ctx, n, 1);\n", g->groups[grp].name);
  fprintf(o, "  return (double)%s[0];\n}\n\n", total);

  fprintf(o, "/* Inference, or evaluation when with_loss: fills ctx->out, returns the data loss. */\n");
  fprintf(o, "static double forward(dl_ctx *ctx, int n, int with_loss) {\n");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (grp != g->penalty_group && group_has(ec, grp, 0))
      fprintf(o, "  forward_%s(ctx, n, with_loss);\n", g->groups[grp].name);
  fprintf(o, "  return with_loss ? (double)%s[0] : 0.0;\n}\n\n", loss);

  fprintf(o, "/* The differentiated loss (data loss + penalties), forward only. */\n");
  fprintf(o, "static double loss_only(dl_ctx *ctx, int n) {\n");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (group_has(ec, grp, 0)) fprintf(o, "  forward_%s(ctx, n, 1);\n", g->groups[grp].name);
  fprintf(o, "  return (double)%s[0];\n}\n\n", total);
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

static void emit_tensor(FILE *o, const ir_param *p, const char *suffix, const char *kind,
                        size_t offset, const char *init, double init_value) {
  char name[512];
  snprintf(name, sizeof name, "%s%s", p->name, suffix);
  fputs("  {", o);
  emit_cstr(o, name);
  fprintf(o, ", %s, %d, {", kind, p->ndim);
  for (int d = 0; d < p->ndim; d++) fprintf(o, "%s%lld", d ? ", " : "", (long long)p->dims[d]);
  if (p->ndim == 0) fputc('0', o); /* a scalar: no empty braces */
  /* init_src: a parameter's index is its index in the table (parameters come first) */
  int src = !strcmp(kind, "DL_T_PARAM") && p->init == DL_INIT_ROW_NORM ? p->init_src : -1;
  fprintf(o, "}, %zu, %lld, %s, %lld, %lld, %.17g, %d, %d},\n", offset, (long long)p->numel, init,
          (long long)p->fan_in, (long long)p->fan_out, init_value, p->line, src);
}

/* A buffer: its constant start is init_value (a count starts at 0), or a
 * random unit vector (DL_INIT_UNIT_NORMAL). */
static void emit_buffer(FILE *o, const ir_buffer *b) {
  fputs("  {", o);
  emit_cstr(o, b->name);
  fprintf(o, ", %s, %d, {", b->is_count ? "DL_T_COUNT" : "DL_T_BUFFER", b->ndim);
  for (int d = 0; d < b->ndim; d++) fprintf(o, "%s%lld", d ? ", " : "", (long long)b->dims[d]);
  fprintf(o, "%s}, %zu, %lld, %s, 0, 0, %.17g, %d, -1},\n", b->ndim ? "" : "0", b->offset,
          (long long)b->numel, init_enum(b->init_kind), b->init, b->line);
}

static int emit_tensors(emit_ctx *ec) {
  ir_graph *g = ec->g;
  FILE *o = ec->out;
  const ir_optim *op = &g->train.optim;
  int count = 0;
  char suffix[64];
  fprintf(o, "/* Everything in the state block: parameters, gradients, optimiser state, buffers. */\n");
  fprintf(o, "static const dl_tensor_desc tensors[] = {\n");
  for (int p = 0; p < g->nparams; p++, count++)
    emit_tensor(o, &g->params[p], "", "DL_T_PARAM", g->params[p].offset,
                init_enum(param_init(g, &g->params[p])), 0);
  for (int p = 0; p < g->nparams; p++, count++)
    emit_tensor(o, &g->params[p], ".grad", "DL_T_GRAD", g->params[p].grad_offset, "DL_INIT_ZERO", 0);
  for (int s = 0; s < op->nstate; s++)
    for (int p = 0; p < g->nparams; p++, count++) {
      snprintf(suffix, sizeof suffix, ".%s", op->state[s].name);
      ir_param sp = g->params[p];
      if (op->state[s].scalar) sp.ndim = 0, sp.numel = 1; /* one number per parameter */
      emit_tensor(o, &sp, suffix, "DL_T_OPT", sp.opt_offset[s], "DL_INIT_ZERO", op->state[s].init);
    }
  for (int b = 0; b < g->nbuffers; b++, count++) emit_buffer(o, &g->buffers[b]);
  fprintf(o, "};\n\n");
  return count;
}

static void emit_data_spec(FILE *o, const char *field, const ir_data *d) {
  static const char *const kinds[] = {"DL_DATA_NONE", "DL_DATA_IDX", "DL_DATA_CSV", "DL_DATA_TEXT"};
  fprintf(o, "    .%s = {%s, {", field, kinds[d->kind]);
  emit_cstr(o, d->path[0]);
  fputs(", ", o);
  emit_cstr(o, d->path[1]);
  fprintf(o, "}, %.17g, %d, %d, %.17g, %.17g},\n", d->kind ? d->scale : 1.0, d->header, d->line,
          d->from, d->to);
}

static void emit_desc(emit_ctx *ec, int ntensors) {
  ir_graph *g = ec->g;
  FILE *o = ec->out;
  const ir_node *x = &g->nodes[g->input], *pred = &g->nodes[g->pred];
  const ir_train *t = &g->train;
  static const char *const preds[] = {"DL_PRED_ARGMAX", "DL_PRED_BINARY", "DL_PRED_VALUES"};
  static const char *const scheds[] = {"DL_SCHED_CONSTANT", "DL_SCHED_STEP",
                                       "DL_SCHED_EXPONENTIAL", "DL_SCHED_COSINE"};
  int64_t ysize = g->label < 0 ? 0 : g->label_is_class ? g->label_classes : ir_numel(&g->nodes[g->label]);
  fprintf(o, "const dl_model_desc %s_desc = {\n  .name = ", g->model_name);
  emit_cstr(o, g->model_name);
  fputs(",\n  .source = ", o);
  emit_cstr(o, g->source_path);
  fprintf(o, ",\n  .x_ndim = %d,\n  .x_shape = {", x->ndim);
  for (int d = 0; d < x->ndim; d++) fprintf(o, "%s%lld", d ? ", " : "", (long long)x->dims[d]);
  fprintf(o, "},\n  .x_size = %lld,\n", (long long)ir_numel(x));
  fprintf(o, "  .y_kind = %s,\n  .y_size = %lld,\n", g->label_is_class ? "DL_Y_CLASS" : "DL_Y_REAL",
          (long long)ysize);
  if (g->input_vocab) fprintf(o, "  .x_vocab = %lld,\n", (long long)g->input_vocab);
  for (int id = 0; id < g->nnodes; id++)
    if (ir_op_has(g->nodes[id].op, OPF_PERSISTENT)) {
      fprintf(o, "  .stateful = 1,\n");
      break;
    }
  if (g->label >= 0 && g->label_is_class)
    fprintf(o, "  .y_len = %lld,\n", (long long)ir_numel(&g->nodes[g->label]));
  fprintf(o, "  .pred_kind = %s,\n  .out_size = %lld,\n", preds[g->pred_kind], (long long)ir_numel(pred));
  fprintf(o, "  .state_elems = %zu,\n  .act_elems_per_sample = ACT_PER_SAMPLE,\n  .act_elems_fixed = %zu,\n",
          g->state_elems, g->act_fixed);
  fprintf(o, "  .n_tensors = %d,\n  .tensors = tensors,\n", ntensors);
  fprintf(o, "  .defaults = {\n    .batch = %d,\n    .epochs = %d,\n    .lr = %.17g,\n    .seed = %lluu,\n",
          t->batch, t->epochs, t->optim.lr, (unsigned long long)t->seed);
  fprintf(o, "    .schedule = {%s, %d, %.17g, %d, %.17g, %lld},\n", scheds[t->sched_kind],
          t->sched_step_size, t->sched_gamma, t->sched_t_max, t->sched_eta_min,
          (long long)t->warmup);
  fprintf(o, "    .clip_norm = %.17g,\n    .data_dir = ", t->clip);
  emit_cstr(o, t->data_dir ? t->data_dir : g->source_dir);
  fputs(",\n", o);
  emit_data_spec(o, "train", &t->train);
  emit_data_spec(o, "test", &t->test);
  fprintf(o, "  },\n  .compute_grads = compute_grads,\n  .apply_update = apply_update,\n");
  fprintf(o, "  .forward = forward,\n  .loss_only = loss_only,\n};\n\n");
}

/* ---- the embedding API ---------------------------------------------------------- */

static void emit_api_impl(emit_ctx *ec) {
  const char *m = ec->g->model_name;
  FILE *o = ec->out;
  fprintf(o, "/* ---- the embedding API (%s.h) ---- */\n\n", m);
  fprintf(o, "struct %s_model {\n  dl_ctx *ctx;\n};\n\n", m);
  fprintf(o, "%s_model *%s_new(int max_batch, char *err, size_t errlen) {\n", m, m);
  fprintf(o, "  %s_model *m = calloc(1, sizeof *m);\n", m);
  fprintf(o, "  if (!m) {\n    snprintf(err, errlen, \"out of memory\");\n    return NULL;\n  }\n");
  fprintf(o, "  m->ctx = dl_ctx_new(&%s_desc, max_batch > 0 ? max_batch : 1, err, errlen);\n", m);
  fprintf(o, "  if (!m->ctx) {\n    free(m);\n    return NULL;\n  }\n");
  fprintf(o, "  dl_ctx_init_params(m->ctx, %s_desc.defaults.seed);\n  return m;\n}\n\n", m);
  fprintf(o, "int %s_load(%s_model *m, const char *checkpoint, char *err, size_t errlen) {\n", m, m);
  fprintf(o, "  int64_t epoch;\n  return dl_ctx_load(m->ctx, checkpoint, 1, &epoch, err, errlen);\n}\n\n");
  fprintf(o, "int %s_predict(%s_model *m, const dl_real *x, int n, dl_real *out) {\n", m, m);
  fprintf(o, "  if (n < 0 || n > m->ctx->capacity) return -1;\n");
  fprintf(o, "  memcpy(m->ctx->x, x, (size_t)n * %lld * sizeof(dl_real));\n",
          (long long)ir_numel(&ec->g->nodes[ec->g->input]));
  fprintf(o, "  m->ctx->train_mode = 0;\n  forward(m->ctx, n, 0);\n");
  fprintf(o, "  memcpy(out, m->ctx->out, (size_t)n * %lld * sizeof(dl_real));\n  return 0;\n}\n\n",
          (long long)ir_numel(&ec->g->nodes[ec->g->pred]));
  fprintf(o, "void %s_free(%s_model *m) {\n  if (!m) return;\n  dl_ctx_free(m->ctx);\n  free(m);\n}\n", m, m);
}

static void emit_header(const ir_graph *g, FILE *o) {
  char upper[512];
  size_t k = 0;
  for (const char *s = g->model_name; *s && k + 1 < sizeof upper; s++)
    upper[k++] = (char)toupper((unsigned char)*s);
  upper[k] = 0;
  const ir_node *x = &g->nodes[g->input], *pred = &g->nodes[g->pred];
  static const char *const what[] = {"logits (class = argmax)", "probabilities",
                                     "predicted values"};
  fprintf(o, "/* %s.h: generated by dlnc from ", g->model_name);
  emit_comment_text(o, base_name(g->source_path));
  fprintf(o, ". The API to embed model '%s' in C.\n", g->model_name);
  fprintf(o, " * Link with the dlnc runtime (the .c files in runtime/, -lz -lm -lpthread). */\n");
  /* a guard no system or runtime header uses (a model may be named zlib or
   * kernels); the runtime's header with <>: only NAME.h is in the generated
   * directory's "..." search path (-iquote) */
  fprintf(o, "#ifndef DLNC_MODEL_%s_H\n#define DLNC_MODEL_%s_H\n#include <stddef.h>\n#include <dl_model.h>\n\n",
          upper, upper);
  fprintf(o, "enum { %s_INPUT_SIZE = %lld, %s_OUTPUT_SIZE = %lld };\n\n", upper,
          (long long)ir_numel(x), upper, (long long)ir_numel(pred));
  fprintf(o, "extern const dl_model_desc %s_desc;\n\n", g->model_name);
  fprintf(o, "typedef struct %s_model %s_model;\n\n", g->model_name, g->model_name);
  fprintf(o, "/* A model that predicts up to max_batch rows per call; NULL and a message on failure. */\n");
  fprintf(o, "%s_model *%s_new(int max_batch, char *err, size_t errlen);\n", g->model_name, g->model_name);
  fprintf(o, "/* Loads weights from a checkpoint written by the trainer (safetensors). 0 or -1. */\n");
  fprintf(o, "int %s_load(%s_model *m, const char *checkpoint, char *err, size_t errlen);\n", g->model_name,
          g->model_name);
  fprintf(o, "/* x: n rows of %s_INPUT_SIZE inputs (scaled as the training data was);\n", upper);
  fprintf(o, " * out: n rows of %s_OUTPUT_SIZE %s.  0, or -1 if n > max_batch. */\n", upper,
          what[g->pred_kind]);
  fprintf(o, "int %s_predict(%s_model *m, const dl_real *x, int n, dl_real *out);\n", g->model_name,
          g->model_name);
  fprintf(o, "void %s_free(%s_model *m);\n\n#endif\n", g->model_name, g->model_name);
}

static void emit_source(emit_ctx *ec) {
  ir_graph *g = ec->g;
  FILE *o = ec->out;
  fprintf(o, "/* %s.c: generated by dlnc from ", g->model_name);
  emit_comment_text(o, base_name(g->source_path));
  fprintf(o, ". Do not edit; edit the .dln.\n");
  fprintf(o, " * Model '%s': %d parameter tensors, %zu state elements, %zu activation\n",
          g->model_name, g->nparams, g->state_elems, g->act_per_sample);
  fprintf(o, " * elements per sample in one planned arena.  n is the number of rows in\n");
  fprintf(o, " * the batch (at most ctx->capacity); every other size is a constant. */\n");
  fprintf(o, "#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n");
  fprintf(o, "#include <dl_ops.h>\n#include <kernels.h>\n#include \"%s.h\"\n\n", g->model_name);
  fprintf(o, "enum { ACT_PER_SAMPLE = %zu };\n", g->act_per_sample);
  fprintf(o, "#define ST(off) (ctx->state + (off))\n");
  fprintf(o, "#define ACT(off) (ctx->act + (size_t)(off) * (size_t)ctx->capacity)\n");
  fprintf(o, "#define FIX(off) (ctx->act + (size_t)ACT_PER_SAMPLE * (size_t)ctx->capacity + (off))\n\n");
  for (int grp = 0; grp < g->ngroups; grp++)
    if (group_has(ec, grp, 0)) emit_group(ec, grp, 0);
  for (int grp = g->ngroups - 1; grp >= 0; grp--)
    if (group_has(ec, grp, 1)) emit_group(ec, grp, 1);
  emit_drivers(ec);
  optim_emit_update(ec);
  int ntensors = emit_tensors(ec);
  emit_desc(ec, ntensors);
  emit_api_impl(ec);
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
    fprintf(stderr, "dlnc: out of memory\n");
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
  emit_ctx ec = {.g = g, .f64 = f64};
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
  fprintf(m, "/* %s_main.c: generated by dlnc from ", g->model_name);
  emit_comment_text(m, base_name(g->source_path));
  fprintf(m, ": the standalone trainer. */\n");
  fprintf(m, "#include \"%s.h\"\n\nint main(int argc, char **argv) {\n", g->model_name);
  fprintf(m, "  return dl_trainer_main(&%s_desc, argc, argv);\n}\n", g->model_name);
  rc |= close_out(m, path);
  return rc;
}
