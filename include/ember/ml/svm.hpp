#pragma once
// Support vector machines trained by SMO (libsvm's algorithm: second-order working-set
// selection, shrinking, an LRU cache of kernel rows): SVC (binary and one-vs-one multiclass,
// optional Platt-scaled probabilities with libsvm's internal 5-fold CV and pairwise coupling)
// and epsilon-SVR. Class indices are ordered as scikit-learn orders them, so decision values
// have scikit-learn's signs (binary: positive means class 1).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/ml/common.hpp"

namespace ember::ml {

enum class KernelType { Linear, Poly, Rbf, Sigmoid };
KernelType parse_kernel(const std::string& name);
std::string kernel_name(KernelType k);

struct KernelSpec {
  KernelType type = KernelType::Rbf;
  double gamma = 1.0;  // resolved value
  double coef0 = 0.0;
  int64_t degree = 3;
  double apply(double dot, double sq_norm_a, double sq_norm_b) const;
};

struct SVMCommonParams {
  double C = 1.0;
  std::string kernel = "rbf";
  int64_t degree = 3;
  std::string gamma = "scale";  // scale | auto | a positive number
  double coef0 = 0.0;
  double tol = 1e-3;
  bool shrinking = true;
  double cache_size = 200;  // MB
  int64_t max_iter = -1;    // -1: libsvm's own bound
  void validate(const char* who) const;
  KernelSpec resolve_kernel(const Matrix& x) const;
};

struct SVCParams {
  SVMCommonParams common;
  bool probability = false;
  // Multiclass predict by the largest one-vs-rest decision value instead of pairwise votes,
  // so tied votes go to the more confident class.
  bool break_ties = false;
  uint64_t random_state = 0;
  // "" (None) or "balanced": C of class c scaled by n_samples / (n_classes * count_c).
  std::string class_weight;
  void validate() const;
};

struct SVRParams {
  SVMCommonParams common;
  double epsilon = 0.1;
  void validate() const;
};

// One binary decision function: sum_s coef[s] * K(sv[index[s]], x) - rho.
struct BinaryDecision {
  std::vector<int64_t> sv;  // rows of the model's support-vector matrix
  Vector coef;
  double rho = 0;
  double prob_a = 0, prob_b = 0;  // Platt sigmoid (probability models)
};

struct SVCModel {
  KernelSpec kernel;
  int64_t n_classes = 0;
  Matrix support_vectors;
  std::vector<int64_t> support;    // training row of each support vector
  std::vector<int64_t> n_support;  // per class
  // Pairs (i, j), i < j, in libsvm order (0,1), (0,2), ..., (1,2), ...; positive = class i.
  std::vector<BinaryDecision> pairs;
  bool probability = false;
  bool break_ties = false;  // see SVCParams
  int64_t iterations = 0;   // SMO iterations summed over pairs

  int64_t n_features() const { return support_vectors.cols; }
  // libsvm's raw pairwise decision values (rows x pairs; positive votes for the lower class).
  Matrix pairwise_decision(const Matrix& x) const;
  // scikit-learn's decision_function: binary -> one column, positive means class 1;
  // multiclass -> ovo columns (i<j), positive means class i.
  Matrix decision_function(const Matrix& x) const;
  // scikit-learn's default decision_function_shape='ovr' for multiclass: votes plus
  // confidences squashed into (-1/3, 1/3) (rows x n_classes; binary: as decision_function).
  Matrix decision_function_ovr(const Matrix& x) const;
  Vector predict(const Matrix& x) const;
  Matrix predict_proba(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static SVCModel load(ArchiveReader& in);
};

struct SVC {
  SVCParams params;
  SVCModel fit(const Matrix& x, const Vector& y) const;
};

struct SVRModel {
  KernelSpec kernel;
  Matrix support_vectors;
  std::vector<int64_t> support;
  BinaryDecision decision;
  int64_t iterations = 0;

  int64_t n_features() const { return support_vectors.cols; }
  Vector predict(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static SVRModel load(ArchiveReader& in);
};

struct SVR {
  SVRParams params;
  SVRModel fit(const Matrix& x, const Vector& y) const;
};

// Pairwise coupling of libsvm (Wu, Lin and Weng 2004, method 2): r(i, j) = P(i | i or j).
Vector couple_pairwise_probabilities(const Matrix& r);
// Platt's sigmoid fit on decision values with Lin-Lin-Weng's Newton method; returns (A, B).
std::pair<double, double> fit_platt_sigmoid(const Vector& decision, const std::vector<int>& sign);

}  // namespace ember::ml
