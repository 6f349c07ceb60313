/* The HTTP front: libmicrohttpd with a thread per connection (a handler may block waiting for
 * an inference without holding up any other connection), bodies collected up to a limit, one
 * handler callback per complete request, and a drain that finishes what is in flight. */
#ifndef INSPD_HTTP_SERVER_H
#define INSPD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "inspectd/status.h"

typedef struct insp_http_server insp_http_server;

/* One request, as the handler sees it: method, percent-decoded path, the whole body. */
typedef struct insp_http_request {
    const char *method;
    const char *path;
    const char *body;     /* NUL-terminated copy; NULL when there was none */
    size_t body_len;
    void *conn;           /* the libmicrohttpd connection, for headers and query arguments */
} insp_http_request;

/* Header or query argument value, NULL when absent. Valid during the handler call. */
const char *insp_http_header(const insp_http_request *req, const char *name);
const char *insp_http_query(const insp_http_request *req, const char *name);

/* What the handler answers. body is malloc'ed and taken over by the server. */
typedef struct insp_http_response {
    int status;
    const char *content_type;  /* static string */
    char *body;
    size_t body_len;
    int retry_after;           /* > 0: a Retry-After header */
    bool www_authenticate;     /* a WWW-Authenticate: Bearer header (401) */
} insp_http_response;

/* Called on an HTTP thread once a request is complete; must fill resp. */
typedef void (*insp_http_handler)(void *app, const insp_http_request *req,
                                  insp_http_response *resp);
/* Called when a body is over the limit, or a request cannot be read, before the handler would
 * be: fills resp with the error (413 and so on). */
typedef void (*insp_http_error_fn)(void *app, const insp_http_request *req, int status,
                                   const char *message, insp_http_response *resp);

typedef struct insp_http_params {
    const char *addr;          /* IP literal or "localhost" */
    int port;                  /* 0 = any free port */
    int connection_limit;
    int timeout_s;             /* idle connection timeout */
    long long max_body_bytes;
    const char *tls_cert_pem;  /* both or neither: HTTPS */
    const char *tls_key_pem;
    insp_http_handler handler;
    insp_http_error_fn on_error;
    void *app;
} insp_http_params;

/* Binds and starts serving. INSP_ERR_IO with the reason (address in use, bad TLS material)
 * in err. Free with insp_http_stop. */
int insp_http_start(const insp_http_params *params, insp_http_server **out, insp_error *err);

/* The port actually bound (useful with port 0). */
int insp_http_port(const insp_http_server *srv);

/* Requests being handled right now. */
int insp_http_in_flight(const insp_http_server *srv);

/* Stops accepting new connections, waits up to timeout_s for the requests in flight to be
 * answered, then stops every thread and frees. NULL is a harmless no-op. */
void insp_http_stop(insp_http_server *srv, int timeout_s);

#endif
