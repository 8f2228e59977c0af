/* test_threads.c: dl_pool / dl_parallel_for.  Every index is visited exactly
 * once, chunk boundaries are contiguous, at most pool-size chunks of at
 * least `grain`, and the same on every call; n <= 0 calls nothing; chunks
 * really run at the same time; nested and concurrent calls complete; many
 * back-to-back calls (workers spinning) and calls after idle gaps (workers
 * asleep) lose no wake-up. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            n_pass++;                                                         \
        } else {                                                              \
            n_fail++;                                                         \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                       \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
        }                                                                     \
    } while (0)

#define MAX_CHUNKS 64

typedef struct {
    atomic_int *count;            /* visits per index */
    atomic_int nchunks;
    int64_t begin[MAX_CHUNKS], end[MAX_CHUNKS];
    atomic_int calls;
} cover_arg;

static void cover_fn(void *varg, int64_t b, int64_t e)
{
    cover_arg *a = varg;
    int slot = atomic_fetch_add(&a->nchunks, 1);
    if (slot < MAX_CHUNKS) {
        a->begin[slot] = b;
        a->end[slot] = e;
    }
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&a->count[i], 1);
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Runs one dl_parallel_for; returns the sorted chunk begins in `begins`. */
static int run_cover(dl_pool *p, int64_t n, int64_t grain, int64_t *begins)
{
    cover_arg a;
    memset(&a, 0, sizeof a);
    size_t cn = n > 0 ? (size_t)n : 1;
    a.count = calloc(cn, sizeof *a.count);
    atomic_init(&a.nchunks, 0);
    dl_parallel_for(p, n, grain, cover_fn, &a);
    int chunks = atomic_load(&a.nchunks);
    int size = dl_pool_size(p);
    int64_t g = grain < 1 ? 1 : grain;
    if (n <= 0) {
        CHECK(chunks == 0, "n=%lld: fn called %d times", (long long)n, chunks);
        free(a.count);
        return 0;
    }
    int64_t want = n / g < 1 ? 1 : n / g < size ? n / g : size;
    CHECK(chunks == want, "n=%lld grain=%lld size=%d: %d chunks, want %lld",
          (long long)n, (long long)grain, size, chunks, (long long)want);
    int once = 1;
    for (int64_t i = 0; i < n; i++)
        once &= atomic_load(&a.count[i]) == 1;
    CHECK(once, "n=%lld grain=%lld size=%d: an index not visited exactly once",
          (long long)n, (long long)grain, size);
    if (chunks <= MAX_CHUNKS) {
        /* sort chunks by begin, then check they tile [0, n) */
        int64_t pairs[MAX_CHUNKS][2];
        for (int i = 0; i < chunks; i++) {
            pairs[i][0] = a.begin[i];
            pairs[i][1] = a.end[i];
        }
        qsort(pairs, (size_t)chunks, sizeof pairs[0], cmp_i64);
        int ok = pairs[0][0] == 0 && pairs[chunks - 1][1] == n;
        for (int i = 0; i < chunks; i++) {
            ok &= pairs[i][1] > pairs[i][0];
            ok &= chunks == 1 || pairs[i][1] - pairs[i][0] >= g;
            if (i > 0)
                ok &= pairs[i][0] == pairs[i - 1][1];
            begins[i] = pairs[i][0];
        }
        CHECK(ok, "n=%lld grain=%lld size=%d: chunks do not tile [0,n) by >= grain",
              (long long)n, (long long)grain, size);
    }
    free(a.count);
    return chunks;
}

/* ---- concurrency: every chunk waits until all chunks have started ---- */
typedef struct {
    atomic_int started;
    int want;
    atomic_int timed_out;
} meet_arg;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void meet_fn(void *varg, int64_t b, int64_t e)
{
    (void)b;
    (void)e;
    meet_arg *a = varg;
    atomic_fetch_add(&a->started, 1);
    double t0 = now_s();
    while (atomic_load(&a->started) < a->want)
        if (now_s() - t0 > 10.0) {
            atomic_store(&a->timed_out, 1);
            return;
        }
}

/* ---- nesting: each outer chunk runs an inner parallel_for on the same pool */
typedef struct {
    dl_pool *pool;
    atomic_llong sum;
} nest_arg;

static void inner_fn(void *varg, int64_t b, int64_t e)
{
    nest_arg *a = varg;
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&a->sum, (long long)i);
}

static void outer_fn(void *varg, int64_t b, int64_t e)
{
    nest_arg *a = varg;
    for (int64_t i = b; i < e; i++)
        dl_parallel_for(a->pool, 100, 1, inner_fn, a);
}

/* ---- many calls: sums of squares must come out exact ---- */
typedef struct {
    atomic_llong sum;
} sum_arg;

static void sum_fn(void *varg, int64_t b, int64_t e)
{
    sum_arg *a = varg;
    long long s = 0;
    for (int64_t i = b; i < e; i++)
        s += (long long)(i * i);
    atomic_fetch_add(&a->sum, s);
}

static long long sumsq(int64_t n)
{
    return (long long)((n - 1) * n * (2 * n - 1) / 6);
}

typedef struct {
    dl_pool *pool;
    int ok;
} caller_arg;

static void *caller_main(void *varg)
{
    caller_arg *c = varg;
    c->ok = 1;
    for (int it = 0; it < 2000; it++) {
        sum_arg s;
        atomic_init(&s.sum, 0);
        int64_t n = 1 + it % 97;
        dl_parallel_for(c->pool, n, 1, sum_fn, &s);
        c->ok &= atomic_load(&s.sum) == sumsq(n);
    }
    return NULL;
}

int main(void)
{
    CHECK(dl_pool_new(1) == NULL, "dl_pool_new(1) should be NULL");
    CHECK(dl_pool_new(0) == NULL, "dl_pool_new(0) should be NULL");
    CHECK(dl_pool_new(-3) == NULL, "dl_pool_new(-3) should be NULL");
    CHECK(dl_pool_size(NULL) == 1, "dl_pool_size(NULL)");
    dl_pool_free(NULL);

    static const int sizes[] = {1, 2, 3, 4, 7};
    static const int64_t ns[] = {-5, 0, 1, 2, 3, 4, 5, 7, 8, 100, 1001, 100000};
    static const int64_t grains[] = {-1, 0, 1, 2, 3, 7, 64, 1000, 1 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        dl_pool *p = dl_pool_new(sizes[s]);
        CHECK(dl_pool_size(p) == sizes[s], "pool size %d, want %d",
              dl_pool_size(p), sizes[s]);
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) {
                int64_t b1[MAX_CHUNKS], b2[MAX_CHUNKS];
                int c1 = run_cover(p, ns[i], grains[g], b1);
                int c2 = run_cover(p, ns[i], grains[g], b2);
                CHECK(c1 == c2 && memcmp(b1, b2, (size_t)c1 * sizeof *b1) == 0,
                      "n=%lld grain=%lld: boundaries change between calls",
                      (long long)ns[i], (long long)grains[g]);
            }

        if (p) {
            /* all chunks run at once (would time out if run one by one) */
            meet_arg m;
            atomic_init(&m.started, 0);
            atomic_init(&m.timed_out, 0);
            m.want = sizes[s];
            dl_parallel_for(p, sizes[s], 1, meet_fn, &m);
            CHECK(!atomic_load(&m.timed_out), "size %d: chunks did not run concurrently",
                  sizes[s]);

            /* nested calls on the same pool run inline and complete */
            nest_arg na;
            na.pool = p;
            atomic_init(&na.sum, 0);
            dl_parallel_for(p, 10, 1, outer_fn, &na);
            CHECK(atomic_load(&na.sum) == 10LL * 4950, "nested sum %lld",
                  (long long)atomic_load(&na.sum));
        }

        /* back to back (workers spinning), then with idle gaps longer than
         * the spin (workers asleep) */
        int ok = 1;
        for (int it = 0; it < 20000; it++) {
            sum_arg a;
            atomic_init(&a.sum, 0);
            int64_t n = 1 + it % 13;
            dl_parallel_for(p, n, 1, sum_fn, &a);
            ok &= atomic_load(&a.sum) == sumsq(n);
        }
        for (int it = 0; it < 40; it++) {
            struct timespec ts = {0, 2000000};   /* 2 ms */
            nanosleep(&ts, NULL);
            sum_arg a;
            atomic_init(&a.sum, 0);
            dl_parallel_for(p, 1000, 1, sum_fn, &a);
            ok &= atomic_load(&a.sum) == sumsq(1000);
        }
        CHECK(ok, "size %d: wrong sum in repeated calls", sizes[s]);

        if (p) {
            /* two threads calling into one pool at once */
            pthread_t th[2];
            caller_arg ca[2] = {{p, 0}, {p, 0}};
            for (int t = 0; t < 2; t++)
                pthread_create(&th[t], NULL, caller_main, &ca[t]);
            for (int t = 0; t < 2; t++)
                pthread_join(th[t], NULL);
            CHECK(ca[0].ok && ca[1].ok, "size %d: concurrent callers", sizes[s]);
        }
        dl_pool_free(p);
    }

    /* create and free repeatedly, with and without use */
    for (int i = 0; i < 50; i++) {
        dl_pool *p = dl_pool_new(2 + i % 3);
        if (i % 2) {
            sum_arg a;
            atomic_init(&a.sum, 0);
            dl_parallel_for(p, 500, 1, sum_fn, &a);
            CHECK(atomic_load(&a.sum) == sumsq(500), "sum after new");
        }
        dl_pool_free(p);
    }

    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
