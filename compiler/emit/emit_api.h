/* emit_api.h: the emitter's helpers for the op families' C emitters (the
 * op_emit_fn of optable.h): the context of the function being written, a
 * node's buffer as a C expression, parallel jobs, escaped .dln text.
 * Implemented in emit_api.c (escaping in emit_text.c); included by compiler/ops/ (a later stage), never
 * the other way round. */
#ifndef DLNC_EMIT_API_H
#define DLNC_EMIT_API_H
#include <stdio.h>
#include "optable.h"

struct emit_ctx {
  FILE *out;
  FILE *helpers;  /* static functions a kernel needs, written before the
                     function being emitted (e.g. GEMM epilogues) */
  ir_graph *g;
  int f64;
  int depth;      /* where a kernel's lines start in out: 1 in a layer's
                     function, 2 in emit_guarded's `if (with_labels)` */
  int *root;                /* root[id]: the node whose buffer id is computed in */
  int *group_first, *group_next; /* each group's nodes in order: a list */
  int update;     /* with updates (g->nupdates): the update whose backward
                     functions are being written */
};
/* C expression for a pointer to node `id`'s buffer (follows aliases). */
const char *emit_ptr(emit_ctx *ec, int id, char *buf, size_t len);
/* Opens a helper `static void NAME(void *arg, int64_t lo, int64_t hi)` in
 * ec->helpers (ctx and n declared; NAME = WHAT_GROUP_ID, written to name),
 * which the kernel then runs over items [0, count) with emit_job_call:
 * dl_parallel_for, at least `grain` items to a thread (C expressions). */
const char *emit_job_begin(emit_ctx *ec, const ir_node *n, const char *what, const char *comment,
                           char *name, size_t len);
void emit_job_call(emit_ctx *ec, const char *name, const char *count, const char *grain);
/* An elementwise kernel over node n's elements, `y[k] = ...` for k <
 * count: "{ decls; count; for k: body; }" inline, or, when n is large
 * enough for two threads to share, the same loop over a range of k in a
 * job (emit_job_begin; WHAT_GROUP_ID) run with dl_parallel_for.  decls:
 * pointer declarations, a line each; body: one statement reading element
 * k alone.  eval_identity: in eval mode the kernel copies x to y instead
 * (dropout). */
void emit_elementwise(emit_ctx *ec, const ir_node *n, const char *what, const char *decls,
                      const char *body, int eval_identity);
/* C expression for the number of rows (all but the last dim) of a batched node. */
const char *emit_rows(const ir_node *n, char *buf, size_t len);
/* Text from the .dln or its path as a C string literal (NULL: NULL), or
 * inside a C comment: the one place such text is escaped (emit_text.c).  The
 * copies are malloc'd (any length): the caller frees them. */
char *emit_cstr(const char *s);
char *emit_comment_text(const char *s);
#endif
