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
        // Under the causal mask nothing after a row's EOT reaches its EOT token, so a prompt
        // only needs the positions up to its own EOT. Take prompts while the pass, at the
        // longest length among them, still fits the workspace.
        int count = 0, longest = 1;
        while (first + count < n) {
            const int32_t *row = ids + (long)(first + count) * ctx;
            int need = ws->text_full_length ? ctx : eot_position(row, ctx) + 1;
            int l = need > longest ? need : longest;
            if (count > 0 && (long)(count + 1) * l > ws->cap)
                break;
            ws->keep[count] = need; // lengths for now; the EOT rows below
            longest = l;
            count++;
        }
        // Sort the pass's prompts by length (stable insertion sort: a pass holds at most
        // cap/2 prompts) and run them as groups of equal length, so that each one runs close
        // to its own length rather than the pass's longest. With more lengths than groups,
        // the last group runs at the longest.
        int32_t *order = ws->order; // [count] prompt (relative to first) of each sorted slot
        for (int i = 0; i < count; i++) {
            int v = i, k = i;
            for (; k > 0 && ws->keep[order[k - 1]] > ws->keep[v]; k--)
                order[k] = order[k - 1];
            order[k] = v;
        }
        int n_groups = 0;
        for (int i = 0; i < count; i++) {
            int need = ws->keep[order[i]];
            if (n_groups > 0 && ws->groups[n_groups - 1].len == need)
                ws->groups[n_groups - 1].n_seq++;
            else if (n_groups < INSP_WS_MAX_GROUPS)
                ws->groups[n_groups++] = (insp_seq_group){1, need};
            else { // ascending order: the last group grows to this length
                ws->groups[n_groups - 1].n_seq++;
                ws->groups[n_groups - 1].len = need;
            }
        }
        long row = 0;
        for (int g = 0, i = 0; g < n_groups; g++)
            for (int k = 0; k < ws->groups[g].n_seq; k++, i++) {
                const int32_t *ids_i = ids + (long)(first + order[i]) * ctx;
                embed(clip, ids_i, ws->groups[g].len, ws->x + row * W);
                ws->keep[i] = (int32_t)(row + eot_position(ids_i, ctx));
                row += ws->groups[g].len;
            }
        int rc = insp_encoder_forward(&enc, ws, pool, n_groups, ws->groups, ws->keep, count);
        if (rc != INSP_OK)
            return rc;
        insp_layernorm(pool, count, W, ws->x, clip->ln_final_w, clip->ln_final_b, LN_EPS, ws->h);
        // [count, Wt] x [Wt, D] -> [count, D] in sorted order (the MLP buffer is free now),
        // then each row to its prompt's place.
        insp_gemm(pool, count, D, W, ws->h, W, clip->tproj, D, NULL, ws->mlp, D);
        for (int i = 0; i < count; i++)
            memcpy(out + (long)(first + order[i]) * D, ws->mlp + (long)i * D,
                   (size_t)D * sizeof *out);
        first += count;
    }
    return INSP_OK;
}
