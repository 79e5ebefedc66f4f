#include "ember/ml/naive_bayes.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ember::ml {
namespace {

struct ClassCounts {
  int64_t k = 0;
  Vector count;  // samples per class
};

ClassCounts class_counts(const Matrix& x, const Vector& y, const char* who) {
  check_fit_input(x, &y, who);
  ClassCounts c;
  c.k = count_classes(y, who);
  c.count.assign(static_cast<size_t>(c.k), 0.0);
  for (double v : y) c.count[static_cast<size_t>(v)] += 1;
  for (int64_t j = 0; j < c.k; ++j) {
    if (c.count[static_cast<size_t>(j)] == 0) {
      throw Error(std::string(who) + ": class " + std::to_string(j) + " has no training samples");
    }
  }
  return c;
}

Vector log_prior(const ClassCounts& c, bool fit_prior) {
  Vector out(static_cast<size_t>(c.k));
  double total = 0;
  for (double v : c.count) total += v;
  for (int64_t j = 0; j < c.k; ++j) {
    out[static_cast<size_t>(j)] = fit_prior
                                      ? std::log(c.count[static_cast<size_t>(j)]) - std::log(total)
                                      : -std::log(static_cast<double>(c.k));
  }
  return out;
}

// Per-class sums of the rows of X (K x d).
Matrix class_feature_sums(const Matrix& x, const Vector& y, int64_t k) {
  Matrix s(k, x.cols);
  for (int64_t i = 0; i < x.rows; ++i) {
    double* row = s.row(static_cast<int64_t>(y[static_cast<size_t>(i)]));
    const double* xi = x.row(i);
    for (int64_t j = 0; j < x.cols; ++j) row[j] += xi[j];
  }
  return s;
}

void check_alpha(double alpha, const char* who) {
  if (!(alpha >= 0)) throw Error(std::string(who) + ": alpha must be >= 0");
}

void check_non_negative(const Matrix& x, const char* who) {
  for (size_t i = 0; i < x.data.size(); ++i) {
    if (x.data[i] < 0) {
      throw Error(std::string(who) + ": negative value in X at row " +
                  std::to_string(static_cast<int64_t>(i) / x.cols) + " (counts must be >= 0)");
    }
  }
}

int64_t category_code(double v, const char* who) {
  if (!(v >= 0) || v != std::floor(v) || v > 1e7) {
    throw Error(std::string(who) + ": features must be category codes 0, 1, 2, ...");
  }
  return static_cast<int64_t>(v);
}

}  // namespace

void GaussianNBParams::validate() const {
  if (!(var_smoothing >= 0)) throw Error("GaussianNB: var_smoothing must be >= 0");
}
void MultinomialNBParams::validate() const {
  check_alpha(alpha, "MultinomialNB");
}
void BernoulliNBParams::validate() const {
  check_alpha(alpha, "BernoulliNB");
}
void CategoricalNBParams::validate() const {
  check_alpha(alpha, "CategoricalNB");
}

NaiveBayesModel GaussianNB::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  const ClassCounts c = class_counts(x, y, "GaussianNB");
  const int64_t d = x.cols;
  NaiveBayesModel m;
  m.kind = NaiveBayesModel::Kind::Gaussian;
  m.n_features_in = d;
  m.class_log_prior = log_prior(c, true);
  m.a = class_feature_sums(x, y, c.k);  // -> means
  for (int64_t j = 0; j < c.k; ++j) {
    for (int64_t f = 0; f < d; ++f) m.a(j, f) /= c.count[static_cast<size_t>(j)];
  }
  // Variances about the class means (two-pass for accuracy), plus var_smoothing times the
  // largest feature variance of the whole X.
  m.b = Matrix(c.k, d);
  for (int64_t i = 0; i < x.rows; ++i) {
    const int64_t j = static_cast<int64_t>(y[static_cast<size_t>(i)]);
    for (int64_t f = 0; f < d; ++f) {
      const double diff = x(i, f) - m.a(j, f);
      m.b(j, f) += diff * diff;
    }
  }
  double max_var = 0;
  for (int64_t f = 0; f < d; ++f) {
    double mean = 0, ss = 0;
    for (int64_t i = 0; i < x.rows; ++i) mean += x(i, f);
    mean /= static_cast<double>(x.rows);
    for (int64_t i = 0; i < x.rows; ++i) ss += (x(i, f) - mean) * (x(i, f) - mean);
    max_var = std::max(max_var, ss / static_cast<double>(x.rows));
  }
  const double epsilon = params.var_smoothing * max_var;
  for (int64_t j = 0; j < c.k; ++j) {
    for (int64_t f = 0; f < d; ++f) {
      m.b(j, f) = m.b(j, f) / c.count[static_cast<size_t>(j)] + epsilon;
      if (!(m.b(j, f) > 0)) {
        throw Error("GaussianNB: feature " + std::to_string(f) +
                    " has zero variance in a class; raise var_smoothing");
      }
    }
  }
  return m;
}

NaiveBayesModel MultinomialNB::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  const ClassCounts c = class_counts(x, y, "MultinomialNB");
  check_non_negative(x, "MultinomialNB");
  NaiveBayesModel m;
  m.kind = NaiveBayesModel::Kind::Multinomial;
  m.n_features_in = x.cols;
  m.class_log_prior = log_prior(c, params.fit_prior);
  m.a = class_feature_sums(x, y, c.k);
  for (int64_t j = 0; j < c.k; ++j) {
    double total = 0;
    for (int64_t f = 0; f < x.cols; ++f) total += m.a(j, f) + params.alpha;
    for (int64_t f = 0; f < x.cols; ++f) {
      m.a(j, f) = std::log(m.a(j, f) + params.alpha) - std::log(total);
    }
  }
  return m;
}

namespace {
Matrix binarized(const Matrix& x, const NaiveBayesModel& m) {
  if (!m.binarize_enabled) return x;
  Matrix b(x.rows, x.cols);
  for (size_t i = 0; i < x.data.size(); ++i) b.data[i] = x.data[i] > m.binarize ? 1.0 : 0.0;
  return b;
}
}  // namespace

NaiveBayesModel BernoulliNB::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  const ClassCounts c = class_counts(x, y, "BernoulliNB");
  NaiveBayesModel m;
  m.kind = NaiveBayesModel::Kind::Bernoulli;
  m.n_features_in = x.cols;
  m.binarize_enabled = params.binarize.has_value();
  m.binarize = params.binarize.value_or(0.0);
  m.class_log_prior = log_prior(c, params.fit_prior);
  m.a = class_feature_sums(x, y, c.k);
  if (!m.binarize_enabled) {
    // Without binarisation BernoulliNB still assumes 0/1 features.
    for (double v : x.data) {
      if (v != 0 && v != 1) throw Error("BernoulliNB: binarize=None needs 0/1 features");
    }
  } else {
    m.a = class_feature_sums(binarized(x, m), y, c.k);
  }
  m.b = Matrix(c.k, x.cols);
  for (int64_t j = 0; j < c.k; ++j) {
    const double denom = std::log(c.count[static_cast<size_t>(j)] + 2 * params.alpha);
    for (int64_t f = 0; f < x.cols; ++f) {
      m.a(j, f) = std::log(m.a(j, f) + params.alpha) - denom;
      m.b(j, f) = std::log1p(-std::exp(m.a(j, f)));
    }
  }
  return m;
}

NaiveBayesModel CategoricalNB::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  const ClassCounts c = class_counts(x, y, "CategoricalNB");
  NaiveBayesModel m;
  m.kind = NaiveBayesModel::Kind::Categorical;
  m.n_features_in = x.cols;
  m.class_log_prior = log_prior(c, params.fit_prior);
  // Categories per feature: max code + 1, as scikit-learn.
  m.category_offset.assign(static_cast<size_t>(x.cols + 1), 0);
  std::vector<int64_t> n_categories(static_cast<size_t>(x.cols), 0);
  for (int64_t i = 0; i < x.rows; ++i) {
    for (int64_t f = 0; f < x.cols; ++f) {
      n_categories[static_cast<size_t>(f)] = std::max(n_categories[static_cast<size_t>(f)],
                                                      category_code(x(i, f), "CategoricalNB") + 1);
    }
  }
  for (int64_t f = 0; f < x.cols; ++f) {
    m.category_offset[static_cast<size_t>(f + 1)] =
        m.category_offset[static_cast<size_t>(f)] + n_categories[static_cast<size_t>(f)];
  }
  m.a = Matrix(c.k, m.category_offset.back());
  for (int64_t i = 0; i < x.rows; ++i) {
    const int64_t j = static_cast<int64_t>(y[static_cast<size_t>(i)]);
    for (int64_t f = 0; f < x.cols; ++f) {
      m.a(j, m.category_offset[static_cast<size_t>(f)] + static_cast<int64_t>(x(i, f))) += 1;
    }
  }
  for (int64_t j = 0; j < c.k; ++j) {
    for (int64_t f = 0; f < x.cols; ++f) {
      const double denom =
          std::log(c.count[static_cast<size_t>(j)] +
                   params.alpha * static_cast<double>(n_categories[static_cast<size_t>(f)]));
      for (int64_t cat = m.category_offset[static_cast<size_t>(f)];
           cat < m.category_offset[static_cast<size_t>(f + 1)]; ++cat) {
        m.a(j, cat) = std::log(m.a(j, cat) + params.alpha) - denom;
      }
    }
  }
  return m;
}

Matrix NaiveBayesModel::joint_log_likelihood(const Matrix& x) const {
  check_predict_input(x, n_features_in, "naive Bayes");
  const int64_t k = n_classes();
  Matrix jll(x.rows, k);
  switch (kind) {
    case Kind::Gaussian: {
      Vector norm(static_cast<size_t>(k), 0.0);
      for (int64_t j = 0; j < k; ++j) {
        for (int64_t f = 0; f < x.cols; ++f)
          norm[static_cast<size_t>(j)] += std::log(2 * std::numbers::pi * b(j, f));
      }
      for (int64_t i = 0; i < x.rows; ++i) {
        for (int64_t j = 0; j < k; ++j) {
          double q = 0;
          for (int64_t f = 0; f < x.cols; ++f) {
            const double diff = x(i, f) - a(j, f);
            q += diff * diff / b(j, f);
          }
          jll(i, j) = class_log_prior[static_cast<size_t>(j)] - 0.5 * norm[static_cast<size_t>(j)] -
                      0.5 * q;
        }
      }
      break;
    }
    case Kind::Multinomial:
    case Kind::Bernoulli: {
      const bool bernoulli = kind == Kind::Bernoulli;
      const Matrix xb = bernoulli ? binarized(x, *this) : x;
      if (!bernoulli) check_non_negative(x, "MultinomialNB");
      Vector neg_sum(static_cast<size_t>(k), 0.0);
      if (bernoulli) {
        for (int64_t j = 0; j < k; ++j) {
          for (int64_t f = 0; f < x.cols; ++f) neg_sum[static_cast<size_t>(j)] += b(j, f);
        }
      }
      for (int64_t i = 0; i < x.rows; ++i) {
        for (int64_t j = 0; j < k; ++j) {
          double s = class_log_prior[static_cast<size_t>(j)] + neg_sum[static_cast<size_t>(j)];
          for (int64_t f = 0; f < x.cols; ++f) {
            s += xb(i, f) * (bernoulli ? a(j, f) - b(j, f) : a(j, f));
          }
          jll(i, j) = s;
        }
      }
      break;
    }
    case Kind::Categorical: {
      for (int64_t i = 0; i < x.rows; ++i) {
        for (int64_t j = 0; j < k; ++j) jll(i, j) = class_log_prior[static_cast<size_t>(j)];
        for (int64_t f = 0; f < x.cols; ++f) {
          const int64_t code = category_code(x(i, f), "CategoricalNB");
          const int64_t width =
              category_offset[static_cast<size_t>(f + 1)] - category_offset[static_cast<size_t>(f)];
          if (code >= width) {
            throw Error("CategoricalNB: feature " + std::to_string(f) + " has category " +
                        std::to_string(code) + ", unseen in training (max " +
                        std::to_string(width - 1) + ")");
          }
          for (int64_t j = 0; j < k; ++j)
            jll(i, j) += a(j, category_offset[static_cast<size_t>(f)] + code);
        }
      }
      break;
    }
  }
  return jll;
}

Matrix NaiveBayesModel::predict_proba(const Matrix& x) const {
  Matrix p = joint_log_likelihood(x);
  for (int64_t i = 0; i < p.rows; ++i) {
    double* row = p.row(i);
    const double mx = *std::max_element(row, row + p.cols);
    double sum = 0;
    for (int64_t j = 0; j < p.cols; ++j) sum += std::exp(row[j] - mx);
    const double lse = mx + std::log(sum);
    for (int64_t j = 0; j < p.cols; ++j) row[j] = std::exp(row[j] - lse);
  }
  return p;
}

Vector NaiveBayesModel::predict(const Matrix& x) const {
  return argmax_rows(joint_log_likelihood(x));
}

void NaiveBayesModel::save(ArchiveWriter& out) const {
  out.u64(static_cast<uint64_t>(kind));
  out.vec(class_log_prior);
  out.matrix(a);
  out.matrix(b);
  out.ivec(category_offset);
  out.f64(binarize);
  out.u64(binarize_enabled ? 1 : 0);
  out.i64(n_features_in);
}

NaiveBayesModel NaiveBayesModel::load(ArchiveReader& in) {
  NaiveBayesModel m;
  const uint64_t kind = in.u64();
  if (kind < 1 || kind > 4) throw Error("model file is corrupt (naive Bayes kind)");
  m.kind = static_cast<Kind>(kind);
  m.class_log_prior = in.vec();
  m.a = in.matrix();
  m.b = in.matrix();
  m.category_offset = in.ivec();
  m.binarize = in.f64();
  m.binarize_enabled = in.u64() != 0;
  m.n_features_in = in.i64();
  const int64_t k = m.n_classes();
  bool ok = k >= 2 && m.n_features_in >= 1 && m.a.rows == k;
  if (ok && m.kind == Kind::Categorical) {
    ok = static_cast<int64_t>(m.category_offset.size()) == m.n_features_in + 1 &&
         m.category_offset.front() == 0 && m.category_offset.back() == m.a.cols &&
         std::is_sorted(m.category_offset.begin(), m.category_offset.end());
  } else if (ok) {
    ok = m.a.cols == m.n_features_in;
    if (ok && m.kind != Kind::Multinomial) ok = m.b.rows == k && m.b.cols == m.n_features_in;
  }
  if (!ok) throw Error("model file is corrupt (naive Bayes shapes)");
  return m;
}

namespace {

GaussianNB parse_gaussian_nb(ParamMap& p) {
  GaussianNB est;
  est.params.var_smoothing = p.get_double("var_smoothing", 1e-9);
  return est;
}

// The discrete models share additive smoothing and the choice of fitted or uniform priors.
template <typename Estimator>
Estimator parse_smoothed_nb(ParamMap& p) {
  Estimator est;
  est.params.alpha = p.get_double("alpha", 1.0);
  est.params.fit_prior = p.get_bool("fit_prior", true);
  return est;
}

BernoulliNB parse_bernoulli_nb(ParamMap& p) {
  BernoulliNB est = parse_smoothed_nb<BernoulliNB>(p);
  est.params.binarize = p.get_optional_double("binarize", 0.0);
  return est;
}

const AlgorithmRegistrar kGaussianNB{
    estimator_algorithm("GaussianNB", Task::Classification, parse_gaussian_nb)};
const AlgorithmRegistrar kMultinomialNB{
    estimator_algorithm("MultinomialNB", Task::Classification, parse_smoothed_nb<MultinomialNB>)};
const AlgorithmRegistrar kBernoulliNB{
    estimator_algorithm("BernoulliNB", Task::Classification, parse_bernoulli_nb)};
const AlgorithmRegistrar kCategoricalNB{
    estimator_algorithm("CategoricalNB", Task::Classification, parse_smoothed_nb<CategoricalNB>)};

}  // namespace
}  // namespace ember::ml
