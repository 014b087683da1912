/* The disentangled-attention bias of one (batch, head) slice from its two band products, in one pass
   (deberta_torch/native.py).

   Legend: n query rows of the block, S keys (reversed: c = S - 1 - j).
   out (n, S): out[i, c] = c2p[i, c] + p2c[i, c], or the dtype minimum where fill[c] is set. The two
   terms come from band products computed by the caller (kernels.py), one slice at a time so that they
   are still in cache here:

     c2p[i, c] = C[t][a][a + c]      rows in tiles of r, tile t starts at row rs(t) = min(t * r, n - r),
                                     a = i - rs(t)
     p2c[i, c] = P[u][e][e + i]      keys in tiles of k, tile u starts at key cs(u) = min(u * k, S - k),
                                     e = c - cs(u)

   with C of shape (ceil(n / r), r, cw) and P of shape (ceil(S / k), k, pw), both contiguous.
   A C row is contiguous along c (the Transformer-XL relative shift), a P row along i: p2c is read
   transposed, which PyTorch's strided copy does element by element. Here 16 x 16 tiles are loaded as
   16 contiguous P vectors, transposed in registers and added to 16 contiguous C vectors. Sums are
   formed in float32 and rounded to nearest even, as PyTorch's own bfloat16 add rounds. */

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

typedef uint16_t bf16;

static inline float bf16_to_float(bf16 x) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)x << 16;
    return v.f;
}

static inline bf16 float_to_bf16(float f) {  /* round to nearest even; inputs are finite */
    union { uint32_t u; float f; } v;
    v.f = f;
    return (bf16)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);
}

#define BF16_MIN ((bf16)0xFF7F)
#define BF16_MIN_F (-3.3895313892515355e38f) /* BF16_MIN as a float, exact */
#define F32_MIN (-3.4028234663852886e38f)

static inline long tile_of(long x, long size, long count, long total, long *start) {
    long t = x / size;
    if (t >= count) t = count - 1;
    long s = t * size;
    if (s > total - size) s = total - size;
    *start = s;
    return t;
}

#if defined(__AVX512F__)
/* r[0..15] rows of a 16 x 16 float tile -> its columns. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int q = 0; q < 8; ++q) {
        t[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
    for (int q = 0; q < 4; ++q) {
        __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 2]);
        __m512d c = _mm512_castps_pd(t[4 * q + 1]), d = _mm512_castps_pd(t[4 * q + 3]);
        u[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int m = 0; m < 4; ++m) {
        __m512 v = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), w = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88), w2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
        r[m] = _mm512_shuffle_f32x4(v, v2, 0x88);
        r[m + 8] = _mm512_shuffle_f32x4(v, v2, 0xdd);
        r[m + 4] = _mm512_shuffle_f32x4(w, w2, 0x88);
        r[m + 12] = _mm512_shuffle_f32x4(w, w2, 0xdd);
    }
}

static inline __m512 load_f32(const float *p) { return _mm512_loadu_ps(p); }
static inline void store_f32(float *p, __m512 x) { _mm512_storeu_ps(p, x); }
static inline __m512 load_bf16(const bf16 *p) {
    __m256i x = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(x), 16));
}
static inline void store_bf16(bf16 *p, __m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    u = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(u));
}
static inline __mmask16 fill_mask(const uint8_t *f) {
    return _mm512_cmpneq_epi32_mask(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)f)), _mm512_setzero_si512());
}
#endif


#if !defined(__AVX512F__) && defined(__AVX2__)
/* r[0..7] rows of an 8 x 8 float tile -> its columns. */
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int q = 0; q < 4; ++q) {
        t[2 * q] = _mm256_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm256_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
    for (int q = 0; q < 2; ++q) {
        u[4 * q] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
        u[4 * q + 1] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
        u[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
        u[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
    }
    for (int m = 0; m < 4; ++m) {
        r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
        r[m + 4] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
    }
}

static inline __m256 load_f32_8(const float *p) { return _mm256_loadu_ps(p); }
static inline void store_f32_8(float *p, __m256 x) { _mm256_storeu_ps(p, x); }
static inline __m256 load_bf16_8(const bf16 *p) {
    __m128i x = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(x), 16));
}
static inline void store_bf16_8(bf16 *p, __m256 x) {  /* round to nearest even, as float_to_bf16 */
    __m256i u = _mm256_castps_si256(x);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    u = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(u, _mm256_setzero_si256()), 0x08);
    _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(packed));
}
static inline __m256 fill_mask8(const uint8_t *f) {
    __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)f));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(x, _mm256_setzero_si256()));
}
#endif

/* The slice in strips of 64 keys (the strip's P rows stay in L1 while every query row passes),
   each strip in tiles of 16 x 16, vectorised where AVX-512 is there and the tile is whole. */
#define STRIP 64
#define DEFINE_SLICE(NAME, T, TO_F, FROM_F, MINV, MINF, VLOAD, VSTORE)                                    \
static void NAME(T *o, const T *C, const T *P, const uint8_t *f, long n, long S, long r, long cw, long k, \
                 long pw) {                                                                               \
    long nt = (n + r - 1) / r, nu = (S + k - 1) / k;                                                     \
    for (long s0 = 0; s0 < S; s0 += STRIP) {                                                              \
        long s1 = s0 + STRIP < S ? s0 + STRIP : S;                                                        \
        const T *pstrip[STRIP];                                                                           \
        for (long c = s0; c < s1; ++c) {                                                                  \
            long cs, u = tile_of(c, k, nu, S, &cs);                                                       \
            pstrip[c - s0] = P ? P + (u * k + (c - cs)) * pw + (c - cs) : 0;                              \
        }                                                                                                 \
        for (long i0 = 0; i0 < n; i0 += 16) {                                                             \
            long ni = n - i0 < 16 ? n - i0 : 16;                                                          \
            const T *crow[16];                                                                            \
            for (long a = 0; a < ni; ++a) {                                                               \
                long rs, t = tile_of(i0 + a, r, nt, n, &rs);                                              \
                crow[a] = C ? C + (t * r + (i0 + a - rs)) * cw + (i0 + a - rs) : 0;                    \
            }                                                                                             \
            for (long c0 = s0; c0 < s1; c0 += 16) {                                                       \
                long nc = s1 - c0 < 16 ? s1 - c0 : 16;                                                    \
                const T *prow[16];                                                                        \
                for (long e = 0; e < nc; ++e) prow[e] = P ? pstrip[c0 - s0 + e] + i0 : 0;                 \
                VECTOR_TILE(MINF, VLOAD, VSTORE)                                                          \
                for (long a = 0; a < ni; ++a) {                                                           \
                    T *orow = o + (i0 + a) * S + c0;                                                      \
                    for (long e = 0; e < nc; ++e) {                                                       \
                        float x = (P ? TO_F(prow[e][a]) : 0.0f) + (C ? TO_F(crow[a][c0 + e]) : 0.0f);      \
                        orow[e] = (f && f[c0 + e]) ? MINV : FROM_F(x);                                    \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
}

#if defined(__AVX512F__)
#define VECTOR_TILE(MINF, VLOAD, VSTORE)                                                                     \
    if (ni == 16 && nc == 16) {                                                                           \
        __m512 x[16];                                                                                     \
        if (P) {                                                                                          \
            for (int e = 0; e < 16; ++e) x[e] = VLOAD(prow[e]);                                           \
            transpose16(x);                                                                               \
        } else {                                                                                          \
            for (int a = 0; a < 16; ++a) x[a] = _mm512_setzero_ps();                                      \
        }                                                                                                 \
        __mmask16 m = f ? fill_mask(f + c0) : 0;                                                          \
        __m512 minimum = _mm512_set1_ps(MINF);                                                            \
        for (int a = 0; a < 16; ++a) {                                                                    \
            __m512 y = C ? _mm512_add_ps(x[a], VLOAD(crow[a] + c0)) : x[a];                               \
            VSTORE(o + (i0 + a) * S + c0, _mm512_mask_mov_ps(y, m, minimum));                             \
        }                                                                                                 \
        continue;                                                                                         \
    }
#elif defined(__AVX2__)
/* The 16 x 16 tile as four 8 x 8 blocks; VLOAD/VSTORE name the element type's helpers, whose 8-wide
   AVX2 versions carry the suffix _8. */
#define VECTOR_TILE(MINF, VLOAD, VSTORE)                                                                     \
    if (ni == 16 && nc == 16) {                                                                           \
        __m256 minimum = _mm256_set1_ps(MINF);                                                            \
        for (int a0 = 0; a0 < 16; a0 += 8)                                                                \
            for (int e0 = 0; e0 < 16; e0 += 8) {                                                          \
                __m256 x[8];                                                                              \
                if (P) {                                                                                  \
                    for (int e = 0; e < 8; ++e) x[e] = VLOAD##_8(prow[e0 + e] + a0);               \
                    transpose8(x);                                                                        \
                } else {                                                                                  \
                    for (int a = 0; a < 8; ++a) x[a] = _mm256_setzero_ps();                               \
                }                                                                                         \
                __m256 m = f ? fill_mask8(f + c0 + e0) : _mm256_setzero_ps();                             \
                for (int a = 0; a < 8; ++a) {                                                             \
                    __m256 y = C ? _mm256_add_ps(x[a], VLOAD##_8(crow[a0 + a] + c0 + e0)) : x[a];          \
                    VSTORE##_8(o + (i0 + a0 + a) * S + c0 + e0, _mm256_blendv_ps(y, minimum, m));          \
                }                                                                                         \
            }                                                                                             \
        continue;                                                                                         \
    }
#else
#define VECTOR_TILE(MINF, VLOAD, VSTORE)
#endif

static inline float identity(float x) { return x; }

DEFINE_SLICE(slice_f32, float, identity, identity, F32_MIN, F32_MIN, load_f32, store_f32)
DEFINE_SLICE(slice_bf16, bf16, bf16_to_float, float_to_bf16, BF16_MIN, BF16_MIN_F, load_bf16, store_bf16)

/* Entry points (ctypes): C or P may be NULL (that term is absent), fill may be NULL (nothing masked). */
void relative_bias_f32(float *out, const float *C, const float *P, const uint8_t *fill, long n, long S, long r,
                       long cw, long k, long pw) {
    slice_f32(out, C, P, fill, n, S, r, cw, k, pw);
}

void relative_bias_bf16(bf16 *out, const bf16 *C, const bf16 *P, const uint8_t *fill, long n, long S, long r,
                        long cw, long k, long pw) {
    slice_bf16(out, C, P, fill, n, S, r, cw, k, pw);
}

int vectorised(void) {  /* 0: scalar, 1: AVX-512, 2: AVX2 */
#if defined(__AVX512F__)
    return 1;
#elif defined(__AVX2__)
    return 2;
#else
    return 0;
#endif
}
