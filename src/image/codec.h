/* Internal entry points of the image module: header parsers and the per-format decoders that
 * insp_image_decode dispatches to once the size limit has been checked. */
#ifndef INSP_IMAGE_CODEC_H
#define INSP_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "inspectd/image.h"

/* Largest width or height any decoder accepts: keeps 4·width and row offsets inside int. */
#define INSP_IMAGE_MAX_SIDE (INT32_MAX / 4)

/* PNG signature + IHDR: dimensions, bit depth and color type, with the IHDR CRC checked. */
typedef struct insp_png_header {
    int width, height;
    int bit_depth, color_type, interlace;
} insp_png_header;

int insp_png_parse_header(const uint8_t *data, size_t len, insp_png_header *hdr,
                          insp_error *err);

/* JPEG marker walk from SOI: dimensions from the first SOF, and where the entropy-coded data
 * of the first scan begins (0 when the data ends before any SOS). */
typedef struct insp_jpeg_header {
    int width, height;
    int components;
    size_t scan_offset;
} insp_jpeg_header;

int insp_jpeg_parse_header(const uint8_t *data, size_t len, insp_jpeg_header *hdr,
                           insp_error *err);

/* Decoders proper, called after the pixel limit passed. out->rgb is width·height·3 bytes on
 * success and NULL on failure. */
int insp_jpeg_decode_rgb(const uint8_t *data, size_t len, const insp_jpeg_header *hdr,
                         insp_image *out, insp_error *err);
int insp_png_decode_rgb(const uint8_t *data, size_t len, const insp_png_header *hdr,
                        insp_image *out, insp_error *err);

#endif
