/* gemm_split.h: how a GEMM's C is dealt out to the threads of a pool, the
 * one way for gemm.c, gemm_conv.c and gemm_bf16.c (included only from
 * those).  Threads get whole blocks of C, column blocks of `unit` columns
 * or row blocks of `unit` rows, never a split of k, so every element is
 * summed in the same order whatever the pool size.  Which split runs
 * depends on the shape and the pool size alone. */
#ifndef DL_GEMM_SPLIT_H
#define DL_GEMM_SPLIT_H
#include "kernels.h"

#include <stdint.h>

/* Smallest share of work worth handing to another thread: waking a worker
 * and waiting for it costs about a microsecond when it is spinning. */
#define CHUNK_MIN_FLOPS 1.0e6

/* A product's C [M, N] and the function that computes a block of it (C
 * rows [i0, i1) x columns [j0, j1), all of k) from job; ep (or NULL) runs
 * on each finished block. */
typedef struct {
    void (*block)(const void *job, int i0, int i1, int j0, int j1);
    const void *job;
    int M, N;
    dl_gemm_epilogue ep;
    void *ep_arg;
    int split_n;   /* set by gemm_split_run: threads take column blocks,
                      else row blocks */
    int unit;      /* columns (split_n) or rows per block */
} gemm_split;

static void gemm_split_range(void *arg, int64_t b, int64_t e)
{
    const gemm_split *s = arg;
    int lo = (int)b * s->unit;
    if (s->split_n) {
        int hi = e * s->unit < s->N ? (int)e * s->unit : s->N;
        s->block(s->job, 0, s->M, lo, hi);
        if (s->ep)
            s->ep(s->ep_arg, 0, s->M, lo, hi);
    } else {
        int hi = e * s->unit < s->M ? (int)e * s->unit : s->M;
        s->block(s->job, lo, hi, 0, s->N);
        if (s->ep)
            s->ep(s->ep_arg, lo, hi, 0, s->N);
    }
}

/* Fraction of the pool kept busy when `units` equal blocks are dealt out. */
static inline double gemm_split_balance(int64_t units, int threads)
{
    int64_t rounds = (units + threads - 1) / threads;
    return (double)units / (double)(rounds * threads);
}

/* Runs all of s's C, worth `flops`, on pool: in column blocks of cols
 * columns, or in row blocks of rows rows when they keep more of the pool
 * busy (rows = 0: columns only; cols = 0: rows only).  A product under
 * 2 * CHUNK_MIN_FLOPS, or a pool of one, runs on the calling thread, and no
 * thread gets less than CHUNK_MIN_FLOPS. */
static void gemm_split_run(dl_pool *pool, gemm_split *s, double flops, int cols, int rows)
{
    s->split_n = cols > 0;
    s->unit = cols > 0 ? cols : rows;
    int64_t units = cols > 0 ? (s->N + cols - 1) / cols : (s->M + rows - 1) / rows;
    int threads = dl_pool_size(pool);
    if (threads == 1 || flops < 2 * CHUNK_MIN_FLOPS) {
        gemm_split_range(s, 0, units);
        return;
    }
    if (cols > 0 && rows > 0) {
        int64_t nm = (s->M + rows - 1) / rows;
        if (gemm_split_balance(nm, threads) > gemm_split_balance(units, threads)) {
            s->split_n = 0;
            s->unit = rows;
            units = nm;
        }
    }
    int64_t grain = (int64_t)(CHUNK_MIN_FLOPS / (flops / (double)units)) + 1;
    dl_parallel_for(pool, units, grain, gemm_split_range, s);
}
#endif
