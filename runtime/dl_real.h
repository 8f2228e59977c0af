/* dl_real.h: the element type of a build.  `dlnc build --f64` compiles the
 * generated code and the runtime with -DDLNC_F64 (used by gradient checks). */
#ifndef DL_REAL_H
#define DL_REAL_H
#ifdef DLNC_F64
typedef double dl_real;
#define DL_REAL_ST_DTYPE "F64"
#define DL_REAL_IS_F64 1
#else
typedef float dl_real;
#define DL_REAL_ST_DTYPE "F32"
#define DL_REAL_IS_F64 0
#endif

#include <stdint.h>
#include <string.h>

/* A value's bit pattern with the sign cleared.  A value is NaN or infinite
 * exactly when all its exponent bits are set, i.e. when this is at least
 * DL_INF_BITS; so the largest of it over many values decides whether they
 * are all finite: an integer max, exact (a float sum would overflow on
 * large finite values) and associative, so loops over it vectorise.  The
 * trainer's scans (trainer_finite.c) and the optimiser step use it. */
#if DL_REAL_IS_F64
typedef uint64_t dl_bits;
#define DL_ABS_MASK UINT64_C(0x7fffffffffffffff)
#define DL_INF_BITS UINT64_C(0x7ff0000000000000)
#else
typedef uint32_t dl_bits;
#define DL_ABS_MASK UINT32_C(0x7fffffff)
#define DL_INF_BITS UINT32_C(0x7f800000)
#endif

/* memcpy is how C reads a float's bits without aliasing trouble; compilers
 * turn it into a plain move. */
static inline dl_bits dl_abs_bits(dl_real x) {
  dl_bits b;
  memcpy(&b, &x, sizeof b);
  return b & DL_ABS_MASK;
}

static inline dl_bits dl_bits_max(dl_bits a, dl_bits b) { return a > b ? a : b; }
#endif
