// rope, attention and copy_into against direct double-precision evaluations of their definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ember/core/half.hpp"
#include "ember/core/ops.hpp"
#include "ops_test_util.hpp"

namespace ember {
namespace {

using test::expect_close;
using test::expect_error;
using test::random_tensor;

std::vector<double> rope_reference(const Tensor& x, const std::vector<int64_t>& pos,
                                   const std::vector<float>& inv_freq, ops::RopeLayout layout,
                                   double scale) {
  const int64_t B = x.dim(0), T = x.dim(1), H = x.dim(2), D = x.dim(3);
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  std::vector<double> v = x.to_f64_vector();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = pos.size() == static_cast<size_t>(T) ? pos[t] : pos[b * T + t];
      for (int64_t h = 0; h < H; ++h) {
        double* row = v.data() + ((b * T + t) * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const double angle = static_cast<float>(p) * inv_freq[i];
          const int64_t i0 = layout == ops::RopeLayout::HalfSplit ? i : 2 * i;
          const int64_t i1 = layout == ops::RopeLayout::HalfSplit ? i + half : 2 * i + 1;
          const double a = row[i0], c = row[i1];
          row[i0] = (a * std::cos(angle) - c * std::sin(angle)) * scale;
          row[i1] = (c * std::cos(angle) + a * std::sin(angle)) * scale;
        }
      }
    }
  }
  return v;
}

TEST(Rope, BothLayoutsPartialRotaryAndPerBatchPositions) {
  const std::vector<float> inv_freq = {1.0f, 0.3f, 0.01f};  // 6 of 8 dims rotate
  for (auto layout : {ops::RopeLayout::HalfSplit, ops::RopeLayout::Interleaved}) {
    const Tensor x0 = random_tensor({2, 3, 2, 8}, 11);
    const std::vector<int64_t> shared = {0, 5, 1000};
    Tensor x = x0.clone();
    ops::rope(x, ops::rope_table(shared, inv_freq, 1.25f), layout);
    expect_close(x, rope_reference(x0, shared, inv_freq, layout, 1.25), 1e-5, 1e-5, "shared");
    const std::vector<int64_t> per_batch = {3, 4, 5, 0, 1, 2};
    x = x0.clone();
    ops::rope(x, ops::rope_table(per_batch, inv_freq), layout);
    expect_close(x, rope_reference(x0, per_batch, inv_freq, layout, 1.0), 1e-5, 1e-5, "batch");
  }
  Tensor x = random_tensor({1, 2, 1, 4}, 12);
  const std::vector<int64_t> pos = {0, 1};
  const std::vector<float> too_many = {1, 1, 1};
  expect_error([&] { ops::rope(x, ops::rope_table(pos, too_many), ops::RopeLayout::HalfSplit); },
               {"rope", "6 rotary dims", "4"});
  const std::vector<int64_t> bad_pos = {0, 1, 2};
  const std::vector<float> ok = {1};
  expect_error([&] { ops::rope(x, ops::rope_table(bad_pos, ok), ops::RopeLayout::HalfSplit); },
               {"rope", "positions"});
}

struct MaskSpec {
  bool causal = false;
  int64_t window = 0;
  std::vector<int> key_valid;  // [B * Tk] or empty
  std::vector<float> bias;     // [Hq * Tq * Tk] or empty
};

std::vector<double> attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const MaskSpec& m, double scale) {
  const int64_t B = q.dim(0), Tq = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  const int64_t Tk = k.dim(1), Hkv = k.dim(2);
  const std::vector<double> qv = q.contiguous().to_f64_vector();
  const std::vector<double> kv = k.contiguous().to_f64_vector();
  const std::vector<double> vv = v.contiguous().to_f64_vector();
  std::vector<double> out(static_cast<size_t>(B * Tq * Hq * D), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t g = h / (Hq / Hkv);
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t pos = Tk - Tq + i;
        std::vector<double> s(static_cast<size_t>(Tk), -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < Tk; ++j) {
          bool ok = m.key_valid.empty() || m.key_valid[b * Tk + j] != 0;
          if (m.causal) ok = ok && j <= pos && (m.window == 0 || pos - j < m.window);
          if (!ok) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += qv[((b * Tq + i) * Hq + h) * D + d] * kv[((b * Tk + j) * Hkv + g) * D + d];
          s[j] = dot * scale + (m.bias.empty() ? 0.0 : m.bias[(h * Tq + i) * Tk + j]);
          mx = std::max(mx, s[j]);
        }
        if (std::isinf(mx)) continue;  // sees no key: zeros
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - mx));
        for (int64_t j = 0; j < Tk; ++j)
          for (int64_t d = 0; d < D; ++d)
            out[((b * Tq + i) * Hq + h) * D + d] += s[j] / z * vv[((b * Tk + j) * Hkv + g) * D + d];
      }
    }
  }
  return out;
}

ops::AttentionMask make_mask(const MaskSpec& m, int64_t B, int64_t Tk, int64_t Hq = 0,
                             int64_t Tq = 0) {
  ops::AttentionMask mask;
  if (!m.bias.empty()) mask.bias = Tensor::from_f32({Hq, Tq, Tk}, m.bias);
  mask.causal = m.causal;
  mask.sliding_window = m.window;
  if (!m.key_valid.empty())
    mask.key_mask = Tensor::from_values<int>(DType::I32, {B, Tk}, m.key_valid);
  return mask;
}

// Distinct values of O(1), like T5's position biases.
std::vector<float> biases(size_t n) {
  std::vector<float> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<float>(std::sin(0.7 * static_cast<double>(i)));
  return b;
}

TEST(Attention, MasksGroupsAndPastKeys) {
  const float scale = 0.35f;
  struct Case {
    const char* name;
    int64_t tq, tk, hq, hkv;
    MaskSpec mask;
  };
  const std::vector<Case> cases = {
      {"full", 5, 5, 4, 4, {}},
      {"padding keys", 5, 5, 2, 2, {false, 0, {1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, {}}},
      {"causal gqa", 7, 7, 4, 2, {true, 0, {}, {}}},
      {"causal with past (decode)", 1, 9, 4, 1, {true, 0, {}, {}}},
      {"causal prefill after past", 3, 9, 2, 2, {true, 0, {}, {}}},
      {"sliding window", 8, 8, 2, 1, {true, 3, {}, {}}},
      {"left padding causal", 4, 4, 2, 2, {true, 0, {0, 1, 1, 1, 1, 1, 1, 1}, {}}},
      // T5: an additive bias per (head, query, key), Hq * Tq * Tk values; cross-attention has
      // more queries than keys.
      {"bias, causal with past", 3, 6, 2, 2, {true, 0, {}, biases(36)}},
      {"bias, cross (Tq > Tk), padding", 5, 3, 2, 2, {false, 0, {1, 1, 0, 1, 1, 1}, biases(30)}},
      // Right padding is attended over the true length only; a row of padding alone gives zeros.
      {"right padding, a row without keys", 3, 4, 2, 1, {false, 0, {1, 1, 0, 0, 0, 0, 0, 0}, {}}},
  };
  for (const Case& c : cases) {
    const Tensor q = random_tensor({2, c.tq, c.hq, 16}, 21);
    const Tensor k = random_tensor({2, c.tk, c.hkv, 16}, 22);
    const Tensor v = random_tensor({2, c.tk, c.hkv, 16}, 23);
    const Tensor got = ops::attention(q, k, v, make_mask(c.mask, 2, c.tk, c.hq, c.tq), scale);
    EXPECT_EQ(got.shape(), (Shape{2, c.tq, c.hq, 16}));
    expect_close(got, attention_reference(q, k, v, c.mask, scale), 1e-5, 1e-5, c.name);
  }
}

// Views with head-interleaved strides (q, k, v as slices of one fused projection) and a long key
// sequence that splits the queries into several row blocks.
TEST(Attention, StridedViewsAndRowBlocks) {
  const int64_t T = 300, H = 2, D = 64;
  const Tensor qkv = random_tensor({1, T, 3, H, D}, 31, -1, 1);
  const Tensor q = qkv.select(2, 0);
  const Tensor k = qkv.select(2, 1);
  const Tensor v = qkv.select(2, 2);
  ASSERT_FALSE(k.is_contiguous());
  const MaskSpec m{true, 0, {}, {}};
  expect_close(ops::attention(q, k, v, make_mask(m, 1, T), 0.125f),
               attention_reference(q, k, v, m, 0.125), 1e-5, 1e-5, "strided");
}

// More than a decode step's rows go through the packed GEMM path, where a causal row block stops
// at its last row's key: past keys, a sliding window, padding keys and a bias there, with a head
// size that is not a whole number of panels.
TEST(Attention, ManyRowsWithPastKeysWindowsPaddingAndBias) {
  const float scale = 0.2f;
  std::vector<int> padded(size_t{2} * 45, 1);
  padded[3] = padded[44] = padded[45 + 30] = 0;
  struct Case {
    const char* name;
    int64_t tq, tk;
    MaskSpec mask;
  };
  const std::vector<Case> cases = {
      {"causal after past", 20, 45, {true, 0, {}, {}}},
      {"window and padding after past", 20, 45, {true, 7, padded, {}}},
      {"bias, cross (Tq > Tk)", 30, 12, {false, 0, {}, biases(size_t{4} * 30 * 12)}},
  };
  for (const Case& c : cases) {
    const Tensor q = random_tensor({2, c.tq, 4, 24}, 41);
    const Tensor k = random_tensor({2, c.tk, 2, 24}, 42);
    const Tensor v = random_tensor({2, c.tk, 2, 24}, 43);
    expect_close(ops::attention(q, k, v, make_mask(c.mask, 2, c.tk, 4, c.tq), scale),
                 attention_reference(q, k, v, c.mask, scale), 1e-5, 1e-5, c.name);
  }
}

// Packed sequences give what each sequence gives alone.
TEST(Attention, PackedSequencesMatchSeparateCalls) {
  const std::vector<int64_t> offsets = {0, 3, 3, 10, 11};
  const Tensor q = random_tensor({11, 4, 8}, 35);
  const Tensor k = random_tensor({11, 2, 8}, 36);
  const Tensor v = random_tensor({11, 2, 8}, 37);
  for (bool causal : {false, true}) {
    const Tensor got = ops::attention_packed(q, k, v, offsets, causal, 0.3f);
    for (size_t s = 0; s + 1 < offsets.size(); ++s) {
      const int64_t len = offsets[s + 1] - offsets[s];
      if (len == 0) continue;
      auto seq = [&](const Tensor& t) { return t.narrow(0, offsets[s], len).unsqueeze(0); };
      const MaskSpec m{causal, 0, {}, {}};
      expect_close(seq(got), attention_reference(seq(q), seq(k), seq(v), m, 0.3), 1e-5, 1e-5,
                   "sequence " + std::to_string(s));
    }
  }
  const std::vector<int64_t> bad = {0, 5};
  expect_error([&] { ops::attention_packed(q, k, v, bad, false, 1.0f); },
               {"attention_packed", "seq_offsets"});
}

// F16 keys and values (an F16 KV cache) are multiplied as ggml's CPU backend does: q rounded to
// F16 for q k^T, the softmax weights rounded to F16 for p v, exact products summed in F32.
TEST(Attention, F16KeysAndValuesRoundTheQueryAndTheWeights) {
  const auto round16 = [](double x) { return f16_to_f32(f32_to_f16(static_cast<float>(x))); };
  const auto one_query = [](std::vector<float> q, std::vector<float> k, std::vector<float> v,
                            int64_t tk, float scale, DType kv) {
    const auto d = static_cast<int64_t>(q.size());
    const Tensor out =
        ops::attention(Tensor::from_f32({1, 1, 1, d}, q), Tensor::from_f32({1, tk, 1, d}, k).to(kv),
                       Tensor::from_f32({1, tk, 1, d}, v).to(kv), {}, scale);
    return out.to_f64_vector()[0];
  };
  // Three keys of equal score: weights of 1/3 each, and v reads the first one out. F16's 1/3 is
  // 8e-5 below F32's.
  const std::vector<float> q3 = {0.5f, -0.25f}, k3 = {1, 2, 1, 2, 1, 2}, v3 = {1, 0, 0, 0, 0, 0};
  EXPECT_NEAR(one_query(q3, k3, v3, 3, 1.0f, DType::F32), 1.0 / 3.0, 1e-7);
  EXPECT_EQ(one_query(q3, k3, v3, 3, 1.0f, DType::F16), round16(1.0 / 3.0));
  // The query: 64 components of 1 + 2^-12, which F16 rounds to 1, against a key of -1/8 and one
  // of 0: the weight of the first is sigmoid(-8) rather than sigmoid(-8 (1 + 2^-12)), about 3 F16
  // steps apart at that size (and 0.06 of a step, 4e-5 relative, from a rounding boundary: far
  // beyond F32's softmax error).
  const std::vector<float> q(64, 1.0f + 0x1p-12f);
  std::vector<float> k(128, 0.0f), v(128, 0.0f);
  std::fill(k.begin(), k.begin() + 64, -0.125f);
  v[0] = 1;
  const double rounded = round16(1 / (1 + std::exp(8.0)));
  ASSERT_NE(rounded, round16(1 / (1 + std::exp(8.0 * (1 + 0x1p-12)))));
  EXPECT_EQ(one_query(q, k, v, 2, 1.0f, DType::F16), rounded);
  // A general case against the F32 reference on the rounded query: the weights' rounding moves
  // the output by at most half an F16 step of each weight (2^-11 relative) times |v| <= 2, summed
  // over weights that sum to 1: 1e-3.
  const Tensor qr = random_tensor({2, 3, 4, 16}, 41).to(DType::F16);
  const Tensor kr = random_tensor({2, 9, 2, 16}, 42).to(DType::F16);
  const Tensor vr = random_tensor({2, 9, 2, 16}, 43).to(DType::F16);
  const MaskSpec m{true, 0, {}, {}};
  expect_close(ops::attention(qr.to(DType::F32), kr, vr, make_mask(m, 2, 9), 0.25f),
               attention_reference(qr, kr, vr, m, 0.25), 0, 1e-3, "F16 cache");
}

// A bias over a span longer than the longest sequence: each sequence adds its top-left block, as
// T5's relative positions (counted from each sequence's start) do.
TEST(Attention, PackedSequencesTakeTheirBlockOfTheBias) {
  const std::vector<int64_t> offsets = {0, 3, 10, 11};
  const int64_t heads = 4, span = 9;
  const Tensor q = random_tensor({11, heads, 8}, 38);
  const Tensor k = random_tensor({11, 2, 8}, 39);
  const Tensor v = random_tensor({11, 2, 8}, 40);
  const std::vector<float> bias = biases(static_cast<size_t>(heads * span * span));
  const Tensor got = ops::attention_packed(q, k, v, offsets, false, 0.3f,
                                           Tensor::from_f32({heads, span, span}, bias));
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    const int64_t len = offsets[s + 1] - offsets[s];
    auto seq = [&](const Tensor& t) { return t.narrow(0, offsets[s], len).unsqueeze(0); };
    MaskSpec m{false, 0, {}, {}};
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < len; ++i)
        for (int64_t j = 0; j < len; ++j) m.bias.push_back(bias[(h * span + i) * span + j]);
    expect_close(seq(got), attention_reference(seq(q), seq(k), seq(v), m, 0.3), 1e-5, 1e-5,
                 "sequence " + std::to_string(s));
  }
  expect_error(
      [&] {
        ops::attention_packed(q, k, v, offsets, false, 1.0f,
                              Tensor::from_f32({heads, 6, 6}, biases(heads * 36)));
      },
      {"attention_packed", "bias", "longest sequence (7)"});
}

TEST(Attention, Errors) {
  const Tensor q = random_tensor({1, 2, 3, 4}, 1);
  const Tensor k = random_tensor({1, 2, 2, 4}, 2);
  expect_error([&] { ops::attention(q, k, k, {}, 1.0f); }, {"attention", "multiple of Hkv"});
  const Tensor k3 = random_tensor({1, 2, 3, 4}, 2);
  ops::AttentionMask bad;
  bad.key_mask = Tensor::zeros(DType::I64, {1, 3});
  expect_error([&] { ops::attention(q, k3, k3, bad, 1.0f); }, {"key_mask", "[1, 2]"});
  expect_error([&] { ops::attention(q.to(DType::F16), k3, k3, {}, 1.0f); }, {"attention", "F32"});
  expect_error([&] { ops::attention(q, k3.to(DType::F16), k3, {}, 1.0f); },
               {"attention", "k and v alike"});
  expect_error([&] { ops::attention(q, k3.to(DType::BF16), k3.to(DType::BF16), {}, 1.0f); },
               {"attention", "F32 or F16"});
  ops::AttentionMask bad_bias;
  bad_bias.bias = Tensor::zeros(DType::F32, {3, 2, 3});
  expect_error([&] { ops::attention(q, k3, k3, bad_bias, 1.0f); }, {"bias", "[3, 2, 2]"});
  ops::AttentionMask causal;
  causal.causal = true;
  const Tensor short_k = random_tensor({1, 1, 3, 4}, 3);
  expect_error([&] { ops::attention(q, short_k, short_k, causal, 1.0f); }, {"attention", "Tk"});
}

TEST(CopyInto, WritesIntoCacheRowsAndNarrows) {
  Tensor cache = Tensor::zeros(DType::F32, {2, 6, 3});
  const Tensor rows = random_tensor({2, 2, 3}, 41);
  ops::copy_into(cache.narrow(1, 3, 2), rows);
  const std::vector<double> c = cache.to_f64_vector();
  const std::vector<double> r = rows.to_f64_vector();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 6; ++t)
      for (int64_t i = 0; i < 3; ++i) {
        const double want = (t == 3 || t == 4) ? r[(b * 2 + t - 3) * 3 + i] : 0.0;
        ASSERT_EQ(c[(b * 6 + t) * 3 + i], want) << b << "," << t << "," << i;
      }
  // A transposed destination (non-unit inner stride) and F32 -> F16 narrowing.
  Tensor half = Tensor::zeros(DType::F16, {4, 3});
  const Tensor src = random_tensor({3, 4}, 42);
  ops::copy_into(half.transpose(0, 1), src);
  const std::vector<double> h = half.transpose(0, 1).to_f64_vector();
  const std::vector<float> s = src.to_f32_vector();
  for (size_t i = 0; i < h.size(); ++i) ASSERT_EQ(h[i], f16_to_f32(f32_to_f16(s[i])));
  expect_error([&] { ops::copy_into(cache.narrow(1, 0, 1), rows); }, {"copy_into", "shapes"});
  expect_error(
      [&] {
        ops::copy_into(Tensor::zeros(DType::I32, {2, 2, 3}), rows);
      },
      {"copy_into", "F32", "I32"});
}

}  // namespace
}  // namespace ember
