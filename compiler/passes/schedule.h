/* schedule.h: the order in which a model with several updates computes
 * (schedule.c); memplan.c plans on it and emit_c.c writes it. */
#ifndef DLNC_SCHEDULE_H
#define DLNC_SCHEDULE_H
#include "ir.h"
/* Fills each update's runs[] (the forward groups its compute_grads runs)
 * and g->tail_runs; without updates, g->loss_runs.  After autodiff. */
int schedule_updates(ir_graph *g);
/* Whether groups ga and gb run in the same updates (and the tail): a value
 * may be computed in place over another's only then, or a recomputation
 * would read what the other wrote over it.  Always 1 without updates. */
int schedule_same_runs(const ir_graph *g, int ga, int gb);
/* Every node execution of one batch's updates (forward groups, then the
 * update's backward groups in reverse), then the tail: node ids, repeated
 * when recomputed; *len of them.  The caller frees it. */
int *schedule_sequence(const ir_graph *g, int *len);
#endif
