/* program.c: a whole program.  The model block's declarations (input,
 * label) and bindings, in order, each binding's expression lowered by
 * lower.c; then the train block (train.c), the penalties and the checks
 * of the whole model.  Also dlnc builtins (lower_describe). */
#include "lower.h"
#include "builtins.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- declarations --------------------------------------------------------- */

static int check_dims(const ast_type *t) {
  double numel = 1;
  for (int d = 0; d < t->ndims; d++) {
    if (t->dims[d] <= 0 || t->dims[d] > (1 << 24)) {
      diag_error(t->dim_locs[d], "dimension must be between 1 and %d", 1 << 24);
      return -1;
    }
    numel *= (double)t->dims[d];
  }
  if (numel > 2147483648.0) {
    diag_error(t->loc, "this type has %.0f values per sample; the limit is 2147483648", numel);
    return -1;
  }
  return 0;
}

/* `class[..., N]`: integer indices in [0, N), one per position of the
 * leading dims (none: one per sample).  0, or -1 after reporting. */
static int check_class_type(const ast_type *t, const char *what, const char *name, int min_dims) {
  if (t->ndims < min_dims) {
    diag_error(t->loc, "%s '%s' of class type needs %s, like %s", what, name,
               min_dims > 1 ? "its length and the number of classes" : "the number of classes",
               min_dims > 1 ? "class[128, 256]" : "class[10] or class[128, 256]");
    return -1;
  }
  if (check_dims(t)) return -1;
  if (t->dims[t->ndims - 1] < 2) {
    diag_error(t->dim_locs[t->ndims - 1], "a class type needs at least 2 classes");
    return -1;
  }
  return 0;
}

/* The node of `input NAME : f32[...]` or `class[T..., V]` (token ids), or -1
 * after reporting. */
static int input_node(lower_ctx *lc, const ast_stmt *s) {
  ir_graph *g = lc->g;
  if (!s->type.elem) {
    diag_error(s->name_loc, "input '%s' of the model needs a type, like input %s : f32[784]", s->name,
               s->name);
    return -1;
  }
  int is_class = strcmp(s->type.elem, "class") == 0;
  if (!is_class && strcmp(s->type.elem, "f32")) {
    diag_error(s->type.loc, "input '%s' must be f32[...] or class[..., N] (token ids), not '%s'",
               s->name, s->type.elem);
    return -1;
  }
  if (s->type.ndims == 0) {
    diag_error(s->type.loc, "input '%s' needs a shape, like f32[784]", s->name);
    return -1;
  }
  if (is_class ? check_class_type(&s->type, "input", s->name, 2) : check_dims(&s->type)) return -1;
  if (g->input >= 0) {
    diag_error(s->loc, "a model takes one input for now; '%s' is a second one", s->name);
    return -1;
  }
  int id = lower_node(lc, OP_INPUT, NULL, 0, s->loc);
  ir_node *n = ir_at(g, id);
  n->batched = 1;
  n->ndim = s->type.ndims - is_class;
  for (int d = 0; d < n->ndim; d++) n->dims[d] = s->type.dims[d];
  n->name = ir_intern(g, s->name);
  n->storage = STORE_INPUT;
  if (is_class) g->input_vocab = s->type.dims[s->type.ndims - 1];
  g->input = id;
  return id;
}

/* The node of `label NAME : class[..., N]` or `f32[...]`, or -1 after reporting. */
static int label_node(lower_ctx *lc, const ast_stmt *s) {
  ir_graph *g = lc->g;
  int is_class = strcmp(s->type.elem, "class") == 0;
  if (!is_class && strcmp(s->type.elem, "f32")) {
    diag_error(s->type.loc, "label '%s' must be class[N] or f32[...], not '%s'", s->name,
               s->type.elem);
    return -1;
  }
  if (s->type.ndims == 0) {
    diag_error(s->type.loc, "label '%s' needs a shape, like %s", s->name,
               is_class ? "class[10]" : "f32[1]");
    return -1;
  }
  if (is_class ? check_class_type(&s->type, "label", s->name, 1) : check_dims(&s->type)) return -1;
  if (g->label >= 0) {
    diag_error(s->loc, "a model takes one label for now; '%s' is a second one", s->name);
    return -1;
  }
  int id = lower_node(lc, OP_LABEL, NULL, 0, s->loc);
  ir_node *n = ir_at(g, id);
  n->batched = 1;
  n->needs_label = 1;
  n->name = ir_intern(g, s->name);
  n->storage = STORE_LABEL;
  /* a class label is an index per position: class[10] has none (ndim 0) */
  n->ndim = s->type.ndims - is_class;
  for (int d = 0; d < n->ndim; d++) n->dims[d] = s->type.dims[d];
  if (is_class) {
    g->label_is_class = 1;
    g->label_classes = s->type.dims[s->type.ndims - 1];
  }
  g->label = id;
  return id;
}

/* input and label: a declaration that failed still binds its name (to -1),
 * so its uses are not reported again. */
static void lower_decl(lower_ctx *lc, const ast_stmt *s) {
  if (lower_check_new_name(lc, s->name, s->name_loc)) return;
  int id = s->kind == ST_INPUT ? input_node(lc, s) : label_node(lc, s);
  lower_add_sym(lc, s->name, id, s->name_loc);
}

/* A node that `id` depends on (itself included) and that reads the input
 * or the label directly, or -1 if there is none.  Nodes read only earlier
 * ones, so one sweep down from id visits every ancestor. */
static int reader_of_data(const ir_graph *g, int id, char *mark) {
  mark[id] = 1;
  for (int i = id; i >= 0; i--) {
    if (!mark[i]) continue;
    const ir_node *n = &g->nodes[i];
    for (int k = 0; k < n->nin; k++) {
      if (n->in[k] == g->input || n->in[k] == g->label) return i;
      mark[n->in[k]] = 1;
    }
  }
  return -1;
}

/* `sample` is the model's generator (BIN sample): per-sample values that
 * depend on noise and parameters only, so they can be drawn without data.
 * 0, or -1 after reporting what it depends on. */
static int check_sample(lower_ctx *lc, const ast_stmt *s, int id) {
  ir_graph *g = lc->g;
  const ir_node *n = &g->nodes[id];
  char shape[96];
  if (!n->batched || n->ndim == 0) {
    diag_error(s->value->loc, "'sample' is the model's generator: it must be per-sample values "
               "(an image, like sigmoid(dense(randn(64), 784))), not %s",
               ir_shape_str(n, shape, sizeof shape));
    return -1;
  }
  char *seen = calloc((size_t)g->nnodes, 1);
  if (!seen) return 0; /* out of memory: the check is lost, not the program */
  int r = id == g->input || id == g->label ? id : reader_of_data(g, id, seen);
  free(seen);
  if (r < 0) return 0;
  const ir_node *rn = &g->nodes[r];
  int data = id == g->input || id == g->label ? id : -1; /* sample = x */
  for (int k = 0; data < 0 && k < rn->nin; k++)
    if (rn->in[k] == g->input || rn->in[k] == g->label) data = rn->in[k];
  const char *via = g->groups[rn->group].name;
  char through[256] = "";
  if (rn->group != n->group && strcmp(via, "inputs"))
    snprintf(through, sizeof through, " (through '%s')", via);
  diag_error(s->value->loc, "'sample' is the model's generator, so it may depend only on noise "
             "(randn, rand) and parameters, but it depends on the %s '%s'%s",
             data == g->input ? "input" : "label", g->nodes[data].name, through);
  return -1;
}

static void lower_binding(lower_ctx *lc, const ast_stmt *s) {
  if (lower_blocks_binding(lc, s)) return; /* an instance, or unpacking */
  if (lower_check_new_name(lc, s->name, s->name_loc)) return;
  lc->group = lower_new_group(lc, s->name, s->loc.line, 0);
  lc->binding = s->name;
  lc->nparam_ops = 0;
  int is_loss = strcmp(s->name, "loss") == 0;
  int id = lower_tensor(lc, s->value);
  if (id < 0) {
    lower_add_sym(lc, s->name, -1, s->name_loc); /* uses of it are not reported again */
    return;
  }
  ir_node *n = ir_at(lc->g, id);
  if (is_loss) {
    char buf[64];
    if (n->batched || n->ndim) {
      diag_error(s->value->loc, "'loss' must be a scalar, like cross_entropy(logits, y); this is %s",
                 ir_shape_str(n, buf, sizeof buf));
      lower_add_sym(lc, s->name, -1, s->name_loc);
      return;
    }
    /* the first loss function's prediction is what predict and eval
       print; a loss of sum() and mean() alone names none */
    if (lc->g->pred < 0) {
      diag_error(s->value->loc, "'loss' calls no loss function (mse, cross_entropy, ...), so the "
                 "model has no prediction; add a term with one, e.g. + mse(out, y)");
      lower_add_sym(lc, s->name, -1, s->name_loc);
      return;
    }
    lc->g->loss = id;
  }
  if (strcmp(s->name, "sample") == 0) {
    if (check_sample(lc, s, id)) {
      lower_add_sym(lc, s->name, -1, s->name_loc);
      return;
    }
    lc->g->sample = id;
  }
  lower_add_sym(lc, s->name, id, s->name_loc);
}

static int declares(const ast_block *b, ast_stmt_kind kind) {
  for (int i = 0; i < b->nstmts; i++)
    if (b->stmts[i].kind == kind) return 1;
  return 0;
}

static void lower_model_block(lower_ctx *lc, const ast_block *b) {
  for (int i = 0; i < b->nstmts; i++) /* for lower_layer_name: every name, also later ones */
    for (int k = 0; k < b->stmts[i].nnames || (k == 0 && b->stmts[i].name); k++)
      ir_names_put(&lc->block_names, b->stmts[i].name ? b->stmts[i].name : b->stmts[i].names[k], i);
  for (int i = 0; i < b->nstmts; i++) {
    const ast_stmt *s = &b->stmts[i];
    if (s->kind == ST_BIND || s->kind == ST_UNPACK) lower_binding(lc, s);
    else if (s->kind == ST_RETURN) diag_error(s->loc, "'return' outside a block: only a block returns values");
    else lower_decl(lc, s);
  }
  if (!declares(b, ST_INPUT))
    diag_error(b->loc, "model '%s' declares no input (input x : f32[N])", b->name);
}

/* After the train block: a model is trained through `loss` or its updates. */
static void check_trained(lower_ctx *lc, const ast_block *b) {
  int loss = lower_find_sym(lc, "loss"); /* bound to -1 if it failed: already reported */
  if (loss >= 0 && lc->syms[loss].node <= -2)
    diag_error(lc->syms[loss].loc, "'loss' must be a scalar, like mse(out, y); this is an instance "
               "of a block: apply it to tensors, like D(x)");
  else if (lc->g->loss < 0 && !lc->update_stmts && (loss < 0 || lc->syms[loss].node >= 0))
    diag_error(b->loc, "model '%s' defines no 'loss' (loss = cross_entropy(logits, y), ...)", b->name);
}

/* A binding whose value reaches no loss (nor an update's), not `sample` and
 * not the prediction is computed for nothing: often a layer meant to be
 * used (h2 = ...; out = dense(h1, 10)). */
static void lint_unused(lower_ctx *lc, const ast_block *model) {
  const ir_graph *g = lc->g;
  if (!diag_lint_enabled(LINT_UNUSED)) return;
  char *reach = calloc((size_t)g->nnodes + 1, 1);
  if (!reach) return; /* only a warning is lost */
  int roots[IR_MAX_UPDATES + 4], nroots = 0;
  roots[nroots++] = g->total_loss;
  roots[nroots++] = g->loss;
  roots[nroots++] = g->pred;
  roots[nroots++] = g->sample;
  for (int k = 0; k < g->nupdates && k < IR_MAX_UPDATES; k++) roots[nroots++] = g->updates[k].total_loss;
  for (int r = 0; r < nroots; r++)
    if (roots[r] >= 0 && roots[r] < g->nnodes) reach[roots[r]] = 1;
  for (int id = g->nnodes - 1; id >= 0; id--) {
    const ir_node *n = &g->nodes[id];
    if (!reach[id]) continue;
    for (int k = 0; k < n->nin; k++) reach[n->in[k]] = 1;
    /* ones_like(s) reads only s's shape, but the user did use s */
    if (ir_op_has(n->op, OPF_SHAPE_LIKE) && n->fill.like >= 0) reach[n->fill.like] = 1;
  }
  for (int i = 0; i < model->nstmts; i++) {
    const ast_stmt *s = &model->stmts[i];
    if (s->kind != ST_BIND || !s->name) continue;
    int sym = lower_find_sym(lc, s->name);
    if (sym < 0 || lc->syms[sym].node < 0 || lc->syms[sym].node >= g->nnodes) continue;
    if (!reach[lc->syms[sym].node])
      diag_lint(LINT_UNUSED, s->name_loc, "'%s' is computed but reaches no loss, no sample and not "
                "the prediction", s->name);
  }
  free(reach);
}

/* The directory holding the .dln, absolute, so a trainer run from anywhere finds its data. */
static char *absolute_dir(const char *path) {
  char cwd[4096];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  char *dir;
  if (path[0] == '/') {
    dir = malloc(n + 2);
    if (!dir) return NULL;
    memcpy(dir, path, n);
    dir[n ? n : 1] = 0;
    if (!n) dir[0] = '/';
    return dir;
  }
  if (!getcwd(cwd, sizeof cwd)) return ir_strdup(".");
  size_t lc = strlen(cwd);
  dir = malloc(lc + n + 2);
  if (!dir) return NULL;
  memcpy(dir, cwd, lc);
  if (n) {
    dir[lc] = '/';
    memcpy(dir + lc + 1, path, n);
    dir[lc + 1 + n] = 0;
  } else {
    dir[lc] = 0;
  }
  return dir;
}

ir_graph *lower_program(const ast_program *p, const char *path, const char *text) {
  lower_ctx lc = {0};
  lc.text = text;
  lc.g = ir_new();
  lower_train_defaults(&lc.g->train);
  lc.g->source_path = ir_strdup(path);
  lc.g->source_dir = absolute_dir(path);
  lc.group = ir_add_group(lc.g, "inputs", 1, "inputs and labels");
  const ast_block *model = NULL, *train = NULL;
  int model_pos = -1;
  for (int i = 0; i < p->nblocks; i++) {
    const ast_block *b = &p->blocks[i];
    if (b->kind == BLK_BLOCK) continue; /* blocks.c */
    if (b->kind == BLK_MODEL && !model) model_pos = i;
    const ast_block **slot = b->kind == BLK_MODEL ? &model : &train;
    if (*slot) {
      diag_error(b->loc, "a second %s block; one model and one train block per file for now",
                 b->kind == BLK_MODEL ? "model" : "train");
      continue;
    }
    *slot = b;
  }
  lower_blocks_begin(&lc, p, model_pos);
  if (model) {
    lc.g->model_name = ir_strdup(model->name);
    lower_model_block(&lc, model);
    check_model_name(lc.g, model->name, model->name_loc);
  } else if (train) {
    diag_error(train->name_loc, "train block for model '%s', but the file has no model block",
               train->name);
  } /* else an empty program (no block, only comments): valid, nothing to check */
  if (train) {
    if (model && strcmp(train->name, model->name))
      diag_error(train->name_loc, "train block names model '%s', but the model is '%s'", train->name,
                 model->name);
    else
      lower_train_block(&lc, train, model && !declares(model, ST_LABEL));
  }
  if (model) check_trained(&lc, model);
  if (diag_error_count() == 0) lower_add_penalties(&lc);
  if (diag_error_count() == 0) lower_warn_unreached(lc.g);
  if (diag_error_count() == 0 && model) lint_unused(&lc, model);
  lower_blocks_end(&lc);
  ir_names_free(&lc.param_index);
  ir_names_free(&lc.buffer_index);
  free(lc.syms);
  ir_names_free(&lc.sym_index);
  ir_names_free(&lc.block_names);
  if (diag_error_count()) {
    ir_free(lc.g);
    return NULL;
  }
  return lc.g;
}

void lower_describe(FILE *out) {
  lower_ctx lc = {.g = ir_new(), .describe = out};
  const char *const *names;
  int n = op_builtin_names(&names);
  diag_set_quiet(1); /* a variadic builtin checks its argument count first */
  for (int i = 0; i < n; i++) {
    ast_expr call = {.kind = EX_CALL, .str = (char *)names[i]};
    int before = lc.described;
    op_find_builtin(names[i])->lower(&lc, &call);
    if (lc.described == before) fprintf(out, "%s(...)\n", names[i]); /* no fixed list */
  }
  lower_describe_train(&lc);
  diag_set_quiet(0);
  diag_reset();
  ir_free(lc.g);
}
