/* Reads open_clip_config.json into insp_clip_config, refusing values and model variants the
 * towers cannot compute instead of letting them surface later as wrong numbers. */
#include "inspectd/clip.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

/* Bounds far above any released CLIP; they keep later size arithmetic (width·width·layers,
 * tokens·width) comfortably inside 64 bits and reject garbage early. */
#define MAX_IMAGE_SIZE 8192
#define MAX_WIDTH 65536
#define MAX_LAYERS 1024
#define MAX_CONTEXT 65536
#define MAX_VOCAB (1 << 24)

static const float openai_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float openai_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* Checks that v is a positive integer ≤ max. Integral reals (224.0) are accepted since some
 * tools write every number as a float. where/key name it in messages ("vision_cfg.width"). */
static int int_value(const json_t *v, const char *where, const char *key, int max, int *out,
                     insp_error *err)
{
    double x;
    if (json_is_integer(v))
        x = (double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))
        x = json_real_value(v);
    else
        return insp_error_set(err, INSP_ERR_FORMAT, "config key %s.%s: expected an integer",
                              where, key);
    if (x <= 0 || x > max)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "config key %s.%s: %.17g is out of range (1..%d)", where, key, x,
                              max);
    *out = (int)x;
    return INSP_OK;
}

/* An optional dimension: *out is left unchanged when the key is absent or null. */
static int get_dim(const json_t *obj, const char *where, const char *key, int max, int *out,
                   insp_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return INSP_OK;
    return int_value(v, where, key, max, out, err);
}

/* image_size and patch_size may also be an [h, w] pair in open_clip configs; the towers
 * handle square ones only. */
static int get_square(const json_t *obj, const char *where, const char *key, int max, int *out,
                      insp_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_array(v))
        return get_dim(obj, where, key, max, out, err);
    int h = 0, w = 0;
    if (json_array_size(v) != 2)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "config key %s.%s: expected an integer or an [h, w] pair", where,
                              key);
    int rc = int_value(json_array_get(v, 0), where, key, max, &h, err);
    if (rc == INSP_OK)
        rc = int_value(json_array_get(v, 1), where, key, max, &w, err);
    if (rc != INSP_OK)
        return rc;
    if (h != w)
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "config key %s.%s: non-square [%d, %d] is not supported", where,
                              key, h, w);
    *out = h;
    return INSP_OK;
}

/* An optional positive number (mlp_ratio). *out is left unchanged when absent or null. */
static int get_ratio(const json_t *obj, const char *where, const char *key, double *out,
                     insp_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return INSP_OK;
    if (!json_is_number(v))
        return insp_error_set(err, INSP_ERR_FORMAT, "config key %s.%s: expected a number",
                              where, key);
    double x = json_number_value(v);
    if (!(x > 0 && x <= 64))
        return insp_error_set(err, INSP_ERR_INVALID,
                              "config key %s.%s: %g is out of range (0..64]", where, key, x);
    *out = x;
    return INSP_OK;
}

static int get_bool(const json_t *obj, const char *where, const char *key, bool *out,
                    insp_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return INSP_OK;
    if (!json_is_boolean(v))
        return insp_error_set(err, INSP_ERR_FORMAT, "config key %s%s%s: expected true or false",
                              where, *where ? "." : "", key);
    *out = json_is_true(v);
    return INSP_OK;
}

/* The sub-object at key, or NULL when absent/null; anything else is an error. */
static int get_object(const json_t *obj, const char *where, const char *key,
                      const json_t **out, insp_error *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return INSP_OK;
    if (!json_is_object(v))
        return insp_error_set(err, INSP_ERR_FORMAT, "config key %s%s%s: expected an object",
                              where, *where ? "." : "", key);
    *out = v;
    return INSP_OK;
}

/* Options of open_clip's towers that change the arithmetic. Each one is refused by name:
 * ignoring it would load fine and compute a different model. A key counts as set when it is
 * present and not null, false or its open_clip default string. */
typedef struct variant {
    const char *key;
    const char *deflt; /* string value that means "off" (NULL: only null/false are off) */
    const char *what;
} variant;

static const variant vision_variants[] = {
    {"timm_model_name", NULL, "timm vision towers"},
    {"attentional_pool", NULL, "attentional pooling"},
    {"ls_init_value", NULL, "layer scale"},
    {"global_average_pool", NULL, "global average pooling"},
    {"no_ln_pre", NULL, "a vision tower without ln_pre"},
    {"final_ln_after_pool", NULL, "ln_post after pooling"},
    {"pool_type", "tok", "vision pooling other than the class token"},
};

static const variant text_variants[] = {
    {"hf_model_name", NULL, "Hugging Face text towers"},
    {"ls_init_value", NULL, "layer scale"},
    {"embed_cls", NULL, "a text class embedding"},
    {"no_causal_mask", NULL, "text attention without the causal mask"},
    {"proj_bias", NULL, "a biased text projection"},
    {"pool_type", "argmax", "text pooling other than at the EOT token"},
    /* text final_ln_after_pool is absent on purpose: LayerNorm is per token, so with argmax
     * pooling the order does not matter. */
};

static int check_variants(const json_t *obj, const char *where, const variant *list, size_t n,
                          insp_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(obj, list[i].key);
        if (!v || json_is_null(v) || json_is_false(v))
            continue;
        if (list[i].deflt && json_is_string(v) && strcmp(json_string_value(v), list[i].deflt) == 0)
            continue;
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "config key %s.%s: %s is not supported", where, list[i].key,
                              list[i].what);
    }
    return INSP_OK;
}

static int mlp_from_ratio(double ratio, int width)
{
    return ratio > 0 && width > 0 ? (int)((double)width * ratio) : 0;
}

static int parse_vision(const json_t *v, insp_clip_config *cfg, insp_error *err)
{
    const char *w = "vision_cfg";
    const json_t *layers = json_object_get(v, "layers");
    if (json_is_array(layers) || json_is_object(layers))
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "config key vision_cfg.layers is a list (a ResNet tower); only "
                              "ViT towers are supported");
    int rc = check_variants(v, w, vision_variants, sizeof vision_variants / sizeof vision_variants[0], err);
    double ratio = 0;
    if (rc == INSP_OK)
        rc = get_square(v, w, "image_size", MAX_IMAGE_SIZE, &cfg->vision.image_size, err);
    if (rc == INSP_OK)
        rc = get_square(v, w, "patch_size", MAX_IMAGE_SIZE, &cfg->vision.patch_size, err);
    if (rc == INSP_OK)
        rc = get_dim(v, w, "width", MAX_WIDTH, &cfg->vision.width, err);
    if (rc == INSP_OK)
        rc = get_dim(v, w, "layers", MAX_LAYERS, &cfg->vision.layers, err);
    if (rc == INSP_OK)
        rc = get_dim(v, w, "head_width", MAX_WIDTH, &cfg->vision.head_width, err);
    if (rc == INSP_OK)
        rc = get_ratio(v, w, "mlp_ratio", &ratio, err);
    if (rc != INSP_OK)
        return rc;
    cfg->vision.mlp_width = mlp_from_ratio(ratio, cfg->vision.width);

    int s = cfg->vision.image_size, p = cfg->vision.patch_size;
    if (s && p) {
        if (s % p != 0)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "config keys vision_cfg.image_size %d and patch_size %d: the "
                                  "image size is not a multiple of the patch size",
                                  s, p);
        cfg->vision.grid = s / p;
    }
    int wd = cfg->vision.width, hw = cfg->vision.head_width;
    if (wd && hw) {
        if (wd % hw != 0)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "config keys vision_cfg.width %d and head_width %d: the width "
                                  "is not a multiple of the head width",
                                  wd, hw);
        cfg->vision.heads = wd / hw;
    }
    return INSP_OK;
}

static int parse_text(const json_t *t, insp_clip_config *cfg, insp_error *err)
{
    const char *w = "text_cfg";
    int rc = check_variants(t, w, text_variants, sizeof text_variants / sizeof text_variants[0], err);
    double ratio = 0;
    if (rc == INSP_OK)
        rc = get_dim(t, w, "context_length", MAX_CONTEXT, &cfg->text.context_length, err);
    if (rc == INSP_OK)
        rc = get_dim(t, w, "vocab_size", MAX_VOCAB, &cfg->text.vocab_size, err);
    if (rc == INSP_OK)
        rc = get_dim(t, w, "width", MAX_WIDTH, &cfg->text.width, err);
    if (rc == INSP_OK)
        rc = get_dim(t, w, "heads", MAX_WIDTH, &cfg->text.heads, err);
    if (rc == INSP_OK)
        rc = get_dim(t, w, "layers", MAX_LAYERS, &cfg->text.layers, err);
    if (rc == INSP_OK)
        rc = get_ratio(t, w, "mlp_ratio", &ratio, err);
    if (rc != INSP_OK)
        return rc;
    cfg->text.mlp_width = mlp_from_ratio(ratio, cfg->text.width);
    int wd = cfg->text.width, h = cfg->text.heads;
    if (wd && h && wd % h != 0)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "config keys text_cfg.width %d and heads %d: the width is not a "
                              "multiple of the head count",
                              wd, h);
    return INSP_OK;
}

/* mean or std: three numbers; std strictly positive since the input is divided by it. */
static int get_triple(const json_t *pre, const char *key, bool positive, float out[3],
                      insp_error *err)
{
    const json_t *v = json_object_get(pre, key);
    if (!v || json_is_null(v))
        return INSP_OK;
    if (!json_is_array(v) || json_array_size(v) != 3)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "config key preprocess_cfg.%s: expected an array of 3 numbers", key);
    float tmp[3];
    for (size_t i = 0; i < 3; i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_number(x))
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "config key preprocess_cfg.%s[%zu]: expected a number", key, i);
        double d = json_number_value(x);
        if (!isfinite(d) || (positive && !(d > 0)) || fabs(d) > 1e6)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "config key preprocess_cfg.%s[%zu]: %g is out of range", key, i,
                                  d);
        tmp[i] = (float)d;
    }
    memcpy(out, tmp, sizeof tmp);
    return INSP_OK;
}

int insp_clip_config_parse(const char *json, size_t len, insp_clip_config *cfg, insp_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->mean, openai_mean, sizeof cfg->mean);
    memcpy(cfg->std, openai_std, sizeof cfg->std);
    if (!json)
        return insp_error_set(err, INSP_ERR_INVALID, "config: no text given");

    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root)
        return insp_error_set(err, INSP_ERR_FORMAT, "config: not valid JSON: %s (line %d)",
                              jerr.text, jerr.line);
    int rc = INSP_OK;
    const json_t *model = root, *pre = NULL, *vision = NULL, *text = NULL;
    if (!json_is_object(root)) {
        rc = insp_error_set(err, INSP_ERR_FORMAT, "config: top level is not a JSON object");
        goto done;
    }
    /* The hub layout wraps the model config; a bare open_clip model config is the model. */
    if (json_object_get(root, "model_cfg")) {
        rc = get_object(root, "", "model_cfg", &model, err);
        if (rc == INSP_OK && !model)
            rc = insp_error_set(err, INSP_ERR_FORMAT, "config key model_cfg: expected an object");
    }
    if (rc == INSP_OK)
        rc = get_object(root, "", "preprocess_cfg", &pre, err);
    if (rc == INSP_OK)
        rc = get_object(model, "", "vision_cfg", &vision, err);
    if (rc == INSP_OK)
        rc = get_object(model, "", "text_cfg", &text, err);
    if (rc == INSP_OK)
        rc = get_dim(model, "model_cfg", "embed_dim", MAX_WIDTH, &cfg->embed_dim, err);
    if (rc == INSP_OK)
        rc = get_bool(model, "model_cfg", "quick_gelu", &cfg->quick_gelu, err);
    if (rc == INSP_OK && json_is_true(json_object_get(model, "custom_text")))
        rc = insp_error_set(err, INSP_ERR_UNSUPPORTED,
                            "config key model_cfg.custom_text: a separate text module (text.*) "
                            "is not supported");
    if (rc == INSP_OK && vision)
        rc = parse_vision(vision, cfg, err);
    if (rc == INSP_OK && text)
        rc = parse_text(text, cfg, err);
    if (rc == INSP_OK && pre)
        rc = get_triple(pre, "mean", false, cfg->mean, err);
    if (rc == INSP_OK && pre)
        rc = get_triple(pre, "std", true, cfg->std, err);
done:
    json_decref(root);
    return rc;
}
