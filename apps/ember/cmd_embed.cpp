// `ember embed` and `ember similarity`: sentence embeddings from a sentence-transformers folder.
// embed streams: each batch of input lines is printed as soon as it is embedded.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "command.hpp"
#include "ember/base/error.hpp"
#include "ember/hub/hub.hpp"
#include "ember/pipelines/sentence_embedding.hpp"
#include "input.hpp"
#include "output.hpp"

namespace {

// --model: a folder, a built-in short name or a Hugging Face id (downloaded when missing).
std::filesystem::path resolve(const std::string& spec) {
  return ember::hub::resolve_model(spec, ember::hub::HubOptions::from_environment());
}

using ember::Error;
using ember::pipelines::SentenceEmbedder;
using nlohmann::json;

struct EmbedOptions {
  std::string model = "all-MiniLM-L6-v2";
  bool normalize = false, lines = false;
  size_t batch_size = 32;
};

void print_rows(const ember::Tensor& rows) {
  const int64_t dim = rows.dim(1);
  const float* p = rows.data_as<float>();
  for (int64_t r = 0; r < rows.dim(0); ++r) {
    json row = json::array();
    for (int64_t d = 0; d < dim; ++d) row.push_back(p[r * dim + d]);
    ember::cli::out().line(row.dump());
  }
}

void run_embed(const EmbedOptions& opt) {
  const SentenceEmbedder embedder = SentenceEmbedder::load(resolve(opt.model));
  ember::cli::for_each_text_batch(
      opt.lines, opt.batch_size, [&](const std::vector<std::string>& batch) {
        print_rows(embedder.embed(batch, opt.normalize, opt.batch_size));
      });
}

void run_similarity(const std::string& model, const std::vector<std::string>& texts, bool rank) {
  if (texts.size() < 2) throw Error("similarity: give at least two texts");
  const SentenceEmbedder embedder = SentenceEmbedder::load(resolve(model));
  const ember::Tensor rows = embedder.embed(texts);
  const size_t dim = static_cast<size_t>(rows.dim(1));
  const float* p = rows.data_as<float>();
  std::vector<std::pair<double, size_t>> scores;
  for (size_t i = 1; i < texts.size(); ++i)
    scores.emplace_back(ember::pipelines::cosine_similarity(p, p + i * dim, dim), i);
  if (rank) {
    std::stable_sort(scores.begin(), scores.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
  }
  for (const auto& [score, i] : scores) {
    json o;
    o["similarity"] = score;
    o["text"] = texts[i];
    ember::cli::out().line(o.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

const ember::cli::CommandRegistrar embed_registrar{
    {"embed", [](CLI::App& app) {
       auto opt = std::make_shared<EmbedOptions>();
       CLI::App* cmd = app.add_subcommand(
           "embed",
           "Sentence embeddings: JSON Lines of strings on stdin -> one JSON array per line");
       cmd->add_option("--model", opt->model,
                       "sentence-transformers folder, Hugging Face model id, or built-in name")
           ->capture_default_str();
       cmd->add_flag("--normalize", opt->normalize, "L2-normalize every embedding");
       cmd->add_flag("--lines", opt->lines, "read plain text lines instead of JSON strings");
       cmd->add_option("--batch-size", opt->batch_size, "texts encoded together")
           ->check(CLI::Range(1, 4096))
           ->capture_default_str();
       cmd->callback([opt] { run_embed(*opt); });
     }}};

const ember::cli::CommandRegistrar similarity_registrar{
    {"similarity", [](CLI::App& app) {
       auto model = std::make_shared<std::string>("all-MiniLM-L6-v2");
       auto texts = std::make_shared<std::vector<std::string>>();
       auto rank = std::make_shared<bool>(false);
       CLI::App* cmd = app.add_subcommand(
           "similarity", "Cosine similarity of the first text's embedding to each of the others'");
       cmd->add_option("--model", *model,
                       "sentence-transformers folder, Hugging Face model id, or built-in name")
           ->capture_default_str();
       cmd->add_option("texts", *texts, "TEXT_A TEXT_B...")->required();
       cmd->add_flag("--rank", *rank, "most similar first instead of input order");
       cmd->callback([model, texts, rank] { run_similarity(*model, *texts, *rank); });
     }}};

}  // namespace
