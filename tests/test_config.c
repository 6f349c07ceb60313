/* Tests of open_clip_config.json parsing: both layouts, defaults, and one rejected value per
 * kind of mistake, each named in the message. */
#include "harness.h"
#include "inspectd/clip.h"

static int parse(const char *json, insp_clip_config *cfg, insp_error *err)
{
    insp_error_clear(err);
    return insp_clip_config_parse(json, strlen(json), cfg, err);
}

/* Parses json expecting status want and needle in the message. */
static void expect_fail(const char *json, int want, const char *needle)
{
    insp_clip_config cfg;
    insp_error err;
    int rc = parse(json, &cfg, &err);
    CHECK_MSG(rc == want, "status %d, want %d, msg \"%s\" for %s", rc, want, err.msg, json);
    CHECK_EQ_INT(err.status, want);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needle);
}

static const float openai_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float openai_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static void hub_layout_fixture(void)
{
    size_t len;
    char *text = read_file(fixture_path("tiny/open_clip_config.json"), &len);
    REQUIRE(text);
    insp_clip_config cfg;
    insp_error err;
    int rc = insp_clip_config_parse(text, len, &cfg, &err);
    free(text);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_EQ_INT(cfg.embed_dim, 32);
    CHECK(!cfg.quick_gelu);
    CHECK_EQ_INT(cfg.vision.image_size, 96);
    CHECK_EQ_INT(cfg.vision.patch_size, 16);
    CHECK_EQ_INT(cfg.vision.grid, 6);
    CHECK_EQ_INT(cfg.vision.width, 64);
    CHECK_EQ_INT(cfg.vision.layers, 2);
    CHECK_EQ_INT(cfg.vision.head_width, 32);
    CHECK_EQ_INT(cfg.vision.heads, 2);
    CHECK_EQ_INT(cfg.vision.mlp_width, 0); /* no mlp_ratio given: left for the loader */
    CHECK_EQ_INT(cfg.text.context_length, 77);
    CHECK_EQ_INT(cfg.text.vocab_size, 49408);
    CHECK_EQ_INT(cfg.text.width, 64);
    CHECK_EQ_INT(cfg.text.heads, 2);
    CHECK_EQ_INT(cfg.text.layers, 2);
    for (int i = 0; i < 3; i++) {
        CHECK(cfg.mean[i] == openai_mean[i]);
        CHECK(cfg.std[i] == openai_std[i]);
    }
}

static void quickgelu_fixture(void)
{
    size_t len;
    char *text = read_file(fixture_path("tiny-quickgelu/open_clip_config.json"), &len);
    REQUIRE(text);
    insp_clip_config cfg;
    insp_error err;
    CHECK_OK(insp_clip_config_parse(text, len, &cfg, &err));
    free(text);
    CHECK(cfg.quick_gelu);
    CHECK_EQ_INT(cfg.vision.image_size, 64);
    CHECK_EQ_INT(cfg.vision.grid, 4);
}

static void bare_model_config(void)
{
    /* open_clip's own model_configs/ViT-B-32.json */
    const char *json = "{\"embed_dim\": 512, \"vision_cfg\": {\"image_size\": 224, \"layers\": 12,"
                       " \"width\": 768, \"patch_size\": 32}, \"text_cfg\": {\"context_length\": 77,"
                       " \"vocab_size\": 49408, \"width\": 512, \"heads\": 8, \"layers\": 12}}";
    insp_clip_config cfg;
    insp_error err;
    int rc = parse(json, &cfg, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_EQ_INT(cfg.embed_dim, 512);
    CHECK_EQ_INT(cfg.vision.grid, 7);
    CHECK_EQ_INT(cfg.vision.width, 768);
    CHECK_EQ_INT(cfg.vision.head_width, 0); /* the loader applies open_clip's default 64 */
    CHECK_EQ_INT(cfg.text.heads, 8);
    CHECK(!cfg.quick_gelu);
    CHECK(cfg.mean[1] == openai_mean[1] && cfg.std[2] == openai_std[2]);
}

static void empty_config_leaves_dims_zero(void)
{
    insp_clip_config cfg;
    insp_error err;
    CHECK_OK(parse("{}", &cfg, &err));
    CHECK_EQ_INT(cfg.embed_dim, 0);
    CHECK_EQ_INT(cfg.vision.width, 0);
    CHECK_EQ_INT(cfg.vision.grid, 0);
    CHECK_EQ_INT(cfg.text.vocab_size, 0);
    CHECK(cfg.mean[0] == openai_mean[0] && cfg.std[0] == openai_std[0]);
    /* model_cfg present but empty, preprocess absent */
    CHECK_OK(parse("{\"model_cfg\": {}, \"other\": 1}", &cfg, &err));
    CHECK_EQ_INT(cfg.vision.layers, 0);
}

static void optional_forms(void)
{
    insp_clip_config cfg;
    insp_error err;
    const char *json =
        "{\"model_cfg\": {\"quick_gelu\": true, \"unknown_key\": [1, {\"x\": 2}],"
        " \"vision_cfg\": {\"image_size\": [336, 336], \"patch_size\": 14.0, \"width\": 1024,"
        " \"mlp_ratio\": 4, \"head_width\": null, \"ls_init_value\": null,"
        " \"attentional_pool\": false, \"pool_type\": \"tok\"},"
        " \"text_cfg\": {\"width\": 768, \"mlp_ratio\": 4.0, \"pool_type\": \"argmax\","
        " \"proj_bias\": false}},"
        " \"preprocess_cfg\": {\"mean\": [0.5, 0.5, 0.5], \"std\": [0.25, 0.5, 1],"
        " \"interpolation\": \"bicubic\"}}";
    int rc = parse(json, &cfg, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK(cfg.quick_gelu);
    CHECK_EQ_INT(cfg.vision.image_size, 336);
    CHECK_EQ_INT(cfg.vision.patch_size, 14);
    CHECK_EQ_INT(cfg.vision.grid, 24);
    CHECK_EQ_INT(cfg.vision.mlp_width, 4096);
    CHECK_EQ_INT(cfg.vision.head_width, 0);
    CHECK_EQ_INT(cfg.text.mlp_width, 3072);
    CHECK(cfg.mean[0] == 0.5f && cfg.std[0] == 0.25f && cfg.std[1] == 0.5f && cfg.std[2] == 1.0f);
}

static void rejects_wrong_types(void)
{
    expect_fail("{\"vision_cfg\": {\"width\": \"abc\"}}", INSP_ERR_FORMAT, "vision_cfg.width");
    expect_fail("{\"vision_cfg\": {\"image_size\": 224.5}}", INSP_ERR_FORMAT,
                "vision_cfg.image_size");
    expect_fail("{\"text_cfg\": {\"heads\": true}}", INSP_ERR_FORMAT, "text_cfg.heads");
    expect_fail("{\"embed_dim\": \"512\"}", INSP_ERR_FORMAT, "embed_dim");
    expect_fail("{\"quick_gelu\": \"yes\"}", INSP_ERR_FORMAT, "quick_gelu");
    expect_fail("{\"vision_cfg\": 5}", INSP_ERR_FORMAT, "vision_cfg");
    expect_fail("{\"model_cfg\": [1]}", INSP_ERR_FORMAT, "model_cfg");
    expect_fail("{\"preprocess_cfg\": {\"mean\": [0.5, 0.5]}}", INSP_ERR_FORMAT,
                "preprocess_cfg.mean");
    expect_fail("{\"preprocess_cfg\": {\"std\": [0.5, \"x\", 0.5]}}", INSP_ERR_FORMAT,
                "preprocess_cfg.std[1]");
    expect_fail("{\"vision_cfg\": {\"mlp_ratio\": \"4\"}}", INSP_ERR_FORMAT,
                "vision_cfg.mlp_ratio");
    expect_fail("{\"vision_cfg\": {\"patch_size\": [14, 14, 14]}}", INSP_ERR_FORMAT,
                "vision_cfg.patch_size");
}

static void rejects_out_of_range(void)
{
    expect_fail("{\"vision_cfg\": {\"layers\": -3}}", INSP_ERR_INVALID, "vision_cfg.layers");
    expect_fail("{\"vision_cfg\": {\"width\": 0}}", INSP_ERR_INVALID, "vision_cfg.width");
    expect_fail("{\"text_cfg\": {\"vocab_size\": 1e12}}", INSP_ERR_INVALID, "text_cfg.vocab_size");
    expect_fail("{\"text_cfg\": {\"context_length\": 99999999999}}", INSP_ERR_INVALID,
                "text_cfg.context_length");
    expect_fail("{\"vision_cfg\": {\"image_size\": 100, \"patch_size\": 16}}", INSP_ERR_INVALID,
                "image_size 100");
    expect_fail("{\"vision_cfg\": {\"width\": 100, \"head_width\": 64}}", INSP_ERR_INVALID,
                "head_width");
    expect_fail("{\"text_cfg\": {\"width\": 100, \"heads\": 8}}", INSP_ERR_INVALID,
                "text_cfg.width");
    expect_fail("{\"preprocess_cfg\": {\"std\": [0.5, 0, 0.5]}}", INSP_ERR_INVALID,
                "preprocess_cfg.std[1]");
    expect_fail("{\"vision_cfg\": {\"mlp_ratio\": -1}}", INSP_ERR_INVALID, "vision_cfg.mlp_ratio");
}

static void rejects_unsupported_variants(void)
{
    expect_fail("{\"vision_cfg\": {\"layers\": [3, 4, 6, 3], \"width\": 64}}",
                INSP_ERR_UNSUPPORTED, "only ViT towers");
    expect_fail("{\"vision_cfg\": {\"timm_model_name\": \"vit_base_patch16_224\"}}",
                INSP_ERR_UNSUPPORTED, "vision_cfg.timm_model_name");
    expect_fail("{\"vision_cfg\": {\"ls_init_value\": 1e-5}}", INSP_ERR_UNSUPPORTED,
                "layer scale");
    expect_fail("{\"vision_cfg\": {\"attentional_pool\": true}}", INSP_ERR_UNSUPPORTED,
                "attentional");
    expect_fail("{\"vision_cfg\": {\"pool_type\": \"avg\"}}", INSP_ERR_UNSUPPORTED,
                "vision_cfg.pool_type");
    expect_fail("{\"vision_cfg\": {\"image_size\": [224, 160]}}", INSP_ERR_UNSUPPORTED,
                "non-square");
    expect_fail("{\"text_cfg\": {\"hf_model_name\": \"roberta-base\"}}", INSP_ERR_UNSUPPORTED,
                "text_cfg.hf_model_name");
    expect_fail("{\"text_cfg\": {\"no_causal_mask\": true}}", INSP_ERR_UNSUPPORTED,
                "causal");
    expect_fail("{\"custom_text\": true}", INSP_ERR_UNSUPPORTED, "custom_text");
}

static void rejects_bad_json(void)
{
    expect_fail("{\"embed_dim\": 512,", INSP_ERR_FORMAT, "not valid JSON");
    expect_fail("", INSP_ERR_FORMAT, "not valid JSON");
    expect_fail("[1, 2]", INSP_ERR_FORMAT, "not a JSON object");
    insp_clip_config cfg;
    insp_error err;
    CHECK_EQ_INT(insp_clip_config_parse(NULL, 0, &cfg, &err), INSP_ERR_INVALID);
    /* the length bounds the text: a valid prefix followed by junk is accepted */
    const char *s = "{}garbage";
    CHECK_OK(insp_clip_config_parse(s, 2, &cfg, &err));
}

TEST_MAIN(T(hub_layout_fixture), T(quickgelu_fixture), T(bare_model_config),
          T(empty_config_leaves_dims_zero), T(optional_forms), T(rejects_wrong_types),
          T(rejects_out_of_range), T(rejects_unsupported_variants), T(rejects_bad_json))
