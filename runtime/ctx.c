/* ctx.c: allocation and parameter initialisation of a model instance. */
#include "dl_model.h"
#include "rng.h"
#include "trainer_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN = 64 };

/* aligned_alloc wants a size that is a multiple of the alignment; a zero
 * request still gets a block so that NULL always means "out of memory". */
static void *alloc_aligned(size_t count, size_t elem) {
  if (elem != 0 && count > (SIZE_MAX - ALIGN) / elem) return NULL;
  size_t bytes = count * elem;
  bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
  if (bytes == 0) bytes = ALIGN;
  void *p = aligned_alloc(ALIGN, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

/* a * b + c with overflow checks; 0 on overflow. */
static int mul_add(size_t a, size_t b, size_t c, size_t *out) {
  if (b != 0 && a > SIZE_MAX / b) return 0;
  if (a * b > SIZE_MAX - c) return 0;
  *out = a * b + c;
  return 1;
}

static int ctx_alloc_blocks(dl_ctx *ctx, const dl_model_desc *m, size_t cap) {
  size_t act_elems, x_elems, y_elems, out_elems, label_elems;
  if (!mul_add(m->act_elems_per_sample, cap, m->act_elems_fixed, &act_elems)) return 0;
  if (!mul_add((size_t)m->x_size, cap, 0, &x_elems)) return 0;
  if (!mul_add((size_t)m->out_size, cap, 0, &out_elems)) return 0;
  if (!mul_add((size_t)m->y_size, cap, 0, &y_elems)) return 0;
  if (!mul_add((size_t)dl_model_y_len(m), cap, 0, &label_elems)) return 0;
  ctx->state = alloc_aligned(m->state_elems, sizeof(dl_real));
  ctx->act = alloc_aligned(act_elems, sizeof(dl_real));
  ctx->x = alloc_aligned(x_elems, sizeof(dl_real));
  ctx->out = alloc_aligned(out_elems, sizeof(dl_real));
  if (m->y_kind == DL_Y_CLASS)
    ctx->y_class = alloc_aligned(label_elems, sizeof(int32_t)); /* y_len labels a row */
  else if (m->y_kind == DL_Y_REAL)
    ctx->y_real = alloc_aligned(y_elems, sizeof(dl_real));
  /* DL_Y_NONE: no labels, nothing reads them */
  return ctx->state && ctx->act && ctx->x && ctx->out &&
         (ctx->y_class || ctx->y_real || m->y_kind == DL_Y_NONE);
}

dl_ctx *dl_ctx_new(const dl_model_desc *m, int capacity, char *err, size_t errlen) {
  if (capacity < 1) {
    snprintf(err, errlen, "model '%s': batch capacity must be at least 1 (got %d)", m->name,
             capacity);
    return NULL;
  }
  if (m->x_size < 0 || m->y_size < 0 || m->out_size < 0 || m->x_vocab < 0 || m->y_len < 0) {
    snprintf(err, errlen, "model '%s': negative size in the model description", m->name);
    return NULL;
  }
  dl_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    snprintf(err, errlen, "out of memory allocating the context of model '%s'", m->name);
    return NULL;
  }
  ctx->m = m;
  ctx->capacity = capacity;
  ctx->lr = m->defaults.lr;
  ctx->seed = m->defaults.seed;
  if (!ctx_alloc_blocks(ctx, m, (size_t)capacity)) {
    double mib = ((double)m->state_elems +
                  (double)m->act_elems_per_sample * capacity + (double)m->act_elems_fixed) *
                 (double)sizeof(dl_real) / (1024.0 * 1024.0);
    snprintf(err, errlen,
             "out of memory: model '%s' with batch %d needs about %.1f MiB "
             "(try a smaller --batch)", m->name, capacity, mib);
    dl_ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

void dl_ctx_free(dl_ctx *ctx) {
  if (!ctx) return;
  /* ctx->pool belongs to whoever created it (the trainer or an embedder). */
  free(ctx->state);
  free(ctx->act);
  free(ctx->x);
  free(ctx->y_class);
  free(ctx->y_real);
  free(ctx->out);
  free(ctx);
}

/* Bound (uniform) or standard deviation (normal) of an initialiser, per
 * PyTorch; fan sums of zero give a zero spread rather than a division by zero
 * (torch does the same for nn.Linear's bias when fan_in is 0). */
static double init_spread(const dl_tensor_desc *t) {
  double fi = (double)t->fan_in, fo = (double)t->fan_out;
  switch (t->init) {
  case DL_INIT_HE_NORMAL: return fi > 0 ? sqrt(2.0 / fi) : 0.0;
  case DL_INIT_HE_UNIFORM: return fi > 0 ? sqrt(6.0 / fi) : 0.0;
  case DL_INIT_XAVIER_NORMAL: return fi + fo > 0 ? sqrt(2.0 / (fi + fo)) : 0.0;
  case DL_INIT_XAVIER_UNIFORM: return fi + fo > 0 ? sqrt(6.0 / (fi + fo)) : 0.0;
  case DL_INIT_TORCH_DEFAULT: return fi > 0 ? 1.0 / sqrt(fi) : 0.0;
  default: return 0.0;
  }
}

/* Each tensor draws from its own stream (its index in the table), so adding
 * a layer does not reshuffle the others' values. */
static void init_param(dl_real *p, const dl_tensor_desc *t, uint64_t seed, uint64_t stream) {
  double s = init_spread(t);
  for (size_t j = 0; j < t->numel; j++) {
    double v;
    switch (t->init) {
    case DL_INIT_ZERO: v = 0.0; break;
    case DL_INIT_ONE: v = 1.0; break;
    case DL_INIT_HE_NORMAL:
    case DL_INIT_XAVIER_NORMAL: v = s * dl_rng_normal(seed, stream, j); break;
    case DL_INIT_HE_UNIFORM:
    case DL_INIT_XAVIER_UNIFORM:
    case DL_INIT_TORCH_DEFAULT:
      v = s * (2.0 * dl_rng_uniform(seed, stream, j) - 1.0);
      break;
    case DL_INIT_UNIT_NORMAL:
    case DL_INIT_NORMAL: v = dl_rng_normal(seed, stream, j); break;
    default: v = t->init_value; break;
    }
    p[j] = (dl_real)v;
  }
  if (t->init == DL_INIT_UNIT_NORMAL) {
    /* torch.nn.functional.normalize: x / max(||x||, eps), eps = 1e-12 */
    double ss = 0;
    for (size_t j = 0; j < t->numel; j++) ss += (double)p[j] * (double)p[j];
    double norm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
    for (size_t j = 0; j < t->numel; j++) p[j] = (dl_real)((double)p[j] / norm);
  }
}

/* DL_INIT_ROW_NORM: p[r] = ||row r of the source||, the rows being the
 * source's first dim (torch.nn.utils.weight_norm's g = norm_except_dim(v, 2, 0)). */
static void init_row_norm(dl_real *p, const dl_tensor_desc *t, const dl_real *src,
                          const dl_tensor_desc *s) {
  size_t rows = t->numel, cols = rows ? s->numel / rows : 0;
  for (size_t r = 0; r < rows; r++) {
    double ss = 0;
    for (size_t k = 0; k < cols; k++) ss += (double)src[r * cols + k] * (double)src[r * cols + k];
    p[r] = (dl_real)sqrt(ss);
  }
}

void dl_ctx_init_params(dl_ctx *ctx, uint64_t seed) {
  const dl_model_desc *m = ctx->m;
  /* Zero first: covers gradients and any padding between tensors. */
  memset(ctx->state, 0, m->state_elems * sizeof(dl_real));
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *t = &m->tensors[i];
    dl_real *p = ctx->state + t->offset;
    if (t->kind == DL_T_PARAM || (t->kind == DL_T_BUFFER && t->init == DL_INIT_UNIT_NORMAL)) {
      if (t->init != DL_INIT_ROW_NORM) init_param(p, t, seed, DL_STREAM_INIT + (uint64_t)i);
    } else if (t->kind == DL_T_OPT || t->kind == DL_T_BUFFER) {
      for (size_t j = 0; j < t->numel; j++) p[j] = (dl_real)t->init_value;
    } /* a DL_T_COUNT starts at 0: zeroed above */
  }
  /* then what depends on another tensor's initial value */
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *t = &m->tensors[i];
    if (t->kind == DL_T_PARAM && t->init == DL_INIT_ROW_NORM && t->init_src >= 0 &&
        t->init_src < m->n_tensors)
      init_row_norm(ctx->state + t->offset, t, ctx->state + m->tensors[t->init_src].offset,
                    &m->tensors[t->init_src]);
  }
  ctx->step = 0;
  ctx->seed = seed;
}
