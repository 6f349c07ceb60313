/* Golden tests of WinCLIP (zero-shot) and WinCLIP+ (1/2/4-shot) against anomalib's
 * WinClipModel outputs in tests/fixtures: text embeddings, features, image scores and S×S
 * maps, from the fixtures' model inputs through the whole engine. */
#include <jansson.h>
#include <stdarg.h>

#include "golden.h"
#include "harness.h"
#include "inspectd/clip.h"
#include "inspectd/prompts.h"
#include "inspectd/safetensors.h"
#include "inspectd/tokenizer.h"
#include "inspectd/winclip.h"

#define REL_TOL 1e-4   /* embeddings: max |a-b| / max |b| */
#define ABS_TOL 1e-4   /* scores and maps */

/* Worst errors over everything checked, printed at the end of each case. */
typedef struct errors {
    double text, features, zs_score, zs_map, fs_score, fs_map;
} errors;

typedef struct fixture {
    const char *name;
    golden_set g;
    insp_tokenizer *tok;
    insp_clip_ws *ws;
    insp_winclip *wc;
    int S, G, D;
} fixture;

static void fixture_close(fixture *f)
{
    insp_winclip_free(f->wc);
    insp_clip_ws_free(f->ws);
    insp_tokenizer_free(f->tok);
    golden_set_close(&f->g);
    memset(f, 0, sizeof *f);
}

static int fixture_open(const char *name, fixture *f)
{
    char path[4096];
    insp_error err = {0};
    memset(f, 0, sizeof *f);
    f->name = name;
    int st = golden_set_open(name, 1, &f->g);
    if (st != INSP_OK)
        return st;
    st = insp_tokenizer_find(NULL, path, sizeof path, &err);
    if (st == INSP_OK)
        st = insp_tokenizer_load(path, &f->tok, &err);
    if (st == INSP_OK)
        st = insp_clip_ws_create(f->g.clip, 0, &f->ws);
    if (st == INSP_OK) {
        json_t *sc = json_object_get(f->g.manifest, "scales");
        int scales[INSP_MAX_SCALES], n = (int)json_array_size(sc);
        for (int i = 0; i < n && i < INSP_MAX_SCALES; i++)
            scales[i] = (int)json_integer_value(json_array_get(sc, i));
        st = insp_winclip_create(f->g.clip, scales, n, &f->wc, &err);
    }
    if (st != INSP_OK) {
        fprintf(stderr, "  fixture %s: %s\n", name, err.msg);
        fixture_close(f);
        return st;
    }
    const insp_clip_config *cfg = f->g.cfg;
    f->S = cfg->vision.image_size;
    f->G = cfg->vision.grid;
    f->D = cfg->embed_dim;
    return INSP_OK;
}

/* The F32 tensor named by fmt with numel values, or NULL after a failed check. */
static const float *expect(const fixture *f, long numel, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const float *expect(const fixture *f, long numel, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return golden_set_f32(&f->g, name, numel);
}

static void note(double *worst, double e)
{
    if (e > *worst || isnan(e))
        *worst = isnan(e) ? INFINITY : e;
}

/* Runs the towers on input.<img> and checks what the fixture has of its features. */
static int image_features(const fixture *f, const char *img, insp_features *out, errors *e)
{
    long n_in = 3L * f->S * f->S;
    const float *input = expect(f, n_in, "input.%s", img);
    if (!input)
        return -1;
    int st = insp_features_init(f->wc, out);
    CHECK_OK(st);
    if (st != INSP_OK)
        return st;
    st = insp_winclip_features(f->wc, f->ws, NULL, input, out);
    CHECK_OK(st);
    if (st != INSP_OK)
        return st;
    // References have no expected features; the images do.
    if (strncmp(img, "ref_", 4) == 0)
        return INSP_OK;
    const float *emb = expect(f, f->D, "image_embedding.%s", img);
    const float *pt = expect(f, (long)f->G * f->G * out->width, "patch_tokens.%s", img);
    if (emb)
        note(&e->features, rel_error(out->image_embed, emb, f->D));
    if (pt)
        note(&e->features, rel_error(out->patch_tokens, pt, (long)f->G * f->G * out->width));
    for (int s = 0; s < out->n_scales; s++) {
        const insp_windows *w = insp_winclip_windows(f->wc, s);
        const float *we = expect(f, (long)w->n * f->D, "window_embeddings.s%d.%s", w->k, img);
        if (we)
            note(&e->features, rel_error(out->windows[s], we, (long)w->n * f->D));
    }
    return INSP_OK;
}

/* Scores one image's features and checks the score and the S×S map against the fixture. */
static void check_score(const fixture *f, insp_score_ws *sws, const float *t,
                        const insp_memory *mem, const insp_features *feat, const char *prefix,
                        const char *img, double *score_err, double *map_err)
{
    long SS = (long)f->S * f->S;
    float *grid = malloc(sizeof(float) * f->G * f->G), *map = malloc(sizeof(float) * SS);
    insp_score sc;
    if (!grid || !map) {
        CHECK(!"out of memory");
        goto done;
    }
    CHECK_OK(insp_winclip_score(f->wc, sws, NULL, t, mem, feat, grid, &sc));
    CHECK(sc.few_shot == (mem != NULL && insp_memory_count(mem) > 0));
    const float *want_score = expect(f, 1, "%s.image_score.%s", prefix, img);
    const float *want_map = expect(f, SS, "%s.map.%s", prefix, img);
    if (want_score) {
        double d = fabs((double)sc.score - want_score[0]);
        CHECK_MSG(d <= ABS_TOL, "%s %s score %.7f, expected %.7f", prefix, img, sc.score,
                  want_score[0]);
        note(score_err, d);
    }
    if (want_map) {
        insp_map_resize_bilinear(grid, f->G, f->G, map, f->S, f->S);
        double d = max_abs_error(map, want_map, SS);
        CHECK_MSG(d <= ABS_TOL, "%s %s map off by %.3g", prefix, img, d);
        note(map_err, d);
    }
done:
    free(grid);
    free(map);
}

static void run_fixture(const char *name)
{
    fixture f;
    REQUIRE(fixture_open(name, &f) == INSP_OK);
    errors e = {0};
    json_t *images = json_object_get(f.g.manifest, "images");
    json_t *refs = json_object_get(f.g.manifest, "references");
    json_t *classes = json_object_get(f.g.manifest, "classes");
    json_t *shots = json_object_get(f.g.manifest, "shots");
    int n_img = (int)json_array_size(images), n_ref = (int)json_array_size(refs);
    CHECK(n_img > 0 && n_ref > 0 && json_array_size(classes) > 0 && json_array_size(shots) > 0);

    insp_features *feat = calloc((size_t)n_img, sizeof *feat);
    insp_features *ref = calloc((size_t)n_ref, sizeof *ref);
    insp_score_ws *sws = NULL;
    insp_memory *mem = NULL;
    float *t = malloc(2 * sizeof(float) * f.D);
    if (!feat || !ref || !t || insp_score_ws_create(f.wc, &sws) != INSP_OK ||
        insp_memory_create(f.wc, &mem) != INSP_OK) {
        CHECK(!"setup failed");
        goto done;
    }
    for (int i = 0; i < n_img; i++)
        if (image_features(&f, json_string_value(json_array_get(images, i)), &feat[i], &e))
            goto done;
    for (int i = 0; i < n_ref; i++)
        if (image_features(&f, json_string_value(json_array_get(refs, i)), &ref[i], &e))
            goto done;
    CHECK_MSG(e.features <= REL_TOL, "features off by %.3g", e.features);

    size_t ci;
    json_t *cls;
    json_array_foreach(classes, ci, cls) {
        const char *object = json_string_value(json_object_get(cls, "name"));
        const char *key = json_string_value(json_object_get(cls, "key"));
        REQUIRE(object && key);
        insp_prompt_spec spec = {.object = object};
        insp_prompts prompts = {0};
        insp_error err = {0};
        CHECK_OK(insp_prompts_build(&spec, &prompts, &err));
        int st = insp_winclip_text(f.wc, f.tok, f.ws, NULL, &prompts, t, &err);
        CHECK_MSG(st == INSP_OK, "text %s: %s", key, err.msg);
        insp_prompts_free(&prompts);
        const float *want_t = expect(&f, 2L * f.D, "text_embeddings.%s", key);
        if (st != INSP_OK || !want_t)
            continue;
        double te = rel_error(t, want_t, 2L * f.D);
        CHECK_MSG(te <= REL_TOL, "text_embeddings.%s off by %.3g", key, te);
        note(&e.text, te);

        char prefix[128];
        snprintf(prefix, sizeof prefix, "zero_shot.%s", key);
        for (int i = 0; i < n_img; i++) {
            const char *img = json_string_value(json_array_get(images, i));
            check_score(&f, sws, t, NULL, &feat[i], prefix, img, &e.zs_score, &e.zs_map);
            // An empty memory is the zero-shot case too.
            check_score(&f, sws, t, mem, &feat[i], prefix, img, &e.zs_score, &e.zs_map);
        }
        size_t si;
        json_t *kv;
        json_array_foreach(shots, si, kv) {
            int K = (int)json_integer_value(kv);
            REQUIRE(K >= 1 && K <= n_ref);
            insp_memory_clear(mem);
            for (int r = 0; r < K; r++)
                CHECK_OK(insp_memory_add(mem, &ref[r]));
            CHECK_EQ_INT(insp_memory_count(mem), K);
            snprintf(prefix, sizeof prefix, "few_shot.k%d.%s", K, key);
            for (int i = 0; i < n_img; i++)
                check_score(&f, sws, t, mem, &feat[i], prefix,
                            json_string_value(json_array_get(images, i)), &e.fs_score, &e.fs_map);
        }
        insp_memory_clear(mem);
    }
    printf("  %s max errors: text %.3g (rel), features %.3g (rel), zero-shot score %.3g, "
           "zero-shot map %.3g, few-shot score %.3g, few-shot map %.3g\n",
           name, e.text, e.features, e.zs_score, e.zs_map, e.fs_score, e.fs_map);
done:
    for (int i = 0; feat && i < n_img; i++)
        insp_features_free(&feat[i]);
    for (int i = 0; ref && i < n_ref; i++)
        insp_features_free(&ref[i]);
    free(feat);
    free(ref);
    free(t);
    insp_memory_free(mem);
    insp_score_ws_free(sws);
    fixture_close(&f);
}

static void golden_tiny(void)
{
    run_fixture("tiny");
}

static void golden_tiny_quickgelu(void)
{
    run_fixture("tiny-quickgelu");
}

static void create_rejects_bad_scales(void)
{
    insp_clip *clip = NULL;
    insp_error err = {0};
    REQUIRE(insp_clip_load(fixture_path("tiny"), &clip, &err) == INSP_OK);
    insp_winclip *wc = (insp_winclip *)1;
    const int too_big[] = {2, 7}, zero[] = {0}, five[] = {1, 2, 3, 4, 5};
    CHECK_EQ_INT(insp_winclip_create(clip, too_big, 2, &wc, &err), INSP_ERR_INVALID);
    CHECK(wc == NULL);
    CHECK(strstr(err.msg, "7") != NULL);
    CHECK_EQ_INT(insp_winclip_create(clip, zero, 1, &wc, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_winclip_create(clip, five, 5, &wc, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_winclip_create(NULL, NULL, 0, &wc, &err), INSP_ERR_INVALID);
    // Defaults: {2, 3}.
    CHECK_OK(insp_winclip_create(clip, NULL, 0, &wc, &err));
    REQUIRE(wc != NULL);
    CHECK_EQ_INT(insp_winclip_n_scales(wc), 2);
    CHECK_EQ_INT(insp_winclip_windows(wc, 0)->k, 2);
    CHECK_EQ_INT(insp_winclip_windows(wc, 1)->k, 3);
    CHECK_EQ_INT(insp_winclip_windows(wc, 1)->n, 16);
    CHECK(insp_winclip_windows(wc, 2) == NULL);
    CHECK(insp_winclip_clip(wc) == clip);
    // Features of another geometry are refused, not read out of bounds.
    insp_features fz;
    CHECK_OK(insp_features_init(wc, &fz));
    fz.grid = 5;
    insp_score_ws *sws = NULL;
    CHECK_OK(insp_score_ws_create(wc, &sws));
    float t[64] = {0}, grid[36];
    insp_score sc;
    CHECK_EQ_INT(insp_winclip_score(wc, sws, NULL, t, NULL, &fz, grid, &sc), INSP_ERR_INVALID);
    fz.grid = 6;
    insp_features_free(&fz);
    insp_features_free(&fz);
    insp_score_ws_free(sws);
    insp_winclip_free(wc);
    insp_winclip_free(NULL);
    insp_clip_free(clip);
}

static void text_rejects_empty_side(void)
{
    fixture f;
    REQUIRE(fixture_open("tiny", &f) == INSP_OK);
    char *normal[] = {"a photo of a bottle."};
    insp_prompts p = {.normal = normal, .n_normal = 1, .anomalous = NULL, .n_anomalous = 0};
    float t[64];
    insp_error err = {0};
    CHECK_EQ_INT(insp_winclip_text(f.wc, f.tok, f.ws, NULL, &p, t, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "anomalous") != NULL);
    // Invalid UTF-8 in a prompt is reported with the prompt's side.
    char *bad[] = {"damaged \xff bottle"};
    p.anomalous = bad;
    p.n_anomalous = 1;
    CHECK(insp_winclip_text(f.wc, f.tok, f.ws, NULL, &p, t, &err) < 0);
    CHECK(strstr(err.msg, "anomalous prompt") != NULL);
    fixture_close(&f);
}

TEST_MAIN(T(golden_tiny), T(golden_tiny_quickgelu), T(create_rejects_bad_scales),
          T(text_rejects_empty_side))
