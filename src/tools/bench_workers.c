/* The concurrency section of the bench: several inference workers, each with its own
 * insp_worker (pool, workspace), inspecting at once — how the daemon's worker count and pool
 * size trade latency against throughput. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tools/bench.h"

#define MAX_RUNS 1000

typedef struct shared {
    const bench_ctx *ctx;
    pthread_barrier_t barrier; /* workers + the main thread */
    int n_cpus;
} shared;

typedef struct slot {
    shared *sh;
    int index;
    pthread_t thread;
    int status;
    insp_error err;
    double busy_ms[MAX_RUNS]; /* latency while every worker inspects */
    double lone_ms[MAX_RUNS]; /* latency of this worker inspecting alone */
} slot;

static void pin_to(int first, int count, int n_cpus)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++)
        CPU_SET((first + i) % n_cpus, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static int inspect(insp_worker *w, const bench_ctx *ctx, double *ms, insp_error *err)
{
    insp_inspection r;
    int st = insp_inspect_encoded(w, ctx->image, ctx->image_len, ctx->t, NULL, &ctx->params, &r,
                                  err);
    if (st == INSP_OK && ms)
        *ms = r.t.total_ms;
    insp_inspection_free(&r);
    return st;
}

/* Phases, each ended by a barrier with the main thread: create, warm up, all busy, then
 * each worker alone in turn. A failed worker still meets every barrier. */
static void *worker_main(void *arg)
{
    slot *s = arg;
    const bench_ctx *ctx = s->sh->ctx;
    const int T = ctx->threads, base = s->index * T;
    insp_worker *w = NULL;
    if (ctx->pin && T > 1)
        pin_to(base + 1, T - 1, s->sh->n_cpus); /* what the pool's threads inherit */
    s->status = insp_worker_create(ctx->wc, T, &w, &s->err);
    if (ctx->pin)
        pin_to(base, 1, s->sh->n_cpus); /* the calling thread takes the first CPU */
    pthread_barrier_wait(&s->sh->barrier);

    for (int i = 0; s->status == INSP_OK && i < ctx->warmup; i++)
        s->status = inspect(w, ctx, NULL, &s->err);
    pthread_barrier_wait(&s->sh->barrier);

    for (int i = 0; s->status == INSP_OK && i < ctx->runs; i++)
        s->status = inspect(w, ctx, &s->busy_ms[i], &s->err);
    pthread_barrier_wait(&s->sh->barrier);

    for (int turn = 0; turn < ctx->workers; turn++) {
        for (int i = 0; turn == s->index && s->status == INSP_OK && i < ctx->runs; i++)
            s->status = inspect(w, ctx, &s->lone_ms[i], &s->err);
        pthread_barrier_wait(&s->sh->barrier);
    }
    insp_worker_free(w);
    return NULL;
}

json_t *bench_workers(const bench_ctx *ctx, insp_error *err)
{
    const int n = ctx->workers, runs = ctx->runs;
    shared sh = {.ctx = ctx, .n_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN)};
    if (sh.n_cpus < 1)
        sh.n_cpus = 1;
    slot *slots = calloc((size_t)n, sizeof *slots);
    double *busy = malloc((size_t)n * runs * sizeof *busy);
    double *lone = malloc((size_t)n * runs * sizeof *lone);
    if (!slots || !busy || !lone || pthread_barrier_init(&sh.barrier, NULL, (unsigned)n + 1)) {
        free(slots);
        free(busy);
        free(lone);
        insp_error_set(err, INSP_ERR_NOMEM, "bench: cannot set up %d workers", n);
        return NULL;
    }
    int started = 0;
    for (; started < n; started++) {
        slots[started] = (slot){.sh = &sh, .index = started};
        if (pthread_create(&slots[started].thread, NULL, worker_main, &slots[started]) != 0)
            break;
    }
    json_t *out = NULL;
    if (started < n) {
        /* Only under resource exhaustion; the started ones would wait at a barrier forever. */
        fprintf(stderr, "inspect-bench: cannot start worker thread %d\n", started);
        abort();
    }
    pthread_barrier_wait(&sh.barrier); /* created */
    pthread_barrier_wait(&sh.barrier); /* warmed up */
    double t0 = bench_now_s();
    pthread_barrier_wait(&sh.barrier); /* all busy */
    double wall = bench_now_s() - t0;
    for (int turn = 0; turn < n; turn++)
        pthread_barrier_wait(&sh.barrier);
    for (int i = 0; i < n; i++)
        pthread_join(slots[i].thread, NULL);

    for (int i = 0; i < n; i++)
        if (slots[i].status != INSP_OK) {
            *err = slots[i].err;
            insp_error_prefix(err, "worker %d: ", i);
            goto done;
        }
    for (int i = 0; i < n; i++)
        for (int r = 0; r < runs; r++) {
            busy[i * runs + r] = slots[i].busy_ms[r];
            lone[i * runs + r] = slots[i].lone_ms[r];
        }
    int total = n * runs;
    double b_med = bench_median(busy, total), b_p90 = bench_p90(busy, total);
    double l_med = bench_median(lone, total), l_p90 = bench_p90(lone, total);
    out = json_pack("{s:{s:i, s:i, s:b, s:{s:f, s:f, s:f, s:f}, s:{s:f, s:f, s:f}}}",
                    "throughput", "workers", n, "threads", ctx->threads, "pin", ctx->pin,
                    "all_busy", "images_per_s", total / wall, "wall_s", wall, "latency_median_ms",
                    b_med, "latency_p90_ms", b_p90, "alone", "images_per_s", 1e3 / l_med,
                    "latency_median_ms", l_med, "latency_p90_ms", l_p90);
done:
    pthread_barrier_destroy(&sh.barrier);
    free(slots);
    free(busy);
    free(lone);
    return out;
}
