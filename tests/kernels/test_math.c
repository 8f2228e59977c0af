/* test_math.c: the branch-free float functions of dl_ops.h that generated
 * code vectorises (dl_exp, dl_tanh, dl_sigmoid, dl_erf and GELU through
 * it) against libm in double, over a dense sweep, within the errors their
 * comments promise; dl_log over every 13th float bit pattern (all exponents,
 * subnormals, the specials) in ulps. */
#include <math.h>
#include <stdio.h>
#include "dl_ops.h"

static int n_fail;

/* Checks max |got - want| / max(|want|, floor) over x in [lo, hi]. */
static void sweep(const char *name, float (*got)(float), double (*want)(double), float lo,
                  float hi, double floor, double tol) {
  double worst = 0, at = 0;
  for (float x = lo; x <= hi; x += (hi - lo) / 2000003.0f) {
    double w = want((double)x), e = fabs((double)got(x) - w) / fmax(fabs(w), floor);
    if (e > worst) worst = e, at = x;
  }
  printf("%-12s max error %.3g at %g (allowed %.3g)\n", name, worst, at, tol);
  if (!(worst <= tol)) {
    printf("FAIL %s\n", name);
    n_fail++;
  }
}

/* dl_log in ulps of the correctly rounded float, and its specials exactly. */
static void log_ulps(void) {
  double worst = 0, at = 0;
  long bad = 0;
  for (uint64_t b = 0; b < 0x100000000ull; b += 13) {
    uint32_t u = (uint32_t)b;
    float x;
    memcpy(&x, &u, sizeof x);
    float got = dl_log(x);
    double want = log((double)x);
    if (isnan(want) || isinf(want)) {
      bad += isnan(want) ? !isnan(got) : got != (float)want;
      continue;
    }
    float w = (float)want;
    double ulp = fabs((double)nextafterf(w, INFINITY) - (double)w);
    double e = fabs((double)got - want) / ulp;
    if (e > worst) worst = e, at = x;
  }
  bad += !(dl_log(0.0f) == -INFINITY) + !isnan(dl_log(-1.0f)) + !(dl_log(INFINITY) == INFINITY) +
         !isnan(dl_log(NAN)) + !(dl_log(1.0f) == 0.0f);
  printf("%-12s max error %.3g ulp at %g (allowed 1.5), %ld wrong specials\n", "dl_log", worst, at, bad);
  if (!(worst <= 1.5) || bad) {
    printf("FAIL dl_log\n");
    n_fail++;
  }
}

static float f_exp(float x) { return dl_exp(x); }
static float f_tanh(float x) { return dl_tanh(x); }
static float f_sigmoid(float x) { return dl_sigmoid(x); }
static float f_erf(float x) { return dl_erf(x); }
static float f_gelu(float x) { return dl_gelu(x); }
static float f_gelu_grad(float x) { return dl_gelu_grad(x); }
static double d_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double d_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double d_gelu_grad(double x) {
  return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
}

int main(void) {
  sweep("dl_exp", f_exp, exp, -87.0f, 88.0f, 0, 2e-7);              /* relative */
  sweep("dl_tanh", f_tanh, tanh, -12.0f, 12.0f, 0, 6e-7);           /* relative */
  sweep("dl_sigmoid", f_sigmoid, d_sigmoid, -40.0f, 40.0f, 0, 1e-6); /* relative */
  sweep("dl_erf", f_erf, erf, -10.0f, 10.0f, 1, 5e-7);             /* absolute */
  sweep("dl_gelu", f_gelu, d_gelu, -10.0f, 10.0f, 1, 1e-6);        /* abs, relative past 1 */
  sweep("dl_gelu_grad", f_gelu_grad, d_gelu_grad, -10.0f, 10.0f, 1, 1e-6);
  log_ulps();
  printf("%s\n", n_fail ? "math: FAILED" : "math: all within bounds");
  return n_fail != 0;
}
