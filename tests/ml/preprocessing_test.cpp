// Preprocessing against scikit-learn 1.9.1 (tests/fixtures/ml/preprocessing/preprocessing.json).
#include <gtest/gtest.h>

#include "ember/ml/preprocessing.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

using testing::max_abs_diff;
using testing::to_matrix;
using testing::to_vector;

const nlohmann::json& fixture() {
  return testing::load_fixture("preprocessing/preprocessing.json");
}

Matrix transform_head(const char* algo, std::map<std::string, std::string> params, const Matrix& x,
                      int64_t rows) {
  ParamMap p(std::move(params));
  auto model = find_algorithm(algo).fit(p, x, nullptr);
  std::vector<int64_t> head(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) head[static_cast<size_t>(i)] = i;
  // Through save/load, so the archived form is what is checked.
  return load_model(save_model(*model))->transform(take_rows(x, head));
}

TEST(Preprocessing, ScalersMatchScikitLearn) {
  const auto wine = testing::load_dataset("wine", true);
  const int64_t rows = fixture()["wine_rows"];
  struct Case {
    const char* key;
    const char* algo;
    std::map<std::string, std::string> params;
  };
  for (const Case& c : {Case{"standard", "StandardScaler", {}},
                        Case{"standard_nomean", "StandardScaler", {{"with_mean", "False"}}},
                        Case{"minmax", "MinMaxScaler", {}},
                        Case{"minmax_range", "MinMaxScaler", {{"feature_range", "(-2, 3)"}}},
                        Case{"robust", "RobustScaler", {}},
                        Case{"robust_q", "RobustScaler", {{"quantile_range", "(10, 80)"}}}}) {
    const Matrix got = transform_head(c.algo, c.params, wine.x, rows);
    EXPECT_LT(max_abs_diff(got.data, to_matrix(fixture()[c.key]).data), 1e-12) << c.key;
  }
}

TEST(Preprocessing, ScalersInvertAndHandleConstantColumns) {
  Matrix x(4, 2);
  for (int64_t i = 0; i < 4; ++i) {
    x(i, 0) = 5.0;  // constant: scale 1, no division by zero
    x(i, 1) = static_cast<double>(i * i);
  }
  for (const auto& model :
       {StandardScaler{}.fit(x), MinMaxScaler{}.fit(x), RobustScaler{}.fit(x)}) {
    const Matrix t = model.transform(x);
    for (int64_t i = 0; i < 4; ++i) EXPECT_TRUE(std::isfinite(t(i, 0)));
    EXPECT_LT(max_abs_diff(model.inverse_transform(t).data, x.data), 1e-12);
  }
  EXPECT_THROW(StandardScaler{}.fit(x).transform(Matrix(1, 3)), Error);
  ParamMap bad(std::map<std::string, std::string>{{"feature_range", "(1, 0)"}});
  EXPECT_THROW(find_algorithm("MinMaxScaler").fit(bad, x, nullptr), Error);
}

TEST(Preprocessing, PolynomialFeaturesMatchScikitLearnOrder) {
  const Matrix x = to_matrix(fixture()["poly_input"]);
  EXPECT_EQ(transform_head("PolynomialFeatures", {}, x, x.rows).data,
            to_matrix(fixture()["poly2"]).data);
  const Matrix got = transform_head(
      "PolynomialFeatures",
      {{"degree", "3"}, {"interaction_only", "True"}, {"include_bias", "False"}}, x, x.rows);
  const Matrix want = to_matrix(fixture()["poly3_interaction_nobias"]);
  EXPECT_EQ(got.cols, want.cols);
  EXPECT_LT(max_abs_diff(got.data, want.data), 1e-12);
  PolynomialFeatures huge;
  huge.params.degree = 30;
  EXPECT_THROW(huge.fit(Matrix(1, 20, 1.0)), Error);  // bounded output
}

TEST(Preprocessing, OneHotEncoderMatchesScikitLearn) {
  const Matrix x = to_matrix(fixture()["onehot_input"]);
  EXPECT_EQ(transform_head("OneHotEncoder", {}, x, x.rows).data,
            to_matrix(fixture()["onehot"]).data);
  const Matrix q = to_matrix(fixture()["onehot_ignore_query"]);
  ParamMap p(std::map<std::string, std::string>{{"handle_unknown", "ignore"}});
  EXPECT_EQ(find_algorithm("OneHotEncoder").fit(p, x, nullptr)->transform(q).data,
            to_matrix(fixture()["onehot_ignore"]).data);
  EXPECT_THROW(OneHotEncoder{}.fit(x).transform(q), Error);
}

TEST(Preprocessing, LabelEncoderMatchesScikitLearn) {
  const Vector y = to_vector(fixture()["label_input"]);
  const LabelEncoderModel m = LabelEncoder{}.fit(y);
  const Vector encoded = m.transform(y);
  EXPECT_EQ(encoded, to_vector(fixture()["label_encoded"]));
  EXPECT_EQ(m.inverse_transform(encoded), y);
  EXPECT_THROW(m.transform({42.0}), Error);
  EXPECT_THROW(m.inverse_transform({3.0}), Error);
}

TEST(Preprocessing, PercentileMatchesNumpyLinearInterpolation) {
  // numpy.percentile([1, 2, 4, 8], q) for q = 0, 25, 50, 90, 100.
  const Vector v{8, 1, 4, 2};
  EXPECT_EQ(percentile(v, 0), 1.0);
  EXPECT_EQ(percentile(v, 25), 1.75);
  EXPECT_EQ(percentile(v, 50), 3.0);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 6.8);
  EXPECT_EQ(percentile(v, 100), 8.0);
}

}  // namespace
}  // namespace ember::ml
