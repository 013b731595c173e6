// Helpers shared by the AOT custom operators in csrc/: how many threads to use, how to split work over them, and
// checks of their inputs.
//
// The oneDNN inside the mindspore wheel is built with its "threadpool" runtime, so its plain entry points run on the
// calling thread only, and MindSpore does not lend its own pool to AOT operators: each operator starts a few
// std::threads (one per core this process may use, or ERNIE_KERNEL_THREADS).
#pragma once

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

// Compiled for AVX-512, AVX2 and plain x86-64, the loader picking the best this CPU runs (GCC's target_clones): the
// library stays portable while the hot loops use wide registers (the AdamWeightDecay update: 2x faster than SSE2).
#if defined(__x86_64__) && defined(__GNUC__)
#define ERNIE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ERNIE_VECTOR_CLONES
#endif

namespace ernie {

inline int WorkerCount() {
  static const int count = [] {
    const char *forced = std::getenv("ERNIE_KERNEL_THREADS");
    if (forced != nullptr && std::atoi(forced) > 0) return std::atoi(forced);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return count;
}

// Runs fn(part, parts) for part in [0, parts), parts - 1 of them on new threads and one on the caller.
inline void Parallel(int parts, const std::function<void(int, int)> &fn) {
  std::vector<std::thread> threads;
  threads.reserve(parts - 1);
  for (int part = 1; part < parts; ++part) threads.emplace_back(fn, part, parts);
  fn(0, parts);
  for (auto &thread : threads) thread.join();
}

inline void Range(int64_t total, int part, int parts, int64_t *begin, int64_t *end) {
  *begin = total * part / parts;
  *end = total * (part + 1) / parts;
}

// Runs fn(part, begin, end) over [0, total) in at most WorkerCount() parts of at least min_chunk items each (a thread
// start costs tens of microseconds); returns the number of parts.
inline int ParallelRange(int64_t total, int64_t min_chunk, const std::function<void(int, int64_t, int64_t)> &fn) {
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(WorkerCount(), total / min_chunk)));
  Parallel(parts, [&](int part, int count) {
    int64_t begin, end;
    Range(total, part, count, &begin, &end);
    fn(part, begin, end);
  });
  return parts;
}

inline int64_t ElementCount(int ndim, const int64_t *shape) {
  int64_t count = 1;
  for (int i = 0; i < ndim; ++i) count *= shape[i];
  return count;
}

// Whether dtypes[0..count) are all `name` (or `alias`, MindSpore's other spelling of some types).
inline bool AllOfType(int count, const char **dtypes, const char *name, const char *alias = nullptr) {
  for (int i = 0; i < count; ++i)
    if (std::strcmp(dtypes[i], name) != 0 && (alias == nullptr || std::strcmp(dtypes[i], alias) != 0)) return false;
  return true;
}

inline bool AllFloat32(int count, const char **dtypes) { return AllOfType(count, dtypes, "float32", "float"); }

}  // namespace ernie
