/* Internal layout of a CLIP workspace: every activation buffer of one transformer pass, sized
 * once so that the towers never allocate per call. */
#ifndef INSP_CLIP_WORKSPACE_H
#define INSP_CLIP_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspectd/clip.h"

/* Most sequence groups (runs of equal-length sequences) in one batched pass; a window batch
 * with more sets than this is split into several passes. */
#define INSP_WS_MAX_GROUPS 8

/* A run of n_seq consecutive sequences of len tokens each in the [rows, W] activations. */
typedef struct insp_seq_group {
    int n_seq;
    int len;
} insp_seq_group;

struct insp_clip_ws {
    int grid, patch; /* G and P of the model it was sized for (im2col, f0_ln) */
    int cap;         /* rows of one pass: ≥ 1+G·G and ≥ the text context length */
    int width;       /* max(vision W, text W) */
    int mlp_width;   /* max(vision M, text M) */
    int max_len;     /* longest sequence: max(1+G·G, text context length) */

    float *x;      // [cap, width]      residual stream
    float *h;      // [cap, width]      LayerNorm output / GEMM output before the add
    float *qkv;    // [cap, 3·width]    q | k | v of every row
    float *attn;   // [cap, width]      attention output, heads concatenated
    float *mlp;    // [cap, mlp_width]  MLP hidden activations
    float *im2col; // [G·G, 3·P·P]      image patches as rows, (c, ky, kx) order
    float *f0_ln;  // [1+G·G, width]    ln_pre(F0), the rows windows are gathered from
    int32_t *keep; // [cap]             rows the last block still has to finish
    int32_t *order; // [cap]            text: the pass's prompts sorted by length
    insp_seq_group groups[INSP_WS_MAX_GROUPS];

    /* Attention scratch depends on the pool's size, which the workspace only learns at call
     * time: it is sized for one thread at create and grown (once per larger pool) on use. */
    float *attn_scratch;
    long attn_scratch_floats;

    size_t bytes; /* everything above, for insp_clip_ws_bytes */

    /* Test hook: run the text tower over all context_length positions instead of stopping
     * after the batch's last EOT (the results must not change). */
    bool text_full_length;
};

/* Scratch for insp_attention over sequences of len tokens on pool; grows the buffer if this
 * pool needs more than any before. NULL only when that growth fails. */
float *insp_clip_ws_attn_scratch(insp_clip_ws *ws, insp_pool *pool, int len);

/* Whether ws was sized for clip's dimensions (a workspace of another model would overflow). */
bool insp_clip_ws_fits(const insp_clip_ws *ws, const insp_clip *clip);

#endif
