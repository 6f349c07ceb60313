/* libpng glue shared by the PNG decoder and encoder: reading from and writing to memory, and
 * error handlers that keep libpng's message and longjmp back instead of printing to stderr. */
#ifndef INSP_IMAGE_PNG_IO_H
#define INSP_IMAGE_PNG_IO_H

#include <png.h>
#include <stddef.h>
#include <stdint.h>

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

void insp_png_on_error(png_structp png, png_const_charp msg);
void insp_png_on_warning(png_structp png, png_const_charp msg);
void insp_png_read_mem(png_structp png, png_bytep out, size_t n);
void insp_png_write_mem(png_structp png, png_bytep data, size_t n);
void insp_png_flush_mem(png_structp png);

#endif
