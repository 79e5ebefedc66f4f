#include "ember/generation/seq2seq_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <limits>
#include <span>

#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/tokenizers/spiece_conversion.hpp"

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

// fairseq's language codes, in the order their tokenizers number them: M2M100Tokenizer's
// "m2m100" and "wmt21" sets, MBartTokenizer's (mBART-cc25).
constexpr std::string_view kM2M100Codes[] = {
    "af", "am", "ar", "ast", "az", "ba", "be", "bg", "bn", "br",  "bs", "ca", "ceb", "cs", "cy",
    "da", "de", "el", "en",  "es", "et", "fa", "ff", "fi", "fr",  "fy", "ga", "gd",  "gl", "gu",
    "ha", "he", "hi", "hr",  "ht", "hu", "hy", "id", "ig", "ilo", "is", "it", "ja",  "jv", "ka",
    "kk", "km", "kn", "ko",  "lb", "lg", "ln", "lo", "lt", "lv",  "mg", "mk", "ml",  "mn", "mr",
    "ms", "my", "ne", "nl",  "no", "ns", "oc", "or", "pa", "pl",  "ps", "pt", "ro",  "ru", "sd",
    "si", "sk", "sl", "so",  "sq", "sr", "ss", "su", "sv", "sw",  "ta", "th", "tl",  "tn", "tr",
    "uk", "ur", "uz", "vi",  "wo", "xh", "yi", "yo", "zh", "zu"};
constexpr std::string_view kWmt21Codes[] = {"en", "ha", "is", "ja", "cs", "ru", "zh", "de"};
constexpr std::string_view kMBartCodes[] = {
    "ar_AR", "cs_CZ", "de_DE", "en_XX", "es_XX", "et_EE", "fi_FI", "fr_XX", "gu_IN",
    "hi_IN", "it_IT", "ja_XX", "kk_KZ", "ko_KR", "lt_LT", "lv_LV", "my_MM", "ne_NP",
    "nl_XX", "ro_RO", "ru_RU", "si_LK", "tr_TR", "vi_VN", "zh_CN"};

// Tokens decode skips: the specials of the fairseq and Marian vocabularies and language codes.
bool is_special(std::string_view piece) {
  for (std::string_view s : {"<s>", "</s>", "<pad>", "<unk>", "<mask>"})
    if (piece == s) return true;
  return looks_like_language_code(piece);
}

// A vocab.json of pieces to ids below its size, and the pieces by id.
struct PieceVocab {
  std::unordered_map<std::string, int64_t> ids;
  std::vector<std::string> pieces;
};

PieceVocab read_vocab(const std::filesystem::path& path) {
  const std::string name = path.string();
  if (!std::filesystem::exists(path)) throw Error(name + ": not found");
  const nlohmann::json vocab = read_json_file(path);
  if (!vocab.is_object() || vocab.empty())
    throw Error(name + ": expected an object of pieces to ids");
  PieceVocab v;
  v.pieces.resize(vocab.size());
  for (const auto& [piece, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= static_cast<int64_t>(vocab.size())) {
      std::string message = name + ": the id of '";
      message += piece;
      message += "' is not an integer below " + std::to_string(vocab.size());
      throw Error(message);
    }
    v.ids[piece] = id.get<int64_t>();
    v.pieces[id.get<size_t>()] = piece;
  }
  return v;
}

int64_t required_id(const PieceVocab& v, const char* piece, const std::filesystem::path& path) {
  const auto it = v.ids.find(piece);
  if (it == v.ids.end()) throw Error(path.string() + ": no '" + piece + "'");
  return it->second;
}

// tokenizer_config.json, or an empty object without one.
nlohmann::json tokenizer_config(const std::filesystem::path& folder) {
  const std::filesystem::path path = folder / "tokenizer_config.json";
  if (!std::filesystem::exists(path)) return nlohmann::json::object();
  nlohmann::json c = read_json_file(path);
  if (!c.is_object()) throw Error(path.string() + ": expected an object");
  return c;
}

// The tokenizer class transformers' AutoTokenizer picks: tokenizer_config.json's or
// config.json's tokenizer_class (without "Fast"), else the one of config.json's model_type.
std::string tokenizer_class(const std::filesystem::path& folder, const nlohmann::json& config) {
  std::string name;
  if (config.contains("tokenizer_class") && config["tokenizer_class"].is_string()) {
    name = config["tokenizer_class"].get<std::string>();
  } else if (std::filesystem::exists(folder / "config.json")) {
    const nlohmann::json model = read_json_file(folder / "config.json");
    if (model.is_object() && model.contains("tokenizer_class") &&
        model["tokenizer_class"].is_string()) {
      name = model["tokenizer_class"].get<std::string>();
    } else if (model.is_object() && model.contains("model_type") &&
               model["model_type"].is_string()) {
      const std::string type = model["model_type"].get<std::string>();
      if (type == "mbart") name = "MBartTokenizer";
      if (type == "t5" || type == "mt5") name = "T5Tokenizer";
      if (type == "pegasus") name = "PegasusTokenizer";
      if (type == "m2m_100")
        name = std::filesystem::exists(folder / "vocab.json") ? "M2M100Tokenizer" : "NllbTokenizer";
    }
  }
  if (name.size() > 4 && name.substr(name.size() - 4) == "Fast") name.resize(name.size() - 4);
  if (name == "MT5Tokenizer") name = "T5Tokenizer";  // transformers' alias
  return name;
}

// M2M100Tokenizer's codes: tokenizer_config.json's language_codes set ("m2m100" by default).
std::span<const std::string_view> m2m100_codes(const nlohmann::json& config,
                                               const std::filesystem::path& folder) {
  const std::string set = config.contains("language_codes") && config["language_codes"].is_string()
                              ? config["language_codes"].get<std::string>()
                              : "m2m100";
  if (set == "m2m100") return kM2M100Codes;
  if (set == "wmt21") return kWmt21Codes;
  throw Error((folder / "tokenizer_config.json").string() + ": language_codes '" + set +
              "' is neither m2m100 nor wmt21");
}

// tokenizer_config.json's `key` (`fallback` when absent), an integer in [0, 100000].
uint32_t config_count(const nlohmann::json& config, const std::filesystem::path& folder,
                      const char* key, uint32_t fallback) {
  if (!config.contains(key)) return fallback;
  const nlohmann::json& v = config[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100000) {
    throw Error((folder / "tokenizer_config.json").string() + ": " + key +
                " is not an integer in [0, 100000]");
  }
  return static_cast<uint32_t>(v.get<int64_t>());
}

}  // namespace

Seq2SeqTokenizer Seq2SeqTokenizer::load(const std::filesystem::path& folder) {
  const nlohmann::json config = tokenizer_config(folder);
  const std::string cls = tokenizer_class(folder, config);
  if (std::filesystem::exists(folder / "tokenizer.json")) {
    Seq2SeqTokenizer t(tokenizers::Tokenizer::load((folder / "tokenizer.json").string()));
    t.codes_follow_text_ = cls == "MBartTokenizer";
    return t;
  }
  const auto require = [&](const char* name, const char* form) {
    if (!std::filesystem::exists(folder / name)) {
      throw Error(folder.string() + ": no tokenizer.json, and no " + name + " for " + form +
                  " tokenizer");
    }
  };
  if (std::filesystem::exists(folder / "source.spm")) {
    for (const char* name : {"target.spm", "vocab.json"}) require(name, "Marian's");
    const bool separate = config.value("separate_vocabs", false);
    if (separate) require("target_vocab.json", "Marian's (separate_vocabs)");
    Seq2SeqTokenizer t(tokenizers::Tokenizer::from_sentencepiece((folder / "source.spm").string()));
    t.target_ = tokenizers::Tokenizer::from_sentencepiece((folder / "target.spm").string());
    t.mapped_ = t.marian_ = true;
    PieceVocab source = read_vocab(folder / "vocab.json");
    t.eos_ = required_id(source, "</s>", folder / "vocab.json");
    t.unk_ = required_id(source, "<unk>", folder / "vocab.json");
    required_id(source, "<pad>", folder / "vocab.json");
    t.vocab_ = std::move(source.ids);
    t.pieces_ =
        separate ? read_vocab(folder / "target_vocab.json").pieces : std::move(source.pieces);
    return t;
  }
  if (std::filesystem::exists(folder / "spiece.model")) {
    const std::string model = (folder / "spiece.model").string();
    if (cls == "T5Tokenizer")
      return Seq2SeqTokenizer(tokenizers::t5_tokenizer_from_spiece(
          model, config_count(config, folder, "extra_ids", 100)));
    if (cls == "PegasusTokenizer")
      return Seq2SeqTokenizer(tokenizers::pegasus_tokenizer_from_spiece(
          model, config_count(config, folder, "offset", 103)));
    throw Error(folder.string() +
                ": no tokenizer.json, and spiece.model alone is read only as T5's (T5Tokenizer) "
                "or Pegasus's (PegasusTokenizer); " +
                (cls.empty() ? std::string("the folder names no tokenizer class")
                             : "the folder's tokenizer is " + cls));
  }
  if (!std::filesystem::exists(folder / "sentencepiece.bpe.model")) {
    throw Error(folder.string() +
                ": no tokenizer.json, and neither Marian's source.spm, the spiece.model of T5 "
                "or Pegasus nor the sentencepiece.bpe.model of M2M100 or mBART");
  }
  Seq2SeqTokenizer t(
      tokenizers::Tokenizer::from_sentencepiece((folder / "sentencepiece.bpe.model").string()));
  t.mapped_ = true;
  if (cls == "M2M100Tokenizer") {
    require("vocab.json", "M2M100's");
    PieceVocab v = read_vocab(folder / "vocab.json");
    t.eos_ = required_id(v, "</s>", folder / "vocab.json");
    t.unk_ = required_id(v, "<unk>", folder / "vocab.json");
    t.vocab_ = std::move(v.ids);
    t.pieces_ = std::move(v.pieces);
    // Codes take their ids after vocab.json's, ahead of any piece of the same name.
    for (std::string_view code : m2m100_codes(config, folder)) {
      const std::string token = "__" + std::string(code) + "__";
      t.vocab_[token] = static_cast<int64_t>(t.pieces_.size());
      t.pieces_.push_back(token);
    }
    return t;
  }
  if (cls != "MBartTokenizer") {
    throw Error(folder.string() +
                ": no tokenizer.json, and sentencepiece.bpe.model alone is read only as "
                "mBART-cc25's (MBartTokenizer) or, with vocab.json, M2M100's; " +
                (cls.empty() ? std::string("the folder names no tokenizer class")
                             : "the folder's tokenizer is " + cls));
  }
  // fairseq's dictionary: its four specials, then the model's pieces past its own three
  // (<unk> <s> </s>) one id further on, the language codes and <mask>.
  t.pieces_ = {"<s>", "<pad>", "</s>", "<unk>"};
  const size_t n = t.source_.vocab_size();
  for (size_t i = 3; i < n; ++i)
    t.pieces_.push_back(t.source_.id_to_token(static_cast<uint32_t>(i)).value_or(""));
  for (std::string_view code : kMBartCodes) t.pieces_.emplace_back(code);
  t.pieces_.emplace_back("<mask>");
  for (size_t i = 0; i < t.pieces_.size(); ++i)
    t.vocab_.emplace(t.pieces_[i], static_cast<int64_t>(i));
  t.eos_ = 2;
  t.unk_ = 3;
  t.codes_follow_text_ = true;
  return t;
}

std::vector<int64_t> Seq2SeqTokenizer::encode(std::string_view text,
                                              bool add_special_tokens) const {
  if (!mapped_) {
    const std::vector<uint32_t> ids = source_.encode_ids(text, add_special_tokens);
    return {ids.begin(), ids.end()};
  }
  std::vector<int64_t> out;
  const auto id_of = [&](const std::string& piece) {
    const auto it = vocab_.find(piece);
    return it == vocab_.end() ? unk_ : it->second;
  };
  // A leading >>lang<< is one token, as MarianTokenizer splits it off before sentencepiece.
  if (marian_ && text.substr(0, 2) == ">>") {
    const size_t end = text.find("<<");
    if (end != std::string_view::npos) {
      out.push_back(id_of(std::string(text.substr(0, end + 2))));
      text.remove_prefix(end + 2);
    }
  }
  for (const std::string& piece : source_.encode(text, false).tokens) out.push_back(id_of(piece));
  if (add_special_tokens) out.push_back(eos_);
  return out;
}

std::string Seq2SeqTokenizer::decode(const std::vector<int64_t>& ids) const {
  if (!mapped_) {
    std::vector<uint32_t> u;
    for (int64_t id : ids)
      if (id >= 0 && id <= std::numeric_limits<uint32_t>::max())
        u.push_back(static_cast<uint32_t>(id));
    return source_.decode(u, true);
  }
  std::vector<std::string> pieces;
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(pieces_.size())) continue;
    const std::string& piece = pieces_[static_cast<size_t>(id)];
    if (!piece.empty() && !is_special(piece)) pieces.push_back(piece);
  }
  return (target_ ? *target_ : source_).decode_tokens(std::move(pieces));
}

std::optional<int64_t> Seq2SeqTokenizer::token_id(std::string_view token) const {
  if (!mapped_) {
    const std::optional<uint32_t> id = source_.token_to_id(token);
    return id ? std::optional<int64_t>(*id) : std::nullopt;
  }
  const auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? std::nullopt : std::optional<int64_t>(it->second);
}

std::vector<std::string> Seq2SeqTokenizer::tokens() const {
  if (mapped_) {
    std::vector<std::string> out;
    for (const auto& [piece, id] : vocab_) {
      if (static_cast<size_t>(id) >= out.size()) out.resize(static_cast<size_t>(id) + 1);
      out[static_cast<size_t>(id)] = piece;
    }
    return out;
  }
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
  if (model_type != "m2m_100" && model_type != "mbart" && model_type != "marian") {
    throw Error("model_type '" + std::string(model_type) +
                "' has no language codes (m2m_100, mbart and marian have)");
  }
  const std::optional<int64_t> eos = tokenizer.token_id("</s>");
  if (!eos) throw Error("translate: the tokenizer has no '</s>' to end the source with");
  LanguagePair pair;
  pair.suffix.push_back(*eos);
  if (model_type == "mbart" && tokenizer.codes_follow_text()) {
    pair.suffix.push_back(language_code_id(tokenizer, src, "--src"));
    pair.decoder_start = language_code_id(tokenizer, tgt, "--tgt");
  } else if (model_type != "marian") {
    pair.prefix.push_back(language_code_id(tokenizer, src, "--src"));
    pair.forced_bos = language_code_id(tokenizer, tgt, "--tgt");
  } else {
    const std::vector<std::string> tokens = tokenizer.tokens();
    const bool multilingual = std::any_of(tokens.begin(), tokens.end(), [](const std::string& t) {
      return t.substr(0, 2) == ">>" && looks_like_language_code(t);
    });
    if (multilingual) pair.prefix.push_back(language_code_id(tokenizer, tgt, "--tgt"));
  }
  return pair;
}

}  // namespace ember::generation
