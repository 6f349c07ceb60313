/* The report's examples: what an engineer checks before trusting a threshold — the normals
 * that score highest and the anomalies that score lowest, with their maps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/eval_run.h"

int eval_thumbs_init(eval_thumbs *t, int n)
{
    memset(t, 0, sizeof *t);
    t->map = calloc((size_t)n, sizeof *t->map);
    t->w = calloc((size_t)n, sizeof *t->w);
    t->h = calloc((size_t)n, sizeof *t->h);
    t->n = n;
    if (!t->map || !t->w || !t->h) {
        eval_thumbs_free(t);
        return INSP_ERR_NOMEM;
    }
    return INSP_OK;
}

void eval_thumbs_free(eval_thumbs *t)
{
    if (!t)
        return;
    for (int i = 0; t->map && i < t->n; i++)
        free(t->map[i]);
    free(t->map);
    free(t->w);
    free(t->h);
    memset(t, 0, sizeof *t);
}

int eval_thumb_add(eval_thumbs *t, int i, const float *model, int S, int img_w, int img_h,
                   insp_error *err)
{
    int side = img_w > img_h ? img_w : img_h;
    int tw = img_w, th = img_h;
    if (side > EVAL_THUMB_SIDE) {
        tw = (int)lround((double)img_w * EVAL_THUMB_SIDE / side);
        th = (int)lround((double)img_h * EVAL_THUMB_SIDE / side);
        tw = tw < 1 ? 1 : tw;
        th = th < 1 ? 1 : th;
    }
    free(t->map[i]);
    t->map[i] = malloc((size_t)tw * th * sizeof *t->map[i]);
    if (!t->map[i])
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    insp_map_resize_bilinear(model, S, S, t->map[i], tw, th);
    t->w[i] = tw;
    t->h[i] = th;
    return INSP_OK;
}

/* Up to k test indices of the given label, by first-seed score: highest first (want_high) or
 * lowest first. Ties keep the dataset order. */
static int pick_indices(const eval_category *c, const float *score, int label, bool want_high, int k,
                  int *out)
{
    int n = 0;
    bool *used = calloc((size_t)c->n_test, sizeof *used);
    if (!used)
        return -1;
    while (n < k) {
        int best = -1;
        for (int i = 0; i < c->n_test; i++) {
            if (used[i] || c->test[i].label != label)
                continue;
            if (best < 0 || (want_high ? score[i] > score[best] : score[i] < score[best]))
                best = i;
        }
        if (best < 0)
            break;
        used[best] = true;
        out[n++] = best;
    }
    free(used);
    return n;
}

static int render(const eval_category *c, const eval_thumbs *t, const float *score, int idx,
                  float lo, float hi, eval_example *ex, insp_error *err)
{
    const eval_sample *smp = &c->test[idx];
    int tw = t->w[idx], th = t->h[idx];
    uint8_t *mask = NULL;
    ex->index = idx;
    ex->score = score[idx];
    if (smp->mask) {
        uint8_t *full;
        int mw, mh;
        int st = eval_load_mask(smp->mask, &full, &mw, &mh, err);
        if (st)
            return st;
        mask = malloc((size_t)tw * th);
        if (mask)
            eval_mask_resize(full, mw, mh, mask, tw, th);
        free(full);
        if (!mask)
            return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    }
    int st = eval_overlay_b64(smp->path, t->map[idx], mask, tw, th, lo, hi, &ex->jpeg_b64, err);
    free(mask);
    return st;
}

int eval_pick_examples(const eval_settings *s, const eval_category *c, eval_cat_result *res,
                       const eval_thumbs *t, insp_error *err)
{
    // One colour scale for the whole category, so that two overlays compare.
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < t->n; i++) {
        long n = t->map[i] ? (long)t->w[i] * t->h[i] : 0;
        for (long p = 0; p < n; p++) {
            lo = fminf(lo, t->map[i][p]);
            hi = fmaxf(hi, t->map[i][p]);
        }
    }
    if (!(lo <= hi))
        lo = 0, hi = 1;
    res->map_lo = lo;
    res->map_hi = hi;
    int k = s->examples;
    if (k <= 0)
        return INSP_OK;
    int *idx = malloc((size_t)k * sizeof *idx);
    res->normals = calloc((size_t)k, sizeof *res->normals);
    res->anomalies = calloc((size_t)k, sizeof *res->anomalies);
    if (!idx || !res->normals || !res->anomalies) {
        free(idx);
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    }
    const float *score = res->scores[0];
    int st = INSP_OK;
    int n = pick_indices(c, score, 0, true, k, idx);
    for (int j = 0; !st && j < n; j++) {
        st = render(c, t, score, idx[j], lo, hi, &res->normals[j], err);
        if (!st)
            res->n_normals++;
    }
    n = st ? 0 : pick_indices(c, score, 1, false, k, idx);
    for (int j = 0; !st && j < n; j++) {
        st = render(c, t, score, idx[j], lo, hi, &res->anomalies[j], err);
        if (!st)
            res->n_anomalies++;
    }
    free(idx);
    return st;
}
