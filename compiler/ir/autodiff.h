/* autodiff.h: reverse-mode differentiation pass (see autodiff.c). */
#ifndef DLNC_AUTODIFF_H
#define DLNC_AUTODIFF_H
#include "ir.h"
/* Appends the backward nodes of g->total_loss; sets each param's grad node.
 * Returns 0, or -1 if the result fails ir_verify. */
int autodiff(ir_graph *g);
#endif
