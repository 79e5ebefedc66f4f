#pragma once
// Linear models with scikit-learn's objectives and defaults:
//   LinearRegression  least squares (LAPACK dgelsd: SVD-based, minimum-norm like scipy lstsq)
//   Ridge             (X'X + alpha I) w = X'y by Cholesky (dpotrf), SVD (dgesdd) if not SPD
//   Lasso/ElasticNet  1/(2n)|y - Xw|^2 + alpha*l1_ratio*|w|_1 + alpha*(1-l1_ratio)/2*|w|^2 by
//                     cyclic coordinate descent stopped on the duality gap (as scikit-learn)
//   LogisticRegression  L2-penalised (C) binary logistic or multinomial softmax loss minimised
//                     by L-BFGS, stopped when max|gradient| <= tol (scipy's gtol criterion)
// With fit_intercept the data are centred and the intercept is not penalised.
#include <cstdint>

#include "ember/ml/common.hpp"

namespace ember::ml {

// Fitted single-output linear regressor (shared by all the least-squares family).
struct LinearRegressorModel {
  Vector coef;
  double intercept = 0.0;
  int64_t n_iter = 0;  // coordinate-descent passes (0 for closed-form solvers)

  int64_t n_features() const { return static_cast<int64_t>(coef.size()); }
  Vector predict(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static LinearRegressorModel load(ArchiveReader& in);
};

struct LinearRegressionParams {
  bool fit_intercept = true;
  void validate() const {}
};
struct LinearRegression {
  LinearRegressionParams params;
  LinearRegressorModel fit(const Matrix& x, const Vector& y) const;
};

struct RidgeParams {
  double alpha = 1.0;
  bool fit_intercept = true;
  void validate() const;
};
struct Ridge {
  RidgeParams params;
  LinearRegressorModel fit(const Matrix& x, const Vector& y) const;
};

struct ElasticNetParams {
  double alpha = 1.0;
  double l1_ratio = 0.5;
  bool fit_intercept = true;
  double tol = 1e-4;
  int64_t max_iter = 1000;
  void validate() const;
};
struct ElasticNet {
  ElasticNetParams params;
  LinearRegressorModel fit(const Matrix& x, const Vector& y) const;
};
// Lasso is ElasticNet with l1_ratio = 1.
struct Lasso {
  ElasticNetParams params{1.0, 1.0, true, 1e-4, 1000};
  LinearRegressorModel fit(const Matrix& x, const Vector& y) const;
};

struct LogisticRegressionParams {
  double C = 1.0;
  bool fit_intercept = true;
  double tol = 1e-4;
  int64_t max_iter = 100;
  void validate() const;
};

struct LogisticRegressionModel {
  int64_t n_classes = 0;
  // Binary: one row (the positive class); multinomial: one row per class.
  Matrix coef;
  Vector intercept;
  int64_t n_iter = 0;

  int64_t n_features() const { return coef.cols; }
  Matrix predict_proba(const Matrix& x) const;
  Vector predict(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static LogisticRegressionModel load(ArchiveReader& in);
};

struct LogisticRegression {
  LogisticRegressionParams params;
  // y holds class indices 0..K-1.
  LogisticRegressionModel fit(const Matrix& x, const Vector& y) const;
};

// Limited-memory BFGS for smooth unconstrained minimisation (used by LogisticRegression).
// `fg` returns f(w) and writes the gradient. Stops when max|g| <= gtol, when the relative
// decrease of f falls below ftol, or after max_iter iterations.
struct LbfgsOptions {
  int64_t max_iter = 100;
  double gtol = 1e-4;
  double ftol = 64 * 2.220446049250313e-16;
  int memory = 10;
  int max_line_search = 50;
};
struct LbfgsResult {
  double f = 0;
  int64_t iterations = 0;
  bool converged = false;
};
LbfgsResult lbfgs_minimize(const std::function<double(const Vector& w, Vector& grad)>& fg,
                           Vector& w, const LbfgsOptions& options);

}  // namespace ember::ml
