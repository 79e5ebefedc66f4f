#pragma once
// Splitting and cross-validation. KFold and StratifiedKFold without shuffling produce exactly
// scikit-learn's folds; shuffled splits are seeded (same seed -> same split) but use Ember's
// own generator, so they differ from numpy's.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ember/ml/common.hpp"

namespace ember::ml {

struct Fold {
  std::vector<int64_t> train;
  std::vector<int64_t> test;
};

struct KFold {
  int64_t n_splits = 5;
  bool shuffle = false;
  uint64_t random_state = 0;
  std::vector<Fold> split(int64_t n_samples) const;
};

// Class proportions kept in every fold; y holds class indices.
struct StratifiedKFold {
  int64_t n_splits = 5;
  bool shuffle = false;
  uint64_t random_state = 0;
  std::vector<Fold> split(const Vector& y) const;
};

struct TrainTestSplit {
  Matrix x_train, x_test;
  Vector y_train, y_test;
};
// test_size in (0, 1) is a fraction (test count = ceil(fraction * n)), >= 1 a count. With
// stratify, y's class proportions are kept in both parts.
TrainTestSplit train_test_split(const Matrix& x, const Vector& y, double test_size,
                                uint64_t random_state, bool stratify = false);

// Scores of algorithm `name` (fitted with `params`) on each fold. Folds are StratifiedKFold
// for classifiers and KFold for the rest (both unshuffled), like scikit-learn's
// cross_val_score(cv=int). `metric` empty -> accuracy for classifiers, r2 for regressors.
std::vector<double> cross_val_score(const std::string& name, const ParamMap& params,
                                    const Matrix& x, const Vector& y, int64_t cv,
                                    const std::string& metric = "");

struct GridSearchResult {
  std::vector<std::map<std::string, std::string>> candidates;
  std::vector<double> mean_scores;
  size_t best_index = 0;
  std::unique_ptr<FittedModel> best_model;  // refitted on all the data
};
// Exhaustive search over the cartesian product of `grid` (parameter -> values as strings),
// merged over `base`. Ties keep the first candidate in grid order (as scikit-learn's rank).
GridSearchResult grid_search_cv(const std::string& name, const ParamMap& base,
                                const std::map<std::string, std::vector<std::string>>& grid,
                                const Matrix& x, const Vector& y, int64_t cv,
                                const std::string& metric = "");

// SplitMix64-based generator used by the seeded splitters.
struct SplitRng {
  uint64_t state;
  explicit SplitRng(uint64_t seed) : state(seed) {}
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n)
};
void shuffle_indices(std::vector<int64_t>& v, SplitRng& rng);

}  // namespace ember::ml
