/* ops.h: one file per op family (dense.c, activation.c, elementwise.c,
 * loss.c, conv.c, norm.c, ...).  For each op: its lowering from a call in
 * the .dln (the shape rule), its backward rule for autodiff, and its C
 * emitter.  The op registry, ir/ops.def, names them in its rows, and this
 * header declares every function the rows name, so a family's hooks need
 * no prototype here; only what families share besides those is below.
 * Adding an op family touches this folder (its file), its block in ops.def,
 * the docs and a test.
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
#include "onnx_api.h"

/* The hooks of ops.def's rows (defined in the family's file): each row's
 * backward rule and emitter, and each builtin's lowering.  A name repeats
 * over rows; C allows the same declaration again.  no_backward and no_emit,
 * the rows' "none", are declared but never defined: ops.c's tables make
 * them NULL. */
/* The header of an elementwise loop in generated C: element k of the output
 * from element k of the inputs, over k < count.  DL_ELEMENTWISE (dl_ops.h)
 * tells the C compiler that computing in place is no dependence. */
#define EW_FOR "DL_ELEMENTWISE\nfor (size_t k = 0; k < count; k++)"

#define IR_OP(id, name, flags, backward, emit) \
  void backward(ad_ctx *, int, int);           \
  void emit(emit_ctx *, const ir_node *);
#define IR_BUILTIN(name, lower) int lower(lower_ctx *, const ast_expr *);
#define IR_ONNX(id, fn) void fn(onnx_ctx *, const ir_node *);
#include "ops.def"

/* activation.c, for the kernels an activation is fused into (dense, conv,
 * norm): act(v) as a C expression in dl_real; dy * act'(.) from the saved
 * output y (or the input x for gelu), with leaky_relu's slope. */
const char *activation_expr(const ir_node *act, const char *v, char *buf, size_t len);
const char *activation_grad_expr(ir_op op, double slope, const char *dy, const char *y,
                                 const char *x, char *buf, size_t len);

/* sequence.c: whether argument v is a sequence [T, features] per sample; 0,
 * or -1 after reporting (in the name of builtin fn). */
int lower_sequence_arg(lower_ctx *lc, const arg_val *v, const char *fn);

/* reparam.c: which wrapper a layer's weight_norm and spectral_norm
 * arguments ask for (-1 after reporting both at once), and the layer's
 * weight, plain or wrapped: the node a layer reads as its weight. */
enum { WRAP_NONE, WRAP_WEIGHT_NORM, WRAP_SPECTRAL_NORM };
int lower_wrap_arg(const arg_val *weight_norm, const arg_val *spectral_norm);
int lower_weight(lower_ctx *lc, const char *layer, int wrap, int ndim, const int64_t *dims,
                 int64_t fan_in, int64_t fan_out, int init, double l1, double l2, dl_loc loc);

/* arith.c, for lower_binop (elementwise.c): a / b of checked shapes; x + c,
 * x - c, c - x and c / x (op the operator, number_left whether c is its
 * left operand). */
int lower_div(lower_ctx *lc, int a, int b, dl_loc loc);
int lower_number_op(lower_ctx *lc, int x, int op, int number_left, double c, dl_loc loc);

#endif
