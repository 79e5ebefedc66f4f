#include "ember/ml/decomposition.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>

#include "decomposition_blas.hpp"

namespace ember::ml {

using detail::lapack_int;

ThinSvd lapack_svd(const Matrix& a) {
  // A row-major m x n buffer is the column-major n x m matrix A^T = V S U^T, so LAPACK's "u"
  // comes back as row-major Vt and its "vt" as row-major U.
  const int m = lapack_int(a.cols, "svd");
  const int n = lapack_int(a.rows, "svd");
  const int k = std::min(m, n);
  ThinSvd out;
  if (k == 0) return out;
  std::vector<double> work_a = a.data;
  out.s.assign(static_cast<size_t>(k), 0.0);
  out.vt = Matrix(k, a.cols);
  out.u = Matrix(a.rows, k);
  std::vector<int> iwork(static_cast<size_t>(8) * static_cast<size_t>(k));
  int info = 0;
  int lwork = -1;
  double query = 0;
  const char jobz = 'S';
  dgesdd_(&jobz, &m, &n, work_a.data(), &m, out.s.data(), out.vt.data.data(), &m, out.u.data.data(),
          &k, &query, &lwork, iwork.data(), &info);
  if (info != 0) throw Error("svd: LAPACK workspace query failed");
  lwork = static_cast<int>(query) + 1;
  std::vector<double> work(static_cast<size_t>(lwork));
  dgesdd_(&jobz, &m, &n, work_a.data(), &m, out.s.data(), out.vt.data.data(), &m, out.u.data.data(),
          &k, work.data(), &lwork, iwork.data(), &info);
  if (info != 0)
    throw Error("svd: LAPACK dgesdd did not converge (info " + std::to_string(info) + ")");
  return out;
}

namespace {

// Orthonormal basis of the columns of y (rows x cols, cols <= rows) via Householder QR.
void orthonormalize_columns(Matrix& y) {
  // Row-major y (r x c) is column-major y^T; QR needs the column-major r x c matrix, so
  // transpose into a column-major buffer and back.
  const int r = lapack_int(y.rows, "qr");
  const int c = lapack_int(y.cols, "qr");
  std::vector<double> col(static_cast<size_t>(r) * static_cast<size_t>(c));
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < c; ++j) col[static_cast<size_t>(j) * r + i] = y(i, j);
  std::vector<double> tau(static_cast<size_t>(c));
  int info = 0;
  int lwork = -1;
  double query = 0;
  dgeqrf_(&r, &c, col.data(), &r, tau.data(), &query, &lwork, &info);
  lwork = std::max(1, static_cast<int>(query));
  std::vector<double> work(static_cast<size_t>(lwork));
  dgeqrf_(&r, &c, col.data(), &r, tau.data(), work.data(), &lwork, &info);
  if (info != 0) throw Error("qr: LAPACK dgeqrf failed");
  lwork = -1;
  dorgqr_(&r, &c, &c, col.data(), &r, tau.data(), &query, &lwork, &info);
  lwork = std::max(1, static_cast<int>(query));
  work.assign(static_cast<size_t>(lwork), 0.0);
  dorgqr_(&r, &c, &c, col.data(), &r, tau.data(), work.data(), &lwork, &info);
  if (info != 0) throw Error("qr: LAPACK dorgqr failed");
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < c; ++j) y(i, j) = col[static_cast<size_t>(j) * r + i];
}

}  // namespace

ThinSvd randomized_svd(const Matrix& a, int64_t n_components, int64_t n_oversamples, int64_t n_iter,
                       uint64_t seed) {
  const int64_t n_random = std::min(n_components + n_oversamples, std::min(a.rows, a.cols));
  detail::Rng rng(seed);
  Matrix omega(a.cols, n_random);
  for (double& v : omega.data) v = rng.normal();
  Matrix q = detail::matmul(a, false, omega, false);  // rows x n_random
  orthonormalize_columns(q);
  for (int64_t it = 0; it < n_iter; ++it) {
    Matrix z = detail::matmul(a, true, q, false);  // cols x n_random
    orthonormalize_columns(z);
    q = detail::matmul(a, false, z, false);
    orthonormalize_columns(q);
  }
  Matrix b = detail::matmul(q, true, a, false);  // n_random x cols
  ThinSvd small = lapack_svd(b);
  ThinSvd out;
  const int64_t k = std::min<int64_t>(n_components, static_cast<int64_t>(small.s.size()));
  Matrix u_full = detail::matmul(q, false, small.u, false);  // rows x n_random
  out.u = Matrix(a.rows, k);
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < k; ++j) out.u(i, j) = u_full(i, j);
  out.s.assign(small.s.begin(), small.s.begin() + k);
  out.vt = Matrix(k, a.cols);
  std::copy_n(small.vt.data.begin(), k * a.cols, out.vt.data.begin());
  return out;
}

void svd_flip_v(ThinSvd& svd) {
  for (int64_t r = 0; r < svd.vt.rows; ++r) {
    double* v = svd.vt.row(r);
    int64_t best = 0;
    for (int64_t j = 1; j < svd.vt.cols; ++j) {
      if (std::abs(v[j]) > std::abs(v[best])) best = j;
    }
    if (v[best] < 0) {
      for (int64_t j = 0; j < svd.vt.cols; ++j) v[j] = -v[j];
      for (int64_t i = 0; i < svd.u.rows; ++i) svd.u(i, r) = -svd.u(i, r);
    }
  }
}

namespace {

// The k largest singular triplets of a (k < min(rows, cols)) from the eigenpairs of its smaller
// Gram matrix: the eigenproblem ARPACK iterates on, solved directly by LAPACK for just the top k.
ThinSvd gram_top_svd(const Matrix& a, int64_t k, const std::string& what) {
  const bool by_columns = a.cols <= a.rows;  // Gram = A^T A (cols x cols) or A A^T
  Matrix gram = by_columns ? detail::matmul(a, true, a, false) : detail::matmul(a, false, a, true);
  const int dim = lapack_int(gram.rows, what.c_str());
  const int il = dim - static_cast<int>(k) + 1, iu = dim;
  const double unused = 0, abstol = 0;
  int found = 0, info = 0, lwork = -1, liwork = -1, iquery = 0;
  double query = 0;
  Vector w(static_cast<size_t>(dim));
  Vector z(static_cast<size_t>(dim) * static_cast<size_t>(k));
  std::vector<int> isuppz(2 * static_cast<size_t>(k));
  const char jobz = 'V', range = 'I', uplo = 'U';
  dsyevr_(&jobz, &range, &uplo, &dim, gram.data.data(), &dim, &unused, &unused, &il, &iu, &abstol,
          &found, w.data(), z.data(), &dim, isuppz.data(), &query, &lwork, &iquery, &liwork, &info);
  lwork = static_cast<int>(query) + 1;
  liwork = iquery + 1;
  Vector work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevr_(&jobz, &range, &uplo, &dim, gram.data.data(), &dim, &unused, &unused, &il, &iu, &abstol,
          &found, w.data(), z.data(), &dim, isuppz.data(), work.data(), &lwork, iwork.data(),
          &liwork, &info);
  if (info != 0 || found != k) throw Error(what + ": LAPACK dsyevr did not converge");

  ThinSvd out;
  out.vt = Matrix(k, a.cols);
  out.u = Matrix(a.rows, k);
  for (int64_t r = 0; r < k; ++r) {
    // Eigenvalues come in ascending order, one column-major eigenvector per column.
    const int64_t col = k - 1 - r;
    const double s = std::sqrt(std::max(0.0, w[static_cast<size_t>(col)]));
    out.s.push_back(s);
    const double* vec = z.data() + col * dim;
    if (by_columns) {
      std::copy_n(vec, a.cols, out.vt.row(r));
    } else {
      for (int64_t i = 0; i < a.rows; ++i) out.u(i, r) = vec[i];
    }
  }
  // The other side of each triplet: U = A V / s or V^T = U^T A / s.
  Matrix other =
      by_columns ? detail::matmul(a, false, out.vt, true) : detail::matmul(out.u, true, a, false);
  for (int64_t r = 0; r < k; ++r) {
    const double s = out.s[static_cast<size_t>(r)];
    const double inv = s > 0 ? 1.0 / s : 0.0;
    if (by_columns) {
      for (int64_t i = 0; i < a.rows; ++i) out.u(i, r) = other(i, r) * inv;
    } else {
      for (int64_t j = 0; j < a.cols; ++j) out.vt(r, j) = other(r, j) * inv;
    }
  }
  return out;
}

// Minka (2000), "Automatic choice of dimensionality for PCA": the log-likelihood of keeping
// `rank` components of a covariance whose eigenvalues (descending) are `spectrum`, under a
// probabilistic PCA model with isotropic noise over the other directions.
double minka_log_likelihood(const Vector& spectrum, int64_t rank, int64_t n_samples) {
  const double eps = std::numeric_limits<double>::epsilon();
  const double pi = std::numbers::pi;
  const auto d = static_cast<int64_t>(spectrum.size());
  const auto n = static_cast<double>(n_samples);
  const auto at = [&](int64_t i) { return spectrum[static_cast<size_t>(i)]; };
  if (at(rank - 1) < eps) return -std::numeric_limits<double>::infinity();

  // Uniform prior over the subspace: the inverse volume of the Stiefel manifold.
  double log_prior = -static_cast<double>(rank) * std::log(2.0);
  for (int64_t i = 1; i <= rank; ++i) {
    const double half = static_cast<double>(d - i + 1) / 2.0;
    log_prior += std::lgamma(half) - std::log(pi) * half;
  }
  double log_kept = 0;
  for (int64_t i = 0; i < rank; ++i) log_kept += std::log(at(i));
  log_kept *= -n / 2.0;
  double noise = 0;
  for (int64_t i = rank; i < d; ++i) noise += at(i);
  noise = std::max(eps, noise / static_cast<double>(d - rank));
  const double log_noise = -std::log(noise) * n * static_cast<double>(d - rank) / 2.0;
  const double free_params =
      static_cast<double>(d * rank) - static_cast<double>(rank * (rank + 1)) / 2.0;
  const double log_volume = std::log(2.0 * pi) * (free_params + static_cast<double>(rank)) / 2.0;
  // Laplace approximation: log-determinant of the Hessian at the optimum; eigenvalues past
  // `rank` are replaced by the noise level where they are inverted.
  double log_hessian = 0;
  for (int64_t i = 0; i < rank; ++i) {
    for (int64_t j = i + 1; j < d; ++j) {
      const double inverted_j = j < rank ? at(j) : noise;
      log_hessian += std::log((at(i) - at(j)) * (1.0 / inverted_j - 1.0 / at(i))) + std::log(n);
    }
  }
  return log_prior + log_kept + log_noise + log_volume - log_hessian / 2.0 -
         static_cast<double>(rank) * std::log(n) / 2.0;
}

// The rank in [1, d) of highest Minka log-likelihood (the first one on ties).
int64_t minka_dimension(const Vector& spectrum, int64_t n_samples) {
  int64_t best = 0;
  double best_ll = -std::numeric_limits<double>::infinity();
  for (int64_t rank = 1; rank < static_cast<int64_t>(spectrum.size()); ++rank) {
    const double ll = minka_log_likelihood(spectrum, rank, n_samples);
    if (ll > best_ll) {
      best = rank;
      best_ll = ll;
    }
  }
  if (best == 0) {
    throw Error(
        "PCA: n_components='mle' found no dimension with a finite likelihood (constant "
        "data or a single feature)");
  }
  return best;
}

}  // namespace

// ---- PCA

void PCAParams::validate() const {
  if (n_components && *n_components < 1) throw Error("PCA: n_components must be >= 1");
  if (n_components_fraction && !(*n_components_fraction > 0 && *n_components_fraction < 1)) {
    throw Error("PCA: a fractional n_components must be in (0, 1)");
  }
  if (int{n_components.has_value()} + int{n_components_fraction.has_value()} +
          int{n_components_mle} >
      1) {
    throw Error("PCA: give n_components either as a count, as a fraction or as 'mle'");
  }
  if (svd_solver != "auto" && svd_solver != "full" && svd_solver != "covariance_eigh" &&
      svd_solver != "randomized" && svd_solver != "arpack") {
    throw Error("PCA: unknown svd_solver '" + svd_solver +
                "' (auto, full, covariance_eigh, randomized, arpack)");
  }
  if ((n_components_fraction || n_components_mle) &&
      (svd_solver == "randomized" || svd_solver == "arpack")) {
    throw Error(
        "PCA: a fractional or 'mle' n_components needs svd_solver auto, full or "
        "covariance_eigh");
  }
  if (iterated_power != "auto") {
    int64_t v = 0;
    auto [p, ec] =
        std::from_chars(iterated_power.data(), iterated_power.data() + iterated_power.size(), v);
    if (ec != std::errc() || p != iterated_power.data() + iterated_power.size() || v < 0) {
      throw Error("PCA: iterated_power must be 'auto' or a non-negative integer");
    }
  }
  if (n_oversamples < 1) throw Error("PCA: n_oversamples must be >= 1");
}

PCAModel PCA::fit(const Matrix& x) const {
  params.validate();
  check_fit_input(x, nullptr, "PCA");
  const int64_t n = x.rows;
  const int64_t p = x.cols;
  const int64_t min_dim = std::min(n, p);
  if (n < 2) throw Error("PCA: needs at least two samples");
  if (params.n_components && *params.n_components > min_dim) {
    throw Error("PCA: n_components=" + std::to_string(*params.n_components) +
                " must be at most min(n_samples, n_features)=" + std::to_string(min_dim));
  }
  if (params.n_components_mle && n < p) {
    throw Error("PCA: n_components='mle' needs n_samples >= n_features");
  }
  const bool arpack = params.svd_solver == "arpack";
  const int64_t requested = params.n_components.value_or(arpack ? min_dim - 1 : min_dim);
  if (arpack && !(requested >= 1 && requested < min_dim)) {
    throw Error("PCA: svd_solver='arpack' needs 1 <= n_components < min(n_samples, n_features)=" +
                std::to_string(min_dim));
  }

  std::string solver = params.svd_solver;
  if (solver == "auto") {
    // scikit-learn's policy: randomized only for large data of which few components are kept.
    const bool small_or_not_a_count =
        std::max(n, p) <= 500 || params.n_components_fraction || params.n_components_mle;
    const bool few_components =
        requested >= 1 && static_cast<double>(requested) < 0.8 * static_cast<double>(min_dim);
    if (p <= 1000 && n >= 10 * p) {
      solver = "covariance_eigh";
    } else if (!small_or_not_a_count && few_components) {
      solver = "randomized";
    } else {
      solver = "full";
    }
  }

  PCAModel model;
  model.n_samples = n;
  model.whiten = params.whiten;
  model.solver_used = solver;
  model.mean.assign(static_cast<size_t>(p), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < p; ++j) model.mean[static_cast<size_t>(j)] += x(i, j);
  for (double& m : model.mean) m /= static_cast<double>(n);
  Matrix centered = x;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < p; ++j) centered(i, j) -= model.mean[static_cast<size_t>(j)];

  ThinSvd svd;
  Vector variance;  // all available explained variances
  double total_var = 0;
  if (solver == "full") {
    svd = lapack_svd(centered);
    for (double s : svd.s) variance.push_back(s * s / static_cast<double>(n - 1));
    total_var = std::accumulate(variance.begin(), variance.end(), 0.0);
  } else if (solver == "covariance_eigh") {
    Matrix cov = detail::matmul(centered, true, centered, false);
    for (double& v : cov.data) v /= static_cast<double>(n - 1);
    const int pi = lapack_int(p, "PCA");
    Vector w(static_cast<size_t>(p));
    int info = 0, lwork = -1, liwork = -1, iquery = 0;
    double query = 0;
    const char jobz = 'V', uplo = 'U';
    dsyevd_(&jobz, &uplo, &pi, cov.data.data(), &pi, w.data(), &query, &lwork, &iquery, &liwork,
            &info);
    lwork = static_cast<int>(query) + 1;
    liwork = iquery + 1;
    std::vector<double> work(static_cast<size_t>(lwork));
    std::vector<int> iwork(static_cast<size_t>(liwork));
    dsyevd_(&jobz, &uplo, &pi, cov.data.data(), &pi, w.data(), work.data(), &lwork, iwork.data(),
            &liwork, &info);
    if (info != 0) throw Error("PCA: LAPACK dsyevd did not converge");
    // Column-major eigenvectors read row-major are rows; LAPACK sorts ascending.
    svd.vt = Matrix(p, p);
    for (int64_t r = 0; r < p; ++r) std::copy_n(cov.row(p - 1 - r), p, svd.vt.row(r));
    for (int64_t r = 0; r < p; ++r) {
      const double ev = std::max(0.0, w[static_cast<size_t>(p - 1 - r)]);
      variance.push_back(ev);
      svd.s.push_back(std::sqrt(ev * static_cast<double>(n - 1)));
    }
    total_var = std::accumulate(variance.begin(), variance.end(), 0.0);
  } else if (solver == "arpack") {
    svd = gram_top_svd(centered, requested, "PCA");
    for (double s : svd.s) variance.push_back(s * s / static_cast<double>(n - 1));
    for (double v : centered.data) total_var += v * v;
    total_var /= static_cast<double>(n - 1);
  } else {  // randomized
    int64_t n_iter = 0;
    if (params.iterated_power == "auto") {
      n_iter = static_cast<double>(requested) < 0.1 * static_cast<double>(min_dim) ? 7 : 4;
    } else {
      n_iter = std::stoll(params.iterated_power);
    }
    svd = randomized_svd(centered, requested, params.n_oversamples, n_iter, params.random_state);
    for (double s : svd.s) variance.push_back(s * s / static_cast<double>(n - 1));
    for (double v : centered.data) total_var += v * v;
    total_var /= static_cast<double>(n - 1);
  }
  svd_flip_v(svd);

  int64_t keep = requested;
  if (params.n_components_mle) keep = minka_dimension(variance, n);
  if (params.n_components_fraction) {
    double cumulative = 0;
    keep = 0;
    for (double v : variance) {
      cumulative += v / total_var;
      if (cumulative <= *params.n_components_fraction) ++keep;
    }
    keep = std::min<int64_t>(keep + 1, static_cast<int64_t>(variance.size()));
  }
  keep = std::min<int64_t>(keep, svd.vt.rows);
  model.components = Matrix(keep, p);
  std::copy_n(svd.vt.data.begin(), keep * p, model.components.data.begin());
  for (int64_t i = 0; i < keep; ++i) {
    model.explained_variance.push_back(variance[static_cast<size_t>(i)]);
    model.explained_variance_ratio.push_back(variance[static_cast<size_t>(i)] / total_var);
    model.singular_values.push_back(svd.s[static_cast<size_t>(i)]);
  }
  if (keep < min_dim) {
    if (solver == "randomized" || solver == "arpack") {
      double kept =
          std::accumulate(model.explained_variance.begin(), model.explained_variance.end(), 0.0);
      model.noise_variance = (total_var - kept) / static_cast<double>(min_dim - keep);
    } else {
      double rest = 0;
      for (size_t i = static_cast<size_t>(keep); i < variance.size(); ++i) rest += variance[i];
      model.noise_variance =
          rest / static_cast<double>(variance.size() - static_cast<size_t>(keep));
    }
  }
  if (params.whiten) {
    for (double v : model.explained_variance) {
      if (!(v > 0)) throw Error("PCA: cannot whiten a component with zero variance");
    }
  }
  return model;
}

Matrix PCAModel::transform(const Matrix& x) const {
  check_predict_input(x, n_features(), "PCA");
  Matrix centered = x;
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < x.cols; ++j) centered(i, j) -= mean[static_cast<size_t>(j)];
  Matrix z = detail::matmul(centered, false, components, true);
  if (whiten) {
    for (int64_t i = 0; i < z.rows; ++i)
      for (int64_t j = 0; j < z.cols; ++j)
        z(i, j) /= std::sqrt(explained_variance[static_cast<size_t>(j)]);
  }
  return z;
}

Matrix PCAModel::inverse_transform(const Matrix& z) const {
  check_predict_input(z, n_components(), "PCA inverse_transform");
  Matrix scaled = components;
  if (whiten) {
    for (int64_t i = 0; i < scaled.rows; ++i)
      for (int64_t j = 0; j < scaled.cols; ++j)
        scaled(i, j) *= std::sqrt(explained_variance[static_cast<size_t>(i)]);
  }
  Matrix x = detail::matmul(z, false, scaled, false);
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < x.cols; ++j) x(i, j) += mean[static_cast<size_t>(j)];
  return x;
}

namespace {
void check_vector_size(const Vector& v, int64_t n, const char* who) {
  if (static_cast<int64_t>(v.size()) != n) {
    throw Error(std::string(who) + ": model file is corrupt (vector size)");
  }
}
}  // namespace

void PCAModel::save(ArchiveWriter& out) const {
  out.matrix(components);
  out.vec(mean);
  out.vec(explained_variance);
  out.vec(explained_variance_ratio);
  out.vec(singular_values);
  out.f64(noise_variance);
  out.i64(n_samples);
  out.u64(whiten ? 1 : 0);
  out.str(solver_used);
}

PCAModel PCAModel::load(ArchiveReader& in) {
  PCAModel m;
  m.components = in.matrix();
  m.mean = in.vec();
  m.explained_variance = in.vec();
  m.explained_variance_ratio = in.vec();
  m.singular_values = in.vec();
  m.noise_variance = in.f64();
  m.n_samples = in.i64();
  const uint64_t whiten = in.u64();
  m.solver_used = in.str();
  if (whiten > 1 || m.components.rows < 1 || m.components.cols < 1) {
    throw Error("PCA: model file is corrupt");
  }
  m.whiten = whiten == 1;
  check_vector_size(m.mean, m.components.cols, "PCA");
  check_vector_size(m.explained_variance, m.components.rows, "PCA");
  check_vector_size(m.explained_variance_ratio, m.components.rows, "PCA");
  check_vector_size(m.singular_values, m.components.rows, "PCA");
  for (double v : m.components.data)
    if (!std::isfinite(v)) throw Error("PCA: model file is corrupt (non-finite)");
  if (m.whiten) {
    for (double v : m.explained_variance)
      if (!(v > 0) || !std::isfinite(v)) throw Error("PCA: model file is corrupt (variance)");
  }
  return m;
}

// ---- TruncatedSVD

void TruncatedSVDParams::validate() const {
  if (n_components < 1) throw Error("TruncatedSVD: n_components must be >= 1");
  if (algorithm != "randomized" && algorithm != "arpack") {
    throw Error("TruncatedSVD: unknown algorithm '" + algorithm + "' (randomized, arpack)");
  }
  if (n_iter < 0) throw Error("TruncatedSVD: n_iter must be >= 0");
  if (n_oversamples < 1) throw Error("TruncatedSVD: n_oversamples must be >= 1");
}

TruncatedSVDModel TruncatedSVD::fit(const Matrix& x) const {
  params.validate();
  check_fit_input(x, nullptr, "TruncatedSVD");
  if (params.n_components > x.cols) {
    throw Error("TruncatedSVD: n_components=" + std::to_string(params.n_components) +
                " must be at most n_features=" + std::to_string(x.cols));
  }
  if (params.n_components > x.rows) {
    throw Error("TruncatedSVD: n_components must be at most n_samples");
  }
  const bool arpack = params.algorithm == "arpack";
  if (arpack && params.n_components >= std::min(x.rows, x.cols)) {
    throw Error("TruncatedSVD: algorithm='arpack' needs n_components < min(n_samples, n_features)");
  }
  ThinSvd svd = arpack ? gram_top_svd(x, params.n_components, "TruncatedSVD")
                       : randomized_svd(x, params.n_components, params.n_oversamples, params.n_iter,
                                        params.random_state);
  svd_flip_v(svd);
  TruncatedSVDModel model;
  model.components = svd.vt;
  model.singular_values = svd.s;
  const int64_t k = svd.vt.rows;
  // Variances (ddof 0) of the projected data and of every input column.
  const double n = static_cast<double>(x.rows);
  auto column_variance = [&](const Matrix& m, int64_t j) {
    double mean = 0, sq = 0;
    for (int64_t i = 0; i < m.rows; ++i) mean += m(i, j);
    mean /= n;
    for (int64_t i = 0; i < m.rows; ++i) sq += (m(i, j) - mean) * (m(i, j) - mean);
    return sq / n;
  };
  Matrix z = detail::matmul(x, false, svd.vt, true);
  double total = 0;
  for (int64_t j = 0; j < x.cols; ++j) total += column_variance(x, j);
  for (int64_t j = 0; j < k; ++j) {
    const double v = column_variance(z, j);
    model.explained_variance.push_back(v);
    model.explained_variance_ratio.push_back(total > 0 ? v / total : 0.0);
  }
  return model;
}

Matrix TruncatedSVDModel::transform(const Matrix& x) const {
  check_predict_input(x, n_features(), "TruncatedSVD");
  return detail::matmul(x, false, components, true);
}

Matrix TruncatedSVDModel::inverse_transform(const Matrix& z) const {
  check_predict_input(z, components.rows, "TruncatedSVD inverse_transform");
  return detail::matmul(z, false, components, false);
}

void TruncatedSVDModel::save(ArchiveWriter& out) const {
  out.matrix(components);
  out.vec(explained_variance);
  out.vec(explained_variance_ratio);
  out.vec(singular_values);
}

TruncatedSVDModel TruncatedSVDModel::load(ArchiveReader& in) {
  TruncatedSVDModel m;
  m.components = in.matrix();
  m.explained_variance = in.vec();
  m.explained_variance_ratio = in.vec();
  m.singular_values = in.vec();
  if (m.components.rows < 1 || m.components.cols < 1) {
    throw Error("TruncatedSVD: model file is corrupt");
  }
  check_vector_size(m.explained_variance, m.components.rows, "TruncatedSVD");
  check_vector_size(m.explained_variance_ratio, m.components.rows, "TruncatedSVD");
  check_vector_size(m.singular_values, m.components.rows, "TruncatedSVD");
  for (double v : m.components.data)
    if (!std::isfinite(v)) throw Error("TruncatedSVD: model file is corrupt (non-finite)");
  return m;
}

// ---- registry

namespace {

uint64_t seed_param(ParamMap& p) {
  const auto seed = p.get_optional_int("random_state", std::nullopt);
  if (seed && *seed < 0) throw Error("random_state must be a non-negative integer or None");
  return seed ? static_cast<uint64_t>(*seed) : 0;
}

PCA parse_pca(ParamMap& p) {
  PCAParams params;
  if (p.has("n_components")) {
    const std::string v = p.get_string("n_components", "None");
    if (v == "mle") {
      params.n_components_mle = true;
    } else if (v != "None") {
      int64_t as_int = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), as_int);
      if (ec == std::errc() && ptr == v.data() + v.size()) {
        params.n_components = as_int;
      } else {
        ParamMap again(std::map<std::string, std::string>{{"n_components", v}});
        params.n_components_fraction = again.get_double("n_components", 0);
      }
    }
  }
  params.svd_solver = p.get_string("svd_solver", "auto");
  params.whiten = p.get_bool("whiten", false);
  params.iterated_power = p.get_string("iterated_power", "auto");
  params.n_oversamples = p.get_int("n_oversamples", 10);
  params.random_state = seed_param(p);
  return PCA{params};
}

TruncatedSVD parse_truncated_svd(ParamMap& p) {
  TruncatedSVDParams params;
  params.n_components = p.get_int("n_components", 2);
  params.algorithm = p.get_string("algorithm", "randomized");
  params.n_iter = p.get_int("n_iter", 5);
  params.n_oversamples = p.get_int("n_oversamples", 10);
  params.random_state = seed_param(p);
  return TruncatedSVD{params};
}

const AlgorithmRegistrar kPCA{estimator_algorithm("PCA", Task::Transform, parse_pca)};
const AlgorithmRegistrar kTruncatedSVD{
    estimator_algorithm("TruncatedSVD", Task::Transform, parse_truncated_svd)};

}  // namespace

}  // namespace ember::ml
