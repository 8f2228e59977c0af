/* threads.h: a small fixed pool of worker threads (pthreads).
 * Work is split into contiguous ranges whose boundaries depend only on n,
 * grain and the pool size, so a run is reproducible for a given --threads. */
#ifndef DL_THREADS_H
#define DL_THREADS_H
#include <stdint.h>

typedef struct dl_pool dl_pool;

/* threads <= 1 returns NULL: every dl_parallel_for on NULL runs inline. */
dl_pool *dl_pool_new(int threads);
void dl_pool_free(dl_pool *p);
int dl_pool_size(const dl_pool *p);   /* 1 for NULL */

typedef void (*dl_range_fn)(void *arg, int64_t begin, int64_t end);
/* Calls fn over [0, n) split in at most pool-size chunks of at least `grain`
 * items; returns when all are done.  The calling thread does one chunk. */
void dl_parallel_for(dl_pool *p, int64_t n, int64_t grain, dl_range_fn fn, void *arg);

#endif
