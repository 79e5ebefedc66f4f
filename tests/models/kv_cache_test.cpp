// The KV cache across calls: a saved and restored session continues exactly as if never
// stopped, a prompt cache reuses the common prefix and gives the same output, and a context
// shift leaves the cache as a fresh run over the kept tokens at their new positions would.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ember/base/error.hpp"
#include "ember/formats/gguf.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/generation/kv_session.hpp"
#include "ember/models/config.hpp"
#include "ember/nn/weights.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

namespace gen = generation;
namespace fs = std::filesystem;

const fs::path kLlama = test::kModelFixtures / "llama";

gen::GenerationConfig greedy(int64_t tokens) {
  gen::GenerationConfig config;  // no eos ids: every run has exactly `tokens` tokens
  config.max_new_tokens = tokens;
  config.top_logprobs = 3;
  return config;
}

std::vector<uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

// Counts the token positions a model evaluates.
class CountingModel final : public models::CausalLM {
 public:
  explicit CountingModel(models::CausalLM& inner) : inner_(inner) {}
  int64_t vocab_size() const override { return inner_.vocab_size(); }
  int64_t context_length() const override { return inner_.context_length(); }
  int64_t max_tokens() const override { return inner_.max_tokens(); }
  models::KvCache new_cache(int64_t batch, int64_t capacity) const override {
    return inner_.new_cache(batch, capacity);
  }
  Tensor forward(const Tensor& ids, std::span<const int64_t> positions, const Tensor& key_mask,
                 models::KvCache& cache, bool all_logits) override {
    evaluated += ids.numel();
    return inner_.forward(ids, positions, key_mask, cache, all_logits);
  }
  int64_t evaluated = 0;

 private:
  models::CausalLM& inner_;
};

// Generating 16 tokens in one go, and generating 8, saving the session, restoring it into a
// freshly loaded model and generating 8 more, give the same tokens and bit-identical
// log-probabilities: the restored cache holds the very same floats, and the resumed run does the
// same one-token decode steps.
TEST(KvSession, RestoreAndContinueEqualsNeverStopping) {
  const std::vector<int64_t> prompt = {1, 17, 33, 5, 90, 12};
  const auto whole_model = models::load_causal_lm(kLlama);
  gen::PromptCache whole(*whole_model, 64);
  const gen::Generation all =
      gen::generate_cached(*whole_model, nullptr, prompt, whole, greedy(16));
  ASSERT_EQ(all.ids.size(), 16u);

  const std::string file = [&] {
    const auto model = models::load_causal_lm(kLlama);
    gen::PromptCache first(*model, 64);
    const gen::Generation half = gen::generate_cached(*model, nullptr, prompt, first, greedy(8));
    EXPECT_EQ(half.ids, std::vector<int64_t>(all.ids.begin(), all.ids.begin() + 8));
    return gen::serialize_kv_session(gen::model_identity(kLlama), first);
  }();

  const auto model = models::load_causal_lm(kLlama);
  gen::PromptCache resumed(*model, 64);
  gen::restore_kv_session(bytes_of(file), gen::model_identity(kLlama), model->vocab_size(),
                          resumed);
  EXPECT_EQ(resumed.cache.length, static_cast<int64_t>(prompt.size()) + 7);
  std::vector<int64_t> continued_prompt = prompt;
  continued_prompt.insert(continued_prompt.end(), all.ids.begin(), all.ids.begin() + 8);
  const gen::Generation rest =
      gen::generate_cached(*model, nullptr, continued_prompt, resumed, greedy(8));
  EXPECT_EQ(resumed.reused, static_cast<int64_t>(continued_prompt.size()) - 1);
  EXPECT_EQ(rest.ids, std::vector<int64_t>(all.ids.begin() + 8, all.ids.end()));
  ASSERT_EQ(rest.top_logprobs.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(rest.top_logprobs[i][k].id, all.top_logprobs[i + 8][k].id);
      EXPECT_EQ(rest.top_logprobs[i][k].logprob, all.top_logprobs[i + 8][k].logprob);
    }
  }
  // Saving what was restored gives the same bytes back (nothing lost or reordered).
  gen::PromptCache again(*model, 64);
  gen::restore_kv_session(bytes_of(file), gen::model_identity(kLlama), model->vocab_size(), again);
  EXPECT_EQ(gen::serialize_kv_session(gen::model_identity(kLlama), again), file);

  // Through a file on disk too, with a note.
  const fs::path path = fs::temp_directory_path() / "ember_kv_session_test.bin";
  gen::save_kv_session(path, gen::model_identity(kLlama), again, "a note\n");
  gen::PromptCache loaded(*model, 64);
  EXPECT_EQ(gen::load_kv_session(path, gen::model_identity(kLlama), model->vocab_size(), loaded),
            "a note\n");
  EXPECT_EQ(loaded.tokens, again.tokens);
  fs::remove(path);
  // Version 2 files (F32, no element type) and version 1 files (no note either) still restore.
  const size_t note_at = 16 + gen::model_identity(kLlama).size(), type_at = note_at + 4 + 32;
  std::string v2 = file;
  v2[8] = 2;
  v2.erase(type_at, 4);
  std::string v1 = v2;
  v1[8] = 1;
  v1.erase(note_at, 4);
  for (const std::string& old_file : {v1, v2}) {
    gen::PromptCache old(*model, 64);
    EXPECT_EQ(gen::restore_kv_session(bytes_of(old_file), gen::model_identity(kLlama),
                                      model->vocab_size(), old),
              "");
    EXPECT_EQ(gen::serialize_kv_session(gen::model_identity(kLlama), old), file);
  }
}

// An F16 cache is saved as F16 (half the bytes), restores bit for bit, and converts
// to and from an F32 cache of the same shape: F16 values widen exactly, and an F32 file restored
// into an F16 cache is rounded as the cache would have rounded it.
TEST(KvSession, F16CachesSaveHalfTheBytesAndConvert) {
  const fs::path gguf = test::kModelFixtures / "gguf" / "llama.f32.gguf";
  const auto model = models::load_causal_lm(gguf);
  EXPECT_EQ(model->kv_cache_dtype(), DType::F32);
  model->set_kv_cache_dtype(DType::F16);
  const std::string id = "a model";
  gen::PromptCache cached(*model, 32);
  gen::generate_cached(*model, nullptr, {1, 17, 33, 5}, cached, greedy(4));
  ASSERT_EQ(cached.cache.layers[0].keys.dtype(), DType::F16);
  const std::string f16 = gen::serialize_kv_session(id, cached);
  const nn::LayerCache& first = cached.cache.layers[0];
  const auto n = static_cast<size_t>(cached.cache.length);
  const size_t per_token = static_cast<size_t>(first.keys.dim(2) * first.keys.dim(3));
  const size_t header = 16 + id.size() + 4 + 32 + 4 + n * sizeof(int64_t);
  EXPECT_EQ(f16.size(), header + cached.cache.layers.size() * 2 * n * per_token * 2);

  gen::PromptCache same(*model, 32);
  gen::restore_kv_session(bytes_of(f16), id, model->vocab_size(), same);
  EXPECT_EQ(gen::serialize_kv_session(id, same), f16);

  model->set_kv_cache_dtype(DType::F32);
  gen::PromptCache wide(*model, 32);
  gen::restore_kv_session(bytes_of(f16), id, model->vocab_size(), wide);
  ASSERT_EQ(wide.cache.layers[0].keys.dtype(), DType::F32);
  EXPECT_EQ(wide.cache.layers[0].keys.narrow(1, 0, wide.cache.length).contiguous().to_f64_vector(),
            first.keys.narrow(1, 0, cached.cache.length).contiguous().to_f64_vector());
  const std::string f32 = gen::serialize_kv_session(id, wide);
  EXPECT_EQ(f32.size() - header, 2 * (f16.size() - header));
  model->set_kv_cache_dtype(DType::F16);
  gen::PromptCache narrow(*model, 32);
  gen::restore_kv_session(bytes_of(f32), id, model->vocab_size(), narrow);
  EXPECT_EQ(gen::serialize_kv_session(id, narrow), f16);
  EXPECT_THROW(model->set_kv_cache_dtype(DType::BF16), Error);
}

TEST(KvSession, RefusesBadFiles) {
  const auto model = models::load_causal_lm(kLlama);
  const std::string id = gen::model_identity(kLlama);
  gen::PromptCache cached(*model, 32);
  gen::generate_cached(*model, nullptr, {1, 2, 3}, cached, greedy(4));
  const std::string good = gen::serialize_kv_session(id, cached);
  const auto refuses = [&](const std::string& bytes, const std::string& identity,
                           const std::string& message, int64_t capacity = 32) {
    gen::PromptCache target(*model, capacity);
    try {
      gen::restore_kv_session(bytes_of(bytes), identity, model->vocab_size(), target);
      ADD_FAILURE() << "accepted: " << message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    EXPECT_EQ(target.cache.length, 0);
    EXPECT_TRUE(target.tokens.empty());
  };
  refuses(std::string("XMBERKV") + good.substr(7), id, "bad magic");
  std::string version = good;
  version[8] = 4;
  refuses(version, id, "version 4");
  std::string element = good;
  element[16 + id.size() + 4 + 32] = 7;
  refuses(element, id, "element type 7");
  // A note longer than the bound.
  std::string long_note = good;
  const uint32_t huge = (16u << 20) + 1;
  std::memcpy(long_note.data() + 16 + id.size(), &huge, sizeof huge);
  refuses(long_note, id, "note of");
  refuses(good, "another model 123", "saved for model");
  refuses(good + "x", id, "bytes");
  refuses(good, id, "capacity", 4);
  // Every truncation is an error, never a read past the end.
  for (size_t n = 0; n < good.size(); n += 7) refuses(good.substr(0, n), id, "KV session");
  // A token id outside the vocabulary (the first id follows the empty note, 4 shape fields and
  // the element type).
  std::string token = good;
  const size_t first_id = 8 + 4 + 4 + id.size() + 4 + 32 + 4;
  const int64_t bad = 1 << 20;
  std::memcpy(token.data() + first_id, &bad, sizeof bad);
  refuses(token, id, "outside the model's vocabulary");
  // Another architecture's cache shape.
  const fs::path gpt2 = test::kModelFixtures / "gpt2";
  const auto other = models::load_causal_lm(gpt2);
  gen::PromptCache other_cache(*other, 32);
  gen::generate_cached(*other, nullptr, {1, 2, 3}, other_cache, greedy(2));
  refuses(gen::serialize_kv_session(id, other_cache), id, "the model has");
}

// A second prompt that extends the first prompt and its output runs only its new tokens and
// generates what a fresh run generates.
TEST(PromptCache, ReusesTheCommonPrefix) {
  const auto inner = models::load_causal_lm(kLlama);
  CountingModel model(*inner);
  const std::vector<int64_t> first = {1, 17, 33, 5, 90, 12, 40, 41};
  gen::PromptCache cached(model, 0);
  const gen::Generation g1 = gen::generate_cached(model, nullptr, first, cached, greedy(6));
  std::vector<int64_t> second = first;
  second.insert(second.end(), g1.ids.begin(), g1.ids.begin() + 4);
  second.push_back(77);
  model.evaluated = 0;
  const gen::Generation reused = gen::generate_cached(model, nullptr, second, cached, greedy(6));
  const int64_t with_reuse = model.evaluated;
  EXPECT_EQ(cached.reused, static_cast<int64_t>(first.size()) + 4);
  model.evaluated = 0;
  const gen::Generation fresh = gen::generate(model, nullptr, {second}, greedy(6))[0];
  EXPECT_EQ(model.evaluated, static_cast<int64_t>(second.size()) + 5);
  EXPECT_EQ(with_reuse, 1 + 5);  // the one new prompt token, then one per step
  EXPECT_EQ(reused.ids, fresh.ids);
  // The reused run computed the prefix's keys in other batch shapes (the first prompt as a
  // block, then one token at a time) than the fresh run (one block): the matrix kernels sum in
  // other orders, so the log-probabilities agree to F32 rounding, not bit for bit. 1e-4 is
  // about 100 ulps of these O(1) values, far below any real difference.
  for (size_t i = 0; i < fresh.top_logprobs.size(); ++i)
    EXPECT_NEAR(reused.top_logprobs[i][0].logprob, fresh.top_logprobs[i][0].logprob, 1e-4);
  // A prompt sharing nothing reuses nothing.
  gen::generate_cached(model, nullptr, {3, 4, 5}, cached, greedy(2));
  EXPECT_EQ(cached.reused, 0);
}

// A model with its config's layer count cut to one (the first layer's weights): see below.
std::unique_ptr<models::CausalLM> one_layer(const fs::path& path) {
  const bool gguf = path.extension() == ".gguf";
  nlohmann::json config =
      gguf ? models::Config::from_gguf(GgufFile::open(path), path.string()).json()
           : read_json_file(path / "config.json");
  config["num_hidden_layers"] = 1;
  return models::load_causal_lm(models::Config(config, path.string() + " (one layer)"),
                                nn::Weights::open(gguf ? path : path / "model.safetensors"));
}

// Generates 40 tokens through a cache of 16 with context_keep 4 (several shifts), then runs the
// last token on the shifted cache and on a fresh cache holding the kept tokens at positions
// 0, 1, ...; returns the largest logit difference relative to the logits' scale, and the largest
// difference of the first layer's keys and values.
struct ShiftResult {
  double logits = 0, first_layer = 0;
  double largest = 0;  // the largest |key| or |value| of the fresh run's first layer
};
ShiftResult shift_against_fresh(models::CausalLM& model) {
  gen::PromptCache cached(model, 16);
  gen::GenerationConfig config = greedy(40);
  config.context_keep = 4;
  const gen::Generation g =
      gen::generate_cached(model, nullptr, {1, 17, 33, 5, 90, 12}, cached, config);
  EXPECT_EQ(g.ids.size(), 40u);
  EXPECT_GE(cached.shifts, 3);
  EXPECT_EQ(static_cast<int64_t>(cached.tokens.size()), cached.cache.length);
  EXPECT_EQ(std::vector<int64_t>(cached.tokens.begin(), cached.tokens.begin() + 4),
            (std::vector<int64_t>{1, 17, 33, 5}));
  const int64_t n = cached.cache.length;
  std::vector<int64_t> ids = cached.tokens;
  ids.push_back(g.ids.back());
  std::vector<int64_t> positions(ids.size());
  std::iota(positions.begin(), positions.end(), 0);
  models::KvCache fresh_cache = model.new_cache(1, n + 1);
  const Tensor fresh = model.forward(Tensor::from_values<int64_t>(DType::I64, {1, n + 1}, ids),
                                     positions, Tensor(), fresh_cache, false);
  ShiftResult r;
  for (const auto& [a, b] :
       {std::pair{&cached.cache.layers[0].keys, &fresh_cache.layers[0].keys},
        std::pair{&cached.cache.layers[0].values, &fresh_cache.layers[0].values}}) {
    const std::vector<double> x = a->narrow(1, 0, n).contiguous().to_f64_vector();
    const std::vector<double> y = b->narrow(1, 0, n).contiguous().to_f64_vector();
    for (size_t i = 0; i < x.size(); ++i) {
      r.first_layer = std::max(r.first_layer, std::abs(x[i] - y[i]));
      r.largest = std::max(r.largest, std::abs(y[i]));
    }
  }
  const std::vector<int64_t> next = {g.ids.back()}, at = {n};
  const Tensor shifted = model.forward(Tensor::from_values<int64_t>(DType::I64, {1, 1}, next), at,
                                       Tensor(), cached.cache, false);
  const std::vector<double> a = shifted.to_f64_vector(), b = fresh.to_f64_vector();
  double scale = 1;
  for (double x : b) scale = std::max(scale, std::abs(x));
  for (size_t i = 0; i < a.size(); ++i)
    r.logits = std::max(r.logits, std::abs(a[i] - b[i]) / scale);
  return r;
}

// Re-rotating a key by -d rounds differently from rotating it at p - d directly (two F32
// rotations and angle products instead of one: ~1e-6 relative), and the fresh run computes in
// other batch shapes; through these small layers that stays far below 1e-4, while a key left at
// its old position or a wrongly moved row changes results by O(1).
constexpr double kTolerance = 1e-4;

// Rotary models re-rotate their cached keys (llama.cpp's K-shift): the first layer's keys and
// values then equal a fresh run's, in HF's and GGML's layouts and with yarn's attention scale.
// A moved token's deeper layers still hold what it attended to before the shift (as in
// llama.cpp), so the logits equal a fresh run's only for a one-layer model.
TEST(ContextShift, RotaryKeysAreReRotated) {
  const fs::path fixtures = test::kModelFixtures;
  for (const fs::path& path :
       {fixtures / "llama", fixtures / "gguf" / "llama.f32.gguf", fixtures / "llama_rope_yarn"}) {
    SCOPED_TRACE(path.string());
    const auto full = models::load_causal_lm(path);
    EXPECT_LE(shift_against_fresh(*full).first_layer, kTolerance);
    const auto single = one_layer(path);
    const ShiftResult r = shift_against_fresh(*single);
    EXPECT_LE(r.first_layer, kTolerance);
    EXPECT_LE(r.logits, kTolerance);
  }
}

// In an F16 cache (llama.cpp's default) a moved key is widened, rotated and rounded again, as
// llama.cpp's K-shift does, where a fresh run rounds it once. Each rounding is within half an F16
// step (2^-11 of the largest value), and the rotation (|cos| + |sin| <= 1.5) carries the first
// one over: within 2^-9 of the largest value in all, while a key left at its old position moves
// by the size of the keys themselves.
TEST(ContextShift, F16KeysAreReRotatedWithinF16Rounding) {
  const auto single = one_layer(test::kModelFixtures / "gguf" / "llama.f32.gguf");
  single->set_kv_cache_dtype(DType::F16);
  const ShiftResult r = shift_against_fresh(*single);
  EXPECT_GT(r.largest, 0.1);
  EXPECT_LE(r.first_layer, 0x1p-9 * r.largest);
}

// Learned positions (GPT-2) and dynamic rope, whose frequencies depend on the length, recompute
// the moved tokens: the whole model then equals a fresh run.
TEST(ContextShift, RecomputedTokensEqualAFreshRun) {
  const fs::path fixtures = test::kModelFixtures;
  for (const fs::path& path : {fixtures / "gpt2", fixtures / "llama_rope_dynamic"}) {
    SCOPED_TRACE(path.string());
    const auto model = models::load_causal_lm(path);
    const ShiftResult r = shift_against_fresh(*model);
    EXPECT_LE(r.first_layer, kTolerance);
    EXPECT_LE(r.logits, kTolerance);
  }
}

TEST(ContextShift, RefusesBadRequests) {
  const auto model = models::load_causal_lm(kLlama);
  gen::PromptCache cached(*model, 16);
  gen::generate_cached(*model, nullptr, {1, 2, 3}, cached, greedy(3));
  EXPECT_THROW(model->discard_tokens(cached.cache, 0, 1, {}), Error);  // not the cache's tokens
  EXPECT_THROW(model->discard_tokens(cached.cache, 2, 9, cached.tokens), Error);
  EXPECT_THROW(model->discard_tokens(cached.cache, 1, 0, cached.tokens), Error);
  models::KvCache batch = model->new_cache(2, 8);
  EXPECT_THROW(model->discard_tokens(batch, 0, 1, {}), Error);
  // Without context_keep a full cache ends generation.
  gen::PromptCache small(*model, 8);
  EXPECT_EQ(gen::generate_cached(*model, nullptr, {1, 2, 3}, small, greedy(20)).ids.size(), 5u);
}

}  // namespace
}  // namespace ember
