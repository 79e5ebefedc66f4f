#include "ember/generation/generate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>

#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/generation/scoring.hpp"
#include "ember/models/gguf_tokenizer.hpp"

namespace ember::generation {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<int64_t> eos_ids_of(const nlohmann::json& config) {
  std::vector<int64_t> ids;
  if (!config.contains("eos_token_id")) return ids;
  const nlohmann::json& v = config["eos_token_id"];
  if (v.is_number_integer()) ids.push_back(v.get<int64_t>());
  if (v.is_array())
    for (const auto& x : v)
      if (x.is_number_integer()) ids.push_back(x.get<int64_t>());
  return ids;
}

// Softmax of the finite entries in place (the others become 0).
void softmax_in_place(std::vector<float>& x) {
  const float top = *std::max_element(x.begin(), x.end());
  double sum = 0;
  for (float& v : x) {
    v = v == kNegInf ? 0.0f : std::exp(v - top);
    sum += v;
  }
  for (float& v : x) v = static_cast<float>(v / sum);
}

// The longest suffix of `text` that is a proper prefix of some stop string: text that may still
// become a stop string, so it is held back from streaming.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& s : stops) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > held; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Eos:
      return "eos";
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      break;
  }
  return "length";
}

tokenizers::Tokenizer load_tokenizer(const std::filesystem::path& model) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model, ec) && looks_like_gguf(model)) {
    const GgufFile file = GgufFile::open(model);
    const GgufValue* kind = file.find("tokenizer.ggml.model");
    if (kind != nullptr && kind->as_string() != nullptr && *kind->as_string() == "llama") {
      return tokenizers::Tokenizer::from_sentencepiece_vocab(
          models::gguf_sentencepiece_vocab(file));
    }
    return tokenizers::Tokenizer::from_json(models::gguf_tokenizer_json(file).dump());
  }
  return tokenizers::Tokenizer::load((model / "tokenizer.json").string());
}

GenerationConfig GenerationConfig::from_folder(const std::filesystem::path& folder) {
  GenerationConfig g;
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec) && looks_like_gguf(folder)) {
    g.eos_ids = models::gguf_eos_ids(GgufFile::open(folder));
    return g;
  }
  const std::filesystem::path model_config = folder / "config.json";
  if (std::filesystem::exists(model_config)) {
    const nlohmann::json config = read_json_file(model_config);
    if (config.is_object()) g.eos_ids = eos_ids_of(config);
  }
  const std::filesystem::path file = folder / "generation_config.json";
  if (!std::filesystem::exists(file)) return g;
  const nlohmann::json c = read_json_file(file);
  if (!c.is_object()) throw Error(file.string() + ": not a JSON object");
  const auto number = [&](const char* key, double fallback) {
    if (!c.contains(key) || c[key].is_null()) return fallback;
    if (!c[key].is_number()) throw Error(file.string() + ": '" + key + "' is not a number");
    return c[key].get<double>();
  };
  if (c.contains("eos_token_id")) g.eos_ids = eos_ids_of(c);
  const bool sample = c.contains("do_sample") && c["do_sample"] == true;
  if (sample) {
    // transformers' defaults apply to fields the file leaves out.
    g.sampling.temperature = static_cast<float>(number("temperature", 1.0));
    g.sampling.top_k = static_cast<int64_t>(number("top_k", 50));
    g.sampling.top_p = static_cast<float>(number("top_p", 1.0));
    g.sampling.min_p = static_cast<float>(number("min_p", 0.0));
  }
  g.sampling.repetition_penalty = static_cast<float>(number("repetition_penalty", 1.0));
  g.max_new_tokens =
      static_cast<int64_t>(number("max_new_tokens", static_cast<double>(g.max_new_tokens)));
  return g;
}

int64_t sample_token(std::vector<float> logits, const SamplingParams& p,
                     const std::vector<int64_t>& prompt, const std::vector<int64_t>& output,
                     double draw) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  const auto in_vocab = [&](int64_t id) { return id >= 0 && id < vocab; };
  if (p.repetition_penalty != 1.0f) {
    std::vector<bool> seen(logits.size(), false);
    for (const auto* ids : {&prompt, &output})
      for (int64_t id : *ids)
        if (in_vocab(id)) seen[static_cast<size_t>(id)] = true;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (!seen[i]) continue;
      logits[i] =
          logits[i] < 0 ? logits[i] * p.repetition_penalty : logits[i] / p.repetition_penalty;
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::map<int64_t, int64_t> counts;
    for (int64_t id : output)
      if (in_vocab(id)) ++counts[id];
    for (const auto& [id, n] : counts) {
      logits[static_cast<size_t>(id)] -=
          p.presence_penalty + p.frequency_penalty * static_cast<float>(n);
    }
  }
  if (p.temperature <= 0.0f) {
    return std::max_element(logits.begin(), logits.end()) - logits.begin();
  }
  for (float& v : logits) v /= p.temperature;
  if (p.top_k > 0 && p.top_k < vocab) {
    std::vector<float> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + (p.top_k - 1), sorted.end(),
                     std::greater<float>());
    const float kth = sorted[static_cast<size_t>(p.top_k - 1)];
    for (float& v : logits)
      if (v < kth) v = kNegInf;  // ties with the k-th stay, as in the reference
  }
  if (p.top_p < 1.0f) {
    std::vector<float> probs = logits;
    softmax_in_place(probs);
    std::vector<size_t> order(probs.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return logits[a] < logits[b]; });
    // Drop the least likely tokens while their cumulative mass stays <= 1 - top_p; the most
    // likely token always stays.
    double cumulative = 0;
    for (size_t i = 0; i + 1 < order.size(); ++i) {
      cumulative += probs[order[i]];
      if (cumulative > 1.0 - p.top_p) break;
      logits[order[i]] = kNegInf;
    }
  }
  if (p.min_p > 0.0f) {
    std::vector<float> probs = logits;
    softmax_in_place(probs);
    const float top = *std::max_element(probs.begin(), probs.end());
    for (size_t i = 0; i < probs.size(); ++i)
      if (probs[i] < p.min_p * top) logits[i] = kNegInf;
  }
  softmax_in_place(logits);
  double cumulative = 0;
  int64_t last_possible = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (logits[static_cast<size_t>(i)] <= 0.0f) continue;
    last_possible = i;
    cumulative += logits[static_cast<size_t>(i)];
    if (draw < cumulative) return i;
  }
  return last_possible;  // draw beyond the rounded total
}

std::vector<TokenLogprob> top_logprobs(const float* logits, int64_t vocab, int64_t k) {
  // log-softmax in double: the log of the normalizer once, then one subtraction per id.
  const double log_norm = log_sum_exp(logits, vocab);
  std::vector<int64_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  const auto count = static_cast<size_t>(std::min(k, vocab));
  // Highest first; ties by id, so the order is deterministic.
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), order.end(),
                    [&](int64_t a, int64_t b) {
                      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                    });
  std::vector<TokenLogprob> out;
  for (size_t i = 0; i < count; ++i)
    out.push_back({order[i], static_cast<double>(logits[order[i]]) - log_norm});
  return out;
}

namespace {

// generate() and generate_cached(): `reuse` holds the first tokens of the single prompt.
std::vector<Generation> run_generation(models::CausalLM& model,
                                       const tokenizers::Tokenizer* tokenizer,
                                       const std::vector<std::vector<int64_t>>& prompts,
                                       const GenerationConfig& config, const TextCallback& on_text,
                                       PromptCache* reuse) {
  const int64_t rows = static_cast<int64_t>(prompts.size());
  std::vector<Generation> results(prompts.size());
  if (rows == 0) return results;
  int64_t longest = 0;
  for (size_t r = 0; r < prompts.size(); ++r) {
    if (prompts[r].empty()) throw Error("generate: prompt " + std::to_string(r) + " is empty");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[r].size()));
  }
  if (longest >= model.context_length()) {
    throw Error("generate: a prompt of " + std::to_string(longest) +
                " tokens does not fit the model's context of " +
                std::to_string(model.context_length()) + " tokens");
  }
  const bool shift = reuse != nullptr && config.context_keep >= 0;
  const int64_t room = reuse ? reuse->cache.capacity() : model.max_tokens();
  const int64_t new_tokens =
      shift ? config.max_new_tokens
            : std::max<int64_t>(0, std::min(config.max_new_tokens, room - longest));
  const int64_t capacity = reuse ? room : longest + new_tokens;
  models::KvCache fresh_cache = reuse ? models::KvCache{} : model.new_cache(rows, capacity);
  models::KvCache& cache = reuse ? reuse->cache : fresh_cache;
  // The prompt's first `start` tokens are already in a reused cache.
  const int64_t start = reuse ? cache.length : 0;
  if (start >= longest) throw Error("generate: the cache holds the whole prompt");
  const int64_t fresh = longest - start;

  // Left padding: every prompt ends at column `longest`; pads are masked keys.
  std::vector<int64_t> ids(static_cast<size_t>(rows * fresh), 0), positions(ids.size(), 0);
  Tensor key_mask = Tensor::zeros(DType::I64, {rows, capacity});
  int64_t* mask = key_mask.mutable_data_as<int64_t>();
  std::vector<int64_t> next_position(prompts.size());
  for (int64_t r = 0; r < rows; ++r) {
    const auto& p = prompts[static_cast<size_t>(r)];
    const int64_t pad = longest - static_cast<int64_t>(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      const int64_t col = pad + static_cast<int64_t>(i);
      mask[r * capacity + col] = 1;
      if (col < start) continue;
      ids[static_cast<size_t>(r * fresh + col - start)] = p[i];
      positions[static_cast<size_t>(r * fresh + col - start)] = static_cast<int64_t>(i);
    }
    next_position[static_cast<size_t>(r)] = static_cast<int64_t>(p.size());
  }
  Tensor logits = model.forward(Tensor::from_values<int64_t>(DType::I64, {rows, fresh}, ids),
                                positions, key_mask.narrow(1, 0, longest), cache, false);
  if (reuse) reuse->tokens = prompts[0];

  std::mt19937_64 rng(config.sampling.seed);
  std::vector<tokenizers::DecodeStream> streams;
  if (tokenizer != nullptr) {
    for (int64_t r = 0; r < rows; ++r)
      streams.push_back(tokenizer->decode_stream(config.skip_special_tokens));
  }
  std::vector<size_t> emitted(prompts.size(), 0);
  std::vector<bool> done(prompts.size(), false);
  const auto emit = [&](size_t r, size_t end) {
    if (end > emitted[r] && on_text)
      on_text(r, std::string_view(results[r].text).substr(emitted[r], end - emitted[r]));
    emitted[r] = std::max(emitted[r], end);
  };
  const int64_t vocab = model.vocab_size();
  for (int64_t step = 0; step < new_tokens; ++step) {
    const float* row_logits = logits.data_as<float>();
    std::vector<int64_t> next(prompts.size(), 0);
    for (size_t r = 0; r < prompts.size(); ++r) {
      if (done[r]) continue;
      // One draw per row and step, so a row's samples do not depend on the batch it runs in.
      const double draw = static_cast<double>(rng() >> 11) * 0x1p-53;
      const std::vector<float> row(row_logits + static_cast<int64_t>(r) * vocab,
                                   row_logits + (static_cast<int64_t>(r) + 1) * vocab);
      if (config.top_logprobs > 0)
        results[r].top_logprobs.push_back(top_logprobs(row.data(), vocab, config.top_logprobs));
      const int64_t id = sample_token(row, config.sampling, prompts[r], results[r].ids, draw);
      next[r] = id;
      Generation& g = results[r];
      g.ids.push_back(id);
      if (std::find(config.eos_ids.begin(), config.eos_ids.end(), id) != config.eos_ids.end()) {
        g.finish = FinishReason::Eos;
        done[r] = true;
      } else if (auto piece =
                     streams.empty() ? std::nullopt : streams[r].step(static_cast<uint32_t>(id))) {
        g.text += *piece;
        size_t cut = std::string::npos;
        for (const std::string& s : config.stop_strings) {
          const size_t from = emitted[r] >= s.size() ? emitted[r] - s.size() : 0;
          const size_t at = g.text.find(s, from);
          if (at != std::string::npos) cut = std::min(cut, at);
        }
        if (cut != std::string::npos) {
          g.text.resize(cut);
          g.finish = FinishReason::Stop;
          done[r] = true;
        } else {
          emit(r, g.text.size() - held_back(g.text, config.stop_strings));
        }
      }
      if (done[r] || step + 1 == new_tokens) emit(r, g.text.size());
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }) || step + 1 == new_tokens)
      break;
    if (shift && cache.length == capacity) {
      // llama.cpp's context shift: keep the first tokens, drop half of the rest.
      const int64_t keep = std::min(config.context_keep, cache.length - 2);
      const int64_t discard = (cache.length - keep) / 2;
      model.discard_tokens(cache, keep, discard, reuse->tokens);
      reuse->tokens.erase(reuse->tokens.begin() + keep, reuse->tokens.begin() + keep + discard);
      next_position[0] -= discard;
      ++reuse->shifts;
    }
    if (reuse) reuse->tokens.push_back(next[0]);
    std::vector<int64_t> step_positions(prompts.size());
    for (size_t r = 0; r < prompts.size(); ++r) {
      step_positions[r] = next_position[r]++;
      mask[static_cast<int64_t>(r) * capacity + cache.length] = 1;
    }
    logits = model.forward(Tensor::from_values<int64_t>(DType::I64, {rows, 1}, next),
                           step_positions, key_mask.narrow(1, 0, cache.length + 1), cache, false);
  }
  return results;
}

}  // namespace

std::vector<Generation> generate(models::CausalLM& model, const tokenizers::Tokenizer* tokenizer,
                                 const std::vector<std::vector<int64_t>>& prompts,
                                 const GenerationConfig& config, const TextCallback& on_text) {
  return run_generation(model, tokenizer, prompts, config, on_text, nullptr);
}

PromptCache::PromptCache(const models::CausalLM& model, int64_t capacity)
    : cache(model.new_cache(
          1, capacity > 0 ? capacity : std::min(model.context_length(), model.max_tokens()))) {}

void PromptCache::clear() {
  cache.length = 0;
  tokens.clear();
}

Generation generate_cached(models::CausalLM& model, const tokenizers::Tokenizer* tokenizer,
                           const std::vector<int64_t>& prompt, PromptCache& cached,
                           const GenerationConfig& config, const TextCallback& on_text) {
  if (prompt.empty()) throw Error("generate: the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) >= cached.cache.capacity()) {
    throw Error("generate: a prompt of " + std::to_string(prompt.size()) +
                " tokens does not fit the cache of " + std::to_string(cached.cache.capacity()) +
                " tokens");
  }
  // Keep the longest cached prefix of the prompt, leaving at least one token to run.
  const size_t limit = std::min(cached.tokens.size(), prompt.size() - 1);
  size_t keep = 0;
  while (keep < limit && cached.tokens[keep] == prompt[keep]) ++keep;
  cached.cache.length = static_cast<int64_t>(keep);
  cached.tokens.resize(keep);
  cached.reused = static_cast<int64_t>(keep);
  cached.shifts = 0;
  try {
    return run_generation(model, tokenizer, {prompt}, config, on_text, &cached)[0];
  } catch (...) {
    cached.clear();  // whatever the cache holds now is no longer known
    throw;
  }
}

}  // namespace ember::generation
