/* The CLIP text tower: prompt batches of token ids to embeddings taken at each EOT. */
#include <string.h>

#include "clip/encoder.h"
#include "inspectd/ops.h"

#define LN_EPS 1e-5f

/* Position of the row's EOT: its largest id, first occurrence. */
static int eot_position(const int32_t *row, int ctx)
{
    int best = 0;
    for (int t = 1; t < ctx; t++)
        if (row[t] > row[best])
            best = t;
    return best;
}

/* x[s·len + t] = token_embedding[ids[t]] + positional_embedding[t] for t < len. */
static void embed(const insp_clip *clip, const int32_t *ids, int len, float *x)
{
    const int W = clip->cfg.text.width;
    for (int t = 0; t < len; t++) {
        const float *tok = clip->tok_emb + (long)ids[t] * W, *pos = clip->tpos_emb + (long)t * W;
        float *dst = x + (long)t * W;
        for (int c = 0; c < W; c++)
            dst[c] = tok[c] + pos[c];
    }
}

int insp_clip_encode_text(const insp_clip *clip, insp_clip_ws *ws, insp_pool *pool, int n,
                          const int32_t *ids, float *out)
{
    if (!clip || !ws || n < 0 || (n > 0 && (!ids || !out)) || !insp_clip_ws_fits(ws, clip))
        return INSP_ERR_INVALID;
    const insp_clip_config *cfg = &clip->cfg;
    const int ctx = cfg->text.context_length, W = cfg->text.width, D = cfg->embed_dim;
    for (long i = 0; i < (long)n * ctx; i++)
        if (ids[i] < 0 || ids[i] >= cfg->text.vocab_size)
            return INSP_ERR_INVALID;

    const insp_encoder enc = {
        .blocks = clip->tblocks,
        .layers = cfg->text.layers,
        .width = W,
        .heads = cfg->text.heads,
        .mlp_width = cfg->text.mlp_width,
        .quick_gelu = cfg->quick_gelu,
        .causal = true,
    };
    int first = 0;
    while (first < n) {
        // Under the causal mask nothing after a row's EOT reaches its EOT token, so a pass only
        // runs the positions up to the latest EOT among its prompts. Add prompts while the
        // pass, at that length, still fits the workspace.
        int count = 0, len = 1;
        while (first + count < n) {
            const int32_t *row = ids + (long)(first + count) * ctx;
            int need = ws->text_full_length ? ctx : eot_position(row, ctx) + 1;
            if (need < len)
                need = len;
            if (count > 0 && (long)(count + 1) * need > ws->cap)
                break;
            len = need;
            count++;
        }

        for (int i = 0; i < count; i++) {
            const int32_t *row = ids + (long)(first + i) * ctx;
            embed(clip, row, len, ws->x + (long)i * len * W);
            ws->keep[i] = i * len + eot_position(row, ctx);
        }
        insp_seq_group group = {count, len};
        int rc = insp_encoder_forward(&enc, ws, pool, 1, &group, ws->keep, count);
        if (rc != INSP_OK)
            return rc;
        insp_layernorm(pool, count, W, ws->x, clip->ln_final_w, clip->ln_final_b, LN_EPS, ws->h);
        // [count, Wt] x [Wt, D] -> [count, D]
        insp_gemm(pool, count, D, W, ws->h, W, clip->tproj, D, NULL, out + (long)first * D, D);
        first += count;
    }
    return INSP_OK;
}
