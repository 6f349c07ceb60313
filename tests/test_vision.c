/* Golden tests of the CLIP vision tower (full image, F0, batched windows) against open_clip's
 * outputs in tests/fixtures, plus batching, chunking and threading invariances. */
#include <jansson.h>
#include <stdbool.h>

#include "clip/workspace.h"
#include "golden.h"
#include "harness.h"
#include "inspectd/clip.h"
#include "inspectd/pool.h"
#include "inspectd/safetensors.h"

#define GOLDEN_TOL 1e-4
#define SAME_TOL 1e-6

/* Window patch lists [n_win, k·k] from masks.s<k> ([k·k, n_win], one window per column). */
static int32_t *window_patches(const golden_set *f, int k, int *n_win)
{
    char name[32];
    snprintf(name, sizeof name, "masks.s%d", k);
    const insp_st_tensor *t = insp_st_find(f->expected, name);
    CHECK_MSG(t && t->dtype == INSP_DTYPE_I32 && t->ndim == 2 && t->shape[0] == k * k,
              "%s missing or not I32 [k*k, n]", name);
    if (!t || t->dtype != INSP_DTYPE_I32 || t->ndim != 2 || t->shape[0] != k * k)
        return NULL;
    int n = (int)t->shape[1];
    int32_t *out = malloc((size_t)n * k * k * sizeof *out);
    if (!out)
        return NULL;
    const int32_t *m = t->data;
    for (int j = 0; j < k * k; j++)
        for (int w = 0; w < n; w++)
            out[(long)w * k * k + j] = m[(long)j * n + w];
    *n_win = n;
    return out;
}

/* Both window scales of one fixture with their output buffers. */
typedef struct windows {
    int32_t *patches[2];
    float *out[2];
    insp_window_set sets[2];
} windows;

static int windows_init(const golden_set *f, windows *w)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < 2; i++) {
        int k = 2 + i, n = 0;
        w->patches[i] = window_patches(f, k, &n);
        w->out[i] = calloc((size_t)(n > 0 ? n : 1) * f->cfg->embed_dim, sizeof(float));
        if (!w->patches[i] || !w->out[i])
            return -1;
        w->sets[i] = (insp_window_set){.k = k, .n = n, .patches = w->patches[i], .out = w->out[i]};
    }
    return 0;
}

static void windows_free(windows *w)
{
    for (int i = 0; i < 2; i++) {
        free(w->patches[i]);
        free(w->out[i]);
    }
}

/* Names of the manifest's images (n_images of them, all with golden outputs) followed by its
 * references (only their inputs are in the fixture). */
static int image_names(const golden_set *f, const char **names, int max, int *n_images)
{
    int n = 0;
    const char *lists[] = {"images", "references"};
    for (int l = 0; l < 2; l++) {
        json_t *arr = json_object_get(f->manifest, lists[l]);
        size_t i;
        json_t *v;
        json_array_foreach (arr, i, v) {
            if (json_is_string(v) && n < max)
                names[n++] = json_string_value(v);
        }
        if (l == 0)
            *n_images = n;
    }
    return n;
}

/* Golden tensor `name` when the image has golden outputs (required then), else NULL. */
static const float *golden_f32(const golden_set *f, bool required, const char *name, long numel)
{
    return required ? golden_set_f32(f, name, numel) : NULL;
}

static bool all_finite(const float *x, long n)
{
    for (long i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

static void golden(const char *name)
{
    golden_set f;
    REQUIRE(golden_set_open(name, 1, &f) == INSP_OK);
    insp_clip_ws *ws = NULL;
    insp_pool *pool = NULL;
    windows win;
    const insp_clip_config *cfg = f.cfg;
    const int G = cfg->vision.grid, W = cfg->vision.width, D = cfg->embed_dim,
              S = cfg->vision.image_size;
    float *embed = malloc(D * sizeof(float)), *patches = malloc((long)G * G * W * sizeof(float));
    float *f0 = malloc((1L + G * G) * W * sizeof(float));
    CHECK_OK(insp_clip_ws_create(f.clip, 0, &ws));
    CHECK_OK(insp_pool_create(2, &pool));
    int win_ok = windows_init(&f, &win) == 0;
    CHECK(win_ok);

    const char *names[64];
    int n_golden = 0, n_img = image_names(&f, names, 64, &n_golden);
    CHECK_MSG(n_golden >= 4 && n_img > n_golden, "%d images, %d references in the manifest",
              n_golden, n_img - n_golden);
    double worst_embed = 0, worst_patch = 0, worst_win[2] = {0, 0};
    int compared = 0;
    for (int i = 0; ws && pool && win_ok && embed && patches && f0 && i < n_img; i++) {
        char key[160];
        snprintf(key, sizeof key, "input.%s", names[i]);
        const float *input = golden_set_f32(&f, key, 3L * S * S);
        if (!input)
            continue;
        const bool has_golden = i < n_golden;
        CHECK_OK(insp_clip_encode_image(f.clip, ws, pool, input, embed, patches, f0));
        CHECK(all_finite(embed, D) && all_finite(patches, (long)G * G * W));
        snprintf(key, sizeof key, "image_embedding.%s", names[i]);
        const float *want = golden_f32(&f, has_golden, key, D);
        if (want) {
            double e = rel_error(embed, want, D);
            CHECK_MSG(e <= GOLDEN_TOL, "%s: rel error %.3g", key, e);
            worst_embed = fmax(worst_embed, e);
        }
        snprintf(key, sizeof key, "patch_tokens.%s", names[i]);
        want = golden_f32(&f, has_golden, key, (long)G * G * W);
        if (want) {
            double e = rel_error(patches, want, (long)G * G * W);
            CHECK_MSG(e <= GOLDEN_TOL, "%s: rel error %.3g", key, e);
            worst_patch = fmax(worst_patch, e);
        }
        CHECK_OK(insp_clip_encode_windows(f.clip, ws, pool, f0, 2, win.sets));
        for (int s = 0; s < 2; s++) {
            snprintf(key, sizeof key, "window_embeddings.s%d.%s", win.sets[s].k, names[i]);
            CHECK(all_finite(win.out[s], (long)win.sets[s].n * D));
            want = golden_f32(&f, has_golden, key, (long)win.sets[s].n * D);
            if (want) {
                double e = rel_error(win.out[s], want, (long)win.sets[s].n * D);
                CHECK_MSG(e <= GOLDEN_TOL, "%s: rel error %.3g", key, e);
                worst_win[s] = fmax(worst_win[s], e);
            }
        }
        compared++;
    }
    CHECK_EQ_INT(compared, n_img);
    printf("# %s: %d images (%d golden, %d references run only), max rel error: "
           "image_embedding %.2e, patch_tokens %.2e, windows s2 %.2e, s3 %.2e\n",
           name, compared, n_golden, n_img - n_golden, worst_embed, worst_patch, worst_win[0],
           worst_win[1]);
    free(embed);
    free(patches);
    free(f0);
    windows_free(&win);
    insp_pool_free(pool);
    insp_clip_ws_free(ws);
    golden_set_close(&f);
}

static void golden_tiny(void) { golden("tiny"); }
static void golden_tiny_quickgelu(void) { golden("tiny-quickgelu"); }

/* F0 of the fixture's first image, computed with a default workspace and no pool. */
static float *first_f0(const golden_set *f)
{
    const int S = f->cfg->vision.image_size, G = f->cfg->vision.grid;
    const float *input = golden_set_f32(f, "input.00_normal", 3L * S * S);
    float *f0 = malloc((1L + G * G) * f->cfg->vision.width * sizeof(float));
    insp_clip_ws *ws = NULL;
    if (!input || !f0 || insp_clip_ws_create(f->clip, 0, &ws) != INSP_OK ||
        insp_clip_encode_image(f->clip, ws, NULL, input, NULL, NULL, f0) != INSP_OK) {
        free(f0);
        f0 = NULL;
    }
    insp_clip_ws_free(ws);
    return f0;
}

/* Same windows whether both scales go in one call, one call per scale, in passes cut short by
 * a tiny workspace (chunks splitting a set), or as more sets than one pass takes groups. */
static void windows_batching_invariant(void)
{
    golden_set f;
    REQUIRE(golden_set_open("tiny", 1, &f) == INSP_OK);
    float *f0 = first_f0(&f);
    windows ref, alt;
    insp_clip_ws *ws = NULL, *small = NULL;
    const int D = f.cfg->embed_dim;
    int ok = f0 && windows_init(&f, &ref) == 0 && windows_init(&f, &alt) == 0 &&
             insp_clip_ws_create(f.clip, 0, &ws) == INSP_OK &&
             insp_clip_ws_create(f.clip, 1, &small) == INSP_OK;
    CHECK(ok);
    if (ok) {
        CHECK_OK(insp_clip_encode_windows(f.clip, ws, NULL, f0, 2, ref.sets));
        const long n2 = (long)ref.sets[0].n * D, n3 = (long)ref.sets[1].n * D;

        // One call per set.
        CHECK_OK(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &alt.sets[0]));
        CHECK_OK(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &alt.sets[1]));
        double e_split =
            fmax(rel_error(alt.out[0], ref.out[0], n2), rel_error(alt.out[1], ref.out[1], n3));
        CHECK_MSG(e_split <= SAME_TOL, "set by set: %.3g", e_split);

        // A workspace of the minimum size: several passes, a set cut across two of them.
        CHECK(small->cap < ref.sets[0].n * 5 + ref.sets[1].n * 10);
        memset(alt.out[0], 0, n2 * sizeof(float));
        memset(alt.out[1], 0, n3 * sizeof(float));
        CHECK_OK(insp_clip_encode_windows(f.clip, small, NULL, f0, 2, alt.sets));
        double e_chunk =
            fmax(rel_error(alt.out[0], ref.out[0], n2), rel_error(alt.out[1], ref.out[1], n3));
        CHECK_MSG(e_chunk <= SAME_TOL, "chunked: %.3g", e_chunk);

        // Many small sets (more groups than one pass holds), alternating scales, each taking a
        // slice of a scale's windows.
        enum { N_SETS = 2 * INSP_WS_MAX_GROUPS + 3 };
        insp_window_set many[N_SETS];
        int next[2] = {0, 0}, n_many = 0;
        memset(alt.out[0], 0, n2 * sizeof(float));
        memset(alt.out[1], 0, n3 * sizeof(float));
        for (int i = 0; i < N_SETS; i++) {
            int s = i % 2, kk = alt.sets[s].k * alt.sets[s].k;
            int take = i == N_SETS - 1 || i == N_SETS - 2 ? alt.sets[s].n - next[s] : 1 + i % 3;
            if (take > alt.sets[s].n - next[s])
                take = alt.sets[s].n - next[s];
            many[n_many++] = (insp_window_set){.k = alt.sets[s].k,
                                               .n = take,
                                               .patches = alt.patches[s] + (long)next[s] * kk,
                                               .out = alt.out[s] + (long)next[s] * D};
            next[s] += take;
        }
        CHECK_EQ_INT(next[0], alt.sets[0].n);
        CHECK_EQ_INT(next[1], alt.sets[1].n);
        CHECK_OK(insp_clip_encode_windows(f.clip, small, NULL, f0, n_many, many));
        double e_many =
            fmax(rel_error(alt.out[0], ref.out[0], n2), rel_error(alt.out[1], ref.out[1], n3));
        CHECK_MSG(e_many <= SAME_TOL, "many sets: %.3g", e_many);
        printf("# windows: set by set %.2e, chunked %.2e, %d sets %.2e (rel. to one batch)\n",
               e_split, e_chunk, n_many, e_many);
        windows_free(&alt);
        windows_free(&ref);
    }
    insp_clip_ws_free(small);
    insp_clip_ws_free(ws);
    free(f0);
    golden_set_close(&f);
}

/* The class-token-only path (no patch tokens wanted) gives the same embedding and F0. */
static void image_without_patch_tokens(void)
{
    golden_set f;
    REQUIRE(golden_set_open("tiny", 1, &f) == INSP_OK);
    const int S = f.cfg->vision.image_size, G = f.cfg->vision.grid, W = f.cfg->vision.width;
    const float *input = golden_set_f32(&f, "input.02_scratch", 3L * S * S);
    const float *want = golden_set_f32(&f, "image_embedding.02_scratch", f.cfg->embed_dim);
    insp_clip_ws *ws = NULL;
    float a[64], b[64];
    float *f0a = malloc((1L + G * G) * W * sizeof(float)),
          *f0b = malloc((1L + G * G) * W * sizeof(float));
    float *patches = malloc((long)G * G * W * sizeof(float));
    REQUIRE(f.cfg->embed_dim <= 64);
    if (input && want && f0a && f0b && patches && insp_clip_ws_create(f.clip, 0, &ws) == INSP_OK) {
        CHECK_OK(insp_clip_encode_image(f.clip, ws, NULL, input, a, patches, f0a));
        CHECK_OK(insp_clip_encode_image(f.clip, ws, NULL, input, b, NULL, f0b));
        CHECK(rel_error(b, a, f.cfg->embed_dim) <= SAME_TOL);
        CHECK(rel_error(b, want, f.cfg->embed_dim) <= GOLDEN_TOL);
        CHECK(memcmp(f0a, f0b, (1L + G * G) * W * sizeof(float)) == 0);
        // Only F0: no output besides it is required.
        CHECK_OK(insp_clip_encode_image(f.clip, ws, NULL, input, NULL, NULL, f0b));
        CHECK(memcmp(f0a, f0b, (1L + G * G) * W * sizeof(float)) == 0);
    } else {
        CHECK(!"setup failed");
    }
    free(f0a);
    free(f0b);
    free(patches);
    insp_clip_ws_free(ws);
    golden_set_close(&f);
}

/* Pools of 1 and 2 threads agree to 1e-6 on every output. */
static void threads_agree(void)
{
    golden_set f;
    REQUIRE(golden_set_open("tiny", 1, &f) == INSP_OK);
    const int S = f.cfg->vision.image_size, G = f.cfg->vision.grid, W = f.cfg->vision.width;
    const int D = f.cfg->embed_dim;
    const long n_f0 = (1L + G * G) * W, n_patch = (long)G * G * W;
    const float *input = golden_set_f32(&f, "input.06_crack", 3L * S * S);
    insp_pool *pools[2] = {NULL, NULL};
    insp_clip_ws *ws = NULL;
    windows win[2];
    memset(win, 0, sizeof win); /* freed below even when a check above failed */
    float *emb[2], *patches[2], *f0[2];
    int ok = input && insp_pool_create(1, &pools[0]) == INSP_OK &&
             insp_pool_create(2, &pools[1]) == INSP_OK &&
             insp_clip_ws_create(f.clip, 0, &ws) == INSP_OK;
    for (int p = 0; p < 2; p++) {
        emb[p] = malloc(D * sizeof(float));
        patches[p] = malloc(n_patch * sizeof(float));
        f0[p] = malloc(n_f0 * sizeof(float));
        ok = ok && windows_init(&f, &win[p]) == 0 && emb[p] && patches[p] && f0[p];
    }
    CHECK(ok);
    if (ok) {
        for (int p = 0; p < 2; p++) {
            CHECK_OK(
                insp_clip_encode_image(f.clip, ws, pools[p], input, emb[p], patches[p], f0[p]));
            CHECK_OK(insp_clip_encode_windows(f.clip, ws, pools[p], f0[p], 2, win[p].sets));
        }
        double e[5] = {
            rel_error(emb[1], emb[0], D),
            rel_error(patches[1], patches[0], n_patch),
            rel_error(f0[1], f0[0], n_f0),
            rel_error(win[1].out[0], win[0].out[0], (long)win[0].sets[0].n * D),
            rel_error(win[1].out[1], win[0].out[1], (long)win[0].sets[1].n * D),
        };
        double worst = 0;
        for (int i = 0; i < 5; i++) {
            CHECK_MSG(e[i] <= SAME_TOL, "output %d: 1 vs 2 threads %.3g", i, e[i]);
            worst = fmax(worst, e[i]);
        }
        printf("# 1 vs 2 threads: max rel difference %.2e\n", worst);
    }
    for (int p = 0; p < 2; p++) {
        free(emb[p]);
        free(patches[p]);
        free(f0[p]);
        windows_free(&win[p]);
    }
    insp_clip_ws_free(ws);
    insp_pool_free(pools[0]);
    insp_pool_free(pools[1]);
    golden_set_close(&f);
}

/* Bad arguments are refused with INSP_ERR_INVALID before anything is read out of bounds. */
static void bad_arguments(void)
{
    golden_set f;
    REQUIRE(golden_set_open("tiny", 1, &f) == INSP_OK);
    insp_clip_ws *ws = NULL;
    CHECK_EQ_INT(insp_clip_ws_create(NULL, 0, &ws), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_ws_create(f.clip, -1, &ws), INSP_ERR_INVALID);
    CHECK(ws == NULL);
    CHECK_EQ_INT(insp_clip_ws_create(f.clip, 0, NULL), INSP_ERR_INVALID);
    insp_clip_ws_free(NULL);
    CHECK_EQ_INT(insp_clip_ws_bytes(NULL), 0);
    REQUIRE(insp_clip_ws_create(f.clip, 0, &ws) == INSP_OK);
    CHECK(insp_clip_ws_bytes(ws) > (size_t)ws->cap * f.cfg->vision.width * sizeof(float));

    const int G = f.cfg->vision.grid, W = f.cfg->vision.width;
    float *f0 = calloc((1L + G * G) * W, sizeof(float)), out[4 * 64];
    float img[3];
    int32_t patches[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    insp_window_set set = {.k = 2, .n = 1, .patches = patches, .out = out};
    REQUIRE(f0 && f.cfg->embed_dim <= 64);
    CHECK_EQ_INT(insp_clip_encode_image(NULL, ws, NULL, img, out, NULL, NULL), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_image(f.clip, NULL, NULL, img, out, NULL, NULL),
                 INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_image(f.clip, ws, NULL, NULL, out, NULL, NULL), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, NULL, 1, &set), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, NULL), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, -1, &set), INSP_ERR_INVALID);
    patches[3] = G * G; // one past the grid
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set), INSP_ERR_INVALID);
    patches[3] = -1;
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set), INSP_ERR_INVALID);
    patches[3] = 3;
    set.k = G + 1; // a window larger than the grid
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set), INSP_ERR_INVALID);
    set.k = 0;
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set), INSP_ERR_INVALID);
    set.k = 2;
    set.out = NULL;
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set), INSP_ERR_INVALID);
    set.out = out;
    set.n = -1;
    CHECK_EQ_INT(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set), INSP_ERR_INVALID);
    // Nothing to do is fine, and valid windows succeed on the same arguments.
    set.n = 0;
    CHECK_OK(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set));
    CHECK_OK(insp_clip_encode_windows(f.clip, ws, NULL, f0, 0, NULL));
    set.n = 1;
    CHECK_OK(insp_clip_encode_windows(f.clip, ws, NULL, f0, 1, &set));

    // A workspace sized for another grid is refused, not overrun.
    golden_set q;
    if (golden_set_open("tiny-quickgelu", 1, &q) == INSP_OK) {
        insp_clip_ws *qws = NULL;
        if (insp_clip_ws_create(q.clip, 0, &qws) == INSP_OK) {
            float *big = calloc(3L * 96 * 96, sizeof(float));
            CHECK_EQ_INT(insp_clip_encode_image(f.clip, qws, NULL, big, out, NULL, NULL),
                         INSP_ERR_INVALID);
            CHECK_EQ_INT(insp_clip_encode_windows(f.clip, qws, NULL, f0, 1, &set),
                         INSP_ERR_INVALID);
            free(big);
        }
        insp_clip_ws_free(qws);
        golden_set_close(&q);
    } else {
        CHECK(!"tiny-quickgelu fixture did not load");
    }
    free(f0);
    insp_clip_ws_free(ws);
    golden_set_close(&f);
}

TEST_MAIN(T(golden_tiny), T(golden_tiny_quickgelu), T(windows_batching_invariant),
          T(image_without_patch_tokens), T(threads_agree), T(bad_arguments))
