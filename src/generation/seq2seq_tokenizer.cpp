#include "ember/generation/seq2seq_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <limits>

#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"

namespace ember::generation {
namespace {

// NLLB's "eng_Latn", mBART-50's "en_XX", M2M100's "__en__", Marian's ">>fra<<".
bool looks_like_language_code(std::string_view t) {
  const auto lower = [](char c) { return std::islower(static_cast<unsigned char>(c)) != 0; };
  const auto upper = [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; };
  const auto all = [](std::string_view s, const auto& pred) {
    return !s.empty() && std::all_of(s.begin(), s.end(), pred);
  };
  // Two or three letters, as fairseq's codes are (a word piece like "__init__" is not one).
  if ((t.size() == 6 || t.size() == 7) && t.substr(0, 2) == "__" && t.substr(t.size() - 2) == "__")
    return all(t.substr(2, t.size() - 4), lower);
  if (t.size() >= 6 && t.substr(0, 2) == ">>" && t.substr(t.size() - 2) == "<<")
    return all(t.substr(2, t.size() - 4), [&](char c) { return lower(c) || c == '_'; });
  const size_t bar = t.find('_');
  if (bar == std::string_view::npos || bar < 2 || bar > 3) return false;
  const std::string_view tail = t.substr(bar + 1);
  return all(t.substr(0, bar), lower) &&
         ((tail.size() == 4 && upper(tail[0]) && all(tail.substr(1), lower)) ||
          (tail.size() == 2 && all(tail, upper)));
}

}  // namespace

Seq2SeqTokenizer Seq2SeqTokenizer::load(const std::filesystem::path& folder) {
  if (std::filesystem::exists(folder / "tokenizer.json"))
    return Seq2SeqTokenizer(tokenizers::Tokenizer::load((folder / "tokenizer.json").string()));
  for (const char* name : {"source.spm", "target.spm", "vocab.json"}) {
    if (!std::filesystem::exists(folder / name)) {
      throw Error(folder.string() + ": no tokenizer.json, and no " + name +
                  " for Marian's tokenizer");
    }
  }
  Seq2SeqTokenizer t(tokenizers::Tokenizer::from_sentencepiece((folder / "source.spm").string()));
  t.target_ = tokenizers::Tokenizer::from_sentencepiece((folder / "target.spm").string());
  const std::string vocab_file = (folder / "vocab.json").string();
  const nlohmann::json vocab = read_json_file(folder / "vocab.json");
  if (!vocab.is_object() || vocab.empty())
    throw Error(vocab_file + ": expected an object of pieces to ids");
  for (const auto& [piece, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= static_cast<int64_t>(vocab.size())) {
      std::string message = vocab_file + ": the id of '";
      message += piece;
      message += "' is not an integer below " + std::to_string(vocab.size());
      throw Error(message);
    }
    t.vocab_[piece] = id.get<int64_t>();
  }
  t.pieces_.resize(vocab.size());
  for (const auto& [piece, id] : t.vocab_) t.pieces_[static_cast<size_t>(id)] = piece;
  const auto special = [&](const char* piece) {
    const auto it = t.vocab_.find(piece);
    if (it == t.vocab_.end()) throw Error(vocab_file + ": no '" + piece + "'");
    return it->second;
  };
  t.eos_ = special("</s>");
  t.unk_ = special("<unk>");
  t.pad_ = special("<pad>");
  return t;
}

std::vector<int64_t> Seq2SeqTokenizer::encode(std::string_view text,
                                              bool add_special_tokens) const {
  if (!target_) {
    const std::vector<uint32_t> ids = source_.encode_ids(text, add_special_tokens);
    return {ids.begin(), ids.end()};
  }
  std::vector<int64_t> out;
  // A leading >>lang<< is one token, as MarianTokenizer splits it off before sentencepiece.
  if (text.substr(0, 2) == ">>") {
    const size_t end = text.find("<<");
    if (end != std::string_view::npos) {
      const auto it = vocab_.find(std::string(text.substr(0, end + 2)));
      out.push_back(it == vocab_.end() ? unk_ : it->second);
      text.remove_prefix(end + 2);
    }
  }
  for (const std::string& piece : source_.encode(text, false).tokens) {
    const auto it = vocab_.find(piece);
    out.push_back(it == vocab_.end() ? unk_ : it->second);
  }
  if (add_special_tokens) out.push_back(eos_);
  return out;
}

std::string Seq2SeqTokenizer::decode(const std::vector<int64_t>& ids) const {
  if (!target_) {
    std::vector<uint32_t> u;
    for (int64_t id : ids)
      if (id >= 0 && id <= std::numeric_limits<uint32_t>::max())
        u.push_back(static_cast<uint32_t>(id));
    return source_.decode(u, true);
  }
  std::vector<std::string> pieces;
  for (int64_t id : ids) {
    if (id == eos_ || id == pad_ || id == unk_) continue;
    if (id < 0 || id >= static_cast<int64_t>(pieces_.size())) continue;
    const std::string& piece = pieces_[static_cast<size_t>(id)];
    if (!looks_like_language_code(piece)) pieces.push_back(piece);
  }
  return target_->decode_tokens(std::move(pieces));
}

std::optional<int64_t> Seq2SeqTokenizer::token_id(std::string_view token) const {
  if (!target_) {
    const std::optional<uint32_t> id = source_.token_to_id(token);
    return id ? std::optional<int64_t>(*id) : std::nullopt;
  }
  const auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? std::nullopt : std::optional<int64_t>(it->second);
}

std::vector<std::string> Seq2SeqTokenizer::tokens() const {
  if (target_) return pieces_;
  std::vector<std::string> out(source_.vocab_size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = source_.id_to_token(static_cast<uint32_t>(i)).value_or("");
  return out;
}

int64_t language_code_id(const Seq2SeqTokenizer& tokenizer, std::string_view lang,
                         std::string_view what) {
  const std::string name(lang);
  for (const std::string& candidate : {name, "__" + name + "__", ">>" + name + "<<"}) {
    if (!looks_like_language_code(candidate)) continue;
    if (const std::optional<int64_t> id = tokenizer.token_id(candidate)) return *id;
  }
  std::vector<std::string> known;
  for (const std::string& t : tokenizer.tokens())
    if (looks_like_language_code(t)) known.push_back(t);
  std::string list;
  for (size_t i = 0; i < std::min<size_t>(known.size(), 8); ++i)
    list += (i == 0 ? "" : ", ") + known[i];
  if (known.size() > 8) list += ", ... (" + std::to_string(known.size()) + " in all)";
  throw Error(std::string(what) + ": unknown language code '" + name + "' (the vocabulary has " +
              (known.empty() ? std::string("no language codes") : list) + ")");
}

LanguagePair language_pair(const Seq2SeqTokenizer& tokenizer, std::string_view model_type,
                           std::string_view src, std::string_view tgt) {
  LanguagePair pair;
  if (model_type == "m2m_100" || model_type == "mbart") {
    pair.prefix.push_back(language_code_id(tokenizer, src, "--src"));
    pair.forced_bos = language_code_id(tokenizer, tgt, "--tgt");
    return pair;
  }
  if (model_type == "marian") {
    const std::vector<std::string> tokens = tokenizer.tokens();
    const bool multilingual = std::any_of(tokens.begin(), tokens.end(), [](const std::string& t) {
      return t.substr(0, 2) == ">>" && looks_like_language_code(t);
    });
    if (multilingual) pair.prefix.push_back(language_code_id(tokenizer, tgt, "--tgt"));
    return pair;
  }
  throw Error("model_type '" + std::string(model_type) +
              "' has no language codes (m2m_100, mbart and marian have)");
}

}  // namespace ember::generation
