/* lower.c: expressions.  Resolves names, binds and checks a call's
 * arguments, and builds the forward graph; builtin calls are lowered by
 * their op family (compiler/ops/).  The program around it (declarations,
 * bindings, the train block) is program.c's. */
#include "lower.h"
#include "builtins.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
      /* two letters swapped ('rleu') are one slip, not two */
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < d[i][j])
        d[i][j] = d[i - 2][j - 2] + 1;
    }
  return d[la][lb];
}

/* How far a misspelling may be from the name it suggests: one edit in a
 * short name, two up to 8 characters, three beyond.  A fixed limit of 2
 * offered 'lstm' for 'sum' (two edits, but two of three letters): a
 * suggestion must share most of the name to help. */
static int suggest_limit(size_t len) { return len <= 4 ? 1 : len <= 8 ? 2 : 3; }

/* In a name of 3 letters or fewer a changed letter leaves little of it
 * ('max' is not a misspelt 'mae'): only a missing, extra or swapped letter counts. */
static int plausible(const char *s, const char *name, int d) {
  size_t ls = strlen(s), ln = strlen(name);
  if ((size_t)d >= ls || d > suggest_limit(ln)) return 0;
  if (ls > 3 || ln != ls) return 1; /* long, or a missing or extra letter */
  int count[256] = {0};              /* short: only two letters swapped ('mni') */
  for (size_t i = 0; i < ls; i++) count[(unsigned char)s[i]]++, count[(unsigned char)name[i]]--;
  for (int c = 0; c < 256; c++)
    if (count[c]) return 0;
  return 1;
}

const char *lower_suggest(const char *s, const char *const *names, int n) {
  const char *best = NULL;
  int bestd = suggest_limit(strlen(s)) + 1;
  for (int i = 0; i < n; i++) {
    int d = edit_distance(s, names[i]);
    if (d < bestd && plausible(s, names[i], d)) {
      bestd = d;
      best = names[i];
    }
  }
  return best;
}

/* Keras and PyTorch spellings of what dlnc spells otherwise: still errors
 * (an unknown argument), but the message names dlnc's way.  `where` is the
 * function (or "train" for a train setting) the spelling applies to; NULL
 * for any. */
static const struct {
  const char *name, *where, *say;
} foreign[] = {
  {"activation", "dense", "dlnc applies activations as functions: write relu(dense(x, 64))"},
  {"activation", "conv2d", "dlnc applies activations as functions: write relu(conv2d(x, ...))"},
  {"units", "dense", "dense's width is its second argument: write dense(x, 64)"},
  {"use_bias", NULL, "write bias = false"},
  {"kernel_initializer", NULL, "write init = he_uniform (or another initialiser)"},
  {"learning_rate", NULL, "write lr = ..."},
  {"batch_size", NULL, "write batch = ..."},
  {"epoch", "train", "write epochs = ..."},
  {"nb_epoch", NULL, "write epochs = ..."},
  {"kernel_size", NULL, "write kernel = ..."},
  {"strides", NULL, "write stride = ..."},
  {"filters", "conv2d", "conv2d's channel count is its second argument: write conv2d(x, 32, kernel = 3)"},
  {"rate", "dropout", "dropout's probability is its second argument: write dropout(x, 0.5)"},
  {"momentum", "adam", "adam has beta1 (and beta2)"},
  {"loss", "train", "the loss is the model's binding named loss (loss = cross_entropy(logits, y))"},
  /* functions by other libraries' names */
  {"cat", "function", "write concat(a, b)"},
  {"concatenate", "function", "write concat(a, b)"},
  {"add", "function", "write a + b"},
  {"mul", "function", "write a * b"},
  {"multiply", "function", "write a * b"},
  {"linear", "function", "write dense(x, units)"},
  {"Dense", "function", "write dense(x, units)"},
  {"Linear", "function", "write dense(x, units)"},
  {"conv", "function", "write conv2d(x, channels, kernel = k)"},
  {"Conv2D", "function", "write conv2d(x, channels, kernel = k)"},
  {"Conv2d", "function", "write conv2d(x, channels, kernel = k)"},
  {"max_pool2d", "function", "write maxpool(x, k)"},
  {"MaxPooling2D", "function", "write maxpool(x, k)"},
  {"avg_pool2d", "function", "write avgpool(x, k)"},
  {"Flatten", "function", "write flatten(x)"},
  {"view", "function", "write reshape(x, ...) or flatten(x)"},
  {"log_softmax", "function", "cross_entropy takes logits and applies log-softmax itself"},
  {"nll_loss", "function", "write cross_entropy(logits, y): it applies log-softmax itself"},
  {"validation_split", NULL, "give a test set in the train block: test = idx(...)"},
};

const char *lower_foreign_hint(const char *name, const char *where) {
  for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
    if (!strcmp(foreign[i].name, name) && (!foreign[i].where || (where && !strcmp(foreign[i].where, where))))
      return foreign[i].say;
  return NULL;
}

int lower_find_sym(lower_ctx *lc, const char *name) {
  return ir_names_get(&lc->sym_index, name);
}

int lower_is_binding_name(const lower_ctx *lc, const char *name) {
  return ir_names_get(&lc->block_names, name) >= 0;
}

void lower_add_sym(lower_ctx *lc, const char *name, int node, dl_loc loc) {
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
        const char *foreign_hint = lower_foreign_hint(arg->name, call->str);
        if (foreign_hint && !hint)
          diag_error(arg->name_loc, "%s() has no argument '%s': %s", call->str, arg->name,
                     foreign_hint);
        else if (hint)
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
  int s = lower_find_sym(lc, e->str);
  if (s >= 0 && lc->syms[s].node >= -1)
    return lc->syms[s].node; /* -1 for a binding that failed: already reported */
  if (lc->block_ident && lc->block_ident(lc, e)) return -1; /* an instance, a block, ... */
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
  int r = lc->block_call ? lc->block_call(lc, e) : -2; /* an instance applied, or a block */
  if (r != -2) return r;
  const op_builtin *b = op_find_builtin(e->str);
  if (b) return b->lower(lc, e);
  if (!strcmp(e->str, "update")) { /* a train block's statement (updates.c) */
    diag_error(e->loc, "update(...) belongs in the train block: NAME = update(loss, params = P, "
                       "optimizer = ...)");
    return -1;
  }
  const char *foreign_hint = lower_foreign_hint(e->str, "function");
  if (foreign_hint) {
    diag_error(e->loc, "unknown function '%s': %s", e->str, foreign_hint);
    return -1;
  }
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

void lower_unknown_choice(const ast_expr *e, const char *what, const char *const *names, int n) {
  const char *hint = lower_suggest(e->str, names, n);
  if (hint) {
    diag_error(e->loc, "unknown %s '%s'; did you mean '%s'?", what, e->str, hint);
    return;
  }
  char list[256];
  size_t k = 0;
  list[0] = 0;
  for (int i = 0; i < n && k < sizeof list; i++)
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
  diag_error(e->loc, "unknown %s '%s' (%s)", what, e->str, list);
}
