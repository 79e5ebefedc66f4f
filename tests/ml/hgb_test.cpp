// Histogram gradient boosting: cross-validated accuracy / R^2 against scikit-learn 1.9.1 on
// identical folds, binning against numpy's percentile definition, histogram subtraction,
// determinism across thread counts, save/load, corrupt archives and parameter validation.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/base/thread_pool.hpp"
#include "ember/ml/hist_gradient_boosting.hpp"
#include "tree_test_support.hpp"

namespace ember::ml {
namespace {

using tree_test::expect_cv_close_to_scikit_learn;
using tree_test::expect_rows_sum_to_one;

TEST(HgbAccuracy, ClassifierMatchesScikitLearn) {
  for (const char* d : testing::kClassificationDatasets) {
    expect_cv_close_to_scikit_learn("HistGradientBoostingClassifier", d);
  }
}

TEST(HgbAccuracy, RegressorMatchesScikitLearnOnDiabetes) {
  expect_cv_close_to_scikit_learn("HistGradientBoostingRegressor", "diabetes");
}

TEST(HgbBinning, MidpointsForFewDistinctValues) {
  const FeatureBins bins = compute_feature_bins({3, 1, 2, 2, 5}, 255);
  ASSERT_EQ(bins.thresholds.size(), 3u);
  EXPECT_EQ(bins.thresholds[0], 1.5);
  EXPECT_EQ(bins.thresholds[1], 2.5);
  EXPECT_EQ(bins.thresholds[2], 4.0);
  EXPECT_TRUE(compute_feature_bins({7, 7, 7}, 255).thresholds.empty());
}

TEST(HgbBinning, AveragedInvertedCdfPercentiles) {
  // numpy.percentile(range(10), [25, 50, 75], method="averaged_inverted_cdf") = [2, 4.5, 7]
  // (virtual index n*q - 1; an integral index averages its two neighbours).
  std::vector<double> column(10);
  for (int i = 0; i < 10; ++i) column[static_cast<size_t>(i)] = i;
  const FeatureBins bins = compute_feature_bins(column, 4);
  ASSERT_EQ(bins.thresholds.size(), 3u);
  EXPECT_EQ(bins.thresholds[0], 2.0);
  EXPECT_EQ(bins.thresholds[1], 4.5);
  EXPECT_EQ(bins.thresholds[2], 7.0);
}

Matrix toy_x(int64_t n) {
  Matrix x(n, 3);
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i);
    x(i, 0) = std::sin(0.37 * t);
    x(i, 1) = std::cos(0.11 * t * t);
    x(i, 2) = static_cast<double>(i % 9);
  }
  return x;
}
Vector toy_classes(const Matrix& x, int k) {
  Vector y(static_cast<size_t>(x.rows));
  for (int64_t i = 0; i < x.rows; ++i) {
    const int c = (x(i, 0) + 0.5 * x(i, 1) > 0) + (x(i, 2) > 4);
    y[static_cast<size_t>(i)] = k == 2 ? (c > 0) : c;
  }
  return y;
}
Vector toy_values(const Matrix& x) {
  Vector y(static_cast<size_t>(x.rows));
  for (int64_t i = 0; i < x.rows; ++i) {
    y[static_cast<size_t>(i)] = 3 * x(i, 0) + x(i, 1) * x(i, 2);
  }
  return y;
}

TEST(Hgb, LearnsTheTrainingData) {
  const Matrix x = toy_x(400);
  HistGradientBoostingParams p;
  p.max_iter = 30;
  const auto reg = HistGradientBoostingRegressor(p).fit(x, toy_values(x));
  EXPECT_GT(r2_score(toy_values(x), reg.predict(x)), 0.95);
  EXPECT_EQ(reg.n_iter(), 30);
  for (int k : {2, 3}) {
    const Vector y = toy_classes(x, k);
    const auto clf = HistGradientBoostingClassifier(p).fit(x, y);
    EXPECT_GT(accuracy_score(y, clf.predict(x)), 0.95);
    EXPECT_EQ(clf.trees_per_iteration(), k == 2 ? 1 : k);
    expect_rows_sum_to_one(clf.predict_proba(x));
  }
}

TEST(Hgb, TreesRespectLeafLimits) {
  const Matrix x = toy_x(500);
  const Vector y = toy_values(x);
  HistGradientBoostingParams p;
  p.max_iter = 5;
  p.max_leaf_nodes = 7;
  p.min_samples_leaf = 30;
  const auto limited = HistGradientBoostingRegressor(p).fit(x, y);
  for (const TreeStructure& t : limited.trees()) {
    EXPECT_LE(t.leaf_count(), 7);
    for (const TreeNode& n : t.nodes) EXPECT_GE(n.n_samples, 30);
  }
  p.max_leaf_nodes = std::nullopt;
  p.max_depth = 2;
  const auto shallow = HistGradientBoostingRegressor(p).fit(x, y);
  for (const TreeStructure& t : shallow.trees()) {
    EXPECT_LE(t.depth(), 2);
  }
}

TEST(Hgb, EarlyStoppingStopsAndValidates) {
  const Matrix x = toy_x(600);
  const Vector y = toy_values(x);
  HistGradientBoostingParams p;
  p.max_iter = 500;
  p.early_stopping = "True";
  p.learning_rate = 0.5;
  p.n_iter_no_change = 3;
  p.tol = 1e-3;
  p.random_state = 0;
  const auto fitted = HistGradientBoostingRegressor(p).fit(x, y);
  EXPECT_LT(fitted.n_iter(), 500);
  EXPECT_GT(fitted.n_iter(), 3);
}

std::string fitted_bytes(int threads, const Matrix& x, const Vector& y, const char* algo) {
  set_num_threads(threads);
  ParamMap params(std::map<std::string, std::string>{{"max_iter", "10"},
                                                     {"random_state", "3"},
                                                     {"early_stopping", "True"},
                                                     {"n_iter_no_change", "2"}});
  std::string bytes = save_model(*find_algorithm(algo).fit(params, x, &y));
  set_num_threads(1);
  return bytes;
}

// 300 rows are too few for any pass of the tree growth to leave the calling thread. At 20,000
// rows (18,000 after the validation split) the root's partition spans two 16,384-sample blocks
// and nodes above ~10,000 samples (the root at least) build their histograms on both threads;
// the trees must still be the same.
TEST(Hgb, SameSeedSameModelWhateverTheThreadCount) {
  for (const int64_t n : {300, 20000}) {
    SCOPED_TRACE("rows: " + std::to_string(n));
    const Matrix x = toy_x(n);
    const Vector yc = toy_classes(x, 3), yr = toy_values(x);
    EXPECT_EQ(fitted_bytes(1, x, yc, "HistGradientBoostingClassifier"),
              fitted_bytes(2, x, yc, "HistGradientBoostingClassifier"));
    EXPECT_EQ(fitted_bytes(1, x, yr, "HistGradientBoostingRegressor"),
              fitted_bytes(2, x, yr, "HistGradientBoostingRegressor"));
  }
}

TEST(Hgb, SaveLoadAndCorruptArchives) {
  const Matrix x = toy_x(200);
  for (int k : {2, 3}) {
    const Vector y = toy_classes(x, k);
    ParamMap params(std::map<std::string, std::string>{{"max_iter", "3"}, {"max_leaf_nodes", "4"}});
    const auto model = find_algorithm("HistGradientBoostingClassifier").fit(params, x, &y);
    const std::string bytes = save_model(*model);
    const auto loaded = load_model(bytes);
    EXPECT_EQ(save_model(*loaded), bytes);
    EXPECT_EQ(loaded->predict(x), model->predict(x));
    EXPECT_EQ(loaded->predict_proba(x).data, model->predict_proba(x).data);
    for (size_t n = 0; n < bytes.size(); n += 3) {
      EXPECT_THROW(load_model(std::string_view(bytes).substr(0, n)), Error) << n;
    }
    for (size_t i = 0; i < bytes.size(); ++i) {
      std::string corrupt = bytes;
      corrupt[i] = static_cast<char>(corrupt[i] ^ 0x41);
      try {
        (void)load_model(corrupt)->predict(x);
      } catch (const Error&) {
      }
    }
  }
  const Vector yr = toy_values(x);
  ParamMap params(std::map<std::string, std::string>{{"max_iter", "2"}});
  const auto reg = find_algorithm("HistGradientBoostingRegressor").fit(params, x, &yr);
  const auto reg_loaded = load_model(save_model(*reg));
  EXPECT_EQ(reg_loaded->predict(x), reg->predict(x));
  EXPECT_THROW(reg_loaded->predict_proba(x), Error);
}

TEST(Hgb, InvalidParametersThrow) {
  const Matrix x = toy_x(50);
  const Vector y = toy_classes(x, 2);
  auto fit = [&](std::map<std::string, std::string> kv) {
    ParamMap params(std::move(kv));
    return find_algorithm("HistGradientBoostingClassifier").fit(params, x, &y);
  };
  EXPECT_THROW(fit({{"learning_rate", "0"}}), Error);
  EXPECT_THROW(fit({{"max_iter", "0"}}), Error);
  EXPECT_THROW(fit({{"max_leaf_nodes", "1"}}), Error);
  EXPECT_THROW(fit({{"max_bins", "256"}}), Error);
  EXPECT_THROW(fit({{"min_samples_leaf", "0"}}), Error);
  EXPECT_THROW(fit({{"l2_regularization", "-1"}}), Error);
  EXPECT_THROW(fit({{"early_stopping", "sometimes"}}), Error);
  EXPECT_THROW(fit({{"validation_fraction", "1.5"}}), Error);
  EXPECT_THROW(fit({{"loss", "squared_error"}}), Error);
  EXPECT_THROW(fit({{"scoring", "accuracy"}}), Error);
  EXPECT_THROW(fit({{"monotonic_cst", "None"}}), Error);
  EXPECT_NO_THROW(fit({{"max_iter", "2"}, {"max_depth", "3"}, {"max_leaf_nodes", "None"}}));
  const auto fitted = HistGradientBoostingClassifier().fit(x, y);
  EXPECT_THROW(fitted.predict(Matrix(2, 5)), Error);
}

}  // namespace
}  // namespace ember::ml
