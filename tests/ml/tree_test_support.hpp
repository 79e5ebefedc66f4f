#pragma once
// Helpers shared by the tree, forest and HGB tests: scikit-learn reference fixtures written by
// tools/ml/trees_fixtures.py (datasets and cross-validation come from ml_test_support.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ember/ml/common.hpp"
#include "ml_test_support.hpp"

namespace ember::ml::tree_test {

inline std::string fixture_path(const std::string& name) {
  return std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/ml/trees/" + name;
}

// Reads `name rows cols v...` lines.
inline std::map<std::string, Matrix> load_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name));
  if (!in) throw std::runtime_error("missing fixture " + name);
  std::map<std::string, Matrix> arrays;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string key;
    int64_t rows = 0, cols = 0;
    s >> key >> rows >> cols;
    Matrix m(rows, cols);
    for (double& v : m.data) {
      std::string token;
      s >> token;
      v = std::stod(token);
    }
    arrays[key] = std::move(m);
  }
  return arrays;
}

inline Vector as_vector(const Matrix& m) {
  return m.data;
}

using testing::cross_validate;
using testing::Dataset;
using testing::load_dataset;

// Mean cross-validated score of `algorithm` (scikit-learn's default hyperparameters,
// random_state=0) on the folds of tests/fixtures/ml/trees/cv.txt, expected within 1 percentage
// point (accuracy) or 0.01 (R²) of scikit-learn's, either way: a much higher score is as much a
// sign of a different algorithm as a lower one. Ember's random stream is not scikit-learn's, so
// where the fixture has the range of scikit-learn's scores over seeds 0..9, the band is that
// range widened by the same margin.
inline void expect_cv_close_to_scikit_learn(const std::string& algorithm,
                                            const std::string& dataset) {
  static const auto* cv = new std::map<std::string, Matrix>(load_fixture("cv.txt"));
  const bool classification = dataset != "diabetes";
  const Algorithm& algo = find_algorithm(algorithm);
  const double ours =
      cross_validate(load_dataset(dataset, classification), cv->at("folds_" + dataset).data,
                     classification, [&](const Matrix& x, const Vector& y, const Matrix& x_test) {
                       ParamMap params(std::map<std::string, std::string>{{"random_state", "0"}});
                       return algo.fit(params, x, &y)->predict(x_test);
                     });
  const std::string key = algorithm + "_" + dataset;
  const double theirs = cv->at("score_" + key).data[0];
  double low = theirs, high = theirs;
  if (const auto seeds = cv->find("seeds_" + key); seeds != cv->end()) {
    low = seeds->second.data.at(0);
    high = seeds->second.data.at(1);
  }
  std::printf("  %-32s %-14s ember %.4f  scikit-learn %.4f, expected %.4f .. %.4f\n",
              algorithm.c_str(), dataset.c_str(), ours, theirs, low - 0.01, high + 0.01);
  EXPECT_GE(ours, low - 0.01) << algorithm << " on " << dataset;
  EXPECT_LE(ours, high + 0.01) << algorithm << " on " << dataset;
}

inline void expect_rows_sum_to_one(const Matrix& proba) {
  for (int64_t r = 0; r < proba.rows; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < proba.cols; ++c) sum += proba(r, c);
    ASSERT_NEAR(sum, 1.0, 1e-12) << "row " << r;
  }
}

}  // namespace ember::ml::tree_test
