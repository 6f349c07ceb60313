/* The shared pre-norm residual transformer: one code path for the full image, batched windows
 * and prompt batches, so that every tower runs the same arithmetic. */
#include <string.h>

#include "clip/encoder.h"
#include "inspectd/ops.h"

#define LN_EPS 1e-5f

int insp_encoder_forward(const insp_encoder *enc, insp_clip_ws *ws, insp_pool *pool, int n_groups,
                         const insp_seq_group *groups, const int32_t *keep, int n_keep)
{
    const int W = enc->width, M = enc->mlp_width, hd = enc->width / enc->heads;
    long total = 0;
    int max_len = 1;
    for (int g = 0; g < n_groups; g++) {
        total += (long)groups[g].n_seq * groups[g].len;
        if (groups[g].len > max_len)
            max_len = groups[g].len;
    }
    if (total > ws->cap || W > ws->width || M > ws->mlp_width || (keep && n_keep > total))
        return INSP_ERR_INTERNAL;
    for (int i = 0; keep && i < n_keep; i++)
        if (keep[i] < 0 || keep[i] >= total)
            return INSP_ERR_INTERNAL;
    const int T = (int)total;
    float *scratch = insp_clip_ws_attn_scratch(ws, pool, max_len);
    if (!scratch)
        return INSP_ERR_NOMEM;

    float *x = ws->x, *h = ws->h, *qkv = ws->qkv, *attn = ws->attn, *mlp = ws->mlp;
    for (int l = 0; l < enc->layers; l++) {
        const insp_block *b = &enc->blocks[l];
        insp_layernorm(pool, T, W, x, b->ln_1_w, b->ln_1_b, LN_EPS, h);
        // [T, W] x [3W, W]^T -> [T, 3W]
        insp_gemm_bt(pool, T, 3 * W, W, h, W, b->in_proj_w, W, b->in_proj_b, qkv, 3 * W);
        long row = 0;
        for (int g = 0; g < n_groups; g++) {
            insp_attention(pool, groups[g].n_seq, groups[g].len, enc->heads, hd, qkv + row * 3 * W,
                           attn + row * W, enc->causal, scratch);
            row += (long)groups[g].n_seq * groups[g].len;
        }

        // Past the last attention no row reads another, so only the kept rows need the rest of
        // the block: gather them (residual and attention output) into the now free qkv buffer.
        float *xr = x;
        const float *ar = attn;
        int rows = T;
        bool gathered = keep && l == enc->layers - 1;
        if (gathered) {
            float *xs = qkv, *as = qkv + (long)n_keep * W; // [n_keep, W] each
            for (int i = 0; i < n_keep; i++) {
                memcpy(xs + (long)i * W, x + (long)keep[i] * W, (size_t)W * sizeof(float));
                memcpy(as + (long)i * W, attn + (long)keep[i] * W, (size_t)W * sizeof(float));
            }
            xr = xs;
            ar = as;
            rows = n_keep;
        }

        // [rows, W] x [W, W]^T -> [rows, W]
        insp_gemm_bt(pool, rows, W, W, ar, W, b->out_proj_w, W, b->out_proj_b, h, W);
        insp_add_inplace(pool, (long)rows * W, xr, h);

        insp_layernorm(pool, rows, W, xr, b->ln_2_w, b->ln_2_b, LN_EPS, h);
        // [rows, W] x [M, W]^T -> [rows, M]
        insp_gemm_bt(pool, rows, M, W, h, W, b->fc_w, W, b->fc_b, mlp, M);
        if (enc->quick_gelu)
            insp_quick_gelu(pool, (long)rows * M, mlp);
        else
            insp_gelu(pool, (long)rows * M, mlp);
        // [rows, M] x [W, M]^T -> [rows, W]
        insp_gemm_bt(pool, rows, W, M, mlp, M, b->proj_w, M, b->proj_b, h, W);
        insp_add_inplace(pool, (long)rows * W, xr, h);

        if (gathered)
            memcpy(x, xr, (size_t)rows * W * sizeof(float));
    }

    if (keep && enc->layers == 0) {
        // No block to finish them in: gather through qkv, since keep may point at any row.
        for (int i = 0; i < n_keep; i++)
            memcpy(qkv + (long)i * W, x + (long)keep[i] * W, (size_t)W * sizeof(float));
        memcpy(x, qkv, (size_t)n_keep * W * sizeof(float));
    }
    return INSP_OK;
}
