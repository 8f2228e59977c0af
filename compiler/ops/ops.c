/* ops.c: the builtin table (names callable in a model block) and the
 * per-op table of backward rules and emitters. */
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
  [OP_GRAD_SEED] = {NULL, elementwise_emit},
  [OP_DENSE] = {dense_backward, dense_emit},
  [OP_ADD] = {elementwise_backward, elementwise_emit},
  [OP_SUB] = {elementwise_backward, elementwise_emit},
  [OP_MUL] = {elementwise_backward, elementwise_emit},
  [OP_SCALE] = {elementwise_backward, elementwise_emit},
  [OP_CONCAT] = {elementwise_backward, elementwise_emit},
  [OP_VIEW] = {elementwise_backward, elementwise_emit},
  [OP_RELU] = {activation_backward, activation_emit},
  [OP_LEAKY_RELU] = {activation_backward, activation_emit},
  [OP_SIGMOID] = {activation_backward, activation_emit},
  [OP_TANH] = {activation_backward, activation_emit},
  [OP_GELU] = {activation_backward, activation_emit},
  [OP_SOFTMAX] = {activation_backward, activation_emit},
  [OP_DROPOUT] = {activation_backward, activation_emit},
  [OP_MSE] = {loss_backward, loss_emit},
  [OP_MAE] = {loss_backward, loss_emit},
  [OP_BCE] = {loss_backward, loss_emit},
  [OP_BCE_LOGITS] = {loss_backward, loss_emit},
  [OP_CROSS_ENTROPY] = {loss_backward, loss_emit},
  [OP_PENALTY] = {loss_backward, loss_emit},
  [OP_DENSE_DX] = {NULL, dense_grad_emit},
  [OP_DENSE_DW] = {NULL, dense_grad_emit},
  [OP_DENSE_DB] = {NULL, dense_grad_emit},
  [OP_ACT_GRAD] = {NULL, activation_grad_emit},
  [OP_SOFTMAX_GRAD] = {NULL, activation_grad_emit},
  [OP_DROPOUT_GRAD] = {NULL, activation_grad_emit},
  [OP_SLICE] = {NULL, elementwise_emit},
  [OP_LOSS_GRAD] = {NULL, loss_grad_emit},
  [OP_LOSS_GRAD_TARGET] = {NULL, loss_grad_emit},
  [OP_PENALTY_GRAD] = {NULL, loss_grad_emit},
  [OP_ADDN] = {NULL, elementwise_emit},
  [OP_IM2COL] = {conv_backward, conv_emit},
  [OP_CONV2D] = {conv_backward, conv_emit},
  [OP_CONV_OUT] = {conv_backward, conv_emit},
  [OP_CONV_OUT_GRAD] = {NULL, conv_emit},
  [OP_MAXPOOL] = {conv_backward, conv_emit},
  [OP_AVGPOOL] = {conv_backward, conv_emit},
  [OP_CONV2D_DW] = {NULL, conv_emit},
  [OP_CONV2D_DW_T] = {NULL, conv_emit},
  [OP_CONV2D_DB] = {NULL, conv_emit},
  [OP_CONV2D_DCOL] = {NULL, conv_emit},
  [OP_COL2IM] = {NULL, conv_emit},
  [OP_MAXPOOL_GRAD] = {NULL, conv_emit},
  [OP_AVGPOOL_GRAD] = {NULL, conv_emit},
  [OP_NORM_STATS] = {NULL, norm_emit}, /* norm's backward differentiates through it */
  [OP_NORM] = {norm_backward, norm_emit},
  [OP_NORM_SUMS] = {NULL, norm_emit},
  [OP_NORM_DX] = {NULL, norm_emit},
  [OP_NORM_DW] = {NULL, norm_emit},
  [OP_NORM_DB] = {NULL, norm_emit},
  [OP_WEIGHT_NORM] = {reparam_backward, reparam_emit},
  [OP_SPECTRAL_NORM] = {reparam_backward, reparam_emit},
  [OP_WEIGHT_NORM_GRAD] = {NULL, reparam_emit},
  [OP_SPECTRAL_NORM_GRAD] = {NULL, reparam_emit},
  [OP_EMBEDDING] = {sequence_backward, sequence_emit},
  [OP_ONE_HOT] = {NULL, sequence_emit},
  [OP_EMBEDDING_DW] = {NULL, sequence_emit},
  [OP_RNN_SCAN] = {NULL, recurrent_emit}, /* OP_RNN_H's backward differentiates through it */
  [OP_RNN_H] = {recurrent_backward, recurrent_emit},
  [OP_RNN_SCAN_GRAD] = {NULL, recurrent_emit},
  [OP_RNN_DW] = {NULL, recurrent_emit},
  [OP_RNN_DB] = {NULL, recurrent_emit},
  [OP_ATTENTION] = {attention_backward, attention_emit},
  [OP_POSITIONAL] = {attention_backward, attention_emit},
  [OP_ATTENTION_GRAD] = {NULL, attention_emit},
  [OP_POSITIONAL_DW] = {NULL, attention_emit},
};

const op_info *op_info_of(ir_op op) { return &table[op]; }
