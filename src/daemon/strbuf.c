/* The growable string behind log lines and the metrics page (see strbuf.h). */
#include "daemon/strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void insp_strbuf_init(insp_strbuf *b, char *initial, size_t cap)
{
    b->data = cap ? initial : NULL;
    b->len = 0;
    b->cap = cap;
    b->on_heap = 0;
    b->failed = 0;
    if (cap)
        b->data[0] = '\0';
}

/* Makes room for `extra` more bytes plus the terminating NUL. */
static int reserve(insp_strbuf *b, size_t extra)
{
    if (b->failed)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return 0;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *nd;
    if (b->on_heap) {
        nd = realloc(b->data, cap);
    } else {
        nd = malloc(cap);
        if (nd && b->len)
            memcpy(nd, b->data, b->len);
    }
    if (!nd) {
        b->failed = 1;
        return 0;
    }
    b->data = nd;
    b->cap = cap;
    b->on_heap = 1;
    b->data[b->len] = '\0';
    return 1;
}

void insp_strbuf_append(insp_strbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void insp_strbuf_puts(insp_strbuf *b, const char *s)
{
    insp_strbuf_append(b, s, strlen(s));
}

void insp_strbuf_putc(insp_strbuf *b, char c)
{
    insp_strbuf_append(b, &c, 1);
}

void insp_strbuf_vprintf(insp_strbuf *b, const char *fmt, va_list ap)
{
    if (b->failed)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n >= room) {
        if (!reserve(b, (size_t)n))
            return;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    }
    b->len += (size_t)n;
}

void insp_strbuf_printf(insp_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    insp_strbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

void insp_strbuf_json_string(insp_strbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    insp_strbuf_putc(b, '"');
    size_t i = 0, run = 0; /* run: start of bytes copied verbatim */
    while (i < n) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char ubuf[8];
        size_t step = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
            esc = ubuf;
        } else if (c >= 0x80) {
            step = utf8_seq_len(s + i, n - i);
            if (step == 0) {
                esc = "\xEF\xBF\xBD"; /* U+FFFD */
                step = 1;
            }
        }
        if (esc) {
            insp_strbuf_append(b, (const char *)s + run, i - run);
            insp_strbuf_puts(b, esc);
            i += step;
            run = i;
        } else {
            i += step;
        }
    }
    insp_strbuf_append(b, (const char *)s + run, n - run);
    insp_strbuf_putc(b, '"');
}

char *insp_strbuf_detach(insp_strbuf *b, size_t *len)
{
    char *out = NULL;
    if (!b->failed) {
        if (b->on_heap) {
            out = b->data;
            b->on_heap = 0;
        } else if ((out = malloc(b->len + 1))) {
            if (b->len)
                memcpy(out, b->data, b->len);
            out[b->len] = '\0';
        }
        if (out && len)
            *len = b->len;
    }
    insp_strbuf_free(b);
    b->failed = 0;
    return out;
}

void insp_strbuf_free(insp_strbuf *b)
{
    if (b->on_heap)
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->on_heap = 0;
}
