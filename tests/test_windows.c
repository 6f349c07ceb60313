/* Window geometry against a brute-force enumeration and the fixtures' masks, and harmonic
 * aggregation against hand-computed values. */
#include "harness.h"
#include "inspectd/safetensors.h"
#include "inspectd/winclip.h"

static void geometry_all_sizes(void)
{
    for (int G = 1; G <= 8; G++)
        for (int k = 1; k <= G; k++) {
            insp_windows w;
            CHECK_OK(insp_windows_make(G, k, &w));
            REQUIRE(w.patches != NULL);
            CHECK_EQ_INT(w.grid, G);
            CHECK_EQ_INT(w.k, k);
            CHECK_EQ_INT(w.n, (G - k + 1) * (G - k + 1));
            // Window i has top-left (i / (G-k+1), i % (G-k+1)); its patches row-major.
            int per = G - k + 1, bad = 0;
            for (int i = 0; i < w.n; i++)
                for (int r = 0; r < k; r++)
                    for (int c = 0; c < k; c++) {
                        int want = (i / per + r) * G + (i % per + c);
                        bad += w.patches[i * k * k + r * k + c] != want;
                    }
            CHECK_MSG(bad == 0, "G=%d k=%d: %d patch indices out of order", G, k, bad);
            // Coverage: count windows containing each patch by brute force over the geometry.
            int count[64] = {0};
            for (int i = 0; i < w.n * k * k; i++) {
                REQUIRE(w.patches[i] >= 0 && w.patches[i] < G * G);
                count[w.patches[i]]++;
            }
            for (int p = 0; p < G * G; p++) {
                int brute = 0;
                for (int top = 0; top + k <= G; top++)
                    for (int left = 0; left + k <= G; left++)
                        brute += p / G >= top && p / G < top + k && p % G >= left &&
                                 p % G < left + k;
                CHECK_MSG(count[p] == brute && brute >= 1, "G=%d k=%d patch %d: %d vs %d", G,
                          k, p, count[p], brute);
            }
            // Every patch is covered by min(r+1, k, G-k+1, G-r) · (same for the column).
            for (int p = 0; p < G * G; p++) {
                int r = p / G, c = p % G;
                int a = r + 1, b = c + 1;
                int lim = k < G - k + 1 ? k : G - k + 1;
                a = a < lim ? a : lim;
                a = a < G - r ? a : G - r;
                b = b < lim ? b : lim;
                b = b < G - c ? b : G - c;
                CHECK_EQ_INT(count[p], a * b);
            }
            insp_windows_free(&w);
            CHECK(w.patches == NULL);
        }
}

static void geometry_rejects_bad_sizes(void)
{
    insp_windows w;
    CHECK_EQ_INT(insp_windows_make(4, 0, &w), INSP_ERR_INVALID);
    CHECK(w.patches == NULL);
    CHECK_EQ_INT(insp_windows_make(4, 5, &w), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_windows_make(0, 1, &w), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_windows_make(-3, -1, &w), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_windows_make(4, 2, NULL), INSP_ERR_INVALID);
    insp_windows_free(NULL);
}

/* masks.s<k> is [k·k, n]: column i lists window i's patches. */
static void check_masks(const char *fixture, int G)
{
    char path[512];
    snprintf(path, sizeof path, "%s/expected.safetensors", fixture);
    insp_safetensors *st = NULL;
    insp_error err;
    CHECK_OK(insp_st_open(fixture_path(path), &st, &err));
    REQUIRE(st != NULL);
    for (int k = 2; k <= 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "masks.s%d", k);
        const insp_st_tensor *t = insp_st_find(st, name);
        REQUIRE(t != NULL && t->dtype == INSP_DTYPE_I32 && t->ndim == 2);
        insp_windows w;
        CHECK_OK(insp_windows_make(G, k, &w));
        CHECK_EQ_INT(t->shape[0], k * k);
        CHECK_EQ_INT(t->shape[1], w.n);
        if (t->shape[0] == k * k && t->shape[1] == w.n) {
            const int32_t *m = t->data;
            int bad = 0;
            for (int i = 0; i < w.n; i++)
                for (int j = 0; j < k * k; j++)
                    bad += m[j * w.n + i] != w.patches[i * k * k + j];
            CHECK_MSG(bad == 0, "%s %s: %d entries differ", fixture, name, bad);
        }
        insp_windows_free(&w);
    }
    insp_st_close(st);
}

static void order_matches_fixture_masks(void)
{
    check_masks("tiny", 6);
    check_masks("tiny-quickgelu", 4);
}

static void harmonic_hand_computed(void)
{
    // G=3, k=2: windows w0 {0,1,3,4}, w1 {1,2,4,5}, w2 {3,4,6,7}, w3 {4,5,7,8}.
    insp_windows w;
    REQUIRE(insp_windows_make(3, 2, &w) == INSP_OK);
    const float val[4] = {0.5f, 0.25f, 0.2f, 0.1f}; // reciprocals 2, 4, 5, 10
    const double want[9] = {
        0.5,          2.0 / (2 + 4),  0.25,
        2.0 / (2 + 5), 4.0 / 21.0,    2.0 / (4 + 10),
        0.2,          2.0 / (5 + 10), 0.1,
    };
    float out[9];
    insp_harmonic_aggregate(&w, val, out);
    for (int p = 0; p < 9; p++)
        CHECK_NEAR(out[p], want[p], 1e-7);

    // A zero window value pulls every patch it covers to 0 and leaves the others alone.
    const float with_zero[4] = {0.5f, 0.0f, 0.2f, 0.1f};
    insp_harmonic_aggregate(&w, with_zero, out);
    const int covered_by_w1[4] = {1, 2, 4, 5};
    for (int i = 0; i < 4; i++)
        CHECK(out[covered_by_w1[i]] == 0.0f);
    CHECK_NEAR(out[0], 0.5, 1e-7);
    CHECK_NEAR(out[3], 2.0 / 7.0, 1e-7);
    CHECK_NEAR(out[7], 2.0 / 15.0, 1e-7);

    // A constant map aggregates to itself.
    const float constant[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    insp_harmonic_aggregate(&w, constant, out);
    for (int p = 0; p < 9; p++)
        CHECK_NEAR(out[p], 0.3, 1e-7);
    insp_windows_free(&w);

    // k = G: one window covering everything.
    REQUIRE(insp_windows_make(3, 3, &w) == INSP_OK);
    const float one = 0.7f;
    insp_harmonic_aggregate(&w, &one, out);
    for (int p = 0; p < 9; p++)
        CHECK_NEAR(out[p], 0.7, 1e-7);
    insp_windows_free(&w);
}

static void harmonic_matches_brute_force(void)
{
    srand(7);
    for (int G = 1; G <= 8; G++)
        for (int k = 1; k <= G; k++) {
            insp_windows w;
            REQUIRE(insp_windows_make(G, k, &w) == INSP_OK);
            float val[64], out[64];
            for (int i = 0; i < w.n; i++)
                val[i] = 0.05f + 0.9f * (float)rand() / (float)RAND_MAX;
            insp_harmonic_aggregate(&w, val, out);
            for (int p = 0; p < G * G; p++) {
                double s = 0;
                int n = 0;
                for (int top = 0; top + k <= G; top++)
                    for (int left = 0; left + k <= G; left++)
                        if (p / G >= top && p / G < top + k && p % G >= left &&
                            p % G < left + k) {
                            s += 1.0 / val[top * (G - k + 1) + left];
                            n++;
                        }
                CHECK_NEAR(out[p], n / s, 1e-6);
            }
            insp_windows_free(&w);
        }
}

TEST_MAIN(T(geometry_all_sizes), T(geometry_rejects_bad_sizes), T(order_matches_fixture_masks),
          T(harmonic_hand_computed), T(harmonic_matches_brute_force))
