// KMeans, DBSCAN and agglomerative clustering against scikit-learn 1.9.1
// (tools/ml/cluster_fixtures.py).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "ember/base/error.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/ml/cluster.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

using nlohmann::json;

const json& fixture() {
  return testing::load_fixture("cluster/cluster.json");
}

Matrix matrix(const json& values, int64_t cols) {
  Matrix m;
  m.data = values.get<Vector>();
  m.cols = cols;
  m.rows = static_cast<int64_t>(m.data.size()) / cols;
  return m;
}

Matrix input(const std::string& name) {
  return matrix(fixture()[name], fixture()[name + "_cols"].get<int64_t>());
}

// Adjusted Rand index (Hubert and Arabie), to compare labelings up to renaming.
double adjusted_rand(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::map<std::pair<int64_t, int64_t>, double> joint;
  std::map<int64_t, double> ca, cb;
  for (size_t i = 0; i < a.size(); ++i) {
    joint[{a[i], b[i]}] += 1;
    ca[a[i]] += 1;
    cb[b[i]] += 1;
  }
  auto c2 = [](double n) { return n * (n - 1) / 2; };
  double index = 0, sa = 0, sb = 0;
  for (const auto& [k, n] : joint) index += c2(n);
  for (const auto& [k, n] : ca) sa += c2(n);
  for (const auto& [k, n] : cb) sb += c2(n);
  const double expected = sa * sb / c2(static_cast<double>(a.size()));
  const double max_index = (sa + sb) / 2;
  if (max_index == expected) return 1.0;
  return (index - expected) / (max_index - expected);
}

std::vector<int64_t> as_labels(const Vector& v) {
  return {v.begin(), v.end()};
}

TEST(KMeans, SameInitialCentresGiveScikitLearnsLabelsAndInertia) {
  const Matrix x = input("blobs");
  for (const json& c : fixture()["kmeans"]) {
    const std::string algorithm = c["algorithm"];
    SCOPED_TRACE(algorithm + " k=" + std::to_string(c["n_clusters"].get<int>()));
    KMeansParams p;
    p.n_clusters = c["n_clusters"];
    p.algorithm = algorithm;
    p.init_centers = matrix(c["init"], x.cols);
    const KMeansModel m = KMeans{p}.fit(x);
    EXPECT_EQ(m.labels, c["labels"].get<std::vector<int64_t>>());
    const double inertia = c["inertia"];
    EXPECT_NEAR(m.inertia, inertia, 1e-8 * inertia);
    EXPECT_EQ(m.n_iter, c["n_iter"].get<int64_t>());
    const Vector centers = c["centers"].get<Vector>();
    for (size_t i = 0; i < centers.size(); ++i) EXPECT_NEAR(m.centers.data[i], centers[i], 1e-9);
    Matrix shifted(20, x.cols);
    for (int64_t i = 0; i < 20; ++i)
      for (int64_t j = 0; j < x.cols; ++j) shifted(i, j) = x(i, j) + 0.5;
    EXPECT_EQ(as_labels(m.predict(shifted)), c["predict_moons_padded"].get<std::vector<int64_t>>());
    Matrix head(10, x.cols);
    std::copy_n(x.data.begin(), 10 * x.cols, head.data.begin());
    const Vector transform = c["transform"].get<Vector>();
    const Matrix t = m.transform(head);
    for (size_t i = 0; i < transform.size(); ++i) EXPECT_NEAR(t.data[i], transform[i], 1e-9);
  }
}

TEST(KMeans, PlusPlusSeedingReachesScikitLearnsOptimum) {
  // k-means++ from 10 seeds must reach the inertia scikit-learn reaches (its median over 10
  // seeds) within 0.1%.
  const Matrix x = input("blobs");
  const json& ref = fixture()["kmeans_plusplus"];
  std::vector<double> inertias;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    KMeansParams p;
    p.n_clusters = ref["n_clusters"];
    p.random_state = seed;
    inertias.push_back(KMeans{p}.fit(x).inertia);
  }
  std::sort(inertias.begin(), inertias.end());
  const double median = (inertias[4] + inertias[5]) / 2;
  EXPECT_NEAR(median, ref["inertia_median"].get<double>(),
              1e-3 * ref["inertia_median"].get<double>());
  EXPECT_GE(inertias[0], ref["inertia_min"].get<double>() * (1 - 1e-9));
}

TEST(KMeans, PlusPlusSeedPicksScikitLearnsCentresAndIterations) {
  // Both draw from numpy's RandomState stream, so a seed picks the same rows (distances differ in
  // the last bits at most, far from where a draw would change), and the fit from them takes the
  // same iterations to the same labels. Inertia: the same sum in another order.
  // "wide" has 27 features: the distances' 8-feature lanes and their tail.
  for (const json& c : fixture()["kmeans_plusplus_seeds"]) {
    const Matrix x = input(c["data"].get<std::string>());
    const auto seed = c["seed"].get<uint64_t>();
    const auto k = c["n_clusters"].get<int64_t>();
    SCOPED_TRACE(c["data"].get<std::string>() + " seed=" + std::to_string(seed) +
                 " k=" + std::to_string(k));
    const Matrix centres = kmeans_plusplus(x, k, seed);
    const auto indices = c["indices"].get<std::vector<int64_t>>();
    for (int64_t i = 0; i < k; ++i) {
      const std::vector<double> got(centres.row(i), centres.row(i) + x.cols);
      const std::vector<double> want(x.row(indices[static_cast<size_t>(i)]),
                                     x.row(indices[static_cast<size_t>(i)]) + x.cols);
      EXPECT_EQ(got, want) << "centre " << i;
    }
    KMeansParams p;
    p.n_clusters = k;
    p.n_init = c["n_init"].get<int64_t>();
    p.random_state = seed;
    const KMeansModel m = KMeans{p}.fit(x);
    EXPECT_EQ(m.n_iter, c["n_iter"].get<int64_t>());
    EXPECT_EQ(m.labels, c["labels"].get<std::vector<int64_t>>());
    EXPECT_NEAR(m.inertia, c["inertia"].get<double>(), 1e-9 * c["inertia"].get<double>());
  }
}

TEST(KMeans, ElkanBoundsGiveLloydsIterates) {
  // Elkan only skips distance computations, so from the same start both give the same run.
  const Matrix x = input("blobs");
  for (int64_t k : {2, 7, 12}) {
    for (uint64_t seed : {1u, 2u}) {
      SCOPED_TRACE("k=" + std::to_string(k) + " seed=" + std::to_string(seed));
      KMeansParams p;
      p.n_clusters = k;
      p.random_state = seed;
      p.tol = 0;  // run to strict convergence
      const KMeansModel lloyd = KMeans{p}.fit(x);
      p.algorithm = "elkan";
      const KMeansModel elkan = KMeans{p}.fit(x);
      EXPECT_EQ(lloyd.labels, elkan.labels);
      EXPECT_EQ(lloyd.n_iter, elkan.n_iter);
      EXPECT_NEAR(lloyd.inertia, elkan.inertia, 1e-9 * lloyd.inertia);
    }
  }
}

TEST(KMeans, DeterministicAcrossThreadCounts) {
  // The blobs, and 6,000 rows made of them with jitter: several row parts, and label GEMM calls
  // that group rows differently at one and at two threads.
  const Matrix blobs = input("blobs");
  Matrix many(6000, blobs.cols);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> jitter(-0.5, 0.5);
  for (int64_t i = 0; i < many.rows; ++i)
    for (int64_t j = 0; j < many.cols; ++j) many(i, j) = blobs(i % blobs.rows, j) + jitter(rng);
  const std::array<const Matrix*, 2> inputs{&blobs, &many};
  for (const Matrix* x : inputs) {
    SCOPED_TRACE("rows=" + std::to_string(x->rows));
    KMeansParams p;
    p.n_clusters = 6;
    p.n_init = 3;
    p.random_state = 42;
    const int saved_threads = default_thread_pool().num_threads();
    set_num_threads(1);
    const KMeansModel one = KMeans{p}.fit(*x);
    set_num_threads(2);
    const KMeansModel two = KMeans{p}.fit(*x);
    set_num_threads(saved_threads);
    EXPECT_EQ(one.labels, two.labels);
    EXPECT_EQ(one.centers.data, two.centers.data);
    EXPECT_EQ(one.inertia, two.inertia);
    EXPECT_EQ(one.n_iter, two.n_iter);
  }
}

// KMeans.predict judges X's finiteness from the products x.c (a NaN or infinity in a row makes
// them non-finite) and must fail exactly as a scan of X would, on one thread or several.
TEST(KMeans, PredictRejectsNonFiniteInputAsAScanWould) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  Matrix x(20000, 3);
  for (double& v : x.data) v = normal(rng);
  KMeansParams p;
  p.n_clusters = 4;
  p.random_state = 0;
  const int saved_threads = default_thread_pool().num_threads();
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    const KMeansModel m = KMeans{p}.fit(x);
    for (const double bad : {NAN, INFINITY, -INFINITY}) {
      Matrix q = x;
      q(17001, 0) = bad;
      q(15000, 2) = bad;
      std::string message = "no error";
      try {
        m.predict(q);
      } catch (const Error& e) {
        message = e.what();
      }
      EXPECT_EQ(message, "KMeans: non-finite value in X at row 15000") << threads;
    }
    // Finite input whose x.c overflows is accepted, as the scan accepts it.
    Matrix huge = x;
    for (int64_t j = 0; j < huge.cols; ++j) huge(3, j) = 1e308;
    EXPECT_NO_THROW(m.predict(huge));
  }
  set_num_threads(saved_threads);
}

TEST(DBSCAN, LabelsAndCoreSamplesMatchScikitLearn) {
  for (const json& c : fixture()["dbscan"]) {
    SCOPED_TRACE(c["params"].dump());
    const Matrix x = input(c["data"]);
    DBSCANParams p;
    for (const auto& [key, value] : c["params"].items()) {
      const std::string v = value.get<std::string>();
      if (key == "eps")
        p.eps = std::stod(v);
      else if (key == "min_samples")
        p.min_samples = std::stoll(v);
      else if (key == "metric")
        p.metric = v;
      else if (key == "algorithm")
        p.algorithm = v;
      else
        FAIL() << "unexpected parameter " << key;
    }
    for (const char* algorithm : {"auto", "brute", "ball_tree"}) {
      if (c["params"].contains("algorithm") && std::string(algorithm) != "auto") continue;
      DBSCANParams q = p;
      if (!c["params"].contains("algorithm")) q.algorithm = algorithm;
      const DBSCANModel m = DBSCAN{q}.fit(x);
      EXPECT_EQ(m.labels, c["labels"].get<std::vector<int64_t>>()) << q.algorithm;
      EXPECT_EQ(m.core_sample_indices, c["core_sample_indices"].get<std::vector<int64_t>>());
      // Predicting on the training rows reproduces the fitted labels.
      EXPECT_EQ(as_labels(m.predict(x)), m.labels);
    }
  }
}

TEST(AgglomerativeClustering, LabelsMatchScikitLearn) {
  for (const json& c : fixture()["agglomerative"]) {
    SCOPED_TRACE(c["data"].get<std::string>() + " " + c["params"].dump());
    const Matrix x = input(c["data"]);
    AgglomerativeParams p;
    for (const auto& [key, value] : c["params"].items()) {
      const std::string v = value.get<std::string>();
      if (key == "n_clusters")
        p.n_clusters = std::stoll(v);
      else if (key == "linkage")
        p.linkage = v;
      else if (key == "metric")
        p.metric = v;
      else
        FAIL() << "unexpected parameter " << key;
    }
    const AgglomerativeModel m = AgglomerativeClustering{p}.fit(x);
    const auto want = c["labels"].get<std::vector<int64_t>>();
    EXPECT_DOUBLE_EQ(adjusted_rand(m.labels, want), 1.0);
    // The numbering follows scikit-learn's tree cut, so the labels are in fact identical.
    EXPECT_EQ(m.labels, want);
    EXPECT_EQ(as_labels(m.predict(x)), m.labels);
    std::vector<int64_t> children;
    for (const auto& ch : m.children) children.insert(children.end(), ch.begin(), ch.end());
    EXPECT_EQ(children, c["children"].get<std::vector<int64_t>>());
  }
}

TEST(Clustering, InvalidParametersThrow) {
  const Matrix x = input("small");
  KMeansParams k;
  k.n_clusters = 91;  // > n_samples
  EXPECT_THROW(KMeans{k}.fit(x), Error);
  k = {};
  k.algorithm = "full";
  EXPECT_THROW(KMeans{k}.fit(x), Error);
  k = {};
  k.n_clusters = 2;
  k.init_centers = Matrix(3, 2);
  EXPECT_THROW(KMeans{k}.fit(x), Error);
  k.init_centers = Matrix(2, 3);
  EXPECT_THROW(KMeans{k}.fit(x), Error);
  DBSCANParams d;
  d.eps = 0;
  EXPECT_THROW(DBSCAN{d}.fit(x), Error);
  d = {};
  d.min_samples = 0;
  EXPECT_THROW(DBSCAN{d}.fit(x), Error);
  d = {};
  d.metric = "cosine";
  d.algorithm = "kd_tree";
  EXPECT_THROW(DBSCAN{d}.fit(x), Error);
  AgglomerativeParams a;
  a.linkage = "centroid";
  EXPECT_THROW(AgglomerativeClustering{a}.fit(x), Error);
  a = {};
  a.metric = "manhattan";  // ward needs euclidean
  EXPECT_THROW(AgglomerativeClustering{a}.fit(x), Error);
  a = {};
  a.n_clusters = 91;
  EXPECT_THROW(AgglomerativeClustering{a}.fit(x), Error);
  ParamMap bad(std::map<std::string, std::string>{{"n_clusters", "3"}, {"affinity", "l1"}});
  EXPECT_THROW(find_algorithm("AgglomerativeClustering").fit(bad, x, nullptr), Error);
}

TEST(Clustering, SaveLoadRoundTripAndCorruptArchives) {
  const Matrix x = input("small");
  Matrix q(7, 2);
  for (int64_t i = 0; i < q.rows; ++i) {
    q(i, 0) = x(i * 3, 0) + 0.05;
    q(i, 1) = x(i * 3, 1) - 0.05;
  }
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> cases = {
      {"KMeans", {{"n_clusters", "4"}, {"random_state", "3"}}},
      {"DBSCAN", {{"eps", "1.0"}, {"min_samples", "4"}}},
      {"AgglomerativeClustering", {{"n_clusters", "4"}, {"linkage", "average"}}}};
  for (const auto& [name, values] : cases) {
    SCOPED_TRACE(name);
    ParamMap params(values);
    const auto model = find_algorithm(name).fit(params, x, nullptr);
    const std::string bytes = save_model(*model);
    const auto loaded = load_model(bytes);
    EXPECT_EQ(loaded->predict(q), model->predict(q));
    EXPECT_EQ(loaded->predict(x), model->predict(x));
    for (size_t cut : {size_t{5}, bytes.size() / 2, bytes.size() - 1}) {
      EXPECT_THROW(load_model(bytes.substr(0, cut)), Error);
    }
  }
}

}  // namespace
}  // namespace ember::ml
