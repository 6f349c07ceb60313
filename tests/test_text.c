/* Golden tests of the CLIP text tower against open_clip's prompt embeddings in tests/fixtures,
 * plus the invariances its shortcuts rely on (length trimming, chunking, threads). */
#include <jansson.h>

#include "clip/workspace.h"
#include "golden.h"
#include "harness.h"
#include "inspectd/clip.h"
#include "inspectd/pool.h"
#include "inspectd/safetensors.h"

#define GOLDEN_TOL 1e-4
#define SAME_TOL 1e-6

/* A tensor of the given dtype with `cols` columns (rows returned in *rows), or NULL. */
static const void *expect_2d(const golden_set *f, const char *name, insp_dtype dtype, int cols,
                             int *rows)
{
    const insp_st_tensor *t = insp_st_find(f->expected, name);
    CHECK_MSG(t != NULL, "expected tensor %s missing", name);
    if (!t)
        return NULL;
    int ok = t->dtype == dtype && t->ndim == 2 && t->shape[1] == cols;
    CHECK_MSG(ok, "%s: dtype %s, ndim %d", name, insp_dtype_name(t->dtype), t->ndim);
    if (!ok)
        return NULL;
    *rows = (int)t->shape[0];
    return t->data;
}

static void golden(const char *name)
{
    golden_set f;
    REQUIRE(golden_set_open(name, 1, &f) == INSP_OK);
    const int D = f.cfg->embed_dim, ctx = f.cfg->text.context_length;
    insp_clip_ws *ws = NULL;
    insp_pool *pool = NULL;
    CHECK_OK(insp_clip_ws_create(f.clip, 0, &ws));
    CHECK_OK(insp_pool_create(2, &pool));
    double worst_prompt = 0, worst_mean = 0;
    int n_classes = 0, n_prompts = 0;
    json_t *classes = json_object_get(f.manifest, "classes");
    size_t ci;
    json_t *cls;
    json_array_foreach (classes, ci, cls) {
        const char *key = json_string_value(json_object_get(cls, "key"));
        CHECK(key != NULL);
        if (!key || !ws || !pool)
            continue;
        char tname[160];
        snprintf(tname, sizeof tname, "text_embeddings.%s", key);
        int two = 0;
        const float *means = expect_2d(&f, tname, INSP_DTYPE_F32, D, &two);
        CHECK_EQ_INT(two, 2);
        const char *sides[2] = {"normal", "anomalous"};
        for (int side = 0; side < 2; side++) {
            int n = 0, n_want = 0;
            snprintf(tname, sizeof tname, "tokens.%s.%s", key, sides[side]);
            const int32_t *ids = expect_2d(&f, tname, INSP_DTYPE_I32, ctx, &n);
            snprintf(tname, sizeof tname, "prompt_embeddings.%s.%s", key, sides[side]);
            const float *want = expect_2d(&f, tname, INSP_DTYPE_F32, D, &n_want);
            if (!ids || !want || n != n_want || n < 1) {
                CHECK(!"tokens and embeddings disagree");
                continue;
            }
            float *out = malloc((size_t)n * D * sizeof(float));
            REQUIRE(out);
            CHECK_OK(insp_clip_encode_text(f.clip, ws, pool, n, ids, out));
            double e = rel_error(out, want, (long)n * D);
            CHECK_MSG(e <= GOLDEN_TOL, "%s: rel error %.3g", tname, e);
            worst_prompt = fmax(worst_prompt, e);
            n_prompts += n;

            float mean[512];
            REQUIRE(D <= 512);
            for (int c = 0; c < D; c++) {
                double sum = 0;
                for (int i = 0; i < n; i++)
                    sum += out[(long)i * D + c];
                mean[c] = (float)(sum / n);
            }
            if (means && two == 2) {
                e = rel_error(mean, means + (long)side * D, D);
                CHECK_MSG(e <= GOLDEN_TOL, "text_embeddings.%s[%d]: rel error %.3g", key, side, e);
                worst_mean = fmax(worst_mean, e);
            }
            free(out);
        }
        n_classes++;
    }
    CHECK(n_classes >= 1);
    printf("# %s: %d classes, %d prompts, max rel error: prompt_embeddings %.2e, "
           "text_embeddings %.2e\n",
           name, n_classes, n_prompts, worst_prompt, worst_mean);
    insp_pool_free(pool);
    insp_clip_ws_free(ws);
    golden_set_close(&f);
}

static void golden_tiny(void) { golden("tiny"); }
static void golden_tiny_quickgelu(void) { golden("tiny-quickgelu"); }

/* Encodes the first class's normal prompts with the given workspace and pool into a new buffer. */
static float *encode_normal(const golden_set *f, insp_clip_ws *ws, insp_pool *pool, int *n_out)
{
    const char *key = json_string_value(
        json_object_get(json_array_get(json_object_get(f->manifest, "classes"), 0), "key"));
    char name[160];
    int n = 0;
    snprintf(name, sizeof name, "tokens.%s.normal", key ? key : "?");
    const int32_t *ids = expect_2d(f, name, INSP_DTYPE_I32, f->cfg->text.context_length, &n);
    if (!ids || n < 1)
        return NULL;
    float *out = malloc((size_t)n * f->cfg->embed_dim * sizeof(float));
    if (out && insp_clip_encode_text(f->clip, ws, pool, n, ids, out) != INSP_OK) {
        free(out);
        return NULL;
    }
    *n_out = n;
    return out;
}

/* Stopping after the batch's last EOT, chunking into small passes and using two threads all
 * give what a full-length, single-pass, single-thread run gives. */
static void shortcuts_invariant(void)
{
    golden_set f;
    REQUIRE(golden_set_open("tiny", 1, &f) == INSP_OK);
    insp_clip_ws *ws = NULL, *small = NULL;
    insp_pool *pool2 = NULL;
    int ok = insp_clip_ws_create(f.clip, 0, &ws) == INSP_OK &&
             insp_clip_ws_create(f.clip, 1, &small) == INSP_OK &&
             insp_pool_create(2, &pool2) == INSP_OK;
    REQUIRE(ok);
    int n = 0, n_full = 0, n_small = 0, n_two = 0;
    ws->text_full_length = true;
    float *full = encode_normal(&f, ws, NULL, &n_full);
    ws->text_full_length = false;
    float *trimmed = encode_normal(&f, ws, NULL, &n);
    float *chunked = encode_normal(&f, small, NULL, &n_small);
    float *two = encode_normal(&f, ws, pool2, &n_two);
    CHECK(full && trimmed && chunked && two);
    if (full && trimmed && chunked && two) {
        CHECK(n == n_full && n == n_small && n == n_two);
        const long len = (long)n * f.cfg->embed_dim;
        double e_trim = rel_error(trimmed, full, len), e_chunk = rel_error(chunked, full, len);
        double e_two = rel_error(two, trimmed, len);
        CHECK_MSG(e_trim <= SAME_TOL, "trimmed vs full length: %.3g", e_trim);
        CHECK_MSG(e_chunk <= SAME_TOL, "chunked vs one pass: %.3g", e_chunk);
        CHECK_MSG(e_two <= SAME_TOL, "2 threads vs 1: %.3g", e_two);
        // The small workspace really did cut the batch into several passes.
        CHECK(small->cap < n * 2);
        printf("# trimmed vs 77 tokens %.2e, chunked %.2e, 2 threads vs 1 %.2e\n", e_trim, e_chunk,
               e_two);
    }
    free(full);
    free(trimmed);
    free(chunked);
    free(two);
    insp_pool_free(pool2);
    insp_clip_ws_free(small);
    insp_clip_ws_free(ws);
    golden_set_close(&f);
}

/* An EOT at the last position (a prompt cut to the full context) and one at position 1. */
static void eot_at_the_edges(void)
{
    golden_set f;
    REQUIRE(golden_set_open("tiny", 1, &f) == INSP_OK);
    const int ctx = f.cfg->text.context_length, D = f.cfg->embed_dim;
    insp_clip_ws *ws = NULL;
    REQUIRE(insp_clip_ws_create(f.clip, 0, &ws) == INSP_OK);
    int32_t *ids = calloc(2L * ctx, sizeof *ids);
    float *a = malloc(2L * D * sizeof(float)), *b = malloc(2L * D * sizeof(float));
    REQUIRE(ids && a && b);
    ids[0] = 49406;
    ids[1] = 49407;
    ids[ctx] = 49406;
    for (int t = 1; t < ctx - 1; t++)
        ids[ctx + t] = 320 + t;
    ids[2L * ctx - 1] = 49407;
    CHECK_OK(insp_clip_encode_text(f.clip, ws, NULL, 2, ids, a));
    ws->text_full_length = true;
    CHECK_OK(insp_clip_encode_text(f.clip, ws, NULL, 2, ids, b));
    CHECK(rel_error(a, b, 2L * D) <= SAME_TOL);
    // Each row alone equals the row in the batch (the short one is not padded differently).
    ws->text_full_length = false;
    CHECK_OK(insp_clip_encode_text(f.clip, ws, NULL, 1, ids, b));
    CHECK(rel_error(b, a, D) <= SAME_TOL);
    CHECK_OK(insp_clip_encode_text(f.clip, ws, NULL, 1, ids + ctx, b + D));
    CHECK(rel_error(b + D, a + D, D) <= SAME_TOL);
    // The two embeddings differ: the EOT row was really taken per sequence.
    CHECK(rel_error(a, a + D, D) > 1e-3);
    free(ids);
    free(a);
    free(b);
    insp_clip_ws_free(ws);
    golden_set_close(&f);
}

static void bad_arguments(void)
{
    golden_set f;
    REQUIRE(golden_set_open("tiny", 1, &f) == INSP_OK);
    insp_clip_ws *ws = NULL;
    REQUIRE(insp_clip_ws_create(f.clip, 0, &ws) == INSP_OK);
    const int ctx = f.cfg->text.context_length;
    int32_t *ids = calloc(ctx, sizeof *ids);
    float out[512];
    REQUIRE(ids && f.cfg->embed_dim <= 512);
    ids[0] = 49406;
    ids[1] = 49407;
    CHECK_OK(insp_clip_encode_text(f.clip, ws, NULL, 1, ids, out));
    CHECK_OK(insp_clip_encode_text(f.clip, ws, NULL, 0, NULL, NULL));
    CHECK_EQ_INT(insp_clip_encode_text(f.clip, ws, NULL, -1, ids, out), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_text(f.clip, ws, NULL, 1, NULL, out), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_text(f.clip, ws, NULL, 1, ids, NULL), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_text(NULL, ws, NULL, 1, ids, out), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_text(f.clip, NULL, NULL, 1, ids, out), INSP_ERR_INVALID);
    ids[5] = 49408; // one past the vocabulary
    CHECK_EQ_INT(insp_clip_encode_text(f.clip, ws, NULL, 1, ids, out), INSP_ERR_INVALID);
    ids[5] = -3;
    CHECK_EQ_INT(insp_clip_encode_text(f.clip, ws, NULL, 1, ids, out), INSP_ERR_INVALID);
    free(ids);
    insp_clip_ws_free(ws);
    golden_set_close(&f);
}

TEST_MAIN(T(golden_tiny), T(golden_tiny_quickgelu), T(shortcuts_invariant), T(eot_at_the_edges),
          T(bad_arguments))
