/* Internal layout of a loaded CLIP model: what the loader fills and the towers read. */
#ifndef INSP_CLIP_MODEL_H
#define INSP_CLIP_MODEL_H

#include "inspectd/clip.h"
#include "inspectd/safetensors.h"

/* One pre-norm residual block; W = tower width, M = MLP width. All float32, read-only. */
typedef struct insp_block {
    const float *ln_1_w, *ln_1_b;   // [W]
    const float *in_proj_w;         // [3W, W]  q | k | v stacked
    const float *in_proj_b;         // [3W]
    const float *out_proj_w;        // [W, W]
    const float *out_proj_b;        // [W]
    const float *ln_2_w, *ln_2_b;   // [W]
    const float *fc_w;              // [M, W]   mlp.c_fc
    const float *fc_b;              // [M]
    const float *proj_w;            // [W, M]   mlp.c_proj
    const float *proj_b;            // [W]
} insp_block;

struct insp_clip {
    insp_clip_config cfg;

    /* vision tower (visual.*) */
    const float *conv1_w;           // [W, 3, P, P]
    const float *class_emb;         // [W]
    const float *vpos_emb;          // [1+G·G, W]
    const float *ln_pre_w, *ln_pre_b;   // [W]
    insp_block *vblocks;            // [vision.layers]
    const float *ln_post_w, *ln_post_b; // [W]
    const float *vproj;             // [W, D]

    /* text tower (top-level names) */
    const float *tok_emb;           // [vocab, Wt]
    const float *tpos_emb;          // [ctx, Wt]
    insp_block *tblocks;            // [text.layers]
    const float *ln_final_w, *ln_final_b; // [Wt]
    const float *tproj;             // [Wt, D]   text_projection

    /* storage: every tensor above points into `weights` (float32 copies made at load) */
    float *weights;
    size_t weights_floats;
    char checksum[65];
    char dir[4096];
    char weights_file[256];
    char file_dtype[8];
};

#endif
