/* Tests of the bounded job queue: every job runs exactly once on a worker with that
 * worker's context, a full queue refuses at once, drain finishes what was accepted,
 * cancel, init failure, and a stress run with several submitting threads. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "daemon/queue.h"
#include "harness.h"

/* A queue bug that deadlocks fails the binary instead of hanging the suite. */
__attribute__((constructor)) static void watchdog(void)
{
    alarm(120);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- worker contexts ---- */

typedef struct wctx {
    int index;
    pthread_t thread;
    atomic_int in_use; /* a context must never run two jobs at once */
    atomic_int overlap;
    atomic_int jobs;
} wctx;

typedef struct pool_state {
    wctx ctx[8];
    atomic_int inits, finis, fail_index;
    atomic_int fini_wrong_thread;
} pool_state;

static int w_init(void *arg, int index, void **ctx, insp_error *err)
{
    pool_state *ps = arg;
    atomic_fetch_add(&ps->inits, 1);
    if (index == atomic_load(&ps->fail_index))
        return insp_error_set(err, INSP_ERR_NOT_FOUND, "model 'x' not found");
    wctx *c = &ps->ctx[index];
    c->index = index;
    c->thread = pthread_self();
    *ctx = c;
    return INSP_OK;
}

static void w_fini(void *arg, int index, void *ctx)
{
    pool_state *ps = arg;
    wctx *c = ctx;
    if (c != &ps->ctx[index] || !pthread_equal(c->thread, pthread_self()))
        atomic_fetch_add(&ps->fini_wrong_thread, 1);
    atomic_fetch_add(&ps->finis, 1);
}

static insp_queue *make_queue(pool_state *ps, int workers, int queue_length)
{
    memset(ps, 0, sizeof *ps);
    atomic_store(&ps->fail_index, -1);
    insp_queue_params p = {workers, queue_length, w_init, w_fini, ps};
    insp_queue *q = NULL;
    insp_error e;
    int rc = insp_queue_create(&p, &q, &e);
    CHECK_MSG(rc == INSP_OK, "create: %s", e.msg);
    return q;
}

/* ---- jobs ---- */

typedef struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    int open;
} gate;

static gate the_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void gate_set(int open)
{
    pthread_mutex_lock(&the_gate.m);
    the_gate.open = open;
    pthread_cond_broadcast(&the_gate.c);
    pthread_mutex_unlock(&the_gate.m);
}

typedef struct job_data {
    atomic_int runs;
    int blocks; /* wait for the gate */
    int result;
    int ran_on; /* worker index */
    int ctx_thread_ok;
} job_data;

static int job_fn(void *ctx, void *arg)
{
    wctx *c = ctx;
    job_data *d = arg;
    if (atomic_fetch_add(&c->in_use, 1) != 0)
        atomic_fetch_add(&c->overlap, 1);
    atomic_fetch_add(&d->runs, 1);
    atomic_fetch_add(&c->jobs, 1);
    d->ran_on = c->index;
    d->ctx_thread_ok = pthread_equal(c->thread, pthread_self());
    if (d->blocks) {
        pthread_mutex_lock(&the_gate.m);
        while (!the_gate.open)
            pthread_cond_wait(&the_gate.c, &the_gate.m);
        pthread_mutex_unlock(&the_gate.m);
    }
    atomic_fetch_sub(&c->in_use, 1);
    return d->result;
}

static void wait_running(insp_queue *q, int n)
{
    double t0 = now_s();
    while (insp_queue_running(q) < n && now_s() - t0 < 10)
        usleep(1000);
    CHECK_EQ_INT(insp_queue_running(q), n);
}

static void all_jobs_run_once(void)
{
    pool_state ps;
    insp_queue *q = make_queue(&ps, 3, 64);
    REQUIRE(q);
    CHECK_EQ_INT(atomic_load(&ps.inits), 3);
    enum { N = 50 };
    static job_data d[N];
    static insp_job jobs[N];
    for (int i = 0; i < N; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].result = i % 5 == 0 ? INSP_ERR_NOT_FOUND : INSP_OK;
        insp_job_init(&jobs[i], job_fn, &d[i]);
        CHECK_OK(insp_queue_submit(q, &jobs[i]));
    }
    int ran_per_worker[3] = {0};
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(insp_job_wait(&jobs[i]), d[i].result);
        CHECK_EQ_INT(atomic_load(&d[i].runs), 1);
        CHECK(d[i].ctx_thread_ok);
        CHECK(jobs[i].queued_ns <= jobs[i].started_ns && jobs[i].started_ns <= jobs[i].finished_ns);
        if (d[i].ran_on >= 0 && d[i].ran_on < 3)
            ran_per_worker[d[i].ran_on]++;
    }
    CHECK_EQ_INT(ran_per_worker[0] + ran_per_worker[1] + ran_per_worker[2], N);
    CHECK_EQ_INT(insp_queue_depth(q), 0);
    insp_queue_free(q);
    CHECK_EQ_INT(atomic_load(&ps.finis), 3);
    CHECK_EQ_INT(atomic_load(&ps.fini_wrong_thread), 0);
    for (int w = 0; w < 3; w++)
        CHECK_EQ_INT(atomic_load(&ps.ctx[w].overlap), 0);
    insp_queue_free(NULL);
}

static void full_queue_refuses_at_once(void)
{
    pool_state ps;
    gate_set(0);
    insp_queue *q = make_queue(&ps, 1, 2);
    REQUIRE(q);
    job_data d[4] = {{0}};
    insp_job jobs[4];
    d[0].blocks = 1;
    for (int i = 0; i < 4; i++)
        insp_job_init(&jobs[i], job_fn, &d[i]);
    CHECK_OK(insp_queue_submit(q, &jobs[0]));
    wait_running(q, 1);
    CHECK_OK(insp_queue_submit(q, &jobs[1]));
    CHECK_OK(insp_queue_submit(q, &jobs[2]));
    CHECK_EQ_INT(insp_queue_depth(q), 2);
    double t0 = now_s();
    int rc3 = insp_queue_submit(q, &jobs[3]);
    double dt = now_s() - t0;
    CHECK_EQ_INT(rc3, INSP_ERR_BUSY);
    CHECK_MSG(dt < 0.05, "a refused submit took %.3f s", dt);
    CHECK_EQ_INT(insp_queue_rejected(q), 1);
    gate_set(1);
    if (rc3 == INSP_OK)
        insp_job_wait(&jobs[3]);
    else
        CHECK_EQ_INT(insp_job_wait(&jobs[3]), INSP_ERR_INVALID); /* never accepted */
    for (int i = 0; i < 3; i++)
        CHECK_OK(insp_job_wait(&jobs[i]));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(atomic_load(&d[i].runs), 1);
    CHECK_EQ_INT(atomic_load(&d[3].runs), 0);
    insp_queue_free(q);
}

static void zero_length_queue_takes_only_idle_workers(void)
{
    pool_state ps;
    gate_set(0);
    insp_queue *q = make_queue(&ps, 2, 0);
    REQUIRE(q);
    job_data d[3] = {{0}};
    insp_job jobs[3];
    for (int i = 0; i < 3; i++) {
        d[i].blocks = 1;
        insp_job_init(&jobs[i], job_fn, &d[i]);
    }
    CHECK_OK(insp_queue_submit(q, &jobs[0]));
    CHECK_OK(insp_queue_submit(q, &jobs[1]));
    int rc2 = insp_queue_submit(q, &jobs[2]);
    CHECK_EQ_INT(rc2, INSP_ERR_BUSY);
    wait_running(q, 2);
    if (rc2 != INSP_OK) {
        rc2 = insp_queue_submit(q, &jobs[2]);
        CHECK_EQ_INT(rc2, INSP_ERR_BUSY);
    }
    gate_set(1);
    CHECK_OK(insp_job_wait(&jobs[0]));
    CHECK_OK(insp_job_wait(&jobs[1]));
    if (rc2 == INSP_OK)
        insp_job_wait(&jobs[2]);
    /* once idle again, a worker takes a job */
    double t0 = now_s();
    int rc;
    while ((rc = insp_queue_submit(q, &jobs[2])) == INSP_ERR_BUSY && now_s() - t0 < 10)
        usleep(1000);
    CHECK_OK(rc);
    CHECK_OK(insp_job_wait(&jobs[2]));
    insp_queue_free(q);
}

typedef struct drain_arg {
    insp_queue *q;
    atomic_int done;
} drain_arg;

static void *drainer(void *p)
{
    drain_arg *a = p;
    insp_queue_drain(a->q);
    atomic_store(&a->done, 1);
    return NULL;
}

static void drain_finishes_accepted_jobs(void)
{
    pool_state ps;
    gate_set(0);
    insp_queue *q = make_queue(&ps, 2, 100);
    REQUIRE(q);
    enum { N = 60 };
    static job_data d[N];
    static insp_job jobs[N];
    int accepted = 0;
    for (int i = 0; i < 5; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].blocks = 1;
        insp_job_init(&jobs[i], job_fn, &d[i]);
        CHECK_OK(insp_queue_submit(q, &jobs[i]));
        accepted++;
    }
    wait_running(q, 2);
    drain_arg a = {q, 0};
    pthread_t th;
    pthread_create(&th, NULL, drainer, &a);
    /* Submissions are accepted until drain has begun, then refused. */
    double t0 = now_s();
    int refused = 0;
    while (accepted < N && now_s() - t0 < 10) {
        memset(&d[accepted], 0, sizeof d[accepted]);
        insp_job_init(&jobs[accepted], job_fn, &d[accepted]);
        if (insp_queue_submit(q, &jobs[accepted]) == INSP_ERR_BUSY) {
            refused = 1;
            break;
        }
        accepted++;
        usleep(2000);
    }
    CHECK(refused);
    usleep(20000);
    CHECK_EQ_INT(atomic_load(&a.done), 0); /* still waiting for the gated jobs */
    CHECK_EQ_INT(atomic_load(&ps.finis), 0);
    gate_set(1);
    pthread_join(th, NULL);
    CHECK_EQ_INT(atomic_load(&a.done), 1);
    for (int i = 0; i < accepted; i++) {
        CHECK_OK(insp_job_wait(&jobs[i]));
        CHECK_EQ_INT(atomic_load(&d[i].runs), 1);
    }
    CHECK_EQ_INT(atomic_load(&ps.finis), 2);
    CHECK_EQ_INT(insp_queue_submit(q, &jobs[0]), INSP_ERR_BUSY);
    insp_queue_drain(q); /* again: no-op */
    insp_queue_free(q);
    CHECK_EQ_INT(atomic_load(&ps.finis), 2);
}

static void cancel_waiting_job(void)
{
    pool_state ps;
    gate_set(0);
    insp_queue *q = make_queue(&ps, 1, 4);
    REQUIRE(q);
    job_data d[3] = {{0}};
    insp_job jobs[3];
    d[0].blocks = 1;
    for (int i = 0; i < 3; i++)
        insp_job_init(&jobs[i], job_fn, &d[i]);
    CHECK_OK(insp_queue_submit(q, &jobs[0]));
    wait_running(q, 1);
    CHECK_OK(insp_queue_submit(q, &jobs[1]));
    CHECK_OK(insp_queue_submit(q, &jobs[2]));
    CHECK_OK(insp_job_cancel(&jobs[1]));
    CHECK_EQ_INT(insp_queue_depth(q), 1);
    CHECK_EQ_INT(insp_job_cancel(&jobs[1]), INSP_ERR_CONFLICT);
    CHECK_EQ_INT(insp_job_cancel(&jobs[0]), INSP_ERR_CONFLICT); /* running */
    /* job 1 is behind the gated job 0: its wait returns at once only if it was cancelled */
    double t0 = now_s();
    int rc1 = insp_job_wait(&jobs[1]);
    CHECK_EQ_INT(rc1, INSP_ERR_CONFLICT);
    CHECK(now_s() - t0 < 1);
    gate_set(1);
    CHECK_OK(insp_job_wait(&jobs[0]));
    CHECK_OK(insp_job_wait(&jobs[2]));
    CHECK_EQ_INT(atomic_load(&d[1].runs), 0);
    CHECK_EQ_INT(atomic_load(&d[2].runs), 1);
    insp_queue_free(q);
}

static void init_failure(void)
{
    pool_state ps;
    memset(&ps, 0, sizeof ps);
    atomic_store(&ps.fail_index, 2);
    insp_queue_params p = {4, 8, w_init, w_fini, &ps};
    insp_queue *q = (insp_queue *)&ps; /* must be reset to NULL */
    insp_error e;
    insp_error_clear(&e);
    CHECK_EQ_INT(insp_queue_create(&p, &q, &e), INSP_ERR_NOT_FOUND);
    CHECK(q == NULL);
    CHECK_MSG(strstr(e.msg, "inference worker 2") && strstr(e.msg, "model 'x' not found"),
              "msg: %s", e.msg);
    CHECK_EQ_INT(atomic_load(&ps.inits), 4);
    CHECK_EQ_INT(atomic_load(&ps.finis), 3);
    insp_queue_params bad = {0, 8, NULL, NULL, NULL};
    CHECK_EQ_INT(insp_queue_create(&bad, &q, &e), INSP_ERR_INVALID);
    bad.workers = 1;
    bad.queue_length = -1;
    CHECK_EQ_INT(insp_queue_create(&bad, &q, &e), INSP_ERR_INVALID);
}

/* ---- stress ---- */

#define SUBMITTERS 6
#define PER_SUBMITTER 300

typedef struct stress_arg {
    insp_queue *q;
    job_data d[PER_SUBMITTER];
    int busy;
    int wrong;
} stress_arg;

static void *submitter(void *p)
{
    stress_arg *a = p;
    for (int i = 0; i < PER_SUBMITTER; i++) {
        insp_job job;
        a->d[i].result = (i & 1) ? INSP_ERR_IO : INSP_OK;
        insp_job_init(&job, job_fn, &a->d[i]);
        while (insp_queue_submit(a->q, &job) == INSP_ERR_BUSY) {
            a->busy++;
            sched_yield();
        }
        if (insp_job_wait(&job) != a->d[i].result)
            a->wrong++;
    }
    return NULL;
}

static void stress_many_submitters(void)
{
    pool_state ps;
    insp_queue *q = make_queue(&ps, 2, 3);
    REQUIRE(q);
    static stress_arg args[SUBMITTERS];
    pthread_t th[SUBMITTERS];
    memset(args, 0, sizeof args);
    for (int t = 0; t < SUBMITTERS; t++) {
        args[t].q = q;
        pthread_create(&th[t], NULL, submitter, &args[t]);
    }
    for (int t = 0; t < SUBMITTERS; t++)
        pthread_join(th[t], NULL);
    int not_once = 0, wrong = 0, busy = 0;
    for (int t = 0; t < SUBMITTERS; t++) {
        for (int i = 0; i < PER_SUBMITTER; i++)
            not_once += atomic_load(&args[t].d[i].runs) != 1;
        wrong += args[t].wrong;
        busy += args[t].busy;
    }
    CHECK_EQ_INT(not_once, 0);
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(atomic_load(&ps.ctx[0].jobs) + atomic_load(&ps.ctx[1].jobs),
                 SUBMITTERS * PER_SUBMITTER);
    CHECK_EQ_INT(atomic_load(&ps.ctx[0].overlap) + atomic_load(&ps.ctx[1].overlap), 0);
    CHECK_EQ_INT((long long)insp_queue_rejected(q), busy);
    CHECK_EQ_INT(insp_queue_depth(q), 0);
    CHECK_EQ_INT(insp_queue_running(q), 0);
    printf("  stress: %d jobs, %d refused submissions retried\n", SUBMITTERS * PER_SUBMITTER,
           busy);
    insp_queue_free(q);
}

static void no_init_callbacks(void)
{
    insp_queue_params p = {1, 1, NULL, NULL, NULL};
    insp_queue *q = NULL;
    CHECK_OK(insp_queue_create(&p, &q, NULL));
    REQUIRE(q);
    insp_queue_free(q);
}

TEST_MAIN(T(all_jobs_run_once), T(full_queue_refuses_at_once),
          T(zero_length_queue_takes_only_idle_workers), T(drain_finishes_accepted_jobs),
          T(cancel_waiting_job), T(init_failure), T(stress_many_submitters),
          T(no_init_callbacks))
