/* One inspection end to end — decode, preprocess, towers, scoring, map, PNG — shared by the
 * CLI and the daemon so that both give identical answers. */
#ifndef INSPECTD_INSPECTOR_H
#define INSPECTD_INSPECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "inspectd/image.h"
#include "inspectd/winclip.h"

typedef enum insp_map_format {
    INSP_MAP_NONE = 0,  /* no map at all (cheapest) */
    INSP_MAP_PNG16,     /* 16-bit grayscale PNG, value = round(score·65535) */
    INSP_MAP_PNG8,      /* 8-bit grayscale PNG for quick viewing */
} insp_map_format;

typedef enum insp_map_size {
    INSP_MAP_SIZE_IMAGE = 0, /* the uploaded image's own width × height */
    INSP_MAP_SIZE_MODEL,     /* the model's S × S */
} insp_map_size;

typedef struct insp_inspect_params {
    insp_map_format map_format;
    insp_map_size map_size;
    float smooth_sigma;   /* Gaussian σ in pixels at model size S; 0 = off (golden tests) */
    long max_pixels;      /* decode limit; 0 = 64 Mpx */
} insp_inspect_params;

/* The defaults: 16-bit map at the image's size, no smoothing, 64 Mpx. */
insp_inspect_params insp_inspect_default_params(void);

typedef struct insp_timings {
    double decode_ms, preprocess_ms, image_ms, windows_ms, score_ms, map_ms, total_ms;
} insp_timings;

typedef struct insp_inspection {
    insp_score score;
    int image_width, image_height;  /* of the decoded input */
    int map_width, map_height;      /* 0 with INSP_MAP_NONE */
    float *map;                     /* [map_height, map_width] before quantization, owned */
    uint8_t *png;                   /* encoded map, owned; NULL with INSP_MAP_NONE */
    size_t png_len;
    insp_timings t;
} insp_inspection;

/* Frees the owned buffers and zeroes the struct. NULL is a harmless no-op. */
void insp_inspection_free(insp_inspection *r);

/* Everything one inference worker needs, sized once from the model: its compute pool
 * (threads ≥ 1, the calling thread included), tower workspace, features, scoring scratch and
 * input buffer. One call at a time per worker. Free with insp_worker_free (NULL is fine). */
typedef struct insp_worker insp_worker;
int insp_worker_create(const insp_winclip *wc, int threads, insp_worker **out, insp_error *err);
void insp_worker_free(insp_worker *w);
insp_pool *insp_worker_pool(insp_worker *w);
insp_clip_ws *insp_worker_clip_ws(insp_worker *w);
insp_score_ws *insp_worker_score_ws(insp_worker *w);

/* Inspects an encoded JPEG/PNG against a product's text embeddings t[2, D] and reference
 * memory (NULL or empty: zero-shot). On failure err says why (bad image → INSP_ERR_FORMAT /
 * _UNSUPPORTED / _TOO_LARGE) and out holds nothing to free. */
int insp_inspect_encoded(insp_worker *w, const void *data, size_t len, const float *t,
                         const insp_memory *mem, const insp_inspect_params *params,
                         insp_inspection *out, insp_error *err);

/* The same from a decoded image (decode_ms is 0). */
int insp_inspect_image(insp_worker *w, const insp_image *img, const float *t,
                       const insp_memory *mem, const insp_inspect_params *params,
                       insp_inspection *out, insp_error *err);

/* Decodes an encoded reference shot and computes its features into the worker's feature
 * buffer, returned through *features (valid until the worker's next call): what a caller adds
 * to a memory or writes to the embedding cache. */
int insp_worker_reference(insp_worker *w, const void *data, size_t len, long max_pixels,
                          const insp_features **features, insp_error *err);

#endif
