/* emit_api.c: the helpers emit_api.h declares for the op families' C
 * emitters: a parallel job's function and its call, an elementwise kernel
 * (inline or a job), a node's buffer and rows as C expressions.  Kept apart
 * from emit_c.c, which writes the files around the kernels. */
#include "../../runtime/dl_hints.h" /* DL_GRAIN_VALUES */
#include "emit_api.h"
#include "emit_text.h"
#include <stdlib.h>
#include <string.h>

const char *emit_job_begin(emit_ctx *ec, const ir_node *n, const char *what, const char *comment,
                           char *name, size_t len) {
  emit_text o[1] = {{.f = ec->helpers}};
  snprintf(name, len, "%s_%s_%d", what, ec->g->groups[n->group].name, n->id);
  if (comment) emit_line(o, "/* %s */", comment);
  emit_line(o, "static void %s(void *arg, int64_t lo, int64_t hi) {", name);
  emit_line(o, "const dl_job *job = arg;");
  emit_line(o, "dl_ctx *ctx = job->ctx;");
  emit_line(o, "const int n = job->n;");
  emit_line(o, "(void)ctx, (void)n;");
  return name;
}

void emit_job_call(emit_ctx *ec, const char *name, const char *count, const char *grain) {
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "{");
  emit_line(o, "dl_job job = {ctx, n};");
  emit_line(o, "dl_parallel_for(ctx->pool, %s, %s, %s, &job);", count, grain, name);
  emit_line(o, "}");
}

/* Elementwise kernels with fewer elements per sample than this (or, for an
 * unbatched one, fewer than twice DL_GRAIN_VALUES) stay inline: at the usual
 * batches a share of theirs is worth less than handing it to a thread.
 * Each element is a simple value's work: DL_GRAIN_VALUES to a thread. */
#define EW_JOB_MIN_PER_SAMPLE 1024

/* The loop itself, over [k0, k1) ("{" already open, decls written). */
static void ew_loop(emit_text *o, const char *k0, const char *k1, const char *body,
                    int eval_identity) {
  if (eval_identity) {
    emit_line(o, "if (!ctx->train_mode) {");
    emit_line(o, "if (y != x) memcpy(y + %s, x + %s, (%s - %s) * sizeof *y);", k0, k0, k1, k0);
    emit_line(o, "return;");
    emit_line(o, "}");
  }
  emit_line(o, "DL_ELEMENTWISE");
  emit_line(o, "for (size_t k = %s; k < %s; k++) %s;", k0, k1, body);
}

void emit_elementwise(emit_ctx *ec, const ir_node *n, const char *what, const char *decls,
                      const char *body, int eval_identity) {
  char rows[64], count[96];
  emit_rows(n, rows, sizeof rows);
  snprintf(count, sizeof count, "(size_t)(%s) * %lld", rows, ll(ir_last_dim(n)));
  int64_t numel = ir_numel(n);
  int job = n->batched ? numel >= EW_JOB_MIN_PER_SAMPLE : numel >= 2 * DL_GRAIN_VALUES;
  if (!job) {
    emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
    emit_line(o, "{");
    emit_line(o, "%s", decls);
    emit_line(o, "const size_t count = %s;", count);
    if (eval_identity) {
      /* a block, not the job's early return: more kernels follow */
      emit_line(o, "if (!ctx->train_mode) {");
      emit_line(o, "if (y != x) memcpy(y, x, count * sizeof *y);");
      emit_line(o, "} else {");
      ew_loop(o, "0", "count", body, 0);
      emit_line(o, "}");
    } else {
      ew_loop(o, "0", "count", body, 0);
    }
    emit_line(o, "}");
    return;
  }
  char name[128], comment[160];
  emit_text h[1] = {{.f = ec->helpers, .depth = 1}}; /* in the job emit_job_begin opens */
  snprintf(comment, sizeof comment, "%s: %s, elements [lo, hi) of the batch's",
           ec->g->groups[n->group].name, ir_op_name(n->op));
  emit_job_begin(ec, n, what, comment, name, sizeof name);
  emit_line(h, "%s", decls);
  ew_loop(h, "(size_t)lo", "(size_t)hi", body, eval_identity);
  emit_line(h, "}\n");
  char items[128];
  snprintf(items, sizeof items, "(int64_t)(%s)", count);
  char grain[32];
  snprintf(grain, sizeof grain, "%d", DL_GRAIN_VALUES);
  emit_job_call(ec, name, items, grain);
}

const char *emit_ptr(emit_ctx *ec, int id, char *buf, size_t len) {
  const ir_graph *g = ec->g;
  id = ec->root[id];
  const ir_node *n = &g->nodes[id];
  switch (n->storage) {
  case STORE_INPUT: snprintf(buf, len, "ctx->x"); break;
  case STORE_LABEL: snprintf(buf, len, g->label_is_class ? "ctx->y_class" : "ctx->y_real"); break;
  case STORE_STATE: snprintf(buf, len, "ST(%zu)", n->offset); break;
  default: snprintf(buf, len, n->batched ? "ACT(%zu)" : "FIX(%zu)", n->offset); break;
  }
  return buf;
}

const char *emit_rows(const ir_node *n, char *buf, size_t len) {
  int64_t r = ir_rows(n);
  if (!n->batched) snprintf(buf, len, "%lld", ll(r));
  else if (r == 1) snprintf(buf, len, "n");
  else snprintf(buf, len, "n * %lld", ll(r));
  return buf;
}
