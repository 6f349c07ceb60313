/* WinCLIP (zero-shot, language-guided) and WinCLIP+ (few-shot, reference association) scoring
 * on top of the CLIP towers (METHODS.md §3–5). */
#ifndef INSPECTD_WINCLIP_H
#define INSPECTD_WINCLIP_H

#include <stdbool.h>
#include <stdint.h>

#include "inspectd/clip.h"
#include "inspectd/pool.h"
#include "inspectd/prompts.h"
#include "inspectd/status.h"
#include "inspectd/tokenizer.h"

#define INSP_MAX_SCALES 4
#define INSP_TEMPERATURE 0.07f

/* ---- window geometry ---------------------------------------------------------------- */

/* Every k×k window of a G×G patch grid at stride 1: n = (G-k+1)² windows, ordered row-major
 * by their top-left patch; each window lists its k·k patch indices row-major (the fixtures'
 * masks.s<k>, transposed). */
typedef struct insp_windows {
    int grid;
    int k;
    int n;
    int32_t *patches; /* [n, k·k], owned */
} insp_windows;

/* INSP_ERR_INVALID unless 1 ≤ k ≤ grid. Free with insp_windows_free (NULL is fine). */
int insp_windows_make(int grid, int k, insp_windows *out);
void insp_windows_free(insp_windows *w);

/* Per-patch harmonic mean of window values: out[p] = n_p / Σ_{w∋p} 1/val[w] for each of the
 * G·G patches (METHODS.md §3); a patch no window covers gets 0, and so does one covered by a
 * window whose value is 0. w must come from insp_windows_make. val: [w->n], out: [G·G]. */
void insp_harmonic_aggregate(const insp_windows *w, const float *val, float *out);

/* ---- the scorer ----------------------------------------------------------------------- */

/* A model ready for WinCLIP: the CLIP towers plus window geometry for its scales. Holds a
 * pointer to clip (which must outlive it). Read-only after creation: shared by all workers. */
typedef struct insp_winclip insp_winclip;

/* scales: window sides in patches (NULL or n_scales = 0 → {2, 3}); at most INSP_MAX_SCALES,
 * each 1..G. Free with insp_winclip_free (NULL is fine). */
int insp_winclip_create(const insp_clip *clip, const int *scales, int n_scales,
                        insp_winclip **out, insp_error *err);
void insp_winclip_free(insp_winclip *wc);
const insp_clip *insp_winclip_clip(const insp_winclip *wc);
int insp_winclip_n_scales(const insp_winclip *wc);
const insp_windows *insp_winclip_windows(const insp_winclip *wc, int scale_index);

/* Text side of a product: t[2, D] = mean embedding of the normal prompts (row 0) and of the
 * anomalous prompts (row 1), unnormalized. Tokenizes and encodes every prompt once. */
int insp_winclip_text(const insp_winclip *wc, const insp_tokenizer *tok, insp_clip_ws *ws,
                      insp_pool *pool, const insp_prompts *prompts, float *t, insp_error *err);

/* Single prompts' text embeddings kept between runs. A prompt is known by its key: the
 * SHA-256 of its token ids (int32 little-endian, SOT through EOT), so that the key changes
 * with anything that changes the tokens; the model is the cache's business (one cache per
 * weights checksum). get fills emb[D] and returns true when it holds key's embedding; put is
 * offered the n embeddings that had to be computed (keys [n][32], emb [n, D]) and may keep
 * them. Both are called on the calling thread. */
typedef struct insp_prompt_cache {
    void *ctx;
    bool (*get)(void *ctx, const uint8_t key[32], float *emb);
    void (*put)(void *ctx, int n, const uint8_t (*keys)[32], const float *emb);
} insp_prompt_cache;

/* insp_winclip_text that takes each prompt's embedding from cache when it holds it and
 * encodes only the rest (in one batch per side). cache NULL: insp_winclip_text. *n_cached
 * (may be NULL) receives how many prompts came from the cache. */
int insp_winclip_text_cached(const insp_winclip *wc, const insp_tokenizer *tok,
                             insp_clip_ws *ws, insp_pool *pool, const insp_prompts *prompts,
                             const insp_prompt_cache *cache, float *t, int *n_cached,
                             insp_error *err);

/* What one image contributes: everything scoring and the reference memory need. Value type
 * with owned buffers, sized once per worker by insp_features_init and reused. */
typedef struct insp_features {
    int grid, width, dim, n_scales;
    float *image_embed;                /* [D] */
    float *patch_tokens;               /* [G·G, W] */
    float *f0;                         /* [1+G·G, W] */
    float *windows[INSP_MAX_SCALES];   /* [n_windows(scale), D] */
    double image_ms, windows_ms;       /* time of the last insp_winclip_features passes */
} insp_features;

int insp_features_init(const insp_winclip *wc, insp_features *f);
void insp_features_free(insp_features *f);

/* Runs the towers on one preprocessed input [3, S, S]: full image, then all windows of all
 * scales in one batched call. */
int insp_winclip_features(const insp_winclip *wc, insp_clip_ws *ws, insp_pool *pool,
                          const float *input, insp_features *f);

/* ---- reference memory (WinCLIP+) ---------------------------------------------------------- */

/* Normalized patch tokens and window embeddings of K normal shots, pooled per scale, so that
 * association is one GEMM plus a row minimum. Free with insp_memory_free (NULL is fine). */
typedef struct insp_memory insp_memory;
int insp_memory_create(const insp_winclip *wc, insp_memory **out);
void insp_memory_free(insp_memory *mem);
/* Appends one shot (copies and normalizes); the others are not recomputed. */
int insp_memory_add(insp_memory *mem, const insp_features *shot);
/* Makes room for `shots` shots in all, exactly (no-op when there is room already): a memory
 * built for a known number of shots then holds no spare capacity. */
int insp_memory_reserve(insp_memory *mem, int shots);
/* Bytes one shot occupies in a memory of wc: its image embedding, patch tokens and window
 * embeddings (ViT-B-16-plus-240, scales 2 and 3: 1.7 MiB). */
size_t insp_memory_shot_bytes(const insp_winclip *wc);
/* Removes every shot. */
void insp_memory_clear(insp_memory *mem);
int insp_memory_count(const insp_memory *mem);
/* Read-only views of the stored, normalized rows (shot-major; valid until the next add or
 * free). *rows (may be NULL) gets count·G·G, count·n_windows(scale); NULL for a bad scale. */
const float *insp_memory_patches(const insp_memory *mem, long *rows);
const float *insp_memory_windows(const insp_memory *mem, int scale_index, long *rows);
/* [count, D] normalized image embeddings of the shots. */
const float *insp_memory_image_embeds(const insp_memory *mem);

/* ---- scoring ----------------------------------------------------------------------------- */

typedef struct insp_score {
    float score;          /* final image score: s_img, or (s_img + max V) / 2 with references */
    float zero_shot;      /* s_img: the language-only image score */
    float few_shot_max;   /* max V over the grid (0 without references) */
    bool few_shot;        /* references were used */
} insp_score;

/* Scratch for scoring, per worker, sized for the memory's current size on each call (grows
 * only when the memory grows). Free with insp_score_ws_free (NULL is fine). */
typedef struct insp_score_ws insp_score_ws;
int insp_score_ws_create(const insp_winclip *wc, insp_score_ws **out);
void insp_score_ws_free(insp_score_ws *sws);

/* Scores one image's features against the product's text t[2, D] and (if mem is non-NULL
 * and not empty) its reference memory. grid_map (may be NULL): [G·G] final map — M0, or
 * (M0 + V) / 2 with references. */
int insp_winclip_score(const insp_winclip *wc, insp_score_ws *sws, insp_pool *pool,
                       const float *t, const insp_memory *mem, const insp_features *f,
                       float *grid_map, insp_score *out);

/* Leave-one-out: each shot scored as a query against a memory of the other shots (needs ≥ 2,
 * INSP_ERR_INVALID otherwise). scores: [count] final image scores. *suggested (may be NULL):
 * insp_threshold_suggest of these scores. */
int insp_memory_loo_scores(const insp_winclip *wc, insp_score_ws *sws, insp_pool *pool,
                           const float *t, const insp_memory *mem, float *scores,
                           float *suggested);

/* Suggested decision threshold from n ≥ 1 normal (leave-one-out) scores:
 * min(1, max(mean + INSP_THRESHOLD_SIGMAS·sd, max + INSP_THRESHOLD_MIN_MARGIN)), sd the sample
 * standard deviation (0 for n = 1). Why this rule: winclip/threshold.c. NaN for n < 1. */
#define INSP_THRESHOLD_SIGMAS 3.0
#define INSP_THRESHOLD_MIN_MARGIN 0.01
float insp_threshold_suggest(const float *scores, int n);

/* ---- maps ------------------------------------------------------------------------------ */

/* Bilinear resize of a [sh, sw] map to [dh, dw], align_corners=false (as torch interpolate). */
void insp_map_resize_bilinear(const float *src, int sw, int sh, float *dst, int dw, int dh);

/* In-place Gaussian blur (separable, kernel radius ⌈4σ⌉ as torchvision's default 2·⌈4σ⌉+1,
 * reflect padding). scratch: w·h floats. σ ≤ 0 (or NaN) leaves the map as it is; σ above 64
 * is taken as 64. */
void insp_map_gaussian(float *map, int w, int h, float sigma, float *scratch);

/* Clamps to [0,1] (NaN → 0) and quantizes: round(v·65535) / round(v·255). */
void insp_map_to_u16(const float *map, long n, uint16_t *out);
void insp_map_to_u8(const float *map, long n, uint8_t *out);

#endif
