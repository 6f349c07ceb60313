/* Tests of the compute pool: every item runs exactly once on a valid thread index, for any
 * item count, across many back-to-back runs and after the threads have gone to sleep. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inspectd/pool.h"
#include "inspectd/status.h"

typedef struct count_ctx {
    int *counts;         /* [n], each item's own slot: plain ints, read after the run */
    int size;            /* pool size: thread indices must be below it */
    int expect_n;        /* the n every call must report */
    atomic_int bad_args; /* calls with an out-of-range i, thread or a wrong n */
} count_ctx;

static void count_item(void *ctxp, int i, int n, int thread)
{
    count_ctx *c = ctxp;
    if (i < 0 || i >= c->expect_n || n != c->expect_n || thread < 0 || thread >= c->size) {
        atomic_fetch_add(&c->bad_args, 1);
        return;
    }
    c->counts[i]++;
}

/* Runs n items on pool and checks each ran exactly once with sane arguments. */
static void check_run_once(insp_pool *pool, int n)
{
    count_ctx c = {.size = insp_pool_size(pool), .expect_n = n};
    c.counts = calloc((size_t)(n > 0 ? n : 1), sizeof *c.counts);
    REQUIRE(c.counts);
    atomic_init(&c.bad_args, 0);
    insp_pool_run(pool, count_item, &c, n);
    int wrong = 0;
    for (int i = 0; i < n; i++)
        wrong += c.counts[i] != 1;
    CHECK_MSG(wrong == 0, "pool of %d, n = %d: %d items not run exactly once", c.size, n, wrong);
    CHECK_EQ_INT(atomic_load(&c.bad_args), 0);
    free(c.counts);
}

static void every_item_exactly_once(void)
{
    static const int sizes[] = {1, 2, 3, 4, 8};
    static const int ns[] = {1, 2, 3, 5, 7, 8, 9, 100, 1000, 100000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        insp_pool *pool = NULL;
        CHECK_OK(insp_pool_create(sizes[s], &pool));
        REQUIRE(pool);
        CHECK_EQ_INT(insp_pool_size(pool), sizes[s]);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            check_run_once(pool, ns[k]);
        insp_pool_free(pool);
    }
}

static void fewer_items_than_threads(void)
{
    insp_pool *pool = NULL;
    CHECK_OK(insp_pool_create(8, &pool));
    REQUIRE(pool);
    for (int rep = 0; rep < 200; rep++)
        for (int n = 1; n < 8; n++)
            check_run_once(pool, n);
    insp_pool_free(pool);
}

static void never_called(void *ctx, int i, int n, int thread)
{
    (void)i, (void)n, (void)thread;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static void zero_or_negative_items_run_nothing(void)
{
    insp_pool *pool = NULL;
    CHECK_OK(insp_pool_create(3, &pool));
    REQUIRE(pool);
    atomic_int calls;
    atomic_init(&calls, 0);
    insp_pool_run(pool, never_called, &calls, 0);
    insp_pool_run(pool, never_called, &calls, -5);
    insp_pool_run(NULL, never_called, &calls, 0);
    CHECK_EQ_INT(atomic_load(&calls), 0);
    /* The pool still works afterwards. */
    check_run_once(pool, 10);
    insp_pool_free(pool);
}

typedef struct sum_ctx {
    long *slots; /* [n]: item i writes i + run, the caller adds them up after the run */
    long run;
} sum_ctx;

static void sum_item(void *ctxp, int i, int n, int thread)
{
    (void)n, (void)thread;
    sum_ctx *c = ctxp;
    c->slots[i] = i + c->run;
}

/* Many short runs back to back (the forward pass's pattern): no deadlock, no lost or stale
 * item, and each run's writes visible to the caller when insp_pool_run returns. */
static void many_sequential_runs(void)
{
    static const int sizes[] = {2, 3};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        insp_pool *pool = NULL;
        CHECK_OK(insp_pool_create(sizes[s], &pool));
        REQUIRE(pool);
        long slots[13];
        int bad = 0;
        for (long run = 0; run < 10000; run++) {
            int n = 1 + (int)(run % 13);
            sum_ctx c = {slots, run};
            for (int i = 0; i < n; i++)
                slots[i] = -1;
            insp_pool_run(pool, sum_item, &c, n);
            for (int i = 0; i < n; i++)
                bad += slots[i] != i + run;
        }
        CHECK_EQ_INT(bad, 0);
        insp_pool_free(pool);
    }
}

/* Runs separated by pauses longer than the threads' spinning, so they sleep and are woken. */
static void runs_after_threads_sleep(void)
{
    insp_pool *pool = NULL;
    CHECK_OK(insp_pool_create(3, &pool));
    REQUIRE(pool);
    for (int rep = 0; rep < 20; rep++) {
        usleep(rep % 2 ? 2000 : 300);
        check_run_once(pool, 1 + rep % 6);
    }
    insp_pool_free(pool);
}

typedef struct meet_ctx {
    atomic_int started;
    atomic_int timed_out;
    int thread_of[2];
} meet_ctx;

/* Each of the two items waits (up to 20 s) until the other has started: both can only
 * finish if two threads run them at the same time. */
static void meet_item(void *ctxp, int i, int n, int thread)
{
    (void)n;
    meet_ctx *c = ctxp;
    c->thread_of[i] = thread;
    atomic_fetch_add(&c->started, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&c->started) < 2) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20) {
            atomic_store(&c->timed_out, 1);
            return;
        }
        usleep(10);
    }
}

static void spawned_thread_takes_part(void)
{
    insp_pool *pool = NULL;
    CHECK_OK(insp_pool_create(2, &pool));
    REQUIRE(pool);
    for (int rep = 0; rep < 5; rep++) {
        meet_ctx c = {.thread_of = {-1, -1}};
        atomic_init(&c.started, 0);
        atomic_init(&c.timed_out, 0);
        insp_pool_run(pool, meet_item, &c, 2);
        CHECK_EQ_INT(atomic_load(&c.timed_out), 0);
        CHECK(c.thread_of[0] != c.thread_of[1]);
        CHECK(c.thread_of[0] >= 0 && c.thread_of[0] < 2);
        CHECK(c.thread_of[1] >= 0 && c.thread_of[1] < 2);
    }
    insp_pool_free(pool);
}

typedef struct inline_ctx {
    pthread_t caller;
    int calls, wrong_thread, wrong_index;
} inline_ctx;

static void inline_item(void *ctxp, int i, int n, int thread)
{
    (void)i, (void)n;
    inline_ctx *c = ctxp;
    c->calls++;
    c->wrong_thread += !pthread_equal(pthread_self(), c->caller);
    c->wrong_index += thread != 0;
}

static void null_and_single_pools_run_inline(void)
{
    CHECK_EQ_INT(insp_pool_size(NULL), 1);
    inline_ctx c = {.caller = pthread_self()};
    insp_pool_run(NULL, inline_item, &c, 17);
    CHECK_EQ_INT(c.calls, 17);
    CHECK_EQ_INT(c.wrong_thread, 0);
    CHECK_EQ_INT(c.wrong_index, 0);

    insp_pool *pool = NULL;
    CHECK_OK(insp_pool_create(1, &pool));
    REQUIRE(pool);
    CHECK_EQ_INT(insp_pool_size(pool), 1);
    inline_ctx d = {.caller = pthread_self()};
    insp_pool_run(pool, inline_item, &d, 9);
    CHECK_EQ_INT(d.calls, 9);
    CHECK_EQ_INT(d.wrong_thread, 0);
    CHECK_EQ_INT(d.wrong_index, 0);
    insp_pool_free(pool);
}

static void sizes_below_one_mean_one(void)
{
    for (int n = -3; n <= 0; n++) {
        insp_pool *pool = NULL;
        CHECK_OK(insp_pool_create(n, &pool));
        REQUIRE(pool);
        CHECK_EQ_INT(insp_pool_size(pool), 1);
        check_run_once(pool, 4);
        insp_pool_free(pool);
    }
    insp_pool_free(NULL);
}

/* Create and free at once, before the threads reached their first wait, and after one run. */
static void create_free_repeatedly(void)
{
    for (int rep = 0; rep < 50; rep++) {
        insp_pool *pool = NULL;
        CHECK_OK(insp_pool_create(1 + rep % 4, &pool));
        REQUIRE(pool);
        if (rep % 2)
            check_run_once(pool, 5);
        insp_pool_free(pool);
    }
}

TEST_MAIN(T(every_item_exactly_once), T(fewer_items_than_threads),
          T(zero_or_negative_items_run_nothing), T(many_sequential_runs),
          T(runs_after_threads_sleep), T(spawned_thread_takes_part),
          T(null_and_single_pools_run_inline), T(sizes_below_one_mean_one),
          T(create_free_repeatedly))
