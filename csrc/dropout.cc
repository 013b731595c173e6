// Dropout with a counter-based mask, forward and backward, as MindSpore AOT custom operators on CPU
// (src/kernels/dropout.py).
//
// Why: MindSpore 2.10's CPU Dropout and DropoutGrad take 0.19 s of an ERNIE-base bf16 training step on a 2-core AMD
// EPYC (bench/profile_step.py, 38 calls), and draw different masks from run to run even with a fixed seed. Here each
// element's keep bit is a hash of (seed, call number, index): no generator state, vectorised, and the same masks in
// every run that makes the same calls in the same order.
//
// AOT signature as in bf16_gemm.cc; work split over the threads of csrc/parallel.h.
//   ErnieDropout     (x [N] float32, keep [1] int32 = keep probability * 2^24) -> y [N] float32, mask [N] uint8
//   ErnieDropoutGrad (dy [N] float32, mask [N] uint8, keep [1] int32)          -> dx [N] float32
// y = x * mask / keep, dx = dy * mask / keep. The seed (0 until set) and the call number (counting ErnieDropout
// calls in this process) are process state, set by the plain C function ErnieDropoutSetState (uint32 seed, uint32
// calls): a training sets them from its seed and step, so that a resumed run draws the uninterrupted run's masks.
#include <atomic>

#include "parallel.h"

using ernie::AllFloat32;
using ernie::AllOfType;
using ernie::ElementCount;
using ernie::ParallelRange;

namespace {

constexpr int64_t kMinChunk = 1 << 16;
std::atomic<uint32_t> seed{0};
std::atomic<uint32_t> calls{0};

inline uint32_t Mix(uint32_t h) {  // murmur3's 32-bit finaliser
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

ERNIE_VECTOR_CLONES void DropoutRange(const float *x, float *y, uint8_t *mask, int64_t begin, int64_t end,
                                      uint32_t key, uint32_t threshold, float scale) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const uint8_t keep = (Mix(static_cast<uint32_t>(i) * 0x9e3779b9u + key) >> 8) < threshold;
    mask[i] = keep;
    y[i] = keep ? x[i] * scale : 0.0f;
  }
}

ERNIE_VECTOR_CLONES void DropoutGradRange(const float *dy, const uint8_t *mask, float *dx, int64_t begin,
                                          int64_t end, float scale) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

}  // namespace

extern "C" int ErnieDropout(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                            void *stream, void *extra) {
  if (nparam != 4 || ElementCount(ndims[1], shapes[1]) != 1 || !AllFloat32(1, dtypes) ||
      !AllOfType(1, dtypes + 1, "int32", "int") || !AllFloat32(1, dtypes + 2) ||
      !AllOfType(1, dtypes + 3, "uint8"))
    return 1;
  const int64_t n = ElementCount(ndims[0], shapes[0]);
  const uint32_t threshold = static_cast<uint32_t>(*static_cast<const int32_t *>(params[1]));
  const uint32_t key = Mix(seed.load() ^ 0x3c6ef372u) + Mix(calls.fetch_add(1) * 0x9e3779b9u + 0x7f4a7c15u);
  const float scale = static_cast<float>(1 << 24) / static_cast<float>(threshold);
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[2]);
  uint8_t *mask = static_cast<uint8_t *>(params[3]);
  ParallelRange(n, kMinChunk, [&](int, int64_t begin, int64_t end) {
    DropoutRange(x, y, mask, begin, end, key, threshold, scale);
  });
  return 0;
}

extern "C" void ErnieDropoutSetState(uint32_t seed_value, uint32_t calls_value) {
  seed.store(seed_value);
  calls.store(calls_value);
}

extern "C" int ErnieDropoutGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 4 || ElementCount(ndims[2], shapes[2]) != 1 || !AllFloat32(1, dtypes) ||
      !AllOfType(1, dtypes + 1, "uint8") || !AllOfType(1, dtypes + 2, "int32", "int") ||
      !AllFloat32(1, dtypes + 3))
    return 1;
  const int64_t n = ElementCount(ndims[0], shapes[0]);
  const float scale = static_cast<float>(1 << 24) / static_cast<float>(*static_cast<const int32_t *>(params[2]));
  const float *dy = static_cast<const float *>(params[0]);
  const uint8_t *mask = static_cast<const uint8_t *>(params[1]);
  float *dx = static_cast<float *>(params[3]);
  ParallelRange(n, kMinChunk, [&](int, int64_t begin, int64_t end) {
    DropoutGradRange(dy, mask, dx, begin, end, scale);
  });
  return 0;
}
