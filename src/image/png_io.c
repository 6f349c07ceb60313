/* libpng callbacks: memory I/O with bounds checks, and errors turned into a kept message plus
 * a longjmp to the caller's setjmp (libpng's only way to abandon a decode). */
#include "image/png_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void insp_png_on_error(png_structp png, png_const_charp msg)
{
    insp_png_errctx *ctx = png_get_error_ptr(png);
    if (ctx)
        snprintf(ctx->msg, sizeof ctx->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

void insp_png_on_warning(png_structp png, png_const_charp msg)
{
    /* Warnings (a bad ancillary chunk CRC, an unknown sRGB profile) leave the pixels intact. */
    (void)png;
    (void)msg;
}

void insp_png_read_mem(png_structp png, png_bytep out, size_t n)
{
    insp_png_src *src = png_get_io_ptr(png);
    if (n > src->len - src->pos)
        png_error(png, "unexpected end of data (truncated file)");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

void insp_png_write_mem(png_structp png, png_bytep data, size_t n)
{
    insp_png_sink *sink = png_get_io_ptr(png);
    if (n > sink->cap - sink->len) {
        size_t need = sink->len + n;
        if (need < sink->len) {
            sink->oom = 1;
            png_error(png, "output too large");
        }
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *grown = realloc(sink->data, cap);
        if (!grown) {
            sink->oom = 1;
            png_error(png, "out of memory");
        }
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, data, n);
    sink->len += n;
}

void insp_png_flush_mem(png_structp png)
{
    (void)png;
}
