#pragma once
// Random forests and extremely randomized trees (scikit-learn's RandomForestClassifier /
// RandomForestRegressor / ExtraTreesClassifier / ExtraTreesRegressor).
//
// Trees are grown in parallel on the persistent pool; tree i is seeded by
// derive_seed(random_state, i), so the model depends on the seed only, never on the thread count.
#include <cstdint>
#include <optional>
#include <vector>

#include "ember/ml/tree.hpp"

namespace ember::ml {

struct ForestParams {
  int64_t n_estimators = 100;
  std::string criterion;  // "" -> gini (classifier) / squared_error (regressor)
  std::optional<int64_t> max_depth;
  SampleCount min_samples_split = SampleCount::count(2);
  SampleCount min_samples_leaf = SampleCount::count(1);
  double min_impurity_decrease = 0;
  // Unset -> scikit-learn's default: "sqrt" for classifiers, 1.0 (all) for regressors.
  std::optional<MaxFeatures> max_features;
  std::optional<int64_t> max_leaf_nodes;
  // Unset -> true for random forests, false for extra trees.
  std::optional<bool> bootstrap;
  std::optional<SampleCount> max_samples;  // bootstrap sample size; None -> n_samples
  std::optional<int64_t> random_state;

  void validate(bool classification, std::string_view who) const;
};

enum class ForestKind { RandomForest, ExtraTrees };

// Fitted ensembles keep their trees; predictions average tree outputs.
class FittedForestClassifier {
 public:
  FittedForestClassifier(std::vector<TreeStructure> trees, int64_t n_features, int64_t n_classes)
      : trees_(std::move(trees)), n_features_(n_features), n_classes_(n_classes) {}
  Vector predict(const Matrix& x) const;
  Matrix predict_proba(const Matrix& x) const;  // mean of the trees' class probabilities
  const std::vector<TreeStructure>& trees() const { return trees_; }
  int64_t n_features() const { return n_features_; }
  int64_t n_classes() const { return n_classes_; }
  void save(ArchiveWriter& out) const;
  static FittedForestClassifier load(ArchiveReader& in);

 private:
  std::vector<TreeStructure> trees_;
  int64_t n_features_;
  int64_t n_classes_;
};

class FittedForestRegressor {
 public:
  FittedForestRegressor(std::vector<TreeStructure> trees, int64_t n_features)
      : trees_(std::move(trees)), n_features_(n_features) {}
  Vector predict(const Matrix& x) const;  // mean of the trees' predictions
  const std::vector<TreeStructure>& trees() const { return trees_; }
  int64_t n_features() const { return n_features_; }
  void save(ArchiveWriter& out) const;
  static FittedForestRegressor load(ArchiveReader& in);

 private:
  std::vector<TreeStructure> trees_;
  int64_t n_features_;
};

class ForestClassifier {
 public:
  ForestClassifier(ForestKind kind, ForestParams params);
  FittedForestClassifier fit(const Matrix& x, const Vector& y) const;

 private:
  ForestKind kind_;
  ForestParams params_;
};

class ForestRegressor {
 public:
  ForestRegressor(ForestKind kind, ForestParams params);
  FittedForestRegressor fit(const Matrix& x, const Vector& y) const;

 private:
  ForestKind kind_;
  ForestParams params_;
};

// scikit-learn's four class names as estimator types.
struct RandomForestClassifier : ForestClassifier {
  explicit RandomForestClassifier(ForestParams p = {})
      : ForestClassifier(ForestKind::RandomForest, std::move(p)) {}
};
struct ExtraTreesClassifier : ForestClassifier {
  explicit ExtraTreesClassifier(ForestParams p = {})
      : ForestClassifier(ForestKind::ExtraTrees, std::move(p)) {}
};
struct RandomForestRegressor : ForestRegressor {
  explicit RandomForestRegressor(ForestParams p = {})
      : ForestRegressor(ForestKind::RandomForest, std::move(p)) {}
};
struct ExtraTreesRegressor : ForestRegressor {
  explicit ExtraTreesRegressor(ForestParams p = {})
      : ForestRegressor(ForestKind::ExtraTrees, std::move(p)) {}
};

}  // namespace ember::ml
