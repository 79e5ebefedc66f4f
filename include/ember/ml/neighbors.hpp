#pragma once
// Exact nearest-neighbour search (brute force through BLAS, KD-tree, ball tree) and the
// k-nearest-neighbour classifier and regressor, following scikit-learn. Neighbours are ordered
// by (distance, training index), so ties resolve to the lower index whatever the algorithm.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/ml/common.hpp"

namespace ember::ml {

enum class Metric { Euclidean, Manhattan, Chebyshev, Minkowski, Cosine, Hamming };

struct MetricSpec {
  Metric metric = Metric::Euclidean;
  double p = 2;  // Minkowski only
};
// scikit-learn metric names (euclidean, l2, manhattan, cityblock, l1, chebyshev, infinity,
// minkowski, cosine, hamming); minkowski with p=1/2/inf becomes manhattan/euclidean/chebyshev.
MetricSpec parse_metric(const std::string& name, double p);
std::string metric_name(const MetricSpec& m);
// Distance between two rows of length n (the reference used by the trees).
double metric_distance(const MetricSpec& m, const double* a, const double* b, int64_t n);

enum class NeighborAlgorithm { Auto, Brute, KDTree, BallTree };
NeighborAlgorithm parse_neighbor_algorithm(const std::string& name);
std::string neighbor_algorithm_name(NeighborAlgorithm a);

struct KNeighborsResult {
  int64_t k = 0;
  std::vector<double> distances;  // rows x k, ascending
  std::vector<int64_t> indices;   // rows x k
};

// Exact neighbour index over a fixed training set. Thread-safe for concurrent queries.
class NeighborIndex {
 public:
  // `n_neighbors_hint` (0 if unknown) feeds the 'auto' choice like scikit-learn's.
  NeighborIndex(Matrix data, MetricSpec metric, NeighborAlgorithm algorithm, int64_t leaf_size,
                int64_t n_neighbors_hint = 0);
  ~NeighborIndex();
  NeighborIndex(NeighborIndex&&) noexcept;
  NeighborIndex& operator=(NeighborIndex&&) noexcept;

  KNeighborsResult kneighbors(const Matrix& queries, int64_t k) const;
  // All training indices within distance <= radius of each query, ascending index order.
  std::vector<std::vector<int64_t>> radius_neighbors(const Matrix& queries, double radius) const;

  NeighborAlgorithm algorithm() const { return resolved_; }
  const Matrix& data() const { return data_; }
  const MetricSpec& metric() const { return metric_; }
  int64_t leaf_size() const { return leaf_size_; }

  struct Tree;  // implementation detail (kd_tree / ball_tree)

 private:
  Matrix data_;
  MetricSpec metric_;
  NeighborAlgorithm requested_;
  NeighborAlgorithm resolved_;
  int64_t leaf_size_;
  std::unique_ptr<Tree> tree_;
};

// Brute-force pairwise distances (queries x data), euclidean via ||x||^2 + ||y||^2 - 2 x.y GEMM.
Matrix pairwise_distances(const Matrix& queries, const Matrix& data, const MetricSpec& metric);

struct KNeighborsParams {
  int64_t n_neighbors = 5;
  std::string weights = "uniform";  // uniform | distance
  std::string algorithm = "auto";
  int64_t leaf_size = 30;
  std::string metric = "minkowski";
  double p = 2;
  void validate() const;
};

struct KNeighborsClassifierModel {
  KNeighborsParams params;
  std::shared_ptr<NeighborIndex> index;
  std::vector<int64_t> labels;  // class index per training row
  int64_t n_classes = 0;

  int64_t n_features() const { return index->data().cols; }
  Vector predict(const Matrix& x) const;
  Matrix predict_proba(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static KNeighborsClassifierModel load(ArchiveReader& in);
};

struct KNeighborsClassifier {
  KNeighborsParams params;
  KNeighborsClassifierModel fit(const Matrix& x, const Vector& y) const;
};

struct KNeighborsRegressorModel {
  KNeighborsParams params;
  std::shared_ptr<NeighborIndex> index;
  Vector targets;

  int64_t n_features() const { return index->data().cols; }
  Vector predict(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static KNeighborsRegressorModel load(ArchiveReader& in);
};

struct KNeighborsRegressor {
  KNeighborsParams params;
  KNeighborsRegressorModel fit(const Matrix& x, const Vector& y) const;
};

}  // namespace ember::ml
