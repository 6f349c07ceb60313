/* The CLIP vision tower: the full image (embedding, patch tokens, F0) and WinCLIP's windows,
 * all windows of all scales batched into as few transformer passes as the workspace allows. */
#include <string.h>

#include "clip/encoder.h"
#include "inspectd/ops.h"

#define LN_EPS 1e-5f

static insp_encoder vision_encoder(const insp_clip *clip)
{
    const insp_clip_config *cfg = &clip->cfg;
    return (insp_encoder){
        .blocks = clip->vblocks,
        .layers = cfg->vision.layers,
        .width = cfg->vision.width,
        .heads = cfg->vision.heads,
        .mlp_width = cfg->vision.mlp_width,
        .quick_gelu = cfg->quick_gelu,
        .causal = false,
    };
}

/* Lays the image's P×P patches out as rows so that the stride-P convolution is one GEMM:
 * row gy·G+gx holds patch (gy, gx) in (c, ky, kx) order, conv1.weight's [W, 3, P, P] order. */
static void im2col(const float *image, int size, int patch, int grid, float *cols)
{
    const long plane = (long)size * size, row_len = 3L * patch * patch;
    for (int gy = 0; gy < grid; gy++)
        for (int gx = 0; gx < grid; gx++) {
            float *dst = cols + ((long)gy * grid + gx) * row_len;
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < patch; ky++) {
                    const float *src =
                        image + c * plane + ((long)gy * patch + ky) * size + (long)gx * patch;
                    memcpy(dst + ((long)c * patch + ky) * patch, src,
                           (size_t)patch * sizeof(float));
                }
        }
}

int insp_clip_encode_image(const insp_clip *clip, insp_clip_ws *ws, insp_pool *pool,
                           const float *image, float *image_embed, float *patch_tokens, float *f0)
{
    if (!clip || !ws || !image || !insp_clip_ws_fits(ws, clip))
        return INSP_ERR_INVALID;
    const insp_clip_config *cfg = &clip->cfg;
    const int S = cfg->vision.image_size, P = cfg->vision.patch_size, G = cfg->vision.grid;
    const int W = cfg->vision.width, D = cfg->embed_dim;
    const int n_patch = G * G, kdim = 3 * P * P, len = 1 + n_patch;
    float *x = ws->x; // [1+G·G, W]

    im2col(image, S, P, G, ws->im2col);
    memcpy(x, clip->class_emb, (size_t)W * sizeof(float));
    // [G·G, 3PP] x [W, 3PP]^T -> rows 1.. of x
    insp_gemm_bt(pool, n_patch, W, kdim, ws->im2col, kdim, clip->conv1_w, kdim, NULL, x + W, W);
    insp_add_inplace(pool, (long)len * W, x, clip->vpos_emb);
    if (f0)
        memcpy(f0, x, (size_t)len * W * sizeof(float));
    insp_layernorm(pool, len, W, x, clip->ln_pre_w, clip->ln_pre_b, LN_EPS, x);

    insp_encoder enc = vision_encoder(clip);
    insp_seq_group group = {1, len};
    // Without patch tokens only the class token has to leave the last block.
    const int32_t class_row = 0;
    int rc = insp_encoder_forward(&enc, ws, pool, 1, &group, patch_tokens ? NULL : &class_row,
                                  patch_tokens ? 0 : 1);
    if (rc != INSP_OK)
        return rc;

    if (patch_tokens)
        insp_layernorm(pool, n_patch, W, x + W, clip->ln_post_w, clip->ln_post_b, LN_EPS,
                       patch_tokens);
    if (image_embed) {
        insp_layernorm(pool, 1, W, x, clip->ln_post_w, clip->ln_post_b, LN_EPS, ws->h);
        // [1, W] x [W, D] -> [1, D]
        insp_gemm(pool, 1, D, W, ws->h, W, clip->vproj, D, NULL, image_embed, D);
    }
    return INSP_OK;
}

static int check_sets(const insp_clip *clip, int n_sets, const insp_window_set *sets)
{
    const int G = clip->cfg.vision.grid;
    if (n_sets < 0 || (n_sets > 0 && !sets))
        return INSP_ERR_INVALID;
    for (int s = 0; s < n_sets; s++) {
        const insp_window_set *set = &sets[s];
        if (set->k < 1 || set->k > G || set->n < 0)
            return INSP_ERR_INVALID;
        if (set->n == 0)
            continue;
        if (!set->patches || !set->out)
            return INSP_ERR_INVALID;
        const long count = (long)set->n * set->k * set->k;
        for (long i = 0; i < count; i++)
            if (set->patches[i] < 0 || set->patches[i] >= G * G)
                return INSP_ERR_INVALID;
    }
    return INSP_OK;
}

/* Where one group of a window batch came from, to route its embeddings to set->out. */
typedef struct group_origin {
    int set;
    int first; /* index of the group's first window in that set */
} group_origin;

int insp_clip_encode_windows(const insp_clip *clip, insp_clip_ws *ws, insp_pool *pool,
                             const float *f0, int n_sets, const insp_window_set *sets)
{
    if (!clip || !ws || !f0 || !insp_clip_ws_fits(ws, clip))
        return INSP_ERR_INVALID;
    int rc = check_sets(clip, n_sets, sets);
    if (rc != INSP_OK)
        return rc;
    const int G = clip->cfg.vision.grid, W = clip->cfg.vision.width, D = clip->cfg.embed_dim;
    const size_t row_bytes = (size_t)W * sizeof(float);

    // LayerNorm is row-wise, so ln_pre(F0) once and gathering its rows equals ln_pre on every
    // gathered sequence, for 1+G·G rows instead of all windows' tokens.
    insp_layernorm(pool, 1 + G * G, W, f0, clip->ln_pre_w, clip->ln_pre_b, LN_EPS, ws->f0_ln);

    insp_encoder enc = vision_encoder(clip);
    group_origin origin[INSP_WS_MAX_GROUPS];
    int s = 0, w = 0; // next window to encode: window w of set s
    for (;;) {
        // Fill one pass with whole windows, set after set, until the rows or groups run out.
        int n_groups = 0, rows = 0;
        while (s < n_sets && n_groups < INSP_WS_MAX_GROUPS) {
            const insp_window_set *set = &sets[s];
            if (w == set->n) {
                s++;
                w = 0;
                continue;
            }
            const int kk = set->k * set->k, len = 1 + kk;
            int count = (ws->cap - rows) / len;
            if (count > set->n - w)
                count = set->n - w;
            if (count == 0)
                break;
            for (int i = 0; i < count; i++) {
                const int32_t *patches = set->patches + (long)(w + i) * kk;
                const int r = rows + i * len;
                float *dst = ws->x + (long)r * W; // [1+k·k, W]
                memcpy(dst, ws->f0_ln, row_bytes);
                for (int j = 0; j < kk; j++)
                    memcpy(dst + (long)(1 + j) * W, ws->f0_ln + (long)(1 + patches[j]) * W,
                           row_bytes);
            }
            ws->groups[n_groups] = (insp_seq_group){count, len};
            origin[n_groups] = (group_origin){s, w};
            n_groups++;
            rows += count * len;
            w += count;
        }
        if (n_groups == 0)
            return INSP_OK;

        int n_keep = 0, r = 0;
        for (int g = 0; g < n_groups; g++)
            for (int i = 0; i < ws->groups[g].n_seq; i++, r += ws->groups[g].len)
                ws->keep[n_keep++] = r; // each window's class token
        rc = insp_encoder_forward(&enc, ws, pool, n_groups, ws->groups, ws->keep, n_keep);
        if (rc != INSP_OK)
            return rc;

        insp_layernorm(pool, n_keep, W, ws->x, clip->ln_post_w, clip->ln_post_b, LN_EPS, ws->h);
        int done = 0;
        for (int g = 0; g < n_groups; g++) {
            const insp_window_set *set = &sets[origin[g].set];
            const int count = ws->groups[g].n_seq;
            // [count, W] x [W, D] -> [count, D]
            insp_gemm(pool, count, D, W, ws->h + (long)done * W, W, clip->vproj, D, NULL,
                      set->out + (long)origin[g].first * D, D);
            done += count;
        }
    }
}
