/* trainer_finite.c: finding NaN and infinity in the state block, so that a
 * diverging run stops at the first bad step, names the tensor, and never
 * writes the bad values into a checkpoint.
 *
 * The weights and the optimiser state are watched by the update itself
 * (apply_update, compiler/ops/optim.c), which says whether it wrote a bad
 * value; these scans then find which tensor, and run every step only over
 * the buffers (few and small), and over everything before a save or after
 * a resume.  A value is NaN or infinite exactly when all its exponent bits
 * are set, i.e. when its bit pattern with the sign cleared is at least that
 * of +infinity (dl_real.h).  So the largest sign-cleared pattern over a
 * tensor decides it: an integer max-reduction, one read of each element,
 * which the compiler vectorises at -O3 (integer max is associative, unlike
 * a float sum, so no -ffast-math is needed).  It is also exact: a sum would
 * overflow to infinity on large finite values and raise false alarms.  Only
 * when a tensor fails does the slow element-by-element search run.  Large
 * tensors are split over the thread pool: the scan is bound by memory
 * bandwidth, and one core alone cannot use all of it. */
#include "dl_hints.h" /* DL_GRAIN_VALUES */
#include "dl_model.h"
#include "threads.h"
#include "trainer_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* Elements per chunk of a parallel scan (a compare each, half a simple
 * value's work): below two of them a tensor is scanned inline. */
enum { SCAN_GRAIN = 2 * DL_GRAIN_VALUES };

/* Largest |bits| over p[0..n) (dl_real.h). */
static dl_bits max_abs_bits(const dl_real *p, size_t n) {
  dl_bits m = 0;
  for (size_t i = 0; i < n; i++) m = dl_bits_max(m, dl_abs_bits(p[i]));
  return m;
}

int dl_tr_all_finite(const dl_real *p, size_t n) { return max_abs_bits(p, n) < DL_INF_BITS; }

typedef struct scan_job {
  const dl_real *p;
  atomic_int bad;           /* set by any chunk that saw a NaN or Inf */
} scan_job;

static void scan_range(void *arg, int64_t begin, int64_t end) {
  scan_job *j = arg;
  if (max_abs_bits(j->p + begin, (size_t)(end - begin)) >= DL_INF_BITS)
    atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
}

/* dl_parallel_for returns only after every chunk, with a lock in between:
 * relaxed atomics are enough. */
static int tensor_finite(dl_pool *pool, const dl_real *p, size_t n) {
  if (!pool || n < 2 * SCAN_GRAIN) return dl_tr_all_finite(p, n);
  scan_job j;
  j.p = p;
  atomic_init(&j.bad, 0);
  dl_parallel_for(pool, (int64_t)n, SCAN_GRAIN, scan_range, &j);
  return !atomic_load_explicit(&j.bad, memory_order_relaxed);
}

const char *dl_tr_nonfinite_name(double v) {
  if (isnan(v)) return "nan";
  if (isinf(v)) return v > 0 ? "inf" : "-inf";
  return "finite";
}

static double first_nonfinite(const dl_real *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(p[i])) return (double)p[i];
  return 0.0;
}

const dl_tensor_desc *dl_tr_find_nonfinite(const dl_ctx *ctx, dl_tensor_kind kind, double *bad) {
  const dl_model_desc *m = ctx->m;
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *t = &m->tensors[i];
    if (t->kind != kind) continue;
    const dl_real *p = ctx->state + t->offset;
    if (tensor_finite(ctx->pool, p, t->numel)) continue;
    if (bad) *bad = first_nonfinite(p, t->numel);
    return t;
  }
  return NULL;
}
