/* lower.h: semantic checks and lowering of the AST to the graph IR.
 * Names, types and shapes are checked here; each mistake is reported
 * through diag with its location, and lowering goes on where it can so one
 * run reports several mistakes. */
#ifndef DLNC_LOWER_H
#define DLNC_LOWER_H
#include "ast.h"
#include "ir.h"

/* Returns the graph, or NULL if any error was reported.  `text` is the source
 * (for the line quoted above each generated function). */
ir_graph *lower_program(const ast_program *p, const char *path, const char *text);
/* Prints the signature of every function a .dln can call, one a line, as
 * `dense(x, units, bias = true, ...)`: from the very argument specs that
 * calls are checked with (dlnc builtins; tests/docs compares them with
 * docs/language.md). */
void lower_describe(FILE *out);

/* ---- shared with the op files (compiler/ops/) ---------------------------- */

typedef struct lower_ctx {
  ir_graph *g;
  const char *text;
  struct { const char *name; int node; dl_loc loc; } *syms;
  int nsyms, symcap;
  ir_names sym_index;        /* syms by name                            */
  ir_names block_names;      /* every name the model block binds        */
  int group;                 /* group of the binding being lowered     */
  const char *binding;       /* its name                               */
  int nparam_ops;            /* parameterised calls in this binding     */
  int layer_suffix;          /* the last N of a layer named BINDING_N   */
  FILE *describe;            /* dlnc builtins: argument binding prints the
                                call's signature here instead (and fails) */
  int described;             /* signatures printed so far               */
  int update_stmts;          /* the train block's update statements     */
  /* blocks.c: reusable blocks.  lower.c reaches them through these two
     hooks (as it reaches the op families through the builtin table), so
     blocks.c may call lower.c without a circle of calls. */
  struct lower_blocks *blocks;
  /* a call of a block or an instance: its node, -1 after reporting, or -2
     if `call` names neither */
  int (*block_call)(struct lower_ctx *lc, const ast_expr *call);
  /* a name that is no tensor here (unbound, a block, an instance): 1 if
     it reported why, else 0 */
  int (*block_ident)(struct lower_ctx *lc, const ast_expr *e);
  ir_names param_index;      /* parameters and buffers by name: an instance */
  ir_names buffer_index;     /* applied again reads its own                 */
  dl_loc apply_loc;          /* the application being lowered (line 0: none) */
  dl_loc first_apply_loc;    /* and its instance's first application        */
  const char *instance;      /* that instance's name                        */
  int reuse_errors;          /* layers.c: shape errors of a second application
                                (which name it: blocks.c adds no note) */
} lower_ctx;

/* A symbol's node for an instance of a block (lc->syms[].node <= -2). */
#define LOWER_INSTANCE_NODE(i) (-2 - (i))

/* ARG_TARGET and ARG_TOKENS are tensors that may also *be* the class label
 * (a loss's target) or the token input (embedding's, one_hot's ids): the
 * permission belongs to the argument, so an expression nested in it (a
 * loss of dense(y, 8)) is checked as any other tensor. */
typedef enum {
  ARG_TENSOR, ARG_NUMBER, ARG_INT, ARG_BOOL, ARG_IDENT, ARG_STRING, ARG_TARGET, ARG_TOKENS
} arg_kind;

/* arg_spec.required: 1 if the argument must be given; 0 if optional (with
 * `def`); ARG_DERIVED if optional and, when absent, derived from other
 * arguments or the model (def is then only a marker for the op). */
enum { ARG_DERIVED = 2 };

typedef struct arg_spec {
  const char *name;
  arg_kind kind;
  int required;
  double def;                /* default for numbers, ints and bools */
} arg_spec;

typedef struct arg_val {
  int present;
  int node;                  /* ARG_TENSOR, ARG_TARGET, ARG_TOKENS */
  double num;                /* ARG_NUMBER, ARG_INT, ARG_BOOL */
  const char *str;           /* ARG_IDENT, ARG_STRING */
  dl_loc loc;
} arg_val;

/* Binds a call's arguments to `spec` (positional in order, then keywords).
 * Reports too many / unknown / duplicate / missing / wrongly typed arguments.
 * Returns 0, or -1 after reporting. */
int lower_bind_args(lower_ctx *lc, const ast_expr *call, const arg_spec *spec, int nspec,
                    arg_val *out);
/* The same where only the first `npositional` of spec may be given by
 * position; the rest are keyword-only (dense's weight_norm, ...). */
int lower_bind_args_kw(lower_ctx *lc, const ast_expr *call, const arg_spec *spec, int nspec,
                       int npositional, arg_val *out);
/* Whether the model block binds `name` (before or after this statement). */
int lower_is_binding_name(const lower_ctx *lc, const char *name);
/* Lowers an expression that must be a tensor; -1 after reporting. */
int lower_tensor(lower_ctx *lc, const ast_expr *e);
/* Whether e is a whole number written as one: integer literals with + - *
 * and negation (10, -3, 2 * 16), not 10.0 or 1e3. */
int lower_is_int(const ast_expr *e);
/* Folds a numeric constant expression; 0 ok, -1 if it is not one (not reported). */
int lower_eval_number(const ast_expr *e, double *out);
/* Adds a node in the current group, named after the binding. */
int lower_node(lower_ctx *lc, ir_op op, const int *in, int nin, dl_loc loc);
/* Suggests the closest of `names` to `s` within a few edits relative to the
 * lengths (one for up to 4 characters, two up to 8, three beyond), or NULL. */
const char *lower_suggest(const char *s, const char *const *names, int n);
/* "unknown WHAT 'NAME'; did you mean ...?" for e's name among names, or the
 * list of them when none is close. */
void lower_unknown_choice(const ast_expr *e, const char *what, const char *const *names, int n);
/* optimizer = NAME(...) in the train block or an update: a row of
 * ops/optim.c's table with its arguments, into o (updates.c). */
void lower_optimizer(lower_ctx *lc, const ast_expr *e, ir_optim *o);
/* What to write instead of a Keras or PyTorch spelling (learning_rate,
 * activation = relu, ...) of an argument of `where` ("train" for a train
 * setting), or NULL. */
const char *lower_foreign_hint(const char *name, const char *where);

/* layers.c: the name of a binding's next parameterised layer ("h1", then "h1_2");
 * a parameter of a layer ("NAME.weight", "NAME.bias") and its
 * OP_PARAM node; the init argument of a layer (INIT_DEFAULT if absent, -2
 * after reporting a bad name). */
const char *lower_layer_name(lower_ctx *lc, char *layer, size_t len);
int lower_param(lower_ctx *lc, const char *layer, const char *kind, int ndim, const int64_t *dims,
                int64_t fan_in, int64_t fan_out, int init, double l1, double l2, dl_loc loc);
int lower_init_arg(const arg_val *v);

/* layers.c: a buffer of a layer ("NAME.running_mean") and its OP_BUFFER node. */
int lower_buffer(lower_ctx *lc, const char *layer, const char *kind, int ndim,
                 const int64_t *dims, double init, int is_count, dl_loc loc);

/* ---- between the files of this folder ------------------------------------ */

/* lower.c: the symbol a model block bound to `name` (its index in lc->syms),
 * or -1; binds name to node (-1: it failed, its uses are not reported). */
int lower_find_sym(lower_ctx *lc, const char *name);
void lower_add_sym(lower_ctx *lc, const char *name, int node, dl_loc loc);

/* Layers and their tensors are named after the binding ("NAME_12.out_proj.weight"
 * and its optimiser state): a bound on names (with a block instance's prefix)
 * keeps those whole. */
enum { LOWER_MAX_NAME = 200 };
/* names.c: 0 if `name` is not bound yet in this scope; else reports it. */
int lower_check_new_name(lower_ctx *lc, const char *name, dl_loc loc);
/* blocks.c: a group (one C function) for the binding `name` of line `line`,
 * named `name` with '.' as '_', made unique among the groups blocks make
 * and the model's names. */
int lower_new_group(lower_ctx *lc, const char *name, int line, int unique);
/* blocks.c: registers the program's blocks (before lowering the model at
 * index model_pos of p->blocks) and sets lc's hooks. */
void lower_blocks_begin(lower_ctx *lc, const ast_program *p, int model_pos);
void lower_blocks_end(lower_ctx *lc);
/* blocks.c: a model binding that makes an instance (D = Disc(...), repeat)
 * or unpacks several returns (a, b = enc(x)); 1 if handled. */
int lower_blocks_binding(lower_ctx *lc, const ast_stmt *s);

/* names.c: 0 if the model's name can become C names and files, or -1 after
 * a diagnostic at loc (the model's name). */
int check_model_name(const ir_graph *g, const char *name, dl_loc loc);
/* train.c: PyTorch's defaults for the train block's settings. */
void lower_train_defaults(ir_train *t);
/* train.c: the settings of a train block into lc->g->train, each mistake
 * reported (no_label: the model declares no label: idx() takes no labels file). */
int lower_train_block(lower_ctx *lc, const ast_block *b, int no_label);
/* train.c: every callable of a train block, for dlnc builtins (lc->describe). */
void lower_describe_train(lower_ctx *lc);
/* train.c: warns about each parameter the loss does not depend on. */
void lower_warn_unreached(const ir_graph *g);
/* updates.c: whether s is `NAME = update(...)`; lowers a train block's
 * updates into g->updates (after its other settings: an update's optimizer
 * defaults to the block's); warns about the parameters that no update
 * trains or whose update's loss does not reach them. */
int lower_is_update(const ast_stmt *s);
void lower_updates(lower_ctx *lc, const ast_stmt *const *stmts, int n);
void lower_warn_unreached_updates(const ir_graph *g);
void lower_describe_updates(lower_ctx *lc);
/* train.c: the dl_init_kind named by e (an initialiser's name), or -1 after
 * reporting (for layers.c's init argument). */
int lower_init_name(const ast_expr *e);

#endif
