/* Per-worker CLIP scratch: one set of activation buffers sized from the model, so that a forward
 * pass (full image, all windows, a prompt batch) allocates nothing. */
#include <stdlib.h>

#include "clip/model.h"
#include "clip/workspace.h"
#include "inspectd/ops.h"

static int imax(int a, int b)
{
    return a > b ? a : b;
}

/* Rows of the default batch: the full image, or every 2×2 and 3×3 window at once. */
static long default_rows(int grid)
{
    long rows = 1 + (long)grid * grid, windows = 0;
    for (int k = 2; k <= 3; k++) {
        long side = grid - k + 1;
        if (side > 0)
            windows += side * side * (1 + k * k);
    }
    return windows > rows ? windows : rows;
}

/* The longest single sequence either tower runs. */
static int max_seq_len(const insp_clip_config *cfg)
{
    return imax(1 + cfg->vision.grid * cfg->vision.grid, cfg->text.context_length);
}

static float *alloc_floats(insp_clip_ws *ws, long n)
{
    ws->bytes += (size_t)n * sizeof(float);
    return malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
}

int insp_clip_ws_create(const insp_clip *clip, int max_tokens, insp_clip_ws **out)
{
    if (!out)
        return INSP_ERR_INVALID;
    *out = NULL;
    if (!clip || max_tokens < 0)
        return INSP_ERR_INVALID;
    const insp_clip_config *cfg = &clip->cfg;
    int grid = cfg->vision.grid, patch = cfg->vision.patch_size;
    if (grid < 1 || patch < 1 || cfg->vision.width < 1 || cfg->text.width < 1 ||
        cfg->vision.heads < 1 || cfg->text.heads < 1 || cfg->text.context_length < 1)
        return INSP_ERR_INVALID;

    long cap = max_tokens > 0 ? max_tokens : default_rows(grid);
    // A pass must hold at least one whole sequence of either tower, whatever was asked.
    if (cap < max_seq_len(cfg))
        cap = max_seq_len(cfg);
    if (cap > 1L << 24)
        return INSP_ERR_TOO_LARGE;

    insp_clip_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return INSP_ERR_NOMEM;
    ws->grid = grid;
    ws->patch = patch;
    ws->cap = (int)cap;
    ws->width = imax(cfg->vision.width, cfg->text.width);
    ws->mlp_width = imax(cfg->vision.mlp_width, cfg->text.mlp_width);
    long w = ws->width;
    ws->bytes = sizeof *ws;
    ws->x = alloc_floats(ws, cap * w);
    ws->h = alloc_floats(ws, cap * w);
    ws->qkv = alloc_floats(ws, cap * 3 * w);
    ws->attn = alloc_floats(ws, cap * w);
    ws->mlp = alloc_floats(ws, cap * ws->mlp_width);
    ws->im2col = alloc_floats(ws, (long)grid * grid * 3 * patch * patch);
    ws->f0_ln = alloc_floats(ws, (1 + (long)grid * grid) * w);
    ws->keep = malloc((size_t)cap * sizeof *ws->keep);
    ws->order = malloc((size_t)cap * sizeof *ws->order);
    ws->bytes += (size_t)cap * (sizeof *ws->keep + sizeof *ws->order);
    ws->max_len = max_seq_len(cfg);
    ws->attn_scratch_floats = insp_attention_scratch(NULL, ws->max_len);
    ws->attn_scratch = alloc_floats(ws, ws->attn_scratch_floats);
    if (!ws->x || !ws->h || !ws->qkv || !ws->attn || !ws->mlp || !ws->im2col || !ws->f0_ln ||
        !ws->keep || !ws->order || !ws->attn_scratch) {
        insp_clip_ws_free(ws);
        return INSP_ERR_NOMEM;
    }
    *out = ws;
    return INSP_OK;
}

void insp_clip_ws_free(insp_clip_ws *ws)
{
    if (!ws)
        return;
    free(ws->x);
    free(ws->h);
    free(ws->qkv);
    free(ws->attn);
    free(ws->mlp);
    free(ws->im2col);
    free(ws->f0_ln);
    free(ws->keep);
    free(ws->order);
    free(ws->attn_scratch);
    free(ws);
}

size_t insp_clip_ws_bytes(const insp_clip_ws *ws)
{
    return ws ? ws->bytes : 0;
}

float *insp_clip_ws_attn_scratch(insp_clip_ws *ws, insp_pool *pool, int len)
{
    if (insp_attention_scratch(pool, len) <= ws->attn_scratch_floats)
        return ws->attn_scratch;
    // Grow for the longest sequence at once so that this pool never triggers another growth.
    long need = insp_attention_scratch(pool, len > ws->max_len ? len : ws->max_len);
    float *grown = realloc(ws->attn_scratch, (size_t)need * sizeof(float));
    if (!grown)
        return NULL;
    ws->bytes += (size_t)(need - ws->attn_scratch_floats) * sizeof(float);
    ws->attn_scratch = grown;
    ws->attn_scratch_floats = need;
    return grown;
}

bool insp_clip_ws_fits(const insp_clip_ws *ws, const insp_clip *clip)
{
    const insp_clip_config *cfg = &clip->cfg;
    return ws->grid == cfg->vision.grid && ws->patch == cfg->vision.patch_size &&
           ws->width >= cfg->vision.width && ws->width >= cfg->text.width &&
           ws->mlp_width >= cfg->vision.mlp_width && ws->mlp_width >= cfg->text.mlp_width &&
           ws->max_len >= max_seq_len(cfg);
}
