// bf16 GEMMs with fp32 accumulation for MindSpore AOT custom operators on CPU, through the oneDNN that ships inside
// the mindspore wheel (mindspore/lib/libdnnl.so.3).
//
// Why: MindSpore 2.10's CPU MatMul has no bf16 kernel (and its fp16 is slower than fp32), while the bundled oneDNN's
// dnnl_gemm_bf16bf16f32 runs at about twice dnnl_sgemm's speed on a CPU with AVX512_BF16 (AMX where present).
// That library's plain GEMM entry points run on the calling thread only, so each GEMM here is split by output rows
// over a few std::threads (csrc/parallel.h).
//
// Every function has MindSpore's AOT signature (see mindspore.ops.Custom, func_type="aot"):
//   int f(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream, void *extra)
// with the inputs first and the one output last; all tensors are row-major float32.
//   ErnieBf16Linear   (x [M,K], w [N,K], b [N]) -> [M,N] = bf16(x) @ bf16(w)^T + b
//   ErnieBf16MatMul   (a [M,K], b [K,N])        -> [M,N] = bf16(a) @ bf16(b)
//   ErnieBf16MatMulTA (a [K,M], b [K,N])        -> [M,N] = bf16(a)^T @ bf16(b)
// Inputs are rounded to bf16 to nearest-even; products are accumulated in fp32 by oneDNN.
// Return value: 0 on success, 1 for bad shapes or types, 2 + the oneDNN status when oneDNN fails.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "parallel.h"

extern "C" {
// From oneDNN's public C API (dnnl.h); dnnl_dim_t is int64_t and dnnl_status_t an int-sized enum (0 = success).
int dnnl_gemm_bf16bf16f32(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A,
                          int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);
}

using ernie::AllFloat32;
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

ERNIE_VECTOR_CLONES void ToBf16Range(const float *source, uint16_t *target, int64_t n) {
  for (int64_t i = 0; i < n; ++i) target[i] = ToBf16(source[i]);
}

// Converts n floats to bf16 with all workers.
std::unique_ptr<uint16_t[]> ToBf16All(const float *source, int64_t n) {
  std::unique_ptr<uint16_t[]> out(new uint16_t[n]);
  uint16_t *target = out.get();
  // A thread start costs about as much as converting 64k values: small tensors stay on the calling thread.
  ParallelRange(n, 65536, [&](int, int64_t begin, int64_t end) {
    ToBf16Range(source + begin, target + begin, end - begin);
  });
  return out;
}

// C[M,N] = op(A) @ op(B) (+ C when accumulate), split by rows of C. A is [M,K] ('N') or [K,M] ('T'); B is [K,N]
// ('N') or [N,K] ('T').
int Gemm(char transa, char transb, int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B, float *C,
         bool accumulate, int workers) {
  const int64_t lda = transa == 'N' ? K : M, ldb = transb == 'N' ? N : K;
  // At least 16 rows and 2^22 multiply-adds per thread, so that a thread start stays small next to its share.
  const int64_t by_work = M * N * K >> 22;
  int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({static_cast<int64_t>(workers), M / 16, by_work})));
  std::vector<int> status(parts, 0);
  Parallel(parts, [&](int part, int count) {
    int64_t begin, end;
    Range(M, part, count, &begin, &end);
    if (end == begin) return;
    const uint16_t *a = transa == 'N' ? A + begin * lda : A + begin;
    status[part] = dnnl_gemm_bf16bf16f32(transa, transb, end - begin, N, K, 1.0f, a, lda, B, ldb,
                                         accumulate ? 1.0f : 0.0f, C + begin * N, N);
  });
  for (int s : status)
    if (s != 0) return 2 + s;
  return 0;
}

}  // namespace

extern "C" int ErnieBf16Linear(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  if (nparam != 4 || !AllFloat32(nparam, dtypes) || ndims[0] != 2 || ndims[1] != 2 || ndims[2] != 1) return 1;
  const int64_t M = shapes[0][0], K = shapes[0][1], N = shapes[1][0];
  if (shapes[1][1] != K || shapes[2][0] != N) return 1;
  const int workers = WorkerCount();
  auto x = ToBf16All(static_cast<const float *>(params[0]), M * K);
  auto w = ToBf16All(static_cast<const float *>(params[1]), N * K);
  const float *bias = static_cast<const float *>(params[2]);
  float *out = static_cast<float *>(params[3]);
  for (int64_t row = 0; row < M; ++row) std::memcpy(out + row * N, bias, N * sizeof(float));  // then beta = 1
  return Gemm('N', 'T', M, N, K, x.get(), w.get(), out, true, workers);
}

extern "C" int ErnieBf16MatMul(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                               void *stream, void *extra) {
  if (nparam != 3 || !AllFloat32(nparam, dtypes) || ndims[0] != 2 || ndims[1] != 2) return 1;
  const int64_t M = shapes[0][0], K = shapes[0][1], N = shapes[1][1];
  if (shapes[1][0] != K) return 1;
  const int workers = WorkerCount();
  auto a = ToBf16All(static_cast<const float *>(params[0]), M * K);
  auto b = ToBf16All(static_cast<const float *>(params[1]), K * N);
  return Gemm('N', 'N', M, N, K, a.get(), b.get(), static_cast<float *>(params[2]), false, workers);
}

extern "C" int ErnieBf16MatMulTA(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  if (nparam != 3 || !AllFloat32(nparam, dtypes) || ndims[0] != 2 || ndims[1] != 2) return 1;
  const int64_t K = shapes[0][0], M = shapes[0][1], N = shapes[1][1];
  if (shapes[1][0] != K) return 1;
  const int workers = WorkerCount();
  auto a = ToBf16All(static_cast<const float *>(params[0]), K * M);
  auto b = ToBf16All(static_cast<const float *>(params[1]), K * N);
  return Gemm('T', 'N', M, N, K, a.get(), b.get(), static_cast<float *>(params[2]), false, workers);
}
