/* libpng glue shared by the PNG decoders and encoder: reading from and writing to memory, error
 * handlers that keep libpng's message and longjmp back instead of printing to stderr, and the
 * one read skeleton (setjmp, limits, IHDR check) that both decoders run with their transforms. */
#ifndef INSP_IMAGE_PNG_IO_H
#define INSP_IMAGE_PNG_IO_H

#include <png.h>
#include <stddef.h>
#include <stdint.h>

#include "image/codec.h"

/* Error context passed as libpng's error_ptr. */
typedef struct insp_png_errctx {
    char msg[200];
} insp_png_errctx;

/* A read cursor over a caller's buffer; reading past the end is a libpng error. */
typedef struct insp_png_src {
    const uint8_t *data;
    size_t len, pos;
} insp_png_src;

/* A growing malloc'ed output buffer; oom is set when it could not grow. */
typedef struct insp_png_sink {
    uint8_t *data;
    size_t len, cap;
    int oom;
} insp_png_sink;

/* One decode of a PNG in memory into caller-owned rows. Lives in the caller's frame so nothing
 * the setjmp frame modifies has to survive the longjmp. */
typedef struct insp_png_reader {
    insp_png_src src;
    insp_png_errctx ectx;
    const insp_png_header *hdr; /* parsed and checked by insp_png_parse_header */
    png_bytep *rows;            /* [height] rows of width · channels · depth/8 bytes */
    /* Sets the caller's conversions (expand, strip, ...) once the info is read; it may call
     * png_error. Interlace handling is added by the skeleton. */
    void (*transforms)(png_structp png);
    int channels, depth; /* what the conversions must produce per pixel */
} insp_png_reader;

/* Reads the whole image into rd->rows: the size may not exceed the parsed header (user
 * limits) and the IHDR libpng reads must match it; the converted rows must have exactly
 * rd->channels samples of rd->depth bits. INSP_OK, INSP_ERR_NOMEM, or INSP_ERR_FORMAT with
 * libpng's message ("PNG: ...") in err. */
int insp_png_read_rows(insp_png_reader *rd, insp_error *err);

void insp_png_on_error(png_structp png, png_const_charp msg);
void insp_png_on_warning(png_structp png, png_const_charp msg);
void insp_png_read_mem(png_structp png, png_bytep out, size_t n);
void insp_png_write_mem(png_structp png, png_bytep data, size_t n);
void insp_png_flush_mem(png_structp png);

#endif
