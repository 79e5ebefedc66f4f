// Text classification and zero-shot classification (NLI), as transformers' pipelines compute them.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>

#include "ember/base/error.hpp"
#include "ember/pipelines/text_tasks.hpp"
#include "task_common.hpp"

namespace ember::pipelines {

ScoreFunction parse_score_function(const std::string& name) {
  if (name == "sigmoid") return ScoreFunction::Sigmoid;
  if (name == "softmax") return ScoreFunction::Softmax;
  if (name == "none") return ScoreFunction::None;
  throw Error("unknown score function '" + name + "' (sigmoid, softmax, none)");
}

TextClassifier TextClassifier::load(const std::filesystem::path& folder) {
  return TextClassifier(
      TaskModel::load(folder, models::HeadKind::SequenceClassification, "classify"));
}

std::vector<std::vector<LabelScore>> TextClassifier::operator()(
    const std::vector<std::string>& texts, const Options& options) const {
  const models::HeadModel& model = m_.model;
  ScoreFunction function = options.function;
  if (function == ScoreFunction::Default) {
    // transformers' TextClassificationPipeline.postprocess, in its order.
    if (model.problem_type == "regression") {
      function = ScoreFunction::None;
    } else if (model.problem_type == "multi_label_classification" || model.labels.size() == 1) {
      function = ScoreFunction::Sigmoid;
    } else {
      function = ScoreFunction::Softmax;
    }
  }
  const std::vector<detail::Logits> logits =
      detail::run_sorted(m_, m_.tokenizer.encode_batch(texts, true), options.batch_size);
  std::vector<std::vector<LabelScore>> out(texts.size());
  for (size_t t = 0; t < texts.size(); ++t) {
    const float* row = logits[t].row(0);
    const int64_t n = logits[t].cols;
    std::vector<double> scores(row, row + n);
    if (function == ScoreFunction::Softmax) scores = detail::softmax(row, n);
    if (function == ScoreFunction::Sigmoid) {
      for (double& s : scores) s = detail::sigmoid(s);
    }
    for (int64_t i = 0; i < n; ++i)
      out[t].push_back({model.labels[static_cast<size_t>(i)], scores[static_cast<size_t>(i)]});
    // Python's sort(reverse=True) is stable: equal scores keep label order.
    std::stable_sort(out[t].begin(), out[t].end(),
                     [](const LabelScore& a, const LabelScore& b) { return a.score > b.score; });
    if (options.top_k > 0 && out[t].size() > options.top_k) out[t].resize(options.top_k);
  }
  return out;
}

ZeroShotClassifier ZeroShotClassifier::load(const std::filesystem::path& folder) {
  ZeroShotClassifier z(
      TaskModel::load(folder, models::HeadKind::SequenceClassification, "zero-shot"));
  const std::vector<std::string>& labels = z.m_.model.labels;
  for (size_t i = 0; i < labels.size(); ++i) {
    std::string lower = labels[i];
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower.starts_with("entail")) {
      z.entailment_id_ = static_cast<int64_t>(i);
      break;
    }
  }
  return z;
}

std::vector<ZeroShotResult> ZeroShotClassifier::operator()(
    const std::vector<std::string>& sequences, const Options& options) const {
  if (options.labels.empty()) throw Error("zero-shot: no candidate labels");
  const std::string& tmpl = options.hypothesis_template;
  const size_t slot = tmpl.find("{}");
  if (slot == std::string::npos || tmpl.find("{}", slot + 2) != std::string::npos) {
    throw Error("zero-shot: the hypothesis template '" + tmpl +
                "' must contain {} (once) where the label goes");
  }
  std::vector<tokenizers::EncodeInput> pairs;
  for (const std::string& s : sequences) {
    for (const std::string& label : options.labels)
      pairs.push_back({s, tmpl.substr(0, slot) + label + tmpl.substr(slot + 2)});
  }
  const std::vector<detail::Logits> logits =
      detail::run_sorted(m_, m_.tokenizer.encode_batch(pairs, true), options.batch_size);
  const size_t n = options.labels.size();
  const int64_t classes = static_cast<int64_t>(m_.model.labels.size());
  // Python indexing: -1 is the last column.
  const auto column = [&](int64_t id) { return id < 0 ? classes + id : id; };
  const int64_t entail = column(entailment_id_);
  std::vector<ZeroShotResult> out(sequences.size());
  for (size_t s = 0; s < sequences.size(); ++s) {
    std::vector<double> scores(n);
    if (options.multi_label || n == 1) {
      // transformers takes column 0 as contradiction without looking it up (-1 when entailment
      // is column 0), and a softmax over the two.
      const int64_t contra = column(entailment_id_ == 0 ? -1 : 0);
      for (size_t l = 0; l < n; ++l) {
        const float* row = logits[s * n + l].row(0);
        const float two[2] = {row[contra], row[entail]};
        scores[l] = detail::softmax(two, 2)[1];
      }
    } else {
      std::vector<float> entailment(n);
      for (size_t l = 0; l < n; ++l) entailment[l] = logits[s * n + l].row(0)[entail];
      scores = detail::softmax(entailment.data(), static_cast<int64_t>(n));
    }
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return scores[a] > scores[b]; });
    out[s].sequence = sequences[s];
    for (size_t i : order) {
      out[s].labels.push_back(options.labels[i]);
      out[s].scores.push_back(scores[i]);
    }
  }
  return out;
}

}  // namespace ember::pipelines
