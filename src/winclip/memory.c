/* The reference memory of WinCLIP+: the normal shots' patch tokens and window embeddings,
 * normalized once when a shot is added, so that scoring is one GEMM per table. */
#include <stdlib.h>
#include <string.h>

#include "winclip/winclip_impl.h"

int insp_memory_create(const insp_winclip *wc, insp_memory **out)
{
    if (!out)
        return INSP_ERR_INVALID;
    *out = NULL;
    if (!wc)
        return INSP_ERR_INVALID;
    insp_memory *mem = calloc(1, sizeof *mem);
    if (!mem)
        return INSP_ERR_NOMEM;
    mem->wc = wc;
    *out = mem;
    return INSP_OK;
}

void insp_memory_free(insp_memory *mem)
{
    if (!mem)
        return;
    free(mem->image_embed);
    free(mem->patches);
    for (int s = 0; s < INSP_MAX_SCALES; s++)
        free(mem->windows[s]);
    free(mem);
}

/* Grows one table to `rows` rows of `dim` floats. On failure the old buffer stays valid (and
 * a table that did grow is merely larger than cap says: harmless). */
static bool grow(float **table, size_t rows, int dim)
{
    float *p = realloc(*table, rows * (size_t)dim * sizeof *p);
    if (!p)
        return false;
    *table = p;
    return true;
}

/* Room for cap shots (cap > mem->cap). */
static int grow_to(insp_memory *mem, int cap)
{
    const insp_winclip *wc = mem->wc;
    size_t G2 = (size_t)wc->grid * (size_t)wc->grid;
    if (!grow(&mem->image_embed, (size_t)cap, wc->dim) ||
        !grow(&mem->patches, (size_t)cap * G2, wc->width))
        return INSP_ERR_NOMEM;
    for (int s = 0; s < wc->n_scales; s++)
        if (!grow(&mem->windows[s], (size_t)cap * (size_t)wc->windows[s].n, wc->dim))
            return INSP_ERR_NOMEM;
    mem->cap = cap;
    return INSP_OK;
}

int insp_memory_reserve(insp_memory *mem, int shots)
{
    if (!mem || shots < 0 || shots > (1 << 20))
        return INSP_ERR_INVALID;
    return shots <= mem->cap ? INSP_OK : grow_to(mem, shots);
}

size_t insp_memory_shot_bytes(const insp_winclip *wc)
{
    if (!wc)
        return 0;
    size_t floats = (size_t)wc->dim + (size_t)wc->grid * (size_t)wc->grid * (size_t)wc->width;
    for (int s = 0; s < wc->n_scales; s++)
        floats += (size_t)wc->windows[s].n * (size_t)wc->dim;
    return floats * sizeof(float);
}

int insp_memory_add(insp_memory *mem, const insp_features *shot)
{
    if (!mem || !shot)
        return INSP_ERR_INVALID;
    const insp_winclip *wc = mem->wc;
    if (shot->grid != wc->grid || shot->width != wc->width || shot->dim != wc->dim ||
        shot->n_scales != wc->n_scales || !shot->image_embed || !shot->patch_tokens)
        return INSP_ERR_INVALID;
    for (int s = 0; s < wc->n_scales; s++)
        if (!shot->windows[s])
            return INSP_ERR_INVALID;
    if (mem->count >= (1 << 20))
        return INSP_ERR_TOO_LARGE;
    if (mem->count >= mem->cap) { /* one at a time: double, so that K adds copy O(K) shots */
        int st = grow_to(mem, mem->cap ? 2 * mem->cap : 4);
        if (st != INSP_OK)
            return st;
    }
    long i = mem->count;
    long G2 = (long)wc->grid * wc->grid;
    insp_normalize_rows(shot->image_embed, 1, wc->dim, mem->image_embed + i * wc->dim);
    insp_normalize_rows(shot->patch_tokens, G2, wc->width, mem->patches + i * G2 * wc->width);
    for (int s = 0; s < wc->n_scales; s++) {
        long n = wc->windows[s].n;
        insp_normalize_rows(shot->windows[s], n, wc->dim, mem->windows[s] + i * n * wc->dim);
    }
    mem->count++;
    return INSP_OK;
}

void insp_memory_clear(insp_memory *mem)
{
    if (mem)
        mem->count = 0;
}

int insp_memory_count(const insp_memory *mem)
{
    return mem ? mem->count : 0;
}

const float *insp_memory_patches(const insp_memory *mem, long *rows)
{
    if (rows)
        *rows = mem ? (long)mem->count * mem->wc->grid * mem->wc->grid : 0;
    return mem ? mem->patches : NULL;
}

const float *insp_memory_windows(const insp_memory *mem, int scale_index, long *rows)
{
    if (rows)
        *rows = 0;
    if (!mem || scale_index < 0 || scale_index >= mem->wc->n_scales)
        return NULL;
    if (rows)
        *rows = (long)mem->count * mem->wc->windows[scale_index].n;
    return mem->windows[scale_index];
}

const float *insp_memory_image_embeds(const insp_memory *mem)
{
    return mem ? mem->image_embed : NULL;
}
