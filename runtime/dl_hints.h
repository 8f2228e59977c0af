/* dl_hints.h: the loop and inlining hints of generated code (through
 * dl_ops.h) and of the runtime's GEMM kernels, defined once per compiler. */
#ifndef DL_HINTS_H
#define DL_HINTS_H

/* DL_GRAIN_VALUES: the fewest values of simple work (a load or two, a few
 * flops, a store: an activation, a norm's sum, a logit) that make a
 * thread's share of a dl_parallel_for worth handing over, a few
 * microseconds; below it the hand-off costs more than it saves.  Every
 * parallel grain, in generated code (dlnc computes them from this when it
 * writes the C) and in the runtime, is this divided by what one of its
 * items costs in such values. */
#define DL_GRAIN_VALUES 16384

/* DL_NO_UNROLL, before a loop that must stay rolled (clang's `#pragma
 * nounroll`; gcc does not unroll these unasked):
 *  - in generated code, a loop of constant trip count that only moves data
 *    (a transpose): clang otherwise unrolls it completely and the strided
 *    loop inside by up to ~100, and its loop strength reduction then
 *    spends seconds on each such function (fashion_resnet's C took 18 s at
 *    -O3, 10 s of it in LSR) for no speed at run time;
 *  - the k loop around a GEMM register tile: clang unrolls it 8 times on
 *    its own, runs out of the 16 ymm registers and spills the accumulators
 *    in every iteration (nt and nn at 43 instead of 75 GFLOP/s in trainers
 *    built with clang, dlnc build's default). */
#if defined(DL_NO_UNROLL)
/* given with -D (-DDL_NO_UNROLL= compiles as before, to compare) */
#elif defined(__clang__)
#define DL_NO_UNROLL _Pragma("nounroll")
#else
#define DL_NO_UNROLL
#endif

/* DL_UNROLL, before the small r/v/j loops of a register tile, which must be
 * fully unrolled (acc[][] in registers): gcc -O2 does not do it unasked;
 * clang does it at -O2 and gets worse code when asked with its own pragma.
 * DL_ALWAYS_INLINE: a kernel body inlined into each of its instances. */
#if defined(__clang__)
#define DL_ALWAYS_INLINE inline __attribute__((always_inline))
#define DL_UNROLL
#elif defined(__GNUC__)
#define DL_ALWAYS_INLINE inline __attribute__((always_inline))
#define DL_UNROLL _Pragma("GCC unroll 16")
#else
#define DL_ALWAYS_INLINE inline
#define DL_UNROLL
#endif
#endif
