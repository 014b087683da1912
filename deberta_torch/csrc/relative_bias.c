/* The disentangled-attention bias of one (batch, head) slice from its two band products, in one pass
   (deberta_torch/native.py).

   Legend: n query rows of the block, S keys (reversed: c = S - 1 - j), L the distance line: L[i + c]
   is the row of the position table that query i reads for key c (non-decreasing, steps of 0 or 1).
   out (n, S): out[i, c] = c2p[i, c] + p2c[i, c], or the dtype minimum where fill[c] is set. The two
   terms come from band products computed by the caller (kernels.py), one slice at a time so that they
   are still in cache here. Each band holds only the table rows its tile reads, a contiguous range:

     c2p[i, c] = C[cbase[t] + (i - rs(t)) * cstride[t] + L[i + c]]   rows in tiles of r, tile t starts
                                                                     at rs(t) = min(t * r, n - r)
     p2c[i, c] = P[pbase[u] + (c - cs(u)) * pstride[u] + L[i + c]]   keys in tiles of k, tile u starts
                                                                     at cs(u) = min(u * k, S - k)

   (base = the tile's offset in its buffer minus the first table row it holds; stride = its width).
   Along c a C read follows L: 8 contiguous values where L steps by one, and where it repeats rows (log
   buckets, clamped ends) the same 8 permuted in a register. Along c a P read jumps a whole row per key,
   so P is read along i (the same way) in 8 x 8 tiles, transposed in registers and added to 8 C vectors. Sums are formed
   in float32 and rounded to nearest even, as PyTorch's own bfloat16 add rounds.

   The vector code is AVX2 (also on AVX-512 CPUs, which run it): the kernel streams memory, and one
   tested vector path is worth more than a wider one. Buffers hold 16 spare elements past their end: a
   read of 8 values from the last row a band needs may run past it. */

#include <stdint.h>

#if defined(__AVX2__)
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

#if defined(__AVX2__)
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

/* base[index + L[m .. m + 7]] as 8 floats. L steps by 0 or 1, so those rows lie within the 8 from
   L[m]: one load, and where L repeats a row, a permutation of it (the lanes it skips are never used). */
static inline __m256i repeats(const int32_t *L, long m) {
    return _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(L + m)), _mm256_set1_epi32(L[m]));
}

static inline __m256 read_f32(const float *base, long index, const int32_t *L, long m) {
    __m256 x = _mm256_loadu_ps(base + index + L[m]);
    return L[m + 7] - L[m] == 7 ? x : _mm256_permutevar8x32_ps(x, repeats(L, m));
}

static inline __m256 read_bf16(const bf16 *base, long index, const int32_t *L, long m) {
    __m128i raw = _mm_loadu_si128((const __m128i *)(base + index + L[m]));
    __m256 x = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
    return L[m + 7] - L[m] == 7 ? x : _mm256_permutevar8x32_ps(x, repeats(L, m));
}

static inline void store_f32(float *p, __m256 x) { _mm256_storeu_ps(p, x); }
static inline void store_bf16(bf16 *p, __m256 x) {  /* round to nearest even, as float_to_bf16 */
    __m256i u = _mm256_castps_si256(x);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    u = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(u, _mm256_setzero_si256()), 0x08);
    _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(packed));
}
static inline __m256 fill_mask(const uint8_t *f) {
    __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)f));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(x, _mm256_setzero_si256()));
}

/* The 8 x 8 tile at rows i0.., keys c0..: p2c read along i for each key and transposed, plus c2p. */
#define VECTOR_TILE(READ, STORE, MINF)                                                                    \
    if (ni == 8 && nc == 8) {                                                                             \
        __m256 x[8];                                                                                      \
        if (P) {                                                                                          \
            for (int e = 0; e < 8; ++e) x[e] = READ(P, pindex[c0 - s0 + e], L, i0 + c0 + e);             \
            transpose8(x);                                                                                \
        } else {                                                                                          \
            for (int a = 0; a < 8; ++a) x[a] = _mm256_setzero_ps();                                       \
        }                                                                                                 \
        __m256 m = f ? fill_mask(f + c0) : _mm256_setzero_ps(), minimum = _mm256_set1_ps(MINF);          \
        for (int a = 0; a < 8; ++a) {                                                                     \
            __m256 y = C ? _mm256_add_ps(x[a], READ(C, cindex[a], L, i0 + a + c0)) : x[a];               \
            STORE(o + (i0 + a) * S + c0, _mm256_blendv_ps(y, minimum, m));                                \
        }                                                                                                 \
        continue;                                                                                         \
    }
#else
#define VECTOR_TILE(READ, STORE, MINF)
#endif

/* The slice in strips of 64 keys (their P rows stay in L1 while every query row passes), each strip in
   8 x 8 tiles, vectorised where the tile is whole. */
#define STRIP 64
#define DEFINE_SLICE(NAME, T, TO_F, FROM_F, MINV, MINF, READ, STORE)                                     \
static void NAME(T *o, const T *C, const T *P, const uint8_t *f, const int32_t *L, const int64_t *cbase,  \
                 const int64_t *cstride, const int64_t *pbase, const int64_t *pstride, long n, long S,     \
                 long r, long k) {                                                                        \
    long nt = (n + r - 1) / r, nu = (S + k - 1) / k;                                                     \
    for (long s0 = 0; s0 < S; s0 += STRIP) {                                                              \
        long s1 = s0 + STRIP < S ? s0 + STRIP : S;                                                        \
        long pindex[STRIP];                                                                               \
        for (long c = s0; c < s1; ++c) {                                                                  \
            long cs, u = tile_of(c, k, nu, S, &cs);                                                       \
            pindex[c - s0] = P ? pbase[u] + (c - cs) * pstride[u] : 0;                                    \
        }                                                                                                 \
        for (long i0 = 0; i0 < n; i0 += 8) {                                                              \
            long ni = n - i0 < 8 ? n - i0 : 8;                                                            \
            long cindex[8];                                                                               \
            for (long a = 0; a < ni; ++a) {                                                               \
                long rs, t = tile_of(i0 + a, r, nt, n, &rs);                                              \
                cindex[a] = C ? cbase[t] + (i0 + a - rs) * cstride[t] : 0;                                \
            }                                                                                             \
            for (long c0 = s0; c0 < s1; c0 += 8) {                                                        \
                long nc = s1 - c0 < 8 ? s1 - c0 : 8;                                                      \
                VECTOR_TILE(READ, STORE, MINF)                                                            \
                for (long a = 0; a < ni; ++a) {                                                           \
                    T *orow = o + (i0 + a) * S + c0;                                                      \
                    for (long e = 0; e < nc; ++e) {                                                       \
                        long m = i0 + a + c0 + e;                                                         \
                        float x = (P ? TO_F(P[pindex[c0 - s0 + e] + L[m]]) : 0.0f)                        \
                                  + (C ? TO_F(C[cindex[a] + L[m]]) : 0.0f);                               \
                        orow[e] = (f && f[c0 + e]) ? MINV : FROM_F(x);                                    \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
}

static inline float identity(float x) { return x; }

DEFINE_SLICE(slice_f32, float, identity, identity, F32_MIN, F32_MIN, read_f32, store_f32)
DEFINE_SLICE(slice_bf16, bf16, bf16_to_float, float_to_bf16, BF16_MIN, BF16_MIN_F, read_bf16, store_bf16)

/* Entry points (ctypes): C or P may be NULL (that term is absent, with its base and stride arrays), fill
   may be NULL (nothing masked). L points at the line entry of the block's first query row. */
void relative_bias_f32(float *out, const float *C, const float *P, const uint8_t *fill, const int32_t *L,
                       const int64_t *cbase, const int64_t *cstride, const int64_t *pbase, const int64_t *pstride,
                       long n, long S, long r, long k) {
    slice_f32(out, C, P, fill, L, cbase, cstride, pbase, pstride, n, S, r, k);
}

void relative_bias_bf16(bf16 *out, const bf16 *C, const bf16 *P, const uint8_t *fill, const int32_t *L,
                        const int64_t *cbase, const int64_t *cstride, const int64_t *pbase, const int64_t *pstride,
                        long n, long S, long r, long k) {
    slice_bf16(out, C, P, fill, L, cbase, cstride, pbase, pstride, n, S, r, k);
}

int vectorised(void) {  /* 0: scalar, 2: AVX2 */
#if defined(__AVX2__)
    return 2;
#else
    return 0;
#endif
}
