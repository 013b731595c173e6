// Fused LayerNorm over the last axis (float32), forward and backward, as MindSpore AOT custom operators on CPU.
//
// Why: MindSpore 2.10's CPU LayerNorm and LayerNormGrad take about 25x and 20x torch's time on ERNIE-base's
// [1024, 768] activations on a 2-core AMD EPYC (bench/layernorm_probe.py: 3.1 ms / 14 ms vs 0.12 ms / 0.67 ms, minimum
// of 60 calls), and an ERNIE-base training step runs 25 of each.
//
// AOT signature as in bf16_gemm.cc; rows are split over the threads of csrc/parallel.h, at least 8 each.
//   ErnieLayerNorm     (x [R,H], gamma [H], beta [H], eps [1])                  -> y [R,H], mean [R], rstd [R]
//   ErnieLayerNormGrad (dy [R,H], x [R,H], gamma [H], mean [R], rstd [R])      -> dx [R,H], dgamma [H], dbeta [H]
// y = (x - mean) * rstd * gamma + beta with rstd = 1 / sqrt(var + eps) (biased variance, two passes over the row);
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma; dgamma = sum_rows(dy * xhat),
// dbeta = sum_rows(dy) (each thread sums its rows, then the partial sums are added in thread order).
#include <cmath>

#include "parallel.h"

using ernie::AllFloat32;
using ernie::ParallelRange;
using ernie::WorkerCount;

namespace {

ERNIE_VECTOR_CLONES void LayerNormRows(const float *x, const float *gamma, const float *beta, float eps, int64_t H,
                                       int64_t begin, int64_t end, float *y, float *mean_out, float *rstd_out) {
  for (int64_t r = begin; r < end; ++r) {
    const float *row = x + r * H;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t h = 0; h < H; ++h) sum += row[h];
    const float mean = sum / H;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t h = 0; h < H; ++h) squares += (row[h] - mean) * (row[h] - mean);
    const float rstd = 1.0f / std::sqrt(squares / H + eps);
    float *out = y + r * H;
#pragma omp simd
    for (int64_t h = 0; h < H; ++h) out[h] = (row[h] - mean) * rstd * gamma[h] + beta[h];
    mean_out[r] = mean;
    rstd_out[r] = rstd;
  }
}

// dx of rows [begin, end); their dgamma and dbeta are added to part_dgamma and part_dbeta.
ERNIE_VECTOR_CLONES void LayerNormGradRows(const float *dy, const float *x, const float *gamma, const float *mean,
                                           const float *rstd, int64_t H, int64_t begin, int64_t end, float *dx,
                                           float *part_dgamma, float *part_dbeta) {
  for (int64_t r = begin; r < end; ++r) {
    const float *row = x + r * H, *grad = dy + r * H;
    const float m = mean[r], s = rstd[r];
    float sum_g = 0.0f, sum_g_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
    for (int64_t h = 0; h < H; ++h) {
      const float xhat = (row[h] - m) * s, g = grad[h] * gamma[h];
      sum_g += g;
      sum_g_xhat += g * xhat;
      part_dgamma[h] += grad[h] * xhat;
      part_dbeta[h] += grad[h];
    }
    const float mean_g = sum_g / H, mean_g_xhat = sum_g_xhat / H;
    float *out = dx + r * H;
#pragma omp simd
    for (int64_t h = 0; h < H; ++h) {
      const float xhat = (row[h] - m) * s;
      out[h] = s * (grad[h] * gamma[h] - mean_g - xhat * mean_g_xhat);
    }
  }
}

}  // namespace

extern "C" int ErnieLayerNorm(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                              void *stream, void *extra) {
  if (nparam != 7 || !AllFloat32(nparam, dtypes) || ndims[0] != 2) return 1;
  const int64_t R = shapes[0][0], H = shapes[0][1];
  if (shapes[1][0] != H || shapes[2][0] != H || shapes[3][0] != 1) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  float *mean_out = static_cast<float *>(params[5]);
  float *rstd_out = static_cast<float *>(params[6]);
  ParallelRange(R, 8, [&](int, int64_t begin, int64_t end) {
    LayerNormRows(x, gamma, beta, eps, H, begin, end, y, mean_out, rstd_out);
  });
  return 0;
}

extern "C" int ErnieLayerNormGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *stream, void *extra) {
  if (nparam != 8 || !AllFloat32(nparam, dtypes) || ndims[0] != 2 || ndims[1] != 2) return 1;
  const int64_t R = shapes[0][0], H = shapes[0][1];
  if (shapes[1][0] != R || shapes[1][1] != H || shapes[2][0] != H || shapes[3][0] != R || shapes[4][0] != R)
    return 1;
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *gamma = static_cast<const float *>(params[2]);
  const float *mean = static_cast<const float *>(params[3]);
  const float *rstd = static_cast<const float *>(params[4]);
  float *dx = static_cast<float *>(params[5]);
  float *dgamma = static_cast<float *>(params[6]);
  float *dbeta = static_cast<float *>(params[7]);
  std::vector<float> partial(static_cast<size_t>(WorkerCount()) * 2 * H, 0.0f);  // per part: dgamma then dbeta
  const int parts = ParallelRange(R, 8, [&](int part, int64_t begin, int64_t end) {
    float *part_dgamma = partial.data() + static_cast<size_t>(part) * 2 * H;
    LayerNormGradRows(dy, x, gamma, mean, rstd, H, begin, end, dx, part_dgamma, part_dgamma + H);
  });
  for (int64_t h = 0; h < H; ++h) {
    float g = 0.0f, b = 0.0f;
    for (int part = 0; part < parts; ++part) {
      g += partial[static_cast<size_t>(part) * 2 * H + h];
      b += partial[static_cast<size_t>(part) * 2 * H + H + h];
    }
    dgamma[h] = g;
    dbeta[h] = b;
  }
  return 0;
}
