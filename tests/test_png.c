/* Output encodings: grayscale PNG maps survive a round trip bit-exactly, foreign PNGs are
 * refused clearly, and base64 matches RFC 4648. */
#include <stdint.h>

#include "harness.h"
#include "inspectd/image.h"

static uint32_t rng_state = 777;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static const int sizes[][2] = {{1, 1}, {7, 3}, {3, 7}, {96, 96}, {241, 5}};

static void test_gray16_round_trip(void)
{
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        size_t n = (size_t)w * h;
        uint16_t *px = malloc(n * sizeof *px);
        REQUIRE(px);
        for (size_t i = 0; i < n; i++)
            px[i] = (uint16_t)rnd();
        px[0] = 0xFFFF; /* extremes and a byte-order witness */
        if (n > 1)
            px[n - 1] = 0x0102;
        uint8_t *png = NULL;
        size_t len = 0;
        CHECK_OK(insp_png_encode_gray16(px, w, h, &png, &len));
        REQUIRE(png && len > 8);
        uint16_t *back = NULL;
        int bw = 0, bh = 0;
        insp_error err = {0};
        CHECK_OK(insp_png_decode_gray16(png, len, &back, &bw, &bh, &err));
        CHECK(bw == w && bh == h);
        if (back && bw == w && bh == h)
            CHECK_MSG(memcmp(back, px, n * sizeof *px) == 0, "%dx%d 16-bit differs", w, h);

        /* The RGB decoder sees the same file as gray: the high byte in all three channels. */
        insp_image img;
        CHECK_OK(insp_image_decode(png, len, 1L << 20, &img, &err));
        if (img.rgb && img.width == w && img.height == h) {
            int bad = 0;
            for (size_t i = 0; i < n; i++)
                for (int c = 0; c < 3; c++)
                    bad += img.rgb[3 * i + c] != (px[i] >> 8);
            CHECK_EQ_INT(bad, 0);
        }
        insp_image_free(&img);
        free(back);
        free(png);
        free(px);
    }
}

static void test_gray8_round_trip(void)
{
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        size_t n = (size_t)w * h;
        uint8_t *px = malloc(n);
        REQUIRE(px);
        for (size_t i = 0; i < n; i++)
            px[i] = (uint8_t)rnd();
        uint8_t *png = NULL;
        size_t len = 0;
        CHECK_OK(insp_png_encode_gray8(px, w, h, &png, &len));
        REQUIRE(png);
        uint16_t *back = NULL;
        int bw = 0, bh = 0;
        insp_error err = {0};
        CHECK_OK(insp_png_decode_gray16(png, len, &back, &bw, &bh, &err));
        CHECK(bw == w && bh == h);
        if (back && bw == w && bh == h) {
            int bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += back[i] != px[i] * 257; /* 8-bit scales to the full 16-bit range */
            CHECK_EQ_INT(bad, 0);
        }
        insp_image img;
        CHECK_OK(insp_image_decode(png, len, 1L << 20, &img, &err));
        if (img.rgb && img.width == w && img.height == h) {
            int bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += img.rgb[3 * i] != px[i] || img.rgb[3 * i + 2] != px[i];
            CHECK_EQ_INT(bad, 0);
        }
        insp_image_free(&img);
        free(back);
        free(png);
        free(px);
    }
}

static void test_encode_bad_arguments(void)
{
    uint16_t px16[4] = {0};
    uint8_t px8[4] = {0};
    uint8_t *png = (uint8_t *)1;
    size_t len = 99;
    CHECK_EQ_INT(insp_png_encode_gray16(px16, 0, 2, &png, &len), INSP_ERR_INVALID);
    CHECK(png == NULL && len == 0);
    CHECK_EQ_INT(insp_png_encode_gray16(NULL, 2, 2, &png, &len), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_png_encode_gray8(px8, 2, -1, &png, &len), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_png_encode_gray8(px8, 2, 2, NULL, &len), INSP_ERR_INVALID);
}

static void test_decode_gray16_refusals(void)
{
    uint16_t *px = (uint16_t *)1;
    int w = 0, h = 0;
    insp_error err = {0};

    /* A color PNG is not a map: refused, not converted. */
    size_t len;
    char *rgb_png = read_file(fixture_path("tiny/images/01_normal.png"), &len);
    REQUIRE(rgb_png);
    CHECK_EQ_INT(insp_png_decode_gray16(rgb_png, len, &px, &w, &h, &err), INSP_ERR_UNSUPPORTED);
    CHECK(px == NULL);
    CHECK_MSG(strstr(err.msg, "not grayscale") != NULL, "message: %s", err.msg);
    free(rgb_png);

    CHECK_EQ_INT(insp_png_decode_gray16("", 0, &px, &w, &h, &err), INSP_ERR_FORMAT);
    CHECK_EQ_INT(insp_png_decode_gray16("GIF89a, not a png at all, long enough to parse", 46,
                                        &px, &w, &h, &err),
                 INSP_ERR_FORMAT);

    /* Every truncation of a valid map fails cleanly. */
    uint16_t map[12 * 9];
    for (int i = 0; i < 12 * 9; i++)
        map[i] = (uint16_t)rnd();
    uint8_t *png;
    CHECK_OK(insp_png_encode_gray16(map, 12, 9, &png, &len));
    REQUIRE(png);
    int ok_cuts = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *part = malloc(cut ? cut : 1);
        REQUIRE(part);
        memcpy(part, png, cut);
        int rc = insp_png_decode_gray16(part, cut, &px, &w, &h, &err);
        ok_cuts += rc == INSP_OK;
        CHECK(rc == INSP_OK || px == NULL);
        free(part);
        if (rc == INSP_OK)
            free(px);
    }
    CHECK_EQ_INT(ok_cuts, 0);
    free(png);
}

/* ---- base64 ------------------------------------------------------------------------- */

static void test_base64_rfc4648_vectors(void)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        size_t n = 123;
        char *s = insp_base64_encode(in[i], strlen(in[i]), &n);
        REQUIRE(s);
        CHECK_MSG(strcmp(s, out[i]) == 0, "base64(\"%s\") = \"%s\", want \"%s\"", in[i], s,
                  out[i]);
        CHECK_EQ_INT(n, strlen(out[i]));
        free(s);
    }
    char *s = insp_base64_encode(NULL, 0, NULL);
    CHECK(s && s[0] == '\0');
    free(s);
    CHECK(insp_base64_encode(NULL, 3, NULL) == NULL);
}

/* A decoder for the test only: the alphabet written out independently of the encoder. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static long b64_decode(const char *s, size_t n, uint8_t *out)
{
    if (n % 4)
        return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if ((v[k] = b64_value(s[i + k])) < 0 || pad) {
                return -1;
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        out[o++] = (uint8_t)(x >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(x >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)x;
    }
    return o;
}

static void test_base64_binary_round_trip(void)
{
    uint8_t data[1027], back[1027];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)rnd();
    data[0] = 0xFB; /* yields '+' and '/' */
    data[1] = 0xFF;
    data[2] = 0xBF;
    for (size_t len = 0; len <= sizeof data; len += len < 10 ? 1 : 101) {
        size_t n;
        char *s = insp_base64_encode(data, len, &n);
        REQUIRE(s);
        CHECK_EQ_INT(n, (len + 2) / 3 * 4);
        CHECK_EQ_INT(strlen(s), n);
        long m = b64_decode(s, n, back);
        CHECK_EQ_INT(m, (long)len);
        if (m == (long)len)
            CHECK(memcmp(back, data, len) == 0);
        if (len == 3)
            CHECK(strcmp(s, "+/+/") == 0);
        free(s);
    }
}

TEST_MAIN(T(test_gray16_round_trip), T(test_gray8_round_trip), T(test_encode_bad_arguments),
          T(test_decode_gray16_refusals), T(test_base64_rfc4648_vectors),
          T(test_base64_binary_round_trip))
