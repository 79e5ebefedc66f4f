// `ember tokenize` / `ember detokenize`: JSON Lines in, JSON Lines out. Each input line's output
// line is written as soon as it is produced (through the checked stdout buffer), so memory stays
// bounded by the longest line; a failing input line ends the command after the complete output
// lines of the lines before it.
#include <nlohmann/json.hpp>

#include <charconv>
#include <iostream>
#include <string>

#include "command.hpp"
#include "ember/tokenizers/tokenizer.hpp"
#include "input.hpp"
#include "output.hpp"

namespace {

using nlohmann::json;
namespace tk = ember::tokenizers;

using ember::cli::input_error;
using ember::cli::next_line;

struct TokenizeOptions {
  std::string tokenizer;
  bool no_special = false, pair = false, lines = false;
};

void append_number(std::string& out, uint64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

// A JSON string exactly as nlohmann's dump(replace) writes it: printable ASCII without '"' or '\'
// verbatim (nearly every token), anything else through nlohmann itself.
void append_json_string(std::string& out, const std::string& s) {
  bool plain = true;
  for (const char c : s) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

// {"ids": [...], "tokens": [...], "offsets": [[b, e], ...]} without building a JSON value:
// a DOM of a long line's encoding costs many times the encoding itself.
void encoding_line(std::string& out, const tk::Encoding& e) {
  out = "{\"ids\":[";
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (i) out += ',';
    append_number(out, e.ids[i]);
  }
  out += "],\"tokens\":[";
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, e.tokens[i]);
  }
  out += "],\"offsets\":[";
  for (size_t i = 0; i < e.offsets.size(); ++i) {
    out += i ? ",[" : "[";
    append_number(out, e.offsets[i].first);
    out += ',';
    append_number(out, e.offsets[i].second);
    out += ']';
  }
  out += "]}";
}

tk::Encoding encode_line(const tk::Tokenizer& tok, const TokenizeOptions& opt,
                         const std::string& line, size_t n) {
  const bool special = !opt.no_special;
  try {
    if (opt.lines) return tok.encode(line, special);
    const json j = ember::cli::parse_input_line(line, n);
    if (opt.pair) {
      if (!j.is_array() || j.size() != 2 || !j[0].is_string() || !j[1].is_string())
        throw tk::TokenizerError(input_error(n, "expected a JSON array of two strings"));
      return tok.encode_pair(j[0].get_ref<const std::string&>(), j[1].get_ref<const std::string&>(),
                             special);
    }
    if (!j.is_string()) throw tk::TokenizerError(input_error(n, "expected a JSON string"));
    return tok.encode(j.get_ref<const std::string&>(), special);
  } catch (const tk::TokenizerError& e) {
    const std::string what = e.what();
    if (what.rfind("stdin line ", 0) == 0) throw;
    throw tk::TokenizerError(input_error(n, what));
  }
}

void run_tokenize(const TokenizeOptions& opt) {
  const tk::Tokenizer tok = tk::Tokenizer::load(opt.tokenizer);
  ember::cli::Output& out = ember::cli::out();
  std::string line, result;
  size_t n = 0;
  while (next_line(line)) {
    ++n;
    if (!line.empty() && line.back() == '\r' && !opt.lines) line.pop_back();
    if (line.empty() && !opt.lines) continue;
    encoding_line(result, encode_line(tok, opt, line, n));
    out.line(result);
  }
}

void run_detokenize(const std::string& path, bool skip_special) {
  const tk::Tokenizer tok = tk::Tokenizer::load(path);
  ember::cli::Output& out = ember::cli::out();
  std::string line;
  std::vector<uint32_t> ids;
  size_t n = 0;
  while (next_line(line)) {
    ++n;
    if (line.empty() || line == "\r") continue;
    const json j = ember::cli::parse_input_line(line, n);
    if (!j.is_array()) throw tk::TokenizerError(input_error(n, "expected a JSON array of ids"));
    ids.clear();
    for (const auto& x : j) {
      if (!x.is_number_unsigned() || x.get<uint64_t>() > UINT32_MAX)
        throw tk::TokenizerError(input_error(n, "ids must be non-negative 32-bit integers"));
      ids.push_back(static_cast<uint32_t>(x.get<uint64_t>()));
    }
    out.line(
        json(tok.decode(ids, skip_special)).dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

const ember::cli::CommandRegistrar tokenize_verb{
    {"tokenize", [](CLI::App& app) {
       auto opt = std::make_shared<TokenizeOptions>();
       auto* cmd = app.add_subcommand("tokenize", "Encode JSON Lines of strings read from stdin");
       cmd->add_option("--tokenizer", opt->tokenizer,
                       "tokenizer.json, vocab.txt, vocab.json, .model or a directory")
           ->required();
       cmd->add_flag("--no-special", opt->no_special, "do not add special tokens");
       cmd->add_flag("--pair", opt->pair, "each line is a JSON array of two strings");
       cmd->add_flag("--lines", opt->lines, "read plain text lines instead of JSON strings");
       cmd->callback([opt] { run_tokenize(*opt); });
     }}};

const ember::cli::CommandRegistrar detokenize_verb{
    {"detokenize", [](CLI::App& app) {
       auto path = std::make_shared<std::string>();
       auto skip = std::make_shared<bool>(false);
       auto* cmd = app.add_subcommand("detokenize", "Decode JSON arrays of ids read from stdin");
       cmd->add_option("--tokenizer", *path,
                       "tokenizer.json, vocab.txt, vocab.json, .model or a directory")
           ->required();
       cmd->add_flag("--skip-special", *skip, "leave special tokens out");
       cmd->callback([path, skip] { run_detokenize(*path, *skip); });
     }}};

}  // namespace
