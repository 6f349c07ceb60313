/* Multi-head self-attention over a batch of equal-length sequences: thousands of tiny
 * window sequences (5 or 10 tokens) as well as a few long ones (up to ~600 tokens). */
#include "inspectd/ops.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* Up to this length a (sequence, head) pair is done with plain loops: an sgemm call's fixed
 * cost (argument checks, packing) outweighs a 10x10x64 product many times over. */
#define SMALL_LEN 32
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
        softmax_span(s, n_keys);
        /* Masked keys get weight 0, which is exactly what exp(-inf) would give. */
        for (int t = n_keys; t < len; t++)
            s[t] = 0.0f;
    }
    // [len, len] x [len, hd] -> o [len, hd] (row stride ldo)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hd, len, 1.0f, S, len, v, ld,
                0.0f, o, ldo);
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
