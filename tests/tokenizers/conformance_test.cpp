// Conformance against the reference library: every case under tests/fixtures/tokenizers/cases
// is one test; every line of its expected.jsonl must match exactly (ids, tokens, byte offsets,
// type ids, masks, word ids, overflowing parts, decodes, batches and streaming decode). Single
// inputs and batches of single inputs are also encoded through the ids-only path.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../test_env.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
namespace tk = ember::tokenizers;

const fs::path kCases = fs::path(EMBER_SOURCE_DIR) / "tests/fixtures/tokenizers/cases";

fs::path model_cache() {
  if (const char* env = std::getenv("EMBER_MODEL_CACHE")) return env;
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".cache/ember-models";
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Loads a case's tokenizer; returns nullopt (with a reason) when its source file is missing.
std::optional<tk::Tokenizer> load_case(const fs::path& dir, std::string& skip_reason) {
  std::optional<fs::path> source;
  if (fs::exists(dir / "source.txt")) {
    source = model_cache() / trim(read_text(dir / "source.txt"));
    if (!fs::exists(*source)) {
      skip_reason = "missing " + source->string() + " (run scripts/fetch_models.sh)";
      return std::nullopt;
    }
  }
  std::string format = fs::exists(dir / "format.txt") ? trim(read_text(dir / "format.txt")) : "";
  if (format == "vocab_txt")
    return tk::Tokenizer::from_bert_vocab(source ? source->string() : (dir / "vocab.txt").string());
  if (format == "gpt2_vocab_merges")
    return tk::Tokenizer::from_gpt2_files((dir / "vocab.json").string(),
                                          (dir / "merges.txt").string());
  if (format == "sentencepiece_model")
    return tk::Tokenizer::from_sentencepiece(source ? source->string()
                                                    : (dir / "spm.model").string());
  if (!format.empty()) throw std::runtime_error("unknown format.txt: " + format);
  return tk::Tokenizer::from_file(source ? source->string() : (dir / "tokenizer.json").string());
}

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

json summary(const tk::Encoding& e) {
  uint64_t ih = 14695981039346656037ull, oh = 14695981039346656037ull;
  for (uint32_t id : e.ids) {
    unsigned char b[4] = {static_cast<unsigned char>(id), static_cast<unsigned char>(id >> 8),
                          static_cast<unsigned char>(id >> 16),
                          static_cast<unsigned char>(id >> 24)};
    ih = fnv1a(ih, b, 4);
  }
  for (auto [s, e2] : e.offsets) {
    unsigned char b[16];
    for (int k = 0; k < 8; ++k) {
      b[k] = static_cast<unsigned char>(static_cast<uint64_t>(s) >> (8 * k));
      b[8 + k] = static_cast<unsigned char>(static_cast<uint64_t>(e2) >> (8 * k));
    }
    oh = fnv1a(oh, b, 16);
  }
  return {{"n", e.ids.size()},
          {"ids_fnv1a", std::to_string(ih)},
          {"offsets_fnv1a", std::to_string(oh)}};
}

json to_json(const tk::Encoding& e, bool with_words) {
  json offsets = json::array();
  for (auto [s, x] : e.offsets) offsets.push_back({s, x});
  json j = {{"ids", e.ids},
            {"type_ids", e.type_ids},
            {"tokens", e.tokens},
            {"offsets", offsets},
            {"special_tokens_mask", e.special_tokens_mask},
            {"attention_mask", e.attention_mask}};
  if (with_words) {
    json w = json::array();
    for (int64_t x : e.word_ids) w.push_back(x < 0 ? json(nullptr) : json(x));
    j["word_ids"] = w;
  }
  return j;
}

// First difference between two JSON arrays, with a little context.
std::string diff_array(const json& expected, const json& actual) {
  if (!expected.is_array() || !actual.is_array())
    return "expected " + expected.dump() + " got " + actual.dump();
  size_t n = std::min(expected.size(), actual.size());
  for (size_t i = 0; i < n; ++i) {
    if (expected[i] != actual[i]) {
      size_t b = i >= 3 ? i - 3 : 0;
      json ce = json::array(), ca = json::array();
      for (size_t k = b; k < std::min(i + 4, expected.size()); ++k) ce.push_back(expected[k]);
      for (size_t k = b; k < std::min(i + 4, actual.size()); ++k) ca.push_back(actual[k]);
      return "first difference at position " + std::to_string(i) + ": expected " +
             expected[i].dump() + " got " + actual[i].dump() + "; context from " +
             std::to_string(b) + ": expected " + ce.dump() + " got " + ca.dump();
    }
  }
  return "lengths differ: expected " + std::to_string(expected.size()) + " got " +
         std::to_string(actual.size());
}

// Compares the fields the expected object carries; returns "" when equal.
std::string compare(const json& expected, const tk::Encoding& e) {
  if (expected.contains("summary")) {
    json s = summary(e);
    if (s != expected["summary"])
      return "summary: expected " + expected["summary"].dump() + " got " + s.dump();
    return "";
  }
  json actual = to_json(e, true);
  for (const char* f : {"ids", "tokens", "offsets", "type_ids", "special_tokens_mask",
                        "attention_mask", "word_ids"}) {
    if (!expected.contains(f)) continue;
    if (expected[f] != actual[f]) return std::string(f) + ": " + diff_array(expected[f], actual[f]);
  }
  return "";
}

// Checks ids from the ids-only path against an expected encoding (full ids or their summary).
std::string compare_ids(const json& expected, const std::vector<uint32_t>& ids) {
  if (expected.contains("summary")) {
    tk::Encoding e;
    e.ids = ids;
    json s = summary(e);
    const json& want = expected["summary"];
    if (s["n"] != want["n"] || s["ids_fnv1a"] != want["ids_fnv1a"])
      return "ids-only summary: expected " + want.dump() + " got " + s.dump();
    return "";
  }
  if (!expected.contains("ids")) return "";
  json actual = ids;
  if (expected["ids"] != actual) return "ids-only ids: " + diff_array(expected["ids"], actual);
  return "";
}

std::string input_of(const json& line) {
  std::string s = line.contains("input") ? line["input"].dump() : line.dump();
  return s.size() > 160 ? s.substr(0, 160) + "..." : s;
}

void run_case(const fs::path& dir) {
  std::string skip;
  std::optional<tk::Tokenizer> tok;
  ASSERT_NO_THROW(tok = load_case(dir, skip)) << dir;
  EMBER_REQUIRE_OR_SKIP(tok, skip);
  std::ifstream in(dir / "expected.jsonl");
  ASSERT_TRUE(in) << "no expected.jsonl in " << dir;
  std::string text;
  size_t line_no = 0, checked = 0, failures = 0;
  while (std::getline(in, text) && failures < 10) {
    ++line_no;
    if (text.empty()) continue;
    json line = json::parse(text);
    std::string where =
        dir.filename().string() + ":" + std::to_string(line_no) + " " + input_of(line);
    try {
      if (line.contains("stream_ids")) {
        auto stream = tok->decode_stream(line["skip_special_tokens"].get<bool>());
        json chunks = json::array();
        for (const auto& id : line["stream_ids"]) {
          auto c = stream.step(id.get<uint32_t>());
          chunks.push_back(c ? json(*c) : json(nullptr));
        }
        if (chunks != line["chunks"]) {
          ADD_FAILURE() << where << "\nstream chunks: " << diff_array(line["chunks"], chunks);
          ++failures;
        }
      } else if (line.contains("batch")) {
        std::vector<tk::EncodeInput> inputs;
        for (const auto& b : line["batch"]) {
          if (b.is_string())
            inputs.push_back({b.get<std::string>(), std::nullopt});
          else
            inputs.push_back({b[0].get<std::string>(), b[1].get<std::string>()});
        }
        const json& exp = line["encodings"];
        // Reports the first item of a batch result that differs from the expected encodings.
        auto check_batch = [&](const auto& got, auto&& diff_of, const std::string& what) {
          if (exp.size() != got.size()) {
            ADD_FAILURE() << where << "\n" << what << " size differs";
            ++failures;
          }
          for (size_t i = 0; i < std::min(exp.size(), got.size()); ++i) {
            std::string d = diff_of(exp[i], got[i]);
            if (!d.empty()) {
              ADD_FAILURE() << where << "\n" << what << " item " << i << ": " << d;
              ++failures;
              break;
            }
          }
        };
        check_batch(tok->encode_batch(inputs, line["add_special_tokens"].get<bool>()), compare,
                    "batch");
        bool all_single = true;
        std::vector<std::string> texts;
        for (const auto& in : inputs) {
          all_single = all_single && !in.second;
          texts.push_back(in.first);
        }
        if (all_single) {
          check_batch(tok->encode_batch_ids(texts, line["add_special_tokens"].get<bool>()),
                      compare_ids, "ids-only batch");
        }
      } else {
        bool add = line["add_special_tokens"].get<bool>();
        tk::Encoding e = line["input"].is_string()
                             ? tok->encode(line["input"].get<std::string>(), add)
                             : tok->encode_pair(line["input"][0].get<std::string>(),
                                                line["input"][1].get<std::string>(), add);
        std::string d = compare(line, e);
        if (d.empty() && line["input"].is_string())
          d = compare_ids(line, tok->encode_ids(line["input"].get<std::string>(), add));
        if (d.empty() && line.contains("overflowing")) {
          const json& ov = line["overflowing"];
          if (ov.size() != e.overflowing.size()) {
            d = "overflowing: expected " + std::to_string(ov.size()) + " parts, got " +
                std::to_string(e.overflowing.size());
          } else {
            for (size_t i = 0; i < ov.size() && d.empty(); ++i) {
              d = compare(ov[i], e.overflowing[i]);
              if (!d.empty()) d.insert(0, "overflowing[" + std::to_string(i) += "]: ");
            }
          }
        }
        if (d.empty() && line.contains("decode")) {
          std::string got = tok->decode(e.ids, false);
          if (got != line["decode"].get<std::string>())
            d = "decode: expected " + line["decode"].dump() + " got " +
                json(got).dump(-1, ' ', false, json::error_handler_t::replace);
        }
        if (d.empty() && line.contains("decode_skip_special")) {
          std::string got = tok->decode(e.ids, true);
          if (got != line["decode_skip_special"].get<std::string>())
            d = "decode_skip_special: expected " + line["decode_skip_special"].dump() + " got " +
                json(got).dump(-1, ' ', false, json::error_handler_t::replace);
        }
        if (!d.empty()) {
          ADD_FAILURE() << where << "\n" << d;
          ++failures;
        }
      }
    } catch (const std::exception& ex) {
      ADD_FAILURE() << where << "\nthrew: " << ex.what();
      ++failures;
    }
    ++checked;
  }
  EXPECT_GT(checked, 0u) << "no lines checked in " << dir;
  // Inputs the reference rejects must be rejected too.
  std::ifstream errs(dir / "expected_errors.jsonl");
  while (std::getline(errs, text)) {
    if (text.empty()) continue;
    json line = json::parse(text);
    bool add = line["add_special_tokens"].get<bool>();
    if (line.contains("batch")) {
      std::vector<tk::EncodeInput> inputs;
      for (const auto& b : line["batch"]) {
        if (b.is_string())
          inputs.push_back({b.get<std::string>(), std::nullopt});
        else
          inputs.push_back({b[0].get<std::string>(), b[1].get<std::string>()});
      }
      EXPECT_THROW(tok->encode_batch(inputs, add), tk::TokenizerError) << input_of(line);
    } else if (line["input"].is_string()) {
      EXPECT_THROW(tok->encode(line["input"].get<std::string>(), add), tk::TokenizerError)
          << input_of(line);
      EXPECT_THROW(tok->encode_ids(line["input"].get<std::string>(), add), tk::TokenizerError)
          << input_of(line);
    } else {
      EXPECT_THROW(tok->encode_pair(line["input"][0].get<std::string>(),
                                    line["input"][1].get<std::string>(), add),
                   tk::TokenizerError)
          << input_of(line);
    }
  }
}

class CaseTest : public testing::Test {
 public:
  explicit CaseTest(fs::path dir) : dir_(std::move(dir)) {}
  void TestBody() override { run_case(dir_); }

 private:
  fs::path dir_;
};

// One test per case directory, registered before main() so that test discovery lists them.
const bool kRegistered = [] {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kCases, ec))
    if (entry.is_directory() && fs::exists(entry.path() / "expected.jsonl"))
      dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    testing::RegisterTest("TokenizerConformance", d.filename().string().c_str(), nullptr, nullptr,
                          __FILE__, __LINE__, [d]() -> testing::Test* { return new CaseTest(d); });
  }
  return true;
}();

TEST(TokenizerConformance, FixturesPresent) {
  ASSERT_TRUE(fs::exists(kCases)) << kCases;
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator(kCases))
    n += entry.is_directory() && fs::exists(entry.path() / "expected.jsonl");
  EXPECT_GT(n, 0u);
}

}  // namespace
