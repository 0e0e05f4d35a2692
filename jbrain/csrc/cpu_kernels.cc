// CPU kernels for jbrain, called from JAX through the XLA FFI (jbrain/cpu_kernels.py).
//
// EventPropagate: the event path's I = W @ s on a CPU, the same numbers as
// synapses.propagate_event (XLA) bit for bit: per listed spiker j, its K
// out-synapses are one contiguous row of out_post (targets) and of the
// presynaptic-order weights; each weight is quantised as in
// synapses.quantize, q = int32(w * 2^F + 0.5), and added into an int32
// accumulator, which is converted once: I = float(acc) * 2^-F. Integer sums
// are associative, so the order of the list does not matter.
//
// EventPush: the same sums over the spike vector (u8, N), with no spike list
// (backends.push_event: a static event projection builds none).
//
// CsrOrder / CsrPush: the same sums for a static projection with no
// out-table (rules with a fixed fan-in only: the plan's "csr" path). Once
// per burst CsrOrder groups the synapse ids by pre neuron; each step
// CsrPush adds the synapses of the pres that fired.
//
// EventStdp: plasticity.stdp_step(pre_major=True) without synaptic scaling,
// bit for bit (the same algorithm as kernels.event_stdp on GPUs), in place.
// Per listed spiker j, with s the spikes and ltp/ltd the trace increments:
//   out-row e = j*K + k, post i = out_post[j, k]:
//       w = clip(w + ltp[j], 0, w_max) if s[i]   (LTP of a pair that both fired)
//       w = clip(w - ltd[i], 0, w_max)           (LTD: pre j fired)
//   in-row, pre p = pre[j, k], entry p*K + k, where s[p] = 0:
//       w = clip(w + ltp[p], 0, w_max)           (LTP: post j fired)
// Every weight is written by at most one spiker (out-rows belong to spikers,
// the in-row entries written to neurons that did not fire), so the order of
// the list does not matter and in-place equals XLA's read-all-then-scatter.
//
// Why: XLA:CPU gathers the C spiker rows element by element (~3 ns each,
// C*K of them, padding included) before its scatter; here a row is two
// cache-line pairs, fetched PREFETCH rows ahead so their misses overlap.
//
// Threads: the kernels split the spike list (EventPush: the neurons) into
// T contiguous shares (T = the cores this process may run on, or
// $JBRAIN_CPU_THREADS; one share when the list holds fewer than
// kMinEventsPerShare synapse events per share, where a second thread costs
// more than it saves), run on the calling thread and XLA's CPU thread pool
// (`Parallel`).
// EventPropagate gives each share its own int32 accumulator and adds them
// (integer sums: the same numbers for any T); EventStdp needs none, since
// every weight is written by at most one spiker.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kFracBits = 20;  // config.WEIGHT_FRAC_BITS (checked by cpu_kernels.py)
constexpr int64_t kPrefetch = 16;  // rows ahead
constexpr int64_t kMinEventsPerShare = 4096;  // synapse events (C*K) a share must have to be worth a task

// Threads for a list of `events` synapse events: $JBRAIN_CPU_THREADS if set
// (>= 1), else the cores in this process's affinity mask; fewer when the
// list is short.
int64_t Threads(int64_t events) {
  static const int64_t cores = [] {
    if (const char* env = std::getenv("JBRAIN_CPU_THREADS")) {
      const long t = std::strtol(env, nullptr, 10);
      if (t >= 1) return static_cast<int64_t>(t);
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<int64_t>(std::max(1, CPU_COUNT(&set)));
    return static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return std::max<int64_t>(1, std::min(cores, events / kMinEventsPerShare));
}

// Runs body(t, begin, end) for the shares t < T of [0, c): share 0 on the
// calling thread, the others as tasks on XLA's CPU thread pool, whose
// threads are already running (a thread of our own, started each call, cost
// tens of microseconds). XLA does not promise that a task runs beside
// another, so the caller never waits for a task no thread has started: a
// share is claimed by whoever reaches it first, its pool task or the caller
// after its own share, and the caller waits only for shares a pool thread
// is running.
template <typename Body>
void Parallel(ffi::ThreadPool& pool, int64_t threads, int64_t c, Body body) {
  auto share = [&](int64_t t) { body(t, c * t / threads, c * (t + 1) / threads); };
  if (threads <= 1) {
    share(0);
    return;
  }
  // Per share 0: unclaimed, 1: running, 2: done. Shared with the tasks,
  // which may run (and find their share claimed) after this call returns.
  auto state = std::make_shared<std::vector<std::atomic<int>>>(threads);
  for (auto& s : *state) s.store(0, std::memory_order_relaxed);
  auto claim = [](std::atomic<int>& s) {
    int unclaimed = 0;
    return s.compare_exchange_strong(unclaimed, 1, std::memory_order_acq_rel);
  };
  for (int64_t t = 1; t < threads; ++t) {
    pool.Schedule([state, t, &share, claim] {
      if (!claim((*state)[t])) return;
      share(t);
      (*state)[t].store(2, std::memory_order_release);
    });
  }
  share(0);
  for (int64_t t = 1; t < threads; ++t) {
    if (claim((*state)[t])) {
      share(t);
    } else {
      while ((*state)[t].load(std::memory_order_acquire) != 2) std::this_thread::yield();
    }
  }
}

// synapses.quantize: a weight as int32 fixed point, q = int32(w * 2^F + 0.5).
inline int32_t Quantize(float w) { return static_cast<int32_t>(w * static_cast<float>(1 << kFracBits) + 0.5f); }

// Adds the out-rows of spikers id[begin, end) into acc (int32 fixed point;
// ids outside [0, n) are padding), prefetching kPrefetch rows ahead.
void AddRows(const int32_t* post, const float* w, const int32_t* id, int64_t begin, int64_t end, int64_t n,
             int64_t k, int32_t* acc) {
  for (int64_t r = begin; r < end; ++r) {
    if (r + kPrefetch < end) {
      const int64_t ahead = id[r + kPrefetch];
      if (ahead >= 0 && ahead < n) {
        for (int64_t b = 0; b < k; b += 16) {  // 64-byte lines
          __builtin_prefetch(post + ahead * k + b);
          __builtin_prefetch(w + ahead * k + b);
        }
      }
    }
    const int64_t j = id[r];
    if (j < 0 || j >= n) continue;  // padding (id N)
    const int32_t* p = post + j * k;
    const float* wr = w + j * k;
    // 16 synapses at a time: their weights quantised in one vector loop,
    // then added one by one (a target outside [0, n) is padding)
    for (int64_t b = 0; b < k; b += 16) {
      const int64_t m = std::min<int64_t>(16, k - b);
      int32_t q[16];
      if (m == 16) {
        for (int64_t s = 0; s < 16; ++s) q[s] = Quantize(wr[b + s]);
      } else {
        for (int64_t s = 0; s < m; ++s) q[s] = Quantize(wr[b + s]);
      }
      for (int64_t s = 0; s < m; ++s) {
        const uint32_t target = static_cast<uint32_t>(p[b + s]);
        if (target < static_cast<uint64_t>(n)) acc[target] += q[s];
      }
    }
  }
}

// The int32 accumulators of threads 1..T-1 of `SumShares` and EventPush's
// spike lists, kept from call to call (a step neither allocates nor
// page-faults them again); a mutex guards the free list, as XLA may run
// two kernels at once.
std::mutex scratch_mutex;
std::vector<std::vector<int32_t>> scratch_free;

std::vector<std::vector<int32_t>> TakeScratch(int64_t count, int64_t n) {
  std::vector<std::vector<int32_t>> out;
  {
    std::lock_guard<std::mutex> lock(scratch_mutex);
    while (static_cast<int64_t>(out.size()) < count && !scratch_free.empty()) {
      out.push_back(std::move(scratch_free.back()));
      scratch_free.pop_back();
    }
  }
  out.resize(count);
  for (auto& a : out) a.resize(n);  // contents: zeroed by their thread
  return out;
}

void GiveScratch(std::vector<std::vector<int32_t>> used) {
  std::lock_guard<std::mutex> lock(scratch_mutex);
  for (auto& a : used) scratch_free.push_back(std::move(a));
}

// Runs add(acc, begin, end) over `threads` shares of [0, c), share 0
// accumulating in `own` (n,), share t > 0 in an accumulator of its own
// (each share zeroes its own); then, in a second round, share t adds the
// other accumulators' slice t of [0, n) into `own` and calls finish(own,
// lo, hi) on it, so no pass over [0, n) runs on one thread alone. Integer
// sums: the same numbers for any T.
template <typename Add, typename Finish>
void SumShares(ffi::ThreadPool& pool, int64_t threads, int64_t c, int64_t n, int32_t* own, Add add,
               Finish finish) {
  std::vector<std::vector<int32_t>> extra = TakeScratch(threads - 1, n);
  Parallel(pool, threads, c, [&](int64_t t, int64_t begin, int64_t end) {
    int32_t* acc = t == 0 ? own : extra[t - 1].data();
    std::fill(acc, acc + n, 0);
    add(acc, begin, end);
  });
  Parallel(pool, threads, n, [&](int64_t, int64_t lo, int64_t hi) {
    for (const auto& a : extra) {
      for (int64_t i = lo; i < hi; ++i) own[i] += a[i];
    }
    finish(own, lo, hi);
  });
  GiveScratch(std::move(extra));
}

// SumShares into `out` (n,), then I = float(sum) * 2^-F in place.
template <typename Add>
void Accumulate(ffi::ThreadPool& pool, int64_t threads, int64_t c, int64_t n, float* out, Add add) {
  static_assert(sizeof(int32_t) == sizeof(float), "the sums live in the output buffer");
  const float inv = 1.0f / static_cast<float>(1 << kFracBits);
  SumShares(pool, threads, c, n, reinterpret_cast<int32_t*>(out), add,
            [&](int32_t* sums, int64_t lo, int64_t hi) {
              for (int64_t i = lo; i < hi; ++i) out[i] = static_cast<float>(sums[i]) * inv;
            });
}

ffi::Error EventPropagate(ffi::ThreadPool pool, ffi::Buffer<ffi::S32> out_post,
                          ffi::Buffer<ffi::F32> weights_pre, ffi::Buffer<ffi::S32> ids,
                          ffi::ResultBuffer<ffi::F32> current) {
  const int64_t n = current->element_count();
  const int64_t k = n ? out_post.element_count() / n : 0;
  const int64_t c = ids.element_count();
  if (k * n != out_post.element_count() || weights_pre.element_count() != out_post.element_count()) {
    return ffi::Error::InvalidArgument("event_propagate: out_post and weights must be (N*K,)");
  }
  const int32_t* post = out_post.typed_data();
  const float* w = weights_pre.typed_data();
  const int32_t* id = ids.typed_data();
  Accumulate(pool, Threads(c * k), c, n, current->typed_data(),
             [&](int32_t* acc, int64_t begin, int64_t end) { AddRows(post, w, id, begin, end, n, k, acc); });
  return ffi::Error::Success();
}

// EventPush: EventPropagate over the spike vector itself (no list): each
// share lists its own neurons that fired, then adds their rows.
ffi::Error EventPush(ffi::ThreadPool pool, ffi::Buffer<ffi::S32> out_post, ffi::Buffer<ffi::F32> weights_pre,
                     ffi::Buffer<ffi::U8> spikes, ffi::ResultBuffer<ffi::F32> current) {
  const int64_t n = current->element_count();
  const int64_t k = n ? out_post.element_count() / n : 0;
  if (k * n != out_post.element_count() || weights_pre.element_count() != out_post.element_count() ||
      spikes.element_count() != n) {
    return ffi::Error::InvalidArgument("event_push: out_post and weights must be (N*K,), spikes (N,)");
  }
  const int32_t* post = out_post.typed_data();
  const float* w = weights_pre.typed_data();
  const uint8_t* s = spikes.typed_data();
  int64_t fired = 0;
  for (int64_t i = 0; i < n; ++i) fired += s[i] != 0;
  // The shares' lists in one kept buffer, share [begin, end) at ids[begin:]:
  // every neuron is written and kept only if it fired (no branch to
  // mispredict on sparse random spikes).
  std::vector<std::vector<int32_t>> list = TakeScratch(1, n);
  int32_t* ids = list[0].data();
  auto add = [&](int32_t* acc, int64_t begin, int64_t end) {
    int32_t* mine = ids + begin;
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
      mine[count] = static_cast<int32_t>(i);
      count += s[i] != 0;
    }
    AddRows(post, w, mine, 0, count, n, k, acc);
  };
  Accumulate(pool, Threads(fired * k), n, n, current->typed_data(), add);
  GiveScratch(std::move(list));
  return ffi::Error::Success();
}

// CsrOrder: the synapses of a projection grouped by presynaptic neuron, for
// CsrPush (a stable counting sort): synapse e = i*K + k (post-major, pre[e]
// its pre) is order[r] for r in [offsets[pre[e]], offsets[pre[e] + 1]).
ffi::Error CsrOrder(ffi::Buffer<ffi::S32> pre, ffi::ResultBuffer<ffi::S32> offsets,
                    ffi::ResultBuffer<ffi::S32> order) {
  const int64_t e = pre.element_count();
  const int64_t n_pre = offsets->element_count() - 1;
  if (n_pre < 0 || order->element_count() != e) {
    return ffi::Error::InvalidArgument("csr_order: offsets must be (N_pre + 1,), order like pre");
  }
  const int32_t* p = pre.typed_data();
  int32_t* off = offsets->typed_data();
  int32_t* ord = order->typed_data();
  std::memset(off, 0, (n_pre + 1) * sizeof(int32_t));
  for (int64_t i = 0; i < e; ++i) {
    if (p[i] < 0 || p[i] >= n_pre) return ffi::Error::InvalidArgument("csr_order: a pre id is outside [0, N_pre)");
    ++off[p[i] + 1];
  }
  for (int64_t j = 0; j < n_pre; ++j) off[j + 1] += off[j];
  std::vector<int32_t> next(off, off + n_pre);
  for (int64_t i = 0; i < e; ++i) ord[next[p[i]]++] = static_cast<int32_t>(i);
  return ffi::Error::Success();
}

// CsrPush: the int32 fixed-point sums of W @ s for a projection with no
// out-table (any fixed fan-in rule): for every pre j that fired, its
// synapses e in CsrOrder's order add quantize(w[e]) into post e / K (w
// post-major). The sums, not the current: XLA converts them in the fusion
// that uses them, as it converts the gather path's, so the floats that
// follow round alike. The pre neurons are split into shares (`SumShares`).
ffi::Error CsrPush(ffi::ThreadPool pool, ffi::Buffer<ffi::S32> offsets, ffi::Buffer<ffi::S32> order,
                   ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::U8> spikes,
                   ffi::ResultBuffer<ffi::S32> sums) {
  const int64_t n_post = sums->element_count();
  const int64_t n_pre = spikes.element_count();
  const int64_t e = weights.element_count();
  const int64_t k = n_post ? e / n_post : 0;
  if (k * n_post != e || order.element_count() != e || offsets.element_count() != n_pre + 1) {
    return ffi::Error::InvalidArgument("csr_push: weights and order must be (N_post*K,), offsets (N_pre + 1,)");
  }
  const int32_t* off = offsets.typed_data();
  const int32_t* ord = order.typed_data();
  const float* w = weights.typed_data();
  const uint8_t* s = spikes.typed_data();
  int64_t events = 0;
  for (int64_t j = 0; j < n_pre; ++j) events += s[j] ? off[j + 1] - off[j] : 0;
  SumShares(
      pool, Threads(events), n_pre, n_post, sums->typed_data(),
      [&](int32_t* acc, int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
          if (!s[j]) continue;
          for (int32_t r = off[j]; r < off[j + 1]; ++r) {
            const int32_t syn = ord[r];
            acc[syn / k] += Quantize(w[syn]);
          }
        }
      },
      [](int32_t*, int64_t, int64_t) {});
  return ffi::Error::Success();
}

inline float Clip(float w, float w_max) { return std::min(std::max(w, 0.0f), w_max); }

ffi::Error EventStdp(ffi::ThreadPool pool, ffi::Buffer<ffi::S32> pre, ffi::Buffer<ffi::S32> out_post,
                     ffi::Buffer<ffi::U8> spikes, ffi::Buffer<ffi::S32> ids, ffi::Buffer<ffi::F32> ltp,
                     ffi::Buffer<ffi::F32> ltd, ffi::Buffer<ffi::F32> weights_in, float w_max,
                     ffi::ResultBuffer<ffi::F32> weights) {
  const int64_t n = spikes.element_count();
  const int64_t k = n ? pre.element_count() / n : 0;
  const int64_t c = ids.element_count();
  if (k * n != pre.element_count() || out_post.element_count() != pre.element_count() ||
      weights->element_count() != pre.element_count()) {
    return ffi::Error::InvalidArgument("event_stdp: pre, out_post and weights must be (N*K,)");
  }
  float* w = weights->typed_data();
  if (w != weights_in.typed_data()) {  // XLA did not alias the buffers: start from a copy
    std::memcpy(w, weights_in.typed_data(), weights->element_count() * sizeof(float));
  }
  const int32_t* pr = pre.typed_data();
  const int32_t* po = out_post.typed_data();
  const uint8_t* s = spikes.typed_data();
  const int32_t* id = ids.typed_data();
  const float* lp = ltp.typed_data();
  const float* ld = ltd.typed_data();
  // Two-stage prefetch: the rows of spiker r + 2D, then what spiker r + D
  // scatters to (in-row weights, spikes and traces of its pre and post
  // neurons), whose ids are in cache by then.
  Parallel(pool, Threads(c * k), c, [&](int64_t, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (r + 2 * kPrefetch < end) {
        const int64_t ahead = id[r + 2 * kPrefetch];
        if (ahead >= 0 && ahead < n) {
          for (int64_t b = 0; b < k; b += 16) {
            __builtin_prefetch(pr + ahead * k + b);
            __builtin_prefetch(po + ahead * k + b);
            __builtin_prefetch(w + ahead * k + b);
          }
        }
      }
      if (r + kPrefetch < end) {
        const int64_t ahead = id[r + kPrefetch];
        if (ahead >= 0 && ahead < n) {
          for (int64_t q = 0; q < k; ++q) {
            const int64_t p = pr[ahead * k + q], i = po[ahead * k + q];
            __builtin_prefetch(w + p * k + q, 1);
            __builtin_prefetch(lp + p);
            __builtin_prefetch(s + p);
            __builtin_prefetch(ld + i);
            __builtin_prefetch(s + i);
          }
        }
      }
      const int64_t j = id[r];
      if (j < 0 || j >= n) continue;
      const float ltp_j = lp[j];
      for (int64_t q = 0; q < k; ++q) {
        const int64_t e = j * k + q;
        const int32_t i = po[e];
        float x = w[e];
        if (s[i]) x = Clip(x + ltp_j, w_max);
        w[e] = Clip(x - ld[i], w_max);
        const int32_t p = pr[e];
        if (!s[p]) {
          float& y = w[static_cast<int64_t>(p) * k + q];
          y = Clip(y + lp[p], w_max);
        }
      }
    }
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JbrainEventStdp, EventStdp,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // pre (N*K,)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // out_post (N*K,)
                                  .Arg<ffi::Buffer<ffi::U8>>()  // spikes (N,)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // ids (C,), padded with N
                                  .Arg<ffi::Buffer<ffi::F32>>()  // ltp = a_plus * x_pre (N,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // ltd = a_minus * y_post (N,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // weights, presynaptic order (N*K,)
                                  .Attr<float>("w_max")
                                  .Ret<ffi::Buffer<ffi::F32>>());  // the weights, updated (aliased)

XLA_FFI_DEFINE_HANDLER_SYMBOL(JbrainEventPush, EventPush,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // out_post (N*K,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // weights, presynaptic order (N*K,)
                                  .Arg<ffi::Buffer<ffi::U8>>()  // spikes (N,)
                                  .Ret<ffi::Buffer<ffi::F32>>());  // I (N,)

XLA_FFI_DEFINE_HANDLER_SYMBOL(JbrainEventPropagate, EventPropagate,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // out_post (N*K,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // weights, presynaptic order (N*K,)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // ids (C,), padded with N
                                  .Ret<ffi::Buffer<ffi::F32>>());  // I (N,)

XLA_FFI_DEFINE_HANDLER_SYMBOL(JbrainCsrOrder, CsrOrder,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // pre (N_post*K,)
                                  .Ret<ffi::Buffer<ffi::S32>>()  // offsets (N_pre + 1,)
                                  .Ret<ffi::Buffer<ffi::S32>>());  // order (N_post*K,)

XLA_FFI_DEFINE_HANDLER_SYMBOL(JbrainCsrPush, CsrPush,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // offsets (N_pre + 1,)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // order (N_post*K,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // weights, post-major (N_post*K,)
                                  .Arg<ffi::Buffer<ffi::U8>>()  // spikes of the pre (N_pre,)
                                  .Ret<ffi::Buffer<ffi::S32>>());  // fixed-point sums (N_post,)
