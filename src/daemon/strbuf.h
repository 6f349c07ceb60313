/* A growable string for building log lines and the /metrics page without fixed limits;
 * private to the daemon modules. */
#ifndef INSPECTD_DAEMON_STRBUF_H
#define INSPECTD_DAEMON_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* Starts in `initial` (caller's storage, e.g. a stack array; may be NULL with cap 0) and
 * moves to the heap when it outgrows it. After an allocation failure `failed` is set and
 * further appends are ignored, so callers check once at the end. data is always
 * NUL-terminated once anything was appended or after init with cap > 0. */
typedef struct insp_strbuf {
    char *data;
    size_t len;
    size_t cap;
    int on_heap;
    int failed;
} insp_strbuf;

void insp_strbuf_init(insp_strbuf *b, char *initial, size_t cap);
void insp_strbuf_append(insp_strbuf *b, const char *s, size_t n);
void insp_strbuf_puts(insp_strbuf *b, const char *s);
void insp_strbuf_putc(insp_strbuf *b, char c);
void insp_strbuf_printf(insp_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void insp_strbuf_vprintf(insp_strbuf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Appends s[0..n) as a quoted JSON string: ", \ and control characters escaped, invalid
 * UTF-8 bytes replaced by U+FFFD so that the result is always valid JSON. */
void insp_strbuf_json_string(insp_strbuf *b, const char *s, size_t n);

/* The contents as a malloc'ed string the caller frees (copied off the caller's storage if
 * needed); NULL if an allocation failed. The buffer is empty and reusable afterwards. */
char *insp_strbuf_detach(insp_strbuf *b, size_t *len);

/* Frees heap storage (the caller's initial storage is left alone). */
void insp_strbuf_free(insp_strbuf *b);

#endif
