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

}  // namespace ember::ml::tree_test
