/* updates.c: a train block's updates, `NAME = update(LOSS, params = P,
 * optimizer = OPT)`: several losses, each differentiated with respect to
 * its own parameters and stepped by its own optimiser, run in order on
 * every batch (a GAN's discriminator and generator steps).  Lowering
 * checks each update and records it in g->updates; each parameter is
 * trained by at most one update (p->update).  A model without updates is
 * trained as before: one implicit update of `loss` with `optimizer`. */
#include "lower.h"
#include "builtins.h"
#include <stdlib.h>
#include <string.h>

/* dlnc builtins: update's arguments are bound here, not by an arg_spec
 * (its optimizer is a call), so its line is written as it is documented. */
void lower_describe_updates(lower_ctx *lc) {
  fprintf(lc->describe, "update(loss, params, optimizer = ...)\n");
}

int lower_is_update(const ast_stmt *s) {
  return s->kind == ST_BIND && s->value && s->value->kind == EX_CALL &&
         !strcmp(s->value->str, "update");
}

/* grad[id]: a gradient flows from `root` back to node id (a stop-gradient
 * op, detach or a constant, cuts it, as autodiff's wants do). */
static char *gradient_reach(const ir_graph *g, int root) {
  char *r = calloc((size_t)g->nnodes + 1, 1);
  if (!r) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  r[root] = 1;
  for (int id = root; id >= 0; id--) {
    const ir_node *n = &g->nodes[id];
    if (!r[id] || ir_op_has(n->op, OPF_STOP_GRAD)) continue;
    for (int k = 0; k < n->nin; k++) r[n->in[k]] = 1;
  }
  return r;
}

/* Whether a loss function (mse, bce_with_logits, ...) is upstream of id. */
static int calls_loss_function(const ir_graph *g, int id) {
  char *r = calloc((size_t)g->nnodes + 1, 1);
  int found = 0;
  if (!r) return 1;
  r[id] = 1;
  for (int k = id; k >= 0 && !found; k--) {
    if (!r[k]) continue;
    if (ir_is_loss(g->nodes[k].op)) found = 1;
    for (int j = 0; j < g->nodes[k].nin; j++) r[g->nodes[k].in[j]] = 1;
  }
  free(r);
  return found;
}

/* The parameters `params = P` names: those of binding P's layers (its
 * group: P.weight, P_2.weight, ...) and those named P.<anything> (a block
 * instance's nested names). */
static int names_param(const ir_graph *g, const ir_param *p, const char *P) {
  size_t n = strlen(P);
  if (!strncmp(p->name, P, n) && p->name[n] == '.') return 1;
  return !strcmp(g->groups[g->nodes[p->node].group].name, P);
}

/* The trainer's metrics lines report each update's loss under its name
 * (and its test value as test_NAME), beside these keys. */
static int metrics_key(const char *name) {
  static const char *const keys[] = {"epoch", "train_loss", "train_bpc", "test_loss", "test_bpc",
                                     "test_acc", "seconds", "samples_per_s", "lr"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!strcmp(name, keys[i]) || (!strncmp(name, "test_", 5) && !strcmp(name + 5, keys[i])))
      return 1;
  return !strncmp(name, "test_", 5);
}

/* LOSS: a scalar binding of the model that calls a loss function; its node or -1. */
static int update_loss(lower_ctx *lc, const ast_expr *e) {
  if (e->kind != EX_IDENT) {
    diag_error(e->loc, "update's first argument must name a loss binding of the model, like "
                       "update(d_loss, params = D)");
    return -1;
  }
  if (metrics_key(e->str)) {
    diag_error(e->loc, "a loss trained by an update is reported under its name, and '%s' %s; "
               "rename the binding", e->str, strncmp(e->str, "test_", 5)
               ? "is a key of the trainer's metrics" : "would read as the test value of another");
    return -1;
  }
  int s = lower_find_sym(lc, e->str);
  if (s < 0) {
    diag_error(e->loc, "update of '%s', which the model does not bind", e->str);
    return -1;
  }
  int id = lc->syms[s].node;
  if (id < 0) return -1; /* it failed: already reported */
  const ir_node *n = &lc->g->nodes[id];
  char buf[64];
  if (n->batched || n->ndim) {
    diag_error(e->loc, "update of '%s', which is not a scalar loss: it is %s", e->str,
               ir_shape_str(n, buf, sizeof buf));
    return -1;
  }
  if (!calls_loss_function(lc->g, id)) {
    diag_error(e->loc, "update of '%s', which calls no loss function (mse, bce_with_logits, ...)",
               e->str);
    return -1;
  }
  return id;
}

/* optimizer = NAME(...): the rows of ops/optim.c's table (train.c's
 * `optimizer` setting and an update's argument alike). */
void lower_optimizer(lower_ctx *lc, const ast_expr *e, ir_optim *o) {
  if (e->kind != EX_CALL) {
    diag_error(e->loc, "optimizer must be a call like adam(lr = 1e-3)");
    return;
  }
  int kind = optim_find(e->str);
  if (kind >= 0) {
    optim_lower(lc, e, kind, o);
    return;
  }
  const char *names[32];
  int n = 0;
  while (n < 32 && (names[n] = optim_name(n))) n++;
  lower_unknown_choice(e, "optimizer", names, n);
}

/* The arguments of update(...): loss (first or by name), params, optimizer. */
typedef struct update_args {
  const ast_expr *loss, *params, *optimizer;
} update_args;

static int bind_update_args(const ast_expr *call, update_args *a) {
  static const char *const names[] = {"loss", "params", "optimizer"};
  const ast_expr **slot[] = {&a->loss, &a->params, &a->optimizer};
  memset(a, 0, sizeof *a);
  for (int i = 0; i < call->nargs; i++) {
    const ast_arg *arg = &call->args[i];
    int k = -1;
    if (!arg->name) k = i < 3 ? i : -1;
    else
      for (int j = 0; j < 3; j++)
        if (!strcmp(arg->name, names[j])) k = j;
    if (k < 0) {
      if (arg->name) diag_error(arg->name_loc, "update() has no argument '%s' (loss, params, "
                                               "optimizer)", arg->name);
      else diag_error(arg->value->loc, "update() takes at most 3 arguments (loss, params, optimizer)");
      return -1;
    }
    if (*slot[k]) {
      diag_error(arg->name ? arg->name_loc : arg->value->loc, "update()'s argument '%s' is given twice",
                 names[k]);
      return -1;
    }
    *slot[k] = arg->value;
  }
  if (!a->loss || !a->params) {
    diag_error(call->loc, "update() needs %s: NAME = update(loss, params = P, optimizer = ...)",
               !a->loss ? "the loss it trains" : "the parameters it trains (params = P)");
    return -1;
  }
  return 0;
}

/* Assigns update k's parameters; 0, or -1 after reporting. */
static int update_params(lower_ctx *lc, int k, const ast_expr *e, int loss) {
  ir_graph *g = lc->g;
  if (e->kind != EX_IDENT) {
    diag_error(e->loc, "params must name a layer binding or block instance, like params = D");
    return -1;
  }
  char *reach = gradient_reach(g, loss);
  int named = 0, reached = 0, err = 0;
  for (int i = 0; i < g->nparams; i++) {
    ir_param *p = &g->params[i];
    if (!names_param(g, p, e->str)) continue;
    named++;
    reached += reach[p->node];
    if (p->update >= 0 && !err) {
      diag_error(e->loc, "'%s' is trained by two updates, '%s' and '%s': give each parameter one "
                 "optimiser", p->name, g->updates[p->update].name, g->updates[k].name);
      err = -1;
    }
    if (!err) p->update = k;
  }
  free(reach);
  if (err) return -1;
  if (!named) {
    diag_error(e->loc, "params = %s names no parameters (a layer binding like h1, or a block "
               "instance)", e->str);
    return -1;
  }
  if (!reached) {
    diag_error(e->loc, "an optimiser with no parameters: '%s' does not depend on any parameter "
               "of '%s' (no gradient flows to them)", g->updates[k].loss_name, e->str);
    return -1;
  }
  return 0;
}

static void lower_update(lower_ctx *lc, const ast_stmt *s) {
  ir_graph *g = lc->g;
  update_args a;
  for (int k = 0; k < g->nupdates; k++)
    if (!strcmp(g->updates[k].name, s->name)) {
      diag_error(s->name_loc, "update '%s' is defined twice", s->name);
      return;
    }
  if (bind_update_args(s->value, &a)) return;
  int loss = update_loss(lc, a.loss);
  if (loss < 0) return;
  if (g->nupdates == IR_MAX_UPDATES) {
    diag_error(s->name_loc, "at most %d updates", IR_MAX_UPDATES);
    return;
  }
  int k = g->nupdates;
  ir_update *u = &g->updates[k];
  memset(u, 0, sizeof *u);
  u->name = ir_intern(g, s->name);
  u->loss_name = ir_intern(g, a.loss->str);
  u->loss = u->total_loss = loss;
  u->line = s->loc.line;
  u->optim = g->train.optim; /* the train block's optimizer, unless given */
  g->nupdates++;
  int before = diag_error_count();
  if (a.optimizer) lower_optimizer(lc, a.optimizer, &u->optim);
  if (update_params(lc, k, a.params, loss) || diag_error_count() != before) g->nupdates--;
}

void lower_updates(lower_ctx *lc, const ast_stmt *const *stmts, int n) {
  ir_graph *g = lc->g;
  if (!n) return;
  g->updates = calloc(IR_MAX_UPDATES, sizeof *g->updates);
  if (!g->updates) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  for (int i = 0; i < n; i++) lower_update(lc, stmts[i]);
  if (g->nupdates == 0) return;
  /* a carried state (carry = true) would be carried again by each update
     that recomputes its line within one batch */
  for (int id = 0; id < g->nnodes; id++)
    if (ir_op_has(g->nodes[id].op, OPF_PERSISTENT)) {
      diag_error(g->nodes[id].loc, "carry = true is not supported in a model trained by updates "
                 "(each update would carry the state again)");
      break;
    }
  /* the first update's loss stands for "the loss" where one is read (forward()'s
     return value); a `loss` binding must be one of the updates' */
  int sym = lower_find_sym(lc, "loss");
  if (g->loss >= 0) {
    int trained = 0;
    for (int k = 0; k < g->nupdates; k++) trained |= g->updates[k].loss == g->loss;
    if (!trained)
      diag_error(lc->syms[sym].loc, "the model binds 'loss', but the train block's updates do not "
                 "train it: with updates, each loss is trained by an update naming it "
                 "(update(loss, params = ...)), or rename this binding");
  }
  g->loss = g->total_loss = g->updates[0].loss;
}

/* Appends "'name'" to a list of names (as long as it fits). */
static int add_name(char *buf, size_t len, size_t *used, int count, const char *name) {
  if (*used < len) *used += (size_t)snprintf(buf + *used, len - *used, "%s'%s'", count ? ", " : "", name);
  return count + 1;
}

/* With updates: a parameter no update trains, or one its update's loss
 * sends no gradient to, is left as initialised; say so, once per layer
 * binding and reason. */
void lower_warn_unreached_updates(const ir_graph *g) {
  char *reach[IR_MAX_UPDATES];
  for (int k = 0; k < g->nupdates; k++) reach[k] = gradient_reach(g, g->updates[k].loss);
  for (int i = 0; i < g->nparams;) {
    const ir_node *n = &g->nodes[g->params[i].node];
    int j = i + 1;
    while (j < g->nparams && g->nodes[g->params[j].node].group == n->group) j++;
    char none[512] = "", missed[512] = "";
    size_t un = 0, um = 0;
    int cn = 0, cm = 0;
    for (int k = i; k < j; k++) {
      const ir_param *p = &g->params[k];
      if (p->update < 0) cn = add_name(none, sizeof none, &un, cn, p->name);
      else if (!reach[p->update][p->node]) cm = add_name(missed, sizeof missed, &um, cm, p->name);
    }
    if (cn)
      diag_lint(LINT_UNTRAINED, n->loc, "no update trains %s: %s no gradient, and training leaves %s as "
                   "initialised", none, cn > 1 ? "they get" : "it gets", cn > 1 ? "them" : "it");
    if (cm)
      diag_lint(LINT_UNTRAINED, n->loc, "the loss of the update that trains %s does not depend on %s: %s no "
                   "gradient, and training leaves %s as initialised", missed, cm > 1 ? "them" : "it",
                   cm > 1 ? "they get" : "it gets", cm > 1 ? "them" : "it");
    i = j;
  }
  for (int k = 0; k < g->nupdates; k++) free(reach[k]);
}
