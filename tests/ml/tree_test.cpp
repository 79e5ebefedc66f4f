// Decision trees against scikit-learn 1.9.1 (fixtures from tools/ml/trees_fixtures.py), plus
// save/load, corrupt archives and parameter validation.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/ml/tree.hpp"
#include "tree_test_support.hpp"

namespace ember::ml {
namespace {

using tree_test::load_fixture;

class ExactTrees : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new std::map<std::string, Matrix>(load_fixture("exact_trees.txt"));
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  static const Matrix& get(const std::string& key) {
    auto it = fixture_->find(key);
    if (it == fixture_->end()) throw std::runtime_error("fixture lacks " + key);
    return it->second;
  }
  static std::map<std::string, Matrix>* fixture_;
};
std::map<std::string, Matrix>* ExactTrees::fixture_ = nullptr;

void expect_same_classifier(const std::string& name, DecisionTreeParams params,
                            const Matrix& x_train, const Vector& y, const Matrix& x_test,
                            const Matrix& pred, const Matrix& proba, const Matrix& shape) {
  SCOPED_TRACE(name);
  for (int64_t seed : {0, 1, 42}) {
    params.random_state = seed;
    const auto fitted = DecisionTreeClassifier(params).fit(x_train, y);
    EXPECT_EQ(fitted.tree().nodes.size(), static_cast<size_t>(shape.data[0]));
    EXPECT_EQ(fitted.tree().depth(), static_cast<int64_t>(shape.data[1]));
    const Vector p = fitted.predict(x_test);
    ASSERT_EQ(p.size(), pred.data.size());
    int64_t mismatches = 0;
    for (size_t i = 0; i < p.size(); ++i) mismatches += p[i] != pred.data[i];
    EXPECT_EQ(mismatches, 0);
    const Matrix q = fitted.predict_proba(x_test);
    ASSERT_EQ(q.data.size(), proba.data.size());
    for (size_t i = 0; i < q.data.size(); ++i) ASSERT_NEAR(q.data[i], proba.data[i], 1e-12);
  }
}

TEST_F(ExactTrees, ClassifierMatchesScikitLearn) {
  const Matrix& x = get("x_train");
  const Matrix& x_test = get("x_test");
  const Vector y = get("y_class").data;
  struct Case {
    std::string name;
    DecisionTreeParams params;
  };
  std::vector<Case> cases;
  {
    DecisionTreeParams p;
    p.criterion = "gini";
    p.max_depth = 3;
    cases.push_back({"clf_gini_depth3", p});
  }
  {
    DecisionTreeParams p;
    p.criterion = "entropy";
    p.max_depth = 3;
    cases.push_back({"clf_entropy_depth3", p});
  }
  {
    DecisionTreeParams p;
    p.criterion = "log_loss";
    p.max_leaf_nodes = 8;
    cases.push_back({"clf_entropy_leaves8", p});
  }
  {
    DecisionTreeParams p;
    p.criterion = "gini";
    p.max_leaf_nodes = 12;
    cases.push_back({"clf_gini_leaves12", p});
  }
  for (const Case& c : cases) {
    expect_same_classifier(c.name, c.params, x, y, x_test, get(c.name + "_pred"),
                           get(c.name + "_proba"), get(c.name + "_shape"));
  }
}

TEST_F(ExactTrees, RegressorMatchesScikitLearn) {
  const Matrix& x = get("x_train");
  const Matrix& x_test = get("x_test");
  const Vector y = get("y_reg").data;
  struct Case {
    std::string name;
    DecisionTreeParams params;
  };
  std::vector<Case> cases;
  {
    DecisionTreeParams p;
    p.min_samples_leaf = SampleCount::count(10);
    cases.push_back({"reg_leaf10", p});
  }
  {
    DecisionTreeParams p;
    p.max_depth = 5;
    p.min_samples_leaf = SampleCount::count(8);
    cases.push_back({"reg_depth5_leaf8", p});
  }
  {
    DecisionTreeParams p;
    p.max_leaf_nodes = 20;
    p.min_samples_leaf = SampleCount::count(3);
    cases.push_back({"reg_leaves20_leaf3", p});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    DecisionTreeParams p = c.params;
    p.random_state = 3;
    const auto fitted = DecisionTreeRegressor(p).fit(x, y);
    const Matrix& shape = get(c.name + "_shape");
    EXPECT_EQ(fitted.tree().nodes.size(), static_cast<size_t>(shape.data[0]));
    EXPECT_EQ(fitted.tree().depth(), static_cast<int64_t>(shape.data[1]));
    const Vector pred = fitted.predict(x_test);
    const Matrix& want = get(c.name + "_pred");
    ASSERT_EQ(pred.size(), want.data.size());
    // Leaf means differ from scikit-learn's only by summation order.
    for (size_t i = 0; i < pred.size(); ++i) {
      ASSERT_NEAR(pred[i], want.data[i], 1e-12 * (1 + std::abs(want.data[i]))) << i;
    }
  }
}

Matrix small_x() {
  Matrix x(60, 3);
  for (int64_t i = 0; i < 60; ++i) {
    x(i, 0) = std::sin(0.37 * static_cast<double>(i));
    x(i, 1) = static_cast<double>(i % 7);
    x(i, 2) = std::cos(1.3 * static_cast<double>(i));
  }
  return x;
}
Vector small_classes(const Matrix& x) {
  Vector y(static_cast<size_t>(x.rows));
  for (int64_t i = 0; i < x.rows; ++i) y[static_cast<size_t>(i)] = (x(i, 0) > 0) + (x(i, 1) > 3);
  return y;
}

TEST(DecisionTree, SaveLoadRoundTripPredictsIdentically) {
  const Matrix x = small_x();
  const Vector y = small_classes(x);
  const Algorithm& algo = find_algorithm("DecisionTreeClassifier");
  ParamMap params({{"max_depth", "4"}, {"random_state", "0"}, {"max_features", "2"}});
  const auto model = algo.fit(params, x, &y);
  const std::string bytes = save_model(*model);
  const auto loaded = load_model(bytes);
  EXPECT_EQ(loaded->algorithm(), "DecisionTreeClassifier");
  EXPECT_EQ(save_model(*loaded), bytes);
  EXPECT_EQ(loaded->predict(x), model->predict(x));
  EXPECT_EQ(loaded->predict_proba(x).data, model->predict_proba(x).data);

  const Algorithm& reg = find_algorithm("DecisionTreeRegressor");
  ParamMap reg_params({{"random_state", "1"}, {"splitter", "random"}});
  const auto reg_model = reg.fit(reg_params, x, &y);
  const auto reg_loaded = load_model(save_model(*reg_model));
  EXPECT_EQ(reg_loaded->predict(x), reg_model->predict(x));
  EXPECT_THROW(reg_loaded->predict_proba(x), Error);
}

TEST(DecisionTree, TruncatedOrCorruptArchivesThrow) {
  const Matrix x = small_x();
  const Vector y = small_classes(x);
  const auto fitted = DecisionTreeClassifier().fit(x, y);
  ArchiveWriter out;
  fitted.save(out);
  const std::string bytes = out.bytes();
  for (size_t n = 0; n < bytes.size(); ++n) {
    ArchiveReader in(std::string_view(bytes).substr(0, n));
    EXPECT_THROW(FittedDecisionTreeClassifier::load(in), Error) << n;
  }
  // Node 0's left child (bytes 24..31 after n_features, n_values, node count) pointing at
  // itself or past the end, or a feature out of range, must be rejected.
  const size_t node0 = size_t{3} * 8;
  for (int64_t bad : {int64_t{0}, int64_t{1} << 20, int64_t{-5}}) {
    std::string corrupt = bytes;
    for (int b = 0; b < 8; ++b) corrupt[node0 + b] = static_cast<char>((bad >> (8 * b)) & 0xff);
    ArchiveReader in(corrupt);
    EXPECT_THROW(FittedDecisionTreeClassifier::load(in), Error) << bad;
  }
  std::string bad_feature = bytes;
  bad_feature[node0 + 16] = 9;  // feature 9 of 3
  ArchiveReader in(bad_feature);
  EXPECT_THROW(FittedDecisionTreeClassifier::load(in), Error);
  EXPECT_THROW(load_model("EMBERML garbage"), Error);
}

// The compact float traversal must route every float exactly as the double-threshold reference,
// including values equal to, or one float step around, each threshold.
TEST(DecisionTree, PackedTraversalMatchesReference) {
  const Matrix x = small_x();
  const Vector y = small_classes(x);
  DecisionTreeParams p;
  p.random_state = 4;
  const auto fitted = DecisionTreeClassifier(p).fit(x, y);
  const TreeStructure& tree = fitted.tree();
  ASSERT_EQ(tree.packed.size(), tree.nodes.size());
  std::vector<float> probes;
  for (const TreeNode& n : tree.nodes) {
    if (n.is_leaf()) continue;
    const float t = static_cast<float>(n.threshold);
    for (float v : {t, std::nextafter(t, -1e30f), std::nextafter(t, 1e30f)}) probes.push_back(v);
  }
  for (int i = -50; i <= 50; ++i) probes.push_back(0.1f * static_cast<float>(i));
  int64_t checked = 0;
  for (float a : probes) {
    for (float b : {-1.0f, 2.0f, 3.5f, 6.0f}) {
      const float row[3] = {a, b, a * 0.5f};
      const float swapped[3] = {a * 0.3f, b, a};
      EXPECT_EQ(tree.find_leaf_packed(row), tree.find_leaf(row));
      EXPECT_EQ(tree.find_leaf_packed(swapped), tree.find_leaf(swapped));
      checked += 2;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(DecisionTree, InvalidParametersThrow) {
  auto bad = [](auto mutate) {
    DecisionTreeParams p;
    mutate(p);
    return p;
  };
  EXPECT_THROW(DecisionTreeClassifier(bad([](auto& p) { p.criterion = "mse"; })), Error);
  EXPECT_THROW(DecisionTreeRegressor(bad([](auto& p) { p.criterion = "gini"; })), Error);
  EXPECT_THROW(DecisionTreeClassifier(bad([](auto& p) { p.max_depth = 0; })), Error);
  EXPECT_THROW(DecisionTreeClassifier(bad([](auto& p) { p.splitter = "worst"; })), Error);
  EXPECT_THROW(
      DecisionTreeClassifier(bad([](auto& p) { p.min_samples_split = SampleCount::count(1); })),
      Error);
  EXPECT_THROW(DecisionTreeClassifier(bad([](auto& p) {
                 p.min_samples_leaf = SampleCount{true, 1.0};
               })),
               Error);
  EXPECT_THROW(DecisionTreeClassifier(bad([](auto& p) { p.max_leaf_nodes = 1; })), Error);
  EXPECT_THROW(DecisionTreeClassifier(bad([](auto& p) { p.min_impurity_decrease = -1; })), Error);
  EXPECT_THROW(
      DecisionTreeClassifier(bad([](auto& p) { p.max_features = MaxFeatures::parse("1.5"); })),
      Error);
  EXPECT_THROW(MaxFeatures::parse("cube"), Error);

  const Matrix x = small_x();
  const Vector y = small_classes(x);
  DecisionTreeParams too_many;
  too_many.max_features = MaxFeatures::parse("4");
  EXPECT_THROW(DecisionTreeClassifier(too_many).fit(x, y), Error);
  Vector not_classes = y;
  not_classes[0] = 0.5;
  EXPECT_THROW(DecisionTreeClassifier().fit(x, not_classes), Error);
  const auto fitted = DecisionTreeClassifier().fit(x, y);
  EXPECT_THROW(fitted.predict(Matrix(2, 4)), Error);

  const Algorithm& algo = find_algorithm("DecisionTreeClassifier");
  ParamMap unknown(std::map<std::string, std::string>{{"max_dept", "3"}});
  EXPECT_THROW(algo.fit(unknown, x, &y), Error);
  ParamMap malformed(std::map<std::string, std::string>{{"min_samples_leaf", "two"}});
  EXPECT_THROW(algo.fit(malformed, x, &y), Error);
}

TEST(DecisionTree, FitsTrainingDataAndHonoursLimits) {
  const Matrix x = small_x();
  const Vector y = small_classes(x);
  const auto full = DecisionTreeClassifier().fit(x, y);
  EXPECT_EQ(full.predict(x), y);  // distinct rows: a full tree separates the training set
  DecisionTreeParams p;
  p.max_depth = 2;
  EXPECT_LE(DecisionTreeClassifier(p).fit(x, y).tree().depth(), 2);
  p = {};
  p.max_leaf_nodes = 3;
  EXPECT_LE(DecisionTreeClassifier(p).fit(x, y).tree().leaf_count(), 3);
  p = {};
  p.min_samples_leaf = SampleCount::count(7);
  const auto leafy = DecisionTreeClassifier(p).fit(x, y);
  for (const TreeNode& n : leafy.tree().nodes) {
    EXPECT_GE(n.n_samples, 7);
  }
  // A split must decrease the weighted impurity by min_impurity_decrease: the root's gini is
  // below 0.7, so 0.7 forbids every split, while 0.01 still allows some.
  p = {};
  p.min_impurity_decrease = 0.7;
  EXPECT_EQ(DecisionTreeClassifier(p).fit(x, y).tree().nodes.size(), 1u);
  Vector noisy = y;  // label noise makes the full tree grow many small, weak splits
  for (size_t i = 0; i < noisy.size(); i += 5) noisy[i] = std::fmod(noisy[i] + 1, 3);
  p.min_impurity_decrease = 0.02;
  const auto pruned = DecisionTreeClassifier(p).fit(x, noisy);
  const auto unpruned = DecisionTreeClassifier().fit(x, noisy);
  EXPECT_GT(pruned.tree().nodes.size(), 1u);
  EXPECT_LT(pruned.tree().nodes.size(), unpruned.tree().nodes.size());
  // Same seed, same tree; the random splitter depends on the seed.
  p = {};
  p.splitter = "random";
  p.random_state = 5;
  ArchiveWriter a, b;
  DecisionTreeClassifier(p).fit(x, y).save(a);
  DecisionTreeClassifier(p).fit(x, y).save(b);
  EXPECT_EQ(a.bytes(), b.bytes());
}

}  // namespace
}  // namespace ember::ml
