// PCA and TruncatedSVD against scikit-learn 1.9.1 (tools/ml/decomposition_fixtures.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "ember/base/error.hpp"
#include "ember/ml/decomposition.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

using nlohmann::json;

const json& fixture() {
  return testing::load_fixture("decomposition/decomposition.json");
}

Matrix matrix(const json& values, int64_t cols) {
  const Vector v = values.get<Vector>();
  Matrix m(static_cast<int64_t>(v.size()) / cols, cols);
  m.data = v;
  return m;
}

Matrix input(const std::string& name) {
  const auto shape = fixture()[name + "_shape"].get<std::vector<int64_t>>();
  return matrix(fixture()[name], shape[1]);
}

void expect_close(const Vector& got, const Vector& want, double rel, double abs_tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], abs_tol + rel * std::abs(want[i])) << what << " [" << i << "]";
  }
}

PCAParams params_of(const json& p) {
  PCAParams out;
  for (const auto& [key, value] : p.items()) {
    const std::string v = value.get<std::string>();
    if (key == "n_components") {
      if (v == "mle")
        out.n_components_mle = true;
      else if (v.find('.') != std::string::npos)
        out.n_components_fraction = std::stod(v);
      else
        out.n_components = std::stoll(v);
    } else if (key == "svd_solver") {
      out.svd_solver = v;
    } else if (key == "whiten") {
      out.whiten = v == "True";
    } else if (key == "random_state") {
      out.random_state = std::stoull(v);
    } else {
      throw std::runtime_error("unexpected fixture parameter " + key);
    }
  }
  return out;
}

struct Case {
  const char* key;
  const char* data;
  const char* fresh;
};

TEST(PCA, ExactSolversMatchScikitLearn) {
  // Components are compared directly: svd_flip makes the signs deterministic, like sklearn's.
  for (const Case c :
       {Case{"wide_full_3", "wide", "new_wide"}, Case{"wide_full_all", "wide", "new_wide"},
        Case{"wide_frac", "wide", "new_wide"}, Case{"wide_whiten", "wide", "new_wide"},
        Case{"tall_auto", "tall", "new_tall"}, Case{"tall_full", "tall", "new_tall"},
        Case{"big_full", "big", "new_big"}, Case{"big_mle", "big", "new_big"},
        Case{"tall_mle", "tall", "new_tall"}, Case{"big_arpack", "big", "new_big"},
        Case{"wide_arpack_default", "wide", "new_wide"}}) {
    SCOPED_TRACE(c.key);
    const json& want = fixture()["pca"][c.key];
    const Matrix x = input(c.data);
    const Matrix fresh = matrix(fixture()[c.fresh], x.cols);
    const PCAModel m = PCA{params_of(want["params"])}.fit(x);
    ASSERT_EQ(m.n_components(), want["n_components"].get<int64_t>());
    if (std::string(c.key) == "tall_auto") {
      EXPECT_EQ(m.solver_used, "covariance_eigh");
    }
    expect_close(m.components.data, want["components"].get<Vector>(), 0, 1e-6, "components");
    expect_close(m.mean, want["mean"].get<Vector>(), 1e-12, 1e-12, "mean");
    expect_close(m.explained_variance, want["explained_variance"].get<Vector>(), 1e-9, 1e-12,
                 "explained_variance");
    expect_close(m.explained_variance_ratio, want["explained_variance_ratio"].get<Vector>(), 1e-9,
                 1e-12, "explained_variance_ratio");
    expect_close(m.singular_values, want["singular_values"].get<Vector>(), 1e-9, 1e-12,
                 "singular_values");
    EXPECT_NEAR(m.noise_variance, want["noise_variance"].get<double>(),
                1e-9 * std::abs(want["noise_variance"].get<double>()) + 1e-12);
    const Matrix z = m.transform(fresh);
    expect_close(z.data, want["transform"].get<Vector>(), 1e-7, 1e-7, "transform");
    expect_close(m.inverse_transform(z).data, want["inverse_transform"].get<Vector>(), 1e-7, 1e-7,
                 "inverse_transform");
  }
}

TEST(PCA, RandomizedSolverFindsTheSameSubspace) {
  const json& want = fixture()["pca"]["big_randomized"];
  const Matrix x = input("big");
  const PCAModel m = PCA{params_of(want["params"])}.fit(x);
  ASSERT_EQ(m.n_components(), 5);
  // Different random projections, so only close: explained variance to 1e-6 relative and
  // components up to sign to 1e-4 on this well-separated spectrum.
  expect_close(m.explained_variance, want["explained_variance"].get<Vector>(), 1e-6, 0,
               "explained_variance");
  expect_close(m.explained_variance_ratio, want["explained_variance_ratio"].get<Vector>(), 1e-6, 0,
               "explained_variance_ratio");
  const Vector comps = want["components"].get<Vector>();
  for (int64_t r = 0; r < 5; ++r) {
    double dot = 0;
    for (int64_t j = 0; j < x.cols; ++j)
      dot += m.components(r, j) * comps[static_cast<size_t>(r * x.cols + j)];
    EXPECT_NEAR(std::abs(dot), 1.0, 1e-8) << "component " << r;
  }
}

TEST(PCA, MleDimensionOnTheShippedDatasetsMatchesScikitLearn) {
  for (const auto& [name, want] : fixture()["pca_mle_datasets"].items()) {
    SCOPED_TRACE(name);
    Matrix x = testing::load_dataset(name, /*classification=*/name != "diabetes").x;
    // Standardized columns (a constant column stays zero), as in the fixture script.
    for (int64_t j = 0; j < x.cols; ++j) {
      double mean = 0, sq = 0;
      for (int64_t i = 0; i < x.rows; ++i) mean += x(i, j);
      mean /= static_cast<double>(x.rows);
      for (int64_t i = 0; i < x.rows; ++i) sq += (x(i, j) - mean) * (x(i, j) - mean);
      const double sd = std::sqrt(sq / static_cast<double>(x.rows));
      for (int64_t i = 0; i < x.rows; ++i) x(i, j) = (x(i, j) - mean) / (sd > 0 ? sd : 1.0);
    }
    PCAParams p;
    p.n_components_mle = true;
    p.svd_solver = "full";
    EXPECT_EQ(PCA{p}.fit(x).n_components(), want["n_components"].get<int64_t>());
  }
}

TEST(TruncatedSVD, MatchesScikitLearn) {
  for (const std::string algorithm : {"randomized", "arpack"}) {
    SCOPED_TRACE(algorithm);
    const json& want = fixture()[algorithm == "arpack" ? "truncated_svd_arpack" : "truncated_svd"];
    const Matrix x = input("big");
    TruncatedSVDParams p;
    p.n_components = 4;
    p.algorithm = algorithm;
    const TruncatedSVDModel m = TruncatedSVD{p}.fit(x);
    expect_close(m.singular_values, want["singular_values"].get<Vector>(), 1e-8, 0,
                 "singular_values");
    expect_close(m.explained_variance, want["explained_variance"].get<Vector>(), 1e-6, 0,
                 "explained_variance");
    expect_close(m.explained_variance_ratio, want["explained_variance_ratio"].get<Vector>(), 1e-6,
                 0, "explained_variance_ratio");
    expect_close(m.components.data, want["components"].get<Vector>(), 0, 1e-6, "components");
    expect_close(m.transform(matrix(fixture()["new_big"], x.cols)).data,
                 want["transform"].get<Vector>(), 1e-6, 1e-6, "transform");
  }
}

TEST(PCA, SameSeedSameModelAndDifferentSeedSameSubspace) {
  const Matrix x = input("big");
  PCAParams p;
  p.n_components = 3;
  p.svd_solver = "randomized";
  p.random_state = 7;
  const PCAModel a = PCA{p}.fit(x), b = PCA{p}.fit(x);
  EXPECT_EQ(a.components.data, b.components.data);
  p.random_state = 8;
  const PCAModel c = PCA{p}.fit(x);
  expect_close(c.explained_variance, a.explained_variance, 1e-8, 0, "explained_variance");
}

TEST(PCA, InvalidParametersThrow) {
  const Matrix x = input("wide");
  PCAParams p;
  p.n_components = 13;  // > min(n, p) = 12
  EXPECT_THROW(PCA{p}.fit(x), Error);
  p = {};
  p.n_components = 0;
  EXPECT_THROW(PCA{p}.fit(x), Error);
  p = {};
  p.n_components_fraction = 1.5;
  EXPECT_THROW(PCA{p}.fit(x), Error);
  p = {};
  p.svd_solver = "arpack";
  p.n_components = 12;  // arpack needs fewer than min(n, p)
  EXPECT_THROW(PCA{p}.fit(x), Error);
  p = {};
  p.n_components_mle = true;
  p.svd_solver = "randomized";
  EXPECT_THROW(PCA{p}.fit(x), Error);
  p = {};
  p.n_components_mle = true;
  EXPECT_THROW(PCA{p}.fit(Matrix(5, 8, 1.0)), Error);  // mle needs n_samples >= n_features
  p.n_components = 2;
  EXPECT_THROW(PCA{p}.fit(x), Error);  // two ways of giving n_components
  p = {};
  p.n_components_fraction = 0.5;
  p.svd_solver = "randomized";
  EXPECT_THROW(PCA{p}.fit(x), Error);
  EXPECT_THROW(PCA{}.fit(Matrix(1, 3, 1.0)), Error);
  const PCAModel m = PCA{}.fit(x);
  EXPECT_THROW(m.transform(Matrix(2, 5)), Error);
  TruncatedSVDParams t;
  t.n_components = 31;
  EXPECT_THROW(TruncatedSVD{t}.fit(input("big")), Error);
  t = {};
  t.algorithm = "lobpcg";
  EXPECT_THROW(TruncatedSVD{t}.fit(input("big")), Error);
  t = {};
  t.algorithm = "arpack";
  t.n_components = 30;  // arpack needs fewer than min(n, p)
  EXPECT_THROW(TruncatedSVD{t}.fit(input("big")), Error);
  ParamMap bad(std::map<std::string, std::string>{{"n_components", "two"}});
  EXPECT_THROW(find_algorithm("PCA").fit(bad, x, nullptr), Error);
  ParamMap unknown(std::map<std::string, std::string>{{"copy", "True"}});
  EXPECT_THROW(find_algorithm("PCA").fit(unknown, x, nullptr), Error);
}

TEST(Decomposition, SaveLoadRoundTripAndCorruptArchives) {
  const Matrix x = input("wide");
  const Matrix fresh = matrix(fixture()["new_wide"], x.cols);
  for (const char* name : {"PCA", "TruncatedSVD"}) {
    SCOPED_TRACE(name);
    ParamMap params(std::map<std::string, std::string>{{"n_components", "3"}});
    const auto model = find_algorithm(name).fit(params, x, nullptr);
    const std::string bytes = save_model(*model);
    const auto loaded = load_model(bytes);
    EXPECT_EQ(loaded->transform(fresh).data, model->transform(fresh).data);
    EXPECT_THROW(model->predict(fresh), Error);
    for (size_t cut : {size_t{3}, bytes.size() / 3, bytes.size() - 8}) {
      EXPECT_THROW(load_model(bytes.substr(0, cut)), Error);
    }
  }
  ParamMap whiten(std::map<std::string, std::string>{{"n_components", "0.95"}, {"whiten", "True"}});
  const auto pca = find_algorithm("PCA").fit(whiten, x, nullptr);
  EXPECT_EQ(load_model(save_model(*pca))->transform(fresh).data, pca->transform(fresh).data);
}

}  // namespace
}  // namespace ember::ml
