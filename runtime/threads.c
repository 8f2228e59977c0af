/* threads.c: the worker pool behind dl_parallel_for.
 *
 * One job at a time.  The caller publishes a job (fn, arg, n, chunks) and
 * a new generation in one atomic word, `claim`, whose high half is the
 * job's generation and low half the next chunk to take.  Every thread, the
 * caller included, then takes chunk indices with a compare-and-swap on
 * that word and runs them.  The caller returns once every chunk has
 * finished.  No mutex is taken on this path: a worker that found the pool
 * mutex held by the publishing caller used to sleep in the kernel and be
 * woken tens of microseconds later, as long as a whole chunk of a small
 * GEMM.
 *
 * Chunks are claimed, not assigned: if a worker is slow to wake (asleep, or
 * its core busy with another process) the caller simply runs that chunk
 * itself, so a call never waits on a scheduler wake-up, only on chunks that
 * are actually running.  Which thread runs a chunk never changes what the
 * chunk computes, and the boundaries depend only on n, grain and pool size.
 *
 * Idle workers first spin on `claim` (training calls dl_parallel_for
 * thousands of times a second and a futex wake costs tens of
 * microseconds), then sleep on a condition variable so an idle pool costs
 * nothing.  The mutex guards only that sleep. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* How long an idle worker spins before sleeping, and how long the caller
 * spins for running chunks before sleeping (nanoseconds). */
#define WORKER_SPIN_NS 200000
#define CALLER_SPIN_NS 1000000
/* Pause instructions between clock reads / sched_yield calls. */
#define SPINS_PER_CHECK 64

typedef struct {
    struct dl_pool *pool;
    pthread_t thread;
} worker;

struct dl_pool {
    int size;                   /* threads taking part, caller included */
    worker *workers;            /* size - 1 of them                     */

    /* The current job.  Written by the caller only while no chunk of the
     * previous job can still be claimed (see take_chunk), read by
     * whoever claims a chunk; atomics only so that a reader racing the
     * next job's writes is not a data race (its claim then fails). */
    _Atomic(dl_range_fn) fn;
    _Atomic(void *) arg;
    _Atomic int64_t n;

    /* generation << 32 | chunks << 16 | next chunk to take */
    _Alignas(64) atomic_uint_least64_t claim;
    _Alignas(64) atomic_int unfinished;   /* chunks not yet finished  */
    atomic_int busy;            /* a job is running: nested or
                                   concurrent calls run inline          */

    _Alignas(64) pthread_mutex_t mu;
    pthread_cond_t wake;        /* workers sleep here between jobs      */
    pthread_cond_t done;        /* the caller sleeps here               */
    atomic_int sleepers;        /* workers asleep or about to (by mu)   */
    atomic_int caller_sleeping; /*                             (by mu)  */
    int stop;                   /* set by dl_pool_free         (by mu)  */
};

#define GEN_OF(c) ((uint32_t)((c) >> 32))
#define CHUNKS_OF(c) ((int)(((c) >> 16) & 0xffff))
#define INDEX_OF(c) ((int)((c) & 0xffff))
#define MAX_CHUNKS 0xffff

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Chunk i of `chunks` over [0, n): sizes differ by at most one, larger ones
 * first, so boundaries depend only on n and chunks. */
static void chunk_range(int64_t n, int chunks, int i, int64_t *b, int64_t *e)
{
    int64_t q = n / chunks, r = n % chunks;
    *b = i * q + (i < r ? i : r);
    *e = *b + q + (i < r ? 1 : 0);
}

/* Takes the next chunk of generation `gen`, with its job: 1 if one was
 * left.  Whether one is left is read from `claim` alone.  The job is read
 * before the compare-and-swap that takes the chunk, and the caller
 * rewrites it only after every chunk of its generation has finished, so a
 * successful swap (a chunk of `gen` was still free) proves the read saw
 * this job, not the next. */
static int take_chunk(dl_pool *p, uint32_t gen, int *index, dl_range_fn *fn, void **arg,
                      int64_t *n, int *chunks)
{
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if (GEN_OF(c) != gen || INDEX_OF(c) >= CHUNKS_OF(c))
            return 0;
        *fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        *arg = atomic_load_explicit(&p->arg, memory_order_relaxed);
        *n = atomic_load_explicit(&p->n, memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *index = INDEX_OF(c);
            *chunks = CHUNKS_OF(c);
            return 1;
        }
    }
}

/* Runs chunks of generation `gen` until none is left to take. */
static void run_chunks(dl_pool *p, uint32_t gen)
{
    dl_range_fn fn;
    void *arg;
    int64_t n, b, e;
    int i, chunks;
    while (take_chunk(p, gen, &i, &fn, &arg, &n, &chunks)) {
        chunk_range(n, chunks, i, &b, &e);
        fn(arg, b, e);
        if (atomic_fetch_sub_explicit(&p->unfinished, 1, memory_order_seq_cst) == 1
            && atomic_load_explicit(&p->caller_sleeping, memory_order_seq_cst)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Spins until the generation differs from `seen` or `ns` pass; returns
 * the last generation read. */
static uint32_t spin_for_gen(dl_pool *p, uint32_t seen, int64_t ns)
{
    uint32_t g = GEN_OF(atomic_load_explicit(&p->claim, memory_order_acquire));
    if (g != seen)
        return g;
    int64_t deadline = now_ns() + ns;
    for (;;) {
        for (int s = 0; s < SPINS_PER_CHECK; s++) {
            cpu_relax();
            g = GEN_OF(atomic_load_explicit(&p->claim, memory_order_acquire));
            if (g != seen)
                return g;
        }
        if (now_ns() > deadline)
            return g;
        sched_yield();   /* give the core away if someone else wants it */
    }
}

/* Sleeps until the generation differs from `seen` or the pool stops;
 * returns the new generation, or -1 to stop.  `sleepers` and `claim` are
 * a Dekker pair (both seq_cst): either the publishing caller sees this
 * worker counted and wakes it under the mutex, or this worker sees the
 * new generation and does not wait. */
static int64_t sleep_for_gen(dl_pool *p, uint32_t seen)
{
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
    uint32_t g;
    while ((g = GEN_OF(atomic_load_explicit(&p->claim, memory_order_seq_cst))) == seen && !p->stop)
        pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop ? -1 : (int64_t)g;
}

static void *worker_main(void *vw)
{
    dl_pool *p = ((worker *)vw)->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = spin_for_gen(p, seen, WORKER_SPIN_NS);
        if (g == seen) {
            int64_t s = sleep_for_gen(p, seen);
            if (s < 0)
                return NULL;
            g = (uint32_t)s;
        }
        seen = g;
        run_chunks(p, g);
    }
}

dl_pool *dl_pool_new(int threads)
{
    if (threads <= 1)
        return NULL;
    dl_pool *p = calloc(1, sizeof *p);
    worker *ws = calloc((size_t)(threads - 1), sizeof *ws);
    if (!p || !ws) {
        free(p);
        free(ws);
        return NULL;
    }
    p->workers = ws;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->arg, NULL);
    atomic_init(&p->n, 0);
    atomic_init(&p->claim, 0);
    atomic_init(&p->unfinished, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeping, 0);
    p->size = 1;
    for (int i = 1; i < threads; i++) {
        ws[i - 1].pool = p;
        if (pthread_create(&ws[i - 1].thread, NULL, worker_main, &ws[i - 1]) != 0)
            break;  /* run with the workers we got */
        p->size = i + 1;
    }
    if (p->size == 1) {
        dl_pool_free(p);
        return NULL;
    }
    return p;
}

void dl_pool_free(dl_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->size - 1; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int dl_pool_size(const dl_pool *p)
{
    return p ? p->size : 1;
}

/* Waits until every chunk of the current job has finished: spins first,
 * since the chunks still running elsewhere are usually about as long as
 * the one this thread just ran, then sleeps. */
static void wait_unfinished(dl_pool *p)
{
    if (atomic_load_explicit(&p->unfinished, memory_order_acquire) <= 0)
        return;
    int64_t deadline = now_ns() + CALLER_SPIN_NS;
    for (;;) {
        for (int s = 0; s < SPINS_PER_CHECK; s++) {
            if (atomic_load_explicit(&p->unfinished, memory_order_acquire) <= 0)
                return;
            cpu_relax();
        }
        if (now_ns() > deadline)
            break;
        sched_yield();
    }
    /* caller_sleeping and unfinished are a Dekker pair, as in sleep_for_gen */
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->caller_sleeping, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&p->unfinished, memory_order_seq_cst) > 0)
        pthread_cond_wait(&p->done, &p->mu);
    atomic_store_explicit(&p->caller_sleeping, 0, memory_order_relaxed);
    pthread_mutex_unlock(&p->mu);
}

void dl_parallel_for(dl_pool *p, int64_t n, int64_t grain, dl_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    int size = dl_pool_size(p);
    /* chunks = min(size, n / grain), at least 1: every chunk has >= grain
     * items unless there is only one. */
    int64_t c = n / grain;
    int chunks = c < 1 ? 1 : c < size ? (int)c : size;
    if (chunks > MAX_CHUNKS)
        chunks = MAX_CHUNKS;

    if (chunks == 1) {
        fn(arg, 0, n);
        return;
    }
    /* Called from inside a job (nested) or by a second thread at once: run
     * the same chunks here, one after another. */
    if (atomic_exchange_explicit(&p->busy, 1, memory_order_acquire)) {
        for (int i = 0; i < chunks; i++) {
            int64_t b, e;
            chunk_range(n, chunks, i, &b, &e);
            fn(arg, b, e);
        }
        return;
    }

    /* Every chunk of the previous job has been taken and has finished, so
     * no thread reads these fields now (take_chunk's swap would fail). */
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&p->n, n, memory_order_relaxed);
    atomic_store_explicit(&p->unfinished, chunks, memory_order_relaxed);
    uint32_t gen = GEN_OF(atomic_load_explicit(&p->claim, memory_order_relaxed)) + 1;
    atomic_store_explicit(&p->claim, (uint64_t)gen << 32 | (uint64_t)chunks << 16,
                          memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_chunks(p, gen);
    wait_unfinished(p);
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}
