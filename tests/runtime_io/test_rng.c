/* test_rng.c: dl_rng_normal is a pure function of (seed, stream, index),
 * built from the uniform draws at 2*index and 2*index+1, and is standard
 * normal. */
#include "testutil.h"

#include <math.h>

#include "rng.h"

int main(void) {
  make_tmpdir("rt_rng");
  /* Pure: same arguments, same value, whatever was drawn in between. */
  double a = dl_rng_normal(42, 3, 1000);
  for (uint64_t i = 0; i < 100; i++) (void)dl_rng_normal(42, 3, i);
  CHECK(dl_rng_normal(42, 3, 1000) == a);
  CHECK(dl_rng_normal(43, 3, 1000) != a && dl_rng_normal(42, 4, 1000) != a &&
        dl_rng_normal(42, 3, 1001) != a);

  /* Box-Muller over the documented uniform pair. */
  double u1 = dl_rng_uniform(7, 1, 2 * 55), u2 = dl_rng_uniform(7, 1, 2 * 55 + 1);
  double want = sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
  CHECK(fabs(dl_rng_normal(7, 1, 55) - want) < 1e-12);

  /* Moments over many draws: mean 0, variance 1, kurtosis 3, all finite. */
  enum { N = 400000 };
  double s1 = 0, s2 = 0, s4 = 0;
  int finite = 1, beyond3 = 0;
  for (uint64_t i = 0; i < N; i++) {
    double z = dl_rng_normal(1234, 9, i);
    finite &= isfinite(z) != 0;
    beyond3 += fabs(z) > 3;
    s1 += z, s2 += z * z, s4 += z * z * z * z;
  }
  double mean = s1 / N, var = s2 / N - mean * mean, kurt = s4 / N;
  CHECK(finite);
  CHECK(fabs(mean) < 0.01);
  CHECK(fabs(var - 1) < 0.01);
  CHECK(fabs(kurt - 3) < 0.06);
  /* P(|z| > 3) = 0.0027 for a normal. */
  CHECK(beyond3 > N * 0.0022 && beyond3 < N * 0.0032);
  return finish("runtime_io_rng");
}
