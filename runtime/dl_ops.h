/* dl_ops.h: the small math kernels generated code calls, each next to its
 * gradient.  static inline, so the constant sizes the generated code passes
 * specialise them.  Definitions follow PyTorch's (mean reduction). */
#ifndef DL_OPS_H
#define DL_OPS_H
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "dl_hints.h"   /* DL_NO_UNROLL */
#include "dl_model.h"
#include "rng.h"
#include "threads.h"   /* dl_parallel_for */

/* A function compiled once, not into each caller: the optimiser's pass,
 * called once per parameter (each inlined copy would be vectorised anew). */
#define DL_NOINLINE __attribute__((noinline))

#if DL_REAL_IS_F64
#define dl_exp exp
#define dl_log log
#define dl_sqrt sqrt
#define dl_tanh tanh
#define dl_erf erf
#else
#define dl_sqrt sqrtf

/* e^x in float, branch-free so loops over it vectorise (libm's expf does
 * not): x = n ln2 + r with |r| <= ln2/2, e^r by Cephes' degree-6
 * polynomial, 2^n through the exponent bits.  Max relative error 1e-7
 * (about 1 ulp).  Clamped to [-87.3, 88]: e^88 = 1.7e38 stands in for
 * overflow, which only saturating uses (sigmoid, tanh) ever reach. */
static inline float dl_exp(float x) {
  x = x < -87.3365478515625f ? -87.3365478515625f : x > 88.0f ? 88.0f : x;
  float n = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f - n * -2.12194440e-4f;
  /* a NaN passes the clamps: keep it out of the conversion to int (UB,
   * which UBSan reports); r is NaN already, so the result stays NaN */
  n = n == n ? n : 0.0f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

/* ln x in float, branch-free so loops over it vectorise (libm's logf is a
 * call per element; the VAE's BCE takes two per pixel).  x = m 2^e with m
 * in [sqrt(1/2), sqrt(2)), ln(m) by Cephes' degree-9 polynomial in m - 1,
 * e ln2 in two parts.  Subnormals are scaled by 2^23 first.  Max error
 * about 1 ulp against a double reference (tests/kernels checks every
 * float); torch's specials: log 0 = -inf, log of a negative or NaN = NaN,
 * log inf = inf. */
static inline float dl_log(float x) {
  const int sub = x < 1.17549435e-38f;
  float xs = sub ? x * 8388608.0f : x;
  uint32_t bits;
  memcpy(&bits, &xs, sizeof bits);
  int32_t e = (int32_t)((bits >> 23) & 0xff) - 127 - (sub ? 23 : 0);
  bits = (bits & 0x007fffffu) | 0x3f800000u;
  float m;
  memcpy(&m, &bits, sizeof m); /* [1, 2) */
  const int big = m > 1.41421356237f;
  m = big ? m * 0.5f : m;
  e += big;
  const float f = m - 1.0f, z = f * f, fe = (float)e;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  float r = f + y + 0.693359375f * fe;
  r = x == 0.0f ? -INFINITY : r;
  r = x > 3.40282347e38f ? x : r; /* inf */
  return x < 0.0f || x != x ? NAN : r;
}

/* tanh(x) in float as a branch-free rational function (odd degree-13 over
 * even degree-6, the form Eigen uses), clamped where tanh is 1 in float.
 * Max relative error 4e-7 (about 3 ulp). */
static inline float dl_tanh(float x) {
  const float c = 7.90531110763549805f;
  float xc = x < -c ? -c : x > c ? c : x;
  float x2 = xc * xc;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  float t = xc * p / q;
  return (x < 0.0004f && x > -0.0004f) ? x : t;
}
#endif

#if !DL_REAL_IS_F64
/* erf(x) in float, branch-free so GELU's loops vectorise (libm's erff is a
 * call per element): 1 - erfc(|x|) with erfc from Numerical Recipes'
 * Chebyshev fit (fractional error below 1.2e-7), its exp by dl_exp.
 * Absolute error below 4e-7 (largest near 0, where 1 - erfc cancels): made
 * for 1 + erf(x), as GELU uses it. */
static inline float dl_erf(float x) {
  float z = fabsf(x), t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  float r = 1.0f - t * dl_exp(p - z * z);
  return x < 0 ? -r : r;
}
#endif

/* ---- small dot products ---------------------------------------------------- */

/* sum_k a[k] b[k] for the small dense layers, where a GEMM call costs more
 * than the work.  Summed in 64-byte lanes (16 floats or 8 doubles), then by
 * a fixed halving tree, so the order and the bits are the same under any
 * compiler.  GNU vector types (gcc and clang) make the lanes one register
 * with AVX-512, two with AVX2 and four with NEON; n is a constant at every
 * call, so the tail loop unrolls. */
typedef dl_real dl_vec64 __attribute__((vector_size(64)));
typedef dl_real dl_vec32 __attribute__((vector_size(32)));
typedef dl_real dl_vec16 __attribute__((vector_size(16)));
enum { DL_VEC64_LANES = 64 / sizeof(dl_real) };

/* The lanes' total by the fixed halving tree.  (By pointer: a vector
 * argument's ABI depends on the ISA, and compilers warn about it.) */
static inline dl_real dl_vec64_sum(const dl_vec64 *acc) {
  dl_vec32 lo, hi;
  memcpy(&lo, acc, sizeof lo);
  memcpy(&hi, (const char *)acc + sizeof lo, sizeof hi);
  lo += hi;
  dl_vec16 q0, q1;
  memcpy(&q0, &lo, sizeof q0);
  memcpy(&q1, (char *)&lo + sizeof q0, sizeof q1);
  q0 += q1;
#if DL_REAL_IS_F64
  return q0[0] + q0[1];
#else
  return (q0[0] + q0[2]) + (q0[1] + q0[3]);
#endif
}

static inline dl_real dl_dot(const dl_real *restrict a, const dl_real *restrict b, int n) {
  dl_vec64 acc = {0}, va, vb;
  int k = 0;
  for (; k + DL_VEC64_LANES <= n; k += DL_VEC64_LANES) {
    memcpy(&va, a + k, sizeof va);
    memcpy(&vb, b + k, sizeof vb);
    acc += va * vb;
  }
  for (int l = 0; k + l < n; l++) acc[l] += a[k + l] * b[k + l];
  return dl_vec64_sum(&acc);
}

/* sum_k a[k], in the same lanes and tree as dl_dot. */
static inline dl_real dl_sum(const dl_real *restrict a, int n) {
  dl_vec64 acc = {0}, va;
  int k = 0;
  for (; k + DL_VEC64_LANES <= n; k += DL_VEC64_LANES) {
    memcpy(&va, a + k, sizeof va);
    acc += va;
  }
  for (int l = 0; k + l < n; l++) acc[l] += a[k + l];
  return dl_vec64_sum(&acc);
}

/* ---- normalisation ------------------------------------------------------- */

/* The sums of the normalisation layers run over long stretches (a channel's
 * H*W values, a whole sample): dl_sum's lanes over chunks of DL_NORM_CHUNK
 * values, the chunks added in double, always in this order. */
enum { DL_NORM_CHUNK = 512 };

/* dl_vec64_sum in double */
static inline double dl_vec64_total(const dl_vec64 *acc) { return (double)dl_vec64_sum(acc); }

/* sum a[k] */
static inline double dl_sum_d(const dl_real *restrict a, int64_t n) {
  double total = 0;
  for (int64_t k0 = 0; k0 < n; k0 += DL_NORM_CHUNK)
    total += dl_sum(a + k0, (int)(n - k0 < DL_NORM_CHUNK ? n - k0 : DL_NORM_CHUNK));
  return total;
}

/* sum (a[k] - mean)^2: the variance's sum, around the mean already known */
static inline double dl_sq_dev_d(const dl_real *restrict a, dl_real mean, int64_t n) {
  double total = 0;
  for (int64_t k0 = 0; k0 < n; k0 += DL_NORM_CHUNK) {
    const int m = (int)(n - k0 < DL_NORM_CHUNK ? n - k0 : DL_NORM_CHUNK);
    const dl_real *p = a + k0;
    dl_vec64 acc = {0}, va;
    int k = 0;
    for (; k + DL_VEC64_LANES <= m; k += DL_VEC64_LANES) {
      memcpy(&va, p + k, sizeof va);
      va -= mean;
      acc += va * va;
    }
    for (int l = 0; k + l < m; l++) acc[l] += (p[k + l] - mean) * (p[k + l] - mean);
    total += dl_vec64_total(&acc);
  }
  return total;
}

/* sum d[k] (a[k] - mean): a norm's backward sum dy xhat, over rstd */
static inline double dl_dot_dev_d(const dl_real *restrict d, const dl_real *restrict a, dl_real mean,
                                  int64_t n) {
  double total = 0;
  for (int64_t k0 = 0; k0 < n; k0 += DL_NORM_CHUNK) {
    const int m = (int)(n - k0 < DL_NORM_CHUNK ? n - k0 : DL_NORM_CHUNK);
    const dl_real *p = a + k0, *q = d + k0;
    dl_vec64 acc = {0}, va, vd;
    int k = 0;
    for (; k + DL_VEC64_LANES <= m; k += DL_VEC64_LANES) {
      memcpy(&va, p + k, sizeof va);
      memcpy(&vd, q + k, sizeof vd);
      acc += vd * (va - mean);
    }
    for (int l = 0; k + l < m; l++) acc[l] += q[k + l] * (p[k + l] - mean);
    total += dl_vec64_total(&acc);
  }
  return total;
}

/* count += k for a count buffer (torch's num_batches_tracked): an int64 in
 * the state block, copied bytewise so no aliasing rule is bent. */
static inline void dl_count_add(dl_real *slot, int64_t k) {
  int64_t c;
  memcpy(&c, slot, sizeof c);
  c += k;
  memcpy(slot, &c, sizeof c);
}

/* batch_norm's statistics from its sums over the batch (count values per
 * channel): part[c] = sum x, part[K + c] = sum (x - mean)^2.  st gets the
 * mean and rstd = 1/sqrt(var + eps), var biased; with track, the running
 * statistics move towards them as torch's do: momentum, var unbiased. */
static inline void dl_bn_stats(dl_real *restrict st, dl_real *restrict rm, dl_real *restrict rv,
                               const double *restrict part, int64_t K, double count,
                               double momentum, double eps, int track) {
  for (int64_t c = 0; c < K; c++) {
    const double mean = part[c] / count, var = part[K + c] / count;
    st[c] = (dl_real)mean;
    st[K + c] = (dl_real)(1 / sqrt(var + eps));
    if (track) {
      rm[c] = (dl_real)((1 - momentum) * rm[c] + momentum * mean);
      rv[c] = (dl_real)((1 - momentum) * rv[c] + momentum * var * count / (count - 1));
    }
  }
}

/* batch_norm in evaluation: the running statistics. */
static inline void dl_bn_stats_running(dl_real *restrict st, const dl_real *restrict rm,
                                       const dl_real *restrict rv, int64_t K, double eps) {
  for (int64_t c = 0; c < K; c++) {
    st[c] = rm[c];
    st[K + c] = (dl_real)(1 / sqrt((double)rv[c] + eps));
  }
}

/* batch_norm's backward sums, part[c] = sum dy and part[K + c] = sum dy
 * xhat over this shard's rows: as they are into sums[0, 2K) (dw and db, which
 * the step adds over the shards with the other gradients), and over the
 * global batch into sums[2K, 4K) (dx's means: SyncBatchNorm's meaning). */
static inline void dl_bn_sums(dl_ctx *ctx, dl_real *restrict sums, double *restrict part,
                              int64_t K) {
  for (int64_t i = 0; i < 2 * K; i++) sums[i] = (dl_real)part[i];
  DL_BATCH_SUM(ctx, part, (size_t)(2 * K), 1);
  for (int64_t i = 0; i < 2 * K; i++) sums[2 * K + i] = (dl_real)part[i];
}

/* What a generated kernel run through dl_parallel_for gets: the context and
 * the batch rows. */
typedef struct dl_job {
  dl_ctx *ctx;
  int n;
} dl_job;
/* ... and a recurrent layer's kernel run over the samples of one step. */
typedef struct dl_step_job {
  dl_ctx *ctx;
  int n, step;
} dl_step_job;

/* Before each elementwise loop of generated code: iteration k reads and
 * writes element k only, so there is no dependence between iterations, even
 * where the output is computed in place over an input.  Without it clang
 * checks the buffers for overlap at run time, finds an in-place pair
 * overlapping (they coincide) and takes its scalar loop. */
#if defined(__clang__)
/* a loop that still cannot vectorise (a libm call in it, in the f64 build)
 * stays a plain loop, without a warning */
#pragma clang diagnostic ignored "-Wpass-failed"
#define DL_ELEMENTWISE _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define DL_ELEMENTWISE _Pragma("GCC ivdep")
#else
#define DL_ELEMENTWISE
#endif

/* db[j] = sum_r dy[r, j] over rows r in increasing order (a dense layer's
 * bias gradient).  A function with restrict parameters, so clang, which
 * ignores restrict on the generated code's local pointers, vectorises the
 * j loop without runtime overlap checks. */
static inline void dl_col_sums(dl_real *restrict db, const dl_real *restrict dy, int rows, int n) {
  for (int j = 0; j < n; j++) db[j] = 0;
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < n; j++) db[j] += dy[(size_t)r * (size_t)n + (size_t)j];
}

/* ---- activations ---------------------------------------------------------- */

/* sigmoid(x) = 1 / (1 + e^-x).  In float dl_exp saturates instead of
 * overflowing, so one branch-free form serves every x; in double the two
 * halves keep e^-x from overflowing. */
static inline dl_real dl_sigmoid(dl_real x) {
#if DL_REAL_IS_F64
  if (x >= 0) return 1 / (1 + dl_exp(-x));
  dl_real e = dl_exp(x);
  return e / (1 + e);
#else
  return 1.0f / (1.0f + dl_exp(-x));
#endif
}

/* gelu(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)) */
static inline dl_real dl_gelu(dl_real x) {
  return (dl_real)0.5 * x * (1 + dl_erf(x * (dl_real)0.70710678118654752440));
}
/* gelu'(x) = Phi(x) + x * phi(x) */
static inline dl_real dl_gelu_grad(dl_real x) {
  dl_real cdf = (dl_real)0.5 * (1 + dl_erf(x * (dl_real)0.70710678118654752440));
  dl_real pdf = (dl_real)0.39894228040143267794 * dl_exp((dl_real)-0.5 * x * x);
  return cdf + x * pdf;
}

/* y = exp(x - max) / sum exp(x - max) */
static inline void dl_softmax_row(const dl_real *x, dl_real *y, int64_t C) {
  dl_real m = x[0];
  DL_NO_UNROLL for (int64_t j = 1; j < C; j++) m = x[j] > m ? x[j] : m;
  dl_real s = 0;
  for (int64_t j = 0; j < C; j++) {
    y[j] = dl_exp(x[j] - m);
    s += y[j];
  }
  dl_real inv = 1 / s;
  for (int64_t j = 0; j < C; j++) y[j] *= inv;
}
/* dx = y * (dy - sum(dy * y)) */
static inline void dl_softmax_grad_row(const dl_real *dy, const dl_real *y, dl_real *dx, int64_t C) {
  dl_real dot = 0;
  for (int64_t j = 0; j < C; j++) dot += dy[j] * y[j];
  for (int64_t j = 0; j < C; j++) dx[j] = y[j] * (dy[j] - dot);
}

/* The micro-shard in a stream's high bits (0 without --shards: the
 * streams as they always were); sites stay below 2^32. */
static inline uint64_t dl_shard_stream(const dl_ctx *ctx, uint64_t stream) {
  return stream + ((uint64_t)ctx->shard << 32);
}

/* Inverted dropout keeps element k of dropout site `site` with probability
 * 1-p; the draw is a hash of (seed, step, shard, site, k), so the backward
 * pass recomputes the mask instead of storing it. */
static inline int dl_dropout_keep(const dl_ctx *ctx, int site, size_t k, float p) {
  uint64_t index = ((uint64_t)ctx->step << 36) ^ (uint64_t)k;
  return dl_rng_uniform_f(ctx->seed, dl_shard_stream(ctx, 0x0D0000u + (uint64_t)site), index) >= p;
}

/* randn_like / rand_like: element k of noise site `site`, a pure function
 * of (seed, step, site, k) as dropout's mask is, so it is redrawn every
 * step, the same for a seed whatever the thread count, and fixed while
 * gradcheck holds the step.  A normal draw is Box-Muller over two such
 * uniforms (dl_rng_normal); a uniform one is in [0, 1). */
static inline double dl_noise(const dl_ctx *ctx, int site, size_t k, int normal) {
  uint64_t index = ((uint64_t)ctx->step << 36) ^ (uint64_t)k;
  uint64_t stream = dl_shard_stream(ctx, 0x0E0000u + (uint64_t)site);
  return normal ? dl_rng_normal(ctx->seed, stream, index) : dl_rng_uniform(ctx->seed, stream, index);
}

/* ---- losses ------------------------------------------------------------------ */

/* mean (p - t)^2 */
static inline double dl_mse(const dl_real *p, const dl_real *t, size_t n) {
  double s = 0;
  DL_NO_UNROLL for (size_t k = 0; k < n; k++) s += (double)(p[k] - t[k]) * (double)(p[k] - t[k]);
  return s / (double)n;
}
static inline void dl_mse_grad(dl_real ds, const dl_real *p, const dl_real *t, dl_real *dp, size_t n) {
  const dl_real c = ds * (dl_real)(2.0 / (double)n);
  for (size_t k = 0; k < n; k++) dp[k] = c * (p[k] - t[k]);
}
static inline void dl_mse_grad_target(dl_real ds, const dl_real *p, const dl_real *t, dl_real *dt, size_t n) {
  const dl_real c = ds * (dl_real)(2.0 / (double)n);
  for (size_t k = 0; k < n; k++) dt[k] = -c * (p[k] - t[k]);
}

/* mean |p - t| */
static inline double dl_mae(const dl_real *p, const dl_real *t, size_t n) {
  double s = 0;
  DL_NO_UNROLL for (size_t k = 0; k < n; k++) s += fabs((double)(p[k] - t[k]));
  return s / (double)n;
}
static inline dl_real dl_sign(dl_real x) { return (dl_real)((x > 0) - (x < 0)); }
static inline void dl_mae_grad(dl_real ds, const dl_real *p, const dl_real *t, dl_real *dp, size_t n) {
  const dl_real c = ds / (dl_real)n;
  for (size_t k = 0; k < n; k++) dp[k] = c * dl_sign(p[k] - t[k]);
}
static inline void dl_mae_grad_target(dl_real ds, const dl_real *p, const dl_real *t, dl_real *dt, size_t n) {
  const dl_real c = ds / (dl_real)n;
  for (size_t k = 0; k < n; k++) dt[k] = -c * dl_sign(p[k] - t[k]);
}

/* -mean(t log p + (1-t) log(1-p)), logs clamped at -100 as torch's BCELoss.
 * Each term in dl_real, as torch computes it in the tensor's type; the
 * terms are summed in double over 8 lanes added in a fixed order at the
 * end, so the loop vectorises (dl_log is branch-free) and the total is the
 * same at any thread count. */
static inline dl_real dl_clamped_log(dl_real x) {
  dl_real l = dl_log(x);
  return l < -100 ? -100 : l;
}
static inline double dl_bce(const dl_real *p, const dl_real *t, size_t n) {
  double lane[8] = {0};
  const size_t full = n / 8 * 8;
  for (size_t k = 0; k < full; k += 8)
    for (int j = 0; j < 8; j++) {
      const dl_real pj = p[k + j], tj = t[k + j];
      lane[j] -= (double)(tj * dl_clamped_log(pj) + (1 - tj) * dl_clamped_log(1 - pj));
    }
  for (size_t j = 0; j < n - full; j++) {
    const dl_real pj = p[full + j], tj = t[full + j];
    lane[j] -= (double)(tj * dl_clamped_log(pj) + (1 - tj) * dl_clamped_log(1 - pj));
  }
  double s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
  return s / (double)n;
}
/* dp = ds (p - t) / max(p (1 - p), 1e-12) / n */
static inline void dl_bce_grad(dl_real ds, const dl_real *p, const dl_real *t, dl_real *dp, size_t n) {
  for (size_t k = 0; k < n; k++) {
    double d = (double)p[k] * (1 - (double)p[k]);
    dp[k] = (dl_real)(ds * ((double)p[k] - t[k]) / (d > 1e-12 ? d : 1e-12) / (double)n);
  }
}
static inline void dl_bce_grad_target(dl_real ds, const dl_real *p, const dl_real *t, dl_real *dt, size_t n) {
  (void)t;
  for (size_t k = 0; k < n; k++)
    dt[k] = (dl_real)(-ds * (double)(dl_clamped_log(p[k]) - dl_clamped_log(1 - p[k])) / (double)n);
}

/* mean(max(z,0) - z t + log(1 + e^-|z|)): stable for any z */
static inline double dl_bce_logits(const dl_real *z, const dl_real *t, size_t n) {
  double s = 0;
  for (size_t k = 0; k < n; k++) {
    double x = z[k];
    s += (x > 0 ? x : 0) - x * t[k] + log1p(exp(-fabs(x)));
  }
  return s / (double)n;
}
static inline void dl_bce_logits_grad(dl_real ds, const dl_real *z, const dl_real *t, dl_real *dz, size_t n) {
  const dl_real c = ds / (dl_real)n;
  for (size_t k = 0; k < n; k++) dz[k] = c * (dl_sigmoid(z[k]) - t[k]);
}
static inline void dl_bce_logits_grad_target(dl_real ds, const dl_real *z, const dl_real *t, dl_real *dt, size_t n) {
  (void)t;
  const dl_real c = ds / (dl_real)n;
  for (size_t k = 0; k < n; k++) dt[k] = -c * z[k];
}

/* Cross-entropy of logits z [rows, C] against class labels, and its
 * gradient, with the rows shared by the pool's threads.  The loss adds
 * fixed blocks of rows, each in row order, then the blocks' sums in order:
 * the block size depends on rows alone, so the loss has the same bits for
 * any thread count. */
#define DL_CE_BLOCKS 256     /* blocks at most (their sums sit on the stack) */
#define DL_CE_MIN_ROWS 16    /* rows per block at least                      */

/* logsumexp(z_r) - z_r[label], in double */
static inline double dl_ce_row(const dl_real *zr, int32_t label, int64_t C) {
  double m = zr[0], e = 0;
  DL_NO_UNROLL for (int64_t j = 1; j < C; j++) m = zr[j] > m ? zr[j] : m;
  DL_NO_UNROLL for (int64_t j = 0; j < C; j++) e += exp((double)zr[j] - m);
  return m + log(e) - zr[label];
}

typedef struct {
  const dl_real *z;
  const int32_t *label;
  dl_real *dz;       /* the gradient's output (grad only)    */
  dl_real scale;     /* ds / rows             (grad only)    */
  int rows, per;     /* rows, and rows per block (loss only) */
  int64_t C;
  double *part;      /* each block's sum      (loss only)    */
} dl_ce_job;

static inline void dl_ce_blocks(void *arg, int64_t b, int64_t e) {
  const dl_ce_job *j = arg;
  for (int64_t blk = b; blk < e; blk++) {
    int r0 = (int)blk * j->per, r1 = r0 + j->per < j->rows ? r0 + j->per : j->rows;
    double s = 0;
    for (int r = r0; r < r1; r++) s += dl_ce_row(j->z + (size_t)r * (size_t)j->C, j->label[r], j->C);
    j->part[blk] = s;
  }
}

/* mean over rows of logsumexp(z_r) - z_r[label_r] */
static inline double dl_cross_entropy(struct dl_pool *pool, const dl_real *z, const int32_t *label,
                                      int rows, int64_t C) {
  double part[DL_CE_BLOCKS];
  int per = (rows + DL_CE_BLOCKS - 1) / DL_CE_BLOCKS;
  per = per < DL_CE_MIN_ROWS ? DL_CE_MIN_ROWS : per;
  int blocks = (rows + per - 1) / per;
  dl_ce_job j = {.z = z, .label = label, .rows = rows, .per = per, .C = C, .part = part};
  dl_parallel_for(pool, blocks, 1 + DL_GRAIN_VALUES / ((int64_t)per * C), dl_ce_blocks, &j);
  double s = 0;
  for (int b = 0; b < blocks; b++) s += part[b];
  return s / rows;
}

static inline void dl_ce_grad_rows(void *arg, int64_t b, int64_t e) {
  const dl_ce_job *j = arg;
  const int64_t C = j->C;
  for (int64_t r = b; r < e; r++) {
    dl_real *d = j->dz + (size_t)r * (size_t)C;
    dl_softmax_row(j->z + (size_t)r * (size_t)C, d, C);
    d[j->label[r]] -= 1;
    for (int64_t k = 0; k < C; k++) d[k] *= j->scale;
  }
}

/* dz = ds (softmax(z) - onehot(label)) / rows */
static inline void dl_cross_entropy_grad(struct dl_pool *pool, dl_real ds, const dl_real *z,
                                         const int32_t *label, dl_real *dz, int rows, int64_t C) {
  dl_ce_job j = {.z = z, .label = label, .dz = dz, .scale = ds / (dl_real)rows, .rows = rows, .C = C};
  dl_parallel_for(pool, rows, 1 + DL_GRAIN_VALUES / C, dl_ce_grad_rows, &j);
}

/* ---- penalties and norms -------------------------------------------------- */

/* l1 sum|w| + l2 sum w^2 */
static inline dl_real dl_penalty(const dl_real *w, size_t n, double l1, double l2) {
  double a = 0, q = 0;
  DL_NO_UNROLL for (size_t k = 0; k < n; k++) {
    a += fabs((double)w[k]);
    q += (double)w[k] * w[k];
  }
  return (dl_real)(l1 * a + l2 * q);
}
/* dw = ds (l1 sign(w) + 2 l2 w) */
static inline void dl_penalty_grad(dl_real ds, const dl_real *w, dl_real *dw, size_t n, double l1, double l2) {
  for (size_t k = 0; k < n; k++) dw[k] = ds * ((dl_real)l1 * dl_sign(w[k]) + (dl_real)(2 * l2) * w[k]);
}

static inline double dl_sum_squares(const dl_real *g, size_t n) {
  double s = 0;
  DL_NO_UNROLL for (size_t k = 0; k < n; k++) s += (double)g[k] * g[k];
  return s;
}

#endif
