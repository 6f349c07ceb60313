/* WinCLIP and WinCLIP+ scoring of one image's features: language-guided window scores
 * harmonically aggregated to a zero-shot map, plus, with references, association to the
 * memory as chunked GEMMs (METHODS.md §3–4).
 *
 * Checked against the fixtures (anomalib's WinClipModel), the arithmetic is exactly the one
 * METHODS.md states, in this order:
 *   M0 = (n+1) / (1/s_img + Σ_k 1/M_k), each M_k a harmonic mean of window scores per patch;
 *   V  = (A_patch + Σ_k H_k(A_windows_k)) / (n+1), association per window first, harmonic
 *        aggregation of those values second;
 *   map = (M0 + V)/2, score = (s_img + max V)/2.
 * A sum of reciprocals that hits +inf (a zero score) gives 0, as in anomalib. The only
 * deliberate difference: association values are clamped to [0, 1], where rounding can put a
 * cosine a few ulps above 1 (anomalib would then see a tiny negative A). */
#include <math.h>
#include <stdlib.h>

#include "inspectd/ops.h"
#include "winclip/winclip_impl.h"

/* Most memory rows one association GEMM covers: bounds the cosine scratch at
 * G²·CHUNK_ROWS floats (4.5 MiB at G = 24) however many shots the memory holds. */
#define CHUNK_ROWS 2048

struct insp_score_ws {
    const insp_winclip *wc;
    int max_q;      /* most query rows of one association: G·G (no scale has more windows) */
    int max_dim;    /* max(W, D) */
    float *tnorm;   // [2, D]             normalized text embeddings
    float *qnorm;   // [max_q, max_dim]   normalized query rows
    float *best;    // [max_q]            running max cosine per query row
    float *vals;    // [max_q]            per-window or per-patch values of one table
    float *agg;     // [G·G]              one scale aggregated to patches
    float *m0;      // [G·G]              zero-shot map
    float *v;       // [G·G]              few-shot map
    float *cos;     // [max_q, chunk]     cosines against one chunk of memory rows
    long chunk;     /* memory rows cos has room for */
    long chunk_max; /* CHUNK_ROWS, lowered by tests to exercise chunk boundaries */
};

int insp_score_ws_create(const insp_winclip *wc, insp_score_ws **out)
{
    if (!out)
        return INSP_ERR_INVALID;
    *out = NULL;
    if (!wc)
        return INSP_ERR_INVALID;
    insp_score_ws *sws = calloc(1, sizeof *sws);
    if (!sws)
        return INSP_ERR_NOMEM;
    size_t G2 = (size_t)wc->grid * (size_t)wc->grid;
    sws->wc = wc;
    sws->max_q = (int)G2;
    sws->max_dim = wc->width > wc->dim ? wc->width : wc->dim;
    sws->chunk_max = CHUNK_ROWS;
    sws->tnorm = malloc(2 * (size_t)wc->dim * sizeof(float));
    sws->qnorm = malloc(G2 * (size_t)sws->max_dim * sizeof(float));
    sws->best = malloc(G2 * sizeof(float));
    sws->vals = malloc(G2 * sizeof(float));
    sws->agg = malloc(G2 * sizeof(float));
    sws->m0 = malloc(G2 * sizeof(float));
    sws->v = malloc(G2 * sizeof(float));
    if (!sws->tnorm || !sws->qnorm || !sws->best || !sws->vals || !sws->agg || !sws->m0 ||
        !sws->v) {
        insp_score_ws_free(sws);
        return INSP_ERR_NOMEM;
    }
    *out = sws;
    return INSP_OK;
}

void insp_score_ws_free(insp_score_ws *sws)
{
    if (!sws)
        return;
    free(sws->tnorm);
    free(sws->qnorm);
    free(sws->best);
    free(sws->vals);
    free(sws->agg);
    free(sws->m0);
    free(sws->v);
    free(sws->cos);
    free(sws);
}

void insp_score_ws_set_chunk(insp_score_ws *sws, long rows)
{
    if (!sws || rows < 1)
        return;
    sws->chunk_max = rows;
    free(sws->cos);
    sws->cos = NULL;
    sws->chunk = 0;
}

/* Room for the cosines against min(chunk_max, rows) memory rows at a time. */
static int reserve_chunk(insp_score_ws *sws, long rows)
{
    long want = rows < sws->chunk_max ? rows : sws->chunk_max;
    if (want <= sws->chunk)
        return INSP_OK;
    float *p = realloc(sws->cos, (size_t)sws->max_q * (size_t)want * sizeof *p);
    if (!p)
        return INSP_ERR_NOMEM;
    sws->cos = p;
    sws->chunk = want;
    return INSP_OK;
}

/* softmax([cos(e,t_n), cos(e,t_a)] / T)[1] = 1 / (1 + exp((cos_n - cos_a) / T)); tn holds the
 * two normalized text rows. */
static float text_score(const float *e, const float *tn, int D)
{
    double ss = 0, dn = 0, da = 0;
    for (int d = 0; d < D; d++) {
        ss += (double)e[d] * e[d];
        dn += (double)e[d] * tn[d];
        da += (double)e[d] * tn[D + d];
    }
    double norm = sqrt(ss);
    if (norm < 1e-12)
        norm = 1e-12;
    double logit = (dn - da) / norm / (double)INSP_TEMPERATURE;
    return (float)(1.0 / (1.0 + exp(logit)));
}

/* out[i] = A(q_i) = (1 - max_r cos(q_i, r)) / 2 over memory rows [0, rows) except
 * [skip_lo, skip_hi): q [nq, dim] raw, mem [rows, dim] normalized. */
static void associate(insp_score_ws *sws, insp_pool *pool, const float *q, int nq, int dim,
                      const float *mem, long rows, long skip_lo, long skip_hi, float *out)
{
    float *qn = sws->qnorm, *best = sws->best, *cos = sws->cos;
    insp_normalize_rows(q, nq, dim, qn);
    for (int i = 0; i < nq; i++)
        best[i] = -INFINITY;
    const long ranges[2][2] = {{0, skip_lo}, {skip_hi, rows}};
    for (int r = 0; r < 2; r++)
        for (long c = ranges[r][0]; c < ranges[r][1]; c += sws->chunk) {
            long left = ranges[r][1] - c;
            int m = (int)(left < sws->chunk ? left : sws->chunk);
            // [nq, dim] x [m, dim]^T -> [nq, m] cosines
            insp_gemm_bt(pool, nq, m, dim, qn, dim, mem + c * dim, dim, NULL, cos, m);
            for (int i = 0; i < nq; i++) {
                const float *row = cos + (long)i * m;
                float b = best[i];
                for (int j = 0; j < m; j++)
                    if (row[j] > b)
                        b = row[j];
                best[i] = b;
            }
        }
    for (int i = 0; i < nq; i++) {
        float a = (1.0f - best[i]) / 2.0f;
        out[i] = a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a;
    }
}

int insp_score_query(const insp_winclip *wc, insp_score_ws *sws, insp_pool *pool,
                     const float *t, const insp_memory *mem, int skip, const insp_query *q,
                     float *grid_map, insp_score *out)
{
    if (!wc || !sws || sws->wc->grid != wc->grid || sws->wc->width != wc->width ||
        sws->wc->dim != wc->dim || !t || !q || !out || !q->image_embed || !q->patch_tokens)
        return INSP_ERR_INVALID;
    for (int s = 0; s < wc->n_scales; s++)
        if (!q->windows[s])
            return INSP_ERR_INVALID;
    const int G2 = wc->grid * wc->grid, D = wc->dim, W = wc->width, n = wc->n_scales;
    int shots = 0;
    if (mem) {
        const insp_winclip *mwc = mem->wc;
        if (mwc->grid != wc->grid || mwc->width != W || mwc->dim != D || mwc->n_scales != n)
            return INSP_ERR_INVALID;
        for (int s = 0; s < n; s++)
            if (mwc->windows[s].k != wc->windows[s].k)
                return INSP_ERR_INVALID;
        shots = mem->count - (skip >= 0 && skip < mem->count ? 1 : 0);
    }
    float *m0 = sws->m0, *v = sws->v, *vals = sws->vals, *agg = sws->agg;

    insp_normalize_rows(t, 2, D, sws->tnorm);
    float s_img = text_score(q->image_embed, sws->tnorm, D);
    // m0 holds Σ 1/M over the image scale and the window scales until the last step.
    for (int p = 0; p < G2; p++)
        m0[p] = 1.0f / s_img;
    for (int s = 0; s < n; s++) {
        const insp_windows *win = &wc->windows[s];
        for (int w = 0; w < win->n; w++)
            vals[w] = text_score(q->windows[s] + (long)w * D, sws->tnorm, D);
        insp_harmonic_aggregate(win, vals, agg);
        for (int p = 0; p < G2; p++)
            m0[p] += 1.0f / agg[p];
    }
    for (int p = 0; p < G2; p++)
        m0[p] = (float)(n + 1) / m0[p];

    if (shots <= 0) {
        if (grid_map)
            for (int p = 0; p < G2; p++)
                grid_map[p] = m0[p];
        *out = (insp_score){.score = s_img, .zero_shot = s_img, .few_shot_max = 0.0f,
                            .few_shot = false};
        return INSP_OK;
    }

    long skip_lo = skip >= 0 && skip < mem->count ? skip : mem->count;
    int st = reserve_chunk(sws, (long)mem->count * G2);
    if (st != INSP_OK)
        return st;
    associate(sws, pool, q->patch_tokens, G2, W, mem->patches, (long)mem->count * G2,
              skip_lo * G2, (skip_lo + 1) * G2, v);
    for (int s = 0; s < n; s++) {
        const insp_windows *win = &wc->windows[s];
        long nw = win->n;
        associate(sws, pool, q->windows[s], win->n, D, mem->windows[s], mem->count * nw,
                  skip_lo * nw, (skip_lo + 1) * nw, vals);
        insp_harmonic_aggregate(win, vals, agg);
        for (int p = 0; p < G2; p++)
            v[p] += agg[p];
    }
    float vmax = -INFINITY;
    for (int p = 0; p < G2; p++) {
        v[p] /= (float)(n + 1);
        if (v[p] > vmax)
            vmax = v[p];
    }
    if (grid_map)
        for (int p = 0; p < G2; p++)
            grid_map[p] = (m0[p] + v[p]) / 2.0f;
    *out = (insp_score){.score = (s_img + vmax) / 2.0f, .zero_shot = s_img,
                        .few_shot_max = vmax, .few_shot = true};
    return INSP_OK;
}

int insp_winclip_score(const insp_winclip *wc, insp_score_ws *sws, insp_pool *pool,
                       const float *t, const insp_memory *mem, const insp_features *f,
                       float *grid_map, insp_score *out)
{
    if (!wc || !f || f->grid != wc->grid || f->width != wc->width || f->dim != wc->dim ||
        f->n_scales != wc->n_scales)
        return INSP_ERR_INVALID;
    insp_query q = {.image_embed = f->image_embed, .patch_tokens = f->patch_tokens};
    for (int s = 0; s < wc->n_scales; s++)
        q.windows[s] = f->windows[s];
    return insp_score_query(wc, sws, pool, t, mem, -1, &q, grid_map, out);
}
