// Metrics and model selection against scikit-learn 1.9.1 (tests/fixtures/ml/metrics/metrics.json).
#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "ember/ml/metrics.hpp"
#include "ember/ml/model_selection.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

using testing::to_matrix;
using testing::to_vector;

const nlohmann::json& fixture() {
  static const nlohmann::json f = testing::load_fixture("metrics/metrics.json");
  return f;
}

double expected(const char* key) {
  return fixture()["expected"][key].get<double>();
}

TEST(Metrics, ClassificationMetricsMatchScikitLearn) {
  const Vector t = to_vector(fixture()["y_true"]), p = to_vector(fixture()["y_pred"]);
  EXPECT_NEAR(accuracy_score(t, p), expected("accuracy"), 1e-12);
  EXPECT_EQ(confusion_matrix(t, p).data, to_matrix(fixture()["expected"]["confusion"]).data);
  for (const char* avg : {"micro", "macro", "weighted"}) {
    const Average a = parse_average(avg);
    EXPECT_NEAR(precision_score(t, p, a), expected((std::string("precision_") + avg).c_str()),
                1e-12);
    EXPECT_NEAR(recall_score(t, p, a), expected((std::string("recall_") + avg).c_str()), 1e-12);
    EXPECT_NEAR(f1_score(t, p, a), expected((std::string("f1_") + avg).c_str()), 1e-12);
  }
  const Vector tb = to_vector(fixture()["y_true_binary"]),
               pb = to_vector(fixture()["y_pred_binary"]);
  EXPECT_NEAR(precision_score(tb, pb, Average::Binary), expected("precision_binary"), 1e-12);
  EXPECT_NEAR(recall_score(tb, pb, Average::Binary), expected("recall_binary"), 1e-12);
  EXPECT_NEAR(f1_score(tb, pb, Average::Binary), expected("f1_binary"), 1e-12);
  EXPECT_NEAR(roc_auc_binary(tb, to_vector(fixture()["score_binary"])), expected("roc_auc_binary"),
              1e-12);
  const Matrix proba = to_matrix(fixture()["proba"]);
  EXPECT_NEAR(roc_auc_score(t, proba), expected("roc_auc_ovr_macro"), 1e-12);
  EXPECT_NEAR(log_loss(t, proba), expected("log_loss"), 1e-12);
}

TEST(Metrics, RegressionAndClusteringMetricsMatchScikitLearn) {
  const Vector t = to_vector(fixture()["y_reg"]), p = to_vector(fixture()["y_reg_pred"]);
  EXPECT_NEAR(mean_squared_error(t, p), expected("mse"), 1e-12);
  EXPECT_NEAR(mean_absolute_error(t, p), expected("mae"), 1e-12);
  EXPECT_NEAR(r2_score(t, p), expected("r2"), 1e-12);
  const auto iris = testing::load_dataset("iris", true);
  EXPECT_NEAR(silhouette_score(iris.x, iris.y), expected("silhouette_iris"), 1e-12);
  EXPECT_NEAR(adjusted_rand_score(to_vector(fixture()["ari_a"]), to_vector(fixture()["ari_b"])),
              expected("ari"), 1e-12);
}

TEST(Metrics, EdgeCasesAndErrors) {
  EXPECT_EQ(adjusted_rand_score({0, 0, 1, 1}, {5, 5, 2, 2}), 1.0);  // relabelled, identical
  EXPECT_EQ(adjusted_rand_score({0, 0, 0}, {1, 1, 1}), 1.0);
  EXPECT_EQ(r2_score({2, 2, 2}, {2, 2, 2}), 1.0);
  EXPECT_EQ(r2_score({2, 2, 2}, {2, 2, 3}), 0.0);
  EXPECT_EQ(precision_score({0, 0, 1}, {0, 0, 0}, Average::Binary), 0.0);  // zero_division
  EXPECT_THROW(accuracy_score({0, 1}, {0}), Error);
  EXPECT_THROW(accuracy_score({}, {}), Error);
  EXPECT_THROW(roc_auc_binary({1, 1}, {0.2, 0.3}), Error);
  EXPECT_THROW(f1_score({0, 1, 2}, {0, 1, 2}, Average::Binary), Error);
  EXPECT_THROW(silhouette_score(Matrix(3, 1), {0, 0, 0}), Error);
  EXPECT_THROW(parse_average("median"), Error);
  EXPECT_THROW(find_scorer("accuracy_typo"), Error);
  EXPECT_THROW(f1_score({0.5}, {0.5}, Average::Macro), Error);
}

TEST(ModelSelection, UnshuffledFoldsEqualScikitLearns) {
  const auto& folds = fixture()["stratified_folds"];
  for (const char* dataset : {"iris", "wine", "breast_cancer", "digits"}) {
    const auto data = testing::load_dataset(dataset, true);
    const auto got = StratifiedKFold{5, false, 0}.split(data.y);
    ASSERT_EQ(got.size(), 5u);
    for (size_t f = 0; f < 5; ++f) {
      const Vector want = to_vector(folds[dataset][f]);
      EXPECT_EQ(Vector(got[f].test.begin(), got[f].test.end()), want) << dataset << f;
      EXPECT_EQ(got[f].train.size() + got[f].test.size(), static_cast<size_t>(data.x.rows));
    }
  }
  const auto k = KFold{3, false, 0}.split(10);
  for (size_t f = 0; f < 3; ++f) {
    EXPECT_EQ(Vector(k[f].test.begin(), k[f].test.end()), to_vector(folds["kfold_n10_k3"][f]));
  }
}

TEST(ModelSelection, ShuffledSplitsAreSeededPartitions) {
  const auto a = KFold{4, true, 42}.split(23);
  const auto b = KFold{4, true, 42}.split(23);
  const auto c = KFold{4, true, 43}.split(23);
  std::multiset<int64_t> all;
  for (size_t f = 0; f < 4; ++f) {
    EXPECT_EQ(a[f].test, b[f].test);
    all.insert(a[f].test.begin(), a[f].test.end());
  }
  EXPECT_EQ(all.size(), 23u);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 23u);
  EXPECT_NE(a[0].test, c[0].test);
  const auto iris = testing::load_dataset("iris", true);
  const auto s = StratifiedKFold{5, true, 7}.split(iris.y);
  for (const Fold& f : s) {
    int64_t per_class[3] = {0, 0, 0};
    for (int64_t i : f.test) ++per_class[static_cast<int64_t>(iris.y[static_cast<size_t>(i)])];
    EXPECT_EQ(per_class[0], 10);
    EXPECT_EQ(per_class[1], 10);
    EXPECT_EQ(per_class[2], 10);
  }
  EXPECT_THROW(KFold{5}.split(4), Error);
  EXPECT_THROW(KFold{1}.split(10), Error);
  EXPECT_THROW(StratifiedKFold{5}.split({0, 0, 1, 1}), Error);
}

TEST(ModelSelection, TrainTestSplitIsSeededAndStratified) {
  const auto iris = testing::load_dataset("iris", true);
  const auto a = train_test_split(iris.x, iris.y, 0.2, 5, true);
  const auto b = train_test_split(iris.x, iris.y, 0.2, 5, true);
  EXPECT_EQ(a.x_test.data, b.x_test.data);
  EXPECT_EQ(a.x_test.rows, 30);
  EXPECT_EQ(a.x_train.rows, 120);
  int64_t per_class[3] = {0, 0, 0};
  for (double v : a.y_test) ++per_class[static_cast<int64_t>(v)];
  EXPECT_EQ(per_class[0], 10);
  EXPECT_EQ(per_class[1], 10);
  EXPECT_EQ(per_class[2], 10);
  const auto c = train_test_split(iris.x, iris.y, 0.25, 5);
  EXPECT_EQ(c.x_test.rows, 38);  // ceil(0.25 * 150), as scikit-learn
  EXPECT_THROW(train_test_split(iris.x, iris.y, 150, 0), Error);
  EXPECT_THROW(train_test_split(iris.x, iris.y, 0, 0), Error);
}

TEST(ModelSelection, CrossValScoreMatchesScikitLearn) {
  for (const auto& c : fixture()["cross_val_score"]) {
    const std::string algo = c["algo"], dataset = c["dataset"];
    const bool classification = dataset != "diabetes";
    const auto data = testing::load_dataset(dataset, classification);
    const Vector scores =
        cross_val_score(algo, testing::to_params(c["params"]), data.x, data.y, 5, c["metric"]);
    const Vector want = to_vector(c["scores"]);
    const double mean = std::accumulate(scores.begin(), scores.end(), 0.0) / 5;
    EXPECT_NEAR(mean, c["mean"].get<double>(), 0.01)
        << algo << " " << dataset << " " << c["metric"];
    if (algo != "LogisticRegression" && algo != "Lasso" && algo != "ElasticNet") {
      // Deterministic closed-form estimators on identical folds: the same fold scores.
      EXPECT_LT(testing::max_abs_diff(scores, want), 1e-9) << algo << " " << dataset;
    }
  }
}

TEST(ModelSelection, GridSearchPicksTheBestCandidate) {
  const auto data = testing::load_dataset("diabetes", false);
  const std::map<std::string, std::vector<std::string>> grid{{"alpha", {"100", "0.1", "10"}}};
  const auto r = grid_search_cv("Ridge", ParamMap{}, grid, data.x, data.y, 5);
  ASSERT_EQ(r.mean_scores.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ParamMap p(r.candidates[i]);
    const Vector s = cross_val_score("Ridge", p, data.x, data.y, 5);
    EXPECT_DOUBLE_EQ(r.mean_scores[i], std::accumulate(s.begin(), s.end(), 0.0) / 5);
    EXPECT_LE(r.mean_scores[i], r.mean_scores[r.best_index]);
  }
  EXPECT_EQ(r.candidates[r.best_index].at("alpha"), "0.1");
  ASSERT_NE(r.best_model, nullptr);
  EXPECT_EQ(r.best_model->algorithm(), "Ridge");
  EXPECT_THROW(grid_search_cv("Ridge", ParamMap{}, {{"alpha", {}}}, data.x, data.y, 5), Error);
  EXPECT_THROW(cross_val_score("KMeans", ParamMap{}, data.x, data.y, 5), Error);
  EXPECT_THROW(cross_val_score("Ridge", ParamMap{}, data.x, data.y, 5, "accuracy"), Error);
}

}  // namespace
}  // namespace ember::ml
