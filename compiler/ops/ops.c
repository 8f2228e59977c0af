/* ops.c: the builtin table (names callable in a model block) and the
 * per-op backward rules and emitters, the function columns of the op table
 * (ir/ops.def). */
#include "ops.h"
#include <string.h>

static const op_builtin builtins[] = {
  {"dense", lower_dense},
  {"relu", lower_activation},
  {"leaky_relu", lower_activation},
  {"sigmoid", lower_activation},
  {"tanh", lower_activation},
  {"gelu", lower_activation},
  {"softmax", lower_activation},
  {"softplus", lower_softplus},
  {"dropout", lower_dropout},
  {"concat", lower_concat},
  {"flatten", lower_flatten},
  {"reshape", lower_reshape},
  {"conv2d", lower_conv2d},
  {"maxpool", lower_pool},
  {"avgpool", lower_pool},
  {"global_avgpool", lower_pool},
  {"batch_norm", lower_norm},
  {"layer_norm", lower_norm},
  {"instance_norm", lower_norm},
  {"group_norm", lower_norm},
  {"embedding", lower_embedding},
  {"one_hot", lower_one_hot},
  {"rnn", lower_recurrent},
  {"lstm", lower_recurrent},
  {"gru", lower_recurrent},
  {"attention", lower_attention},
  {"positional", lower_positional},
  {"mse", lower_loss},
  {"mae", lower_loss},
  {"binary_cross_entropy", lower_loss},
  {"bce_with_logits", lower_loss},
  {"cross_entropy", lower_loss},
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
#undef IR_OP
};

const op_info *op_info_of(ir_op op) { return &table[op]; }
