/* Image input: decoding of the fixture images and of every PNG/JPEG flavour we must expand,
 * refusal of damaged, truncated and oversized data, and the resampler against both a direct
 * per-pixel evaluation of its formula and the reference's `input.*` tensors. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "inspectd/image.h"
#include "inspectd/safetensors.h"

#define LIMIT 100000000L

static const float openai_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float openai_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* Deterministic bytes for synthetic images. */
static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static uint8_t *load_fixture(const char *rel, size_t *len)
{
    return (uint8_t *)read_file(fixture_path(rel), len);
}

/* ---- synthetic PNGs, written with libpng's own encoder --------------------------------- */

typedef struct mem_buf {
    uint8_t *data;
    size_t len, cap;
} mem_buf;

static void mem_write(png_structp png, png_bytep d, size_t n)
{
    mem_buf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *g = realloc(b->data, cap);
        if (!g)
            png_error(png, "oom");
        b->data = g;
        b->cap = cap;
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

typedef struct png_spec {
    int width, height, bit_depth, color_type, interlace;
    const uint8_t *raw; /* rows in PNG layout (packed bits, big-endian 16-bit) */
    size_t stride;
    const png_color *palette;
    int n_palette;
    const uint8_t *trns; /* palette alpha */
    int n_trns;
    const png_color_16 *trns_color; /* color key for gray/RGB */
} png_spec;

static int write_spec(const png_spec *s, mem_buf *out)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png)
        return -1;
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = malloc((size_t)s->height * sizeof *rows);
    if (!info || !rows) {
        free(rows);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    for (int y = 0; y < s->height; y++)
        rows[y] = (png_bytep)(s->raw + (size_t)y * s->stride);
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, out, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)s->width, (png_uint_32)s->height, s->bit_depth,
                 s->color_type, s->interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trns || s->trns_color)
        png_set_tRNS(png, info, s->trns, s->n_trns, s->trns_color);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static uint8_t *make_png(const png_spec *s, size_t *len)
{
    mem_buf b = {0};
    if (write_spec(s, &b) != 0) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

/* Decodes png and compares against want (width·height·3). */
static void check_decodes_to(const char *what, const uint8_t *data, size_t len, int w, int h,
                             const uint8_t *want)
{
    insp_image img;
    insp_error err = {0};
    int rc = insp_image_decode(data, len, LIMIT, &img, &err);
    CHECK_MSG(rc == INSP_OK, "%s: %d %s", what, rc, err.msg);
    if (rc != INSP_OK)
        return;
    CHECK_EQ_INT(img.width, w);
    CHECK_EQ_INT(img.height, h);
    if (img.width == w && img.height == h) {
        size_t n = (size_t)w * (size_t)h * 3, bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (img.rgb[i] != want[i])
                bad = i;
        CHECK_MSG(bad == n, "%s: byte %zu (pixel %zu, channel %zu) is %d, want %d", what, bad,
                  bad / 3, bad % 3, bad < n ? img.rgb[bad] : 0, bad < n ? want[bad] : 0);
    }
    insp_image_free(&img);
}

/* ---- fixture images ------------------------------------------------------------------ */

typedef struct known_size {
    const char *name;
    int w, h;
} known_size;

/* Sizes as reported by file(1), independent of our decoder. */
static const known_size known_sizes[] = {
    {"00_normal", 150, 120}, {"01_normal", 96, 96},      {"02_scratch", 200, 160},
    {"03_spot", 128, 180},   {"04_missing", 240, 240},   {"05_normal", 111, 97},
    {"06_crack", 320, 200},  {"ref_00_normal", 150, 120}, {"ref_01_normal", 150, 120},
    {"ref_05_normal", 150, 120}, {"ref_07_normal", 150, 120},
};

static const known_size *lookup_size(const char *stem)
{
    for (size_t i = 0; i < sizeof known_sizes / sizeof known_sizes[0]; i++)
        if (strcmp(known_sizes[i].name, stem) == 0)
            return &known_sizes[i];
    return NULL;
}

static const char *fixture_names[] = {"tiny", "tiny-quickgelu"};
static const int fixture_sizes[] = {96, 64};

/* Calls fn for each image file stem in <fixture>/images with the given extension. */
static int for_each_image(const char *fixture, const char *ext,
                          void (*fn)(const char *fixture, const char *stem, void *ctx), void *ctx)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/images", fixture);
    snprintf(dir, sizeof dir, "%s", fixture_path(dir));
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name), ne = strlen(ext);
        if (n <= ne || strcmp(e->d_name + n - ne, ext) != 0)
            continue;
        char stem[256];
        snprintf(stem, sizeof stem, "%.*s", (int)(n - ne), e->d_name);
        fn(fixture, stem, ctx);
        count++;
    }
    closedir(d);
    return count;
}

static void decode_one(const char *fixture, const char *stem, void *ctx)
{
    const char *ext = ctx;
    char rel[512];
    snprintf(rel, sizeof rel, "%s/images/%s%s", fixture, stem, ext);
    size_t len;
    uint8_t *data = load_fixture(rel, &len);
    CHECK_MSG(data != NULL, "cannot read %s", rel);
    if (!data)
        return;
    const known_size *ks = lookup_size(stem);
    CHECK_MSG(ks != NULL, "no known size for %s", stem);

    insp_image_format fmt;
    int pw = 0, ph = 0;
    insp_error err = {0};
    CHECK_OK(insp_image_probe(data, len, &fmt, &pw, &ph, &err));
    CHECK_EQ_INT(fmt, strcmp(ext, ".png") == 0 ? INSP_IMAGE_PNG : INSP_IMAGE_JPEG);

    insp_image img;
    int rc = insp_image_decode(data, len, LIMIT, &img, &err);
    CHECK_MSG(rc == INSP_OK, "%s: %s", rel, err.msg);
    if (rc == INSP_OK && ks) {
        CHECK_MSG(img.width == ks->w && img.height == ks->h, "%s: %d x %d, want %d x %d", rel,
                  img.width, img.height, ks->w, ks->h);
        CHECK_EQ_INT(pw, ks->w);
        CHECK_EQ_INT(ph, ks->h);
    }
    insp_image_free(&img);
    CHECK(img.rgb == NULL && img.width == 0);
    free(data);
}

static void test_decode_fixture_images(void)
{
    for (int f = 0; f < 2; f++) {
        int n_png = for_each_image(fixture_names[f], ".png", decode_one, ".png");
        int n_jpg = for_each_image(fixture_names[f], ".jpg", decode_one, ".jpg");
        CHECK_MSG(n_png >= 8 && n_jpg >= 8, "%s: %d PNGs, %d JPEGs", fixture_names[f], n_png,
                  n_jpg);
    }
}

/* The JPEGs are lossy copies of the PNGs: close on average, which catches channel swaps. */
static void jpeg_vs_png(const char *fixture, const char *stem, void *ctx)
{
    double *worst = ctx;
    char rel[512];
    insp_image a, b;
    insp_error err = {0};
    snprintf(rel, sizeof rel, "%s/images/%s.png", fixture, stem);
    int rc = insp_image_load(fixture_path(rel), LIMIT, &a, &err);
    snprintf(rel, sizeof rel, "%s/images/%s.jpg", fixture, stem);
    rc |= insp_image_load(fixture_path(rel), LIMIT, &b, &err);
    CHECK_MSG(rc == INSP_OK, "%s: %s", stem, err.msg);
    if (rc == INSP_OK && a.width == b.width && a.height == b.height) {
        size_t n = (size_t)a.width * (size_t)a.height * 3;
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += abs((int)a.rgb[i] - (int)b.rgb[i]);
        double mad = sum / (double)n;
        CHECK_MSG(mad < 6.0, "%s/%s: JPEG differs from PNG by %.2f levels on average", fixture,
                  stem, mad);
        if (mad > *worst)
            *worst = mad;
    } else {
        CHECK_MSG(0, "%s: PNG and JPEG sizes differ", stem);
    }
    insp_image_free(&a);
    insp_image_free(&b);
}

static void test_jpeg_matches_png(void)
{
    double worst = 0;
    for (int f = 0; f < 2; f++)
        for_each_image(fixture_names[f], ".jpg", jpeg_vs_png, &worst);
    printf("  worst mean |JPEG - PNG|: %.3f levels\n", worst);
}

typedef struct input_ctx {
    insp_safetensors *st;
    int size;
    double worst, worst_pil;
    int compared;
} input_ctx;

static void input_one(const char *fixture, const char *stem, void *vctx)
{
    input_ctx *ctx = vctx;
    char rel[512], name[300];
    snprintf(rel, sizeof rel, "%s/images/%s.png", fixture, stem);
    insp_image img;
    insp_error err = {0};
    int rc = insp_image_load(fixture_path(rel), LIMIT, &img, &err);
    CHECK_MSG(rc == INSP_OK, "%s", err.msg);
    if (rc != INSP_OK)
        return;
    int s = ctx->size;
    long n = 3L * s * s;
    float *got = malloc((size_t)n * sizeof *got), *want = malloc((size_t)n * sizeof *want);
    REQUIRE(got && want);
    CHECK_OK(insp_image_to_input(&img, s, openai_mean, openai_std, got));

    snprintf(name, sizeof name, "input.%s", stem);
    const insp_st_tensor *t = insp_st_find(ctx->st, name);
    CHECK_MSG(t != NULL, "%s: no tensor %s", fixture, name);
    if (t && t->numel == n && t->ndim == 3 && t->shape[0] == 3 && t->shape[1] == s &&
        t->shape[2] == s && insp_st_to_f32(t, want) == INSP_OK) {
        double e = max_abs_error(got, want, n);
        printf("  %-15s %-14s max |input - ref| = %.3g\n", fixture, stem, e);
        CHECK_MSG(e <= 1e-3, "%s %s: input max error %.3g > 1e-3", fixture, stem, e);
        if (e > ctx->worst)
            ctx->worst = e;
        ctx->compared++;
    } else if (t) {
        CHECK_MSG(0, "%s: unexpected shape or dtype", name);
    }
    snprintf(name, sizeof name, "input_pil.%s", stem);
    t = insp_st_find(ctx->st, name);
    if (t && t->numel == n && insp_st_to_f32(t, want) == INSP_OK) {
        double e = max_abs_error(got, want, n);
        CHECK_MSG(e <= 3e-2, "%s %s: input_pil error %.3g > 3e-2", fixture, stem, e);
        if (e > ctx->worst_pil)
            ctx->worst_pil = e;
    }
    free(got);
    free(want);
    insp_image_free(&img);
}

static void test_input_matches_reference(void)
{
    for (int f = 0; f < 2; f++) {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/expected.safetensors", fixture_names[f]);
        input_ctx ctx = {.size = fixture_sizes[f]};
        insp_error err = {0};
        int rc = insp_st_open(fixture_path(rel), &ctx.st, &err);
        CHECK_MSG(rc == INSP_OK, "%s", err.msg);
        if (rc != INSP_OK)
            continue;
        int n = for_each_image(fixture_names[f], ".png", input_one, &ctx);
        CHECK_MSG(ctx.compared == n && n >= 8, "%s: compared %d of %d", fixture_names[f],
                  ctx.compared, n);
        printf("  %s (S=%d): max input error %.3g over %d images (vs input_pil %.3g)\n",
               fixture_names[f], ctx.size, ctx.worst, ctx.compared, ctx.worst_pil);
        insp_st_close(ctx.st);
    }
}

/* ---- refusal of bad data ------------------------------------------------------------- */

static void test_empty_and_null(void)
{
    insp_image img = {.width = 7};
    insp_error err = {0};
    uint8_t one = 0xFF;
    CHECK_EQ_INT(insp_image_decode(&one, 0, LIMIT, &img, &err), INSP_ERR_FORMAT);
    CHECK(strstr(err.msg, "empty") != NULL);
    CHECK(img.rgb == NULL && img.width == 0);
    CHECK_EQ_INT(insp_image_decode(NULL, 0, LIMIT, &img, &err), INSP_ERR_FORMAT);
    CHECK_EQ_INT(insp_image_decode(NULL, 10, LIMIT, &img, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_image_decode(&one, 1, 0, &img, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_image_decode(&one, 1, LIMIT, NULL, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_image_probe(&one, 0, NULL, NULL, NULL, &err), INSP_ERR_FORMAT);
    CHECK_EQ_INT(insp_image_decode(&one, 1, LIMIT, &img, NULL), INSP_ERR_UNSUPPORTED);
    insp_image_free(NULL);
    insp_image_free(&img);
}

static void test_random_bytes(void)
{
    uint8_t buf[4096];
    insp_error err = {0};
    for (int trial = 0; trial < 200; trial++) {
        size_t len = 1 + rnd() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        if (buf[0] == 0xFF || buf[0] == 0x89)
            buf[0] = 0x42;
        insp_image img;
        int rc = insp_image_decode(buf, len, LIMIT, &img, &err);
        CHECK_EQ_INT(rc, INSP_ERR_UNSUPPORTED);
        CHECK(img.rgb == NULL);
    }
    CHECK(strstr(err.msg, "not a JPEG or PNG") != NULL);
    /* Garbage after a valid signature is a damaged file, not an unknown one. */
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    static const uint8_t jpg_soi[3] = {0xFF, 0xD8, 0xFF};
    for (int trial = 0; trial < 400; trial++) {
        size_t len = 40 + rnd() % 2000;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        if (trial % 2)
            memcpy(buf, png_sig, sizeof png_sig);
        else
            memcpy(buf, jpg_soi, sizeof jpg_soi);
        insp_image img;
        int rc = insp_image_decode(buf, len, LIMIT, &img, &err);
        CHECK_MSG(rc != INSP_OK, "random data after a signature decoded");
        CHECK(img.rgb == NULL);
        insp_image_free(&img);
    }
}

/* Every prefix of a file in a spread of lengths must fail cleanly. */
static void check_truncations(const char *rel, size_t magic_len)
{
    size_t len;
    uint8_t *full = load_fixture(rel, &len);
    REQUIRE(full != NULL);
    int tried = 0, fails = 0;
    for (size_t cut = 1; cut < len; cut += cut < 80 ? 1 : (cut > len - 80 ? 1 : 97)) {
        uint8_t *part = malloc(cut); /* exact size, so ASan sees any over-read */
        REQUIRE(part);
        memcpy(part, full, cut);
        insp_image img;
        insp_error err = {0};
        int rc = insp_image_decode(part, cut, LIMIT, &img, &err);
        int want = cut < magic_len ? INSP_ERR_UNSUPPORTED : INSP_ERR_FORMAT;
        if (rc != want) {
            fails++;
            if (fails < 5)
                CHECK_MSG(0, "%s cut at %zu of %zu: status %d (%s), want %d", rel, cut, len, rc,
                          err.msg, want);
        }
        CHECK(img.rgb == NULL);
        insp_image_free(&img);
        free(part);
        tried++;
    }
    CHECK_EQ_INT(fails, 0);
    CHECK(tried > 150);
    free(full);
}

static void test_truncated_png(void)
{
    check_truncations("tiny/images/01_normal.png", 8);
}

static void test_truncated_jpeg(void)
{
    check_truncations("tiny/images/01_normal.jpg", 3);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Offset of the first chunk of the given type (its length field), or 0. */
static size_t find_chunk(const uint8_t *p, size_t len, const char *type)
{
    size_t pos = 8;
    while (pos + 12 <= len) {
        uint32_t n = be32(p + pos);
        if (memcmp(p + pos + 4, type, 4) == 0)
            return pos;
        pos += 12 + (size_t)n;
    }
    return 0;
}

static void test_corrupt_png(void)
{
    size_t len;
    uint8_t *orig = load_fixture("tiny/images/00_normal.png", &len);
    REQUIRE(orig != NULL);
    uint8_t *p = malloc(len);
    REQUIRE(p);
    size_t idat = find_chunk(orig, len, "IDAT");
    REQUIRE(idat > 0);
    uint32_t n = be32(orig + idat);
    insp_image img;
    insp_error err = {0};

    /* A flipped byte in the middle of the pixel data (the chunk CRC no longer matches, but
     * the inflated rows may go wrong before libpng reaches the CRC). */
    memcpy(p, orig, len);
    p[idat + 8 + n / 2] ^= 0x5A;
    CHECK_EQ_INT(insp_image_decode(p, len, LIMIT, &img, &err), INSP_ERR_FORMAT);
    CHECK(img.rgb == NULL);

    /* Intact data with a wrong chunk CRC. */
    memcpy(p, orig, len);
    p[idat + 8 + n] ^= 0x01;
    CHECK_EQ_INT(insp_image_decode(p, len, LIMIT, &img, &err), INSP_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "CRC") != NULL, "message: %s", err.msg);

    /* The same damage with a recomputed CRC: zlib's own checks must catch it. */
    int caught = 0;
    for (int k = 1; k < 8; k++) {
        memcpy(p, orig, len);
        for (uint32_t i = n / 8 * (uint32_t)k; i < n / 8 * (uint32_t)k + 16; i++)
            p[idat + 8 + i] ^= 0xA5;
        put_be32(p + idat + 8 + n, (uint32_t)crc32(0L, p + idat + 4, n + 4));
        int rc = insp_image_decode(p, len, LIMIT, &img, &err);
        CHECK_MSG(rc == INSP_ERR_FORMAT, "damage at %d/8: status %d", k, rc);
        caught += rc == INSP_ERR_FORMAT;
        insp_image_free(&img);
    }
    CHECK_EQ_INT(caught, 7);

    /* A damaged IHDR CRC is caught by the header parser, before libpng. */
    memcpy(p, orig, len);
    p[29] ^= 1;
    CHECK_EQ_INT(insp_image_probe(p, len, NULL, NULL, NULL, &err), INSP_ERR_FORMAT);
    CHECK_EQ_INT(insp_image_decode(p, len, LIMIT, &img, &err), INSP_ERR_FORMAT);

    /* No IEND: the pixels are all there but the file is cut short. */
    size_t iend = find_chunk(orig, len, "IEND");
    REQUIRE(iend > 0);
    CHECK_EQ_INT(insp_image_decode(orig, iend, LIMIT, &img, &err), INSP_ERR_FORMAT);
    free(p);
    free(orig);
}

static void test_corrupt_jpeg(void)
{
    size_t len;
    uint8_t *orig = load_fixture("tiny/images/02_scratch.jpg", &len);
    REQUIRE(orig != NULL);
    uint8_t *p = malloc(len);
    REQUIRE(p);
    insp_image img;
    insp_error err = {0};
    /* Damage inside the entropy-coded data may decode to garbage (libjpeg only warns, as PIL
     * accepts) or fail; either way it must end cleanly with the right size or no image. */
    for (int k = 1; k < 16; k++) {
        memcpy(p, orig, len);
        size_t at = len / 2 + (size_t)k * 37;
        for (size_t i = at; i < at + (size_t)k * 3 && i < len - 2; i++)
            p[i] = (uint8_t)rnd();
        int rc = insp_image_decode(p, len, LIMIT, &img, &err);
        CHECK_MSG(rc == INSP_OK || rc == INSP_ERR_FORMAT, "status %d", rc);
        if (rc == INSP_OK)
            CHECK(img.width == 200 && img.height == 160 && img.rgb != NULL);
        else
            CHECK(img.rgb == NULL);
        insp_image_free(&img);
    }
    /* A frame header with 12-bit precision, or with no components, is a hard error. */
    size_t sof = 0;
    for (size_t i = 2; i + 1 < len; i++)
        if (orig[i] == 0xFF && orig[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    REQUIRE(sof > 0);
    memcpy(p, orig, len);
    p[sof + 4] = 12;
    CHECK_EQ_INT(insp_image_decode(p, len, LIMIT, &img, &err), INSP_ERR_FORMAT);
    memcpy(p, orig, len);
    p[sof + 9] = 0;
    CHECK_EQ_INT(insp_image_decode(p, len, LIMIT, &img, &err), INSP_ERR_FORMAT);
    /* A frame width of 0 is refused by the header walk. */
    memcpy(p, orig, len);
    p[sof + 7] = 0;
    p[sof + 8] = 0;
    CHECK_EQ_INT(insp_image_probe(p, len, NULL, NULL, NULL, &err), INSP_ERR_FORMAT);
    /* A segment length running past the end of the data. */
    memcpy(p, orig, len);
    p[sof + 2] = 0xFF;
    p[sof + 3] = 0xFF;
    CHECK_EQ_INT(insp_image_decode(p, len, LIMIT, &img, &err), INSP_ERR_FORMAT);
    CHECK(img.rgb == NULL);
    free(p);
    free(orig);
}

/* Stray bytes between segments make libjpeg warn, not fail; the pixels are intact and the
 * image is accepted, as PIL accepts it. */
static void test_jpeg_extraneous_bytes_accepted(void)
{
    size_t len;
    uint8_t *orig = load_fixture("tiny/images/05_normal.jpg", &len);
    REQUIRE(orig != NULL && len > 30);
    insp_image ref, img;
    insp_error err = {0};
    REQUIRE(insp_image_decode(orig, len, LIMIT, &ref, &err) == INSP_OK);
    uint8_t *p = malloc(len + 3);
    REQUIRE(p);
    size_t app0_end = 4 + ((size_t)orig[4] << 8 | orig[5]); /* SOI, then APP0 */
    REQUIRE(orig[2] == 0xFF && orig[3] == 0xE0 && orig[app0_end] == 0xFF);
    size_t at[2] = {app0_end, len - 2}; /* after APP0; before EOI */
    for (int k = 0; k < 2; k++) {
        memcpy(p, orig, at[k]);
        memcpy(p + at[k], "\x12\x34\x56", 3);
        memcpy(p + at[k] + 3, orig + at[k], len - at[k]);
        int rc = insp_image_decode(p, len + 3, LIMIT, &img, &err);
        CHECK_MSG(rc == INSP_OK, "stray bytes at %zu: %s", at[k], err.msg);
        if (rc == INSP_OK)
            CHECK(img.width == ref.width && img.height == ref.height &&
                  memcmp(img.rgb, ref.rgb, (size_t)ref.width * ref.height * 3) == 0);
        insp_image_free(&img);
    }
    free(p);
    insp_image_free(&ref);
    free(orig);
}

/* PNG signature + an IHDR with a valid CRC claiming w × h, and nothing else. */
static size_t craft_png_header(uint8_t out[33], uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    memcpy(out, sig, 8);
    put_be32(out + 8, 13);
    memcpy(out + 12, "IHDR", 4);
    put_be32(out + 16, w);
    put_be32(out + 20, h);
    out[24] = 8; /* bit depth */
    out[25] = 2; /* RGB */
    out[26] = out[27] = out[28] = 0;
    put_be32(out + 29, (uint32_t)crc32(0L, out + 12, 17));
    return 33;
}

/* SOI + SOF0 claiming w × h (JPEG sizes are 16-bit), 3 components. */
static size_t craft_jpeg_header(uint8_t out[21], int w, int h)
{
    static const uint8_t head[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08};
    memcpy(out, head, sizeof head);
    out[7] = (uint8_t)(h >> 8);
    out[8] = (uint8_t)h;
    out[9] = (uint8_t)(w >> 8);
    out[10] = (uint8_t)w;
    out[11] = 3;
    for (int c = 0; c < 3; c++) {
        out[12 + 3 * c] = (uint8_t)(c + 1);
        out[13 + 3 * c] = 0x11;
        out[14 + 3 * c] = 0;
    }
    return 21;
}

static void test_too_large_before_decoding(void)
{
    uint8_t png[33], jpg[21];
    size_t np = craft_png_header(png, 100000, 100000);
    size_t nj = craft_jpeg_header(jpg, 65000, 65000);
    insp_image img;
    insp_error err = {0};
    int w = 0, h = 0;
    insp_image_format fmt;

    CHECK_OK(insp_image_probe(png, np, &fmt, &w, &h, &err));
    CHECK(fmt == INSP_IMAGE_PNG && w == 100000 && h == 100000);
    CHECK_EQ_INT(insp_image_decode(png, np, LIMIT, &img, &err), INSP_ERR_TOO_LARGE);
    CHECK_MSG(strstr(err.msg, "100000 x 100000") != NULL, "message: %s", err.msg);
    CHECK(img.rgb == NULL);

    CHECK_OK(insp_image_probe(jpg, nj, &fmt, &w, &h, &err));
    CHECK(fmt == INSP_IMAGE_JPEG && w == 65000 && h == 65000);
    CHECK_EQ_INT(insp_image_decode(jpg, nj, LIMIT, &img, &err), INSP_ERR_TOO_LARGE);
    CHECK_MSG(strstr(err.msg, "65000 x 65000") != NULL, "message: %s", err.msg);
    CHECK(img.rgb == NULL);

    /* Within the limit the same headers are simply damaged files (no pixel data). */
    np = craft_png_header(png, 40, 30);
    nj = craft_jpeg_header(jpg, 40, 30);
    CHECK_EQ_INT(insp_image_decode(png, np, LIMIT, &img, &err), INSP_ERR_FORMAT);
    CHECK_EQ_INT(insp_image_decode(jpg, nj, LIMIT, &img, &err), INSP_ERR_FORMAT);

    /* The limit is inclusive. */
    size_t len;
    uint8_t *data = load_fixture("tiny/images/00_normal.png", &len);
    REQUIRE(data);
    CHECK_OK(insp_image_decode(data, len, 150L * 120, &img, &err));
    insp_image_free(&img);
    CHECK_EQ_INT(insp_image_decode(data, len, 150L * 120 - 1, &img, &err), INSP_ERR_TOO_LARGE);
    free(data);
    data = load_fixture("tiny/images/00_normal.jpg", &len);
    REQUIRE(data);
    CHECK_OK(insp_image_decode(data, len, 150L * 120, &img, &err));
    insp_image_free(&img);
    CHECK_EQ_INT(insp_image_decode(data, len, 150L * 120 - 1, &img, &err), INSP_ERR_TOO_LARGE);
    free(data);
}

static void test_load_file_errors(void)
{
    insp_image img;
    insp_error err = {0};
    CHECK_EQ_INT(insp_image_load("/nonexistent/x.png", LIMIT, &img, &err), INSP_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "/nonexistent/x.png") != NULL);
    CHECK_EQ_INT(insp_image_load("/tmp", LIMIT, &img, &err), INSP_ERR_IO);

    char path[] = "/tmp/insp_test_image_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    /* A sparse file just over 256 MB: refused from its size, never read. */
    CHECK(ftruncate(fd, 256L * 1024 * 1024 + 1) == 0);
    CHECK_EQ_INT(insp_image_load(path, LIMIT, &img, &err), INSP_ERR_TOO_LARGE);
    CHECK(img.rgb == NULL);
    CHECK(ftruncate(fd, 0) == 0);
    CHECK_EQ_INT(insp_image_load(path, LIMIT, &img, &err), INSP_ERR_FORMAT);
    CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "empty") != NULL);
    close(fd);
    unlink(path);
}

/* ---- PNG flavours -------------------------------------------------------------------- */

static void test_png_gray_variants(void)
{
    enum { W = 9, H = 5 };
    uint8_t raw[W * H * 4], want[W * H * 3]; /* up to gray+alpha, 16-bit */
    size_t len;
    uint8_t *png;

    for (int depth = 1; depth <= 16; depth *= 2) {
        int maxv = (1 << depth) - 1;
        size_t stride = ((size_t)W * depth + 7) / 8;
        memset(raw, 0, sizeof raw);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int v = (int)(rnd() % (unsigned)(maxv + 1));
                uint8_t *row = raw + y * stride;
                if (depth == 16) {
                    row[2 * x] = (uint8_t)(v >> 8);
                    row[2 * x + 1] = (uint8_t)v;
                } else {
                    int bit = x * depth;
                    row[bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
                }
                /* Low depths scale to 0..255; 16-bit keeps its high byte. */
                int e = depth == 16 ? v >> 8 : v * 255 / maxv;
                for (int c = 0; c < 3; c++)
                    want[(y * W + x) * 3 + c] = (uint8_t)e;
            }
        for (int interlace = 0; interlace < 2; interlace++) {
            png_spec s = {.width = W, .height = H, .bit_depth = depth,
                          .color_type = PNG_COLOR_TYPE_GRAY, .interlace = interlace,
                          .raw = raw, .stride = stride};
            png = make_png(&s, &len);
            REQUIRE(png);
            char what[64];
            snprintf(what, sizeof what, "gray %d-bit%s", depth, interlace ? " interlaced" : "");
            check_decodes_to(what, png, len, W, H, want);
            free(png);
        }
    }

    /* Gray + alpha, 8 and 16 bit: alpha dropped, gray kept (no compositing). */
    for (int depth = 8; depth <= 16; depth += 8) {
        int bps = depth / 8;
        for (int i = 0; i < W * H; i++) {
            for (int b = 0; b < 2 * bps; b++)
                raw[i * 2 * bps + b] = (uint8_t)rnd();
            for (int c = 0; c < 3; c++)
                want[i * 3 + c] = raw[i * 2 * bps];
        }
        png_spec s = {.width = W, .height = H, .bit_depth = depth,
                      .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .raw = raw,
                      .stride = (size_t)W * 2 * bps};
        png = make_png(&s, &len);
        REQUIRE(png);
        check_decodes_to(depth == 8 ? "gray+alpha 8" : "gray+alpha 16", png, len, W, H, want);
        free(png);
    }
}

static void test_png_palette(void)
{
    enum { W = 7, H = 6 };
    png_color pal[11];
    uint8_t alpha[11];
    for (int k = 0; k < 11; k++) {
        pal[k].red = (uint8_t)(k * 23);
        pal[k].green = (uint8_t)(250 - k * 19);
        pal[k].blue = (uint8_t)(k * k);
        alpha[k] = (uint8_t)(k * 25);
    }
    for (int depth = 1; depth <= 8; depth *= 2) {
        int n_pal = depth == 8 ? 11 : (1 << depth);
        if (n_pal > 11)
            n_pal = 11;
        uint8_t raw[W * H], want[W * H * 3];
        size_t stride = ((size_t)W * depth + 7) / 8;
        memset(raw, 0, sizeof raw);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int k = (int)(rnd() % (unsigned)n_pal);
                int bit = x * depth;
                raw[y * stride + bit / 8] |= (uint8_t)(k << (8 - depth - bit % 8));
                want[(y * W + x) * 3 + 0] = pal[k].red;
                want[(y * W + x) * 3 + 1] = pal[k].green;
                want[(y * W + x) * 3 + 2] = pal[k].blue;
            }
        for (int with_trns = 0; with_trns < 2; with_trns++) {
            png_spec s = {.width = W, .height = H, .bit_depth = depth,
                          .color_type = PNG_COLOR_TYPE_PALETTE, .interlace = with_trns,
                          .raw = raw, .stride = stride, .palette = pal, .n_palette = n_pal,
                          .trns = with_trns ? alpha : NULL, .n_trns = with_trns ? n_pal : 0};
            size_t len;
            uint8_t *png = make_png(&s, &len);
            REQUIRE(png);
            char what[64];
            snprintf(what, sizeof what, "palette %d-bit%s", depth, with_trns ? " tRNS interlaced" : "");
            check_decodes_to(what, png, len, W, H, want);
            free(png);
        }
    }
}

static void test_png_color_variants(void)
{
    enum { W = 13, H = 11 };
    static uint8_t raw[W * H * 8], want[W * H * 3];
    for (int depth = 8; depth <= 16; depth += 8) {
        for (int alpha = 0; alpha < 2; alpha++) {
            int bps = depth / 8, ch = alpha ? 4 : 3;
            for (int i = 0; i < W * H; i++) {
                for (int b = 0; b < ch * bps; b++)
                    raw[i * ch * bps + b] = (uint8_t)rnd();
                if (alpha && i % 3 == 0) /* fully transparent pixels keep their color */
                    memset(raw + i * ch * bps + 3 * bps, 0, (size_t)bps);
                for (int c = 0; c < 3; c++)
                    want[i * 3 + c] = raw[i * ch * bps + c * bps];
            }
            for (int interlace = 0; interlace < 2; interlace++) {
                png_spec s = {.width = W, .height = H, .bit_depth = depth,
                              .color_type = alpha ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                              .interlace = interlace, .raw = raw,
                              .stride = (size_t)W * ch * bps};
                size_t len;
                uint8_t *png = make_png(&s, &len);
                REQUIRE(png);
                char what[64];
                snprintf(what, sizeof what, "%s %d-bit%s", alpha ? "RGBA" : "RGB", depth,
                         interlace ? " interlaced" : "");
                check_decodes_to(what, png, len, W, H, want);
                free(png);
            }
        }
    }
    /* RGB with a tRNS color key: the keyed color stays as it is. */
    for (int i = 0; i < W * H * 3; i++)
        raw[i] = want[i] = (uint8_t)rnd();
    png_color_16 key = {0, raw[0], raw[1], raw[2], 0};
    png_spec s = {.width = W, .height = H, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB,
                  .raw = raw, .stride = W * 3, .trns_color = &key};
    size_t len;
    uint8_t *png = make_png(&s, &len);
    REQUIRE(png);
    check_decodes_to("RGB tRNS key", png, len, W, H, want);
    free(png);
}

/* ---- JPEG flavours ------------------------------------------------------------------- */

static uint8_t *make_jpeg(const uint8_t *px, int w, int h, int pf, int subsamp, int flags,
                          size_t *len)
{
    tjhandle tj = tjInitCompress();
    if (!tj)
        return NULL;
    unsigned char *buf = NULL;
    unsigned long n = 0;
    int rc = tjCompress2(tj, px, w, 0, h, pf, &buf, &n, subsamp, 100, flags);
    tjDestroy(tj);
    if (rc != 0) {
        tjFree(buf);
        return NULL;
    }
    uint8_t *copy = malloc(n);
    if (copy)
        memcpy(copy, buf, n);
    tjFree(buf);
    *len = n;
    return copy;
}

/* Max |decoded - want| over all channels, or -1 when decoding fails. */
static int jpeg_max_diff(const uint8_t *jpg, size_t len, int w, int h, const uint8_t *want)
{
    insp_image img;
    insp_error err = {0};
    int rc = insp_image_decode(jpg, len, LIMIT, &img, &err);
    CHECK_MSG(rc == INSP_OK, "%s", err.msg);
    if (rc != INSP_OK)
        return -1;
    CHECK(img.width == w && img.height == h);
    int worst = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        int d = abs((int)img.rgb[i] - (int)want[i]);
        if (d > worst)
            worst = d;
    }
    insp_image_free(&img);
    return worst;
}

static void test_jpeg_variants(void)
{
    enum { W = 24, H = 16 };
    uint8_t gray[W * H], rgb[W * H * 3], cmyk[W * H * 4], want[W * H * 3];
    size_t len;
    uint8_t *jpg;

    /* Grayscale JPEG: a smooth ramp survives quality 100 almost exactly. */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            gray[y * W + x] = (uint8_t)(40 + 5 * x + 3 * y);
            for (int c = 0; c < 3; c++)
                want[(y * W + x) * 3 + c] = gray[y * W + x];
        }
    jpg = make_jpeg(gray, W, H, TJPF_GRAY, TJSAMP_GRAY, 0, &len);
    REQUIRE(jpg);
    int d = jpeg_max_diff(jpg, len, W, H, want);
    CHECK_MSG(d >= 0 && d <= 3, "gray JPEG max diff %d", d);
    free(jpg);

    /* Color, baseline and progressive: a flat color per quadrant pins the channel order. */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int q = (y >= H / 2) * 2 + (x >= W / 2);
            static const uint8_t colors[4][3] = {
                {200, 30, 90}, {20, 180, 60}, {70, 80, 230}, {250, 240, 10}};
            memcpy(rgb + (y * W + x) * 3, colors[q], 3);
        }
    for (int progressive = 0; progressive < 2; progressive++) {
        jpg = make_jpeg(rgb, W, H, TJPF_RGB, TJSAMP_444,
                        progressive ? TJFLAG_PROGRESSIVE : 0, &len);
        REQUIRE(jpg);
        d = jpeg_max_diff(jpg, len, W, H, rgb);
        CHECK_MSG(d >= 0 && d <= 12, "%s JPEG max diff %d", progressive ? "progressive" : "RGB",
                  d);
        free(jpg);
    }

    /* CMYK (Adobe, inverted): red = c·k/255 and so on. */
    for (int i = 0; i < W * H; i++) {
        cmyk[4 * i + 0] = 200;
        cmyk[4 * i + 1] = 100;
        cmyk[4 * i + 2] = 50;
        cmyk[4 * i + 3] = 180;
        want[3 * i + 0] = (uint8_t)(200 * 180 / 255);
        want[3 * i + 1] = (uint8_t)(100 * 180 / 255);
        want[3 * i + 2] = (uint8_t)(50 * 180 / 255);
    }
    jpg = make_jpeg(cmyk, W, H, TJPF_CMYK, TJSAMP_444, 0, &len);
    REQUIRE(jpg);
    d = jpeg_max_diff(jpg, len, W, H, want);
    CHECK_MSG(d >= 0 && d <= 3, "CMYK JPEG max diff %d", d);
    free(jpg);
}

/* ---- resampling ---------------------------------------------------------------------- */

/* The formula, evaluated directly per output pixel in double: no precomputed tables, no
 * separable passes. */
static double keys(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1)
        return (a + 2) * x * x * x - (a + 3) * x * x + 1;
    if (x < 2)
        return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
    return 0;
}

static int axis_taps(int in, int out, int i, double *w, int *lo_out)
{
    double scale = (double)in / out;
    double support = 2 * (scale > 1 ? scale : 1);
    double center = (i + 0.5) * scale;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0)
        lo = 0;
    if (hi > in)
        hi = in;
    double total = 0;
    for (int j = lo; j < hi; j++) {
        w[j - lo] = keys((j - center + 0.5) / (scale > 1 ? scale : 1));
        total += w[j - lo];
    }
    for (int j = lo; j < hi; j++)
        w[j - lo] /= total;
    *lo_out = lo;
    return hi - lo;
}

static double direct_pixel(const float *src, int w, int h, int ow, int oh, int ox, int oy)
{
    double wx[256], wy[256];
    int x0, y0;
    int nx = axis_taps(w, ow, ox, wx, &x0), ny = axis_taps(h, oh, oy, wy, &y0);
    double v = 0;
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++)
            v += wy[j] * wx[i] * src[(y0 + j) * w + x0 + i];
    return v;
}

static void check_against_direct(int w, int h, int ow, int oh)
{
    float *src = malloc(sizeof(float) * (size_t)w * h);
    float *dst = malloc(sizeof(float) * (size_t)ow * oh);
    REQUIRE(src && dst);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) /* a checker with a ramp: sharp edges and slopes */
            src[y * w + x] = (float)(((x / 2 + y / 3) % 2) * 0.8 + 0.01 * x - 0.02 * y);
    CHECK_OK(insp_resize_bicubic_plane(src, w, h, dst, ow, oh));
    double worst = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            double e = fabs(dst[y * ow + x] - direct_pixel(src, w, h, ow, oh, x, y));
            if (e > worst)
                worst = e;
        }
    /* The reference computes centers in float (ulp 7.6e-6 at 100 px), so a few 1e-6. */
    CHECK_MSG(worst < 1e-5, "%dx%d -> %dx%d: max diff %.3g from the direct formula", w, h, ow,
              oh, worst);
    free(src);
    free(dst);
}

static void test_resize_matches_direct_formula(void)
{
    check_against_direct(7, 5, 20, 13);     /* upsample both */
    check_against_direct(40, 33, 9, 6);     /* downsample both */
    check_against_direct(50, 8, 17, 21);    /* down in x, up in y */
    check_against_direct(150, 120, 96, 96); /* the fixture shapes */
    check_against_direct(111, 97, 96, 96);
    check_against_direct(1, 1, 3, 4);
    check_against_direct(5, 4, 1, 1);
    check_against_direct(96, 96, 96, 96); /* same size: the identity */
}

static void test_resize_constant_and_identity(void)
{
    enum { W = 31, H = 17 };
    float src[W * H], up[64 * 50], down[5 * 3], same[W * H];
    for (int i = 0; i < W * H; i++)
        src[i] = 0.37f;
    CHECK_OK(insp_resize_bicubic_plane(src, W, H, up, 64, 50));
    CHECK_OK(insp_resize_bicubic_plane(src, W, H, down, 5, 3));
    for (int i = 0; i < 64 * 50; i++)
        CHECK_NEAR(up[i], 0.37, 1e-6);
    for (int i = 0; i < 5 * 3; i++)
        CHECK_NEAR(down[i], 0.37, 1e-6);
    for (int i = 0; i < W * H; i++)
        src[i] = (float)rnd() / (float)(1u << 24);
    CHECK_OK(insp_resize_bicubic_plane(src, W, H, same, W, H));
    CHECK(memcmp(src, same, sizeof src) == 0);

    CHECK_EQ_INT(insp_resize_bicubic_plane(src, 0, H, same, W, H), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_resize_bicubic_plane(src, W, H, same, W, 0), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_resize_bicubic_plane(NULL, W, H, same, W, H), INSP_ERR_INVALID);
}

static void test_to_input_layout(void)
{
    /* Constant color: each plane is that channel's normalized value, in R, G, B order. */
    enum { W = 37, H = 23, S = 16 };
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        rgb[3 * i] = 10;
        rgb[3 * i + 1] = 128;
        rgb[3 * i + 2] = 250;
    }
    insp_image img = {W, H, rgb};
    float out[3 * S * S];
    CHECK_OK(insp_image_to_input(&img, S, openai_mean, openai_std, out));
    const int v[3] = {10, 128, 250};
    for (int c = 0; c < 3; c++) {
        double want = (v[c] / 255.0 - openai_mean[c]) / openai_std[c];
        for (int i = 0; i < S * S; i++)
            CHECK_NEAR(out[c * S * S + i], want, 2e-6);
    }
    /* Non-constant: each plane equals the plane resize of that channel, normalized. */
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)rnd();
    CHECK_OK(insp_image_to_input(&img, S, openai_mean, openai_std, out));
    float plane[W * H], small[S * S];
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < W * H; i++)
            plane[i] = rgb[3 * i + c] / 255.0f;
        CHECK_OK(insp_resize_bicubic_plane(plane, W, H, small, S, S));
        for (int i = 0; i < S * S; i++)
            CHECK_NEAR(out[c * S * S + i], (small[i] - openai_mean[c]) / openai_std[c], 1e-6);
    }
    const float zero_std[3] = {1, 0, 1};
    CHECK_EQ_INT(insp_image_to_input(&img, S, openai_mean, zero_std, out), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_image_to_input(&img, 0, openai_mean, openai_std, out), INSP_ERR_INVALID);
    insp_image empty = {0};
    CHECK_EQ_INT(insp_image_to_input(&empty, S, openai_mean, openai_std, out), INSP_ERR_INVALID);
}

static void test_to_input_speed(void)
{
    /* Not a benchmark: reports the cost of a typical camera frame, and checks it stays sane. */
    enum { W = 1600, H = 1200, S = 240 };
    insp_image img = {W, H, malloc((size_t)W * H * 3)};
    float *out = malloc(sizeof(float) * 3 * S * S);
    REQUIRE(img.rgb && out);
    for (size_t i = 0; i < (size_t)W * H * 3; i++)
        img.rgb[i] = (uint8_t)(i * 7);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(insp_image_to_input(&img, S, openai_mean, openai_std, out));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("  to_input %dx%d -> %d: %.1f ms\n", W, H, S, ms);
    for (int i = 0; i < 3 * S * S; i++)
        if (!isfinite(out[i])) {
            CHECK_MSG(0, "non-finite output at %d", i);
            break;
        }
    free(img.rgb);
    free(out);
}

TEST_MAIN(T(test_decode_fixture_images), T(test_jpeg_matches_png),
          T(test_input_matches_reference), T(test_empty_and_null), T(test_random_bytes),
          T(test_truncated_png), T(test_truncated_jpeg), T(test_corrupt_png),
          T(test_corrupt_jpeg), T(test_jpeg_extraneous_bytes_accepted),
          T(test_too_large_before_decoding), T(test_load_file_errors),
          T(test_png_gray_variants), T(test_png_palette), T(test_png_color_variants),
          T(test_jpeg_variants), T(test_resize_matches_direct_formula),
          T(test_resize_constant_and_identity), T(test_to_input_layout),
          T(test_to_input_speed))
