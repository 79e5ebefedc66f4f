#include "ember/ml/pipeline.hpp"

#include "ember/core/atomic_file.hpp"

namespace ember::ml {
namespace {

constexpr std::string_view kMagic = "EMBER-ML-PIPELINE";
constexpr uint64_t kVersion = 1;

// A model file is read whole; none comes near this size.
constexpr uint64_t kMaxFileBytes = uint64_t{4} << 30;

}  // namespace

bool is_supervised(Task task) {
  return task == Task::Classification || task == Task::Regression;
}

void require_target_column(const Algorithm& algorithm, const std::string& target) {
  if (is_supervised(algorithm.task) && target.empty()) {
    throw Error(algorithm.name + " is supervised: give the target column with --target");
  }
}

TablePipeline::TablePipeline(TableSchema schema, std::unique_ptr<FittedModel> model)
    : schema_(std::move(schema)),
      model_(std::move(model)),
      algorithm_(&find_algorithm(model_->algorithm())) {}

TablePipeline TablePipeline::fit(const Algorithm& algorithm, ParamMap& params,
                                 const CsvTable& table, const std::string& target) {
  require_target_column(algorithm, target);
  const bool supervised = is_supervised(algorithm.task);
  TableSchema schema =
      TableSchema::fit(table, target, algorithm.task == Task::Classification, supervised);
  const Matrix x = schema.features_of(table);
  Vector y;
  if (supervised) y = schema.target_of(table);
  auto model = algorithm.fit(params, x, supervised ? &y : nullptr);
  return TablePipeline(std::move(schema), std::move(model));
}

std::string TablePipeline::save() const {
  ArchiveWriter out;
  out.str(kMagic);
  out.u64(kVersion);
  schema_.save(out);
  out.str(save_model(*model_));
  return out.bytes();
}

TablePipeline TablePipeline::load(std::string_view bytes) {
  ArchiveReader in(bytes);
  if (bytes.size() < 8 || in.str() != kMagic) throw Error("not an Ember ML model file");
  const uint64_t version = in.u64();
  if (version != kVersion) {
    throw Error("unsupported model file version " + std::to_string(version) +
                " (this Ember reads " + std::to_string(kVersion) + ")");
  }
  TableSchema schema = TableSchema::load(in);
  const std::string model_bytes = in.str();
  if (!in.at_end()) throw Error("model file has trailing bytes");
  TablePipeline p(std::move(schema), load_model(model_bytes));
  if (p.model_->n_features() != p.schema_.n_matrix_columns()) {
    throw Error("model file is corrupt (feature count)");
  }
  return p;
}

TablePipeline TablePipeline::load_file(const std::filesystem::path& path) {
  try {
    return load(read_regular_file(path, kMaxFileBytes));
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
}

Matrix TablePipeline::features_of(const CsvTable& table) const {
  // features_of alone ignores extra columns; a column that is neither a feature nor the target
  // is rejected instead, since it usually means the wrong file or a misspelt header.
  for (const CsvColumn& column : table.columns) {
    if (column.name == schema_.target) continue;
    bool known = false;
    for (const FeatureColumn& f : schema_.features) known = known || f.name == column.name;
    if (!known) {
      throw Error("the data has column '" + column.name +
                  "', which the model was not fitted with (it expects " +
                  std::to_string(schema_.features.size()) + " feature columns)");
    }
  }
  Matrix x = schema_.features_of(table);
  if (x.cols != model_->n_features()) {
    throw Error("the data has " + std::to_string(x.cols) + " features, the model expects " +
                std::to_string(model_->n_features()));
  }
  return x;
}

Vector TablePipeline::predict(const CsvTable& table) const {
  return model_->predict(features_of(table));
}

Matrix TablePipeline::predict_proba(const CsvTable& table) const {
  const Matrix x = features_of(table);
  Matrix proba = model_->predict_proba(x);
  if (proba.cols != static_cast<int64_t>(schema_.classes.size()) || proba.rows != x.rows) {
    throw Error("internal error: probability columns do not match the classes");
  }
  return proba;
}

Matrix TablePipeline::transform(const CsvTable& table) const {
  return model_->transform(features_of(table));
}

const std::string& TablePipeline::class_label(double class_index) const {
  if (!(class_index >= 0) || class_index >= static_cast<double>(schema_.classes.size())) {
    throw Error("internal error: predicted class index out of range");
  }
  return schema_.classes[static_cast<size_t>(class_index)];
}

}  // namespace ember::ml
