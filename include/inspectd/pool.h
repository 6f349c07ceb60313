/* A fixed-size compute pool: splits one operation's work across threads (the caller's
 * thread included). Each inference worker owns one; OpenBLAS itself stays single-threaded. */
#ifndef INSPECTD_POOL_H
#define INSPECTD_POOL_H

typedef struct insp_pool insp_pool;

/* Work item i of n; `thread` is the index (0..size-1) of the thread running it, for
 * per-thread scratch. Items may run in any order and concurrently. */
typedef void (*insp_pool_fn)(void *ctx, int i, int n, int thread);

/* Creates a pool of n_threads threads in all (n_threads - 1 are spawned; the thread calling
 * insp_pool_run is the last). n_threads < 1 is treated as 1. Also pins OpenBLAS to one
 * thread. Returns INSP_OK or INSP_ERR_NOMEM; *out is freed with insp_pool_free. */
int insp_pool_create(int n_threads, insp_pool **out);

/* Joins the threads and frees the pool. NULL is a harmless no-op. */
void insp_pool_free(insp_pool *pool);

/* Number of threads, including the caller's. A NULL pool has size 1. */
int insp_pool_size(const insp_pool *pool);

/* Runs fn(ctx, i, n, thread) for every i in [0, n) and returns when all are done; what
 * the items wrote is then visible to the caller. Items are claimed one at a time by
 * whichever thread is free (the caller included), so a thread that starts late only means
 * the others take more items. n <= 0 does nothing; a NULL pool, a pool of size 1 or n == 1
 * runs everything on the calling thread. One caller at a time per pool, and fn must not
 * call insp_pool_run on the same pool. Idle threads poll for ~200 us after a run (yielding
 * their CPU to anything runnable), then sleep until the next one. */
void insp_pool_run(insp_pool *pool, insp_pool_fn fn, void *ctx, int n);

#endif
