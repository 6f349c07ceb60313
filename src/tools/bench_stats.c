/* Clock, order statistics, peak RSS and a synthetic input photo for the bench. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <turbojpeg.h>

#include "tools/bench.h"

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    if (n < 1)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double bench_p90(double *v, int n)
{
    if (n < 1)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int rank = (int)ceil(0.9 * n); /* nearest rank, 1-based */
    return v[rank < 1 ? 0 : rank - 1];
}

long bench_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss * 1024L; /* Linux reports KiB */
}

int bench_synthetic_jpeg(int width, int height, uint64_t seed, uint8_t **jpeg, size_t *len)
{
    *jpeg = NULL;
    *len = 0;
    uint8_t *rgb = malloc((size_t)width * height * 3);
    if (!rgb)
        return INSP_ERR_NOMEM;
    /* A bright disc (the part) on a darker gradient, with a little sensor noise; the values
     * do not matter for timing, only that the codec has ordinary content to work on. */
    uint64_t s = seed ? seed : 1;
    double cx = width * 0.5, cy = height * 0.5, r = 0.35 * (width < height ? width : height);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            double noise = (double)(s & 15) - 7.5;
            double d = hypot(x - cx, y - cy);
            double base = d < r ? 180.0 + 30.0 * sin(x * 0.05) * cos(y * 0.04)
                                : 40.0 + 60.0 * y / height;
            uint8_t *px = rgb + ((size_t)y * width + x) * 3;
            for (int c = 0; c < 3; c++) {
                double v = base * (0.8 + 0.1 * c) + noise;
                px[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    tjhandle tj = tjInitCompress();
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    int rc = INSP_ERR_NOMEM;
    if (tj && tjCompress2(tj, rgb, width, 0, height, TJPF_RGB, &out, &out_len, TJSAMP_420, 90,
                          0) == 0) {
        *jpeg = malloc(out_len);
        if (*jpeg) {
            memcpy(*jpeg, out, out_len);
            *len = out_len;
            rc = INSP_OK;
        }
    }
    tjFree(out);
    if (tj)
        tjDestroy(tj);
    free(rgb);
    return rc;
}
