/* Counted FLOPs of an inspection and the sgemm reference: the dense GEMMs of the towers replayed
 * alone, so that the bench can say how close the whole pipeline runs to the GEMM rate. */
#include <cblas.h>

#include "clip/model.h"
#include "clip/workspace.h"
#include "inspectd/ops.h"
#include "tools/bench.h"

/* FLOPs of the four projections of one block: qkv over `rows`, the rest over `rest` rows (the
 * last block finishes only the rows that leave it). */
static double block_dense(double rows, double rest, double W, double M)
{
    return 2.0 * rows * 3.0 * W * W + 2.0 * rest * (W * W + 2.0 * W * M);
}

/* Dense FLOPs of `layers` blocks over `rows` rows, the last one finishing `kept` rows. */
static double tower_dense(int layers, double rows, double kept, double W, double M)
{
    if (layers < 1)
        return 0.0;
    return (layers - 1) * block_dense(rows, rows, W, M) + block_dense(rows, kept, W, M);
}

void bench_count_flops(const insp_winclip *wc, int shots, bench_flops *out)
{
    const insp_clip_config *c = insp_clip_get_config(insp_winclip_clip(wc));
    const double W = c->vision.width, M = c->vision.mlp_width, D = c->embed_dim;
    const double G2 = (double)c->vision.grid * c->vision.grid, P = c->vision.patch_size;
    const int L = c->vision.layers;
    *out = (bench_flops){0};

    const double n_img = 1.0 + G2;
    out->image_dense = 2.0 * G2 * 3.0 * P * P * W + tower_dense(L, n_img, n_img, W, M) +
                       2.0 * W * D;
    out->image_attn = L * 4.0 * n_img * n_img * W;

    double rows = 0, n_win = 0, attn = 0, text_rows = 1;
    for (int s = 0; s < insp_winclip_n_scales(wc); s++) {
        const insp_windows *win = insp_winclip_windows(wc, s);
        double len = 1.0 + (double)win->k * win->k;
        rows += win->n * len;
        n_win += win->n;
        attn += win->n * 4.0 * len * len * W;
        text_rows += win->n;
    }
    out->windows_dense = tower_dense(L, rows, n_win, W, M) + 2.0 * n_win * W * D;
    out->windows_attn = L * attn;

    out->score_zero = text_rows * 2.0 * 3.0 * D;
    double assoc = 2.0 * G2 * (shots * G2) * W;
    for (int s = 0; s < insp_winclip_n_scales(wc); s++) {
        double nw = insp_winclip_windows(wc, s)->n;
        assoc += 2.0 * nw * (shots * nw) * D;
    }
    out->score_few = out->score_zero + (shots > 0 ? assoc : 0.0);
}

double bench_text_flops(const insp_clip_config *cfg, int n, const int *lens)
{
    const double W = cfg->text.width, M = cfg->text.mlp_width, D = cfg->embed_dim;
    const int L = cfg->text.layers;
    double rows = 0, attn = 0;
    for (int i = 0; i < n; i++) {
        rows += lens[i];
        attn += L * 4.0 * (lens[i] * (lens[i] + 1.0) / 2.0) * W; // causal: half the pairs
    }
    return tower_dense(L, rows, n, W, M) + attn + 2.0 * n * W * D;
}

/* ---- the replay ---- */

typedef struct replay {
    insp_pool *pool;
    bool blas;
    double flops;
} replay;

/* C[M,N] = A[M,K] · B[N,K]^T (+ bias), through the pool's split or as one threaded sgemm. */
static void gemm_bt(replay *r, int M, int N, int K, const float *A, const float *B,
                    const float *bias, float *C)
{
    r->flops += 2.0 * M * N * K;
    if (r->blas)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C,
                    N);
    else
        insp_gemm_bt(r->pool, M, N, K, A, K, B, K, bias, C, N);
}

/* C[M,N] = A[M,K] · B[K,N]. */
static void gemm_nn(replay *r, int M, int N, int K, const float *A, const float *B, float *C)
{
    r->flops += 2.0 * M * N * K;
    if (r->blas)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f,
                    C, N);
    else
        insp_gemm(r->pool, M, N, K, A, K, B, N, NULL, C, N);
}

/* The projections of every block over `rows` rows, the last block's after attention over
 * `kept` rows; buffers as the encoder uses them. */
static void replay_tower(replay *r, const insp_clip *clip, insp_clip_ws *ws, int rows, int kept)
{
    const insp_clip_config *c = &clip->cfg;
    const int W = c->vision.width, M = c->vision.mlp_width;
    for (int l = 0; l < c->vision.layers; l++) {
        const insp_block *b = &clip->vblocks[l];
        int rest = l == c->vision.layers - 1 ? kept : rows;
        // [rows, W] x [3W, W]^T -> [rows, 3W]
        gemm_bt(r, rows, 3 * W, W, ws->h, b->in_proj_w, b->in_proj_b, ws->qkv);
        // [rest, W] x [W, W]^T -> [rest, W]
        gemm_bt(r, rest, W, W, ws->attn, b->out_proj_w, b->out_proj_b, ws->h);
        // [rest, W] x [M, W]^T -> [rest, M]
        gemm_bt(r, rest, M, W, ws->h, b->fc_w, b->fc_b, ws->mlp);
        // [rest, M] x [W, M]^T -> [rest, W]
        gemm_bt(r, rest, W, M, ws->mlp, b->proj_w, b->proj_b, ws->h);
    }
}

double bench_gemm_replay(const insp_winclip *wc, insp_worker *w, bool blas_threads,
                         double *flops)
{
    const insp_clip *clip = insp_winclip_clip(wc);
    const insp_clip_config *c = &clip->cfg;
    insp_clip_ws *ws = insp_worker_clip_ws(w);
    replay r = {.pool = insp_worker_pool(w), .blas = blas_threads};
    const int W = c->vision.width, D = c->embed_dim, G2 = c->vision.grid * c->vision.grid;
    const int kdim = 3 * c->vision.patch_size * c->vision.patch_size;
    if (blas_threads)
        openblas_set_num_threads(insp_pool_size(r.pool));

    double t0 = bench_now_s();
    // Full image: [G², 3PP] x [W, 3PP]^T, the blocks over 1+G² rows, then [1, W] x [W, D].
    gemm_bt(&r, G2, W, kdim, ws->im2col, clip->conv1_w, NULL, ws->x + W);
    replay_tower(&r, clip, ws, 1 + G2, 1 + G2);
    gemm_nn(&r, 1, D, W, ws->h, clip->vproj, ws->x);
    // Windows: every window's tokens through the blocks, class rows through the last one.
    int rows = 0, kept = 0;
    for (int s = 0; s < insp_winclip_n_scales(wc); s++) {
        const insp_windows *win = insp_winclip_windows(wc, s);
        rows += win->n * (1 + win->k * win->k);
        kept += win->n;
    }
    if (rows > ws->cap)
        rows = ws->cap; /* a workspace smaller than one batch: the replay stays in bounds */
    if (kept > rows)
        kept = rows;
    replay_tower(&r, clip, ws, rows, kept);
    for (int s = 0, done = 0; s < insp_winclip_n_scales(wc); s++) {
        int n = insp_winclip_windows(wc, s)->n;
        if (done + n > kept)
            break;
        // [n, W] x [W, D] -> [n, D]
        gemm_nn(&r, n, D, W, ws->h + (long)done * W, clip->vproj, ws->x);
        done += n;
    }
    double t = bench_now_s() - t0;

    if (blas_threads)
        openblas_set_num_threads(1);
    *flops = r.flops;
    return t;
}
