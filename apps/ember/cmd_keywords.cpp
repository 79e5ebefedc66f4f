// `ember keywords`: KeyBERT's keyword extraction with a sentence-transformers model. Input: JSON
// Lines of strings (plain lines with --lines); output: one JSON array of {"keyword", "score"} per
// input line (KeyBERT's (keyword, score) pairs, named), each batch printed as soon as it is done.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/hub/hub.hpp"
#include "ember/pipelines/keywords.hpp"
#include "input.hpp"
#include "output.hpp"

namespace {

using ember::Error;
using json = nlohmann::ordered_json;
namespace pl = ember::pipelines;

struct KeywordsCli {
  std::string model = "all-MiniLM-L6-v2";
  bool lines = false, mmr = false, max_sum = false;
  std::string ngram = "1,1", stop_words = "english";
  pl::KeywordOptions options;
};

// "A,B" with 1 <= A <= B.
std::pair<size_t, size_t> parse_ngram(const std::string& text) {
  const size_t comma = text.find(',');
  const auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string::npos) {
      throw Error("keywords: --ngram '" + text + "' is not A,B (two word counts up to 9999)");
    }
    return static_cast<size_t>(std::stoul(s));
  };
  if (comma == std::string::npos) {
    throw Error("keywords: --ngram '" + text + "' is not A,B (two word counts, e.g. 1,2)");
  }
  return {number(text.substr(0, comma)), number(text.substr(comma + 1))};
}

void run_keywords(KeywordsCli& cli) {
  if (cli.mmr && cli.max_sum) throw Error("keywords: --mmr and --max-sum exclude each other");
  if (cli.stop_words == "none") {
    cli.options.stop_words.clear();
  } else if (cli.stop_words != "english") {
    throw Error("keywords: --stop-words '" + cli.stop_words + "' is not english or none");
  }
  std::tie(cli.options.ngram_min, cli.options.ngram_max) = parse_ngram(cli.ngram);
  cli.options.method = cli.mmr       ? pl::KeywordMethod::Mmr
                       : cli.max_sum ? pl::KeywordMethod::MaxSum
                                     : pl::KeywordMethod::Similarity;
  cli.options.validate();
  const pl::KeywordExtractor extractor = pl::KeywordExtractor::load(
      ember::hub::resolve_model(cli.model, ember::hub::HubOptions::from_environment()));
  ember::cli::for_each_text_batch(
      cli.lines, cli.options.batch_size, [&](const std::vector<std::string>& documents) {
        for (const auto& keywords : extractor(documents, cli.options)) {
          json out = json::array();
          for (const auto& k : keywords)
            out.push_back({{"keyword", k.keyword}, {"score", k.score}});
          ember::cli::out().line(out.dump(-1, ' ', false, json::error_handler_t::replace));
        }
      });
}

const ember::cli::CommandRegistrar keywords_registrar{
    {"keywords", [](CLI::App& app) {
       auto cli = std::make_shared<KeywordsCli>();
       CLI::App* cmd = app.add_subcommand(
           "keywords",
           "Keyword extraction as KeyBERT does it: one [{\"keyword\", \"score\"}] per line, most "
           "similar to the document first");
       cmd->add_option("--model", cli->model,
                       "sentence-transformers folder, Hugging Face model id, or built-in name")
           ->capture_default_str();
       cmd->add_option("--top-n", cli->options.top_n, "keywords per document (0: every candidate)")
           ->check(CLI::NonNegativeNumber)
           ->capture_default_str();
       CLI::Option* mmr =
           cmd->add_flag("--mmr", cli->mmr, "diversify with Maximal Marginal Relevance");
       cmd->add_option("--diversity", cli->options.diversity, "MMR's diversity, 0 to 1")
           ->needs(mmr)
           ->capture_default_str();
       CLI::Option* max_sum =
           cmd->add_flag("--max-sum", cli->max_sum, "diversify with Max Sum Distance");
       cmd->add_option("--candidates", cli->options.nr_candidates,
                       "Max Sum's pool: the most similar candidates it chooses from")
           ->needs(max_sum)
           ->check(CLI::NonNegativeNumber)
           ->capture_default_str();
       cmd->add_option("--ngram", cli->ngram, "keyphrase lengths A,B in words")
           ->capture_default_str();
       cmd->add_option("--stop-words", cli->stop_words, "english (scikit-learn's list) or none")
           ->capture_default_str();
       cmd->add_flag("--lines", cli->lines, "read plain text lines instead of JSON strings");
       cmd->add_option("--batch-size", cli->options.batch_size, "texts embedded together")
           ->check(CLI::Range(1, 4096))
           ->capture_default_str();
       cmd->callback([cli] { run_keywords(*cli); });
     }}};

}  // namespace
