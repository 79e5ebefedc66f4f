#include "ember/ml/model_selection.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/ml/metrics.hpp"

namespace ember::ml {

uint64_t SplitRng::next() {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t SplitRng::below(uint64_t n) {
  // Rejection sampling keeps the draw unbiased.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = next();
  } while (v >= limit);
  return v % n;
}

void shuffle_indices(std::vector<int64_t>& v, SplitRng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

namespace {

void check_splits(int64_t n_splits, int64_t n_samples) {
  if (n_splits < 2)
    throw Error("cross-validation needs at least 2 folds, got " + std::to_string(n_splits));
  if (n_splits > n_samples) {
    throw Error("cannot have number of folds " + std::to_string(n_splits) +
                " greater than the number of samples " + std::to_string(n_samples));
  }
}

std::vector<Fold> folds_from_assignment(const std::vector<int64_t>& test_fold, int64_t k) {
  std::vector<Fold> folds(static_cast<size_t>(k));
  for (size_t i = 0; i < test_fold.size(); ++i) {
    for (int64_t f = 0; f < k; ++f) {
      auto& fold = folds[static_cast<size_t>(f)];
      (test_fold[i] == f ? fold.test : fold.train).push_back(static_cast<int64_t>(i));
    }
  }
  return folds;
}

}  // namespace

std::vector<Fold> KFold::split(int64_t n_samples) const {
  check_splits(n_splits, n_samples);
  std::vector<int64_t> order(static_cast<size_t>(n_samples));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle) {
    SplitRng rng(random_state);
    shuffle_indices(order, rng);
  }
  // The first n % k folds get one extra sample, as scikit-learn.
  std::vector<int64_t> test_fold(static_cast<size_t>(n_samples));
  int64_t pos = 0;
  for (int64_t f = 0; f < n_splits; ++f) {
    const int64_t size = n_samples / n_splits + (f < n_samples % n_splits ? 1 : 0);
    for (int64_t i = 0; i < size; ++i)
      test_fold[static_cast<size_t>(order[static_cast<size_t>(pos++)])] = f;
  }
  return folds_from_assignment(test_fold, n_splits);
}

std::vector<Fold> StratifiedKFold::split(const Vector& y) const {
  const int64_t n = static_cast<int64_t>(y.size());
  check_splits(n_splits, n);
  // Classes numbered in order of first appearance, as scikit-learn's y_encoded.
  std::map<double, int64_t> code;
  std::vector<int64_t> encoded(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    auto [it, inserted] = code.emplace(y[i], static_cast<int64_t>(code.size()));
    encoded[i] = it->second;
  }
  const int64_t k = static_cast<int64_t>(code.size());
  std::vector<int64_t> counts(static_cast<size_t>(k), 0);
  for (int64_t e : encoded) ++counts[static_cast<size_t>(e)];
  if (*std::max_element(counts.begin(), counts.end()) < n_splits) {
    throw Error("n_splits=" + std::to_string(n_splits) +
                " cannot be greater than the number of members in each class");
  }
  // allocation[f][c]: members of class c in fold f, from dealing the sorted labels round robin.
  std::vector<int64_t> sorted = encoded;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int64_t>> allocation(static_cast<size_t>(n_splits),
                                               std::vector<int64_t>(static_cast<size_t>(k), 0));
  for (size_t i = 0; i < sorted.size(); ++i) {
    ++allocation[i % static_cast<size_t>(n_splits)][static_cast<size_t>(sorted[i])];
  }
  SplitRng rng(random_state);
  std::vector<int64_t> test_fold(y.size());
  for (int64_t c = 0; c < k; ++c) {
    std::vector<int64_t> folds_for_class;
    for (int64_t f = 0; f < n_splits; ++f) {
      folds_for_class.insert(
          folds_for_class.end(),
          static_cast<size_t>(allocation[static_cast<size_t>(f)][static_cast<size_t>(c)]), f);
    }
    if (shuffle) shuffle_indices(folds_for_class, rng);
    size_t next = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (encoded[i] == c) test_fold[i] = folds_for_class[next++];
    }
  }
  return folds_from_assignment(test_fold, n_splits);
}

TrainTestSplit train_test_split(const Matrix& x, const Vector& y, double test_size,
                                uint64_t random_state, bool stratify) {
  const int64_t n = x.rows;
  if (static_cast<int64_t>(y.size()) != n) throw Error("train_test_split: X and y lengths differ");
  if (!(test_size > 0)) throw Error("train_test_split: test_size must be > 0");
  const int64_t n_test = test_size < 1
                             ? static_cast<int64_t>(std::ceil(test_size * static_cast<double>(n)))
                             : static_cast<int64_t>(test_size);
  if (test_size >= 1 && test_size != std::floor(test_size)) {
    throw Error("train_test_split: test_size >= 1 must be a whole number of samples");
  }
  if (n_test < 1 || n_test >= n) {
    throw Error("train_test_split: test_size gives " + std::to_string(n_test) +
                " test samples of " + std::to_string(n) + "; both parts must be non-empty");
  }
  SplitRng rng(random_state);
  std::vector<int64_t> test;
  if (!stratify) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    shuffle_indices(order, rng);
    test.assign(order.begin(), order.begin() + n_test);
  } else {
    // Per class, take a share of the test set proportional to its size (largest remainders).
    std::map<double, std::vector<int64_t>> members;
    for (int64_t i = 0; i < n; ++i) members[y[static_cast<size_t>(i)]].push_back(i);
    if (members.size() < 2) throw Error("train_test_split: stratify needs at least two classes");
    for (auto& [label, idx] : members) {
      if (idx.size() < 2) throw Error("train_test_split: stratify needs >= 2 members per class");
    }
    std::vector<std::pair<double, double>> remainders;
    int64_t taken = 0;
    std::map<double, int64_t> quota;
    for (auto& [label, idx] : members) {
      const double exact =
          static_cast<double>(n_test) * static_cast<double>(idx.size()) / static_cast<double>(n);
      quota[label] = static_cast<int64_t>(std::floor(exact));
      taken += quota[label];
      remainders.push_back({exact - std::floor(exact), label});
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](auto& a, auto& b) { return a.first > b.first; });
    for (size_t i = 0; taken < n_test && i < remainders.size(); ++i, ++taken)
      ++quota[remainders[i].second];
    for (auto& [label, idx] : members) {
      shuffle_indices(idx, rng);
      test.insert(test.end(), idx.begin(), idx.begin() + quota[label]);
    }
    std::sort(test.begin(), test.end());
    shuffle_indices(test, rng);
  }
  std::vector<bool> in_test(static_cast<size_t>(n), false);
  for (int64_t i : test) in_test[static_cast<size_t>(i)] = true;
  std::vector<int64_t> train;
  for (int64_t i = 0; i < n; ++i) {
    if (!in_test[static_cast<size_t>(i)]) train.push_back(i);
  }
  shuffle_indices(train, rng);
  return {take_rows(x, train), take_rows(x, test), take(y, train), take(y, test)};
}

std::vector<double> cross_val_score(const std::string& name, const ParamMap& params,
                                    const Matrix& x, const Vector& y, int64_t cv,
                                    const std::string& metric) {
  const Algorithm& algorithm = find_algorithm(name);
  const bool classifier = algorithm.task == Task::Classification;
  if (!classifier && algorithm.task != Task::Regression) {
    throw Error("cross-validation scores classifiers and regressors; " + name + " is neither");
  }
  const Scorer& scorer = find_scorer(metric.empty() ? (classifier ? "accuracy" : "r2") : metric);
  if (scorer.for_classification != classifier) {
    throw Error("metric " + scorer.name + " does not apply to " + name);
  }
  if (scorer.needs_proba && !algorithm.supports_proba) {
    throw Error("metric " + scorer.name + " needs probabilities, which " + name + " lacks");
  }
  if (static_cast<int64_t>(y.size()) != x.rows) throw Error("X and y lengths differ");
  const std::vector<Fold> folds =
      classifier ? StratifiedKFold{cv, false, 0}.split(y) : KFold{cv, false, 0}.split(x.rows);
  int64_t n_classes = 0;
  if (classifier) n_classes = count_classes(y, name);
  std::vector<double> scores;
  for (const Fold& fold : folds) {
    ParamMap p = params;
    const Vector y_train = take(y, fold.train);
    const Vector y_test = take(y, fold.test);
    const Matrix x_test = take_rows(x, fold.test);
    auto model = algorithm.fit(p, take_rows(x, fold.train), &y_train);
    const Vector pred = model->predict(x_test);
    Matrix proba;
    if (scorer.needs_proba) {
      proba = model->predict_proba(x_test);
      if (proba.cols != n_classes) {
        throw Error("a training fold lacks some classes; probabilities cannot be scored");
      }
    }
    scores.push_back(scorer.score(y_test, pred, proba));
  }
  return scores;
}

GridSearchResult grid_search_cv(const std::string& name, const ParamMap& base,
                                const std::map<std::string, std::vector<std::string>>& grid,
                                const Matrix& x, const Vector& y, int64_t cv,
                                const std::string& metric) {
  for (const auto& [key, values] : grid) {
    if (values.empty()) throw Error("grid parameter '" + key + "' has no values");
    if (base.has(key)) throw Error("parameter '" + key + "' is both fixed and in the grid");
  }
  GridSearchResult result;
  // Odometer over the grid, last key fastest (as scikit-learn's ParameterGrid, sorted keys).
  std::vector<std::pair<std::string, const std::vector<std::string>*>> axes;
  axes.reserve(grid.size());
  for (const auto& [key, values] : grid) axes.push_back({key, &values});
  size_t total = 1;
  for (const auto& axis : axes) total *= axis.second->size();
  double best = -INFINITY;
  for (size_t index = 0; index < total; ++index) {
    std::map<std::string, std::string> candidate;
    size_t rest = index;
    for (size_t a = axes.size(); a-- > 0;) {
      candidate[axes[a].first] = (*axes[a].second)[rest % axes[a].second->size()];
      rest /= axes[a].second->size();
    }
    ParamMap p = base.merged(candidate);
    const std::vector<double> scores = cross_val_score(name, p, x, y, cv, metric);
    const double mean =
        std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(scores.size());
    if (mean > best) {
      best = mean;
      result.best_index = result.candidates.size();
    }
    result.candidates.push_back(std::move(candidate));
    result.mean_scores.push_back(mean);
  }
  ParamMap p = base.merged(result.candidates[result.best_index]);
  result.best_model = find_algorithm(name).fit(p, x, &y);
  return result;
}

}  // namespace ember::ml
