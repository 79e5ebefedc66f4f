#pragma once
// Helpers for the linear, naive Bayes, preprocessing, metrics and model selection tests: fixtures
// (JSON from tools/ml/linear_nb_preprocessing_metrics_fixtures.py) and the shipped datasets read
// through Ember's own CSV loader.
#include <array>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ember/ml/common.hpp"
#include "ember/ml/csv.hpp"
#include "ember/ml/metrics.hpp"

namespace ember::ml::testing {

// tests/fixtures/ml/RELATIVE, parsed once per test process.
inline const nlohmann::json& load_fixture(const std::string& relative) {
  static std::map<std::string, nlohmann::json> loaded;
  auto it = loaded.find(relative);
  if (it == loaded.end()) {
    std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/ml/" + relative);
    if (!in) throw std::runtime_error("missing fixture " + relative);
    it = loaded.emplace(relative, nlohmann::json::parse(in)).first;
  }
  return it->second;
}

// The classification datasets under data/datasets that the scikit-learn fixtures cover.
inline constexpr std::array<const char*, 4> kClassificationDatasets = {"iris", "wine",
                                                                       "breast_cancer", "digits"};

struct Dataset {
  Matrix x;
  Vector y;  // class indices (classification) or values
};

inline CsvTable read_dataset(const std::string& name) {
  return read_csv(std::string(EMBER_SOURCE_DIR) + "/data/datasets/" + name + ".csv");
}

// Class targets are indices into the sorted class names.
inline Dataset load_dataset(const std::string& name, bool classification) {
  const CsvTable table = read_dataset(name);
  const TableSchema schema = TableSchema::fit(table, "target", classification);
  return {schema.features_of(table), schema.target_of(table)};
}

// The feature columns only (for tests whose targets come from a fixture).
inline Matrix load_features(const std::string& name) {
  const CsvTable table = read_dataset(name);
  return TableSchema::fit(table, "target", false, /*target_is_used=*/false).features_of(table);
}

// Mean score over the 5 folds given as a per-sample fold id (exported by the fixture scripts,
// so that Ember and scikit-learn use identical splits); fit_predict(x_train, y_train, x_test)
// returns test predictions, scored by accuracy or R².
template <typename Folds, typename FitPredict>
double cross_validate(const Dataset& d, const Folds& folds, bool classification,
                      FitPredict&& fit_predict) {
  double total = 0;
  for (int k = 0; k < 5; ++k) {
    std::vector<int64_t> train, test;
    for (int64_t i = 0; i < d.x.rows; ++i) {
      (static_cast<int>(folds[static_cast<size_t>(i)]) == k ? test : train).push_back(i);
    }
    const Vector predicted =
        fit_predict(take_rows(d.x, train), take(d.y, train), take_rows(d.x, test));
    const Vector truth = take(d.y, test);
    total += classification ? accuracy_score(truth, predicted) : r2_score(truth, predicted);
  }
  return total / 5.0;
}

inline Matrix to_matrix(const nlohmann::json& rows) {
  Matrix m(static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows.at(0).size()));
  for (int64_t i = 0; i < m.rows; ++i) {
    for (int64_t j = 0; j < m.cols; ++j) m(i, j) = rows.at(i).at(j).get<double>();
  }
  return m;
}

inline Vector to_vector(const nlohmann::json& values) {
  Vector v;
  for (const auto& x : values) v.push_back(x.get<double>());
  return v;
}

inline ParamMap to_params(const nlohmann::json& params) {
  std::map<std::string, std::string> values;
  for (auto it = params.begin(); it != params.end(); ++it) values[it.key()] = it.value();
  return ParamMap(values);
}

// max |a - b| / max(|b|, floor) over all entries.
inline double max_rel_diff(const Vector& a, const Vector& b, double floor = 1e-12) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(std::fabs(b[i]), floor));
  }
  return worst;
}

inline double max_abs_diff(const Vector& a, const Vector& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

}  // namespace ember::ml::testing
