// Nearest neighbours against scikit-learn 1.9.1 (fixtures from tools/ml/neighbors_fixtures.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/ml/neighbors.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

using nlohmann::json;

struct Split {
  Matrix x_train, x_test;
  Vector y_train, y_test;
};

Split split_fold(const Matrix& x, const Vector& y, const std::vector<int>& fold, int test_fold) {
  std::vector<int64_t> train, test;
  for (size_t i = 0; i < fold.size(); ++i)
    (fold[i] == test_fold ? test : train).push_back(static_cast<int64_t>(i));
  return {take_rows(x, train), take_rows(x, test), take(y, train), take(y, test)};
}

KNeighborsParams params_from(const json& p) {
  KNeighborsParams out;
  for (const auto& [key, value] : p.items()) {
    const std::string v = value.get<std::string>();
    if (key == "n_neighbors")
      out.n_neighbors = std::stoll(v);
    else if (key == "weights")
      out.weights = v;
    else if (key == "algorithm")
      out.algorithm = v;
    else if (key == "metric")
      out.metric = v;
    else if (key == "p")
      out.p = std::stod(v);
    else if (key == "leaf_size")
      out.leaf_size = std::stoll(v);
    else
      throw std::runtime_error("unexpected fixture parameter " + key);
  }
  return out;
}

class NeighborsFixture : public ::testing::Test {
 protected:
  static const json& fixture() { return testing::load_fixture("neighbors/neighbors.json"); }
  static Matrix features(const std::string& name) {
    static std::map<std::string, Matrix> cache;
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, testing::load_features(name)).first;
    return it->second;
  }
};

TEST_F(NeighborsFixture, HoldoutPredictionsAndProbabilitiesMatchScikitLearn) {
  for (const json& c : fixture()["holdout"]) {
    const std::string name = c["dataset"];
    const json& ds = fixture()["datasets"][name];
    const Matrix x = features(name);
    const Split s = split_fold(x, ds["y"].get<Vector>(), ds["fold"].get<std::vector<int>>(), 0);
    const KNeighborsParams params = params_from(c["params"]);
    SCOPED_TRACE(name + " " + c["params"].dump());
    const Vector expected = c["predict"].get<Vector>();
    if (name == "diabetes") {
      const auto model = KNeighborsRegressor{params}.fit(s.x_train, s.y_train);
      EXPECT_EQ(neighbor_algorithm_name(model.index->algorithm()),
                c["fit_method"].get<std::string>());
      const Vector pred = model.predict(s.x_test);
      ASSERT_EQ(pred.size(), expected.size());
      for (size_t i = 0; i < pred.size(); ++i)
        EXPECT_NEAR(pred[i], expected[i], 1e-9 * std::abs(expected[i]) + 1e-12);
      continue;
    }
    const auto model = KNeighborsClassifier{params}.fit(s.x_train, s.y_train);
    EXPECT_EQ(neighbor_algorithm_name(model.index->algorithm()),
              c["fit_method"].get<std::string>());
    const Vector pred = model.predict(s.x_test);
    ASSERT_EQ(pred.size(), expected.size());
    // Where the k-th and (k+1)-th neighbours are equally far, the neighbour set depends on
    // rounding and on scikit-learn's traversal order; those rows are counted, not compared.
    const auto tie = c["boundary_tie"].get<std::vector<bool>>();
    int mismatches = 0, tied = 0, tied_mismatches = 0;
    const Matrix proba = model.predict_proba(s.x_test);
    const Vector expected_proba = c["proba"].get<Vector>();
    ASSERT_EQ(std::min<int64_t>(proba.rows, 100) * proba.cols,
              static_cast<int64_t>(expected_proba.size()));
    for (size_t i = 0; i < pred.size(); ++i) {
      if (tie[i]) {
        ++tied;
        tied_mismatches += pred[i] != expected[i] ? 1 : 0;
        continue;
      }
      mismatches += pred[i] != expected[i] ? 1 : 0;
      for (int64_t k = 0; i < 100 && k < proba.cols; ++k) {
        EXPECT_NEAR(proba(static_cast<int64_t>(i), k), expected_proba[i * proba.cols + k], 1e-12);
      }
    }
    EXPECT_EQ(mismatches, 0);
    std::cout << "[ info ] " << name << " " << c["params"].dump() << ": " << pred.size()
              << " held-out rows, " << mismatches << " differ; " << tied
              << " rows with a tie at the k-th neighbour (" << tied_mismatches << " differ)\n";
  }
}

TEST_F(NeighborsFixture, KNeighborsListsMatchScikitLearnIncludingTies) {
  const json& kn = fixture()["kneighbors"];
  const Matrix x = features("iris");
  const int64_t n_train = kn["train_rows"];
  std::vector<int64_t> train(static_cast<size_t>(n_train)), test;
  std::iota(train.begin(), train.end(), 0);
  for (int64_t i = n_train; i < x.rows; ++i) test.push_back(i);
  const Matrix xt = take_rows(x, train), xq = take_rows(x, test);
  const auto tie = kn["boundary_tie"].get<std::vector<bool>>();
  for (auto algo :
       {NeighborAlgorithm::Brute, NeighborAlgorithm::KDTree, NeighborAlgorithm::BallTree}) {
    const std::string algo_name = neighbor_algorithm_name(algo);
    SCOPED_TRACE(algo_name);
    const Vector dist = kn[algo_name]["distances"].get<Vector>();
    const std::vector<int64_t> ind = kn[algo_name]["indices"].get<std::vector<int64_t>>();
    const NeighborIndex index(xt, parse_metric("euclidean", 2), algo, 3);
    const KNeighborsResult r = index.kneighbors(xq, kn["k"]);
    ASSERT_EQ(r.indices.size(), ind.size());
    for (size_t i = 0; i < ind.size(); ++i) EXPECT_NEAR(r.distances[i], dist[i], 1e-9);
    int compared = 0;
    for (size_t row = 0; row < tie.size(); ++row) {
      if (tie[row]) continue;  // which of the equally far rows is listed is order-dependent
      ++compared;
      // Equal distances inside the k may be listed in either order; compare as sets.
      std::vector<int64_t> a(r.indices.begin() + row * 5, r.indices.begin() + row * 5 + 5);
      std::vector<int64_t> b(ind.begin() + row * 5, ind.begin() + row * 5 + 5);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      EXPECT_EQ(a, b) << "query row " << row;
    }
    EXPECT_GT(compared, 40);
  }
}

TEST_F(NeighborsFixture, CrossValidatedScoresMatchScikitLearnWithSameFolds) {
  for (const json& c : fixture()["cv"]) {
    const std::string name = c["dataset"];
    const json& ds = fixture()["datasets"][name];
    const Matrix x = features(name);
    const Vector y = ds["y"].get<Vector>();
    const auto fold = ds["fold"].get<std::vector<int>>();
    const KNeighborsParams params = params_from(c["params"]);
    double mean = 0;
    for (int f = 0; f < 5; ++f) {
      const Split s = split_fold(x, y, fold, f);
      if (name == "diabetes") {
        mean += r2_score(s.y_test,
                         KNeighborsRegressor{params}.fit(s.x_train, s.y_train).predict(s.x_test));
      } else {
        mean += accuracy_score(
            s.y_test, KNeighborsClassifier{params}.fit(s.x_train, s.y_train).predict(s.x_test));
      }
    }
    mean /= 5;
    SCOPED_TRACE(name + " " + c["params"].dump());
    // kNN is deterministic: the same neighbours on the same folds give the same scores.
    EXPECT_NEAR(mean, c["mean"].get<double>(), 1e-12);
  }
}

Matrix random_matrix(int64_t rows, int64_t cols, uint32_t seed, bool integer = false) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> small(0, 3);
  Matrix m(rows, cols);
  for (double& v : m.data) v = integer ? small(gen) : normal(gen);
  return m;
}

TEST(NeighborIndex, TreesAgreeWithBruteForceForEveryMetric) {
  const Matrix data = random_matrix(300, 4, 1, /*integer=*/true);  // many exact ties
  const Matrix queries = random_matrix(40, 4, 2, true);
  for (const char* metric : {"euclidean", "manhattan", "chebyshev", "hamming"}) {
    const MetricSpec m = parse_metric(metric, 2);
    const NeighborIndex brute(data, m, NeighborAlgorithm::Brute, 30);
    const KNeighborsResult want = brute.kneighbors(queries, 7);
    std::vector<NeighborAlgorithm> algos{NeighborAlgorithm::BallTree};
    if (m.metric != Metric::Hamming) algos.push_back(NeighborAlgorithm::KDTree);
    for (auto algo : algos) {
      for (int64_t leaf : {1, 5, 40}) {
        SCOPED_TRACE(std::string(metric) + " " + neighbor_algorithm_name(algo) + " leaf " +
                     std::to_string(leaf));
        const NeighborIndex tree(data, m, algo, leaf);
        const KNeighborsResult got = tree.kneighbors(queries, 7);
        EXPECT_EQ(got.indices, want.indices);  // ties broken by index in both
        for (size_t i = 0; i < got.distances.size(); ++i)
          EXPECT_NEAR(got.distances[i], want.distances[i], 1e-12);
        EXPECT_EQ(tree.radius_neighbors(queries, 1.5), brute.radius_neighbors(queries, 1.5));
      }
    }
  }
}

TEST(NeighborIndex, BruteEuclideanGemmMatchesDirectDistances) {
  const Matrix a = random_matrix(50, 9, 3), b = random_matrix(70, 9, 4);
  for (const char* metric : {"euclidean", "cosine", "minkowski"}) {
    const MetricSpec m = parse_metric(metric, 3);
    const Matrix d = pairwise_distances(a, b, m);
    for (int64_t i = 0; i < a.rows; ++i)
      for (int64_t j = 0; j < b.rows; ++j)
        EXPECT_NEAR(d(i, j), metric_distance(m, a.row(i), b.row(j), a.cols), 1e-10);
  }
}

TEST(NeighborIndex, BruteEuclideanOverSeveralTilesMatchesADirectScan) {
  // More training rows than one GEMM tile holds (2048) and several tiles of queries, so the heaps
  // carry candidates across tiles.
  const Matrix data = random_matrix(4500, 20, 7), queries = random_matrix(300, 20, 8);
  const MetricSpec m = parse_metric("euclidean", 2);
  const int64_t k = 6;
  const KNeighborsResult got =
      NeighborIndex(data, m, NeighborAlgorithm::Brute, 30).kneighbors(queries, k);
  std::vector<std::pair<double, int64_t>> all(static_cast<size_t>(data.rows));
  for (int64_t i = 0; i < queries.rows; ++i) {
    for (int64_t j = 0; j < data.rows; ++j)
      all[static_cast<size_t>(j)] = {metric_distance(m, queries.row(i), data.row(j), data.cols), j};
    std::partial_sort(all.begin(), all.begin() + k, all.end());
    for (int64_t j = 0; j < k; ++j) {
      const auto at = static_cast<size_t>(i * k + j);
      // Gaussian data: the k nearest are separated by far more than the 1e-10 by which the GEMM
      // expansion and the direct sum can differ, so the order is the same.
      EXPECT_EQ(got.indices[at], all[static_cast<size_t>(j)].second);
      EXPECT_NEAR(got.distances[at], all[static_cast<size_t>(j)].first, 1e-10);
    }
  }
}

// OpenBLAS (the BLAS Ember links): its process-wide thread count, which brute-force kNN holds at
// one thread while pool tasks run their own GEMMs.
extern "C" int openblas_get_num_threads(void);
extern "C" void openblas_set_num_threads(int num_threads);

TEST(NeighborIndex, ResultsDoNotDependOnThreadCount) {
  const Matrix data = random_matrix(2000, 20, 5), queries = random_matrix(300, 20, 6);
  const NeighborIndex index(data, parse_metric("euclidean", 2), NeighborAlgorithm::Brute, 30);
  const int saved_threads = default_thread_pool().num_threads();
  const int saved_blas_threads = openblas_get_num_threads();
  // OpenBLAS allowed two threads of its own: kneighbors holds it at one while it runs, on one
  // pool thread as on two, and gives the count back afterwards.
  openblas_set_num_threads(2);
  set_num_threads(1);
  const KNeighborsResult one = index.kneighbors(queries, 5);
  set_num_threads(2);
  const KNeighborsResult two = index.kneighbors(queries, 5);
  const int blas_threads_after = openblas_get_num_threads();
  set_num_threads(saved_threads);
  openblas_set_num_threads(saved_blas_threads);
  EXPECT_EQ(blas_threads_after, 2);
  EXPECT_EQ(one.indices, two.indices);
  EXPECT_EQ(one.distances, two.distances);
}

TEST(KNeighbors, InvalidParametersThrow) {
  const Matrix x = random_matrix(10, 2, 7);
  Vector y(10);
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<double>(i % 2);
  KNeighborsParams p;
  p.n_neighbors = 11;
  EXPECT_THROW(KNeighborsClassifier{p}.fit(x, y), Error);  // k > n_samples
  EXPECT_THROW(KNeighborsRegressor{p}.fit(x, y), Error);
  p = {};
  p.n_neighbors = 0;
  EXPECT_THROW(KNeighborsClassifier{p}.fit(x, y), Error);
  p = {};
  p.weights = "gaussian";
  EXPECT_THROW(KNeighborsClassifier{p}.fit(x, y), Error);
  p = {};
  p.metric = "mahalanobis";
  EXPECT_THROW(KNeighborsClassifier{p}.fit(x, y), Error);
  p = {};
  p.algorithm = "kd_tree";
  p.metric = "cosine";  // KD-trees need an axis-aligned metric
  EXPECT_THROW(KNeighborsClassifier{p}.fit(x, y), Error);
  p = {};
  p.p = 0.5;
  EXPECT_THROW(KNeighborsClassifier{p}.fit(x, y), Error);
  const auto model = KNeighborsClassifier{}.fit(x, y);
  EXPECT_THROW(model.predict(random_matrix(3, 3, 8)), Error);  // wrong width

  ParamMap bad(std::map<std::string, std::string>{{"n_neighbours", "3"}});
  EXPECT_THROW(find_algorithm("KNeighborsClassifier").fit(bad, x, &y), Error);
}

TEST(KNeighbors, SaveLoadRoundTripAndCorruptArchives) {
  const Matrix x = random_matrix(60, 3, 9), q = random_matrix(20, 3, 10);
  Vector y(60);
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<double>(i % 3);
  ParamMap params(std::map<std::string, std::string>{
      {"n_neighbors", "4"}, {"weights", "distance"}, {"algorithm", "ball_tree"}});
  const auto model = find_algorithm("KNeighborsClassifier").fit(params, x, &y);
  const std::string bytes = save_model(*model);
  const auto loaded = load_model(bytes);
  EXPECT_EQ(loaded->predict(q), model->predict(q));
  EXPECT_EQ(loaded->predict_proba(q).data, model->predict_proba(q).data);
  for (size_t cut : {size_t{0}, size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_THROW(load_model(bytes.substr(0, cut)), Error);
  }
  std::string extra = bytes + "x";
  EXPECT_THROW(load_model(extra), Error);

  ParamMap rparams(std::map<std::string, std::string>{{"n_neighbors", "3"}});
  const auto reg = find_algorithm("KNeighborsRegressor").fit(rparams, x, &y);
  const auto reg_loaded = load_model(save_model(*reg));
  EXPECT_EQ(reg_loaded->predict(q), reg->predict(q));
}

}  // namespace
}  // namespace ember::ml
