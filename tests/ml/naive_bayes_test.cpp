// Naive Bayes against scikit-learn 1.9.1 (tests/fixtures/ml/naive_bayes/naive_bayes.json).
#include <gtest/gtest.h>

#include "ember/ml/naive_bayes.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

using testing::load_dataset;
using testing::max_abs_diff;
using testing::to_matrix;
using testing::to_vector;

const nlohmann::json& fixture() {
  return testing::load_fixture("naive_bayes/naive_bayes.json");
}

Matrix head(const Matrix& x, int64_t n) {
  std::vector<int64_t> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = i;
  return take_rows(x, rows);
}

TEST(NaiveBayes, GaussianMatchesScikitLearnTo1e8) {
  for (const char* dataset : {"iris", "wine"}) {
    const auto data = load_dataset(dataset, true);
    const auto& want = fixture()[std::string("gaussian_") + dataset];
    const NaiveBayesModel m = GaussianNB{}.fit(data.x, data.y);
    EXPECT_LT(testing::max_rel_diff(m.a.data, to_matrix(want["theta"]).data), 1e-12) << dataset;
    EXPECT_LT(testing::max_rel_diff(m.b.data, to_matrix(want["var"]).data), 1e-10) << dataset;
    EXPECT_LT(max_abs_diff(m.predict_proba(data.x).data, to_matrix(want["proba"]).data), 1e-8)
        << dataset;
  }
  const auto iris = load_dataset("iris", true);
  GaussianNB smooth;
  smooth.params.var_smoothing = 0.1;
  EXPECT_LT(max_abs_diff(smooth.fit(iris.x, iris.y).predict_proba(iris.x).data,
                         to_matrix(fixture()["gaussian_iris_smooth"]["proba"]).data),
            1e-8);
}

TEST(NaiveBayes, MultinomialAndBernoulliMatchScikitLearn) {
  const auto digits = load_dataset("digits", true);
  struct Case {
    const char* key;
    std::map<std::string, std::string> params;
    const char* algo;
  };
  for (const Case& c : {Case{"multinomial_digits", {}, "MultinomialNB"},
                        Case{"multinomial_a05_digits", {{"alpha", "0.5"}}, "MultinomialNB"},
                        Case{"bernoulli_digits", {{"binarize", "4.0"}}, "BernoulliNB"},
                        Case{"bernoulli_noprior_digits",
                             {{"binarize", "8.0"}, {"fit_prior", "False"}},
                             "BernoulliNB"}}) {
    ParamMap p(c.params);
    auto model = find_algorithm(c.algo).fit(p, digits.x, &digits.y);
    const auto& want = fixture()[c.key];
    const auto rows = static_cast<int64_t>(want["proba_head"].size());
    EXPECT_LT(max_abs_diff(model->predict_proba(head(digits.x, rows)).data,
                           to_matrix(want["proba_head"]).data),
              1e-8)
        << c.key;
    EXPECT_EQ(model->predict(digits.x), to_vector(want["predict"])) << c.key;
  }
}

TEST(NaiveBayes, CategoricalMatchesScikitLearn) {
  const auto& want = fixture()["categorical"];
  const Matrix x = to_matrix(want["x"]);
  const Vector y = to_vector(want["y"]);
  CategoricalNB est;
  est.params.alpha = want["alpha"];
  const NaiveBayesModel m = est.fit(x, y);
  EXPECT_LT(max_abs_diff(m.predict_proba(x).data, to_matrix(want["proba"]).data), 1e-12);
  Matrix unseen = head(x, 1);
  unseen(0, 0) = 9;
  EXPECT_THROW(m.predict(unseen), Error);
  unseen(0, 0) = 1.5;
  EXPECT_THROW(m.predict(unseen), Error);
}

TEST(NaiveBayes, SaveLoadRoundTripAndValidation) {
  const auto digits = load_dataset("digits", true);
  for (const char* algo : {"GaussianNB", "MultinomialNB", "BernoulliNB", "CategoricalNB"}) {
    ParamMap p;
    auto model = find_algorithm(algo).fit(p, digits.x, &digits.y);
    const std::string bytes = save_model(*model);
    auto loaded = load_model(bytes);
    EXPECT_EQ(loaded->predict_proba(digits.x).data, model->predict_proba(digits.x).data) << algo;
    for (size_t cut = 0; cut < bytes.size(); cut += 97) {
      EXPECT_THROW(load_model(std::string_view(bytes).substr(0, cut)), Error) << algo;
    }
  }
  Matrix negative = digits.x;
  negative(5, 5) = -1;
  EXPECT_THROW(MultinomialNB{}.fit(negative, digits.y), Error);
  GaussianNB bad;
  bad.params.var_smoothing = -1;
  EXPECT_THROW(bad.fit(digits.x, digits.y), Error);
  ParamMap unknown(std::map<std::string, std::string>{{"alpha", "1"}});
  EXPECT_THROW(find_algorithm("GaussianNB").fit(unknown, digits.x, &digits.y), Error);
}

}  // namespace
}  // namespace ember::ml
