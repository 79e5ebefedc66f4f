// Scalar GGML block kernels (see ember/core/quant.hpp). Block layouts, from ggml-common.h
// (F16 scales little-endian; "q" nibbles low half first):
//   Q4_0  18 B: d, qs[16]                      x = d * (q - 8)
//   Q4_1  20 B: d, m, qs[16]                   x = d * q + m
//   Q5_0  22 B: d, qh[4], qs[16]               x = d * (q | h << 4) - 16 d
//   Q5_1  24 B: d, m, qh[4], qs[16]            x = d * (q | h << 4) + m
//   Q8_0  34 B: d, int8 qs[32]                 x = d * q
//   Q8_1  36 B: d, s = d * sum(q), int8 qs[32]
//   Q2_K  84 B: scales[16] (4-bit scale | 4-bit min << 4), qs[64], d, dmin
//   Q3_K 110 B: hmask[32], qs[64], scales[12] (16 6-bit signed scales), d
//   Q4_K 144 B: d, dmin, scales[12] (8 6-bit scales and mins), qs[128]
//   Q5_K 176 B: d, dmin, scales[12], qh[32], qs[128]
//   Q6_K 210 B: ql[128], qh[64], int8 scales[16], d
//   Q8_K 292 B: F32 d, int8 qs[256], int16 bsums[16] (sums of 16 quants)
// The quantizers reproduce ggml's float operations one for one, so this file is compiled
// without floating-point contraction (a fused a*b+c rounds once and would change the bytes on
// targets with FMA); ggml's reference build on x86-64 has no FMA to contract into either.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "ember/base/error.hpp"
#include "ember/core/half.hpp"
#include "ember/core/quant.hpp"

namespace ember::quant {
namespace {

constexpr size_t kQK = 32;    // elements per block of the 32-element formats
constexpr size_t kQKK = 256;  // elements per K-quant super-block
constexpr size_t kQ4_0Bytes = 18, kQ4_1Bytes = 20, kQ5_0Bytes = 22, kQ5_1Bytes = 24;
constexpr size_t kQ8_0Bytes = 34, kQ8_1Bytes = 36;
constexpr size_t kQ2_KBytes = 84, kQ3_KBytes = 110, kQ4_KBytes = 144, kQ5_KBytes = 176;
constexpr size_t kQ6_KBytes = 210, kQ8_KBytes = 292;
// ggml's threshold below which a group counts as all zero.
constexpr float kGroupMaxEps = 1e-15f;

const uint8_t* u8(const std::byte* p) {
  return reinterpret_cast<const uint8_t*>(p);
}
uint8_t* u8(std::byte* p) {
  return reinterpret_cast<uint8_t*>(p);
}
float load_f16(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
void store_f16(std::byte* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}
float load_f32(const std::byte* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
uint32_t load_u32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
int16_t load_i16(const std::byte* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
const int8_t* i8(const std::byte* p) {
  return reinterpret_cast<const int8_t*>(p);
}

// ggml's nearest_int: round half to even by adding 1.5 * 2^23, valid for |v| <= 2^22.
int nearest_int(float v) {
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// ------------------------------------------------------------------ unpack
// Dequantization and the dot products share one decoding of each block into integer levels
// and its scales, so the bit layouts are written down once.

// A 32-element block: x = d * q (+ m for the types with a min).
struct Block32 {
  float d = 0.0f;
  float m = 0.0f;  // Q4_1/Q5_1: the min; Q8_1: d * sum(q)
  int8_t q[kQK];
};

void unpack_q4_0(const std::byte* src, Block32& b) {
  b.d = load_f16(src);
  const uint8_t* qs = u8(src + 2);
  for (size_t j = 0; j < kQK / 2; ++j) {
    b.q[j] = static_cast<int8_t>((qs[j] & 0x0F) - 8);
    b.q[j + kQK / 2] = static_cast<int8_t>((qs[j] >> 4) - 8);
  }
}

void unpack_q4_1(const std::byte* src, Block32& b) {
  b.d = load_f16(src);
  b.m = load_f16(src + 2);
  const uint8_t* qs = u8(src + 4);
  for (size_t j = 0; j < kQK / 2; ++j) {
    b.q[j] = static_cast<int8_t>(qs[j] & 0x0F);
    b.q[j + kQK / 2] = static_cast<int8_t>(qs[j] >> 4);
  }
}

// Five-bit levels: low nibbles from qs, fifth bits from the 32-bit qh, minus `offset`.
void unpack_q5(uint32_t qh, const uint8_t* qs, int offset, int8_t* q) {
  for (size_t j = 0; j < kQK / 2; ++j) {
    const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    q[j] = static_cast<int8_t>(((qs[j] & 0x0F) | h0) - offset);
    q[j + kQK / 2] = static_cast<int8_t>(((qs[j] >> 4) | h1) - offset);
  }
}

void unpack_q5_0(const std::byte* src, Block32& b) {
  b.d = load_f16(src);
  unpack_q5(load_u32(src + 2), u8(src + 6), 16, b.q);
}

void unpack_q5_1(const std::byte* src, Block32& b) {
  b.d = load_f16(src);
  b.m = load_f16(src + 2);
  unpack_q5(load_u32(src + 4), u8(src + 8), 0, b.q);
}

// Q8_0 and Q8_1 keep their quants after the scales; Q8_1's second scale is d * sum(q).
template <size_t kBytes>
void unpack_q8(const std::byte* src, Block32& b) {
  b.d = load_f16(src);
  b.m = kBytes == kQ8_1Bytes ? load_f16(src + 2) : 0.0f;
  std::memcpy(b.q, src + kBytes - kQK, kQK);
}

// A 256-element super-block: x = (d * scale[i / 16]) * q[i] - dmin * min[i / 16], the
// expression (and rounding) of ggml's dequantizers. Q4_K/Q5_K's 32-element sub-blocks fill two
// scale slots each; Q3_K, Q6_K and Q8_K have no mins.
struct BlockK {
  float d = 0.0f;
  float dmin = 0.0f;
  int8_t q[kQKK];
  int16_t scale[16];
  int16_t min[16];
};

// Q2_K / Q3_K quant order: byte l of each 32-byte group holds elements l, l+32, l+64, l+96 in
// bit pairs 0, 2, 4, 6.
int crumb(const uint8_t* qs, size_t i) {
  return (qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
}

void unpack_q2_k(const std::byte* src, BlockK& b) {
  const uint8_t* scales = u8(src);
  const uint8_t* qs = u8(src + 16);
  b.d = load_f16(src + 80);
  b.dmin = load_f16(src + 82);
  for (size_t j = 0; j < 16; ++j) {
    b.scale[j] = scales[j] & 0xF;
    b.min[j] = scales[j] >> 4;
  }
  for (size_t i = 0; i < kQKK; ++i) b.q[i] = static_cast<int8_t>(crumb(qs, i));
}

void unpack_q3_k(const std::byte* src, BlockK& b) {
  const uint8_t* hmask = u8(src);
  const uint8_t* qs = u8(src + 32);
  const std::array<int8_t, 16> scales = q3_k_scales(u8(src + 96));
  b.d = load_f16(src + 108);
  b.dmin = 0.0f;
  for (size_t j = 0; j < 16; ++j) {
    // NOLINTNEXTLINE(bugprone-signed-char-misuse): int8_t, signed by format
    b.scale[j] = scales[j];
    b.min[j] = 0;
  }
  // The high bit of element i is bit i / 32 of hmask[i % 32]; a clear bit means minus 4.
  for (size_t i = 0; i < kQKK; ++i) {
    const bool high = (hmask[i % 32] >> (i / 32)) & 1;
    b.q[i] = static_cast<int8_t>(crumb(qs, i) - (high ? 0 : 4));
  }
}

// Q4_K / Q5_K: d, dmin, then 12 bytes holding eight 6-bit scales and mins.
void unpack_k4_header(const std::byte* src, BlockK& b) {
  b.d = load_f16(src);
  b.dmin = load_f16(src + 2);
  uint8_t sc[8], m[8];
  unpack_k4_scales(src + 4, sc, m);
  for (size_t j = 0; j < 8; ++j) {
    b.scale[2 * j] = b.scale[2 * j + 1] = sc[j];
    b.min[2 * j] = b.min[2 * j + 1] = m[j];
  }
}

// Nibbles of Q4_K / Q5_K: each 32-byte group holds 64 elements, low nibbles first.
int k4_nibble(const uint8_t* qs, size_t i) {
  const uint8_t byte = qs[(i / 64) * 32 + i % 32];
  return (i % 64) < 32 ? (byte & 0xF) : (byte >> 4);
}

void unpack_q4_k(const std::byte* src, BlockK& b) {
  unpack_k4_header(src, b);
  const uint8_t* qs = u8(src + 16);
  for (size_t i = 0; i < kQKK; ++i) b.q[i] = static_cast<int8_t>(k4_nibble(qs, i));
}

void unpack_q5_k(const std::byte* src, BlockK& b) {
  unpack_k4_header(src, b);
  const uint8_t* qh = u8(src + 16);
  const uint8_t* qs = u8(src + 48);
  // The fifth bit of element i is bit i / 32 of qh[i % 32].
  for (size_t i = 0; i < kQKK; ++i) {
    const int high = (qh[i % 32] >> (i / 32)) & 1;
    b.q[i] = static_cast<int8_t>(k4_nibble(qs, i) | (high << 4));
  }
}

void unpack_q6_k(const std::byte* src, BlockK& b) {
  const uint8_t* ql = u8(src);
  const uint8_t* qh = u8(src + 128);
  const int8_t* sc = i8(src + 192);
  b.d = load_f16(src + 208);
  b.dmin = 0.0f;
  for (size_t j = 0; j < 16; ++j) {
    // NOLINTNEXTLINE(bugprone-signed-char-misuse): int8_t, signed by format
    b.scale[j] = sc[j];
    b.min[j] = 0;
  }
  // Per 128 elements: 64 bytes of nibbles (elements l and l+64 share ql[l], l+32 and l+96
  // share ql[l+32]) and 32 bytes of high bit pairs (element l + 32 k in bits 2k of qh[l]).
  for (size_t i = 0; i < kQKK; ++i) {
    const size_t half = i / 128, r = i % 128, l = r % 32, k = r / 32;
    const uint8_t low = ql[half * 64 + l + 32 * (k % 2)];
    const int nibble = k < 2 ? (low & 0xF) : (low >> 4);
    const int high = (qh[half * 32 + l] >> (2 * k)) & 3;
    b.q[i] = static_cast<int8_t>((nibble | (high << 4)) - 32);
  }
}

void unpack_q8_k(const std::byte* src, BlockK& b) {
  b.d = load_f32(src);
  b.dmin = 0.0f;
  std::memcpy(b.q, src + 4, kQKK);
  for (size_t j = 0; j < 16; ++j) {
    b.scale[j] = 1;
    b.min[j] = 0;
  }
}

// ------------------------------------------------------------------ dequantize

template <size_t kBytes, void (*kUnpack)(const std::byte*, Block32&), bool kHasMin>
void to_f32_32(const std::byte* src, float* dst, size_t n) {
  Block32 b;
  for (size_t blk = 0; blk < n / kQK; ++blk, src += kBytes, dst += kQK) {
    kUnpack(src, b);
    for (size_t j = 0; j < kQK; ++j) {
      dst[j] = kHasMin ? static_cast<float>(b.q[j]) * b.d + b.m : static_cast<float>(b.q[j]) * b.d;
    }
  }
}

template <size_t kBytes, void (*kUnpack)(const std::byte*, BlockK&)>
void to_f32_k(const std::byte* src, float* dst, size_t n) {
  BlockK b;
  for (size_t blk = 0; blk < n / kQKK; ++blk, src += kBytes, dst += kQKK) {
    kUnpack(src, b);
    for (size_t j = 0; j < 16; ++j) {
      const float dl = b.d * static_cast<float>(b.scale[j]);
      const float ml = b.dmin * static_cast<float>(b.min[j]);
      for (size_t i = 16 * j; i < 16 * j + 16; ++i) dst[i] = dl * static_cast<float>(b.q[i]) - ml;
    }
  }
}

// ------------------------------------------------------------------ dot products
// Integer products within a block (exact), one float multiply-add per block or sub-block
// scale set, summed in float block by block.

// Q4_1/Q5_1 against Q8_1: sum (d_w q_w + m_w) d_x q_x = d_w d_x sum q_w q_x + m_w s_x, where
// s_x = d_x sum q_x is stored in the Q8_1 block.
// kXBytes picks Q8_0 or Q8_1 activations.
template <size_t kWBytes, void (*kUnpackW)(const std::byte*, Block32&), bool kHasMin,
          size_t kXBytes>
float vec_dot_32(const std::byte* w, const std::byte* x, size_t n) {
  Block32 bw, bx;
  float sum = 0.0f;
  for (size_t blk = 0; blk < n / kQK; ++blk, w += kWBytes, x += kXBytes) {
    kUnpackW(w, bw);
    unpack_q8<kXBytes>(x, bx);
    int sumi = 0;
    for (size_t j = 0; j < kQK; ++j) sumi += bw.q[j] * bx.q[j];
    sum += static_cast<float>(sumi) * (bw.d * bx.d);
    if constexpr (kHasMin) sum += bw.m * bx.m;
  }
  return sum;
}

// K-quants against Q8_K: d_w d_x sum_j scale_j (q_w . q_x)_j - dmin_w d_x sum_j min_j bsum_j,
// with bsum_j the Q8_K block's stored sums of its 16-element groups.
template <size_t kWBytes, void (*kUnpackW)(const std::byte*, BlockK&)>
float vec_dot_k(const std::byte* w, const std::byte* x, size_t n) {
  BlockK bw;
  float sum = 0.0f;
  for (size_t blk = 0; blk < n / kQKK; ++blk, w += kWBytes, x += kQ8_KBytes) {
    kUnpackW(w, bw);
    const float dx = load_f32(x);
    const int8_t* qx = i8(x + 4);
    int sumi = 0, summ = 0;
    for (size_t j = 0; j < 16; ++j) {
      int dot = 0;
      for (size_t i = 16 * j; i < 16 * j + 16; ++i) dot += bw.q[i] * qx[i];
      sumi += bw.scale[j] * dot;
      summ += bw.min[j] * load_i16(x + 4 + kQKK + 2 * j);
    }
    sum += (bw.d * dx) * static_cast<float>(sumi) - (bw.dmin * dx) * static_cast<float>(summ);
  }
  return sum;
}

// ------------------------------------------------------------------ quantize
// Each follows ggml's quantize_row_*_ref operation for operation (see the file comment).

// Largest |v| of a group and the signed value it came from (the first one on ties).
struct SignedMax {
  float abs = 0.0f;
  float value = 0.0f;
};
SignedMax signed_max(const float* x, size_t n) {
  SignedMax m;
  for (size_t i = 0; i < n; ++i) {
    if (m.abs < std::fabs(x[i])) m = {std::fabs(x[i]), x[i]};
  }
  return m;
}

struct MinMax {
  float min = 0.0f;
  float max = 0.0f;
};
// Q4_1/Q5_1's scan: starts from +-FLT_MAX, so a block of NaNs keeps them.
MinMax min_max(const float* x, size_t n) {
  MinMax m{std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()};
  for (size_t i = 0; i < n; ++i) {
    if (x[i] < m.min) m.min = x[i];
    if (x[i] > m.max) m.max = x[i];
  }
  return m;
}

void from_f32_q4_0(const float* x, std::byte* dst, size_t n) {
  for (size_t b = 0; b < n / kQK; ++b, x += kQK, dst += kQ4_0Bytes) {
    const float d = signed_max(x, kQK).value / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    uint8_t* qs = u8(dst + 2);
    for (size_t j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 =
          std::min(15, static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f)));
      qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void from_f32_q4_1(const float* x, std::byte* dst, size_t n) {
  for (size_t b = 0; b < n / kQK; ++b, x += kQK, dst += kQ4_1Bytes) {
    const MinMax mm = min_max(x, kQK);
    const float d = (mm.max - mm.min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    store_f16(dst + 2, mm.min);
    uint8_t* qs = u8(dst + 4);
    for (size_t j = 0; j < kQK / 2; ++j) {
      const float v0 = (x[j] - mm.min) * id;
      const float v1 = (x[j + kQK / 2] - mm.min) * id;
      // ggml's rounding, reproduced bit for bit (v0, v1 >= 0: truncation of v + 0.5f).
      // NOLINTNEXTLINE(bugprone-incorrect-roundings): ggml's arithmetic, values are >= 0
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(v0 + 0.5f)));
      // NOLINTNEXTLINE(bugprone-incorrect-roundings): ggml's arithmetic, values are >= 0
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(v1 + 0.5f)));
      qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Packs 32 five-bit quants: low nibbles into qs (second half high), fifth bits into qh.
void pack_q5(const uint8_t* q, std::byte* qh_dst, uint8_t* qs) {
  uint32_t qh = 0;
  for (size_t j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kQK / 2] & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q[j] & 0x10u) >> 4) << j;
    qh |= static_cast<uint32_t>((q[j + kQK / 2] & 0x10u) >> 4) << (j + kQK / 2);
  }
  std::memcpy(qh_dst, &qh, 4);
}

void from_f32_q5_0(const float* x, std::byte* dst, size_t n) {
  uint8_t q[kQK];
  for (size_t b = 0; b < n / kQK; ++b, x += kQK, dst += kQ5_0Bytes) {
    const float d = signed_max(x, kQK).value / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    for (size_t j = 0; j < kQK; ++j) {
      q[j] = static_cast<uint8_t>(
          std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
    }
    pack_q5(q, dst + 2, u8(dst + 6));
  }
}

void from_f32_q5_1(const float* x, std::byte* dst, size_t n) {
  uint8_t q[kQK];
  for (size_t b = 0; b < n / kQK; ++b, x += kQK, dst += kQ5_1Bytes) {
    const MinMax mm = min_max(x, kQK);
    const float d = (mm.max - mm.min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    store_f16(dst + 2, mm.min);
    for (size_t j = 0; j < kQK; ++j) {
      // NOLINTNEXTLINE(bugprone-incorrect-roundings): ggml's arithmetic, the value is >= 0
      q[j] = static_cast<uint8_t>((x[j] - mm.min) * id + 0.5f);
    }
    pack_q5(q, dst + 4, u8(dst + 8));
  }
}

// Q8_0 and Q8_1: d = max|x| / 127, q = round(x / d). Q8_1 also stores d * sum(q).
template <size_t kBytes>
void from_f32_q8(const float* x, std::byte* dst, size_t n) {
  for (size_t b = 0; b < n / kQK; ++b, x += kQK, dst += kBytes) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    auto* qs = reinterpret_cast<int8_t*>(dst + kBytes - kQK);
    int sum = 0;
    for (size_t j = 0; j < kQK; ++j) {
      qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      sum += qs[j];
    }
    if constexpr (kBytes == kQ8_1Bytes) store_f16(dst + 2, static_cast<float>(sum) * d);
  }
}

// ggml's make_qx_quants with rmse_type 1 and no importance weights (the Q6_K path): signed
// levels in [-nmax, nmax), scale refined by weighted least squares over 19 trial scales.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  const SignedMax m = signed_max(x, static_cast<size_t>(n));
  if (m.abs < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  auto level = [nmax](float iscale, float v) {
    return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * v)));
  };
  float iscale = static_cast<float>(-nmax) / m.value;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale, x[i]);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / m.value;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale, x[i]);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + level(iscale, x[i]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// ggml's make_q3_quants with do_rmse: signed levels, then up to 5 rounds of moving single
// levels while that lowers the x^2-weighted error.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  const SignedMax m = signed_max(x, static_cast<size_t>(n));
  if (m.abs < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / m.value;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const auto li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0) {
        float sl2 = suml2 - w * li * li;
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != L[i]) {
          const auto nl = static_cast<float>(new_l);
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ggml's make_qkx2_quants: levels in [0, nmax] with a scale and a (non-positive) min, chosen
// by weighted least squares over nstep + 1 trial scales. Returns the scale, *neg_min = -min.
// (ggml returns before the search when nstep < 1; every caller here searches, nstep >= 15.)
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* neg_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    *neg_min = -min;
    return 0.0f;
  }
  auto error = [use_mad](float scale, uint8_t l, float mn, float v, float w) {
    float diff = scale * static_cast<float>(l) + mn - v;
    diff = use_mad ? std::fabs(diff) : diff * diff;
    return w * diff;
  };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    best_error += error(scale, L[i], min, x[i], weights[i]);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const auto lf = static_cast<float>(l);
      sum_l += w * lf;
      sum_l2 += w * lf * lf;
      sum_xl += w * lf * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i)
        cur_error += error(this_scale, Laux[i], this_min, x[i], weights[i]);
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// Q2_K / Q3_K quant order: byte l of each 32-byte group holds elements l, l+32, l+64, l+96.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (size_t j = 0; j < kQKK; j += 128) {
    for (size_t l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                           (L[j + l + 96] << 6));
    }
  }
}

void from_f32_q2_k(const float* x, std::byte* dst, size_t n) {
  uint8_t L[kQKK], Laux[16];
  float weights[16], mins[16], scales[16];
  const float q4scale = 15.f;
  for (size_t b = 0; b < n / kQKK; ++b, x += kQKK, dst += kQ2_KBytes) {
    uint8_t* sc = u8(dst);
    float max_scale = 0, max_min = 0;
    for (size_t j = 0; j < 16; ++j) {
      for (size_t l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                   0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (size_t j = 0; j < 16; ++j) sc[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      store_f16(dst + 80, max_scale / q4scale);
    } else {
      std::fill(sc, sc + 16, uint8_t{0});
      store_f16(dst + 80, 0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (size_t j = 0; j < 16; ++j) {
        sc[j] = static_cast<uint8_t>(sc[j] | (nearest_int(iscale * mins[j]) << 4));
      }
      store_f16(dst + 82, max_min / q4scale);
    } else {
      store_f16(dst + 82, 0.f);
    }
    const float d_all = load_f16(dst + 80), dmin_all = load_f16(dst + 82);
    for (size_t j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(sc[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = dmin_all * static_cast<float>(sc[j] >> 4);
      for (size_t i = 0; i < 16; ++i) {
        const int l = nearest_int((x[16 * j + i] + dm) / d);
        L[16 * j + i] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
      }
    }
    pack_2bit(L, u8(dst + 16));
  }
}

void from_f32_q3_k(const float* x, std::byte* dst, size_t n) {
  int8_t L[kQKK];
  float scales[16];
  for (size_t b = 0; b < n / kQKK; ++b, x += kQKK, dst += kQ3_KBytes) {
    uint8_t* hmask = u8(dst);
    uint8_t* sc = u8(dst + 96);
    float max_scale = 0, amax = 0;
    for (size_t j = 0; j < 16; ++j) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::fill(sc, sc + 12, uint8_t{0});
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (size_t j = 0; j < 16; ++j) {
        auto l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
        l = static_cast<int8_t>(std::max<int>(-32, std::min<int>(31, l)) + 32);
        if (j < 8) {
          sc[j] = l & 0xF;
        } else {
          sc[j - 8] = static_cast<uint8_t>(sc[j - 8] | ((l & 0xF) << 4));
        }
        l = static_cast<int8_t>(l >> 4);
        sc[j % 4 + 8] = static_cast<uint8_t>(sc[j % 4 + 8] | (l << (2 * (j / 4))));
      }
      store_f16(dst + 108, 1 / iscale);
    } else {
      store_f16(dst + 108, 0.f);
    }
    const float d_all = load_f16(dst + 108);
    const std::array<int8_t, 16> stored = q3_k_scales(sc);
    for (size_t j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(stored[j]);
      if (d == 0.0f) continue;
      for (size_t i = 0; i < 16; ++i) {
        const int l = nearest_int(x[16 * j + i] / d);
        L[16 * j + i] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
      }
    }
    // High bit of element j goes to bit j / 32 of hmask[j % 32].
    std::fill(hmask, hmask + 32, uint8_t{0});
    uint8_t low[kQKK];
    for (size_t j = 0; j < kQKK; ++j) {
      // NOLINTNEXTLINE(bugprone-signed-char-misuse): int8_t, signed by format
      int l = L[j];
      if (l > 3) {
        hmask[j % 32] = static_cast<uint8_t>(hmask[j % 32] | (1u << (j / 32)));
        l -= 4;
      }
      low[j] = static_cast<uint8_t>(l);
    }
    pack_2bit(low, u8(dst + 32));
  }
}

// The 8 sub-block scales and mins of Q4_K / Q5_K (32 elements each) by make_qkx2_quants with
// weights |x| + rms(x), quantized to 6 bits against their maxima and packed into 12 bytes.
// Returns the levels L for each element against the scales as stored.
void k4_scales_and_levels(const float* x, std::byte* dst, int nmax, float rmin, int nstep,
                          uint8_t* L) {
  uint8_t Laux[32];
  float weights[32], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (size_t j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (size_t l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (size_t l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t* sc = u8(dst + 4);
  for (size_t j = 0; j < 8; ++j) {
    const auto ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    const auto lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      sc[j - 4] = static_cast<uint8_t>(sc[j - 4] | ((ls >> 4) << 6));
      sc[j] = static_cast<uint8_t>(sc[j] | ((lm >> 4) << 6));
    }
  }
  store_f16(dst, max_scale / 63.f);
  store_f16(dst + 2, max_min / 63.f);
  const float d_all = load_f16(dst), dmin_all = load_f16(dst + 2);
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    scale_min_k4(j, sc, &s, &m);
    const float d = d_all * static_cast<float>(s);
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (size_t i = 0; i < 32; ++i) {
      const int l = nearest_int((x[32 * static_cast<size_t>(j) + i] + dm) / d);
      L[32 * static_cast<size_t>(j) + i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

void from_f32_q4_k(const float* x, std::byte* dst, size_t n) {
  uint8_t L[kQKK];
  for (size_t b = 0; b < n / kQKK; ++b, x += kQKK, dst += kQ4_KBytes) {
    k4_scales_and_levels(x, dst, 15, -1.f, 20, L);
    uint8_t* q = u8(dst + 16);
    for (size_t j = 0; j < kQKK; j += 64, q += 32) {
      for (size_t l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
  }
}

void from_f32_q5_k(const float* x, std::byte* dst, size_t n) {
  uint8_t L[kQKK];
  for (size_t b = 0; b < n / kQKK; ++b, x += kQKK, dst += kQ5_KBytes) {
    k4_scales_and_levels(x, dst, 31, -0.5f, 15, L);
    uint8_t* qh = u8(dst + 16);
    uint8_t* ql = u8(dst + 48);
    std::fill(qh, qh + 32, uint8_t{0});
    uint8_t m1 = 1, m2 = 2;
    for (size_t j = 0; j < kQKK; j += 64, ql += 32) {
      for (size_t l = 0; l < 32; ++l) {
        int l1 = L[j + l], l2 = L[j + l + 32];
        if (l1 > 15) {
          l1 -= 16;
          qh[l] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          qh[l] |= m2;
        }
        ql[l] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
      m1 = static_cast<uint8_t>(m1 << 2);
      m2 = static_cast<uint8_t>(m2 << 2);
    }
  }
}

void from_f32_q6_k(const float* x, std::byte* dst, size_t n) {
  int8_t L[kQKK];
  float scales[16];
  for (size_t b = 0; b < n / kQKK; ++b, x += kQKK, dst += kQ6_KBytes) {
    float max_scale = 0, max_abs_scale = 0;
    for (size_t ib = 0; ib < 16; ++ib) {
      scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::fill(dst, dst + kQ6_KBytes, std::byte{0});
      continue;
    }
    const float iscale = -128.f / max_scale;
    store_f16(dst + 208, 1 / iscale);
    auto* sc = reinterpret_cast<int8_t*>(dst + 192);
    for (size_t ib = 0; ib < 16; ++ib) {
      sc[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    }
    const float d_all = load_f16(dst + 208);
    for (size_t j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(sc[j]);
      if (d == 0.0f) continue;
      for (size_t i = 0; i < 16; ++i) {
        const int l = nearest_int(x[16 * j + i] / d);
        L[16 * j + i] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    uint8_t* ql = u8(dst);
    uint8_t* qh = u8(dst + 128);
    for (size_t j = 0; j < kQKK; j += 128, ql += 64, qh += 32) {
      for (size_t l = 0; l < 32; ++l) {
        // NOLINTNEXTLINE(bugprone-signed-char-misuse): int8_t, signed by format
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) |
                                     ((q4 >> 4) << 6));
      }
    }
  }
}

void from_f32_q8_k(const float* x, std::byte* dst, size_t n) {
  for (size_t b = 0; b < n / kQKK; ++b, x += kQKK, dst += kQ8_KBytes) {
    const SignedMax m = signed_max(x, kQKK);
    auto* qs = reinterpret_cast<int8_t*>(dst + 4);
    if (m.abs == 0.0f) {
      std::fill(dst, dst + kQ8_KBytes, std::byte{0});
      continue;
    }
    const float iscale = -127.f / m.value;
    for (size_t j = 0; j < kQKK; ++j) {
      qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    }
    for (size_t j = 0; j < 16; ++j) {
      int sum = 0;
      for (size_t i = 0; i < 16; ++i) sum += qs[j * 16 + i];
      const auto s16 = static_cast<int16_t>(sum);
      std::memcpy(dst + 4 + kQKK + 2 * j, &s16, 2);
    }
    const float d = 1 / iscale;
    std::memcpy(dst, &d, 4);
  }
}
}  // namespace

std::array<int8_t, 16> q3_k_scales(const uint8_t* s) {
  std::array<int8_t, 16> out{};
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[static_cast<size_t>(j)] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
  return out;
}

const BlockKernels& reference(DType dtype) {
  static const std::array<BlockKernels, kDTypeCount> table = [] {
    std::array<BlockKernels, kDTypeCount> t{};
    auto at = [&t](DType d) -> BlockKernels& { return t[static_cast<size_t>(d)]; };
    at(DType::Q4_0) = {(to_f32_32<kQ4_0Bytes, unpack_q4_0, false>), from_f32_q4_0, DType::Q8_0,
                       (vec_dot_32<kQ4_0Bytes, unpack_q4_0, false, kQ8_0Bytes>)};
    at(DType::Q4_1) = {(to_f32_32<kQ4_1Bytes, unpack_q4_1, true>), from_f32_q4_1, DType::Q8_1,
                       (vec_dot_32<kQ4_1Bytes, unpack_q4_1, true, kQ8_1Bytes>)};
    at(DType::Q5_0) = {(to_f32_32<kQ5_0Bytes, unpack_q5_0, false>), from_f32_q5_0, DType::Q8_0,
                       (vec_dot_32<kQ5_0Bytes, unpack_q5_0, false, kQ8_0Bytes>)};
    at(DType::Q5_1) = {(to_f32_32<kQ5_1Bytes, unpack_q5_1, true>), from_f32_q5_1, DType::Q8_1,
                       (vec_dot_32<kQ5_1Bytes, unpack_q5_1, true, kQ8_1Bytes>)};
    at(DType::Q8_0) = {(to_f32_32<kQ8_0Bytes, unpack_q8<kQ8_0Bytes>, false>),
                       from_f32_q8<kQ8_0Bytes>, DType::Q8_0,
                       (vec_dot_32<kQ8_0Bytes, unpack_q8<kQ8_0Bytes>, false, kQ8_0Bytes>)};
    at(DType::Q8_1) = {(to_f32_32<kQ8_1Bytes, unpack_q8<kQ8_1Bytes>, false>),
                       from_f32_q8<kQ8_1Bytes>, DType::Q8_1,
                       (vec_dot_32<kQ8_1Bytes, unpack_q8<kQ8_1Bytes>, false, kQ8_1Bytes>)};
    at(DType::Q2_K) = {(to_f32_k<kQ2_KBytes, unpack_q2_k>), from_f32_q2_k, DType::Q8_K,
                       (vec_dot_k<kQ2_KBytes, unpack_q2_k>)};
    at(DType::Q3_K) = {(to_f32_k<kQ3_KBytes, unpack_q3_k>), from_f32_q3_k, DType::Q8_K,
                       (vec_dot_k<kQ3_KBytes, unpack_q3_k>)};
    at(DType::Q4_K) = {(to_f32_k<kQ4_KBytes, unpack_q4_k>), from_f32_q4_k, DType::Q8_K,
                       (vec_dot_k<kQ4_KBytes, unpack_q4_k>)};
    at(DType::Q5_K) = {(to_f32_k<kQ5_KBytes, unpack_q5_k>), from_f32_q5_k, DType::Q8_K,
                       (vec_dot_k<kQ5_KBytes, unpack_q5_k>)};
    at(DType::Q6_K) = {(to_f32_k<kQ6_KBytes, unpack_q6_k>), from_f32_q6_k, DType::Q8_K,
                       (vec_dot_k<kQ6_KBytes, unpack_q6_k>)};
    at(DType::Q8_K) = {(to_f32_k<kQ8_KBytes, unpack_q8_k>), from_f32_q8_k, DType::Q8_K,
                       (vec_dot_k<kQ8_KBytes, unpack_q8_k>)};
    return t;
  }();
  if (!is_quantized(dtype)) {
    throw Error("quant::reference: " + std::string(dtype_name(dtype)) + " is not a block type");
  }
  return table[static_cast<size_t>(dtype)];
}

}  // namespace ember::quant
