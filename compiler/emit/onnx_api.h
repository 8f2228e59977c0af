/* onnx_api.h: the helpers with which an op family writes its forward ops
 * as ONNX nodes (the op_onnx_fn of optable.h, an IR_ONNX row of ops.def).
 * emit_onnx.c walks the inference graph (what the prediction head depends
 * on) in order, calls each op's mapping, and writes what they declared into
 * NAME.c as a dl_onnx_graph (runtime/dl_model.h), which the trainer's
 * `export --onnx` turns into a ModelProto with a checkpoint's weights.
 * Every name returned is owned by the context. */
#ifndef DLNC_ONNX_API_H
#define DLNC_ONNX_API_H
#include <stdint.h>
#include "optable.h"

/* The ONNX value name of node id: the model input's name, a state tensor's
 * (which becomes an initializer), or the value its mapping declared. */
const char *onnx_value(onnx_ctx *oc, int id);
/* A new name for an intermediate value of node n's mapping. */
const char *onnx_temp(onnx_ctx *oc, const ir_node *n);
/* Node n computes nothing: its value is the value `name` (dropout, detach). */
void onnx_alias(onnx_ctx *oc, const ir_node *n, const char *name);
/* Attributes of the next onnx_node. */
void onnx_attr_int(onnx_ctx *oc, const char *name, int64_t v);
void onnx_attr_float(onnx_ctx *oc, const char *name, double v);
void onnx_attr_ints(onnx_ctx *oc, const char *name, int n, const int64_t *v);
/* An ONNX node op(in[0..nin)) writing `out`, or node n's own value when
 * out is NULL (the last node of a mapping); returns the output's name.
 * "" stands for an optional input left out. */
const char *onnx_node(onnx_ctx *oc, const ir_node *n, const char *op, const char *out, int nin,
                      const char *const *in);
/* onnx_node for one input, the value of n's first input (Relu, Exp, ...),
 * and for two named values. */
const char *onnx_unary(onnx_ctx *oc, const ir_node *n, const char *op);
const char *onnx_binary(onnx_ctx *oc, const ir_node *n, const char *op, const char *out,
                        const char *a, const char *b);
/* Constants (initializers): a float of shape [1], which broadcasts; a float
 * tensor filled with v; int64 values [n] (a Reshape's shape). */
const char *onnx_scalar(onnx_ctx *oc, double v);
const char *onnx_fill(onnx_ctx *oc, int ndim, const int64_t *dims, double v);
const char *onnx_ints(onnx_ctx *oc, int n, const int64_t *v);
/* The state tensor (parameter or buffer) read by leaf node id, in another
 * shape of as many values (a channel scale as [C, 1, 1] to broadcast), or
 * of a multiple of them, the values repeated (a scale over the last
 * dimension at every position). */
const char *onnx_reshaped(onnx_ctx *oc, int id, int ndim, const int64_t *dims);
/* Node n (unbatched, computed from state only) becomes an initializer that
 * the exporter computes from the checkpoint: kind is a dl_onnx_init_kind
 * (DL_ONNX_INIT_WEIGHT_NORM, _SPECTRAL_NORM) and src the leaf nodes it
 * reads, in the order dl_model.h lists them. */
void onnx_derived(onnx_ctx *oc, const ir_node *n, int kind, int nsrc, const int *src);
/* The graph node n belongs to, for shapes of other nodes. */
const ir_graph *onnx_graph(const onnx_ctx *oc);

/* emit_c.c: writes NAME.c's `onnx_graph` (a dl_onnx_graph), or its refusal. */
typedef struct emit_text emit_text;
void emit_onnx(const ir_graph *g, emit_text *o);
#endif
