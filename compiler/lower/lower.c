/* lower.c: the model block.  Resolves names, checks shapes and types, and
 * builds the forward graph.  Builtin calls are lowered by their op family
 * (compiler/ops/); the train block by train.c. */
#include "lower.h"
#include "builtins.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- small helpers -------------------------------------------------------- */

static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40) return INT_MAX;
  int d[41][41];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

const char *lower_suggest(const char *s, const char *const *names, int n) {
  const char *best = NULL;
  int bestd = 3;
  for (int i = 0; i < n; i++) {
    int d = edit_distance(s, names[i]);
    if (d < bestd && (size_t)d < strlen(s)) {
      bestd = d;
      best = names[i];
    }
  }
  return best;
}

static int find_sym(lower_ctx *lc, const char *name) { return ir_names_get(&lc->sym_index, name); }

int lower_is_binding_name(const lower_ctx *lc, const char *name) {
  return ir_names_get(&lc->block_names, name) >= 0;
}

static void add_sym(lower_ctx *lc, const char *name, int node, dl_loc loc) {
  if (lc->nsyms == lc->symcap) {
    lc->symcap = lc->symcap ? 2 * lc->symcap : 16;
    lc->syms = realloc(lc->syms, (size_t)lc->symcap * sizeof *lc->syms);
    if (!lc->syms) {
      fprintf(stderr, "dlnc: out of memory\n");
      exit(1);
    }
  }
  lc->syms[lc->nsyms].name = name;
  lc->syms[lc->nsyms].node = node;
  lc->syms[lc->nsyms].loc = loc;
  ir_names_put(&lc->sym_index, name, lc->nsyms);
  lc->nsyms++;
}

int lower_node(lower_ctx *lc, ir_op op, const int *in, int nin, dl_loc loc) {
  int id = ir_add(lc->g, op, in, nin, lc->group, loc);
  lc->g->nodes[id].name = ir_intern(lc->g, lc->binding);
  return id;
}

/* ---- constants ------------------------------------------------------------ */

int lower_eval_number(const ast_expr *e, double *out) {
  double a, b;
  switch (e->kind) {
  case EX_NUM:
    *out = e->num;
    return 0;
  case EX_NEG:
    if (lower_eval_number(e->lhs, &a)) return -1;
    *out = -a;
    return 0;
  case EX_BINOP:
    if (lower_eval_number(e->lhs, &a) || lower_eval_number(e->rhs, &b)) return -1;
    switch (e->op) {
    case '+': *out = a + b; break;
    case '-': *out = a - b; break;
    case '*': *out = a * b; break;
    default:
      if (b == 0) return -1;
      *out = a / b;
      break;
    }
    return isfinite(*out) ? 0 : -1;
  default:
    return -1;
  }
}

/* Whether e is a whole number written as one: integer literals with + - *
 * and negation (10, -3, 2 * 16), not 10.0 or 1e3. */
int lower_is_int(const ast_expr *e) {
  switch (e->kind) {
  case EX_NUM: return e->is_int;
  case EX_NEG: return lower_is_int(e->lhs);
  case EX_BINOP: return e->op != '/' && lower_is_int(e->lhs) && lower_is_int(e->rhs);
  default: return 0;
  }
}

/* ---- arguments ------------------------------------------------------------ */

static const char *kind_name(arg_kind k) {
  switch (k) {
  case ARG_TENSOR:
  case ARG_TARGET:
  case ARG_TOKENS: return "a tensor";
  case ARG_NUMBER: return "a number";
  case ARG_INT: return "a whole number";
  case ARG_BOOL: return "true or false";
  case ARG_IDENT: return "a name";
  default: return "a string";
  }
}

static int lower_tensor_as(lower_ctx *lc, const ast_expr *e, arg_kind as);

static int bind_one(lower_ctx *lc, const ast_expr *call, const arg_spec *s, const ast_expr *e,
                    arg_val *v) {
  v->present = 1;
  v->loc = e->loc;
  switch (s->kind) {
  case ARG_TENSOR:
  case ARG_TARGET:
  case ARG_TOKENS:
    if (e->kind == EX_STR || lower_eval_number(e, &v->num) == 0) break;
    v->node = lower_tensor_as(lc, e, s->kind);
    return v->node < 0 ? -1 : 0;
  case ARG_INT:
    if (!lower_is_int(e) || lower_eval_number(e, &v->num)) break;
    if (fabs(v->num) > INT_MAX) {
      diag_error(e->loc, "argument '%s' of %s() must be at most %d", s->name, call->str, INT_MAX);
      return -1;
    }
    return 0;
  case ARG_NUMBER:
    if (lower_eval_number(e, &v->num)) break;
    return 0;
  case ARG_BOOL:
    if (e->kind != EX_IDENT || (strcmp(e->str, "true") && strcmp(e->str, "false"))) break;
    v->num = strcmp(e->str, "true") == 0;
    return 0;
  case ARG_IDENT:
    if (e->kind != EX_IDENT) break;
    v->str = e->str;
    return 0;
  case ARG_STRING:
    if (e->kind != EX_STR) break;
    v->str = e->str;
    return 0;
  }
  diag_error(e->loc, "argument '%s' of %s() must be %s", s->name, call->str, kind_name(s->kind));
  return -1;
}

int lower_bind_args(lower_ctx *lc, const ast_expr *call, const arg_spec *spec, int nspec,
                    arg_val *out) {
  return lower_bind_args_kw(lc, call, spec, nspec, nspec, out);
}

/* `NAME(a, b = 1, c = ...)`, then the keyword-only arguments' names. */
static void describe_call(FILE *out, const char *name, const arg_spec *spec, int nspec,
                          int npositional) {
  fprintf(out, "%s(", name);
  for (int i = 0; i < nspec; i++) {
    const arg_spec *s = &spec[i];
    fprintf(out, "%s%s", i ? ", " : "", s->name);
    if (s->required == 1) continue;
    if (s->required == ARG_DERIVED) fprintf(out, " = ...");
    else if (s->kind == ARG_BOOL) fprintf(out, " = %s", s->def ? "true" : "false");
    else if (s->kind == ARG_NUMBER || s->kind == ARG_INT) fprintf(out, " = %g", s->def);
    else fprintf(out, " = ...");
  }
  fprintf(out, ")");
  for (int i = npositional; i < nspec; i++)
    fprintf(out, "%s%s", i == npositional ? "  keyword-only: " : ", ", spec[i].name);
  fprintf(out, "\n");
}

int lower_bind_args_kw(lower_ctx *lc, const ast_expr *call, const arg_spec *spec, int nspec,
                       int npositional, arg_val *out) {
  int err = 0, positional = 0;
  if (lc->describe) {
    describe_call(lc->describe, call->str, spec, nspec, npositional);
    lc->described++;
    return -1;
  }
  memset(out, 0, (size_t)nspec * sizeof *out);
  for (int i = 0; i < nspec; i++) {
    out[i].num = spec[i].def;
    out[i].node = -1;
  }
  for (int a = 0; a < call->nargs; a++) {
    const ast_arg *arg = &call->args[a];
    int slot = -1;
    if (!arg->name) {
      if (a > positional) {
        diag_error(arg->value->loc, "positional argument after a keyword argument in %s()",
                   call->str);
        return -1;
      }
      if (positional >= npositional) {
        if (nspec == 0)
          diag_error(arg->value->loc, "%s() takes no arguments", call->str);
        else
          diag_error(arg->value->loc, "too many arguments to %s(): it takes at most %d",
                     call->str, npositional);
        return -1;
      }
      slot = positional++;
    } else {
      for (int i = 0; i < nspec; i++)
        if (strcmp(spec[i].name, arg->name) == 0) slot = i;
      if (slot < 0) {
        const char *names[16];
        for (int i = 0; i < nspec && i < 16; i++) names[i] = spec[i].name;
        const char *hint = lower_suggest(arg->name, names, nspec < 16 ? nspec : 16);
        if (hint)
          diag_error(arg->name_loc, "%s() has no argument '%s'; did you mean '%s'?", call->str,
                     arg->name, hint);
        else
          diag_error(arg->name_loc, "%s() has no argument '%s'", call->str, arg->name);
        err = -1;
        continue;
      }
    }
    if (out[slot].present) {
      diag_error(arg->name ? arg->name_loc : arg->value->loc, "argument '%s' of %s() given twice",
                 spec[slot].name, call->str);
      err = -1;
      continue;
    }
    if (bind_one(lc, call, &spec[slot], arg->value, &out[slot])) err = -1;
  }
  for (int i = 0; i < nspec && !err; i++)
    if (spec[i].required == 1 && !out[i].present) {
      diag_error(call->loc, "%s() needs argument '%s'", call->str, spec[i].name);
      err = -1;
    }
  return err;
}

/* ---- expressions ---------------------------------------------------------- */

static int lower_ident(lower_ctx *lc, const ast_expr *e) {
  int s = find_sym(lc, e->str);
  if (s >= 0) return lc->syms[s].node; /* -1 for a binding that failed: already reported */
  if (op_find_builtin(e->str)) {
    diag_error(e->loc, "'%s' is a function; call it, like %s(x)", e->str, e->str);
    return -1;
  }
  const char *names[256];
  int n = lc->nsyms < 256 ? lc->nsyms : 256;
  for (int i = 0; i < n; i++) names[i] = lc->syms[i].name;
  const char *hint = lower_suggest(e->str, names, n);
  if (hint)
    diag_error(e->loc, "unknown name '%s'; did you mean '%s'?", e->str, hint);
  else
    diag_error(e->loc, "unknown name '%s'", e->str);
  return -1;
}

static int lower_call(lower_ctx *lc, const ast_expr *e) {
  const op_builtin *b = op_find_builtin(e->str);
  if (b) return b->lower(lc, e);
  const char *const *names;
  int n = op_builtin_names(&names);
  const char *hint = lower_suggest(e->str, names, n);
  if (hint)
    diag_error(e->loc, "unknown function '%s'; did you mean '%s'?", e->str, hint);
  else
    diag_error(e->loc, "unknown function '%s'", e->str);
  return -1;
}

/* "class[8, 3]": the declared type of a class-typed node with `classes` classes. */
static const char *class_type_str(const ir_node *n, int64_t classes, char *buf, size_t len) {
  size_t k = (size_t)snprintf(buf, len, "class[");
  for (int d = 0; d < n->ndim && k < len; d++)
    k += (size_t)snprintf(buf + k, len - k, "%lld, ", (long long)n->dims[d]);
  if (k < len) snprintf(buf + k, len - k, "%lld]", (long long)classes);
  return buf;
}

/* Token ids (an input class[T, V]) only feed embedding() and one_hot(), and
 * a class label is only a loss's target: anything else would read indices
 * as numbers (the C would pass an int32_t * as a dl_real *).  `as` is what
 * the name is lowered as: only a name that is itself such an argument may be
 * one.  `id`, or -1 after reporting. */
static int check_class_use(lower_ctx *lc, const ast_expr *e, int id, arg_kind as) {
  ir_graph *g = lc->g;
  char t[96];
  if (id < 0) return id;
  if (id == g->input && g->input_vocab && as != ARG_TOKENS) {
    diag_error(e->loc, "'%s' holds token ids (%s): pass it through embedding() or one_hot() first",
               e->str, class_type_str(&g->nodes[id], g->input_vocab, t, sizeof t));
    return -1;
  }
  if (id == g->label && g->label_is_class && as != ARG_TARGET) {
    diag_error(e->loc, "'%s' holds class indices (%s): it can only be the target of cross_entropy()",
               e->str, class_type_str(&g->nodes[id], g->label_classes, t, sizeof t));
    return -1;
  }
  return id;
}

static int lower_tensor_as(lower_ctx *lc, const ast_expr *e, arg_kind as) {
  if (e->kind == EX_IDENT) return check_class_use(lc, e, lower_ident(lc, e), as);
  return lower_tensor(lc, e);
}

int lower_tensor(lower_ctx *lc, const ast_expr *e) {
  switch (e->kind) {
  case EX_IDENT: return check_class_use(lc, e, lower_ident(lc, e), ARG_TENSOR);
  case EX_CALL: return lower_call(lc, e);
  case EX_BINOP:
  case EX_NEG: return lower_binop(lc, e);
  case EX_NUM:
    diag_error(e->loc, "expected a tensor, found the number %g", e->num);
    return -1;
  default:
    diag_error(e->loc, "expected a tensor, found a string");
    return -1;
  }
}

/* ---- declarations --------------------------------------------------------- */

/* Line `line` of the source without its indentation, for the comment above
 * the line's generated functions. */
static char *line_text(int line) {
  int n;
  const char *p = diag_line(line, &n);
  if (!p) return ir_strdup("");
  while (n > 0 && (*p == ' ' || *p == '\t')) p++, n--;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  memcpy(s, p, (size_t)n);
  s[n] = 0;
  return s;
}

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

/* Layers and their tensors are named after the binding ("NAME_12.out_proj.weight"
 * and its optimiser state): a bound on names keeps those whole. */
enum { MAX_NAME = 200 };

/* 0 if `name` is not bound yet; else reports it, with the first definition. */
static int check_new_name(lower_ctx *lc, const char *name, dl_loc loc) {
  if (strlen(name) > MAX_NAME) {
    diag_error(loc, "a name is at most %d characters; this one has %zu", MAX_NAME, strlen(name));
    if (find_sym(lc, name) < 0) add_sym(lc, name, -1, loc); /* its uses are not reported again */
    return -1;
  }
  int prev = find_sym(lc, name);
  if (prev < 0) return 0;
  diag_error(loc, "'%s' is already defined", name);
  diag_note(lc->syms[prev].loc, "'%s' was defined here", name);
  return -1;
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
  if (check_new_name(lc, s->name, s->name_loc)) return;
  int id = s->kind == ST_INPUT ? input_node(lc, s) : label_node(lc, s);
  add_sym(lc, s->name, id, s->name_loc);
}

static void lower_binding(lower_ctx *lc, const ast_stmt *s) {
  if (check_new_name(lc, s->name, s->name_loc)) return;
  char *text = line_text(s->loc.line);
  lc->group = ir_add_group(lc->g, s->name, s->loc.line, text);
  free(text);
  lc->binding = s->name;
  lc->nparam_ops = 0;
  int is_loss = strcmp(s->name, "loss") == 0;
  int id = lower_tensor(lc, s->value);
  if (id < 0) {
    add_sym(lc, s->name, -1, s->name_loc); /* uses of it are not reported again */
    return;
  }
  ir_node *n = ir_at(lc->g, id);
  if (is_loss) {
    char buf[64];
    if (n->batched || n->ndim) {
      diag_error(s->value->loc, "'loss' must be a scalar, like cross_entropy(logits, y); this is %s",
                 ir_shape_str(n, buf, sizeof buf));
      add_sym(lc, s->name, -1, s->name_loc);
      return;
    }
    lc->g->loss = id;
  }
  add_sym(lc, s->name, id, s->name_loc);
}

static int declares(const ast_block *b, ast_stmt_kind kind) {
  for (int i = 0; i < b->nstmts; i++)
    if (b->stmts[i].kind == kind) return 1;
  return 0;
}

static void lower_model_block(lower_ctx *lc, const ast_block *b) {
  for (int i = 0; i < b->nstmts; i++) /* for lower_layer_name: every name, also later ones */
    ir_names_put(&lc->block_names, b->stmts[i].name, i);
  for (int i = 0; i < b->nstmts; i++) {
    const ast_stmt *s = &b->stmts[i];
    if (s->kind == ST_BIND) lower_binding(lc, s);
    else lower_decl(lc, s);
  }
  if (!declares(b, ST_INPUT))
    diag_error(b->loc, "model '%s' declares no input (input x : f32[N])", b->name);
  int loss = find_sym(lc, "loss"); /* bound to -1 if it failed: already reported */
  if (lc->g->loss < 0 && (loss < 0 || lc->syms[loss].node >= 0))
    diag_error(b->loc, "model '%s' defines no 'loss' (loss = cross_entropy(logits, y), ...)", b->name);
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
  for (int i = 0; i < p->nblocks; i++) {
    const ast_block *b = &p->blocks[i];
    const ast_block **slot = b->kind == BLK_MODEL ? &model : &train;
    if (*slot) {
      diag_error(b->loc, "a second %s block; one model and one train block per file for now",
                 b->kind == BLK_MODEL ? "model" : "train");
      continue;
    }
    *slot = b;
  }
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
  if (diag_error_count() == 0) lower_add_penalties(&lc);
  if (diag_error_count() == 0) lower_warn_unreached(lc.g);
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
