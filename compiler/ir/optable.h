/* optable.h: what the stages after lowering may know of an op family,
 * through one table.  The op families (compiler/ops/) implement it: ops.c
 * fills op_info_of's rows with each op's backward rule and C emitter, and
 * optim.c provides the optimiser's.  Autodiff (ir/), the passes and the
 * emitter (emit/) include this header, never an op family's ops.h, so they
 * see neither lowering nor the AST.  The contexts are opaque here: ad_ctx
 * is autodiff's (its API in autodiff.h), emit_ctx the emitter's (emit_api.h). */
#ifndef DLNC_OPTABLE_H
#define DLNC_OPTABLE_H
#include "ir.h"

typedef struct ad_ctx ad_ctx;
typedef struct emit_ctx emit_ctx;
typedef struct onnx_ctx onnx_ctx;

/* Adds the gradient nodes of node `node`'s inputs, given dy = d loss / d node. */
typedef void (*op_backward_fn)(ad_ctx *ad, int node, int dy);
/* Writes the C that computes node n (into ec's function being emitted). */
typedef void (*op_emit_fn)(emit_ctx *ec, const ir_node *n);

typedef struct op_info {
  op_backward_fn backward;   /* NULL: no gradient flows through          */
  op_emit_fn emit;           /* NULL: leaf, nothing to compute           */
} op_info;
const op_info *op_info_of(ir_op op);

/* Writes forward node n of the inference graph as ONNX nodes (emit_onnx.c,
 * the helpers of emit/onnx_api.h): the IR_ONNX rows of ops.def.  NULL for
 * an op with no mapping, which refuses the export of a model that uses it. */
typedef void (*op_onnx_fn)(onnx_ctx *oc, const ir_node *n);
op_onnx_fn op_onnx_of(ir_op op);

/* ---- the optimiser (ops/optim.c) ----------------------------------------- */
/* The fused optimiser step, one pass per parameter. */
void optim_emit_update(emit_ctx *ec);
#endif
