/* Eight-lane float math for the kernels' transcendental loops (GELU, QuickGELU, softmax) on
 * x86-64 with AVX2 and FMA, chosen at run time: the library is built for baseline x86-64,
 * where libm's scalar erff/expf cost more than the GEMMs around them leave room for.
 * Both polynomials are published approximations, accurate to a few float ulps:
 *   exp:  Cephes' expf (Cody–Waite reduction by ln 2, degree-5 polynomial, 2^n by exponent
 *         bits), argument clamped to [-87, 88] so that 2^n stays a normal float;
 *   erfc: Numerical Recipes' erfcc, t·exp(-z² + P(t)) with t = 1/(1 + z/2), fractional
 *         error below 1.2e-7 for every z ≥ 0. */
#ifndef INSP_TENSOR_SIMD_H
#define INSP_TENSOR_SIMD_H

#include <stdatomic.h>
#include <stdbool.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define INSP_SIMD_X86 1
#include <immintrin.h>
#endif

#ifdef INSP_SIMD_X86

/* Whether this CPU runs the AVX2+FMA paths; asked once per process. */
static inline bool insp_simd_avx2(void)
{
    static atomic_int cached = -1; /* every thread would store the same answer */
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v != 0;
}

#define INSP_AVX2 __attribute__((target("avx2,fma")))

INSP_AVX2 static inline __m256 insp_exp8(__m256 a)
{
    a = _mm256_min_ps(_mm256_max_ps(a, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = a - n·ln2, ln2 split in two so that n·hi is exact
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Exact GELU x·Φ(x), Φ(x) = erfc(-x/√2)/2: erfc of |x|/√2 and the side picked by sign, so
 * that the negative tail is computed directly rather than as 1 minus something close to 1.
 * Beyond |x|/√2 = 10 erfc is below every float and taken as 0. */
INSP_AVX2 static inline __m256 insp_gelu8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x),
                             _mm256_set1_ps(0.70710678118654752f));
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, half, one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(half, t), insp_exp8(_mm256_fnmadd_ps(z, z, p)));
    half_erfc = _mm256_and_ps(half_erfc, _mm256_cmp_ps(z, _mm256_set1_ps(10.0f), _CMP_LT_OQ));
    __m256 phi = _mm256_blendv_ps(half_erfc, _mm256_sub_ps(one, half_erfc),
                                  _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
    return _mm256_mul_ps(x, phi);
}

/* QuickGELU x·σ(1.702x) = x / (1 + exp(-1.702x)), the product 1.702·x rounded to float as
 * PyTorch does. */
INSP_AVX2 static inline __m256 insp_quick_gelu8(__m256 x)
{
    __m256 e = insp_exp8(_mm256_mul_ps(x, _mm256_set1_ps(-1.702f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

#else

static inline bool insp_simd_avx2(void)
{
    return false;
}

#endif

#endif
