// Helpers shared by the AOT custom operators in csrc/: how many threads to use, how to split work over them, and
// checks of their inputs.
//
// The oneDNN inside the mindspore wheel is built with its "threadpool" runtime, so its plain entry points run on the
// calling thread only, and MindSpore does not lend its own pool to AOT operators: the operators share a pool of their
// own (one thread per core this process may use, or ERNIE_KERNEL_THREADS, the caller being one of them).
#pragma once

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
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

using PartFunction = std::function<void(int, int)>;

// WorkerCount() - 1 threads that wait for parts of one parallel region at a time. Starting std::threads instead cost
// about 30 us per thread and region, and an ERNIE-base training step runs about 1,000 regions.
class WorkerPool {
 public:
  static WorkerPool &Instance() {
    static WorkerPool *pool = new WorkerPool(WorkerCount() - 1);  // never destroyed: its threads run until exit
    return *pool;
  }

  // Runs fn(part, parts) for part in [1, parts) on the pool and part 0 on the caller, and returns true when all are
  // done; returns false, having run nothing, when another caller holds the pool (operators MindSpore runs
  // concurrently, or a region inside a region), in a process forked from the one that made the pool, or when parts
  // exceeds its threads + 1.
  bool Run(int parts, const PartFunction &fn) {
    if (getpid() != owner_ || parts - 1 > static_cast<int>(threads_.size())) return false;
    std::unique_lock<std::mutex> caller(caller_mutex_, std::try_to_lock);
    if (!caller.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &fn;
      parts_ = parts;
      pending_ = parts - 1;
      ++generation_;
    }
    wake_.notify_all();
    fn(0, parts);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
    return true;
  }

 private:
  explicit WorkerPool(int threads) : owner_(getpid()) {
    for (int index = 1; index <= threads; ++index) threads_.emplace_back([this, index] { Serve(index); });
    for (auto &thread : threads_) thread.detach();
  }

  void Serve(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (index >= parts_) continue;
      const PartFunction *task = task_;
      const int parts = parts_;
      lock.unlock();
      (*task)(index, parts);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  const pid_t owner_;
  std::vector<std::thread> threads_;
  std::mutex caller_mutex_, mutex_;
  std::condition_variable wake_, done_;
  const PartFunction *task_ = nullptr;
  int parts_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
};

// Runs fn(part, parts) for part in [0, parts), part 0 on the caller and the others on the pool (or, when the pool
// is not available, on new threads).
inline void Parallel(int parts, const PartFunction &fn) {
  if (parts <= 1) {
    fn(0, 1);
    return;
  }
  if (WorkerPool::Instance().Run(parts, fn)) return;
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

// Runs fn(part, begin, end) over [0, total) in at most WorkerCount() parts of at least min_chunk items each (handing
// work to another thread costs microseconds); returns the number of parts.
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
