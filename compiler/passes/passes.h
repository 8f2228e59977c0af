/* passes.h: the passes between autodiff and emission. */
#ifndef DLNC_PASSES_H
#define DLNC_PASSES_H
#include "ir.h"
/* Storage and offsets of every value (state block, activation arena). */
int memplan(ir_graph *g);
/* How many nodes from `id` on run as one per-sample chain (1: none).  The
 * memory plan keeps a chain's buffers apart, and fuse marks the chain. */
int fuse_chain_length(const ir_graph *g, int id);
/* Marks kernels that are computed inside another's loop (after memplan);
 * returns ir_verify's answer on the result (0, or -1 after reporting). */
int fuse(ir_graph *g);
#endif
