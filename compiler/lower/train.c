/* train.c: the train block: data, batch, epochs, optimiser (PyTorch's
 * defaults), initialiser, penalties, schedule, warm-up and clipping. */
#include "lower.h"
#include "builtins.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../../runtime/dl_model.h"

void lower_train_defaults(ir_train *t) {
  memset(t, 0, sizeof *t);
  t->batch = 32;
  t->epochs = 10;
  t->seed = 1;
  t->optim.kind = 0; /* sgd: the first row of ops/optim.c's table */
  t->optim.lr = 1e-2;
  t->init = DL_INIT_TORCH_DEFAULT;
  t->sched_kind = DL_SCHED_CONSTANT;
  t->sched_gamma = 0.1;
}

static const char *const init_names[] = {
  "zeros", "ones", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "torch_default",
};
enum { N_INITS = sizeof init_names / sizeof *init_names };

/* Reports that the name or callee e->str is none of `names`: "unknown WHAT
 * 'x'", with the closest name as a suggestion, or else the whole list. */
/* Returns the dl_init_kind named by e, or -1 after reporting. */
int lower_init_name(const ast_expr *e) {
  if (e->kind != EX_IDENT) {
    diag_error(e->loc, "init must be one of he_normal, he_uniform, xavier_normal, xavier_uniform, "
                       "torch_default");
    return -1;
  }
  for (int i = 2; i < N_INITS; i++)
    if (strcmp(e->str, init_names[i]) == 0) return i;
  lower_unknown_choice(e, "initialiser", init_names + 2, N_INITS - 2);
  return -1;
}

static int expect_call(const ast_expr *e, const char *key, const char *what) {
  if (e->kind == EX_CALL) return 0;
  diag_error(e->loc, "%s must be %s", key, what);
  return -1;
}

/* text(path, from = 0, to = 1): bytes [from*N, to*N) of a file or of a
 * directory's files, as windows of the input's length labelled with the
 * next byte: a next-token model's input and label are class[T, V]. */
static void lower_text_data(lower_ctx *lc, const ast_expr *e, ir_data *d) {
  static const arg_spec spec[] = {
    {"path", ARG_STRING, 1, 0}, {"from", ARG_NUMBER, 0, 0}, {"to", ARG_NUMBER, 0, 1},
  };
  arg_val v[3];
  if (lower_bind_args(lc, e, spec, 3, v)) return;
  ir_graph *g = lc->g;
  d->kind = DL_DATA_TEXT;
  d->scale = 1;
  d->path[0] = ir_strdup(v[0].str);
  d->from = v[1].num;
  d->to = v[2].num;
  if (!(d->from >= 0 && d->from < d->to && d->to <= 1))
    diag_error(e->loc, "text() needs 0 <= from < to <= 1, not from = %g, to = %g", d->from, d->to);
  const ir_node *x = g->input >= 0 ? &g->nodes[g->input] : NULL;
  const ir_node *y = g->label >= 0 ? &g->nodes[g->label] : NULL;
  if (!x || !g->input_vocab || x->ndim != 1 || !y || !g->label_is_class || y->ndim != 1 ||
      y->dims[0] != x->dims[0] || g->label_classes != g->input_vocab)
    diag_error(e->loc, "text() data needs token input and label of one type, like "
                       "`input x : class[128, 256]` and `label y : class[128, 256]`");
}

/* idx(images, labels): the labels file goes with the model's label, and
 * only with it.  A model without a label learns from the images alone (an
 * autoencoder: its loss targets are model values), so it takes idx(images). */
static void check_idx_labels(lower_ctx *lc, const ast_expr *e, const arg_val *v, int no_label) {
  const ir_graph *g = lc->g;
  if (no_label && v[1].present)
    diag_error(v[1].loc, "model '%s' has no label, so idx() takes the images file alone "
               "(idx(images, scale = ...)); a labels file would be read for nothing",
               g->model_name ? g->model_name : "?");
  else if (g->label >= 0 && !v[1].present)
    diag_error(e->loc, "idx() needs a labels file for the model's label '%s' "
               "(idx(images, labels, scale = ...))", g->nodes[g->label].name);
  else if (g->label >= 0 && !g->label_is_class)
    diag_error(e->loc, "idx() data has class labels, but the model's label is not class[N]");
}

/* no_label: the model declares no label (one that failed was reported). */
static void lower_data(lower_ctx *lc, const ast_expr *e, ir_data *d, const char *key,
                       int no_label) {
  if (expect_call(e, key, "idx(images, labels, scale = ...), csv(path, header = ..., scale = ...) or text(path, from = ..., to = ...)"))
    return;
  d->line = e->loc.line;
  if (strcmp(e->str, "idx") == 0) {
    static const arg_spec spec[] = {
      {"images", ARG_STRING, 1, 0}, {"labels", ARG_STRING, 0, 0}, {"scale", ARG_NUMBER, 0, 1},
    };
    arg_val v[3];
    if (lower_bind_args(lc, e, spec, 3, v)) return;
    d->kind = DL_DATA_IDX;
    d->path[0] = ir_strdup(v[0].str);
    d->path[1] = v[1].present ? ir_strdup(v[1].str) : NULL;
    d->scale = v[2].num;
    check_idx_labels(lc, e, v, no_label);
  } else if (strcmp(e->str, "csv") == 0) {
    static const arg_spec spec[] = {
      {"path", ARG_STRING, 1, 0}, {"header", ARG_BOOL, 0, 0}, {"scale", ARG_NUMBER, 0, 1},
    };
    arg_val v[3];
    if (lower_bind_args(lc, e, spec, 3, v)) return;
    d->kind = DL_DATA_CSV;
    d->path[0] = ir_strdup(v[0].str);
    d->header = (int)v[1].num;
    d->scale = v[2].num;
  } else if (strcmp(e->str, "text") == 0) {
    lower_text_data(lc, e, d);
  } else {
    static const char *const names[] = {"idx", "csv", "text"};
    lower_unknown_choice(e, "data source", names, 3);
  }
}

/* one_cycle(max_lr, pct_start = 0.3, div_factor = 25, final_div_factor = 1e4):
 * torch's OneCycleLR with cos annealing, stepped every optimiser step;
 * max_lr left out is the optimiser's rate. */
static void lower_one_cycle(lower_ctx *lc, const ast_expr *e, ir_train *t) {
  static const arg_spec s[] = {{"max_lr", ARG_NUMBER, ARG_DERIVED, 0},
                               {"pct_start", ARG_NUMBER, 0, 0.3},
                               {"div_factor", ARG_NUMBER, 0, 25},
                               {"final_div_factor", ARG_NUMBER, 0, 1e4}};
  arg_val v[4];
  if (lower_bind_args(lc, e, s, 4, v)) return;
  if (v[0].present && !(v[0].num > 0)) diag_error(v[0].loc, "max_lr must be greater than 0");
  if (!(v[1].num > 0 && v[1].num < 1))
    diag_error(v[1].loc, "pct_start must be between 0 and 1 (exclusive), not %g", v[1].num);
  if (!(v[2].num > 0)) diag_error(v[2].loc, "div_factor must be greater than 0");
  if (!(v[3].num > 0)) diag_error(v[3].loc, "final_div_factor must be greater than 0");
  t->sched_kind = DL_SCHED_ONE_CYCLE;
  t->sched_max_lr = v[0].present ? v[0].num : 0;
  t->sched_pct_start = v[1].num;
  t->sched_div = v[2].num;
  t->sched_final_div = v[3].num;
}

/* plateau(factor = 0.1, patience = 10, metric = val_loss, min_lr = 0,
 * threshold = 1e-4): torch's ReduceLROnPlateau, judged after each epoch. */
static void lower_plateau(lower_ctx *lc, const ast_expr *e, ir_train *t) {
  static const arg_spec s[] = {{"factor", ARG_NUMBER, 0, 0.1}, {"patience", ARG_INT, 0, 10},
                               {"metric", ARG_IDENT, 0, 0},   {"min_lr", ARG_NUMBER, 0, 0},
                               {"threshold", ARG_NUMBER, 0, 1e-4}};
  static const char *const metrics[] = {"val_loss", "val_acc", "test_loss", "test_acc",
                                        "train_loss"};
  arg_val v[5];
  if (lower_bind_args(lc, e, s, 5, v)) return;
  if (!(v[0].num > 0 && v[0].num < 1))
    diag_error(v[0].loc, "factor must be between 0 and 1 (exclusive), not %g", v[0].num);
  if (v[1].num < 0) diag_error(v[1].loc, "patience must be at least 0");
  if (v[3].num < 0) diag_error(v[3].loc, "min_lr must be at least 0");
  if (v[4].num < 0) diag_error(v[4].loc, "threshold must be at least 0");
  const char *metric = v[2].present ? v[2].str : "val_loss";
  const char *known = NULL;
  for (int i = 0; i < 5; i++)
    if (!strcmp(metric, metrics[i])) known = metrics[i];
  if (!known) {
    ast_expr at = {.kind = EX_IDENT, .str = (char *)metric, .loc = v[2].loc};
    lower_unknown_choice(&at, "plateau metric", metrics, 5);
  }
  t->sched_kind = DL_SCHED_PLATEAU;
  t->plateau_factor = v[0].num;
  t->plateau_patience = (int)v[1].num;
  t->plateau_metric = known;
  t->plateau_min_lr = v[3].num;
  t->plateau_threshold = v[4].num;
}

static void lower_schedule(lower_ctx *lc, const ast_expr *e, ir_train *t) {
  if (expect_call(e, "schedule", "constant(), step(...), exponential(...), cosine(...) or "
                                 "one_cycle(...)"))
    return;
  arg_val v[4];
  if (strcmp(e->str, "constant") == 0) {
    if (lower_bind_args(lc, e, NULL, 0, v)) return;
    t->sched_kind = DL_SCHED_CONSTANT;
  } else if (strcmp(e->str, "step") == 0) {
    static const arg_spec s[] = {{"step_size", ARG_INT, 1, 0}, {"gamma", ARG_NUMBER, 0, 0.1}};
    if (lower_bind_args(lc, e, s, 2, v)) return;
    if (v[0].num < 1) diag_error(v[0].loc, "step_size must be at least 1");
    t->sched_kind = DL_SCHED_STEP;
    t->sched_step_size = (int)v[0].num;
    t->sched_gamma = v[1].num;
  } else if (strcmp(e->str, "exponential") == 0) {
    static const arg_spec s[] = {{"gamma", ARG_NUMBER, 1, 0}};
    if (lower_bind_args(lc, e, s, 1, v)) return;
    t->sched_kind = DL_SCHED_EXPONENTIAL;
    t->sched_gamma = v[0].num;
  } else if (strcmp(e->str, "cosine") == 0) {
    static const arg_spec s[] = {{"t_max", ARG_INT, ARG_DERIVED, 0}, {"eta_min", ARG_NUMBER, 0, 0},
                                 {"per_step", ARG_BOOL, 0, 0}};
    if (lower_bind_args(lc, e, s, 3, v)) return;
    if (v[0].present && v[0].num < 1) diag_error(v[0].loc, "t_max must be at least 1");
    t->sched_kind = DL_SCHED_COSINE;
    t->sched_t_max = (int)v[0].num;
    t->sched_eta_min = v[1].num;
    t->sched_per_step = (int)v[2].num;
  } else if (strcmp(e->str, "one_cycle") == 0) {
    lower_one_cycle(lc, e, t);
  } else if (strcmp(e->str, "plateau") == 0) {
    lower_plateau(lc, e, t);
  } else {
    static const char *const names[] = {"constant", "step", "exponential", "cosine", "one_cycle",
                                        "plateau"};
    lower_unknown_choice(e, "schedule", names, 6);
  }
}

/* A number setting in [lo, hi]; whole says it must be written as an integer. */
static int setting_number(const ast_expr *e, const char *key, int whole, double lo, double hi,
                          double *out) {
  if (lower_eval_number(e, out) || (whole && !lower_is_int(e))) {
    diag_error(e->loc, "%s must be %s", key, whole ? "a whole number" : "a number");
    return -1;
  }
  if (*out < lo || *out > hi) {
    if (hi == INFINITY)
      diag_error(e->loc, "%s must be at least %g, not %g", key, lo, *out);
    else
      diag_error(e->loc, "%s must be between %.17g and %.17g, not %.17g", key, lo, hi, *out);
    return -1;
  }
  return 0;
}

static int setting_number(const ast_expr *e, const char *key, int whole, double lo, double hi,
                          double *out);

/* validation = F (the last fraction F of the train rows, 0 < F < 1) or a
 * separate set, idx(...) / csv(...) like data. */
static void lower_validation(lower_ctx *lc, const ast_expr *e, ir_train *t, int no_label) {
  if (e->kind == EX_CALL) {
    lower_data(lc, e, &t->val, "validation", no_label);
    if (t->val.kind == DL_DATA_TEXT)
      diag_error(e->loc, "validation = text(...) is not supported: hold out a fraction of the "
                         "text with validation = F, or use text(path, from, to) as test");
    return;
  }
  double v;
  if (lower_eval_number(e, &v)) {
    diag_error(e->loc, "validation must be a fraction (0 < F < 1) or a data set like csv(...)");
    return;
  }
  if (!(v > 0 && v < 1)) {
    diag_error(e->loc, "validation must be a fraction between 0 and 1 (exclusive), not %g", v);
    return;
  }
  t->validation = v;
}

/* early_stop = METRIC: the trainer's --early-stop metrics. */
static void lower_early_stop(const ast_expr *e, ir_train *t) {
  static const char *const names[] = {"val_loss", "val_acc", "test_loss", "test_acc", "train_loss"};
  enum { N = sizeof names / sizeof *names };
  if (e->kind != EX_IDENT) {
    diag_error(e->loc, "early_stop must be a metric: val_loss, val_acc, test_loss, test_acc or "
                       "train_loss");
    return;
  }
  for (int i = 0; i < N; i++)
    if (!strcmp(e->str, names[i])) {
      t->early_stop = ir_strdup(e->str);
      return;
    }
  lower_unknown_choice(e, "early_stop metric", names, N);
}

static const char *const train_keys[] = {
  "data", "test", "batch", "epochs", "seed", "optimizer", "init", "l1", "l2",
  "schedule", "warmup", "clip", "data_dir", "validation", "early_stop", "patience", "min_delta",
};
enum { N_TRAIN_KEYS = sizeof train_keys / sizeof *train_keys };

static void lower_setting(lower_ctx *lc, const ast_stmt *s, ir_train *t, int no_label) {
  const ast_expr *e = s->value;
  const char *k = s->name;
  double v;
  if (!strcmp(k, "data")) lower_data(lc, e, &t->train, k, no_label);
  else if (!strcmp(k, "test")) lower_data(lc, e, &t->test, k, no_label);
  else if (!strcmp(k, "batch")) {
    if (e->kind == EX_IDENT && !strcmp(e->str, "full")) t->batch = 0;
    else if (e->kind == EX_IDENT) diag_error(e->loc, "batch must be a whole number or full");
    else if (!setting_number(e, "batch", 1, 1, 1 << 20, &v)) t->batch = (int)v;
  } else if (!strcmp(k, "epochs")) {
    if (!setting_number(e, "epochs", 1, 1, INT_MAX, &v)) t->epochs = (int)v;
  } else if (!strcmp(k, "seed")) {
    if (!setting_number(e, "seed", 1, 0, 9007199254740992.0, &v)) t->seed = (uint64_t)v;
  } else if (!strcmp(k, "optimizer")) lower_optimizer(lc, e, &t->optim);
  else if (!strcmp(k, "init")) {
    int i = lower_init_name(e);
    if (i >= 0) t->init = i;
  } else if (!strcmp(k, "l1")) setting_number(e, "l1", 0, 0, INFINITY, &t->l1);
  else if (!strcmp(k, "l2")) setting_number(e, "l2", 0, 0, INFINITY, &t->l2);
  else if (!strcmp(k, "schedule")) lower_schedule(lc, e, t);
  else if (!strcmp(k, "warmup")) {
    if (!setting_number(e, "warmup", 1, 0, 9007199254740992.0, &v)) t->warmup = (int64_t)v;
  } else if (!strcmp(k, "clip")) {
    /* the runtime reads 0 as "no clipping": a written 0 (which torch would
     * take as scaling every gradient to nothing) must not silently mean that */
    if (setting_number(e, "clip", 0, 0, INFINITY, &v)) return;
    if (v == 0)
      diag_error(e->loc, "clip must be greater than 0 (to train without clipping, leave clip out)");
    else
      t->clip = v;
  } else if (!strcmp(k, "validation")) {
    lower_validation(lc, e, t, no_label);
  } else if (!strcmp(k, "early_stop")) {
    lower_early_stop(e, t);
  } else if (!strcmp(k, "patience")) {
    if (!setting_number(e, "patience", 1, 1, INT_MAX, &v)) t->patience = (int)v;
  } else if (!strcmp(k, "min_delta")) {
    setting_number(e, "min_delta", 0, 0, INFINITY, &t->min_delta);
  } else if (!strcmp(k, "data_dir")) {
    if (e->kind != EX_STR) diag_error(e->loc, "data_dir must be a string");
    else t->data_dir = ir_strdup(e->str);
  } else {
    const char *hint = lower_suggest(k, train_keys, N_TRAIN_KEYS);
    const char *foreign_hint = lower_foreign_hint(k, "train");
    if (foreign_hint && !hint)
      diag_error(s->name_loc, "unknown train setting '%s': %s", k, foreign_hint);
    else if (hint)
      diag_error(s->name_loc, "unknown train setting '%s'; did you mean '%s'?", k, hint);
    else
      diag_error(s->name_loc, "unknown train setting '%s'", k);
  }
}

/* A data file the trainer will not find where it looks by default (data_dir,
 * else the .dln's directory) is a warning, not an error: the trainer may be
 * run with --data DIR, or the data fetched later. */
static void lint_data_files(const ir_graph *g, const ast_stmt *s) {
  const ast_expr *e = s ? s->value : NULL;
  if (!e || e->kind != EX_CALL || !diag_lint_enabled(LINT_DATA_FILE)) return;
  const char *dir = g->train.data_dir ? g->train.data_dir : g->source_dir;
  for (int i = 0; i < e->nargs; i++) {
    const ast_expr *v = e->args[i].value;
    if (v->kind != EX_STR || (e->args[i].name && strcmp(e->args[i].name, "path") &&
                              strcmp(e->args[i].name, "images") && strcmp(e->args[i].name, "labels")))
      continue;
    int rel = v->str[0] != '/' && dir && dir[0];
    size_t n = (rel ? strlen(dir) + 1 : 0) + strlen(v->str) + 1;
    char *path = malloc(n);
    if (!path) return; /* only a warning is lost */
    snprintf(path, n, "%s%s%s", rel ? dir : "", rel ? "/" : "", v->str);
    struct stat st;
    if (stat(path, &st) != 0)
      diag_lint(LINT_DATA_FILE, v->loc, "data file '%s' does not exist %s: the trainer reads it "
                "from there unless run with --data DIR", v->str,
                v->str[0] == '/' ? "" : g->train.data_dir ? "in data_dir" : "next to the .dln file");
    free(path);
  }
}

/* The settings of a train block.  no_label: the model declares no label, so
 * it trains on its inputs alone: idx(images), csv rows of input values. */
int lower_train_block(lower_ctx *lc, const ast_block *b, int no_label) {
  ir_train *t = &lc->g->train;
  int seen[N_TRAIN_KEYS] = {0};
  const ast_stmt *data = NULL, *test = NULL;
  const ast_stmt **updates = calloc((size_t)b->nstmts + 1, sizeof *updates);
  int nupdates = 0;
  if (!updates) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  for (int i = 0; i < b->nstmts; i++) {
    const ast_stmt *s = &b->stmts[i];
    if (s->kind != ST_BIND) {
      diag_error(s->loc, s->kind == ST_RETURN   ? "'return' outside a block: only a block returns values"
                         : s->kind == ST_UNPACK ? "a train block sets one name at a time"
                                                : "input and label declarations belong in the model block");
      continue;
    }
    if (lower_is_update(s)) { /* after the settings: its optimizer defaults to theirs */
      for (int k = 0; k < N_TRAIN_KEYS; k++)
        if (!strcmp(s->name, train_keys[k]))
          diag_error(s->name_loc, "'%s' is a train setting; name the update otherwise", s->name);
      updates[nupdates++] = s;
      lc->update_stmts++;
      continue;
    }
    for (int k = 0; k < N_TRAIN_KEYS; k++)
      if (!strcmp(s->name, train_keys[k]) && seen[k]++) {
        diag_error(s->name_loc, "train setting '%s' is given twice", s->name);
        goto next;
      }
    if (!strcmp(s->name, "data")) data = s;
    if (!strcmp(s->name, "test")) test = s;
    lower_setting(lc, s, t, no_label);
  next:;
  }
  lower_updates(lc, updates, nupdates);
  free(updates);
  if (test && !data)
    diag_error(test->name_loc, "a test set is given but no training data (data = ...)");
  if (diag_error_count() == 0) {
    lint_data_files(lc->g, data);
    lint_data_files(lc->g, test);
  }
  return 0;
}

/* Parameters the loss does not depend on get no gradient, and the optimiser
 * leaves them as they are (ops/optim.c), as torch.optim skips a parameter
 * whose .grad is None: weight decay and momentum would otherwise move them.
 * That is almost always a mistake (a head no loss term reads), so say so,
 * once per binding; they are still initialised and saved. */
void lower_warn_unreached(const ir_graph *g) {
  if (g->total_loss < 0) return; /* no model (an empty file): no loss, no parameters */
  if (g->nupdates) {
    lower_warn_unreached_updates(g);
    return;
  }
  char *reach = calloc((size_t)g->nnodes, 1);
  if (!reach) return; /* only a warning is lost */
  reach[g->total_loss] = 1;
  for (int id = g->nnodes - 1; id >= 0; id--)
    if (reach[id])
      for (int k = 0; k < g->nodes[id].nin; k++) reach[g->nodes[id].in[k]] = 1;
  for (int i = 0; i < g->nparams;) {
    const ir_node *n = &g->nodes[g->params[i].node];
    int j = i + 1;
    while (j < g->nparams && g->nodes[g->params[j].node].group == n->group) j++;
    char names[512] = "";
    size_t used = 0;
    int count = 0;
    for (int k = i; k < j; k++) {
      if (reach[g->params[k].node] || used >= sizeof names) continue;
      used += (size_t)snprintf(names + used, sizeof names - used, "%s'%s'", count ? ", " : "",
                               g->params[k].name);
      count++;
    }
    if (count)
      diag_lint(LINT_UNTRAINED, n->loc, "the loss does not depend on %s: %s no gradient, and training leaves "
                   "%s as initialised", names, count > 1 ? "they get" : "it gets",
                   count > 1 ? "them" : "it");
    i = j;
  }
  free(reach);
}

static void describe_setting(lower_ctx *lc, ir_train *t, const char *key, const char *callee) {
  ast_expr call = {.kind = EX_CALL, .str = (char *)callee};
  ast_stmt s = {.kind = ST_BIND, .name = (char *)key, .value = &call};
  lower_setting(lc, &s, t, 0);
}

/* dlnc builtins: every callable of a train block, through lower_setting;
 * the optimisers are the rows of ops/optim.c's table. */
void lower_describe_train(lower_ctx *lc) {
  static const char *const data[] = {"idx", "csv", "text"};
  static const char *const schedules[] = {"constant", "step", "exponential", "cosine", "one_cycle",
                                          "plateau"};
  ir_train t;
  lower_train_defaults(&t);
  for (size_t i = 0; i < sizeof data / sizeof *data; i++) describe_setting(lc, &t, "data", data[i]);
  for (int k = 0; optim_name(k); k++) describe_setting(lc, &t, "optimizer", optim_name(k));
  for (size_t i = 0; i < sizeof schedules / sizeof *schedules; i++)
    describe_setting(lc, &t, "schedule", schedules[i]);
  lower_describe_updates(lc);
}
