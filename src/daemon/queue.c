/* The bounded job queue and its inference workers (see queue.h). One mutex guards the list
 * and the counters; submitters sleep on one condition variable that every finished job
 * broadcasts, which costs nothing at the few completions per second an inference allows. */
#include "daemon/queue.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_CANCELLED };

typedef struct worker_slot {
    struct insp_queue *q;
    int index;
} worker_slot;

struct insp_queue {
    pthread_mutex_t lock;
    pthread_cond_t work; /* workers: a job arrived, or start/stop */
    pthread_cond_t done; /* submitters and drain: a job finished or left the queue */
    insp_job *head, *tail;
    int pending; /* jobs in the list */
    int running; /* jobs a worker is running */
    int idle;    /* workers not running a job (each takes the next queued one) */
    int capacity;
    int n_workers;
    int go;       /* creation finished: start taking jobs (or exit, if stopping) */
    int draining; /* refuse new jobs */
    int stopping; /* workers exit once the list is empty */
    int joined;
    int inits_done;
    int init_failed;
    insp_error init_err;
    uint64_t rejected;
    insp_queue_params params;
    pthread_t *threads;
    worker_slot *slots;
    int n_threads; /* threads actually started */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void insp_job_init(insp_job *job, insp_job_fn fn, void *arg)
{
    memset(job, 0, sizeof *job);
    job->fn = fn;
    job->arg = arg;
    job->state = JOB_IDLE;
}

static void *worker_main(void *p)
{
    worker_slot *slot = p;
    insp_queue *q = slot->q;
    void *ctx = NULL;
    insp_error e;
    insp_error_clear(&e);
    int rc = q->params.init ? q->params.init(q->params.arg, slot->index, &ctx, &e) : INSP_OK;

    pthread_mutex_lock(&q->lock);
    if (rc != INSP_OK && !q->init_failed) {
        q->init_failed = 1;
        insp_error_set(&q->init_err, rc, "inference worker %d: %s", slot->index,
                       e.msg[0] ? e.msg : insp_strerror(rc));
    }
    q->inits_done++;
    if (rc == INSP_OK)
        q->idle++; /* counted from now on, so a queue accepts jobs as soon as create returns */
    pthread_cond_broadcast(&q->done);
    while (!q->go)
        pthread_cond_wait(&q->work, &q->lock);
    if (rc != INSP_OK) {
        pthread_mutex_unlock(&q->lock);
        return NULL;
    }
    for (;;) {
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->work, &q->lock);
        insp_job *job = q->head;
        if (!job)
            break; /* stopping, and nothing left */
        q->head = job->next;
        if (!q->head)
            q->tail = NULL;
        job->next = NULL;
        q->pending--;
        q->idle--;
        q->running++;
        job->state = JOB_RUNNING;
        job->started_ns = now_ns();
        pthread_mutex_unlock(&q->lock);

        int status = job->fn(ctx, job->arg);

        pthread_mutex_lock(&q->lock);
        job->status = status;
        job->finished_ns = now_ns();
        job->state = JOB_DONE;
        q->running--;
        q->idle++;
        pthread_cond_broadcast(&q->done);
    }
    pthread_mutex_unlock(&q->lock);
    if (q->params.fini)
        q->params.fini(q->params.arg, slot->index, ctx);
    return NULL;
}

/* Tells every started worker to leave (they finish what is queued first) and joins them. */
static void stop_and_join(insp_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    q->go = 1;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n_threads; i++)
        pthread_join(q->threads[i], NULL);
    q->joined = 1;
}

static void destroy(insp_queue *q)
{
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q->slots);
    free(q);
}

int insp_queue_create(const insp_queue_params *params, insp_queue **out, insp_error *err)
{
    *out = NULL;
    if (!params || params->workers < 1 || params->queue_length < 0)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "job queue: need at least 1 worker and a queue length >= 0");
    insp_queue *q = calloc(1, sizeof *q);
    if (!q)
        return insp_error_set(err, INSP_ERR_NOMEM, "job queue: out of memory");
    q->params = *params;
    q->capacity = params->queue_length;
    q->n_workers = params->workers;
    insp_error_clear(&q->init_err);
    q->threads = calloc((size_t)params->workers, sizeof *q->threads);
    q->slots = calloc((size_t)params->workers, sizeof *q->slots);
    if (!q->threads || !q->slots) {
        free(q->threads);
        free(q->slots);
        free(q);
        return insp_error_set(err, INSP_ERR_NOMEM, "job queue: out of memory");
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->done, NULL);

    /* Workers never take signals: the daemon's main thread handles SIGTERM/SIGINT. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int create_rc = 0;
    for (int i = 0; i < params->workers; i++) {
        q->slots[i].q = q;
        q->slots[i].index = i;
        create_rc = pthread_create(&q->threads[i], NULL, worker_main, &q->slots[i]);
        if (create_rc != 0)
            break;
        q->n_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    pthread_mutex_lock(&q->lock);
    while (q->inits_done < q->n_threads)
        pthread_cond_wait(&q->done, &q->lock);
    int failed = q->init_failed || create_rc != 0;
    if (!failed) {
        q->go = 1;
        pthread_cond_broadcast(&q->work);
    }
    pthread_mutex_unlock(&q->lock);
    if (failed) {
        int status;
        if (q->init_failed) {
            status = q->init_err.status;
            if (err)
                *err = q->init_err;
        } else {
            status = insp_error_set(err, INSP_ERR_NOMEM,
                                    "job queue: cannot start inference worker %d: %s",
                                    q->n_threads, strerror(create_rc));
        }
        stop_and_join(q);
        destroy(q);
        return status;
    }
    *out = q;
    return INSP_OK;
}

int insp_queue_submit(insp_queue *q, insp_job *job)
{
    pthread_mutex_lock(&q->lock);
    if (q->draining || q->pending >= q->capacity + q->idle) {
        q->rejected++;
        pthread_mutex_unlock(&q->lock);
        return INSP_ERR_BUSY;
    }
    job->queue = q;
    job->next = NULL;
    job->state = JOB_QUEUED;
    job->status = INSP_OK;
    job->queued_ns = now_ns();
    job->started_ns = job->finished_ns = 0;
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    q->pending++;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->lock);
    return INSP_OK;
}

int insp_job_wait(insp_job *job)
{
    insp_queue *q = job->queue;
    if (!q)
        return INSP_ERR_INVALID; /* never accepted */
    pthread_mutex_lock(&q->lock);
    while (job->state == JOB_QUEUED || job->state == JOB_RUNNING)
        pthread_cond_wait(&q->done, &q->lock);
    int status = job->status;
    pthread_mutex_unlock(&q->lock);
    return status;
}

int insp_job_cancel(insp_job *job)
{
    insp_queue *q = job->queue;
    if (!q)
        return INSP_ERR_CONFLICT;
    pthread_mutex_lock(&q->lock);
    int rc = INSP_ERR_CONFLICT;
    if (job->state == JOB_QUEUED) {
        insp_job *prev = NULL;
        for (insp_job *j = q->head; j; prev = j, j = j->next) {
            if (j != job)
                continue;
            if (prev)
                prev->next = j->next;
            else
                q->head = j->next;
            if (q->tail == j)
                q->tail = prev;
            break;
        }
        job->next = NULL;
        q->pending--;
        job->state = JOB_CANCELLED;
        job->status = INSP_ERR_CONFLICT;
        pthread_cond_broadcast(&q->done);
        rc = INSP_OK;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int insp_queue_depth(insp_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->pending;
    pthread_mutex_unlock(&q->lock);
    return n;
}

int insp_queue_running(insp_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->running;
    pthread_mutex_unlock(&q->lock);
    return n;
}

uint64_t insp_queue_rejected(insp_queue *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t n = q->rejected;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void insp_queue_drain(insp_queue *q)
{
    if (!q || q->joined)
        return;
    pthread_mutex_lock(&q->lock);
    q->draining = 1;
    while (q->pending > 0 || q->running > 0)
        pthread_cond_wait(&q->done, &q->lock);
    pthread_mutex_unlock(&q->lock);
    stop_and_join(q);
}

void insp_queue_free(insp_queue *q)
{
    if (!q)
        return;
    insp_queue_drain(q);
    destroy(q);
}
