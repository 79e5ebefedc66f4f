// Tokenizer training against the reference's trainers (fixtures from
// tools/tokenizers/make_trainer_fixtures.py): identical vocabularies and merges where the
// reference is deterministic; elsewhere a valid BPE outcome with the reference's held-out
// compression. Plus round trips through tokenizer.json, thread-count independence, bad requests
// and the CLI verb.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

#include "../cli_runner.hpp"
#include "../test_env.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/base/utf8.hpp"
#include "ember/tokenizers/tokenizer.hpp"

namespace {

namespace fs = std::filesystem;
namespace tk = ember::tokenizers;
using nlohmann::json;

const fs::path kDir = fs::path(EMBER_SOURCE_DIR) / "tests/fixtures/tokenizers/trainers";
const fs::path kTrain = kDir / "corpus_train.txt";
const fs::path kHeldout = kDir / "corpus_heldout.txt";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

tk::Trainer trainer_of(const json& c) {
  const json& o = c.at("options");
  tk::BpeTrainer bpe;
  bpe.vocab_size = o.value("vocab_size", size_t{30000});
  bpe.min_frequency = o.value("min_frequency", uint64_t{0});
  bpe.special_tokens = o.value("special_tokens", std::vector<std::string>{});
  if (o.contains("limit_alphabet")) bpe.limit_alphabet = o["limit_alphabet"].get<size_t>();
  if (o.contains("max_token_length")) bpe.max_token_length = o["max_token_length"].get<size_t>();
  if (o.contains("end_of_word_suffix")) bpe.end_of_word_suffix = o["end_of_word_suffix"];
  if (o.contains("continuing_subword_prefix"))
    bpe.continuing_subword_prefix = o["continuing_subword_prefix"];
  if (o.contains("initial_alphabet")) {
    const std::string a = o["initial_alphabet"];
    if (a == "bytelevel") {
      // pre_tokenizers.ByteLevel.alphabet(): the 256 chars GPT-2 maps bytes to.
      for (char32_t c = 0; c < 256; ++c)
        if ((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)
          bpe.initial_alphabet.push_back(c);
      for (char32_t n = 256; bpe.initial_alphabet.size() < 256; ++n)
        bpe.initial_alphabet.push_back(n);
    } else {
      for (char32_t c : ember::decode_utf8(a)) bpe.initial_alphabet.push_back(c);
    }
  }
  const std::string model = c.at("model");
  if (model == "bpe") return bpe;
  if (model == "wordpiece") {
    tk::WordPieceTrainer wp;
    if (!bpe.continuing_subword_prefix) bpe.continuing_subword_prefix = "##";
    wp.bpe = bpe;
    return wp;
  }
  return tk::WordLevelTrainer{bpe.vocab_size, bpe.min_frequency, bpe.special_tokens};
}

// Merges as [left, right] pairs whatever the file's spelling ("a b" or ["a", "b"]).
std::vector<std::pair<std::string, std::string>> merges_of(const json& model) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!model.contains("merges")) return out;
  for (const auto& m : model["merges"]) {
    if (m.is_string()) {
      const std::string s = m;
      const size_t sp = s.find(' ');
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      out.emplace_back(m[0], m[1]);
    }
  }
  return out;
}

struct Case {
  std::string name;
  json meta;
};
// Names the case in test output (GoogleTest would print the object's bytes).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const auto& e : fs::directory_iterator(kDir))
    if (e.is_directory())
      out.push_back({e.path().filename().string(), json::parse(slurp(e.path() / "case.json"))});
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
  return out;
}

class TrainerCase : public ::testing::TestWithParam<Case> {};

tk::Tokenizer train_case(const Case& c) {
  tk::Tokenizer t = tk::Tokenizer::from_json(slurp(kDir / c.name / "template.json"));
  t.train(trainer_of(c.meta), {kTrain.string()});
  return t;
}

TEST_P(TrainerCase, MatchesReference) {
  const Case& c = GetParam();
  ember::set_num_threads(2);
  tk::Tokenizer t = train_case(c);
  const json ours = json::parse(t.to_json());
  const std::vector<std::string> held = lines_of(slurp(kHeldout));

  if (c.meta.at("reference_stable")) {
    // The reference gives one answer on every run: Ember's must be that answer.
    const json ref = json::parse(slurp(kDir / c.name / "reference.json"));
    EXPECT_EQ(ours["model"]["vocab"], ref["model"]["vocab"]) << c.name;
    EXPECT_EQ(merges_of(ours["model"]), merges_of(ref["model"])) << c.name;
    EXPECT_EQ(ours["model"]["type"], ref["model"]["type"]);
    ASSERT_EQ(ours["added_tokens"].size(), ref["added_tokens"].size());
    for (size_t i = 0; i < ref["added_tokens"].size(); ++i) {
      EXPECT_EQ(ours["added_tokens"][i]["id"], ref["added_tokens"][i]["id"]);
      EXPECT_EQ(ours["added_tokens"][i]["content"], ref["added_tokens"][i]["content"]);
    }
  }
  // Compression of held-out text (tokens per byte) within 0.5% of the reference's own model: the
  // issue's bar for outcomes that differ from the reference only in its hash-order tie-breaks.
  size_t tokens = 0;
  for (const auto& line : held) tokens += t.encode_ids(line, false).size();
  const double ref_tokens = c.meta.at("reference_heldout_tokens").get<double>();
  EXPECT_LE(std::abs(static_cast<double>(tokens) - ref_tokens) / ref_tokens, 0.005)
      << c.name << ": " << tokens << " tokens vs the reference's " << ref_tokens;

  // The reference, loading the tokenizer.json Ember trained (when the fixture was made), encodes
  // held-out text as Ember does now.
  EXPECT_TRUE(c.meta.at("reference_loads_ember_identically").get<bool>()) << c.name;
  const json& ref_ids = c.meta.at("reference_ids_of_ember_sample");
  ASSERT_GT(ref_ids.size(), 0u);
  for (size_t i = 0; i < ref_ids.size() && i < held.size(); ++i)
    ASSERT_EQ(t.encode_ids(held[i], false), ref_ids[i].get<std::vector<uint32_t>>())
        << c.name << " held-out line " << i;

  // Round trip: the written tokenizer.json loads back to the same tokenizer.
  tk::Tokenizer back = tk::Tokenizer::from_json(t.to_json(false));
  EXPECT_EQ(back.vocab_size(), t.vocab_size());
  for (size_t i = 0; i < 200 && i < held.size(); ++i)
    ASSERT_EQ(back.encode_ids(held[i]), t.encode_ids(held[i])) << c.name << " line " << i;
}

TEST_P(TrainerCase, IndependentOfThreadCount) {
  const Case& c = GetParam();
  ember::set_num_threads(1);
  const std::string one = train_case(c).to_json(false);
  ember::set_num_threads(3);
  const std::string three = train_case(c).to_json(false);
  ember::set_num_threads(2);
  EXPECT_EQ(one, three) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TrainerCase, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// Replays a trained BPE on the words themselves and checks that every merge joined a pair of
// maximal count at its step, ties going to the pair of smaller ids: what the reference's
// algorithm allows, whatever its hash order does with the ids of suffixed chars.
TEST(BpeTrainer, EveryMergeHasMaximalCount) {
  std::string text;
  std::map<std::string, uint64_t> counts;
  for (const auto& line : lines_of(slurp(kTrain))) {
    bool ascii = true;
    for (unsigned char ch : line) ascii = ascii && ch < 0x80 && ch >= 0x20;
    if (!ascii || text.size() > 60000) continue;
    text += line + "\n";
    std::istringstream words(line);
    for (std::string w; words >> w;) ++counts[w];
  }
  tk::Tokenizer t = tk::Tokenizer::from_json(
      R"({"pre_tokenizer":{"type":"WhitespaceSplit"},"model":{"type":"BPE","vocab":{},"merges":[]}})");
  tk::BpeTrainer bpe;
  bpe.vocab_size = 600;
  bpe.end_of_word_suffix = "</w>";
  bpe.continuing_subword_prefix = "##";
  std::istringstream src(text);
  t.train_from_iterator(bpe,
                        [&](std::string& s) { return static_cast<bool>(std::getline(src, s)); });
  const json model = json::parse(t.to_json())["model"];
  const auto merges = merges_of(model);
  ASSERT_GT(merges.size(), 300u);

  std::vector<std::pair<std::vector<std::string>, uint64_t>> words;
  for (const auto& [w, n] : counts) {
    std::vector<std::string> syms;
    for (size_t i = 0; i < w.size(); ++i)
      syms.push_back((i ? "##" : "") + w.substr(i, 1) + (i + 1 == w.size() ? "</w>" : ""));
    words.emplace_back(std::move(syms), n);
  }
  const json& vocab = model["vocab"];
  for (size_t step = 0; step < merges.size(); ++step) {
    std::map<std::pair<std::string, std::string>, uint64_t> pairs;
    for (const auto& [syms, n] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) pairs[{syms[i], syms[i + 1]}] += n;
    const auto& m = merges[step];
    const uint64_t got = pairs[m];
    for (const auto& [p, n] : pairs) {
      ASSERT_LE(n, got) << "merge " << step << " (" << m.first << ", " << m.second
                        << ") is not of maximal count: (" << p.first << ", " << p.second << ")";
      if (n == got && p != m) {
        const auto id = [&](const std::string& s) { return vocab.at(s).get<uint32_t>(); };
        ASSERT_LT(std::make_pair(id(m.first), id(m.second)),
                  std::make_pair(id(p.first), id(p.second)))
            << "merge " << step << " breaks a tie against the smaller pair";
      }
    }
    std::string joined = m.first + (m.second.starts_with("##") ? m.second.substr(2) : m.second);
    for (auto& [syms, n] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == m.first && syms[i + 1] == m.second) {
          out.push_back(joined);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      syms = std::move(out);
    }
  }
}

tk::Tokenizer empty_bpe() {
  return tk::Tokenizer::from_json(
      R"({"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"BPE","vocab":{},"merges":[]}})");
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const tk::TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

fs::path temp_file(const std::string& name, const std::string& content) {
  fs::path p = fs::path(EMBER_BINARY_DIR) / ("trainer_test_" + name);
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

TEST(Trainer, BadRequests) {
  const std::string train = kTrain.string();
  tk::BpeTrainer small;
  small.vocab_size = 10;
  expect_error([&] { empty_bpe().train(small, {train}); }, "vocab_size 10 is smaller");
  tk::BpeTrainer twice;
  twice.special_tokens = {"<s>", "</s>", "<s>"};
  expect_error([&] { empty_bpe().train(twice, {train}); }, "'<s>' is given twice");
  const fs::path empty = temp_file("empty.txt", "");
  expect_error([&] { empty_bpe().train(tk::BpeTrainer{}, {empty.string()}); }, "empty");
  expect_error([&] { empty_bpe().train(tk::BpeTrainer{}, {"/nonexistent/file.txt"}); },
               "cannot open");
  expect_error([&] { empty_bpe().train(tk::BpeTrainer{}, {kDir.string()}); },
               "is not a regular file");
  expect_error([&] { empty_bpe().train(tk::WordLevelTrainer{}, {train}); },
               "WordLevel trainer cannot train the BPE model");
  expect_error([&] { (void)empty_bpe().to_json(); }, "only a trained tokenizer");
  tk::WordLevelTrainer wl;
  wl.vocab_size = 1;
  wl.special_tokens = {"<unk>", "<pad>"};
  tk::Tokenizer word_level = tk::Tokenizer::from_json(
      R"({"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"WordLevel","vocab":{},"unk_token":"<unk>"}})");
  expect_error([&] { word_level.train(wl, {train}); }, "smaller than the 2 special tokens");
}

TEST(Trainer, InvalidUtf8FailsOrIsSkipped) {
  const fs::path bad = temp_file("bad.txt", "good line one\nbad \xff\xfe line\ngood line two\n");
  expect_error([&] { empty_bpe().train(tk::BpeTrainer{}, {bad.string()}); },
               "line 2 is not valid UTF-8");
  tk::TrainOptions skip;
  skip.skip_invalid_utf8 = true;
  tk::Tokenizer t = empty_bpe();
  const tk::TrainStats stats = t.train(tk::BpeTrainer{}, {bad.string()}, skip);
  EXPECT_EQ(stats.skipped_lines, 1u);
  EXPECT_EQ(stats.lines, 3u);
  EXPECT_TRUE(t.token_to_id("good").has_value());
  EXPECT_FALSE(t.token_to_id("bad").has_value());
}

TEST(Trainer, CliTrainsTemplates) {
  EMBER_REQUIRE_OR_SKIP(fs::exists(fs::path(EMBER_BINARY_DIR) / "bin/ember"), "ember not built");
  const fs::path out = fs::path(EMBER_BINARY_DIR) / "trainer_test_bert.json";
  auto r = ember::test::run_ember(
      "train-tokenizer --model wordpiece --vocab-size 2000 "
      "--template bert --out " +
      out.string() + " " + kTrain.string());
  ASSERT_EQ(r.status, 0) << r.err;
  tk::Tokenizer bert = tk::Tokenizer::from_file(out.string());
  const tk::Encoding e = bert.encode("Hello World");
  ASSERT_GE(e.tokens.size(), 3u);
  EXPECT_EQ(e.tokens.front(), "[CLS]");
  EXPECT_EQ(e.tokens.back(), "[SEP]");
  EXPECT_EQ(e.ids.front(), 2u);  // [PAD] [UNK] [CLS] [SEP] [MASK] come first, in order
  EXPECT_EQ(bert.decode(bert.encode("the licence").ids), "the licence");

  r = ember::test::run_ember("train-tokenizer --model bpe --vocab-size 600 --template gpt2 --out " +
                             out.string() + " " + kTrain.string());
  ASSERT_EQ(r.status, 0) << r.err;
  tk::Tokenizer gpt2 = tk::Tokenizer::from_file(out.string());
  EXPECT_EQ(gpt2.token_to_id("<|endoftext|>"), 0u);
  EXPECT_EQ(gpt2.decode(gpt2.encode("Grüße, 東京!").ids), "Grüße, 東京!");

  r = ember::test::run_ember(
      "train-tokenizer --model bpe --vocab-size 600 --special x --special x "
      "--out " +
      out.string() + " " + kTrain.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("given twice"), std::string::npos) << r.err;
}

}  // namespace
