/* blocks.c: reusable blocks (docs/language.md, "Blocks").
 *
 *   block Disc(hidden = 256) { input x; h = dense(x, hidden); return h }
 *   D = Disc(hidden = 512)      an instance: a name, the block, its arguments
 *   a = D(x)                    an application: the body lowered again
 *
 * An instance is not a tensor: its symbol's node is LOWER_INSTANCE_NODE(i).
 * Each application lowers the block's body anew, in a scope of its own (the
 * block's inputs bound to the argument nodes, its parameters substituted as
 * numbers into a copy of each statement), with its bindings named
 * INSTANCE.BINDING, so a layer's parameters are "D.h.weight" as torch names
 * a submodule's.  A second application reaches the same names, and
 * layers.c then reads the parameters the first one made (lc->param_index).
 * Each body binding of each application is a group (one C function), named
 * D_h, D_h_2, ... unique among the groups and the model's names.  The outer
 * binding goes on in a new group after the application's, since groups run
 * in order. */
#include "lower.h"
#include "builtins.h"
#include <stdlib.h>
#include <string.h>

/* Applications nested at most MAX_DEPTH deep, and at most MAX_APPLICATIONS
 * in a model (each lowers a body again: blocks applying blocks twice would
 * grow exponentially). */
enum { MAX_DEPTH = 64, MAX_APPLICATIONS = 20000 };

typedef struct blk_def {
  const ast_block *ast;
  int pos;                   /* index in the program's blocks: defined before use */
  int ninputs;
  const ast_stmt *ret;       /* its return statement (NULL: reported) */
  int failed;                /* an application reported errors: later ones are quiet */
} blk_def;

typedef struct blk_inst {
  char *name;                /* "D", "blocks.0", "D.attn" */
  int def;                   /* its block; -1 for repeat()'s list */
  double *val;               /* per parameter of the block */
  char *is_int, *is_bool;
  dl_loc loc;                /* where it was made */
  int applied;
  dl_loc first_apply;
  int first, count;          /* repeat: instances first .. first+count-1 */
} blk_inst;

typedef struct blk_scope {   /* what an application saves of the scope around it */
  void *syms;
  int nsyms, symcap;
  ir_names sym_index, block_names;
  int group;
  const char *binding;
  int nparam_ops, layer_suffix;
  dl_loc apply_loc, first_apply_loc;
  const char *instance;
  int def;                   /* the block whose body it lowered, -1: the model */
  const char *prefix;
} blk_scope;

struct lower_blocks {
  blk_def *defs;
  int ndefs;
  ir_names def_index;
  blk_inst *insts;
  int ninsts, instcap;
  ir_names inst_index;       /* by full name */
  int model_pos;
  const char *model_name;
  ir_names model_names;      /* model bindings, also while lowering a body */
  ir_names group_names;      /* groups this file made */
  ir_names group_next;       /* a base name's next suffix to try (no rescans) */
  int def;                   /* body being lowered (-1: the model) */
  const char *prefix;        /* its instance's name + ".", "" in the model */
  blk_scope *outer[MAX_DEPTH]; /* the scopes around it, outermost first */
  int depth;
  int applications;          /* lowered so far: bounded (blocks nest exponentially) */
  ast_expr **copies;         /* substituted statements, freed at the end */
  int ncopies, copycap;
};

static int block_call(lower_ctx *lc, const ast_expr *e);
static int bl_suggest(lower_ctx *lc, const ast_expr *e);
static int outer_name(lower_ctx *lc, const ast_expr *e);
static int block_ident(lower_ctx *lc, const ast_expr *e);

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (!p) {
    fprintf(stderr, "dlnc: out of memory\n");
    exit(1);
  }
  return p;
}

static void *xgrow(void *p, int *cap, size_t elem) {
  *cap = *cap ? 2 * *cap : 8;
  p = realloc(p, (size_t)*cap * elem);
  if (!p) {
    fprintf(stderr, "dlnc: out of memory\n");
    exit(1);
  }
  return p;
}

/* ---- names and groups ------------------------------------------------------ */

enum { MAX_NAME = LOWER_MAX_NAME };

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

static int group_taken(const lower_ctx *lc, const char *name) {
  const struct lower_blocks *b = lc->blocks;
  return !strcmp(name, "inputs") || !strcmp(name, "penalties") ||
         (b && (ir_names_get(&b->group_names, name) >= 0 ||
                ir_names_get(&b->model_names, name) >= 0));
}

int lower_new_group(lower_ctx *lc, const char *name, int line, int unique) {
  char base[MAX_NAME * 2], cand[MAX_NAME * 2 + 16];
  snprintf(base, sizeof base, "%s", name);
  for (char *c = base; *c; c++)
    if (*c == '.') *c = '_';
  snprintf(cand, sizeof cand, "%s", base);
  int k = lc->blocks ? ir_names_get(&lc->blocks->group_next, base) : -1;
  if (k < 2) k = 2;
  if (unique && group_taken(lc, cand)) {
    do snprintf(cand, sizeof cand, "%s_%d", base, k++);
    while (group_taken(lc, cand));
    ir_names_put(&lc->blocks->group_next, ir_intern(lc->g, base), k);
  }
  char *text = line_text(line);
  int grp = ir_add_group(lc->g, cand, line, text);
  free(text);
  if (lc->blocks) ir_names_put(&lc->blocks->group_names, lc->g->groups[grp].name, grp);
  return grp;
}

/* A binding's or an instance's name with its instances' prefix ("E.inner.h"):
 * 0, or -1 after reporting one too long (a layer's tensors are named after it). */
static int full_name(lower_ctx *lc, const char *name, dl_loc loc, char *out, size_t len) {
  snprintf(out, len, "%s%s", lc->blocks ? lc->blocks->prefix : "", name);
  if (strlen(lc->blocks ? lc->blocks->prefix : "") + strlen(name) <= MAX_NAME) return 0;
  diag_error(loc, "the full name of '%s' here, with its instances' names, is longer than %d "
             "characters: nest fewer instances, or give them shorter names", name, MAX_NAME);
  return -1;
}

/* ---- blocks ----------------------------------------------------------------- */

static int def_param(const blk_def *d, const char *name) {
  for (int i = 0; i < d->ast->nparams; i++)
    if (!strcmp(d->ast->params[i].name, name)) return i;
  return -1;
}

static int is_bool_expr(const ast_expr *e) {
  return e->kind == EX_IDENT && (!strcmp(e->str, "true") || !strcmp(e->str, "false"));
}

/* What a block's definition alone shows: its parameters' defaults are
 * constants, its parameters are not also its bindings, one return ends it. */
static void check_def(blk_def *d) {
  const ast_block *b = d->ast;
  double v;
  for (int i = 0; i < b->nparams; i++) {
    const ast_arg *p = &b->params[i];
    for (int j = 0; j < i; j++)
      if (!strcmp(b->params[j].name, p->name))
        diag_error(p->name_loc, "block '%s' has two parameters '%s'", b->name, p->name);
    if (p->value && !is_bool_expr(p->value) && lower_eval_number(p->value, &v))
      diag_error(p->value->loc, "the default of parameter '%s' must be a number or true/false",
                 p->name);
  }
  for (int i = 0; i < b->nstmts; i++) {
    const ast_stmt *s = &b->stmts[i];
    if (s->kind == ST_INPUT) d->ninputs++;
    if (s->kind == ST_LABEL)
      diag_error(s->loc, "a block has no label: pass the target to it as an input");
    if (s->kind == ST_RETURN) {
      if (d->ret) diag_error(s->loc, "block '%s' returns twice", b->name);
      else if (i + 1 < b->nstmts)
        diag_error(b->stmts[i + 1].loc, "a statement after the return of block '%s'", b->name);
      else d->ret = s;
    }
    for (int k = 0; k < (s->name ? 1 : s->nnames); k++) {
      const char *n = s->name ? s->name : s->names[k];
      dl_loc at = s->name ? s->name_loc : s->name_locs[k];
      if (s->kind != ST_RETURN && def_param(d, n) >= 0)
        diag_error(at, "'%s' is a parameter of block '%s'; a binding needs another name", n, b->name);
    }
  }
  int returns = 0;
  for (int i = 0; i < b->nstmts; i++) returns += b->stmts[i].kind == ST_RETURN;
  if (!returns)
    diag_error(b->name_loc, "block '%s' has no return (end it with: return NAME)", b->name);
}

void lower_blocks_begin(lower_ctx *lc, const ast_program *p, int model_pos) {
  struct lower_blocks *bl = xcalloc(1, sizeof *bl);
  bl->model_pos = model_pos;
  bl->def = -1;
  bl->prefix = "";
  lc->blocks = bl;
  lc->block_call = block_call;
  lc->block_ident = block_ident;
  if (model_pos >= 0) {
    const ast_block *m = &p->blocks[model_pos];
    bl->model_name = m->name;
    for (int i = 0; i < m->nstmts; i++)
      for (int k = 0; k < (m->stmts[i].name ? 1 : m->stmts[i].nnames); k++)
        ir_names_put(&bl->model_names,
                     m->stmts[i].name ? m->stmts[i].name : m->stmts[i].names[k], i);
  }
  int cap = 0;
  for (int i = 0; i < p->nblocks; i++) {
    const ast_block *b = &p->blocks[i];
    if (b->kind != BLK_BLOCK) continue;
    int prev = ir_names_get(&bl->def_index, b->name);
    if (prev >= 0) {
      diag_error(b->name_loc, "block '%s' is already defined", b->name);
      diag_note(bl->defs[prev].ast->name_loc, "'%s' was defined here", b->name);
      continue;
    }
    if (op_find_builtin(b->name)) {
      diag_error(b->name_loc, "block '%s' has the name of a built-in function; rename it", b->name);
      continue;
    }
    if (bl->ndefs == cap) bl->defs = xgrow(bl->defs, &cap, sizeof *bl->defs);
    blk_def *d = &bl->defs[bl->ndefs];
    memset(d, 0, sizeof *d);
    d->ast = b;
    d->pos = i;
    check_def(d);
    ir_names_put(&bl->def_index, b->name, bl->ndefs++);
  }
}

void lower_blocks_end(lower_ctx *lc) {
  struct lower_blocks *bl = lc->blocks;
  if (!bl) return;
  for (int i = 0; i < bl->ninsts; i++) {
    free(bl->insts[i].name);
    free(bl->insts[i].val);
    free(bl->insts[i].is_int);
    free(bl->insts[i].is_bool);
  }
  for (int i = 0; i < bl->ncopies; i++) ast_expr_free(bl->copies[i]);
  free(bl->copies);
  free(bl->insts);
  free(bl->defs);
  ir_names_free(&bl->def_index);
  ir_names_free(&bl->inst_index);
  ir_names_free(&bl->model_names);
  ir_names_free(&bl->group_names);
  ir_names_free(&bl->group_next);
  free(bl);
  lc->blocks = NULL;
}

/* The block `name` seen from here, or -1 (reported if it is one used too
 * early or by itself; *known set if the name is a block at all). */
static int find_def(lower_ctx *lc, const char *name, dl_loc loc, int *known) {
  struct lower_blocks *bl = lc->blocks;
  int d = ir_names_get(&bl->def_index, name);
  *known = d >= 0;
  if (d < 0) return -1;
  int here = bl->def >= 0 ? bl->defs[bl->def].pos : bl->model_pos;
  if (d == bl->def) {
    diag_error(loc, "block '%s' makes an instance of itself: a block cannot be recursive", name);
    return -1;
  }
  if (bl->defs[d].pos > here) {
    diag_error(loc, "block '%s' is used before it is defined", name);
    diag_note(bl->defs[d].ast->name_loc, "'%s' is defined here; move it above", name);
    return -1;
  }
  return d;
}

/* The instance a symbol of this scope holds, or -1. */
static int sym_instance(lower_ctx *lc, const char *name) {
  int s = lower_find_sym(lc, name);
  return s >= 0 && lc->syms[s].node <= -2 ? -2 - lc->syms[s].node : -1;
}

/* ---- making instances ---------------------------------------------------------- */

static int new_inst(lower_ctx *lc, const char *name, int def, dl_loc loc) {
  struct lower_blocks *bl = lc->blocks;
  if (bl->ninsts == bl->instcap) bl->insts = xgrow(bl->insts, &bl->instcap, sizeof *bl->insts);
  blk_inst *in = &bl->insts[bl->ninsts];
  memset(in, 0, sizeof *in);
  in->name = ir_strdup(name);
  in->def = def;
  in->loc = loc;
  int np = def >= 0 ? bl->defs[def].ast->nparams : 0;
  in->val = xcalloc((size_t)np + 1, sizeof *in->val);
  in->is_int = xcalloc((size_t)np + 1, 1);
  in->is_bool = xcalloc((size_t)np + 1, 1);
  ir_names_put(&bl->inst_index, in->name, bl->ninsts);
  return bl->ninsts++;
}

/* One block argument: a number or true/false, as the parameter's default is. */
static int bind_param(lower_ctx *lc, const blk_def *d, int k, const ast_expr *e, blk_inst *in) {
  const ast_arg *p = &d->ast->params[k];
  int want_bool = p->value && is_bool_expr(p->value);
  if (is_bool_expr(e) && (want_bool || !p->value)) {
    in->is_bool[k] = 1;
    in->val[k] = !strcmp(e->str, "true");
    return 0;
  }
  if (!want_bool && lower_eval_number(e, &in->val[k]) == 0) {
    in->is_int[k] = (char)lower_is_int(e);
    return 0;
  }
  int s = e->kind == EX_IDENT ? lower_find_sym(lc, e->str) : -1;
  if (s >= 0 || (e->kind != EX_IDENT && e->kind != EX_NUM))
    diag_error(e->loc, "parameter '%s' of block '%s' must be %s, not a tensor: make an instance, "
               "like D = %s(...), and apply it to tensors: D(x)", p->name, d->ast->name,
               want_bool ? "true or false" : "a number", d->ast->name);
  else
    diag_error(e->loc, "parameter '%s' of block '%s' must be %s", p->name, d->ast->name,
               want_bool ? "true or false" : "a number");
  return -1;
}

/* The arguments of `Block(...)` against the block's parameters: positional,
 * then by name, the rest from the defaults. */
static int bind_params(lower_ctx *lc, int def, const ast_expr *call, blk_inst *in) {
  const blk_def *d = &lc->blocks->defs[def];
  const ast_block *b = d->ast;
  char given[64] = {0};
  int err = 0;
  if (b->nparams > 64) {
    diag_error(b->name_loc, "a block has at most 64 parameters");
    return -1;
  }
  for (int a = 0; a < call->nargs; a++) {
    const ast_arg *arg = &call->args[a];
    int k = a;
    if (arg->name) {
      k = def_param(d, arg->name);
      if (k < 0) {
        const char *names[64];
        for (int i = 0; i < b->nparams; i++) names[i] = b->params[i].name;
        const char *hint = lower_suggest(arg->name, names, b->nparams);
        diag_error(arg->name_loc, "block '%s' has no parameter '%s'%s%s%s", b->name, arg->name,
                   hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
        err = -1;
        continue;
      }
    } else if (a >= b->nparams) {
      diag_error(arg->value->loc, "too many arguments to block '%s': it has %d parameter%s",
                 b->name, b->nparams, b->nparams == 1 ? "" : "s");
      return -1;
    }
    if (given[k]++) {
      diag_error(arg->name ? arg->name_loc : arg->value->loc,
                 "parameter '%s' of block '%s' given twice", b->params[k].name, b->name);
      err = -1;
      continue;
    }
    if (bind_param(lc, d, k, arg->value, in)) err = -1;
  }
  for (int k = 0; k < b->nparams && !err; k++) {
    if (given[k]) continue;
    if (!b->params[k].value) {
      diag_error(call->loc, "block '%s' needs parameter '%s'", b->name, b->params[k].name);
      err = -1;
    } else if (bind_param(lc, d, k, b->params[k].value, in)) {
      err = -1;
    }
  }
  return err;
}

static int sym_instance(lower_ctx *lc, const char *name);

static int is_block_call(lower_ctx *lc, const ast_expr *e) {
  return e->kind == EX_CALL && ir_names_get(&lc->blocks->def_index, e->str) >= 0;
}

/* `Block(...)` or `repeat(...)` makes an instance, unless an instance of
 * that name is bound here (then it is applied). */
static int makes_instance(lower_ctx *lc, const ast_expr *e) {
  return e->kind == EX_CALL && (is_block_call(lc, e) || !strcmp(e->str, "repeat")) &&
         sym_instance(lc, e->str) < 0;
}

/* `NAME = Block(args)` or `NAME = repeat(Block(args), N)`: the instance
 * (found again when a body making it is lowered again), or -1. */
static int make_instance(lower_ctx *lc, const char *name, const ast_expr *e) {
  struct lower_blocks *bl = lc->blocks;
  char full[MAX_NAME * 2];
  if (full_name(lc, name, e->loc, full, sizeof full)) return -1;
  int old = ir_names_get(&bl->inst_index, full);
  if (old >= 0) return old; /* the body is lowered again: the same instance */
  int known, count = 1, rep = !strcmp(e->str, "repeat");
  const ast_expr *call = e;
  if (rep) {
    double n;
    if (e->nargs != 2 || e->args[0].name || e->args[1].name || !is_block_call(lc, e->args[0].value)) {
      diag_error(e->loc, "repeat() takes a block and a count, like repeat(Block(args), 4)");
      return -1;
    }
    call = e->args[0].value;
    const ast_expr *ne = e->args[1].value;
    if (!lower_is_int(ne) || lower_eval_number(ne, &n) || n < 1 || n > 4096) {
      diag_error(ne->loc, "the count of repeat() must be a whole number from 1 to 4096");
      return -1;
    }
    count = (int)n;
  }
  int def = find_def(lc, call->str, call->loc, &known);
  if (def < 0) return -1;
  const blk_def *d = &bl->defs[def];
  if (rep && (d->ninputs != 1 || !d->ret || d->ret->nnames != 1)) {
    diag_error(e->loc, "repeat() needs a block of one input and one return value (each "
               "instance's output is the next one's input); '%s' has %d and %d",
               d->ast->name, d->ninputs, d->ret ? d->ret->nnames : 0);
    return -1;
  }
  int first = -1;
  for (int k = 0; k < count; k++) {
    char sub[MAX_NAME * 2 + 16];
    if (rep) snprintf(sub, sizeof sub, "%s.%d", full, k);
    else snprintf(sub, sizeof sub, "%s", full);
    int i = new_inst(lc, sub, def, call->loc);
    if (bind_params(lc, def, call, &bl->insts[i])) return -1;
    if (first < 0) first = i;
  }
  if (!rep) return first;
  int list = new_inst(lc, full, -1, e->loc);
  bl->insts[list].first = first;
  bl->insts[list].count = count;
  return list;
}

/* ---- applying instances ------------------------------------------------------- */

static int apply(lower_ctx *lc, int inst, const ast_expr *call, int *out, int maxout);

static void push_scope(lower_ctx *lc, blk_scope *sc) {
  struct lower_blocks *bl = lc->blocks;
  *sc = (blk_scope){lc->syms, lc->nsyms, lc->symcap, lc->sym_index, lc->block_names,
                    lc->group, lc->binding, lc->nparam_ops, lc->layer_suffix, lc->apply_loc,
                    lc->first_apply_loc, lc->instance, bl->def, bl->prefix};
  bl->outer[bl->depth++] = sc;
  lc->syms = NULL;
  lc->nsyms = lc->symcap = 0;
  memset(&lc->sym_index, 0, sizeof lc->sym_index);
  memset(&lc->block_names, 0, sizeof lc->block_names);
}

static void pop_scope(lower_ctx *lc, blk_scope *sc) {
  struct lower_blocks *bl = lc->blocks;
  free(lc->syms);
  ir_names_free(&lc->sym_index);
  ir_names_free(&lc->block_names);
  lc->syms = sc->syms;
  lc->nsyms = sc->nsyms;
  lc->symcap = sc->symcap;
  lc->sym_index = sc->sym_index;
  lc->block_names = sc->block_names;
  lc->binding = sc->binding;
  lc->nparam_ops = sc->nparam_ops;
  lc->layer_suffix = sc->layer_suffix;
  lc->apply_loc = sc->apply_loc;
  lc->first_apply_loc = sc->first_apply_loc;
  lc->instance = sc->instance;
  bl->def = sc->def;
  bl->prefix = sc->prefix;
  bl->depth--;
  /* the binding around goes on after the application's groups */
  lc->group = lower_new_group(lc, lc->g->groups[sc->group].name, lc->g->groups[sc->group].line, 1);
}

/* A copy of e with the instance's parameters as numbers (kept to the end). */
static ast_expr *subst(lower_ctx *lc, const blk_inst *in, ast_expr *e) {
  if (!e) return e;
  const blk_def *d = &lc->blocks->defs[in->def];
  if (e->kind == EX_IDENT) {
    int k = def_param(d, e->str);
    if (k >= 0) {
      free(e->str);
      e->str = NULL;
      if (in->is_bool[k]) {
        e->str = ir_strdup(in->val[k] ? "true" : "false");
      } else {
        e->kind = EX_NUM;
        e->num = in->val[k];
        e->is_int = in->is_int[k];
      }
    }
  }
  subst(lc, in, e->lhs);
  subst(lc, in, e->rhs);
  for (int i = 0; i < e->nargs; i++) subst(lc, in, e->args[i].value);
  return e;
}

static const ast_expr *body_expr(lower_ctx *lc, const blk_inst *in, const ast_expr *e) {
  struct lower_blocks *bl = lc->blocks;
  if (bl->ncopies == bl->copycap) bl->copies = xgrow(bl->copies, &bl->copycap, sizeof *bl->copies);
  return bl->copies[bl->ncopies++] = subst(lc, in, ast_expr_copy(e));
}

/* `input x : f32[...]` in a block: the argument must have that shape. */
static int check_input(const ast_stmt *s, const blk_def *d, const ir_node *n, dl_loc at) {
  char buf[64];
  if (!s->type.elem) return 0;
  int ok = !strcmp(s->type.elem, "f32") && s->type.ndims == n->ndim;
  for (int k = 0; ok && k < n->ndim; k++) ok = s->type.dims[k] == n->dims[k];
  if (ok) return 0;
  char decl[128];
  size_t k = (size_t)snprintf(decl, sizeof decl, "%s", s->type.elem);
  for (int i = 0; i < s->type.ndims && k < sizeof decl; i++)
    k += (size_t)snprintf(decl + k, sizeof decl - k, "%s%lld", i ? ", " : "[", (long long)s->type.dims[i]);
  if (s->type.ndims && k < sizeof decl) snprintf(decl + k, sizeof decl - k, "]");
  diag_error(at, "input '%s' of block '%s' is declared %s (line %d), but this argument is %s",
             s->name, d->ast->name, decl, s->loc.line, ir_shape_str(n, buf, sizeof buf));
  return -1;
}

static int lower_body_binding(lower_ctx *lc, int inst, const ast_stmt *s) {
  struct lower_blocks *bl = lc->blocks;
  const ast_expr *v = body_expr(lc, &bl->insts[inst], s->value);
  if (s->kind == ST_UNPACK) {
    ast_stmt tmp = *s;
    tmp.value = (ast_expr *)v;
    return lower_blocks_binding(lc, &tmp) ? 0 : -1;
  }
  if (lower_check_new_name(lc, s->name, s->name_loc)) return -1;
  if (makes_instance(lc, v)) {
    int i = make_instance(lc, s->name, v);
    lower_add_sym(lc, s->name, i < 0 ? -1 : LOWER_INSTANCE_NODE(i), s->name_loc);
    return i < 0 ? -1 : 0;
  }
  char full[MAX_NAME * 2];
  if (full_name(lc, s->name, s->name_loc, full, sizeof full)) {
    lower_add_sym(lc, s->name, -1, s->name_loc);
    return -1;
  }
  lc->binding = ir_intern(lc->g, full);
  lc->group = lower_new_group(lc, full, s->loc.line, 1);
  lc->nparam_ops = 0;
  int id = lower_tensor(lc, v);
  lower_add_sym(lc, s->name, id, s->name_loc);
  return id < 0 ? -1 : 0;
}

/* Lowers the body of instance `inst` (def d) with inputs `args`; the returned
 * nodes into out.  The count, or -1. */
static int lower_body(lower_ctx *lc, int inst, const int *args, const ast_expr *call, int *out) {
  struct lower_blocks *bl = lc->blocks;
  blk_inst *in = &bl->insts[inst]; /* until the body makes instances (realloc) */
  blk_def *d = &bl->defs[in->def];
  const ast_block *b = d->ast;
  if (bl->depth == MAX_DEPTH || bl->applications == MAX_APPLICATIONS) {
    diag_error(call->loc, "too many block applications (%s): at most %d nested and %d in all",
               bl->depth == MAX_DEPTH ? "nested too deeply" : "too many in all", MAX_DEPTH,
               MAX_APPLICATIONS);
    d->failed = 1;
    return -1;
  }
  bl->applications++;
  char prefix[MAX_NAME * 2 + 2];
  snprintf(prefix, sizeof prefix, "%s.", in->name);
  blk_scope sc;
  push_scope(lc, &sc);
  bl->def = in->def;
  bl->prefix = ir_intern(lc->g, prefix);
  if (!in->applied) in->first_apply = call->loc;
  in->applied++;
  lc->apply_loc = call->loc;
  lc->first_apply_loc = in->first_apply;
  lc->instance = in->name;
  for (int i = 0; i < b->nstmts; i++) { /* for lower_layer_name: every name, prefixed */
    const ast_stmt *s = &b->stmts[i];
    for (int k = 0; k < (s->name ? 1 : s->nnames); k++) {
      if (s->kind == ST_RETURN) break;
      char full[MAX_NAME * 3];
      snprintf(full, sizeof full, "%s%s", prefix, s->name ? s->name : s->names[k]);
      ir_names_put(&lc->block_names, ir_intern(lc->g, full), i);
    }
  }
  int before = diag_error_count(), reuse_before = lc->reuse_errors, nin = 0, nout = 0;
  for (int i = 0; i < b->nstmts; i++) {
    const ast_stmt *s = &b->stmts[i];
    if (s->kind == ST_INPUT) {
      int a = args[nin++];
      if (lower_check_new_name(lc, s->name, s->name_loc)) continue;
      if (check_input(s, d, ir_at(lc->g, a), call->args[nin - 1].value->loc)) a = -1;
      lower_add_sym(lc, s->name, a, s->name_loc);
    } else if (s->kind == ST_BIND || s->kind == ST_UNPACK) {
      lower_body_binding(lc, inst, s);
    }
  }
  for (int k = 0; d->ret && k < d->ret->nnames; k++) {
    int sym = lower_find_sym(lc, d->ret->names[k]);
    if (sym < 0)
      diag_error(d->ret->name_locs[k], "block '%s' returns '%s', which it does not define", b->name,
                 d->ret->names[k]);
    else if (lc->syms[sym].node <= -2)
      diag_error(d->ret->name_locs[k], "block '%s' returns '%s', an instance; return a tensor",
                 b->name, d->ret->names[k]);
    out[nout++] = sym < 0 ? -1 : lc->syms[sym].node;
  }
  pop_scope(lc, &sc);
  int errors = diag_error_count() - before;
  if (errors) d->failed = 1;
  if (errors > lc->reuse_errors - reuse_before) /* errors at the body's lines: which application */
    diag_note(call->loc, "in this application of block '%s'", b->name);
  for (int k = 0; k < nout; k++)
    if (out[k] < 0) return -1;
  return diag_error_count() > before || !d->ret ? -1 : nout;
}

static int apply(lower_ctx *lc, int inst, const ast_expr *call, int *out, int maxout) {
  struct lower_blocks *bl = lc->blocks;
  blk_inst *in = &bl->insts[inst];
  if (in->def < 0) { /* repeat(): in sequence, each output the next input */
    int x, first = in->first, count = in->count;
    if (apply(lc, first, call, &x, 1) < 0) return -1;
    for (int k = 1; k < count; k++)
      if (bl->defs[bl->insts[first + k].def].failed || lower_body(lc, first + k, &x, call, &x) < 0)
        return -1;
    out[0] = x;
    return 1;
  }
  blk_def *d = &bl->defs[in->def];
  int made = in->loc.line; /* `in` moves if an argument's application makes instances */
  if (d->failed) return -1;
  int args[64];
  if (call->nargs != d->ninputs || call->nargs > 64) {
    diag_error(call->loc, "%s() takes %d input%s (the inputs of block '%s'), not %d", call->str,
               d->ninputs, d->ninputs == 1 ? "" : "s", d->ast->name, call->nargs);
    return -1;
  }
  for (int a = 0; a < call->nargs; a++) {
    const ast_expr *e = call->args[a].value;
    double v;
    if (call->args[a].name) {
      diag_error(call->args[a].name_loc, "the inputs of %s() are given by position; parameters "
                 "are given where the instance is made (line %d)", call->str, made);
      return -1;
    }
    if (lower_eval_number(e, &v) == 0 || is_bool_expr(e)) {
      diag_error(e->loc, "input %d of %s() must be a tensor; numbers are the block's parameters, "
                 "given where the instance is made (line %d)", a + 1, call->str, made);
      return -1;
    }
    if ((args[a] = lower_tensor(lc, e)) < 0) return -1;
  }
  int n = d->ret ? d->ret->nnames : 0;
  if (n > maxout) {
    diag_error(call->loc, "%s() returns %d values: unpack them, like a, b = %s(...)", call->str, n,
               call->str);
    return -1;
  }
  return lower_body(lc, inst, args, call, out);
}

/* ---- lower.c's hooks ------------------------------------------------------------ */

static int block_call(lower_ctx *lc, const ast_expr *e) {
  int inst = sym_instance(lc, e->str), known;
  if (inst >= 0) {
    int out;
    int n = apply(lc, inst, e, &out, 1);
    if (n == 0) {
      diag_error(e->loc, "%s() returns nothing", e->str);
      return -1;
    }
    return n < 0 ? -1 : out;
  }
  int sym = lower_find_sym(lc, e->str);
  if (sym >= 0 && lc->syms[sym].node == -1) return -1; /* failed: reported */
  if (sym >= 0 && !op_find_builtin(e->str)) {
    diag_error(e->loc, "'%s' is a tensor, not an instance of a block: only instances are applied, "
               "like D = Block(...) then D(x)", e->str);
    return -1;
  }
  if (op_find_builtin(e->str)) return -2;
  int d = find_def(lc, e->str, e->loc, &known);
  if (!known && strcmp(e->str, "repeat") && (outer_name(lc, e) || bl_suggest(lc, e))) return -1;
  if (d >= 0 || !strcmp(e->str, "repeat"))
    diag_error(e->loc, "%s(...) makes an instance, which a binding names before it is applied to "
               "tensors, like: D = %s(...) then D(x)", e->str, d >= 0 ? e->str : "repeat(Block(...), N)");
  return d >= 0 || known || !strcmp(e->str, "repeat") ? -1 : -2;
}

/* An unknown call close to a block's name: reported with it (1), else 0. */
static int bl_suggest(lower_ctx *lc, const ast_expr *e) {
  const struct lower_blocks *bl = lc->blocks;
  const char *names[256];
  int n = bl->ndefs < 256 ? bl->ndefs : 256;
  for (int i = 0; i < n; i++) names[i] = bl->defs[i].ast->name;
  const char *hint = lower_suggest(e->str, names, n);
  if (hint) diag_error(e->loc, "unknown function or block '%s'; did you mean block '%s'?", e->str, hint);
  return hint != NULL;
}

/* A name bound outside the block being lowered: reported (1), else 0. */
static int outer_name(lower_ctx *lc, const ast_expr *e) {
  struct lower_blocks *bl = lc->blocks;
  for (int k = bl->depth - 1; k >= 0; k--)
    if (ir_names_get(&bl->outer[k]->sym_index, e->str) >= 0 ||
        (bl->outer[k]->def < 0 && ir_names_get(&bl->model_names, e->str) >= 0)) {
      const char *where = bl->outer[k]->def >= 0 ? bl->defs[bl->outer[k]->def].ast->name : bl->model_name;
      char full[MAX_NAME * 3];
      snprintf(full, sizeof full, "%s%s", bl->outer[k]->prefix, e->str);
      int inst = ir_names_get(&bl->inst_index, full) >= 0;
      diag_error(e->loc, "'%s' is defined outside block '%s' (in %s '%s'): a block sees only its "
                 "inputs, parameters and bindings; %s", e->str, bl->defs[bl->def].ast->name,
                 bl->outer[k]->def >= 0 ? "block" : "model", where,
                 inst ? "make the instance inside the block, or pass its output as an input"
                      : "pass it as an input");
      return 1;
    }
  return 0;
}

static int block_ident(lower_ctx *lc, const ast_expr *e) {
  struct lower_blocks *bl = lc->blocks;
  int inst = sym_instance(lc, e->str);
  if (inst >= 0) {
    diag_error(e->loc, "'%s' is an instance of block '%s', not a tensor: apply it, like %s(x)",
               e->str, bl->insts[inst].def >= 0 ? bl->defs[bl->insts[inst].def].ast->name : "repeat",
               e->str);
    return 1;
  }
  if (ir_names_get(&bl->def_index, e->str) >= 0) {
    diag_error(e->loc, "'%s' is a block: make an instance, like D = %s(...), and apply it: D(x)",
               e->str, e->str);
    return 1;
  }
  return outer_name(lc, e);
}

/* ---- model bindings ------------------------------------------------------------- */

int lower_blocks_binding(lower_ctx *lc, const ast_stmt *s) {
  struct lower_blocks *bl = lc->blocks;
  const ast_expr *v = s->value;
  if (s->kind == ST_BIND) {
    if (!makes_instance(lc, v)) return 0;
    if (bl->def >= 0) return 0; /* in a body: lower_body_binding */
    if (lower_check_new_name(lc, s->name, s->name_loc)) return 1;
    int i = make_instance(lc, s->name, v);
    lower_add_sym(lc, s->name, i < 0 ? -1 : LOWER_INSTANCE_NODE(i), s->name_loc);
    return 1;
  }
  if (s->kind != ST_UNPACK) return 0;
  int fail = 0, out[64], n = -1;
  for (int k = 0; k < s->nnames; k++)
    if (lower_check_new_name(lc, s->names[k], s->name_locs[k])) fail = 1;
  int inst = v->kind == EX_CALL ? sym_instance(lc, v->str) : -1;
  if (!fail && inst < 0) {
    /* an unknown name, a block without an instance, ...: said by lower.c */
    int before = diag_error_count();
    if (v->kind != EX_CALL || op_find_builtin(v->str) || lower_tensor(lc, v) >= 0 ||
        diag_error_count() == before)
      diag_error(v->loc, "only the application of a block's instance returns several values to "
                 "unpack, like a, b = enc(x)");
    fail = 1;
  }
  if (!fail) {
    char full[MAX_NAME * 2];
    if (full_name(lc, s->names[0], s->name_locs[0], full, sizeof full)) goto done;
    lc->binding = ir_intern(lc->g, full);
    lc->group = lower_new_group(lc, full, s->loc.line, bl->def >= 0);
    lc->nparam_ops = 0;
    n = apply(lc, inst, v, out, 64);
    if (n >= 0 && n != s->nnames) {
      diag_error(s->loc, "%d name%s to unpack, but %s() returns %d value%s", s->nnames,
                 s->nnames == 1 ? "" : "s", v->str, n, n == 1 ? "" : "s");
      n = -1;
    }
  }
done:
  for (int k = 0; k < s->nnames; k++)
    if (lower_find_sym(lc, s->names[k]) < 0) lower_add_sym(lc, s->names[k], n < 0 ? -1 : out[k], s->name_locs[k]);
  return 1;
}
