/* threads.c: the worker pool behind dl_parallel_for.
 *
 * One job at a time.  The caller publishes a job (fn, arg, n, chunks) under
 * the pool mutex and bumps a generation counter; every thread, the caller
 * included, then claims chunk indices one by one under the mutex and runs
 * them outside it.  The caller returns once every chunk has finished.
 *
 * Chunks are claimed, not assigned: if a worker is slow to wake (asleep, or
 * its core busy with another process) the caller simply runs that chunk
 * itself, so a call never waits on a scheduler wake-up, only on chunks that
 * are actually running.  Which thread runs a chunk never changes what the
 * chunk computes, and the boundaries depend only on n, grain and pool size.
 *
 * Idle workers first spin on the generation counter (training calls
 * dl_parallel_for thousands of times a second and a futex wake costs tens of
 * microseconds), then sleep on a condition variable so an idle pool costs
 * nothing. */
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

    pthread_mutex_t mu;
    pthread_cond_t wake;        /* workers sleep here between jobs      */
    pthread_cond_t done;        /* the caller sleeps here               */
    int sleepers;               /* workers in cond_wait        (by mu)  */
    int caller_sleeping;        /*                             (by mu)  */
    int stop;                   /* set by dl_pool_free         (by mu)  */

    /* the current job                                          (by mu) */
    dl_range_fn fn;
    void *arg;
    int64_t n;
    int chunks;
    int next;                   /* next chunk to claim                  */

    atomic_uint_least64_t gen;  /* bumped per job; spinners watch it    */
    atomic_int unfinished;      /* chunks not yet finished              */
    atomic_int busy;            /* a job is running: nested or
                                   concurrent calls run inline          */
};

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

/* Claims and runs chunks of the current job until none is left.  Called and
 * returns with mu held. */
static void run_chunks(dl_pool *p)
{
    while (p->next < p->chunks) {
        int i = p->next++;
        dl_range_fn fn = p->fn;
        void *arg = p->arg;
        int64_t b, e;
        chunk_range(p->n, p->chunks, i, &b, &e);
        pthread_mutex_unlock(&p->mu);
        fn(arg, b, e);
        int last = atomic_fetch_sub_explicit(&p->unfinished, 1, memory_order_acq_rel) == 1;
        pthread_mutex_lock(&p->mu);
        if (last && p->caller_sleeping)
            pthread_cond_signal(&p->done);
    }
}

/* Spins until gen differs from `seen` or `ns` pass; returns the last gen. */
static uint64_t spin_for_gen(dl_pool *p, uint64_t seen, int64_t ns)
{
    uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
    if (g != seen)
        return g;
    int64_t deadline = now_ns() + ns;
    for (;;) {
        for (int s = 0; s < SPINS_PER_CHECK; s++) {
            cpu_relax();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
            if (g != seen)
                return g;
        }
        if (now_ns() > deadline)
            return g;
        sched_yield();   /* give the core away if someone else wants it */
    }
}

static void *worker_main(void *vw)
{
    dl_pool *p = ((worker *)vw)->pool;
    uint64_t seen = 0;
    for (;;) {
        spin_for_gen(p, seen, WORKER_SPIN_NS);
        pthread_mutex_lock(&p->mu);
        /* gen only changes under mu, so this check cannot miss a job */
        while (atomic_load_explicit(&p->gen, memory_order_relaxed) == seen && !p->stop) {
            p->sleepers++;
            pthread_cond_wait(&p->wake, &p->mu);
            p->sleepers--;
        }
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = atomic_load_explicit(&p->gen, memory_order_relaxed);
        run_chunks(p);
        pthread_mutex_unlock(&p->mu);
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
    atomic_init(&p->gen, 0);
    atomic_init(&p->unfinished, 0);
    atomic_init(&p->busy, 0);
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

    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunks = chunks;
    p->next = 0;
    atomic_store_explicit(&p->unfinished, chunks, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    run_chunks(p);
    pthread_mutex_unlock(&p->mu);

    /* Every chunk is claimed; wait for those still running elsewhere. */
    if (atomic_load_explicit(&p->unfinished, memory_order_acquire) > 0) {
        int64_t deadline = now_ns() + CALLER_SPIN_NS;
        int left;
        for (;;) {
            int s = 0;
            while ((left = atomic_load_explicit(&p->unfinished, memory_order_acquire)) > 0
                   && s++ < SPINS_PER_CHECK)
                cpu_relax();
            if (left <= 0 || now_ns() > deadline)
                break;
            sched_yield();
        }
        if (left > 0) {
            pthread_mutex_lock(&p->mu);
            p->caller_sleeping = 1;
            while (atomic_load_explicit(&p->unfinished, memory_order_acquire) > 0)
                pthread_cond_wait(&p->done, &p->mu);
            p->caller_sleeping = 0;
            pthread_mutex_unlock(&p->mu);
        }
    }
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}
