/* The image module's front door: recognise JPEG or PNG by magic bytes, enforce the pixel and
 * file-size limits from the header alone, then hand over to the format's decoder. */
#include "inspectd/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/codec.h"

/* Files above this are refused before reading: no real inspection photo comes close. */
#define MAX_FILE_BYTES (256L * 1024 * 1024)

static const uint8_t jpeg_magic[3] = {0xFF, 0xD8, 0xFF};
static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

static insp_image_format sniff(const uint8_t *p, size_t len)
{
    if (len >= sizeof jpeg_magic && memcmp(p, jpeg_magic, sizeof jpeg_magic) == 0)
        return INSP_IMAGE_JPEG;
    if (len >= sizeof png_magic && memcmp(p, png_magic, sizeof png_magic) == 0)
        return INSP_IMAGE_PNG;
    return INSP_IMAGE_UNKNOWN;
}

int insp_image_probe(const void *data, size_t len, insp_image_format *format, int *width,
                     int *height, insp_error *err)
{
    if (format)
        *format = INSP_IMAGE_UNKNOWN;
    if (len == 0)
        return insp_error_set(err, INSP_ERR_FORMAT, "empty image data (0 bytes)");
    if (!data)
        return insp_error_set(err, INSP_ERR_INVALID, "image data is NULL");
    const uint8_t *p = data;
    insp_image_format f = sniff(p, len);
    int w = 0, h = 0, rc;
    if (f == INSP_IMAGE_JPEG) {
        insp_jpeg_header hdr;
        rc = insp_jpeg_parse_header(p, len, &hdr, err);
        w = hdr.width;
        h = hdr.height;
    } else if (f == INSP_IMAGE_PNG) {
        insp_png_header hdr;
        rc = insp_png_parse_header(p, len, &hdr, err);
        w = hdr.width;
        h = hdr.height;
    } else {
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "not a JPEG or PNG image (first bytes %02x %02x %02x %02x)", p[0],
                              len > 1 ? p[1] : 0, len > 2 ? p[2] : 0, len > 3 ? p[3] : 0);
    }
    if (rc != INSP_OK)
        return rc;
    if (format)
        *format = f;
    if (width)
        *width = w;
    if (height)
        *height = h;
    return INSP_OK;
}

/* Limit check on the header's dimensions, before any pixel memory exists. */
static int check_limit(const char *kind, int w, int h, long max_pixels, insp_error *err)
{
    long long n = (long long)w * (long long)h;
    if (n > max_pixels || w > INSP_IMAGE_MAX_SIDE || h > INSP_IMAGE_MAX_SIDE)
        return insp_error_set(err, INSP_ERR_TOO_LARGE,
                              "%s image is %d x %d = %lld pixels, over the limit of %ld", kind,
                              w, h, n, max_pixels);
    if ((unsigned long long)n > SIZE_MAX / 4)
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "%s image of %d x %d does not fit in memory",
                              kind, w, h);
    return INSP_OK;
}

int insp_image_decode(const void *data, size_t len, long max_pixels, insp_image *out,
                      insp_error *err)
{
    if (!out)
        return insp_error_set(err, INSP_ERR_INVALID, "no output image");
    memset(out, 0, sizeof *out);
    if (max_pixels <= 0)
        return insp_error_set(err, INSP_ERR_INVALID, "pixel limit %ld is not positive", max_pixels);
    if (len == 0)
        return insp_error_set(err, INSP_ERR_FORMAT, "empty image data (0 bytes)");
    if (!data)
        return insp_error_set(err, INSP_ERR_INVALID, "image data is NULL");

    const uint8_t *p = data;
    int rc;
    switch (sniff(p, len)) {
    case INSP_IMAGE_JPEG: {
        insp_jpeg_header hdr;
        if ((rc = insp_jpeg_parse_header(p, len, &hdr, err)) != INSP_OK)
            return rc;
        if ((rc = check_limit("JPEG", hdr.width, hdr.height, max_pixels, err)) != INSP_OK)
            return rc;
        return insp_jpeg_decode_rgb(p, len, &hdr, out, err);
    }
    case INSP_IMAGE_PNG: {
        insp_png_header hdr;
        if ((rc = insp_png_parse_header(p, len, &hdr, err)) != INSP_OK)
            return rc;
        if ((rc = check_limit("PNG", hdr.width, hdr.height, max_pixels, err)) != INSP_OK)
            return rc;
        return insp_png_decode_rgb(p, len, &hdr, out, err);
    }
    default:
        /* probe words the error. */
        return insp_image_probe(data, len, NULL, NULL, NULL, err);
    }
}

/* Reads the whole of fd (size known from fstat, but short reads and growth are handled). */
static int read_all(int fd, size_t size, uint8_t **buf_out, size_t *len_out, insp_error *err)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return insp_error_set(err, INSP_ERR_NOMEM, "no memory for %zu bytes of file", size);
    size_t n = 0;
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return insp_error_set(err, INSP_ERR_IO, "read failed: %s", strerror(e));
        }
        if (r == 0)
            break; /* shrank while reading: decode what is there */
        n += (size_t)r;
    }
    *buf_out = buf;
    *len_out = n;
    return INSP_OK;
}

int insp_image_load(const char *path, long max_pixels, insp_image *out, insp_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out)
        return insp_error_set(err, INSP_ERR_INVALID, "image path or output is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return insp_error_set(err, errno == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "image %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return insp_error_set(err, INSP_ERR_IO, "image %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return insp_error_set(err, INSP_ERR_IO, "image %s: not a regular file", path);
    }
    if (st.st_size > MAX_FILE_BYTES) {
        close(fd);
        return insp_error_set(err, INSP_ERR_TOO_LARGE,
                              "image %s: file is %lld bytes, over the limit of %ld", path,
                              (long long)st.st_size, MAX_FILE_BYTES);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_all(fd, (size_t)st.st_size, &buf, &len, err);
    close(fd);
    if (rc == INSP_OK)
        rc = insp_image_decode(buf, len, max_pixels, out, err);
    free(buf);
    if (rc != INSP_OK && err)
        insp_error_prefix(err, "image %s: ", path);
    return rc;
}

void insp_image_free(insp_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}
