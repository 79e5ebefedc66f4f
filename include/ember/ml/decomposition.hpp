#pragma once
// Linear dimensionality reduction: PCA (centred SVD) and TruncatedSVD (uncentred, randomized),
// following scikit-learn's definitions (explained_variance_, svd_flip sign convention).
#include <cstdint>
#include <optional>
#include <string>

#include "ember/ml/common.hpp"

namespace ember::ml {

// Dense SVD helpers built on LAPACK (shared with other parts of this library area).
struct ThinSvd {
  Matrix u;   // rows x k
  Vector s;   // k, descending
  Matrix vt;  // k x cols
};
// Full thin SVD of `a` through dgesdd.
ThinSvd lapack_svd(const Matrix& a);
// Halko et al. randomized SVD: `n_components + n_oversamples` random directions, `n_iter`
// power iterations with QR re-orthonormalisation; seeded, deterministic.
ThinSvd randomized_svd(const Matrix& a, int64_t n_components, int64_t n_oversamples, int64_t n_iter,
                       uint64_t seed);
// scikit-learn's svd_flip(u_based_decision=False): each row of vt gets its largest-|value|
// entry positive; u's columns follow.
void svd_flip_v(ThinSvd& svd);

struct PCAParams {
  // n_components: nullopt -> min(n_samples, n_features) (minus one for arpack); integer >= 1;
  // a fraction in (0, 1) of variance to keep (n_components_fraction); or Minka's MLE of the
  // dimension ("mle", n_components_mle; needs n_samples >= n_features).
  std::optional<int64_t> n_components;
  std::optional<double> n_components_fraction;
  bool n_components_mle = false;
  // auto | full | covariance_eigh | randomized | arpack. arpack computes the top n_components
  // eigenpairs of the Gram matrix with LAPACK (dsyevr), the problem ARPACK solves iteratively;
  // like scikit-learn's it needs n_components < min(n_samples, n_features).
  std::string svd_solver = "auto";
  bool whiten = false;
  std::string iterated_power = "auto";  // "auto" or an integer
  int64_t n_oversamples = 10;
  uint64_t random_state = 0;
  void validate() const;
};

struct PCAModel {
  Matrix components;  // n_components x n_features
  Vector mean;
  Vector explained_variance;
  Vector explained_variance_ratio;
  Vector singular_values;
  double noise_variance = 0;
  int64_t n_samples = 0;
  bool whiten = false;
  std::string solver_used;

  int64_t n_features() const { return components.cols; }
  int64_t n_components() const { return components.rows; }
  Matrix transform(const Matrix& x) const;
  Matrix inverse_transform(const Matrix& z) const;
  void save(ArchiveWriter& out) const;
  static PCAModel load(ArchiveReader& in);
};

struct PCA {
  PCAParams params;
  PCAModel fit(const Matrix& x) const;
};

struct TruncatedSVDParams {
  int64_t n_components = 2;
  std::string algorithm = "randomized";  // randomized | arpack (top eigenpairs, as for PCA)
  int64_t n_iter = 5;
  int64_t n_oversamples = 10;
  uint64_t random_state = 0;
  void validate() const;
};

struct TruncatedSVDModel {
  Matrix components;  // n_components x n_features
  Vector explained_variance;
  Vector explained_variance_ratio;
  Vector singular_values;

  int64_t n_features() const { return components.cols; }
  Matrix transform(const Matrix& x) const;
  Matrix inverse_transform(const Matrix& z) const;
  void save(ArchiveWriter& out) const;
  static TruncatedSVDModel load(ArchiveReader& in);
};

struct TruncatedSVD {
  TruncatedSVDParams params;
  TruncatedSVDModel fit(const Matrix& x) const;
};

}  // namespace ember::ml
