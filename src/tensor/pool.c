/* The compute pool: a few long-lived threads that take work items of one operation at a
 * time, with a dispatch cheap enough (well under a microsecond when the threads are awake)
 * to be used for every GEMM and elementwise op of a transformer layer. */
#include "inspectd/pool.h"

#include <cblas.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "inspectd/status.h"

/* How long an idle thread keeps polling for the next run before it sleeps. Runs of one
 * forward pass follow each other within microseconds, so polling saves a wake-up (about
 * 10 us of the caller's time in a VM) per run; beyond this the thread gives its core back. */
#define SPIN_NS 200000L
/* Polls between two reads of the clock while spinning. */
#define SPIN_CHECK_EVERY 64
/* Polls between two sched_yield()s while spinning. A worker woken from sleep is often placed
 * on the caller's CPU and preempts it; a spinner that never yields then holds the caller off
 * for its whole spin (measured: 200 us per run). sched_yield returns at once when nothing
 * else wants the CPU, so yielding every few polls costs little latency. */
#define SPIN_YIELD_EVERY 16

/*
 * Protocol. `ticket` holds a generation in its upper 32 bits and the next unclaimed item in
 * its lower 32. An even generation is a run in progress, an odd one means "no run".
 *
 *   caller: write fn/ctx/n; ticket = (even g, 0); wake sleepers; claim items itself;
 *           ticket = (g + 1, 0)  [closed]; wait until busy == 0.
 *   worker: wait for an even generation it has not seen; busy++; re-read ticket and leave if
 *           the run is closed already; read fn/ctx/n; claim items with fetch_add until the
 *           index reaches n or the generation changes; busy--.
 *
 * Claiming with fetch_add on the whole word means a claim fails cleanly once the run is
 * closed (the generation differs), and the low half cannot carry into the generation: after
 * n is reached each thread adds at most one more before it stops.
 * The caller's "close, then read busy" against the worker's "busy++, then read ticket"
 * (all seq_cst) guarantees that either the worker sees the run closed and never touches
 * fn/ctx/n, or the caller sees it busy and waits; so the caller may rewrite fn/ctx/n for the
 * next run as soon as busy is zero. A worker that wakes up late therefore never delays a run:
 * the caller simply claims every item itself.
 *
 * Sleeping uses a futex on `wake_seq` rather than a mutex and condition variable: the
 * publishing path takes no lock, and waking every sleeper is one syscall, made only when
 * `sleepers` says someone sleeps (Linux only, as is the rest of the daemon).
 */
struct insp_pool {
    int size; /* threads in all, the caller's included */
    int n_spawned;
    pthread_t *threads;

    _Atomic uint64_t ticket;
    atomic_int busy;     /* workers inside a run (between busy++ and busy--) */
    atomic_int sleepers; /* workers blocked, or about to block, on wake_seq */
    _Atomic uint32_t wake_seq; /* futex word: bumped whenever sleepers must wake */
    atomic_bool stop;
    uint32_t gen; /* the caller's copy of the current (odd) generation */

    /* The current run; written by the caller only while no worker is busy. */
    insp_pool_fn fn;
    void *ctx;
    int n;
};

typedef struct worker_arg {
    insp_pool *pool;
    int index;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline uint32_t ticket_gen(uint64_t t)
{
    return (uint32_t)(t >> 32);
}

static inline uint32_t ticket_item(uint64_t t)
{
    return (uint32_t)t;
}

/* True when the ticket shows a run this worker has not taken part in yet. */
static inline bool new_run(uint64_t t, uint32_t last)
{
    uint32_t g = ticket_gen(t);
    return (g & 1u) == 0 && g != last;
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
    /* Returns at once if *word != expected; spurious returns are fine (callers loop). */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* Wakes every sleeping worker; called after publishing a run or setting stop. */
static void wake_sleepers(insp_pool *p)
{
    atomic_fetch_add(&p->wake_seq, 1);
    futex_wake_all(&p->wake_seq);
}

/* Blocks until stop is set or a new run is published; spins first. */
static void wait_for_run(insp_pool *p, uint32_t last)
{
    long deadline = 0;
    for (int polls = 0;; polls++) {
        if (atomic_load(&p->stop) || new_run(atomic_load(&p->ticket), last))
            return;
        if (polls % SPIN_CHECK_EVERY == SPIN_CHECK_EVERY - 1) {
            long t = now_ns();
            if (deadline == 0)
                deadline = t + SPIN_NS;
            else if (t > deadline)
                break;
        }
        if (polls % SPIN_YIELD_EVERY == SPIN_YIELD_EVERY - 1)
            sched_yield();
        else
            cpu_relax();
    }
    /* Read wake_seq, then announce, then check: the caller publishes, then reads sleepers,
     * then bumps wake_seq. Either this check sees the run, or the caller sees us and its
     * bump makes the futex wait return (at once, if it came before the wait). */
    uint32_t seq = atomic_load(&p->wake_seq);
    atomic_fetch_add(&p->sleepers, 1);
    while (!atomic_load(&p->stop) && !new_run(atomic_load(&p->ticket), last)) {
        futex_wait(&p->wake_seq, seq);
        seq = atomic_load(&p->wake_seq);
    }
    atomic_fetch_sub(&p->sleepers, 1);
}

static void *worker_main(void *argp)
{
    worker_arg arg = *(worker_arg *)argp;
    free(argp);
    insp_pool *p = arg.pool;
    uint32_t last = 0;
    for (;;) {
        wait_for_run(p, last);
        if (atomic_load(&p->stop))
            break;
        atomic_fetch_add(&p->busy, 1);
        uint64_t t = atomic_load(&p->ticket);
        if (!new_run(t, last)) { /* closed (or replaced) before we got here */
            atomic_fetch_sub(&p->busy, 1);
            continue;
        }
        uint32_t g = ticket_gen(t);
        last = g;
        insp_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        int n = p->n;
        for (;;) {
            t = atomic_fetch_add(&p->ticket, 1);
            if (ticket_gen(t) != g || ticket_item(t) >= (uint32_t)n)
                break;
            fn(ctx, (int)ticket_item(t), n, arg.index);
        }
        atomic_fetch_sub(&p->busy, 1);
    }
    return NULL;
}

/* Stops and joins the first n_started workers. */
static void stop_workers(insp_pool *p, int n_started)
{
    atomic_store(&p->stop, true);
    wake_sleepers(p);
    for (int i = 0; i < n_started; i++)
        pthread_join(p->threads[i], NULL);
}

int insp_pool_create(int n_threads, insp_pool **out)
{
    *out = NULL;
    /* Parallelism comes from the pool; a multi-threaded BLAS underneath would oversubscribe. */
    openblas_set_num_threads(1);
    if (n_threads < 1)
        n_threads = 1;
    insp_pool *p = calloc(1, sizeof *p);
    if (!p)
        return INSP_ERR_NOMEM;
    p->size = n_threads;
    p->gen = 1;
    atomic_init(&p->ticket, (uint64_t)p->gen << 32);
    atomic_init(&p->busy, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->wake_seq, 0);
    atomic_init(&p->stop, false);
    if (n_threads > 1) {
        p->threads = calloc((size_t)(n_threads - 1), sizeof *p->threads);
        if (!p->threads) {
            insp_pool_free(p);
            return INSP_ERR_NOMEM;
        }
    }
    for (int i = 0; i < n_threads - 1; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (arg) {
            arg->pool = p;
            arg->index = i;
        }
        if (!arg || pthread_create(&p->threads[i], NULL, worker_main, arg) != 0) {
            free(arg);
            insp_pool_free(p);
            return INSP_ERR_NOMEM;
        }
        p->n_spawned = i + 1;
    }
    *out = p;
    return INSP_OK;
}

void insp_pool_free(insp_pool *pool)
{
    if (!pool)
        return;
    stop_workers(pool, pool->n_spawned);
    free(pool->threads);
    free(pool);
}

int insp_pool_size(const insp_pool *pool)
{
    return pool ? pool->size : 1;
}

void insp_pool_run(insp_pool *pool, insp_pool_fn fn, void *ctx, int n)
{
    if (n <= 0)
        return;
    int self = insp_pool_size(pool) - 1;
    if (self == 0 || n == 1) {
        for (int i = 0; i < n; i++)
            fn(ctx, i, n, self);
        return;
    }
    insp_pool *p = pool;
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    uint32_t g = p->gen + 1; /* even: open */
    atomic_store(&p->ticket, (uint64_t)g << 32);
    if (atomic_load(&p->sleepers) > 0)
        wake_sleepers(p);
    for (;;) {
        uint64_t t = atomic_fetch_add(&p->ticket, 1);
        if (ticket_item(t) >= (uint32_t)n)
            break;
        fn(ctx, (int)ticket_item(t), n, self);
    }
    p->gen = g + 1; /* odd: closed */
    atomic_store(&p->ticket, (uint64_t)p->gen << 32);
    /* Every item is claimed; wait for those still running on other threads. */
    for (int polls = 0; atomic_load(&p->busy) != 0; polls++) {
        if (polls < 4096)
            cpu_relax();
        else
            sched_yield();
    }
}
