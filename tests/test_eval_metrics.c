/* inspect-eval's metrics against brute-force forms of their definitions (pair counting,
 * per-sample precision, per-threshold PRO), hand-worked cases and the degenerate inputs that
 * must be refused; region labelling and the shot draw. */
#include "harness.h"

#include <stdint.h>

#include "tools/eval.h"

static uint64_t rng_state = 12345;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* AUROC as the probability that a random anomalous sample outscores a random normal one,
 * ties counting one half: O(P·N). */
static double auroc_pairs(const float *s, const uint8_t *l, long n)
{
    double num = 0, pairs = 0;
    for (long i = 0; i < n; i++) {
        if (!l[i])
            continue;
        for (long j = 0; j < n; j++) {
            if (l[j])
                continue;
            num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
            pairs += 1;
        }
    }
    return num / pairs;
}

/* AP as the mean over anomalous samples of the precision at their own score. */
static double ap_per_sample(const float *s, const uint8_t *l, long n)
{
    double sum = 0;
    long P = 0;
    for (long i = 0; i < n; i++) {
        if (!l[i])
            continue;
        long above = 0, tp = 0;
        for (long j = 0; j < n; j++) {
            if (s[j] >= s[i]) {
                above++;
                tp += l[j];
            }
        }
        sum += (double)tp / above;
        P++;
    }
    return sum / P;
}

/* F1-max by trying every sample's score as the threshold. */
static double f1_brute(const float *s, const uint8_t *l, long n, float *thr)
{
    double best = -1;
    for (long t = 0; t < n; t++) {
        long tp = 0, fp = 0, fn = 0;
        for (long j = 0; j < n; j++) {
            bool pred = s[j] >= s[t];
            tp += pred && l[j];
            fp += pred && !l[j];
            fn += !pred && l[j];
        }
        double f1 = 2.0 * tp / (2.0 * tp + fp + fn);
        if (f1 > best || (f1 == best && s[t] > *thr)) {
            best = f1;
            *thr = s[t];
        }
    }
    return best;
}

static void check_against_brute(const float *s, const uint8_t *l, long n)
{
    eval_binary b;
    insp_error err = {0};
    REQUIRE(eval_binary_metrics(s, l, n, &b, NULL, NULL, &err) == INSP_OK);
    CHECK_NEAR(b.auroc, auroc_pairs(s, l, n), 1e-12);
    CHECK_NEAR(b.ap, ap_per_sample(s, l, n), 1e-12);
    float thr = -INFINITY;
    CHECK_NEAR(b.f1max, f1_brute(s, l, n, &thr), 1e-12);
    // Several thresholds can tie for F1-max; the reported one must reach it.
    long tp = 0, fp = 0, fn = 0;
    for (long j = 0; j < n; j++) {
        bool pred = s[j] >= b.f1_threshold;
        tp += pred && l[j];
        fp += pred && !l[j];
        fn += !pred && l[j];
    }
    CHECK_NEAR(2.0 * tp / (2.0 * tp + fp + fn), b.f1max, 1e-12);
}

static void binary_random_with_ties(void)
{
    enum { N = 300 };
    float s[N];
    uint8_t l[N];
    for (int trial = 0; trial < 20; trial++) {
        int levels = trial % 2 ? 7 : 100000; // many ties, or almost none
        for (int i = 0; i < N; i++) {
            l[i] = urand() < 0.3;
            s[i] = (float)((int)(urand() * levels + l[i] * levels * 0.3) % levels) / levels;
        }
        l[0] = 0;
        l[1] = 1;
        check_against_brute(s, l, N);
    }
}

static void binary_hand_worked(void)
{
    // Four samples: thresholds 0.8 (tp 1), 0.4 (tp 1, fp 1), 0.35 (tp 2, fp 1), 0.1 (all).
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const uint8_t l[] = {0, 0, 1, 1};
    eval_binary b;
    CHECK_OK(eval_binary_metrics(s, l, 4, &b, NULL, NULL, NULL));
    CHECK_NEAR(b.auroc, 0.75, 1e-15);
    CHECK_NEAR(b.ap, 0.5 * 1.0 + 0.5 * (2.0 / 3.0), 1e-15);
    CHECK_NEAR(b.f1max, 0.8, 1e-15); // P = 2/3, R = 1 at 0.35
    CHECK(b.f1_threshold == 0.35f);
    CHECK_EQ_INT(b.n, 4);
    CHECK_EQ_INT(b.n_pos, 2);
}

static void binary_all_equal_scores(void)
{
    const float s[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    const uint8_t l[] = {1, 0, 0, 1, 0};
    eval_binary b;
    CHECK_OK(eval_binary_metrics(s, l, 5, &b, NULL, NULL, NULL));
    CHECK_NEAR(b.auroc, 0.5, 1e-15);
    CHECK_NEAR(b.ap, 2.0 / 5.0, 1e-15);
    CHECK_NEAR(b.f1max, 2.0 * 2 / (2 + 5), 1e-15);
}

static void binary_perfect_and_inverted(void)
{
    const float s[] = {0.1f, 0.2f, 0.3f, 0.9f, 0.95f};
    uint8_t l[] = {0, 0, 0, 1, 1};
    eval_binary b;
    CHECK_OK(eval_binary_metrics(s, l, 5, &b, NULL, NULL, NULL));
    CHECK_NEAR(b.auroc, 1.0, 1e-15);
    CHECK_NEAR(b.ap, 1.0, 1e-15);
    CHECK_NEAR(b.f1max, 1.0, 1e-15);
    CHECK(b.f1_threshold == 0.9f);
    uint8_t inv[] = {1, 1, 0, 0, 0};
    CHECK_OK(eval_binary_metrics(s, inv, 5, &b, NULL, NULL, NULL));
    CHECK_NEAR(b.auroc, 0.0, 1e-15);
    CHECK_NEAR(b.ap, ap_per_sample(s, inv, 5), 1e-15);
}

static void binary_signed_zero_and_extremes(void)
{
    // -0 and +0 are the same score: one threshold, a tie.
    const float z[] = {-0.0f, 0.0f};
    const uint8_t lz[] = {0, 1};
    eval_binary b;
    CHECK_OK(eval_binary_metrics(z, lz, 2, &b, NULL, NULL, NULL));
    CHECK_NEAR(b.auroc, 0.5, 1e-15);
    const float s[] = {-INFINITY, -1e30f, -2.5f, -1e-30f, 0.0f, 1e-30f, 3.0f, 1e30f, INFINITY};
    const uint8_t l[] = {0, 1, 0, 1, 0, 0, 1, 0, 1};
    check_against_brute(s, l, 9);
}

static void binary_refuses_degenerate_input(void)
{
    const float s[] = {0.1f, 0.2f, 0.3f};
    const uint8_t normal[] = {0, 0, 0}, anomalous[] = {1, 1, 1}, two[] = {0, 2, 1};
    eval_binary b;
    insp_error err = {0};
    CHECK_EQ_INT(eval_binary_metrics(s, normal, 3, &b, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "one class") && strstr(err.msg, "normal"));
    CHECK_EQ_INT(eval_binary_metrics(s, anomalous, 3, &b, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "one class") && strstr(err.msg, "anomalous"));
    CHECK_EQ_INT(eval_binary_metrics(s, two, 3, &b, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "label 1 is 2"));
    CHECK_EQ_INT(eval_binary_metrics(s, normal, 0, &b, NULL, NULL, &err), INSP_ERR_INVALID);
    const float nan_s[] = {0.1f, NAN, 0.3f};
    const uint8_t l[] = {0, 1, 1};
    CHECK_EQ_INT(eval_binary_metrics(nan_s, l, 3, &b, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "NaN"));
    CHECK(!isnan(b.auroc)); // nothing half-filled on failure
}

/* Mid-rank Mann–Whitney AUROC with qsort: an independent check at a size the pair count
 * cannot afford, and through every radix pass. */
typedef struct sl {
    float s;
    uint8_t l;
} sl;
static int cmp_sl(const void *a, const void *b)
{
    float x = ((const sl *)a)->s, y = ((const sl *)b)->s;
    return (x > y) - (x < y);
}

static void binary_large_against_rank_sum(void)
{
    enum { N = 200000 };
    float *s = malloc(N * sizeof *s);
    uint8_t *l = malloc(N);
    sl *v = malloc(N * sizeof *v);
    REQUIRE(s && l && v);
    for (long i = 0; i < N; i++) {
        l[i] = urand() < 0.1;
        // Mixed signs and magnitudes, and ties from rounding to 1/4096.
        double x = (urand() - 0.4 + 0.2 * l[i]) * (i % 3 == 0 ? 1e6 : 1.0);
        s[i] = (float)(i % 2 ? x : floor(x * 4096) / 4096);
        v[i].s = s[i];
        v[i].l = l[i];
    }
    qsort(v, N, sizeof *v, cmp_sl);
    double rank_sum = 0;
    long P = 0;
    for (long i = 0; i < N;) {
        long j = i;
        while (j < N && v[j].s == v[i].s)
            j++;
        double mid = (i + 1 + j) / 2.0; // mean rank of the tied block (1-based)
        for (long k = i; k < j; k++)
            if (v[k].l) {
                rank_sum += mid;
                P++;
            }
        i = j;
    }
    double Nn = N - P;
    double ref = (rank_sum - P * (P + 1) / 2.0) / (P * Nn);
    eval_binary b;
    eval_curve roc = {0}, pr = {0};
    CHECK_OK(eval_binary_metrics(s, l, N, &b, &roc, &pr, NULL));
    CHECK_NEAR(b.auroc, ref, 1e-12);
    // Curves: from (0,0) to (1,1), monotone, thinned.
    REQUIRE(roc.n >= 2);
    CHECK(roc.x[0] == 0 && roc.y[0] == 0);
    CHECK(roc.x[roc.n - 1] == 1 && roc.y[roc.n - 1] == 1);
    bool mono = true;
    for (long i = 1; i < roc.n; i++)
        mono &= roc.x[i] >= roc.x[i - 1] && roc.y[i] >= roc.y[i - 1];
    CHECK(mono);
    CHECK_MSG(roc.n <= 2.0 / EVAL_CURVE_STEP + 2, "roc has %ld points", roc.n);
    CHECK(pr.n >= 1 && pr.x[pr.n - 1] == 1);
    eval_curve_free(&roc);
    eval_curve_free(&pr);
    eval_curve_free(&roc); // a freed curve frees again harmlessly
    free(s);
    free(l);
    free(v);
}

/* ---- regions ---------------------------------------------------------------------------- */

static void regions_are_8_connected(void)
{
    const uint8_t m[5 * 6] = {
        1, 0, 0, 0, 0, 1, //
        0, 1, 0, 0, 0, 1, // the diagonal joins (0,0) and (1,1)
        0, 0, 0, 1, 0, 0, //
        0, 0, 1, 0, 0, 0, // an anti-diagonal pair
        1, 0, 0, 0, 0, 7, // any non-zero value is a defect
    };
    int32_t r[30];
    int n;
    CHECK_OK(eval_label_regions(m, 6, 5, 10, r, &n));
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(r[0], 10);
    CHECK_EQ_INT(r[7], 10);
    CHECK_EQ_INT(r[5], 11);
    CHECK_EQ_INT(r[11], 11);
    CHECK_EQ_INT(r[15], 12);
    CHECK_EQ_INT(r[20], 12);
    CHECK_EQ_INT(r[24], 13);
    CHECK_EQ_INT(r[29], 14);
    long zeros = 0;
    for (int i = 0; i < 30; i++)
        zeros += r[i] == 0;
    CHECK_EQ_INT(zeros, 30 - 8);
    uint8_t empty[4] = {0};
    CHECK_OK(eval_label_regions(empty, 2, 2, 1, r, &n));
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(eval_label_regions(m, 6, 5, 0, r, &n), INSP_ERR_INVALID);
    CHECK_EQ_INT(eval_label_regions(m, 0, 5, 1, r, &n), INSP_ERR_INVALID);
}

static void mask_resize_nearest(void)
{
    const uint8_t src[4 * 4] = {
        1, 1, 0, 0, //
        1, 1, 0, 0, //
        0, 0, 0, 9, //
        0, 0, 0, 0,
    };
    uint8_t d[2 * 2];
    eval_mask_resize(src, 4, 4, d, 2, 2);
    // Pixel centres of the 2×2 land on source pixels (1,1), (3,1), (1,3), (3,3).
    CHECK(d[0] == 1 && d[1] == 0 && d[2] == 0 && d[3] == 0);
    uint8_t up[8 * 8];
    eval_mask_resize(src, 4, 4, up, 8, 8);
    CHECK(up[0] == 1 && up[3 * 8 + 3] == 1 && up[4 * 8 + 6] == 1 && up[4 * 8 + 5] == 0);
}

/* ---- AUPRO ------------------------------------------------------------------------------ */

/* PRO curve evaluated at every distinct score from first principles, then integrated. */
static double aupro_brute(const float *s, const int32_t *reg, long n, int R)
{
    long neg = 0, *size = calloc(R + 1, sizeof *size);
    for (long i = 0; i < n; i++) {
        size[reg[i]]++;
        neg += reg[i] == 0;
    }
    float *th = malloc(n * sizeof *th);
    long nt = 0;
    for (long i = 0; i < n; i++) { // distinct scores, descending (selection, O(n²))
        bool seen = false;
        for (long j = 0; j < nt; j++)
            seen |= th[j] == s[i];
        if (!seen)
            th[nt++] = s[i];
    }
    for (long i = 0; i < nt; i++)
        for (long j = i + 1; j < nt; j++)
            if (th[j] > th[i]) {
                float t = th[i];
                th[i] = th[j];
                th[j] = t;
            }
    double area = 0, px = 0, py = 0;
    long *hit = malloc((R + 1) * sizeof *hit);
    for (long k = 0; k < nt; k++) {
        memset(hit, 0, (R + 1) * sizeof *hit);
        for (long i = 0; i < n; i++)
            if (s[i] >= th[k])
                hit[reg[i]]++;
        double fpr = (double)hit[0] / neg, pro = 0;
        for (int r = 1; r <= R; r++)
            pro += (double)hit[r] / size[r];
        pro /= R;
        if (fpr <= 0.3) {
            area += (fpr - px) * (pro + py) / 2;
        } else {
            double y = py + (pro - py) * (0.3 - px) / (fpr - px);
            area += (0.3 - px) * (y + py) / 2;
            break;
        }
        px = fpr;
        py = pro;
    }
    free(size);
    free(th);
    free(hit);
    return area / 0.3;
}

static void aupro_against_brute_force(void)
{
    enum { W = 24, H = 20, IMGS = 4 };
    long n = (long)W * H * IMGS;
    float *s = malloc(n * sizeof *s);
    int32_t *reg = malloc(n * sizeof *reg);
    uint8_t *mask = malloc(W * H);
    uint8_t *lab = malloc(n);
    REQUIRE(s && reg && mask && lab);
    for (int trial = 0; trial < 6; trial++) {
        int R = 0;
        for (int im = 0; im < IMGS; im++) {
            memset(mask, 0, W * H);
            int blobs = im == 0 ? 0 : 1 + (int)(urand() * 3); // image 0 is normal
            for (int b = 0; b < blobs; b++) {
                int x0 = (int)(urand() * (W - 6)), y0 = (int)(urand() * (H - 6));
                int bw = 1 + (int)(urand() * 6), bh = 1 + (int)(urand() * 6);
                for (int y = y0; y < y0 + bh; y++)
                    for (int x = x0; x < x0 + bw; x++)
                        mask[y * W + x] = 1;
            }
            int found;
            REQUIRE(eval_label_regions(mask, W, H, R + 1, reg + (long)im * W * H, &found) == 0);
            R += found;
            for (long p = 0; p < W * H; p++) {
                long i = (long)im * W * H + p;
                double v = urand() + (mask[p] ? 0.5 * urand() : 0);
                // Odd trials quantize hard: many ties, as 8-bit maps have.
                s[i] = trial % 2 ? (float)(floor(v * 12) / 12) : (float)v;
            }
        }
        REQUIRE(R > 0);
        eval_pixel p;
        eval_curve roc = {0}, pro = {0};
        CHECK_OK(eval_pixel_metrics(s, reg, n, R, &p, &roc, &pro, NULL));
        CHECK_NEAR(p.aupro, aupro_brute(s, reg, n, R), 1e-10);
        for (long i = 0; i < n; i++)
            lab[i] = reg[i] > 0;
        CHECK_NEAR(p.auroc, auroc_pairs(s, lab, n), 1e-12);
        float thr = -INFINITY;
        CHECK_NEAR(p.f1max, f1_brute(s, lab, n, &thr), 1e-12);
        CHECK_EQ_INT(p.n_regions, R);
        REQUIRE(pro.n >= 2);
        CHECK_NEAR(pro.x[pro.n - 1], EVAL_PRO_FPR_LIMIT, 1e-12);
        eval_curve_free(&roc);
        eval_curve_free(&pro);
    }
    free(s);
    free(reg);
    free(mask);
    free(lab);
}

static void aupro_hand_worked(void)
{
    // Two regions of sizes 1 and 3, ten normal pixels at 0..0.9.
    float s[14];
    int32_t reg[14] = {0};
    for (int i = 0; i < 10; i++)
        s[i] = i / 10.0f;
    // Above every normal pixel: PRO is 1 at FPR 0, so AUPRO = 1.
    s[10] = 2, s[11] = 2, s[12] = 2, s[13] = 2;
    reg[10] = 1, reg[11] = reg[12] = reg[13] = 2;
    eval_pixel p;
    CHECK_OK(eval_pixel_metrics(s, reg, 14, 2, &p, NULL, NULL, NULL));
    CHECK_NEAR(p.aupro, 1.0, 1e-15);
    CHECK_NEAR(p.auroc, 1.0, 1e-15);
    // Below every normal pixel: PRO stays 0 until FPR 1.
    s[10] = s[11] = s[12] = s[13] = -1;
    CHECK_OK(eval_pixel_metrics(s, reg, 14, 2, &p, NULL, NULL, NULL));
    CHECK_NEAR(p.aupro, 0.0, 1e-15);
    // Region 1 on top, region 2 at the bottom: PRO jumps to 1/2 at FPR 0 and stays.
    s[10] = 2;
    CHECK_OK(eval_pixel_metrics(s, reg, 14, 2, &p, NULL, NULL, NULL));
    CHECK_NEAR(p.aupro, 0.5, 1e-15);
    // Region 2 half passes at 0.75 (between FPR 0.2 and 0.3): PRO goes 0.5 → 0.5 + 1/3·0.5.
    s[11] = s[12] = 0.75f;
    CHECK_OK(eval_pixel_metrics(s, reg, 14, 2, &p, NULL, NULL, NULL));
    double hi = 0.5 + 0.5 * (2.0 / 3.0);
    // FPR 0.2 → 0.3 happens at 0.7 (normals ≥ 0.7: 0.7, 0.8, 0.9), after the jump at 0.75
    // which sits at FPR 0.2: area = 0.2·0.5 + 0.1·hi.
    CHECK_NEAR(p.aupro, (0.2 * 0.5 + 0.1 * hi) / 0.3, 1e-12);
}

static void pixel_refuses_degenerate_input(void)
{
    float s[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    int32_t none[4] = {0, 0, 0, 0}, all[4] = {1, 1, 1, 1}, out[4] = {0, 3, 0, 1},
            gap[4] = {0, 2, 0, 2};
    eval_pixel p;
    insp_error err = {0};
    CHECK_EQ_INT(eval_pixel_metrics(s, none, 4, 0, &p, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "no anomalous region"));
    CHECK_EQ_INT(eval_pixel_metrics(s, all, 4, 1, &p, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "one class"));
    CHECK_EQ_INT(eval_pixel_metrics(s, out, 4, 2, &p, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "region 3"));
    CHECK_EQ_INT(eval_pixel_metrics(s, gap, 4, 2, &p, NULL, NULL, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "region 1 has no pixel"));
    s[2] = NAN;
    CHECK_EQ_INT(eval_pixel_metrics(s, gap, 4, 1, &p, NULL, NULL, &err), INSP_ERR_INVALID);
}

/* ---- shots ------------------------------------------------------------------------------ */

static void shot_draw_is_seeded(void)
{
    int a[4], b[4], c[4];
    eval_draw_shots(0, "bottle", 20, 4, a);
    eval_draw_shots(0, "bottle", 20, 4, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    for (int i = 0; i < 4; i++) {
        CHECK(a[i] >= 0 && a[i] < 20);
        for (int j = 0; j < i; j++)
            CHECK(a[i] != a[j]);
    }
    bool differs = false;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        eval_draw_shots(seed, "bottle", 20, 4, c);
        differs |= memcmp(a, c, sizeof a) != 0;
    }
    CHECK(differs);
    eval_draw_shots(0, "cable", 20, 4, c);
    int all[3];
    eval_draw_shots(7, "x", 3, 3, all); // k = n: a permutation
    CHECK(all[0] + all[1] + all[2] == 3 && all[0] != all[1] && all[1] != all[2] &&
          all[0] != all[2]);
}

TEST_MAIN(T(binary_random_with_ties), T(binary_hand_worked), T(binary_all_equal_scores),
          T(binary_perfect_and_inverted), T(binary_signed_zero_and_extremes),
          T(binary_refuses_degenerate_input), T(binary_large_against_rank_sum),
          T(regions_are_8_connected), T(mask_resize_nearest), T(aupro_against_brute_force),
          T(aupro_hand_worked), T(pixel_refuses_degenerate_input), T(shot_draw_is_seeded))
