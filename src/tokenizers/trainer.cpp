// The trainer front: request checks shared by every trainer, and the WordLevel trainer (small
// enough not to need a file of its own).
#include <algorithm>
#include <unordered_set>

#include "ember/tokenizers/tokenizer.hpp"
#include "internal.hpp"
#include "trainer_internal.hpp"

namespace ember::tokenizers {

using detail::fail;

const std::vector<std::string>& trainer_special_tokens(const Trainer& trainer) {
  return std::visit(
      [](const auto& t) -> const std::vector<std::string>& {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, WordPieceTrainer>)
          return t.bpe.special_tokens;
        else
          return t.special_tokens;
      },
      trainer);
}

std::string train_wordlevel_json(const WordLevelTrainer& t, std::vector<WordCount> words,
                                 const nlohmann::ordered_json& base) {
  if (t.vocab_size < t.special_tokens.size())
    fail("vocab_size " + std::to_string(t.vocab_size) + " is smaller than the " +
         std::to_string(t.special_tokens.size()) + " special tokens");
  // Most frequent first, equal counts in byte order (the reference's own tie rule).
  std::sort(words.begin(), words.end(), [](const WordCount& x, const WordCount& y) {
    return x.count != y.count ? x.count > y.count : x.word < y.word;
  });
  std::vector<std::string> entries = t.special_tokens;
  for (auto& w : words) {
    if (entries.size() >= t.vocab_size) break;
    if (w.count >= t.min_frequency) entries.push_back(std::move(w.word));
  }
  // A word equal to a special token takes the later id, as the reference's map collect does:
  // the earlier id is then left unused.
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t i = 0; i < entries.size(); ++i) vocab[entries[i]] = i;
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  m["type"] = "WordLevel";
  m["vocab"] = std::move(vocab);
  auto unk = base.find("unk_token");
  m["unk_token"] = unk == base.end() ? nlohmann::ordered_json("<unk>") : *unk;
  return m.dump();
}

std::string train_model_json(const Trainer& trainer, std::vector<WordCount> words,
                             const std::string& base_model_json, const TrainOptions& options) {
  std::unordered_set<std::string> seen;
  for (const auto& s : trainer_special_tokens(trainer)) {
    if (s.empty()) fail("special token: empty string");
    if (!seen.insert(s).second) fail("special token '" + s + "' is given twice");
  }
  if (words.empty()) fail("training corpus is empty: no words to learn from");
  const auto base = nlohmann::ordered_json::parse(base_model_json);
  if (const auto* t = std::get_if<BpeTrainer>(&trainer))
    return train_bpe_json(*t, std::move(words), base, options);
  if (const auto* t = std::get_if<WordPieceTrainer>(&trainer))
    return train_wordpiece_json(*t, std::move(words), base, options);
  if (const auto* t = std::get_if<UnigramTrainer>(&trainer))
    return train_unigram_json(*t, std::move(words), options);
  return train_wordlevel_json(std::get<WordLevelTrainer>(trainer), std::move(words), base);
}

}  // namespace ember::tokenizers
