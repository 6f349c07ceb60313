/* libmicrohttpd glue: collects each request's body up to the limit, calls the handler once per
 * complete request on an HTTP thread, and drains in-flight requests on stop. */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct insp_http_server {
    struct MHD_Daemon *d;
    insp_http_params p;
    atomic_int in_flight;
    atomic_bool draining;
    int port;
};

/* Per-request state, from the first call of the access handler to the completed callback. */
typedef struct request_state {
    char *body;
    size_t len, cap;
    bool too_large;
    bool no_memory;
} request_state;

const char *insp_http_header(const insp_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *insp_http_query(const insp_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static enum MHD_Result send_response(insp_http_server *srv, struct MHD_Connection *c,
                                     insp_http_response *resp)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        resp->body_len, resp->body ? resp->body : (char *)"",
        resp->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(resp->body);
        return MHD_NO;
    }
    resp->body = NULL;
    if (resp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    if (resp->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", resp->retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (resp->www_authenticate)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (atomic_load(&srv->draining))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void respond_error(insp_http_server *srv, const insp_http_request *req, int status,
                          const char *msg, insp_http_response *resp)
{
    srv->p.on_error(srv->p.app, req, status, msg, resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    insp_http_server *srv = cls;
    request_state *st = *con_cls;
    insp_http_request req = {.method = method, .path = url, .conn = c};

    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        atomic_fetch_add(&srv->in_flight, 1);
        /* A declared length over the limit is refused before any of the body is read. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoll(cl, NULL, 10) > srv->p.max_body_bytes) {
            insp_http_response resp = {0};
            char msg[128];
            snprintf(msg, sizeof msg, "request body over the limit of %lld bytes",
                     srv->p.max_body_bytes);
            respond_error(srv, &req, 413, msg, &resp);
            return send_response(srv, c, &resp);
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large || st->no_memory)
            return MHD_YES;
        if ((long long)(st->len + n) > srv->p.max_body_bytes) {
            st->too_large = true;
            free(st->body);
            st->body = NULL;
            st->len = st->cap = 0;
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = st->cap ? st->cap : 65536;
            while (cap < st->len + n + 1)
                cap *= 2;
            char *nb = realloc(st->body, cap);
            if (!nb) {
                st->no_memory = true;
                return MHD_YES;
            }
            st->body = nb;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }

    insp_http_response resp = {0};
    req.body = st->body;
    req.body_len = st->len;
    if (st->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body over the limit of %lld bytes",
                 srv->p.max_body_bytes);
        respond_error(srv, &req, 413, msg, &resp);
    } else if (st->no_memory) {
        respond_error(srv, &req, 503, "out of memory while reading the request body", &resp);
    } else {
        srv->p.handler(srv->p.app, &req, &resp);
    }
    return send_response(srv, c, &resp);
}

/* Percent-decodes the path in place, except %00: a NUL would cut the path short (so that
 * "a%00b" named product "a"), so it is left as it is and the id check refuses the '%'. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *out = s;
    for (const char *in = s; *in;) {
        int hi, lo;
        if (in[0] == '%' && (hi = hexval(in[1])) >= 0 && (lo = hexval(in[2])) >= 0 &&
            (hi | lo) != 0) {
            *out++ = (char)(hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    insp_http_server *srv = cls;
    request_state *st = *con_cls;
    if (!st)
        return;
    free(st->body);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->in_flight, 1);
}

int insp_http_start(const insp_http_params *params, insp_http_server **out, insp_error *err)
{
    *out = NULL;
    insp_http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return insp_error_set(err, INSP_ERR_NOMEM, "http: out of memory");
    srv->p = *params;

    struct sockaddr_in v4 = {0};
    struct sockaddr_in6 v6 = {0};
    const struct sockaddr *sa;
    /* A thread per connection: handlers block until their inference is done, and that must
     * not stall other connections (a pool thread would also serve its other connections). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_AUTO | MHD_USE_ITC;
    const char *addr = strcmp(params->addr, "localhost") == 0 ? "127.0.0.1" : params->addr;
    if (inet_pton(AF_INET, addr, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons((uint16_t)params->port);
        sa = (const struct sockaddr *)&v4;
    } else if (inet_pton(AF_INET6, addr, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons((uint16_t)params->port);
        sa = (const struct sockaddr *)&v6;
        flags |= MHD_USE_IPv6;
    } else {
        free(srv);
        return insp_error_set(err, INSP_ERR_INVALID, "listen address '%s' is not an IP address",
                              params->addr);
    }
    bool tls = params->tls_cert_pem && params->tls_key_pem;
    if (tls)
        flags |= MHD_USE_TLS;

    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, (void *)sa},
        {MHD_OPTION_CONNECTION_LIMIT, params->connection_limit, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, params->timeout_s, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)params->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)params->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->d = MHD_start_daemon(flags, (uint16_t)params->port, NULL, NULL, on_request, srv,
                              MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!srv->d) {
        free(srv);
        return insp_error_set(err, INSP_ERR_IO,
                              "cannot listen on %s:%d (address in use, not local, or bad TLS "
                              "certificate/key)",
                              params->addr, params->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : params->port;
    *out = srv;
    return INSP_OK;
}

int insp_http_port(const insp_http_server *srv) { return srv->port; }

int insp_http_in_flight(const insp_http_server *srv)
{
    return atomic_load(&((insp_http_server *)srv)->in_flight);
}

void insp_http_stop(insp_http_server *srv, int timeout_s)
{
    if (!srv)
        return;
    atomic_store(&srv->draining, true);
    MHD_socket fd = MHD_quiesce_daemon(srv->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (atomic_load(&srv->in_flight) == 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= timeout_s)
            break;
        struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
    }
    MHD_stop_daemon(srv->d);
    free(srv);
}
