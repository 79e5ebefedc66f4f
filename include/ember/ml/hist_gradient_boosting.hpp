#pragma once
// Histogram-based gradient boosting (scikit-learn's HistGradientBoostingClassifier /
// HistGradientBoostingRegressor): features binned into at most max_bins quantile bins, trees
// grown leaf-wise (best gain first) from per-node gradient/hessian histograms, with the
// subtraction trick (build the smaller child's histogram, subtract it from the parent's).
//
// Losses: squared error (regression), log loss (binary) and multinomial log loss (softmax, one
// tree per class and iteration). Early stopping on the validation loss as scikit-learn does.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/ml/common.hpp"
#include "ember/ml/tree.hpp"

namespace ember::ml {

struct HistGradientBoostingParams {
  double learning_rate = 0.1;
  int64_t max_iter = 100;
  std::optional<int64_t> max_leaf_nodes = 31;
  std::optional<int64_t> max_depth;
  int64_t min_samples_leaf = 20;
  double l2_regularization = 0;
  int64_t max_bins = 255;
  std::string early_stopping = "auto";  // "auto" (on when n_samples > 10000), "True", "False"
  std::optional<double> validation_fraction = 0.1;  // None: stop on the training loss
  int64_t n_iter_no_change = 10;
  double tol = 1e-7;
  std::optional<int64_t> random_state;

  void validate(std::string_view who) const;
};

// Binning of one feature: x goes to the number of thresholds strictly below it.
struct FeatureBins {
  std::vector<double> thresholds;  // increasing; at most max_bins - 1 of them
};

// Bin edges like scikit-learn's _BinMapper: midpoints between distinct values when there are
// at most max_bins of them, else the "averaged_inverted_cdf" percentiles of the (subsampled)
// column, deduplicated.
FeatureBins compute_feature_bins(std::vector<double> column, int64_t max_bins);

class FittedHistGradientBoosting {
 public:
  // n_classes: 0 for regression; trees are stored iteration-major, trees_per_iteration each.
  FittedHistGradientBoosting(int64_t n_features, int64_t n_classes, Vector baseline,
                             std::vector<TreeStructure> trees);
  // Raw scores (rows x trees_per_iteration): baseline plus the trees' leaf values.
  Matrix raw_predict(const Matrix& x) const;
  Vector predict(const Matrix& x) const;        // class indices or values
  Matrix predict_proba(const Matrix& x) const;  // classifiers only
  int64_t n_features() const { return n_features_; }
  int64_t n_classes() const { return n_classes_; }
  int64_t n_iter() const;
  int64_t trees_per_iteration() const { return static_cast<int64_t>(baseline_.size()); }
  const std::vector<TreeStructure>& trees() const { return trees_; }
  void save(ArchiveWriter& out) const;
  static FittedHistGradientBoosting load(ArchiveReader& in, bool classification);

 private:
  int64_t n_features_;
  int64_t n_classes_;
  Vector baseline_;
  std::vector<TreeStructure> trees_;
};

class HistGradientBoostingClassifier {
 public:
  explicit HistGradientBoostingClassifier(HistGradientBoostingParams params = {});
  FittedHistGradientBoosting fit(const Matrix& x, const Vector& y) const;

 private:
  HistGradientBoostingParams params_;
};

class HistGradientBoostingRegressor {
 public:
  explicit HistGradientBoostingRegressor(HistGradientBoostingParams params = {});
  FittedHistGradientBoosting fit(const Matrix& x, const Vector& y) const;

 private:
  HistGradientBoostingParams params_;
};

}  // namespace ember::ml
