/* JSON-lines logging to stderr: one object per line, written with a single write(2) under a
 * lock so that lines from different threads never interleave. */
#include "daemon/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/strbuf.h"
#include "inspectd/status.h"

static atomic_int log_level = INSP_LOG_LEVEL_INFO;
static atomic_int log_fd = 2;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void insp_log_set_level(int level)
{
    if (level < INSP_LOG_LEVEL_DEBUG)
        level = INSP_LOG_LEVEL_DEBUG;
    if (level > INSP_LOG_LEVEL_ERROR)
        level = INSP_LOG_LEVEL_ERROR;
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int insp_log_get_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

int insp_log_enabled(int level)
{
    return level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int insp_log_level_parse(const char *name, int *level)
{
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, level_names[i]) == 0) {
            *level = i;
            return INSP_OK;
        }
    }
    if (name && strcmp(name, "warning") == 0) {
        *level = INSP_LOG_LEVEL_WARN;
        return INSP_OK;
    }
    return INSP_ERR_INVALID;
}

const char *insp_log_level_name(int level)
{
    return level >= 0 && level < 4 ? level_names[level] : "?";
}

void insp_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

/* "2026-11-23T12:00:00.123Z" */
static void put_timestamp(insp_strbuf *b)
{
    struct timespec ts;
    struct tm tm;
    char buf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    insp_strbuf_append(b, buf, n);
    insp_strbuf_printf(b, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void put_key(insp_strbuf *b, const char *key)
{
    insp_strbuf_putc(b, ',');
    insp_strbuf_json_string(b, key, strlen(key));
    insp_strbuf_putc(b, ':');
}

static int is_reserved(const char *key)
{
    return strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "event") == 0 ||
           strcmp(key, "msg") == 0;
}

static void put_fields(insp_strbuf *b, json_t *fields)
{
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value) {
        if (is_reserved(key)) {
            insp_strbuf_puts(b, ",\"_");
            insp_strbuf_append(b, key, strlen(key)); /* reserved names need no escaping */
            insp_strbuf_puts(b, "\":");
        } else {
            put_key(b, key);
        }
        /* jansson only holds valid UTF-8, so its encoding needs no repair. */
        char *enc = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        insp_strbuf_puts(b, enc ? enc : "null");
        free(enc);
    }
}

static void emit(insp_strbuf *b)
{
    int fd = atomic_load(&log_fd);
    const char *p = b->data;
    size_t left = b->len;
    pthread_mutex_lock(&log_lock);
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* nowhere left to report a logging failure */
        }
        p += w;
        left -= (size_t)w;
    }
    pthread_mutex_unlock(&log_lock);
}

static void vlog(int level, const char *event, json_t *fields, const char *fmt, va_list ap)
{
    char stack[1024];
    insp_strbuf b;
    insp_strbuf_init(&b, stack, sizeof stack);
    insp_strbuf_puts(&b, "{\"ts\":\"");
    put_timestamp(&b);
    insp_strbuf_puts(&b, "\",\"level\":\"");
    insp_strbuf_puts(&b, insp_log_level_name(level));
    insp_strbuf_puts(&b, "\",\"event\":");
    event = event ? event : "log";
    insp_strbuf_json_string(&b, event, strlen(event));
    insp_strbuf_puts(&b, ",\"msg\":");

    char mstack[512];
    insp_strbuf m;
    insp_strbuf_init(&m, mstack, sizeof mstack);
    insp_strbuf_vprintf(&m, fmt, ap);
    if (m.failed)
        insp_strbuf_json_string(&b, "(message lost: out of memory)", 29);
    else
        insp_strbuf_json_string(&b, m.data, m.len);
    insp_strbuf_free(&m);

    if (fields && json_is_object(fields))
        put_fields(&b, fields);
    insp_strbuf_puts(&b, "}\n");
    if (!b.failed)
        emit(&b);
    insp_strbuf_free(&b);
}

void insp_log_write(int level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, event, NULL, fmt, ap);
    va_end(ap);
}

void insp_log_fields(int level, const char *event, json_t *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, event, fields, fmt, ap);
    va_end(ap);
    json_decref(fields);
}
