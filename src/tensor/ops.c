/* GEMM (through OpenBLAS) and the elementwise and row kernels of a ViT, each split across the
 * compute pool in contiguous slices. Numerics follow PyTorch's float32 definitions. */
#include "inspectd/ops.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tensor/simd.h"

/* Below this many multiply-adds a GEMM runs on the calling thread: a pool dispatch costs a
 * few microseconds, which is what ~2^17 multiply-adds take on one core. */
#define GEMM_MIN_PARALLEL_MACS (1L << 17)
/* Smallest slice worth a thread of its own: rows of C (row split) or columns (column split).
 * Column slices are wider because OpenBLAS packs B per call and a narrow slice wastes that. */
#define GEMM_MIN_ROWS 16
#define GEMM_MIN_COLS 64
/* Slice edges are rounded to these so each slice keeps OpenBLAS's register blocking whole. */
#define GEMM_ROW_ALIGN 8
#define GEMM_COL_ALIGN 16

/* Elements per pool item below which a split does not pay for its dispatch, per kernel cost:
 * erff/expf cost nanoseconds per element, LayerNorm about one, an add a fraction. */
#define MIN_CHUNK_TRANSCENDENTAL 4096L
#define MIN_CHUNK_LAYERNORM 16384L
#define MIN_CHUNK_ADD 65536L
/* Items per thread for the elementwise kernels, so a thread that starts late costs little. */
#define ITEMS_PER_THREAD 4

/* Start of slice i of `parts` over [0, total), rounded down to `align`; slice parts - 1 ends
 * at total. */
static long slice_start(long total, int parts, int i, long align)
{
    if (i >= parts)
        return total;
    long b = total * i / parts;
    return b - b % align;
}

/* How many slices of at least min_chunk elements to cut `total` into (1 = run inline). */
static int slice_count(const insp_pool *pool, long total, long min_chunk)
{
    long max_parts = (long)insp_pool_size(pool) * ITEMS_PER_THREAD;
    long parts = total / min_chunk;
    if (parts > max_parts)
        parts = max_parts;
    return parts < 1 ? 1 : (int)parts;
}

/* ---- GEMM ---- */

typedef struct gemm_job {
    bool trans_b; /* B is [N, K] (Linear layout) rather than [K, N] */
    int M, N, K;
    const float *A; // [M, K], row stride lda
    int lda;
    const float *B; // [N, K] or [K, N], row stride ldb
    int ldb;
    const float *bias; // [N] or NULL
    float *C;          // [M, N], row stride ldc
    int ldc;
    int parts;
    bool by_cols;
} gemm_job;

/* C[m0:m1, n0:n1] of the job, as one sgemm. */
static void gemm_block(const gemm_job *j, int m0, int m1, int n0, int n1)
{
    int m = m1 - m0, n = n1 - n0;
    if (m <= 0 || n <= 0)
        return;
    float *C = j->C + (size_t)m0 * j->ldc + n0;
    float beta = 0.0f;
    if (j->bias) {
        /* Seeding C with the bias and accumulating with beta = 1 costs nothing extra:
         * OpenBLAS makes a pass over C to apply beta = 0 anyway, and skips it for beta = 1. */
        for (int r = 0; r < m; r++)
            memcpy(C + (size_t)r * j->ldc, j->bias + n0, (size_t)n * sizeof *C);
        beta = 1.0f;
    }
    if (j->K <= 0) { /* nothing to multiply; cblas would reject lda = 0 */
        if (!j->bias)
            for (int r = 0; r < m; r++)
                memset(C + (size_t)r * j->ldc, 0, (size_t)n * sizeof *C);
        return;
    }
    const float *A = j->A + (size_t)m0 * j->lda;
    if (j->trans_b) {
        // [m, K] x [n, K]^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, j->K, 1.0f, A, j->lda,
                    j->B + (size_t)n0 * j->ldb, j->ldb, beta, C, j->ldc);
    } else {
        // [m, K] x [K, n]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, j->K, 1.0f, A, j->lda,
                    j->B + n0, j->ldb, beta, C, j->ldc);
    }
}

static void gemm_item(void *ctx, int i, int n, int thread)
{
    (void)thread;
    const gemm_job *j = ctx;
    if (j->by_cols) {
        int n0 = (int)slice_start(j->N, n, i, GEMM_COL_ALIGN);
        int n1 = (int)slice_start(j->N, n, i + 1, GEMM_COL_ALIGN);
        gemm_block(j, 0, j->M, n0, n1);
    } else {
        int m0 = (int)slice_start(j->M, n, i, GEMM_ROW_ALIGN);
        int m1 = (int)slice_start(j->M, n, i + 1, GEMM_ROW_ALIGN);
        gemm_block(j, m0, m1, 0, j->N);
    }
}

/* One slice per thread (one sgemm each, so each thread packs its operands once). A slice's
 * sgemm packs its share of one operand and the whole of the other: cutting the rows of C
 * makes every thread pack all of B (N·K floats), cutting the columns all of A (M·K). So the
 * larger of M and N is cut — columns for a few hundred tokens through a wide projection
 * (measured 5-12% faster at M = 226, N ≥ 896 on 2 threads), rows for thousands of window
 * tokens through a narrow one — as long as every slice keeps GEMM_MIN_ROWS rows or
 * GEMM_MIN_COLS columns. */
static void gemm_run(insp_pool *pool, gemm_job *j)
{
    if (j->M <= 0 || j->N <= 0)
        return;
    int threads = insp_pool_size(pool);
    int row_parts = j->M / GEMM_MIN_ROWS, col_parts = j->N / GEMM_MIN_COLS;
    if (row_parts > threads)
        row_parts = threads;
    if (col_parts > threads)
        col_parts = threads;
    double macs = (double)j->M * j->N * (j->K > 0 ? j->K : 1);
    if (threads == 1 || macs < GEMM_MIN_PARALLEL_MACS || (row_parts < 2 && col_parts < 2)) {
        gemm_block(j, 0, j->M, 0, j->N);
        return;
    }
    j->by_cols = row_parts < 2 || (col_parts >= 2 && j->N > j->M);
    j->parts = j->by_cols ? col_parts : row_parts;
    insp_pool_run(pool, gemm_item, j, j->parts);
}

void insp_gemm_bt(insp_pool *pool, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, const float *bias, float *C, int ldc)
{
    gemm_job j = {.trans_b = true, .M = M, .N = N, .K = K, .A = A, .lda = lda, .B = B,
                  .ldb = ldb, .bias = bias, .C = C, .ldc = ldc};
    gemm_run(pool, &j);
}

void insp_gemm(insp_pool *pool, int M, int N, int K, const float *A, int lda, const float *B,
               int ldb, const float *bias, float *C, int ldc)
{
    gemm_job j = {.trans_b = false, .M = M, .N = N, .K = K, .A = A, .lda = lda, .B = B,
                  .ldb = ldb, .bias = bias, .C = C, .ldc = ldc};
    gemm_run(pool, &j);
}

/* ---- LayerNorm ---- */

typedef struct layernorm_job {
    int rows, dim;
    const float *x; // [rows, dim]
    const float *gamma, *beta; // [dim]
    float eps;
    float *y; // [rows, dim], may be x
} layernorm_job;

/* Sums in double over eight independent lanes: as accurate as PyTorch's float32 reduction
 * or better, and the lanes keep the loop vectorizable without -ffast-math. */
static double sum_lanes(const float *x, int n, double shift)
{
    double lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            double d = (double)x[i + l] - shift;
            lane[l] += d;
        }
    double s = 0;
    for (; i < n; i++)
        s += (double)x[i] - shift;
    for (int l = 0; l < 8; l++)
        s += lane[l];
    return s;
}

static double sum_sq_lanes(const float *x, int n, double mean)
{
    double lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            double d = (double)x[i + l] - mean;
            lane[l] += d * d;
        }
    double s = 0;
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        s += d * d;
    }
    for (int l = 0; l < 8; l++)
        s += lane[l];
    return s;
}

#ifdef INSP_SIMD_X86
INSP_AVX2 static void layernorm_rows_avx2(const layernorm_job *j, int r0, int r1);
#endif

static void layernorm_rows(const layernorm_job *j, int r0, int r1)
{
#ifdef INSP_SIMD_X86
    if (insp_simd_avx2()) {
        layernorm_rows_avx2(j, r0, r1);
        return;
    }
#endif
    for (int r = r0; r < r1; r++) {
        const float *x = j->x + (size_t)r * j->dim;
        float *y = j->y + (size_t)r * j->dim;
        /* Two passes (mean, then squared deviations) rather than E[x²] - E[x]²: no
         * cancellation when the mean is large against the spread. Variance is biased. */
        double mean = sum_lanes(x, j->dim, 0.0) / j->dim;
        double var = sum_sq_lanes(x, j->dim, mean) / j->dim;
        double rstd = 1.0 / sqrt(var + (double)j->eps);
        /* Centre in double: x - (float)mean would round away ~1e-6 of a row whose mean is
         * large against its spread. */
        for (int i = 0; i < j->dim; i++)
            y[i] = (float)(((double)x[i] - mean) * rstd) * j->gamma[i] + j->beta[i];
    }
}

#ifdef INSP_SIMD_X86
INSP_AVX2 static inline double hsum4d(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* The same arithmetic as layernorm_rows — double accumulation, two passes, centring in
 * double — four doubles per register. */
INSP_AVX2 static void layernorm_rows_avx2(const layernorm_job *j, int r0, int r1)
{
    const int dim = j->dim;
    for (int r = r0; r < r1; r++) {
        const float *x = j->x + (size_t)r * dim;
        float *y = j->y + (size_t)r * dim;
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + 16 <= dim; i += 16) {
            a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
            a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
            a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
            a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
        }
        double sum = hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
        for (; i < dim; i++)
            sum += x[i];
        const double mean = sum / dim;
        const __m256d m = _mm256_set1_pd(mean);
        a0 = a1 = a2 = a3 = _mm256_setzero_pd();
        for (i = 0; i + 16 <= dim; i += 16) {
            __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m);
            __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m);
            __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), m);
            __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)), m);
            a0 = _mm256_fmadd_pd(d0, d0, a0);
            a1 = _mm256_fmadd_pd(d1, d1, a1);
            a2 = _mm256_fmadd_pd(d2, d2, a2);
            a3 = _mm256_fmadd_pd(d3, d3, a3);
        }
        double ss = hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
        for (; i < dim; i++) {
            double d = (double)x[i] - mean;
            ss += d * d;
        }
        const double rstd = 1.0 / sqrt(ss / dim + (double)j->eps);
        const __m256d rs = _mm256_set1_pd(rstd);
        for (i = 0; i + 8 <= dim; i += 8) {
            __m128 lo = _mm256_cvtpd_ps(
                _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m), rs));
            __m128 hi = _mm256_cvtpd_ps(
                _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m), rs));
            __m256 v = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, _mm256_loadu_ps(j->gamma + i),
                                                    _mm256_loadu_ps(j->beta + i)));
        }
        for (; i < dim; i++)
            y[i] = (float)(((double)x[i] - mean) * rstd) * j->gamma[i] + j->beta[i];
    }
}
#endif

static void layernorm_item(void *ctx, int i, int n, int thread)
{
    (void)thread;
    const layernorm_job *j = ctx;
    layernorm_rows(j, (int)slice_start(j->rows, n, i, 1), (int)slice_start(j->rows, n, i + 1, 1));
}

void insp_layernorm(insp_pool *pool, int rows, int dim, const float *x, const float *gamma,
                    const float *beta, float eps, float *y)
{
    if (rows <= 0 || dim <= 0)
        return;
    layernorm_job j = {rows, dim, x, gamma, beta, eps, y};
    int parts = slice_count(pool, (long)rows * dim, MIN_CHUNK_LAYERNORM);
    if (parts > rows)
        parts = rows;
    if (parts <= 1)
        layernorm_rows(&j, 0, rows);
    else
        insp_pool_run(pool, layernorm_item, &j, parts);
}

/* ---- Elementwise ---- */

typedef enum elementwise_kind { EW_GELU, EW_QUICK_GELU, EW_ADD } elementwise_kind;

typedef struct elementwise_job {
    elementwise_kind kind;
    long n;
    float *x;       // [n]
    const float *y; // [n], for EW_ADD
} elementwise_job;

#ifdef INSP_SIMD_X86
/* GELU or QuickGELU over x[0, n) eight at a time; the last n % 8 go through a padded block so
 * that every element gets the same formula. */
INSP_AVX2 static void activation_avx2(bool quick, float *x, long n)
{
    long i = 0;
    // Four independent vectors per step: one evaluation is a chain of ~30 dependent
    // operations, and four side by side let the core overlap them (1.9x measured).
    for (; i + 32 <= n; i += 32) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
        if (quick) {
            v0 = insp_quick_gelu8(v0), v1 = insp_quick_gelu8(v1);
            v2 = insp_quick_gelu8(v2), v3 = insp_quick_gelu8(v3);
        } else {
            v0 = insp_gelu8(v0), v1 = insp_gelu8(v1), v2 = insp_gelu8(v2), v3 = insp_gelu8(v3);
        }
        _mm256_storeu_ps(x + i, v0);
        _mm256_storeu_ps(x + i + 8, v1);
        _mm256_storeu_ps(x + i + 16, v2);
        _mm256_storeu_ps(x + i + 24, v3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, quick ? insp_quick_gelu8(v) : insp_gelu8(v));
    }
    if (i < n) {
        float tail[8] = {0};
        memcpy(tail, x + i, (size_t)(n - i) * sizeof *tail);
        __m256 v = _mm256_loadu_ps(tail);
        _mm256_storeu_ps(tail, quick ? insp_quick_gelu8(v) : insp_gelu8(v));
        memcpy(x + i, tail, (size_t)(n - i) * sizeof *tail);
    }
}
#endif

static void elementwise_span(const elementwise_job *j, long i0, long i1)
{
    float *x = j->x;
#ifdef INSP_SIMD_X86
    if (j->kind != EW_ADD && insp_simd_avx2()) {
        activation_avx2(j->kind == EW_QUICK_GELU, x + i0, i1 - i0);
        return;
    }
#endif
    switch (j->kind) {
    case EW_GELU:
        for (long i = i0; i < i1; i++)
            x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        break;
    case EW_QUICK_GELU:
        /* 1.702f·x in float and x·sigmoid, as CLIP's QuickGELU computes it in PyTorch;
         * expf overflowing to inf for very negative x gives the right limit, -0. */
        for (long i = i0; i < i1; i++)
            x[i] = x[i] * (1.0f / (1.0f + expf(-1.702f * x[i])));
        break;
    case EW_ADD:
        for (long i = i0; i < i1; i++)
            x[i] += j->y[i];
        break;
    }
}

static void elementwise_item(void *ctx, int i, int n, int thread)
{
    (void)thread;
    const elementwise_job *j = ctx;
    /* Slice edges on 16 floats (64 bytes) so no two threads write one cache line. */
    elementwise_span(j, slice_start(j->n, n, i, 16), slice_start(j->n, n, i + 1, 16));
}

static void elementwise_run(insp_pool *pool, elementwise_job *j, long min_chunk)
{
    if (j->n <= 0)
        return;
    int parts = slice_count(pool, j->n, min_chunk);
    if (parts <= 1)
        elementwise_span(j, 0, j->n);
    else
        insp_pool_run(pool, elementwise_item, j, parts);
}

void insp_gelu(insp_pool *pool, long n, float *x)
{
    elementwise_job j = {EW_GELU, n, x, NULL};
    elementwise_run(pool, &j, MIN_CHUNK_TRANSCENDENTAL);
}

void insp_quick_gelu(insp_pool *pool, long n, float *x)
{
    elementwise_job j = {EW_QUICK_GELU, n, x, NULL};
    elementwise_run(pool, &j, MIN_CHUNK_TRANSCENDENTAL);
}

void insp_add_inplace(insp_pool *pool, long n, float *x, const float *y)
{
    elementwise_job j = {EW_ADD, n, x, y};
    elementwise_run(pool, &j, MIN_CHUNK_ADD);
}

/* ---- Softmax ---- */

typedef struct softmax_job {
    int rows, n;
    float *x; // [rows, n]
} softmax_job;

static void softmax_rows(const softmax_job *j, int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        float *x = j->x + (size_t)r * j->n;
        float mx = x[0];
        for (int i = 1; i < j->n; i++)
            mx = x[i] > mx ? x[i] : mx;
        double sum = 0;
        for (int i = 0; i < j->n; i++) {
            x[i] = expf(x[i] - mx);
            sum += x[i];
        }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < j->n; i++)
            x[i] *= inv;
    }
}

static void softmax_item(void *ctx, int i, int n, int thread)
{
    (void)thread;
    const softmax_job *j = ctx;
    softmax_rows(j, (int)slice_start(j->rows, n, i, 1), (int)slice_start(j->rows, n, i + 1, 1));
}

void insp_softmax_rows(insp_pool *pool, int rows, int n, float *x)
{
    if (rows <= 0 || n <= 0)
        return;
    softmax_job j = {rows, n, x};
    int parts = slice_count(pool, (long)rows * n, MIN_CHUNK_TRANSCENDENTAL);
    if (parts > rows)
        parts = rows;
    if (parts <= 1)
        softmax_rows(&j, 0, rows);
    else
        insp_pool_run(pool, softmax_item, &j, parts);
}
