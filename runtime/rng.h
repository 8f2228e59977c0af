/* rng.h: counter-based random numbers.  A draw is a pure function of
 * (seed, stream, index), so results do not depend on thread count or on
 * the order of calls, and resuming from (seed, step) is exact. */
#ifndef DL_RNG_H
#define DL_RNG_H
#include <stdint.h>

/* splitmix64 finaliser over a combination of the three words. */
static inline uint64_t dl_rng_u64(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (stream + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull;
  z += index * 0x94D049BB133111EBull + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double dl_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return (double)(dl_rng_u64(seed, stream, index) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [0, 1) as float with 24 bits: dropout masks. */
static inline float dl_rng_uniform_f(uint64_t seed, uint64_t stream, uint64_t index) {
  return (float)(dl_rng_u64(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal by Box-Muller over two draws at 2*index and 2*index+1. */
double dl_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

#endif
