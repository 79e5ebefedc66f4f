#pragma once
// Evaluation metrics with scikit-learn's definitions. Class labels are indices 0..K-1 given as
// doubles; K is taken from the data unless passed. Undefined ratios (0/0) count as 0, like
// scikit-learn's zero_division default.
#include <string>
#include <string_view>

#include "ember/ml/common.hpp"

namespace ember::ml {

enum class Average { Micro, Macro, Weighted, Binary };
Average parse_average(std::string_view name);

double accuracy_score(const Vector& y_true, const Vector& y_pred);
// Rows: true class, columns: predicted class.
Matrix confusion_matrix(const Vector& y_true, const Vector& y_pred, int64_t n_classes = 0);
// Binary averaging scores class `pos_label` (default 1).
double precision_score(const Vector& y_true, const Vector& y_pred, Average average,
                       int64_t pos_label = 1);
double recall_score(const Vector& y_true, const Vector& y_pred, Average average,
                    int64_t pos_label = 1);
double f1_score(const Vector& y_true, const Vector& y_pred, Average average, int64_t pos_label = 1);
// Binary: y_score is the score of class 1. Ties are handled like scikit-learn (trapezoids).
double roc_auc_binary(const Vector& y_true, const Vector& y_score);
// Probabilities (n x K): binary uses column 1; multiclass is one-vs-rest, macro-averaged.
double roc_auc_score(const Vector& y_true, const Matrix& proba);
// Mean negative log-likelihood; probabilities clipped to [eps, 1-eps] (eps = DBL_EPSILON).
double log_loss(const Vector& y_true, const Matrix& proba);

double mean_squared_error(const Vector& y_true, const Vector& y_pred);
double mean_absolute_error(const Vector& y_true, const Vector& y_pred);
double r2_score(const Vector& y_true, const Vector& y_pred);

// Mean silhouette coefficient with Euclidean distances; labels are cluster ids.
double silhouette_score(const Matrix& x, const Vector& labels);
double adjusted_rand_score(const Vector& labels_true, const Vector& labels_pred);

// Scorer by scikit-learn's scoring name ("accuracy", "f1_macro", "r2",
// "neg_mean_squared_error", "roc_auc", "neg_log_loss", ...). Higher is better.
struct Scorer {
  std::string name;
  bool needs_proba = false;
  bool for_classification = true;
  std::function<double(const Vector& y_true, const Vector& y_pred, const Matrix& proba)> score;
};
const Scorer& find_scorer(std::string_view name);
std::vector<std::string> scorer_names();

}  // namespace ember::ml
