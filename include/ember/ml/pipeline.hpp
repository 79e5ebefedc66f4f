#pragma once
// A model fitted on a CSV table, as `ember ml fit` saves it and any C++ caller (the CLI, a
// server) loads it: the table's feature schema (numeric columns as they are, text columns one-hot
// encoded over the categories seen at fit time, the target's class labels) followed by the
// estimator, like scikit-learn's Pipeline(ColumnTransformer, estimator).
//
// File format (version 1, little-endian ArchiveWriter): str "EMBER-ML-PIPELINE", u64 version,
// the TableSchema, then str holding save_model() of the estimator.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "ember/ml/common.hpp"
#include "ember/ml/csv.hpp"

namespace ember::ml {

// Classifiers and regressors learn from a target column; the other tasks do not.
bool is_supervised(Task task);
// Throws unless a supervised algorithm is given a target column (callers check it before slow
// work such as reading the data; fit checks it again).
void require_target_column(const Algorithm& algorithm, const std::string& target);

class TablePipeline {
 public:
  // Fits `algorithm` on `table`. Supervised algorithms need `target`; unsupervised ones drop it
  // from the features when given (so a labelled file can be clustered as it is).
  static TablePipeline fit(const Algorithm& algorithm, ParamMap& params, const CsvTable& table,
                           const std::string& target);

  // The archive described above; load() reads it back or throws naming what is wrong (an
  // unsupported version by its number).
  std::string save() const;
  static TablePipeline load(std::string_view bytes);
  // load() of a whole regular file; errors are prefixed with the path.
  static TablePipeline load_file(const std::filesystem::path& path);

  const TableSchema& schema() const { return schema_; }
  const FittedModel& model() const { return *model_; }
  const Algorithm& algorithm() const { return *algorithm_; }

  // The model's input for `table`: its columns are matched by name and the target column is
  // ignored; throws naming a column the model was not fitted with, a missing column, a type
  // mismatch or an unseen category.
  Matrix features_of(const CsvTable& table) const;
  // Class indices into schema().classes (classifiers), values, or cluster ids.
  Vector predict(const CsvTable& table) const;
  // Rows of probabilities, one column per class; throws if the algorithm has none.
  Matrix predict_proba(const CsvTable& table) const;
  Matrix transform(const CsvTable& table) const;
  // The label of a class index that predict() returned.
  const std::string& class_label(double class_index) const;

 private:
  TablePipeline(TableSchema schema, std::unique_ptr<FittedModel> model);

  TableSchema schema_;
  std::unique_ptr<FittedModel> model_;
  const Algorithm* algorithm_;
};

}  // namespace ember::ml
