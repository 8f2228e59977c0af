/* ops.c: the tables made of the op registry's function columns (ir/ops.def):
 * the builtins (names callable in a model block) and their lowering, and
 * each op's backward rule and emitter. */
#include "ops.h"
#include <string.h>

/* The registry's "none" (ops.def): no gradient flows through, a leaf. */
#define no_backward NULL
#define no_emit NULL

static const op_builtin builtins[] = {
#define IR_BUILTIN(name, lower) {name, lower},
#include "ops.def"
};
enum { N_BUILTINS = sizeof builtins / sizeof *builtins };

const op_builtin *op_find_builtin(const char *name) {
  for (int i = 0; i < N_BUILTINS; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

int op_builtin_names(const char *const **names) {
  static const char *list[N_BUILTINS];
  for (int i = 0; i < N_BUILTINS; i++) list[i] = builtins[i].name;
  *names = list;
  return N_BUILTINS;
}

static const op_info table[OP_COUNT] = {
#define IR_OP(id, name, flags, backward, emit) [OP_##id] = {backward, emit},
#include "ops.def"
};

const op_info *op_info_of(ir_op op) { return &table[op]; }

/* ONNX mappings: the IR_ONNX rows (an op without one has none). */
static const op_onnx_fn onnx_table[OP_COUNT] = {
#define IR_ONNX(id, fn) [OP_##id] = fn,
#include "ops.def"
};

op_onnx_fn op_onnx_of(ir_op op) { return onnx_table[op]; }
