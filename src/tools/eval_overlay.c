/* Heat-map overlays for the report: the image at thumbnail size, the anomaly map blended in
 * with a blue→red scale, the ground-truth outline in white; a base64 JPEG to inline. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "inspectd/image.h"
#include "tools/eval.h"

/* Blue → cyan → yellow → red, u in [0, 1]. */
static void heat_color(float u, float rgb[3])
{
    float r = 1.5f - fabsf(4 * u - 3), g = 1.5f - fabsf(4 * u - 2), b = 1.5f - fabsf(4 * u - 1);
    rgb[0] = r < 0 ? 0 : r > 1 ? 1 : r;
    rgb[1] = g < 0 ? 0 : g > 1 ? 1 : g;
    rgb[2] = b < 0 ? 0 : b > 1 ? 1 : b;
}

/* The image resized to w×h as interleaved RGB bytes (the library's antialiased bicubic). */
static int thumb_rgb(const insp_image *img, int w, int h, uint8_t *out)
{
    long n_src = (long)img->width * img->height, n = (long)w * h;
    float *src = malloc((size_t)n_src * sizeof *src), *dst = malloc((size_t)n * sizeof *dst);
    int st = src && dst ? INSP_OK : INSP_ERR_NOMEM;
    for (int ch = 0; !st && ch < 3; ch++) {
        for (long i = 0; i < n_src; i++)
            src[i] = img->rgb[3 * i + ch];
        st = insp_resize_bicubic_plane(src, img->width, img->height, dst, w, h);
        for (long i = 0; !st && i < n; i++) {
            float v = roundf(dst[i]);
            out[3 * i + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(src);
    free(dst);
    return st;
}

int eval_overlay_b64(const char *image_path, const float *map, const uint8_t *mask, int mw,
                     int mh, float lo, float hi, char **b64, insp_error *err)
{
    *b64 = NULL;
    insp_image img = {0};
    int st = insp_image_load(image_path, 64L * 1000 * 1000, &img, err);
    if (st)
        return st;
    long n = (long)mw * mh;
    uint8_t *rgb = malloc((size_t)n * 3);
    if (!rgb || thumb_rgb(&img, mw, mh, rgb)) {
        insp_image_free(&img);
        free(rgb);
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: cannot make a thumbnail", image_path);
    }
    insp_image_free(&img);
    float span = hi > lo ? hi - lo : 1;
    for (int y = 0; y < mh; y++) {
        for (int x = 0; x < mw; x++) {
            long i = (long)y * mw + x;
            float c[3];
            heat_color((map[i] - lo) / span, c);
            for (int ch = 0; ch < 3; ch++)
                rgb[3 * i + ch] = (uint8_t)lroundf(0.55f * rgb[3 * i + ch] + 0.45f * 255 * c[ch]);
            // Outline: a mask pixel with a 4-neighbour outside the mask (or the border).
            if (mask && mask[i] &&
                (x == 0 || y == 0 || x == mw - 1 || y == mh - 1 || !mask[i - 1] ||
                 !mask[i + 1] || !mask[i - mw] || !mask[i + mw]))
                memset(rgb + 3 * i, 255, 3);
        }
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long jlen = 0;
    if (!tj || tjCompress2(tj, rgb, mw, 0, mh, TJPF_RGB, &jpeg, &jlen, TJSAMP_420, 85, 0) != 0)
        st = insp_error_set(err, INSP_ERR_INTERNAL, "%s: JPEG encoding failed: %s", image_path,
                            tj ? tjGetErrorStr2(tj) : "no encoder");
    if (!st && !(*b64 = insp_base64_encode(jpeg, jlen, NULL)))
        st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    tjFree(jpeg);
    if (tj)
        tjDestroy(tj);
    free(rgb);
    return st;
}
