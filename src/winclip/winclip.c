/* The WinCLIP scorer object, the text side of a product (prompt ensemble → two mean
 * embeddings) and the per-image features the towers produce for scoring and references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/sha2.h>

#include "winclip/winclip_impl.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int insp_winclip_create(const insp_clip *clip, const int *scales, int n_scales,
                        insp_winclip **out, insp_error *err)
{
    static const int default_scales[] = {2, 3};
    if (!out)
        return insp_error_set(err, INSP_ERR_INVALID, "winclip: no output pointer");
    *out = NULL;
    if (!clip)
        return insp_error_set(err, INSP_ERR_INVALID, "winclip: no model");
    if (!scales || n_scales == 0) {
        scales = default_scales;
        n_scales = 2;
    }
    const insp_clip_config *cfg = insp_clip_get_config(clip);
    int G = cfg->vision.grid;
    if (n_scales < 0 || n_scales > INSP_MAX_SCALES)
        return insp_error_set(err, INSP_ERR_INVALID, "winclip: %d window scales, expected 1..%d",
                              n_scales, INSP_MAX_SCALES);
    for (int s = 0; s < n_scales; s++)
        if (scales[s] < 1 || scales[s] > G)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "winclip: window scale %d outside 1..%d (the patch grid)",
                                  scales[s], G);

    insp_winclip *wc = calloc(1, sizeof *wc);
    if (!wc)
        return insp_error_set(err, INSP_ERR_NOMEM, "winclip: out of memory");
    wc->clip = clip;
    wc->grid = G;
    wc->width = cfg->vision.width;
    wc->dim = cfg->embed_dim;
    for (int s = 0; s < n_scales; s++) {
        int st = insp_windows_make(G, scales[s], &wc->windows[s]);
        if (st != INSP_OK) {
            insp_winclip_free(wc);
            return insp_error_set(err, st, "winclip: windows of %d×%d patches: %s", scales[s],
                                  scales[s], insp_strerror(st));
        }
        wc->n_scales = s + 1;
    }
    *out = wc;
    return INSP_OK;
}

void insp_winclip_free(insp_winclip *wc)
{
    if (!wc)
        return;
    for (int s = 0; s < INSP_MAX_SCALES; s++)
        insp_windows_free(&wc->windows[s]);
    free(wc);
}

const insp_clip *insp_winclip_clip(const insp_winclip *wc)
{
    return wc ? wc->clip : NULL;
}

int insp_winclip_n_scales(const insp_winclip *wc)
{
    return wc ? wc->n_scales : 0;
}

const insp_windows *insp_winclip_windows(const insp_winclip *wc, int scale_index)
{
    if (!wc || scale_index < 0 || scale_index >= wc->n_scales)
        return NULL;
    return &wc->windows[scale_index];
}

/* A prompt's cache key: the SHA-256 of its n_ids token ids, little-endian int32. */
static void prompt_key(const int32_t *ids, int n_ids, uint8_t key[32])
{
    struct sha256_ctx h;
    sha256_init(&h);
    for (int i = 0; i < n_ids; i++) {
        uint32_t v = (uint32_t)ids[i];
        const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                              (uint8_t)(v >> 24)};
        sha256_update(&h, 4, b);
    }
    sha256_digest(&h, SHA256_DIGEST_SIZE, key);
}

/* Tokenizes n prompts and fills emb[n, D] with their embeddings: from cache where it holds
 * them, the rest encoded in one batch (and offered to the cache). *n_cached += hits. */
static int embed_side(const insp_winclip *wc, const insp_tokenizer *tok, insp_clip_ws *ws,
                      insp_pool *pool, char *const *prompts, int n, const char *side,
                      const insp_prompt_cache *cache, float *emb, int *n_cached,
                      insp_error *err)
{
    const insp_clip_config *cfg = insp_clip_get_config(wc->clip);
    int ctx = cfg->text.context_length, D = wc->dim;
    int32_t *ids = malloc((size_t)n * (size_t)ctx * sizeof *ids); // [n_miss, ctx]
    uint8_t(*keys)[32] = malloc((size_t)n * sizeof *keys);       // [n_miss][32]
    int *miss = malloc((size_t)n * sizeof *miss);                // prompt index of each miss
    // [n_miss, D]; without a cache every prompt is a miss in order: straight into emb.
    float *fresh = cache ? malloc((size_t)n * (size_t)D * sizeof *fresh) : emb;
    int st = INSP_OK, n_miss = 0;
    if (!ids || !keys || !miss || !fresh) {
        st = insp_error_set(err, INSP_ERR_NOMEM, "winclip: out of memory encoding %d prompts", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int32_t *row = ids + (long)n_miss * ctx;
        int len = insp_tokenizer_encode(tok, prompts[i], row, ctx, err);
        if (len < 0) {
            st = len;
            insp_error_prefix(err, "%s prompt \"%s\": ", side, prompts[i]);
            goto done;
        }
        if (cache) {
            prompt_key(row, len, keys[n_miss]);
            if (cache->get(cache->ctx, keys[n_miss], emb + (long)i * D)) {
                ++*n_cached;
                continue;
            }
        }
        miss[n_miss++] = i; /* a miss keeps its row and key; a hit's go to the next prompt */
    }
    if (n_miss > 0) {
        st = insp_clip_encode_text(wc->clip, ws, pool, n_miss, ids, fresh);
        if (st != INSP_OK) {
            st = insp_error_set(err, st, "winclip: text tower on the %s prompts: %s", side,
                                insp_strerror(st));
            goto done;
        }
        if (cache) {
            for (int j = 0; j < n_miss; j++)
                memcpy(emb + (long)miss[j] * D, fresh + (long)j * D, (size_t)D * sizeof *emb);
            cache->put(cache->ctx, n_miss, (const uint8_t(*)[32])keys, fresh);
        }
    }
done:
    free(ids);
    free(keys);
    free(miss);
    if (fresh != emb)
        free(fresh);
    return st;
}

int insp_winclip_text(const insp_winclip *wc, const insp_tokenizer *tok, insp_clip_ws *ws,
                      insp_pool *pool, const insp_prompts *prompts, float *t, insp_error *err)
{
    return insp_winclip_text_cached(wc, tok, ws, pool, prompts, NULL, t, NULL, err);
}

int insp_winclip_text_cached(const insp_winclip *wc, const insp_tokenizer *tok,
                             insp_clip_ws *ws, insp_pool *pool, const insp_prompts *prompts,
                             const insp_prompt_cache *cache, float *t, int *n_cached,
                             insp_error *err)
{
    int hits = 0;
    if (n_cached)
        *n_cached = 0;
    if (!wc || !tok || !ws || !prompts || !t || (cache && (!cache->get || !cache->put)))
        return insp_error_set(err, INSP_ERR_INVALID, "winclip text: missing argument");
    if (prompts->n_normal < 1 || prompts->n_anomalous < 1 || !prompts->normal ||
        !prompts->anomalous)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "winclip text: %d normal and %d anomalous prompts, need at least "
                              "one of each",
                              prompts->n_normal, prompts->n_anomalous);
    const int D = wc->dim, n[2] = {prompts->n_normal, prompts->n_anomalous};
    char *const *text[2] = {prompts->normal, prompts->anomalous};
    static const char *const side[2] = {"normal", "anomalous"};
    int st = INSP_OK;
    for (int k = 0; k < 2 && st == INSP_OK; k++) {
        float *emb = malloc((size_t)n[k] * (size_t)D * sizeof *emb); // [n, D]
        if (!emb)
            return insp_error_set(err, INSP_ERR_NOMEM,
                                  "winclip: out of memory encoding %d prompts", n[k]);
        st = embed_side(wc, tok, ws, pool, text[k], n[k], side[k], cache, emb, &hits, err);
        // The mean in double, in prompt order: the same bits whichever came from the cache.
        for (int d = 0; d < D && st == INSP_OK; d++) {
            double sum = 0;
            for (int i = 0; i < n[k]; i++)
                sum += emb[(long)i * D + d];
            t[(long)k * D + d] = (float)(sum / n[k]);
        }
        free(emb);
    }
    if (n_cached)
        *n_cached = hits;
    return st;
}

int insp_features_init(const insp_winclip *wc, insp_features *f)
{
    if (!f)
        return INSP_ERR_INVALID;
    *f = (insp_features){0};
    if (!wc)
        return INSP_ERR_INVALID;
    size_t G2 = (size_t)wc->grid * (size_t)wc->grid;
    f->grid = wc->grid;
    f->width = wc->width;
    f->dim = wc->dim;
    f->n_scales = wc->n_scales;
    f->image_embed = malloc((size_t)wc->dim * sizeof(float));
    f->patch_tokens = malloc(G2 * (size_t)wc->width * sizeof(float));
    f->f0 = malloc((1 + G2) * (size_t)wc->width * sizeof(float));
    bool ok = f->image_embed && f->patch_tokens && f->f0;
    for (int s = 0; s < wc->n_scales; s++) {
        f->windows[s] = malloc((size_t)wc->windows[s].n * (size_t)wc->dim * sizeof(float));
        ok = ok && f->windows[s];
    }
    if (!ok) {
        insp_features_free(f);
        return INSP_ERR_NOMEM;
    }
    return INSP_OK;
}

void insp_features_free(insp_features *f)
{
    if (!f)
        return;
    free(f->image_embed);
    free(f->patch_tokens);
    free(f->f0);
    for (int s = 0; s < INSP_MAX_SCALES; s++)
        free(f->windows[s]);
    *f = (insp_features){0};
}

int insp_winclip_features(const insp_winclip *wc, insp_clip_ws *ws, insp_pool *pool,
                          const float *input, insp_features *f)
{
    if (!wc || !ws || !input || !f || f->grid != wc->grid || f->width != wc->width ||
        f->dim != wc->dim || f->n_scales != wc->n_scales || !f->image_embed ||
        !f->patch_tokens || !f->f0)
        return INSP_ERR_INVALID;
    double t0 = now_ms();
    int st = insp_clip_encode_image(wc->clip, ws, pool, input, f->image_embed, f->patch_tokens,
                                    f->f0);
    if (st != INSP_OK)
        return st;
    double t1 = now_ms();
    insp_window_set sets[INSP_MAX_SCALES];
    for (int s = 0; s < wc->n_scales; s++) {
        if (!f->windows[s])
            return INSP_ERR_INVALID;
        sets[s] = (insp_window_set){
            .k = wc->windows[s].k,
            .n = wc->windows[s].n,
            .patches = wc->windows[s].patches,
            .out = f->windows[s],
        };
    }
    st = insp_clip_encode_windows(wc->clip, ws, pool, f->f0, wc->n_scales, sets);
    f->image_ms = t1 - t0;
    f->windows_ms = now_ms() - t1;
    return st;
}

void insp_normalize_rows(const float *src, long n, int dim, float *dst)
{
    for (long i = 0; i < n; i++) {
        const float *x = src + i * dim;
        float *y = dst + i * dim;
        double ss = 0;
        for (int d = 0; d < dim; d++)
            ss += (double)x[d] * x[d];
        double norm = sqrt(ss);
        float div = (float)(norm > 1e-12 ? norm : 1e-12);
        for (int d = 0; d < dim; d++)
            y[d] = x[d] / div;
    }
}
