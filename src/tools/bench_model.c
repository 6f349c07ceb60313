/* Random-weight CLIP models for the bench: timings need the architecture, not trained
 * weights, and writing a real safetensors file means the real loader path is what runs. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inspectd/safetensors.h"
#include "tools/bench.h"

#define CONFIG_NAME "open_clip_config.json"
#define WEIGHTS_NAME "open_clip_model.safetensors"
/* Floats generated and written per chunk: the writer's memory stays at a few MB. */
#define CHUNK_FLOATS (1 << 18)

typedef struct arch {
    const char *name;
    int image_size, patch_size, width, layers, head_width, mlp_width, embed_dim;
    int text_width, text_heads, text_layers;
    bool quick_gelu;
} arch;

/* open_clip's model configs; the OpenAI-trained B-16 and L-14-336 use QuickGELU. */
static const arch builtin[] = {
    {"ViT-B-16-plus-240", 240, 16, 896, 12, 64, 3584, 640, 640, 10, 12, false},
    {"ViT-B-16", 224, 16, 768, 12, 64, 3072, 512, 512, 8, 12, true},
    {"ViT-L-14-336", 336, 14, 1024, 24, 64, 4096, 768, 768, 12, 12, true},
};

static const float openai_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float openai_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static void set_common(insp_clip_config *cfg)
{
    cfg->text.context_length = 77;
    cfg->text.vocab_size = 49408;
    memcpy(cfg->mean, openai_mean, sizeof cfg->mean);
    memcpy(cfg->std, openai_std, sizeof cfg->std);
}

int bench_arch_builtin(const char *name, insp_clip_config *cfg)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        const arch *a = &builtin[i];
        if (strcmp(a->name, name) != 0)
            continue;
        memset(cfg, 0, sizeof *cfg);
        set_common(cfg);
        cfg->embed_dim = a->embed_dim;
        cfg->quick_gelu = a->quick_gelu;
        cfg->vision.image_size = a->image_size;
        cfg->vision.patch_size = a->patch_size;
        cfg->vision.grid = a->image_size / a->patch_size;
        cfg->vision.width = a->width;
        cfg->vision.layers = a->layers;
        cfg->vision.head_width = a->head_width;
        cfg->vision.heads = a->width / a->head_width;
        cfg->vision.mlp_width = a->mlp_width;
        cfg->text.width = a->text_width;
        cfg->text.heads = a->text_heads;
        cfg->text.layers = a->text_layers;
        cfg->text.mlp_width = 4 * a->text_width;
        return INSP_OK;
    }
    return INSP_ERR_NOT_FOUND;
}

static void default_dim(int *v, int d)
{
    if (*v == 0)
        *v = d;
}

int bench_arch_from_config(const char *path, insp_clip_config *cfg, insp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return insp_error_set(err, INSP_ERR_NOT_FOUND, "%s: cannot open: %s", path,
                              strerror(errno));
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool too_big = !feof(f);
    fclose(f);
    if (too_big)
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "%s: larger than %zu bytes", path,
                              sizeof buf);
    int rc = insp_clip_config_parse(buf, n, cfg, err);
    if (rc != INSP_OK) {
        insp_error_prefix(err, "%s: ", path);
        return rc;
    }
    /* open_clip's CLIPVisionCfg / CLIPTextCfg defaults. */
    default_dim(&cfg->vision.image_size, 224);
    default_dim(&cfg->vision.patch_size, 16);
    default_dim(&cfg->vision.width, 768);
    default_dim(&cfg->vision.layers, 12);
    default_dim(&cfg->vision.head_width, 64);
    default_dim(&cfg->vision.mlp_width, 4 * cfg->vision.width);
    default_dim(&cfg->text.context_length, 77);
    default_dim(&cfg->text.vocab_size, 49408);
    default_dim(&cfg->text.width, 512);
    default_dim(&cfg->text.heads, 8);
    default_dim(&cfg->text.layers, 12);
    default_dim(&cfg->text.mlp_width, 4 * cfg->text.width);
    default_dim(&cfg->embed_dim, 512);
    if (cfg->vision.image_size % cfg->vision.patch_size != 0 ||
        cfg->vision.width % cfg->vision.head_width != 0 || cfg->text.width % cfg->text.heads != 0)
        return insp_error_set(err, INSP_ERR_INVALID, "%s: inconsistent dims", path);
    cfg->vision.grid = cfg->vision.image_size / cfg->vision.patch_size;
    cfg->vision.heads = cfg->vision.width / cfg->vision.head_width;
    return INSP_OK;
}

/* ---- the tensors of an open_clip ViT state dict ---- */

/* How a tensor's values are drawn: uniform in center ± scale. */
typedef struct tensor_spec {
    char name[96];
    int ndim;
    int64_t shape[4];
    float center, scale;
} tensor_spec;

typedef struct spec_list {
    tensor_spec *t;
    int n, cap;
} spec_list;

static int add(spec_list *l, const char *name, int ndim, const int64_t *shape, float center,
               float scale)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        tensor_spec *p = realloc(l->t, (size_t)cap * sizeof *p);
        if (!p)
            return INSP_ERR_NOMEM;
        l->t = p;
        l->cap = cap;
    }
    tensor_spec *s = &l->t[l->n++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
    s->center = center;
    s->scale = scale;
    return INSP_OK;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* A weight [out, in] scaled like a uniform Xavier init, so each projection keeps activations
 * near unit size and nothing overflows or turns subnormal over the layers. */
static float fan_in_scale(int64_t in)
{
    return (float)(sqrt(3.0) / sqrt((double)in));
}

static int add_blocks(spec_list *l, const char *prefix, int layers, int64_t w, int64_t m)
{
    char name[96];
    int rc = INSP_OK;
    for (int i = 0; i < layers && rc == INSP_OK; i++) {
#define T(suffix, nd, shp, c, s)                                                               \
    do {                                                                                       \
        snprintf(name, sizeof name, "%s%d.%s", prefix, i, suffix);                             \
        if (rc == INSP_OK)                                                                     \
            rc = add(l, name, nd, shp, c, s);                                                  \
    } while (0)
        T("ln_1.weight", 1, SHAPE(w), 1.0f, 0.1f);
        T("ln_1.bias", 1, SHAPE(w), 0.0f, 0.02f);
        T("attn.in_proj_weight", 2, SHAPE(3 * w, w), 0.0f, fan_in_scale(w));
        T("attn.in_proj_bias", 1, SHAPE(3 * w), 0.0f, 0.02f);
        T("attn.out_proj.weight", 2, SHAPE(w, w), 0.0f, fan_in_scale(w));
        T("attn.out_proj.bias", 1, SHAPE(w), 0.0f, 0.02f);
        T("ln_2.weight", 1, SHAPE(w), 1.0f, 0.1f);
        T("ln_2.bias", 1, SHAPE(w), 0.0f, 0.02f);
        T("mlp.c_fc.weight", 2, SHAPE(m, w), 0.0f, fan_in_scale(w));
        T("mlp.c_fc.bias", 1, SHAPE(m), 0.0f, 0.02f);
        T("mlp.c_proj.weight", 2, SHAPE(w, m), 0.0f, fan_in_scale(m));
        T("mlp.c_proj.bias", 1, SHAPE(w), 0.0f, 0.02f);
#undef T
    }
    return rc;
}

static int build_specs(const insp_clip_config *c, spec_list *l)
{
    int64_t w = c->vision.width, p = c->vision.patch_size, g = c->vision.grid;
    int64_t d = c->embed_dim, wt = c->text.width;
    int rc = add(l, "visual.class_embedding", 1, SHAPE(w), 0.0f, 0.1f);
    if (rc == INSP_OK)
        rc = add(l, "visual.positional_embedding", 2, SHAPE(1 + g * g, w), 0.0f, 0.1f);
    if (rc == INSP_OK)
        rc = add(l, "visual.conv1.weight", 4, SHAPE(w, 3, p, p), 0.0f, fan_in_scale(3 * p * p));
    if (rc == INSP_OK)
        rc = add(l, "visual.ln_pre.weight", 1, SHAPE(w), 1.0f, 0.1f);
    if (rc == INSP_OK)
        rc = add(l, "visual.ln_pre.bias", 1, SHAPE(w), 0.0f, 0.02f);
    if (rc == INSP_OK)
        rc = add_blocks(l, "visual.transformer.resblocks.", c->vision.layers, w,
                        c->vision.mlp_width);
    if (rc == INSP_OK)
        rc = add(l, "visual.ln_post.weight", 1, SHAPE(w), 1.0f, 0.1f);
    if (rc == INSP_OK)
        rc = add(l, "visual.ln_post.bias", 1, SHAPE(w), 0.0f, 0.02f);
    if (rc == INSP_OK)
        rc = add(l, "visual.proj", 2, SHAPE(w, d), 0.0f, fan_in_scale(w));
    if (rc == INSP_OK)
        rc = add(l, "token_embedding.weight", 2, SHAPE(c->text.vocab_size, wt), 0.0f, 0.1f);
    if (rc == INSP_OK)
        rc = add(l, "positional_embedding", 2, SHAPE(c->text.context_length, wt), 0.0f, 0.1f);
    if (rc == INSP_OK)
        rc = add_blocks(l, "transformer.resblocks.", c->text.layers, wt, c->text.mlp_width);
    if (rc == INSP_OK)
        rc = add(l, "ln_final.weight", 1, SHAPE(wt), 1.0f, 0.1f);
    if (rc == INSP_OK)
        rc = add(l, "ln_final.bias", 1, SHAPE(wt), 0.0f, 0.02f);
    if (rc == INSP_OK)
        rc = add(l, "text_projection", 2, SHAPE(wt, d), 0.0f, fan_in_scale(wt));
    return rc;
}

static int64_t numel(const tensor_spec *s)
{
    int64_t n = 1;
    for (int k = 0; k < s->ndim; k++)
        n *= s->shape[k];
    return n;
}

/* ---- writing ---- */

/* xorshift64*: fast and plenty random for weights nobody will look at. */
static uint64_t next_u64(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* IEEE half from float, round to nearest even (values here are far from the edges). */
static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffffu;
    if (exp <= 0)
        return (uint16_t)sign; /* tiny values flush to ±0 */
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)h;
}

static char *header_json(const spec_list *l, bool f16, size_t *len)
{
    json_t *root = json_object();
    json_object_set_new(root, "__metadata__", json_pack("{s:s}", "format", "pt"));
    int64_t off = 0, elem = f16 ? 2 : 4;
    for (int i = 0; i < l->n; i++) {
        const tensor_spec *s = &l->t[i];
        json_t *shape = json_array();
        for (int k = 0; k < s->ndim; k++)
            json_array_append_new(shape, json_integer(s->shape[k]));
        int64_t bytes = numel(s) * elem;
        json_object_set_new(root, s->name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", f16 ? "F16" : "F32",
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text)
        *len = strlen(text);
    return text;
}

static int write_weights(const char *path, const spec_list *l, bool f16, uint64_t seed,
                         insp_error *err)
{
    size_t hlen = 0;
    char *header = header_json(l, f16, &hlen);
    float *buf = malloc(CHUNK_FLOATS * sizeof *buf);
    uint16_t *half = malloc(CHUNK_FLOATS * sizeof *half);
    FILE *f = fopen(path, "wb");
    int rc = INSP_OK;
    if (!header || !buf || !half) {
        rc = insp_error_set(err, INSP_ERR_NOMEM, "bench: out of memory writing %s", path);
        goto done;
    }
    if (!f) {
        rc = insp_error_set(err, INSP_ERR_IO, "bench: cannot create %s: %s", path,
                            strerror(errno));
        goto done;
    }
    /* The header is padded with spaces to a multiple of 8, as safetensors writers do. */
    size_t padded = (hlen + 7) / 8 * 8;
    uint8_t le[8];
    for (int b = 0; b < 8; b++)
        le[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    bool ok = fwrite(le, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    uint64_t state = seed ? seed : 0x9E3779B97F4A7C15ULL;
    for (int i = 0; ok && i < l->n; i++) {
        const tensor_spec *s = &l->t[i];
        for (int64_t left = numel(s); ok && left > 0;) {
            size_t n = left < CHUNK_FLOATS ? (size_t)left : CHUNK_FLOATS;
            for (size_t k = 0; k < n; k++) {
                double u = (double)(next_u64(&state) >> 11) * 0x1.0p-53; /* [0, 1) */
                buf[k] = s->center + s->scale * (float)(2.0 * u - 1.0);
            }
            if (f16) {
                for (size_t k = 0; k < n; k++)
                    half[k] = f32_to_f16(buf[k]);
                ok = fwrite(half, sizeof *half, n, f) == n; /* little-endian hosts only */
            } else {
                ok = fwrite(buf, sizeof *buf, n, f) == n;
            }
            left -= (int64_t)n;
        }
    }
    if (fclose(f) != 0)
        ok = false;
    f = NULL;
    if (!ok)
        rc = insp_error_set(err, INSP_ERR_IO, "bench: cannot write %s: %s", path,
                            strerror(errno));
done:
    if (f)
        fclose(f);
    free(header);
    free(buf);
    free(half);
    return rc;
}

static int write_config(const char *path, const insp_clip_config *c, insp_error *err)
{
    json_t *root = json_pack(
        "{s:{s:i, s:b, s:{s:i, s:i, s:i, s:i, s:i, s:f}, s:{s:i, s:i, s:i, s:i, s:i, s:f}},"
        " s:{s:[f, f, f], s:[f, f, f]}}",
        "model_cfg", "embed_dim", c->embed_dim, "quick_gelu", c->quick_gelu, "vision_cfg",
        "image_size", c->vision.image_size, "patch_size", c->vision.patch_size, "width",
        c->vision.width, "layers", c->vision.layers, "head_width", c->vision.head_width,
        "mlp_ratio", (double)c->vision.mlp_width / c->vision.width, "text_cfg", "context_length",
        c->text.context_length, "vocab_size", c->text.vocab_size, "width", c->text.width, "heads",
        c->text.heads, "layers", c->text.layers, "mlp_ratio",
        (double)c->text.mlp_width / c->text.width, "preprocess_cfg", "mean", (double)c->mean[0],
        (double)c->mean[1], (double)c->mean[2], "std", (double)c->std[0], (double)c->std[1],
        (double)c->std[2]);
    if (!root)
        return insp_error_set(err, INSP_ERR_NOMEM, "bench: cannot build %s", path);
    int st = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (st != 0)
        return insp_error_set(err, INSP_ERR_IO, "bench: cannot write %s", path);
    return INSP_OK;
}

int bench_model_write(const insp_clip_config *cfg, bool f16, uint64_t seed, const char *target,
                      char *dir, size_t dir_size, insp_error *err)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    int n = target ? snprintf(dir, dir_size, "%s", target)
                   : snprintf(dir, dir_size, "%s/inspect-bench-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= dir_size)
        return insp_error_set(err, INSP_ERR_INVALID, "bench: model path too long");
    if (target && mkdir(dir, 0755) != 0)
        return insp_error_set(err, INSP_ERR_IO, "bench: cannot create %s: %s", dir,
                              strerror(errno));
    if (!target && !mkdtemp(dir))
        return insp_error_set(err, INSP_ERR_IO, "bench: cannot create a directory under %s: %s",
                              tmp, strerror(errno));
    spec_list l = {0};
    char path[4200];
    int rc = build_specs(cfg, &l);
    if (rc != INSP_OK)
        rc = insp_error_set(err, rc, "bench: out of memory");
    if (rc == INSP_OK) {
        snprintf(path, sizeof path, "%s/%s", dir, CONFIG_NAME);
        rc = write_config(path, cfg, err);
    }
    if (rc == INSP_OK) {
        snprintf(path, sizeof path, "%s/%s", dir, WEIGHTS_NAME);
        rc = write_weights(path, &l, f16, seed, err);
    }
    free(l.t);
    if (rc != INSP_OK)
        bench_model_remove(dir);
    return rc;
}

void bench_model_remove(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, CONFIG_NAME);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", dir, WEIGHTS_NAME);
    unlink(path);
    rmdir(dir);
}
