/* The work that runs on inference workers: an HTTP thread never runs a forward pass itself. */
#ifndef INSPD_DAEMON_JOBS_H
#define INSPD_DAEMON_JOBS_H

#include "daemon/app.h"
#include "inspectd/inspector.h"

/* Queue worker context: creates one engine worker per model on the worker thread. */
int insp_jobs_worker_init(void *app, int index, void **ctx, insp_error *err);
void insp_jobs_worker_fini(void *app, int index, void *ctx);

/* Text embeddings t[2, D] of a prompt set, each prompt from the model's text cache when it
 * holds it (*n_cached of them), the rest encoded and added to it. */
int insp_jobs_text(insp_app *app, const insp_model *m, const insp_prompts *prompts, float *t,
                   int *n_cached, int wait_if_busy, insp_error *err);

/* Decodes one reference image and returns its packed features (feature_cache.h format). */
int insp_jobs_reference(insp_app *app, const insp_model *m, const void *data, size_t len,
                        void **packed, size_t *packed_len, int wait_if_busy, insp_error *err);

/* Leave-one-out scores of a memory (≥ 2 shots) and the suggested threshold. */
int insp_jobs_loo(insp_app *app, const insp_model *m, const float *t, const insp_memory *mem,
                  float *scores, float *suggested, int wait_if_busy);

/* One inspection of an encoded image. */
int insp_jobs_inspect(insp_app *app, const insp_model *m, const void *data, size_t len,
                      const float *t, const insp_memory *mem, const insp_inspect_params *params,
                      insp_inspection *out, double *queue_ms, insp_error *err);

#endif
