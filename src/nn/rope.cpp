#include "ember/nn/rope.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "ember/base/error.hpp"

namespace ember::nn {
namespace {

// base^(2i / dim) in F32, as torch computes it from an F32 arange.
float position_frequency(double base, int64_t i, int64_t dim) {
  return std::pow(static_cast<float>(base), static_cast<float>(2 * i) / static_cast<float>(dim));
}

std::vector<float> base_frequencies(double base, int64_t dim) {
  std::vector<float> f(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i)
    f[static_cast<size_t>(i)] = 1.0f / position_frequency(base, i, dim);
  return f;
}

double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

std::vector<float> rope_inverse_frequencies(const RopeParameters& p, int64_t seq_len,
                                            float* attention_scale) {
  const int64_t dim = p.rotary_dim;
  if (dim < 2 || dim % 2 != 0) {
    throw Error("rope: the rotary dimension must be even and >= 2, got " + std::to_string(dim));
  }
  *attention_scale = 1.0f;
  if (p.type == "default") return base_frequencies(p.theta, dim);
  if (p.type == "linear") {
    std::vector<float> f = base_frequencies(p.theta, dim);
    for (float& x : f) x /= static_cast<float>(p.factor);
    return f;
  }
  if (p.type == "dynamic") {
    const double len = static_cast<double>(std::max(seq_len, p.max_positions));
    const double base =
        p.theta * std::pow(p.factor * len / static_cast<double>(p.max_positions) - (p.factor - 1),
                           static_cast<double>(dim) / static_cast<double>(dim - 2));
    return base_frequencies(base, dim);
  }
  if (p.type == "llama3") {
    std::vector<float> f = base_frequencies(p.theta, dim);
    const double old_len = static_cast<double>(p.original_max_positions);
    const double low_wavelen = old_len / p.low_freq_factor;
    const double high_wavelen = old_len / p.high_freq_factor;
    const float factor = static_cast<float>(p.factor);
    for (float& x : f) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / x;
      if (wavelen > low_wavelen) {
        x /= factor;
      } else if (wavelen >= high_wavelen) {
        const float smooth = static_cast<float>((old_len / wavelen - p.low_freq_factor) /
                                                (p.high_freq_factor - p.low_freq_factor));
        x = (1.0f - smooth) * x / factor + smooth * x;
      }
    }
    return f;
  }
  if (p.type == "yarn") {
    double attention = p.attention_factor;
    if (attention <= 0) {
      attention = p.mscale != 0 && p.mscale_all_dim != 0
                      ? yarn_mscale(p.factor, p.mscale) / yarn_mscale(p.factor, p.mscale_all_dim)
                      : yarn_mscale(p.factor, 1.0);
    }
    *attention_scale = static_cast<float>(attention);
    const auto correction_dim = [&](double rotations) {
      return static_cast<double>(dim) *
             std::log(static_cast<double>(p.original_max_positions) /
                      (rotations * 2 * std::numbers::pi)) /
             (2 * std::log(p.theta));
    };
    double low = correction_dim(p.beta_fast), high = correction_dim(p.beta_slow);
    if (p.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;
    std::vector<float> f(static_cast<size_t>(dim / 2));
    for (size_t i = 0; i < f.size(); ++i) {
      const float pos_freq = position_frequency(p.theta, static_cast<int64_t>(i), dim);
      const float extrapolation = 1.0f / pos_freq;
      const float interpolation = 1.0f / (static_cast<float>(p.factor) * pos_freq);
      const float ramp = std::clamp(
          (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f,
          1.0f);
      const float extrapolation_weight = 1.0f - ramp;
      f[i] = interpolation * (1.0f - extrapolation_weight) + extrapolation * extrapolation_weight;
    }
    return f;
  }
  throw Error("rope: unsupported rope type '" + p.type +
              "' (supported: default, linear, dynamic, llama3, yarn)");
}

RotaryEmbedding::RotaryEmbedding(RopeParameters params, ops::RopeLayout layout)
    : params_(std::move(params)), layout_(layout) {
  inv_freq_ = rope_inverse_frequencies(params_, params_.max_positions, &attention_scale_);
  original_inv_freq_ = inv_freq_;
  cached_length_ = params_.max_positions;
}

void RotaryEmbedding::prepare(std::span<const int64_t> positions) {
  if (params_.type == "dynamic" && !positions.empty()) {
    const int64_t seq_len = *std::max_element(positions.begin(), positions.end()) + 1;
    if (seq_len > cached_length_) {  // growth
      inv_freq_ = rope_inverse_frequencies(params_, seq_len, &attention_scale_);
      cached_length_ = seq_len;
    }
    if (seq_len < params_.max_positions && cached_length_ > params_.max_positions) {  // reset
      inv_freq_ = original_inv_freq_;
      cached_length_ = params_.max_positions;
    }
  }
  table_ = ops::rope_table(positions, inv_freq_, attention_scale_);
}

void RotaryEmbedding::apply(Tensor& x) const {
  ops::rope(x, table_, layout_);
}

void RotaryEmbedding::rotate_by(Tensor& x, int64_t delta) const {
  if (!shifts_exactly()) {
    throw Error("rope: keys of the '" + params_.type + "' type cannot be moved to new positions");
  }
  // Rotations compose by adding angles; the attention scale (yarn) was applied when the keys
  // were first rotated, so it is 1 here.
  const std::vector<int64_t> shift(static_cast<size_t>(x.dim(1)), delta);
  ops::rope(x, ops::rope_table(shift, inv_freq_, 1.0f), layout_);
}

}  // namespace ember::nn
