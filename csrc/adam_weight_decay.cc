// The AdamWeightDecay update of one parameter in a single pass over its memory, and the sum of squares of a gradient,
// as MindSpore AOT custom operators on CPU (src/kernels/optimizer.py).
//
// Why: an ERNIE-base fine-tuning step on a 2-core AMD EPYC spends 0.47 s in MindSpore's 201 AdamWeightDecay kernels
// and about 0.1 s more in the Square / ReduceSum / Mul of global-norm clipping (bench/profile_step.py); the update is
// memory-bound (read parameter, moments and gradient, write the first three) and here runs once, on all cores, with
// the clipping factor folded in instead of a separate multiply over every gradient.
//
// AOT signature as in bf16_gemm.cc; all tensors float32, work split over the threads of csrc/parallel.h.
//   ErnieAdamWeightDecay (param [N], m [N], v [N], grad [N], hyper [6]) -> done [1]
//     hyper = (learning rate, beta1, beta2, eps, weight decay, gradient factor). param, m and v are updated in place
//     (the Python side declares them written, as ops.Assign's variable); done is 0. MindSpore's AdamWeightDecay rule,
//     which has no bias correction:
//       g = factor * grad;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//       param -= lr * (m / (sqrt(v) + eps) + weight_decay * param)
//   ErnieSumOfSquares (x [N]) -> [1] = sum(x^2), accumulated in double per thread, the partial sums added in order.
#include <cmath>

#include "parallel.h"

using ernie::AllFloat32;
using ernie::ElementCount;
using ernie::ParallelRange;
using ernie::WorkerCount;

namespace {

// Elements per thread below which handing work to another thread costs more than it saves.
constexpr int64_t kMinChunk = 1 << 16;

ERNIE_VECTOR_CLONES void AdamWeightDecayRange(float *param, float *m, float *v, const float *grad, int64_t begin,
                                              int64_t end, float lr, float beta1, float beta2, float eps, float decay,
                                              float factor) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float g = factor * grad[i];
    const float next_m = beta1 * m[i] + (1.0f - beta1) * g;
    const float next_v = beta2 * v[i] + (1.0f - beta2) * g * g;
    param[i] -= lr * (next_m / (std::sqrt(next_v) + eps) + decay * param[i]);
    m[i] = next_m;
    v[i] = next_v;
  }
}

// float lanes over blocks of 4096 keep the loop vectorised; each block's sum is then added in double.
ERNIE_VECTOR_CLONES double SumOfSquaresRange(const float *x, int64_t begin, int64_t end) {
  double total = 0.0;
  for (int64_t block = begin; block < end; block += 4096) {
    const int64_t stop = std::min(end, block + 4096);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = block; i < stop; ++i) sum += x[i] * x[i];
    total += sum;
  }
  return total;
}

}  // namespace

extern "C" int ErnieAdamWeightDecay(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                    void *stream, void *extra) {
  if (nparam != 6 || !AllFloat32(nparam, dtypes)) return 1;
  const int64_t n = ElementCount(ndims[0], shapes[0]);
  for (int i = 1; i < 4; ++i)
    if (ElementCount(ndims[i], shapes[i]) != n) return 1;
  if (ElementCount(ndims[4], shapes[4]) != 6) return 1;
  float *param = static_cast<float *>(params[0]);
  float *m = static_cast<float *>(params[1]);
  float *v = static_cast<float *>(params[2]);
  const float *grad = static_cast<const float *>(params[3]);
  const float *hyper = static_cast<const float *>(params[4]);
  const float lr = hyper[0], beta1 = hyper[1], beta2 = hyper[2], eps = hyper[3], decay = hyper[4], factor = hyper[5];
  ParallelRange(n, kMinChunk, [&](int, int64_t begin, int64_t end) {
    AdamWeightDecayRange(param, m, v, grad, begin, end, lr, beta1, beta2, eps, decay, factor);
  });
  *static_cast<float *>(params[5]) = 0.0f;
  return 0;
}

extern "C" int ErnieSumOfSquares(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  if (nparam != 2 || !AllFloat32(nparam, dtypes)) return 1;
  const int64_t n = ElementCount(ndims[0], shapes[0]);
  const float *x = static_cast<const float *>(params[0]);
  std::vector<double> partial(WorkerCount(), 0.0);
  const int parts = ParallelRange(n, kMinChunk, [&](int part, int64_t begin, int64_t end) {
    partial[part] = SumOfSquaresRange(x, begin, end);
  });
  double total = 0.0;
  for (int part = 0; part < parts; ++part) total += partial[part];
  *static_cast<float *>(params[1]) = static_cast<float>(total);
  return 0;
}
