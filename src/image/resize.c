/* Model input: antialiased bicubic resize, the arithmetic of torch's
 * interpolate(mode="bicubic", antialias=True, align_corners=False) on float data, which is
 * also PIL's float bicubic. A wrong resampler shifts every embedding (clip.cpp's lesson), so
 * this mirrors the reference down to float types and summation order.
 *
 * Per axis, output i samples center = scale·(i + 0.5) with scale = in/out; when shrinking the
 * kernel is stretched by scale (support 2·scale, argument divided by scale), when enlarging
 * it is the plain Keys cubic (a = -0.5, support 2). Taps are clipped to the image and the
 * weights renormalized to sum 1. Horizontal pass first, then vertical, both in float. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inspectd/image.h"

/* Resampling weights of one axis, computed once and applied to every row or column. */
typedef struct axis_weights {
    int out_n;
    int taps;     /* stride of w: the widest window */
    int *start;   /* [out_n] first source index */
    int *count;   /* [out_n] taps actually used */
    float *w;     /* [out_n, taps] */
} axis_weights;

/* Keys cubic convolution with a = -0.5, written as the reference evaluates it. */
static float cubic(float x)
{
    const float a = -0.5f;
    x = fabsf(x);
    if (x < 1.0f)
        return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
    if (x < 2.0f)
        return ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
    return 0.0f;
}

static void axis_free(axis_weights *a)
{
    free(a->start);
    free(a->count);
    free(a->w);
    memset(a, 0, sizeof *a);
}

static int axis_init(axis_weights *a, int in_n, int out_n)
{
    memset(a, 0, sizeof *a);
    /* Types follow the reference: float scale and center, the tap offset in double. */
    float scale = (float)in_n / (float)out_n;
    float support = scale >= 1.0f ? (float)(2.0 * scale) : 2.0f;
    float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
    a->out_n = out_n;
    a->taps = (int)ceilf(support) * 2 + 1;
    a->start = malloc((size_t)out_n * sizeof *a->start);
    a->count = malloc((size_t)out_n * sizeof *a->count);
    a->w = calloc((size_t)out_n * (size_t)a->taps, sizeof *a->w);
    if (!a->start || !a->count || !a->w) {
        axis_free(a);
        return INSP_ERR_NOMEM;
    }
    for (int i = 0; i < out_n; i++) {
        float center = (float)(scale * (i + 0.5));
        long lo = (long)(center - support + 0.5);
        long hi = (long)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in_n)
            hi = in_n;
        int n = (int)(hi - lo);
        if (n > a->taps)
            n = a->taps; /* cannot happen: the window spans at most 2·support + 1 */
        float *w = a->w + (size_t)i * (size_t)a->taps;
        float total = 0.0f;
        for (int j = 0; j < n; j++) {
            w[j] = cubic((float)(((float)(j + lo) - center + 0.5) * invscale));
            total += w[j];
        }
        if (total != 0.0f)
            for (int j = 0; j < n; j++)
                w[j] /= total;
        a->start[i] = (int)lo;
        a->count[i] = n;
    }
    return INSP_OK;
}

/* dst[r, :] = resampled src[r, :] for rows r of a [rows, src_w] plane; float source. */
static void pass_h_f32(const float *src, int src_w, int rows, const axis_weights *ax,
                       float *dst)
{
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * (size_t)src_w;
        float *d = dst + (size_t)r * (size_t)ax->out_n;
        for (int i = 0; i < ax->out_n; i++) {
            const float *w = ax->w + (size_t)i * (size_t)ax->taps;
            const float *p = s + ax->start[i];
            float t = w[0] * p[0];
            for (int j = 1; j < ax->count[i]; j++)
                t += w[j] * p[j];
            d[i] = t;
        }
    }
}

/* Same, reading channel c of interleaved 8-bit RGB as v/255 (what to_tensor does first). */
static void pass_h_rgb(const uint8_t *rgb, int src_w, int rows, int c, const float lut[256],
                       const axis_weights *ax, float *dst)
{
    for (int r = 0; r < rows; r++) {
        const uint8_t *s = rgb + (size_t)r * (size_t)src_w * 3 + c;
        float *d = dst + (size_t)r * (size_t)ax->out_n;
        for (int i = 0; i < ax->out_n; i++) {
            const float *w = ax->w + (size_t)i * (size_t)ax->taps;
            const uint8_t *p = s + (size_t)ax->start[i] * 3;
            float t = w[0] * lut[p[0]];
            for (int j = 1; j < ax->count[i]; j++)
                t += w[j] * lut[p[3 * j]];
            d[i] = t;
        }
    }
}

/* dst[i, :] = sum_j w[i, j] · src[start_i + j, :] for a [*, cols] plane, row at a time. */
static void pass_v(const float *src, int cols, const axis_weights *ax, float *dst)
{
    for (int i = 0; i < ax->out_n; i++) {
        const float *w = ax->w + (size_t)i * (size_t)ax->taps;
        const float *p = src + (size_t)ax->start[i] * (size_t)cols;
        float *d = dst + (size_t)i * (size_t)cols;
        for (int x = 0; x < cols; x++)
            d[x] = w[0] * p[x];
        for (int j = 1; j < ax->count[i]; j++) {
            const float *pj = p + (size_t)j * (size_t)cols;
            for (int x = 0; x < cols; x++)
                d[x] += w[j] * pj[x];
        }
    }
}

/* Both axes' weights and the horizontal pass's output, set up once per resize. */
typedef struct resampler {
    axis_weights ax, ay;
    float *tmp; // [in_h, out_w]
} resampler;

static void resampler_free(resampler *r)
{
    axis_free(&r->ay);
    axis_free(&r->ax);
    free(r->tmp);
}

static int resampler_init(resampler *r, int w, int h, int out_w, int out_h)
{
    memset(r, 0, sizeof *r);
    r->tmp = malloc((size_t)h * (size_t)out_w * sizeof *r->tmp);
    if (!r->tmp || axis_init(&r->ax, w, out_w) != INSP_OK ||
        axis_init(&r->ay, h, out_h) != INSP_OK) {
        resampler_free(r);
        return INSP_ERR_NOMEM;
    }
    return INSP_OK;
}

int insp_resize_bicubic_plane(const float *src, int w, int h, float *dst, int out_w, int out_h)
{
    if (!src || !dst || w < 1 || h < 1 || out_w < 1 || out_h < 1)
        return INSP_ERR_INVALID;
    resampler r;
    if (resampler_init(&r, w, h, out_w, out_h) != INSP_OK)
        return INSP_ERR_NOMEM;
    pass_h_f32(src, w, h, &r.ax, r.tmp); // [h, w] → [h, out_w]
    pass_v(r.tmp, out_w, &r.ay, dst);    // [h, out_w] → [out_h, out_w]
    resampler_free(&r);
    return INSP_OK;
}

int insp_image_to_input(const insp_image *img, int size, const float mean[3], const float std[3],
                        float *out)
{
    if (!img || !img->rgb || img->width < 1 || img->height < 1 || size < 1 || !mean || !std ||
        !out)
        return INSP_ERR_INVALID;
    for (int c = 0; c < 3; c++)
        if (!(std[c] != 0.0f))
            return INSP_ERR_INVALID;
    int w = img->width, h = img->height;
    size_t plane = (size_t)size * (size_t)size;
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f;
    resampler r;
    if (resampler_init(&r, w, h, size, size) != INSP_OK)
        return INSP_ERR_NOMEM;
    for (int c = 0; c < 3; c++) {
        float *dst = out + (size_t)c * plane; // [S, S]
        pass_h_rgb(img->rgb, w, h, c, lut, &r.ax, r.tmp); // [h, w] → [h, S]
        pass_v(r.tmp, size, &r.ay, dst);                   // [h, S] → [S, S]
        for (size_t i = 0; i < plane; i++)
            dst[i] = (dst[i] - mean[c]) / std[c];
    }
    resampler_free(&r);
    return INSP_OK;
}
