/* Images in and out: JPEG/PNG decode with limits, resize + normalize to model input,
 * PNG encoding of anomaly maps, base64. */
#ifndef INSPECTD_IMAGE_H
#define INSPECTD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "inspectd/status.h"

typedef enum insp_image_format {
    INSP_IMAGE_UNKNOWN = 0,
    INSP_IMAGE_JPEG,
    INSP_IMAGE_PNG,
} insp_image_format;

/* 8-bit RGB, interleaved, rows packed (stride = 3·width). */
typedef struct insp_image {
    int width;
    int height;
    uint8_t *rgb; /* [height, width, 3]; owned, freed by insp_image_free */
} insp_image;

/* Reads only the header: format by magic bytes, then width and height. INSP_ERR_UNSUPPORTED
 * if neither JPEG nor PNG, INSP_ERR_FORMAT if the header is damaged. */
int insp_image_probe(const void *data, size_t len, insp_image_format *format, int *width,
                     int *height, insp_error *err);

/* Decodes JPEG or PNG to 8-bit RGB: gray and palette expand, 16-bit reduces, alpha is dropped.
 * width·height is checked against max_pixels from the header before any pixel is decoded
 * (INSP_ERR_TOO_LARGE). Corrupt or truncated data is INSP_ERR_FORMAT. On failure out->rgb is
 * NULL. Details: max_pixels must be > 0 (else INSP_ERR_INVALID); 0 bytes is INSP_ERR_FORMAT;
 * 16-bit samples keep their high byte; alpha and tRNS are dropped without compositing (as the
 * reference's convert("RGB")); CMYK JPEGs are converted as Adobe (inverted) CMYK; a JPEG that
 * ends before its EOI marker is refused, while libjpeg's recoverable "corrupt data" warnings
 * are accepted, as PIL accepts them; EXIF orientation is not applied. */
int insp_image_decode(const void *data, size_t len, long max_pixels, insp_image *out,
                      insp_error *err);

/* Reads and decodes a file (same rules). A missing file is INSP_ERR_NOT_FOUND; a file over
 * 256 MB is INSP_ERR_TOO_LARGE before it is read. Messages start with the path. */
int insp_image_load(const char *path, long max_pixels, insp_image *out, insp_error *err);

/* Frees the pixels and zeroes the struct. NULL is a harmless no-op. */
void insp_image_free(insp_image *img);

/* Resizes the whole image (no crop) to size×size with antialiased bicubic (a = -0.5, support
 * widened by the scale when shrinking), in float with no rounding between passes, then
 * (v/255 - mean[c]) / std[c]. out: [3, size, size] planar. INSP_ERR_INVALID for an empty
 * image, size < 1 or a zero std; INSP_ERR_NOMEM. */
int insp_image_to_input(const insp_image *img, int size, const float mean[3], const float std[3],
                        float *out);

/* Separable resize of a float plane [h, w] → [out_h, out_w], antialiased bicubic as above;
 * used by insp_image_to_input per channel, exposed for tests. */
int insp_resize_bicubic_plane(const float *src, int w, int h, float *dst, int out_w, int out_h);

/* Grayscale PNG encoders. *png is malloc'ed (free()), *png_len its size; on failure *png is
 * NULL (INSP_ERR_INVALID for a NULL pointer or a side < 1, INSP_ERR_NOMEM). */
int insp_png_encode_gray16(const uint16_t *px, int width, int height, uint8_t **png,
                           size_t *png_len);
int insp_png_encode_gray8(const uint8_t *px, int width, int height, uint8_t **png,
                          size_t *png_len);

/* Decodes a grayscale PNG back to 16-bit values (8-bit ones scaled ×257). For tests and tools.
 * *px is malloc'ed. A color PNG is INSP_ERR_UNSUPPORTED (not converted); gray+alpha loses its
 * alpha; more than 2^26 pixels is INSP_ERR_TOO_LARGE. */
int insp_png_decode_gray16(const void *data, size_t len, uint16_t **px, int *width, int *height,
                           insp_error *err);

/* Standard base64 (RFC 4648, with padding). Returns a malloc'ed NUL-terminated string or NULL
 * on allocation failure; *out_len (may be NULL) gets its length. */
char *insp_base64_encode(const void *data, size_t len, size_t *out_len);

#endif
