/* inspectd: configuration, models, store, workers and HTTP wired together; SIGTERM drains. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/app.h"
#include "daemon/jobs.h"
#include "daemon/log.h"
#include "daemon/products.h"

#define INSPECTD_VERSION "0.1.0"

static char *read_text(const char *path, insp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        insp_error_set(err, INSP_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0, r;
    do {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, 4096, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Blocks SIGTERM/SIGINT in every thread (the workers inherit the mask) and waits for one. */
static int wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

static void app_free(insp_app *app)
{
    insp_http_stop(app->http, 0);
    insp_queue_free(app->queue);
    insp_registry_free(app->registry);
    insp_store_close(app->store);
    insp_auth_free(app->auth);
    insp_metrics_free(app->metrics);
    insp_models_free(app->models, app->n_models);
    insp_config_free(&app->cfg);
    pthread_mutex_destroy(&app->admin_lock);
}

static int fail(insp_app *app, const char *what, const insp_error *err)
{
    INSP_LOG_ERROR("startup_failed", "%s: %s", what, err->msg);
    fprintf(stderr, "inspectd: %s: %s\n", what, err->msg);
    app_free(app);
    return 1;
}

int main(int argc, char **argv)
{
    static insp_app app;
    insp_error err = {0};
    int action = INSP_CONFIG_RUN;
    pthread_mutex_init(&app.admin_lock, NULL);
    if (insp_config_defaults(&app.cfg) != INSP_OK)
        return 1;
    if (insp_config_parse_args(argc, argv, &app.cfg, &action, &err) != INSP_OK) {
        fprintf(stderr, "inspectd: %s\n", err.msg);
        insp_config_usage(stderr, "inspectd");
        insp_config_free(&app.cfg);
        return 2;
    }
    if (action == INSP_CONFIG_HELP) {
        insp_config_usage(stdout, "inspectd");
        insp_config_free(&app.cfg);
        return 0;
    }
    if (action == INSP_CONFIG_VERSION) {
        printf("inspectd %s\n", INSPECTD_VERSION);
        insp_config_free(&app.cfg);
        return 0;
    }
    if (insp_config_validate(&app.cfg, &err) != INSP_OK) {
        fprintf(stderr, "inspectd: %s\n", err.msg);
        insp_config_free(&app.cfg);
        return 2;
    }
    if (action == INSP_CONFIG_PRINT) {
        insp_config_print(stdout, &app.cfg);
        insp_config_free(&app.cfg);
        return 0;
    }
    insp_log_set_level(app.cfg.log_level);
    insp_config_log(&app.cfg);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (insp_metrics_create(&app.metrics) != INSP_OK || insp_registry_create(&app.registry) != INSP_OK) {
        insp_error_set(&err, INSP_ERR_NOMEM, "out of memory");
        return fail(&app, "startup", &err);
    }
    if (insp_auth_create(&app.cfg, &app.auth, &err) != INSP_OK)
        return fail(&app, "auth", &err);
    if (insp_models_load(&app.cfg, &app.models, &app.n_models, &err) != INSP_OK)
        return fail(&app, "models", &err);
    insp_queue_params qp = {
        .workers = app.cfg.workers,
        .queue_length = app.cfg.queue_length,
        .init = insp_jobs_worker_init,
        .fini = insp_jobs_worker_fini,
        .arg = &app,
    };
    if (insp_queue_create(&qp, &app.queue, &err) != INSP_OK)
        return fail(&app, "workers", &err);
    if (insp_store_open(app.cfg.state_dir, &app.store, &err) != INSP_OK)
        return fail(&app, "store", &err);
    insp_models_open_text_caches(app.models, app.n_models, app.store);

    char *cert = NULL, *key = NULL;
    if (app.cfg.tls_cert && app.cfg.tls_key) {
        cert = read_text(app.cfg.tls_cert, &err);
        key = cert ? read_text(app.cfg.tls_key, &err) : NULL;
        if (!cert || !key) {
            free(cert);
            return fail(&app, "tls", &err);
        }
    }
    insp_http_params hp = {
        .addr = app.cfg.listen_addr,
        .port = app.cfg.port,
        .connection_limit = app.cfg.connection_limit,
        .timeout_s = app.cfg.request_timeout_s,
        .max_body_bytes = app.cfg.max_body_bytes,
        .tls_cert_pem = cert,
        .tls_key_pem = key,
        .handler = insp_app_handle,
        .on_error = insp_app_http_error,
        .app = &app,
    };
    /* libmicrohttpd may refer to the PEM text while it runs: kept until exit. */
    int st = insp_http_start(&hp, &app.http, &err);
    if (st != INSP_OK) {
        free(cert);
        free(key);
        return fail(&app, "http", &err);
    }
    INSP_LOG_INFO("listening", "listening on %s://%s:%d", app.cfg.tls_cert ? "https" : "http",
                  app.cfg.listen_addr, insp_http_port(app.http));

    insp_products_load_all(&app);
    atomic_store(&app.ready, true);
    INSP_LOG_INFO("ready", "ready");

    int sig = wait_for_signal(&sigs);
    INSP_LOG_INFO("draining", "signal %d: finishing requests in flight", sig);
    atomic_store(&app.ready, false);
    insp_http_stop(app.http, 60);
    app.http = NULL;
    insp_queue_drain(app.queue);
    app_free(&app);
    free(cert);
    free(key);
    INSP_LOG_INFO("stopped", "stopped");
    return 0;
}
