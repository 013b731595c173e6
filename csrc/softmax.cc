// Softmax over the last axis (float32), forward and backward, as MindSpore AOT custom operators on CPU
// (src/kernels/softmax.py).
//
// Why: the attention's softmax in training was exp(log_softmax) (MindSpore's CPU Softmax keeps about five
// score-sized tensors per layer for its backward), which keeps two score-sized tensors per layer and takes about
// 40 ms of an ERNIE-base bf16 training step in LogSoftmax, Exp and their gradients (bench/profile_step.py). This
// backward needs only the output: one tensor per layer.
//
// AOT signature as in bf16_gemm.cc; rows are split over the threads of csrc/parallel.h.
//   ErnieSoftmax     (x [R,C])            -> y [R,C] = exp(x - max) / sum(exp(x - max)) per row
//   ErnieSoftmaxGrad (dy [R,C], y [R,C])  -> dx [R,C] = y * (dy - sum(dy * y)) per row
// exp is a polynomial (below) rather than std::exp, so that the loops vectorise: 12x std::exp's speed on AVX-512.
// A NaN in a row makes the whole row NaN, as in MindSpore's Softmax.
#include <cstring>

#include "parallel.h"

using ernie::AllFloat32;
using ernie::ParallelRange;

namespace {

// e^d for d <= 0 within 1 ulp (measured max relative error 7.8e-8 over [-87, 0]): d = k ln2 + r with |r| <= ln2 / 2
// (ln2 split in two for an exact product, Cody and Waite), e^r by its Taylor polynomial to degree 7 (truncation below
// 6e-9), 2^k written into the exponent bits. Below -87, where e^d leaves float32's normal range, it returns 0.
inline float ExpNonPositive(float d) {
  const float v = d < -87.0f ? -87.0f : d;
  const float k = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest by 1.5 * 2^23
  const float r = (v - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return d < -87.0f ? 0.0f : p * scale;
}

ERNIE_VECTOR_CLONES void SoftmaxRows(const float *x, int64_t C, int64_t begin, int64_t end, float *y) {
  for (int64_t r = begin; r < end; ++r) {
    const float *row = x + r * C;
    float *out = y + r * C;
    float max = row[0];
#pragma omp simd reduction(max : max)
    for (int64_t c = 0; c < C; ++c) max = row[c] > max ? row[c] : max;
    float sum = 0.0f;  // a NaN in the row makes its exp, so the sum and every output, NaN
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < C; ++c) {
      out[c] = ExpNonPositive(row[c] - max);
      sum += out[c];
    }
    const float inverse = 1.0f / sum;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) out[c] *= inverse;
  }
}

ERNIE_VECTOR_CLONES void SoftmaxGradRows(const float *dy, const float *y, int64_t C, int64_t begin, int64_t end,
                                         float *dx) {
  for (int64_t r = begin; r < end; ++r) {
    const float *grad = dy + r * C, *out = y + r * C;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; ++c) dot += grad[c] * out[c];
    float *result = dx + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) result[c] = out[c] * (grad[c] - dot);
  }
}

constexpr int64_t kMinRows = 64;  // rows per thread at the least: a [64, 128] block takes a few microseconds

}  // namespace

extern "C" int ErnieSoftmax(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                            void *stream, void *extra) {
  if (nparam != 2 || !AllFloat32(nparam, dtypes) || ndims[0] != 2 || shapes[0][1] < 1) return 1;
  const int64_t R = shapes[0][0], C = shapes[0][1];
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  ParallelRange(R, kMinRows, [&](int, int64_t begin, int64_t end) { SoftmaxRows(x, C, begin, end, y); });
  return 0;
}

extern "C" int ErnieSoftmaxGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 3 || !AllFloat32(nparam, dtypes) || ndims[0] != 2 || ndims[1] != 2) return 1;
  const int64_t R = shapes[0][0], C = shapes[0][1];
  if (shapes[1][0] != R || shapes[1][1] != C) return 1;
  const float *dy = static_cast<const float *>(params[0]);
  const float *y = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  ParallelRange(R, kMinRows, [&](int, int64_t begin, int64_t end) { SoftmaxGradRows(dy, y, C, begin, end, dx); });
  return 0;
}
