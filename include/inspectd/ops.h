/* The few numerical kernels a ViT needs, row-major float32, split across a compute pool.
 * Each is checked against a plain loop in tests/test_ops.c. */
#ifndef INSPECTD_OPS_H
#define INSPECTD_OPS_H

#include <stdbool.h>

#include "inspectd/pool.h"

/* C[M,N] = A[M,K] · B[N,K]^T (+ bias[N] on every row if bias != NULL).
 * B is in PyTorch Linear layout [out, in]. lda/ldb/ldc are row strides in floats; columns
 * of C past N are left untouched. One contiguous slice per thread, each one cblas_sgemm:
 * the larger of M and N is cut (so that no thread packs the bigger operand whole), rows
 * only while each thread gets >= 16 of them and columns >= 64; else (and below ~2^17
 * multiply-adds) one call on the calling thread. K == 0 gives C = bias (or 0). */
void insp_gemm_bt(insp_pool *pool, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, const float *bias, float *C, int ldc);

/* C[M,N] = A[M,K] · B[K,N] (+ bias[N] if non-NULL). For projections stored [in, out]. */
void insp_gemm(insp_pool *pool, int M, int N, int K, const float *A, int lda, const float *B,
               int ldb, const float *bias, float *C, int ldc);

/* y[r,:] = (x[r,:] - mean) / sqrt(var + eps) * gamma + beta for r in [0, rows); x and y rows
 * have stride `dim`; y may equal x. Biased variance as in PyTorch; mean and variance are
 * accumulated in double (two passes). */
void insp_layernorm(insp_pool *pool, int rows, int dim, const float *x, const float *gamma,
                    const float *beta, float eps, float *y);

/* In place on n floats: exact GELU 0.5·x·(1 + erf(x/√2)), or QuickGELU x·σ(1.702x). */
void insp_gelu(insp_pool *pool, long n, float *x);
void insp_quick_gelu(insp_pool *pool, long n, float *x);

/* In place, numerically stable softmax (max subtracted) over each of `rows` rows of
 * length n. */
void insp_softmax_rows(insp_pool *pool, int rows, int n, float *x);

/* x[i] += y[i] for i in [0, n). */
void insp_add_inplace(insp_pool *pool, long n, float *x, const float *y);

/* Multi-head self-attention core for a batch of equal-length sequences.
 * qkv: [n_seq·len, 3·H·hd], each row q | k | v, heads contiguous inside each (PyTorch's
 *      in_proj layout). out: [n_seq·len, H·hd], heads concatenated (ready for out_proj).
 * scale = 1/sqrt(hd); causal: position i attends to j ≤ i. Work is split over
 * (sequence, head) pairs, dealt out in contiguous runs; sequences of up to 32 tokens use
 * plain loops, longer ones two cblas_sgemm per pair. scratch needs
 * insp_attention_scratch(pool, len) floats (size·len·len: one len×len block per thread);
 * the pool passed to both must be the same (or of the same size). */
void insp_attention(insp_pool *pool, int n_seq, int len, int n_heads, int head_dim,
                    const float *qkv, float *out, bool causal, float *scratch);
long insp_attention_scratch(const insp_pool *pool, int len);

#endif
