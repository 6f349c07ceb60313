/* Tests of the metrics registry: the rendered Prometheus text is parsed back (labels
 * unescaped) and its counts are checked against what the test observed. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "daemon/metrics.h"
#include "harness.h"
#include "inspectd/status.h"

/* Prometheus' default buckets, written out here rather than read from the module. */
static const double want_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB 11

typedef struct sample {
    char name[128];
    int n_labels;
    char keys[4][32];
    char vals[4][256];
    double value;
} sample;

typedef struct page {
    sample *s;
    int n;
    char types[64][128]; /* family names with a TYPE line, in order */
    char type_kind[64][16];
    int n_types;
    int errors;
} page;

/* Parses one exposition-format page; every malformed line counts as an error. */
static void parse_page(const char *text, page *p)
{
    memset(p, 0, sizeof *p);
    p->s = calloc(20000, sizeof *p->s);
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        if (!nl) {
            p->errors++;
            break;
        }
        char buf[2048];
        size_t n = (size_t)(nl - line);
        if (n >= sizeof buf) {
            p->errors++;
            line = nl + 1;
            continue;
        }
        memcpy(buf, line, n);
        buf[n] = '\0';
        line = nl + 1;
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            if (p->n_types < 64 &&
                sscanf(buf + 7, "%127s %15s", p->types[p->n_types], p->type_kind[p->n_types]) == 2)
                p->n_types++;
            else
                p->errors++;
            continue;
        }
        if (strncmp(buf, "# HELP ", 7) == 0)
            continue;
        if (buf[0] == '#' || p->n >= 20000) {
            p->errors++;
            continue;
        }
        sample *s = &p->s[p->n];
        const char *c = buf;
        size_t k = 0;
        while (*c && *c != '{' && *c != ' ' && k < sizeof s->name - 1)
            s->name[k++] = *c++;
        s->name[k] = '\0';
        if (*c == '{') {
            c++;
            while (*c && *c != '}') {
                if (s->n_labels >= 4) {
                    p->errors++;
                    break;
                }
                size_t kk = 0;
                while (*c && *c != '=' && kk < 31)
                    s->keys[s->n_labels][kk++] = *c++;
                s->keys[s->n_labels][kk] = '\0';
                if (c[0] != '=' || c[1] != '"') {
                    p->errors++;
                    break;
                }
                c += 2;
                size_t vv = 0;
                while (*c && *c != '"' && vv < 255) {
                    if (*c == '\\') {
                        c++;
                        s->vals[s->n_labels][vv++] = *c == 'n' ? '\n' : *c;
                        if (*c)
                            c++;
                    } else {
                        s->vals[s->n_labels][vv++] = *c++;
                    }
                }
                s->vals[s->n_labels][vv] = '\0';
                if (*c != '"') {
                    p->errors++;
                    break;
                }
                c++;
                s->n_labels++;
                if (*c == ',')
                    c++;
            }
            if (*c != '}') {
                p->errors++;
                continue;
            }
            c++;
        }
        char *end;
        if (*c != ' ') {
            p->errors++;
            continue;
        }
        s->value = strtod(c + 1, &end);
        if (end == c + 1 || *end) {
            p->errors++;
            continue;
        }
        p->n++;
    }
}

/* The value of the sample with exactly these labels (pairs of key, value after n);
 * NAN when absent, and a failed check when present more than once. */
static double get(const page *p, const char *name, int n, ...)
{
    const char *kv[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < 2 * n; i++)
        kv[i] = va_arg(ap, const char *);
    va_end(ap);
    double v = NAN;
    int hits = 0;
    for (int i = 0; i < p->n; i++) {
        const sample *s = &p->s[i];
        if (strcmp(s->name, name) != 0 || s->n_labels != n)
            continue;
        int ok = 1;
        for (int j = 0; j < n && ok; j++) {
            int found = 0;
            for (int l = 0; l < s->n_labels; l++)
                found |= strcmp(s->keys[l], kv[2 * j]) == 0 && strcmp(s->vals[l], kv[2 * j + 1]) == 0;
            ok = found;
        }
        if (ok) {
            v = s->value;
            hits++;
        }
    }
    CHECK_MSG(hits <= 1, "%s: %d samples with the same labels", name, hits);
    return v;
}

static char *render(insp_metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(insp_metrics_render(m, &text, &len));
    CHECK(text && strlen(text) == len);
    return text;
}

static void requests_and_latency(void)
{
    insp_metrics *m;
    REQUIRE(insp_metrics_create(&m) == INSP_OK);
    const char *route = "/v1/products/{id}/inspect";
    double obs[] = {0.003, 0.005, 0.02, 0.7, 0.7, 3.0, 20.0};
    int n_obs = (int)(sizeof obs / sizeof obs[0]);
    for (int i = 0; i < n_obs; i++)
        insp_metrics_observe_request(m, route, "POST", i == 0 ? 404 : 200, obs[i]);
    insp_metrics_observe_request(m, "/healthz", "GET", 200, 0.0001);
    char *text = render(m);
    REQUIRE(text);
    page p;
    parse_page(text, &p);
    CHECK_EQ_INT(p.errors, 0);
    CHECK_NEAR(get(&p, "inspectd_http_requests_total", 3, "route", route, "method", "POST",
                   "status", "200"), n_obs - 1, 0);
    CHECK_NEAR(get(&p, "inspectd_http_requests_total", 3, "route", route, "method", "POST",
                   "status", "404"), 1, 0);
    CHECK_NEAR(get(&p, "inspectd_http_requests_total", 3, "route", "/healthz", "method", "GET",
                   "status", "200"), 1, 0);
    const char *h = "inspectd_http_request_duration_seconds";
    for (int b = 0; b <= NB; b++) {
        int want = 0;
        double sum = 0;
        for (int i = 0; i < n_obs; i++) {
            if (b == NB || obs[i] <= want_buckets[b])
                want++;
            sum += obs[i];
        }
        char le[32];
        if (b < NB)
            snprintf(le, sizeof le, "%g", want_buckets[b]);
        else
            snprintf(le, sizeof le, "+Inf");
        CHECK_MSG(get(&p, "inspectd_http_request_duration_seconds_bucket", 3, "route", route,
                      "method", "POST", "le", le) == want,
                  "bucket le=%s: want %d", le, want);
        if (b == NB) {
            char name[128];
            snprintf(name, sizeof name, "%s_count", h);
            CHECK_NEAR(get(&p, name, 2, "route", route, "method", "POST"), want, 0);
            snprintf(name, sizeof name, "%s_sum", h);
            CHECK_NEAR(get(&p, name, 2, "route", route, "method", "POST"), sum, 1e-9);
        }
    }
    free(p.s);
    free(text);
    insp_metrics_free(m);
}

static void types_precede_samples(void)
{
    insp_metrics *m;
    REQUIRE(insp_metrics_create(&m) == INSP_OK);
    insp_metrics_observe_request(m, "/metrics", "GET", 200, 0.001);
    insp_metrics_observe_stage(m, INSP_STAGE_WINDOWS, 0.4);
    char *text = render(m);
    REQUIRE(text);
    page p;
    parse_page(text, &p);
    CHECK_EQ_INT(p.errors, 0);
    /* each family typed once */
    for (int i = 0; i < p.n_types; i++)
        for (int j = 0; j < i; j++)
            CHECK_MSG(strcmp(p.types[i], p.types[j]) != 0, "TYPE %s twice", p.types[i]);
    /* every sample belongs to a family whose TYPE line comes before it in the text */
    for (int i = 0; i < p.n; i++) {
        char fam[128];
        snprintf(fam, sizeof fam, "%s", p.s[i].name);
        const char *suffixes[] = {"_bucket", "_sum", "_count"};
        int typed = -1;
        for (int t = 0; t < p.n_types; t++)
            if (strcmp(p.types[t], fam) == 0)
                typed = t;
        for (int s = 0; s < 3 && typed < 0; s++) {
            size_t fl = strlen(fam), sl = strlen(suffixes[s]);
            if (fl > sl && strcmp(fam + fl - sl, suffixes[s]) == 0) {
                fam[fl - sl] = '\0';
                for (int t = 0; t < p.n_types; t++)
                    if (strcmp(p.types[t], fam) == 0 && strcmp(p.type_kind[t], "histogram") == 0)
                        typed = t;
            }
        }
        CHECK_MSG(typed >= 0, "sample %s has no TYPE", p.s[i].name);
        if (typed >= 0) {
            char needle[160];
            snprintf(needle, sizeof needle, "# TYPE %s ", p.types[typed]);
            const char *tpos = strstr(text, needle);
            char first[160];
            snprintf(first, sizeof first, "\n%s", p.s[i].name);
            const char *spos = strstr(text, first);
            CHECK(tpos && spos && tpos < spos);
        }
    }
    /* all six stages exist; only "windows" has an observation */
    const char *stages[] = {"decode", "preprocess", "image", "windows", "score", "map"};
    for (int s = 0; s < 6; s++) {
        CHECK(strcmp(insp_stage_name(s), stages[s]) == 0);
        CHECK_NEAR(get(&p, "inspectd_inference_stage_seconds_count", 1, "stage", stages[s]),
                   s == INSP_STAGE_WINDOWS ? 1 : 0, 0);
    }
    CHECK_NEAR(get(&p, "inspectd_inference_stage_seconds_bucket", 2, "stage", "windows", "le",
                   "0.25"), 0, 0);
    CHECK_NEAR(get(&p, "inspectd_inference_stage_seconds_bucket", 2, "stage", "windows", "le",
                   "0.5"), 1, 0);
    CHECK(insp_stage_name(INSP_STAGE_COUNT) == NULL);
    free(p.s);
    free(text);
    insp_metrics_free(m);
}

static void gauges_and_rejections(void)
{
    insp_metrics *m;
    REQUIRE(insp_metrics_create(&m) == INSP_OK);
    insp_metrics_set_gauge(m, INSP_GAUGE_QUEUE_DEPTH, 5);
    insp_metrics_set_gauge(m, INSP_GAUGE_QUEUE_CAPACITY, 8);
    insp_metrics_set_gauge(m, INSP_GAUGE_PRODUCTS, 12);
    insp_metrics_set_gauge(m, INSP_GAUGE_REFERENCES, 34);
    insp_metrics_set_gauge(m, INSP_GAUGE_WORKERS_BUSY, 1);
    insp_metrics_set_gauge(m, INSP_GAUGE_COUNT, 99); /* ignored */
    insp_metrics_count_rejected(m);
    insp_metrics_count_rejected(m);
    char *text = render(m);
    REQUIRE(text);
    page p;
    parse_page(text, &p);
    CHECK_EQ_INT(p.errors, 0);
    CHECK_NEAR(get(&p, "inspectd_queue_depth", 0), 5, 0);
    CHECK_NEAR(get(&p, "inspectd_queue_capacity", 0), 8, 0);
    CHECK_NEAR(get(&p, "inspectd_products", 0), 12, 0);
    CHECK_NEAR(get(&p, "inspectd_references", 0), 34, 0);
    CHECK_NEAR(get(&p, "inspectd_workers_busy", 0), 1, 0);
    CHECK_NEAR(get(&p, "inspectd_queue_rejected_total", 0), 2, 0);
    free(p.s);
    free(text);
    insp_metrics_free(m);
    insp_metrics_free(NULL);
}

static void label_escaping(void)
{
    insp_metrics *m;
    REQUIRE(insp_metrics_create(&m) == INSP_OK);
    const char *route = "/odd\"route\\with\nnewline";
    insp_metrics_observe_request(m, route, "GET", 500, 0.01);
    insp_metrics_observe_request(m, NULL, NULL, 400, 0.01);
    char *text = render(m);
    REQUIRE(text);
    page p;
    parse_page(text, &p);
    CHECK_EQ_INT(p.errors, 0);
    CHECK_NEAR(get(&p, "inspectd_http_requests_total", 3, "route", route, "method", "GET",
                   "status", "500"), 1, 0);
    CHECK_NEAR(get(&p, "inspectd_http_requests_total", 3, "route", "unknown", "method",
                   "unknown", "status", "400"), 1, 0);
    free(p.s);
    free(text);
    insp_metrics_free(m);
}

static void series_are_bounded(void)
{
    insp_metrics *m;
    REQUIRE(insp_metrics_create(&m) == INSP_OK);
    int n = INSP_METRICS_MAX_SERIES + 100;
    for (int i = 0; i < n; i++) {
        char route[32];
        snprintf(route, sizeof route, "/raw/%d", i);
        insp_metrics_observe_request(m, route, "GET", 404, 0.001);
    }
    /* an existing series still counts under its own name once full */
    insp_metrics_observe_request(m, "/raw/0", "GET", 404, 0.001);
    char *text = render(m);
    REQUIRE(text);
    page p;
    parse_page(text, &p);
    CHECK_EQ_INT(p.errors, 0);
    int series = 0;
    double total = 0;
    for (int i = 0; i < p.n; i++) {
        if (strcmp(p.s[i].name, "inspectd_http_requests_total") == 0) {
            series++;
            total += p.s[i].value;
        }
    }
    CHECK(series <= INSP_METRICS_MAX_SERIES + 1);
    CHECK_NEAR(total, n + 1, 0);
    CHECK_NEAR(get(&p, "inspectd_http_requests_total", 3, "route", "/raw/0", "method", "GET",
                   "status", "404"), 2, 0);
    CHECK(get(&p, "inspectd_http_requests_total", 3, "route", "other", "method", "other",
              "status", "404") >= 100);
    free(p.s);
    free(text);
    insp_metrics_free(m);
}

#define THREADS 4
#define PER_THREAD 2000

static void *hammer(void *arg)
{
    insp_metrics *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        insp_metrics_observe_request(m, "/v1/products/{id}/inspect", "POST", 200, 0.125);
        insp_metrics_observe_stage(m, INSP_STAGE_SCORE, 0.002);
    }
    return NULL;
}

static void concurrent_observations(void)
{
    insp_metrics *m;
    REQUIRE(insp_metrics_create(&m) == INSP_OK);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, hammer, m);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    char *text = render(m);
    REQUIRE(text);
    page p;
    parse_page(text, &p);
    const char *r = "/v1/products/{id}/inspect";
    CHECK_NEAR(get(&p, "inspectd_http_requests_total", 3, "route", r, "method", "POST", "status",
                   "200"), THREADS * PER_THREAD, 0);
    CHECK_NEAR(get(&p, "inspectd_http_request_duration_seconds_sum", 2, "route", r, "method",
                   "POST"), THREADS * PER_THREAD * 0.125, 1e-6);
    CHECK_NEAR(get(&p, "inspectd_inference_stage_seconds_bucket", 2, "stage", "score", "le",
                   "0.005"), THREADS * PER_THREAD, 0);
    free(p.s);
    free(text);
    insp_metrics_free(m);
}

TEST_MAIN(T(requests_and_latency), T(types_precede_samples), T(gauges_and_rejections),
          T(label_escaping), T(series_are_bounded), T(concurrent_observations))
