// `ember tokenize` / `ember detokenize`: JSON Lines in, JSON Lines out. All output is buffered so
// that a failing input prints nothing on stdout.
#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>
#include <string>

#include "command.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace {

using nlohmann::json;
namespace tk = ember::tokenizers;

struct TokenizeOptions {
  std::string tokenizer;
  bool no_special = false, pair = false, lines = false;
};

std::string input_error(size_t line, const std::string& what) {
  return "stdin line " + std::to_string(line) + ": " + what;
}

json parse_line(const std::string& text, size_t line) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    throw tk::TokenizerError(input_error(line, "invalid JSON"));
  }
}

void run_tokenize(const TokenizeOptions& opt) {
  tk::Tokenizer tok = tk::Tokenizer::load(opt.tokenizer);
  std::string out;
  std::string line;
  size_t n = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r' && !opt.lines) line.pop_back();
    if (line.empty() && !opt.lines) continue;
    tk::Encoding e;
    if (opt.lines) {
      e = tok.encode(line, !opt.no_special);
    } else {
      json j = parse_line(line, n);
      if (opt.pair) {
        if (!j.is_array() || j.size() != 2 || !j[0].is_string() || !j[1].is_string())
          throw tk::TokenizerError(input_error(n, "expected a JSON array of two strings"));
        e = tok.encode_pair(j[0].get<std::string>(), j[1].get<std::string>(), !opt.no_special);
      } else {
        if (!j.is_string()) throw tk::TokenizerError(input_error(n, "expected a JSON string"));
        e = tok.encode(j.get<std::string>(), !opt.no_special);
      }
    }
    nlohmann::ordered_json offsets = nlohmann::ordered_json::array();
    for (auto [b, end] : e.offsets) offsets.push_back({b, end});
    nlohmann::ordered_json o;
    o["ids"] = e.ids;
    o["tokens"] = e.tokens;
    o["offsets"] = std::move(offsets);
    out += o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    out += '\n';
  }
  std::cout << out;
}

void run_detokenize(const std::string& path, bool skip_special) {
  tk::Tokenizer tok = tk::Tokenizer::load(path);
  std::string out, line;
  size_t n = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    if (line.empty() || line == "\r") continue;
    json j = parse_line(line, n);
    if (!j.is_array()) throw tk::TokenizerError(input_error(n, "expected a JSON array of ids"));
    std::vector<uint32_t> ids;
    for (const auto& x : j) {
      if (!x.is_number_unsigned() || x.get<uint64_t>() > UINT32_MAX)
        throw tk::TokenizerError(input_error(n, "ids must be non-negative 32-bit integers"));
      ids.push_back(static_cast<uint32_t>(x.get<uint64_t>()));
    }
    out += json(tok.decode(ids, skip_special)).dump(-1, ' ', false, json::error_handler_t::replace);
    out += '\n';
  }
  std::cout << out;
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
