/* ops.h: one place per op family (dense.c, activation.c, elementwise.c,
 * loss.c, conv.c, norm.c, optim.c).  For each op: its lowering from a call in the .dln (the
 * shape rule), its backward rule for autodiff, and its C emitter.  Adding
 * an op touches this folder, the builtin table in ops.c and a test. */
#ifndef DLNC_OPS_H
#define DLNC_OPS_H
#include <stdio.h>
#include "ir.h"
#include "lower.h"

/* ---- lowering: one entry per builtin callable in a model block ---------- */
typedef int (*op_lower_fn)(lower_ctx *lc, const ast_expr *call);
typedef struct op_builtin {
  const char *name;
  op_lower_fn lower;
} op_builtin;
const op_builtin *op_find_builtin(const char *name);
int op_builtin_names(const char *const **names); /* for suggestions */

/* ---- autodiff ------------------------------------------------------------ */
typedef struct ad_ctx ad_ctx;
/* Adds `grad` as one contribution to d loss / d value. */
void ad_accumulate(ad_ctx *ad, int value, int grad);
/* Appends a backward node shaped like node `like` in group `group`. */
int ad_node(ad_ctx *ad, ir_op op, const int *in, int nin, int like, int group);
ir_graph *ad_graph(ad_ctx *ad);
/* Whether d loss / d value is needed (a parameter is upstream of it). */
int ad_wants(ad_ctx *ad, int value);
typedef void (*op_backward_fn)(ad_ctx *ad, int node, int dy);

/* ---- emission ------------------------------------------------------------- */
typedef struct emit_ctx {
  FILE *out;
  FILE *helpers;  /* static functions a kernel needs, written before the
                     function being emitted (e.g. GEMM epilogues) */
  ir_graph *g;
  int f64;
  int *root;                /* root[id]: the node whose buffer id is computed in */
  int *group_first, *group_next; /* each group's nodes in order: a list */
} emit_ctx;
/* C expression for a pointer to node `id`'s buffer (follows aliases). */
const char *emit_ptr(emit_ctx *ec, int id, char *buf, size_t len);
/* Opens a helper `static void NAME(void *arg, int64_t lo, int64_t hi)` in
 * ec->helpers (ctx and n declared; NAME = WHAT_GROUP_ID, written to name),
 * which the kernel then runs over items [0, count) with emit_job_call:
 * dl_parallel_for, at least `grain` items to a thread (C expressions). */
const char *emit_job_begin(emit_ctx *ec, const ir_node *n, const char *what, const char *comment,
                           char *name, size_t len);
void emit_job_call(emit_ctx *ec, const char *name, const char *count, const char *grain);
/* C expression for the number of rows (all but the last dim) of a batched node. */
const char *emit_rows(const ir_node *n, char *buf, size_t len);
typedef void (*op_emit_fn)(emit_ctx *ec, const ir_node *n);
/* Text from the .dln or its path as a C string literal (NULL: NULL), or
 * inside a C comment: the one place such text is escaped (emit_c.c). */
void emit_cstr(FILE *o, const char *s);
void emit_comment_text(FILE *o, const char *s);

typedef struct op_info {
  op_backward_fn backward;   /* NULL: no gradient flows through          */
  op_emit_fn emit;           /* NULL: leaf, nothing to compute           */
} op_info;
const op_info *op_info_of(ir_op op);

/* Per-family hooks (defined in the family's file). */
int lower_dense(lower_ctx *, const ast_expr *);
void dense_backward(ad_ctx *, int, int);
void dense_emit(emit_ctx *, const ir_node *);
void dense_grad_emit(emit_ctx *, const ir_node *);

int lower_activation(lower_ctx *, const ast_expr *);
int lower_dropout(lower_ctx *, const ast_expr *);
void activation_backward(ad_ctx *, int, int);
void activation_emit(emit_ctx *, const ir_node *);
void activation_grad_emit(emit_ctx *, const ir_node *);
/* activation.c, for the kernels an activation is fused into (dense, conv,
 * norm): act(v) as a C expression in dl_real; dy * act'(.) from the saved
 * output y (or the input x for gelu), with leaky_relu's slope. */
const char *activation_expr(const ir_node *act, const char *v, char *buf, size_t len);
const char *activation_grad_expr(ir_op op, double slope, const char *dy, const char *y,
                                 const char *x, char *buf, size_t len);

int lower_concat(lower_ctx *, const ast_expr *);
int lower_flatten(lower_ctx *, const ast_expr *);
int lower_reshape(lower_ctx *, const ast_expr *);
int lower_binop(lower_ctx *, const ast_expr *);
void elementwise_backward(ad_ctx *, int, int);
void elementwise_emit(emit_ctx *, const ir_node *);

int lower_loss(lower_ctx *, const ast_expr *);
void loss_backward(ad_ctx *, int, int);
void loss_emit(emit_ctx *, const ir_node *);
void loss_grad_emit(emit_ctx *, const ir_node *);

int lower_conv2d(lower_ctx *, const ast_expr *);
int lower_pool(lower_ctx *, const ast_expr *);
void conv_backward(ad_ctx *, int, int);
void conv_emit(emit_ctx *, const ir_node *);

int lower_norm(lower_ctx *, const ast_expr *);
void norm_backward(ad_ctx *, int, int);
void norm_emit(emit_ctx *, const ir_node *);

/* sequence.c: whether argument v is a sequence [T, features] per sample; 0,
 * or -1 after reporting (in the name of builtin fn). */
int lower_sequence_arg(lower_ctx *lc, const arg_val *v, const char *fn);
int lower_embedding(lower_ctx *, const ast_expr *);
int lower_one_hot(lower_ctx *, const ast_expr *);
void sequence_backward(ad_ctx *, int, int);
void sequence_emit(emit_ctx *, const ir_node *);

int lower_recurrent(lower_ctx *, const ast_expr *);
void recurrent_backward(ad_ctx *, int, int);
void recurrent_emit(emit_ctx *, const ir_node *);

int lower_attention(lower_ctx *, const ast_expr *);
int lower_positional(lower_ctx *, const ast_expr *);
void attention_backward(ad_ctx *, int, int);
void attention_emit(emit_ctx *, const ir_node *);

/* reparam.c: which wrapper a layer's weight_norm and spectral_norm
 * arguments ask for (-1 after reporting both at once), and the layer's
 * weight, plain or wrapped: the node a layer reads as its weight. */
enum { WRAP_NONE, WRAP_WEIGHT_NORM, WRAP_SPECTRAL_NORM };
int lower_wrap_arg(const arg_val *weight_norm, const arg_val *spectral_norm);
int lower_weight(lower_ctx *lc, const char *layer, int wrap, int ndim, const int64_t *dims,
                 int64_t fan_in, int64_t fan_out, int init, double l1, double l2, dl_loc loc);
void reparam_backward(ad_ctx *, int, int);
void reparam_emit(emit_ctx *, const ir_node *);

/* optim.c: the fused optimiser step, one pass per parameter. */
void optim_emit_update(emit_ctx *ec);

#endif
