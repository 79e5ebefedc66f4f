// Legacy formats: BERT vocab.txt, GPT-2 vocab.json + merges.txt and SentencePiece .model files,
// each mapped onto the same pipeline the reference's converters build.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "ember/base/utf8.hpp"
#include "ember/tokenizers/spiece_conversion.hpp"
#include "json_util.hpp"
#include "spm.hpp"
#include "tokenizer_impl.hpp"

namespace ember::tokenizers {

using namespace detail;

namespace {

std::vector<std::string> read_lines(const std::string& data) {
  std::vector<std::string> lines;
  size_t p = 0;
  while (p < data.size()) {
    size_t q = data.find('\n', p);
    if (q == std::string::npos) q = data.size();
    lines.push_back(data.substr(p, q - p));
    p = q + 1;
  }
  return lines;
}

std::string rtrim(std::string s) {
  while (!s.empty()) {
    size_t k = s.size() - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    size_t kk = k;
    if (!is_whitespace(decode_utf8(s, kk))) break;
    s.resize(k);
  }
  return s;
}

Json component(const char* type) {
  return Json{{"type", type}};
}

}  // namespace

Tokenizer Tokenizer::from_bert_vocab(const std::string& path) {
  auto lines = read_lines(read_file_bounded(path, kMaxVocabFileBytes));
  std::vector<std::string> vocab;
  for (auto& l : lines) {
    if (!is_valid_utf8(l)) fail(path + ": invalid UTF-8");  // before rtrim decodes it
    vocab.push_back(rtrim(l));
  }
  while (!vocab.empty() && vocab.back().empty() && lines.back().empty()) {
    vocab.pop_back();
    lines.pop_back();
  }
  auto impl = std::make_unique<TokenizerImpl>();
  Json norm = component("BertNormalizer");
  impl->normalizer = make_normalizer(norm, "normalizer");
  impl->pre_tokenizer = make_pre_tokenizer(component("BertPreTokenizer"), "pre_tokenizer");
  auto find = [&](const std::string& t) -> std::optional<uint32_t> {
    auto it = std::find(vocab.begin(), vocab.end(), t);
    if (it == vocab.end()) return std::nullopt;
    return static_cast<uint32_t>(it - vocab.begin());
  };
  auto cls = find("[CLS]"), sep = find("[SEP]");
  if (!cls || !sep) fail(path + ": [CLS] or [SEP] missing from the vocabulary");
  Json pp = {{"type", "BertProcessing"}, {"sep", {"[SEP]", *sep}}, {"cls", {"[CLS]", *cls}}};
  impl->post_processor = make_post_processor(pp, "post_processor");
  impl->decoder = make_decoder(component("WordPiece"), "decoder");
  for (const char* special : {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"}) {
    if (auto id = find(special)) {
      AddedToken t;
      t.id = *id;
      t.content = special;
      t.special = true;
      t.normalized = false;
      impl->add_token(t, "added_tokens");
    }
  }
  impl->model = make_wordpiece(std::move(vocab), "[UNK]", "##", 100);
  impl->added.build(impl->normalizer.get());
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_gpt2_files(const std::string& vocab_json, const std::string& merges_txt) {
  return Tokenizer(gpt2_from_vocab(
      parse_json_bounded(read_file_bounded(vocab_json, kMaxVocabFileBytes), vocab_json), vocab_json,
      merges_txt));
}

std::unique_ptr<TokenizerImpl> gpt2_from_vocab(const Json& v, const std::string& vocab_json,
                                               const std::string& merges_txt) {
  if (!v.is_object()) fail(vocab_json + ": expected an object of token -> id");
  std::vector<std::pair<std::string, uint32_t>> vocab;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number_unsigned() || it.value().get<uint64_t>() >= (1u << 24))
      fail(vocab_json + ": id of '" + it.key() + "' out of range");
    vocab.push_back({it.key(), static_cast<uint32_t>(it.value().get<uint64_t>())});
  }
  std::vector<std::pair<std::string, std::string>> merges;
  auto lines = read_lines(read_file_bounded(merges_txt, kMaxVocabFileBytes));
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string l = lines[i];
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.empty() || l.rfind("#version", 0) == 0) continue;
    size_t sp = l.find(' ');
    if (sp == std::string::npos || l.find(' ', sp + 1) != std::string::npos)
      fail(merges_txt + ":" + std::to_string(i + 1) + ": expected \"left right\"");
    merges.push_back({l.substr(0, sp), l.substr(sp + 1)});
  }
  auto impl = std::make_unique<TokenizerImpl>();
  impl->model = make_bpe(std::move(vocab), merges, BpeOptions{});
  impl->pre_tokenizer = make_pre_tokenizer(Json{{"type", "ByteLevel"},
                                                {"add_prefix_space", false},
                                                {"trim_offsets", true},
                                                {"use_regex", true}},
                                           "pre_tokenizer");
  impl->post_processor = make_post_processor(
      Json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}},
      "post_processor");
  impl->decoder = make_decoder(component("ByteLevel"), "decoder");
  return impl;
}

Tokenizer Tokenizer::from_sentencepiece(const std::string& model_path) {
  auto cfg = parse_sentencepiece_model(read_file_bounded(model_path, kMaxVocabFileBytes));
  auto impl = std::make_unique<TokenizerImpl>();
  impl->normalizer = make_spm_normalizer(cfg);
  impl->decoder = make_spm_decoder(cfg);
  // No pre-tokenizer: the model segments the whole normalized text, as sentencepiece does
  // (pieces of several words, such as runs of U+2581, stay possible). No post-processor either:
  // sentencepiece adds no special tokens.
  impl->model = make_spm_model(std::move(cfg));
  return Tokenizer(std::move(impl));
}

namespace {

// The tokenizer.json of transformers' conversion of a spiece.model (T5Converter and
// PegasusConverter with the tokenizer classes' pipelines): a Unigram model over `pieces`, the
// charsmap (Pegasus: else newlines to spaces, then runs of spaces to one), Metaspace words
// (after a whitespace split for T5) and "</s>" appended; `specials` are matched in the raw text.
using ScoredPieces = std::vector<std::pair<std::string, float>>;

// Standard base64 with padding, the form tokenizer.json gives a Precompiled charsmap in: the
// table (~240 KB for NFKC) then passes through the JSON as one string, not as a number per byte.
std::string base64(std::string_view bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t k = 0; k < 3; ++k)
      group = group << 8 | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k)
      out.push_back(k <= n ? kDigits[(group >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

Tokenizer converted_sentencepiece(const SpmConfig& cfg, const std::string& model_path, bool pegasus,
                                  const ScoredPieces& pieces,
                                  const std::vector<std::string>& specials) {
  std::unordered_map<std::string_view, uint64_t> ids;
  Json vocab = Json::array();
  for (size_t i = 0; i < pieces.size(); ++i) {
    ids.emplace(pieces[i].first, uint64_t{i});
    vocab.push_back({pieces[i].first, pieces[i].second});
  }
  const auto id_of = [&](const std::string& piece) {
    const auto it = ids.find(piece);
    if (it == ids.end()) fail(model_path + ": the model has no " + quote_name(piece));
    return it->second;
  };
  const uint64_t eos = id_of("</s>");
  Json normalizers = Json::array();
  if (!cfg.charsmap.empty()) {
    normalizers.push_back(
        {{"type", "Precompiled"}, {"precompiled_charsmap", base64(cfg.charsmap)}});
  } else if (pegasus) {
    normalizers.push_back({{"type", "Replace"}, {"pattern", {{"Regex", "\n"}}}, {"content", " "}});
  }
  if (pegasus) {
    normalizers.push_back(
        {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}});
  }
  const Json metaspace = {{"type", "Metaspace"},
                          {"replacement", "\u2581"},
                          {"prepend_scheme", "always"},
                          {"split", true}};
  Json added = Json::array();
  for (const std::string& piece : specials) {
    added.push_back({{"id", id_of(piece)},
                     {"content", piece},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  const Json single = Json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                   {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}});
  const Json pair = Json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                 {{"Sequence", {{"id", "B"}, {"type_id", 0}}}},
                                 {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}});
  const uint64_t unk = id_of(pegasus ? "<unk>" : cfg.pieces.at(cfg.unk_id).piece);
  const Json j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", normalizers.empty()
                         ? Json(nullptr)
                         : Json{{"type", "Sequence"}, {"normalizers", normalizers}}},
      {"pre_tokenizer",
       pegasus ? metaspace
               : Json{{"type", "Sequence"},
                      {"pretokenizers", Json::array({{{"type", "WhitespaceSplit"}}, metaspace})}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", single},
        {"pair", pair},
        {"special_tokens",
         {{"</s>",
           {{"id", "</s>"}, {"ids", Json::array({eos})}, {"tokens", Json::array({"</s>"})}}}}}}},
      {"decoder", metaspace},
      {"model",
       {{"type", "Unigram"}, {"unk_id", unk}, {"vocab", vocab}, {"byte_fallback", false}}}};
  return Tokenizer::from_json(j.dump());
}

SpmConfig read_unigram_model(const std::string& model_path) {
  SpmConfig cfg = parse_sentencepiece_model(read_file_bounded(model_path, kMaxVocabFileBytes));
  if (cfg.model_type != 1) fail(model_path + ": not a Unigram sentencepiece model");
  return cfg;
}

}  // namespace

Tokenizer t5_tokenizer_from_spiece(const std::string& model_path, uint32_t extra_ids) {
  const SpmConfig cfg = read_unigram_model(model_path);
  ScoredPieces pieces;
  std::vector<std::string> specials;
  for (const SpmPiece& p : cfg.pieces) {
    pieces.emplace_back(p.piece, p.score);
    if (p.piece == "<pad>" || p.piece == "</s>" || p.piece == "<unk>") specials.push_back(p.piece);
  }
  for (uint32_t i = extra_ids; i-- > 0;) {
    specials.push_back("<extra_id_" + std::to_string(i) + ">");
    pieces.emplace_back(specials.back(), 0.0f);
  }
  return converted_sentencepiece(cfg, model_path, false, pieces, specials);
}

Tokenizer pegasus_tokenizer_from_spiece(const std::string& model_path, uint32_t offset) {
  const SpmConfig cfg = read_unigram_model(model_path);
  const auto has = [&](size_t i, const char* piece) {
    return cfg.pieces.size() > i && cfg.pieces[i].piece == piece;
  };
  if (!has(0, "<pad>") || !has(1, "</s>") || !has(2, "<unk>") || cfg.unk_id != 2) {
    fail(model_path + ": Pegasus's sentencepiece model has <pad>, </s> and <unk> at ids 0, 1, 2");
  }
  if (offset < 2) fail(model_path + ": Pegasus's offset is below 2");
  std::vector<std::string> specials = {"<pad>", "</s>", "<mask_1>", "<mask_2>"};
  for (uint32_t i = 2; i < offset; ++i) specials.push_back("<unk_" + std::to_string(i) + ">");
  ScoredPieces pieces;
  for (const std::string& piece : specials)
    pieces.emplace_back(piece, piece.starts_with("<unk_") ? -100.0f : 0.0f);
  for (size_t i = 2; i < cfg.pieces.size(); ++i)
    pieces.emplace_back(cfg.pieces[i].piece, cfg.pieces[i].score);
  specials.push_back("<unk>");
  return converted_sentencepiece(cfg, model_path, true, pieces, specials);
}

Tokenizer Tokenizer::from_sentencepiece_vocab(const SentencePieceVocab& vocab) {
  const size_t n = vocab.pieces.size();
  if (vocab.scores.size() != n || vocab.types.size() != n) {
    fail("sentencepiece vocabulary: " + std::to_string(n) + " pieces, " +
         std::to_string(vocab.scores.size()) + " scores and " + std::to_string(vocab.types.size()) +
         " types");
  }
  const auto check_id = [&](uint32_t id, const char* what) {
    if (id >= n) {
      fail(std::string("sentencepiece vocabulary: ") + what + " id " + std::to_string(id) +
           " is outside the " + std::to_string(n) + " pieces");
    }
  };
  check_id(vocab.unk_id, "unknown");
  SpmConfig cfg;
  cfg.model_type = 2;  // BPE
  cfg.unk_id = vocab.unk_id;
  cfg.add_dummy_prefix = vocab.add_space_prefix;
  cfg.remove_extra_whitespaces = false;  // llama.cpp keeps every space
  cfg.merge_any_piece = true;
  auto impl = std::make_unique<TokenizerImpl>();
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < n; ++i) {
    const std::string& piece = vocab.pieces[i];
    const int32_t type = vocab.types[i];
    if (type < 1 || type > 6) {
      fail("sentencepiece vocabulary: piece " + std::to_string(i) + " has unknown type " +
           std::to_string(type));
    }
    if (!seen.insert(piece).second) {
      fail("sentencepiece vocabulary: piece " + quote_name(piece) + " appears twice");
    }
    if (!is_valid_utf8(piece))
      fail("sentencepiece vocabulary: piece " + std::to_string(i) + " is not valid UTF-8");
    cfg.byte_fallback = cfg.byte_fallback || type == 6;
    cfg.pieces.push_back({piece, vocab.scores[i], type});
    // llama.cpp matches these in the raw text before tokenizing the runs between them.
    if ((type == 2 || type == 3 || type == 4) && !piece.empty()) {
      AddedToken tok;
      tok.id = static_cast<uint32_t>(i);
      tok.content = piece;
      tok.normalized = false;
      tok.special = type != 4;
      impl->add_token(std::move(tok), "sentencepiece vocabulary");
    }
  }
  impl->normalizer = make_spm_normalizer(cfg);
  impl->decoder = make_spm_decoder(cfg);
  if (vocab.bos_id || vocab.eos_id) {
    Json single = Json::array(), specials = Json::object();
    const auto special = [&](uint32_t id, const char* what) {
      check_id(id, what);
      const std::string& piece = vocab.pieces[id];
      specials[piece] = {{"id", piece}, {"ids", {id}}, {"tokens", {piece}}};
      single.push_back({{"SpecialToken", {{"id", piece}, {"type_id", 0}}}});
    };
    if (vocab.bos_id) special(*vocab.bos_id, "BOS");
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (vocab.eos_id) special(*vocab.eos_id, "EOS");
    Json pair = single;
    for (const Json& piece : single)
      pair.push_back(piece.contains("Sequence") ? Json{{"Sequence", {{"id", "B"}, {"type_id", 0}}}}
                                                : piece);
    impl->post_processor = make_post_processor(Json{{"type", "TemplateProcessing"},
                                                    {"single", single},
                                                    {"pair", pair},
                                                    {"special_tokens", specials}},
                                               "post_processor");
  }
  impl->model = make_spm_model(std::move(cfg));
  impl->added.build(impl->normalizer.get());
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto ends = [](const std::string& s, const char* suf) {
    size_t n = std::strlen(suf);
    return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
  };
  if (fs::is_directory(path, ec)) {
    fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json")) return from_file((dir / "tokenizer.json").string());
    if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
      return from_gpt2_files((dir / "vocab.json").string(), (dir / "merges.txt").string());
    if (fs::exists(dir / "vocab.txt")) return from_bert_vocab((dir / "vocab.txt").string());
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".model") return from_sentencepiece(entry.path().string());
    fail("'" + path + "' holds no tokenizer.json, vocab.json + merges.txt, vocab.txt or .model");
  }
  if (ends(path, ".txt")) return from_bert_vocab(path);
  if (ends(path, ".model")) return from_sentencepiece(path);
  if (ends(path, "vocab.json")) {
    // A tokenizer.json saved under another name has a "model"; a GPT-2 vocabulary maps tokens to
    // ids (a token named "model" would map to a number, not an object).
    Json j = parse_json_bounded(read_file_bounded(path, kMaxTokenizerJsonBytes), path);
    const auto model = j.is_object() ? j.find("model") : j.end();
    if (model != j.end() && model->is_object()) {
      return Tokenizer(TokenizerImpl::from_json_value(j));
    }
    fs::path merges = fs::path(path).parent_path() / "merges.txt";
    return Tokenizer(gpt2_from_vocab(j, path, merges.string()));
  }
  return from_file(path);
}

}  // namespace ember::tokenizers
