/* Loading the configured models (weights, tokenizer, window geometry) and naming what they are. */
#include "daemon/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/log.h"

/* SHA-256 of the random-weight fixture models shipped in tests/fixtures. */
static const char *const test_model_checksums[] = {
    "90d2a22b8c37c9ba687566c14e7bd7e0cee5381a131f2993512cf040daf05eed", /* tiny */
    "0fda39a7a1784988c5ffaeafffbd8ef205455166be05f7330201b403f2542b54", /* tiny-quickgelu */
};

typedef struct known_arch {
    const char *name;
    int image_size, patch_size, width, layers, embed_dim;
} known_arch;

static const known_arch known[] = {
    {"ViT-B-16-plus-240", 240, 16, 896, 12, 640},
    {"ViT-B-16", 224, 16, 768, 12, 512},
    {"ViT-B-32", 224, 32, 768, 12, 512},
    {"ViT-L-14", 224, 14, 1024, 24, 768},
    {"ViT-L-14-336", 336, 14, 1024, 24, 768},
    {"ViT-H-14", 224, 14, 1280, 32, 1024},
};

static const char *architecture_of(const insp_clip_config *c)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].image_size == c->vision.image_size &&
            known[i].patch_size == c->vision.patch_size && known[i].width == c->vision.width &&
            known[i].layers == c->vision.layers && known[i].embed_dim == c->embed_dim)
            return known[i].name;
    return "custom-vit";
}

static int load_one(insp_model *m, const char *name, const char *path, insp_error *err)
{
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->path, sizeof m->path, "%s", path);
    int st = insp_clip_load(path, &m->clip, err);
    if (st != INSP_OK)
        return insp_error_prefix(err, "model %s: ", name);
    char bpe[4096];
    st = insp_tokenizer_find(path, bpe, sizeof bpe, err);
    if (st == INSP_OK)
        st = insp_tokenizer_load(bpe, &m->tok, err);
    if (st != INSP_OK)
        return insp_error_prefix(err, "model %s: tokenizer: ", name);
    st = insp_winclip_create(m->clip, NULL, 0, &m->wc, err);
    if (st != INSP_OK)
        return insp_error_prefix(err, "model %s: ", name);
    const insp_clip_config *c = insp_clip_get_config(m->clip);
    m->architecture = architecture_of(c);
    for (size_t i = 0; i < sizeof test_model_checksums / sizeof test_model_checksums[0]; i++)
        m->test_model |= strcmp(insp_clip_checksum(m->clip), test_model_checksums[i]) == 0;
    INSP_LOG_INFO("model_loaded", "model %s (%s, %dpx, width %d, %d layers) from %s, sha256 %s",
                  name, m->architecture, c->vision.image_size, c->vision.width,
                  c->vision.layers, path, insp_clip_checksum(m->clip));
    if (m->test_model)
        INSP_LOG_WARN("test_model",
                      "model %s is a tiny random-weight test model: its scores are meaningless "
                      "until real weights are fetched (weights/fetch ViT-B-16-plus-240)",
                      name);
    return INSP_OK;
}

static bool is_dir(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

int insp_models_load(const insp_config *cfg, insp_model **models, int *n, insp_error *err)
{
    *models = NULL;
    *n = 0;
    int count = cfg->n_models ? (int)cfg->n_models : 1;
    insp_model *ms = calloc((size_t)count, sizeof *ms);
    if (!ms)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    int st = INSP_OK;
    if (cfg->n_models) {
        for (int i = 0; i < count && st == INSP_OK; i++)
            st = load_one(&ms[i], cfg->models[i].name, cfg->models[i].path, err);
    } else if (is_dir("weights/ViT-B-16-plus-240")) {
        st = load_one(&ms[0], "default", "weights/ViT-B-16-plus-240", err);
    } else if (is_dir("tests/fixtures/tiny")) {
        INSP_LOG_WARN("no_model", "no model configured and weights/ViT-B-16-plus-240 not fetched: "
                                  "falling back to the tiny test model tests/fixtures/tiny");
        st = load_one(&ms[0], "default", "tests/fixtures/tiny", err);
    } else {
        st = insp_error_set(err, INSP_ERR_NOT_FOUND,
                            "no model configured (--model NAME=DIR or models: in the config) "
                            "and none found at weights/ViT-B-16-plus-240; run weights/fetch");
    }
    if (st != INSP_OK) {
        insp_models_free(ms, count);
        return st;
    }
    *models = ms;
    *n = count;
    return INSP_OK;
}

void insp_models_free(insp_model *models, int n)
{
    if (!models)
        return;
    for (int i = 0; i < n; i++) {
        insp_text_cache_close(models[i].text_cache);
        insp_winclip_free(models[i].wc);
        insp_tokenizer_free(models[i].tok);
        insp_clip_free(models[i].clip);
    }
    free(models);
}

const insp_model *insp_models_find(const insp_model *models, int n, const char *name)
{
    if (!name)
        return n > 0 ? &models[0] : NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(models[i].name, name) == 0)
            return &models[i];
    return NULL;
}

void insp_models_open_text_caches(insp_model *models, int n, insp_store *store)
{
    for (int i = 0; i < n; i++) {
        insp_model *m = &models[i];
        insp_error err = {0};
        bool reset = false;
        int dim = insp_clip_get_config(m->clip)->embed_dim;
        if (insp_text_cache_open(store, insp_clip_checksum(m->clip), dim, &m->text_cache, &reset,
                                 &err) != INSP_OK)
            INSP_LOG_WARN("text_cache", "model %s: no prompt-embedding cache (%s): every "
                          "product's prompts are encoded at each start", m->name, err.msg);
        else if (reset)
            INSP_LOG_WARN("text_cache", "model %s: the prompt-embedding cache had a damaged "
                          "part, cut off (those prompts are encoded again)", m->name);
        else
            INSP_LOG_INFO("text_cache", "model %s: %d prompt embeddings cached", m->name,
                          insp_text_cache_count(m->text_cache));
    }
}
