// `ember train-tokenizer`: trains a BPE, WordPiece, WordLevel or Unigram tokenizer on text files
// and writes
// tokenizer.json. The pipeline around the model (normalizer, pre-tokenizer, post-processor,
// decoder) comes from a family template or from a tokenizer.json given with --from.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "ember/base/utf8.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace {

using nlohmann::json;
namespace tk = ember::tokenizers;

struct TrainTokenizerOptions {
  std::string model, template_name, from, out, initial_alphabet;
  std::string prefix, suffix, unk_token;
  size_t vocab_size = 0;
  tk::UnigramTrainer unigram;
  uint64_t min_frequency = 0;
  size_t limit_alphabet = 0, max_token_length = 0;
  std::vector<std::string> specials, files;
  bool skip_invalid_utf8 = false;
};

// One family's pipeline: tokenizer.json without its model, the special tokens it needs (also the
// defaults when none are given), its model's unknown token, and the post-processor built once the
// special tokens have ids.
// NOLINTNEXTLINE(bugprone-exception-escape): what may throw is nlohmann::json's destructor
struct Family {
  json pipeline, post_processor;
  std::vector<std::string> specials;
  std::string unk;
  bool byte_level = false;
};

json template_processing(const std::vector<std::string>& single,
                         const std::vector<std::string>& pair) {
  auto pieces = [](const std::vector<std::string>& spec) {
    json out = json::array();
    for (const auto& s : spec) {
      const bool b = s.ends_with(":1");
      const std::string name = b ? s.substr(0, s.size() - 2) : s;
      if (name == "$A" || name == "$B")
        out.push_back({{"Sequence", {{"id", name.substr(1)}, {"type_id", b ? 1 : 0}}}});
      else
        out.push_back({{"SpecialToken", {{"id", name}, {"type_id", b ? 1 : 0}}}});
    }
    return out;
  };
  return {{"type", "TemplateProcessing"},
          {"single", pieces(single)},
          {"pair", pieces(pair)},
          {"special_tokens", json::object()}};
}

Family family(const std::string& name, const std::string& model) {
  Family f;
  json& p = f.pipeline;
  p = {{"version", "1.0"},   {"truncation", nullptr},    {"padding", nullptr},
       {"added_tokens", {}}, {"normalizer", nullptr},    {"pre_tokenizer", nullptr},
       {"decoder", nullptr}, {"post_processor", nullptr}};
  p["added_tokens"] = json::array();
  if (name == "bert") {
    p["normalizer"] = {{"type", "BertNormalizer"},
                       {"clean_text", true},
                       {"handle_chinese_chars", true},
                       {"strip_accents", nullptr},
                       {"lowercase", true}};
    p["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    p["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
    f.post_processor =
        template_processing({"[CLS]", "$A", "[SEP]"}, {"[CLS]", "$A", "[SEP]", "$B:1", "[SEP]:1"});
    f.specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    f.unk = "[UNK]";
  } else if (name == "gpt2") {
    const json byte_level = {{"type", "ByteLevel"},
                             {"add_prefix_space", false},
                             {"trim_offsets", true},
                             {"use_regex", true}};
    p["pre_tokenizer"] = byte_level;
    p["decoder"] = byte_level;
    f.post_processor = byte_level;
    f.specials = {"<|endoftext|>"};
    f.byte_level = true;
  } else if (name == "llama" && model == "unigram") {
    // A SentencePiece Unigram as the Llama conversions spell it: "▁" for spaces and before the
    // first word only.
    const json metaspace = {{"type", "Metaspace"},
                            {"replacement", "\u2581"},
                            {"prepend_scheme", "first"},
                            {"split", true}};
    p["pre_tokenizer"] = metaspace;
    p["decoder"] = metaspace;
    f.post_processor = template_processing({"<s>", "$A"}, {"<s>", "$A", "<s>:1", "$B:1"});
    f.specials = {"<unk>", "<s>", "</s>"};
    f.unk = "<unk>";
  } else if (name == "llama") {
    p["normalizer"] = {
        {"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\u2581"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}};
    p["decoder"] = {{"type", "Sequence"},
                    {"decoders",
                     {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
    f.post_processor = template_processing({"<s>", "$A"}, {"<s>", "$A", "<s>:1", "$B:1"});
    f.specials = {"<unk>", "<s>", "</s>"};
    f.unk = "<unk>";
  } else if (name == "t5") {
    const json metaspace = {{"type", "Metaspace"},
                            {"replacement", "\u2581"},
                            {"prepend_scheme", "always"},
                            {"split", true}};
    p["pre_tokenizer"] = metaspace;
    p["decoder"] = metaspace;
    f.post_processor = template_processing({"$A", "</s>"}, {"$A", "</s>", "$B:1", "</s>:1"});
    f.specials = {"<pad>", "</s>", "<unk>"};
    f.unk = "<unk>";
  } else if (!name.empty()) {
    throw tk::TokenizerError("--template: unknown family '" + name + "' (bert, gpt2, llama, t5)");
  }
  return f;
}

json empty_model(const std::string& model, const std::string& unk) {
  if (model == "bpe") {
    json m = {{"type", "BPE"}, {"vocab", json::object()}, {"merges", json::array()}};
    if (!unk.empty()) m["unk_token"] = unk;
    return m;
  }
  if (model == "wordpiece")
    return {{"type", "WordPiece"},
            {"unk_token", unk.empty() ? "[UNK]" : unk},
            {"vocab", json::object()}};
  if (model == "wordlevel")
    return {{"type", "WordLevel"},
            {"unk_token", unk.empty() ? "<unk>" : unk},
            {"vocab", json::object()}};
  if (model == "unigram")
    return {{"type", "Unigram"}, {"unk_id", nullptr}, {"vocab", json::array()}};
  throw tk::TokenizerError("--model: unknown model '" + model +
                           "' (bpe, wordpiece, wordlevel, unigram)");
}

// The 256 chars the GPT-2 byte-level alphabet maps bytes to.
std::vector<char32_t> byte_level_alphabet() {
  std::vector<char32_t> out;
  for (char32_t c = 0; c < 256; ++c) {
    const bool printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
    if (printable) out.push_back(c);
  }
  for (char32_t n = 0; out.size() < 256; ++n) out.push_back(256 + n);
  return out;
}

std::vector<char32_t> chars_of(const std::string& s) {
  if (!ember::is_valid_utf8(s)) throw tk::TokenizerError("--initial-alphabet: invalid UTF-8");
  const std::u32string chars = ember::decode_utf8(s);
  return {chars.begin(), chars.end()};
}

// A one-line progress display on stderr, only when stderr is a terminal; redrawn at most every
// 100 ms.
class Progress {
 public:
  Progress() : tty_(isatty(STDERR_FILENO) == 1) {}
  ~Progress() { end(); }
  // Ends the bar's line, so that what is printed next starts on its own.
  void end() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }
  void operator()(const char* stage, uint64_t done, uint64_t total) {
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    const int width = 40;
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int fill = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r%-7s [%s%s] %3d%%", stage, std::string(fill, '#').c_str(),
                 std::string(width - fill, ' ').c_str(), static_cast<int>(frac * 100));
    std::fflush(stderr);
  }

 private:
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

void run(const TrainTokenizerOptions& o) {
  if (!o.template_name.empty() && !o.from.empty())
    throw tk::TokenizerError("--template and --from exclude each other");
  Family f = family(o.template_name, o.model);
  std::vector<std::string> specials = o.specials.empty() ? f.specials : o.specials;
  for (const auto& need : f.specials)
    if (std::find(specials.begin(), specials.end(), need) == specials.end())
      throw tk::TokenizerError("--template " + o.template_name + " needs special token '" + need +
                               "'");
  // --from: that tokenizer (its model's type must match --model) is the template.
  tk::Tokenizer tokenizer = [&] {
    if (!o.from.empty()) return tk::Tokenizer::from_file(o.from);
    f.pipeline["model"] = empty_model(o.model, f.unk);
    return tk::Tokenizer::from_json(f.pipeline.dump());
  }();

  tk::BpeTrainer bpe;
  bpe.vocab_size = o.vocab_size;
  bpe.min_frequency = o.min_frequency;
  bpe.special_tokens = specials;
  if (o.limit_alphabet) bpe.limit_alphabet = o.limit_alphabet;
  if (o.max_token_length) bpe.max_token_length = o.max_token_length;
  bpe.initial_alphabet =
      o.initial_alphabet == "bytelevel" || (o.initial_alphabet.empty() && f.byte_level)
          ? byte_level_alphabet()
          : chars_of(o.initial_alphabet);
  if (!o.suffix.empty()) bpe.end_of_word_suffix = o.suffix;
  tk::Trainer trainer;
  if (o.model == "bpe") {
    if (!o.prefix.empty()) bpe.continuing_subword_prefix = o.prefix;
    trainer = bpe;
  } else if (o.model == "wordpiece") {
    bpe.continuing_subword_prefix = o.prefix.empty() ? "##" : o.prefix;
    trainer = tk::WordPieceTrainer{bpe};
  } else if (o.model == "unigram") {
    tk::UnigramTrainer unigram = o.unigram;
    unigram.vocab_size = o.vocab_size;
    unigram.special_tokens = specials;
    unigram.initial_alphabet = bpe.initial_alphabet;
    if (!o.unk_token.empty())
      unigram.unk_token = o.unk_token;
    else if (!f.unk.empty())
      unigram.unk_token = f.unk;
    trainer = unigram;
  } else {
    trainer = tk::WordLevelTrainer{o.vocab_size, o.min_frequency, specials};
  }

  Progress progress;
  tk::TrainOptions options;
  options.skip_invalid_utf8 = o.skip_invalid_utf8;
  options.progress = [&](const char* stage, uint64_t done, uint64_t total) {
    progress(stage, done, total);
  };
  const tk::TrainStats stats = tokenizer.train(trainer, o.files, options);
  progress.end();
  if (stats.skipped_lines)
    std::cerr << "skipped " << stats.skipped_lines << " lines that are not valid UTF-8\n";

  // The family's post-processor names its special tokens; they get their trained ids here.
  auto out = nlohmann::ordered_json::parse(tokenizer.to_json(false));
  if (!f.post_processor.is_null())
    out["post_processor"] = nlohmann::ordered_json::parse(f.post_processor.dump());
  auto& post = out["post_processor"];
  if (post.is_object() && post.value("type", "") == "TemplateProcessing") {
    for (const auto& name : f.specials) {
      const auto id = tokenizer.token_to_id(name);
      if (!id) throw tk::TokenizerError("special token '" + name + "' has no id after training");
      post["special_tokens"][name] = {{"id", name}, {"ids", {*id}}, {"tokens", {name}}};
    }
  }
  const std::string text = out.dump(2);
  tk::Tokenizer::from_json(text);  // what is written must load back
  std::ofstream file(o.out, std::ios::binary | std::ios::trunc);
  file << text << '\n';
  file.close();
  if (!file) throw tk::TokenizerError("--out: cannot write '" + o.out + "'");
  std::cerr << "trained " << o.model << ": " << tokenizer.vocab_size() << " tokens from "
            << stats.lines << " lines (" << stats.distinct_words << " distinct words) -> " << o.out
            << "\n";
}

const ember::cli::CommandRegistrar train_tokenizer_verb{
    {"train-tokenizer", [](CLI::App& app) {
       auto opt = std::make_shared<TrainTokenizerOptions>();
       auto* cmd = app.add_subcommand(
           "train-tokenizer",
           "Train a BPE, WordPiece, WordLevel or Unigram tokenizer on text files");
       cmd->add_option("--model", opt->model, "bpe, wordpiece, wordlevel or unigram")->required();
       cmd->add_option("--vocab-size", opt->vocab_size, "target vocabulary size")->required();
       cmd->add_option("--min-frequency", opt->min_frequency,
                       "least count of a merged pair (bpe, wordpiece) or kept word (wordlevel)");
       cmd->add_option("--special", opt->specials,
                       "special token, first ids in order (repeatable; default: the template's)")
           ->allow_extra_args(false);  // one token per flag, and "[CLS]" is a token, not a list
       cmd->add_option("--template", opt->template_name,
                       "pipeline of a family: bert, gpt2, llama or t5 (default: none)");
       cmd->add_option("--from", opt->from,
                       "tokenizer.json whose pipeline (and model type and options) to use");
       cmd->add_option("--limit-alphabet", opt->limit_alphabet, "keep at most N initial chars");
       cmd->add_option("--initial-alphabet", opt->initial_alphabet,
                       "chars always in the alphabet, or 'bytelevel' (gpt2's default)");
       cmd->add_option("--continuing-subword-prefix", opt->prefix,
                       "prefix of non-initial subwords (wordpiece default ##)");
       cmd->add_option("--end-of-word-suffix", opt->suffix, "suffix of word-final subwords");
       cmd->add_option("--max-token-length", opt->max_token_length, "longest token, in chars");
       cmd->add_option("--unk-token", opt->unk_token,
                       "unigram: piece of unknown chars (default: the template's; without one, "
                       "unseen chars cannot be encoded)");
       cmd->add_option("--n-sub-iterations", opt->unigram.n_sub_iterations,
                       "unigram: EM steps between prunings (default 2)");
       cmd->add_option("--shrinking-factor", opt->unigram.shrinking_factor,
                       "unigram: share of pieces each pruning keeps (default 0.75)");
       cmd->add_option("--max-piece-length", opt->unigram.max_piece_length,
                       "unigram: longest piece, in chars (default 16)");
       cmd->add_option("--seed-size", opt->unigram.seed_size,
                       "unigram: seed pieces from the suffix array (default 1000000)");
       cmd->add_flag("--skip-invalid-utf8", opt->skip_invalid_utf8,
                     "skip (and count) lines that are not UTF-8 instead of failing");
       cmd->add_option("--out", opt->out, "tokenizer.json to write")->required();
       cmd->add_option("files", opt->files, "training text files")->required();
       cmd->callback([opt] { run(*opt); });
     }}};

}  // namespace
