/* Job bodies and the submit-and-wait wrapper around the inference queue. */
#include "daemon/jobs.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/feature_cache.h"
#include "daemon/log.h"

int insp_jobs_worker_init(void *arg, int index, void **ctx, insp_error *err)
{
    insp_app *app = arg;
    insp_worker_set *set = calloc(1, sizeof *set);
    if (!set)
        return insp_error_set(err, INSP_ERR_NOMEM, "worker %d: out of memory", index);
    set->w = calloc((size_t)app->n_models, sizeof *set->w);
    if (!set->w) {
        free(set);
        return insp_error_set(err, INSP_ERR_NOMEM, "worker %d: out of memory", index);
    }
    set->n = app->n_models;
    for (int i = 0; i < app->n_models; i++) {
        int st = insp_worker_create(app->models[i].wc, app->cfg.threads, &set->w[i], err);
        if (st != INSP_OK) {
            insp_jobs_worker_fini(app, index, set);
            return insp_error_prefix(err, "worker %d, model %s: ", index, app->models[i].name);
        }
    }
    *ctx = set;
    return INSP_OK;
}

void insp_jobs_worker_fini(void *arg, int index, void *ctx)
{
    (void)arg;
    (void)index;
    insp_worker_set *set = ctx;
    if (!set)
        return;
    for (int i = 0; i < set->n; i++)
        insp_worker_free(set->w[i]);
    free(set->w);
    free(set);
}

int insp_app_model_index(const insp_app *app, const insp_model *m)
{
    return (int)(m - app->models);
}

int insp_app_run_job(insp_app *app, insp_job_fn fn, void *arg, int wait_if_busy,
                     double *queue_ms)
{
    insp_job job;
    for (;;) {
        insp_job_init(&job, fn, arg);
        int st = insp_queue_submit(app->queue, &job);
        if (st == INSP_OK)
            break;
        if (st != INSP_ERR_BUSY || !wait_if_busy) {
            if (st == INSP_ERR_BUSY)
                insp_metrics_count_rejected(app->metrics);
            return st;
        }
        struct timespec ms20 = {0, 20 * 1000 * 1000};
        nanosleep(&ms20, NULL);
    }
    int st = insp_job_wait(&job);
    if (queue_ms)
        *queue_ms = (double)(job.started_ns - job.queued_ns) / 1e6;
    return st;
}

/* ---- text -------------------------------------------------------------------------------- */

typedef struct text_job {
    insp_app *app;
    const insp_model *m;
    const insp_prompts *prompts;
    float *t;
    int n_cached;
    insp_error *err;
} text_job;

static bool cache_get(void *ctx, const uint8_t key[32], float *emb)
{
    return insp_text_cache_get(ctx, key, emb);
}

static void cache_put(void *ctx, int n, const uint8_t (*keys)[32], const float *emb)
{
    insp_error err = {0};
    if (insp_text_cache_put(ctx, n, keys, emb, &err) != INSP_OK)
        INSP_LOG_WARN("text_cache", "cannot keep %d prompt embeddings: %s", n, err.msg);
}

static int run_text(void *ctx, void *arg)
{
    insp_worker_set *set = ctx;
    text_job *j = arg;
    insp_worker *w = set->w[insp_app_model_index(j->app, j->m)];
    insp_prompt_cache cache = {j->m->text_cache, cache_get, cache_put};
    return insp_winclip_text_cached(j->m->wc, j->m->tok, insp_worker_clip_ws(w),
                                    insp_worker_pool(w), j->prompts,
                                    j->m->text_cache ? &cache : NULL, j->t, &j->n_cached,
                                    j->err);
}

int insp_jobs_text(insp_app *app, const insp_model *m, const insp_prompts *prompts, float *t,
                   int *n_cached, int wait_if_busy, insp_error *err)
{
    text_job j = {app, m, prompts, t, 0, err};
    int st = insp_app_run_job(app, run_text, &j, wait_if_busy, NULL);
    if (st == INSP_ERR_BUSY)
        insp_error_set(err, st, "the inference queue is full");
    *n_cached = j.n_cached;
    return st;
}

/* ---- reference features -------------------------------------------------------------------- */

typedef struct ref_job {
    insp_app *app;
    const insp_model *m;
    const void *data;
    size_t len;
    void *packed;
    size_t packed_len;
    insp_error *err;
} ref_job;

static int run_reference(void *ctx, void *arg)
{
    insp_worker_set *set = ctx;
    ref_job *j = arg;
    insp_worker *w = set->w[insp_app_model_index(j->app, j->m)];
    const insp_features *f = NULL;
    int st = insp_worker_reference(w, j->data, j->len, j->app->cfg.max_pixels, &f, j->err);
    if (st != INSP_OK)
        return st;
    st = insp_features_pack(j->m->wc, f, &j->packed, &j->packed_len);
    if (st != INSP_OK)
        insp_error_set(j->err, st, "out of memory");
    return st;
}

int insp_jobs_reference(insp_app *app, const insp_model *m, const void *data, size_t len,
                        void **packed, size_t *packed_len, int wait_if_busy, insp_error *err)
{
    ref_job j = {.app = app, .m = m, .data = data, .len = len, .err = err};
    int st = insp_app_run_job(app, run_reference, &j, wait_if_busy, NULL);
    if (st == INSP_ERR_BUSY)
        insp_error_set(err, st, "the inference queue is full");
    *packed = j.packed;
    *packed_len = j.packed_len;
    return st;
}

/* ---- leave-one-out --------------------------------------------------------------------------- */

typedef struct loo_job {
    insp_app *app;
    const insp_model *m;
    const float *t;
    const insp_memory *mem;
    float *scores;
    float *suggested;
} loo_job;

static int run_loo(void *ctx, void *arg)
{
    insp_worker_set *set = ctx;
    loo_job *j = arg;
    insp_worker *w = set->w[insp_app_model_index(j->app, j->m)];
    return insp_memory_loo_scores(j->m->wc, insp_worker_score_ws(w), insp_worker_pool(w), j->t,
                                  j->mem, j->scores, j->suggested);
}

int insp_jobs_loo(insp_app *app, const insp_model *m, const float *t, const insp_memory *mem,
                  float *scores, float *suggested, int wait_if_busy)
{
    loo_job j = {app, m, t, mem, scores, suggested};
    return insp_app_run_job(app, run_loo, &j, wait_if_busy, NULL);
}

/* ---- inspection ------------------------------------------------------------------------------- */

typedef struct inspect_job {
    insp_app *app;
    const insp_model *m;
    const void *data;
    size_t len;
    const float *t;
    const insp_memory *mem;
    const insp_inspect_params *params;
    insp_inspection *out;
    insp_error *err;
} inspect_job;

static int run_inspect(void *ctx, void *arg)
{
    insp_worker_set *set = ctx;
    inspect_job *j = arg;
    insp_worker *w = set->w[insp_app_model_index(j->app, j->m)];
    return insp_inspect_encoded(w, j->data, j->len, j->t, j->mem, j->params, j->out, j->err);
}

int insp_jobs_inspect(insp_app *app, const insp_model *m, const void *data, size_t len,
                      const float *t, const insp_memory *mem, const insp_inspect_params *params,
                      insp_inspection *out, double *queue_ms, insp_error *err)
{
    inspect_job j = {app, m, data, len, t, mem, params, out, err};
    int st = insp_app_run_job(app, run_inspect, &j, 0, queue_ms);
    if (st == INSP_ERR_BUSY)
        insp_error_set(err, st, "the inference queue is full");
    return st;
}
