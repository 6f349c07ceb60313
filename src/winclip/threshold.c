/* Leave-one-out scoring of the reference shots, and the rule that turns those scores into a
 * suggested decision threshold.
 *
 * The rule: threshold = min(1, max(mean + 3·sd, max + 0.01)) over the n LOO scores, sd the
 * sample standard deviation (n - 1 in the denominator; 0 when n = 1).
 * Why:
 * - Each LOO score is how a normal image scores against a memory that has never seen it — the
 *   situation of a new good part — so the scores are a sample of the normal score
 *   distribution. They lean high (K-1 shots cover less normal variation than the K of the
 *   real memory), which errs towards fewer false alarms.
 * - 2–16 scores cannot estimate a high percentile, and max alone would be exceeded by about
 *   1 in n+1 new normal images. mean + 3·sd is the classic control-chart upper limit from a
 *   small baseline sample: for roughly normal scatter it lets through ~0.1% of good parts,
 *   and it widens automatically when the shots disagree.
 * - The floor max + 0.01 keeps the threshold above every known-good shot and gives a margin
 *   when the scores (nearly) coincide and sd says nothing; 0.01 is one point on the [0, 1]
 *   score scale, well above the numerical noise (~1e-6) and below typical normal/defect gaps.
 * - The cap at 1 keeps it on the score scale. */
#include <math.h>

#include "winclip/winclip_impl.h"

float insp_threshold_suggest(const float *scores, int n)
{
    if (!scores || n < 1)
        return NAN;
    double sum = 0, max = scores[0];
    for (int i = 0; i < n; i++) {
        sum += scores[i];
        if (scores[i] > max)
            max = scores[i];
    }
    double mean = sum / n, ss = 0;
    for (int i = 0; i < n; i++)
        ss += (scores[i] - mean) * (scores[i] - mean);
    double sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
    double th = mean + INSP_THRESHOLD_SIGMAS * sd;
    if (th < max + INSP_THRESHOLD_MIN_MARGIN)
        th = max + INSP_THRESHOLD_MIN_MARGIN;
    return (float)(th < 1.0 ? th : 1.0);
}

int insp_memory_loo_scores(const insp_winclip *wc, insp_score_ws *sws, insp_pool *pool,
                           const float *t, const insp_memory *mem, float *scores,
                           float *suggested)
{
    if (!wc || !sws || !t || !mem || !scores)
        return INSP_ERR_INVALID;
    if (mem->count < 2)
        return INSP_ERR_INVALID;
    const long G2 = (long)wc->grid * wc->grid;
    for (int i = 0; i < mem->count; i++) {
        // The shot's own rows stand in for its features: they are normalized, which neither
        // the cosines to the text nor the association can tell apart.
        insp_query q = {
            .image_embed = mem->image_embed + (long)i * wc->dim,
            .patch_tokens = mem->patches + i * G2 * wc->width,
        };
        for (int s = 0; s < wc->n_scales; s++)
            q.windows[s] = mem->windows[s] + (long)i * wc->windows[s].n * wc->dim;
        insp_score sc;
        int st = insp_score_query(wc, sws, pool, t, mem, i, &q, NULL, &sc);
        if (st != INSP_OK)
            return st;
        scores[i] = sc.score;
    }
    if (suggested)
        *suggested = insp_threshold_suggest(scores, mem->count);
    return INSP_OK;
}
