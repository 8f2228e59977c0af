/* onnx.h: ONNX export of a loaded model's inference graph (onnx.c).
 * Runtime-internal: used by the trainer's export command. */
#ifndef DL_ONNX_H
#define DL_ONNX_H
#include <stddef.h>
#include "dl_model.h"

/* 0 if model m can be exported, else -1 and why in err (the compiler's
 * message: the .dln line of the first op without an ONNX mapping). */
int dl_onnx_refusal(const dl_model_desc *m, char *err, size_t errlen);
/* Writes ctx's model with its current weights (as float32) to path as an
 * ONNX ModelProto, atomically; 0, or -1 and why in err. */
int dl_onnx_save(const dl_ctx *ctx, const char *path, char *err, size_t errlen);
#endif
