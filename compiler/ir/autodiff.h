/* autodiff.h: reverse-mode differentiation pass (see autodiff.c). */
#ifndef DLNC_AUTODIFF_H
#define DLNC_AUTODIFF_H
#include "optable.h"
/* Appends the backward nodes of g->total_loss; sets each param's grad node.
 * Returns 0, or -1 if the result fails ir_verify. */
int autodiff(ir_graph *g);

/* ---- for the op families' backward rules (op_backward_fn) ---------------- */
/* Adds `grad` as one contribution to d loss / d value. */
void ad_accumulate(ad_ctx *ad, int value, int grad);
/* Appends a backward node shaped like node `like` in group `group`. */
int ad_node(ad_ctx *ad, ir_op op, const int *in, int nin, int like, int group);
ir_graph *ad_graph(ad_ctx *ad);
/* Whether d loss / d value is needed (a parameter is upstream of it). */
int ad_wants(ad_ctx *ad, int value);
#endif
