// bf16 GEMMs with fp32 accumulation for MindSpore AOT custom operators on CPU, through the oneDNN that ships inside
// the mindspore wheel (mindspore/lib/libdnnl.so.3).
//
// Why: MindSpore 2.10's CPU MatMul has no bf16 kernel (and its fp16 is slower than fp32), while the bundled oneDNN's
// dnnl_gemm_bf16bf16f32 runs at about twice dnnl_sgemm's speed on a CPU with AVX512_BF16 (AMX where present).
// That library's plain GEMM entry points run on the calling thread only, so each GEMM here is split by output rows
// over a pool of threads (csrc/parallel.h).
//
// Every function has MindSpore's AOT signature (see mindspore.ops.Custom, func_type="aot"):
//   int f(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream, void *extra)
// with the inputs first and the outputs last; all tensors are row-major float32.
//   ErnieBf16Linear     (x [M,K], w [N,K], b [N])   -> y [M,N] = bf16(x) @ bf16(w)^T + b
//   ErnieBf16LinearGrad (dy [M,N], x [M,K], w [N,K]) -> dx [M,K] = bf16(dy) @ bf16(w), dw [N,K] = bf16(dy)^T @ bf16(x),
//                                                       db [N] = sum of dy's rows (float32)
//   ErnieBf16LinearRelu     (x, w, b)      -> max(ErnieBf16Linear(x, w, b), 0)
//   ErnieBf16LinearReluGrad (dy, y, x, w)  -> ErnieBf16LinearGrad(dy * (y > 0), x, w), y being the forward's output
//   ErnieBf16HeadsNT, ErnieBf16ItemsNN, ErnieBf16ItemsTN: the attention's products, below.
// Inputs are rounded to bf16 to nearest-even (with the CPU's VCVTNEPS2BF16 where it has AVX512_BF16, which also
// flushes float32 subnormals to zero); products are accumulated in fp32 by oneDNN. The gradient operator rounds dy
// once for both of its GEMMs and sums the bias gradient in the same pass.
// Return value: 0 on success, 1 for bad shapes or types, 2 + the oneDNN status when oneDNN fails.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

extern "C" {
// From oneDNN's public C API (dnnl.h); dnnl_dim_t is int64_t and dnnl_status_t an int-sized enum (0 = success).
int dnnl_gemm_bf16bf16f32(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A,
                          int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);
}

using ernie::AllFloat32;
using ernie::ElementCount;
using ernie::Parallel;
using ernie::ParallelRange;
using ernie::Range;
using ernie::WorkerCount;

namespace {

inline uint16_t ToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) return (bits >> 16) | 0x0040u;  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(bits >> 16);
}

ERNIE_VECTOR_CLONES void ToBf16Portable(const float *source, uint16_t *target, int64_t n) {
  for (int64_t i = 0; i < n; ++i) target[i] = ToBf16(source[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
// VCVTNEPS2BF16: 2.3x the portable loop's speed on cached [1024, 768] data (Zen 4), same bits except subnormals.
__attribute__((target("avx512f,avx512bf16"))) void ToBf16Native(const float *source, uint16_t *target, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(target + i),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(source + i))));
  ToBf16Portable(source + i, target + i, n - i);
}

void ToBf16Range(const float *source, uint16_t *target, int64_t n) {
  static const bool native = __builtin_cpu_supports("avx512bf16");
  if (native)
    ToBf16Native(source, target, n);
  else
    ToBf16Portable(source, target, n);
}
#else
void ToBf16Range(const float *source, uint16_t *target, int64_t n) { ToBf16Portable(source, target, n); }
#endif

ERNIE_VECTOR_CLONES void AddTo(const float *values, float *sums, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) sums[i] += values[i];
}

ERNIE_VECTOR_CLONES void Relu(float *values, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) values[i] = values[i] > 0.0f ? values[i] : 0.0f;
}

// out = dy where y > 0, else 0.
ERNIE_VECTOR_CLONES void MaskNonPositive(const float *dy, const float *y, float *out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

using Bf16Buffer = std::unique_ptr<uint16_t[]>;  // not a std::vector, which would write zeros first

// A bf16 copy of n floats, converted with all workers.
Bf16Buffer ToBf16All(const float *source, int64_t n) {
  Bf16Buffer out(new uint16_t[n]);
  uint16_t *target = out.get();
  // Handing work to another thread costs about as much as converting tens of thousands of values: small tensors stay
  // on the calling thread.
  ParallelRange(n, 65536, [&](int, int64_t begin, int64_t end) {
    ToBf16Range(source + begin, target + begin, end - begin);
  });
  return out;
}

// How many parts to split `units` (rows or matrices) into: at least min_units each and 2^22 of the multiply_adds each,
// so that handing a share to another thread costs little next to the share.
int GemmParts(int64_t units, int64_t min_units, int64_t multiply_adds) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({WorkerCount(), units / min_units,
                                                                    multiply_adds >> 22})));
}

// Runs gemms(begin, end) over [0, units) in `parts` parts, each returning a oneDNN status; returns 0, or 2 + the first
// failing status.
int ParallelGemms(int parts, int64_t units, const std::function<int(int64_t, int64_t)> &gemms) {
  std::vector<int> status(parts, 0);
  Parallel(parts, [&](int part, int count) {
    int64_t begin, end;
    Range(units, part, count, &begin, &end);
    status[part] = gemms(begin, end);
  });
  for (int s : status)
    if (s != 0) return 2 + s;
  return 0;
}

// Rows [begin, end) of C[M,N] = op(A) @ op(B) (+ C when accumulate). A is [M,K] ('N') or [K,M] ('T'); B is [K,N]
// ('N') or [N,K] ('T').
int GemmRows(char transa, char transb, int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B, float *C,
             bool accumulate, int64_t begin, int64_t end) {
  if (end == begin) return 0;
  const int64_t lda = transa == 'N' ? K : M, ldb = transb == 'N' ? N : K;
  const uint16_t *a = transa == 'N' ? A + begin * lda : A + begin;
  return dnnl_gemm_bf16bf16f32(transa, transb, end - begin, N, K, 1.0f, a, lda, B, ldb, accumulate ? 1.0f : 0.0f,
                               C + begin * N, N);
}

int Gemm(char transa, char transb, int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B, float *C) {
  return ParallelGemms(GemmParts(M, 16, M * N * K), M, [&](int64_t begin, int64_t end) {
    return GemmRows(transa, transb, M, N, K, A, B, C, false, begin, end);
  });
}

}  // namespace

namespace {

// y = bf16(x) @ bf16(w)^T + b, then max(y, 0) when relu (params: x, w, b, y).
int Linear(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, bool relu) {
  if (nparam != 4 || !AllFloat32(nparam, dtypes) || ndims[0] != 2 || ndims[1] != 2 || ndims[2] != 1) return 1;
  const int64_t M = shapes[0][0], K = shapes[0][1], N = shapes[1][0];
  if (shapes[1][1] != K || shapes[2][0] != N) return 1;
  const Bf16Buffer x = ToBf16All(static_cast<const float *>(params[0]), M * K);
  const Bf16Buffer w = ToBf16All(static_cast<const float *>(params[1]), N * K);
  const float *bias = static_cast<const float *>(params[2]);
  float *out = static_cast<float *>(params[3]);
  return ParallelGemms(GemmParts(M, 16, M * N * K), M, [&](int64_t begin, int64_t end) {
    // Each thread writes the bias into its own rows (a [1024, 3072] output takes 1.5 ms to fill on one core), then
    // the GEMM adds to it (beta = 1).
    for (int64_t row = begin; row < end; ++row) std::memcpy(out + row * N, bias, N * sizeof(float));
    const int status = GemmRows('N', 'T', M, N, K, x.get(), w.get(), out, true, begin, end);
    if (relu) Relu(out + begin * N, (end - begin) * N);
    return status;
  });
}

// dx, dw and db of Linear from dy (params: dy, [y when relu,] x, w, dx, dw, db); with relu, dy is first zeroed where
// y is not positive (ReLU's gradient, taken from its output).
int LinearGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, bool relu) {
  const int inputs = relu ? 4 : 3;
  if (nparam != inputs + 3 || !AllFloat32(nparam, dtypes)) return 1;
  for (int i = 0; i < inputs + 2; ++i)
    if (ndims[i] != 2) return 1;
  const int64_t M = shapes[0][0], N = shapes[0][1];
  const int x_index = inputs - 2, w_index = inputs - 1;
  const int64_t K = shapes[x_index][1];
  if (shapes[x_index][0] != M || shapes[w_index][0] != N || shapes[w_index][1] != K) return 1;
  if (relu && (shapes[1][0] != M || shapes[1][1] != N)) return 1;
  const float *dy = static_cast<const float *>(params[0]);
  const float *y = relu ? static_cast<const float *>(params[1]) : nullptr;
  float *dx = static_cast<float *>(params[inputs]), *dw = static_cast<float *>(params[inputs + 1]);
  float *db = static_cast<float *>(params[inputs + 2]);
  // Each row of dy is masked, rounded and added to the bias gradient while in cache; each part sums its rows, then
  // the parts are added in order.
  const Bf16Buffer dy16(new uint16_t[M * N]);
  std::vector<std::vector<float>> partial_sums(WorkerCount());
  const int parts = ParallelRange(M, std::max<int64_t>(1, 65536 / N), [&](int part, int64_t begin, int64_t end) {
    std::vector<float> &sums = partial_sums[part];
    sums.assign(N, 0.0f);
    std::vector<float> masked(relu ? N : 0);
    for (int64_t row = begin; row < end; ++row) {
      const float *values = dy + row * N;
      if (relu) {
        MaskNonPositive(values, y + row * N, masked.data(), N);
        values = masked.data();
      }
      ToBf16Range(values, dy16.get() + row * N, N);
      AddTo(values, sums.data(), N);
    }
  });
  std::copy(partial_sums[0].begin(), partial_sums[0].end(), db);
  for (int part = 1; part < parts; ++part)
    for (int64_t j = 0; j < N; ++j) db[j] += partial_sums[part][j];
  const Bf16Buffer x = ToBf16All(static_cast<const float *>(params[x_index]), M * K);
  const Bf16Buffer w = ToBf16All(static_cast<const float *>(params[w_index]), N * K);
  const int status = Gemm('N', 'N', M, K, N, dy16.get(), w.get(), dx);
  return status != 0 ? status : Gemm('T', 'N', N, K, M, dy16.get(), x.get(), dw);
}

}  // namespace

extern "C" int ErnieBf16Linear(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  return Linear(nparam, params, ndims, shapes, dtypes, false);
}

extern "C" int ErnieBf16LinearRelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                   void *stream, void *extra) {
  return Linear(nparam, params, ndims, shapes, dtypes, true);
}

extern "C" int ErnieBf16LinearGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                   void *stream, void *extra) {
  return LinearGrad(nparam, params, ndims, shapes, dtypes, false);
}

extern "C" int ErnieBf16LinearReluGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                       void *stream, void *extra) {
  return LinearGrad(nparam, params, ndims, shapes, dtypes, true);
}

// The attention's per-(batch, head) products, reading and writing the heads where the projections put them: a
// "heads" tensor is [B, S, H, d] (the matrix of item (b, h) is [S, d] with rows H * d apart), an "items" tensor is
// [B, H, R, C]; no transposed copies (MindSpore's Gather and its UnsortedSegmentSum gradient took 56 ms of an
// ERNIE-base bf16 training step for them).
//   ErnieBf16HeadsNT (a heads [B,S,H,d], b heads [B,T,H,d])  -> items [B,H,S,T] = a @ b^T   (scores; their dprobs)
//   ErnieBf16ItemsNN (a items [B,H,S,T], b heads [B,T,H,d])  -> heads [B,S,H,d] = a @ b     (context; dquery)
//   ErnieBf16ItemsTN (a items [B,H,T,S], b heads [B,T,H,d])  -> heads [B,S,H,d] = a^T @ b   (dkey; dvalue)
namespace {

// item = b * heads + h; a heads tensor's item starts at b * S * H * d + h * d, an items tensor's at item * R * C.
inline int64_t ItemOffset(bool heads_layout, int64_t item, int64_t heads, int64_t rows, int64_t cols) {
  return heads_layout ? (item / heads) * rows * heads * cols + (item % heads) * cols : item * rows * cols;
}

// out[item] = op(a[item]) @ op(b[item]) for the B * H items, split over threads; M, N, K as in GemmRows; params and
// shapes are the AOT function's (a, b, out).
int HeadProducts(char transa, char transb, bool a_heads, bool b_heads, bool out_heads, int64_t batch, int64_t heads,
                 int64_t M, int64_t N, int64_t K, void **params, int64_t **shapes) {
  const Bf16Buffer a = ToBf16All(static_cast<const float *>(params[0]), ElementCount(4, shapes[0]));
  const Bf16Buffer b = ToBf16All(static_cast<const float *>(params[1]), ElementCount(4, shapes[1]));
  float *out = static_cast<float *>(params[2]);
  const int64_t a_rows = transa == 'N' ? M : K, a_cols = transa == 'N' ? K : M;
  const int64_t b_rows = transb == 'N' ? K : N, b_cols = transb == 'N' ? N : K;
  const int64_t lda = a_heads ? heads * a_cols : a_cols, ldb = b_heads ? heads * b_cols : b_cols;
  const int64_t ldc = out_heads ? heads * N : N;
  const int64_t items = batch * heads;
  return ParallelGemms(GemmParts(items, 1, items * M * N * K), items, [&](int64_t begin, int64_t end) {
    int status = 0;
    for (int64_t item = begin; item < end && status == 0; ++item)
      status = dnnl_gemm_bf16bf16f32(transa, transb, M, N, K, 1.0f,
                                     a.get() + ItemOffset(a_heads, item, heads, a_rows, a_cols), lda,
                                     b.get() + ItemOffset(b_heads, item, heads, b_rows, b_cols), ldb, 0.0f,
                                     out + ItemOffset(out_heads, item, heads, M, N), ldc);
    return status;
  });
}

bool FourDimFloat32(int nparam, int *ndims, const char **dtypes) {
  return nparam == 3 && AllFloat32(nparam, dtypes) && ndims[0] == 4 && ndims[1] == 4 && ndims[2] == 4;
}

}  // namespace

extern "C" int ErnieBf16HeadsNT(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (!FourDimFloat32(nparam, ndims, dtypes)) return 1;
  const int64_t *a = shapes[0], *b = shapes[1];  // [B,S,H,d], [B,T,H,d]
  if (b[0] != a[0] || b[2] != a[2] || b[3] != a[3]) return 1;
  return HeadProducts('N', 'T', true, true, false, a[0], a[2], a[1], b[1], a[3], params, shapes);
}

extern "C" int ErnieBf16ItemsNN(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (!FourDimFloat32(nparam, ndims, dtypes)) return 1;
  const int64_t *a = shapes[0], *b = shapes[1];  // [B,H,S,T], [B,T,H,d]
  if (b[0] != a[0] || b[2] != a[1] || b[1] != a[3]) return 1;
  return HeadProducts('N', 'N', false, true, true, a[0], a[1], a[2], b[3], a[3], params, shapes);
}

extern "C" int ErnieBf16ItemsTN(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (!FourDimFloat32(nparam, ndims, dtypes)) return 1;
  const int64_t *a = shapes[0], *b = shapes[1];  // [B,H,T,S], [B,T,H,d]
  if (b[0] != a[0] || b[2] != a[1] || b[1] != a[2]) return 1;
  return HeadProducts('T', 'N', false, true, true, a[0], a[1], a[3], b[3], a[2], params, shapes);
}
