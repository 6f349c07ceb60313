/* What the inspect-bench source files share: random-weight models of a named architecture,
 * counted FLOPs, the sgemm reference and small statistics. Internal to the bench. */
#ifndef INSP_TOOLS_BENCH_H
#define INSP_TOOLS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "inspectd/clip.h"
#include "inspectd/inspector.h"
#include "inspectd/winclip.h"

/* What every measurement needs: the loaded model, a product (text embeddings and, for the
 * few-shot mode, a reference memory) and the input image. Read-only while measuring. */
typedef struct bench_ctx {
    const insp_winclip *wc;
    const float *t;            /* [2, D] text embeddings of the product */
    const insp_memory *mem;    /* the references; NULL or empty: zero-shot only */
    const uint8_t *image;      /* encoded JPEG/PNG */
    size_t image_len;
    insp_inspect_params params;
    int threads, workers, runs, warmup;
    bool pin;                  /* pin each worker's threads to their own CPUs */
} bench_ctx;

/* ---- models with random weights (bench_model.c) ---- */

/* The dims of a built-in architecture ("ViT-B-16-plus-240", "ViT-B-16", "ViT-L-14-336");
 * INSP_ERR_NOT_FOUND for another name. */
int bench_arch_builtin(const char *name, insp_clip_config *cfg);

/* The dims an open_clip_config.json gives, open_clip's defaults for what it leaves out. */
int bench_arch_from_config(const char *path, insp_clip_config *cfg, insp_error *err);

/* Writes open_clip_config.json and open_clip_model.safetensors (F32 or F16, values drawn from
 * seed at scales that keep activations ordinary) into target, a directory made here (it must
 * not exist), or with target NULL into a new directory under $TMPDIR (or /tmp); dir receives
 * its path. The weights are streamed: the bench's memory does not grow with the model. Remove
 * with bench_model_remove. */
int bench_model_write(const insp_clip_config *cfg, bool f16, uint64_t seed, const char *target,
                      char *dir, size_t dir_size, insp_error *err);

/* Deletes the two files and the directory bench_model_write made. */
void bench_model_remove(const char *dir);

/* ---- counted work (bench_flops.c) ---- */

/* Multiply-adds ×2 of the matrix products of one inspection, per stage. Elementwise work
 * (LayerNorm, GELU, softmax, adds) is not counted. */
typedef struct bench_flops {
    double image_dense;    /* patch embedding, the blocks' four projections, proj */
    double image_attn;     /* Q·Kᵀ and P·V of the full-image sequence */
    double windows_dense;  /* the same over every window token (last block: class rows) */
    double windows_attn;
    double score_zero;     /* text cosines */
    double score_few;      /* + association GEMMs against `shots` references */
} bench_flops;

void bench_count_flops(const insp_winclip *wc, int shots, bench_flops *out);

/* FLOPs of the text tower on n prompts whose rows are lens[i] tokens long (the positions
 * the tower runs, EOT included), finishing one row per prompt in the last block. */
double bench_text_flops(const insp_clip_config *cfg, int n, const int *lens);

/* Runs the dense GEMMs of one inspection's two tower passes — the same shapes on the same
 * weights, into the worker's own activation buffers — and returns the seconds taken;
 * *flops gets their FLOPs. With blas_threads the GEMMs are single cblas_sgemm calls on
 * OpenBLAS's own threads (as many as the worker's pool) instead of the pool's split. */
double bench_gemm_replay(const insp_winclip *wc, insp_worker *w, bool blas_threads,
                         double *flops);

/* ---- concurrency (bench_workers.c) ---- */

/* ctx->workers workers of ctx->threads threads each, every one with its own insp_worker:
 * all inspecting back to back (throughput, latency under load), then one at a time (latency
 * of a lone request). Returns a JSON object, or NULL with err set. */
json_t *bench_workers(const bench_ctx *ctx, insp_error *err);

/* ---- statistics (bench_stats.c) ---- */

double bench_now_s(void);
/* Median and 90th percentile (nearest rank) of n values; v is sorted in place. */
double bench_median(double *v, int n);
double bench_p90(double *v, int n);
/* Peak resident set of this process so far, in bytes (getrusage ru_maxrss). */
long bench_peak_rss(void);

/* A synthetic part photo: smooth shapes plus noise, width × height, encoded as JPEG
 * (quality 90). *jpeg is malloc'ed. */
int bench_synthetic_jpeg(int width, int height, uint64_t seed, uint8_t **jpeg, size_t *len);

#endif
