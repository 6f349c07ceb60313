/* What eval_run.c shares with eval_examples.c: the loaded model and the per-image map
 * thumbnails the report's overlays are drawn from. */
#ifndef INSPECTD_TOOLS_EVAL_RUN_H
#define INSPECTD_TOOLS_EVAL_RUN_H

#include "inspectd/clip.h"
#include "inspectd/inspector.h"
#include "inspectd/tokenizer.h"
#include "inspectd/winclip.h"
#include "tools/eval.h"

typedef struct eval_engine {
    insp_clip *clip;
    insp_tokenizer *tok;
    insp_winclip *wc;
    insp_worker *w;
    int S, G, D;
    float *t;       // [2, D] the category's text embeddings
    float *grid;    // [G, G] the last scored map
    float *model;   // [S, S] that map upsampled (and smoothed)
    float *scratch; // [S, S] for the blur
} eval_engine;

/* Longest side of a report thumbnail, in pixels. */
#define EVAL_THUMB_SIDE 192

/* Each test image's first-seed map at thumbnail size (aspect kept). */
typedef struct eval_thumbs {
    float **map; /* [n][h·w] */
    int *w, *h;
    int n;
} eval_thumbs;

int eval_thumbs_init(eval_thumbs *t, int n);
void eval_thumbs_free(eval_thumbs *t);
/* Stores image i's S×S map resized to the thumbnail of an img_w×img_h image. */
int eval_thumb_add(eval_thumbs *t, int i, const float *model, int S, int img_w, int img_h,
                   insp_error *err);
/* Chooses the highest-scoring normals and lowest-scoring anomalies of the first seed and
 * renders their overlays into res. */
int eval_pick_examples(const eval_settings *s, const eval_category *c, eval_cat_result *res,
                       const eval_thumbs *t, insp_error *err);

#endif
