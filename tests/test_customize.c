/* The whole text path: per-product prompt customisation (extra states, templates and
 * sentences change the text embedding exactly as documented: each side is the plain mean of
 * its prompts' embeddings; a malformed prompt set is a clear error), and the prompt cache
 * hook (cached embeddings are used, keyed by tokens, and give the same text embedding). */
#include <math.h>

#include "harness.h"
#include "inspectd/clip.h"
#include "inspectd/prompts.h"
#include "inspectd/tokenizer.h"
#include "inspectd/winclip.h"

typedef struct ctx {
    insp_clip *clip;
    insp_tokenizer *tok;
    insp_clip_ws *ws;
    insp_winclip *wc;
    int D;
} ctx;

static int ctx_open(ctx *c)
{
    char path[4096];
    memset(c, 0, sizeof *c);
    if (insp_clip_load(fixture_path("tiny"), &c->clip, NULL) != INSP_OK ||
        insp_tokenizer_find(NULL, path, sizeof path, NULL) != INSP_OK ||
        insp_tokenizer_load(path, &c->tok, NULL) != INSP_OK ||
        insp_clip_ws_create(c->clip, 0, &c->ws) != INSP_OK ||
        insp_winclip_create(c->clip, NULL, 0, &c->wc, NULL) != INSP_OK)
        return -1;
    c->D = insp_clip_get_config(c->clip)->embed_dim;
    return 0;
}

static void ctx_close(ctx *c)
{
    insp_winclip_free(c->wc);
    insp_clip_ws_free(c->ws);
    insp_tokenizer_free(c->tok);
    insp_clip_free(c->clip);
}

/* Mean embedding of a list of prompts, each encoded on its own (independent of the batching
 * insp_winclip_text does). */
static void mean_of(ctx *c, char **prompts, int n, float *out)
{
    double acc[256] = {0};
    int32_t ids[77];
    float e[256];
    for (int i = 0; i < n; i++) {
        CHECK(insp_tokenizer_encode(c->tok, prompts[i], ids, 77, NULL) >= 2);
        CHECK_OK(insp_clip_encode_text(c->clip, c->ws, NULL, 1, ids, e));
        for (int d = 0; d < c->D; d++)
            acc[d] += e[d];
    }
    for (int d = 0; d < c->D; d++)
        out[d] = (float)(acc[d] / n);
}

/* Builds spec's prompts, checks the counts, and compares insp_winclip_text with the mean of
 * the individually encoded prompts. Returns the text embedding in t[2, D]. */
static void check_spec(ctx *c, const insp_prompt_spec *spec, int n_normal, int n_anom, float *t)
{
    insp_prompts p = {0};
    insp_error err = {0};
    REQUIRE(insp_prompts_build(spec, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, n_normal);
    CHECK_EQ_INT(p.n_anomalous, n_anom);
    CHECK_OK(insp_winclip_text(c->wc, c->tok, c->ws, NULL, &p, t, &err));
    float want[2][256];
    mean_of(c, p.normal, p.n_normal, want[0]);
    mean_of(c, p.anomalous, p.n_anomalous, want[1]);
    CHECK(rel_error(t, want[0], c->D) < 1e-5);
    CHECK(rel_error(t + c->D, want[1], c->D) < 1e-5);
    insp_prompts_free(&p);
}

static void sentences_extend_the_mean(void)
{
    ctx c;
    REQUIRE(ctx_open(&c) == 0);
    float base[512], with[512], sentence[256];
    insp_prompt_spec spec = {.object = "circuit board"};
    check_spec(&c, &spec, 147, 84, base);

    const char *anom[] = {"a blue circuit board with slight scratches on the edge"};
    spec.anomaly_sentences = (insp_strlist){anom, 1};
    check_spec(&c, &spec, 147, 85, with);
    /* Normal side untouched; anomalous side = (84·old + sentence) / 85. */
    CHECK(rel_error(with, base, c.D) < 1e-6);
    char *one[] = {(char *)anom[0]};
    mean_of(&c, one, 1, sentence);
    float want[256];
    for (int d = 0; d < c.D; d++)
        want[d] = (84.0f * base[c.D + d] + sentence[d]) / 85.0f;
    CHECK(rel_error(with + c.D, want, c.D) < 1e-5);
    ctx_close(&c);
}

static void extra_states_and_templates(void)
{
    ctx c;
    REQUIRE(ctx_open(&c) == 0);
    float t[512], base[512];
    insp_prompt_spec spec = {.object = "printed circuit board"};
    check_spec(&c, &spec, 147, 84, base);

    const char *anom[] = {"{} with bad soldering", "{} with a missing component"};
    spec.anomaly_states = (insp_strlist){anom, 2};
    check_spec(&c, &spec, 147, 6 * 21, t);
    CHECK(rel_error(t, base, c.D) < 1e-6);            /* normal side unchanged */
    CHECK(rel_error(t + c.D, base + c.D, c.D) > 1e-3); /* anomalous side moved */

    spec.replace_anomaly_states = true;
    check_spec(&c, &spec, 147, 2 * 21, t);

    const char *tpl[] = {"a photo of {} on the conveyor."};
    spec.templates = (insp_strlist){tpl, 1};
    spec.replace_templates = true;
    check_spec(&c, &spec, 7, 2, t);
    spec.replace_templates = false;
    check_spec(&c, &spec, 7 * 22, 2 * 22, t);
    ctx_close(&c);
}

static void malformed_sets_are_errors(void)
{
    insp_prompts p = {0};
    insp_error err = {0};
    insp_prompt_spec empty_object = {.object = ""};
    CHECK_EQ_INT(insp_prompts_build(&empty_object, &p, &err), INSP_ERR_INVALID);
    CHECK(strlen(err.msg) > 0);

    const char *no_slot[] = {"bad soldering"};
    insp_prompt_spec spec = {.object = "board", .anomaly_states = {no_slot, 1}};
    CHECK_EQ_INT(insp_prompts_build(&spec, &p, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "bad soldering") != NULL);

    insp_prompt_spec nothing_left = {.object = "board", .replace_normal_states = true};
    CHECK_EQ_INT(insp_prompts_build(&nothing_left, &p, &err), INSP_ERR_INVALID);
    CHECK(strlen(err.msg) > 0);
    CHECK(p.normal == NULL && p.n_normal == 0);
}

/* An in-memory prompt cache that counts what it is asked and given. */
#define MEM_CAP 512
typedef struct mem_cache {
    uint8_t key[MEM_CAP][32];
    float emb[MEM_CAP][256];
    int n, D, gets, hits, puts;
} mem_cache;

static bool mem_get(void *ctx, const uint8_t key[32], float *emb)
{
    mem_cache *m = ctx;
    m->gets++;
    for (int i = 0; i < m->n; i++)
        if (memcmp(m->key[i], key, 32) == 0) {
            memcpy(emb, m->emb[i], (size_t)m->D * sizeof *emb);
            m->hits++;
            return true;
        }
    return false;
}

static void mem_put(void *ctx, int n, const uint8_t (*keys)[32], const float *emb)
{
    mem_cache *m = ctx;
    for (int i = 0; i < n && m->n < MEM_CAP; i++, m->n++) {
        memcpy(m->key[m->n], keys[i], 32);
        memcpy(m->emb[m->n], emb + (long)i * m->D, (size_t)m->D * sizeof *emb);
        m->puts++;
    }
}

/* The one cache of the test binary, emptied, for embeddings of width D. */
static mem_cache *mem_cache_empty(int D)
{
    static mem_cache m;
    memset(&m, 0, sizeof m);
    m.D = D;
    return &m;
}

static void cache_gives_the_same_text(void)
{
    ctx c;
    REQUIRE(ctx_open(&c) == 0);
    mem_cache *m = mem_cache_empty(c.D);
    insp_prompt_cache pc = {m, mem_get, mem_put};
    insp_prompt_spec spec = {.object = "bottle"};
    insp_prompts p = {0};
    insp_error err = {0};
    REQUIRE(insp_prompts_build(&spec, &p, &err) == INSP_OK);
    const int n = p.n_normal + p.n_anomalous;
    float plain[512], first[512], again[512];
    int cached = -1;
    CHECK_OK(insp_winclip_text(c.wc, c.tok, c.ws, NULL, &p, plain, &err));
    // Cold: everything encoded (in the same batches as without a cache) and offered.
    CHECK_OK(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &pc, first, &cached, &err));
    CHECK_EQ_INT(cached, 0);
    CHECK_EQ_INT(m->puts, n);
    CHECK(memcmp(first, plain, 2 * (size_t)c.D * sizeof *plain) == 0);
    // Warm: every prompt from the cache, nothing offered; the same text embedding up to float
    // rounding (a prompt that occurs twice in the ensemble, encoded at two places of a batch,
    // now takes one of the two results for both).
    CHECK_OK(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &pc, again, &cached, &err));
    CHECK_EQ_INT(cached, n);
    CHECK_EQ_INT(m->puts, n);
    CHECK(rel_error(again, plain, 2L * c.D) < 1e-6);
    // Half of the cache gone: the rest is encoded as one smaller batch, to float rounding.
    m->n /= 2;
    int kept = m->n;
    CHECK_OK(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &pc, again, &cached, &err));
    CHECK_EQ_INT(cached, kept);
    CHECK_EQ_INT(m->puts, 2 * n - kept);
    CHECK(rel_error(again, plain, 2L * c.D) < 1e-6);
    insp_prompts_free(&p);
    ctx_close(&c);
}

static void cached_values_are_used(void)
{
    ctx c;
    REQUIRE(ctx_open(&c) == 0);
    mem_cache *m = mem_cache_empty(c.D);
    insp_prompt_cache pc = {m, mem_get, mem_put};
    char *normal[] = {"a photo of a flawless bottle.", "a photo of a perfect bottle."};
    char *anomalous[] = {"a photo of a damaged bottle."};
    insp_prompts p = {.normal = normal, .n_normal = 2, .anomalous = anomalous, .n_anomalous = 1};
    float base[512], moved[512];
    insp_error err = {0};
    int cached = -1;
    CHECK_OK(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &pc, base, &cached, &err));
    REQUIRE(m->n == 3);
    // Shift the cached embedding of the first normal prompt: only row 0 moves, by half of it.
    for (int d = 0; d < c.D; d++)
        m->emb[0][d] += 1.0f;
    CHECK_OK(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &pc, moved, &cached, &err));
    CHECK_EQ_INT(cached, 3);
    double worst = 0;
    for (int d = 0; d < c.D; d++) {
        worst = fmax(worst, fabs(moved[d] - base[d] - 0.5));
        worst = fmax(worst, fabs(moved[c.D + d] - base[c.D + d]));
    }
    CHECK_MSG(worst < 1e-6, "moved by %.3g off", worst);
    // The key is the tokens, not the spelling: case and spacing the tokenizer folds away hit.
    char *respelled[] = {"A photo of a   FLAWLESS bottle.", "a photo of a perfect bottle."};
    p.normal = respelled;
    CHECK_OK(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &pc, moved, &cached, &err));
    CHECK_EQ_INT(cached, 3);
    // Another object is another prompt.
    char *other[] = {"a photo of a damaged screw."};
    p.anomalous = other;
    CHECK_OK(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &pc, moved, &cached, &err));
    CHECK_EQ_INT(cached, 2);
    CHECK_EQ_INT(m->n, 4);
    // A cache without both functions is an error, not a crash.
    insp_prompt_cache half = {&m, mem_get, NULL};
    CHECK_EQ_INT(insp_winclip_text_cached(c.wc, c.tok, c.ws, NULL, &p, &half, moved, NULL, &err),
                 INSP_ERR_INVALID);
    ctx_close(&c);
}

TEST_MAIN(T(sentences_extend_the_mean), T(extra_states_and_templates),
          T(malformed_sets_are_errors), T(cache_gives_the_same_text),
          T(cached_values_are_used))
