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
// Why: XLA:CPU gathers the C spiker rows element by element (~3 ns each,
// C*K of them, padding included) before its scatter; here a row is two
// cache-line pairs, fetched PREFETCH rows ahead so their misses overlap.
#include <cstdint>
#include <cstring>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kFracBits = 20;  // config.WEIGHT_FRAC_BITS (checked by cpu_kernels.py)
constexpr int64_t kPrefetch = 16;  // rows ahead

ffi::Error EventPropagate(ffi::Buffer<ffi::S32> out_post, ffi::Buffer<ffi::F32> weights_pre,
                          ffi::Buffer<ffi::S32> ids, ffi::ResultBuffer<ffi::F32> current) {
  const int64_t n = current->element_count();
  const int64_t k = n ? out_post.element_count() / n : 0;
  const int64_t c = ids.element_count();
  if (k * n != out_post.element_count() || weights_pre.element_count() != out_post.element_count()) {
    return ffi::Error::InvalidArgument("event_propagate: out_post and weights must be (N*K,)");
  }
  const int32_t* post = out_post.typed_data();
  const float* w = weights_pre.typed_data();
  const int32_t* id = ids.typed_data();
  float* out = current->typed_data();
  static_assert(sizeof(int32_t) == sizeof(float), "the accumulator lives in the output buffer");
  int32_t* acc = reinterpret_cast<int32_t*>(out);
  std::memset(acc, 0, n * sizeof(int32_t));
  const float scale = static_cast<float>(1 << kFracBits);
  for (int64_t r = 0; r < c; ++r) {
    if (r + kPrefetch < c) {
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
    for (int64_t s = 0; s < k; ++s) {
      const int32_t q = static_cast<int32_t>(wr[s] * scale + 0.5f);
      const int32_t t = p[s];
      if (t >= 0 && t < n) acc[t] += q;
    }
  }
  const float inv = 1.0f / scale;
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(acc[i]) * inv;
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JbrainEventPropagate, EventPropagate,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // out_post (N*K,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // weights, presynaptic order (N*K,)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // ids (C,), padded with N
                                  .Ret<ffi::Buffer<ffi::F32>>());  // I (N,)
