/* ops.h: one place per op family (dense.c, activation.c, elementwise.c,
 * loss.c, conv.c, norm.c, optim.c).  For each op: its lowering from a call in the .dln (the
 * shape rule), its backward rule for autodiff, and its C emitter.  Adding
 * an op touches this folder, its row in the op table (ir/ops.def), the
 * builtin table in ops.c if it is callable, and a test.
 *
 * The op families are the last compiler stage but the driver: they include
 * lowering (builtins.h, lower.h), autodiff's API (autodiff.h) and the
 * emitter's helpers (emit_api.h), and those stages reach them only through
 * builtins.h and ir/optable.h, whose tables ops.c and optim.c fill. */
#ifndef DLNC_OPS_H
#define DLNC_OPS_H
#include "autodiff.h"
#include "builtins.h"
#include "emit_api.h"

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

/* softplus.c: OP_SOFTPLUS and its gradient, the whole family in one file. */
int lower_softplus(lower_ctx *, const ast_expr *);
void softplus_backward(ad_ctx *, int, int);
void softplus_emit(emit_ctx *, const ir_node *);

int lower_concat(lower_ctx *, const ast_expr *);
int lower_flatten(lower_ctx *, const ast_expr *);
int lower_reshape(lower_ctx *, const ast_expr *);
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

#endif
