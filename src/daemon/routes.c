/* The route table and the dispatch every request goes through: match, authenticate, handle,
 * count, log. */
#include <string.h>
#include <time.h>

#include "daemon/handlers.h"
#include "daemon/log.h"
#include "daemon/respond.h"
#include "store/product_def.h"

typedef struct route {
    const char *method;
    const char *pattern; /* "{id}" stands for one path segment: a product id */
    int role;            /* insp_role needed; INSP_ROLE_NONE = open */
    int needs_ready;     /* answers 503 not_ready while products are loading */
    insp_handler_fn fn;
} route;

/* Keep in step with api/openapi.yaml (the API tests check the two agree). */
static const route routes[] = {
    {"GET", "/healthz", INSP_ROLE_NONE, 0, insp_h_healthz},
    {"GET", "/readyz", INSP_ROLE_NONE, 0, insp_h_readyz},
    {"GET", "/metrics", INSP_ROLE_NONE, 0, insp_h_metrics},
    {"GET", "/v1/models", INSP_ROLE_INSPECT, 0, insp_h_models},
    {"GET", "/v1/products", INSP_ROLE_INSPECT, 1, insp_h_products_list},
    {"PUT", "/v1/products/{id}", INSP_ROLE_ADMIN, 1, insp_h_product_put},
    {"GET", "/v1/products/{id}", INSP_ROLE_INSPECT, 1, insp_h_product_get},
    {"DELETE", "/v1/products/{id}", INSP_ROLE_ADMIN, 1, insp_h_product_delete},
    {"POST", "/v1/products/{id}/references", INSP_ROLE_ADMIN, 1, insp_h_references_add},
    {"DELETE", "/v1/products/{id}/references", INSP_ROLE_ADMIN, 1, insp_h_references_clear},
    {"POST", "/v1/products/{id}/inspect", INSP_ROLE_INSPECT, 1, insp_h_inspect},
};

/* Matches path against pattern; the {id} segment is copied into id. */
static int path_matches(const char *pattern, const char *path, char *id, size_t id_size)
{
    while (*pattern && *path) {
        if (strncmp(pattern, "{id}", 4) == 0) {
            const char *end = strchr(path, '/');
            size_t n = end ? (size_t)(end - path) : strlen(path);
            if (n == 0 || n >= id_size)
                return n >= id_size ? 2 : 0; /* 2: too long to be an id */
            memcpy(id, path, n);
            id[n] = '\0';
            pattern += 4;
            path += n;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void insp_app_http_error(void *arg, const insp_http_request *req, int status,
                         const char *message, insp_http_response *resp)
{
    insp_app *app = arg;
    insp_respond_error(resp, status, status == 413 ? "too_large" : "bad_request", "%s",
                       message);
    insp_metrics_observe_request(app->metrics, "other", req->method, status, 0);
}

void insp_app_handle(void *arg, const insp_http_request *req, insp_http_response *resp)
{
    insp_app *app = arg;
    double t0 = now_s();
    char id[256] = "";
    const route *hit = NULL;
    int path_known = 0, id_too_long = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char cand[256] = "";
        int m = path_matches(routes[i].pattern, req->path, cand, sizeof cand);
        if (m == 2)
            id_too_long = 1;
        if (m != 1)
            continue;
        path_known = 1;
        if (strcmp(routes[i].method, req->method) == 0) {
            hit = &routes[i];
            memcpy(id, cand, sizeof id);
            break;
        }
    }

    const char *route_name = hit ? hit->pattern : "other";
    if (!hit) {
        if (path_known)
            insp_respond_error(resp, 405, "method_not_allowed", "%s is not allowed on %s",
                               req->method, req->path);
        else if (id_too_long)
            insp_respond_error(resp, 400, "invalid", "product id longer than %d characters",
                               INSP_PRODUCT_ID_MAX);
        else
            insp_respond_error(resp, 404, "not_found", "no route %s", req->path);
    } else {
        int granted = INSP_ROLE_NONE;
        insp_auth_result a = hit->role == INSP_ROLE_NONE
                                 ? INSP_AUTH_OK
                                 : insp_auth_check(app->auth, insp_http_header(req, "Authorization"),
                                                   hit->role, &granted);
        insp_error err = {0};
        if (a == INSP_AUTH_UNAUTHENTICATED) {
            insp_respond_error(resp, 401, "unauthorized",
                               "a valid API key is needed: Authorization: Bearer <key>");
            resp->www_authenticate = true;
        } else if (a == INSP_AUTH_FORBIDDEN) {
            insp_respond_error(resp, 403, "forbidden", "this needs an admin key");
        } else if (hit->needs_ready && !atomic_load(&app->ready)) {
            insp_respond_error(resp, 503, "not_ready", "loading models and products");
        } else if (*id && insp_product_id_check(id, &err) != INSP_OK) {
            insp_respond_error(resp, 400, "invalid", "%s", err.msg);
        } else {
            hit->fn(app, req, *id ? id : NULL, resp);
        }
    }
    if (resp->status == 503)
        resp->retry_after = app->cfg.retry_after_s;
    double secs = now_s() - t0;
    insp_metrics_observe_request(app->metrics, route_name, req->method, resp->status, secs);
    INSP_LOG_FIELDS(resp->status >= 500 ? INSP_LOG_LEVEL_WARN : INSP_LOG_LEVEL_INFO, "request",
                    json_pack("{s:s, s:s, s:s, s:i, s:f}", "method", req->method, "path",
                              req->path, "route", route_name, "status", resp->status, "ms",
                              secs * 1e3),
                    "%s %s %d", req->method, req->path, resp->status);
}
