/* checkpoint.c: dl_ctx_save / dl_ctx_load (safetensors checkpoints).
 *
 * A checkpoint holds every tensor of the state block but the gradients
 * (parameters, optimiser state, buffers) under its name, counts (batch
 * norm's num_batches_tracked) as I64 scalars as torch stores them,
 * plus metadata: format, model, dtype, epoch (completed), step, seed, the
 * position inside an unfinished epoch (step_in_epoch, batch,
 * epoch_loss_sum), and crc32, a CRC-32 of the other metadata and all the
 * tensor bytes.  The safetensors reader catches a damaged header or a
 * truncated file; the CRC catches what it cannot: flipped bits in the data
 * or in a number of the metadata.
 * Loading validates the whole file against the model before touching the
 * context, so a bad file never leaves a half-loaded model behind. */
#include "dl_model.h"
#include "safetensors.h"
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CKPT_FORMAT "dlnc-checkpoint-1"

/* The largest step count, and num_batches_tracked, a checkpoint may hold.
 * Training adds 1 per step to both (as int64, and in double for Adam's bias
 * correction and the warm-up), so a crafted INT64_MAX would overflow; 2^53
 * is exact in a double and more steps than any run can take. */
#define CKPT_MAX_STEPS (UINT64_C(1) << 53)

static int is_saved(const dl_tensor_desc *t) { return t->kind != DL_T_GRAD; }

static dl_st_dtype real_dtype(void) { return DL_REAL_IS_F64 ? DL_ST_F64 : DL_ST_F32; }

/* A count's int64 lives in the state block as it is in the file (both
 * little-endian on every host dlnc supports), so saving points at it. */
static dl_st_dtype saved_dtype(const dl_tensor_desc *t) {
  return t->kind == DL_T_COUNT ? DL_ST_I64 : real_dtype();
}

/* ---- save ---------------------------------------------------------------- */

static int count_saved(const dl_model_desc *m) {
  int n = 0;
  for (int i = 0; i < m->n_tensors; i++) n += is_saved(&m->tensors[i]);
  return n;
}

/* The metadata the CRC covers, in this order; the CRC itself is "crc32".
 * A key absent from a file (an older checkpoint) is left out on both sides. */
static const char *const CRC_KEYS[] = {"format", "model", "dtype", "epoch", "step", "seed",
                                       "step_in_epoch", "batch", "epoch_loss_sum",
                                       "epoch_loss_sums", "epoch_acc", "best",
                                       "plateau"};
enum { N_CRC_KEYS = (int)(sizeof CRC_KEYS / sizeof CRC_KEYS[0]) };

/* CRC-32 of "key=value\n" for each covered key found by `get`, then of the
 * tensors' bytes in the order given (the file's data order). */
typedef const char *(*meta_getter)(const void *src, const char *key);

static uint32_t crc_bytes(uint32_t crc, const void *p, size_t len) {
  const unsigned char *b = p;
  /* zlib's length is a uInt: feed large tensors in pieces. */
  while (len > 0) {
    uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = (uint32_t)crc32(crc, b, chunk);
    b += chunk;
    len -= chunk;
  }
  return crc;
}

static uint32_t crc_meta(const void *src, meta_getter get) {
  uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
  for (int i = 0; i < N_CRC_KEYS; i++) {
    const char *v = get(src, CRC_KEYS[i]);
    if (!v) continue;
    crc = crc_bytes(crc, CRC_KEYS[i], strlen(CRC_KEYS[i]));
    crc = crc_bytes(crc, "=", 1);
    crc = crc_bytes(crc, v, strlen(v));
    crc = crc_bytes(crc, "\n", 1);
  }
  return crc;
}

static uint32_t crc_tensors(uint32_t crc, const dl_st_tensor *t, int n) {
  for (int i = 0; i < n; i++) {
    size_t bytes = dl_st_dtype_size(t[i].dtype);
    for (int d = 0; d < t[i].ndim; d++) bytes *= (size_t)t[i].shape[d];
    crc = crc_bytes(crc, t[i].data, bytes);
  }
  return crc;
}

typedef struct meta_list {
  const dl_st_meta *m;
  int n;
} meta_list;

static const char *list_get(const void *src, const char *key) {
  const meta_list *l = src;
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->m[i].key, key) == 0) return l->m[i].value;
  return NULL;
}

/* The saved tensors of the model, pointing into ctx->state; NULL on OOM. */
static dl_st_tensor *saved_tensors(const dl_ctx *ctx, int *count) {
  const dl_model_desc *m = ctx->m;
  int n = count_saved(m);
  /* calloc(0) may return NULL: ask for at least one slot. */
  dl_st_tensor *ts = calloc((size_t)(n > 0 ? n : 1), sizeof *ts);
  if (!ts) return NULL;
  int k = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *t = &m->tensors[i];
    if (!is_saved(t)) continue;
    ts[k].name = t->name;
    ts[k].dtype = saved_dtype(t);
    ts[k].ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) ts[k].shape[d] = t->shape[d];
    ts[k].data = ctx->state + t->offset;
    k++;
  }
  *count = n;
  return ts;
}

int dl_ckpt_save(const dl_ctx *ctx, const char *path, const dl_ckpt_pos *pos, char *err,
                 size_t errlen) {
  const dl_model_desc *m = ctx->m;
  dl_ckpt_pos zero = {.epoch = 0};
  if (!pos) pos = &zero;
  int n;
  dl_st_tensor *ts = saved_tensors(ctx, &n);
  if (!ts) {
    snprintf(err, errlen, "checkpoint %s: out of memory", path);
    return -1;
  }
  char s_epoch[32], s_step[32], s_seed[32], s_sie[32], s_batch[32], s_loss[40], s_crc[16];
  char s_losses[DL_MAX_UPDATES * 26] = "";
  snprintf(s_epoch, sizeof s_epoch, "%" PRId64, pos->epoch);
  snprintf(s_step, sizeof s_step, "%" PRId64, ctx->step);
  snprintf(s_seed, sizeof s_seed, "%" PRIu64, ctx->seed);
  snprintf(s_sie, sizeof s_sie, "%" PRId64, pos->step_in_epoch);
  snprintf(s_batch, sizeof s_batch, "%" PRId64, pos->batch);
  /* %.17g round-trips a double exactly. */
  snprintf(s_loss, sizeof s_loss, "%.17g", pos->loss_sum);
  /* with updates: each one's sum, blank-separated */
  for (int k = 0, at = 0; k < pos->n_loss_sums && k < DL_MAX_UPDATES; k++)
    at += snprintf(s_losses + at, sizeof s_losses - (size_t)at, "%s%.17g", k ? " " : "",
                   pos->loss_sums[k]);
  /* train_acc's counts of the batches trained, "correct total" */
  char s_acc[48];
  snprintf(s_acc, sizeof s_acc, "%" PRId64 " %" PRId64, pos->acc_correct, pos->acc_total);
  /* the best epoch so far (--save-best, --early-stop): "METRIC VALUE EPOCH SINCE" */
  char s_best[160] = "";
  if (pos->best_metric[0])
    snprintf(s_best, sizeof s_best, "%s %.17g %" PRId64 " %" PRId64, pos->best_metric,
             pos->best_value, pos->best_epoch, pos->best_since);
  char s_plateau[120] = "";
  if (pos->has_plateau)
    snprintf(s_plateau, sizeof s_plateau, "%.17g %.17g %" PRId64, pos->plateau_scale,
             pos->plateau_best, pos->plateau_bad);
  dl_st_meta meta[15] = {
      {"format", CKPT_FORMAT}, {"model", m->name},  {"dtype", DL_REAL_ST_DTYPE},
      {"epoch", s_epoch},      {"step", s_step},    {"seed", s_seed},
      {"step_in_epoch", s_sie}, {"batch", s_batch}, {"epoch_loss_sum", s_loss},
  };
  /* the optional keys only when they say something, then the CRC last */
  int n_meta = 9;
  if (pos->n_loss_sums > 0) meta[n_meta++] = (dl_st_meta){"epoch_loss_sums", s_losses};
  if (pos->acc_total > 0) meta[n_meta++] = (dl_st_meta){"epoch_acc", s_acc};
  if (s_best[0]) meta[n_meta++] = (dl_st_meta){"best", s_best};
  if (s_plateau[0]) meta[n_meta++] = (dl_st_meta){"plateau", s_plateau};
  meta_list covered = {meta, n_meta};
  meta[n_meta++] = (dl_st_meta){"crc32", s_crc};
  snprintf(s_crc, sizeof s_crc, "%08" PRIx32, crc_tensors(crc_meta(&covered, list_get), ts, n));
  int rc = dl_st_write(path, ts, n, meta, n_meta, err, errlen);
  free(ts);
  return rc;
}

int dl_ctx_save(const dl_ctx *ctx, const char *path, int64_t epoch, char *err, size_t errlen) {
  dl_ckpt_pos pos = {.epoch = epoch};
  return dl_ckpt_save(ctx, path, &pos, err, errlen);
}

/* ---- load: validation ------------------------------------------------------ */

typedef struct ckpt_meta {
  dl_ckpt_pos pos;
  int64_t step;
  uint64_t seed;
  int has_counters;         /* epoch/step/seed were present */
} ckpt_meta;

/* Strict non-negative decimal integer. */
static int parse_u64(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return 0;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return 0;
  *out = (uint64_t)v;
  return 1;
}

static int read_counter(const dl_st_file *f, const char *key, uint64_t max, uint64_t *out,
                        const char *path, char *err, size_t errlen) {
  const char *v = dl_st_meta_get(f, key);
  if (!parse_u64(v, out) || *out > max) {
    snprintf(err, errlen, "checkpoint %s: metadata '%s' is %s%s%s, expected an integer from 0 to "
             "%" PRIu64, path, key, v ? "'" : "", v ? v : "missing", v ? "'" : "", max);
    return -1;
  }
  return 0;
}

/* A counter that older checkpoints lack: 0 when absent. */
static int read_optional(const dl_st_file *f, const char *key, uint64_t max, int64_t *out,
                         const char *path, char *err, size_t errlen) {
  uint64_t v = 0;
  if (dl_st_meta_get(f, key) && read_counter(f, key, max, &v, path, err, errlen)) return -1;
  *out = (int64_t)v;
  return 0;
}

/* epoch_loss_sums: a model with updates saves each one's, blank-separated. */
static int read_loss_sums(const dl_st_file *f, const char *path, dl_ckpt_pos *pos, char *err,
                          size_t errlen) {
  const char *v = dl_st_meta_get(f, "epoch_loss_sums");
  pos->n_loss_sums = 0;
  for (const char *p = v; p && *p;) {
    char *end;
    double x = strtod(p, &end);
    if (end == p || !isfinite(x) || pos->n_loss_sums == DL_MAX_UPDATES || (*end && *end != ' ')) {
      snprintf(err, errlen, "checkpoint %s: metadata 'epoch_loss_sums' is '%s', expected at most "
               "%d finite numbers", path, v, DL_MAX_UPDATES);
      return -1;
    }
    pos->loss_sums[pos->n_loss_sums++] = x;
    p = *end ? end + 1 : end;
  }
  return 0;
}

/* epoch_acc: train_acc's counts, "correct total" (absent: none). */
static int read_acc(const dl_st_file *f, const char *path, dl_ckpt_pos *pos, char *err,
                    size_t errlen) {
  const char *v = dl_st_meta_get(f, "epoch_acc");
  pos->acc_correct = pos->acc_total = 0;
  if (!v) return 0;
  long long c, t;
  int used = 0;
  if (sscanf(v, "%lld %lld%n", &c, &t, &used) != 2 || v[used] || c < 0 || t < c) {
    snprintf(err, errlen, "checkpoint %s: metadata 'epoch_acc' is '%s', expected two counts "
             "(correct, total)", path, v);
    return -1;
  }
  pos->acc_correct = c;
  pos->acc_total = t;
  return 0;
}

/* The position inside an unfinished epoch (see dl_ckpt_pos). */
static int read_position(const dl_st_file *f, const char *path, dl_ckpt_pos *pos, char *err,
                         size_t errlen) {
  if (read_optional(f, "step_in_epoch", INT32_MAX, &pos->step_in_epoch, path, err, errlen) ||
      read_optional(f, "batch", INT32_MAX, &pos->batch, path, err, errlen))
    return -1;
  const char *v = dl_st_meta_get(f, "epoch_loss_sum");
  pos->loss_sum = 0.0;
  if (!v) return 0;
  char *end;
  pos->loss_sum = strtod(v, &end);
  if (!*v || *end || !isfinite(pos->loss_sum)) {
    snprintf(err, errlen, "checkpoint %s: metadata 'epoch_loss_sum' is '%s', expected a finite number",
             path, v);
    return -1;
  }
  return read_loss_sums(f, path, pos, err, errlen) || read_acc(f, path, pos, err, errlen);
}

/* best: "METRIC VALUE EPOCH SINCE" (see dl_ckpt_pos); absent: none. */
static int read_best(const dl_st_file *f, const char *path, dl_ckpt_pos *pos, char *err,
                     size_t errlen) {
  const char *v = dl_st_meta_get(f, "best");
  pos->best_metric[0] = '\0';
  if (!v) return 0;
  char name[sizeof pos->best_metric];
  double x;
  long long e, since;
  int used = 0;
  if (sscanf(v, "%15s %lf %lld %lld%n", name, &x, &e, &since, &used) != 4 || v[used] ||
      !isfinite(x) || e < 0 || since < 0) {
    snprintf(err, errlen, "checkpoint %s: metadata 'best' is '%s', expected METRIC VALUE EPOCH "
             "SINCE", path, v);
    return -1;
  }
  snprintf(pos->best_metric, sizeof pos->best_metric, "%s", name);
  pos->best_value = x;
  pos->best_epoch = e;
  pos->best_since = since;
  return 0;
}

/* plateau: "SCALE BEST BAD" (see dl_ckpt_pos); absent: none. */
static int read_plateau(const dl_st_file *f, const char *path, dl_ckpt_pos *pos, char *err,
                        size_t errlen) {
  const char *v = dl_st_meta_get(f, "plateau");
  pos->has_plateau = 0;
  if (!v) return 0;
  long long bad;
  int used = 0;
  if (sscanf(v, "%lf %lf %lld%n", &pos->plateau_scale, &pos->plateau_best, &bad, &used) != 3 ||
      v[used] || !(pos->plateau_scale > 0) || isnan(pos->plateau_best) || bad < 0) {
    snprintf(err, errlen, "checkpoint %s: metadata 'plateau' is '%s', expected SCALE BEST BAD",
             path, v);
    return -1;
  }
  pos->plateau_bad = bad;
  pos->has_plateau = 1;
  return 0;
}

/* Format, model name and counters.  A params-only load (eval, predict,
 * embedding) also accepts safetensors files without our metadata, e.g.
 * weights exported from elsewhere under the same tensor names; what is
 * present must still agree. */
static int check_meta(const dl_st_file *f, const dl_model_desc *m, int params_only,
                      const char *path, ckpt_meta *md, char *err, size_t errlen) {
  const char *fmt = dl_st_meta_get(f, "format");
  const char *model = dl_st_meta_get(f, "model");
  memset(md, 0, sizeof *md);
  if (fmt ? strcmp(fmt, CKPT_FORMAT) != 0 : !params_only) {
    snprintf(err, errlen, "checkpoint %s: not a dlnc checkpoint (format '%s', expected '%s')",
             path, fmt ? fmt : "missing", CKPT_FORMAT);
    return -1;
  }
  if (model ? strcmp(model, m->name) != 0 : !params_only) {
    snprintf(err, errlen, "checkpoint %s: saved from model '%s', but this is model '%s'", path,
             model ? model : "(unnamed)", m->name);
    return -1;
  }
  if (params_only && !fmt) return 0;
  uint64_t e, s;
  if (read_counter(f, "epoch", INT32_MAX, &e, path, err, errlen) ||
      read_counter(f, "step", CKPT_MAX_STEPS, &s, path, err, errlen) ||
      read_counter(f, "seed", UINT64_MAX, &md->seed, path, err, errlen))
    return -1;
  md->pos.epoch = (int64_t)e;
  md->step = (int64_t)s;
  md->has_counters = 1;
  if (read_position(f, path, &md->pos, err, errlen) || read_best(f, path, &md->pos, err, errlen) ||
      read_plateau(f, path, &md->pos, err, errlen))
    return -1;
  return 0;
}

static void format_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
  size_t used = 0;
  int w = snprintf(buf, len, "[");
  used = w > 0 ? (size_t)w : 0;
  for (int d = 0; d < ndim && used < len; d++) {
    w = snprintf(buf + used, len - used, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (w > 0) used += (size_t)w;
  }
  if (used < len) snprintf(buf + used, len - used, "]");
}

static int same_shape(const dl_st_tensor *s, const dl_tensor_desc *t) {
  if (s->ndim != t->ndim) return 0;
  for (int d = 0; d < t->ndim; d++)
    if (s->shape[d] != t->shape[d]) return 0;
  return 1;
}

/* One tensor that is present: dtype (I64 for a count, else F32 or F64) and shape. */
static int check_tensor(const dl_st_tensor *s, const dl_tensor_desc *t, const dl_model_desc *m,
                        const char *path, char *err, size_t errlen) {
  int count = t->kind == DL_T_COUNT;
  if (count ? s->dtype != DL_ST_I64 : s->dtype != DL_ST_F32 && s->dtype != DL_ST_F64) {
    snprintf(err, errlen, "checkpoint %s: tensor '%s' has dtype %s, expected %s", path, t->name,
             dl_st_dtype_name(s->dtype), count ? "I64" : "F32 or F64");
    return -1;
  }
  size_t numel = 1;
  for (int d = 0; d < s->ndim; d++) numel *= (size_t)s->shape[d];
  if (!same_shape(s, t) || numel != t->numel) {
    char have[160], want[160];
    format_shape(have, sizeof have, s->ndim, s->shape);
    format_shape(want, sizeof want, t->ndim, t->shape);
    snprintf(err, errlen, "checkpoint %s: tensor '%s' has shape %s but model '%s' expects %s",
             path, t->name, have, m->name, want);
    return -1;
  }
  return 0;
}

/* Appends 'name' to a running list in buf, capped so a long list still
 * leaves room for the rest of the message. */
static void list_add(char *buf, size_t len, int *count, const char *name) {
  size_t used = strlen(buf);
  if (used + 80 < len) {
    if (*count < 8)
      snprintf(buf + used, len - used, "%s'%s'", *count ? ", " : "", name);
    else if (*count == 8)
      snprintf(buf + used, len - used, ", ...");
  }
  (*count)++;
}

static int expected_in_model(const dl_model_desc *m, const char *name) {
  for (int i = 0; i < m->n_tensors; i++)
    if (is_saved(&m->tensors[i]) && strcmp(m->tensors[i].name, name) == 0) return 1;
  return 0;
}

/* Every expected tensor present (optimiser state optional when params_only)
 * with a usable dtype and the model's shape; nothing extra. */
static int check_tensors(const dl_st_file *f, const dl_model_desc *m, int params_only,
                         const char *path, char *err, size_t errlen) {
  char missing[512] = "", extra[512] = "";
  int n_missing = 0, n_extra = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *t = &m->tensors[i];
    if (!is_saved(t)) continue;
    const dl_st_tensor *s = dl_st_find(f, t->name);
    if (!s) {
      if (!(params_only && t->kind == DL_T_OPT)) list_add(missing, sizeof missing, &n_missing, t->name);
      continue;
    }
    if (check_tensor(s, t, m, path, err, errlen)) return -1;
  }
  for (int i = 0; i < dl_st_count(f); i++) {
    const dl_st_tensor *s = dl_st_get(f, i);
    if (!expected_in_model(m, s->name)) list_add(extra, sizeof extra, &n_extra, s->name);
  }
  if (n_missing || n_extra) {
    snprintf(err, errlen, "checkpoint %s does not match model '%s':%s%s%s%s%s", path, m->name,
             n_missing ? " missing tensor(s) " : "", missing, n_missing && n_extra ? ";" : "",
             n_extra ? " unexpected tensor(s) " : "", extra);
    return -1;
  }
  return 0;
}

/* ---- load: values ----------------------------------------------------------- */

/* The file is little-endian and its data need not be aligned: assemble
 * each value from bytes, which is also right on big-endian hosts. */
static uint64_t le_bytes(const unsigned char *p, int n) {
  uint64_t u = 0;
  for (int b = n - 1; b >= 0; b--) u = u << 8 | p[b];
  return u;
}

static int64_t count_at(const dl_st_tensor *s, size_t j) {
  return (int64_t)le_bytes((const unsigned char *)s->data + j * 8, 8);
}

/* Element j of an F32 or F64 tensor as the model will hold it. */
static dl_real real_at(const dl_st_tensor *s, size_t j) {
  const unsigned char *p = s->data;
  if (s->dtype == DL_ST_F64) {
    uint64_t u = le_bytes(p + j * 8, 8);
    double v;
    memcpy(&v, &u, sizeof v);
    return (dl_real)v;
  }
  uint32_t u = (uint32_t)le_bytes(p + j * 4, 4);
  float v;
  memcpy(&v, &u, sizeof v);
  return (dl_real)v;
}

/* What a model can compute with: finite weights, optimiser state and
 * buffers (as converted: an F64 value past float range is an infinity in
 * a float32 build), counts that leave room to count.  A NaN would only
 * come out again as NaN predictions, or stop a resumed run at its first
 * step. */
static int check_value(const dl_st_tensor *s, size_t j, const char *path, char *err,
                       size_t errlen) {
  if (s->dtype == DL_ST_I64) {
    int64_t c = count_at(s, j);
    if (c >= 0 && (uint64_t)c <= CKPT_MAX_STEPS) return 0;
    snprintf(err, errlen, "checkpoint %s: tensor '%s' holds the count %" PRId64 " (at index %zu), "
             "expected an integer from 0 to %" PRIu64, path, s->name, c, j, CKPT_MAX_STEPS);
    return -1;
  }
  dl_real v = real_at(s, j);
  if (isfinite(v)) return 0;
  snprintf(err, errlen, "checkpoint %s: tensor '%s' holds %s values (the first at index %zu%s)", path,
           s->name, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", j,
           s->dtype == DL_ST_F64 && !DL_REAL_IS_F64 ? ", as float32" : "");
  return -1;
}

static int check_values(const dl_st_file *f, const char *path, char *err, size_t errlen) {
  for (int i = 0; i < dl_st_count(f); i++) {
    const dl_st_tensor *s = dl_st_get(f, i);
    size_t numel = 1;
    for (int d = 0; d < s->ndim; d++) numel *= (size_t)s->shape[d];
    for (size_t j = 0; j < numel; j++)
      if (check_value(s, j, path, err, errlen)) return -1;
  }
  return 0;
}

/* ---- load: applying -------------------------------------------------------- */

static void copy_converted(dl_real *dst, const dl_st_tensor *s, size_t numel) {
  for (size_t j = 0; j < numel; j++) {
    if (s->dtype == DL_ST_I64) {
      /* a count: its int64 in dst's room, as the generated code keeps it */
      int64_t v = count_at(s, j);
      memcpy((char *)dst + j * sizeof v, &v, sizeof v);
    } else {
      dst[j] = real_at(s, j);
    }
  }
}

static void apply(dl_ctx *ctx, const dl_st_file *f) {
  const dl_model_desc *m = ctx->m;
  for (int i = 0; i < m->n_tensors; i++) {
    const dl_tensor_desc *t = &m->tensors[i];
    if (!is_saved(t)) continue;
    dl_real *dst = ctx->state + t->offset;
    const dl_st_tensor *s = dl_st_find(f, t->name);
    if (s) {
      copy_converted(dst, s, t->numel);
    } else {
      /* Optimiser state absent from a params-only load: its initial value. */
      for (size_t j = 0; j < t->numel; j++) dst[j] = (dl_real)t->init_value;
    }
  }
}

/* Readers' messages usually name the file; make sure ours always do. */
static void ensure_path_in(char *err, size_t errlen, const char *path) {
  if (errlen == 0 || strstr(err, path)) return;
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "checkpoint %s: %s", path, err);
  snprintf(err, errlen, "%s", tmp);
}

static const char *file_get(const void *src, const char *key) {
  return dl_st_meta_get(src, key);
}

/* The CRC saved with the file against one of its contents.  Files without
 * one (older checkpoints, other writers) pass. */
static int check_crc(const dl_st_file *f, const char *path, char *err, size_t errlen) {
  const char *want = dl_st_meta_get(f, "crc32");
  if (!want) return 0;
  uint32_t crc = crc_meta(f, file_get);
  for (int i = 0; i < dl_st_count(f); i++) crc = crc_tensors(crc, dl_st_get(f, i), 1);
  char have[16];
  snprintf(have, sizeof have, "%08" PRIx32, crc);
  if (strcmp(have, want) == 0) return 0;
  snprintf(err, errlen, "checkpoint %s is corrupted: its contents have CRC-32 %s, but it was "
           "saved with %s (damaged on disk or in transfer?)", path, have, want);
  return -1;
}

int dl_ckpt_load(dl_ctx *ctx, const char *path, int params_only, dl_ckpt_pos *pos, char *err,
                 size_t errlen) {
  const dl_model_desc *m = ctx->m;
  if (errlen) err[0] = '\0';
  dl_st_file *f = dl_st_read(path, err, errlen);
  if (!f) {
    if (errlen && !err[0]) snprintf(err, errlen, "cannot read");
    ensure_path_in(err, errlen, path);
    return -1;
  }
  ckpt_meta md;
  if (check_meta(f, m, params_only, path, &md, err, errlen) ||
      check_tensors(f, m, params_only, path, err, errlen) || check_crc(f, path, err, errlen) ||
      check_values(f, path, err, errlen)) {
    dl_st_close(f);
    return -1;
  }
  apply(ctx, f);
  if (md.has_counters) {
    ctx->step = md.step;
    ctx->seed = md.seed;
  }
  if (pos) *pos = md.pos;
  dl_st_close(f);
  return 0;
}

int dl_ctx_load(dl_ctx *ctx, const char *path, int params_only, int64_t *epoch, char *err,
                size_t errlen) {
  dl_ckpt_pos pos;
  int rc = dl_ckpt_load(ctx, path, params_only, &pos, err, errlen);
  if (rc == 0 && epoch) *epoch = pos.epoch;
  return rc;
}
