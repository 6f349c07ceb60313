/* Prometheus metrics of the daemon: request counters and latency histograms per route,
 * inference time per stage, queue and store gauges, rendered as text exposition 0.0.4. */
#ifndef INSPECTD_DAEMON_METRICS_H
#define INSPECTD_DAEMON_METRICS_H

#include <stddef.h>

typedef struct insp_metrics insp_metrics;

/* Stages of one inference, each with its own histogram
 * (inspectd_inference_stage_seconds{stage="..."}). */
typedef enum insp_stage {
    INSP_STAGE_DECODE = 0,     /* image bytes -> pixels */
    INSP_STAGE_PREPROCESS = 1, /* resize + normalize */
    INSP_STAGE_IMAGE = 2,      /* vision tower on the full image */
    INSP_STAGE_WINDOWS = 3,    /* vision tower on all windows */
    INSP_STAGE_SCORE = 4,      /* text and reference scoring */
    INSP_STAGE_MAP = 5,        /* anomaly map, upsampling, PNG */
    INSP_STAGE_COUNT
} insp_stage;

/* Gauges set by their owners (the queue, the store) or just before rendering. */
typedef enum insp_gauge {
    INSP_GAUGE_QUEUE_DEPTH = 0,    /* jobs waiting for a worker */
    INSP_GAUGE_QUEUE_CAPACITY = 1, /* queue_length from the config */
    INSP_GAUGE_WORKERS_BUSY = 2,   /* workers running a job */
    INSP_GAUGE_PRODUCTS = 3,       /* registered products */
    INSP_GAUGE_REFERENCES = 4,     /* reference images over all products */
    INSP_GAUGE_REFERENCE_BYTES = 5, /* RAM of their features */
    INSP_GAUGE_REFERENCE_LIMIT = 6, /* max_reference_memory */
    INSP_GAUGE_COUNT
} insp_gauge;

/* Histogram bucket upper bounds in seconds (Prometheus' defaults); +Inf is implied. */
#define INSP_METRICS_N_BUCKETS 11
extern const double insp_metrics_buckets[INSP_METRICS_N_BUCKETS];

/* At most this many distinct (route, method, status) series; further combinations are
 * counted under route "other" so that a bug passing raw paths cannot grow memory without
 * bound. */
#define INSP_METRICS_MAX_SERIES 512

/* Creates an empty registry; INSP_OK or INSP_ERR_NOMEM. Freed with insp_metrics_free
 * (NULL is a harmless no-op). All functions below are safe to call from any thread. */
int insp_metrics_create(insp_metrics **out);
void insp_metrics_free(insp_metrics *m);

/* Counts one HTTP request and observes its latency. `route` is the route template
 * ("/v1/products/{id}/inspect"), never the raw path, so that series stay few; `method` is
 * "GET", "POST", ...; both are copied. NULL route or method count as "unknown". */
void insp_metrics_observe_request(insp_metrics *m, const char *route, const char *method,
                                  int status, double seconds);

/* Observes one stage's duration; an out-of-range stage is ignored. */
void insp_metrics_observe_stage(insp_metrics *m, int stage, double seconds);

/* Sets a gauge; an out-of-range gauge is ignored. */
void insp_metrics_set_gauge(insp_metrics *m, int gauge, double value);

/* Counts one job refused because the queue was full (inspectd_queue_rejected_total). */
void insp_metrics_count_rejected(insp_metrics *m);

/* Renders everything as Prometheus text (Content-Type "text/plain; version=0.0.4") into a
 * malloc'ed NUL-terminated string the caller frees; *len (if non-NULL) gets its length.
 * INSP_OK or INSP_ERR_NOMEM. */
int insp_metrics_render(insp_metrics *m, char **out, size_t *len);

/* Name of a stage ("decode") or NULL when out of range. */
const char *insp_stage_name(int stage);

#endif
