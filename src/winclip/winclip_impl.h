/* Internal layout of the WinCLIP scorer and reference memory, shared by the files of
 * src/winclip (winclip.c, memory.c, score.c, threshold.c). */
#ifndef INSP_WINCLIP_IMPL_H
#define INSP_WINCLIP_IMPL_H

#include "inspectd/winclip.h"

struct insp_winclip {
    const insp_clip *clip;
    int grid;                              /* G */
    int width;                             /* W: patch token width */
    int dim;                               /* D: joint embedding width */
    int n_scales;
    insp_windows windows[INSP_MAX_SCALES]; /* geometry of each scale */
};

/* Shots are stored shot-major, so shot i's rows of every table are one contiguous block:
 * leave-one-out skips that block instead of building another memory. */
struct insp_memory {
    const insp_winclip *wc;
    int count;                            /* shots held */
    int cap;                              /* shots the tables have room for */
    float *image_embed;                   /* [cap, D]            L2-normalized */
    float *patches;                       /* [cap·G·G, W]        L2-normalized */
    float *windows[INSP_MAX_SCALES];      /* [cap·n_windows, D]  L2-normalized */
};

/* One image's features as scoring reads them: either an insp_features or one shot of a
 * memory (whose rows are already normalized; normalizing again changes nothing that matters). */
typedef struct insp_query {
    const float *image_embed;                 /* [D] */
    const float *patch_tokens;                /* [G·G, W] */
    const float *windows[INSP_MAX_SCALES];    /* [n_windows(scale), D] */
} insp_query;

/* The scoring of score.c with the memory's shot `skip` left out (-1: none). */
int insp_score_query(const insp_winclip *wc, insp_score_ws *sws, insp_pool *pool,
                     const float *t, const insp_memory *mem, int skip, const insp_query *q,
                     float *grid_map, insp_score *out);

/* Test hook: at most `rows` memory rows per association GEMM (default 2048), so that tests can
 * cross chunk boundaries with a small memory. */
void insp_score_ws_set_chunk(insp_score_ws *sws, long rows);

/* dst[n, dim] = src rows scaled to unit L2 norm, as torch.nn.functional.normalize (the norm
 * floored at 1e-12 so that a zero row stays zero). dst may equal src. */
void insp_normalize_rows(const float *src, long n, int dim, float *dst);

#endif
