/* builtins.h: what lowering calls in the op families (compiler/ops/), which
 * implement it: the table of builtins callable in a model block (ops.c), the
 * operators + - * / and negation (elementwise.c), and the train block's
 * penalties (loss.c).  Declared at this stage so that lowering never includes
 * an op family's header (ops.h includes this one). */
#ifndef DLNC_BUILTINS_H
#define DLNC_BUILTINS_H
#include "lower.h"

/* ---- lowering: one entry per builtin callable in a model block ---------- */
typedef int (*op_lower_fn)(lower_ctx *lc, const ast_expr *call);
typedef struct op_builtin {
  const char *name;
  op_lower_fn lower;
} op_builtin;
const op_builtin *op_find_builtin(const char *name);
int op_builtin_names(const char *const **names); /* for suggestions */

/* elementwise.c: a + b, a - b, a * b (same shapes), c * a, a * c, a / c (c a
 * number) and -a. */
int lower_binop(lower_ctx *, const ast_expr *);
/* loss.c: the total that training differentiates: loss + l1 sum|W| +
 * l2 sum W^2 over every weight with a penalty. */
void lower_add_penalties(lower_ctx *lc);
/* optim.c: the optimisers, one table row each.  optim_find gives the row
 * of a name (-1 if none), optim_name a row's name (NULL past the last);
 * optim_lower binds a call's arguments into *o and sets its state list. */
int optim_find(const char *name);
const char *optim_name(int kind);
void optim_lower(lower_ctx *lc, const ast_expr *call, int kind, ir_optim *o);
#endif
