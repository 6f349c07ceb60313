/* Tests of the safetensors reader: half/bfloat16 decoding against an independent reference,
 * reading the golden fixture, and one damaged header per validation rule. */
#include "harness.h"
#include "inspectd/safetensors.h"

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

/* ---- float decoding ---- */

/* Value of an IEEE half from its fields, by the textbook formula (not bit surgery). */
static double ref_f16(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double mag;
    if (exp == 31)
        mag = mant ? NAN : INFINITY;
    else if (exp == 0)
        mag = ldexp(mant, -24);
    else
        mag = ldexp(1024 + mant, exp - 25);
    return sign ? -mag : mag;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void f16_known_values(void)
{
    CHECK(insp_f16_to_f32(0x3c00) == 1.0f);
    CHECK(insp_f16_to_f32(0xc000) == -2.0f);
    CHECK(insp_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(insp_f16_to_f32(0x0001) == 5.9604644775390625e-8f); /* 2^-24, smallest subnormal */
    CHECK(insp_f16_to_f32(0x03ff) == 6.0975551605224609375e-5f); /* largest subnormal */
    CHECK(insp_f16_to_f32(0x0400) == 6.103515625e-5f);           /* 2^-14, smallest normal */
    CHECK(insp_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(insp_f16_to_f32(0x0000) == 0.0f && !signbit(insp_f16_to_f32(0x0000)));
    CHECK(insp_f16_to_f32(0x8000) == 0.0f && signbit(insp_f16_to_f32(0x8000)));
    CHECK(isinf(insp_f16_to_f32(0x7c00)) && insp_f16_to_f32(0x7c00) > 0);
    CHECK(isinf(insp_f16_to_f32(0xfc00)) && insp_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(insp_f16_to_f32(0x7e00)));
    CHECK(isnan(insp_f16_to_f32(0x7c01))); /* signalling nan stays a nan, not inf */
    CHECK(isnan(insp_f16_to_f32(0xfe00)) && signbit(insp_f16_to_f32(0xfe00)));
}

static void f16_all_values_match_reference(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = insp_f16_to_f32((uint16_t)h);
        double want = ref_f16((uint16_t)h);
        bool ok = isnan(want) ? isnan(got) : ((double)got == want && !signbit(got) == !signbit(want));
        if (!ok && bad++ < 5)
            fprintf(stderr, "  f16 0x%04x: got %.9g, want %.9g\n", h, got, want);
    }
    CHECK_EQ_INT(bad, 0);
}

static void bf16_known_values(void)
{
    CHECK(insp_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(insp_bf16_to_f32(0xc000) == -2.0f);
    CHECK(insp_bf16_to_f32(0x7f7f) == 3.3895313892515355e38f); /* largest finite */
    CHECK(insp_bf16_to_f32(0x0001) == (float)ldexp(1, -133));  /* smallest subnormal */
    CHECK(insp_bf16_to_f32(0x3eab) == 0.333984375f);
    CHECK(isinf(insp_bf16_to_f32(0x7f80)) && insp_bf16_to_f32(0x7f80) > 0);
    CHECK(isinf(insp_bf16_to_f32(0xff80)) && insp_bf16_to_f32(0xff80) < 0);
    CHECK(isnan(insp_bf16_to_f32(0x7fc0)));
    CHECK(isnan(insp_bf16_to_f32(0x7f81)));
    CHECK(signbit(insp_bf16_to_f32(0x8000)) && insp_bf16_to_f32(0x8000) == 0.0f);
    CHECK_EQ_INT(bits_of(insp_bf16_to_f32(0x4049)), 0x40490000u);
}

static void dtype_sizes_and_names(void)
{
    CHECK_EQ_INT(insp_dtype_size(INSP_DTYPE_F32), 4);
    CHECK_EQ_INT(insp_dtype_size(INSP_DTYPE_F16), 2);
    CHECK_EQ_INT(insp_dtype_size(INSP_DTYPE_BF16), 2);
    CHECK_EQ_INT(insp_dtype_size(INSP_DTYPE_I32), 4);
    CHECK_EQ_INT(insp_dtype_size(INSP_DTYPE_I64), 8);
    CHECK_EQ_INT(insp_dtype_size(INSP_DTYPE_U8), 1);
    CHECK(strcmp(insp_dtype_name(INSP_DTYPE_BF16), "BF16") == 0);
    CHECK(strcmp(insp_dtype_name(INSP_DTYPE_I64), "I64") == 0);
}

/* ---- files written by the tests ---- */

static char tmpdir[64];
static char tmppath[128];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/insp-st-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(tmppath, sizeof tmppath, "%s/t.safetensors", tmpdir);
}

static void remove_tmpdir(void)
{
    unlink(tmppath);
    rmdir(tmpdir);
}

/* Writes raw bytes to tmppath. */
static void write_raw(const void *bytes, size_t n)
{
    FILE *f = fopen(tmppath, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) {
        perror(tmppath);
        exit(1);
    }
    fclose(f);
}

/* Writes a safetensors file: 8-byte little-endian header length (hlen_override when non-zero,
 * else the real one), the header text, then data. */
static void write_st(const char *header, const void *data, size_t data_len, uint64_t hlen_override)
{
    size_t hl = strlen(header);
    uint64_t hlen = hlen_override ? hlen_override : hl;
    size_t n = 8 + hl + data_len;
    unsigned char *buf = malloc(n);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len)
        memcpy(buf + 8 + hl, data, data_len);
    write_raw(buf, n);
    free(buf);
}

/* Opens tmppath expecting failure with status want and every needle in the message. */
static void expect_fail(int want, const char *needle1, const char *needle2)
{
    insp_safetensors *st = (insp_safetensors *)&st; /* must be reset to NULL */
    insp_error err;
    insp_error_clear(&err);
    int rc = insp_st_open(tmppath, &st, &err);
    CHECK_MSG(rc == want, "status %d (%s), want %d; msg: %s", rc, insp_strerror(rc), want, err.msg);
    CHECK_EQ_INT(err.status, want);
    CHECK(st == NULL);
    CHECK_MSG(strstr(err.msg, tmppath) != NULL, "message lacks the path: %s", err.msg);
    CHECK_MSG(!needle1 || strstr(err.msg, needle1), "message lacks \"%s\": %s", needle1, err.msg);
    CHECK_MSG(!needle2 || strstr(err.msg, needle2), "message lacks \"%s\": %s", needle2, err.msg);
    insp_st_close(st);
}

static const unsigned char zeros[64];

static void reads_all_dtypes_unaligned(void)
{
    make_tmpdir();
    /* Offsets deliberately odd so that every tensor sits at an unaligned address. */
    unsigned char data[64] = {0};
    const float f32[2] = {1.5f, -3.25f};
    const uint16_t f16[3] = {0x3c00, 0xc000, 0x0001};
    const uint16_t bf16[2] = {0x3f80, 0x7f80};
    const int32_t i32[2] = {-7, 123456};
    memcpy(data + 1, f32, 8);   /* [1, 9) */
    memcpy(data + 9, f16, 6);   /* [9, 15) */
    memcpy(data + 15, bf16, 4); /* [15, 19) */
    memcpy(data + 19, i32, 8);  /* [19, 27) */
    data[27] = 200;             /* U8 [27, 28) */
    const char *hdr =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[3,1],\"data_offsets\":[9,15]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[15,19]},"
        "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[19,27]},"
        "\"u\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[27,28]},"
        "\"z\":{\"dtype\":\"I64\",\"shape\":[0,5],\"data_offsets\":[28,28]}}      ";
    write_st(hdr, data, 40, 0);
    insp_safetensors *st = NULL;
    insp_error err;
    int rc = insp_st_open(tmppath, &st, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    REQUIRE(st);
    CHECK_EQ_INT(insp_st_count(st), 6); /* __metadata__ is not a tensor */
    CHECK(insp_st_find(st, "__metadata__") == NULL);
    CHECK(insp_st_find(st, "nope") == NULL);
    CHECK(insp_st_at(st, -1) == NULL && insp_st_at(st, 6) == NULL);

    float out[3];
    const insp_st_tensor *t = insp_st_find(st, "a");
    REQUIRE(t);
    CHECK(t->dtype == INSP_DTYPE_F32 && t->ndim == 1 && t->shape[0] == 2 && t->nbytes == 8);
    CHECK_OK(insp_st_to_f32(t, out));
    CHECK(out[0] == 1.5f && out[1] == -3.25f);

    t = insp_st_find(st, "h");
    REQUIRE(t);
    CHECK(t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 1 && t->numel == 3);
    CHECK_OK(insp_st_to_f32(t, out));
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == (float)ldexp(1, -24));

    t = insp_st_find(st, "b");
    REQUIRE(t);
    CHECK_OK(insp_st_to_f32(t, out));
    CHECK(out[0] == 1.0f && isinf(out[1]));

    t = insp_st_find(st, "i");
    REQUIRE(t);
    int32_t iv[2];
    memcpy(iv, t->data, sizeof iv);
    CHECK(iv[0] == -7 && iv[1] == 123456);
    CHECK_EQ_INT(insp_st_to_f32(t, out), INSP_ERR_UNSUPPORTED);

    t = insp_st_find(st, "u");
    REQUIRE(t);
    CHECK(t->ndim == 0 && t->numel == 1 && ((const unsigned char *)t->data)[0] == 200);

    t = insp_st_find(st, "z");
    REQUIRE(t);
    CHECK(t->numel == 0 && t->nbytes == 0 && t->dtype == INSP_DTYPE_I64);

    /* insp_st_at walks the tensors in file order. */
    const char *order = "ahbiuz";
    for (int i = 0; i < 6; i++)
        CHECK(insp_st_at(st, i) && insp_st_at(st, i)->name[0] == order[i]);
    insp_st_close(st);
    insp_st_close(NULL);
    remove_tmpdir();
}

static void reads_expected_fixture(void)
{
    insp_safetensors *st = NULL;
    insp_error err;
    int rc = insp_st_open(fixture_path("tiny/expected.safetensors"), &st, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    REQUIRE(st);
    CHECK_EQ_INT(insp_st_count(st), 174); /* entries in the header, by an independent count */
    const insp_st_tensor *m = insp_st_find(st, "masks.s2");
    REQUIRE(m);
    CHECK(m->dtype == INSP_DTYPE_I32);
    CHECK(m->ndim == 2 && m->shape[0] == 4 && m->shape[1] == 25 && m->numel == 100);
    CHECK_EQ_INT(m->nbytes, 400);
    /* Column w is the 2x2 window at grid row w/5, column w%5 of the 6x6 grid. */
    int bad = 0;
    for (int w = 0; w < 25; w++) {
        int r = w / 5, c = w % 5;
        int want[4] = {r * 6 + c, r * 6 + c + 1, (r + 1) * 6 + c, (r + 1) * 6 + c + 1};
        for (int k = 0; k < 4; k++) {
            int32_t v;
            memcpy(&v, (const char *)m->data + 4 * (k * 25 + w), 4);
            bad += v != want[k];
        }
    }
    CHECK_EQ_INT(bad, 0);
    const insp_st_tensor *in = insp_st_find(st, "input.00_normal");
    REQUIRE(in);
    CHECK(in->dtype == INSP_DTYPE_F32 && in->ndim == 3 && in->shape[0] == 3 &&
          in->shape[1] == 96 && in->shape[2] == 96);
    insp_st_close(st);
}

static void rejects_short_and_oversized_headers(void)
{
    make_tmpdir();
    write_raw("\x10\0\0\0\0", 5);
    expect_fail(INSP_ERR_FORMAT, "too short", NULL);

    write_raw("", 0);
    expect_fail(INSP_ERR_FORMAT, "too short", NULL);

    const char *hdr = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    write_st(hdr, zeros, 1, strlen(hdr) + 2); /* claims 2 more header bytes than the file has */
    expect_fail(INSP_ERR_FORMAT, "header length", "exceeds the file");

    write_st(hdr, zeros, 1, (uint64_t)1 << 40);
    expect_fail(INSP_ERR_FORMAT, "header length", "limit");

    write_st(hdr, zeros, 1, UINT64_MAX);
    expect_fail(INSP_ERR_FORMAT, "header length", NULL);
    remove_tmpdir();
}

static void rejects_bad_json(void)
{
    make_tmpdir();
    write_st("{\"a\":{\"dtype\":\"U8\",", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "not valid JSON", NULL);
    write_st("[1, 2]", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "not an object", NULL);
    write_st("", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "not valid JSON", NULL);
    write_st("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
             zeros, 2, 0);
    expect_fail(INSP_ERR_FORMAT, "not valid JSON", "duplicate");
    write_st("{\"w\": 5}", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w", "not an object");
    remove_tmpdir();
}

static void rejects_bad_entries(void)
{
    make_tmpdir();
    write_st("{\"w1\":{\"shape\":[1],\"data_offsets\":[0,1]}}", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w1", "dtype");

    write_st("{\"w2\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", zeros, 8, 0);
    expect_fail(INSP_ERR_UNSUPPORTED, "tensor w2", "F64");

    write_st("{\"w3\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", zeros, 1, 0);
    expect_fail(INSP_ERR_UNSUPPORTED, "tensor w3", "\"Q4\"");

    write_st("{\"w4\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w4", "shape");

    write_st("{\"w5\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w5", "shape");

    write_st("{\"w6\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
             zeros, 1, 0);
    expect_fail(INSP_ERR_UNSUPPORTED, "tensor w6", "dimensions");

    write_st("{\"w7\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
             "\"data_offsets\":[0,4]}}",
             zeros, 4, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w7", "overflow");

    write_st("{\"w8\":{\"dtype\":\"U8\",\"shape\":[1]}}", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w8", "data_offsets");

    write_st("{\"w9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", zeros, 2, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w9", "data_offsets");

    write_st("{\"w10\":{\"dtype\":\"U8\",\"shape\":\"12\",\"data_offsets\":[0,1]}}", zeros, 1, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor w10", "shape");
    remove_tmpdir();
}

static void rejects_bad_offsets(void)
{
    make_tmpdir();
    write_st("{\"o1\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", zeros, 12, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor o1", "past the end");

    write_st("{\"o2\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", zeros, 12, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor o2", "begin after end");

    write_st("{\"o3\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", zeros, 12, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor o3", "data_offsets");

    /* F16 [3] needs 6 bytes, the offsets span 8 */
    write_st("{\"o4\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", zeros, 12, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor o4", "needs 6 bytes");

    write_st("{\"p\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             zeros, 12, 0);
    expect_fail(INSP_ERR_FORMAT, "overlaps", "tensor q");

    /* Overlap found even when the header lists the later tensor first. */
    write_st("{\"r\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
             "\"s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             zeros, 12, 0);
    expect_fail(INSP_ERR_FORMAT, "overlaps", "tensor s");

    write_st("{\"big\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]}}",
             zeros, 12, 0);
    expect_fail(INSP_ERR_FORMAT, "tensor big", "past the end");
    remove_tmpdir();
}

static void missing_and_non_regular_files(void)
{
    insp_safetensors *st = NULL;
    insp_error err;
    CHECK_EQ_INT(insp_st_open("/nonexistent/x.safetensors", &st, &err), INSP_ERR_NOT_FOUND);
    CHECK(st == NULL && strstr(err.msg, "/nonexistent/x.safetensors"));
    CHECK_EQ_INT(insp_st_open("/tmp", &st, &err), INSP_ERR_IO);
    CHECK(st == NULL && strstr(err.msg, "not a regular file"));
}

/* A simple xorshift for reproducible "random" damage. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random byte damage in the fixture's header and random truncation must give an error or a
 * valid handle, never a crash or a read outside the file (ASan watches). */
static void survives_random_damage(void)
{
    size_t len;
    unsigned char *orig = (unsigned char *)read_file(fixture_path("tiny/weights.safetensors"), &len);
    REQUIRE(orig && len > 8);
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--)
        hlen = (hlen << 8) | orig[b];
    REQUIRE(hlen < len);
    make_tmpdir();
    unsigned char *buf = malloc(len);
    int opened = 0, failed = 0, odd = 0;
    for (int iter = 0; iter < 300; iter++) {
        memcpy(buf, orig, len);
        size_t n = len;
        if (iter % 3 == 0) {
            n = (size_t)(rng() % (8 + hlen + 64));
        } else {
            int flips = 1 + (int)(rng() % 4);
            for (int f = 0; f < flips; f++)
                buf[8 + rng() % hlen] = (unsigned char)rng();
        }
        write_raw(buf, n);
        insp_safetensors *st = NULL;
        insp_error err;
        int rc = insp_st_open(tmppath, &st, &err);
        if (rc == 0) {
            opened++;
            /* whatever was accepted must be readable in full */
            float *tmp = NULL;
            for (int i = 0; i < insp_st_count(st); i++) {
                const insp_st_tensor *t = insp_st_at(st, i);
                volatile unsigned char sink = 0;
                for (size_t k = 0; k < t->nbytes; k += 97)
                    sink ^= ((const unsigned char *)t->data)[k];
                if (t->nbytes)
                    sink ^= ((const unsigned char *)t->data)[t->nbytes - 1];
                (void)sink;
                if (t->dtype == INSP_DTYPE_F16 && t->numel < 100000) {
                    tmp = realloc(tmp, (size_t)(t->numel ? t->numel : 1) * sizeof *tmp);
                    CHECK_OK(insp_st_to_f32(t, tmp));
                }
            }
            free(tmp);
            insp_st_close(st);
        } else {
            failed++;
            odd += st != NULL || !(rc == INSP_ERR_FORMAT || rc == INSP_ERR_UNSUPPORTED);
        }
    }
    CHECK_EQ_INT(odd, 0);
    CHECK(failed > 100); /* truncation alone fails a third of the runs */
    fprintf(stderr, "  random damage: %d opened, %d rejected\n", opened, failed);
    free(buf);
    free(orig);
    remove_tmpdir();
}

TEST_MAIN(T(f16_known_values), T(f16_all_values_match_reference), T(bf16_known_values),
          T(dtype_sizes_and_names), T(reads_all_dtypes_unaligned), T(reads_expected_fixture),
          T(rejects_short_and_oversized_headers), T(rejects_bad_json), T(rejects_bad_entries),
          T(rejects_bad_offsets), T(missing_and_non_regular_files), T(survives_random_damage))
