/* Route handlers: each answers one (method, route) of api/openapi.yaml. `id` is the product id
 * from the path (already validated) or NULL for routes without one. */
#ifndef INSPD_DAEMON_HANDLERS_H
#define INSPD_DAEMON_HANDLERS_H

#include <jansson.h>

#include "daemon/app.h"
#include "http/server.h"

typedef void (*insp_handler_fn)(insp_app *app, const insp_http_request *req, const char *id,
                                insp_http_response *resp);

void insp_h_healthz(insp_app *, const insp_http_request *, const char *, insp_http_response *);
void insp_h_readyz(insp_app *, const insp_http_request *, const char *, insp_http_response *);
void insp_h_metrics(insp_app *, const insp_http_request *, const char *, insp_http_response *);
void insp_h_models(insp_app *, const insp_http_request *, const char *, insp_http_response *);

void insp_h_products_list(insp_app *, const insp_http_request *, const char *,
                          insp_http_response *);
void insp_h_product_put(insp_app *, const insp_http_request *, const char *,
                        insp_http_response *);
void insp_h_product_get(insp_app *, const insp_http_request *, const char *,
                        insp_http_response *);
void insp_h_product_delete(insp_app *, const insp_http_request *, const char *,
                           insp_http_response *);

void insp_h_references_add(insp_app *, const insp_http_request *, const char *,
                           insp_http_response *);
void insp_h_references_clear(insp_app *, const insp_http_request *, const char *,
                             insp_http_response *);

void insp_h_inspect(insp_app *, const insp_http_request *, const char *, insp_http_response *);

/* The JSON form of a registry product (GET /v1/products/{id}). */
json_t *insp_product_json(const insp_product *p);

/* Whether the request's Content-Type (parameters ignored, case-insensitive) is `type`. */
int insp_content_type_is(const insp_http_request *req, const char *type);

#endif
