/* Product routes: list, create or replace, get, delete. */
#include <string.h>
#include <strings.h>

#include "daemon/handlers.h"
#include "daemon/log.h"
#include "daemon/products.h"
#include "daemon/respond.h"

int insp_content_type_is(const insp_http_request *req, const char *type)
{
    const char *ct = insp_http_header(req, "Content-Type");
    if (!ct)
        return 0;
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

json_t *insp_product_json(const insp_product *p)
{
    const insp_stored_product *sp = p->stored;
    json_t *scores = json_array();
    for (int i = 0; i < p->n_loo; i++)
        json_array_append_new(scores, json_real(p->loo[i]));
    return json_pack("{s:s, s:o, s:s, s:f, s:s, s:i, s:o, s:o, s:{s:i, s:i}, s:s, s:s, s:I}",
                     "id", sp->id, "definition", insp_product_def_to_json(&sp->def), "model",
                     p->model->name, "threshold", (double)p->threshold, "threshold_source",
                     p->threshold_source, "references", sp->n_refs, "reference_scores", scores,
                     "suggested_threshold",
                     p->has_suggested ? json_real(p->suggested) : json_null(), "prompts",
                     "normal", p->n_normal_prompts, "anomalous", p->n_anomalous_prompts,
                     "created", sp->created, "updated", sp->updated, "version",
                     (json_int_t)sp->version);
}

void insp_h_products_list(insp_app *app, const insp_http_request *req, const char *id,
                          insp_http_response *resp)
{
    (void)req;
    (void)id;
    insp_product **list;
    int n;
    if (insp_registry_list(app->registry, &list, &n) != INSP_OK) {
        insp_respond_error(resp, 503, "busy", "out of memory");
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, insp_product_json(list[i]));
    insp_registry_list_free(list, n);
    insp_respond_json(resp, 200, json_pack("{s:o}", "products", arr));
}

void insp_h_product_get(insp_app *app, const insp_http_request *req, const char *id,
                        insp_http_response *resp)
{
    (void)req;
    insp_product *p = insp_registry_get(app->registry, id);
    if (!p) {
        insp_respond_error(resp, 404, "not_found", "no product '%s'", id);
        return;
    }
    insp_respond_json(resp, 200, insp_product_json(p));
    insp_product_release(p);
}

/* Checks what can be checked before anything is written: the model and the prompt set. */
static int precheck(insp_app *app, const insp_product_def *def, insp_error *err)
{
    if (!insp_models_find(app->models, app->n_models, def->model))
        return insp_error_set(err, INSP_ERR_INVALID, "model: '%s' is not loaded", def->model);
    insp_prompt_spec spec;
    insp_prompts prompts = {0};
    insp_product_def_prompt_spec(def, &spec);
    int st = insp_prompts_build(&spec, &prompts, err);
    insp_prompts_free(&prompts);
    return st;
}

void insp_h_product_put(insp_app *app, const insp_http_request *req, const char *id,
                        insp_http_response *resp)
{
    if (!insp_content_type_is(req, "application/json")) {
        insp_respond_error(resp, 415, "unsupported_media_type",
                           "a product definition is sent as application/json");
        return;
    }
    insp_product_def def = {0};
    insp_error err = {0};
    int st = insp_product_def_parse(req->body ? req->body : "", req->body_len, &def, &err);
    if (st != INSP_OK) {
        if (st == INSP_ERR_FORMAT)
            insp_respond_error(resp, 400, "bad_json", "%s", err.msg);
        else
            insp_respond_status(resp, st, 0, err.msg);
        return;
    }
    st = precheck(app, &def, &err);
    if (st != INSP_OK) {
        insp_product_def_free(&def);
        insp_respond_status(resp, st, 0, err.msg);
        return;
    }
    pthread_mutex_lock(&app->admin_lock);
    int np, nr;
    insp_registry_counts(app->registry, &np, &nr, NULL);
    insp_product *prev = insp_registry_get(app->registry, id);
    if (!prev && np >= app->cfg.max_products) {
        pthread_mutex_unlock(&app->admin_lock);
        insp_product_def_free(&def);
        insp_respond_error(resp, 409, "conflict", "at most %d products (max_products)",
                           app->cfg.max_products);
        return;
    }
    bool created = false;
    insp_stored_product *sp = NULL;
    insp_product *p = NULL;
    st = insp_store_put(app->store, id, &def, &created, &sp, &err);
    insp_product_def_free(&def);
    if (st == INSP_OK)
        st = insp_products_build(app, sp, prev, 1, &p, &err);
    if (st == INSP_OK) {
        json_t *body = insp_product_json(p);
        st = insp_registry_put(app->registry, p);
        if (st == INSP_OK) {
            INSP_LOG_INFO("product_put", "product %s %s", id, created ? "created" : "replaced");
            insp_respond_json(resp, created ? 201 : 200, body);
        } else {
            json_decref(body);
        }
    }
    insp_product_release(prev);
    pthread_mutex_unlock(&app->admin_lock);
    if (st != INSP_OK)
        insp_respond_status(resp, st, 0, err.msg);
}

void insp_h_product_delete(insp_app *app, const insp_http_request *req, const char *id,
                           insp_http_response *resp)
{
    (void)req;
    insp_error err = {0};
    pthread_mutex_lock(&app->admin_lock);
    int st = insp_store_delete(app->store, id, &err);
    if (st == INSP_OK || st == INSP_ERR_NOT_FOUND) {
        int rst = insp_registry_remove(app->registry, id);
        if (st == INSP_ERR_NOT_FOUND && rst == INSP_OK)
            st = INSP_OK;
    }
    pthread_mutex_unlock(&app->admin_lock);
    if (st == INSP_ERR_NOT_FOUND) {
        insp_respond_error(resp, 404, "not_found", "no product '%s'", id);
    } else if (st != INSP_OK) {
        insp_respond_status(resp, st, 0, err.msg);
    } else {
        INSP_LOG_INFO("product_deleted", "product %s deleted", id);
        resp->status = 204;
    }
}
