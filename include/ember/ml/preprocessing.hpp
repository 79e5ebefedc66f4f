#pragma once
// Feature transformers with scikit-learn's definitions (registered as Task::Transform):
// StandardScaler, MinMaxScaler, RobustScaler, OneHotEncoder (numeric category values),
// PolynomialFeatures. LabelEncoder maps target values to indices and back (not registered).
#include <utility>

#include "ember/ml/common.hpp"

namespace ember::ml {

// Per-feature affine map x' = (x - offset) / scale, the fitted form of the three scalers.
struct AffineScalerModel {
  Vector offset;
  Vector scale;

  int64_t n_features() const { return static_cast<int64_t>(offset.size()); }
  Matrix transform(const Matrix& x) const;
  Matrix inverse_transform(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static AffineScalerModel load(ArchiveReader& in);
};

struct StandardScalerParams {
  bool with_mean = true;
  bool with_std = true;
  void validate() const {}
};
struct StandardScaler {
  StandardScalerParams params;
  AffineScalerModel fit(const Matrix& x) const;
};

struct MinMaxScalerParams {
  double range_min = 0.0;  // feature_range=(min, max)
  double range_max = 1.0;
  void validate() const;
};
struct MinMaxScaler {
  MinMaxScalerParams params;
  AffineScalerModel fit(const Matrix& x) const;
};

struct RobustScalerParams {
  bool with_centering = true;
  bool with_scaling = true;
  double q_min = 25.0;  // quantile_range=(q_min, q_max), percent
  double q_max = 75.0;
  void validate() const;
};
struct RobustScaler {
  RobustScalerParams params;
  AffineScalerModel fit(const Matrix& x) const;
};

// Linear-interpolated percentile as numpy.percentile's default method.
double percentile(std::vector<double> values, double q);

struct OneHotEncoderParams {
  bool ignore_unknown = false;  // handle_unknown="ignore" (else "error")
  void validate() const {}
};
struct OneHotEncoderModel {
  std::vector<Vector> categories;  // sorted distinct values per input feature
  bool ignore_unknown = false;

  int64_t n_features() const { return static_cast<int64_t>(categories.size()); }
  int64_t n_output_features() const;
  Matrix transform(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static OneHotEncoderModel load(ArchiveReader& in);
};
struct OneHotEncoder {
  OneHotEncoderParams params;
  OneHotEncoderModel fit(const Matrix& x) const;
};

struct PolynomialFeaturesParams {
  int64_t degree = 2;
  bool interaction_only = false;
  bool include_bias = true;
  void validate() const;
};
struct PolynomialFeaturesModel {
  int64_t n_features_in = 0;
  // Output columns as lists of input feature indices (empty = the bias column), in
  // scikit-learn's order: by degree, then lexicographic combinations.
  std::vector<std::vector<int64_t>> powers;

  int64_t n_features() const { return n_features_in; }
  Matrix transform(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static PolynomialFeaturesModel load(ArchiveReader& in);
};
struct PolynomialFeatures {
  PolynomialFeaturesParams params;
  // Bounded: throws if the output would exceed 1e6 columns.
  PolynomialFeaturesModel fit(const Matrix& x) const;
};

struct LabelEncoderModel {
  Vector classes;  // sorted distinct values
  Vector transform(const Vector& y) const;
  Vector inverse_transform(const Vector& indices) const;
};
struct LabelEncoder {
  LabelEncoderModel fit(const Vector& y) const;
};

}  // namespace ember::ml
