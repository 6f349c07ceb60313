/* The paper's metrics — AUROC, average precision, F1-max and AUPRO — computed exactly (every
 * distinct score is a threshold) so that they equal scikit-learn's and the MVTec AD
 * evaluation code's numbers, on millions of pixels: one radix sort, one sweep. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/eval.h"

void eval_curve_free(eval_curve *c)
{
    if (!c)
        return;
    free(c->x);
    free(c->y);
    memset(c, 0, sizeof *c);
}

/* Maps a float to an unsigned key with the same order; -0 and +0 share a key so that equal
 * scores always fall in one threshold group. */
static uint32_t sort_key(float f)
{
    if (f == 0.0f)
        f = 0.0f;
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

static float key_value(uint32_t k)
{
    uint32_t b = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Sorts (key << 32 | tag) ascending by key: LSD radix over the key's 4 bytes. */
static int sort_pairs(uint64_t *a, long n)
{
    uint64_t *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp)
        return INSP_ERR_NOMEM;
    uint64_t *src = a, *dst = tmp;
    for (int pass = 0; pass < 4; pass++) {
        int shift = 32 + 8 * pass;
        long count[257] = {0};
        for (long i = 0; i < n; i++)
            count[((src[i] >> shift) & 0xff) + 1]++;
        if (count[((src[0] >> shift) & 0xff) + 1] == n)
            continue; // every key has the same byte here: nothing to move
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (long i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof *a);
    free(tmp);
    return INSP_OK;
}

/* Collects curve points, dropping those closer than EVAL_CURVE_STEP to the last one kept. */
typedef struct curve_builder {
    eval_curve *c;
    long cap;
    double px, py; /* the latest point offered */
    bool pending;  /* the latest point was not kept */
    int status;
} curve_builder;

static void curve_push(curve_builder *b, double x, double y)
{
    eval_curve *c = b->c;
    if (c->n == b->cap) {
        long cap = b->cap ? 2 * b->cap : 256;
        double *nx = realloc(c->x, (size_t)cap * sizeof *nx);
        if (nx)
            c->x = nx;
        double *ny = realloc(c->y, (size_t)cap * sizeof *ny);
        if (ny)
            c->y = ny;
        if (!nx || !ny) {
            b->status = INSP_ERR_NOMEM;
            return;
        }
        b->cap = cap;
    }
    c->x[c->n] = x;
    c->y[c->n] = y;
    c->n++;
}

static void curve_offer(curve_builder *b, double x, double y)
{
    if (!b->c || b->status)
        return;
    b->px = x;
    b->py = y;
    b->pending = true;
    long n = b->c->n;
    if (n == 0 || fabs(x - b->c->x[n - 1]) + fabs(y - b->c->y[n - 1]) >= EVAL_CURVE_STEP) {
        curve_push(b, x, y);
        b->pending = false;
    }
}

static int curve_finish(curve_builder *b)
{
    if (!b->c)
        return INSP_OK;
    if (!b->status && b->pending)
        curve_push(b, b->px, b->py);
    if (b->status)
        eval_curve_free(b->c);
    return b->status;
}

static curve_builder curve_start(eval_curve *c)
{
    curve_builder b = {c, 0, 0, 0, false, INSP_OK};
    if (c)
        memset(c, 0, sizeof *c);
    return b;
}

/* Packs scores with their tags; NaN is refused (it has no place in a ranking). */
static int pack(const float *score, long n, uint64_t **out, insp_error *err)
{
    *out = NULL;
    if (n < 1)
        return insp_error_set(err, INSP_ERR_INVALID, "no samples to evaluate");
    if (n > (1L << 31))
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "%ld samples: at most 2^31 are supported",
                              n);
    for (long i = 0; i < n; i++)
        if (isnan(score[i]))
            return insp_error_set(err, INSP_ERR_INVALID, "score %ld is NaN", i);
    uint64_t *a = malloc((size_t)n * sizeof *a);
    if (!a)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory for %ld samples", n);
    for (long i = 0; i < n; i++)
        a[i] = (uint64_t)sort_key(score[i]) << 32;
    *out = a;
    return INSP_OK;
}

int eval_binary_metrics(const float *score, const uint8_t *label, long n, eval_binary *out,
                        eval_curve *roc, eval_curve *pr, insp_error *err)
{
    memset(out, 0, sizeof *out);
    if (roc)
        memset(roc, 0, sizeof *roc);
    if (pr)
        memset(pr, 0, sizeof *pr);
    uint64_t *a;
    int st = pack(score, n, &a, err);
    if (st)
        return st;
    long P = 0;
    for (long i = 0; i < n; i++) {
        if (label[i] > 1) {
            free(a);
            return insp_error_set(err, INSP_ERR_INVALID, "label %ld is %d: labels are 0 or 1", i,
                                  label[i]);
        }
        a[i] |= label[i];
        P += label[i];
    }
    long N = n - P;
    if (P == 0 || N == 0) {
        free(a);
        return insp_error_set(err, INSP_ERR_INVALID,
                              "only one class present: all %ld samples are %s, so AUROC, AP and "
                              "F1-max are undefined",
                              n, P ? "anomalous" : "normal");
    }
    if (sort_pairs(a, n)) {
        free(a);
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory sorting %ld samples", n);
    }
    curve_builder rb = curve_start(roc), pb = curve_start(pr);
    curve_offer(&rb, 0.0, 0.0);
    // The ROC area in units of 1/(2·P·N) is an integer: Σ over groups of fp_g·(2·tp_before +
    // tp_g); exact for n ≤ 2^31 (2·P·N < 2^63).
    uint64_t auc2 = 0, tp = 0, fp = 0;
    double ap = 0, f1best = -1;
    float thr = 0;
    for (long i = n - 1; i >= 0;) { // descending scores, one group per distinct value
        uint32_t k = (uint32_t)(a[i] >> 32);
        uint64_t gtp = 0, gfp = 0;
        for (; i >= 0 && (uint32_t)(a[i] >> 32) == k; i--) {
            if (a[i] & 1)
                gtp++;
            else
                gfp++;
        }
        auc2 += gfp * (2 * tp + gtp);
        tp += gtp;
        fp += gfp;
        double precision = (double)tp / (double)(tp + fp);
        ap += (double)gtp / (double)P * precision;
        double f1 = 2.0 * (double)tp / (double)((uint64_t)P + tp + fp);
        if (f1 > f1best) {
            f1best = f1;
            thr = key_value(k);
        }
        curve_offer(&rb, (double)fp / (double)N, (double)tp / (double)P);
        curve_offer(&pb, (double)tp / (double)P, precision);
    }
    free(a);
    out->auroc = (double)auc2 / (2.0 * (double)P * (double)N);
    out->ap = ap;
    out->f1max = f1best;
    out->f1_threshold = thr;
    out->n = n;
    out->n_pos = P;
    st = curve_finish(&rb);
    if (!st)
        st = curve_finish(&pb);
    if (st) {
        eval_curve_free(roc);
        eval_curve_free(pr);
        return insp_error_set(err, st, "out of memory for the curves");
    }
    return INSP_OK;
}

int eval_pixel_metrics(const float *score, const int32_t *region, long n, int n_regions,
                       eval_pixel *out, eval_curve *roc, eval_curve *pro, insp_error *err)
{
    memset(out, 0, sizeof *out);
    if (roc)
        memset(roc, 0, sizeof *roc);
    if (pro)
        memset(pro, 0, sizeof *pro);
    if (n_regions < 1)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "no anomalous region in the masks: pixel metrics are undefined");
    long *size = calloc((size_t)n_regions + 1, sizeof *size);
    if (!size)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory for %d regions", n_regions);
    for (long i = 0; i < n; i++) {
        if (region[i] < 0 || region[i] > n_regions) {
            free(size);
            return insp_error_set(err, INSP_ERR_INVALID, "pixel %ld has region %d, not in 0..%d",
                                  i, region[i], n_regions);
        }
        size[region[i]]++;
    }
    long N = size[0], P = n - N;
    for (int r = 1; r <= n_regions; r++) {
        if (size[r] == 0) {
            free(size);
            return insp_error_set(err, INSP_ERR_INVALID, "region %d has no pixel", r);
        }
    }
    if (N == 0) {
        free(size);
        return insp_error_set(err, INSP_ERR_INVALID,
                              "only one class present: all %ld pixels are anomalous, so pixel "
                              "metrics are undefined",
                              n);
    }
    // Each pixel of region r adds 1/(R·|r|) to PRO when the threshold passes it.
    double *inc = malloc(((size_t)n_regions + 1) * sizeof *inc);
    uint64_t *a = NULL;
    int st = inc ? pack(score, n, &a, err)
                 : insp_error_set(err, INSP_ERR_NOMEM, "out of memory for %d regions", n_regions);
    if (st) {
        free(size);
        free(inc);
        return st;
    }
    inc[0] = 0;
    for (int r = 1; r <= n_regions; r++)
        inc[r] = 1.0 / ((double)n_regions * (double)size[r]);
    free(size);
    for (long i = 0; i < n; i++)
        a[i] |= (uint32_t)region[i];
    if (sort_pairs(a, n)) {
        free(a);
        free(inc);
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory sorting %ld pixels", n);
    }

    const double limit = EVAL_PRO_FPR_LIMIT;
    curve_builder rb = curve_start(roc), qb = curve_start(pro);
    curve_offer(&rb, 0.0, 0.0);
    curve_offer(&qb, 0.0, 0.0);
    uint64_t auc2 = 0, tp = 0, fp = 0;
    double f1best = -1, pro_sum = 0, area = 0, last_fpr = 0, last_pro = 0;
    bool integrating = true;
    float thr = 0;
    for (long i = n - 1; i >= 0;) {
        uint32_t k = (uint32_t)(a[i] >> 32);
        uint64_t gtp = 0, gfp = 0;
        for (; i >= 0 && (uint32_t)(a[i] >> 32) == k; i--) {
            uint32_t r = (uint32_t)a[i];
            if (r) {
                gtp++;
                pro_sum += inc[r];
            } else {
                gfp++;
            }
        }
        auc2 += gfp * (2 * tp + gtp);
        tp += gtp;
        fp += gfp;
        double f1 = 2.0 * (double)tp / (double)((uint64_t)P + tp + fp);
        if (f1 > f1best) {
            f1best = f1;
            thr = key_value(k);
        }
        double fpr = (double)fp / (double)N;
        curve_offer(&rb, fpr, (double)tp / (double)P);
        if (integrating) {
            // Trapezoids along (FPR, PRO); the segment that crosses the limit is cut there,
            // with PRO interpolated linearly.
            if (fpr <= limit) {
                area += (fpr - last_fpr) * (pro_sum + last_pro) / 2;
                curve_offer(&qb, fpr, pro_sum);
            } else {
                double y = last_pro + (pro_sum - last_pro) * (limit - last_fpr) / (fpr - last_fpr);
                area += (limit - last_fpr) * (y + last_pro) / 2;
                curve_offer(&qb, limit, y);
                integrating = false;
            }
            last_fpr = fpr;
            last_pro = pro_sum;
        }
    }
    free(a);
    free(inc);
    out->auroc = (double)auc2 / (2.0 * (double)P * (double)N);
    out->aupro = area / limit;
    out->f1max = f1best;
    out->f1_threshold = thr;
    out->n = n;
    out->n_pos = P;
    out->n_regions = n_regions;
    st = curve_finish(&rb);
    if (!st)
        st = curve_finish(&qb);
    if (st) {
        eval_curve_free(roc);
        eval_curve_free(pro);
        return insp_error_set(err, st, "out of memory for the curves");
    }
    return INSP_OK;
}
