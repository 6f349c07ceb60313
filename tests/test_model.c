/* Tests of insp_clip_load: both fixture models (dims, every converted weight against a decode
 * done here from the raw file, checksum), dims inferred without a config, and one damaged
 * model folder per failure the loader must name. */
#include "harness.h"
#include "clip/model.h"
#include "inspectd/clip.h"

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

/* ---- the fixture file, parsed here with jansson (independently of the reader) ---- */

typedef struct raw_st {
    unsigned char *bytes;
    size_t len;
    json_t *hdr;               /* the header object */
    const unsigned char *data; /* data section */
    size_t data_len;
} raw_st;

static bool raw_load(const char *path, raw_st *r)
{
    memset(r, 0, sizeof *r);
    r->bytes = (unsigned char *)read_file(path, &r->len);
    if (!r->bytes || r->len < 8)
        return false;
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--)
        hlen = (hlen << 8) | r->bytes[b];
    if (hlen > r->len - 8)
        return false;
    r->hdr = json_loadb((const char *)r->bytes + 8, hlen, 0, NULL);
    r->data = r->bytes + 8 + hlen;
    r->data_len = r->len - 8 - hlen;
    return r->hdr != NULL;
}

static void raw_free(raw_st *r)
{
    json_decref(r->hdr);
    free(r->bytes);
}

/* IEEE half by the textbook formula. */
static float ref_f16(const unsigned char *p)
{
    unsigned h = p[0] | (unsigned)p[1] << 8;
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double mag = exp == 31 ? (mant ? NAN : INFINITY)
                 : exp == 0 ? ldexp(mant, -24)
                            : ldexp(1024 + mant, exp - 25);
    return (float)(sign ? -mag : mag);
}

/* Where the model keeps the float copy of a named tensor (NULL for names it does not use). */
static const float *model_ptr(const insp_clip *c, const char *name)
{
    static const struct {
        const char *name;
        size_t off;
    } top[] = {
        {"visual.conv1.weight", offsetof(insp_clip, conv1_w)},
        {"visual.class_embedding", offsetof(insp_clip, class_emb)},
        {"visual.positional_embedding", offsetof(insp_clip, vpos_emb)},
        {"visual.ln_pre.weight", offsetof(insp_clip, ln_pre_w)},
        {"visual.ln_pre.bias", offsetof(insp_clip, ln_pre_b)},
        {"visual.ln_post.weight", offsetof(insp_clip, ln_post_w)},
        {"visual.ln_post.bias", offsetof(insp_clip, ln_post_b)},
        {"visual.proj", offsetof(insp_clip, vproj)},
        {"token_embedding.weight", offsetof(insp_clip, tok_emb)},
        {"positional_embedding", offsetof(insp_clip, tpos_emb)},
        {"ln_final.weight", offsetof(insp_clip, ln_final_w)},
        {"ln_final.bias", offsetof(insp_clip, ln_final_b)},
        {"text_projection", offsetof(insp_clip, tproj)},
    };
    static const struct {
        const char *suffix;
        size_t off;
    } blk[] = {
        {"ln_1.weight", offsetof(insp_block, ln_1_w)},
        {"ln_1.bias", offsetof(insp_block, ln_1_b)},
        {"attn.in_proj_weight", offsetof(insp_block, in_proj_w)},
        {"attn.in_proj_bias", offsetof(insp_block, in_proj_b)},
        {"attn.out_proj.weight", offsetof(insp_block, out_proj_w)},
        {"attn.out_proj.bias", offsetof(insp_block, out_proj_b)},
        {"ln_2.weight", offsetof(insp_block, ln_2_w)},
        {"ln_2.bias", offsetof(insp_block, ln_2_b)},
        {"mlp.c_fc.weight", offsetof(insp_block, fc_w)},
        {"mlp.c_fc.bias", offsetof(insp_block, fc_b)},
        {"mlp.c_proj.weight", offsetof(insp_block, proj_w)},
        {"mlp.c_proj.bias", offsetof(insp_block, proj_b)},
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (strcmp(name, top[i].name) == 0)
            return *(const float *const *)((const char *)c + top[i].off);
    const insp_block *blocks = NULL;
    int layers = 0, k = -1, used = 0;
    if (sscanf(name, "visual.transformer.resblocks.%d.%n", &k, &used) == 1 && used) {
        blocks = c->vblocks;
        layers = c->cfg.vision.layers;
    } else if (sscanf(name, "transformer.resblocks.%d.%n", &k, &used) == 1 && used) {
        blocks = c->tblocks;
        layers = c->cfg.text.layers;
    }
    if (!blocks || k < 0 || k >= layers)
        return NULL;
    for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++)
        if (strcmp(name + used, blk[i].suffix) == 0)
            return *(const float *const *)((const char *)&blocks[k] + blk[i].off);
    return NULL;
}

/* Every F16 tensor of the fixture except logit_scale must be in the model, bit-for-bit equal
 * to the decode done here, inside the single weights block, and the block holds nothing
 * else. */
static void check_all_weights(const insp_clip *c, const char *weights_path)
{
    raw_st r;
    REQUIRE(raw_load(weights_path, &r));
    const char *name;
    json_t *v;
    size_t total = 0;
    int tensors = 0, bad_values = 0;
    json_object_foreach(r.hdr, name, v) {
        if (strcmp(name, "__metadata__") == 0 || strcmp(name, "logit_scale") == 0)
            continue;
        const float *p = model_ptr(c, name);
        CHECK_MSG(p != NULL, "no pointer for %s", name);
        if (!p)
            continue;
        size_t begin = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
        size_t end = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 1));
        CHECK(strcmp(json_string_value(json_object_get(v, "dtype")), "F16") == 0);
        size_t n = (end - begin) / 2;
        CHECK_MSG(p >= c->weights && p + n <= c->weights + c->weights_floats,
                  "%s outside the weights block", name);
        for (size_t i = 0; i < n; i++) {
            float want = ref_f16(r.data + begin + 2 * i);
            if (memcmp(&p[i], &want, sizeof want) != 0 && bad_values++ < 5)
                fprintf(stderr, "  %s[%zu] = %.9g, want %.9g\n", name, i, p[i], want);
        }
        total += n;
        tensors++;
    }
    CHECK_EQ_INT(bad_values, 0);
    CHECK_EQ_INT(tensors, 13 + 12 * (c->cfg.vision.layers + c->cfg.text.layers));
    CHECK_EQ_INT(c->weights_floats, total);
    raw_free(&r);
}

static insp_clip *load_ok(const char *dir)
{
    insp_clip *c = NULL;
    insp_error err;
    insp_error_clear(&err);
    int rc = insp_clip_load(dir, &c, &err);
    CHECK_MSG(rc == 0 && c, "insp_clip_load(%s) = %d: %s", dir, rc, err.msg);
    return c;
}

static void loads_tiny(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", fixture_path("tiny"));
    insp_clip *c = load_ok(dir);
    REQUIRE(c);
    const insp_clip_config *cfg = insp_clip_get_config(c);
    CHECK_EQ_INT(cfg->vision.image_size, 96);
    CHECK_EQ_INT(cfg->vision.patch_size, 16);
    CHECK_EQ_INT(cfg->vision.grid, 6);
    CHECK_EQ_INT(cfg->vision.width, 64);
    CHECK_EQ_INT(cfg->vision.layers, 2);
    CHECK_EQ_INT(cfg->vision.heads, 2);
    CHECK_EQ_INT(cfg->vision.head_width, 32);
    CHECK_EQ_INT(cfg->vision.mlp_width, 256);
    CHECK_EQ_INT(cfg->embed_dim, 32);
    CHECK_EQ_INT(cfg->text.width, 64);
    CHECK_EQ_INT(cfg->text.heads, 2);
    CHECK_EQ_INT(cfg->text.layers, 2);
    CHECK_EQ_INT(cfg->text.mlp_width, 256);
    CHECK_EQ_INT(cfg->text.context_length, 77);
    CHECK_EQ_INT(cfg->text.vocab_size, 49408);
    CHECK(!cfg->quick_gelu);
    CHECK(cfg->mean[0] == 0.48145466f && cfg->std[2] == 0.27577711f);
    /* from sha256sum(1) */
    CHECK(strcmp(insp_clip_checksum(c),
                 "90d2a22b8c37c9ba687566c14e7bd7e0cee5381a131f2993512cf040daf05eed") == 0);
    CHECK(strcmp(insp_clip_weights_file(c), "weights.safetensors") == 0);
    CHECK(strcmp(insp_clip_file_dtype(c), "F16") == 0);
    CHECK(strcmp(insp_clip_dir(c), dir) == 0);
    char wpath[4200];
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    check_all_weights(c, wpath);
    /* One known value: visual.class_embedding[0] decoded by hand from its two bytes. */
    raw_st r;
    REQUIRE(raw_load(wpath, &r));
    const unsigned char *b = r.data + 13954; /* its data_offsets begin, from the header */
    unsigned h = b[0] | (unsigned)b[1] << 8;
    float by_hand = (float)((h & 0x8000 ? -1 : 1) * ldexp(1024 + (h & 1023), (int)((h >> 10) & 31) - 25));
    CHECK(((h >> 10) & 31) != 0 && ((h >> 10) & 31) != 31); /* a normal number */
    CHECK(c->class_emb[0] == by_hand);
    raw_free(&r);
    insp_clip_free(c);
    insp_clip_free(NULL);
}

static void loads_tiny_quickgelu(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", fixture_path("tiny-quickgelu"));
    insp_clip *c = load_ok(dir);
    REQUIRE(c);
    const insp_clip_config *cfg = insp_clip_get_config(c);
    CHECK(cfg->quick_gelu);
    CHECK_EQ_INT(cfg->vision.image_size, 64);
    CHECK_EQ_INT(cfg->vision.grid, 4);
    CHECK_EQ_INT(cfg->vision.heads, 2);
    CHECK_EQ_INT(cfg->embed_dim, 32);
    CHECK(strcmp(insp_clip_checksum(c),
                 "0fda39a7a1784988c5ffaeafffbd8ef205455166be05f7330201b403f2542b54") == 0);
    char wpath[4200];
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    check_all_weights(c, wpath);
    insp_clip_free(c);
}

/* ---- model folders written by the tests ---- */

static char tmpdir[64];

static void make_dir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/insp-model-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void remove_dir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[4200];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

static void write_file(const char *name, const void *bytes, size_t n)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n)) {
        perror(p);
        exit(1);
    }
    fclose(f);
}

static void write_config(const char *text)
{
    write_file("open_clip_config.json", text, strlen(text));
}

static void copy_fixture_config(void)
{
    size_t n;
    char *text = read_file(fixture_path("tiny/open_clip_config.json"), &n);
    if (!text)
        exit(1);
    write_file("open_clip_config.json", text, n);
    free(text);
}

/* Writes name as a safetensors file with header hdr and data (plus extra bytes appended). */
static void write_st(const char *name, const json_t *hdr, const void *data, size_t data_len,
                     const void *extra, size_t extra_len)
{
    char *text = json_dumps(hdr, JSON_COMPACT);
    size_t hl = strlen(text);
    size_t n = 8 + hl + data_len + extra_len;
    unsigned char *buf = malloc(n);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, text, hl);
    memcpy(buf + 8 + hl, data, data_len);
    if (extra_len)
        memcpy(buf + 8 + hl + data_len, extra, extra_len);
    write_file(name, buf, n);
    free(buf);
    free(text);
}

static raw_st fix; /* the tiny fixture's weights, read once per case */

static bool open_fixture(void)
{
    return raw_load(fixture_path("tiny/weights.safetensors"), &fix);
}

/* A copy of the fixture header to damage. */
static json_t *hdr_copy(void)
{
    return json_deep_copy(fix.hdr);
}

static void set_shape(json_t *hdr, const char *name, int n, const int64_t *dims)
{
    json_t *shape = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(shape, json_integer(dims[i]));
    json_object_set_new(json_object_get(hdr, name), "shape", shape);
}

static void set_offsets(json_t *hdr, const char *name, int64_t begin, int64_t end)
{
    json_object_set_new(json_object_get(hdr, name), "data_offsets",
                        json_pack("[I,I]", (json_int_t)begin, (json_int_t)end));
}

static int64_t offset_of(const json_t *hdr, const char *name, int which)
{
    return json_integer_value(
        json_array_get(json_object_get(json_object_get(hdr, name), "data_offsets"), which));
}

/* Loads tmpdir expecting status want and both needles in the message. */
static void expect_fail(int want, const char *needle1, const char *needle2)
{
    insp_clip *c = (insp_clip *)&c; /* must come back NULL */
    insp_error err;
    insp_error_clear(&err);
    int rc = insp_clip_load(tmpdir, &c, &err);
    CHECK_MSG(rc == want, "status %d (%s), want %d; msg: %s", rc, insp_strerror(rc), want, err.msg);
    CHECK_EQ_INT(err.status, want);
    CHECK(c == NULL);
    CHECK_MSG(!needle1 || strstr(err.msg, needle1), "message lacks \"%s\": %s", needle1, err.msg);
    CHECK_MSG(!needle2 || strstr(err.msg, needle2), "message lacks \"%s\": %s", needle2, err.msg);
    if (rc == 0)
        insp_clip_free(c);
}

static void damaged_truncated(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    write_file("weights.safetensors", fix.bytes, fix.len / 2);
    expect_fail(INSP_ERR_FORMAT, "past the end", "weights.safetensors");
    write_file("weights.safetensors", fix.bytes, 5);
    expect_fail(INSP_ERR_FORMAT, "too short", "weights.safetensors");
    remove_dir();
    raw_free(&fix);
}

static void damaged_header(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    unsigned char *b = malloc(fix.len);
    memcpy(b, fix.bytes, fix.len);
    memcpy(b + 8, "{\"visual.proj\": {\"dtype\": ", 26); /* now cut short by garbage */
    b[8 + 26] = '@';
    write_file("weights.safetensors", b, fix.len);
    expect_fail(INSP_ERR_FORMAT, "not valid JSON", "weights.safetensors");

    memcpy(b, fix.bytes, fix.len);
    uint64_t too_long = fix.len; /* header length larger than the whole file */
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(too_long >> (8 * i));
    write_file("weights.safetensors", b, fix.len);
    expect_fail(INSP_ERR_FORMAT, "header length", "exceeds");
    free(b);
    remove_dir();
    raw_free(&fix);
}

static void damaged_offsets(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    json_t *h = hdr_copy();
    set_offsets(h, "ln_final.bias", (int64_t)fix.data_len, (int64_t)fix.data_len + 128);
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_FORMAT, "ln_final.bias", "past the end");
    json_decref(h);

    h = hdr_copy();
    int64_t b = offset_of(h, "visual.ln_pre.weight", 0), e = offset_of(h, "visual.ln_pre.weight", 1);
    set_offsets(h, "visual.ln_pre.bias", b, e);
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_FORMAT, "overlaps", "visual.ln_pre.");
    json_decref(h);
    remove_dir();
    raw_free(&fix);
}

static void damaged_dtypes(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    json_t *h = hdr_copy();
    json_object_set_new(json_object_get(h, "visual.proj"), "dtype", json_string("F8_E4M3"));
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_UNSUPPORTED, "visual.proj", "F8_E4M3");
    json_decref(h);

    /* A valid integer tensor where a weight belongs: 64 F16 bytes = 32 I32. */
    h = hdr_copy();
    json_object_set_new(json_object_get(h, "visual.ln_pre.weight"), "dtype", json_string("I32"));
    set_shape(h, "visual.ln_pre.weight", 1, (int64_t[]){32});
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_UNSUPPORTED, "visual.ln_pre.weight", "I32");
    json_decref(h);

    /* dtype × shape disagrees with the byte length */
    h = hdr_copy();
    set_shape(h, "visual.proj", 2, (int64_t[]){64, 31});
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_FORMAT, "visual.proj", "needs");
    json_decref(h);
    remove_dir();
    raw_free(&fix);
}

static void damaged_missing_tensor(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    json_t *h = hdr_copy();
    json_object_del(h, "visual.ln_post.bias");
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_NOT_FOUND, "visual.ln_post.bias", "not found");
    json_decref(h);

    h = hdr_copy();
    json_object_del(h, "transformer.resblocks.1.mlp.c_fc.bias");
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_NOT_FOUND, "transformer.resblocks.1.mlp.c_fc.bias", NULL);
    json_decref(h);
    remove_dir();
    raw_free(&fix);
}

static void damaged_shapes(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    /* Same bytes, transposed shape: the table check names actual and expected. */
    json_t *h = hdr_copy();
    set_shape(h, "visual.transformer.resblocks.1.mlp.c_proj.weight", 2, (int64_t[]){256, 64});
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_SHAPE, "visual.transformer.resblocks.1.mlp.c_proj.weight",
                "shape [256, 64], expected [64, 256]");
    json_decref(h);

    h = hdr_copy();
    set_shape(h, "text_projection", 2, (int64_t[]){32, 64});
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_SHAPE, "text_projection", "expected [64, 32]");
    json_decref(h);

    /* the config's embed_dim disagrees with visual.proj */
    h = hdr_copy();
    set_shape(h, "visual.proj", 2, (int64_t[]){32, 64});
    write_st("weights.safetensors", h, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_SHAPE, "embed_dim", "visual.proj");
    json_decref(h);
    remove_dir();
    raw_free(&fix);
}

static void config_disagrees_with_weights(void)
{
    REQUIRE(open_fixture());
    make_dir();
    write_st("weights.safetensors", fix.hdr, fix.data, fix.data_len, NULL, 0);
    write_config("{\"model_cfg\": {\"vision_cfg\": {\"width\": 128}}}");
    expect_fail(INSP_ERR_SHAPE, "vision_cfg.width", "visual.class_embedding");
    write_config("{\"model_cfg\": {\"vision_cfg\": {\"layers\": 3}}}");
    expect_fail(INSP_ERR_SHAPE, "vision_cfg.layers", "2 blocks");
    write_config("{\"model_cfg\": {\"vision_cfg\": {\"image_size\": 128, \"patch_size\": 16}}}");
    expect_fail(INSP_ERR_SHAPE, "image_size 128", "visual.positional_embedding");
    write_config("{\"model_cfg\": {\"vision_cfg\": {\"patch_size\": 14}}}");
    expect_fail(INSP_ERR_SHAPE, "vision_cfg.patch_size", "visual.conv1.weight");
    write_config("{\"model_cfg\": {\"text_cfg\": {\"context_length\": 64}}}");
    expect_fail(INSP_ERR_SHAPE, "text_cfg.context_length", "positional_embedding");
    write_config("{\"model_cfg\": {\"text_cfg\": {\"heads\": 3}}}");
    expect_fail(INSP_ERR_SHAPE, "heads 3", NULL);
    write_config("{\"model_cfg\": {\"vision_cfg\": {\"width\": 64, \"mlp_ratio\": 2}}}");
    expect_fail(INSP_ERR_SHAPE, "mlp_ratio", "c_fc.weight");
    write_config("{\"model_cfg\": {\"embed_dim\": 32, \"text_cfg\": {\"vocab_size\": 1000}}}");
    expect_fail(INSP_ERR_SHAPE, "text_cfg.vocab_size", "token_embedding.weight");
    remove_dir();
    raw_free(&fix);
}

static void infers_dims_without_config(void)
{
    REQUIRE(open_fixture());
    make_dir();
    write_st("weights.safetensors", fix.hdr, fix.data, fix.data_len, NULL, 0);
    write_config("{}");
    insp_clip *c = load_ok(tmpdir);
    if (c) {
        const insp_clip_config *cfg = insp_clip_get_config(c);
        CHECK_EQ_INT(cfg->vision.image_size, 96);
        CHECK_EQ_INT(cfg->vision.patch_size, 16);
        CHECK_EQ_INT(cfg->vision.grid, 6);
        CHECK_EQ_INT(cfg->vision.width, 64);
        CHECK_EQ_INT(cfg->vision.layers, 2);
        CHECK_EQ_INT(cfg->vision.head_width, 64); /* open_clip's default, not in the weights */
        CHECK_EQ_INT(cfg->vision.heads, 1);
        CHECK_EQ_INT(cfg->vision.mlp_width, 256);
        CHECK_EQ_INT(cfg->embed_dim, 32);
        CHECK_EQ_INT(cfg->text.width, 64);
        CHECK_EQ_INT(cfg->text.heads, 1);
        CHECK_EQ_INT(cfg->text.layers, 2);
        CHECK_EQ_INT(cfg->text.mlp_width, 256);
        CHECK_EQ_INT(cfg->text.context_length, 77);
        CHECK_EQ_INT(cfg->text.vocab_size, 49408);
        CHECK(!cfg->quick_gelu);
        insp_clip_free(c);
    }
    remove_dir();
    raw_free(&fix);
}

static void rejects_unsupported_variants(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    static const unsigned char extra[128];
    const char *names[] = {"visual.transformer.resblocks.0.ls_1.gamma", "visual.attn_pool.query",
                           "visual.something_new", "transformer.resblocks.0.attn.ln_inner.weight"};
    const char *needles[] = {"layer scale", "attentional pooler", "not part of the supported",
                             "not part of the supported"};
    for (int i = 0; i < 4; i++) {
        json_t *h = hdr_copy();
        json_object_set_new(h, names[i],
                            json_pack("{s:s,s:[i],s:[I,I]}", "dtype", "F16", "shape", 64,
                                      "data_offsets", (json_int_t)fix.data_len,
                                      (json_int_t)fix.data_len + 128));
        write_st("weights.safetensors", h, fix.data, fix.data_len, extra, sizeof extra);
        expect_fail(INSP_ERR_UNSUPPORTED, names[i], needles[i]);
        json_decref(h);
    }
    remove_dir();
    raw_free(&fix);
}

static void weights_file_choice(void)
{
    REQUIRE(open_fixture());
    make_dir();
    copy_fixture_config();
    expect_fail(INSP_ERR_NOT_FOUND, "no *.safetensors", tmpdir);

    /* two CLIP state dicts and no open_clip_model.safetensors: ambiguous */
    write_st("a.safetensors", fix.hdr, fix.data, fix.data_len, NULL, 0);
    write_st("b.safetensors", fix.hdr, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_INVALID, "ambiguous", "a.safetensors and b.safetensors");

    /* the preferred name wins over the others */
    write_st("open_clip_model.safetensors", fix.hdr, fix.data, fix.data_len, NULL, 0);
    insp_clip *c = load_ok(tmpdir);
    if (c)
        CHECK(strcmp(insp_clip_weights_file(c), "open_clip_model.safetensors") == 0);
    insp_clip_free(c);

    /* one state dict next to a file of other tensors (as in the fixture folders) */
    char p[4200];
    snprintf(p, sizeof p, "%s/open_clip_model.safetensors", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/a.safetensors", tmpdir);
    unlink(p);
    json_t *other = json_pack("{s:{s:s,s:[i],s:[i,i]}}", "x", "dtype", "U8", "shape", 4,
                              "data_offsets", 0, 4);
    write_st("aa.safetensors", other, "abcd", 4, NULL, 0);
    json_decref(other);
    c = load_ok(tmpdir);
    if (c)
        CHECK(strcmp(insp_clip_weights_file(c), "b.safetensors") == 0);
    insp_clip_free(c);

    /* a lone damaged file reports its own damage, not "no weights" */
    snprintf(p, sizeof p, "%s/aa.safetensors", tmpdir);
    unlink(p);
    write_file("b.safetensors", "junk", 4);
    expect_fail(INSP_ERR_FORMAT, "b.safetensors", "too short");
    remove_dir();
    raw_free(&fix);
}

static void bad_or_missing_config(void)
{
    REQUIRE(open_fixture());
    make_dir();
    write_st("weights.safetensors", fix.hdr, fix.data, fix.data_len, NULL, 0);
    expect_fail(INSP_ERR_NOT_FOUND, "open_clip_config.json", tmpdir);
    write_config("{\"model_cfg\": {\"embed_dim\": 32,");
    expect_fail(INSP_ERR_FORMAT, "open_clip_config.json", "not valid JSON");
    write_config("{\"model_cfg\": {\"vision_cfg\": {\"width\": \"abc\"}}}");
    expect_fail(INSP_ERR_FORMAT, "open_clip_config.json", "vision_cfg.width");
    remove_dir();
    raw_free(&fix);

    insp_clip *c = NULL;
    insp_error err;
    CHECK_EQ_INT(insp_clip_load("/nonexistent/model", &c, &err), INSP_ERR_NOT_FOUND);
    CHECK(c == NULL);
    CHECK(insp_clip_get_config(NULL) == NULL && insp_clip_checksum(NULL) == NULL);
}

TEST_MAIN(T(loads_tiny), T(loads_tiny_quickgelu), T(damaged_truncated), T(damaged_header),
          T(damaged_offsets), T(damaged_dtypes), T(damaged_missing_tensor), T(damaged_shapes),
          T(config_disagrees_with_weights), T(infers_dims_without_config),
          T(rejects_unsupported_variants), T(weights_file_choice), T(bad_or_missing_config))
