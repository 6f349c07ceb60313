/* JPEG: a bounds-checked marker walk for the header (no allocation, so the pixel limit is
 * enforced before libjpeg-turbo touches anything), then libturbojpeg decodes to RGB.
 *
 * Damage policy: a fatal libjpeg error is INSP_ERR_FORMAT. A file that ends before its EOI
 * marker is INSP_ERR_FORMAT too (libjpeg would pad the missing rows with gray and only warn;
 * a half-gray photo would be scored as a defect, so we refuse it, as PIL does by default).
 * libjpeg's "corrupt data" warnings (extraneous bytes before a marker, a bad Huffman code in
 * otherwise complete data) are accepted, as PIL accepts them; see benign_warning.
 * EXIF orientation is not applied (nor is it by the reference). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "image/codec.h"

static int is_sof(uint8_t m)
{
    /* SOF0..SOF15 minus DHT (C4), JPG (C8) and DAC (CC), which share the range. */
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

int insp_jpeg_parse_header(const uint8_t *p, size_t len, insp_jpeg_header *hdr,
                           insp_error *err)
{
    memset(hdr, 0, sizeof *hdr);
    if (len < 2 || p[0] != 0xFF || p[1] != 0xD8)
        return insp_error_set(err, INSP_ERR_FORMAT, "JPEG: no SOI marker");
    int have_sof = 0;
    size_t pos = 2;
    for (;;) {
        /* Like libjpeg, skip stray bytes up to the next marker (it only warns about them). */
        while (pos < len && p[pos] != 0xFF)
            pos++;
        while (pos < len && p[pos] == 0xFF) /* fill bytes */
            pos++;
        if (pos >= len)
            break;
        uint8_t m = p[pos++];
        if (m == 0x00)
            continue; /* an escaped FF outside any scan: more stray data */
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* TEM, RSTn: no length */
        if (m == 0xD8)
            return insp_error_set(err, INSP_ERR_FORMAT, "JPEG: stray marker 0x%02x at byte %zu",
                                  m, pos - 1);
        if (m == 0xD9)
            return insp_error_set(err, INSP_ERR_FORMAT, "JPEG: EOI before any image data");
        if (len - pos < 2)
            break;
        size_t seg = (size_t)p[pos] << 8 | p[pos + 1];
        if (seg < 2)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "JPEG: marker 0x%02x has bad length %zu", m, seg);
        if (is_sof(m) && !have_sof) {
            if (seg < 8 || len - pos < 8)
                break;
            int h = p[pos + 3] << 8 | p[pos + 4];
            int w = p[pos + 5] << 8 | p[pos + 6];
            if (w == 0)
                return insp_error_set(err, INSP_ERR_FORMAT, "JPEG: frame width is 0");
            if (h == 0)
                return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                                      "JPEG: height given by a DNL marker is not supported");
            hdr->width = w;
            hdr->height = h;
            hdr->components = p[pos + 7];
            have_sof = 1;
        }
        if (m == 0xDA) {
            if (!have_sof)
                return insp_error_set(err, INSP_ERR_FORMAT, "JPEG: scan before frame header");
            if (seg <= len - pos)
                hdr->scan_offset = pos + seg;
            break;
        }
        if (seg > len - pos)
            break;
        pos += seg;
    }
    if (!have_sof)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "JPEG: no frame header in %zu bytes (truncated or damaged)", len);
    return INSP_OK;
}

/* Entropy-coded data escapes 0xFF as FF 00, so the first FF D9 after the first scan starts is
 * the EOI marker; its absence means the file was cut short. */
static int has_eoi(const uint8_t *p, size_t len, size_t from)
{
    if (from == 0 || from >= len)
        return 0;
    return memmem(p + from, len - from, "\xFF\xD9", 2) != NULL;
}

/* libjpeg's recoverable warnings, under which the whole image was still decoded. turbojpeg
 * keeps the first warning's text, and a later fatal error overwrites it, so a message from
 * this list means no fatal error followed. Anything else (including "Premature end of JPEG
 * file") is refused. */
static int benign_warning(const char *msg)
{
    static const char *const prefixes[] = {
        "Corrupt JPEG data:",
        "Invalid SOS parameters for sequential JPEG",
        "Inconsistent progression sequence",
        "Unknown Adobe color transform code",
        "Warning: unknown JFIF revision number",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

/* Adobe CMYK JPEGs (nearly all CMYK JPEGs) store inverted ink values, so with c and k as
 * stored, red is k·c/255, rounded; PIL's conversion of such files agrees to within one level. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n_px)
{
    for (size_t i = 0; i < n_px; i++) {
        unsigned k = cmyk[4 * i + 3];
        for (int c = 0; c < 3; c++) {
            unsigned t = cmyk[4 * i + c] * k + 128;
            rgb[3 * i + c] = (uint8_t)(((t >> 8) + t) >> 8);
        }
    }
}

int insp_jpeg_decode_rgb(const uint8_t *data, size_t len, const insp_jpeg_header *hdr,
                         insp_image *out, insp_error *err)
{
    memset(out, 0, sizeof *out);
    if (!has_eoi(data, len, hdr->scan_offset))
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "JPEG: data ends before the end-of-image marker (truncated file)");
    if (len > ULONG_MAX)
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "JPEG: %zu bytes", len);

    tjhandle tj = tjInitDecompress();
    if (!tj)
        return insp_error_set(err, INSP_ERR_NOMEM, "JPEG: cannot create a decoder");
    int rc = INSP_OK;
    uint8_t *rgb = NULL, *cmyk = NULL;
    int w = 0, h = 0, subsamp = -1, colorspace = -1;
    /* Header warnings (stray bytes between segments) leave the header values filled in. */
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0) {
        int code = tjGetErrorCode(tj);
        const char *msg = tjGetErrorStr2(tj);
        if (code != TJERR_WARNING || !benign_warning(msg)) {
            rc = insp_error_set(err, INSP_ERR_FORMAT, "JPEG: %s", msg);
            goto done;
        }
    }
    if (w != hdr->width || h != hdr->height) {
        rc = insp_error_set(err, INSP_ERR_FORMAT, "JPEG: frame is %d x %d, decoder says %d x %d",
                            hdr->width, hdr->height, w, h);
        goto done;
    }
    size_t n_px = (size_t)w * (size_t)h;
    int is_cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    rgb = malloc(n_px * 3);
    if (is_cmyk)
        cmyk = malloc(n_px * 4);
    if (!rgb || (is_cmyk && !cmyk)) {
        rc = insp_error_set(err, INSP_ERR_NOMEM, "JPEG: no memory for %d x %d pixels", w, h);
        goto done;
    }
    /* LIMITSCANS caps progressive scans, which otherwise let a tiny file burn minutes of CPU. */
    if (tjDecompress2(tj, data, (unsigned long)len, is_cmyk ? cmyk : rgb, w, 0, h,
                      is_cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_LIMITSCANS) != 0) {
        int code = tjGetErrorCode(tj);
        const char *msg = tjGetErrorStr2(tj);
        if (code != TJERR_WARNING || !benign_warning(msg)) {
            rc = insp_error_set(err, INSP_ERR_FORMAT, "JPEG: %s", msg);
            goto done;
        }
    }
    if (is_cmyk)
        cmyk_to_rgb(cmyk, rgb, n_px);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    rgb = NULL;
done:
    free(rgb);
    free(cmyk);
    tjDestroy(tj);
    return rc;
}
