/* POST /v1/products/{id}/inspect: one image in, score, verdict and map out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/handlers.h"
#include "daemon/jobs.h"
#include "daemon/respond.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads ?map=, ?map_size= and ?smooth=; 0, or -1 after answering 400. */
static int parse_params(const insp_http_request *req, insp_inspect_params *p,
                        insp_http_response *resp)
{
    const char *map = insp_http_query(req, "map");
    const char *size = insp_http_query(req, "map_size");
    const char *smooth = insp_http_query(req, "smooth");
    if (!map || strcmp(map, "png16") == 0)
        p->map_format = INSP_MAP_PNG16;
    else if (strcmp(map, "png8") == 0)
        p->map_format = INSP_MAP_PNG8;
    else if (strcmp(map, "none") == 0)
        p->map_format = INSP_MAP_NONE;
    else {
        insp_respond_error(resp, 400, "invalid", "map: expected png16, png8 or none");
        return -1;
    }
    if (!size || strcmp(size, "image") == 0)
        p->map_size = INSP_MAP_SIZE_IMAGE;
    else if (strcmp(size, "model") == 0)
        p->map_size = INSP_MAP_SIZE_MODEL;
    else {
        insp_respond_error(resp, 400, "invalid", "map_size: expected image or model");
        return -1;
    }
    if (smooth) {
        char *end;
        double v = strtod(smooth, &end);
        if (*end || !(v >= 0 && v <= 64)) {
            insp_respond_error(resp, 400, "invalid", "smooth: expected a sigma in 0..64");
            return -1;
        }
        p->smooth_sigma = (float)v;
    }
    return 0;
}

static void observe_stages(insp_metrics *m, const insp_timings *t)
{
    insp_metrics_observe_stage(m, INSP_STAGE_DECODE, t->decode_ms / 1e3);
    insp_metrics_observe_stage(m, INSP_STAGE_PREPROCESS, t->preprocess_ms / 1e3);
    insp_metrics_observe_stage(m, INSP_STAGE_IMAGE, t->image_ms / 1e3);
    insp_metrics_observe_stage(m, INSP_STAGE_WINDOWS, t->windows_ms / 1e3);
    insp_metrics_observe_stage(m, INSP_STAGE_SCORE, t->score_ms / 1e3);
    insp_metrics_observe_stage(m, INSP_STAGE_MAP, t->map_ms / 1e3);
}

void insp_h_inspect(insp_app *app, const insp_http_request *req, const char *id,
                    insp_http_response *resp)
{
    double t0 = now_ms();
    insp_inspect_params params = insp_inspect_default_params();
    params.max_pixels = app->cfg.max_pixels;
    if (parse_params(req, &params, resp) != 0)
        return;
    insp_product *p = insp_registry_get(app->registry, id);
    if (!p) {
        insp_respond_error(resp, 404, "not_found", "no product '%s'", id);
        return;
    }
    if (!insp_content_type_is(req, "image/jpeg") && !insp_content_type_is(req, "image/png") &&
        !insp_content_type_is(req, "image/jpg")) {
        insp_product_release(p);
        insp_respond_error(resp, 415, "unsupported_media_type",
                           "send the image as image/jpeg or image/png");
        return;
    }
    if (!req->body || req->body_len == 0) {
        insp_product_release(p);
        insp_respond_error(resp, 400, "bad_image", "the request body is empty");
        return;
    }
    insp_inspection r = {0};
    insp_error err = {0};
    double queue_ms = 0;
    int st = insp_jobs_inspect(app, p->model, req->body, req->body_len, p->text, p->mem, &params,
                               &r, &queue_ms, &err);
    if (st != INSP_OK) {
        insp_product_release(p);
        insp_respond_status(resp, st, 1, err.msg);
        return;
    }
    observe_stages(app->metrics, &r.t);

    json_t *map = json_null();
    if (r.png) {
        size_t b64_len = 0;
        char *b64 = insp_base64_encode(r.png, r.png_len, &b64_len);
        if (!b64) {
            insp_inspection_free(&r);
            insp_product_release(p);
            insp_respond_error(resp, 503, "busy", "out of memory");
            return;
        }
        map = json_pack("{s:i, s:i, s:s, s:i, s:s#}", "width", r.map_width, "height",
                        r.map_height, "format", "png", "bit_depth",
                        params.map_format == INSP_MAP_PNG8 ? 8 : 16, "data", b64, b64_len);
        free(b64);
    }
    double total = now_ms() - t0;
    json_t *timing = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "decode",
                               r.t.decode_ms, "preprocess", r.t.preprocess_ms, "image",
                               r.t.image_ms, "windows", r.t.windows_ms, "score", r.t.score_ms,
                               "map", r.t.map_ms, "queue", queue_ms, "total", total);
    json_t *body = json_pack(
        "{s:s, s:s, s:f, s:f, s:b, s:f, s:s, s:{s:i, s:i}, s:o, s:o}", "product", id, "model",
        p->model->name, "score", (double)r.score.score, "zero_shot_score",
        (double)r.score.zero_shot, "anomalous", r.score.score >= p->threshold, "threshold",
        (double)p->threshold, "mode", r.score.few_shot ? "few-shot" : "zero-shot", "image",
        "width", r.image_width, "height", r.image_height, "map", map, "timing_ms", timing);
    insp_inspection_free(&r);
    insp_product_release(p);
    insp_respond_json(resp, 200, body);
}
