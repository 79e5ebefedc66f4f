#include "ember/ml/metrics.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <numeric>

#include "ember/base/thread_pool.hpp"

namespace ember::ml {
namespace {

void check_same_length(const Vector& a, const Vector& b, const char* who) {
  if (a.size() != b.size()) {
    throw Error(std::string(who) + ": inputs have different lengths (" + std::to_string(a.size()) +
                " and " + std::to_string(b.size()) + ")");
  }
  if (a.empty()) throw Error(std::string(who) + ": empty input");
}

int64_t class_index(double v, const char* who) {
  if (!(v >= 0) || v != std::floor(v) || v > 1e9) {
    throw Error(std::string(who) + ": labels must be class indices 0..K-1");
  }
  return static_cast<int64_t>(v);
}

int64_t n_classes_of(const Vector& a, const Vector& b, const char* who) {
  int64_t k = 0;
  for (double v : a) k = std::max(k, class_index(v, who) + 1);
  for (double v : b) k = std::max(k, class_index(v, who) + 1);
  return k;
}

struct PerClass {
  Vector tp, predicted, actual;
};

PerClass per_class(const Vector& y_true, const Vector& y_pred, const char* who) {
  check_same_length(y_true, y_pred, who);
  const int64_t k = n_classes_of(y_true, y_pred, who);
  PerClass c{Vector(static_cast<size_t>(k)), Vector(static_cast<size_t>(k)),
             Vector(static_cast<size_t>(k))};
  for (size_t i = 0; i < y_true.size(); ++i) {
    const auto t = static_cast<size_t>(y_true[i]);
    const auto p = static_cast<size_t>(y_pred[i]);
    c.actual[t] += 1;
    c.predicted[p] += 1;
    if (t == p) c.tp[t] += 1;
  }
  return c;
}

double ratio(double a, double b) {
  return b == 0 ? 0.0 : a / b;
}

enum class Kind { Precision, Recall, F1 };

double prf(const Vector& y_true, const Vector& y_pred, Average average, int64_t pos_label,
           Kind kind) {
  const PerClass c = per_class(y_true, y_pred, "precision/recall/f1");
  auto score = [&](double tp, double predicted, double actual) {
    const double p = ratio(tp, predicted), r = ratio(tp, actual);
    if (kind == Kind::Precision) return p;
    if (kind == Kind::Recall) return r;
    // F1 = 2 tp / (predicted + actual), 0 when both are 0.
    return ratio(2 * tp, predicted + actual);
  };
  const size_t k = c.tp.size();
  switch (average) {
    case Average::Binary: {
      if (pos_label < 0) throw Error("pos_label must be >= 0");
      if (k > 2) throw Error("average=binary needs binary labels; choose micro, macro or weighted");
      const auto p = static_cast<size_t>(pos_label);
      if (p >= k) return 0.0;
      return score(c.tp[p], c.predicted[p], c.actual[p]);
    }
    case Average::Micro: {
      const double tp = std::accumulate(c.tp.begin(), c.tp.end(), 0.0);
      return score(tp, static_cast<double>(y_pred.size()), static_cast<double>(y_true.size()));
    }
    case Average::Macro:
    case Average::Weighted: {
      // Labels present in y_true or y_pred (scikit-learn's unique_labels).
      double sum = 0, weight = 0;
      int64_t present = 0;
      for (size_t j = 0; j < k; ++j) {
        if (c.actual[j] == 0 && c.predicted[j] == 0) continue;
        const double s = score(c.tp[j], c.predicted[j], c.actual[j]);
        ++present;
        if (average == Average::Macro) {
          sum += s;
        } else {
          sum += s * c.actual[j];
          weight += c.actual[j];
        }
      }
      return average == Average::Macro ? sum / static_cast<double>(present) : ratio(sum, weight);
    }
  }
  return 0.0;
}

}  // namespace

Average parse_average(std::string_view name) {
  if (name == "micro") return Average::Micro;
  if (name == "macro") return Average::Macro;
  if (name == "weighted") return Average::Weighted;
  if (name == "binary") return Average::Binary;
  throw Error("unknown average '" + std::string(name) + "' (micro, macro, weighted, binary)");
}

double accuracy_score(const Vector& y_true, const Vector& y_pred) {
  check_same_length(y_true, y_pred, "accuracy_score");
  int64_t hits = 0;
  for (size_t i = 0; i < y_true.size(); ++i) hits += y_true[i] == y_pred[i];
  return static_cast<double>(hits) / static_cast<double>(y_true.size());
}

Matrix confusion_matrix(const Vector& y_true, const Vector& y_pred, int64_t n_classes) {
  check_same_length(y_true, y_pred, "confusion_matrix");
  const int64_t k = std::max(n_classes, n_classes_of(y_true, y_pred, "confusion_matrix"));
  Matrix m(k, k);
  for (size_t i = 0; i < y_true.size(); ++i) {
    m(static_cast<int64_t>(y_true[i]), static_cast<int64_t>(y_pred[i])) += 1;
  }
  return m;
}

double precision_score(const Vector& t, const Vector& p, Average a, int64_t pos) {
  return prf(t, p, a, pos, Kind::Precision);
}
double recall_score(const Vector& t, const Vector& p, Average a, int64_t pos) {
  return prf(t, p, a, pos, Kind::Recall);
}
double f1_score(const Vector& t, const Vector& p, Average a, int64_t pos) {
  return prf(t, p, a, pos, Kind::F1);
}

double roc_auc_binary(const Vector& y_true, const Vector& y_score) {
  check_same_length(y_true, y_score, "roc_auc_score");
  double positives = 0, negatives = 0;
  for (double v : y_true) {
    if (v != 0 && v != 1) throw Error("roc_auc_score: binary labels must be 0 or 1");
    (v == 1 ? positives : negatives) += 1;
  }
  if (positives == 0 || negatives == 0) {
    throw Error("roc_auc_score: only one class present in y_true; ROC AUC is undefined");
  }
  // Sweep thresholds from the highest score down; tied scores move diagonally (trapezoid).
  std::vector<size_t> order(y_true.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return y_score[a] > y_score[b]; });
  double area = 0, tp = 0;
  size_t i = 0;
  while (i < order.size()) {
    const double s = y_score[order[i]];
    double dtp = 0, dfp = 0;
    while (i < order.size() && y_score[order[i]] == s) {
      (y_true[order[i]] == 1 ? dtp : dfp) += 1;
      ++i;
    }
    area += dfp * (tp + 0.5 * dtp);
    tp += dtp;
  }
  return area / (positives * negatives);
}

double roc_auc_score(const Vector& y_true, const Matrix& proba) {
  if (static_cast<int64_t>(y_true.size()) != proba.rows) {
    throw Error("roc_auc_score: y_true and probabilities have different lengths");
  }
  if (proba.cols < 2) throw Error("roc_auc_score: needs at least two probability columns");
  for (double v : y_true) {
    if (class_index(v, "roc_auc_score") >= proba.cols) {
      throw Error("roc_auc_score: label outside the probability columns");
    }
  }
  auto column = [&](int64_t c) {
    Vector s(static_cast<size_t>(proba.rows));
    for (int64_t i = 0; i < proba.rows; ++i) s[static_cast<size_t>(i)] = proba(i, c);
    return s;
  };
  if (proba.cols == 2) return roc_auc_binary(y_true, column(1));
  double sum = 0;
  for (int64_t c = 0; c < proba.cols; ++c) {
    Vector binary(y_true.size());
    for (size_t i = 0; i < y_true.size(); ++i) binary[i] = y_true[i] == static_cast<double>(c);
    sum += roc_auc_binary(binary, column(c));
  }
  return sum / static_cast<double>(proba.cols);
}

double log_loss(const Vector& y_true, const Matrix& proba) {
  if (static_cast<int64_t>(y_true.size()) != proba.rows || y_true.empty()) {
    throw Error("log_loss: y_true and probabilities have different lengths");
  }
  const double eps = DBL_EPSILON;
  double sum = 0;
  for (int64_t i = 0; i < proba.rows; ++i) {
    const int64_t t = class_index(y_true[static_cast<size_t>(i)], "log_loss");
    if (t >= proba.cols) throw Error("log_loss: label outside the probability columns");
    const double p = std::clamp(proba(i, t), eps, 1 - eps);
    sum -= std::log(p);
  }
  return sum / static_cast<double>(proba.rows);
}

double mean_squared_error(const Vector& t, const Vector& p) {
  check_same_length(t, p, "mean_squared_error");
  double s = 0;
  for (size_t i = 0; i < t.size(); ++i) s += (t[i] - p[i]) * (t[i] - p[i]);
  return s / static_cast<double>(t.size());
}

double mean_absolute_error(const Vector& t, const Vector& p) {
  check_same_length(t, p, "mean_absolute_error");
  double s = 0;
  for (size_t i = 0; i < t.size(); ++i) s += std::fabs(t[i] - p[i]);
  return s / static_cast<double>(t.size());
}

double r2_score(const Vector& t, const Vector& p) {
  check_same_length(t, p, "r2_score");
  const double mean = std::accumulate(t.begin(), t.end(), 0.0) / static_cast<double>(t.size());
  double ss_res = 0, ss_tot = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    ss_res += (t[i] - p[i]) * (t[i] - p[i]);
    ss_tot += (t[i] - mean) * (t[i] - mean);
  }
  // scikit-learn: constant y_true gives 1 for a perfect fit, else 0.
  if (ss_tot == 0) return ss_res == 0 ? 1.0 : 0.0;
  return 1.0 - ss_res / ss_tot;
}

double silhouette_score(const Matrix& x, const Vector& labels) {
  if (static_cast<int64_t>(labels.size()) != x.rows || x.rows < 2) {
    throw Error("silhouette_score: labels must match X and X needs at least two rows");
  }
  std::map<double, int64_t> ids;
  for (double v : labels) ids.emplace(v, 0);
  int64_t next = 0;
  for (auto& [label, id] : ids) id = next++;
  const int64_t k = next;
  if (k < 2 || k > x.rows - 1) {
    throw Error("silhouette_score: number of labels is " + std::to_string(k) +
                "; valid values are 2 to n_samples - 1");
  }
  std::vector<int64_t> cluster(labels.size());
  Vector size(static_cast<size_t>(k), 0.0);
  for (size_t i = 0; i < labels.size(); ++i) {
    cluster[i] = ids[labels[i]];
    size[static_cast<size_t>(cluster[i])] += 1;
  }
  Vector s(static_cast<size_t>(x.rows));
  parallel_for(0, x.rows, 16, [&](int64_t lo, int64_t hi) {
    Vector dist_sum(static_cast<size_t>(k));
    for (int64_t i = lo; i < hi; ++i) {
      std::fill(dist_sum.begin(), dist_sum.end(), 0.0);
      for (int64_t j = 0; j < x.rows; ++j) {
        double d2 = 0;
        for (int64_t c = 0; c < x.cols; ++c) {
          const double diff = x(i, c) - x(j, c);
          d2 += diff * diff;
        }
        dist_sum[static_cast<size_t>(cluster[static_cast<size_t>(j)])] += std::sqrt(d2);
      }
      const auto own = static_cast<size_t>(cluster[static_cast<size_t>(i)]);
      if (size[own] <= 1) {
        s[static_cast<size_t>(i)] = 0.0;
        continue;
      }
      const double a = dist_sum[own] / (size[own] - 1);
      double b = INFINITY;
      for (size_t c = 0; c < static_cast<size_t>(k); ++c) {
        if (c != own) b = std::min(b, dist_sum[c] / size[c]);
      }
      s[static_cast<size_t>(i)] = (b - a) / std::max(a, b);
    }
  });
  return std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(x.rows);
}

double adjusted_rand_score(const Vector& labels_true, const Vector& labels_pred) {
  check_same_length(labels_true, labels_pred, "adjusted_rand_score");
  std::map<std::pair<double, double>, double> cells;
  std::map<double, double> rows, cols;
  for (size_t i = 0; i < labels_true.size(); ++i) {
    cells[{labels_true[i], labels_pred[i]}] += 1;
    rows[labels_true[i]] += 1;
    cols[labels_pred[i]] += 1;
  }
  const double n = static_cast<double>(labels_true.size());
  // Special cases as scikit-learn: identical trivial clusterings score 1.
  if (rows.size() == cols.size() &&
      (rows.size() == 1 || (rows.size() == labels_true.size() && cells.size() == rows.size()))) {
    return 1.0;
  }
  auto comb2 = [](double v) { return v * (v - 1) / 2; };
  double sum_cells = 0, sum_rows = 0, sum_cols = 0;
  for (auto& [key, v] : cells) sum_cells += comb2(v);
  for (auto& [key, v] : rows) sum_rows += comb2(v);
  for (auto& [key, v] : cols) sum_cols += comb2(v);
  const double expected = sum_rows * sum_cols / comb2(n);
  const double max_index = 0.5 * (sum_rows + sum_cols);
  if (max_index == expected) return 1.0;
  return (sum_cells - expected) / (max_index - expected);
}

// ---- scorers

namespace {
std::vector<Scorer>& scorers() {
  static std::vector<Scorer> all = [] {
    std::vector<Scorer> s;
    s.push_back({"accuracy", false, true, [](const Vector& t, const Vector& p, const Matrix&) {
                   return accuracy_score(t, p);
                 }});
    for (const char* avg : {"micro", "macro", "weighted"}) {
      const Average a = parse_average(avg);
      s.push_back(
          {std::string("f1_") + avg, false, true,
           [a](const Vector& t, const Vector& p, const Matrix&) { return f1_score(t, p, a); }});
      s.push_back({std::string("precision_") + avg, false, true,
                   [a](const Vector& t, const Vector& p, const Matrix&) {
                     return precision_score(t, p, a);
                   }});
      s.push_back(
          {std::string("recall_") + avg, false, true,
           [a](const Vector& t, const Vector& p, const Matrix&) { return recall_score(t, p, a); }});
    }
    s.push_back({"f1", false, true, [](const Vector& t, const Vector& p, const Matrix&) {
                   return f1_score(t, p, Average::Binary);
                 }});
    s.push_back({"roc_auc", true, true, [](const Vector& t, const Vector&, const Matrix& pr) {
                   if (pr.cols != 2) throw Error("roc_auc needs a binary target (use roc_auc_ovr)");
                   return roc_auc_score(t, pr);
                 }});
    s.push_back({"roc_auc_ovr", true, true, [](const Vector& t, const Vector&, const Matrix& pr) {
                   return roc_auc_score(t, pr);
                 }});
    s.push_back({"neg_log_loss", true, true, [](const Vector& t, const Vector&, const Matrix& pr) {
                   return -log_loss(t, pr);
                 }});
    s.push_back({"r2", false, false,
                 [](const Vector& t, const Vector& p, const Matrix&) { return r2_score(t, p); }});
    s.push_back({"neg_mean_squared_error", false, false,
                 [](const Vector& t, const Vector& p, const Matrix&) {
                   return -mean_squared_error(t, p);
                 }});
    s.push_back({"neg_mean_absolute_error", false, false,
                 [](const Vector& t, const Vector& p, const Matrix&) {
                   return -mean_absolute_error(t, p);
                 }});
    return s;
  }();
  return all;
}
}  // namespace

const Scorer& find_scorer(std::string_view name) {
  for (const Scorer& s : scorers()) {
    if (s.name == name) return s;
  }
  std::string known;
  for (const auto& n : scorer_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown metric '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> scorer_names() {
  std::vector<std::string> names;
  for (const Scorer& s : scorers()) names.push_back(s.name);
  return names;
}

}  // namespace ember::ml
