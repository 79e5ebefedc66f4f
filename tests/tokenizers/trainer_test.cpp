// Tokenizer training against the reference's trainers (fixtures from
// tools/tokenizers/make_trainer_fixtures.py): identical vocabularies and merges where the
// reference is deterministic; elsewhere a valid BPE outcome with the reference's held-out
// compression. Plus round trips through tokenizer.json, thread-count independence, bad requests
// and the CLI verb.
//
// Unigram: the reference's UnigramTrainer, run 4 times (separate processes) per fixture case,
// kept the same set of pieces every time but never wrote the same tokenizer.json twice: the
// required chars its model lost score min_score + k * 1e-4 with k in hash-set order (scores of
// one piece differ by up to 0.035 between runs), pieces of equal score are ordered in that order,
// and EM scores differ by ~1e-13 (float sums in hash order). Identical vocabularies are thus out
// of reach (the reference disagrees with itself). Ember, in code point order, keeps the same
// pieces (100%), with EM scores equal to ~1e-13.
// So the Unigram cases check the issue's second bar: at least 99% of the reference's pieces in
// Ember's vocabulary, at least 99% of held-out lines encoded to the same pieces as by the
// reference's vocabulary, tokens per byte within 0.5%.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
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
  if (model == "unigram") {
    tk::UnigramTrainer u;
    u.vocab_size = bpe.vocab_size;
    u.special_tokens = bpe.special_tokens;
    u.initial_alphabet = bpe.initial_alphabet;
    if (o.contains("unk_token")) u.unk_token = o["unk_token"];
    u.n_sub_iterations = o.value("n_sub_iterations", u.n_sub_iterations);
    u.shrinking_factor = o.value("shrinking_factor", u.shrinking_factor);
    u.max_piece_length = o.value("max_piece_length", u.max_piece_length);
    u.seed_size = o.value("seed_size", u.seed_size);
    return u;
  }
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

// A Unigram vocabulary against the reference's: the same pieces in the same order with scores
// within 1e-6 where the reference is stable; else the issue's bar (99% of pieces in common, 99%
// of held-out lines encoded alike). No piece may exceed max_piece_length (specials aside).
void expect_unigram_close(const Case& c, const json& ours, const std::vector<std::string>& held) {
  const json ref = json::parse(slurp(kDir / c.name / "reference.json"));
  const json& vo = ours["model"]["vocab"];
  const json& vr = ref["model"]["vocab"];
  EXPECT_EQ(ours["model"]["unk_id"], ref["model"]["unk_id"]) << c.name;
  EXPECT_EQ(vo.size(), vr.size()) << c.name;
  std::map<std::string, double> ref_scores;
  for (const auto& p : vr) ref_scores[p[0].get<std::string>()] = p[1].get<double>();
  if (c.meta.at("reference_stable")) {
    ASSERT_EQ(vo.size(), vr.size());
    for (size_t i = 0; i < vo.size(); ++i) {
      EXPECT_EQ(vo[i][0], vr[i][0]) << c.name << " piece " << i;
      // 1e-6: the issue's bar; sums of the same terms in another order differ far less.
      EXPECT_NEAR(vo[i][1].get<double>(), vr[i][1].get<double>(), 1e-6) << c.name << " " << i;
    }
  }
  size_t common = 0;
  for (const auto& p : vo) common += ref_scores.count(p[0].get<std::string>());
  EXPECT_GE(static_cast<double>(common), 0.99 * static_cast<double>(vr.size()))
      << c.name << ": " << common << " of " << vr.size() << " pieces in common";

  const tk::Tokenizer mine = tk::Tokenizer::from_json(ours.dump());
  const tk::Tokenizer theirs = tk::Tokenizer::from_json(ref.dump());
  size_t same = 0;
  for (const auto& line : held)
    same += mine.encode(line, false).tokens == theirs.encode(line, false).tokens;
  EXPECT_GE(static_cast<double>(same), 0.99 * static_cast<double>(held.size()))
      << c.name << ": " << same << " of " << held.size() << " held-out lines encoded alike";

  const size_t max_len = c.meta.at("options").value("max_piece_length", size_t{16});
  const auto specials = c.meta.at("options").value("special_tokens", std::vector<std::string>{});
  for (const auto& p : vo) {
    const std::string piece = p[0];
    if (std::find(specials.begin(), specials.end(), piece) != specials.end()) continue;
    EXPECT_LE(ember::decode_utf8(piece).size(), max_len) << c.name << " '" << piece << "'";
  }
}

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

  if (c.meta.at("model") == "unigram") {
    expect_unigram_close(c, ours, held);
  } else if (c.meta.at("reference_stable")) {
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
  // Unigram training of the whole corpus costs seconds: UnigramTrainer.IndependentOfThreadCount
  // checks it on a slice.
  if (c.meta.at("model") == "unigram")
    GTEST_SKIP() << "see UnigramTrainer.IndependentOfThreadCount";
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

tk::Tokenizer empty_unigram() {
  return tk::Tokenizer::from_json(
      R"({"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"Unigram","unk_id":null,"vocab":[]}})");
}

TEST(UnigramTrainer, BadRequests) {
  const std::string train = kTrain.string();
  tk::UnigramTrainer small;
  small.vocab_size = 20;
  small.unk_token = "<unk>";
  expect_error([&] { empty_unigram().train(small, {train}); },
               "vocab_size 20 is smaller than the 1 special");
  tk::UnigramTrainer twice;
  twice.special_tokens = {"<s>", "</s>", "<s>"};
  expect_error([&] { empty_unigram().train(twice, {train}); }, "'<s>' is given twice");
  const fs::path empty = temp_file("unigram_empty.txt", "");
  expect_error([&] { empty_unigram().train(tk::UnigramTrainer{}, {empty.string()}); }, "empty");
  tk::UnigramTrainer no_shrink;
  no_shrink.shrinking_factor = 1.0;
  expect_error([&] { empty_unigram().train(no_shrink, {train}); }, "shrinking_factor");
  expect_error([&] { empty_bpe().train(tk::UnigramTrainer{}, {train}); },
               "Unigram trainer cannot train the BPE model");
}

// A corpus small enough to check by hand: the special tokens come first with score 0 (the added
// unk_token before them), every char is a piece, the other pieces follow by descending score.
TEST(UnigramTrainer, SpecialsCharsAndOrder) {
  const fs::path small =
      temp_file("unigram_small.txt", "hug hugs pug pugs bun buns hug hugs\nhugging pun puns bun\n");
  tk::UnigramTrainer u;
  u.vocab_size = 30;
  u.special_tokens = {"<s>", "</s>"};
  u.unk_token = "<unk>";
  u.initial_alphabet = {U'z'};
  tk::Tokenizer t = empty_unigram();
  t.train(u, {small.string()});
  const json model = json::parse(t.to_json())["model"];
  const json& vocab = model["vocab"];
  ASSERT_GE(vocab.size(), 3u + 11u);
  EXPECT_LE(vocab.size(), 30u);
  EXPECT_EQ(model["unk_id"], 0);
  EXPECT_EQ(vocab[0][0], "<unk>");
  EXPECT_EQ(vocab[1][0], "<s>");
  EXPECT_EQ(vocab[2][0], "</s>");
  std::set<std::string> pieces;
  for (size_t i = 3; i < vocab.size(); ++i) {
    pieces.insert(vocab[i][0].get<std::string>());
    if (i > 3) {
      EXPECT_GE(vocab[i - 1][1].get<double>(), vocab[i][1].get<double>()) << i;
    }
    EXPECT_LT(vocab[i][1].get<double>(), 0.0) << "a log probability";
  }
  for (const char* c : {"h", "u", "g", "s", "p", "b", "n", "i", "z"})
    EXPECT_TRUE(pieces.count(c)) << c;
  EXPECT_TRUE(pieces.count("hug") || pieces.count("ug")) << "a frequent substring is a piece";
  std::string joined;
  for (const auto& tok : t.encode("hugs", false).tokens) joined += tok;
  EXPECT_EQ(joined, "hugs");
  EXPECT_EQ(t.encode("x", false).ids, std::vector<uint32_t>{0}) << "an unknown char is unk_id";
}

// The fixture cases' Unigram options on the corpus's first 2000 lines, at 1 and 3 threads: the
// expected counts are summed in fixed chunks, so the result is the same bytes.
TEST(UnigramTrainer, IndependentOfThreadCount) {
  const std::vector<std::string> lines = lines_of(slurp(kTrain));
  for (const Case& c : cases()) {
    if (c.meta.at("model") != "unigram") continue;
    std::string out[2];
    for (int k = 0; k < 2; ++k) {
      ember::set_num_threads(k == 0 ? 1 : 3);
      tk::Tokenizer t = tk::Tokenizer::from_json(slurp(kDir / c.name / "template.json"));
      size_t next = 0;
      tk::Trainer trainer = trainer_of(c.meta);
      std::get<tk::UnigramTrainer>(trainer).vocab_size = 1000;
      t.train_from_iterator(trainer, [&](std::string& s) {
        if (next >= 2000 || next >= lines.size()) return false;
        s = lines[next++];
        return true;
      });
      out[k] = t.to_json(false);
    }
    ember::set_num_threads(2);
    EXPECT_EQ(out[0], out[1]) << c.name;
  }
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

  // Unigram on the corpus's first 2000 lines, quicker to train than the whole.
  std::string slice;
  const std::vector<std::string> lines = lines_of(slurp(kTrain));
  for (size_t i = 0; i < 2000 && i < lines.size(); ++i) slice += lines[i] + "\n";
  const fs::path sliced = temp_file("unigram_slice.txt", slice);
  r = ember::test::run_ember(
      "train-tokenizer --model unigram --vocab-size 1000 --template t5 --out " + out.string() +
      " " + sliced.string());
  ASSERT_EQ(r.status, 0) << r.err;
  tk::Tokenizer t5 = tk::Tokenizer::from_file(out.string());
  EXPECT_EQ(t5.token_to_id("<pad>"), 0u);
  EXPECT_EQ(t5.token_to_id("<unk>"), 2u);
  const tk::Encoding te = t5.encode("Hello World");
  ASSERT_GE(te.tokens.size(), 2u);
  EXPECT_EQ(te.tokens.back(), "</s>");
  EXPECT_EQ(te.tokens.front().rfind("\u2581", 0), 0u) << "Metaspace marks the first word";
  EXPECT_EQ(t5.decode(t5.encode("the licence 42").ids), "the licence 42");

  r = ember::test::run_ember(
      "train-tokenizer --model bpe --vocab-size 600 --special x --special x "
      "--out " +
      out.string() + " " + kTrain.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("given twice"), std::string::npos) << r.err;
}

}  // namespace
