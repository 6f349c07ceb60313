/* CLIP models: loading OpenCLIP weights and running the vision and text towers on CPU. */
#ifndef INSPECTD_CLIP_H
#define INSPECTD_CLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspectd/pool.h"
#include "inspectd/status.h"

/* Dimensions and preprocessing of a loaded model, from open_clip_config.json, with what the
 * config leaves out inferred from tensor shapes. */
typedef struct insp_clip_config {
    int embed_dim;          /* D: joint embedding width */
    bool quick_gelu;        /* x·σ(1.702x) instead of exact GELU, both towers */
    struct {
        int image_size;     /* S */
        int patch_size;     /* P */
        int grid;           /* G = S / P */
        int width;          /* W */
        int layers;
        int heads;          /* W / head_width */
        int head_width;     /* 64 unless the config says otherwise */
        int mlp_width;      /* hidden width of the MLP (4W for mlp_ratio 4) */
    } vision;
    struct {
        int context_length; /* 77 */
        int vocab_size;     /* 49408 */
        int width;
        int layers;
        int heads;
        int mlp_width;
    } text;
    float mean[3];          /* preprocess_cfg.mean, OpenAI's when absent */
    float std[3];
} insp_clip_config;

/* Parses open_clip_config.json text (the hub layout {"model_cfg": ..., "preprocess_cfg": ...},
 * or a bare model config). Dims the file does not give are left 0 for the loader to infer. */
int insp_clip_config_parse(const char *json, size_t len, insp_clip_config *cfg, insp_error *err);

typedef struct insp_clip insp_clip;

/* Loads a model directory: open_clip_config.json plus exactly one *.safetensors file
 * (open_clip_model.safetensors preferred when several). Weights are validated against the
 * config (every tensor present, every shape as implied) and converted once to float32.
 * On failure *out is NULL and err says which file/tensor and why. Free with insp_clip_free. */
int insp_clip_load(const char *dir, insp_clip **out, insp_error *err);

/* NULL is a harmless no-op. */
void insp_clip_free(insp_clip *clip);

const insp_clip_config *insp_clip_get_config(const insp_clip *clip);
/* Hex SHA-256 of the safetensors file (64 chars + NUL); the key of every embedding cache. */
const char *insp_clip_checksum(const insp_clip *clip);
/* The directory it was loaded from, and the name of the weights file in it. */
const char *insp_clip_dir(const insp_clip *clip);
const char *insp_clip_weights_file(const insp_clip *clip);
/* Dtype of the tensors in the file ("F16", "F32", "BF16"; the first one seen). */
const char *insp_clip_file_dtype(const insp_clip *clip);

/* Per-worker scratch, sized once from the model; a forward pass allocates nothing.
 * max_tokens bounds the rows of one transformer pass (0 = enough for the full image and all
 * 2×2 and 3×3 windows in one batch); larger batches are processed in chunks. Free with
 * insp_clip_ws_free (NULL is fine). A workspace serves one call at a time. */
typedef struct insp_clip_ws insp_clip_ws;
int insp_clip_ws_create(const insp_clip *clip, int max_tokens, insp_clip_ws **out);
void insp_clip_ws_free(insp_clip_ws *ws);
/* Bytes held by the workspace (for the memory budget in the logs and the bench). */
size_t insp_clip_ws_bytes(const insp_clip_ws *ws);

/* Vision tower on one preprocessed image.
 * image:       [3, S, S] normalized planar input.
 * image_embed: [D]        token 0 after ln_post, @ proj (not normalized). May be NULL.
 * patch_tokens:[G·G, W]   tokens 1.. after ln_post, unprojected. May be NULL.
 * f0:          [1+G·G, W] conv patches with class token and positional embedding added,
 *                         before ln_pre (WinCLIP cuts windows from it). May be NULL. */
int insp_clip_encode_image(const insp_clip *clip, insp_clip_ws *ws, insp_pool *pool,
                           const float *image, float *image_embed, float *patch_tokens,
                           float *f0);

/* One family of windows: n windows of k×k patches each. */
typedef struct insp_window_set {
    int k;                 /* window side in patches; each sequence has 1 + k·k tokens */
    int n;                 /* number of windows */
    const int32_t *patches; /* [n, k·k] row-major grid indices (0..G·G-1) of each window */
    float *out;            /* [n, D] window embeddings (token 0 after ln_post, @ proj) */
} insp_window_set;

/* Window embeddings for every window of every set in one batched pass: each window is the
 * sequence [f0 token 0] + [f0 token 1+p for p in its patches], each token keeping its own
 * positional embedding, run through ln_pre → blocks → ln_post → token 0 → proj. GEMMs run over
 * all tokens of the batch together; attention stays within each window. */
int insp_clip_encode_windows(const insp_clip *clip, insp_clip_ws *ws, insp_pool *pool,
                             const float *f0, int n_sets, const insp_window_set *sets);

/* Text tower on n token rows. ids: [n, context_length] (SOT … EOT, zero padded); the
 * embedding is taken at each row's EOT (its largest id). out: [n, D], not normalized. */
int insp_clip_encode_text(const insp_clip *clip, insp_clip_ws *ws, insp_pool *pool, int n,
                          const int32_t *ids, float *out);

#endif
