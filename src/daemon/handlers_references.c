/* Reference routes: add normal shots (raw image body or multipart/form-data), clear them. All
 * or nothing: every image is decoded and embedded before anything is stored. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/feature_cache.h"
#include "daemon/handlers.h"
#include "daemon/jobs.h"
#include "daemon/log.h"
#include "daemon/products.h"
#include "daemon/respond.h"
#include "http/multipart.h"

#define MAX_UPLOADS 64

static const char *image_type(const char *ct)
{
    if (!ct)
        return NULL;
    if (strncasecmp(ct, "image/png", 9) == 0)
        return "image/png";
    if (strncasecmp(ct, "image/jpeg", 10) == 0 || strncasecmp(ct, "image/jpg", 9) == 0)
        return "image/jpeg";
    return NULL;
}

/* The images of the request: the raw body, or every part of a multipart body (mp keeps the
 * parts; free it after use). 0, or -1 after answering. */
static int collect_uploads(const insp_http_request *req, insp_multipart *mp, insp_ref_upload *up,
                           int *n, insp_http_response *resp)
{
    const char *ct = insp_http_header(req, "Content-Type");
    *n = 0;
    if (image_type(ct)) {
        up[0] = (insp_ref_upload){req->body, req->body_len, image_type(ct)};
        *n = 1;
    } else if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        insp_error err = {0};
        int st = insp_multipart_parse(ct, req->body ? req->body : "", req->body_len, MAX_UPLOADS,
                                      mp, &err);
        if (st != INSP_OK) {
            insp_respond_status(resp, st, 0, err.msg);
            return -1;
        }
        for (int i = 0; i < mp->n; i++) {
            const char *t = image_type(mp->parts[i].content_type);
            if (!t) {
                insp_respond_error(resp, 415, "unsupported_media_type",
                                   "part %d ('%s') is %s, not image/jpeg or image/png", i + 1,
                                   mp->parts[i].name, mp->parts[i].content_type);
                return -1;
            }
            up[(*n)++] = (insp_ref_upload){mp->parts[i].data, mp->parts[i].len, t};
        }
    } else {
        insp_respond_error(resp, 415, "unsupported_media_type",
                           "send references as image/jpeg, image/png or multipart/form-data");
        return -1;
    }
    if (*n == 0) {
        insp_respond_error(resp, 400, "bad_image", "no image in the request");
        return -1;
    }
    for (int i = 0; i < *n; i++)
        if (up[i].len == 0) {
            insp_respond_error(resp, 400, "bad_image", "image %d is empty", i + 1);
            return -1;
        }
    return 0;
}

/* Rebuilds id's registry product from the store after a change. */
static int refresh(insp_app *app, const char *id, insp_product *prev, insp_error *err)
{
    insp_stored_product *sp = NULL;
    insp_product *p = NULL;
    int st = insp_store_get(app->store, id, &sp, err);
    if (st == INSP_OK)
        st = insp_products_build(app, sp, prev, 1, &p, err);
    if (st == INSP_OK)
        st = insp_registry_put(app->registry, p);
    return st;
}

void insp_h_references_add(insp_app *app, const insp_http_request *req, const char *id,
                           insp_http_response *resp)
{
    insp_ref_upload up[MAX_UPLOADS];
    insp_multipart mp = {0};
    int n = 0;
    insp_product *prev = insp_registry_get(app->registry, id);
    if (!prev) {
        insp_respond_error(resp, 404, "not_found", "no product '%s'", id);
        return;
    }
    if (collect_uploads(req, &mp, up, &n, resp) != 0) {
        insp_multipart_free(&mp);
        insp_product_release(prev);
        return;
    }
    pthread_mutex_lock(&app->admin_lock);
    insp_error err = {0};
    void *packed[MAX_UPLOADS] = {0};
    size_t packed_len[MAX_UPLOADS] = {0};
    int st = INSP_OK, image_error = 0;
    int have = prev->stored->n_refs;
    long long used;
    insp_registry_counts(app->registry, NULL, NULL, &used);
    long long more = (long long)n * (long long)insp_memory_shot_bytes(prev->model->wc);
    if (have + n > app->cfg.max_references) {
        st = insp_error_set(&err, INSP_ERR_CONFLICT,
                            "product '%s' has %d references; %d more would exceed the limit of "
                            "%d (max_references)",
                            id, have, n, app->cfg.max_references);
    } else if (used + more > app->cfg.max_reference_memory) {
        st = insp_error_set(&err, INSP_ERR_CONFLICT,
                            "the references of all products hold %.1f MiB of features; %d more "
                            "would need %.1f MiB and exceed the limit of %.1f MiB "
                            "(max_reference_memory): delete references or products first",
                            used / 1048576.0, n, more / 1048576.0,
                            app->cfg.max_reference_memory / 1048576.0);
    }
    /* Decode and embed everything first: one bad image and nothing is stored. */
    for (int i = 0; i < n && st == INSP_OK; i++) {
        st = insp_jobs_reference(app, prev->model, up[i].data, up[i].len, &packed[i],
                                 &packed_len[i], 1, &err);
        if (st != INSP_OK) {
            image_error = 1;
            insp_error_prefix(&err, "image %d: ", i + 1);
        }
    }
    int count = have;
    if (st == INSP_OK)
        st = insp_store_add_references(app->store, id, n, up, &count, &err);
    if (st == INSP_OK) {
        const char *checksum = insp_clip_checksum(prev->model->clip);
        for (int i = 0; i < n; i++) {
            char sha[65];
            insp_error cerr;
            insp_sha256_hex(up[i].data, up[i].len, sha);
            if (insp_store_cache_put(app->store, id, checksum, sha, packed[i], packed_len[i],
                                     &cerr) != INSP_OK)
                INSP_LOG_WARN("cache", "product %s: %s", id, cerr.msg);
        }
        st = refresh(app, id, prev, &err);
    }
    pthread_mutex_unlock(&app->admin_lock);
    for (int i = 0; i < n; i++)
        free(packed[i]);
    insp_multipart_free(&mp);
    insp_product_release(prev);
    if (st != INSP_OK) {
        insp_respond_status(resp, st, image_error, err.msg);
        return;
    }
    INSP_LOG_INFO("references_added", "product %s: %d references added, %d in all", id, n,
                  count);
    insp_product *p = insp_registry_get(app->registry, id);
    json_t *body = json_pack("{s:s, s:i, s:i}", "product", id, "added", n, "references", count);
    if (p) {
        json_object_set_new(body, "threshold", json_real(p->threshold));
        json_object_set_new(body, "suggested_threshold",
                            p->has_suggested ? json_real(p->suggested) : json_null());
        insp_product_release(p);
    }
    insp_respond_json(resp, 200, body);
}

void insp_h_references_clear(insp_app *app, const insp_http_request *req, const char *id,
                             insp_http_response *resp)
{
    (void)req;
    insp_product *prev = insp_registry_get(app->registry, id);
    if (!prev) {
        insp_respond_error(resp, 404, "not_found", "no product '%s'", id);
        return;
    }
    insp_error err = {0};
    pthread_mutex_lock(&app->admin_lock);
    int st = insp_store_clear_references(app->store, id, &err);
    if (st == INSP_OK)
        st = refresh(app, id, prev, &err);
    pthread_mutex_unlock(&app->admin_lock);
    insp_product_release(prev);
    if (st != INSP_OK) {
        insp_respond_status(resp, st, 0, err.msg);
        return;
    }
    INSP_LOG_INFO("references_cleared", "product %s: references cleared", id);
    insp_respond_json(resp, 200, json_pack("{s:s, s:i}", "product", id, "references", 0));
}
