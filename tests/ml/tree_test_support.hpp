#pragma once
// Helpers shared by the tree, forest and HGB tests: scikit-learn reference fixtures written by
// tools/ml/trees_fixtures.py, the classic datasets, and a cross-validation loop over exported
// fold indices (so that Ember and scikit-learn use identical splits).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ember/ml/common.hpp"

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

struct Dataset {
  Matrix x;
  Vector y;
};

// data/datasets/<name>.csv: numeric features, last column the target. Class names are mapped
// to indices in sorted order; regression targets are parsed as numbers.
inline Dataset load_dataset(const std::string& name, bool classification) {
  std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/data/datasets/" + name + ".csv");
  if (!in) throw std::runtime_error("missing dataset " + name);
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::vector<double>> rows;
  std::vector<std::string> labels;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    std::vector<double> row;
    for (size_t i = 0; i + 1 < cells.size(); ++i) row.push_back(std::stod(cells[i]));
    rows.push_back(std::move(row));
    labels.push_back(cells.back());
  }
  Dataset d;
  d.x = Matrix(static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size()));
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r].begin(), rows[r].end(), d.x.row(static_cast<int64_t>(r)));
  }
  if (classification) {
    std::vector<std::string> names = labels;
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const auto& l : labels) {
      d.y.push_back(
          static_cast<double>(std::lower_bound(names.begin(), names.end(), l) - names.begin()));
    }
  } else {
    for (const auto& l : labels) d.y.push_back(std::stod(l));
  }
  return d;
}

inline double accuracy(const Vector& truth, const Vector& predicted) {
  int64_t hits = 0;
  for (size_t i = 0; i < truth.size(); ++i) hits += truth[i] == predicted[i];
  return static_cast<double>(hits) / static_cast<double>(truth.size());
}

inline double r2_score(const Vector& truth, const Vector& predicted) {
  double mean = 0;
  for (double v : truth) mean += v;
  mean /= static_cast<double>(truth.size());
  double ss_res = 0, ss_tot = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    ss_res += (truth[i] - predicted[i]) * (truth[i] - predicted[i]);
    ss_tot += (truth[i] - mean) * (truth[i] - mean);
  }
  return 1.0 - ss_res / ss_tot;
}

// Mean score over the 5 folds given as a per-sample fold id; fit_predict(x_train, y_train,
// x_test) returns test predictions.
template <typename FitPredict>
double cross_validate(const Dataset& d, const Matrix& folds, bool classification,
                      FitPredict&& fit_predict) {
  double total = 0;
  for (int k = 0; k < 5; ++k) {
    std::vector<int64_t> train, test;
    for (int64_t i = 0; i < d.x.rows; ++i) {
      (folds.data[static_cast<size_t>(i)] == k ? test : train).push_back(i);
    }
    const Vector predicted =
        fit_predict(take_rows(d.x, train), take(d.y, train), take_rows(d.x, test));
    const Vector truth = take(d.y, test);
    total += classification ? accuracy(truth, predicted) : r2_score(truth, predicted);
  }
  return total / 5.0;
}

}  // namespace ember::ml::tree_test
