// Random forests and extra trees: cross-validated accuracy / R^2 against scikit-learn 1.9.1 on
// identical folds (tests/fixtures/ml/trees/cv.txt), thread-count independence, save/load,
// corrupt archives and parameter validation.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/base/thread_pool.hpp"
#include "ember/ml/ensemble.hpp"
#include "tree_test_support.hpp"

namespace ember::ml {
namespace {

using tree_test::expect_cv_close_to_scikit_learn;
using tree_test::expect_rows_sum_to_one;

TEST(ForestAccuracy, RandomForestClassifierMatchesScikitLearn) {
  for (const char* d : testing::kClassificationDatasets) {
    expect_cv_close_to_scikit_learn("RandomForestClassifier", d);
  }
}

TEST(ForestAccuracy, ExtraTreesClassifierMatchesScikitLearn) {
  for (const char* d : testing::kClassificationDatasets) {
    expect_cv_close_to_scikit_learn("ExtraTreesClassifier", d);
  }
}

TEST(ForestAccuracy, RegressorsMatchScikitLearnOnDiabetes) {
  expect_cv_close_to_scikit_learn("RandomForestRegressor", "diabetes");
  expect_cv_close_to_scikit_learn("ExtraTreesRegressor", "diabetes");
}

Matrix toy_x(int64_t n) {
  Matrix x(n, 4);
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i);
    x(i, 0) = std::sin(0.37 * t);
    x(i, 1) = std::cos(0.11 * t * t);
    x(i, 2) = static_cast<double>(i % 5);
    x(i, 3) = std::sin(1.7 * t + 0.3);
  }
  return x;
}
Vector toy_classes(const Matrix& x) {
  Vector y(static_cast<size_t>(x.rows));
  for (int64_t i = 0; i < x.rows; ++i) {
    y[static_cast<size_t>(i)] = (x(i, 0) + 0.5 * x(i, 1) > 0) + (x(i, 2) > 2);
  }
  return y;
}
Vector toy_values(const Matrix& x) {
  Vector y(static_cast<size_t>(x.rows));
  for (int64_t i = 0; i < x.rows; ++i) y[static_cast<size_t>(i)] = 3 * x(i, 0) + x(i, 1) * x(i, 3);
  return y;
}

// Model bytes for a fixed seed, fitted with the given number of threads.
std::string fitted_bytes(const std::string& algorithm, int threads, const Matrix& x,
                         const Vector& y) {
  set_num_threads(threads);
  ParamMap params(std::map<std::string, std::string>{
      {"n_estimators", "8"}, {"random_state", "11"}, {"max_depth", "6"}});
  std::string bytes = save_model(*find_algorithm(algorithm).fit(params, x, &y));
  set_num_threads(1);
  return bytes;
}

TEST(Forest, SameSeedSameModelWhateverTheThreadCount) {
  const Matrix x = toy_x(200);
  const Vector yc = toy_classes(x), yr = toy_values(x);
  for (const char* algo : {"RandomForestClassifier", "ExtraTreesClassifier"}) {
    EXPECT_EQ(fitted_bytes(algo, 1, x, yc), fitted_bytes(algo, 2, x, yc)) << algo;
  }
  for (const char* algo : {"RandomForestRegressor", "ExtraTreesRegressor"}) {
    EXPECT_EQ(fitted_bytes(algo, 1, x, yr), fitted_bytes(algo, 2, x, yr)) << algo;
  }
  // A different seed gives a different forest.
  ParamMap other(std::map<std::string, std::string>{
      {"n_estimators", "8"}, {"random_state", "12"}, {"max_depth", "6"}});
  EXPECT_NE(save_model(*find_algorithm("RandomForestClassifier").fit(other, x, &yc)),
            fitted_bytes("RandomForestClassifier", 1, x, yc));
}

TEST(Forest, SaveLoadPredictsIdentically) {
  const Matrix x = toy_x(150);
  const Vector yc = toy_classes(x), yr = toy_values(x);
  for (const char* algo : {"RandomForestClassifier", "ExtraTreesClassifier",
                           "RandomForestRegressor", "ExtraTreesRegressor"}) {
    SCOPED_TRACE(algo);
    const bool classifier = std::string(algo).find("Classifier") != std::string::npos;
    ParamMap params(
        std::map<std::string, std::string>{{"n_estimators", "5"}, {"random_state", "2"}});
    const auto model = find_algorithm(algo).fit(params, x, classifier ? &yc : &yr);
    const std::string bytes = save_model(*model);
    const auto loaded = load_model(bytes);
    EXPECT_EQ(save_model(*loaded), bytes);
    EXPECT_EQ(loaded->predict(x), model->predict(x));
    if (classifier) {
      EXPECT_EQ(loaded->predict_proba(x).data, model->predict_proba(x).data);
      expect_rows_sum_to_one(model->predict_proba(x));
    }
  }
}

TEST(Forest, ProbabilitiesAreTheMeanOfTheTrees) {
  const Matrix x = toy_x(120);
  const Vector y = toy_classes(x);
  ForestParams p;
  p.n_estimators = 4;
  p.random_state = 9;
  p.max_depth = 3;
  const auto forest = RandomForestClassifier(p).fit(x, y);
  const Matrix proba = forest.predict_proba(x);
  for (int64_t r = 0; r < x.rows; ++r) {
    std::vector<float> row(4);
    for (int f = 0; f < 4; ++f) row[static_cast<size_t>(f)] = static_cast<float>(x(r, f));
    for (int64_t c = 0; c < proba.cols; ++c) {
      double mean = 0;
      for (const TreeStructure& t : forest.trees()) {
        const double* v = t.leaf_values(t.find_leaf(row.data()));
        double total = 0;
        for (int64_t k = 0; k < proba.cols; ++k) total += v[k];
        mean += v[c] / total / 4.0;
      }
      ASSERT_NEAR(proba(r, c), mean, 1e-12);
    }
  }
}

TEST(Forest, TruncatedOrCorruptArchivesThrow) {
  const Matrix x = toy_x(60);
  const Vector y = toy_classes(x);
  ParamMap params(std::map<std::string, std::string>{
      {"n_estimators", "2"}, {"random_state", "0"}, {"max_depth", "2"}});
  const std::string bytes =
      save_model(*find_algorithm("RandomForestClassifier").fit(params, x, &y));
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(load_model(std::string_view(bytes).substr(0, n)), Error) << n;
  }
  EXPECT_THROW(load_model(bytes + "x"), Error);
  // Flip every byte in turn: loading must either throw or give a model that predicts safely.
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string corrupt = bytes;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
    try {
      const auto model = load_model(corrupt);
      (void)model->predict(x);
    } catch (const Error&) {
    }
  }
}

TEST(Forest, InvalidParametersThrow) {
  const Matrix x = toy_x(40);
  const Vector y = toy_classes(x);
  auto fit = [&](std::map<std::string, std::string> kv) {
    ParamMap params(std::move(kv));
    return find_algorithm("RandomForestClassifier").fit(params, x, &y);
  };
  EXPECT_THROW(fit({{"n_estimators", "0"}}), Error);
  EXPECT_THROW(fit({{"max_samples", "1.5"}}), Error);
  EXPECT_THROW(fit({{"max_samples", "41"}}), Error);
  EXPECT_THROW(fit({{"max_features", "0"}}), Error);
  EXPECT_THROW(fit({{"criterion", "squared_error"}}), Error);
  EXPECT_THROW(fit({{"bootstrap", "maybe"}}), Error);
  EXPECT_THROW(fit({{"oob_score", "True"}}), Error);  // not supported: unknown parameter
  ParamMap bad_regression(std::map<std::string, std::string>{{"criterion", "gini"}});
  const Vector yr = toy_values(x);
  EXPECT_THROW(find_algorithm("ExtraTreesRegressor").fit(bad_regression, x, &yr), Error);
  ForestParams p;
  p.bootstrap = false;
  p.max_samples = SampleCount{true, 0.5};
  EXPECT_THROW(RandomForestClassifier{p}, Error);
  EXPECT_NO_THROW(fit({{"n_estimators", "3"}, {"max_samples", "0.5"}, {"n_jobs", "-1"}}));
}

}  // namespace
}  // namespace ember::ml
