/* Packing and unpacking of reference features for the embedding cache (see feature_cache.h). */
#include "daemon/feature_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "INSPFT01"

typedef struct header {
    char magic[8];
    int32_t grid, width, dim, n_scales;
    int32_t n_windows[INSP_MAX_SCALES];
} header;

static void header_of(const insp_winclip *wc, header *h)
{
    const insp_clip_config *c = insp_clip_get_config(insp_winclip_clip(wc));
    memset(h, 0, sizeof *h);
    memcpy(h->magic, MAGIC, 8);
    h->grid = c->vision.grid;
    h->width = c->vision.width;
    h->dim = c->embed_dim;
    h->n_scales = insp_winclip_n_scales(wc);
    for (int s = 0; s < h->n_scales; s++)
        h->n_windows[s] = insp_winclip_windows(wc, s)->n;
}

static size_t floats_of(const header *h)
{
    size_t n = (size_t)h->dim + (size_t)h->grid * h->grid * h->width;
    for (int s = 0; s < h->n_scales; s++)
        n += (size_t)h->n_windows[s] * h->dim;
    return n;
}

int insp_features_pack(const insp_winclip *wc, const insp_features *f, void **data,
                       size_t *len)
{
    header h;
    header_of(wc, &h);
    size_t n = floats_of(&h);
    char *buf = malloc(sizeof h + n * sizeof(float));
    if (!buf)
        return INSP_ERR_NOMEM;
    memcpy(buf, &h, sizeof h);
    float *p = (float *)(buf + sizeof h);
    size_t G2W = (size_t)h.grid * h.grid * h.width;
    memcpy(p, f->image_embed, (size_t)h.dim * sizeof(float));
    p += h.dim;
    memcpy(p, f->patch_tokens, G2W * sizeof(float));
    p += G2W;
    for (int s = 0; s < h.n_scales; s++) {
        size_t m = (size_t)h.n_windows[s] * h.dim;
        memcpy(p, f->windows[s], m * sizeof(float));
        p += m;
    }
    *data = buf;
    *len = sizeof h + n * sizeof(float);
    return INSP_OK;
}

int insp_features_unpack(const insp_winclip *wc, const void *data, size_t len,
                         insp_features *f, float **block)
{
    header want, got;
    header_of(wc, &want);
    *block = NULL;
    memset(f, 0, sizeof *f);
    if (len < sizeof got)
        return INSP_ERR_FORMAT;
    memcpy(&got, data, sizeof got);
    size_t n = floats_of(&want);
    if (memcmp(&got, &want, sizeof got) != 0 || len != sizeof got + n * sizeof(float))
        return INSP_ERR_FORMAT;
    float *b = malloc(n * sizeof(float));
    if (!b)
        return INSP_ERR_NOMEM;
    memcpy(b, (const char *)data + sizeof got, n * sizeof(float));
    f->grid = want.grid;
    f->width = want.width;
    f->dim = want.dim;
    f->n_scales = want.n_scales;
    f->image_embed = b;
    f->patch_tokens = b + want.dim;
    float *p = f->patch_tokens + (size_t)want.grid * want.grid * want.width;
    for (int s = 0; s < want.n_scales; s++) {
        f->windows[s] = p;
        p += (size_t)want.n_windows[s] * want.dim;
    }
    *block = b;
    return INSP_OK;
}
