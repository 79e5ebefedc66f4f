#include "ember/generation/seq2seq.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/kernels.hpp"
#include "ember/formats/json_file.hpp"

namespace ember::generation {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// transformers' stand-in for "impossible" in beam bookkeeping (added in F32, so that a score
// pushed down by it keeps its order among the others).
constexpr float kBeamOff = -1.0e9f;

bool is_eos(int64_t id, const std::vector<int64_t>& eos) {
  return std::find(eos.begin(), eos.end(), id) != eos.end();
}

// Indices of the k largest values, largest first; ties keep the lower index first.
std::vector<int64_t> top_indices(const std::vector<float>& values, int64_t k) {
  std::vector<int64_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  const auto by_value = [&](int64_t a, int64_t b) {
    const float va = values[static_cast<size_t>(a)], vb = values[static_cast<size_t>(b)];
    return va > vb || (va == vb && a < b);
  };
  k = std::min<int64_t>(k, static_cast<int64_t>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_value);
  idx.resize(static_cast<size_t>(k));
  return idx;
}

// A continuation of a beam: its summed log-prob and its index j * vocab + token over an input's
// beams.
struct Scored {
  float score = 0;
  int64_t index = 0;
};

bool better(const Scored& a, const Scored& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

// The `keep` best of base + lp over one beam's processed log-probs lp (flat indices from
// `offset`), best first, ties to the lower index. An input's `keep` best continuations over all
// its beams are among its beams' own `keep` best, so top_indices over every beam's whole row is
// not needed.
void best_continuations(const std::vector<float>& lp, float base, int64_t offset, size_t keep,
                        std::vector<Scored>& out) {
  std::vector<Scored> top;
  top.reserve(keep + 1);
  for (size_t v = 0; v < lp.size(); ++v) {
    // Later indices lose ties, so only a strictly higher score enters a full list: the SIMD
    // scan skips to the next one.
    if (top.size() == keep) {
      v += kernels::first_above_f32(lp.data() + v, lp.size() - v, base, top.back().score);
      if (v == lp.size()) break;
    }
    const Scored c{lp[v] + base, offset + static_cast<int64_t>(v)};
    top.insert(std::upper_bound(top.begin(), top.end(), c, better), c);
    if (top.size() > keep) top.pop_back();
  }
  out.insert(out.end(), top.begin(), top.end());
}

struct Batch {
  Tensor ids, mask;  // [B, S] I64, right-padded
};

Batch pad_inputs(const models::Seq2SeqLM& model, const std::vector<std::vector<int64_t>>& inputs,
                 int64_t pad) {
  if (inputs.empty()) throw Error("generate: no inputs");
  size_t longest = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) throw Error("generate: input " + std::to_string(i) + " is empty");
    if (static_cast<int64_t>(inputs[i].size()) > model.max_source_tokens()) {
      throw Error("generate: input " + std::to_string(i) + " has " +
                  std::to_string(inputs[i].size()) + " tokens, more than the encoder's " +
                  std::to_string(model.max_source_tokens()) + " positions");
    }
    for (int64_t id : inputs[i]) {
      if (id < 0 || id >= model.source_vocab_size())
        throw Error("generate: input " + std::to_string(i) + " has id " + std::to_string(id) +
                    " outside the vocabulary of " + std::to_string(model.source_vocab_size()));
    }
    longest = std::max(longest, inputs[i].size());
  }
  std::vector<int64_t> ids(inputs.size() * longest, pad), mask(ids.size(), 0);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::copy(inputs[i].begin(), inputs[i].end(),
              ids.begin() + static_cast<ptrdiff_t>(i * longest));
    std::fill_n(mask.begin() + static_cast<ptrdiff_t>(i * longest), inputs[i].size(), 1);
  }
  const Shape shape{static_cast<int64_t>(inputs.size()), static_cast<int64_t>(longest)};
  return {Tensor::from_values<int64_t>(DType::I64, shape, std::span<const int64_t>(ids)),
          Tensor::from_values<int64_t>(DType::I64, shape, std::span<const int64_t>(mask))};
}

Tensor last_tokens(const std::vector<const std::vector<int64_t>*>& rows) {
  std::vector<int64_t> ids;
  ids.reserve(rows.size());
  for (const auto* r : rows) ids.push_back(r->back());
  return Tensor::from_values<int64_t>(DType::I64, {static_cast<int64_t>(ids.size()), 1},
                                      std::span<const int64_t>(ids));
}

// Greedy and sampling: one sequence per input.
std::vector<std::vector<Seq2SeqOutput>> decode_one(const models::Seq2SeqLM& model,
                                                   const Batch& batch, const Seq2SeqConfig& c) {
  const int64_t max_len = c.total_length(), vocab = model.vocab_size();
  const Tensor encoded = model.encode(batch.ids, batch.mask);
  models::Seq2SeqCache cache = model.new_cache(encoded, batch.mask, max_len);
  const auto n = static_cast<size_t>(batch.ids.dim(0));
  std::vector<std::vector<int64_t>> seqs(n, {c.start_id(model)});
  std::vector<size_t> active(n);
  std::iota(active.begin(), active.end(), 0);
  SamplingParams warpers = c.sampling;
  warpers.repetition_penalty = 1.0f;  // applied with the other processors
  std::mt19937_64 rng(c.sampling.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int64_t len = 1; len < max_len && !active.empty(); ++len) {
    std::vector<const std::vector<int64_t>*> rows;
    rows.reserve(active.size());
    for (size_t b : active) rows.push_back(&seqs[b]);
    const Tensor logits = model.decode(last_tokens(rows), cache);
    const float* data = logits.data_as<float>();
    std::vector<int64_t> keep;
    for (size_t a = 0; a < active.size(); ++a) {
      std::vector<float> row(data + static_cast<ptrdiff_t>(a) * vocab,
                             data + static_cast<ptrdiff_t>(a + 1) * vocab);
      std::vector<int64_t>& seq = seqs[active[a]];
      process_scores(row, seq, c, max_len);
      const double draw = c.sampling.temperature > 0 ? uniform(rng) : 0.0;
      const int64_t token = c.sampling.temperature > 0
                                ? sample_token(std::move(row), warpers, {}, {}, draw)
                                : std::max_element(row.begin(), row.end()) - row.begin();
      seq.push_back(token);
      if (!is_eos(token, c.eos_ids)) keep.push_back(static_cast<int64_t>(a));
    }
    if (keep.size() != active.size()) {
      std::vector<size_t> next;
      next.reserve(keep.size());
      for (int64_t a : keep) next.push_back(active[static_cast<size_t>(a)]);
      active = std::move(next);
      if (!active.empty()) models::select_rows(cache, keep);
    }
  }
  std::vector<std::vector<Seq2SeqOutput>> out(n);
  for (size_t b = 0; b < n; ++b) out[b].push_back({{seqs[b].begin() + 1, seqs[b].end()}, 0.0});
  return out;
}

struct Beam {
  std::vector<int64_t> ids;  // start token included
  float score = kBeamOff;
  bool finished = false;  // finished slots only: holds a completed sequence
};

struct BeamItem {
  std::vector<Beam> running, finished;
  bool improvable = true;  // transformers' is_early_stop_heuristic_unsatisfied
  bool done = false;
};

// Beam search over every input at once, as transformers' _beam_search does for one batch: each
// input keeps `beams` running sequences and `beams` finished slots.
std::vector<std::vector<Seq2SeqOutput>> beam_search(const models::Seq2SeqLM& model,
                                                    const Batch& batch, const Seq2SeqConfig& c) {
  const int64_t max_len = c.total_length(), vocab = model.vocab_size(), k = c.num_beams;
  const int64_t keep = std::max<int64_t>(2, 1 + static_cast<int64_t>(c.eos_ids.size())) * k;
  const auto n = static_cast<size_t>(batch.ids.dim(0));
  const Tensor encoded = model.encode(batch.ids, batch.mask);
  models::Seq2SeqCache cache = model.new_cache(encoded, batch.mask, max_len);
  std::vector<BeamItem> items(n);
  for (size_t b = 0; b < n; ++b) {
    for (int64_t j = 0; j < k; ++j) {
      items[b].running.push_back({{c.start_id(model)}, j == 0 ? 0.0f : kBeamOff});
      items[b].finished.push_back({});
    }
  }
  std::vector<size_t> active(n);
  std::iota(active.begin(), active.end(), 0);
  for (int64_t len = 1; len < max_len && !active.empty(); ++len) {
    // At the first step an input's beams all hold just the start token: the decoder runs one
    // row per input, which its beams share, and the cache grows to one row per beam after it.
    const bool first = len == 1;
    std::vector<const std::vector<int64_t>*> seqs;
    for (size_t b : active)
      for (int64_t j = 0; j < (first ? 1 : k); ++j)
        seqs.push_back(&items[b].running[static_cast<size_t>(j)].ids);
    const Tensor logits = model.decode(last_tokens(seqs), cache);
    const float* data = logits.data_as<float>();
    std::vector<int64_t> next_rows;
    std::vector<size_t> next_active;
    const float denom = static_cast<float>(std::pow(static_cast<double>(len), c.length_penalty));
    // Each beam row (threaded over all inputs' beams): log-softmax, processors, and its `keep`
    // best continuations.
    const auto rows = static_cast<int64_t>(active.size()) * k;
    std::vector<std::vector<Scored>> row_top(static_cast<size_t>(rows));
    parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> lp(static_cast<size_t>(vocab));
      for (int64_t row = begin; row < end; ++row) {
        const Beam& beam =
            items[active[static_cast<size_t>(row / k)]].running[static_cast<size_t>(row % k)];
        kernels::log_softmax_row_f32(data + (first ? row / k : row) * vocab, lp.data(), lp.size());
        process_scores(lp, beam.ids, c, max_len);
        if (c.renormalize_logits) kernels::log_softmax_row_f32(lp.data(), lp.data(), lp.size());
        best_continuations(lp, beam.score, (row % k) * vocab, static_cast<size_t>(keep),
                           row_top[static_cast<size_t>(row)]);
      }
    });
    for (size_t a = 0; a < active.size(); ++a) {
      BeamItem& item = items[active[a]];
      std::vector<Scored> top;
      for (int64_t j = 0; j < k; ++j) {
        const std::vector<Scored>& t = row_top[a * static_cast<size_t>(k) + static_cast<size_t>(j)];
        top.insert(top.end(), t.begin(), t.end());
      }
      std::sort(top.begin(), top.end(), better);
      top.resize(std::min(top.size(), static_cast<size_t>(keep)));
      std::vector<Beam> candidates;
      std::vector<float> running_score;
      std::vector<bool> hits;
      for (const Scored& t : top) {
        const Beam& from = item.running[static_cast<size_t>(t.index / vocab)];
        Beam cand{from.ids, t.score};
        cand.ids.push_back(t.index % vocab);
        const bool hit = is_eos(t.index % vocab, c.eos_ids) || len + 1 >= max_len;
        hits.push_back(hit);
        running_score.push_back(cand.score + (hit ? kBeamOff : 0.0f));
        candidates.push_back(std::move(cand));
      }
      // Finished slots: the best of the old ones and the first k candidates that just ended.
      const bool full = c.early_stopping == EarlyStopping::True &&
                        std::all_of(item.finished.begin(), item.finished.end(),
                                    [](const Beam& s) { return s.finished; });
      std::vector<Beam> merged = item.finished;
      for (size_t i = 0; i < candidates.size(); ++i) {
        const bool eligible = static_cast<int64_t>(i) < k && hits[i];
        float s = candidates[i].score / denom;
        if (full) s += kBeamOff;
        if (!item.improvable) s += kBeamOff;
        if (!eligible) s += kBeamOff;
        merged.push_back({candidates[i].ids, s, eligible});
      }
      std::vector<float> merged_scores;
      merged_scores.reserve(merged.size());
      for (const Beam& m : merged) merged_scores.push_back(m.score);
      std::vector<Beam> finished;
      for (int64_t i : top_indices(merged_scores, k))
        finished.push_back(merged[static_cast<size_t>(i)]);
      item.finished = std::move(finished);
      // Running beams: the best candidates that did not end.
      std::vector<Beam> running;
      std::vector<int64_t> sources;
      for (int64_t i : top_indices(running_score, k)) {
        Beam r = candidates[static_cast<size_t>(i)];
        r.score = running_score[static_cast<size_t>(i)];
        sources.push_back(top[static_cast<size_t>(i)].index / vocab);
        running.push_back(std::move(r));
      }
      item.running = std::move(running);
      // Can a running beam still beat the worst finished one?
      const int64_t best_len =
          c.early_stopping == EarlyStopping::Never && c.length_penalty > 0.0 ? max_len - 1 : len;
      const float best =
          item.running[0].score /
          static_cast<float>(std::pow(static_cast<double>(best_len), c.length_penalty));
      float worst = item.finished[0].score;
      bool all_finished = true;
      for (const Beam& s : item.finished) {
        worst = std::min(worst, s.score);
        all_finished = all_finished && s.finished;
      }
      bool beatable = false;
      for (const Beam& s : item.finished)
        beatable = beatable || best > (s.finished ? worst : kBeamOff);
      item.improvable = item.improvable && beatable;
      item.done = !item.improvable || (c.early_stopping == EarlyStopping::True && all_finished);
      if (!item.done) {
        next_active.push_back(active[a]);
        for (int64_t s : sources)
          next_rows.push_back(static_cast<int64_t>(a) * (first ? 1 : k) + (first ? 0 : s));
      }
    }
    active = std::move(next_active);
    if (!active.empty() && len + 1 < max_len) models::select_rows(cache, next_rows);
  }
  std::vector<std::vector<Seq2SeqOutput>> out(n);
  for (size_t b = 0; b < n; ++b) {
    for (int64_t j = 0; j < c.num_return_sequences; ++j) {
      const Beam& s = items[b].finished[static_cast<size_t>(j)];
      out[b].push_back({s.ids.empty() ? std::vector<int64_t>()
                                      : std::vector<int64_t>(s.ids.begin() + 1, s.ids.end()),
                        s.score});
    }
  }
  return out;
}

void apply_json(Seq2SeqConfig& c, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": not a JSON object");
  const auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  const auto integer = [&](const char* key, int64_t& out) {
    if (!has(key)) return;
    if (!j[key].is_number_integer()) throw Error(source + ": '" + key + "' is not an integer");
    out = j[key].get<int64_t>();
  };
  const auto number = [&](const char* key, auto& out) {
    if (!has(key)) return;
    if (!j[key].is_number()) throw Error(source + ": '" + key + "' is not a number");
    out = j[key].get<std::remove_reference_t<decltype(out)>>();
  };
  integer("num_beams", c.num_beams);
  integer("num_return_sequences", c.num_return_sequences);
  integer("max_length", c.max_length);
  integer("max_new_tokens", c.max_new_tokens);
  integer("min_length", c.min_length);
  integer("no_repeat_ngram_size", c.no_repeat_ngram_size);
  integer("forced_bos_token_id", c.forced_bos_token_id);
  integer("forced_eos_token_id", c.forced_eos_token_id);
  integer("pad_token_id", c.pad_token_id);
  number("length_penalty", c.length_penalty);
  if (has("renormalize_logits")) {
    if (!j["renormalize_logits"].is_boolean())
      throw Error(source + ": 'renormalize_logits' is not true or false");
    c.renormalize_logits = j["renormalize_logits"].get<bool>();
  }
  number("repetition_penalty", c.sampling.repetition_penalty);
  if (has("early_stopping")) {
    const nlohmann::json& e = j["early_stopping"];
    if (e.is_boolean()) {
      c.early_stopping = e.get<bool>() ? EarlyStopping::True : EarlyStopping::False;
    } else if (e.is_string()) {
      c.early_stopping = parse_early_stopping(e.get<std::string>(), source + " early_stopping");
    } else {
      throw Error(source + ": 'early_stopping' must be true, false or \"never\"");
    }
  }
  if (has("eos_token_id")) {
    const nlohmann::json& e = j["eos_token_id"];
    c.eos_ids.clear();
    for (const nlohmann::json& v : e.is_array() ? e : nlohmann::json::array({e})) {
      if (!v.is_number_integer()) throw Error(source + ": 'eos_token_id' is not an integer");
      c.eos_ids.push_back(v.get<int64_t>());
    }
  }
  if (has("bad_words_ids")) {
    try {
      c.bad_words_ids = j["bad_words_ids"].get<std::vector<std::vector<int64_t>>>();
    } catch (const nlohmann::json::exception&) {
      throw Error(source + ": 'bad_words_ids' must be a list of lists of ids");
    }
  }
  if (has("do_sample") && j["do_sample"] == true) {
    c.sampling.temperature = 1.0f;
    c.sampling.top_k = 50;
    number("temperature", c.sampling.temperature);
    number("top_k", c.sampling.top_k);
    number("top_p", c.sampling.top_p);
  }
}

}  // namespace

EarlyStopping parse_early_stopping(std::string_view text, std::string_view what) {
  if (text == "true") return EarlyStopping::True;
  if (text == "false") return EarlyStopping::False;
  if (text == "never") return EarlyStopping::Never;
  throw Error(std::string(what) + ": expected true, false or never, got '" + std::string(text) +
              "'");
}

Seq2SeqConfig Seq2SeqConfig::from_folder(const std::filesystem::path& folder, std::string_view task,
                                         bool task_optional) {
  Seq2SeqConfig c;
  const std::filesystem::path model_file = folder / "config.json";
  const nlohmann::json model =
      std::filesystem::exists(model_file) ? read_json_file(model_file) : nlohmann::json::object();
  const std::filesystem::path gen_file = folder / "generation_config.json";
  // transformers takes the generation fields of config.json only without generation_config.json.
  if (std::filesystem::exists(gen_file)) {
    apply_json(c, read_json_file(gen_file), gen_file.string());
  } else {
    apply_json(c, model, model_file.string());
  }
  if (task.empty()) return c;
  const nlohmann::json tasks = model.is_object() && model.contains("task_specific_params") &&
                                       model["task_specific_params"].is_object()
                                   ? model["task_specific_params"]
                                   : nlohmann::json::object();
  const std::string name(task);
  if (!tasks.contains(name)) {
    if (task_optional) return c;
    std::string known;
    for (const auto& [key, value] : tasks.items()) known += (known.empty() ? "" : ", ") + key;
    throw Error(model_file.string() + ": no task_specific_params for '" + name +
                "' (it has: " + (known.empty() ? "none" : known) + ")");
  }
  const std::string source = model_file.string() + " task_specific_params." + name;
  apply_json(c, tasks[name], source);
  if (tasks[name].is_object() && tasks[name].contains("prefix")) {
    if (!tasks[name]["prefix"].is_string()) throw Error(source + ": 'prefix' is not text");
    c.prefix = tasks[name]["prefix"].get<std::string>();
  }
  return c;
}

void Seq2SeqConfig::validate(int64_t vocab) const {
  const auto fail = [](const std::string& m) { throw Error("generation config: " + m); };
  if (num_beams < 1) fail("num_beams must be >= 1, got " + std::to_string(num_beams));
  if (num_return_sequences < 1 || num_return_sequences > num_beams) {
    fail("num_return_sequences must be between 1 and num_beams (" + std::to_string(num_beams) +
         "), got " + std::to_string(num_return_sequences));
  }
  if (total_length() < 2) fail("max_length must be >= 2 (it counts the decoder start token)");
  if (total_length() < min_length) {
    fail("max_length " + std::to_string(total_length()) + " is below min_length " +
         std::to_string(min_length));
  }
  if (no_repeat_ngram_size < 0) fail("no_repeat_ngram_size must be >= 0");
  if (!(sampling.repetition_penalty > 0)) fail("repetition_penalty must be > 0");
  if (num_beams > 1 && sampling.temperature > 0) fail("beam sampling is not supported");
  const auto check_id = [&](int64_t id, const char* what) {
    if (id < 0 || id >= vocab)
      fail(std::string(what) + " " + std::to_string(id) + " is outside the vocabulary of " +
           std::to_string(vocab));
  };
  for (int64_t id : eos_ids) check_id(id, "eos_token_id");
  if (forced_bos_token_id >= 0) check_id(forced_bos_token_id, "forced_bos_token_id");
  if (decoder_start_token_id >= 0) check_id(decoder_start_token_id, "decoder_start_token_id");
  if (forced_eos_token_id >= 0) check_id(forced_eos_token_id, "forced_eos_token_id");
  for (const auto& words : bad_words_ids) {
    if (words.empty()) fail("bad_words_ids has an empty sequence");
    for (int64_t id : words) check_id(id, "bad_words_ids entry");
  }
}

void process_scores(std::vector<float>& scores, const std::vector<int64_t>& ids,
                    const Seq2SeqConfig& c, int64_t max_length) {
  const auto vocab = static_cast<int64_t>(scores.size());
  const auto len = static_cast<int64_t>(ids.size());
  const float penalty = c.sampling.repetition_penalty;
  if (penalty != 1.0f) {
    std::vector<bool> seen(scores.size(), false);
    for (int64_t id : ids)
      if (id >= 0 && id < vocab) seen[static_cast<size_t>(id)] = true;
    for (size_t i = 0; i < scores.size(); ++i)
      if (seen[i]) scores[i] = scores[i] < 0 ? scores[i] * penalty : scores[i] / penalty;
  }
  const auto ban = [&](int64_t id) {
    if (id >= 0 && id < vocab) scores[static_cast<size_t>(id)] = kNegInf;
  };
  const int64_t n = c.no_repeat_ngram_size;
  if (n > 0 && len + 1 >= n) {
    // Every earlier n-gram whose first n - 1 ids are the sequence's last n - 1 bans its last id.
    for (int64_t s = 0; s + n <= len; ++s) {
      if (std::equal(ids.begin() + s, ids.begin() + s + n - 1, ids.end() - (n - 1)))
        ban(ids[static_cast<size_t>(s + n - 1)]);
    }
  }
  for (const auto& words : c.bad_words_ids) {
    if (words.size() == 1 && is_eos(words[0], c.eos_ids)) continue;  // as transformers skips
    const auto prefix = static_cast<int64_t>(words.size()) - 1;
    if (prefix <= len && std::equal(words.begin(), words.end() - 1, ids.end() - prefix))
      ban(words.back());
  }
  if (len < c.min_length)
    for (int64_t id : c.eos_ids) ban(id);
  const auto force = [&](int64_t id) {
    std::fill(scores.begin(), scores.end(), kNegInf);
    scores[static_cast<size_t>(id)] = 0.0f;
  };
  if (c.forced_bos_token_id >= 0 && len == 1) force(c.forced_bos_token_id);
  if (c.forced_eos_token_id >= 0 && len == max_length - 1) force(c.forced_eos_token_id);
}

std::vector<std::vector<Seq2SeqOutput>> generate_seq2seq(
    const models::Seq2SeqLM& model, const std::vector<std::vector<int64_t>>& inputs,
    const Seq2SeqConfig& config) {
  config.validate(model.vocab_size());
  const Batch batch = pad_inputs(model, inputs, config.pad_token_id);
  return config.num_beams == 1 ? decode_one(model, batch, config)
                               : beam_search(model, batch, config);
}

}  // namespace ember::generation
