// TaskModel (a head model with its tokenizer files) and the helpers every text task shares.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/base/error.hpp"
#include "ember/formats/json_file.hpp"
#include "ember/pipelines/text_tasks.hpp"
#include "task_common.hpp"

namespace ember::pipelines {
namespace {

// A special token of tokenizer_config.json: a string, or an AddedToken object with "content".
std::optional<std::string> special_token(const nlohmann::json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const nlohmann::json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

TaskModel TaskModel::load(const std::filesystem::path& folder, models::HeadKind kind,
                          const std::string& pipeline) {
  TaskModel t{models::load_head_model(folder, kind, "the " + pipeline + " pipeline"),
              tokenizers::Tokenizer::load((folder / "tokenizer.json").string()),
              std::nullopt,
              std::nullopt,
              std::nullopt,
              std::nullopt,
              false,
              false,
              0,
              true};
  nlohmann::json config = nlohmann::json::object();
  const std::filesystem::path config_file = folder / "tokenizer_config.json";
  if (std::filesystem::exists(config_file)) config = read_json_file(config_file);
  if (!config.is_object()) throw Error(config_file.string() + ": not a JSON object");
  // The fallbacks are the usual names of BERT-style and RoBERTa-style vocabularies.
  const auto id_of = [&](const char* key, const char* bert, const char* roberta) {
    if (auto token = special_token(config, key)) return t.tokenizer.token_to_id(*token);
    if (auto id = t.tokenizer.token_to_id(bert)) return id;
    return t.tokenizer.token_to_id(roberta);
  };
  t.unk_id = id_of("unk_token", "[UNK]", "<unk>");
  t.mask_id = id_of("mask_token", "[MASK]", "<mask>");
  t.pad_id = id_of("pad_token", "[PAD]", "<pad>");
  t.cls_id = id_of("cls_token", "[CLS]", "<s>");
  t.pad_left = config.contains("padding_side") && config["padding_side"] == "left";
  if (config.contains("clean_up_tokenization_spaces") &&
      config["clean_up_tokenization_spaces"].is_boolean()) {
    t.clean_up_spaces = config["clean_up_tokenization_spaces"].get<bool>();
  }
  if (config.contains("model_input_names") && config["model_input_names"].is_array()) {
    t.token_types =
        std::find(config["model_input_names"].begin(), config["model_input_names"].end(),
                  "token_type_ids") != config["model_input_names"].end();
  } else {
    const std::string type = models::Config::load(folder).model_type();
    t.token_types = type != "roberta" && type != "xlm-roberta" && type != "camembert" &&
                    type != "distilbert" && type != "albert";
  }
  // transformers truncates at model_max_length (the token pipeline always, the others when
  // asked); longer inputs could not be encoded anyway, so every task truncates there.
  int64_t limit = t.model.encoder->max_tokens();
  if (config.contains("model_max_length") && config["model_max_length"].is_number_integer() &&
      config["model_max_length"].get<int64_t>() > 0) {
    limit = std::min(limit, config["model_max_length"].get<int64_t>());
  }
  t.max_length = static_cast<size_t>(limit);
  t.tokenizer.set_truncation(t.max_length);
  t.tokenizer.disable_padding();
  return t;
}

std::string TaskModel::decode(const std::vector<uint32_t>& ids, bool skip_special_tokens) const {
  std::string text = tokenizer.decode(ids, skip_special_tokens);
  if (!clean_up_spaces) return text;
  // transformers' clean_up_tokenization, replacement by replacement in its order.
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kRules) {
    const std::string f(from), r(to);
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = text.find(f, pos)) != std::string::npos; pos = hit + f.size()) {
      out.append(text, pos, hit - pos);
      out += r;
    }
    out.append(text, pos);
    text = std::move(out);
  }
  return text;
}

namespace detail {

std::vector<Logits> run_sorted(const TaskModel& task,
                               const std::vector<tokenizers::Encoding>& encodings,
                               size_t batch_size, const std::vector<std::vector<int64_t>>* rows) {
  const models::HeadModel& model = task.model;
  std::vector<Logits> out(encodings.size());
  std::vector<size_t> order(encodings.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return encodings[a].size() < encodings[b].size(); });
  batch_size = std::max<size_t>(1, batch_size);
  for (size_t first = 0; first < order.size(); first += batch_size) {
    const size_t last = std::min(order.size(), first + batch_size);
    models::TokenBatch batch;
    batch.offsets.push_back(0);
    std::vector<int64_t> picked;
    for (size_t k = first; k < last; ++k) {
      const tokenizers::Encoding& e = encodings[order[k]];
      const int64_t base = static_cast<int64_t>(batch.ids.size());
      batch.ids.insert(batch.ids.end(), e.ids.begin(), e.ids.end());
      if (task.token_types) {
        batch.token_types.insert(batch.token_types.end(), e.type_ids.begin(), e.type_ids.end());
      }
      batch.offsets.push_back(static_cast<int64_t>(batch.ids.size()));
      if (rows != nullptr) {
        for (int64_t r : (*rows)[order[k]]) picked.push_back(base + r);
      }
    }
    if (rows != nullptr && picked.empty()) continue;
    const Tensor logits = model.forward(batch, picked);
    const float* p = logits.data_as<float>();
    const int64_t cols = logits.dim(1);
    for (size_t k = first; k < last; ++k) {
      const size_t i = order[k];
      int64_t n = 1;
      if (model.kind != models::HeadKind::SequenceClassification) {
        n = rows != nullptr ? static_cast<int64_t>((*rows)[i].size())
                            : static_cast<int64_t>(encodings[i].size());
      }
      out[i].rows = n;
      out[i].cols = cols;
      out[i].values.assign(p, p + n * cols);
      p += n * cols;
    }
  }
  return out;
}

std::vector<double> softmax(const float* x, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  if (n == 0) return out;
  const float max = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = std::exp(static_cast<double>(x[i]) - max);
    sum += out[static_cast<size_t>(i)];
  }
  for (double& v : out) v /= sum;
  return out;
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

int64_t argmax(const std::vector<double>& v) {
  return std::distance(v.begin(), std::max_element(v.begin(), v.end()));
}

std::vector<size_t> char_index(std::string_view text) {
  std::vector<size_t> chars(text.size() + 1);
  for (size_t b = 0, c = 0; b <= text.size(); ++b) {
    chars[b] = c;
    if (b < text.size() && utf8_lead(text[b])) ++c;
  }
  return chars;
}

}  // namespace detail
}  // namespace ember::pipelines
