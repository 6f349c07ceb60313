/* The metrics registry behind /metrics: a handful of series under one mutex (a request
 * updates two of them; contention is negligible next to an inference). */
#include "daemon/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/strbuf.h"
#include "inspectd/status.h"

const double insp_metrics_buckets[INSP_METRICS_N_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static const char *const stage_names[INSP_STAGE_COUNT] = {
    "decode", "preprocess", "image", "windows", "score", "map",
};

/* Per-bucket (not cumulative) counts; the last slot is the +Inf overflow. */
typedef struct hist {
    uint64_t counts[INSP_METRICS_N_BUCKETS + 1];
    uint64_t count;
    double sum;
} hist;

#define METHOD_MAX 16

typedef struct req_series {
    char *route;
    char method[METHOD_MAX];
    int status;
    uint64_t count;
} req_series;

typedef struct lat_series {
    char *route;
    char method[METHOD_MAX];
    hist h;
} lat_series;

struct insp_metrics {
    pthread_mutex_t lock;
    req_series *req;
    size_t n_req, cap_req;
    lat_series *lat;
    size_t n_lat, cap_lat;
    hist stages[INSP_STAGE_COUNT];
    double gauges[INSP_GAUGE_COUNT];
    uint64_t rejected;
};

static const struct {
    const char *name, *help;
} gauge_info[INSP_GAUGE_COUNT] = {
    {"inspectd_queue_depth", "Inference jobs waiting for a worker."},
    {"inspectd_queue_capacity", "Jobs that may wait before requests are refused with 503."},
    {"inspectd_workers_busy", "Inference workers running a job."},
    {"inspectd_products", "Registered products."},
    {"inspectd_references", "Reference images over all products."},
    {"inspectd_reference_memory_bytes", "RAM the reference features of all products take."},
    {"inspectd_reference_memory_limit_bytes", "max_reference_memory from the config."},
};

const char *insp_stage_name(int stage)
{
    return stage >= 0 && stage < INSP_STAGE_COUNT ? stage_names[stage] : NULL;
}

int insp_metrics_create(insp_metrics **out)
{
    *out = NULL;
    insp_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return INSP_ERR_NOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return INSP_ERR_NOMEM;
    }
    *out = m;
    return INSP_OK;
}

void insp_metrics_free(insp_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_req; i++)
        free(m->req[i].route);
    for (size_t i = 0; i < m->n_lat; i++)
        free(m->lat[i].route);
    free(m->req);
    free(m->lat);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static void hist_observe(hist *h, double v)
{
    if (isnan(v))
        return;
    if (v < 0)
        v = 0;
    int b = 0;
    while (b < INSP_METRICS_N_BUCKETS && v > insp_metrics_buckets[b])
        b++;
    h->counts[b]++;
    h->count++;
    h->sum += v;
}

/* Grows *arr (of elements `size` bytes) to hold one more; 0 on allocation failure. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 1;
    size_t nc = *cap ? *cap * 2 : 16;
    void *na = realloc(*arr, nc * size);
    if (!na)
        return 0;
    *arr = na;
    *cap = nc;
    return 1;
}

static void copy_method(char dst[METHOD_MAX], const char *method)
{
    size_t n = strnlen(method, METHOD_MAX - 1);
    memcpy(dst, method, n);
    dst[n] = '\0';
}

/* Request series for the key, created if needed (NULL on allocation failure). */
static req_series *find_req(insp_metrics *m, const char *route, const char *method, int status)
{
    for (size_t i = 0; i < m->n_req; i++) {
        req_series *s = &m->req[i];
        if (s->status == status && strncmp(s->method, method, METHOD_MAX - 1) == 0 &&
            strcmp(s->route, route) == 0)
            return s;
    }
    if (!grow((void **)&m->req, &m->cap_req, m->n_req, sizeof *m->req))
        return NULL;
    req_series *s = &m->req[m->n_req];
    if (!(s->route = strdup(route)))
        return NULL;
    copy_method(s->method, method);
    s->status = status;
    s->count = 0;
    m->n_req++;
    return s;
}

static lat_series *find_lat(insp_metrics *m, const char *route, const char *method)
{
    for (size_t i = 0; i < m->n_lat; i++) {
        lat_series *s = &m->lat[i];
        if (strncmp(s->method, method, METHOD_MAX - 1) == 0 && strcmp(s->route, route) == 0)
            return s;
    }
    if (!grow((void **)&m->lat, &m->cap_lat, m->n_lat, sizeof *m->lat))
        return NULL;
    lat_series *s = &m->lat[m->n_lat];
    if (!(s->route = strdup(route)))
        return NULL;
    copy_method(s->method, method);
    memset(&s->h, 0, sizeof s->h);
    m->n_lat++;
    return s;
}

void insp_metrics_observe_request(insp_metrics *m, const char *route, const char *method,
                                  int status, double seconds)
{
    if (!m)
        return;
    route = route ? route : "unknown";
    method = method ? method : "unknown";
    pthread_mutex_lock(&m->lock);
    if (m->n_req >= INSP_METRICS_MAX_SERIES || m->n_lat >= INSP_METRICS_MAX_SERIES) {
        /* Only an existing series may still be counted under its own name. */
        int known = 0;
        for (size_t i = 0; i < m->n_req && !known; i++)
            known = m->req[i].status == status && strcmp(m->req[i].route, route) == 0 &&
                    strncmp(m->req[i].method, method, METHOD_MAX - 1) == 0;
        if (!known) {
            route = "other";
            method = "other";
        }
    }
    req_series *r = find_req(m, route, method, status);
    if (r)
        r->count++;
    lat_series *l = find_lat(m, route, method);
    if (l)
        hist_observe(&l->h, seconds);
    pthread_mutex_unlock(&m->lock);
}

void insp_metrics_observe_stage(insp_metrics *m, int stage, double seconds)
{
    if (!m || stage < 0 || stage >= INSP_STAGE_COUNT)
        return;
    pthread_mutex_lock(&m->lock);
    hist_observe(&m->stages[stage], seconds);
    pthread_mutex_unlock(&m->lock);
}

void insp_metrics_set_gauge(insp_metrics *m, int gauge, double value)
{
    if (!m || gauge < 0 || gauge >= INSP_GAUGE_COUNT)
        return;
    pthread_mutex_lock(&m->lock);
    m->gauges[gauge] = value;
    pthread_mutex_unlock(&m->lock);
}

void insp_metrics_count_rejected(insp_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->rejected++;
    pthread_mutex_unlock(&m->lock);
}

/* A label value with \, " and newline escaped as the exposition format requires. */
static void put_label_value(insp_strbuf *b, const char *v)
{
    insp_strbuf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '\\')
            insp_strbuf_puts(b, "\\\\");
        else if (*v == '"')
            insp_strbuf_puts(b, "\\\"");
        else if (*v == '\n')
            insp_strbuf_puts(b, "\\n");
        else
            insp_strbuf_putc(b, *v);
    }
    insp_strbuf_putc(b, '"');
}

static void put_number(insp_strbuf *b, double v)
{
    if (isinf(v))
        insp_strbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        insp_strbuf_puts(b, "NaN");
    else {
        /* the shortest of %.15g / %.17g that reads back exactly */
        char buf[40];
        snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof buf, "%.17g", v);
        insp_strbuf_puts(b, buf);
    }
}

static void put_header(insp_strbuf *b, const char *name, const char *type, const char *help)
{
    insp_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name_bucket{labels,le="..."} lines, then _sum and _count. `labels` is the already
 * rendered label list without braces ("" for none). */
static void put_hist(insp_strbuf *b, const char *name, const char *labels, const hist *h)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i <= INSP_METRICS_N_BUCKETS; i++) {
        cum += h->counts[i];
        insp_strbuf_printf(b, "%s_bucket{%s%sle=\"", name, labels, sep);
        if (i < INSP_METRICS_N_BUCKETS)
            insp_strbuf_printf(b, "%g", insp_metrics_buckets[i]);
        else
            insp_strbuf_puts(b, "+Inf");
        insp_strbuf_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    insp_strbuf_printf(b, "%s_sum%s%s%s ", name, open, labels, close);
    put_number(b, h->sum);
    insp_strbuf_printf(b, "\n%s_count%s%s%s %llu\n", name, open, labels, close,
                       (unsigned long long)h->count);
}

/* route="...",method="..." into l (reset first). */
static void route_labels(insp_strbuf *l, const char *route, const char *method)
{
    l->len = 0;
    if (l->data)
        l->data[0] = '\0';
    insp_strbuf_puts(l, "route=");
    put_label_value(l, route);
    insp_strbuf_puts(l, ",method=");
    put_label_value(l, method);
}

int insp_metrics_render(insp_metrics *m, char **out, size_t *len)
{
    *out = NULL;
    insp_strbuf b, l;
    insp_strbuf_init(&b, NULL, 0);
    insp_strbuf_init(&l, NULL, 0);
    pthread_mutex_lock(&m->lock);

    put_header(&b, "inspectd_http_requests_total", "counter",
               "HTTP requests by route template, method and status code.");
    for (size_t i = 0; i < m->n_req; i++) {
        const req_series *s = &m->req[i];
        route_labels(&l, s->route, s->method);
        insp_strbuf_printf(&b, "inspectd_http_requests_total{%s,status=\"%d\"} %llu\n",
                           l.data ? l.data : "", s->status, (unsigned long long)s->count);
    }

    put_header(&b, "inspectd_http_request_duration_seconds", "histogram",
               "Time from request start to response, by route template and method.");
    for (size_t i = 0; i < m->n_lat; i++) {
        route_labels(&l, m->lat[i].route, m->lat[i].method);
        put_hist(&b, "inspectd_http_request_duration_seconds", l.data ? l.data : "",
                 &m->lat[i].h);
    }

    put_header(&b, "inspectd_inference_stage_seconds", "histogram",
               "Time spent in each stage of an inference.");
    for (int s = 0; s < INSP_STAGE_COUNT; s++) {
        l.len = 0;
        insp_strbuf_printf(&l, "stage=\"%s\"", stage_names[s]);
        put_hist(&b, "inspectd_inference_stage_seconds", l.data ? l.data : "", &m->stages[s]);
    }

    for (int g = 0; g < INSP_GAUGE_COUNT; g++) {
        put_header(&b, gauge_info[g].name, "gauge", gauge_info[g].help);
        insp_strbuf_printf(&b, "%s ", gauge_info[g].name);
        put_number(&b, m->gauges[g]);
        insp_strbuf_putc(&b, '\n');
    }

    put_header(&b, "inspectd_queue_rejected_total", "counter",
               "Inference jobs refused with 503 because the queue was full.");
    insp_strbuf_printf(&b, "inspectd_queue_rejected_total %llu\n",
                       (unsigned long long)m->rejected);

    pthread_mutex_unlock(&m->lock);
    int failed = l.failed;
    insp_strbuf_free(&l);
    if (failed) {
        insp_strbuf_free(&b);
        return INSP_ERR_NOMEM;
    }
    *out = insp_strbuf_detach(&b, len);
    return *out ? INSP_OK : INSP_ERR_NOMEM;
}
