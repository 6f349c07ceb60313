/* Operational routes: liveness, readiness, Prometheus metrics, loaded models. */
#include <stdlib.h>
#include <string.h>

#include "daemon/handlers.h"
#include "daemon/respond.h"

void insp_h_healthz(insp_app *app, const insp_http_request *req, const char *id,
                    insp_http_response *resp)
{
    (void)app;
    (void)req;
    (void)id;
    insp_respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void insp_h_readyz(insp_app *app, const insp_http_request *req, const char *id,
                   insp_http_response *resp)
{
    (void)req;
    (void)id;
    if (!atomic_load(&app->ready)) {
        insp_respond_error(resp, 503, "not_ready", "loading models and products");
        return;
    }
    int np, nr;
    insp_registry_counts(app->registry, &np, &nr, NULL);
    insp_respond_json(resp, 200,
                      json_pack("{s:s, s:i, s:i, s:i, s:i}", "status", "ready", "models",
                                app->n_models, "products", np, "references", nr,
                                "products_failed", app->products_failed));
}

void insp_h_metrics(insp_app *app, const insp_http_request *req, const char *id,
                    insp_http_response *resp)
{
    (void)req;
    (void)id;
    int np, nr;
    long long bytes;
    insp_registry_counts(app->registry, &np, &nr, &bytes);
    insp_metrics_set_gauge(app->metrics, INSP_GAUGE_PRODUCTS, np);
    insp_metrics_set_gauge(app->metrics, INSP_GAUGE_REFERENCES, nr);
    insp_metrics_set_gauge(app->metrics, INSP_GAUGE_REFERENCE_BYTES, (double)bytes);
    insp_metrics_set_gauge(app->metrics, INSP_GAUGE_REFERENCE_LIMIT,
                           (double)app->cfg.max_reference_memory);
    insp_metrics_set_gauge(app->metrics, INSP_GAUGE_QUEUE_DEPTH, insp_queue_depth(app->queue));
    insp_metrics_set_gauge(app->metrics, INSP_GAUGE_QUEUE_CAPACITY, app->cfg.queue_length);
    insp_metrics_set_gauge(app->metrics, INSP_GAUGE_WORKERS_BUSY,
                           insp_queue_running(app->queue));
    char *text = NULL;
    size_t len = 0;
    if (insp_metrics_render(app->metrics, &text, &len) != INSP_OK) {
        insp_respond_error(resp, 503, "busy", "out of memory");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
    resp->body = text;
    resp->body_len = len;
}

void insp_h_models(insp_app *app, const insp_http_request *req, const char *id,
                   insp_http_response *resp)
{
    (void)req;
    (void)id;
    json_t *list = json_array();
    for (int i = 0; i < app->n_models; i++) {
        const insp_model *m = &app->models[i];
        const insp_clip_config *c = insp_clip_get_config(m->clip);
        json_t *o = json_pack(
            "{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:s, s:s, s:s, s:s, s:b}",
            "name", m->name, "architecture", m->architecture, "image_size",
            c->vision.image_size, "patch_size", c->vision.patch_size, "width", c->vision.width,
            "layers", c->vision.layers, "heads", c->vision.heads, "embed_dim", c->embed_dim,
            "text_width", c->text.width, "text_layers", c->text.layers, "quick_gelu",
            c->quick_gelu, "dtype", insp_clip_file_dtype(m->clip), "compute_dtype", "F32",
            "checksum", insp_clip_checksum(m->clip), "path", m->path, "test_model",
            m->test_model);
        json_object_set_new(o, "warning",
                            m->test_model
                                ? json_string("tiny random-weight test model: scores are "
                                              "meaningless until real weights are fetched "
                                              "(weights/fetch ViT-B-16-plus-240)")
                                : json_null());
        json_array_append_new(list, o);
    }
    insp_respond_json(resp, 200, json_pack("{s:o}", "models", list));
}
