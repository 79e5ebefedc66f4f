#include "ember/pipelines/sentence_embedding.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/core/ops.hpp"
#include "ember/formats/json_file.hpp"

namespace ember::pipelines {
namespace {

using nlohmann::json;

std::string last_component(const std::string& type) {
  const size_t dot = type.rfind('.');
  return dot == std::string::npos ? type : type.substr(dot + 1);
}

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& message) {
  throw Error(file.string() + ": " + message);
}

std::vector<Pooling> read_pooling(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "config.json";
  const json config = read_json_file(file);
  if (!config.is_object()) fail(file, "not a JSON object");
  std::vector<Pooling> modes;
  const auto mode_named = [&](const std::string& name) {
    if (name == "cls") return Pooling::Cls;
    if (name == "max") return Pooling::Max;
    if (name == "mean") return Pooling::Mean;
    if (name == "mean_sqrt_len_tokens") return Pooling::MeanSqrtLen;
    if (name == "lasttoken") return Pooling::LastToken;
    fail(file, "unsupported pooling_mode '" + name +
                   "' (supported: cls, max, mean, mean_sqrt_len_tokens, lasttoken)");
  };
  if (config.contains("pooling_mode") && config["pooling_mode"].is_string()) {
    modes.push_back(mode_named(config["pooling_mode"].get<std::string>()));
    return modes;
  }
  // The boolean form; several may be set and their results are concatenated in this order.
  const std::pair<const char*, Pooling> flags[] = {
      {"pooling_mode_cls_token", Pooling::Cls},
      {"pooling_mode_max_tokens", Pooling::Max},
      {"pooling_mode_mean_tokens", Pooling::Mean},
      {"pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen},
      {"pooling_mode_lasttoken", Pooling::LastToken},
  };
  for (const auto& [key, mode] : flags) {
    if (!config.contains(key)) continue;
    if (!config[key].is_boolean()) fail(file, std::string("'") + key + "' is not a boolean");
    if (config[key].get<bool>()) modes.push_back(mode);
  }
  if (config.contains("pooling_mode_weightedmean_tokens") &&
      config["pooling_mode_weightedmean_tokens"] == true) {
    fail(file, "pooling_mode_weightedmean_tokens is not supported");
  }
  if (modes.empty()) fail(file, "no pooling mode is set");
  return modes;
}

nn::Activation dense_activation(const std::string& name, const std::filesystem::path& file) {
  const std::string last = last_component(name);
  if (last == "Identity") return nn::Activation::Identity;
  if (last == "Tanh") return nn::Activation::Tanh;
  if (last == "ReLU") return nn::Activation::Relu;
  if (last == "GELU") return nn::Activation::Gelu;
  if (last == "SiLU") return nn::Activation::Silu;
  fail(file, "unsupported activation_function '" + name + "'");
}

DenseStep read_dense(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "config.json";
  const json config = read_json_file(file);
  const auto integer = [&](const char* key) {
    if (!config.is_object() || !config.contains(key) || !config[key].is_number_integer() ||
        config[key].get<int64_t>() < 1) {
      fail(file, std::string("missing or invalid '") + key + "'");
    }
    return config[key].get<int64_t>();
  };
  const int64_t in = integer("in_features"), out = integer("out_features");
  const bool bias = !config.contains("bias") || config["bias"] == true;
  DenseStep step;
  step.activation = nn::Activation::Identity;
  if (config.contains("activation_function")) {
    if (!config["activation_function"].is_string())
      fail(file, "'activation_function' is not a string");
    step.activation = dense_activation(config["activation_function"].get<std::string>(), file);
  }
  step.linear = nn::Linear::load(nn::Weights::open(dir), "linear", in, out, bias);
  return step;
}

// sentence-transformers' length limit for the Transformer module in `dir`.
size_t read_max_seq_length(const std::filesystem::path& dir, int64_t model_max) {
  for (const char* name : {"sentence_bert_config.json", "sentence_xlnet_config.json"}) {
    const std::filesystem::path file = dir / name;
    if (!std::filesystem::exists(file)) continue;
    const json config = read_json_file(file);
    if (!config.is_object()) fail(file, "not a JSON object");
    if (config.contains("do_lower_case") && config["do_lower_case"] == true) {
      fail(file, "do_lower_case = true is not supported");
    }
    if (config.contains("max_seq_length") && !config["max_seq_length"].is_null()) {
      if (!config["max_seq_length"].is_number_integer() ||
          config["max_seq_length"].get<int64_t>() < 1)
        fail(file, "'max_seq_length' is not a positive integer");
      return static_cast<size_t>(std::min(config["max_seq_length"].get<int64_t>(), model_max));
    }
  }
  const std::filesystem::path tokenizer_config = dir / "tokenizer_config.json";
  if (std::filesystem::exists(tokenizer_config)) {
    const json config = read_json_file(tokenizer_config);
    if (config.is_object() && config.contains("model_max_length") &&
        config["model_max_length"].is_number_integer()) {
      const int64_t limit = config["model_max_length"].get<int64_t>();
      if (limit > 0) return static_cast<size_t>(std::min(limit, model_max));
    }
  }
  return static_cast<size_t>(model_max);
}

}  // namespace

SentenceEmbedder SentenceEmbedder::load(const std::filesystem::path& folder) {
  SentenceEmbedder e;
  std::filesystem::path transformer_dir = folder;
  bool have_pooling = false;
  const std::filesystem::path modules_file = folder / "modules.json";
  json modules = json::array();
  if (std::filesystem::exists(modules_file)) {
    modules = read_json_file(modules_file);
    if (!modules.is_array()) fail(modules_file, "not a JSON array");
  } else {
    modules.push_back({{"path", ""}, {"type", "sentence_transformers.models.Transformer"}});
  }
  std::vector<std::pair<std::string, std::filesystem::path>> steps;
  for (const json& m : modules) {
    if (!m.is_object() || !m.contains("type") || !m["type"].is_string() || !m.contains("path") ||
        !m["path"].is_string()) {
      fail(modules_file, "every module needs string 'type' and 'path' fields");
    }
    const std::string path = m["path"].get<std::string>();
    if (path.find("..") != std::string::npos || (!path.empty() && path[0] == '/')) {
      fail(modules_file, "module path '" + path + "' leaves the model folder");
    }
    steps.emplace_back(last_component(m["type"].get<std::string>()), folder / path);
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& [type, dir] = steps[i];
    if (type == "Transformer") {
      if (i != 0) fail(modules_file, "the Transformer module must come first");
      transformer_dir = dir;
      e.encoder_ = models::load_encoder(dir);
      e.dimension_ = e.encoder_->hidden_size();
      e.max_seq_length_ = read_max_seq_length(dir, e.encoder_->max_tokens());
      e.tokenizer_ = std::make_unique<tokenizers::Tokenizer>(
          tokenizers::Tokenizer::load((dir / "tokenizer.json").string()));
      // sentence-transformers truncates at its own limit and never lets padding into pooling.
      e.tokenizer_->set_truncation(e.max_seq_length_);
      e.tokenizer_->disable_padding();
    } else if (!e.encoder_) {
      fail(modules_file, "the first module must be a Transformer");
    } else if (type == "Pooling") {
      e.pooling_ = read_pooling(dir);
      e.dimension_ *= static_cast<int64_t>(e.pooling_.size());
      have_pooling = true;
    } else if (type == "Dense") {
      DenseStep step = read_dense(dir);
      if (step.linear.in_features() != e.dimension_) {
        fail(dir / "config.json", "in_features " + std::to_string(step.linear.in_features()) +
                                      " differs from the previous step's " +
                                      std::to_string(e.dimension_) + " outputs");
      }
      e.dimension_ = step.linear.out_features();
      e.dense_.push_back(std::move(step));
    } else if (type == "Normalize") {
      // Its folder holds nothing and may be missing (all-MiniLM-L6-v2 lists one that is not there).
      e.normalize_ = true;
    } else {
      fail(modules_file, "unsupported module type '" + type + "'");
    }
  }
  if (!e.encoder_) fail(modules_file, "no Transformer module");
  if (!have_pooling) e.pooling_ = {Pooling::Mean};
  return e;
}

Tensor SentenceEmbedder::embed(const std::vector<std::string>& texts, bool normalize,
                               size_t batch_size) const {
  const int64_t count = static_cast<int64_t>(texts.size());
  Tensor out = Tensor::empty(DType::F32, {count, dimension_});
  if (count == 0) return out;
  batch_size = std::max<size_t>(1, batch_size);
  const int64_t hidden = encoder_->hidden_size();
  for (size_t first = 0; first < texts.size(); first += batch_size) {
    const size_t last = std::min(texts.size(), first + batch_size);
    const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(first),
                                         texts.begin() + static_cast<std::ptrdiff_t>(last));
    const models::TokenBatch batch =
        models::TokenBatch::from_sequences(tokenizer_->encode_batch_ids(chunk, true));
    const Tensor states = encoder_->forward(batch);
    const float* h = states.data_as<float>();
    const int64_t pooled_dim = hidden * static_cast<int64_t>(pooling_.size());
    Tensor pooled = Tensor::empty(DType::F32, {static_cast<int64_t>(chunk.size()), pooled_dim});
    float* p = pooled.mutable_data_as<float>();
    std::vector<double> sum(static_cast<size_t>(hidden));
    std::vector<float> best(static_cast<size_t>(hidden));
    for (size_t s = 0; s < chunk.size(); ++s) {
      const int64_t begin = batch.offsets[s], end = batch.offsets[s + 1];
      const int64_t len = end - begin;
      // Token sums and maxima once per sequence, row by row; each mode reads what it needs.
      std::fill(sum.begin(), sum.end(), 0.0);
      std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
      for (int64_t t = begin; t < end; ++t) {
        for (int64_t d = 0; d < hidden; ++d) {
          sum[static_cast<size_t>(d)] += h[t * hidden + d];
          best[static_cast<size_t>(d)] = std::max(best[static_cast<size_t>(d)], h[t * hidden + d]);
        }
      }
      for (size_t m = 0; m < pooling_.size(); ++m) {
        float* dst = p + static_cast<int64_t>(s) * pooled_dim + static_cast<int64_t>(m) * hidden;
        for (int64_t d = 0; d < hidden; ++d) {
          const double acc = sum[static_cast<size_t>(d)];
          float v = 0.0f;
          if (len > 0) {
            switch (pooling_[m]) {
              case Pooling::Cls:
                v = h[begin * hidden + d];
                break;
              case Pooling::LastToken:
                v = h[(end - 1) * hidden + d];
                break;
              case Pooling::Max:
                v = best[static_cast<size_t>(d)];
                break;
              case Pooling::Mean:
                v = static_cast<float>(acc / static_cast<double>(len));
                break;
              case Pooling::MeanSqrtLen:
                v = static_cast<float>(acc / std::sqrt(static_cast<double>(len)));
                break;
            }
          }
          dst[d] = v;
        }
      }
    }
    for (const DenseStep& step : dense_) {
      pooled = step.linear(pooled);
      nn::activate_(pooled, step.activation);
    }
    float* o = out.mutable_data_as<float>() + static_cast<int64_t>(first) * dimension_;
    std::copy(pooled.data_as<float>(), pooled.data_as<float>() + pooled.numel(), o);
  }
  if (normalize || normalize_) {
    float* o = out.mutable_data_as<float>();
    for (int64_t r = 0; r < count; ++r) {
      float* row = o + r * dimension_;
      double sq = 0;
      for (int64_t d = 0; d < dimension_; ++d) sq += static_cast<double>(row[d]) * row[d];
      // torch.nn.functional.normalize divides by max(norm, 1e-12).
      const double norm = std::max(std::sqrt(sq), 1e-12);
      for (int64_t d = 0; d < dimension_; ++d) row[d] = static_cast<float>(row[d] / norm);
    }
  }
  return out;
}

double cosine_similarity(const float* a, const float* b, size_t n) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < n; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  // As torch's cosine_similarity: each norm clamped at 1e-8.
  return dot / (std::max(std::sqrt(na), 1e-8) * std::max(std::sqrt(nb), 1e-8));
}

}  // namespace ember::pipelines
