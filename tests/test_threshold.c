/* Leave-one-out scores of the reference shots against memories built by hand, and the
 * suggested-threshold rule against values computed here from its definition. */
#include "harness.h"
#include "inspectd/winclip.h"

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

static void loo_matches_hand_built_memories(void)
{
    insp_clip *clip = NULL;
    insp_winclip *wc = NULL;
    insp_score_ws *sws = NULL;
    insp_error err = {0};
    REQUIRE(insp_clip_load(fixture_path("tiny"), &clip, &err) == INSP_OK);
    REQUIRE(insp_winclip_create(clip, NULL, 0, &wc, &err) == INSP_OK);
    REQUIRE(insp_score_ws_create(wc, &sws) == INSP_OK);
    srand(3);
    enum { K = 5 };
    insp_features f[K];
    for (int i = 0; i < K; i++) {
        REQUIRE(insp_features_init(wc, &f[i]) == INSP_OK);
        fill(f[i].image_embed, f[i].dim);
        fill(f[i].patch_tokens, (long)f[i].grid * f[i].grid * f[i].width);
        for (int s = 0; s < f[i].n_scales; s++)
            fill(f[i].windows[s], (long)insp_winclip_windows(wc, s)->n * f[i].dim);
        // Shots that resemble each other, as normal parts do: shared component plus noise.
        if (i > 0)
            for (long j = 0; j < (long)f[i].grid * f[i].grid * f[i].width; j++)
                f[i].patch_tokens[j] = f[0].patch_tokens[j] + 0.5f * f[i].patch_tokens[j];
    }
    float t[64];
    fill(t, 2 * f[0].dim);

    insp_memory *mem = NULL;
    REQUIRE(insp_memory_create(wc, &mem) == INSP_OK);
    float scores[K], suggested = -1;
    CHECK_EQ_INT(insp_memory_loo_scores(wc, sws, NULL, t, mem, scores, &suggested),
                 INSP_ERR_INVALID);
    CHECK_OK(insp_memory_add(mem, &f[0]));
    CHECK_EQ_INT(insp_memory_loo_scores(wc, sws, NULL, t, mem, scores, &suggested),
                 INSP_ERR_INVALID);
    for (int i = 1; i < K; i++)
        CHECK_OK(insp_memory_add(mem, &f[i]));
    CHECK_OK(insp_memory_loo_scores(wc, sws, NULL, t, mem, scores, &suggested));
    CHECK_EQ_INT(insp_memory_count(mem), K);

    for (int i = 0; i < K; i++) {
        insp_memory *others = NULL;
        REQUIRE(insp_memory_create(wc, &others) == INSP_OK);
        for (int j = 0; j < K; j++)
            if (j != i)
                CHECK_OK(insp_memory_add(others, &f[j]));
        insp_score sc;
        CHECK_OK(insp_winclip_score(wc, sws, NULL, t, others, &f[i], NULL, &sc));
        CHECK(sc.few_shot);
        CHECK_NEAR(scores[i], sc.score, 1e-6);
        // Not the score against a memory that includes the shot itself (V would be 0).
        insp_score self;
        CHECK_OK(insp_winclip_score(wc, sws, NULL, t, mem, &f[i], NULL, &self));
        CHECK_NEAR(self.few_shot_max, 0.0, 1e-6);
        CHECK(scores[i] > self.score + 1e-3);
        insp_memory_free(others);
    }
    CHECK(suggested == insp_threshold_suggest(scores, K));
    float max = scores[0];
    for (int i = 1; i < K; i++)
        max = scores[i] > max ? scores[i] : max;
    CHECK(suggested >= max + 0.01f - 1e-6f);
    // The suggestion is optional.
    CHECK_OK(insp_memory_loo_scores(wc, sws, NULL, t, mem, scores, NULL));

    insp_memory_free(mem);
    for (int i = 0; i < K; i++)
        insp_features_free(&f[i]);
    insp_score_ws_free(sws);
    insp_winclip_free(wc);
    insp_clip_free(clip);
}

/* min(1, max(mean + 3·sd, max + 0.01)) with the sample standard deviation. */
static double rule(const float *s, int n)
{
    double mean = 0, max = s[0], var = 0;
    for (int i = 0; i < n; i++) {
        mean += s[i] / (double)n;
        max = s[i] > max ? s[i] : max;
    }
    for (int i = 0; i < n; i++)
        var += (s[i] - mean) * (s[i] - mean) / (n > 1 ? n - 1 : 1);
    double th = mean + 3 * sqrt(var);
    th = th > max + 0.01 ? th : max + 0.01;
    return th < 1 ? th : 1;
}

static void threshold_rule(void)
{
    // Two scores 0.2, 0.4: mean 0.3, sd √0.02 = 0.1414, mean + 3sd = 0.72426.
    const float two[] = {0.2f, 0.4f};
    CHECK_NEAR(insp_threshold_suggest(two, 2), 0.3 + 3 * sqrt(0.02), 1e-6);
    // Identical scores: sd 0, the margin floor decides.
    const float same[] = {0.5f, 0.5f, 0.5f};
    CHECK_NEAR(insp_threshold_suggest(same, 3), 0.51, 1e-6);
    // Tight spread: mean + 3sd = 0.3 + 3·0.001 < max + 0.01.
    const float tight[] = {0.299f, 0.300f, 0.301f};
    CHECK_NEAR(insp_threshold_suggest(tight, 3), 0.311, 1e-6);
    // Capped at 1.
    const float high[] = {0.9f, 0.95f};
    CHECK_NEAR(insp_threshold_suggest(high, 2), 1.0, 1e-7);
    // One score: max + 0.01; none: NaN.
    const float one[] = {0.3f};
    CHECK_NEAR(insp_threshold_suggest(one, 1), 0.31, 1e-6);
    CHECK(isnan(insp_threshold_suggest(one, 0)));
    CHECK(isnan(insp_threshold_suggest(NULL, 3)));
    // Random sets of 2..16 scores against the definition.
    srand(9);
    for (int n = 2; n <= 16; n++) {
        float s[16];
        for (int i = 0; i < n; i++)
            s[i] = 0.2f + 0.3f * (float)rand() / (float)RAND_MAX;
        CHECK_NEAR(insp_threshold_suggest(s, n), rule(s, n), 1e-6);
    }
}

TEST_MAIN(T(loo_matches_hand_built_memories), T(threshold_rule))
