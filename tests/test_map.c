/* Map post-processing: bilinear resize against a direct implementation of torch's formula,
 * Gaussian blur invariants, quantization. */
#include <stdint.h>

#include "harness.h"
#include "inspectd/winclip.h"

static float frand(void)
{
    return (float)rand() / (float)RAND_MAX;
}

/* torch.nn.functional.interpolate(mode='bilinear', align_corners=False), written from its
 * definition in double: src = (dst + 0.5)·in/out - 0.5, clamped at 0, neighbours clamped at
 * the last row/column. */
static double ref_bilinear(const float *src, int sw, int sh, int dw, int dh, int x, int y)
{
    double sx = (x + 0.5) * sw / dw - 0.5, sy = (y + 0.5) * sh / dh - 0.5;
    if (sx < 0)
        sx = 0;
    if (sy < 0)
        sy = 0;
    int x0 = (int)floor(sx), y0 = (int)floor(sy);
    int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1, y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
    double fx = sx - x0, fy = sy - y0;
    return (1 - fy) * ((1 - fx) * src[y0 * sw + x0] + fx * src[y0 * sw + x1]) +
           fy * ((1 - fx) * src[y1 * sw + x0] + fx * src[y1 * sw + x1]);
}

static void check_resize(int sw, int sh, int dw, int dh)
{
    float *src = malloc(sizeof(float) * sw * sh), *dst = malloc(sizeof(float) * dw * dh);
    REQUIRE(src && dst);
    for (int i = 0; i < sw * sh; i++)
        src[i] = frand();
    insp_map_resize_bilinear(src, sw, sh, dst, dw, dh);
    double worst = 0;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            double d = fabs(dst[y * dw + x] - ref_bilinear(src, sw, sh, dw, dh, x, y));
            if (d > worst)
                worst = d;
        }
    // The code computes the source coordinate in float as torch does; next to this double
    // formula that moves it by up to ~size·2^-24, hence 1e-5 rather than float epsilon.
    CHECK_MSG(worst <= 1e-5, "%dx%d -> %dx%d: max error %.3g", sw, sh, dw, dh, worst);
    free(src);
    free(dst);
}

static void resize_matches_formula(void)
{
    srand(1);
    check_resize(6, 6, 96, 96);
    check_resize(96, 96, 37, 53);
    check_resize(4, 4, 64, 64);
    check_resize(5, 3, 5, 3);
    check_resize(1, 1, 7, 9);
    check_resize(7, 2, 1, 1);
}

static void resize_identity_and_corners(void)
{
    // Same size is a copy; 2×2 → 4×4 has the corners of the source in the corners (the
    // source index clamps to 0 and to the last pixel there).
    float src[4] = {0.0f, 1.0f, 2.0f, 3.0f}, dst[16];
    insp_map_resize_bilinear(src, 2, 2, dst, 2, 2);
    for (int i = 0; i < 4; i++)
        CHECK(dst[i] == src[i]);
    insp_map_resize_bilinear(src, 2, 2, dst, 4, 4);
    CHECK_NEAR(dst[0], 0.0, 1e-7);
    CHECK_NEAR(dst[3], 1.0, 1e-7);
    CHECK_NEAR(dst[12], 2.0, 1e-7);
    CHECK_NEAR(dst[15], 3.0, 1e-7);
    // dst x=1 → src x = 1.5·0.5 - 0.5 = 0.25: 0.75·0 + 0.25·1 on row 0.
    CHECK_NEAR(dst[1], 0.25, 1e-7);
}

static void gaussian_constant_stays_constant(void)
{
    int w = 37, h = 23;
    float *m = malloc(sizeof(float) * w * h), *scratch = malloc(sizeof(float) * w * h);
    REQUIRE(m && scratch);
    for (int i = 0; i < w * h; i++)
        m[i] = 0.625f;
    insp_map_gaussian(m, w, h, 4.0f, scratch);
    for (int i = 0; i < w * h; i++)
        CHECK_NEAR(m[i], 0.625, 1e-6);
    // Wider than the map: the reflection folds and a constant still stays constant.
    insp_map_gaussian(m, w, h, 20.0f, scratch);
    for (int i = 0; i < w * h; i++)
        CHECK_NEAR(m[i], 0.625, 1e-6);
    free(m);
    free(scratch);
}

static void gaussian_delta_symmetric_sums_to_one(void)
{
    int w = 64, h = 64, cx = 32, cy = 31;
    float sigma = 4.0f;
    float *m = calloc((size_t)w * h, sizeof(float)), *scratch = malloc(sizeof(float) * w * h);
    REQUIRE(m && scratch);
    m[cy * w + cx] = 1.0f;
    insp_map_gaussian(m, w, h, sigma, scratch);
    double sum = 0;
    for (int i = 0; i < w * h; i++)
        sum += m[i];
    CHECK_NEAR(sum, 1.0, 1e-5);
    int r = 16; // ⌈4σ⌉
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            float v = m[(cy + dy) * w + cx + dx];
            CHECK_NEAR(v, m[(cy - dy) * w + cx - dx], 1e-9);
            CHECK_NEAR(v, m[(cy + dx) * w + cx + dy], 1e-9);
        }
    // Nothing beyond the kernel radius; the peak is the product of two normalized 1-D taps.
    CHECK(m[cy * w + cx + r + 1] == 0.0f);
    CHECK(m[(cy - r - 1) * w + cx] == 0.0f);
    CHECK(m[cy * w + cx + r] > 0.0f);
    double norm = 0;
    for (int i = -r; i <= r; i++)
        norm += exp(-0.5 * (i / sigma) * (i / sigma));
    CHECK_NEAR(m[cy * w + cx], 1.0 / (norm * norm), 1e-6);
    CHECK_NEAR(m[cy * w + cx + 3], exp(-0.5 * 9 / 16.0) / (norm * norm), 1e-6);
    free(m);
    free(scratch);
}

static void gaussian_off_leaves_map(void)
{
    float m[6] = {0.1f, 0.9f, 0.3f, 0.4f, 0.5f, 0.6f}, copy[6], scratch[6];
    memcpy(copy, m, sizeof m);
    insp_map_gaussian(m, 3, 2, 0.0f, scratch);
    CHECK(memcmp(m, copy, sizeof m) == 0);
    insp_map_gaussian(m, 3, 2, NAN, scratch);
    CHECK(memcmp(m, copy, sizeof m) == 0);
    // 1-pixel map: reflection has nowhere to go, the value stays.
    float one = 0.42f, s1;
    insp_map_gaussian(&one, 1, 1, 3.0f, &s1);
    CHECK_NEAR(one, 0.42, 1e-7);
}

static void quantization(void)
{
    const float in[] = {0.0f, 1.0f, 0.5f, -0.25f, 1.5f, NAN, INFINITY, -INFINITY,
                        1.0f / 65535.0f, 0.49f / 65535.0f, 0.51f / 65535.0f, 0.3f};
    const long n = sizeof in / sizeof in[0];
    uint16_t out16[sizeof in / sizeof in[0]];
    uint8_t out8[sizeof in / sizeof in[0]];
    insp_map_to_u16(in, n, out16);
    insp_map_to_u8(in, n, out8);
    for (long i = 0; i < n; i++) {
        double v = isnan(in[i]) ? 0.0 : in[i] < 0 ? 0.0 : in[i] > 1 ? 1.0 : in[i];
        CHECK_EQ_INT(out16[i], (long)floor(v * 65535.0 + 0.5));
        CHECK_EQ_INT(out8[i], (long)floor(v * 255.0 + 0.5));
    }
    CHECK_EQ_INT(out16[1], 65535);
    CHECK_EQ_INT(out16[2], 32768);
    CHECK_EQ_INT(out16[4], 65535);
    CHECK_EQ_INT(out16[5], 0);
    CHECK_EQ_INT(out16[9], 0);
    CHECK_EQ_INT(out16[10], 1);
    CHECK_EQ_INT(out8[2], 128);
    CHECK_EQ_INT(out8[3], 0);
    CHECK_EQ_INT(out8[4], 255);
}

TEST_MAIN(T(resize_matches_formula), T(resize_identity_and_corners),
          T(gaussian_constant_stays_constant), T(gaussian_delta_symmetric_sums_to_one),
          T(gaussian_off_leaves_map), T(quantization))
