// Highway dot products of GGML block weights with their 8-bit activations (Q4_0, Q5_0, Q8_0
// with Q8_0; Q4_1 with Q8_1; Q4_K, Q5_K, Q6_K with Q8_K), dispatched at run time like
// kernels_simd.cpp.
// Each block's levels are unpacked to int8 with vector bit operations, multiplied with the
// activation's int8 in 16-bit lanes and summed in 32-bit lanes (exact, as in the scalar
// references of quant_ref.cpp); the float scaling and the sum over blocks stay scalar in the
// references' order, so results differ from them only where a target fuses a multiply-add.
// Compiled once per SIMD target by hwy/foreach_target.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/core/kernels_quant_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ember/core/half.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/quant.hpp"

#ifndef EMBER_KERNELS_QUANT_SIMD_ONCE
#define EMBER_KERNELS_QUANT_SIMD_ONCE
namespace ember::kernels::quant_detail {

inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int16_t load_i16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace ember::kernels::quant_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace ember::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using quant_detail::load_f16;
using quant_detail::load_f32;
using quant_detail::load_i16;

// sum_i a[i] * b[i] over 16 int8 values: widened to int16, pairwise products summed into int32
// lanes (pmaddwd on x86).
HWY_INLINE int32_t Dot16(const int8_t* a, const int8_t* b) {
#if HWY_TARGET == HWY_SCALAR
  int32_t sum = 0;
  for (size_t i = 0; i < 16; ++i) sum += a[i] * b[i];
  return sum;
#else
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  auto sum0 = hn::Zero(d32);
  auto sum1 = hn::Zero(d32);
  for (size_t i = 0; i < 16; i += hn::Lanes(d16)) {
    const auto va = hn::PromoteTo(d16, hn::LoadU(d8, a + i));
    const auto vb = hn::PromoteTo(d16, hn::LoadU(d8, b + i));
    sum0 = hn::ReorderWidenMulAccumulate(d32, va, vb, sum0, sum1);
  }
  return hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum0, sum1)));
#endif
}

// lo[i] = (qs[i] & 15) - offset and hi[i] = (qs[i] >> 4) - offset for i < n (n % 16 == 0).
HWY_INLINE void Nibbles(const uint8_t* qs, size_t n, int8_t offset, int8_t* lo, int8_t* hi) {
  const hn::CappedTag<uint8_t, 16> du;
  const hn::Rebind<int8_t, decltype(du)> di;
  const auto mask = hn::Set(du, uint8_t{0x0F});
  const auto off = hn::Set(di, offset);
  for (size_t i = 0; i < n; i += hn::Lanes(du)) {
    const auto v = hn::LoadU(du, qs + i);
    hn::StoreU(hn::Sub(hn::BitCast(di, hn::And(v, mask)), off), di, lo + i);
    hn::StoreU(hn::Sub(hn::BitCast(di, hn::ShiftRight<4>(v)), off), di, hi + i);
  }
}

// Q4_0 (d, 16 nibble bytes; level - 8) and Q4_1 (d, m, nibbles) against Q8_0 / Q8_1
// (d[, s], 32 int8).
template <bool kHasMin>
float DotQ4(const void* w, const void* x, size_t n) {
  constexpr size_t kWBytes = kHasMin ? 20 : 18, kXBytes = kHasMin ? 36 : 34;
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  HWY_ALIGN int8_t q[32];
  float sum = 0.0f;
  for (size_t b = 0; b < n / 32; ++b, pw += kWBytes, px += kXBytes) {
    Nibbles(pw + kWBytes - 16, 16, kHasMin ? 0 : 8, q, q + 16);
    const auto* qx = reinterpret_cast<const int8_t*>(px + kXBytes - 32);
    const int32_t sumi = Dot16(q, qx) + Dot16(q + 16, qx + 16);
    sum += static_cast<float>(sumi) * (load_f16(pw) * load_f16(px));
    if constexpr (kHasMin) sum += load_f16(pw + 2) * load_f16(px + 2);
  }
  return sum;
}

float DotQ4_0Q8_0(const void* w, const void* x, size_t n) {
  return DotQ4<false>(w, x, n);
}
float DotQ4_1Q8_1(const void* w, const void* x, size_t n) {
  return DotQ4<true>(w, x, n);
}

// Q5_0: d, 32 fifth bits (element e's is bit e), nibbles; level - 16, against Q8_0.
float DotQ5_0Q8_0(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  HWY_ALIGN int8_t q[32];
  float sum = 0.0f;
  for (size_t b = 0; b < n / 32; ++b, pw += 22, px += 34) {
    Nibbles(pw + 6, 16, 0, q, q + 16);
    uint32_t qh;
    std::memcpy(&qh, pw + 2, 4);
    for (size_t e = 0; e < 32; ++e) {
      q[e] = static_cast<int8_t>((q[e] | static_cast<int>(((qh >> e) & 1u) << 4)) - 16);
    }
    const auto* qx = reinterpret_cast<const int8_t*>(px + 2);
    const int32_t sumi = Dot16(q, qx) + Dot16(q + 16, qx + 16);
    sum += static_cast<float>(sumi) * (load_f16(pw) * load_f16(px));
  }
  return sum;
}

float DotQ8_0Q8_0(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  float sum = 0.0f;
  for (size_t b = 0; b < n / 32; ++b, pw += 34, px += 34) {
    const auto* qw = reinterpret_cast<const int8_t*>(pw + 2);
    const auto* qx = reinterpret_cast<const int8_t*>(px + 2);
    const int32_t sumi = Dot16(qw, qx) + Dot16(qw + 16, qx + 16);
    sum += static_cast<float>(sumi) * (load_f16(pw) * load_f16(px));
  }
  return sum;
}

// One K-quant super-block against a Q8_K block (F32 d, 256 int8, 16 int16 group sums), given
// the weight's int8 levels and per-16 scales and mins (as in quant_ref.cpp's vec_dot_k).
HWY_INLINE float DotK(const int8_t* q, const int16_t* scale, const int16_t* min, float d,
                      float dmin, const uint8_t* x) {
  const float dx = load_f32(x);
  const auto* qx = reinterpret_cast<const int8_t*>(x + 4);
  int32_t sumi = 0, summ = 0;
  for (size_t j = 0; j < 16; ++j) {
    sumi += scale[j] * Dot16(q + 16 * j, qx + 16 * j);
    summ += min[j] * load_i16(x + 4 + 256 + 2 * j);
  }
  return (d * dx) * static_cast<float>(sumi) - (dmin * dx) * static_cast<float>(summ);
}

// Q4_K (d, dmin, 12 scale bytes, 128 nibble bytes) and Q5_K (the same plus 32 bytes of fifth
// bits before the nibbles: element i's is bit i / 32 of qh[i % 32]).
template <bool kFifthBit>
float DotQ45K(const void* w, const void* x, size_t n) {
  constexpr size_t kWBytes = kFifthBit ? 176 : 144;
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  HWY_ALIGN int8_t q[256];
  int16_t scale[16], min[16];
  float sum = 0.0f;
  for (size_t b = 0; b < n / 256; ++b, pw += kWBytes, px += 292) {
    const uint8_t* qs = pw + (kFifthBit ? 48 : 16);
    for (size_t g = 0; g < 4; ++g) Nibbles(qs + 32 * g, 32, 0, q + 64 * g, q + 64 * g + 32);
    if constexpr (kFifthBit) {
      const hn::CappedTag<uint8_t, 16> du;
      const hn::Rebind<int8_t, decltype(du)> di;
      const auto sixteen = hn::Set(du, uint8_t{16});
      for (size_t k = 0; k < 8; ++k) {
        const auto bit = hn::Set(du, static_cast<uint8_t>(1u << k));
        for (size_t l = 0; l < 32; l += hn::Lanes(du)) {
          const auto high =
              hn::IfThenElseZero(hn::TestBit(hn::LoadU(du, pw + 16 + l), bit), sixteen);
          int8_t* dst = q + 32 * k + l;
          hn::StoreU(hn::Or(hn::LoadU(di, dst), hn::BitCast(di, high)), di, dst);
        }
      }
    }
    uint8_t sc[8], m[8];
    quant::unpack_k4_scales(reinterpret_cast<const std::byte*>(pw + 4), sc, m);
    for (size_t j = 0; j < 16; ++j) {
      scale[j] = sc[j / 2];
      min[j] = m[j / 2];
    }
    sum += DotK(q, scale, min, load_f16(pw), load_f16(pw + 2), px);
  }
  return sum;
}

float DotQ4_KQ8_K(const void* w, const void* x, size_t n) {
  return DotQ45K<false>(w, x, n);
}
float DotQ5_KQ8_K(const void* w, const void* x, size_t n) {
  return DotQ45K<true>(w, x, n);
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 int8 scales, F16 d. Per 128
// elements, ql[l] holds elements l (low) and l + 64 (high), ql[l + 32] elements l + 32 and
// l + 96; qh[l] holds their high pairs in bits 0-1, 2-3, 4-5, 6-7.
float DotQ6_KQ8_K(const void* w, const void* x, size_t n) {
  const hn::CappedTag<uint8_t, 16> du;
  const hn::Rebind<int8_t, decltype(du)> di;
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  const auto low4 = hn::Set(du, uint8_t{0x0F});
  const auto low2 = hn::Set(du, uint8_t{0x03});
  const auto bias = hn::Set(di, int8_t{32});
  HWY_ALIGN int8_t q[256];
  int16_t scale[16];
  const int16_t no_min[16] = {};
  float sum = 0.0f;
  for (size_t b = 0; b < n / 256; ++b, pw += 210, px += 292) {
    for (size_t h = 0; h < 2; ++h) {
      const uint8_t* ql = pw + 64 * h;
      const uint8_t* qh = pw + 128 + 32 * h;
      int8_t* out = q + 128 * h;
      for (size_t l = 0; l < 32; l += hn::Lanes(du)) {
        const auto a = hn::LoadU(du, ql + l);
        const auto c = hn::LoadU(du, ql + 32 + l);
        const auto hi = hn::LoadU(du, qh + l);
        auto level = [&](auto nibble, auto pair) {
          return hn::Sub(hn::BitCast(di, hn::Or(nibble, hn::ShiftLeft<4>(hn::And(pair, low2)))),
                         bias);
        };
        hn::StoreU(level(hn::And(a, low4), hi), di, out + l);
        hn::StoreU(level(hn::And(c, low4), hn::ShiftRight<2>(hi)), di, out + 32 + l);
        hn::StoreU(level(hn::ShiftRight<4>(a), hn::ShiftRight<4>(hi)), di, out + 64 + l);
        hn::StoreU(level(hn::ShiftRight<4>(c), hn::ShiftRight<6>(hi)), di, out + 96 + l);
      }
    }
    const auto* sc = reinterpret_cast<const int8_t*>(pw + 192);
    // NOLINTNEXTLINE(bugprone-signed-char-misuse): int8_t, signed by format
    for (size_t j = 0; j < 16; ++j) scale[j] = sc[j];
    sum += DotK(q, scale, no_min, load_f16(pw + 208), 0.0f, px);
  }
  return sum;
}

}  // namespace HWY_NAMESPACE
}  // namespace ember::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ember::kernels {

HWY_EXPORT(DotQ4_0Q8_0);
HWY_EXPORT(DotQ4_1Q8_1);
HWY_EXPORT(DotQ5_0Q8_0);
HWY_EXPORT(DotQ8_0Q8_0);
HWY_EXPORT(DotQ4_KQ8_K);
HWY_EXPORT(DotQ5_KQ8_K);
HWY_EXPORT(DotQ6_KQ8_K);

namespace {
// EMBER_SIMD must limit the targets before the first dispatch; simd_targets() applies it (once).
void apply_simd_limit() {
  static const bool applied = !simd_targets().empty();
  (void)applied;
}
}  // namespace

float dot_q4_0_q8_0(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ4_0Q8_0)(w, x, n);
}
float dot_q4_1_q8_1(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ4_1Q8_1)(w, x, n);
}
float dot_q5_0_q8_0(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ5_0Q8_0)(w, x, n);
}
float dot_q8_0_q8_0(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ8_0Q8_0)(w, x, n);
}
float dot_q4_k_q8_k(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ4_KQ8_K)(w, x, n);
}
float dot_q5_k_q8_k(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ5_KQ8_K)(w, x, n);
}
float dot_q6_k_q8_k(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ6_KQ8_K)(w, x, n);
}

}  // namespace ember::kernels
#endif  // HWY_ONCE
