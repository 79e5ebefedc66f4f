#pragma once
// Naive Bayes classifiers with scikit-learn's estimators and defaults (priors from class
// frequencies). y holds class indices 0..K-1; predict_proba rows sum to 1.
#include "ember/ml/common.hpp"

namespace ember::ml {

// Per-class log prior and a joint log-likelihood; shared by the four variants' fitted models.
struct NaiveBayesModel {
  enum class Kind : uint64_t { Gaussian = 1, Multinomial = 2, Bernoulli = 3, Categorical = 4 };
  Kind kind = Kind::Gaussian;
  Vector class_log_prior;  // K
  // Gaussian: theta (K x d) means, var (K x d). Multinomial/Bernoulli: feature_log_prob (K x d)
  // in `a`, Bernoulli log(1-p) in `b`. Categorical: `a` is (K x total categories) log
  // probabilities, feature f's categories starting at category_offset[f].
  Matrix a, b;
  std::vector<int64_t> category_offset;  // Categorical: d + 1 entries
  double binarize = 0.0;                 // Bernoulli
  bool binarize_enabled = true;
  int64_t n_features_in = 0;

  int64_t n_features() const { return n_features_in; }
  int64_t n_classes() const { return static_cast<int64_t>(class_log_prior.size()); }
  Matrix joint_log_likelihood(const Matrix& x) const;
  Matrix predict_proba(const Matrix& x) const;
  Vector predict(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static NaiveBayesModel load(ArchiveReader& in);
};

struct GaussianNBParams {
  double var_smoothing = 1e-9;
  void validate() const;
};
struct GaussianNB {
  GaussianNBParams params;
  NaiveBayesModel fit(const Matrix& x, const Vector& y) const;
};

// X holds non-negative counts.
struct MultinomialNBParams {
  double alpha = 1.0;
  bool fit_prior = true;
  void validate() const;
};
struct MultinomialNB {
  MultinomialNBParams params;
  NaiveBayesModel fit(const Matrix& x, const Vector& y) const;
};

// Features are binarised with x > binarize (binarize = None: X must already be 0/1).
struct BernoulliNBParams {
  double alpha = 1.0;
  bool fit_prior = true;
  std::optional<double> binarize = 0.0;
  void validate() const;
};
struct BernoulliNB {
  BernoulliNBParams params;
  NaiveBayesModel fit(const Matrix& x, const Vector& y) const;
};

// X holds category codes 0..n_categories-1 per feature (non-negative integers).
struct CategoricalNBParams {
  double alpha = 1.0;
  bool fit_prior = true;
  void validate() const;
};
struct CategoricalNB {
  CategoricalNBParams params;
  NaiveBayesModel fit(const Matrix& x, const Vector& y) const;
};

}  // namespace ember::ml
