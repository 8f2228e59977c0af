/* fuzz_model.h: the fixed model descriptor of fuzz_safetensors. */
#ifndef DLNC_FUZZ_MODEL_H
#define DLNC_FUZZ_MODEL_H
#include "dl_model.h"

/* A dense layer 3 -> 2 trained by Adam: parameters, gradients (not saved)
 * and optimiser state.  fuzz_safetensors loads checkpoints of it;
 * gen_corpus.c writes them. */
enum { W = 0, B = 6, GW = 8, GB = 14, MW = 16, MB = 22, VW = 24, VB = 30, STATE = 32 }; /* offsets */
static const dl_tensor_desc fuzz_tensors[] = {
    {"fc.weight", DL_T_PARAM, 2, {2, 3}, W, 6, DL_INIT_HE_NORMAL, 3, 2, 0, 1, -1},
    {"fc.bias", DL_T_PARAM, 1, {2}, B, 2, DL_INIT_ZERO, 3, 2, 0, 1, -1},
    {"fc.weight.grad", DL_T_GRAD, 2, {2, 3}, GW, 6, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"fc.bias.grad", DL_T_GRAD, 1, {2}, GB, 2, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"fc.weight.exp_avg", DL_T_OPT, 2, {2, 3}, MW, 6, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"fc.bias.exp_avg", DL_T_OPT, 1, {2}, MB, 2, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"fc.weight.exp_avg_sq", DL_T_OPT, 2, {2, 3}, VW, 6, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"fc.bias.exp_avg_sq", DL_T_OPT, 1, {2}, VB, 2, DL_INIT_ZERO, 0, 0, 0, 1, -1},
};
static const dl_model_desc fuzz_model = {
    .name = "fz",
    .source = "fz.dln",
    .x_ndim = 1,
    .x_shape = {3},
    .x_size = 3,
    .y_kind = DL_Y_REAL,
    .y_size = 2,
    .pred_kind = DL_PRED_VALUES,
    .out_size = 2,
    .state_elems = STATE,
    .n_tensors = (int)(sizeof fuzz_tensors / sizeof fuzz_tensors[0]),
    .tensors = fuzz_tensors,
};

#endif
