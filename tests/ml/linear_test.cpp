// Linear models against scikit-learn 1.9.1 (tests/fixtures/ml/linear/linear.json).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <random>

#include "../test_env.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/ml/linear.hpp"
#include "ml_test_support.hpp"

namespace ember::ml {
namespace {

using testing::load_dataset;
using testing::load_fixture;
using testing::max_abs_diff;
using testing::to_matrix;
using testing::to_params;
using testing::to_vector;

// Largest coefficient error relative to the largest reference coefficient.
double coef_error(const Vector& got, const Vector& want) {
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  return max_abs_diff(got, want) / scale;
}

const LinearRegressorModel& regressor(const FittedModel& model) {
  return dynamic_cast<const ModelAdapter<LinearRegressorModel>&>(model).model();
}

TEST(Linear, RegressionFamilyMatchesScikitLearn) {
  const auto fixture = load_fixture("linear/linear.json");
  const auto data = load_dataset("diabetes", false);
  for (const auto& c : fixture["regression"]) {
    const std::string algo = c["algo"];
    ParamMap params = to_params(c["params"]);
    auto model = find_algorithm(algo).fit(params, data.x, &data.y);
    const LinearRegressorModel& m = regressor(*model);
    const Vector want = to_vector(c["coef"]);
    const double want_b = c["intercept"];
    // diabetes is well conditioned (condition number 22 after centring), so any backward-stable
    // least-squares or Ridge solve, in any summation order, lands within about kappa^2 u ~ 1e-13
    // (relative) of the exact coefficients. Coordinate descent is scikit-learn's algorithm
    // (same update order, same duality-gap rule), so the two runs differ only by rounding
    // carried through their passes, each a contraction on this strongly convex problem.
    // 1e-10 covers both with room on any BLAS; a modelling error (alpha's scaling, the
    // intercept's centring) moves coefficients by 1e-3 or more.
    const double tol = 1e-10;
    EXPECT_LT(coef_error(m.coef, want), tol) << algo << " " << c["params"].dump();
    EXPECT_NEAR(m.intercept, want_b, tol * std::max(1.0, std::fabs(want_b))) << algo;
    if (algo == "Lasso" || algo == "ElasticNet") {
      // Same coordinate-descent algorithm and stopping rule: the same pass count, or the next
      // one when the duality gap lands within rounding of tol.
      EXPECT_NEAR(static_cast<double>(m.n_iter), c["n_iter"].get<double>(), 1.0)
          << algo << " " << c["params"].dump();
    }
  }
}

TEST(Linear, LeastSquaresIsMinimumNormWhenRankDeficient) {
  const auto fixture = load_fixture("linear/linear.json")["rank_deficient"];
  const auto data = load_dataset("diabetes", false);
  std::vector<int64_t> columns = fixture["columns"].get<std::vector<int64_t>>();
  Matrix x(data.x.rows, static_cast<int64_t>(columns.size()));
  for (int64_t i = 0; i < x.rows; ++i) {
    for (size_t j = 0; j < columns.size(); ++j)
      x(i, static_cast<int64_t>(j)) = data.x(i, columns[j]);
  }
  const auto m = LinearRegression{}.fit(x, data.y);
  EXPECT_LT(coef_error(m.coef, to_vector(fixture["coef"])), 1e-6);
  EXPECT_NEAR(m.intercept, fixture["intercept"].get<double>(), 1e-6);
}

TEST(Linear, RidgeFallsBackToSvdWhenGramIsSingular) {
  // alpha = 0 with a duplicated column: Cholesky fails, the SVD gives the minimum-norm fit,
  // which must equal LinearRegression's (dgelsd) solution.
  const auto data = load_dataset("diabetes", false);
  Matrix x(data.x.rows, 3);
  for (int64_t i = 0; i < x.rows; ++i) {
    x(i, 0) = data.x(i, 2);
    x(i, 1) = data.x(i, 3);
    x(i, 2) = data.x(i, 2);
  }
  Ridge ridge;
  ridge.params.alpha = 0;
  const auto r = ridge.fit(x, data.y);
  // Minimum-norm: the duplicated column's weight is split evenly; the sum equals the
  // coefficient of the full-rank two-column fit.
  Matrix x2(x.rows, 2);
  for (int64_t i = 0; i < x.rows; ++i) {
    x2(i, 0) = x(i, 0);
    x2(i, 1) = x(i, 1);
  }
  const auto o = LinearRegression{}.fit(x2, data.y);
  EXPECT_LT(coef_error(r.coef, {o.coef[0] / 2, o.coef[1], o.coef[0] / 2}), 1e-8);
  EXPECT_NEAR(r.intercept, o.intercept, 1e-8 * std::fabs(o.intercept));
}

TEST(Linear, RidgeIsShiftInvariantOnBothCentringPaths) {
  // Ridge centres X and y (the intercept is not penalised), so adding a constant to every
  // feature changes only the intercept: b' = b - shift * sum(coef). A small shift keeps the
  // uncentred normal equations (centred afterwards); a large one cancels badly there and takes
  // the explicit copy-and-centre path. Both must match scikit-learn's unshifted fit.
  const auto fixture = load_fixture("linear/linear.json");
  const auto data = load_dataset("diabetes", false);
  for (const auto& c : fixture["regression"]) {
    if (c["algo"] != "Ridge" || c["params"].contains("fit_intercept")) continue;
    const Vector want = to_vector(c["coef"]);
    double coef_sum = 0;
    for (double v : want) coef_sum += v;
    for (double shift : {0.01, 100.0}) {
      Matrix x = data.x;
      for (double& v : x.data) v += shift;
      ParamMap params = to_params(c["params"]);
      auto model = find_algorithm("Ridge").fit(params, x, &data.y);
      const LinearRegressorModel& m = regressor(*model);
      EXPECT_LT(coef_error(m.coef, want), 1e-10) << c["params"].dump() << " shift " << shift;
      const double want_b = c["intercept"].get<double>() - shift * coef_sum;
      EXPECT_NEAR(m.intercept, want_b, 1e-10 * std::max(1.0, std::fabs(want_b))) << shift;
    }
  }
}

// scikit-learn's L2 logistic objective, evaluated here independently of Ember:
//   f(W, b) = 1/n sum_i loss_i(W x_i + b) + 1/(2 C n) |W|^2
// with the binary loss log(1 + e^z) - t z (one row of W) or the multinomial cross-entropy
// (one row per class), and its gradient wrt every entry of W then b (zero wrt b without an
// intercept), laid out row by row like Ember's coefficients.
struct LogisticObjective {
  double f = 0;
  Vector grad;  // rows x (d + 1)
};

LogisticObjective logistic_objective(const Matrix& x, const Vector& y, const Matrix& w,
                                     const Vector& b, double c, bool fit_intercept) {
  const int64_t n = x.rows, d = x.cols, rows = w.rows;
  LogisticObjective out;
  out.grad.assign(static_cast<size_t>(rows * (d + 1)), 0.0);
  double loss = 0;
  Vector z(static_cast<size_t>(rows)), residual(static_cast<size_t>(rows));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = static_cast<int64_t>(y[static_cast<size_t>(i)]);
    for (int64_t r = 0; r < rows; ++r) {
      double s = b[static_cast<size_t>(r)];
      for (int64_t j = 0; j < d; ++j) s += w(r, j) * x(i, j);
      z[static_cast<size_t>(r)] = s;
    }
    if (rows == 1) {
      const double t = label == 1 ? 1.0 : 0.0;
      loss += std::max(z[0], 0.0) + std::log1p(std::exp(-std::fabs(z[0]))) - t * z[0];
      residual[0] = 1.0 / (1.0 + std::exp(-z[0])) - t;
    } else {
      const double top = *std::max_element(z.begin(), z.end());
      double sum = 0;
      for (double v : z) sum += std::exp(v - top);
      const double lse = top + std::log(sum);
      loss += lse - z[static_cast<size_t>(label)];
      for (int64_t r = 0; r < rows; ++r)
        residual[static_cast<size_t>(r)] = std::exp(z[static_cast<size_t>(r)] - lse) - (r == label);
    }
    for (int64_t r = 0; r < rows; ++r) {
      double* g = out.grad.data() + r * (d + 1);
      for (int64_t j = 0; j < d; ++j) g[j] += residual[static_cast<size_t>(r)] * x(i, j) / n;
      if (fit_intercept) g[d] += residual[static_cast<size_t>(r)] / n;
    }
  }
  const double l2 = 1.0 / (c * static_cast<double>(n));
  double penalty = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < d; ++j) {
      penalty += w(r, j) * w(r, j);
      out.grad[static_cast<size_t>(r * (d + 1) + j)] += l2 * w(r, j);
    }
  }
  out.f = loss / static_cast<double>(n) + 0.5 * l2 * penalty;
  return out;
}

// How small the gradient of a converged fit must be (max norm). Both scikit-learn (scipy's
// L-BFGS-B) and Ember stop when max|g| <= tol or when an iteration lowers f by less than
// 64 eps max(|f|, 1). The gradient's Lipschitz constant L is at most c * mean|[x_i, 1]|^2 +
// 1/(C n), with c = 1/4 (sigmoid) or 1/2 (softmax Hessian); a step of length |g|/L against g
// would lower f by |g|^2 / (2L), so a fit stopped by the second rule has
// |g|_max <= |g|_2 <= sqrt(128 L eps max(|f|, 1)). The bar is a property of the problem and
// the stopping rules, not of the machine; a penalty off by 10% leaves gradients 7x above it
// on wine and 100x or more on the others.
double stationarity_bar(const Matrix& x, int64_t rows, double c, bool fit_intercept, double f,
                        double tol) {
  double norms = 0;
  for (double v : x.data) norms += v * v;
  const double n = static_cast<double>(x.rows);
  const double lipschitz =
      (rows == 1 ? 0.25 : 0.5) * (norms / n + (fit_intercept ? 1.0 : 0.0)) + 1.0 / (c * n);
  const double eps = std::numeric_limits<double>::epsilon();
  // tol itself gets room for the rounding of two evaluations of the same gradient.
  return std::max(tol * (1 + 1e-6), std::sqrt(128 * lipschitz * eps * std::max(f, 1.0)));
}

double max_abs(const Vector& v) {
  double worst = 0;
  for (double e : v) worst = std::max(worst, std::fabs(e));
  return worst;
}

// A converged L2 logistic fit against scikit-learn's, by what defines the answer rather than
// by coefficient equality (on unscaled data such as wine the optimum is flat along some
// directions: coefficients that differ in the 4th digit have equal objectives):
//  - the objective formula here is scikit-learn's: its solution is stationary under it;
//  - Ember's solution is stationary too, and Ember reports convergence;
//  - Ember's objective is no worse than scikit-learn's beyond what both being stationary
//    allows (convexity: f(ours) - f(theirs) <= g(ours) . (ours - theirs) <= bar |ours -
//    theirs|_1), plus 64 eps for the evaluation of f.
// Returns Ember's fitted model.
std::unique_ptr<FittedModel> expect_same_logistic_optimum(const Matrix& x, const Vector& y,
                                                          ParamMap params,
                                                          const nlohmann::json& want,
                                                          const std::string& what) {
  const double c = params.get_double("C", 1.0);
  const bool fit_intercept = params.get_bool("fit_intercept", true);
  const double tol = params.get_double("tol", 1e-4);
  ParamMap fit_params = params;
  auto model = find_algorithm("LogisticRegression").fit(fit_params, x, &y);
  const auto& m = dynamic_cast<const ModelAdapter<LogisticRegressionModel>&>(*model).model();
  const Matrix want_coef = to_matrix(want["coef"]);
  const Vector want_b = to_vector(want["intercept"]);
  EXPECT_EQ(m.coef.rows, want_coef.rows) << what;
  EXPECT_EQ(m.coef.cols, want_coef.cols) << what;
  if (m.coef.rows != want_coef.rows || m.coef.cols != want_coef.cols) return model;
  EXPECT_LT(m.n_iter, params.get_int("max_iter", 100)) << what << ": stopped by max_iter";

  const LogisticObjective theirs = logistic_objective(x, y, want_coef, want_b, c, fit_intercept);
  const LogisticObjective ours = logistic_objective(x, y, m.coef, m.intercept, c, fit_intercept);
  const double bar = stationarity_bar(x, m.coef.rows, c, fit_intercept, theirs.f, tol);
  EXPECT_LE(max_abs(theirs.grad), bar) << what << ": the objective here is not scikit-learn's";
  EXPECT_LE(max_abs(ours.grad), bar) << what << ": Ember's solution is not stationary";
  double distance = 0;
  for (size_t i = 0; i < m.coef.data.size(); ++i)
    distance += std::fabs(m.coef.data[i] - want_coef.data[i]);
  for (size_t r = 0; r < m.intercept.size(); ++r) distance += std::fabs(m.intercept[r] - want_b[r]);
  const double eps = std::numeric_limits<double>::epsilon();
  EXPECT_LE(ours.f, theirs.f + bar * distance + 64 * eps * std::max(theirs.f, 1.0))
      << what << ": objective " << ours.f << " vs scikit-learn's " << theirs.f;
  std::cout << "[ info ] " << what << ": f " << ours.f << " vs " << theirs.f << ", max|g| "
            << max_abs(ours.grad) << " vs " << max_abs(theirs.grad) << ", bar " << bar << "\n";
  return model;
}

TEST(Linear, LogisticRegressionMatchesScikitLearn) {
  const auto fixture = load_fixture("linear/linear.json");
  for (const auto& c : fixture["logistic"]) {
    const auto data = load_dataset(c["dataset"], true);
    expect_same_logistic_optimum(data.x, data.y, to_params(c["params"]), c,
                                 c["dataset"].get<std::string>() + " " + c["params"].dump());
  }
}

TEST(Linear, BinaryLogisticRegressionMatchesScikitLearn) {
  const auto c = load_fixture("linear/linear.json")["binary_logistic"];
  const Matrix x = to_matrix(c["x"]);
  const Vector y = to_vector(c["y"]);
  const auto model = expect_same_logistic_optimum(x, y, to_params(c["params"]), c, "binary");
  // Probabilities are the sigmoid of the decision value z = x.w + b, as scikit-learn's: the
  // dot products here (5 terms below 1e2) round differently from BLAS's by under 1e-13.
  const auto& m = dynamic_cast<const ModelAdapter<LogisticRegressionModel>&>(*model).model();
  ASSERT_EQ(m.coef.rows, 1);
  const Matrix proba = model->predict_proba(x);
  for (int64_t i = 0; i < x.rows; ++i) {
    double z = m.intercept[0];
    for (int64_t j = 0; j < x.cols; ++j) z += m.coef(0, j) * x(i, j);
    EXPECT_NEAR(proba(i, 1), 1.0 / (1.0 + std::exp(-z)), 1e-13) << i;
    EXPECT_NEAR(proba(i, 0) + proba(i, 1), 1.0, 1e-15) << i;
  }
}

// The multinomial loss and gradient are summed per row group and, inside a group, per block of
// rows small enough to stay in cache (about 64 KB of X: 81 rows at d = 100). The fixtures are
// too small for a group to hold more than one block; here each of the 64 groups holds two (94
// rows), the second one partial. The fit must still be stationary under the objective computed
// here independently, with the bar derived from the stopping rules (stationarity_bar), and the
// same bit for bit at 1 and 2 threads.
TEST(Linear, MultinomialFitIsStationaryAcrossRowBlocks) {
  const int64_t n = 6000, d = 100, classes = 3;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  Matrix x(n, d), truth(classes, d);
  for (double& v : x.data) v = normal(rng);
  for (double& v : truth.data) v = 0.3 * normal(rng);
  Vector y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double best = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) {
      double z = normal(rng);  // label noise: the classes overlap, the optimum is finite
      for (int64_t j = 0; j < d; ++j) z += truth(c, j) * x(i, j);
      if (z > best) {
        best = z;
        y[static_cast<size_t>(i)] = static_cast<double>(c);
      }
    }
  }
  LogisticRegression est;
  est.params.max_iter = 1000;
  set_num_threads(1);
  const auto one = est.fit(x, y);
  set_num_threads(2);
  const auto two = est.fit(x, y);
  set_num_threads(0);
  EXPECT_EQ(one.coef.data, two.coef.data);
  EXPECT_EQ(one.intercept, two.intercept);
  ASSERT_EQ(one.coef.rows, classes);
  EXPECT_LT(one.n_iter, est.params.max_iter);
  const LogisticObjective at = logistic_objective(x, y, one.coef, one.intercept, 1.0, true);
  EXPECT_LE(max_abs(at.grad), stationarity_bar(x, classes, 1.0, true, at.f, est.params.tol))
      << "f " << at.f;
}

TEST(Linear, SaveLoadRoundTripPredictsIdentically) {
  const auto data = load_dataset("iris", true);
  for (const char* algo :
       {"LogisticRegression", "Ridge", "Lasso", "ElasticNet", "LinearRegression"}) {
    ParamMap params;
    auto model = find_algorithm(algo).fit(params, data.x, &data.y);
    const std::string bytes = save_model(*model);
    auto loaded = load_model(bytes);
    EXPECT_EQ(loaded->algorithm(), algo);
    EXPECT_EQ(loaded->predict(data.x), model->predict(data.x)) << algo;
    // Every truncation is rejected with an ember::Error, never a crash.
    for (size_t cut = 0; cut < bytes.size(); cut += 7) {
      EXPECT_THROW(load_model(std::string_view(bytes).substr(0, cut)), Error) << algo << cut;
    }
  }
}

TEST(Linear, SameModelWhateverTheThreadCount) {
  const auto data = load_dataset("digits", true);
  LogisticRegression est;
  est.params.max_iter = 30;
  set_num_threads(1);
  const auto one = est.fit(data.x, data.y);
  set_num_threads(2);
  const auto two = est.fit(data.x, data.y);
  EXPECT_EQ(one.coef.data, two.coef.data);
  EXPECT_EQ(one.intercept, two.intercept);
  // Binary (one fused loss/gradient pass) and Ridge (one column-statistics pass) too.
  const auto c = load_fixture("linear/linear.json")["binary_logistic"];
  const Matrix xb = to_matrix(c["x"]);
  const Vector yb = to_vector(c["y"]);
  set_num_threads(1);
  const auto b1 = LogisticRegression{}.fit(xb, yb);
  const auto r1 = Ridge{}.fit(data.x, data.y);
  set_num_threads(2);
  const auto b2 = LogisticRegression{}.fit(xb, yb);
  const auto r2 = Ridge{}.fit(data.x, data.y);
  EXPECT_EQ(b1.coef.data, b2.coef.data);
  EXPECT_EQ(b1.intercept, b2.intercept);
  EXPECT_EQ(r1.coef, r2.coef);
  EXPECT_EQ(r1.intercept, r2.intercept);
}

TEST(Linear, RejectsBadParametersAndInput) {
  const auto data = load_dataset("diabetes", false);
  auto fit = [&](const char* algo, std::map<std::string, std::string> values) {
    ParamMap p(std::move(values));
    return find_algorithm(algo).fit(p, data.x, &data.y);
  };
  EXPECT_THROW(fit("Ridge", {{"alpha", "-1"}}), Error);
  EXPECT_THROW(fit("Ridge", {{"alpha", "abc"}}), Error);
  EXPECT_THROW(fit("Ridge", {{"alpah", "1"}}), Error);
  EXPECT_THROW(fit("Lasso", {{"max_iter", "0"}}), Error);
  EXPECT_THROW(fit("Lasso", {{"l1_ratio", "0.5"}}), Error);  // not a Lasso parameter
  EXPECT_THROW(fit("ElasticNet", {{"l1_ratio", "1.5"}}), Error);
  EXPECT_THROW(fit("LogisticRegression", {{"C", "0"}}), Error);
  EXPECT_THROW(fit("LogisticRegression", {{"penalty", "l1"}}), Error);
  // Continuous target for a classifier.
  Vector continuous = data.y;
  for (double& v : continuous) v += 0.5;
  EXPECT_THROW(LogisticRegression{}.fit(data.x, continuous), Error);
  Matrix bad = data.x;
  bad(3, 2) = NAN;
  EXPECT_THROW(Ridge{}.fit(bad, data.y), Error);
  bad(3, 2) = 1.0;
  bad(7, 1) = -INFINITY;
  EXPECT_THROW(Ridge{}.fit(bad, data.y), Error);
  Ridge no_intercept;
  no_intercept.params.fit_intercept = false;
  EXPECT_THROW(no_intercept.fit(bad, data.y), Error);
  Vector bad_y = data.y;
  bad_y[4] = NAN;
  EXPECT_THROW(Ridge{}.fit(data.x, bad_y), Error);
  const auto m = Ridge{}.fit(data.x, data.y);
  EXPECT_THROW(m.predict(Matrix(2, 3)), Error);
  Vector one_class(static_cast<size_t>(data.x.rows), 0.0);
  EXPECT_THROW(LogisticRegression{}.fit(data.x, one_class), Error);
}

using ::ember::test::error_of;

// predict judges X's finiteness from its outputs (a NaN or infinity in a row makes that row's
// x.w non-finite) and must fail exactly as a scan of X would, also when the bad value sits in a
// column whose coefficient is exactly zero.
TEST(Linear, PredictRejectsNonFiniteInputAsAScanWould) {
  const auto data = load_dataset("diabetes", false);
  const auto lasso = Lasso{}.fit(data.x, data.y);
  int64_t zero_column = -1;
  for (size_t j = 0; j < lasso.coef.size(); ++j) {
    if (lasso.coef[j] == 0.0) zero_column = static_cast<int64_t>(j);
  }
  ASSERT_GE(zero_column, 0);
  const auto ridge = Ridge{}.fit(data.x, data.y);
  const auto iris = load_dataset("iris", true);
  const auto multinomial = LogisticRegression{}.fit(iris.x, iris.y);
  const auto c = load_fixture("linear/linear.json")["binary_logistic"];
  const Matrix xb = to_matrix(c["x"]);
  const auto binary = LogisticRegression{}.fit(xb, to_vector(c["y"]));
  for (const double bad : {NAN, INFINITY, -INFINITY}) {
    Matrix x = data.x;
    x(9, 0) = bad;
    x(5, zero_column) = bad;
    EXPECT_EQ(error_of([&] { lasso.predict(x); }), "linear model: non-finite value in X at row 5");
    EXPECT_EQ(error_of([&] { ridge.predict(x); }), "linear model: non-finite value in X at row 5");
    Matrix xi = iris.x;
    xi(7, 1) = bad;
    const std::string want = "LogisticRegression: non-finite value in X at row 7";
    EXPECT_EQ(error_of([&] { multinomial.predict(xi); }), want);
    EXPECT_EQ(error_of([&] { multinomial.predict_proba(xi); }), want);
    Matrix xbad = xb;
    xbad(7, 0) = bad;
    EXPECT_EQ(error_of([&] { binary.predict(xbad); }), want);
    EXPECT_EQ(error_of([&] { binary.predict_proba(xbad); }), want);
  }
  // Finite input whose x.w overflows is accepted, as the scan accepts it.
  Matrix huge = data.x;
  for (int64_t j = 0; j < huge.cols; ++j) huge(0, j) = 1e308;
  Vector out;
  EXPECT_NO_THROW(out = ridge.predict(huge));
  EXPECT_FALSE(std::isfinite(out[0]));
}

TEST(Lbfgs, MinimisesARosenbrockValley) {
  // f = (1-a)^2 + 100 (b - a^2)^2 has its minimum at (1, 1).
  auto fg = [](const Vector& w, Vector& g) {
    const double a = w[0], b = w[1];
    g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
    g[1] = 200 * (b - a * a);
    return (1 - a) * (1 - a) + 100 * (b - a * a) * (b - a * a);
  };
  Vector w{-1.2, 1.0};
  LbfgsOptions options;
  options.max_iter = 500;
  options.gtol = 1e-10;
  options.ftol = 0;
  const auto r = lbfgs_minimize(fg, w, options);
  EXPECT_TRUE(r.converged);
  EXPECT_NEAR(w[0], 1.0, 1e-8);
  EXPECT_NEAR(w[1], 1.0, 1e-8);
}

}  // namespace
}  // namespace ember::ml
