#include "ember/ml/preprocessing.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace ember::ml {
namespace {

Vector column(const Matrix& x, int64_t c) {
  Vector v(static_cast<size_t>(x.rows));
  for (int64_t i = 0; i < x.rows; ++i) v[static_cast<size_t>(i)] = x(i, c);
  return v;
}

// scikit-learn's _handle_zeros_in_scale: constant features keep scale 1. "Zero" includes
// values within 10 ulps of 0 relative to the statistic they were derived from.
double nonzero_scale(double s) {
  return s == 0.0 ? 1.0 : s;
}

}  // namespace

Matrix AffineScalerModel::transform(const Matrix& x) const {
  check_predict_input(x, n_features(), "scaler");
  Matrix out(x.rows, x.cols);
  for (int64_t i = 0; i < x.rows; ++i) {
    for (int64_t j = 0; j < x.cols; ++j) {
      out(i, j) = (x(i, j) - offset[static_cast<size_t>(j)]) / scale[static_cast<size_t>(j)];
    }
  }
  return out;
}

Matrix AffineScalerModel::inverse_transform(const Matrix& x) const {
  check_predict_input(x, n_features(), "scaler");
  Matrix out(x.rows, x.cols);
  for (int64_t i = 0; i < x.rows; ++i) {
    for (int64_t j = 0; j < x.cols; ++j) {
      out(i, j) = x(i, j) * scale[static_cast<size_t>(j)] + offset[static_cast<size_t>(j)];
    }
  }
  return out;
}

void AffineScalerModel::save(ArchiveWriter& out) const {
  out.vec(offset);
  out.vec(scale);
}

AffineScalerModel AffineScalerModel::load(ArchiveReader& in) {
  AffineScalerModel m;
  m.offset = in.vec();
  m.scale = in.vec();
  if (m.offset.empty() || m.offset.size() != m.scale.size()) {
    throw Error("model file is corrupt (scaler shapes)");
  }
  for (double s : m.scale) {
    if (!(s != 0) || !std::isfinite(s)) throw Error("model file is corrupt (scaler scale)");
  }
  return m;
}

AffineScalerModel StandardScaler::fit(const Matrix& x) const {
  check_fit_input(x, nullptr, "StandardScaler");
  AffineScalerModel m{Vector(static_cast<size_t>(x.cols), 0.0),
                      Vector(static_cast<size_t>(x.cols), 1.0)};
  for (int64_t j = 0; j < x.cols; ++j) {
    double mean = 0;
    for (int64_t i = 0; i < x.rows; ++i) mean += x(i, j);
    mean /= static_cast<double>(x.rows);
    double ss = 0;
    for (int64_t i = 0; i < x.rows; ++i) ss += (x(i, j) - mean) * (x(i, j) - mean);
    if (params.with_mean) m.offset[static_cast<size_t>(j)] = mean;
    if (params.with_std)
      m.scale[static_cast<size_t>(j)] = nonzero_scale(std::sqrt(ss / static_cast<double>(x.rows)));
  }
  return m;
}

void MinMaxScalerParams::validate() const {
  if (!(range_min < range_max)) {
    throw Error("MinMaxScaler: feature_range minimum must be smaller than its maximum");
  }
}

AffineScalerModel MinMaxScaler::fit(const Matrix& x) const {
  params.validate();
  check_fit_input(x, nullptr, "MinMaxScaler");
  // x' = x * s + (lo - min * s) with s = (hi - lo) / range, written as (x - offset) / scale.
  AffineScalerModel m{Vector(static_cast<size_t>(x.cols)), Vector(static_cast<size_t>(x.cols))};
  for (int64_t j = 0; j < x.cols; ++j) {
    double lo = x(0, j), hi = x(0, j);
    for (int64_t i = 1; i < x.rows; ++i) {
      lo = std::min(lo, x(i, j));
      hi = std::max(hi, x(i, j));
    }
    const double s = (params.range_max - params.range_min) / nonzero_scale(hi - lo);
    const double min_term = params.range_min - lo * s;
    m.scale[static_cast<size_t>(j)] = 1.0 / s;
    m.offset[static_cast<size_t>(j)] = -min_term / s;
  }
  return m;
}

void RobustScalerParams::validate() const {
  if (!(q_min >= 0 && q_min <= q_max && q_max <= 100)) {
    throw Error("RobustScaler: quantile_range must satisfy 0 <= min <= max <= 100");
  }
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) throw Error("percentile of no values");
  std::sort(values.begin(), values.end());
  const double pos = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  // numpy's _lerp: a + (b - a) * t, switched to b - (b - a) * (1 - t) for t >= 0.5.
  const double a = values[lo], b = values[hi];
  return frac >= 0.5 ? b - (b - a) * (1 - frac) : a + (b - a) * frac;
}

AffineScalerModel RobustScaler::fit(const Matrix& x) const {
  params.validate();
  check_fit_input(x, nullptr, "RobustScaler");
  AffineScalerModel m{Vector(static_cast<size_t>(x.cols), 0.0),
                      Vector(static_cast<size_t>(x.cols), 1.0)};
  for (int64_t j = 0; j < x.cols; ++j) {
    const Vector v = column(x, j);
    if (params.with_centering) m.offset[static_cast<size_t>(j)] = percentile(v, 50.0);
    if (params.with_scaling) {
      m.scale[static_cast<size_t>(j)] =
          nonzero_scale(percentile(v, params.q_max) - percentile(v, params.q_min));
    }
  }
  return m;
}

// ---- one-hot

int64_t OneHotEncoderModel::n_output_features() const {
  int64_t n = 0;
  for (const auto& c : categories) n += static_cast<int64_t>(c.size());
  return n;
}

OneHotEncoderModel OneHotEncoder::fit(const Matrix& x) const {
  check_fit_input(x, nullptr, "OneHotEncoder");
  OneHotEncoderModel m;
  m.ignore_unknown = params.ignore_unknown;
  for (int64_t j = 0; j < x.cols; ++j) {
    const Vector v = column(x, j);
    std::set<double> distinct(v.begin(), v.end());
    m.categories.emplace_back(distinct.begin(), distinct.end());
  }
  return m;
}

Matrix OneHotEncoderModel::transform(const Matrix& x) const {
  check_predict_input(x, n_features(), "OneHotEncoder");
  Matrix out(x.rows, n_output_features());
  int64_t base = 0;
  for (int64_t j = 0; j < x.cols; ++j) {
    const Vector& cats = categories[static_cast<size_t>(j)];
    for (int64_t i = 0; i < x.rows; ++i) {
      auto it = std::lower_bound(cats.begin(), cats.end(), x(i, j));
      if (it == cats.end() || *it != x(i, j)) {
        if (ignore_unknown) continue;
        throw Error("OneHotEncoder: unknown category " + std::to_string(x(i, j)) + " in feature " +
                    std::to_string(j) + " at row " + std::to_string(i));
      }
      out(i, base + (it - cats.begin())) = 1.0;
    }
    base += static_cast<int64_t>(cats.size());
  }
  return out;
}

void OneHotEncoderModel::save(ArchiveWriter& out) const {
  out.u64(ignore_unknown ? 1 : 0);
  out.u64(categories.size());
  for (const auto& c : categories) out.vec(c);
}

OneHotEncoderModel OneHotEncoderModel::load(ArchiveReader& in) {
  OneHotEncoderModel m;
  m.ignore_unknown = in.u64() != 0;
  const uint64_t n = in.count(8);
  for (uint64_t j = 0; j < n; ++j) {
    m.categories.push_back(in.vec());
    if (m.categories.back().empty() ||
        !std::is_sorted(m.categories.back().begin(), m.categories.back().end())) {
      throw Error("model file is corrupt (one-hot categories)");
    }
  }
  if (m.categories.empty()) throw Error("model file is corrupt (one-hot categories)");
  return m;
}

// ---- polynomial features

void PolynomialFeaturesParams::validate() const {
  if (degree < 0 || degree > 64) throw Error("PolynomialFeatures: degree must be in [0, 64]");
}

PolynomialFeaturesModel PolynomialFeatures::fit(const Matrix& x) const {
  params.validate();
  check_fit_input(x, nullptr, "PolynomialFeatures");
  constexpr size_t kMaxOutputs = 1000000;
  PolynomialFeaturesModel m;
  m.n_features_in = x.cols;
  if (params.include_bias) m.powers.push_back({});
  std::vector<int64_t> combo;
  for (int64_t deg = 1; deg <= params.degree; ++deg) {
    // Non-decreasing (with replacement) or strictly increasing index tuples, lexicographic.
    const int64_t step = params.interaction_only ? 1 : 0;
    if (params.interaction_only && deg > x.cols) break;
    combo.assign(static_cast<size_t>(deg), 0);
    for (int64_t i = 0; i < deg; ++i) combo[static_cast<size_t>(i)] = i * step;
    while (true) {
      m.powers.push_back(combo);
      if (m.powers.size() > kMaxOutputs) {
        throw Error("PolynomialFeatures: more than 1e6 output features");
      }
      // Advance: rightmost position that can still grow.
      int64_t pos = deg - 1;
      while (pos >= 0 && combo[static_cast<size_t>(pos)] >= x.cols - 1 - (deg - 1 - pos) * step)
        --pos;
      if (pos < 0) break;
      ++combo[static_cast<size_t>(pos)];
      for (int64_t i = pos + 1; i < deg; ++i)
        combo[static_cast<size_t>(i)] = combo[static_cast<size_t>(i - 1)] + step;
    }
  }
  if (m.powers.empty()) throw Error("PolynomialFeatures: no output features");
  return m;
}

Matrix PolynomialFeaturesModel::transform(const Matrix& x) const {
  check_predict_input(x, n_features_in, "PolynomialFeatures");
  Matrix out(x.rows, static_cast<int64_t>(powers.size()));
  for (int64_t i = 0; i < x.rows; ++i) {
    for (size_t c = 0; c < powers.size(); ++c) {
      double v = 1.0;
      for (int64_t f : powers[c]) v *= x(i, f);
      out(i, static_cast<int64_t>(c)) = v;
    }
  }
  return out;
}

void PolynomialFeaturesModel::save(ArchiveWriter& out) const {
  out.i64(n_features_in);
  out.u64(powers.size());
  for (const auto& p : powers) out.ivec(p);
}

PolynomialFeaturesModel PolynomialFeaturesModel::load(ArchiveReader& in) {
  PolynomialFeaturesModel m;
  m.n_features_in = in.i64();
  const uint64_t n = in.count(8);
  for (uint64_t c = 0; c < n; ++c) {
    m.powers.push_back(in.ivec());
    for (int64_t f : m.powers.back()) {
      if (f < 0 || f >= m.n_features_in) throw Error("model file is corrupt (polynomial terms)");
    }
  }
  if (m.n_features_in < 1 || m.powers.empty()) {
    throw Error("model file is corrupt (polynomial terms)");
  }
  return m;
}

// ---- label encoder

LabelEncoderModel LabelEncoder::fit(const Vector& y) const {
  if (y.empty()) throw Error("LabelEncoder: empty input");
  for (double v : y) {
    if (!std::isfinite(v)) throw Error("LabelEncoder: non-finite label");
  }
  std::set<double> distinct(y.begin(), y.end());
  return {Vector(distinct.begin(), distinct.end())};
}

Vector LabelEncoderModel::transform(const Vector& y) const {
  Vector out(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    auto it = std::lower_bound(classes.begin(), classes.end(), y[i]);
    if (it == classes.end() || *it != y[i]) {
      throw Error("LabelEncoder: y contains previously unseen label " + std::to_string(y[i]));
    }
    out[i] = static_cast<double>(it - classes.begin());
  }
  return out;
}

Vector LabelEncoderModel::inverse_transform(const Vector& indices) const {
  Vector out(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const double v = indices[i];
    if (!(v >= 0) || v != std::floor(v) || v >= static_cast<double>(classes.size())) {
      throw Error("LabelEncoder: index out of range");
    }
    out[i] = classes[static_cast<size_t>(v)];
  }
  return out;
}

// ---- registry

namespace {

std::pair<double, double> parse_pair(ParamMap& p, const std::string& key, double a, double b) {
  const std::string text = p.get_string(key, "");
  if (text.empty()) return {a, b};
  // Accepts "(0, 1)", "0,1" or "0:1".
  std::string cleaned;
  for (char c : text) {
    if (c != '(' && c != ')' && c != '[' && c != ']' && c != ' ') cleaned += c;
  }
  const size_t sep = cleaned.find_first_of(",:");
  if (sep == std::string::npos) throw Error("parameter " + key + "=" + text + ": expected (a, b)");
  ParamMap two({{"a", cleaned.substr(0, sep)}, {"b", cleaned.substr(sep + 1)}});
  try {
    return {two.get_double("a", 0), two.get_double("b", 0)};
  } catch (const Error&) {
    throw Error("parameter " + key + "=" + text + ": expected two numbers (a, b)");
  }
}

StandardScaler parse_standard_scaler(ParamMap& p) {
  StandardScaler est;
  est.params.with_mean = p.get_bool("with_mean", true);
  est.params.with_std = p.get_bool("with_std", true);
  return est;
}

MinMaxScaler parse_min_max_scaler(ParamMap& p) {
  MinMaxScaler est;
  std::tie(est.params.range_min, est.params.range_max) = parse_pair(p, "feature_range", 0, 1);
  return est;
}

RobustScaler parse_robust_scaler(ParamMap& p) {
  RobustScaler est;
  est.params.with_centering = p.get_bool("with_centering", true);
  est.params.with_scaling = p.get_bool("with_scaling", true);
  std::tie(est.params.q_min, est.params.q_max) = parse_pair(p, "quantile_range", 25, 75);
  return est;
}

OneHotEncoder parse_one_hot_encoder(ParamMap& p) {
  OneHotEncoder est;
  const std::string unknown = p.get_string("handle_unknown", "error");
  if (unknown != "error" && unknown != "ignore") {
    throw Error("OneHotEncoder: handle_unknown must be 'error' or 'ignore'");
  }
  est.params.ignore_unknown = unknown == "ignore";
  return est;
}

PolynomialFeatures parse_polynomial_features(ParamMap& p) {
  PolynomialFeatures est;
  est.params.degree = p.get_int("degree", 2);
  est.params.interaction_only = p.get_bool("interaction_only", false);
  est.params.include_bias = p.get_bool("include_bias", true);
  return est;
}

const AlgorithmRegistrar kStandardScaler{
    estimator_algorithm("StandardScaler", Task::Transform, parse_standard_scaler)};
const AlgorithmRegistrar kMinMaxScaler{
    estimator_algorithm("MinMaxScaler", Task::Transform, parse_min_max_scaler)};
const AlgorithmRegistrar kRobustScaler{
    estimator_algorithm("RobustScaler", Task::Transform, parse_robust_scaler)};
const AlgorithmRegistrar kOneHotEncoder{
    estimator_algorithm("OneHotEncoder", Task::Transform, parse_one_hot_encoder)};
const AlgorithmRegistrar kPolynomialFeatures{
    estimator_algorithm("PolynomialFeatures", Task::Transform, parse_polynomial_features)};

}  // namespace
}  // namespace ember::ml
