/* libpng callbacks: memory I/O with bounds checks, and errors turned into a kept message plus
 * a longjmp to the caller's setjmp (libpng's only way to abandon a decode); and the decoders'
 * common read, so the setjmp and the checks around libpng live in one place. */
#include "image/png_io.h"

#include <setjmp.h>
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

static void read_body(png_structp png, png_infop info, insp_png_reader *rd)
{
    png_uint_32 w = (png_uint_32)rd->hdr->width, h = (png_uint_32)rd->hdr->height;
    png_set_read_fn(png, &rd->src, insp_png_read_mem);
    /* Nothing larger than the header we checked and allocated for (libpng's default caps
     * would also refuse a legal 2,000,000 × 1 strip). */
    png_set_user_limits(png, w, h);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != w || png_get_image_height(png, info) != h)
        png_error(png, "IHDR differs from the parsed header");
    rd->transforms(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != rd->channels || png_get_bit_depth(png, info) != rd->depth ||
        png_get_rowbytes(png, info) != (size_t)w * rd->channels * rd->depth / 8) {
        char msg[80];
        snprintf(msg, sizeof msg, "conversion to %d channel(s) of %d bits failed", rd->channels,
                 rd->depth);
        png_error(png, msg);
    }
    png_read_image(png, rd->rows);
    png_read_end(png, NULL);
}

static int run_read(insp_png_reader *rd)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &rd->ectx, insp_png_on_error,
                                             insp_png_on_warning);
    if (!png)
        return INSP_ERR_NOMEM;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return INSP_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return strncmp(rd->ectx.msg, "Out of memory", 13) == 0 ? INSP_ERR_NOMEM
                                                                : INSP_ERR_FORMAT;
    }
    read_body(png, info, rd);
    png_destroy_read_struct(&png, &info, NULL);
    return INSP_OK;
}

int insp_png_read_rows(insp_png_reader *rd, insp_error *err)
{
    rd->ectx.msg[0] = '\0';
    int rc = run_read(rd);
    if (rc == INSP_ERR_NOMEM)
        return insp_error_set(err, rc, "PNG: out of memory while decoding");
    if (rc != INSP_OK)
        return insp_error_set(err, rc, "PNG: %s", rd->ectx.msg[0] ? rd->ectx.msg : "decode failed");
    return INSP_OK;
}
