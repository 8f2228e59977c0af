/* passes.h: the passes between autodiff and emission. */
#ifndef DLNC_PASSES_H
#define DLNC_PASSES_H
#include "ir.h"
/* Storage and offsets of every value (state block, activation arena). */
int memplan(ir_graph *g);
/* Marks kernels that are computed inside another's loop (after memplan). */
void fuse(ir_graph *g);
#endif
