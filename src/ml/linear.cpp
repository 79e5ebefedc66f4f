#include "ember/ml/linear.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "ember/base/thread_pool.hpp"

extern "C" {
void dgelsd_(const int* m, const int* n, const int* nrhs, double* a, const int* lda, double* b,
             const int* ldb, double* s, const double* rcond, int* rank, double* work,
             const int* lwork, int* iwork, int* info);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotrs_(const char* uplo, const int* n, const int* nrhs, const double* a, const int* lda,
             double* b, const int* ldb, int* info);
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
             double* u, const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork,
             int* iwork, int* info);
}

namespace ember::ml {
namespace {

int lapack_int(int64_t v, const char* what) {
  if (v > std::numeric_limits<int>::max()) {
    throw Error(std::string(what) + ": data too large for LAPACK (32-bit sizes)");
  }
  return static_cast<int>(v);
}

// Reductions over rows run on a fixed number of contiguous row groups (independent of the
// thread count), each with its own accumulators, added in group order: fitted models are
// bit-identical whatever the number of threads. At least kMinGroupRows rows per group keeps
// the per-group accumulators (a few vectors of length d each) well below the size of X.
constexpr int64_t kRowGroups = 64;
constexpr int64_t kMinGroupRows = 16;

int64_t row_group_count(int64_t rows) {
  return std::clamp<int64_t>(rows / kMinGroupRows, 1, kRowGroups);
}

int64_t row_group_begin(int64_t group, int64_t groups, int64_t rows) {
  return group * rows / groups;
}

// One pass over X: column sums, column sums of squares and X'(y - y_shift) (the sums also prove
// X finite: any NaN or infinity makes its column's sum non-finite).
struct ColumnStats {
  Vector sum;
  Vector sum_sq;
  Vector xty;
};

ColumnStats column_stats(const Matrix& x, const Vector& y, double y_shift) {
  const int64_t d = x.cols;
  const int64_t groups = row_group_count(x.rows);
  std::vector<double> partial(static_cast<size_t>(groups * 3 * d), 0.0);
  parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      double* sum = partial.data() + g * 3 * d;
      double* sum_sq = sum + d;
      double* xty = sum_sq + d;
      const int64_t end = row_group_begin(g + 1, groups, x.rows);
      for (int64_t i = row_group_begin(g, groups, x.rows); i < end; ++i) {
        const double* r = x.row(i);
        const double yi = y[static_cast<size_t>(i)] - y_shift;
        for (int64_t j = 0; j < d; ++j) {
          sum[j] += r[j];
          sum_sq[j] += r[j] * r[j];
          xty[j] += r[j] * yi;
        }
      }
    }
  });
  ColumnStats stats{Vector(static_cast<size_t>(d), 0.0), Vector(static_cast<size_t>(d), 0.0),
                    Vector(static_cast<size_t>(d), 0.0)};
  for (int64_t g = 0; g < groups; ++g) {
    const double* sum = partial.data() + g * 3 * d;
    for (int64_t j = 0; j < d; ++j) {
      const size_t js = static_cast<size_t>(j);
      stats.sum[js] += sum[j];
      stats.sum_sq[js] += sum[d + j];
      stats.xty[js] += sum[2 * d + j];
    }
  }
  return stats;
}

bool all_finite(const Vector& v) {
  return std::all_of(v.begin(), v.end(), [](double a) { return std::isfinite(a); });
}

// Shapes and target only: callers prove X finite from its column sums (cheaper than a scan).
void check_shapes_and_target(const Matrix& x, const Vector& y, const char* who) {
  if (x.rows <= 0 || x.cols <= 0 || static_cast<int64_t>(x.data.size()) != x.rows * x.cols ||
      static_cast<int64_t>(y.size()) != x.rows || !all_finite(y)) {
    check_fit_input(x, &y, who);  // throws the precise message
  }
}

// Column means of X and mean of y (zeros without an intercept), and the centred copies.
struct Centred {
  Matrix x;
  Vector y;
  Vector x_mean;
  double y_mean = 0;
};

double mean_of(const Vector& v) {
  double s = 0;
  for (double a : v) s += a;
  return s / static_cast<double>(v.size());
}

// Copy and subtract in one parallel pass (X is large; y is not).
Centred centre_with(const Matrix& x, const Vector& y, Vector x_mean, double y_mean) {
  Centred c{Matrix(x.rows, x.cols), y, std::move(x_mean), y_mean};
  const double* m = c.x_mean.data();
  parallel_for(0, x.rows, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const double* src = x.row(i);
      double* dst = c.x.row(i);
      for (int64_t j = 0; j < x.cols; ++j) dst[j] = src[j] - m[j];
    }
  });
  for (double& v : c.y) v -= y_mean;
  return c;
}

Centred centre(const Matrix& x, const Vector& y, bool fit_intercept) {
  if (!fit_intercept) return Centred{x, y, Vector(static_cast<size_t>(x.cols), 0.0), 0.0};
  Vector mean = column_stats(x, y, 0.0).sum;
  for (double& v : mean) v /= static_cast<double>(x.rows);
  return centre_with(x, y, std::move(mean), mean_of(y));
}

double intercept_of(const Centred& c, const Vector& coef) {
  double dot = 0;
  for (size_t j = 0; j < coef.size(); ++j) dot += c.x_mean[j] * coef[j];
  return c.y_mean - dot;
}

// Column-major copy (Fortran order) of a row-major matrix.
std::vector<double> column_major(const Matrix& x) {
  std::vector<double> a(static_cast<size_t>(x.rows * x.cols));
  for (int64_t i = 0; i < x.rows; ++i) {
    for (int64_t j = 0; j < x.cols; ++j) a[static_cast<size_t>(j * x.rows + i)] = x(i, j);
  }
  return a;
}

// Minimum-norm least squares via dgelsd (what scipy.linalg.lstsq uses by default).
Vector least_squares(const Matrix& x, const Vector& y) {
  const int m = lapack_int(x.rows, "LinearRegression");
  const int n = lapack_int(x.cols, "LinearRegression");
  const int nrhs = 1;
  std::vector<double> a = column_major(x);
  const int ldb = std::max(m, n);
  std::vector<double> b(static_cast<size_t>(ldb), 0.0);
  std::copy(y.begin(), y.end(), b.begin());
  std::vector<double> s(static_cast<size_t>(std::min(m, n)));
  const double rcond = -1.0;  // machine precision
  int rank = 0, info = 0, lwork = -1;
  double work_query = 0;
  int iwork_query = 0;
  dgelsd_(&m, &n, &nrhs, a.data(), &m, b.data(), &ldb, s.data(), &rcond, &rank, &work_query, &lwork,
          &iwork_query, &info);
  if (info != 0) throw Error("LinearRegression: dgelsd workspace query failed");
  lwork = static_cast<int>(work_query);
  std::vector<double> work(static_cast<size_t>(std::max(lwork, 1)));
  std::vector<int> iwork(static_cast<size_t>(std::max(iwork_query, 1)));
  dgelsd_(&m, &n, &nrhs, a.data(), &m, b.data(), &ldb, s.data(), &rcond, &rank, work.data(), &lwork,
          iwork.data(), &info);
  if (info != 0)
    throw Error("LinearRegression: SVD did not converge (dgelsd info " + std::to_string(info) +
                ")");
  return Vector(b.begin(), b.begin() + n);
}

// Ridge through the SVD of X: w = V diag(s / (s^2 + alpha)) U'y. Used when X'X + alpha I is
// not numerically positive definite (alpha = 0 with rank-deficient X).
Vector ridge_svd(const Matrix& x, const Vector& y, double alpha) {
  const int m = lapack_int(x.rows, "Ridge");
  const int n = lapack_int(x.cols, "Ridge");
  const int k = std::min(m, n);
  std::vector<double> a = column_major(x);
  std::vector<double> s(static_cast<size_t>(k)), u(static_cast<size_t>(m) * k),
      vt(static_cast<size_t>(k) * n);
  std::vector<int> iwork(static_cast<size_t>(8 * k));
  int info = 0, lwork = -1;
  double work_query = 0;
  const char jobz = 'S';
  dgesdd_(&jobz, &m, &n, a.data(), &m, s.data(), u.data(), &m, vt.data(), &k, &work_query, &lwork,
          iwork.data(), &info);
  lwork = static_cast<int>(work_query);
  std::vector<double> work(static_cast<size_t>(std::max(lwork, 1)));
  dgesdd_(&jobz, &m, &n, a.data(), &m, s.data(), u.data(), &m, vt.data(), &k, work.data(), &lwork,
          iwork.data(), &info);
  if (info != 0) throw Error("Ridge: SVD did not converge");
  const double cutoff = 1e-15 * (s.empty() ? 0.0 : s[0]);  // as scikit-learn's _solve_svd
  Vector w(static_cast<size_t>(n), 0.0);
  for (int c = 0; c < k; ++c) {
    if (s[static_cast<size_t>(c)] <= cutoff) continue;
    double uty = 0;
    for (int i = 0; i < m; ++i)
      uty += u[static_cast<size_t>(c) * m + i] * y[static_cast<size_t>(i)];
    const double d =
        s[static_cast<size_t>(c)] / (s[static_cast<size_t>(c)] * s[static_cast<size_t>(c)] + alpha);
    for (int j = 0; j < n; ++j)
      w[static_cast<size_t>(j)] += vt[static_cast<size_t>(j) * k + c] * d * uty;
  }
  return w;
}

// Gram matrix X'X, upper triangle, column-major d x d (row-major X is column-major X', so this
// is A*A' of the d x n matrix).
std::vector<double> gram_of(const Matrix& x) {
  const int d = lapack_int(x.cols, "Ridge");
  std::vector<double> gram(static_cast<size_t>(d) * d, 0.0);
  cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, lapack_int(x.rows, "Ridge"), 1.0,
              x.data.data(), d, 0.0, gram.data(), d);
  return gram;
}

// Solves (G + alpha I) w = rhs by Cholesky; `svd` gives the fallback solution.
Vector ridge_cholesky(std::vector<double> gram, Vector rhs, double alpha,
                      const std::function<Vector()>& svd) {
  const int n = lapack_int(static_cast<int64_t>(rhs.size()), "Ridge");
  for (int j = 0; j < n; ++j) gram[static_cast<size_t>(j) * n + j] += alpha;
  int info = 0;
  const char uplo = 'U';
  dpotrf_(&uplo, &n, gram.data(), &n, &info);
  if (info != 0) return svd();
  // A tiny pivot means X'X + alpha I is numerically singular: the Cholesky solve would
  // amplify rounding, so use the SVD (minimum-norm) solution instead.
  double pivot_min = INFINITY, pivot_max = 0;
  for (int j = 0; j < n; ++j) {
    const double p = gram[static_cast<size_t>(j) * n + j];
    pivot_min = std::min(pivot_min, p);
    pivot_max = std::max(pivot_max, p);
  }
  if (pivot_min * pivot_min <=
      static_cast<double>(n) * 2.220446049250313e-16 * pivot_max * pivot_max) {
    return svd();
  }
  const int nrhs = 1;
  dpotrs_(&uplo, &n, &nrhs, gram.data(), &n, rhs.data(), &n, &info);
  if (info != 0) return svd();
  return rhs;
}

// Largest loss of precision, as a factor, that the uncentred normal equations may suffer: the
// centred Gram X_c'X_c = X'X - n m m' is formed by subtracting from sums of squares up to this
// many times larger than what remains, so rounding grows by at most this factor (2: one bit).
// Data whose means are larger than their spread are centred explicitly instead. (y needs no
// such test: X'(y - ybar) is accumulated already centred.)
constexpr double kMaxCentringCancellation = 2.0;

void check_regression_input(const Matrix& x, const Vector& y, const char* who) {
  check_fit_input(x, &y, who);
}

}  // namespace

// ---- fitted regressor

Vector LinearRegressorModel::predict(const Matrix& x) const {
  check_predict_shape(x, n_features(), "linear model");
  Vector out(static_cast<size_t>(x.rows), intercept);
  if (x.rows == 0) return out;
  cblas_dgemv(CblasRowMajor, CblasNoTrans, lapack_int(x.rows, "predict"),
              lapack_int(x.cols, "predict"), 1.0, x.data.data(), lapack_int(x.cols, "predict"),
              coef.data(), 1, 1.0, out.data(), 1);
  // X is read once, by the product: its finiteness is judged from the outputs.
  check_predict_outputs(x, out, "linear model");
  return out;
}

void LinearRegressorModel::save(ArchiveWriter& out) const {
  out.vec(coef);
  out.f64(intercept);
  out.i64(n_iter);
}

LinearRegressorModel LinearRegressorModel::load(ArchiveReader& in) {
  LinearRegressorModel m;
  m.coef = in.vec();
  m.intercept = in.f64();
  m.n_iter = in.i64();
  if (m.coef.empty()) throw Error("model file is corrupt (no coefficients)");
  return m;
}

// ---- least squares family

LinearRegressorModel LinearRegression::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_regression_input(x, y, "LinearRegression");
  Centred c = centre(x, y, params.fit_intercept);
  LinearRegressorModel m;
  m.coef = least_squares(c.x, c.y);
  m.intercept = params.fit_intercept ? intercept_of(c, m.coef) : 0.0;
  return m;
}

void RidgeParams::validate() const {
  if (!(alpha >= 0)) throw Error("Ridge: alpha must be >= 0");
}

LinearRegressorModel Ridge::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_shapes_and_target(x, y, "Ridge");
  const double y_mean = params.fit_intercept ? mean_of(y) : 0.0;
  const ColumnStats stats = column_stats(x, y, y_mean);
  if (!all_finite(stats.sum)) check_fit_input(x, &y, "Ridge");  // names the bad value
  const double n = static_cast<double>(x.rows);
  const double alpha = params.alpha;
  LinearRegressorModel m;
  if (!params.fit_intercept) {
    m.coef = ridge_cholesky(gram_of(x), stats.xty, alpha, [&] { return ridge_svd(x, y, alpha); });
    return m;
  }
  Vector x_mean = stats.sum;
  for (double& v : x_mean) v /= n;
  // Centring after the products (no copy of X) when it cancels little; else copy and centre.
  bool centre_after = all_finite(stats.sum_sq);
  for (size_t j = 0; j < x_mean.size() && centre_after; ++j) {
    const double raw = stats.sum_sq[j];
    centre_after = raw <= kMaxCentringCancellation * (raw - n * x_mean[j] * x_mean[j]);
  }
  auto centred_svd = [&] {
    const Centred c = centre_with(x, y, x_mean, y_mean);
    return ridge_svd(c.x, c.y, alpha);
  };
  if (centre_after) {
    std::vector<double> gram = gram_of(x);
    const size_t d = x_mean.size();
    for (size_t k = 0; k < d; ++k) {
      for (size_t j = 0; j <= k; ++j) gram[k * d + j] -= n * x_mean[j] * x_mean[k];
    }
    // X_c'y_c = X'(y - ybar) - m * sum(y - ybar); that sum is zero up to rounding.
    double y_centred_sum = 0;
    for (double v : y) y_centred_sum += v - y_mean;
    Vector rhs = stats.xty;
    for (size_t j = 0; j < d; ++j) rhs[j] -= x_mean[j] * y_centred_sum;
    m.coef = ridge_cholesky(std::move(gram), std::move(rhs), alpha, centred_svd);
  } else {
    const Centred c = centre_with(x, y, x_mean, y_mean);
    Vector rhs(x_mean.size(), 0.0);
    cblas_dgemv(CblasRowMajor, CblasTrans, lapack_int(x.rows, "Ridge"), lapack_int(x.cols, "Ridge"),
                1.0, c.x.data.data(), lapack_int(x.cols, "Ridge"), c.y.data(), 1, 0.0, rhs.data(),
                1);
    m.coef = ridge_cholesky(gram_of(c.x), std::move(rhs), alpha,
                            [&] { return ridge_svd(c.x, c.y, alpha); });
  }
  m.intercept =
      y_mean - cblas_ddot(lapack_int(x.cols, "Ridge"), x_mean.data(), 1, m.coef.data(), 1);
  return m;
}

void ElasticNetParams::validate() const {
  if (!(alpha >= 0)) throw Error("ElasticNet: alpha must be >= 0");
  if (!(l1_ratio >= 0 && l1_ratio <= 1)) throw Error("ElasticNet: l1_ratio must be in [0, 1]");
  if (!(tol >= 0)) throw Error("ElasticNet: tol must be >= 0");
  if (max_iter < 1) throw Error("ElasticNet: max_iter must be >= 1");
}

namespace {

// scikit-learn's enet_coordinate_descent on the centred data (columns stored contiguously).
LinearRegressorModel coordinate_descent(const Matrix& x, const Vector& y,
                                        const ElasticNetParams& p) {
  Centred c = centre(x, y, p.fit_intercept);
  const int64_t n = x.rows, d = x.cols;
  const std::vector<double> cols = column_major(c.x);
  auto col = [&](int64_t j) { return cols.data() + j * n; };
  const double l1 = p.alpha * p.l1_ratio * static_cast<double>(n);
  const double l2 = p.alpha * (1.0 - p.l1_ratio) * static_cast<double>(n);
  Vector w(static_cast<size_t>(d), 0.0);
  Vector norm2(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j)
    norm2[static_cast<size_t>(j)] = cblas_ddot(static_cast<int>(n), col(j), 1, col(j), 1);
  Vector r = c.y;  // residual y - Xw with w = 0
  const double y_norm2 = cblas_ddot(static_cast<int>(n), c.y.data(), 1, c.y.data(), 1);
  const double gap_tol = p.tol * y_norm2;
  LinearRegressorModel m;
  for (int64_t iter = 0; iter < p.max_iter; ++iter) {
    double w_max = 0, dw_max = 0;
    for (int64_t j = 0; j < d; ++j) {
      const size_t js = static_cast<size_t>(j);
      if (norm2[js] == 0.0) continue;
      const double w_old = w[js];
      if (w_old != 0.0) cblas_daxpy(static_cast<int>(n), w_old, col(j), 1, r.data(), 1);
      const double rho = cblas_ddot(static_cast<int>(n), col(j), 1, r.data(), 1);
      const double shrunk = std::max(std::fabs(rho) - l1, 0.0);
      w[js] = std::copysign(shrunk, rho) / (norm2[js] + l2);
      if (shrunk == 0.0) w[js] = 0.0;
      if (w[js] != 0.0) cblas_daxpy(static_cast<int>(n), -w[js], col(j), 1, r.data(), 1);
      dw_max = std::max(dw_max, std::fabs(w[js] - w_old));
      w_max = std::max(w_max, std::fabs(w[js]));
    }
    m.n_iter = iter + 1;
    if (w_max == 0.0 || dw_max / w_max < p.tol || iter == p.max_iter - 1) {
      // Duality gap of the (unscaled) problem.
      double dual_norm = 0, w_l1 = 0, w_l2 = 0;
      for (int64_t j = 0; j < d; ++j) {
        const double xta = cblas_ddot(static_cast<int>(n), col(j), 1, r.data(), 1) -
                           l2 * w[static_cast<size_t>(j)];
        dual_norm = std::max(dual_norm, std::fabs(xta));
        w_l1 += std::fabs(w[static_cast<size_t>(j)]);
        w_l2 += w[static_cast<size_t>(j)] * w[static_cast<size_t>(j)];
      }
      const double r_norm2 = cblas_ddot(static_cast<int>(n), r.data(), 1, r.data(), 1);
      double scale = 1.0, gap = 0;
      if (dual_norm > l1) {
        scale = l1 / dual_norm;
        gap = 0.5 * (r_norm2 + r_norm2 * scale * scale);
      } else {
        gap = r_norm2;
      }
      const double ry = cblas_ddot(static_cast<int>(n), r.data(), 1, c.y.data(), 1);
      gap += l1 * w_l1 - scale * ry + 0.5 * l2 * (1 + scale * scale) * w_l2;
      if (gap <= gap_tol) break;
    }
  }
  m.coef = std::move(w);
  m.intercept = p.fit_intercept ? intercept_of(c, m.coef) : 0.0;
  return m;
}

}  // namespace

LinearRegressorModel ElasticNet::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_regression_input(x, y, "ElasticNet");
  return coordinate_descent(x, y, params);
}

LinearRegressorModel Lasso::fit(const Matrix& x, const Vector& y) const {
  ElasticNetParams p = params;
  p.l1_ratio = 1.0;
  p.validate();
  check_regression_input(x, y, "Lasso");
  return coordinate_descent(x, y, p);
}

// ---- L-BFGS

namespace {

// Line search for the strong Wolfe conditions (Nocedal & Wright, algorithms 3.5 and 3.6):
// extrapolates while the slope stays negative, then zooms with safeguarded quadratic
// interpolation. On success w_new/g_new/f_new hold the accepted point.
bool wolfe_line_search(const std::function<double(const Vector&, Vector&)>& fg, const Vector& w,
                       double f0, double slope0, const Vector& dir, double step, int max_evals,
                       Vector& w_new, Vector& g_new, double& f_new) {
  constexpr double c1 = 1e-3, c2 = 0.9;  // scipy L-BFGS-B (dcsrch) values
  const size_t n = w.size();
  auto eval = [&](double a, double& f, double& slope) {
    for (size_t i = 0; i < n; ++i) w_new[i] = w[i] + a * dir[i];
    f = fg(w_new, g_new);
    slope = 0;
    for (size_t i = 0; i < n; ++i) slope += g_new[i] * dir[i];
  };
  double lo = 0, f_lo = f0, slope_lo = slope0;
  double hi = 0, f_hi = 0;
  bool bracketed = false;
  int evals = 0;
  while (evals < max_evals) {
    double f = 0, slope = 0;
    eval(step, f, slope);
    ++evals;
    if (!std::isfinite(f) || f > f0 + c1 * step * slope0 || (evals > 1 && f >= f_lo)) {
      hi = step;
      f_hi = std::isfinite(f) ? f : INFINITY;
      bracketed = true;
      break;
    }
    if (std::fabs(slope) <= -c2 * slope0) {
      f_new = f;
      return true;
    }
    if (slope >= 0) {
      hi = lo;
      f_hi = f_lo;
      lo = step;
      f_lo = f;
      slope_lo = slope;
      bracketed = true;
      break;
    }
    lo = step;
    f_lo = f;
    slope_lo = slope;
    step *= 2;  // still descending steeply: extrapolate
  }
  if (!bracketed) {
    // Out of evaluations while extrapolating: keep the best (last) point if it decreased f.
    if (lo > 0) {
      double f = 0, slope = 0;
      eval(lo, f, slope);
      f_new = f;
      return true;
    }
    return false;
  }
  while (evals < max_evals) {
    const double width = hi - lo;
    double a = lo + 0.5 * width;
    if (std::isfinite(f_hi)) {
      const double denom = 2 * (f_hi - f_lo - slope_lo * width);
      if (denom > 0) a = lo - slope_lo * width * width / denom;
    }
    const double lo_edge = std::min(lo, hi), hi_edge = std::max(lo, hi);
    const double margin = 0.1 * (hi_edge - lo_edge);
    a = std::clamp(a, lo_edge + margin, hi_edge - margin);
    double f = 0, slope = 0;
    eval(a, f, slope);
    ++evals;
    if (!std::isfinite(f) || f > f0 + c1 * a * slope0 || f >= f_lo) {
      hi = a;
      f_hi = std::isfinite(f) ? f : INFINITY;
    } else {
      if (std::fabs(slope) <= -c2 * slope0) {
        f_new = f;
        return true;
      }
      if (slope * (hi - lo) >= 0) {
        hi = lo;
        f_hi = f_lo;
      }
      lo = a;
      f_lo = f;
      slope_lo = slope;
    }
    if (std::fabs(hi - lo) <= 1e-16 * std::max(1.0, std::fabs(lo))) break;
  }
  // Zoom did not meet the curvature condition: accept the best sufficient-decrease point.
  if (lo > 0) {
    double f = 0, slope = 0;
    eval(lo, f, slope);
    f_new = f;
    return true;
  }
  return false;
}

}  // namespace

LbfgsResult lbfgs_minimize(const std::function<double(const Vector& w, Vector& grad)>& fg,
                           Vector& w, const LbfgsOptions& options) {
  const size_t n = w.size();
  auto max_abs = [](const Vector& v) {
    double m = 0;
    for (double x : v) m = std::max(m, std::fabs(x));
    return m;
  };
  auto dot = [](const Vector& a, const Vector& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };
  Vector g(n), g_new(n), w_new(n), dir(n);
  LbfgsResult result;
  result.f = fg(w, g);
  std::vector<Vector> s_hist, y_hist;
  std::vector<double> rho_hist;
  if (max_abs(g) <= options.gtol) {
    result.converged = true;
    return result;
  }
  for (int64_t iter = 0; iter < options.max_iter; ++iter) {
    // Two-loop recursion: dir = -H g.
    dir = g;
    const size_t m = s_hist.size();
    std::vector<double> a(m);
    for (size_t k = m; k-- > 0;) {
      a[k] = rho_hist[k] * dot(s_hist[k], dir);
      for (size_t i = 0; i < n; ++i) dir[i] -= a[k] * y_hist[k][i];
    }
    double gamma = 1.0;
    if (m > 0) gamma = dot(s_hist[m - 1], y_hist[m - 1]) / dot(y_hist[m - 1], y_hist[m - 1]);
    for (double& v : dir) v *= gamma;
    for (size_t k = 0; k < m; ++k) {
      const double b = rho_hist[k] * dot(y_hist[k], dir);
      for (size_t i = 0; i < n; ++i) dir[i] += s_hist[k][i] * (a[k] - b);
    }
    for (double& v : dir) v = -v;
    double slope = dot(g, dir);
    if (!(slope < 0)) {  // not a descent direction: restart from steepest descent
      s_hist.clear();
      y_hist.clear();
      rho_hist.clear();
      for (size_t i = 0; i < n; ++i) dir[i] = -g[i];
      slope = dot(g, dir);
    }
    const double step0 = m == 0 ? std::min(1.0, 1.0 / std::sqrt(dot(g, g))) : 1.0;
    double f_new = 0;
    const bool accepted = wolfe_line_search(fg, w, result.f, slope, dir, step0,
                                            options.max_line_search, w_new, g_new, f_new);
    result.iterations = iter + 1;
    if (!accepted) break;  // no progress possible at this precision
    Vector s(n), y(n);
    for (size_t i = 0; i < n; ++i) {
      s[i] = w_new[i] - w[i];
      y[i] = g_new[i] - g[i];
    }
    const double sy = dot(s, y);
    if (sy > 1e-12 * std::sqrt(dot(s, s) * dot(y, y))) {
      if (static_cast<int>(s_hist.size()) == options.memory) {
        s_hist.erase(s_hist.begin());
        y_hist.erase(y_hist.begin());
        rho_hist.erase(rho_hist.begin());
      }
      s_hist.push_back(std::move(s));
      y_hist.push_back(std::move(y));
      rho_hist.push_back(1.0 / sy);
    }
    const double f_old = result.f;
    w.swap(w_new);
    g.swap(g_new);
    result.f = f_new;
    if (max_abs(g) <= options.gtol) {
      result.converged = true;
      break;
    }
    if ((f_old - f_new) <= options.ftol * std::max({std::fabs(f_old), std::fabs(f_new), 1.0})) {
      result.converged = true;
      break;
    }
  }
  return result;
}

// ---- logistic regression

void LogisticRegressionParams::validate() const {
  if (!(C > 0)) throw Error("LogisticRegression: C must be > 0");
  if (!(tol >= 0)) throw Error("LogisticRegression: tol must be >= 0");
  if (max_iter < 1) throw Error("LogisticRegression: max_iter must be >= 1");
}

namespace {

// Linear scores Z = X W' + b for a (k x d) weight matrix: one dgemm.
Matrix scores(const Matrix& x, const Matrix& coef, const Vector& intercept) {
  Matrix z;
  z.rows = x.rows;
  z.cols = coef.rows;
  if (coef.rows == 1) {
    z.data.assign(static_cast<size_t>(x.rows), intercept[0]);
  } else {
    z.data.reserve(static_cast<size_t>(x.rows * coef.rows));
    for (int64_t i = 0; i < x.rows; ++i)
      z.data.insert(z.data.end(), intercept.begin(), intercept.end());
  }
  if (x.rows > 0 && coef.rows == 1 && x.cols > 0) {
    // Binary model: a matrix-vector product (this OpenBLAS does not route N = 1 GEMMs to GEMV).
    cblas_dgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(x.rows), static_cast<int>(x.cols),
                1.0, x.data.data(), static_cast<int>(x.cols), coef.data.data(), 1, 1.0,
                z.data.data(), 1);
  } else if (x.rows > 0 && coef.rows > 0 && x.cols > 0) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(x.rows),
                static_cast<int>(coef.rows), static_cast<int>(x.cols), 1.0, x.data.data(),
                static_cast<int>(x.cols), coef.data.data(), static_cast<int>(coef.cols), 1.0,
                z.data.data(), static_cast<int>(z.cols));
  }
  return z;
}

double dot_row(const double* a, const double* b, int64_t d) {
  // Four independent sums keep several multiply-adds in flight (no -ffast-math reassociation).
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t j = 0;
  for (; j + 4 <= d; j += 4) {
    s0 += a[j] * b[j];
    s1 += a[j + 1] * b[j + 1];
    s2 += a[j + 2] * b[j + 2];
    s3 += a[j + 3] * b[j + 3];
  }
  for (; j < d; ++j) s0 += a[j] * b[j];
  return (s0 + s1) + (s2 + s3);
}

// Binary logistic loss sum_i [log(1 + e^z_i) - t_i z_i], z = X w + b, and its gradient
// sum_i (p_i - t_i) [x_i, 1] in ONE pass over X: each row is still in L1 cache when its
// gradient contribution is added, where a score GEMV then a gradient GEMV read X twice from
// memory. Row groups as in column_stats, so the sums do not depend on the thread count.
// Writes the gradient wrt w into grad_w (d values) and wrt b into grad_b; returns the loss.
double binary_logistic_loss_grad(const Matrix& x, const Vector& y, const double* w, double b,
                                 std::vector<double>& partial, double* grad_w, double& grad_b) {
  const int64_t d = x.cols;
  const int64_t groups = row_group_count(x.rows);
  const int64_t stride = d + 2;  // gradient wrt w, wrt b, then the loss
  partial.assign(static_cast<size_t>(groups * stride), 0.0);
  parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      double* acc = partial.data() + g * stride;
      double loss = 0, gb = 0;
      const int64_t end = row_group_begin(g + 1, groups, x.rows);
      for (int64_t i = row_group_begin(g, groups, x.rows); i < end; ++i) {
        const double* r = x.row(i);
        const double z = b + dot_row(r, w, d);
        const double t = static_cast<int64_t>(y[static_cast<size_t>(i)]) == 1 ? 1.0 : 0.0;
        // One exp serves both the loss log(1 + e^z) - t z and the sigmoid, computed from
        // e = exp(-|z|) so neither overflows.
        const double e = std::exp(-std::fabs(z));
        loss += std::max(z, 0.0) + std::log1p(e) - t * z;
        const double residual = (z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e)) - t;
        gb += residual;
        for (int64_t j = 0; j < d; ++j) acc[j] += residual * r[j];
      }
      acc[d] = gb;
      acc[d + 1] = loss;
    }
  });
  std::fill(grad_w, grad_w + d, 0.0);
  grad_b = 0;
  double loss = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const double* acc = partial.data() + g * stride;
    for (int64_t j = 0; j < d; ++j) grad_w[j] += acc[j];
    grad_b += acc[d];
    loss += acc[d + 1];
  }
  return loss;
}

// Rows of X per block of the multinomial pass: about kBlockBytes of X, so the block read by the
// score GEMM is still in L2 when the gradient GEMM reads it again, and each GEMM stays below
// OpenBLAS's own threading size (256K multiply-adds) where k allows: the blocks already run in
// parallel on the pool.
constexpr int64_t kBlockBytes = int64_t{64} * 1024;
constexpr int64_t kSingleThreadGemmWork = 131072;

int64_t multinomial_block_rows(int64_t k, int64_t d) {
  const int64_t by_cache = kBlockBytes / (d * static_cast<int64_t>(sizeof(double)));
  const int64_t by_work = kSingleThreadGemmWork / std::max<int64_t>(k * d, 1);
  return std::clamp<int64_t>(std::min(by_cache, by_work), 16, 1024);
}

// Multinomial cross-entropy sum_i [logsumexp(z_i) - z_i,y_i], Z = X W' + b, and its gradient
// (P - Y)' [X, 1] in ONE pass over X: per block of rows, the scores (one GEMM), the softmax and
// the block's gradient (a second GEMM) while the block is in cache, where a score GEMM over all
// of X then a gradient GEMM read X twice from memory. Sums are per row group as in
// column_stats, added in group order, so they do not depend on the thread count. Writes the
// gradient wrt W into grad_w (k x d, row-major) and wrt b into grad_b (k); returns the loss.
double multinomial_loss_grad(const Matrix& x, const Vector& y, const Matrix& coef,
                             const Vector& intercept, std::vector<double>& partial, double* grad_w,
                             double* grad_b) {
  const int64_t d = x.cols, k = coef.rows;
  const int64_t groups = row_group_count(x.rows);
  const int64_t block = multinomial_block_rows(k, d);
  const int64_t stride = k * d + k + 1;  // gradient wrt W, wrt b, then the loss
  partial.assign(static_cast<size_t>(groups * stride), 0.0);
  parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    const auto z = std::make_unique_for_overwrite<double[]>(static_cast<size_t>(block * k));
    for (int64_t g = g0; g < g1; ++g) {
      double* acc = partial.data() + g * stride;
      double* gb = acc + k * d;
      double loss = 0;
      const int64_t end = row_group_begin(g + 1, groups, x.rows);
      for (int64_t b0 = row_group_begin(g, groups, x.rows); b0 < end; b0 += block) {
        const int64_t rows = std::min(block, end - b0);
        for (int64_t i = 0; i < rows; ++i) std::copy_n(intercept.data(), k, z.get() + i * k);
        // The block is a row range of X itself: no copy (row-major, leading dimension d).
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                    static_cast<int>(k), static_cast<int>(d), 1.0, x.row(b0), static_cast<int>(d),
                    coef.data.data(), static_cast<int>(d), 1.0, z.get(), static_cast<int>(k));
        for (int64_t i = 0; i < rows; ++i) {
          double* zi = z.get() + i * k;
          const auto label = static_cast<int64_t>(y[static_cast<size_t>(b0 + i)]);
          double zmax = zi[0];
          for (int64_t c = 1; c < k; ++c) zmax = std::max(zmax, zi[c]);
          const double z_label = zi[label];
          // Each class's exp serves both the log-sum-exp and its probability.
          double sum = 0;
          for (int64_t c = 0; c < k; ++c) sum += (zi[c] = std::exp(zi[c] - zmax));
          loss += zmax + std::log(sum) - z_label;
          const double inv_sum = 1.0 / sum;
          for (int64_t c = 0; c < k; ++c) {
            zi[c] = zi[c] * inv_sum - (c == label ? 1.0 : 0.0);  // now the residual p - t
            gb[c] += zi[c];
          }
        }
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(k),
                    static_cast<int>(d), static_cast<int>(rows), 1.0, z.get(), static_cast<int>(k),
                    x.row(b0), static_cast<int>(d), 1.0, acc, static_cast<int>(d));
      }
      acc[k * d + k] = loss;
    }
  });
  std::fill(grad_w, grad_w + k * d, 0.0);
  std::fill(grad_b, grad_b + k, 0.0);
  double loss = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const double* acc = partial.data() + g * stride;
    for (int64_t j = 0; j < k * d; ++j) grad_w[j] += acc[j];
    for (int64_t c = 0; c < k; ++c) grad_b[c] += acc[k * d + c];
    loss += acc[k * d + k];
  }
  return loss;
}

}  // namespace

LogisticRegressionModel LogisticRegression::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_fit_input(x, &y, "LogisticRegression");
  const int64_t k = count_classes(y, "LogisticRegression");
  const int64_t n = x.rows, d = x.cols;
  const int64_t rows = k == 2 ? 1 : k;  // binary: one weight vector for class 1
  const int64_t stride = d + 1;         // per-row parameters: weights then intercept
  const double inv_n = 1.0 / static_cast<double>(n);
  const double l2 = 1.0 / (params.C * static_cast<double>(n));
  const bool with_b = params.fit_intercept;

  Matrix coef(rows, d);
  Vector intercept(static_cast<size_t>(rows), 0.0);
  std::vector<double> partial;
  Matrix grad_w(rows, d);
  Vector grad_b(static_cast<size_t>(rows));
  auto unpack = [&](const Vector& w) {
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(w.data() + r * stride, d, coef.row(r));
      intercept[static_cast<size_t>(r)] = with_b ? w[static_cast<size_t>(r * stride + d)] : 0.0;
    }
  };
  auto fg = [&](const Vector& w, Vector& grad) {
    unpack(w);
    const double loss =
        multinomial_loss_grad(x, y, coef, intercept, partial, grad_w.data.data(), grad_b.data());
    double penalty = 0;
    for (double v : coef.data) penalty += v * v;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < d; ++j) {
        grad[static_cast<size_t>(r * stride + j)] = grad_w(r, j) * inv_n + l2 * coef(r, j);
      }
      grad[static_cast<size_t>(r * stride + d)] =
          with_b ? grad_b[static_cast<size_t>(r)] * inv_n : 0.0;
    }
    return loss * inv_n + 0.5 * l2 * penalty;
  };

  auto fg_binary = [&](const Vector& w, Vector& grad) {
    const double b = with_b ? w[static_cast<size_t>(d)] : 0.0;
    double gb = 0;
    const double loss = binary_logistic_loss_grad(x, y, w.data(), b, partial, grad.data(), gb);
    double penalty = 0;
    for (size_t j = 0; j < static_cast<size_t>(d); ++j) {
      penalty += w[j] * w[j];
      grad[j] = grad[j] * inv_n + l2 * w[j];
    }
    grad[static_cast<size_t>(d)] = with_b ? gb * inv_n : 0.0;
    return loss * inv_n + 0.5 * l2 * penalty;
  };

  Vector w(static_cast<size_t>(rows * stride), 0.0);
  LbfgsOptions options;
  options.max_iter = params.max_iter;
  options.gtol = params.tol;
  const LbfgsResult result =
      rows == 1 ? lbfgs_minimize(fg_binary, w, options) : lbfgs_minimize(fg, w, options);
  unpack(w);
  LogisticRegressionModel m;
  m.n_classes = k;
  m.coef = coef;
  m.intercept = intercept;
  m.n_iter = result.iterations;
  return m;
}

Matrix LogisticRegressionModel::predict_proba(const Matrix& x) const {
  check_predict_shape(x, n_features(), "LogisticRegression");
  const Matrix z = scores(x, coef, intercept);
  check_predict_outputs(x, z.data, "LogisticRegression");
  Matrix p(x.rows, n_classes);
  for (int64_t i = 0; i < x.rows; ++i) {
    const double* zi = z.row(i);
    double* pi = p.row(i);
    if (coef.rows == 1) {
      pi[1] = 1.0 / (1.0 + std::exp(-zi[0]));
      pi[0] = 1.0 - pi[1];
      continue;
    }
    double zmax = zi[0];
    for (int64_t c = 1; c < n_classes; ++c) zmax = std::max(zmax, zi[c]);
    double sum = 0;
    for (int64_t c = 0; c < n_classes; ++c) sum += (pi[c] = std::exp(zi[c] - zmax));
    for (int64_t c = 0; c < n_classes; ++c) pi[c] /= sum;
  }
  return p;
}

Vector LogisticRegressionModel::predict(const Matrix& x) const {
  check_predict_shape(x, n_features(), "LogisticRegression");
  Matrix z = scores(x, coef, intercept);
  check_predict_outputs(x, z.data, "LogisticRegression");
  if (coef.rows == 1) {  // one score per row: turned into the class in place
    for (double& v : z.data) v = v > 0 ? 1.0 : 0.0;
    return std::move(z.data);
  }
  return argmax_rows(z);
}

void LogisticRegressionModel::save(ArchiveWriter& out) const {
  out.i64(n_classes);
  out.matrix(coef);
  out.vec(intercept);
  out.i64(n_iter);
}

LogisticRegressionModel LogisticRegressionModel::load(ArchiveReader& in) {
  LogisticRegressionModel m;
  m.n_classes = in.i64();
  m.coef = in.matrix();
  m.intercept = in.vec();
  m.n_iter = in.i64();
  const int64_t expected_rows = m.n_classes == 2 ? 1 : m.n_classes;
  if (m.n_classes < 2 || m.coef.rows != expected_rows || m.coef.cols < 1 ||
      static_cast<int64_t>(m.intercept.size()) != m.coef.rows) {
    throw Error("model file is corrupt (LogisticRegression shapes)");
  }
  return m;
}

// ---- registry

namespace {

LinearRegression parse_linear_regression(ParamMap& p) {
  LinearRegression est;
  est.params.fit_intercept = p.get_bool("fit_intercept", true);
  return est;
}

Ridge parse_ridge(ParamMap& p) {
  Ridge est;
  est.params.alpha = p.get_double("alpha", 1.0);
  est.params.fit_intercept = p.get_bool("fit_intercept", true);
  return est;
}

ElasticNetParams enet_params(ParamMap& p, double default_l1_ratio, bool has_l1_ratio) {
  ElasticNetParams e;
  e.alpha = p.get_double("alpha", 1.0);
  e.l1_ratio = has_l1_ratio ? p.get_double("l1_ratio", default_l1_ratio) : default_l1_ratio;
  e.fit_intercept = p.get_bool("fit_intercept", true);
  e.tol = p.get_double("tol", 1e-4);
  e.max_iter = p.get_int("max_iter", 1000);
  return e;
}

Lasso parse_lasso(ParamMap& p) {
  Lasso est;
  est.params = enet_params(p, 1.0, false);
  return est;
}

ElasticNet parse_elastic_net(ParamMap& p) {
  ElasticNet est;
  est.params = enet_params(p, 0.5, true);
  return est;
}

LogisticRegression parse_logistic_regression(ParamMap& p) {
  LogisticRegression est;
  est.params.C = p.get_double("C", 1.0);
  est.params.fit_intercept = p.get_bool("fit_intercept", true);
  est.params.tol = p.get_double("tol", 1e-4);
  est.params.max_iter = p.get_int("max_iter", 100);
  const std::string penalty = p.get_string("penalty", "l2");
  if (penalty != "l2") throw Error("LogisticRegression: only penalty=l2 is supported");
  const std::string solver = p.get_string("solver", "lbfgs");
  if (solver != "lbfgs") throw Error("LogisticRegression: only solver=lbfgs is supported");
  return est;
}

const AlgorithmRegistrar kLinearRegression{
    estimator_algorithm("LinearRegression", Task::Regression, parse_linear_regression)};
const AlgorithmRegistrar kRidge{estimator_algorithm("Ridge", Task::Regression, parse_ridge)};
const AlgorithmRegistrar kLasso{estimator_algorithm("Lasso", Task::Regression, parse_lasso)};
const AlgorithmRegistrar kElasticNet{
    estimator_algorithm("ElasticNet", Task::Regression, parse_elastic_net)};
const AlgorithmRegistrar kLogisticRegression{
    estimator_algorithm("LogisticRegression", Task::Classification, parse_logistic_regression)};

}  // namespace

}  // namespace ember::ml
