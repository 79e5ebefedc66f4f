// Tokenizer::train: counts words as the reference's Tokenizer::train feeds them to its trainers
// (each line through the normalizer and the pre-tokenizer, added tokens not extracted), then
// rebuilds the tokenizer from its own tokenizer.json with the trained model.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "ember/base/thread_pool.hpp"
#include "json_util.hpp"
#include "tokenizer_impl.hpp"
#include "trainer_internal.hpp"

namespace ember::tokenizers {
namespace {

using detail::fail;
using detail::NormalizedString;
using OJson = nlohmann::ordered_json;

constexpr size_t kReadBlock = size_t{4} << 20;
constexpr size_t kMaxLineBytes = size_t{256} << 20;  // one line is held whole: bound it

// The words of one sequence, as the reference's get_splits gives them: a pre-tokenizer drops
// empty pieces; without one the whole normalized text is the one word, even when empty.
template <class F>
void for_each_word(const TokenizerImpl& impl, std::string_view text, F&& fn) {
  if (impl.has_text_path()) {
    thread_local std::string normalized;
    std::string_view piece = text;
    if (impl.normalizer && impl.normalizer->normalize_text(text, normalized)) piece = normalized;
    if (!impl.pre_tokenizer) return fn(piece);
    auto emit = [&](std::string_view word) {
      if (!word.empty()) fn(word);
    };
    impl.pre_tokenizer->split_text(piece, emit);
    return;
  }
  NormalizedString ns = NormalizedString::from_original(text);
  if (impl.normalizer) impl.normalizer->normalize(ns);
  if (!impl.pre_tokenizer) return fn(std::string_view(ns.normalized));
  thread_local std::vector<NormalizedString> pieces;
  pieces.clear();
  impl.pre_tokenizer->split(std::move(ns), pieces);
  for (const auto& p : pieces)
    if (!p.empty()) fn(std::string_view(p.normalized));
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using CountMap = std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>>;

// Counts words of batches of lines on the thread pool: one map per pool slot, merged at the end
// (sums, so the result does not depend on the thread count or on scheduling).
class WordCounter {
 public:
  WordCounter(const TokenizerImpl& impl, const TrainOptions& options)
      : impl_(impl), options_(options) {
    slots_.resize(static_cast<size_t>(std::max(1, default_thread_pool().num_threads())));
  }

  // `where` names the batch's source for errors; `first_line` is the 1-based number of lines[0].
  void add(const std::vector<std::string_view>& lines, const std::string& where,
           uint64_t first_line) {
    const int64_t n = static_cast<int64_t>(lines.size());
    const int64_t slots = static_cast<int64_t>(slots_.size());
    for (auto& s : slots_) s.first_bad = INT64_MAX;
    parallel_for(0, slots, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t s = lo; s < hi; ++s) {
        Slot& slot = slots_[static_cast<size_t>(s)];
        for (int64_t i = n * s / slots; i < n * (s + 1) / slots; ++i) {
          const std::string_view line = lines[static_cast<size_t>(i)];
          if (!is_valid_utf8(line)) {
            slot.first_bad = std::min(slot.first_bad, i);
            ++slot.skipped;
            continue;
          }
          for_each_word(impl_, line, [&](std::string_view w) {
            auto it = slot.counts.find(w);
            if (it == slot.counts.end())
              slot.counts.emplace(std::string(w), 1);
            else
              ++it->second;
          });
        }
      }
    });
    int64_t bad = INT64_MAX;
    for (const auto& s : slots_) bad = std::min(bad, s.first_bad);
    if (bad != INT64_MAX && !options_.skip_invalid_utf8)
      fail(where + ": line " + std::to_string(first_line + static_cast<uint64_t>(bad)) +
           " is not valid UTF-8 (skip_invalid_utf8, --skip-invalid-utf8 in the CLI, skips such "
           "lines)");
    stats_.lines += lines.size();
  }

  std::vector<WordCount> finish(TrainStats& stats) {
    CountMap& all = slots_[0].counts;
    for (size_t s = 1; s < slots_.size(); ++s) {
      for (auto& [w, c] : slots_[s].counts) all[w] += c;
      CountMap().swap(slots_[s].counts);
    }
    std::vector<WordCount> words;
    words.reserve(all.size());
    for (auto& [w, c] : all) words.push_back({w, c});
    CountMap().swap(all);
    stats = stats_;
    for (const auto& s : slots_) stats.skipped_lines += s.skipped;
    stats.distinct_words = words.size();
    return words;
  }

 private:
  struct Slot {
    CountMap counts;
    int64_t first_bad = INT64_MAX;
    uint64_t skipped = 0;
  };
  const TokenizerImpl& impl_;
  const TrainOptions& options_;
  std::vector<Slot> slots_;
  TrainStats stats_;
};

// Lines of `text` with their endings; the tail after the last '\n' is left in `rest` unless
// `final`.
void split_lines(std::string_view text, bool final, std::vector<std::string_view>& lines,
                 size_t& consumed) {
  lines.clear();
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string_view::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl + 1 - start));
  if (final && start < text.size()) {
    lines.push_back(text.substr(start));
    start = text.size();
  }
  consumed = start;
}

const char* model_type_for(const Trainer& trainer) {
  if (std::holds_alternative<BpeTrainer>(trainer)) return "BPE";
  if (std::holds_alternative<WordPieceTrainer>(trainer)) return "WordPiece";
  if (std::holds_alternative<UnigramTrainer>(trainer)) return "Unigram";
  return "WordLevel";
}

OJson to_ordered(const nlohmann::json& j) {
  return OJson::parse(j.dump());
}

}  // namespace

TrainStats Tokenizer::train_from_iterator(const Trainer& trainer,
                                          const std::function<bool(std::string&)>& next,
                                          const TrainOptions& options) {
  return train(trainer, {}, options, &next);
}

TrainStats Tokenizer::train(const Trainer& trainer, const std::vector<std::string>& files,
                            const TrainOptions& options) {
  return train(trainer, files, options, nullptr);
}

TrainStats Tokenizer::train(const Trainer& trainer, const std::vector<std::string>& files,
                            const TrainOptions& options,
                            const std::function<bool(std::string&)>* next) {
  TokenizerImpl& impl = *impl_;
  if (!impl.spec || !impl.model_options)
    fail("train: the tokenizer must come from tokenizer.json (its template for training)");
  const std::string type = detail::get_string(*impl.model_options, "type", "model", "");
  if (type != model_type_for(trainer))
    fail(std::string("train: a ") + model_type_for(trainer) + " trainer cannot train the " +
         (type.empty() ? "untyped" : type) + " model of this tokenizer");
  for (const auto& t : trainer_special_tokens(trainer))
    if (!is_valid_utf8(t)) fail("special token: invalid UTF-8");

  WordCounter counter(impl, options);
  std::vector<std::string_view> lines;
  if (next) {
    // Batches of sequences, so that counting runs in parallel while memory stays bounded.
    std::vector<std::string> batch;
    uint64_t first = 1;
    std::string seq;
    bool more = true;
    while (more) {
      batch.clear();
      size_t bytes = 0;
      while (bytes < kReadBlock && (more = (*next)(seq))) {
        bytes += seq.size();
        batch.push_back(std::move(seq));
        seq.clear();
      }
      lines.assign(batch.begin(), batch.end());
      counter.add(lines, "sequence", first);
      first += batch.size();
    }
  }
  uint64_t total_bytes = 0, done_bytes = 0;
  std::vector<std::ifstream> streams;
  for (const auto& path : files) {
    // Checked before opening: a FIFO would block the open, a directory reads as nothing.
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) fail("train: cannot open '" + path + "'");
    if (!std::filesystem::is_regular_file(status))
      fail("train: '" + path + "' is not a regular file");
    total_bytes += std::filesystem::file_size(path, ec);
  }
  std::string buffer;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("train: cannot open '" + path + "'");
    uint64_t line_no = 1;
    buffer.clear();
    bool eof = false;
    while (!eof) {
      const size_t old = buffer.size();
      buffer.resize(old + kReadBlock);
      in.read(buffer.data() + old, static_cast<std::streamsize>(kReadBlock));
      const size_t got = static_cast<size_t>(in.gcount());
      buffer.resize(old + got);
      if (in.bad()) fail("train: error reading '" + path + "'");
      eof = got < kReadBlock;
      done_bytes += got;
      size_t consumed = 0;
      split_lines(buffer, eof, lines, consumed);
      if (consumed == 0 && buffer.size() > kMaxLineBytes)
        fail("train: '" + path + "' line " + std::to_string(line_no) + " is longer than " +
             std::to_string(kMaxLineBytes) + " bytes");
      counter.add(lines, "'" + path + "'", line_no);
      line_no += lines.size();
      buffer.erase(0, consumed);
      if (options.progress) options.progress("count", done_bytes, total_bytes);
    }
  }
  TrainStats stats;
  std::vector<WordCount> words = counter.finish(stats);
  std::string model =
      train_model_json(trainer, std::move(words), impl.model_options->dump(), options);

  // The reference adds the special tokens after training: ids from the new vocabulary, else
  // appended after it; tokens already added keep their entry.
  nlohmann::json full = *impl.spec;
  full["model"] = nlohmann::json::parse(model);
  nlohmann::json& added = full["added_tokens"];
  if (!added.is_array()) added = nlohmann::json::array();
  auto trained = TokenizerImpl::from_json_value(full);
  uint32_t next_id = static_cast<uint32_t>(trained->model->vocab_size());
  for (const auto& t : added) next_id = std::max(next_id, t.at("id").get<uint32_t>() + 1);
  for (const auto& content : trainer_special_tokens(trainer)) {
    bool present = false;
    for (const auto& t : added) present = present || t.at("content") == content;
    if (present) continue;
    const auto id = trained->model->token_to_id(content);
    added.push_back({{"id", id ? *id : next_id++},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  trained = TokenizerImpl::from_json_value(full);
  trained->trained_model = std::move(model);
  impl_ = std::move(trained);
  return stats;
}

std::string Tokenizer::to_json(bool pretty) const {
  const TokenizerImpl& impl = *impl_;
  if (!impl.spec || impl.trained_model.empty())
    fail("to_json: only a trained tokenizer can be written (a loaded one is its file already)");
  // The reference's key order, so that the file reads like one it writes.
  OJson out = OJson::object();
  out["version"] = "1.0";
  for (const char* key : {"truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                          "post_processor", "decoder"}) {
    auto it = impl.spec->find(key);
    out[key] = it == impl.spec->end() ? OJson(nullptr) : to_ordered(*it);
  }
  if (out["added_tokens"].is_null()) out["added_tokens"] = OJson::array();
  out["model"] = OJson::parse(impl.trained_model);
  return out.dump(pretty ? 2 : -1);
}

void Tokenizer::save(const std::string& path, bool pretty) const {
  const std::string text = to_json(pretty);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) fail("save: cannot write '" + path + "'");
}

}  // namespace ember::tokenizers
