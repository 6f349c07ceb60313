/* The daemon's state, shared by every HTTP thread: configuration, models, the product store and
 * registry, the inference queue, metrics and auth. */
#ifndef INSPD_DAEMON_APP_H
#define INSPD_DAEMON_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include "daemon/auth.h"
#include "daemon/config.h"
#include "daemon/metrics.h"
#include "daemon/models.h"
#include "daemon/queue.h"
#include "daemon/registry.h"
#include "inspectd/inspector.h"
#include "http/server.h"
#include "store/store.h"

typedef struct insp_app {
    insp_config cfg;
    insp_model *models;
    int n_models;
    insp_store *store;
    insp_registry *registry;
    insp_queue *queue;
    insp_metrics *metrics;
    insp_auth *auth;
    insp_http_server *http;
    pthread_mutex_t admin_lock; /* serializes changes to products (rare; inspections don't take it) */
    atomic_bool ready;
    int products_failed; /* products in the store that could not be loaded at start */
} insp_app;

/* What an inference worker holds: one engine worker per model. */
typedef struct insp_worker_set {
    insp_worker **w; /* [n_models] */
    int n;
} insp_worker_set;

/* Runs fn(worker_set, arg) on an inference worker and waits for it. INSP_ERR_BUSY at once when
 * the queue is full, unless wait_if_busy (start-up work that must not be refused). */
int insp_app_run_job(insp_app *app, insp_job_fn fn, void *arg, int wait_if_busy,
                     double *queue_ms);

/* Index of model m in app->models. */
int insp_app_model_index(const insp_app *app, const insp_model *m);

/* The HTTP entry point (routes.c). */
void insp_app_handle(void *app, const insp_http_request *req, insp_http_response *resp);
void insp_app_http_error(void *app, const insp_http_request *req, int status,
                         const char *message, insp_http_response *resp);

#endif
