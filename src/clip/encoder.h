/* The pre-norm residual transformer both CLIP towers share, run over a batch of sequences. */
#ifndef INSP_CLIP_ENCODER_H
#define INSP_CLIP_ENCODER_H

#include <stdbool.h>
#include <stdint.h>

#include "clip/model.h"
#include "clip/workspace.h"
#include "inspectd/pool.h"

/* One tower's stack of blocks and its dimensions. */
typedef struct insp_encoder {
    const insp_block *blocks; // [layers]
    int layers;
    int width;     /* W */
    int heads;     /* W = heads · head_dim */
    int mlp_width; /* M */
    bool quick_gelu;
    bool causal; /* text tower: position i attends to j ≤ i */
} insp_encoder;

/* Runs every block on ws->x, rows [0, T) with T = Σ groups[g].n_seq · groups[g].len, laid out
 * group after group, sequence after sequence:
 *   x = x + out_proj(attn(ln_1(x)));  x = x + c_proj(act(c_fc(ln_2(x))))
 * Row-wise steps (LayerNorms, GEMMs, MLP) run over all T rows at once; attention stays inside
 * each sequence.
 * keep: when non-NULL, only those n_keep rows (indices into [0, T), any order) are wanted from
 * the output; the last block finishes only them after its attention, and on return
 * ws->x rows [0, n_keep) hold them in keep's order. When NULL, all T rows are finished in place.
 * T must not exceed ws->cap. Returns INSP_OK, or INSP_ERR_NOMEM when the attention scratch
 * could not grow for a larger pool. */
int insp_encoder_forward(const insp_encoder *enc, insp_clip_ws *ws, insp_pool *pool, int n_groups,
                         const insp_seq_group *groups, const int32_t *keep, int n_keep);

#endif
