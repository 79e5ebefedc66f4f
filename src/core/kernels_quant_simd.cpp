// Highway dot products of GGML block weights with their 8-bit activations (Q4_0, Q5_0, Q8_0
// with Q8_0; Q4_1, Q5_1 with Q8_1; Q2_K, Q3_K, Q4_K, Q5_K, Q6_K with Q8_K), dispatched at run
// time like kernels_simd.cpp.
// Each block's levels are unpacked to int8 with vector bit operations, multiplied with the
// activation's int8 in 16-bit lanes and summed in 32-bit lanes (exact, as in the scalar
// references of quant_ref.cpp). No lane sum is reduced per block, which would cost more than
// the block's products: 32-element blocks scale their int32 lane sums to float and accumulate
// them lane-wise (one vector FMA per block), K-quant super-blocks accumulate their scaled
// group sums in int32 lanes (exact) and reduce once. Results differ from the references only
// in the order of the float sum over blocks, within the rounding bound quant_test.cpp checks.
// The tiles at the end (prompts) give exactly these dots' results for many row pairs at once.
// Compiled once per SIMD target by hwy/foreach_target.h, AVX3_DL (AVX-512 with VNNI) included:
// Highway 1.0 builds that target only when asked, and only this file's dispatch tables get it.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/core/kernels_quant_simd.cpp"
#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#if HWY_ARCH_X86
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/core/half.hpp"
#include "ember/core/kernels.hpp"
#include "ember/core/quant.hpp"
#include "quant_tiles.hpp"

#ifndef EMBER_KERNELS_QUANT_SIMD_ONCE
#define EMBER_KERNELS_QUANT_SIMD_ONCE
namespace ember::kernels::quant_detail {

inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
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
using quant_detail::load_f32;
using quant_detail::load_i16;
using quant_detail::load_i32;

// Q8_0 levels come straight from memory: a whole 32-element block per AVX-512 int16 vector
// (two on AVX2). Levels the kernels unpack were stored 16 bytes at a time, and are reloaded 16
// at a time (one int16 vector a group on AVX2 and AVX-512): a wider load over two narrower
// stores cannot be store-forwarded and stalls the core for longer than a block's arithmetic.
using D16 = hn::CappedTag<int16_t, 32>;
using D16G = hn::CappedTag<int16_t, 16>;

// F16 bits at p as float, branch-free: F16C's conversion on AVX2 and up, Highway's emulation
// below; exact, as f16_to_f32.
HWY_INLINE float F16(const uint8_t* p) {
  const hn::CappedTag<uint16_t, 1> du;
  const hn::Rebind<hwy::float16_t, decltype(du)> dh;
  const hn::Rebind<float, decltype(du)> df;
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return hn::GetLane(hn::PromoteTo(df, hn::BitCast(dh, hn::Set(du, bits))));
}

// Lanes of int32 partial sums of a[i] * b[i] over `kN` int8 values (kN a multiple of d16's
// lane count): widened to int16, pairwise products summed into int32 lanes (pmaddwd on x86).
// The lanes add up to the exact dot product.
template <size_t kN, class D16T>
HWY_INLINE hn::Vec<hn::Repartition<int32_t, D16T>> DotLanes(D16T d16, const int8_t* a,
                                                            const int8_t* b) {
  const hn::Repartition<int32_t, D16T> d32;
#if HWY_TARGET == HWY_SCALAR
  (void)d16;
  int32_t sum = 0;
  for (size_t i = 0; i < kN; ++i) sum += a[i] * b[i];
  return hn::Set(d32, sum);
#else
  const hn::Rebind<int8_t, D16T> d8;
  auto sum0 = hn::Zero(d32);
  auto sum1 = hn::Zero(d32);
  for (size_t i = 0; i < kN; i += hn::Lanes(d16)) {
    const auto va = hn::PromoteTo(d16, hn::LoadU(d8, a + i));
    const auto vb = hn::PromoteTo(d16, hn::LoadU(d8, b + i));
    sum0 = hn::ReorderWidenMulAccumulate(d32, va, vb, sum0, sum1);
  }
  return hn::Add(sum0, sum1);
#endif
}

template <class DF>
HWY_INLINE float Total(DF df, hn::Vec<DF> acc) {
  return hn::GetLane(hn::SumOfLanes(df, acc));
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

// q[e] += 16 where bit e of the little-endian 32-bit qh is set (Q5_0/Q5_1's fifth bits), then
// q[e] -= offset.
HWY_INLINE void FifthBits(const uint8_t* qh, int8_t offset, int8_t* q) {
#if HWY_TARGET == HWY_SCALAR
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  for (size_t e = 0; e < 32; ++e)
    q[e] = static_cast<int8_t>(q[e] + static_cast<int>((bits >> e) & 1u) * 16 - offset);
#else
  // Byte e / 8 of qh broadcast to lane e, then tested against bit e % 8; the 16-byte tables
  // work within one 128-bit block, as TableLookupBytes does on every target.
  const hn::Full128<uint8_t> du;
  const hn::Full128<int8_t> di;
  HWY_ALIGN static constexpr uint8_t kByte[2][16] = {
      {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
      {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3}};
  HWY_ALIGN static constexpr uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                                 1, 2, 4, 8, 16, 32, 64, 128};
  // The 4 bytes enter as one broadcast 32-bit lane: assembling them in a stack array and
  // loading 16 bytes from it cannot be store-forwarded, and that stall cost 4x the block's
  // arithmetic (Q5_0 decoding ran at a fifth of Q4_1's speed per byte).
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const auto v = hn::BitCast(du, hn::Set(hn::Full128<uint32_t>(), bits));
  const auto bit = hn::Load(du, kBit);
  const auto sixteen = hn::Set(du, uint8_t{16});
  const auto off = hn::Set(di, offset);
  for (size_t h = 0; h < 2; ++h) {
    const auto spread = hn::TableLookupBytes(v, hn::Load(du, kByte[h]));
    const auto high = hn::IfThenElseZero(hn::TestBit(spread, bit), sixteen);
    int8_t* dst = q + 16 * h;
    hn::StoreU(hn::Sub(hn::Add(hn::LoadU(di, dst), hn::BitCast(di, high)), off), di, dst);
  }
#endif
}

// Whether this target's Q4_0, Q4_1, Q5_0 and Q5_1 dots sum a block with vpdpbusd (Lanes32),
// into lanes of four consecutive elements, rather than DotLanes' pairs.
constexpr bool kQuadLanes = HWY_TARGET == HWY_AVX3_DL;

// Q4_0 (d, 16 nibble bytes; level - 8), Q4_1 (d, m, nibbles), Q5_0 (d, 32 fifth bits: element
// e's is bit e, nibbles; level - 16) and Q5_1 (d, m, fifth bits, nibbles) against Q8_0 / Q8_1
// (d[, s], 32 int8). Q8_1's s = d * sum(q) turns the min into one product per block.
template <bool kHasMin, bool kFifthBit>
struct Q45 {
  static constexpr size_t kHead = (kHasMin ? 4 : 2) + (kFifthBit ? 4 : 0);
  static constexpr size_t kWBytes = kHead + 16, kXBytes = kHasMin ? 36 : 34;
  static constexpr bool kMin = kHasMin;
  // What comes off each stored level (Q4_1's and Q5_1's minimum is a separate term).
  static constexpr int8_t kOffset = kHasMin ? 0 : (kFifthBit ? 16 : 8);
  // The int16 vectors Lanes32 sums a block with, and whether its VNNI lanes replace them.
  using Tag = D16G;
  static constexpr bool kQuads = kQuadLanes;
  // The block's 32 int8 levels, offset removed.
  static HWY_INLINE void Levels(const uint8_t* pw, int8_t* q) {
    if constexpr (kFifthBit) {
      Nibbles(pw + kHead, 16, 0, q, q + 16);
      FifthBits(pw + kHead - 4, kOffset, q);
    } else {
      Nibbles(pw + kHead, 16, kOffset, q, q + 16);
    }
  }
};

// Q8_0 weights (d, 32 int8) against Q8_0.
struct Q8 {
  static constexpr size_t kWBytes = 34, kXBytes = 34;
  static constexpr bool kMin = false;
  using Tag = D16;  // as DotQ8_0Q8_0
  static constexpr bool kQuads = false;
  static HWY_INLINE void Levels(const uint8_t* pw, int8_t* q) { std::memcpy(q, pw + 2, 32); }
};

// The int32 lanes of one 32-element block's w . x (F: Q45 or Q8), in F::Tag's int16 vectors
// (DotLanes' grouping) on every target; the x86 specializations below give the same lanes
// faster, or (VNNI) their own. Every dot of this type then takes the same float step per block
// (Dot32's), so the single-row and multi-row dots agree bit for bit.
template <class F>
struct Lanes32 {
  using D32 = hn::Repartition<int32_t, typename F::Tag>;
  static HWY_INLINE hn::Vec<D32> Of(const uint8_t* pw, const uint8_t* px) {
    const typename F::Tag d16;
    const auto* qx = reinterpret_cast<const int8_t*>(px + F::kXBytes - 32);
    if constexpr (std::is_same_v<F, Q8>) {
      return DotLanes<32>(d16, reinterpret_cast<const int8_t*>(pw + 2), qx);
    } else {
      HWY_ALIGN int8_t q[32];
      F::Levels(pw, q);
      return DotLanes<32>(d16, q, qx);
    }
  }
};

#if HWY_TARGET == HWY_AVX3_DL
// A 4-bit block's levels in element order: low nibbles (elements 0-15), then high ones.
HWY_INLINE __m256i Nibbles32(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i low4 = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low4),
                          _mm_and_si128(packed, low4));
}

// Q5_0 and Q5_1: a block's levels in one 256-bit register, in element order (built there, not
// stored and reloaded as the generic kernel does, which cost more than the block's arithmetic).
template <bool kSigned>
HWY_INLINE __m256i Levels5(const uint8_t* qs, const uint8_t* qh) {
  const __m256i nibbles = Nibbles32(qs);
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  // Byte e gets byte e / 8 of the bits (vpshufb stays within each 128-bit half, which both hold
  // the broadcast word), then is tested against bit e % 8.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int32_t>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  // Q5_1: nibble + 16 for a set bit. Q5_0: that minus 16, which for a clear bit is the nibble
  // with the int8's high bits set.
  if constexpr (kSigned)
    return _mm256_or_si256(nibbles, _mm256_andnot_si256(set, _mm256_set1_epi8(-16)));
  return _mm256_or_si256(nibbles, _mm256_and_si256(set, _mm256_set1_epi8(16)));
}

// The VNNI instructions are written as EVEX assembly: Highway 1.0.3 compiles AVX3_DL for
// "avxvnni", so the compilers' 256-bit intrinsics emit the VEX form (AVX-VNNI), which Ice Lake
// and Zen 4 lack although Highway dispatches AVX3_DL to them (it checks AVX512_VNNI). (On zmm
// registers there is only the EVEX form.)
HWY_INLINE __m512i Dpwssd(__m512i sum, __m512i a, __m512i b) {
  asm("vpdpwssd %2, %1, %0" : "+v"(sum) : "v"(a), "v"(b));
  return sum;
}

// AVX-512 VNNI: one vpdpbusd sums a block's 32 u8 x i8 products into eight int32 lanes, lane l
// holding elements 4l to 4l + 3 (in place of vpmaddubsw, vpmaddwd and an add). The lanes are
// grouped differently from DotLanes', so this target's tiles decode blocks in an order that
// gives them these lanes (BlockOrder), and dots and tiles still agree bit for bit. The float
// work per block is the other targets': the lanes as float times d_w * d_x, accumulated
// lane-wise, reduced once.
HWY_INLINE __m256i Dpbusd(__m256i u, __m256i s) {
  __m256i sum = _mm256_setzero_si256();
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(sum) : "v"(u), "v"(s));
  return sum;
}

// The lanes of signed w against x (x within +-127, as the Q8 quantizers make it): |w| is
// exact as u8 (128 for -128), and sign(x, w) * |w| = w * x.
HWY_INLINE __m256i DpbusdSigned(__m256i w, __m256i x) {
  return Dpbusd(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
}

template <bool kHasMin, bool kFifthBit>
struct Lanes32<Q45<kHasMin, kFifthBit>> {
  using F = Q45<kHasMin, kFifthBit>;
  using D32 = hn::Repartition<int32_t, D16G>;
  static HWY_INLINE hn::Vec<D32> Of(const uint8_t* pw, const uint8_t* px) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(px + F::kXBytes - 32));
    if constexpr (kFifthBit) {
      const __m256i levels = Levels5<!kHasMin>(pw + F::kHead, pw + F::kHead - 4);
      return hn::Vec<D32>{kHasMin ? Dpbusd(levels, xv) : DpbusdSigned(levels, xv)};
    } else {
      // Q4_0's level - 8 as (level . x) - (8 . x), both exact in int32.
      const __m256i lanes = Dpbusd(Nibbles32(pw + F::kHead), xv);
      if constexpr (kHasMin) return hn::Vec<D32>{lanes};
      return hn::Vec<D32>{_mm256_sub_epi32(lanes, Dpbusd(_mm256_set1_epi8(8), xv))};
    }
  }
};
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// x86 with AVX2 and up, without VNNI: Q4_0, Q4_1, Q5_0 and Q5_1 blocks go through vpmaddubsw
// (unsigned levels times the activation's int8: pair sums in int16, at most 2 * 31 * 127) and one
// vpmaddwd by ones, with both operands in "pair order": bytes 4l to 4l + 3 hold elements 2l,
// 2l + 1, 2l + 16 and 2l + 17, so int32 lane l is DotLanes<32>'s lane l on 16-lane int16
// vectors. Every lane sum, its float product and the float sums are then the generic kernel's,
// bit for bit, and the tiles (which follow DotLanes) still match. (In element order, the int16
// pair sums need two lane-crossing sign extensions per block to reach DotLanes' lanes, as do the
// generic kernel's int8 levels; Zen 3 runs those on two of its four vector pipes at 3 cycles
// each, and they bounded a SmolLM2 Q4_1 decode there.) The offsets of Q4_0 (8) and Q5_0 (16) come
// off as offset . x, a term of the activation alone that the compiler computes once for all rows
// of a block step.

// The int32 lanes of u . x, u unsigned levels and x int8, both in pair order.
HWY_INLINE __m256i PairLanes(__m256i u, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

// An activation block's 32 int8 in pair order.
HWY_INLINE __m256i PairOrder(const uint8_t* x) {
  // Qwords 0, 2, 1, 3: the low half holds elements 0-7 and 16-23, the high half 8-15 and 24-31.
  const __m256i halves =
      _mm256_permute4x64_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)), 0xD8);
  return _mm256_shuffle_epi8(halves, _mm256_broadcastsi128_si256(_mm_setr_epi8(
                                         0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15)));
}

// A 4-bit block's levels in pair order. Packed byte k holds element k (low nibble) and k + 16
// (high nibble): bytes k, k + 1 are copied twice, the first copy keeps the low nibbles and the
// second, shifted as a 16-bit word, the high ones.
HWY_INLINE __m256i PairNibbles(const uint8_t* qs) {
  const __m256i packed =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  const __m256i twice = _mm256_shuffle_epi8(
      packed, _mm256_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11,
                               10, 11, 12, 13, 12, 13, 14, 15, 14, 15));
  const __m256i low = _mm256_and_si256(twice, _mm256_set1_epi32(0x00000F0F));
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(twice, 4), _mm256_set1_epi32(0x0F0F0000));
  return _mm256_or_si256(low, high);
}

// Q5_0 and Q5_1's levels in pair order, unsigned (nibble + 16 for a set fifth bit): byte k gets
// byte e / 8 of the 32 bits of element e it holds, then is tested against bit e % 8.
HWY_INLINE __m256i PairLevels5(const uint8_t* qs, const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int32_t>(bits)),
                          _mm256_setr_epi8(0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 1, 1, 3,
                                           3, 1, 1, 3, 3, 1, 1, 3, 3, 1, 1, 3, 3));
  const __m256i bit = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(1, 2, 1, 2, 4, 8, 4, 8, 16, 32, 16, 32, 64, -128, 64, -128));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_or_si256(PairNibbles(qs), _mm256_and_si256(set, _mm256_set1_epi8(16)));
}

template <bool kHasMin, bool kFifthBit>
struct Lanes32<Q45<kHasMin, kFifthBit>> {
  using F = Q45<kHasMin, kFifthBit>;
  using D32 = hn::Repartition<int32_t, D16G>;
  static HWY_INLINE hn::Vec<D32> Of(const uint8_t* pw, const uint8_t* px) {
    const __m256i x = PairOrder(px + F::kXBytes - 32);
    const __m256i levels =
        kFifthBit ? PairLevels5(pw + F::kHead, pw + F::kHead - 4) : PairNibbles(pw + F::kHead);
    const __m256i lanes = PairLanes(levels, x);
    if constexpr (kHasMin) return hn::Vec<D32>{lanes};
    return hn::Vec<D32>{_mm256_sub_epi32(lanes, PairLanes(_mm256_set1_epi8(F::kOffset), x))};
  }
};
#endif

// sum + m * s, fused where the target has FMA: the running sum of Q4_1 and Q5_1's minimum terms
// (the weight's m times Q8_1's s). Spelled out so that every dot and tile rounds it the same
// way, whatever the compiler would contract.
HWY_INLINE float AddMinTerm(float sum, float m, float s) {
  const hn::CappedTag<float, 1> d1;
  return hn::GetLane(hn::MulAdd(hn::Set(d1, m), hn::Set(d1, s), hn::Set(d1, sum)));
}
// The same with m and s read at byte 2 of a weight and an activation block.
HWY_INLINE float AddMinTerm(float sum, const uint8_t* pw, const uint8_t* px) {
  return AddMinTerm(sum, F16(pw + 2), F16(px + 2));
}

// A 32-element block's float step: acc += its lanes as float times d_w * d_x, lane-wise.
template <class DF>
HWY_INLINE hn::Vec<DF> AddBlock(DF df, hn::Vec<hn::RebindToSigned<DF>> lanes, hn::Vec<DF> scale,
                                hn::Vec<DF> acc) {
  return hn::MulAdd(hn::ConvertTo(df, lanes), scale, acc);
}

template <class F>
float Dot32(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  const hn::Repartition<float, typename F::Tag> df;
  auto acc = hn::Zero(df);
  float min_sum = 0.0f;
  for (size_t b = 0; b < n / 32; ++b, pw += F::kWBytes, px += F::kXBytes) {
    acc = AddBlock(df, Lanes32<F>::Of(pw, px), hn::Set(df, F16(pw) * F16(px)), acc);
    if constexpr (F::kMin) min_sum = AddMinTerm(min_sum, pw, px);
  }
  return Total(df, acc) + min_sum;
}

float DotQ4_0Q8_0(const void* w, const void* x, size_t n) {
  return Dot32<Q45<false, false>>(w, x, n);
}
float DotQ4_1Q8_1(const void* w, const void* x, size_t n) {
  return Dot32<Q45<true, false>>(w, x, n);
}
float DotQ5_0Q8_0(const void* w, const void* x, size_t n) {
  return Dot32<Q45<false, true>>(w, x, n);
}
float DotQ5_1Q8_1(const void* w, const void* x, size_t n) {
  return Dot32<Q45<true, true>>(w, x, n);
}
// Q8_0 keeps DotLanes on every target: on AVX-512, a block is one 32-lane int16 vector, and
// that ran 10% faster than vpdpbusd with the sign trick on 256 bits.
float DotQ8_0Q8_0(const void* w, const void* x, size_t n) {
  return Dot32<Q8>(w, x, n);
}

// Decode's multi-row dots (one activation row) read kDotRows weight rows per pass.
constexpr size_t kDotRows = 4;

// Rows read side by side are short parallel streams, which the hardware prefetchers follow worse
// than the one stream of rows read in turn (from DRAM the four-row kernels were slower than the
// one-row ones). So each block step prefetches its share of a row group further on, whose rows
// are contiguous: that group is requested in order, as one stream.
class RowGroupPrefetch {
 public:
  // step_bytes: the bytes of one block of every row of a group.
  RowGroupPrefetch(const void* w, size_t w_stride, size_t nw, size_t step_bytes)
      : w_(static_cast<const uint8_t*>(w)),
        w_stride_(w_stride),
        total_(nw * w_stride),
        step_(step_bytes),
        ahead_(kDotRows *
               std::max<size_t>(kMinGroupsAhead,
                                (kAheadBytes + kDotRows * w_stride - 1) / (kDotRows * w_stride))) {}
  // Called at block b of the group whose first row is j.
  HWY_INLINE void operator()(size_t j, size_t b) const {
    const size_t at = (j + ahead_) * w_stride_ + step_ * b;
    for (size_t line = 0; line < step_; line += 64) {
      if (at + line < total_) hwy::Prefetch(w_ + at + line);
    }
  }

 private:
  // At least 8 KB and two groups ahead: on the Zen 5 VM a SmolLM2 Q4_1 decode (360-byte rows)
  // ran at 206 tokens/s two groups (2.9 KB) ahead, 241 at 8 KB, 230 at 16 KB.
  static constexpr size_t kAheadBytes = 8192, kMinGroupsAhead = 2;
  const uint8_t* w_;
  size_t w_stride_, total_, step_, ahead_;
};

// Decode's multi-row dot for 32-element blocks: four independent chains of block FMAs (one row's
// blocks are one chain), with the weights prefetched ahead. On a SmolLM2 Q4_1 decode (1 thread,
// tokens/s) the single-row dot ran at 194, with the prefetch at 215-227, four rows with it at
// 230-241. Each row keeps its own accumulators and takes the single-row dot's steps in order, so
// every output equals the single-row dot bit for bit.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// The F16 at byte `at` of four rows' blocks as float, one row a lane.
HWY_INLINE __m128 RowHalves(const uint8_t* pw, size_t w_stride, size_t at) {
  const auto half = [&](size_t r) {
    uint16_t bits;
    std::memcpy(&bits, pw + r * w_stride + at, 2);
    return static_cast<int16_t>(bits);
  };
  return _mm_cvtph_ps(_mm_setr_epi16(half(0), half(1), half(2), half(3), 0, 0, 0, 0));
}

// The 32 bits at pw of four rows' blocks as eight floats: lanes 2r and 2r + 1 hold row r's F16 d
// and the F16 after it (Q4_1's and Q5_1's m, the K-quants' dmin), in one conversion.
HWY_INLINE __m256 RowHeads(const uint8_t* pw, size_t w_stride) {
  return _mm256_cvtph_ps(_mm_setr_epi32(load_i32(pw), load_i32(pw + w_stride),
                                        load_i32(pw + 2 * w_stride), load_i32(pw + 3 * w_stride)));
}
#endif

// The four rows' block scales d_w * d_x (the single-row dot's products) as vectors, and their
// running minimum terms (Q4_1 and Q5_1: AddMinTerm's fused steps, block by block).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// On x86 both come from one conversion of the rows' heads and one of the activation's (d, and
// Q8_1's s): row r's scale is lane 2r of their product, read back as a broadcast, and its minimum
// term accumulates in lane 2r + 1. (Converting each F16 apart and broadcasting it in registers
// took a third of a Q4_1 block step's operations, on the shuffle pipes that bound it on Zen 3.)
struct RowMins {
  __m256 sums{};
  float row(size_t r) const {
    HWY_ALIGN float lanes[2 * kDotRows];
    _mm256_store_ps(lanes, sums);
    return lanes[2 * r + 1];
  }
};

template <class F, class DF>
HWY_INLINE void RowBlockScales(DF df, const uint8_t* pw, size_t w_stride, const uint8_t* px,
                               hn::Vec<DF> (&scale)[kDotRows], RowMins& mins) {
  const __m256 heads = RowHeads(pw, w_stride);
  const __m256 x_heads = _mm256_cvtph_ps(_mm_set1_epi32(load_i32(px)));
  HWY_ALIGN float products[2 * kDotRows];
  _mm256_store_ps(products, _mm256_mul_ps(heads, x_heads));
  for (size_t r = 0; r < kDotRows; ++r) scale[r] = hn::Set(df, products[2 * r]);
  if constexpr (F::kMin) mins.sums = _mm256_fmadd_ps(heads, x_heads, mins.sums);
}
#else
struct RowMins {
  float sums[kDotRows] = {};
  float row(size_t r) const { return sums[r]; }
};

template <class F, class DF>
HWY_INLINE void RowBlockScales(DF df, const uint8_t* pw, size_t w_stride, const uint8_t* px,
                               hn::Vec<DF> (&scale)[kDotRows], RowMins& mins) {
  for (size_t r = 0; r < kDotRows; ++r) scale[r] = hn::Set(df, F16(pw + r * w_stride) * F16(px));
  if constexpr (F::kMin) {
    for (size_t r = 0; r < kDotRows; ++r)
      mins.sums[r] = AddMinTerm(mins.sums[r], pw + r * w_stride, px);
  }
}
#endif

template <class F, class DF, size_t... kRow>
HWY_INLINE void Rows32Block(DF df, const uint8_t* pw, size_t w_stride, const uint8_t* px,
                            hn::Vec<DF> (&acc)[kDotRows], RowMins& mins,
                            std::index_sequence<kRow...> /*rows*/) {
  hn::Vec<DF> scale[kDotRows];
  RowBlockScales<F>(df, pw, w_stride, px, scale, mins);
  ((acc[kRow] = AddBlock(df, Lanes32<F>::Of(pw + kRow * w_stride, px), scale[kRow], acc[kRow])),
   ...);
}

template <class F>
void DotRows32(const void* w, size_t w_stride, size_t nw, const void* x, size_t n, float* out) {
  const hn::Repartition<float, typename F::Tag> df;
  const auto* pw = static_cast<const uint8_t*>(w);
  const RowGroupPrefetch prefetch(w, w_stride, nw, kDotRows * F::kWBytes);
  size_t j = 0;
  for (; j + kDotRows <= nw; j += kDotRows, pw += kDotRows * w_stride) {
    hn::Vec<decltype(df)> acc[kDotRows];
    RowMins mins;
    for (auto& a : acc) a = hn::Zero(df);
    const auto* px = static_cast<const uint8_t*>(x);
    for (size_t b = 0; b < n / 32; ++b, px += F::kXBytes) {
      prefetch(j, b);
      Rows32Block<F>(df, pw + b * F::kWBytes, w_stride, px, acc, mins,
                     std::make_index_sequence<kDotRows>());
    }
    for (size_t r = 0; r < kDotRows; ++r) out[j + r] = Total(df, acc[r]) + mins.row(r);
  }
  for (; j < nw; ++j, pw += w_stride) out[j] = Dot32<F>(pw, x, n);
}

#if HWY_TARGET == HWY_AVX3_DL

HWY_INLINE __m512i Dpbusd512(__m512i u, __m512i s) {
  __m512i sum = _mm512_setzero_si512();
  asm("vpdpbusd %2, %1, %0" : "+v"(sum) : "v"(u), "v"(s));
  return sum;
}

// GCC 12's AVX-512 insert and zero-extend intrinsics pass an "undefined" vector that its
// -Wmaybe-uninitialized flags, as the K-quant kernels' broadcasts below do.
HWY_DIAGNOSTICS(push)
HWY_DIAGNOSTICS_OFF(disable : 4703 6001 26494, ignored "-Wmaybe-uninitialized")

// AVX-512 VNNI, Q4_0, Q4_1, Q5_0 and Q5_1: two rows per 512-bit vector, which halves the vector
// instructions per block (DotRows32 runs a 256-bit vpdpbusd, conversion and FMA per row and
// block, about 14 instructions): SmolLM2 Q4_1 decode 230-241 -> 250-260 tokens/s. The 128-bit
// chunks of a pair's vector hold row a's elements 0-15, row b's 0-15, a's 16-31 and b's 16-31,
// against the activation's 0-15, 0-15, 16-31, 16-31: every int32 lane is one of the single-row
// dot's lanes (Lanes32's VNNI step), scaled by the same d_w * d_x and accumulated by the same
// FMA. At the end each row's eight lanes are put back in the single-row order and reduced by
// the same Total, so every output still equals the single-row dot bit for bit.
// The levels go in unsigned (nibble, plus 16 for a fifth bit), and the offsets of Q4_0 (8) and
// Q5_0 (16) come off as offset . x, as in Lanes32 for Q4_0: the same exact int32 sums.
template <bool kHasMin, bool kFifthBit>
HWY_INLINE __m512i PairLevels(const uint8_t* a, size_t w_stride) {
  using F = Q45<kHasMin, kFifthBit>;
  const uint8_t* b = a + w_stride;
  const __m256i packed = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + F::kHead))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + F::kHead)), 1);
  const __m512i nibbles = _mm512_and_si512(
      _mm512_inserti64x4(_mm512_zextsi256_si512(packed), _mm256_srli_epi16(packed, 4), 1),
      _mm512_set1_epi8(0x0F));
  if constexpr (!kFifthBit) return nibbles;
  // The fifth bits as a byte mask in the chunks' element order: a's bits 0-15, b's 0-15, a's
  // 16-31, b's 16-31.
  const auto bits_a = static_cast<uint32_t>(load_i32(a + F::kHead - 4));
  const auto bits_b = static_cast<uint32_t>(load_i32(b + F::kHead - 4));
  const uint64_t mask = (bits_a & 0xFFFFu) | (uint64_t{bits_b & 0xFFFFu} << 16) |
                        (uint64_t{bits_a >> 16} << 32) | (uint64_t{bits_b >> 16} << 48);
  return _mm512_mask_add_epi8(nibbles, mask, nibbles, _mm512_set1_epi8(16));
}

template <bool kHasMin, bool kFifthBit>
void DotRowsPairsVnni(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                      float* out) {
  using F = Q45<kHasMin, kFifthBit>;
  constexpr int8_t kOffset = F::kOffset;
  const hn::Repartition<float, D16G> df;
  const RowGroupPrefetch prefetch(w, w_stride, nw, kDotRows * F::kWBytes);
  // Lane l of a pair's vector belongs to the pair's row (l / 4) % 2: its scale lanes per pair.
  const __m512i scale_of[2] = {_mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2),
                               _mm512_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6, 4, 4, 4, 4, 6, 6, 6, 6)};
  // A row's lanes in the single-row order: the pair's first row, then its second.
  const __m512i row_lanes[2] = {
      _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0),
      _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0)};
  const auto* pw = static_cast<const uint8_t*>(w);
  size_t j = 0;
  for (; j + kDotRows <= nw; j += kDotRows, pw += kDotRows * w_stride) {
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m256 min_sums = _mm256_setzero_ps();
    const auto* px = static_cast<const uint8_t*>(x);
    for (size_t b = 0; b < n / 32; ++b, px += F::kXBytes) {
      prefetch(j, b);
      const uint8_t* block = pw + b * F::kWBytes;
      const __m512i xv = _mm512_zextsi256_si512(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(px + F::kXBytes - 32)));
      const __m512i x_pair = _mm512_shuffle_i64x2(xv, xv, _MM_SHUFFLE(1, 1, 0, 0));
      // Lanes 2r and 2r + 1: row r's d * d_x and (Q4_1, Q5_1) its m * s_x, the single-row
      // dot's products; the minimum terms accumulate in the odd lanes with its fused step.
      const __m256 heads = RowHeads(block, w_stride);
      const __m256 x_heads = _mm256_cvtph_ps(_mm_set1_epi32(load_i32(px)));
      const __m512 scales = _mm512_zextps256_ps512(_mm256_mul_ps(heads, x_heads));
      if constexpr (kHasMin) min_sums = _mm256_fmadd_ps(heads, x_heads, min_sums);
      __m512i offset_x = _mm512_setzero_si512();
      if constexpr (kOffset != 0) offset_x = Dpbusd512(_mm512_set1_epi8(kOffset), x_pair);
      for (size_t pair = 0; pair < 2; ++pair) {
        __m512i lanes = Dpbusd512(
            PairLevels<kHasMin, kFifthBit>(block + 2 * pair * w_stride, w_stride), x_pair);
        if constexpr (kOffset != 0) lanes = _mm512_sub_epi32(lanes, offset_x);
        acc[pair] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes),
                                    _mm512_permutexvar_ps(scale_of[pair], scales), acc[pair]);
      }
    }
    HWY_ALIGN float min_sum[2 * kDotRows];
    _mm256_store_ps(min_sum, min_sums);
    for (size_t r = 0; r < kDotRows; ++r) {
      const __m512 row = _mm512_permutexvar_ps(row_lanes[r % 2], acc[r / 2]);
      out[j + r] =
          Total(df, hn::Vec<decltype(df)>{_mm512_castps512_ps256(row)}) + min_sum[2 * r + 1];
    }
  }
  for (; j < nw; ++j, pw += w_stride) out[j] = Dot32<F>(pw, x, n);
}
HWY_DIAGNOSTICS(pop)

template <bool kHasMin, bool kFifthBit>
void DotRows45(const void* w, size_t w_stride, size_t nw, const void* x, size_t n, float* out) {
  DotRowsPairsVnni<kHasMin, kFifthBit>(w, w_stride, nw, x, n, out);
}
#else
template <bool kHasMin, bool kFifthBit>
void DotRows45(const void* w, size_t w_stride, size_t nw, const void* x, size_t n, float* out) {
  DotRows32<Q45<kHasMin, kFifthBit>>(w, w_stride, nw, x, n, out);
}
#endif

void DotRowsQ4_0Q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRows45<false, false>(w, w_stride, nw, x, n, out);
}
void DotRowsQ4_1Q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRows45<true, false>(w, w_stride, nw, x, n, out);
}
void DotRowsQ5_0Q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRows45<false, true>(w, w_stride, nw, x, n, out);
}
void DotRowsQ5_1Q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRows45<true, true>(w, w_stride, nw, x, n, out);
}
void DotRowsQ8_0Q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRows32<Q8>(w, w_stride, nw, x, n, out);
}

// A K-quant super-block's part of the dot from its exact integer sums: sumi = sum_j scale_j
// (q_w . q_x)_j, summ = sum_j min_j bsum_j. One function for the dots and the tile, so all
// round the same way. The fused multiply-subtract is spelled out (fused where the target has
// FMA): written as a * b - c * e, the compiler contracts one product or the other depending on
// the code around the inlined call, and the dots of one row and of four disagreed in the last
// bit.
// KBlockSums does it lane-wise, for several rows' blocks at once, in the same operations.
template <class V>
HWY_INLINE V KBlockSums(V d, V dmin, V dx, V sumi, V summ) {
  return hn::MulSub(hn::Mul(d, dx), sumi, hn::Mul(hn::Mul(dmin, dx), summ));
}
HWY_INLINE float KBlockSum(float d, float dmin, float dx, int32_t sumi, int32_t summ) {
  const hn::CappedTag<float, 1> df;
  return hn::GetLane(KBlockSums(hn::Set(df, d), hn::Set(df, dmin), hn::Set(df, dx),
                                hn::Set(df, static_cast<float>(sumi)),
                                hn::Set(df, static_cast<float>(summ))));
}

// One K-quant super-block against a Q8_K block (F32 d, 256 int8, 16 int16 group sums), given
// the weight's int8 levels and per-16 scales and mins (as in quant_ref.cpp's vec_dot_k). The
// scaled group sums accumulate in int32 lanes: exact, reduced once per super-block.
HWY_INLINE float DotK(const int8_t* q, const int16_t* scale, const int16_t* min, float d,
                      float dmin, const uint8_t* x) {
  const hn::Repartition<int32_t, D16G> d32;
  const float dx = load_f32(x);
  const auto* qx = reinterpret_cast<const int8_t*>(x + 4);
  auto lanes = hn::Zero(d32);
  int32_t summ = 0;
  for (size_t j = 0; j < 16; ++j) {
    lanes = hn::Add(lanes, hn::Mul(DotLanes<16>(D16G(), q + 16 * j, qx + 16 * j),
                                   hn::Set(d32, static_cast<int32_t>(scale[j]))));
    summ += min[j] * load_i16(x + 4 + 256 + 2 * j);
  }
  const int32_t sumi = hn::GetLane(hn::SumOfLanes(d32, lanes));
  return KBlockSum(d, dmin, dx, sumi, summ);
}

// Q2_K / Q3_K crumbs: byte l of each 32-byte group of qs holds elements l, l + 32, l + 64,
// l + 96 (of its 128) in bit pairs 0, 2, 4, 6.
HWY_INLINE void Crumbs(const uint8_t* qs, int8_t* q) {
  const hn::CappedTag<uint8_t, 16> du;
  const hn::Rebind<int8_t, decltype(du)> di;
  const auto three = hn::Set(du, uint8_t{3});
  for (size_t h = 0; h < 2; ++h) {
    for (size_t l = 0; l < 32; l += hn::Lanes(du)) {
      const auto v = hn::LoadU(du, qs + 32 * h + l);
      int8_t* out = q + 128 * h + l;
      hn::StoreU(hn::BitCast(di, hn::And(v, three)), di, out);
      hn::StoreU(hn::BitCast(di, hn::And(hn::ShiftRight<2>(v), three)), di, out + 32);
      hn::StoreU(hn::BitCast(di, hn::And(hn::ShiftRight<4>(v), three)), di, out + 64);
      hn::StoreU(hn::BitCast(di, hn::ShiftRight<6>(v)), di, out + 96);
    }
  }
}

// A K-quant super-block unpacked: int8 levels, per-16 scales and mins (zero for the types
// without), the F16 d and dmin as float (as quant_ref.cpp's BlockK).
struct KBlock {
  HWY_ALIGN int8_t q[256];
  int16_t scale[16];
  int16_t min[16];
  float d;
  float dmin;
};

// Q2_K: scales[16] (4-bit scale, 4-bit min), 64 bytes of crumbs, F16 d and dmin.
struct Q2K {
  static constexpr size_t kWBytes = 84;
  static constexpr bool kMin = true;
  static HWY_INLINE void Unpack(const uint8_t* pw, KBlock& b) {
    Crumbs(pw + 16, b.q);
    for (size_t j = 0; j < 16; ++j) {
      b.scale[j] = pw[j] & 0xF;
      b.min[j] = pw[j] >> 4;
    }
    b.d = F16(pw + 80);
    b.dmin = F16(pw + 82);
  }
};

// Q3_K: hmask[32] (element i's high bit is bit i / 32 of hmask[i % 32]; clear means minus 4),
// 64 bytes of crumbs, 12 bytes of 6-bit scales, F16 d.
struct Q3K {
  static constexpr size_t kWBytes = 110;
  static constexpr bool kMin = false;
  static HWY_INLINE void Unpack(const uint8_t* pw, KBlock& b) {
    const hn::CappedTag<uint8_t, 16> du;
    const hn::Rebind<int8_t, decltype(du)> di;
    const auto four = hn::Set(di, int8_t{4});
    Crumbs(pw + 32, b.q);
    for (size_t k = 0; k < 8; ++k) {
      const auto bit = hn::Set(du, static_cast<uint8_t>(1u << k));
      for (size_t l = 0; l < 32; l += hn::Lanes(du)) {
        const auto low =
            hn::IfThenZeroElse(hn::TestBit(hn::LoadU(du, pw + l), bit), hn::BitCast(du, four));
        int8_t* dst = b.q + 32 * k + l;
        hn::StoreU(hn::Sub(hn::LoadU(di, dst), hn::BitCast(di, low)), di, dst);
      }
    }
    const std::array<int8_t, 16> sc = quant::q3_k_scales(pw + 96);
    // NOLINTNEXTLINE(bugprone-signed-char-misuse): int8_t, signed by format
    for (size_t j = 0; j < 16; ++j) b.scale[j] = sc[j];
    std::fill(b.min, b.min + 16, int16_t{0});
    b.d = F16(pw + 108);
    b.dmin = 0.0f;
  }
};

// Q4_K (d, dmin, 12 scale bytes, 128 nibble bytes) and Q5_K (the same plus 32 bytes of fifth
// bits before the nibbles: element i's is bit i / 32 of qh[i % 32]).
template <bool kFifthBit>
struct Q45K {
  static constexpr size_t kWBytes = kFifthBit ? 176 : 144;
  static constexpr bool kMin = true;
  static HWY_INLINE void Unpack(const uint8_t* pw, KBlock& b) {
    const uint8_t* qs = pw + (kFifthBit ? 48 : 16);
    for (size_t g = 0; g < 4; ++g) Nibbles(qs + 32 * g, 32, 0, b.q + 64 * g, b.q + 64 * g + 32);
    if constexpr (kFifthBit) {
      const hn::CappedTag<uint8_t, 16> du;
      const hn::Rebind<int8_t, decltype(du)> di;
      const auto sixteen = hn::Set(du, uint8_t{16});
      for (size_t k = 0; k < 8; ++k) {
        const auto bit = hn::Set(du, static_cast<uint8_t>(1u << k));
        for (size_t l = 0; l < 32; l += hn::Lanes(du)) {
          const auto high =
              hn::IfThenElseZero(hn::TestBit(hn::LoadU(du, pw + 16 + l), bit), sixteen);
          int8_t* dst = b.q + 32 * k + l;
          hn::StoreU(hn::Or(hn::LoadU(di, dst), hn::BitCast(di, high)), di, dst);
        }
      }
    }
    uint8_t sc[8], m[8];
    quant::unpack_k4_scales(reinterpret_cast<const std::byte*>(pw + 4), sc, m);
    for (size_t j = 0; j < 16; ++j) {
      b.scale[j] = sc[j / 2];
      b.min[j] = m[j / 2];
    }
    b.d = F16(pw);
    b.dmin = F16(pw + 2);
  }
};

// Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 int8 scales, F16 d. Per 128
// elements, ql[l] holds elements l (low) and l + 64 (high), ql[l + 32] elements l + 32 and
// l + 96; qh[l] holds their high pairs in bits 0-1, 2-3, 4-5, 6-7.
struct Q6K {
  static constexpr size_t kWBytes = 210;
  static constexpr bool kMin = false;
  static HWY_INLINE void Unpack(const uint8_t* pw, KBlock& b) {
    const hn::CappedTag<uint8_t, 16> du;
    const hn::Rebind<int8_t, decltype(du)> di;
    const auto low4 = hn::Set(du, uint8_t{0x0F});
    const auto low2 = hn::Set(du, uint8_t{0x03});
    const auto bias = hn::Set(di, int8_t{32});
    for (size_t h = 0; h < 2; ++h) {
      const uint8_t* ql = pw + 64 * h;
      const uint8_t* qh = pw + 128 + 32 * h;
      int8_t* out = b.q + 128 * h;
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
    for (size_t j = 0; j < 16; ++j) b.scale[j] = sc[j];
    std::fill(b.min, b.min + 16, int16_t{0});
    b.d = F16(pw + 208);
    b.dmin = 0.0f;
  }
};

template <class F>
float DotKQ8_K(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  KBlock b;
  float sum = 0.0f;
  for (size_t i = 0; i < n / 256; ++i, pw += F::kWBytes, px += 292) {
    F::Unpack(pw, b);
    sum += DotK(b.q, b.scale, b.min, b.d, b.dmin, px);
  }
  return sum;
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// x86 with AVX2 and up: the K-quants take their levels as unsigned bytes straight from the block
// into vpmaddubsw (u8 x i8 pair sums in int16, which cannot saturate here: 2 * 63 * 128 < 2^15)
// and vpmaddwd by the group scales, with no int8 array in between; Highway 1.0 has no such
// operation. Signed levels (Q3_K, Q6_K) are stored with an offset that comes off afterwards. The
// integer sums equal DotK's exactly, so KBlockSum rounds them identically and the tiles, which
// follow DotK, still give the same numbers.
HWY_INLINE int32_t HorizontalSum(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1)));
}

// The vpshufb indices of 64 bits that broadcast int16 lane `lane` of a 128-bit lane.
constexpr int64_t ScaleIndices(int lane) {
  const auto lo = static_cast<uint64_t>(2 * lane);
  return static_cast<int64_t>(((lo + 1) << 8 | lo) * 0x0001000100010001ULL);
}

// The exact totals of the int32 lanes of a (8) and of b (4): the super-block's two sums.
HWY_INLINE void TwoSums(__m256i a, __m128i b, int32_t& sum_a, int32_t& sum_b) {
  const __m128i a4 = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  const __m128i pairs = _mm_hadd_epi32(a4, b);
  const __m128i sums = _mm_hadd_epi32(pairs, pairs);
  sum_a = _mm_cvtsi128_si32(sums);
  sum_b = _mm_extract_epi32(sums, 1);
}

// Sub-block j's activation sum of a Q8_K block: group sums 2j and 2j + 1 (at most 2 * 16 * 127
// each, so their int16 sum cannot overflow). Shared by every weight row dotted with the block.
HWY_INLINE __m128i SubBlockSums(const uint8_t* px) {
  const __m128i bsums_lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(px + 260));
  const __m128i bsums_hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(px + 276));
  return _mm_hadd_epi16(bsums_lo, bsums_hi);
}

// A Q4_K block's eight 6-bit scales (as int16 lanes) and mins (as quant::scale_min_k4) from its
// 12 packed bytes, as 32-bit words k0-k2: k0 holds scales 0-3 and the high bits of scales 4-7,
// k1 mins 0-3 and the high bits of mins 4-7, k2 the low nibbles of scales and mins 4-7. All in
// vector registers: in general registers, moving the words over cost decode a fifth of its time.
HWY_INLINE void Q4KScales(const uint8_t* pw, __m128i& scales, __m128i& mins) {
  const __m128i k = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pw + 4));
  // Words 0 and 1: the low six bits of scales 0-3, of mins 0-3.
  const __m128i low = _mm_and_si128(k, _mm_set1_epi8(0x3F));
  // Words 0 and 1: scales 4-7, mins 4-7 (a nibble of k2 and the top bits of k0, of k1).
  const __m128i nibbles = _mm_and_si128(
      _mm_srlv_epi32(_mm_shuffle_epi32(k, 0xAA), _mm_setr_epi32(0, 4, 0, 0)), _mm_set1_epi8(0x0F));
  const __m128i high =
      _mm_or_si128(nibbles, _mm_and_si128(_mm_srli_epi32(k, 2), _mm_set1_epi8(0x30)));
  // Scales 0-7, then mins 0-7, as bytes.
  const __m128i bytes = _mm_unpacklo_epi32(low, high);
  scales = _mm_cvtepu8_epi16(bytes);
  mins = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(bytes, bytes));
}

// A Q6_K block's 16 int8 group scales as int16: lanes 0-7 in the low half, 8-15 in the high one.
HWY_INLINE __m256i Q6KScales(const uint8_t* pw) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pw + 192)));
}

// The stored levels are level + 32: lanes that add up to sum_j scale_j * 32 * (group j's
// activation sum), which comes off the lanes before the one reduction.
HWY_INLINE __m256i Q6KOffset(__m256i scales16, const uint8_t* px) {
  return _mm256_slli_epi32(
      _mm256_madd_epi16(scales16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(px + 260))),
      5);
}

// lanes + (sum over 32 elements of scale(element) * u[i] * x[i]): the int16 lanes of `scales`
// (eight per 128-bit half) are the scales of the element pairs in the same lanes of the
// products.
HWY_INLINE __m256i AddScaledPairs(__m256i lanes, __m256i u, __m256i x, __m256i scales) {
  const __m256i products = _mm256_maddubs_epi16(u, x);
  return _mm256_add_epi32(lanes, _mm256_madd_epi16(products, scales));
}

// `scales` (int16 lanes) with lane a broadcast to the low 128-bit half and lane b to the high one.
HWY_INLINE __m256i PickScales(__m256i scales, int a, int b) {
  const int64_t ia = ScaleIndices(a), ib = ScaleIndices(b);
  return _mm256_shuffle_epi8(scales, _mm256_set_epi64x(ib, ib, ia, ia));
}

// kRows Q4_K (kFifthBit false) or Q5_K super-blocks (rows w_stride bytes apart) against one Q8_K
// block as exact integer lanes: the eight int32 lanes of lanes[r] add up to row r's
// sum_j scale_j (q_w . q_x)_j, the four of mins[r] to its sum_j min_j bsum_j. Q5_K's fifth bit of
// element i of sub-block j is bit j of qh[i]. The activations are the outer loop, so each of their
// loads serves every row, and a row has one accumulator (the rows are the independent chains).
// 256-bit: Q5_K's on every x86 target from AVX2 up, Q4_K's on AVX2 (AVX-512 has its own below).
template <bool kFifthBit, size_t kRows>
HWY_INLINE void Q45KRowLanes(const uint8_t* pw, size_t w_stride, const uint8_t* px,
                             __m128i sub_sums, __m256i* lanes, __m128i* mins) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const auto load = [](const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  // Bit j of each byte of qh at bit 4, in one 16-bit shift (none for j = 4); the bits the shift
  // carries across the byte boundary land below bit 4 or above it.
  const auto fifth_bits = [&](__m256i qh, int j) {
    const __m256i moved = j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4);
    return _mm256_and_si256(moved, _mm256_set1_epi8(0x10));
  };
  __m256i scales[kRows];
  HWY_UNROLL(4)
  for (size_t r = 0; r < kRows; ++r) {
    __m128i scales8, mins8;
    Q4KScales(pw + r * w_stride, scales8, mins8);
    scales[r] = _mm256_broadcastsi128_si256(scales8);
    mins[r] = _mm_madd_epi16(mins8, sub_sums);
    lanes[r] = _mm256_setzero_si256();
  }
  HWY_UNROLL(4)
  for (int g = 0; g < 4; ++g) {
    const __m256i x_low = load(px + 4 + 64 * g), x_high = load(px + 36 + 64 * g);
    HWY_UNROLL(4)
    for (size_t r = 0; r < kRows; ++r) {
      const uint8_t* row = pw + r * w_stride;
      const __m256i v = load(row + (kFifthBit ? 48 : 16) + 32 * g);
      __m256i low = _mm256_and_si256(v, low4);
      __m256i high = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      if constexpr (kFifthBit) {
        const __m256i qh = load(row + 16);
        low = _mm256_or_si256(low, fifth_bits(qh, 2 * g));
        high = _mm256_or_si256(high, fifth_bits(qh, 2 * g + 1));
      }
      lanes[r] = AddScaledPairs(lanes[r], low, x_low, PickScales(scales[r], 2 * g, 2 * g));
      lanes[r] =
          AddScaledPairs(lanes[r], high, x_high, PickScales(scales[r], 2 * g + 1, 2 * g + 1));
      // GCC reassociates the integer accumulation into a tree of live partial sums, which
      // spills; an empty asm that reads and writes the accumulator keeps it a chain.
      asm("" : "+x"(lanes[r]));
    }
  }
}

#if HWY_TARGET <= HWY_AVX3
// GCC 12's AVX-512 broadcast and extract intrinsics pass an "undefined" vector that its
// -Wmaybe-uninitialized flags; Highway's own AVX-512 ops turn the warning off the same way.
HWY_DIAGNOSTICS(push)
HWY_DIAGNOSTICS_OFF(disable : 4703 6001 26494, ignored "-Wmaybe-uninitialized")
// AVX-512 (AVX3, AVX3_DL): the same exact sums on 512-bit vectors, 64 elements per vpmaddubsw
// and per vpmaddwd / vpdpwssd, half the instructions of the 256-bit form; the 256-bit lanes
// are folded from the 512-bit ones once per super-block (int32 sums, exact in any order).
HWY_INLINE __m512i AddScaledPairs(__m512i lanes, __m512i u, const uint8_t* x, __m512i scales) {
  const __m512i products = _mm512_maddubs_epi16(u, _mm512_loadu_si512(x));
#if HWY_TARGET == HWY_AVX3_DL
  return Dpwssd(lanes, products, scales);
#else
  return _mm512_add_epi32(lanes, _mm512_madd_epi16(products, scales));
#endif
}

HWY_INLINE __m256i Fold(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

// `scales` (int16 lanes, the same eight in every 128-bit lane) with lane a broadcast to 128-bit
// lane 0, b to lane 1, c to lane 2 and e to lane 3.
HWY_INLINE __m512i PickScales(__m512i scales, int a, int b, int c, int e) {
  const int64_t ia = ScaleIndices(a), ib = ScaleIndices(b), ic = ScaleIndices(c),
                ie = ScaleIndices(e);
  return _mm512_shuffle_epi8(scales, _mm512_set_epi64(ie, ie, ic, ic, ib, ib, ia, ia));
}

// One Q4_K super-block against a Q8_K block as exact integer lanes: the eight int32 lanes of
// `lanes` add up to sum_j scale_j (q_w . q_x)_j, the four of `mins` to sum_j min_j bsum_j.
// A 32-byte group of nibbles enters both 256-bit halves of a vector, the upper one shifted by
// 4: its low nibbles (sub-block 2g, 128-bit lanes 0-1) then its high ones (sub-block 2g + 1,
// lanes 2-3), which is the order of the group's 64 activations in memory.
HWY_INLINE void Q4KLanes(const uint8_t* pw, const uint8_t* px, __m128i sub_sums, __m256i& lanes,
                         __m128i& mins) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m128i scales8, mins8;
  Q4KScales(pw, scales8, mins8);
  const __m512i scales = _mm512_broadcast_i32x4(scales8);
  // Two dependency chains of two (exact in any order).
  __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
  for (int g = 0; g < 4; ++g) {
    const __m512i v = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw + 16 + 32 * g)));
    const __m512i u = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xFFFF0000u, v, 4), low4);
    __m512i& sum = g % 2 == 0 ? even : odd;
    sum = AddScaledPairs(sum, u, px + 4 + 64 * g,
                         PickScales(scales, 2 * g, 2 * g, 2 * g + 1, 2 * g + 1));
  }
  lanes = Fold(_mm512_add_epi32(even, odd));
  mins = _mm_madd_epi16(mins8, sub_sums);
}

// Q4KLanes of each of kRows rows (w_stride bytes apart), written out: as a loop the compiler
// keeps the rows' lanes in memory and walks them one by one.
template <size_t kRows>
HWY_INLINE void Q4KRowLanes(const uint8_t* pw, size_t w_stride, const uint8_t* px, __m128i sub_sums,
                            __m256i* lanes, __m128i* mins) {
  [&]<size_t... kRow>(std::index_sequence<kRow...> /*rows*/) {
    (Q4KLanes(pw + kRow * w_stride, px, sub_sums, lanes[kRow], mins[kRow]), ...);
  }
  (std::make_index_sequence<kRows>());
}

// One Q6_K super-block against a Q8_K block: eight int32 lanes that add up to
// sum_j scale_j (q_w . q_x)_j. Per 128 elements, the 64 nibble bytes ql[0..63] are one vector:
// their low nibbles are elements 0-63 in order, their high ones 64-127, and each 128-bit lane
// (16 elements) is one group, so it takes one scale.
HWY_INLINE __m256i Q6KLanes(const uint8_t* pw, const uint8_t* px) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i pair_bits = _mm512_set1_epi8(0x30);
  const __m256i scales16 = Q6KScales(pw);
  // Each half's eight scales in every 128-bit lane.
  const __m512i halves[2] = {_mm512_broadcast_i32x4(_mm256_castsi256_si128(scales16)),
                             _mm512_broadcast_i32x4(_mm256_extracti128_si256(scales16, 1))};
  // Two dependency chains of two (exact in any order).
  __m512i lanes = _mm512_setzero_si512(), more = _mm512_setzero_si512();
  for (int h = 0; h < 2; ++h) {
    const __m512i v = _mm512_loadu_si512(pw + 64 * h);
    // qh[l] in both 256-bit halves, the upper one shifted down by 2: the high pairs of
    // elements l and l + 64 (bits 0-1 and 4-5) below, of l + 32 and l + 96 above.
    const __m512i hi = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw + 128 + 32 * h)));
    const __m512i pairs = _mm512_mask_srli_epi16(hi, 0xFFFF0000u, hi, 2);
    // Unsigned 6-bit levels (stored level + 32) of elements 0-63 and 64-127.
    const __m512i first = _mm512_or_si512(_mm512_and_si512(v, low4),
                                          _mm512_and_si512(_mm512_slli_epi16(pairs, 4), pair_bits));
    const __m512i second = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4),
                                           _mm512_and_si512(pairs, pair_bits));
    const uint8_t* xh = px + 4 + 128 * h;
    lanes = AddScaledPairs(lanes, first, xh, PickScales(halves[h], 0, 1, 2, 3));
    more = AddScaledPairs(more, second, xh + 64, PickScales(halves[h], 4, 5, 6, 7));
  }
  return _mm256_sub_epi32(Fold(_mm512_add_epi32(lanes, more)), Q6KOffset(scales16, px));
}

template <size_t kRows>
HWY_INLINE void Q6KRowLanes(const uint8_t* pw, size_t w_stride, const uint8_t* px, __m256i* lanes) {
  [&]<size_t... kRow>(std::index_sequence<kRow...> /*rows*/) {
    ((lanes[kRow] = Q6KLanes(pw + kRow * w_stride, px)), ...);
  }
  (std::make_index_sequence<kRows>());
}
HWY_DIAGNOSTICS(pop)

#else
template <size_t kRows>
HWY_INLINE void Q4KRowLanes(const uint8_t* pw, size_t w_stride, const uint8_t* px, __m128i sub_sums,
                            __m256i* lanes, __m128i* mins) {
  Q45KRowLanes<false, kRows>(pw, w_stride, px, sub_sums, lanes, mins);
}

// kRows Q6_K super-blocks (rows w_stride bytes apart) against one Q8_K block: the eight int32
// lanes of lanes[r] add up to row r's sum_j scale_j (q_w . q_x)_j. As in Q45KRowLanes, the
// activations are the outer loop and a row has one accumulator.
template <size_t kRows>
HWY_INLINE void Q6KRowLanes(const uint8_t* pw, size_t w_stride, const uint8_t* px, __m256i* lanes) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i pair_bits = _mm256_set1_epi8(0x30);
  const auto load = [](const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  HWY_UNROLL(4)
  for (size_t r = 0; r < kRows; ++r) {
    lanes[r] =
        _mm256_sub_epi32(_mm256_setzero_si256(), Q6KOffset(Q6KScales(pw + r * w_stride), px));
  }
  HWY_UNROLL(2)
  for (int h = 0; h < 2; ++h) {
    const uint8_t* xh = px + 4 + 128 * h;
    const __m256i x0 = load(xh), x1 = load(xh + 32), x2 = load(xh + 64), x3 = load(xh + 96);
    HWY_UNROLL(4)
    for (size_t r = 0; r < kRows; ++r) {
      const uint8_t* row = pw + r * w_stride;
      const __m256i a = load(row + 64 * h), c = load(row + 64 * h + 32),
                    hi = load(row + 128 + 32 * h);
      // Unsigned 6-bit levels (stored level + 32): a nibble and a high bit pair each. The pair
      // goes to bits 4-5 of its byte in one 16-bit shift (none at pair_shift 4); the bits it
      // carries across the byte boundary fall outside them.
      const auto level = [&](__m256i nibbles, int nibble_shift, int pair_shift) {
        const __m256i nibble = _mm256_and_si256(_mm256_srli_epi16(nibbles, nibble_shift), low4);
        const __m256i pair = pair_shift <= 4 ? _mm256_slli_epi16(hi, 4 - pair_shift)
                                             : _mm256_srli_epi16(hi, pair_shift - 4);
        return _mm256_or_si256(nibble, _mm256_and_si256(pair, pair_bits));
      };
      // This half's eight scales in both 128-bit halves; 32 elements take scales s and s + 1.
      int64_t half_scales;
      std::memcpy(&half_scales, row + 192 + 8 * h, 8);
      const __m256i half = _mm256_cvtepi8_epi16(_mm_set1_epi64x(half_scales));
      lanes[r] = AddScaledPairs(lanes[r], level(a, 0, 0), x0, PickScales(half, 0, 1));
      lanes[r] = AddScaledPairs(lanes[r], level(c, 0, 2), x1, PickScales(half, 2, 3));
      lanes[r] = AddScaledPairs(lanes[r], level(a, 4, 4), x2, PickScales(half, 4, 5));
      lanes[r] = AddScaledPairs(lanes[r], level(c, 4, 6), x3, PickScales(half, 6, 7));
      asm("" : "+x"(lanes[r]));  // a chain, as in Q45KRowLanes
    }
  }
}
#endif

// A Q3_K block's 16 signed 6-bit scales as int16, from their 12 packed bytes: bytes 0-7 hold
// the low nibbles (scales 0-7 low, 8-15 high), the bits 2q, 2q + 1 of bytes 8-11 the top two
// bits of scales 4q to 4q + 3.
HWY_INLINE __m256i Q3KScales(const uint8_t* packed) {
  const __m128i nibbles = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed));
  const __m128i low =
      _mm_and_si128(_mm_unpacklo_epi64(nibbles, _mm_srli_epi16(nibbles, 4)), _mm_set1_epi8(0x0F));
  const __m128i high = _mm_and_si128(
      _mm_srlv_epi32(_mm_set1_epi32(load_i32(packed + 8)), _mm_setr_epi32(0, 2, 4, 6)),
      _mm_set1_epi8(0x03));
  return _mm256_cvtepi8_epi16(
      _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32)));
}

// kRows Q2_K (kQ3 false) or Q3_K super-blocks (rows w_stride bytes apart) against one Q8_K
// block: the int32 lanes of lanes[r] add up to row r's sum_j scale_j (q_w . q_x)_j, and for
// Q2_K the four of mins[r] to its sum_j min_j bsum_j. Levels are the crumbs (byte l of 32-byte
// group h holds elements 128h + 32s + l in bits 2s, 2s + 1), for Q3_K plus 4 where bit 4h + s
// of hmask[l] is set: stored level + 4, so 4 sum_j scale_j bsum_j comes off the lanes. Each
// 32 elements are two groups of 16, so two scales. Loops as in Q45KRowLanes.
template <bool kQ3, size_t kRows>
HWY_INLINE void CrumbRowLanes(const uint8_t* pw, size_t w_stride, const uint8_t* px, __m256i* lanes,
                              __m128i* mins) {
  constexpr size_t kQs = kQ3 ? 32 : 16;
  const __m256i three = _mm256_set1_epi8(0x03);
  const auto load = [](const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  const __m256i bsums = load(px + 260);
  __m256i scales[kRows];
  HWY_UNROLL(4)
  for (size_t r = 0; r < kRows; ++r) {
    const uint8_t* row = pw + r * w_stride;
    if constexpr (kQ3) {
      scales[r] = Q3KScales(row + 96);
      lanes[r] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                  _mm256_slli_epi32(_mm256_madd_epi16(scales[r], bsums), 2));
    } else {
      // Scale in the low nibble of each byte, min in the high one.
      const __m256i packed =
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row)));
      const __m256i low4 = _mm256_set1_epi16(0x0F);
      scales[r] = _mm256_and_si256(packed, low4);
      const __m256i m = _mm256_madd_epi16(_mm256_srli_epi16(packed, 4), bsums);
      mins[r] = _mm_add_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
      lanes[r] = _mm256_setzero_si256();
    }
  }
  HWY_UNROLL(2)
  for (int h = 0; h < 2; ++h) {
    HWY_UNROLL(4)
    for (int s = 0; s < 4; ++s) {
      const __m256i x = load(px + 4 + 128 * h + 32 * s);
      HWY_UNROLL(4)
      for (size_t r = 0; r < kRows; ++r) {
        const uint8_t* row = pw + r * w_stride;
        __m256i u = _mm256_and_si256(_mm256_srli_epi16(load(row + kQs + 32 * h), 2 * s), three);
        if constexpr (kQ3) {
          // Bit k = 4h + s of each hmask byte at bit 2, in one 16-bit shift (none for k = 2);
          // the bits the shift carries across the byte boundary land away from bit 2.
          const int k = 4 * h + s;
          const __m256i hmask = load(row);
          const __m256i moved =
              k <= 2 ? _mm256_slli_epi16(hmask, 2 - k) : _mm256_srli_epi16(hmask, k - 2);
          u = _mm256_or_si256(u, _mm256_and_si256(moved, _mm256_set1_epi8(0x04)));
        }
        // Groups 8h + 2s and 8h + 2s + 1: this half's scales in both 128-bit lanes.
        const __m256i half = h == 0 ? _mm256_permute4x64_epi64(scales[r], 0x44)
                                    : _mm256_permute4x64_epi64(scales[r], 0xEE);
        lanes[r] = AddScaledPairs(lanes[r], u, x, PickScales(half, 2 * s, 2 * s + 1));
        asm("" : "+x"(lanes[r]));  // a chain, as in Q45KRowLanes
      }
    }
  }
}

float DotQ2_KQ8_K(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / 256; ++i, pw += 84, px += 292) {
    __m256i lanes[1];
    __m128i mins[1];
    CrumbRowLanes<false, 1>(pw, 0, px, lanes, mins);
    int32_t sumi = 0, summ = 0;
    TwoSums(lanes[0], mins[0], sumi, summ);
    sum += KBlockSum(F16(pw + 80), F16(pw + 82), load_f32(px), sumi, summ);
  }
  return sum;
}

float DotQ3_KQ8_K(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / 256; ++i, pw += 110, px += 292) {
    __m256i lanes[1];
    CrumbRowLanes<true, 1>(pw, 0, px, lanes, nullptr);
    sum += KBlockSum(F16(pw + 108), 0.0f, load_f32(px), HorizontalSum(lanes[0]), 0);
  }
  return sum;
}

// Q4_K's lanes (kFifthBit false: the AVX-512 kernels on those targets) or Q5_K's.
template <bool kFifthBit, size_t kRows>
HWY_INLINE void Q45KLanes(const uint8_t* pw, size_t w_stride, const uint8_t* px, __m128i sub_sums,
                          __m256i* lanes, __m128i* mins) {
  if constexpr (kFifthBit) {
    Q45KRowLanes<true, kRows>(pw, w_stride, px, sub_sums, lanes, mins);
  } else {
    Q4KRowLanes<kRows>(pw, w_stride, px, sub_sums, lanes, mins);
  }
}

template <bool kFifthBit>
float DotQ45KQ8_K(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / 256; ++i, pw += kFifthBit ? 176 : 144, px += 292) {
    __m256i lanes[1];
    __m128i mins[1];
    Q45KLanes<kFifthBit, 1>(pw, 0, px, SubBlockSums(px), lanes, mins);
    int32_t sumi = 0, summ = 0;
    TwoSums(lanes[0], mins[0], sumi, summ);
    sum += KBlockSum(F16(pw), F16(pw + 2), load_f32(px), sumi, summ);
  }
  return sum;
}
float DotQ4_KQ8_K(const void* w, const void* x, size_t n) {
  return DotQ45KQ8_K<false>(w, x, n);
}
float DotQ5_KQ8_K(const void* w, const void* x, size_t n) {
  return DotQ45KQ8_K<true>(w, x, n);
}

float DotQ6_KQ8_K(const void* w, const void* x, size_t n) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const auto* px = static_cast<const uint8_t*>(x);
  float sum = 0.0f;
  for (size_t i = 0; i < n / 256; ++i, pw += 210, px += 292) {
    __m256i lanes[1];
    Q6KRowLanes<1>(pw, 0, px, lanes);
    sum += KBlockSum(F16(pw + 208), 0.0f, load_f32(px), HorizontalSum(lanes[0]), 0);
  }
  return sum;
}

// Decode (one activation row) walks four K-quant weight rows per pass over the
// activations: the rows' block sums are independent chains the core overlaps, the activation's
// sub-block sums are formed once, and the four rows' lane totals come out of one transposing
// reduction instead of four, as do their block sums (KBlockSums, one row a lane). Each row still
// gets the single-row dot's exact integer sums and KBlockSum's operations over its blocks in
// order, so every output equals the single-row dot bit for bit.

// The totals of the int32 lanes of each of four vectors, in lanes 0-3.
HWY_INLINE __m128i RowTotals(const __m256i (&v)[kDotRows]) {
  const __m256i pairs =
      _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  return _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
}
HWY_INLINE __m128i RowTotals(const __m128i (&v)[kDotRows]) {
  return _mm_hadd_epi32(_mm_hadd_epi32(v[0], v[1]), _mm_hadd_epi32(v[2], v[3]));
}

// One block of four rows: the rows' exact integer sums (sumi, summ) and their F16 d and dmin,
// one row a lane. Q3_K and Q6_K have no minimum: their summ and dmin are zero, as in their
// single-row dots' KBlockSum.
struct RowBlocks {
  __m128i sumi, summ;
  __m128 d, dmin;
};

// Four rows' integer sums with their F16 d and dmin, which each row stores side by side at byte
// `at` of its block: both from one conversion of the rows' heads.
HWY_INLINE RowBlocks WithDAndDMin(__m128i sumi, __m128i summ, const uint8_t* pw, size_t w_stride,
                                  size_t at) {
  // Row r's d in lane r, its dmin in lane 4 + r.
  const __m256 heads = _mm256_permutevar8x32_ps(RowHeads(pw + at, w_stride),
                                                _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  return {sumi, summ, _mm256_castps256_ps128(heads), _mm256_extractf128_ps(heads, 1)};
}

// Q4_K (kFifthBit false) or Q5_K: both start with d and dmin.
template <bool kFifthBit>
HWY_INLINE RowBlocks Q45KRowBlocks(const uint8_t* pw, size_t w_stride, const uint8_t* px) {
  __m256i lanes[kDotRows];
  __m128i mins[kDotRows];
  const __m128i sub_sums = SubBlockSums(px);
  Q45KLanes<kFifthBit, kDotRows>(pw, w_stride, px, sub_sums, lanes, mins);
  return WithDAndDMin(RowTotals(lanes), RowTotals(mins), pw, w_stride, 0);
}
HWY_INLINE RowBlocks Q2KRowBlocks(const uint8_t* pw, size_t w_stride, const uint8_t* px) {
  __m256i lanes[kDotRows];
  __m128i mins[kDotRows];
  CrumbRowLanes<false, kDotRows>(pw, w_stride, px, lanes, mins);
  return WithDAndDMin(RowTotals(lanes), RowTotals(mins), pw, w_stride, 80);
}
HWY_INLINE RowBlocks Q3KRowBlocks(const uint8_t* pw, size_t w_stride, const uint8_t* px) {
  __m256i lanes[kDotRows];
  CrumbRowLanes<true, kDotRows>(pw, w_stride, px, lanes, nullptr);
  return {RowTotals(lanes), _mm_setzero_si128(), RowHalves(pw, w_stride, 108), _mm_setzero_ps()};
}
HWY_INLINE RowBlocks Q6KRowBlocks(const uint8_t* pw, size_t w_stride, const uint8_t* px) {
  __m256i lanes[kDotRows];
  Q6KRowLanes<kDotRows>(pw, w_stride, px, lanes);
  return {RowTotals(lanes), _mm_setzero_si128(), RowHalves(pw, w_stride, 208), _mm_setzero_ps()};
}

template <size_t kBytes, RowBlocks (*kRowBlocks)(const uint8_t*, size_t, const uint8_t*),
          float (*kDot)(const void*, const void*, size_t)>
void DotRowsK(const void* w, size_t w_stride, size_t nw, const void* x, size_t n, float* out) {
  const auto* pw = static_cast<const uint8_t*>(w);
  const RowGroupPrefetch prefetch(w, w_stride, nw, kDotRows * kBytes);
  const size_t blocks = n / 256;
  const hn::Full128<float> df4;
  using V4 = hn::Vec<decltype(df4)>;
  size_t j = 0;
  for (; j + kDotRows <= nw; j += kDotRows, pw += kDotRows * w_stride) {
    const auto* px = static_cast<const uint8_t*>(x);
    // Row r's running sum in lane r: KBlockSum's operations and the single-row dot's order.
    V4 sum = hn::Zero(df4);
    for (size_t b = 0; b < blocks; ++b, px += 292) {
      prefetch(j, b);
      const RowBlocks r = kRowBlocks(pw + kBytes * b, w_stride, px);
      sum = hn::Add(sum, KBlockSums(V4{r.d}, V4{r.dmin}, hn::Set(df4, load_f32(px)),
                                    hn::ConvertTo(df4, hn::Vec128<int32_t>{r.sumi}),
                                    hn::ConvertTo(df4, hn::Vec128<int32_t>{r.summ})));
    }
    hn::StoreU(sum, df4, out + j);
  }
  for (; j < nw; ++j, pw += w_stride) out[j] = kDot(pw, x, n);
}

void DotRowsQ2_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<84, Q2KRowBlocks, DotQ2_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ3_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<110, Q3KRowBlocks, DotQ3_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ4_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<144, Q45KRowBlocks<false>, DotQ4_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ5_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<176, Q45KRowBlocks<true>, DotQ5_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ6_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<210, Q6KRowBlocks, DotQ6_KQ8_K>(w, w_stride, nw, x, n, out);
}

#else
float DotQ2_KQ8_K(const void* w, const void* x, size_t n) {
  return DotKQ8_K<Q2K>(w, x, n);
}
float DotQ3_KQ8_K(const void* w, const void* x, size_t n) {
  return DotKQ8_K<Q3K>(w, x, n);
}
float DotQ4_KQ8_K(const void* w, const void* x, size_t n) {
  return DotKQ8_K<Q45K<false>>(w, x, n);
}
float DotQ5_KQ8_K(const void* w, const void* x, size_t n) {
  return DotKQ8_K<Q45K<true>>(w, x, n);
}
float DotQ6_KQ8_K(const void* w, const void* x, size_t n) {
  return DotKQ8_K<Q6K>(w, x, n);
}
// Below AVX2 the rows are the single-row dot's, one by one (the reference of the multi-row
// kernels above).
template <float (*kDot)(const void*, const void*, size_t)>
void DotRowsK(const void* w, size_t w_stride, size_t nw, const void* x, size_t n, float* out) {
  const auto* pw = static_cast<const uint8_t*>(w);
  for (size_t j = 0; j < nw; ++j) out[j] = kDot(pw + j * w_stride, x, n);
}
void DotRowsQ2_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<DotQ2_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ3_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<DotQ3_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ4_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<DotQ4_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ5_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<DotQ5_KQ8_K>(w, w_stride, nw, x, n, out);
}
void DotRowsQ6_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                     float* out) {
  DotRowsK<DotQ6_KQ8_K>(w, w_stride, nw, x, n, out);
}
#endif
// ------------------------------------------------------------------ tiles (prompts)
// Tile: every weight row of a panel against every activation row, giving exactly what the
// dot products above give for each pair (same target), so a prompt's rows get the same
// numbers as single tokens do. Both sides are decoded once per call into the same layout:
// int16 levels (K-quant weight levels pre-multiplied by their group scale: |level * scale| <=
// 32 * 128, exact), per block the float d and the float minimum term (Q4_1/Q5_1's m, Q8_1's s,
// K-quants' dmin), and per 16-element group an int16 (K-quants' weight mins, Q8_K's group
// sums). Then kTileW weight rows x kTileX activation rows are dotted at a time, so each loaded
// vector serves several products. The arithmetic is the dots': 32-element blocks sum their
// products into the same int32 lanes (16-lane int16 vectors, DotLanes' grouping), scaled by
// d_w * d_x and accumulated lane-wise, the minimum terms summed in order; super-blocks reduce
// their exact integer sums and apply DotK's float expression (KBlockSum).
constexpr size_t kTileW = 4, kTileX = 4;

template <class D32, class V16>
HWY_INLINE hn::Vec<D32> MulPairs(D32 d32, V16 a, V16 b, hn::Vec<D32> sum) {
  auto odd = hn::Zero(d32);
  sum = hn::ReorderWidenMulAccumulate(d32, a, b, sum, odd);
  return hn::Add(sum, odd);
}

// Per-thread scratch for decoded rows, grown as needed and kept between calls.
HWY_INLINE uint8_t* Scratch(size_t bytes) {
  thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> buffer;
  thread_local size_t capacity = 0;
  if (bytes > capacity) {
    buffer = hwy::AllocateAligned<uint8_t>(bytes);
    capacity = bytes;
  }
  return buffer.get();
}

// A decoded row of n elements: n int16 levels, nb float d, nb float minimum terms, ng int16
// group terms (16 per super-block, none for 32-element blocks). Rows are whole multiples of
// 64 bytes apart, so the levels stay aligned.
struct Decoded {
  size_t n, nb, ng;
  size_t Bytes() const { return (2 * n + 8 * nb + 2 * ng + 63) / 64 * 64; }
  // The parts of a row, const as the row pointer is.
  template <class Byte>
  static auto* Q(Byte* row) {
    return reinterpret_cast<std::conditional_t<std::is_const_v<Byte>, const int16_t, int16_t>*>(
        row);
  }
  template <class Byte>
  auto* D(Byte* row) const {
    return reinterpret_cast<std::conditional_t<std::is_const_v<Byte>, const float, float>*>(row +
                                                                                            2 * n);
  }
  template <class Byte>
  auto* M(Byte* row) const {
    return D(row) + nb;
  }
  template <class Byte>
  auto* G(Byte* row) const {
    return reinterpret_cast<std::conditional_t<std::is_const_v<Byte>, const int16_t, int16_t>*>(
        M(row) + nb);
  }
};

HWY_INLINE void Widen(const int8_t* src, size_t n, int16_t* dst) {
  const D16G d16;
  const hn::Rebind<int8_t, D16G> d8;
  for (size_t e = 0; e < n; e += hn::Lanes(d16))
    hn::Store(hn::PromoteTo(d16, hn::LoadU(d8, src + e)), d16, dst + e);
}

// A 32-element block's levels as the tiles hold them: in element order, or for dots with
// kQuadLanes (lane l sums elements 4l to 4l + 3) as the element pairs (4l, 4l + 1), then the
// pairs (4l + 2, 4l + 3), so that the tile's two pair-summing steps give lane l those four.
template <bool kQuads>
HWY_INLINE void BlockOrder(const int8_t* src, int16_t* dst) {
#if HWY_TARGET == HWY_AVX3_DL
  if constexpr (kQuads) {
    const hn::Full512<int16_t> d16;
    const hn::Full512<int32_t> d32;
    const auto pairs =
        hn::BitCast(d32, hn::PromoteTo(d16, hn::LoadU(hn::Rebind<int8_t, decltype(d16)>(), src)));
    const auto even = hn::ConcatEven(d32, pairs, pairs);
    const auto odd = hn::ConcatOdd(d32, pairs, pairs);
    hn::Store(hn::BitCast(d16, hn::ConcatLowerLower(d32, odd, even)), d16, dst);
    return;
  }
#endif
  Widen(src, 32, dst);
}

// 32-element weight blocks (F: Q45 or Q8): levels, d, and m for the types with a minimum.
template <class F>
struct W32 {
  static constexpr size_t kBlock = 32;
  static constexpr bool kMin = F::kMin;
  using Tag = typename F::Tag;
  static void Decode(const uint8_t* pw, const Decoded& l, uint8_t* row) {
    HWY_ALIGN int8_t q[32];
    for (size_t b = 0; b < l.nb; ++b, pw += F::kWBytes) {
      F::Levels(pw, q);
      BlockOrder<F::kQuads>(q, Decoded::Q(row) + 32 * b);
      l.D(row)[b] = F16(pw);
      l.M(row)[b] = kMin ? F16(pw + 2) : 0.0f;
    }
  }
};

// Q8_0 / Q8_1 activations: levels (in the weight type's BlockOrder), d, and Q8_1's
// s = d * sum(q).
template <bool kHasSum, bool kQuads>
struct X32 {
  static constexpr size_t kXBytes = kHasSum ? 36 : 34;
  static void Decode(const uint8_t* px, const Decoded& l, uint8_t* row) {
    for (size_t b = 0; b < l.nb; ++b, px += kXBytes) {
      BlockOrder<kQuads>(reinterpret_cast<const int8_t*>(px + kXBytes - 32),
                         Decoded::Q(row) + 32 * b);
      l.D(row)[b] = F16(px);
      l.M(row)[b] = kHasSum ? F16(px + 2) : 0.0f;
    }
  }
};

// K-quant super-blocks (F: Q2K ... Q6K): levels times group scale, d, dmin and the mins.
template <class F>
struct WK {
  static constexpr size_t kBlock = 256;
  static constexpr bool kMin = F::kMin;
  static void Decode(const uint8_t* pw, const Decoded& l, uint8_t* row) {
    const D16G d16;
    const hn::Rebind<int8_t, D16G> d8;
    KBlock blk;
    for (size_t b = 0; b < l.nb; ++b, pw += F::kWBytes) {
      F::Unpack(pw, blk);
      int16_t* q = Decoded::Q(row) + 256 * b;
      for (size_t g = 0; g < 16; ++g) {
        const auto scale = hn::Set(d16, blk.scale[g]);
        for (size_t e = 0; e < 16; e += hn::Lanes(d16)) {
          const auto level = hn::PromoteTo(d16, hn::LoadU(d8, blk.q + 16 * g + e));
          hn::Store(hn::Mul(level, scale), d16, q + 16 * g + e);
        }
      }
      l.D(row)[b] = blk.d;
      l.M(row)[b] = blk.dmin;
      std::memcpy(l.G(row) + 16 * b, blk.min, sizeof blk.min);
    }
  }
};

// Q8_K activations: levels, d, and the sums of its 16-element groups.
struct XK {
  static void Decode(const uint8_t* px, const Decoded& l, uint8_t* row) {
    for (size_t b = 0; b < l.nb; ++b, px += 292) {
      Widen(reinterpret_cast<const int8_t*>(px + 4), 256, Decoded::Q(row) + 256 * b);
      l.D(row)[b] = load_f32(px);
      l.M(row)[b] = 0.0f;
      std::memcpy(l.G(row) + 16 * b, px + 4 + 256, 32);
    }
  }
};

// Decoded rows of one tile; rows past the ends repeat the last one (their results are not
// stored), so every tile runs the same fixed loops.
template <size_t kRows>
struct TileSide {
  const uint8_t* row[kRows];
  TileSide(const uint8_t* base, size_t bytes, size_t valid) {
    for (size_t r = 0; r < kRows; ++r) row[r] = base + std::min(r, valid - 1) * bytes;
  }
};

// 32-element blocks: per pair, Dot32's lane-wise sum in int16 vectors of
// tag D16T, and the in-order minimum sum.
template <class D16T>
HWY_INLINE void Tile32Decoded(const Decoded& l, const TileSide<kTileW>& w,
                              const TileSide<kTileX>& x, float (*out)[kTileW]) {
  using D32G = hn::Repartition<int32_t, D16T>;
  using DFG = hn::Repartition<float, D16T>;
  const D16T d16;
  const D32G d32;
  const DFG df;
  hn::Vec<DFG> acc[kTileX][kTileW];
  for (auto& row : acc)
    for (auto& a : row) a = hn::Zero(df);
  for (size_t b = 0; b < l.nb; ++b) {
    hn::Vec<D32G> lanes[kTileX][kTileW];
    for (auto& row : lanes)
      for (auto& v : row) v = hn::Zero(d32);
    for (size_t e = 32 * b; e < 32 * (b + 1); e += hn::Lanes(d16)) {
      hn::Vec<D16T> xv[kTileX];
      for (size_t i = 0; i < kTileX; ++i) xv[i] = hn::Load(d16, Decoded::Q(x.row[i]) + e);
      for (size_t j = 0; j < kTileW; ++j) {
        const auto wv = hn::Load(d16, Decoded::Q(w.row[j]) + e);
        for (size_t i = 0; i < kTileX; ++i) lanes[i][j] = MulPairs(d32, wv, xv[i], lanes[i][j]);
      }
    }
    for (size_t j = 0; j < kTileW; ++j) {
      const float dw = l.D(w.row[j])[b];
      for (size_t i = 0; i < kTileX; ++i) {
        acc[i][j] = hn::MulAdd(hn::ConvertTo(df, lanes[i][j]), hn::Set(df, dw * l.D(x.row[i])[b]),
                               acc[i][j]);
      }
    }
  }
  for (size_t i = 0; i < kTileX; ++i) {
    for (size_t j = 0; j < kTileW; ++j) {
      float min_sum = 0.0f;
      for (size_t b = 0; b < l.nb; ++b)
        min_sum = AddMinTerm(min_sum, l.M(w.row[j])[b], l.M(x.row[i])[b]);
      out[i][j] = Total(df, acc[i][j]) + min_sum;
    }
  }
}

// Super-blocks: per pair and super-block, DotK's exact integer sums and its float expression.
template <bool kMin>
HWY_INLINE void TileKDecoded(const Decoded& l, const TileSide<kTileW>& w, const TileSide<kTileX>& x,
                             float (*out)[kTileW]) {
  using D32 = hn::Repartition<int32_t, D16>;
  using D32G = hn::Repartition<int32_t, D16G>;
  const D16 d16;
  const D32 d32;
  const D16G d16g;
  const D32G d32g;
  float sum[kTileX][kTileW] = {};
  for (size_t b = 0; b < l.nb; ++b) {
    hn::Vec<D32> lanes[kTileX][kTileW];
    for (auto& row : lanes)
      for (auto& v : row) v = hn::Zero(d32);
    for (size_t e = 256 * b; e < 256 * (b + 1); e += hn::Lanes(d16)) {
      hn::Vec<D16> xv[kTileX];
      for (size_t i = 0; i < kTileX; ++i) xv[i] = hn::Load(d16, Decoded::Q(x.row[i]) + e);
      for (size_t j = 0; j < kTileW; ++j) {
        const auto wv = hn::Load(d16, Decoded::Q(w.row[j]) + e);
        for (size_t i = 0; i < kTileX; ++i) lanes[i][j] = MulPairs(d32, wv, xv[i], lanes[i][j]);
      }
    }
    for (size_t i = 0; i < kTileX; ++i) {
      const float dx = l.D(x.row[i])[b];
      for (size_t j = 0; j < kTileW; ++j) {
        const int32_t sumi = hn::GetLane(hn::SumOfLanes(d32, lanes[i][j]));
        int32_t summ = 0;
        if constexpr (kMin) {
          auto m = hn::Zero(d32g);
          for (size_t g = 0; g < 16; g += hn::Lanes(d16g)) {
            m = MulPairs(d32g, hn::LoadU(d16g, l.G(w.row[j]) + 16 * b + g),
                         hn::LoadU(d16g, l.G(x.row[i]) + 16 * b + g), m);
          }
          summ = hn::GetLane(hn::SumOfLanes(d32g, m));
        }
        sum[i][j] += KBlockSum(l.D(w.row[j])[b], l.M(w.row[j])[b], dx, sumi, summ);
      }
    }
  }
  for (size_t i = 0; i < kTileX; ++i)
    for (size_t j = 0; j < kTileW; ++j) out[i][j] = sum[i][j];
}

// W decodes weight blocks, X activation blocks.
template <class W, class X>
void Tile(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride, size_t nx,
          size_t n, float* out, size_t ldo) {
  const size_t nb = n / W::kBlock;
  const Decoded l{n, nb, W::kBlock == 256 ? 16 * nb : 0};
  const size_t bytes = l.Bytes();
  uint8_t* wpanel = Scratch((nw + kTileX) * bytes);
  uint8_t* xgroup = wpanel + nw * bytes;
  for (size_t j = 0; j < nw; ++j)
    W::Decode(static_cast<const uint8_t*>(w) + j * w_stride, l, wpanel + j * bytes);
  float tile[kTileX][kTileW];
  for (size_t i0 = 0; i0 < nx; i0 += kTileX) {
    const size_t rows_x = std::min(kTileX, nx - i0);
    for (size_t i = 0; i < rows_x; ++i)
      X::Decode(static_cast<const uint8_t*>(x) + (i0 + i) * x_stride, l, xgroup + i * bytes);
    const TileSide<kTileX> xs(xgroup, bytes, rows_x);
    for (size_t j0 = 0; j0 < nw; j0 += kTileW) {
      const size_t rows_w = std::min(kTileW, nw - j0);
      const TileSide<kTileW> ws(wpanel + j0 * bytes, bytes, rows_w);
      if constexpr (W::kBlock == 32) {
        Tile32Decoded<typename W::Tag>(l, ws, xs, tile);
      } else {
        TileKDecoded<W::kMin>(l, ws, xs, tile);
      }
      for (size_t i = 0; i < rows_x; ++i)
        for (size_t j = 0; j < rows_w; ++j) out[(i0 + i) * ldo + j0 + j] = tile[i][j];
    }
  }
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// K-quant prompts (Q2_K to Q6_K) as an integer GEMM on x86 (AVX2 and up), one weight row an
// integer lane. The generic tile widens levels to int16 and sums each pair's products into lanes
// of its own, reduced at every super-block; here each instruction takes four unsigned levels of 8
// or 16 weight rows at once against four int8 activations broadcast from one row, and no lane is
// ever reduced. Each call packs its weight rows 32 at a time into a panel, per super-block:
//   levels  [group][quad][32 rows][4 bytes], unsigned (Q3_K's and Q6_K's stored level + 4 or
//           + 32), so a quad of 16 rows is one aligned 64-byte load (two on 256 bits);
//   scales  [group][32 rows], one per scale group (32 elements for Q4_K and Q5_K, 16 for the
//           others): int32 for vpmulld (AVX-512 VNNI), else the int16 scale twice, for vpmaddwd;
//   pairs   [pair][32 rows][2 int16], for vpdpwssd / vpmaddwd against pairs of the activations'
//           group sums: the mins (summ) of Q2_K, Q4_K and Q5_K, or the scales of Q3_K and Q6_K
//           (the 4 or 32 * sum scale * bsum their offset takes off);
//   d, dmin [32] float each (dmin 0 where the type has no minimum).
// AVX-512 VNNI sums a group's products with vpdpbusd in int32, then multiplies by the scale.
// AVX2 (and AVX-512 without VNNI, on 256 bits) sums them with vpmaddubsw into int16 pairs,
// kInt16Quads quads at a time (each type's bound is at its panel), then vpmaddwd with the scale
// pair gives the scaled int32. All exact (the largest sum, Q6_K's 16 * 63 * 128 * 128 per group,
// stays far below 2^31 over a super-block); each super-block ends in KBlockSums, lane-wise, over
// the dot's exact sumi and summ, added in block order: every output is the type's dot bit for
// bit.
constexpr size_t kPanelRows = 32;
constexpr bool kScalePairs = HWY_TARGET != HWY_AVX3_DL;
// GCC 12's AVX-512 conversion and shift intrinsics pass an "undefined" vector that its
// -Wmaybe-uninitialized flags, as for the K-quant dots above.
HWY_DIAGNOSTICS(push)
HWY_DIAGNOSTICS_OFF(disable : 4703 6001 26494, ignored "-Wmaybe-uninitialized")

template <size_t kGroups, size_t kPairs, size_t kQuadsInt16>
struct KPanel {
  static constexpr size_t kGroupCount = kGroups, kPairCount = kPairs, kGroupQuads = 64 / kGroups,
                          kInt16Quads = kQuadsInt16;
  static constexpr size_t kLevelBytes = 256 * kPanelRows, kScaleBytes = kGroups * kPanelRows * 4,
                          kPairBytes = kPairs * kPanelRows * 4;
  static constexpr size_t kBlockBytes = kLevelBytes + kScaleBytes + kPairBytes + 2 * kPanelRows * 4;
  static_assert(kBlockBytes % 64 == 0, "aligned vectors in every block");
  uint8_t* block;
  uint8_t* Levels(size_t group, size_t quad) const {
    return block + (group * kGroupQuads + quad) * 4 * kPanelRows;
  }
  int32_t* Scales(size_t group) const {
    return reinterpret_cast<int32_t*>(block + kLevelBytes) + group * kPanelRows;
  }
  int16_t* Pairs(size_t pair) const {
    return reinterpret_cast<int16_t*>(block + kLevelBytes + kScaleBytes) + pair * 2 * kPanelRows;
  }
  float* D() const {
    return reinterpret_cast<float*>(block + kLevelBytes + kScaleBytes + kPairBytes);
  }
  float* DMin() const { return D() + kPanelRows; }
  void SetScale(size_t group, size_t row, int16_t scale) const {
    const auto bits = static_cast<uint16_t>(scale);
    Scales(group)[row] = kScalePairs ? static_cast<int32_t>(bits | (uint32_t{bits} << 16)) : scale;
  }
};

// Panel row c of the nw weight rows from pw: rows past nw repeat row nw - 1 (their results are
// not stored).
HWY_INLINE const uint8_t* PanelRow(const uint8_t* pw, size_t c, size_t w_stride, size_t nw) {
  return pw + std::min(c, nw - 1) * w_stride;
}

// The 4-byte words at byte `at` of the super-blocks of a panel's 32 weight rows.
HWY_INLINE void RowWords(const uint8_t* at, size_t w_stride, size_t nw, uint32_t* words) {
  for (size_t c = 0; c < kPanelRows; ++c)
    words[c] = static_cast<uint32_t>(load_i32(PanelRow(at, c, w_stride, nw)));
}

// Q4_K and Q5_K (the same with a fifth bit: element e's is bit e / 32 of qh[e % 32]); Q5_K's
// 5-bit levels take kInt16Quads = 4 (4 * 2 * 31 * 128 < 2^15).
template <bool kFifthBit>
struct Q45KPanel : KPanel<8, 4, kFifthBit ? 4 : 8> {
  using Base = KPanel<8, 4, kFifthBit ? 4 : 8>;
  using Base::DMin, Base::D, Base::Levels, Base::Pairs, Base::SetScale;
  static constexpr size_t kWBytes = kFifthBit ? 176 : 144;
  static constexpr bool kMin = true;
  // Q8_K's group sums as the pairs go against: sub-block sums 2p and 2p + 1 in dword p.
  static __m128i XPairs(const uint8_t* px, size_t /*pair*/) { return SubBlockSums(px); }
  void Pack(const uint8_t* pw, size_t w_stride, size_t nw) const {
    HWY_ALIGN uint32_t words[kPanelRows], fifth[kPanelRows] = {};
    const uint8_t* qs = pw + (kFifthBit ? 48 : 16);
    // Group g's 32 bytes hold sub-block 2g in their low nibbles, 2g + 1 in the high ones; quad q
    // of every sub-block takes its fifth bits from the same 4 bytes of qh.
    for (size_t q = 0; q < 8; ++q) {
      if constexpr (kFifthBit) RowWords(pw + 16 + 4 * q, w_stride, nw, fifth);
      for (size_t g = 0; g < 4; ++g) {
        RowWords(qs + 32 * g + 4 * q, w_stride, nw, words);
        auto* low = reinterpret_cast<uint32_t*>(Levels(2 * g, q));
        auto* high = reinterpret_cast<uint32_t*>(Levels(2 * g + 1, q));
        for (size_t c = 0; c < kPanelRows; ++c) {
          low[c] = (words[c] & 0x0F0F0F0Fu) | (((fifth[c] >> (2 * g)) & 0x01010101u) << 4);
          high[c] =
              ((words[c] >> 4) & 0x0F0F0F0Fu) | (((fifth[c] >> (2 * g + 1)) & 0x01010101u) << 4);
        }
      }
    }
    for (size_t c = 0; c < kPanelRows; ++c) {
      const uint8_t* row = PanelRow(pw, c, w_stride, nw);
      __m128i scales8, mins8;
      Q4KScales(row, scales8, mins8);
      HWY_ALIGN int16_t sc[8], mn[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(sc), scales8);
      _mm_store_si128(reinterpret_cast<__m128i*>(mn), mins8);
      for (size_t j = 0; j < 8; ++j) {
        SetScale(j, c, sc[j]);
        Pairs(j / 2)[2 * c + j % 2] = mn[j];
      }
      D()[c] = F16(row);
      DMin()[c] = F16(row + 2);
    }
  }
};

// 16 scale groups of 16 elements (Q2_K, Q3_K, Q6_K): the pairs go against Q8_K's 16 group sums,
// groups 2p and 2p + 1 in dword p, four pairs per 128-bit half.
template <size_t kQuadsInt16>
struct K16Panel : KPanel<16, 8, kQuadsInt16> {
  static __m128i XPairs(const uint8_t* px, size_t pair) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(px + 260 + 16 * (pair / 4)));
  }
};

// Q2_K and Q3_K's 2-bit crumbs (byte l of each 32-byte group of qs holds elements l, l + 32,
// l + 64 and l + 96 of its 128 in bit pairs 0, 2, 4, 6) of the quad of elements from l.
HWY_INLINE void CrumbQuads(const uint8_t* qs, size_t l, size_t w_stride, size_t nw,
                           uint32_t* crumbs) {
  RowWords(qs + 32 * (l / 128) + l % 32, w_stride, nw, crumbs);
  const auto shift = static_cast<uint32_t>(2 * (l % 128 / 32));
  for (size_t c = 0; c < kPanelRows; ++c) crumbs[c] = (crumbs[c] >> shift) & 0x03030303u;
}

// Q2_K: levels 0-3, 4-bit scales and mins (4 quads in int16: 4 * 2 * 3 * 128 < 2^15).
struct Q2KPanel : K16Panel<4> {
  static constexpr size_t kWBytes = 84;
  static constexpr bool kMin = true;
  static constexpr int kOffsetShift = 0;
  void Pack(const uint8_t* pw, size_t w_stride, size_t nw) const {
    for (size_t l = 0; l < 256; l += 4)
      CrumbQuads(pw + 16, l, w_stride, nw, reinterpret_cast<uint32_t*>(Levels(l / 16, l % 16 / 4)));
    for (size_t c = 0; c < kPanelRows; ++c) {
      const uint8_t* row = PanelRow(pw, c, w_stride, nw);
      for (size_t j = 0; j < 16; ++j) {
        SetScale(j, c, static_cast<int16_t>(row[j] & 0xF));
        Pairs(j / 2)[2 * c + j % 2] = static_cast<int16_t>(row[j] >> 4);
      }
      D()[c] = F16(row + 80);
      DMin()[c] = F16(row + 82);
    }
  }
};

// Q3_K: stored as level + 4 (0-7: the crumb, plus 4 where the hmask bit is set), so its offset
// takes 4 * sum scale * bsum off (4 quads in int16: 4 * 2 * 7 * 128 < 2^15).
struct Q3KPanel : K16Panel<4> {
  static constexpr size_t kWBytes = 110;
  static constexpr bool kMin = false;
  static constexpr int kOffsetShift = 2;
  void Pack(const uint8_t* pw, size_t w_stride, size_t nw) const {
    HWY_ALIGN uint32_t high[kPanelRows];
    for (size_t l = 0; l < 256; l += 4) {
      auto* levels = reinterpret_cast<uint32_t*>(Levels(l / 16, l % 16 / 4));
      CrumbQuads(pw + 32, l, w_stride, nw, levels);
      // Element e's high bit is bit e / 32 of hmask[e % 32].
      RowWords(pw + l % 32, w_stride, nw, high);
      for (size_t c = 0; c < kPanelRows; ++c)
        levels[c] |= ((high[c] >> (l / 32)) & 0x01010101u) << 2;
    }
    for (size_t c = 0; c < kPanelRows; ++c) {
      const uint8_t* row = PanelRow(pw, c, w_stride, nw);
      const std::array<int8_t, 16> sc = quant::q3_k_scales(row + 96);
      for (size_t j = 0; j < 16; ++j) {
        SetScale(j, c, sc[j]);
        Pairs(j / 2)[2 * c + j % 2] = sc[j];
      }
      D()[c] = F16(row + 108);
      DMin()[c] = 0.0f;
    }
  }
};

// Q6_K: stored level + 32, so its offset takes 32 * sum scale * bsum off (2 quads in int16:
// 2 * 2 * 63 * 128 < 2^15).
struct Q6KPanel : K16Panel<2> {
  static constexpr size_t kWBytes = 210;
  static constexpr bool kMin = false;
  static constexpr int kOffsetShift = 5;
  void Pack(const uint8_t* pw, size_t w_stride, size_t nw) const {
    HWY_ALIGN uint32_t nibbles[kPanelRows], pairs[kPanelRows];
    // Element e of half h: the nibble of ql[64h + e % 64] above bit 4 * (e / 64), and the bit
    // pair of qh[32h + e % 32] above bit 2 * (e / 32).
    for (size_t l = 0; l < 256; l += 4) {
      const size_t half = l / 128, e = l % 128;
      RowWords(pw + 64 * half + e % 64, w_stride, nw, nibbles);
      RowWords(pw + 128 + 32 * half + e % 32, w_stride, nw, pairs);
      const auto nibble_shift = static_cast<uint32_t>(4 * (e / 64));
      const auto pair_shift = static_cast<uint32_t>(2 * (e / 32));
      auto* levels = reinterpret_cast<uint32_t*>(Levels(l / 16, l % 16 / 4));
      for (size_t c = 0; c < kPanelRows; ++c) {
        levels[c] = ((nibbles[c] >> nibble_shift) & 0x0F0F0F0Fu) |
                    (((pairs[c] >> pair_shift) & 0x03030303u) << 4);
      }
    }
    for (size_t c = 0; c < kPanelRows; ++c) {
      const uint8_t* row = PanelRow(pw, c, w_stride, nw);
      for (size_t j = 0; j < 16; ++j) {
        const auto scale = static_cast<int8_t>(row[192 + j]);
        SetScale(j, c, scale);
        Pairs(j / 2)[2 * c + j % 2] = scale;
      }
      D()[c] = F16(row + 208);
      DMin()[c] = 0.0f;
    }
  }
};

#if HWY_TARGET == HWY_AVX3_DL
// 512 bits: one vector is 16 weight rows, a tile kRows activation rows x the panel's 32. Only
// the three products differ between the widths; the rest is Highway's on the tag DI.
using DI = hn::Full512<int32_t>;
using VI = hn::Vec<DI>;
HWY_INLINE VI PairProducts(VI sum, VI a, VI b) {
  return VI{Dpwssd(sum.raw, a.raw, b.raw)};
}
HWY_INLINE VI QuadProducts(VI sum, VI u, VI s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(sum.raw) : "v"(u.raw), "v"(s.raw));
  return sum;
}
HWY_INLINE VI Scaled(VI group, VI scale) {
  return hn::Mul(group, scale);
}
#else
// 256 bits: one vector is 8 weight rows, a tile kRows activation rows x 16 of the panel's rows.
using DI = hn::Full256<int32_t>;
using VI = hn::Vec<DI>;
HWY_INLINE VI PairProducts(VI sum, VI a, VI b) {
  return hn::Add(sum, VI{_mm256_madd_epi16(a.raw, b.raw)});
}
// int16 pairs of u8 x i8 products, added in int16 (see kInt16Quads).
HWY_INLINE VI QuadProducts(VI sum, VI u, VI s) {
  return VI{_mm256_add_epi16(sum.raw, _mm256_maddubs_epi16(u.raw, s.raw))};
}
HWY_INLINE VI Scaled(VI group, VI scale) {
  return VI{_mm256_madd_epi16(group.raw, scale.raw)};
}
#endif
using DFT = hn::Repartition<float, DI>;
constexpr size_t kLanes = sizeof(VI) / sizeof(int32_t), kTileCols = 2 * kLanes, kTileVectors = 2;

// kRows activation rows (Q8_K, at x[r]) against panel rows [col0, col0 + kTileCols) over nb
// super-blocks: sums[r][c] = the dot of activation row r with weight row col0 + c.
template <class P, size_t kRows>
HWY_INLINE void PanelRows(const uint8_t* panel, size_t nb, size_t col0, const uint8_t* const* x,
                          float (*sums)[kTileCols]) {
  const DI di;
  const DFT df;
  using VF = hn::Vec<DFT>;
  // Quads summed before the scale: a whole group in int32 (vpdpbusd), kInt16Quads in int16 pairs.
  constexpr size_t kChunkQuads = kScalePairs ? P::kInt16Quads : P::kGroupQuads;
  static_assert(P::kGroupQuads % kChunkQuads == 0, "whole chunks per group");
  VF total[kRows][kTileVectors];
  for (auto& row : total)
    for (auto& v : row) v = hn::Zero(df);
  for (size_t b = 0; b < nb; ++b) {
    const P blk{{const_cast<uint8_t*>(panel) + P::kBlockBytes * b}};
    const size_t xb = 292 * b;
    VI sumi[kRows][kTileVectors];
    for (auto& row : sumi)
      for (auto& v : row) v = hn::Zero(di);
    for (size_t g = 0; g < P::kGroupCount; ++g) {
      VI scale[kTileVectors];
      for (size_t h = 0; h < kTileVectors; ++h)
        scale[h] = hn::Load(di, blk.Scales(g) + col0 + kLanes * h);
      for (size_t q0 = 0; q0 < P::kGroupQuads; q0 += kChunkQuads) {
        VI group[kRows][kTileVectors];
        for (auto& row : group)
          for (auto& v : row) v = hn::Zero(di);
        for (size_t q = q0; q < q0 + kChunkQuads; ++q) {
          const uint8_t* levels = blk.Levels(g, q) + 4 * col0;
          VI w[kTileVectors];
          for (size_t h = 0; h < kTileVectors; ++h)
            w[h] = hn::Load(di, reinterpret_cast<const int32_t*>(levels) + kLanes * h);
          const size_t at = xb + 4 + 4 * (g * P::kGroupQuads + q);
          for (size_t r = 0; r < kRows; ++r) {
            const VI xq = hn::Set(di, load_i32(x[r] + at));
            for (size_t h = 0; h < kTileVectors; ++h)
              group[r][h] = QuadProducts(group[r][h], w[h], xq);
          }
        }
        for (size_t r = 0; r < kRows; ++r)
          for (size_t h = 0; h < kTileVectors; ++h)
            sumi[r][h] = hn::Add(sumi[r][h], Scaled(group[r][h], scale[h]));
      }
    }
    for (size_t r = 0; r < kRows; ++r) {
      VI pairs[kTileVectors];
      for (auto& v : pairs) v = hn::Zero(di);
      for (size_t p = 0; p < P::kPairCount; p += 4) {
        HWY_ALIGN int32_t xp[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(xp), P::XPairs(x[r] + xb, p));
        for (size_t e = 0; e < 4; ++e) {
          const VI xv = hn::Set(di, xp[e]);
          const auto* wp = reinterpret_cast<const int32_t*>(blk.Pairs(p + e)) + col0;
          for (size_t h = 0; h < kTileVectors; ++h)
            pairs[h] = PairProducts(pairs[h], hn::Load(di, wp + kLanes * h), xv);
        }
      }
      const auto dx = hn::Set(df, load_f32(x[r] + xb));
      for (size_t h = 0; h < kTileVectors; ++h) {
        VI si = sumi[r][h], sm = pairs[h];
        if constexpr (!P::kMin) {
          si = hn::Sub(si, hn::ShiftLeft<P::kOffsetShift>(sm));
          sm = hn::Zero(di);
        }
        const size_t c = col0 + kLanes * h;
        const VF block = KBlockSums(hn::Load(df, blk.D() + c), hn::Load(df, blk.DMin() + c), dx,
                                    hn::ConvertTo(df, si), hn::ConvertTo(df, sm));
        total[r][h] = hn::Add(total[r][h], block);
      }
    }
  }
  for (size_t r = 0; r < kRows; ++r)
    for (size_t h = 0; h < kTileVectors; ++h) hn::Store(total[r][h], df, sums[r] + kLanes * h);
}

template <class P>
void TileKGemm(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride, size_t nx,
               size_t n, float* out, size_t ldo) {
  // Rows per tile: what the 32 (16 on AVX2) vector registers hold with the sums of both stages.
  constexpr size_t kRows = HWY_TARGET == HWY_AVX3_DL ? 4 : 3;
  const size_t nb = n / 256;
  uint8_t* panel = Scratch(nb * P::kBlockBytes);
  for (size_t j0 = 0; j0 < nw; j0 += kPanelRows) {
    const size_t cols = std::min(kPanelRows, nw - j0);
    const auto* pw = static_cast<const uint8_t*>(w) + j0 * w_stride;
    for (size_t b = 0; b < nb; ++b)
      P{{panel + P::kBlockBytes * b}}.Pack(pw + P::kWBytes * b, w_stride, cols);
    HWY_ALIGN float sums[kRows][kTileCols];
    for (size_t col0 = 0; col0 < cols; col0 += kTileCols) {
      const size_t tile_cols = std::min(kTileCols, cols - col0);
      for (size_t i0 = 0; i0 < nx; i0 += kRows) {
        const size_t rows = std::min(kRows, nx - i0);
        const uint8_t* xr[kRows];
        for (size_t r = 0; r < kRows; ++r)
          xr[r] = static_cast<const uint8_t*>(x) + (i0 + std::min(r, rows - 1)) * x_stride;
        PanelRows<P, kRows>(panel, nb, col0, xr, sums);
        for (size_t r = 0; r < rows; ++r)
          std::memcpy(out + (i0 + r) * ldo + j0 + col0, sums[r], tile_cols * sizeof(float));
      }
    }
  }
}
HWY_DIAGNOSTICS(pop)
#endif

void TileQ4_0Q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
  Tile<W32<Q45<false, false>>, X32<false, kQuadLanes>>(w, w_stride, nw, x, x_stride, nx, n, out,
                                                       ldo);
}
void TileQ4_1Q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
  Tile<W32<Q45<true, false>>, X32<true, kQuadLanes>>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void TileQ5_0Q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
  Tile<W32<Q45<false, true>>, X32<false, kQuadLanes>>(w, w_stride, nw, x, x_stride, nx, n, out,
                                                      ldo);
}
void TileQ5_1Q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
  Tile<W32<Q45<true, true>>, X32<true, kQuadLanes>>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void TileQ8_0Q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
  Tile<W32<Q8>, X32<false, false>>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void TileQ2_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  TileKGemm<Q2KPanel>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#else
  Tile<WK<Q2K>, XK>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#endif
}
void TileQ3_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  TileKGemm<Q3KPanel>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#else
  Tile<WK<Q3K>, XK>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#endif
}
void TileQ4_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  TileKGemm<Q45KPanel<false>>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#else
  Tile<WK<Q45K<false>>, XK>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#endif
}
void TileQ5_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  TileKGemm<Q45KPanel<true>>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#else
  Tile<WK<Q45K<true>>, XK>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#endif
}
void TileQ6_KQ8_K(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                  size_t nx, size_t n, float* out, size_t ldo) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  TileKGemm<Q6KPanel>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#else
  Tile<WK<Q6K>, XK>(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
#endif
}

// ---------------------------------------------------------------------------------------------
// Dequantization (to_f32) of the block types that linear widens for prompts. Levels are
// unpacked with vector bit operations into int32 lanes and scaled with the reference's float
// operations in its order (a product, then the min subtracted or added, never fused), so every
// value is bit-identical to quant_ref.cpp's. A vector holds at most 16 floats: one K-quant
// scale group.
using DQ = hn::CappedTag<float, 16>;
using DQi = hn::Rebind<int32_t, DQ>;
using DQu = hn::Rebind<uint32_t, DQ>;
using DQ8 = hn::Rebind<uint8_t, DQ>;

// Float lanes of unsigned bytes, minus `offset`.
HWY_INLINE hn::Vec<DQ> Levels(hn::Vec<DQu> q, int32_t offset) {
  return hn::ConvertTo(DQ(), hn::Sub(hn::BitCast(DQi(), q), hn::Set(DQi(), offset)));
}

// 32-element blocks with 4-bit levels in 16 bytes at qs: element j is the low nibble of byte
// j, element j + 16 the high one; d * (q - offset), plus m where the type has a min.
template <bool kHasMin>
HWY_INLINE void Dequant4(const uint8_t* qs, float d, float m, int32_t offset, float* dst) {
  const DQ df;
  const DQu du;
  const auto vd = hn::Set(df, d);
  for (size_t i = 0; i < 16; i += hn::Lanes(df)) {
    const auto bytes = hn::PromoteTo(du, hn::LoadU(DQ8(), qs + i));
    const auto lo = hn::Mul(Levels(hn::And(bytes, hn::Set(du, 15u)), offset), vd);
    const auto hi = hn::Mul(Levels(hn::ShiftRight<4>(bytes), offset), vd);
    hn::StoreU(kHasMin ? hn::Add(lo, hn::Set(df, m)) : lo, df, dst + i);
    hn::StoreU(kHasMin ? hn::Add(hi, hn::Set(df, m)) : hi, df, dst + 16 + i);
  }
}

void DequantQ4_0(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (size_t blk = 0; blk < n / 32; ++blk, b += 18, dst += 32)
    Dequant4<false>(b + 2, F16(b), 0.0f, 8, dst);
}

void DequantQ4_1(const void* src, float* dst, size_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (size_t blk = 0; blk < n / 32; ++blk, b += 20, dst += 32)
    Dequant4<true>(b + 4, F16(b), F16(b + 2), 0, dst);
}

// Q5_0 and Q5_1: the 4-bit levels of Dequant4 plus 16 where bit e of the 32-bit qh is set; Q5_0
// subtracts 16 and scales, Q5_1 (kHasMin) scales and adds its min.
template <bool kHasMin>
HWY_INLINE void Dequant5(const uint8_t* b, float* dst, size_t n) {
  constexpr size_t kHeader = kHasMin ? 4 : 2;  // d, and m for Q5_1
  constexpr int32_t kOffset = kHasMin ? 0 : 16;
  const DQ df;
  const DQu du;
  for (size_t blk = 0; blk < n / 32; ++blk, b += kHeader + 20, dst += 32) {
    uint32_t qh;
    std::memcpy(&qh, b + kHeader, 4);
    const auto vd = hn::Set(df, F16(b));
    const auto vm = hn::Set(df, kHasMin ? F16(b + 2) : 0.0f);
    const auto bits = hn::Set(du, qh);
    for (size_t i = 0; i < 16; i += hn::Lanes(df)) {
      const auto bytes = hn::PromoteTo(du, hn::LoadU(DQ8(), b + kHeader + 4 + i));
      const auto e = hn::Iota(du, static_cast<uint32_t>(i));
      const auto h0 = hn::ShiftLeft<4>(hn::And(hn::Shr(bits, e), hn::Set(du, 1u)));
      const auto h1 =
          hn::ShiftLeft<4>(hn::And(hn::Shr(bits, hn::Add(e, hn::Set(du, 16u))), hn::Set(du, 1u)));
      const auto lo = hn::Mul(Levels(hn::Or(hn::And(bytes, hn::Set(du, 15u)), h0), kOffset), vd);
      const auto hi = hn::Mul(Levels(hn::Or(hn::ShiftRight<4>(bytes), h1), kOffset), vd);
      hn::StoreU(kHasMin ? hn::Add(lo, vm) : lo, df, dst + i);
      hn::StoreU(kHasMin ? hn::Add(hi, vm) : hi, df, dst + 16 + i);
    }
  }
}

void DequantQ5_0(const void* src, float* dst, size_t n) {
  Dequant5<false>(static_cast<const uint8_t*>(src), dst, n);
}
void DequantQ5_1(const void* src, float* dst, size_t n) {
  Dequant5<true>(static_cast<const uint8_t*>(src), dst, n);
}

void DequantQ8_0(const void* src, float* dst, size_t n) {
  const DQ df;
  const hn::Rebind<int8_t, DQ> d8;
  const auto* b = static_cast<const uint8_t*>(src);
  for (size_t blk = 0; blk < n / 32; ++blk, b += 34, dst += 32) {
    const auto vd = hn::Set(df, F16(b));
    const auto* q = reinterpret_cast<const int8_t*>(b + 2);
    for (size_t i = 0; i < 32; i += hn::Lanes(df)) {
      const auto levels = hn::ConvertTo(df, hn::PromoteTo(DQi(), hn::LoadU(d8, q + i)));
      hn::StoreU(hn::Mul(levels, vd), df, dst + i);
    }
  }
}

// Q4_K: 32-byte groups of qs hold 64 elements, low nibbles first; sub-block j (32 elements) is
// (d * scale_j) * q - dmin * min_j. Q5_K (kFifthBit): the same levels plus 16 where bit j of
// qh[i] is set, for element i of sub-block j.
template <bool kFifthBit>
void DequantQ45K(const void* src, float* dst, size_t n) {
  const DQ df;
  const DQu du;
  const auto* b = static_cast<const uint8_t*>(src);
  for (size_t blk = 0; blk < n / 256; ++blk, b += kFifthBit ? 176 : 144, dst += 256) {
    const float d = F16(b), dmin = F16(b + 2);
    uint8_t sc[8], mn[8];
    quant::unpack_k4_scales(reinterpret_cast<const std::byte*>(b + 4), sc, mn);
    for (size_t j = 0; j < 8; ++j) {
      const auto dl = hn::Set(df, d * static_cast<float>(sc[j]));
      const auto ml = hn::Set(df, dmin * static_cast<float>(mn[j]));
      const uint8_t* qs = b + (kFifthBit ? 48 : 16) + (j / 2) * 32;
      for (size_t i = 0; i < 32; i += hn::Lanes(df)) {
        const auto bytes = hn::PromoteTo(du, hn::LoadU(DQ8(), qs + i));
        auto q = j % 2 == 0 ? hn::And(bytes, hn::Set(du, 15u)) : hn::ShiftRight<4>(bytes);
        if constexpr (kFifthBit) {
          const auto qh = hn::PromoteTo(du, hn::LoadU(DQ8(), b + 16 + i));
          const auto fifth = hn::And(hn::ShiftRightSame(qh, static_cast<int>(j)), hn::Set(du, 1u));
          q = hn::Or(q, hn::ShiftLeft<4>(fifth));
        }
        hn::StoreU(hn::Sub(hn::Mul(dl, Levels(q, 0)), ml), df, dst + j * 32 + i);
      }
    }
  }
}
void DequantQ4_K(const void* src, float* dst, size_t n) {
  DequantQ45K<false>(src, dst, n);
}
void DequantQ5_K(const void* src, float* dst, size_t n) {
  DequantQ45K<true>(src, dst, n);
}

// Q2_K and Q3_K: element e = 128 h + 32 k + l takes bit pair k of qs[32 h + l]; 16-element
// groups are scaled by d * scale. Q2_K's scale byte holds the scale (low nibble) and the min
// (high), subtracted as dmin * min; Q3_K's level is the pair minus 4 unless bit 4 h + k of
// hmask[l] is set, and its min term is zero (x - 0 is x).
template <bool kQ3>
void DequantCrumbs(const void* src, float* dst, size_t n) {
  const DQ df;
  const DQu du;
  const auto* b = static_cast<const uint8_t*>(src);
  constexpr size_t kBytes = kQ3 ? 110 : 84;
  for (size_t blk = 0; blk < n / 256; ++blk, b += kBytes, dst += 256) {
    const float d = F16(b + (kQ3 ? 108 : 80));
    const float dmin = kQ3 ? 0.0f : F16(b + 82);
    std::array<int8_t, 16> q3_scales{};
    if constexpr (kQ3) q3_scales = quant::q3_k_scales(b + 96);
    const uint8_t* qs = b + (kQ3 ? 32 : 16);
    for (size_t e = 0; e < 256; e += hn::Lanes(df)) {
      const size_t h = e / 128, k = e % 128 / 32, l = e % 32, group = e / 16;
      const float scale =
          kQ3 ? static_cast<float>(q3_scales[group]) : static_cast<float>(b[group] & 0xF);
      const float min = kQ3 ? 0.0f : static_cast<float>(b[group] >> 4);
      const auto pair =
          hn::And(hn::ShiftRightSame(hn::PromoteTo(du, hn::LoadU(DQ8(), qs + 32 * h + l)),
                                     static_cast<int>(2 * k)),
                  hn::Set(du, 3u));
      auto level = Levels(pair, 0);
      if constexpr (kQ3) {
        const auto high = hn::And(hn::ShiftRightSame(hn::PromoteTo(du, hn::LoadU(DQ8(), b + l)),
                                                     static_cast<int>(4 * h + k)),
                                  hn::Set(du, 1u));
        level = Levels(hn::Or(pair, hn::ShiftLeft<2>(high)), 4);
      }
      hn::StoreU(hn::Sub(hn::Mul(hn::Set(df, d * scale), level), hn::Set(df, dmin * min)), df,
                 dst + e);
    }
  }
}
void DequantQ2_K(const void* src, float* dst, size_t n) {
  DequantCrumbs<false>(src, dst, n);
}
void DequantQ3_K(const void* src, float* dst, size_t n) {
  DequantCrumbs<true>(src, dst, n);
}

// Q6_K: per 128 elements, element 32 k + l (k < 4, l < 32) takes the low (k < 2) or high nibble
// of ql[l + 32 (k % 2)] and bit pair k of qh[l], minus 32; 16-element groups are scaled by
// d * scale (ggml's min term is zero for Q6_K, and x - 0 is x).
void DequantQ6_K(const void* src, float* dst, size_t n) {
  const DQ df;
  const DQu du;
  const auto* b = static_cast<const uint8_t*>(src);
  for (size_t blk = 0; blk < n / 256; ++blk, b += 210, dst += 256) {
    const float d = F16(b + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    for (size_t half = 0; half < 2; ++half) {
      const uint8_t* ql = b + half * 64;
      const uint8_t* qh = b + 128 + half * 32;
      for (size_t k = 0; k < 4; ++k) {
        for (size_t l = 0; l < 32; l += hn::Lanes(df)) {
          const size_t e = half * 128 + k * 32 + l;
          const size_t group = e / 16;
          const auto dl = hn::Set(df, d * static_cast<float>(sc[group]));
          const auto low = hn::PromoteTo(du, hn::LoadU(DQ8(), ql + l + 32 * (k % 2)));
          const auto nibble = k < 2 ? hn::And(low, hn::Set(du, 15u)) : hn::ShiftRight<4>(low);
          const auto high = hn::And(hn::ShiftRightSame(hn::PromoteTo(du, hn::LoadU(DQ8(), qh + l)),
                                                       static_cast<int>(2 * k)),
                                    hn::Set(du, 3u));
          hn::StoreU(hn::Mul(dl, Levels(hn::Or(nibble, hn::ShiftLeft<4>(high)), 32)), df, dst + e);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Q8_0 / Q8_1 activations (from_f32), byte for byte quant_ref.cpp's from_f32_q8: amax (a max, so
// the lane order does not matter), d and 1 / d as scalars, q = round(x * (1 / d)) with rounding
// half away from zero as std::round does (x * id - trunc(x * id) is exact, so comparing it with
// one half decides as std::round does), and Q8_1's d * sum(q) from the exact integer sum. The
// reference's scalar std::round was 7% of a SmolLM2 Q4_1 decode step.
template <bool kHasSum>
void QuantizeQ8(const float* x, uint8_t* dst, size_t n) {
  const DQ df;
  const DQi di;
  const hn::Rebind<int8_t, DQ> d8;
  constexpr size_t kBytes = kHasSum ? 36 : 34;
  for (size_t b = 0; b < n / 32; ++b, x += 32, dst += kBytes) {
    auto vmax = hn::Zero(df);
    for (size_t i = 0; i < 32; i += hn::Lanes(df))
      vmax = hn::Max(hn::Abs(hn::LoadU(df, x + i)), vmax);
    const float d = hn::GetLane(hn::MaxOfLanes(df, vmax)) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t d16 = f32_to_f16(d);
    std::memcpy(dst, &d16, 2);
    auto* qs = reinterpret_cast<int8_t*>(dst + kBytes - 32);
    auto sum = hn::Zero(di);
    for (size_t i = 0; i < 32; i += hn::Lanes(df)) {
      const auto v = hn::Mul(hn::LoadU(df, x + i), hn::Set(df, id));
      const auto t = hn::Trunc(v);
      const auto away = hn::Ge(hn::Abs(hn::Sub(v, t)), hn::Set(df, 0.5f));
      const auto q = hn::ConvertTo(
          di, hn::IfThenElse(away, hn::Add(t, hn::CopySign(hn::Set(df, 1.0f), v)), t));
      sum = hn::Add(sum, q);
      hn::StoreU(hn::DemoteTo(d8, q), d8, qs + i);
    }
    if constexpr (kHasSum) {
      const uint16_t s16 = f32_to_f16(static_cast<float>(hn::GetLane(hn::SumOfLanes(di, sum))) * d);
      std::memcpy(dst + 2, &s16, 2);
    }
  }
}

void QuantizeQ8_0(const float* x, void* dst, size_t n) {
  QuantizeQ8<false>(x, static_cast<uint8_t*>(dst), n);
}
void QuantizeQ8_1(const float* x, void* dst, size_t n) {
  QuantizeQ8<true>(x, static_cast<uint8_t*>(dst), n);
}

const char* ActiveTargetName() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace HWY_NAMESPACE
}  // namespace ember::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ember::kernels {

HWY_EXPORT(DotQ4_0Q8_0);
HWY_EXPORT(DotQ4_1Q8_1);
HWY_EXPORT(DotQ5_0Q8_0);
HWY_EXPORT(DotQ5_1Q8_1);
HWY_EXPORT(DotQ8_0Q8_0);
HWY_EXPORT(DotQ2_KQ8_K);
HWY_EXPORT(DotQ3_KQ8_K);
HWY_EXPORT(DotQ4_KQ8_K);
HWY_EXPORT(DotQ5_KQ8_K);
HWY_EXPORT(DotQ6_KQ8_K);
HWY_EXPORT(DotRowsQ4_0Q8_0);
HWY_EXPORT(DotRowsQ4_1Q8_1);
HWY_EXPORT(DotRowsQ5_0Q8_0);
HWY_EXPORT(DotRowsQ5_1Q8_1);
HWY_EXPORT(DotRowsQ8_0Q8_0);
HWY_EXPORT(DotRowsQ2_KQ8_K);
HWY_EXPORT(DotRowsQ3_KQ8_K);
HWY_EXPORT(DotRowsQ4_KQ8_K);
HWY_EXPORT(DotRowsQ5_KQ8_K);
HWY_EXPORT(DotRowsQ6_KQ8_K);
HWY_EXPORT(TileQ4_0Q8_0);
HWY_EXPORT(TileQ4_1Q8_1);
HWY_EXPORT(TileQ5_0Q8_0);
HWY_EXPORT(TileQ5_1Q8_1);
HWY_EXPORT(TileQ8_0Q8_0);
HWY_EXPORT(TileQ2_KQ8_K);
HWY_EXPORT(TileQ3_KQ8_K);
HWY_EXPORT(TileQ4_KQ8_K);
HWY_EXPORT(TileQ5_KQ8_K);
HWY_EXPORT(TileQ6_KQ8_K);
HWY_EXPORT(DequantQ4_0);
HWY_EXPORT(DequantQ4_1);
HWY_EXPORT(DequantQ5_0);
HWY_EXPORT(DequantQ5_1);
HWY_EXPORT(DequantQ8_0);
HWY_EXPORT(DequantQ2_K);
HWY_EXPORT(DequantQ3_K);
HWY_EXPORT(DequantQ4_K);
HWY_EXPORT(DequantQ5_K);
HWY_EXPORT(DequantQ6_K);
HWY_EXPORT(QuantizeQ8_0);
HWY_EXPORT(QuantizeQ8_1);
HWY_EXPORT(ActiveTargetName);

std::vector<int64_t> quant_simd_targets() {
  return hwy::SupportedAndGeneratedTargets();
}
const char* quant_active_target() {
  return HWY_DYNAMIC_DISPATCH(ActiveTargetName)();
}

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
float dot_q5_1_q8_1(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ5_1Q8_1)(w, x, n);
}
float dot_q2_k_q8_k(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ2_KQ8_K)(w, x, n);
}
float dot_q3_k_q8_k(const void* w, const void* x, size_t n) {
  apply_simd_limit();
  return HWY_DYNAMIC_DISPATCH(DotQ3_KQ8_K)(w, x, n);
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

void dot_rows_q4_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ4_0Q8_0)(w, w_stride, nw, x, n, out);
}
void dot_rows_q4_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ4_1Q8_1)(w, w_stride, nw, x, n, out);
}
void dot_rows_q5_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ5_0Q8_0)(w, w_stride, nw, x, n, out);
}
void dot_rows_q5_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ5_1Q8_1)(w, w_stride, nw, x, n, out);
}
void dot_rows_q8_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ8_0Q8_0)(w, w_stride, nw, x, n, out);
}
void dot_rows_q2_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ2_KQ8_K)(w, w_stride, nw, x, n, out);
}
void dot_rows_q3_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ3_KQ8_K)(w, w_stride, nw, x, n, out);
}
void dot_rows_q4_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ4_KQ8_K)(w, w_stride, nw, x, n, out);
}
void dot_rows_q5_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ5_KQ8_K)(w, w_stride, nw, x, n, out);
}
void dot_rows_q6_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t n,
                        float* out) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DotRowsQ6_KQ8_K)(w, w_stride, nw, x, n, out);
}

void tile_q4_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ4_0Q8_0)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q4_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ4_1Q8_1)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q5_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ5_0Q8_0)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q5_1_q8_1(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ5_1Q8_1)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q8_0_q8_0(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ8_0Q8_0)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q2_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ2_KQ8_K)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q3_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ3_KQ8_K)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q4_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ4_KQ8_K)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q5_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ5_KQ8_K)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}
void tile_q6_k_q8_k(const void* w, size_t w_stride, size_t nw, const void* x, size_t x_stride,
                    size_t nx, size_t n, float* out, size_t ldo) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(TileQ6_KQ8_K)(w, w_stride, nw, x, x_stride, nx, n, out, ldo);
}

void quantize_q8_0(const float* x, void* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(QuantizeQ8_0)(x, dst, n);
}
void quantize_q8_1(const float* x, void* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(QuantizeQ8_1)(x, dst, n);
}

void dequant_q4_0(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ4_0)(src, dst, n);
}
void dequant_q4_1(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ4_1)(src, dst, n);
}
void dequant_q5_0(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ5_0)(src, dst, n);
}
void dequant_q5_1(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ5_1)(src, dst, n);
}
void dequant_q8_0(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ8_0)(src, dst, n);
}
void dequant_q2_k(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ2_K)(src, dst, n);
}
void dequant_q3_k(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ3_K)(src, dst, n);
}
void dequant_q4_k(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ4_K)(src, dst, n);
}
void dequant_q5_k(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ5_K)(src, dst, n);
}
void dequant_q6_k(const void* src, float* dst, size_t n) {
  apply_simd_limit();
  HWY_DYNAMIC_DISPATCH(DequantQ6_K)(src, dst, n);
}

}  // namespace ember::kernels
#endif  // HWY_ONCE
