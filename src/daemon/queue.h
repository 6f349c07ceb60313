/* The bounded inference queue: HTTP threads submit jobs and block until a worker has run
 * them; a full queue refuses at once (503) instead of letting requests pile up. Each worker
 * thread owns a context (the daemon gives each an engine worker) created on that thread. */
#ifndef INSPECTD_DAEMON_QUEUE_H
#define INSPECTD_DAEMON_QUEUE_H

#include <stdint.h>

#include "inspectd/status.h"

typedef struct insp_queue insp_queue;

/* Runs on a worker thread with that worker's context; returns an insp status that
 * insp_job_wait hands back to the submitter. */
typedef int (*insp_job_fn)(void *worker_ctx, void *arg);

/* Creates worker `index`'s context, on the worker's own thread, before it takes any job.
 * Returns INSP_OK or an error (with detail in err), which makes insp_queue_create fail. */
typedef int (*insp_worker_init_fn)(void *arg, int index, void **ctx, insp_error *err);
/* Frees a context made by init, on the same thread, when the queue shuts down. */
typedef void (*insp_worker_fini_fn)(void *arg, int index, void *ctx);

typedef struct insp_queue_params {
    int workers;      /* worker threads, >= 1 */
    int queue_length; /* jobs that may wait while every worker is busy, >= 0 */
    insp_worker_init_fn init; /* may be NULL: contexts are NULL */
    insp_worker_fini_fn fini; /* may be NULL */
    void *arg;                /* passed to init and fini */
} insp_queue_params;

/* A job lives in the submitter's memory (typically its stack), so submitting allocates
 * nothing. Fill it with insp_job_init; the other members belong to the queue until
 * insp_job_wait returns, after which the timestamps may be read. */
typedef struct insp_job {
    insp_job_fn fn;
    void *arg;
    /* private to the queue */
    struct insp_job *next;
    struct insp_queue *queue;
    int state;
    int status;
    /* CLOCK_MONOTONIC nanoseconds: accepted, picked by a worker, finished. */
    int64_t queued_ns, started_ns, finished_ns;
} insp_job;

void insp_job_init(insp_job *job, insp_job_fn fn, void *arg);

/* Starts the workers and waits until each has run init. On failure (an init error,
 * INSP_ERR_NOMEM, a thread that cannot start, bad params -> INSP_ERR_INVALID) the workers
 * already started are stopped (fini runs for those whose init succeeded), *out is NULL and
 * err says which worker failed and why. Free with insp_queue_free. */
int insp_queue_create(const insp_queue_params *params, insp_queue **out, insp_error *err);

/* Queues the job. Returns INSP_OK, or at once INSP_ERR_BUSY when queue_length jobs already
 * wait (or the queue is draining); then the job will never run and must not be waited on.
 * A job may be submitted again once its wait has returned. */
int insp_queue_submit(insp_queue *q, insp_job *job);

/* Blocks until the submitted job has run; returns what its fn returned (or
 * INSP_ERR_CONFLICT if it was cancelled). */
int insp_job_wait(insp_job *job);

/* Takes a job that has not started yet off the queue: INSP_OK, and the job never runs
 * (insp_job_wait then returns INSP_ERR_CONFLICT at once). INSP_ERR_CONFLICT if a worker
 * has already taken it: the caller must wait for it. */
int insp_job_cancel(insp_job *job);

/* Jobs waiting for a worker (the queue-depth gauge), and jobs running now. */
int insp_queue_depth(insp_queue *q);
int insp_queue_running(insp_queue *q);
/* Total submissions refused with INSP_ERR_BUSY since creation. */
uint64_t insp_queue_rejected(insp_queue *q);

/* Stops accepting jobs (submit returns INSP_ERR_BUSY), lets the workers finish every job
 * queued or running, then stops them (fini runs on each worker). Returns once they have
 * exited. Calling it again is a no-op. Call it from the thread that owns the queue (the
 * daemon's main thread), never from a job. */
void insp_queue_drain(insp_queue *q);

/* Drains (if not done yet) and frees. NULL is a harmless no-op. */
void insp_queue_free(insp_queue *q);

#endif
