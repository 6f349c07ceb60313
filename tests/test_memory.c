/* The reference memory and few-shot association: growth without recomputation, clearing,
 * exact reservation and the bytes per shot, the association's fixed points, and the whole
 * WinCLIP+ score against a brute-force implementation written here from METHODS.md §3–4
 * (random features on the tiny model's geometry: G = 6, W = 64, D = 32, scales 2 and 3). */
#include "harness.h"
#include "inspectd/pool.h"
#include "inspectd/winclip.h"
#include "winclip/winclip_impl.h"

typedef struct env {
    insp_clip *clip;
    insp_winclip *wc;
    insp_score_ws *sws;
    int G, W, D, n_scales;
} env;

static int env_open(env *e)
{
    memset(e, 0, sizeof *e);
    insp_error err = {0};
    if (insp_clip_load(fixture_path("tiny"), &e->clip, &err) != INSP_OK ||
        insp_winclip_create(e->clip, NULL, 0, &e->wc, &err) != INSP_OK ||
        insp_score_ws_create(e->wc, &e->sws) != INSP_OK) {
        fprintf(stderr, "  setup: %s\n", err.msg);
        return -1;
    }
    const insp_clip_config *cfg = insp_clip_get_config(e->clip);
    e->G = cfg->vision.grid;
    e->W = cfg->vision.width;
    e->D = cfg->embed_dim;
    e->n_scales = insp_winclip_n_scales(e->wc);
    return 0;
}

static void env_close(env *e)
{
    insp_score_ws_free(e->sws);
    insp_winclip_free(e->wc);
    insp_clip_free(e->clip);
}

static float gauss(void)
{
    double u = (rand() + 1.0) / (RAND_MAX + 2.0), v = (rand() + 1.0) / (RAND_MAX + 2.0);
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static void fill(float *x, long n)
{
    for (long i = 0; i < n; i++)
        x[i] = gauss();
}

static void random_features(const env *e, insp_features *f)
{
    REQUIRE(insp_features_init(e->wc, f) == INSP_OK);
    fill(f->image_embed, e->D);
    fill(f->patch_tokens, (long)e->G * e->G * e->W);
    for (int s = 0; s < e->n_scales; s++)
        fill(f->windows[s], (long)insp_winclip_windows(e->wc, s)->n * e->D);
}

/* Every vector of f set to v (its first `len` entries) or to -v. */
static void constant_features(const env *e, insp_features *f, const float *v, float sign)
{
    REQUIRE(insp_features_init(e->wc, f) == INSP_OK);
    for (int d = 0; d < e->D; d++)
        f->image_embed[d] = sign * v[d];
    for (long i = 0; i < (long)e->G * e->G; i++)
        for (int d = 0; d < e->W; d++)
            f->patch_tokens[i * e->W + d] = sign * v[d];
    for (int s = 0; s < e->n_scales; s++)
        for (long i = 0; i < insp_winclip_windows(e->wc, s)->n; i++)
            for (int d = 0; d < e->D; d++)
                f->windows[s][i * e->D + d] = sign * v[d];
}

static double cosd(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static double text_score(const float *e, const float *t, int D)
{
    double c = cosd(e, t, D), a = cosd(e, t + D, D);
    double zc = exp(c / 0.07), za = exp(a / 0.07);
    return za / (zc + za);
}

/* Harmonic mean per patch of per-window values (top-left row-major window order), counting
 * covering windows by scanning all of them. */
static void harmonic(const double *val, int G, int k, double *out)
{
    int per = G - k + 1;
    for (int p = 0; p < G * G; p++) {
        double s = 0;
        int n = 0;
        for (int w = 0; w < per * per; w++) {
            int top = w / per, left = w % per;
            if (p / G >= top && p / G < top + k && p % G >= left && p % G < left + k) {
                s += 1.0 / val[w];
                n++;
            }
        }
        out[p] = n / s;
    }
}

/* METHODS.md §3–4 in double, straight from the definitions. map: [G·G]. */
static void reference_score(const env *e, const float *t, const insp_features *const *shots,
                            int n_shots, const insp_features *q, double *map, double *score)
{
    int G = e->G, G2 = G * G;
    double s_img = text_score(q->image_embed, t, e->D);
    double m0[64], v[64], agg[64], val[64];
    for (int p = 0; p < G2; p++) {
        m0[p] = 1.0 / s_img;
        v[p] = 0;
    }
    for (int p = 0; p < G2; p++) {
        double best = -2;
        for (int s = 0; s < n_shots; s++)
            for (int r = 0; r < G2; r++) {
                double c = cosd(q->patch_tokens + p * e->W, shots[s]->patch_tokens + r * e->W, e->W);
                best = c > best ? c : best;
            }
        v[p] += (1 - best) / 2;
    }
    for (int sc = 0; sc < e->n_scales; sc++) {
        const insp_windows *win = insp_winclip_windows(e->wc, sc);
        for (int w = 0; w < win->n; w++)
            val[w] = text_score(q->windows[sc] + w * e->D, t, e->D);
        harmonic(val, G, win->k, agg);
        for (int p = 0; p < G2; p++)
            m0[p] += 1.0 / agg[p];
        for (int w = 0; w < win->n; w++) {
            double best = -2;
            for (int s = 0; s < n_shots; s++)
                for (int r = 0; r < win->n; r++) {
                    double c = cosd(q->windows[sc] + w * e->D, shots[s]->windows[sc] + r * e->D,
                                    e->D);
                    best = c > best ? c : best;
                }
            val[w] = (1 - best) / 2;
        }
        harmonic(val, G, win->k, agg);
        for (int p = 0; p < G2; p++)
            v[p] += agg[p];
    }
    double vmax = -1;
    for (int p = 0; p < G2; p++) {
        m0[p] = (e->n_scales + 1) / m0[p];
        v[p] /= e->n_scales + 1;
        vmax = v[p] > vmax ? v[p] : vmax;
        map[p] = n_shots ? (m0[p] + v[p]) / 2 : m0[p];
    }
    *score = n_shots ? (s_img + vmax) / 2 : s_img;
}

static void add_keeps_earlier_rows(void)
{
    env e;
    REQUIRE(env_open(&e) == 0);
    srand(11);
    enum { N = 9 }; // crosses the capacity doublings (4 → 8 → 16)
    insp_features f[N];
    for (int i = 0; i < N; i++)
        random_features(&e, &f[i]);
    insp_memory *mem = NULL;
    REQUIRE(insp_memory_create(e.wc, &mem) == INSP_OK);
    CHECK_EQ_INT(insp_memory_count(mem), 0);
    CHECK_OK(insp_memory_add(mem, &f[0]));
    long rows = 0, G2 = (long)e.G * e.G;
    const float *p = insp_memory_patches(mem, &rows);
    CHECK_EQ_INT(rows, G2);
    long n1 = G2 * e.W;
    float *shot1 = malloc(sizeof(float) * n1);
    REQUIRE(shot1 && p);
    memcpy(shot1, p, sizeof(float) * n1);
    long wrows = 0;
    const float *w0 = insp_memory_windows(mem, 0, &wrows);
    CHECK_EQ_INT(wrows, 25);
    float win1[25 * 32];
    REQUIRE(w0 && e.D == 32);
    memcpy(win1, w0, sizeof win1);

    // Stored rows are the shot's rows scaled to unit norm.
    for (long r = 0; r < G2; r++) {
        double norm = 0;
        for (int d = 0; d < e.W; d++)
            norm += (double)f[0].patch_tokens[r * e.W + d] * f[0].patch_tokens[r * e.W + d];
        norm = sqrt(norm);
        for (int d = 0; d < e.W; d++)
            CHECK_NEAR(shot1[r * e.W + d], f[0].patch_tokens[r * e.W + d] / norm, 1e-6);
    }

    for (int i = 1; i < N; i++) {
        // Overwrite the source features of earlier shots: the memory holds copies.
        CHECK_OK(insp_memory_add(mem, &f[i]));
        fill(f[i - 1].patch_tokens, 5);
    }
    CHECK_EQ_INT(insp_memory_count(mem), N);
    p = insp_memory_patches(mem, &rows);
    CHECK_EQ_INT(rows, N * G2);
    CHECK(memcmp(p, shot1, sizeof(float) * n1) == 0);
    CHECK(memcmp(insp_memory_windows(mem, 0, &wrows), win1, sizeof win1) == 0);
    CHECK_EQ_INT(wrows, N * 25);
    insp_memory_windows(mem, 1, &wrows);
    CHECK_EQ_INT(wrows, N * 16);
    CHECK(insp_memory_windows(mem, 2, &wrows) == NULL && wrows == 0);
    // The last shot's rows sit right after the others, normalized.
    const float *last = p + (N - 1) * n1;
    double norm = 0;
    for (int d = 0; d < e.W; d++)
        norm += (double)f[N - 1].patch_tokens[d] * f[N - 1].patch_tokens[d];
    CHECK_NEAR(last[0], f[N - 1].patch_tokens[0] / sqrt(norm), 1e-6);

    insp_memory_clear(mem);
    CHECK_EQ_INT(insp_memory_count(mem), 0);
    insp_memory_patches(mem, &rows);
    CHECK_EQ_INT(rows, 0);
    // Scoring against a cleared memory is zero-shot.
    float t[64];
    fill(t, 2 * e.D);
    insp_score sc;
    CHECK_OK(insp_winclip_score(e.wc, e.sws, NULL, t, mem, &f[N - 1], NULL, &sc));
    CHECK(!sc.few_shot);
    CHECK(sc.score == sc.zero_shot && sc.few_shot_max == 0.0f);
    CHECK_OK(insp_memory_add(mem, &f[N - 1]));
    CHECK_EQ_INT(insp_memory_count(mem), 1);

    // Features of another geometry are refused.
    insp_features bad = f[0];
    bad.width = e.W + 1;
    CHECK_EQ_INT(insp_memory_add(mem, &bad), INSP_ERR_INVALID);
    bad = f[0];
    bad.windows[1] = NULL;
    CHECK_EQ_INT(insp_memory_add(mem, &bad), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_memory_add(mem, NULL), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_memory_count(mem), 1);

    free(shot1);
    insp_memory_free(mem);
    insp_memory_free(NULL);
    for (int i = 0; i < N; i++)
        insp_features_free(&f[i]);
    env_close(&e);
}

/* One shot whose every vector is u; the query's every vector is v: A is the same everywhere,
 * so V = A and the final score is (s_img + A) / 2. */
static void check_constant_association(const env *e, const float *u, const float *v, float sign,
                                       double want)
{
    insp_features ref, q;
    constant_features(e, &ref, u, 1.0f);
    constant_features(e, &q, v, sign);
    insp_memory *mem = NULL;
    REQUIRE(insp_memory_create(e->wc, &mem) == INSP_OK);
    CHECK_OK(insp_memory_add(mem, &ref));
    float t[64], grid[36], grid0[36];
    fill(t, 2 * e->D);
    insp_score sc, sc0;
    CHECK_OK(insp_winclip_score(e->wc, e->sws, NULL, t, NULL, &q, grid0, &sc0));
    CHECK_OK(insp_winclip_score(e->wc, e->sws, NULL, t, mem, &q, grid, &sc));
    CHECK(sc.few_shot && !sc0.few_shot);
    CHECK_NEAR(sc.few_shot_max, want, 1e-6);
    CHECK_NEAR(sc.zero_shot, sc0.score, 1e-7);
    CHECK_NEAR(sc.score, (sc0.score + want) / 2, 1e-6);
    for (int p = 0; p < 36; p++)
        CHECK_NEAR(grid[p], (grid0[p] + want) / 2, 1e-6);
    insp_memory_free(mem);
    insp_features_free(&ref);
    insp_features_free(&q);
}

static void association_fixed_points(void)
{
    env e;
    REQUIRE(env_open(&e) == 0);
    srand(5);
    float u[64], v[64];
    fill(u, 64);
    check_constant_association(&e, u, u, 1.0f, 0.0);   // identical
    check_constant_association(&e, u, u, -1.0f, 1.0);  // opposite
    // Orthogonal in every width: u on the even coordinates, v on the odd ones.
    for (int i = 0; i < 64; i++) {
        v[i] = i % 2 ? u[i] : 0.0f;
        u[i] = i % 2 ? 0.0f : u[i];
    }
    check_constant_association(&e, u, v, 1.0f, 0.5);
    // Scale does not matter: 3u against u is identical.
    float u3[64];
    for (int i = 0; i < 64; i++)
        u3[i] = 3 * u[i];
    check_constant_association(&e, u, u3, 1.0f, 0.0);
    env_close(&e);
}

static void score_matches_brute_force(void)
{
    env e;
    REQUIRE(env_open(&e) == 0);
    srand(23);
    enum { SHOTS = 3 };
    insp_features shot[SHOTS], q;
    for (int i = 0; i < SHOTS; i++)
        random_features(&e, &shot[i]);
    random_features(&e, &q);
    // Make the query partly close to the shots so the minimum is not always far.
    for (int i = 0; i < 10 * e.W; i++)
        q.patch_tokens[i] = shot[1].patch_tokens[i + 7 * e.W] + 0.1f * gauss();
    float t[64];
    fill(t, 2 * e.D);

    insp_memory *mem = NULL;
    REQUIRE(insp_memory_create(e.wc, &mem) == INSP_OK);
    const insp_features *ptr[SHOTS];
    double want_map[36], want_score;
    float grid[36], grid_small[36];
    insp_score sc, sc_small;
    for (int k = 0; k <= SHOTS; k++) {
        reference_score(&e, t, ptr, k, &q, want_map, &want_score);
        CHECK_OK(insp_winclip_score(e.wc, e.sws, NULL, t, mem, &q, grid, &sc));
        CHECK_NEAR(sc.score, want_score, 2e-6);
        for (int p = 0; p < 36; p++)
            CHECK_NEAR(grid[p], want_map[p], 2e-6);
        // Chunks of 5 and 7 memory rows: not a divisor of 36, 25 or 16.
        for (int chunk = 5; chunk <= 7; chunk += 2) {
            insp_score_ws *small = NULL;
            REQUIRE(insp_score_ws_create(e.wc, &small) == INSP_OK);
            insp_score_ws_set_chunk(small, chunk);
            CHECK_OK(insp_winclip_score(e.wc, small, NULL, t, mem, &q, grid_small, &sc_small));
            CHECK_NEAR(sc_small.score, sc.score, 1e-7);
            for (int p = 0; p < 36; p++)
                CHECK_NEAR(grid_small[p], grid[p], 1e-7);
            insp_score_ws_free(small);
        }
        // Split across a pool of 3 threads: the same numbers.
        insp_pool *pool = NULL;
        REQUIRE(insp_pool_create(3, &pool) == INSP_OK);
        CHECK_OK(insp_winclip_score(e.wc, e.sws, pool, t, mem, &q, grid_small, &sc_small));
        CHECK_NEAR(sc_small.score, sc.score, 1e-7);
        for (int p = 0; p < 36; p++)
            CHECK_NEAR(grid_small[p], grid[p], 1e-7);
        insp_pool_free(pool);
        if (k < SHOTS) {
            CHECK_OK(insp_memory_add(mem, &shot[k]));
            ptr[k] = &shot[k];
        }
    }
    insp_memory_free(mem);
    for (int i = 0; i < SHOTS; i++)
        insp_features_free(&shot[i]);
    insp_features_free(&q);
    env_close(&e);
}

/* An exact reservation keeps the rows and holds no spare room; the shot size counts exactly the
 * rows one shot adds (D + G²·W + D·Σ windows floats). */
static void reserve_and_shot_bytes(void)
{
    env e;
    REQUIRE(env_open(&e) == 0);
    size_t floats = (size_t)e.D + (size_t)e.G * e.G * e.W;
    for (int s = 0; s < e.n_scales; s++)
        floats += (size_t)insp_winclip_windows(e.wc, s)->n * e.D;
    CHECK(insp_memory_shot_bytes(e.wc) == floats * sizeof(float));
    CHECK(insp_memory_shot_bytes(NULL) == 0);
    insp_memory *mem = NULL;
    REQUIRE(insp_memory_create(e.wc, &mem) == INSP_OK);
    insp_features f[3];
    for (int i = 0; i < 3; i++)
        random_features(&e, &f[i]);
    CHECK_OK(insp_memory_add(mem, &f[0]));
    long rows0 = 0;
    const float *before = insp_memory_patches(mem, &rows0);
    float first = before[0];
    // Room for 3 exactly, then both adds fit without another growth; the first row survives.
    CHECK_OK(insp_memory_reserve(mem, 3));
    CHECK_OK(insp_memory_reserve(mem, 2)); /* already there: a no-op */
    CHECK_OK(insp_memory_add(mem, &f[1]));
    CHECK_OK(insp_memory_add(mem, &f[2]));
    long rows = 0;
    const float *after = insp_memory_patches(mem, &rows);
    CHECK_EQ_INT((int)rows, 3 * e.G * e.G);
    CHECK(after[0] == first);
    CHECK_EQ_INT(insp_memory_count(mem), 3);
    CHECK_EQ_INT(insp_memory_reserve(mem, -1), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_memory_reserve(NULL, 1), INSP_ERR_INVALID);
    for (int i = 0; i < 3; i++)
        insp_features_free(&f[i]);
    insp_memory_free(mem);
    env_close(&e);
}

TEST_MAIN(T(add_keeps_earlier_rows), T(association_fixed_points), T(score_matches_brute_force),
          T(reserve_and_shot_bytes))
