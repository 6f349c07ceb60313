/* PNG to 8-bit RGB with libpng over a memory buffer. The IHDR is parsed (and its CRC checked)
 * here first, so the pixel limit is enforced and the output allocated before libpng starts.
 *
 * Conversions: palette and gray expand to RGB; 16-bit samples keep their high byte
 * (png_set_strip_16, as PIL does for 16-bit RGB; PIL clips 16-bit *gray* to 255 instead, we
 * take the high byte there too); alpha and tRNS are dropped without compositing, as the
 * reference's convert("RGB") does; gAMA/iCCP are ignored. Any libpng error, a bad critical
 * chunk CRC or a missing IEND is INSP_ERR_FORMAT. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image/codec.h"
#include "image/png_io.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int valid_depth(int color_type, int depth)
{
    switch (color_type) {
    case 0: return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3: return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2: case 4: case 6: return depth == 8 || depth == 16;
    default: return 0;
    }
}

int insp_png_parse_header(const uint8_t *p, size_t len, insp_png_header *hdr, insp_error *err)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    memset(hdr, 0, sizeof *hdr);
    /* signature 8 + length 4 + "IHDR" 4 + data 13 + CRC 4 */
    if (len < 33)
        return insp_error_set(err, INSP_ERR_FORMAT, "PNG: %zu bytes, too short for a header",
                              len);
    if (memcmp(p, sig, 8) != 0)
        return insp_error_set(err, INSP_ERR_FORMAT, "PNG: bad signature");
    if (be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0)
        return insp_error_set(err, INSP_ERR_FORMAT, "PNG: first chunk is not a 13-byte IHDR");
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), p + 12, 17);
    if (crc != be32(p + 29))
        return insp_error_set(err, INSP_ERR_FORMAT, "PNG: IHDR CRC mismatch (damaged header)");
    uint32_t w = be32(p + 16), h = be32(p + 20);
    if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu)
        return insp_error_set(err, INSP_ERR_FORMAT, "PNG: invalid size %u x %u", w, h);
    int depth = p[24], ctype = p[25], interlace = p[28];
    if (!valid_depth(ctype, depth) || p[26] != 0 || p[27] != 0 || interlace > 1)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "PNG: invalid IHDR (bit depth %d, color type %d, interlace %d)",
                              depth, ctype, interlace);
    hdr->width = (int)w;
    hdr->height = (int)h;
    hdr->bit_depth = depth;
    hdr->color_type = ctype;
    hdr->interlace = interlace;
    return INSP_OK;
}

/* Palette and gray expand to RGB, 16 bits keep the high byte, alpha goes (see the top). */
static void rgb_transforms(png_structp png)
{
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
}

int insp_png_decode_rgb(const uint8_t *data, size_t len, const insp_png_header *hdr,
                        insp_image *out, insp_error *err)
{
    memset(out, 0, sizeof *out);
    size_t w = (size_t)hdr->width, h = (size_t)hdr->height;
    uint8_t *rgb = malloc(w * h * 3);
    png_bytep *rows = malloc(h * sizeof *rows);
    if (!rgb || !rows) {
        free(rgb);
        free(rows);
        return insp_error_set(err, INSP_ERR_NOMEM, "PNG: no memory for %zu x %zu pixels", w, h);
    }
    for (size_t y = 0; y < h; y++)
        rows[y] = rgb + y * w * 3;
    insp_png_reader rd = {.src = {data, len, 0}, .hdr = hdr, .rows = rows,
                          .transforms = rgb_transforms, .channels = 3, .depth = 8};
    int rc = insp_png_read_rows(&rd, err);
    free(rows);
    if (rc != INSP_OK) {
        free(rgb);
        return rc;
    }
    out->width = hdr->width;
    out->height = hdr->height;
    out->rgb = rgb;
    return INSP_OK;
}
