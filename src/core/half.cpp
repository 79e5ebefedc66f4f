#include "ember/core/half.hpp"

#include <bit>
#include <cmath>
#include <limits>

namespace ember {
namespace {

// Decodes a small float with `exp_bits` exponent bits and `mant_bits` mantissa bits.
float decode_minifloat(uint8_t v, int exp_bits, int mant_bits, int bias) {
  const bool negative = (v & 0x80u) != 0;
  const int exp = (v >> mant_bits) & ((1 << exp_bits) - 1);
  const int mant = v & ((1 << mant_bits) - 1);
  float magnitude;
  if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(mant), 1 - bias - mant_bits);
  } else {
    magnitude = std::ldexp(static_cast<float>(mant + (1 << mant_bits)), exp - bias - mant_bits);
  }
  return negative ? -magnitude : magnitude;
}

// Encodes |f| (finite, >= 0) to the nearest representable minifloat code without sign,
// round-half-to-even, saturating at `max_code`.
uint8_t encode_minifloat(float f, int mant_bits, int bias, uint8_t max_code, int exp_bits) {
  uint8_t best = 0;
  // Binary search over the monotone positive codes 0..max_code.
  int lo = 0;
  int hi = max_code;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (decode_minifloat(static_cast<uint8_t>(mid), exp_bits, mant_bits, bias) <= f) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  best = static_cast<uint8_t>(lo);
  if (best == max_code) return best;
  const float below = decode_minifloat(best, exp_bits, mant_bits, bias);
  const float above = decode_minifloat(static_cast<uint8_t>(best + 1), exp_bits, mant_bits, bias);
  const float d_below = f - below;
  const float d_above = above - f;
  if (d_above < d_below || (d_above == d_below && (best & 1u) != 0)) ++best;
  return best;
}

}  // namespace

float f8e4m3_to_f32(uint8_t v) {
  if ((v & 0x7fu) == 0x7fu) return std::numeric_limits<float>::quiet_NaN();
  return decode_minifloat(v, 4, 3, 7);
}

uint8_t f32_to_f8e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  return sign | encode_minifloat(std::fabs(f), 3, 7, 0x7e, 4);  // 0x7e = 448, saturates
}

float f8e5m2_to_f32(uint8_t v) {
  const int exp = (v >> 2) & 0x1f;
  const int mant = v & 0x3;
  if (exp == 0x1f) {
    if (mant != 0) return std::numeric_limits<float>::quiet_NaN();
    return (v & 0x80u) ? -std::numeric_limits<float>::infinity()
                       : std::numeric_limits<float>::infinity();
  }
  return decode_minifloat(v, 5, 2, 15);
}

uint8_t f32_to_f8e5m2(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  // Values at or beyond max + half an ulp (57344 + 4096) round to infinity.
  if (a >= 61440.0f) return sign | 0x7c;
  return sign | encode_minifloat(a, 2, 15, 0x7b, 5);
}

}  // namespace ember
