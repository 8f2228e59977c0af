/* rng.c: the one out-of-line draw of rng.h. */
#include "rng.h"
#include <math.h>

double dl_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  /* Box-Muller.  dl_rng_uniform is in [0, 1), so 1 - u1 is in (0, 1] and the
   * logarithm is always finite: no rejection loop, so the draw stays a pure
   * function of (seed, stream, index). */
  double u1 = dl_rng_uniform(seed, stream, 2 * index);
  double u2 = dl_rng_uniform(seed, stream, 2 * index + 1);
  double r = sqrt(-2.0 * log(1.0 - u1));
  return r * cos(6.283185307179586476925286766559 * u2);
}
