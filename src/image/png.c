/* Grayscale PNG in memory: anomaly maps go out as 8- or 16-bit gray PNGs, and tests and tools
 * read them back with insp_png_decode_gray16. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "image/codec.h"
#include "image/png_io.h"
#include "inspectd/image.h"

/* Cap for the decoder, which takes no limit argument: far above any map we write. */
#define GRAY_MAX_PIXELS (1L << 26)

typedef struct write_job {
    insp_png_sink sink;
    insp_png_errctx ectx;
    const void *px; /* [height, width] uint8_t or uint16_t */
    int width, height, depth;
    uint8_t *row;   /* [width · depth/8] big-endian scratch row */
} write_job;

static void write_body(png_structp png, png_infop info, write_job *job)
{
    png_set_write_fn(png, &job->sink, insp_png_write_mem, insp_png_flush_mem);
    png_set_user_limits(png, (png_uint_32)job->width, (png_uint_32)job->height);
    png_set_IHDR(png, info, (png_uint_32)job->width, (png_uint_32)job->height, job->depth,
                 PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t w = (size_t)job->width;
    for (size_t y = 0; y < (size_t)job->height; y++) {
        if (job->depth == 16) {
            /* PNG stores 16-bit samples big-endian whatever the host order. */
            const uint16_t *s = (const uint16_t *)job->px + y * w;
            for (size_t x = 0; x < w; x++) {
                job->row[2 * x] = (uint8_t)(s[x] >> 8);
                job->row[2 * x + 1] = (uint8_t)(s[x] & 0xFF);
            }
        } else {
            memcpy(job->row, (const uint8_t *)job->px + y * w, w);
        }
        png_write_row(png, job->row);
    }
    png_write_end(png, NULL);
}

static int run_write(write_job *job)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job->ectx,
                                              insp_png_on_error, insp_png_on_warning);
    if (!png)
        return INSP_ERR_NOMEM;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return INSP_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        /* Our inputs are always valid, so only memory can fail here. */
        return job->sink.oom || strncmp(job->ectx.msg, "Out of memory", 13) == 0
                   ? INSP_ERR_NOMEM
                   : INSP_ERR_INTERNAL;
    }
    write_body(png, info, job);
    png_destroy_write_struct(&png, &info);
    return INSP_OK;
}

static int encode_gray(const void *px, int width, int height, int depth, uint8_t **png,
                       size_t *png_len)
{
    if (png)
        *png = NULL;
    if (png_len)
        *png_len = 0;
    if (!px || !png || !png_len || width < 1 || height < 1 || width > INSP_IMAGE_MAX_SIDE ||
        height > INSP_IMAGE_MAX_SIDE)
        return INSP_ERR_INVALID;
    write_job job = {.px = px, .width = width, .height = height, .depth = depth};
    job.row = malloc((size_t)width * (size_t)(depth / 8));
    if (!job.row)
        return INSP_ERR_NOMEM;
    int rc = run_write(&job);
    free(job.row);
    if (rc != INSP_OK) {
        free(job.sink.data);
        return rc;
    }
    *png = job.sink.data;
    *png_len = job.sink.len;
    return INSP_OK;
}

int insp_png_encode_gray16(const uint16_t *px, int width, int height, uint8_t **png,
                           size_t *png_len)
{
    return encode_gray(px, width, height, 16, png, png_len);
}

int insp_png_encode_gray8(const uint8_t *px, int width, int height, uint8_t **png,
                          size_t *png_len)
{
    return encode_gray(px, width, height, 8, png, png_len);
}

/* 1/2/4-bit gray widens to 8 bits, 16 bits stay; the alpha of gray+alpha goes. */
static void gray_transforms(png_structp png)
{
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_alpha(png);
}

int insp_png_decode_gray16(const void *data, size_t len, uint16_t **px, int *width, int *height,
                           insp_error *err)
{
    if (px)
        *px = NULL;
    if (!px || !width || !height)
        return insp_error_set(err, INSP_ERR_INVALID, "PNG: output pointers are NULL");
    if (len == 0)
        return insp_error_set(err, INSP_ERR_FORMAT, "PNG: empty data (0 bytes)");
    if (!data)
        return insp_error_set(err, INSP_ERR_INVALID, "PNG: data is NULL");
    insp_png_header hdr;
    int rc = insp_png_parse_header(data, len, &hdr, err);
    if (rc != INSP_OK)
        return rc;
    /* Gray (0) and gray+alpha (4) only: a color map is not a map we wrote. */
    if (hdr.color_type != 0 && hdr.color_type != 4)
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "PNG: color type %d is not grayscale", hdr.color_type);
    long long n = (long long)hdr.width * hdr.height;
    if (n > GRAY_MAX_PIXELS)
        return insp_error_set(err, INSP_ERR_TOO_LARGE,
                              "PNG: %d x %d = %lld pixels, over the limit of %ld", hdr.width,
                              hdr.height, n, GRAY_MAX_PIXELS);

    size_t w = (size_t)hdr.width, h = (size_t)hdr.height;
    int is16 = hdr.bit_depth == 16;
    uint8_t *raw = malloc(w * h * 2); /* room for 16-bit rows; 8-bit rows use half */
    png_bytep *rows = malloc(h * sizeof *rows);
    uint16_t *vals = malloc(w * h * sizeof *vals);
    if (!raw || !rows || !vals) {
        free(raw);
        free(rows);
        free(vals);
        return insp_error_set(err, INSP_ERR_NOMEM, "PNG: no memory for %zu x %zu pixels", w, h);
    }
    size_t stride = is16 ? 2 * w : w;
    for (size_t y = 0; y < h; y++)
        rows[y] = raw + y * stride;
    insp_png_reader rd = {.src = {data, len, 0}, .hdr = &hdr, .rows = rows,
                          .transforms = gray_transforms, .channels = 1, .depth = is16 ? 16 : 8};
    rc = insp_png_read_rows(&rd, err);
    free(rows);
    if (rc != INSP_OK) {
        free(raw);
        free(vals);
        return rc;
    }
    for (size_t i = 0; i < w * h; i++)
        vals[i] = is16 ? (uint16_t)(raw[2 * i] << 8 | raw[2 * i + 1]) : (uint16_t)(raw[i] * 257);
    free(raw);
    *px = vals;
    *width = hdr.width;
    *height = hdr.height;
    return INSP_OK;
}
