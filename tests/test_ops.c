/* Tests of the numerical kernels against plain double-precision loops written here, on random
 * data with odd sizes and strides, on no pool and on pools of 1, 2 and 3 threads. */
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "inspectd/ops.h"
#include "inspectd/pool.h"

#define N_POOLS 4 /* NULL, then pools of 1, 2 and 3 threads */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* Uniform in [-1, 1) (xorshift64*). */
static float frand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717u;
    return (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_floats(long n, float scale, float offset)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    if (x)
        for (long i = 0; i < n; i++)
            x[i] = frand() * scale + offset;
    return x;
}

/* pools[0] is NULL; the rest have 1, 2 and 3 threads. Returns false if creation failed. */
static bool make_pools(insp_pool *pools[N_POOLS])
{
    pools[0] = NULL;
    for (int p = 1; p < N_POOLS; p++) {
        pools[p] = NULL;
        if (insp_pool_create(p, &pools[p]) != 0)
            return false;
    }
    return true;
}

static void free_pools(insp_pool *pools[N_POOLS])
{
    for (int p = 0; p < N_POOLS; p++)
        insp_pool_free(pools[p]);
}

/* Largest |got - want| over the largest |want|, as the fixtures measure error. */
static double rel_err_d(const float *got, const double *want, long n)
{
    double maxdiff = 0, maxref = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxdiff)) /* also catches NaN */
            maxdiff = isnan(d) ? INFINITY : d;
        if (fabs(want[i]) > maxref)
            maxref = fabs(want[i]);
    }
    return maxref > 0 ? maxdiff / maxref : maxdiff;
}

/* ---- GEMM ---- */

#define SENTINEL 12345.0f

/* Checks insp_gemm_bt (trans_b) or insp_gemm for one shape, with padded strides. Returns the
 * relative error, or INFINITY if the padding of C was written. */
static double check_gemm(insp_pool *pool, bool trans_b, int M, int N, int K, bool with_bias)
{
    int lda = K + 3, ldb = trans_b ? K + 5 : N + 2, ldc = N + 7;
    int b_rows = trans_b ? N : K;
    float *A = rand_floats((long)M * lda, 1, 0);
    float *B = rand_floats((long)b_rows * ldb, 1, 0);
    float *bias = with_bias ? rand_floats(N, 1, 0) : NULL;
    float *C = malloc((size_t)M * ldc * sizeof *C);
    double *want = malloc((size_t)M * N * sizeof *want);
    float *got = malloc((size_t)M * N * sizeof *got);
    if (!A || !B || (with_bias && !bias) || !C || !want || !got) {
        free(A), free(B), free(bias), free(C), free(want), free(got);
        return INFINITY;
    }
    for (long i = 0; i < (long)M * ldc; i++)
        C[i] = SENTINEL;
    if (trans_b)
        insp_gemm_bt(pool, M, N, K, A, lda, B, ldb, bias, C, ldc);
    else
        insp_gemm(pool, M, N, K, A, lda, B, ldb, bias, C, ldc);

    bool padding_ok = true;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double s = bias ? bias[n] : 0.0;
            for (int k = 0; k < K; k++) {
                double b = trans_b ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                s += (double)A[(size_t)m * lda + k] * b;
            }
            want[(size_t)m * N + n] = s;
            got[(size_t)m * N + n] = C[(size_t)m * ldc + n];
        }
        for (int n = N; n < ldc; n++)
            padding_ok &= C[(size_t)m * ldc + n] == SENTINEL;
    }
    double err = padding_ok ? rel_err_d(got, want, (long)M * N) : INFINITY;
    free(A), free(B), free(bias), free(C), free(want), free(got);
    return err;
}

static void gemm_shapes(bool trans_b)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    static const int Ms[] = {1, 7, 37, 300};
    /* Small; tall enough to split by rows; short and wide enough to split by columns. */
    static const int NKs[][2] = {{13, 29}, {301, 67}, {1000, 29}};
    double worst = 0;
    for (int p = 0; p < N_POOLS; p++)
        for (size_t m = 0; m < sizeof Ms / sizeof Ms[0]; m++)
            for (size_t s = 0; s < sizeof NKs / sizeof NKs[0]; s++)
                for (int b = 0; b < 2; b++) {
                    double e = check_gemm(pools[p], trans_b, Ms[m], NKs[s][0], NKs[s][1], b);
                    CHECK_MSG(e <= 1e-5, "pool %d, M %d N %d K %d bias %d: rel error %.3g", p,
                              Ms[m], NKs[s][0], NKs[s][1], b, e);
                    if (e > worst)
                        worst = e;
                }
    printf("# %s: max rel error %.3g\n", trans_b ? "gemm_bt" : "gemm", worst);
    free_pools(pools);
}

static void gemm_bt_matches_loop(void)
{
    gemm_shapes(true);
}

static void gemm_matches_loop(void)
{
    gemm_shapes(false);
}

static void gemm_empty_inner_dimension_gives_bias(void)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    for (int p = 0; p < N_POOLS; p++)
        for (int b = 0; b < 2; b++) {
            CHECK_MSG(check_gemm(pools[p], true, 3, 5, 0, b) == 0, "pool %d bias %d", p, b);
            CHECK_MSG(check_gemm(pools[p], false, 3, 5, 0, b) == 0, "pool %d bias %d", p, b);
        }
    free_pools(pools);
}

/* ---- LayerNorm ---- */

static void layernorm_matches_loop(void)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    static const int rows_list[] = {1, 7, 37, 300};
    static const int dims[] = {1, 5, 771, 1024};
    const float eps = 1e-5f;
    double worst = 0;
    for (int p = 0; p < N_POOLS; p++)
        for (size_t r = 0; r < sizeof rows_list / sizeof rows_list[0]; r++)
            for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
                for (int in_place = 0; in_place < 2; in_place++) {
                    int rows = rows_list[r], dim = dims[d];
                    long n = (long)rows * dim;
                    /* An offset well above the spread: a one-pass variance would lose it. */
                    float *x = rand_floats(n, 2, 30);
                    float *gamma = rand_floats(dim, 1, 1);
                    float *beta = rand_floats(dim, 1, 0);
                    float *y = in_place ? x : malloc((size_t)n * sizeof *y);
                    double *want = malloc((size_t)n * sizeof *want);
                    if (!x || !gamma || !beta || !y || !want) {
                        CHECK(!"out of memory");
                        return;
                    }
                    for (int i = 0; i < rows; i++) {
                        const float *xi = x + (size_t)i * dim;
                        double mean = 0, var = 0;
                        for (int k = 0; k < dim; k++)
                            mean += xi[k];
                        mean /= dim;
                        for (int k = 0; k < dim; k++)
                            var += (xi[k] - mean) * (xi[k] - mean);
                        var /= dim;
                        for (int k = 0; k < dim; k++)
                            want[(size_t)i * dim + k] =
                                (xi[k] - mean) / sqrt(var + eps) * gamma[k] + beta[k];
                    }
                    insp_layernorm(pools[p], rows, dim, x, gamma, beta, eps, y);
                    double e = rel_err_d(y, want, n);
                    CHECK_MSG(e <= 1e-6, "pool %d rows %d dim %d in place %d: rel error %.3g", p,
                              rows, dim, in_place, e);
                    if (e > worst)
                        worst = e;
                    if (!in_place)
                        free(y);
                    free(x), free(gamma), free(beta), free(want);
                }
    printf("# layernorm: max rel error %.3g\n", worst);
    free_pools(pools);
}

/* ---- Elementwise ---- */

/* Inputs covering the interesting range densely, plus extremes. */
static float *activation_inputs(long n)
{
    float *x = rand_floats(n, 8, 0);
    if (x && n >= 8) {
        static const float special[] = {0.0f, -0.0f, 30.0f, -30.0f, 100.0f, -100.0f, 1e-8f, -6.5f};
        memcpy(x, special, sizeof special);
    }
    return x;
}

/* Checks an activation against its double formula: |got - want| <= tol · max(1, |x|). */
static void check_activation(bool quick)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    static const long ns[] = {1, 13, 5000, 300001};
    double worst = 0;
    for (int p = 0; p < N_POOLS; p++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            long n = ns[k];
            float *x = activation_inputs(n);
            float *y = malloc((size_t)n * sizeof *y);
            if (!x || !y) {
                CHECK(!"out of memory");
                return;
            }
            memcpy(y, x, (size_t)n * sizeof *y);
            if (quick)
                insp_quick_gelu(pools[p], n, y);
            else
                insp_gelu(pools[p], n, y);
            int bad = 0;
            for (long i = 0; i < n; i++) {
                double v = x[i];
                double want = quick ? v / (1.0 + exp(-1.702 * v)) : 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
                double e = fabs(y[i] - want) / fmax(1.0, fabs(v));
                if (!(e <= 1e-6)) {
                    if (bad++ < 5)
                        fprintf(stderr, "  x = %.9g: got %.9g, want %.9g\n", v, y[i], want);
                }
                if (e > worst)
                    worst = e;
            }
            CHECK_MSG(bad == 0, "pool %d n %ld: %d values off", p, n, bad);
            free(x), free(y);
        }
    printf("# %s: max error / max(1, |x|) %.3g\n", quick ? "quick_gelu" : "gelu", worst);
    free_pools(pools);
}

static void gelu_matches_erf_formula(void)
{
    check_activation(false);
}

static void quick_gelu_matches_sigmoid_formula(void)
{
    check_activation(true);
}

static void add_inplace_adds(void)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    static const long ns[] = {0, 1, 17, 300007};
    for (int p = 0; p < N_POOLS; p++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            long n = ns[k];
            float *x = rand_floats(n, 1, 0), *y = rand_floats(n, 1, 0);
            float *x0 = malloc((size_t)(n > 0 ? n : 1) * sizeof *x0);
            if (!x || !y || !x0) {
                CHECK(!"out of memory");
                return;
            }
            memcpy(x0, x, (size_t)n * sizeof *x0);
            insp_add_inplace(pools[p], n, x, y);
            int bad = 0;
            for (long i = 0; i < n; i++)
                bad += x[i] != x0[i] + y[i];
            CHECK_MSG(bad == 0, "pool %d n %ld: %d sums wrong", p, n, bad);
            free(x), free(y), free(x0);
        }
    free_pools(pools);
}

/* ---- Softmax ---- */

static void softmax_matches_loop(void)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    static const int rows_list[] = {1, 7, 37, 300};
    static const int ns[] = {1, 5, 77, 1000};
    double worst = 0;
    for (int p = 0; p < N_POOLS; p++)
        for (size_t r = 0; r < sizeof rows_list / sizeof rows_list[0]; r++)
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                int rows = rows_list[r], n = ns[k];
                float *x = rand_floats((long)rows * n, 10, 0);
                double *want = malloc((size_t)rows * n * sizeof *want);
                if (!x || !want) {
                    CHECK(!"out of memory");
                    return;
                }
                /* Rows shifted far up and down: exp must not overflow or underflow to 0/0. */
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < n; j++)
                        x[(size_t)i * n + j] += i % 3 == 1 ? 1000.0f : i % 3 == 2 ? -1000.0f : 0;
                for (int i = 0; i < rows; i++) {
                    const float *xi = x + (size_t)i * n;
                    double mx = xi[0], sum = 0;
                    for (int j = 1; j < n; j++)
                        mx = fmax(mx, xi[j]);
                    for (int j = 0; j < n; j++)
                        sum += exp(xi[j] - mx);
                    for (int j = 0; j < n; j++)
                        want[(size_t)i * n + j] = exp(xi[j] - mx) / sum;
                }
                insp_softmax_rows(pools[p], rows, n, x);
                for (int i = 0; i < rows; i++) {
                    double e = rel_err_d(x + (size_t)i * n, want + (size_t)i * n, n);
                    double sum = 0;
                    for (int j = 0; j < n; j++)
                        sum += x[(size_t)i * n + j];
                    CHECK_MSG(e <= 1e-5 && fabs(sum - 1.0) <= 1e-5,
                              "pool %d rows %d n %d row %d: rel error %.3g, sum %.9g", p, rows,
                              n, i, e, sum);
                    if (e > worst)
                        worst = e;
                }
                free(x), free(want);
            }
    printf("# softmax: max rel error per row %.3g\n", worst);
    free_pools(pools);
}

/* ---- Attention ---- */

/* Naive attention in double: want [n_seq·len, H·hd]. */
static void attention_reference(int n_seq, int len, int H, int hd, const float *qkv, bool causal,
                                double *want)
{
    int D = H * hd;
    double *s = malloc((size_t)len * sizeof *s);
    if (!s)
        return;
    double scale = 1.0 / sqrt(hd);
    for (int q = 0; q < n_seq; q++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < len; i++) {
                const float *qi = qkv + ((size_t)q * len + i) * 3 * D + (size_t)h * hd;
                int n_keys = causal ? i + 1 : len;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n_keys; j++) {
                    const float *kj = qkv + ((size_t)q * len + j) * 3 * D + D + (size_t)h * hd;
                    double d = 0;
                    for (int c = 0; c < hd; c++)
                        d += (double)qi[c] * kj[c];
                    s[j] = d * scale;
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < n_keys; j++)
                    sum += (s[j] = exp(s[j] - mx));
                double *o = want + ((size_t)q * len + i) * D + (size_t)h * hd;
                for (int c = 0; c < hd; c++) {
                    double acc = 0;
                    for (int j = 0; j < n_keys; j++)
                        acc += s[j] / sum *
                               qkv[((size_t)q * len + j) * 3 * D + 2 * D + (size_t)h * hd + c];
                    o[c] = acc;
                }
            }
    free(s);
}

static void attention_matches_loop(void)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    /* n_seq, len, heads, head_dim: ViT window batches, a causal-text-like shape, long ones. */
    static const int shapes[][4] = {
        {3, 1, 2, 64},  {40, 5, 14, 64}, {30, 10, 14, 64}, {2, 50, 2, 40},
        {2, 77, 8, 64}, {1, 226, 14, 16}, {1, 226, 1, 64}, {5, 10, 1, 7},
    };
    double worst = 0;
    for (int p = 0; p < N_POOLS; p++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int causal = 0; causal < 2; causal++) {
                int n_seq = shapes[s][0], len = shapes[s][1], H = shapes[s][2],
                    hd = shapes[s][3];
                long rows = (long)n_seq * len, D = (long)H * hd;
                /* Large enough logits that the softmax is far from uniform. */
                float *qkv = rand_floats(rows * 3 * D, 2, 0);
                float *out = malloc((size_t)(rows * D) * sizeof *out);
                double *want = malloc((size_t)(rows * D) * sizeof *want);
                long n_scratch = insp_attention_scratch(pools[p], len);
                float *scratch = malloc((size_t)(n_scratch > 0 ? n_scratch : 1) * sizeof *scratch);
                if (!qkv || !out || !want || !scratch) {
                    CHECK(!"out of memory");
                    return;
                }
                for (long i = 0; i < rows * D; i++)
                    out[i] = NAN; /* every output must be written */
                attention_reference(n_seq, len, H, hd, qkv, causal, want);
                insp_attention(pools[p], n_seq, len, H, hd, qkv, out, causal, scratch);
                double e = rel_err_d(out, want, rows * D);
                CHECK_MSG(e <= 1e-5, "pool %d n_seq %d len %d H %d hd %d causal %d: rel error %.3g",
                          p, n_seq, len, H, hd, causal, e);
                if (e > worst)
                    worst = e;
                free(qkv), free(out), free(want), free(scratch);
            }
    printf("# attention: max rel error %.3g\n", worst);
    free_pools(pools);
}

static void attention_scratch_grows_with_pool_and_len(void)
{
    insp_pool *pools[N_POOLS];
    REQUIRE(make_pools(pools));
    CHECK(insp_attention_scratch(NULL, 10) >= 10L * 10);
    CHECK(insp_attention_scratch(pools[3], 10) >= 3L * 10 * 10);
    CHECK(insp_attention_scratch(pools[2], 577) >= 2L * 577 * 577);
    CHECK_EQ_INT(insp_attention_scratch(pools[2], 0), 0);
    free_pools(pools);
}

TEST_MAIN(T(gemm_bt_matches_loop), T(gemm_matches_loop), T(gemm_empty_inner_dimension_gives_bias),
          T(layernorm_matches_loop), T(gelu_matches_erf_formula),
          T(quick_gelu_matches_sigmoid_formula), T(add_inplace_adds), T(softmax_matches_loop),
          T(attention_matches_loop), T(attention_scratch_grows_with_pool_and_len))
