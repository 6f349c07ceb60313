/* Anomaly-map post-processing: bilinear resampling that matches torch's interpolate, the
 * optional Gaussian smoothing, and quantization to 16- and 8-bit pixels. */
#include <math.h>

#include "inspectd/winclip.h"

/* ceil(4σ) taps each side; σ above this keeps the kernel on the stack (a blur that wide has
 * long flattened any map). */
#define MAX_SIGMA 64.0f
#define MAX_RADIUS 256

/* Source coordinate of destination index o along one axis, as torch's
 * area_pixel_compute_source_index(align_corners=false): float arithmetic, clamped at 0. */
static void source_index(float scale, int o, int size, int *i0, int *i1, float *l1)
{
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int i = (int)src;
    if (i > size - 1)
        i = size - 1;
    *i0 = i;
    *i1 = i < size - 1 ? i + 1 : i;
    *l1 = src - (float)i;
}

void insp_map_resize_bilinear(const float *src, int sw, int sh, float *dst, int dw, int dh)
{
    if (!src || !dst || sw < 1 || sh < 1 || dw < 1 || dh < 1)
        return;
    float scale_x = (float)sw / (float)dw, scale_y = (float)sh / (float)dh;
    for (int y = 0; y < dh; y++) {
        int y0, y1;
        float ly1;
        source_index(scale_y, y, sh, &y0, &y1, &ly1);
        float ly0 = 1.0f - ly1;
        const float *r0 = src + (long)y0 * sw, *r1 = src + (long)y1 * sw;
        float *out = dst + (long)y * dw;
        for (int x = 0; x < dw; x++) {
            int x0, x1;
            float lx1;
            source_index(scale_x, x, sw, &x0, &x1, &lx1);
            float lx0 = 1.0f - lx1;
            out[x] = ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]);
        }
    }
}

/* Reflect padding without repeating the edge (torch's "reflect"), folded as often as needed
 * so that a kernel wider than the map still reads inside it. */
static int reflect(int i, int n)
{
    if (n == 1)
        return 0;
    int period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

void insp_map_gaussian(float *map, int w, int h, float sigma, float *scratch)
{
    if (!map || !scratch || w < 1 || h < 1 || !(sigma > 0.0f))
        return;
    if (sigma > MAX_SIGMA)
        sigma = MAX_SIGMA;
    int radius = (int)ceilf(4.0f * sigma);
    float kernel[2 * MAX_RADIUS + 1];
    double sum = 0;
    for (int i = -radius; i <= radius; i++) {
        double x = (double)i / sigma;
        kernel[i + radius] = (float)exp(-0.5 * x * x);
        sum += kernel[i + radius];
    }
    for (int i = 0; i < 2 * radius + 1; i++)
        kernel[i] = (float)(kernel[i] / sum);

    // Rows into scratch, then columns back into map (accumulated a row at a time, so that
    // both passes walk memory in order).
    for (int y = 0; y < h; y++) {
        const float *row = map + (long)y * w;
        float *out = scratch + (long)y * w;
        for (int x = 0; x < w; x++) {
            float acc = 0.0f;
            for (int i = -radius; i <= radius; i++) {
                int j = x + i;
                if (j < 0 || j >= w)
                    j = reflect(j, w);
                acc += kernel[i + radius] * row[j];
            }
            out[x] = acc;
        }
    }
    for (int y = 0; y < h; y++) {
        float *out = map + (long)y * w;
        for (int x = 0; x < w; x++)
            out[x] = 0.0f;
        for (int i = -radius; i <= radius; i++) {
            int j = y + i;
            if (j < 0 || j >= h)
                j = reflect(j, h);
            const float *in = scratch + (long)j * w;
            float k = kernel[i + radius];
            for (int x = 0; x < w; x++)
                out[x] += k * in[x];
        }
    }
}

/* v clamped to [0, 1] (NaN → 0) times levels, rounded half up. */
static unsigned quantize(float v, float levels)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 1.0f)
        return (unsigned)levels;
    return (unsigned)(v * levels + 0.5f);
}

void insp_map_to_u16(const float *map, long n, uint16_t *out)
{
    for (long i = 0; i < n; i++)
        out[i] = (uint16_t)quantize(map[i], 65535.0f);
}

void insp_map_to_u8(const float *map, long n, uint8_t *out)
{
    for (long i = 0; i < n; i++)
        out[i] = (uint8_t)quantize(map[i], 255.0f);
}
