/* Multi-head self-attention over a batch of equal-length sequences: thousands of tiny
 * window sequences (5 or 10 tokens) as well as a few long ones (up to ~600 tokens). */
#include "inspectd/ops.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "tensor/simd.h"

/* Up to this length a (sequence, head) pair is done with plain loops: an sgemm call's fixed
 * cost (argument checks, packing) outweighs a 10x10x64 product many times over. */
#define SMALL_LEN 32
/* Widest head the vector path of short sequences takes (its K^T block lives on the stack). */
#define SMALL_HD_MAX 128
/* Below this many multiply-adds in all, the whole call runs on the calling thread. */
#define MIN_PARALLEL_MACS (1L << 16)
/* Work items per thread; (sequence, head) pairs are dealt out in this many contiguous runs. */
#define ITEMS_PER_THREAD 8

typedef struct attention_job {
    int n_seq, len, n_heads, head_dim;
    const float *qkv; // [n_seq·len, 3·H·hd]
    float *out;       // [n_seq·len, H·hd]
    bool causal;
    float scale;
    float *scratch; // [threads, len, len]
    long pairs;     // n_seq · H
} attention_job;

static float dot(const float *a, const float *b, int n)
{
    /* Eight independent partial sums: vectorizable without reassociation flags. */
    float lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += a[i + l] * b[i + l];
    float s = 0;
    for (; i < n; i++)
        s += a[i] * b[i];
    for (int l = 0; l < 8; l++)
        s += lane[l];
    return s;
}

/* y += a·x, in blocks of eight that -O2 turns into vector code (restrict: the rows never
 * overlap). */
static void axpy(int n, float a, const float *restrict x, float *restrict y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            y[i + l] += a * x[i + l];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* Softmax over s[0, n) in place. */
static void softmax_span(float *s, int n)
{
    float mx = s[0];
    for (int i = 1; i < n; i++)
        mx = s[i] > mx ? s[i] : mx;
    float sum = 0;
    for (int i = 0; i < n; i++) {
        s[i] = expf(s[i] - mx);
        sum += s[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        s[i] *= inv;
}

#ifdef INSP_SIMD_X86
INSP_AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* exp(s[t] - max) for t < n, in place; returns their sum (the caller divides). */
INSP_AVX2 static float exp_span_avx2(float *s, int n)
{
    float mx = s[0];
    for (int i = 1; i < n; i++)
        mx = s[i] > mx ? s[i] : mx;
    const __m256 vmx = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = insp_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vmx));
        _mm256_storeu_ps(s + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = hsum8(sum);
    if (i < n) { /* the last n % 8 through a padded block, so all get the same formula */
        float tail[8];
        for (int t = 0; t < 8; t++)
            tail[t] = i + t < n ? s[i + t] : mx;
        _mm256_storeu_ps(tail, insp_exp8(_mm256_sub_ps(_mm256_loadu_ps(tail), vmx)));
        for (int t = 0; i + t < n; t++)
            total += (s[i + t] = tail[t]);
    }
    return total;
}

INSP_AVX2 static void softmax_span_avx2(float *s, int n)
{
    const __m256 inv = _mm256_set1_ps(1.0f / exp_span_avx2(s, n));
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), inv));
    for (; i < n; i++)
        s[i] *= _mm256_cvtss_f32(inv);
}

/* out[0, 64) = inv · Σ_{t < n} p[t] · v[t, 0..64) (v rows of stride ld): eight accumulators,
 * one per eight columns, so the FMAs of one key are independent of each other. */
INSP_AVX2 static inline void weighted_sum64(const float *p, int n, const float *v, int ld,
                                            __m256 inv, float *out)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    for (int t = 0; t < n; t++) {
        const __m256 pt = _mm256_broadcast_ss(p + t);
        const float *vt = v + (size_t)t * ld;
        a0 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt), a0);
        a1 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 8), a1);
        a2 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 16), a2);
        a3 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 24), a3);
        a4 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 32), a4);
        a5 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 40), a5);
        a6 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 48), a6);
        a7 = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 56), a7);
    }
    _mm256_storeu_ps(out, _mm256_mul_ps(a0, inv));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(a1, inv));
    _mm256_storeu_ps(out + 16, _mm256_mul_ps(a2, inv));
    _mm256_storeu_ps(out + 24, _mm256_mul_ps(a3, inv));
    _mm256_storeu_ps(out + 32, _mm256_mul_ps(a4, inv));
    _mm256_storeu_ps(out + 40, _mm256_mul_ps(a5, inv));
    _mm256_storeu_ps(out + 48, _mm256_mul_ps(a6, inv));
    _mm256_storeu_ps(out + 56, _mm256_mul_ps(a7, inv));
}

/* Lane u of the result = the sum of the eight lanes of a_u. */
INSP_AVX2 static inline __m256 hsum8x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4,
                                       __m256 a5, __m256 a6, __m256 a7)
{
    __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                         _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

/* One (sequence, head) of a short sequence: len ≤ SMALL_LEN, head_dim a multiple of 8 and at
 * most SMALL_HD_MAX. Scores come eight keys at a time: eight dot-product accumulators (one per
 * key, independent FMA chains) reduced together; then softmax and P·V per query row. */
INSP_AVX2 static void attend_small_avx2(const attention_job *j, const float *q, const float *k,
                                        const float *v, int ld, float *o, int ldo)
{
    const int len = j->len, hd = j->head_dim, w = (len + 7) / 8 * 8;
    float s[SMALL_LEN * SMALL_LEN]; // [len, w] scores, then exp weights
    const __m256 scale = _mm256_set1_ps(j->scale);
    for (int i = 0; i < len; i++) {
        const float *qi = q + (size_t)i * ld;
        const int n_keys = j->causal ? i + 1 : len;
        for (int t0 = 0; t0 < n_keys; t0 += 8) {
            // Keys past n_keys repeat key t0 (computed, never used): no read leaves the
            // sequence.
            const float *kr[8];
            for (int u = 0; u < 8; u++)
                kr[u] = k + (size_t)(t0 + u < n_keys ? t0 + u : t0) * ld;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                   a6 = a0, a7 = a0;
            for (int d = 0; d < hd; d += 8) {
                const __m256 qd = _mm256_loadu_ps(qi + d);
                a0 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[0] + d), a0);
                a1 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[1] + d), a1);
                a2 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[2] + d), a2);
                a3 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[3] + d), a3);
                a4 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[4] + d), a4);
                a5 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[5] + d), a5);
                a6 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[6] + d), a6);
                a7 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kr[7] + d), a7);
            }
            _mm256_storeu_ps(s + i * w + t0,
                             _mm256_mul_ps(hsum8x8(a0, a1, a2, a3, a4, a5, a6, a7), scale));
        }
    }
    const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    for (int i = 0; i < len; i++) {
        float *si = s + i * w;
        const int n_keys = j->causal ? i + 1 : len;
        // Softmax weights, unnormalized, over whole vectors: lanes at or past n_keys are
        // masked out of the max and zeroed after the exp.
        __m256 m[SMALL_LEN / 8], mx = _mm256_set1_ps(-INFINITY);
        const int nv = (n_keys + 7) / 8;
        for (int c = 0; c < nv; c++) {
            m[c] = _mm256_cmp_ps(_mm256_add_ps(lane, _mm256_set1_ps((float)(8 * c))),
                                 _mm256_set1_ps((float)n_keys), _CMP_LT_OQ);
            mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY),
                                                    _mm256_loadu_ps(si + 8 * c), m[c]));
        }
        mx = _mm256_max_ps(mx, _mm256_permute2f128_ps(mx, mx, 1));
        mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, _MM_SHUFFLE(1, 0, 3, 2)));
        mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, _MM_SHUFFLE(2, 3, 0, 1)));
        __m256 sum = _mm256_setzero_ps();
        for (int c = 0; c < nv; c++) {
            __m256 e = insp_exp8(_mm256_sub_ps(_mm256_loadu_ps(si + 8 * c), mx));
            e = _mm256_and_ps(e, m[c]);
            _mm256_storeu_ps(si + 8 * c, e);
            sum = _mm256_add_ps(sum, e);
        }
        const __m256 inv = _mm256_set1_ps(1.0f / hsum8(sum));
        float *oi = o + (size_t)i * ldo;
        // o_i = Σ_t p_t v_t, eight columns per accumulator, eight accumulators at a time
        int c0 = 0;
        for (; c0 + 64 <= hd; c0 += 64)
            weighted_sum64(si, n_keys, v + c0, ld, inv, oi + c0);
        for (; c0 < hd; c0 += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (int t = 0; t < n_keys; t++)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(si + t),
                                      _mm256_loadu_ps(v + (size_t)t * ld + c0), acc);
            _mm256_storeu_ps(oi + c0, _mm256_mul_ps(acc, inv));
        }
    }
}
#endif

/* One (sequence, head) with loops; q/k/v rows have stride ld, o rows stride ldo.
 * row: [len] floats of scratch. */
static void attend_small(const attention_job *j, const float *q, const float *k, const float *v,
                         int ld, float *o, int ldo, float *row)
{
    int len = j->len, hd = j->head_dim;
    for (int i = 0; i < len; i++) {
        int n_keys = j->causal ? i + 1 : len;
        const float *qi = q + (size_t)i * ld;
        for (int t = 0; t < n_keys; t++)
            row[t] = dot(qi, k + (size_t)t * ld, hd) * j->scale;
        softmax_span(row, n_keys);
        float *oi = o + (size_t)i * ldo;
        memset(oi, 0, (size_t)hd * sizeof *oi);
        for (int t = 0; t < n_keys; t++)
            axpy(hd, row[t], v + (size_t)t * ld, oi);
    }
}

/* One (sequence, head) with two sgemms. S: [len, len] scratch. */
static void attend_blas(const attention_job *j, const float *q, const float *k, const float *v,
                        int ld, float *o, int ldo, float *S)
{
    int len = j->len, hd = j->head_dim;
    // [len, hd] x [len, hd]^T -> S [len, len], already scaled
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hd, j->scale, q, ld, k, ld,
                0.0f, S, len);
    for (int i = 0; i < len; i++) {
        float *s = S + (size_t)i * len;
        int n_keys = j->causal ? i + 1 : len;
#ifdef INSP_SIMD_X86
        if (insp_simd_avx2())
            softmax_span_avx2(s, n_keys);
        else
#endif
            softmax_span(s, n_keys);
        /* Masked keys get weight 0, which is exactly what exp(-inf) would give. */
        for (int t = n_keys; t < len; t++)
            s[t] = 0.0f;
    }
    // [len, len] x [len, hd] -> o [len, hd] (row stride ldo)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hd, len, 1.0f, S, len, v, ld,
                0.0f, o, ldo);
}

/* Asks for part h of n_heads of sequence s's rows (its whole qkv block), so that while the
 * heads of one short sequence are attended the next one streams in: every qkv row was just
 * written by the GEMM and is read once here, a cache miss per line otherwise paid in full
 * (the heads of one sequence read 256-byte pieces of rows 10 KB apart, a pattern the hardware
 * prefetchers do not follow). Measured 1.3-1.5x on window batches. */
static void prefetch_part(const attention_job *j, long s, int h)
{
    if (s >= j->n_seq)
        return;
    const size_t bytes = (size_t)j->len * 3 * j->n_heads * j->head_dim * sizeof(float);
    const size_t part = (bytes / (size_t)j->n_heads + 63) & ~(size_t)63;
    const char *base = (const char *)(j->qkv + (size_t)s * j->len * 3 * j->n_heads * j->head_dim);
    size_t end = (size_t)(h + 1) * part;
    for (size_t off = (size_t)h * part; off < end && off < bytes; off += 64)
        __builtin_prefetch(base + off, 0, 2);
}

static void attend_pairs(const attention_job *j, long p0, long p1, int thread)
{
    int D = j->n_heads * j->head_dim;
    int ld = 3 * D;
    float *scratch = j->scratch + (size_t)thread * j->len * j->len;
    for (long p = p0; p < p1; p++) {
        long s = p / j->n_heads;
        int h = (int)(p % j->n_heads);
        const float *q = j->qkv + (size_t)s * j->len * ld + (size_t)h * j->head_dim;
        float *o = j->out + (size_t)s * j->len * D + (size_t)h * j->head_dim;
        if (j->len <= SMALL_LEN)
            prefetch_part(j, s + 1, h);
#ifdef INSP_SIMD_X86
        if (j->len <= SMALL_LEN && j->head_dim % 8 == 0 && j->head_dim <= SMALL_HD_MAX &&
            insp_simd_avx2()) {
            attend_small_avx2(j, q, q + D, q + 2 * D, ld, o, D);
            continue;
        }
#endif
        if (j->len <= SMALL_LEN)
            attend_small(j, q, q + D, q + 2 * D, ld, o, D, scratch);
        else
            attend_blas(j, q, q + D, q + 2 * D, ld, o, D, scratch);
    }
}

static void attention_item(void *ctx, int i, int n, int thread)
{
    const attention_job *j = ctx;
    attend_pairs(j, j->pairs * i / n, j->pairs * (i + 1) / n, thread);
}

long insp_attention_scratch(const insp_pool *pool, int len)
{
    if (len <= 0)
        return 0;
    return (long)insp_pool_size(pool) * len * len;
}

void insp_attention(insp_pool *pool, int n_seq, int len, int n_heads, int head_dim,
                    const float *qkv, float *out, bool causal, float *scratch)
{
    if (n_seq <= 0 || len <= 0 || n_heads <= 0 || head_dim <= 0)
        return;
    attention_job j = {
        .n_seq = n_seq,
        .len = len,
        .n_heads = n_heads,
        .head_dim = head_dim,
        .qkv = qkv,
        .out = out,
        .causal = causal,
        .scale = 1.0f / sqrtf((float)head_dim),
        .scratch = scratch,
        .pairs = (long)n_seq * n_heads,
    };
    long items = (long)insp_pool_size(pool) * ITEMS_PER_THREAD;
    if (items > j.pairs)
        items = j.pairs;
    double macs = 2.0 * (double)j.pairs * len * len * head_dim;
    if (items <= 1 || macs < MIN_PARALLEL_MACS) {
        /* Inline on the calling thread, which is index size - 1 (see pool.h). */
        attend_pairs(&j, 0, j.pairs, insp_pool_size(pool) - 1);
        return;
    }
    insp_pool_run(pool, attention_item, &j, (int)items);
}
