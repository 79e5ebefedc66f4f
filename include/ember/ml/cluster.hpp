#pragma once
// Clustering: KMeans (k-means++ / explicit init, Lloyd or Elkan), DBSCAN and agglomerative
// clustering, following scikit-learn's definitions and label numbering.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/ml/common.hpp"
#include "ember/ml/neighbors.hpp"

namespace ember::ml {

struct KMeansParams {
  int64_t n_clusters = 8;
  std::string init = "k-means++";  // k-means++ | random | (explicit: init_centers)
  std::optional<Matrix> init_centers;
  std::optional<int64_t> n_init;  // nullopt = 'auto': 1 for k-means++/explicit, 10 for random
  int64_t max_iter = 300;
  double tol = 1e-4;
  std::string algorithm = "lloyd";  // lloyd | elkan
  // k-means++ draws from numpy's RandomState stream seeded with the low 32 bits, so a seed picks
  // the same initial centres as scikit-learn's random_state; init='random' uses Ember's own.
  uint64_t random_state = 0;
  void validate() const;
};

struct KMeansModel {
  Matrix centers;  // n_clusters x n_features
  std::vector<int64_t> labels;
  double inertia = 0;
  int64_t n_iter = 0;

  int64_t n_features() const { return centers.cols; }
  Vector predict(const Matrix& x) const;
  // Euclidean distance of each row to each centre.
  Matrix transform(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static KMeansModel load(ArchiveReader& in);
};

struct KMeans {
  KMeansParams params;
  KMeansModel fit(const Matrix& x) const;
};

// k-means++ seeding as scikit-learn does it (greedy, 2 + log(k) local trials): the same seed picks
// the same rows as sklearn.cluster.kmeans_plusplus(x, n_clusters, random_state=seed).
Matrix kmeans_plusplus(const Matrix& x, int64_t n_clusters, uint64_t seed);

struct DBSCANParams {
  double eps = 0.5;
  int64_t min_samples = 5;
  std::string metric = "euclidean";
  double p = 2;
  std::string algorithm = "auto";
  int64_t leaf_size = 30;
  void validate() const;
};

struct DBSCANModel {
  std::vector<int64_t> labels;  // -1 = noise
  std::vector<int64_t> core_sample_indices;
  Matrix components;  // the core samples
  MetricSpec metric;
  double eps = 0.5;
  int64_t n_features_in = 0;
  Matrix train;  // training data, so predicting on it reproduces the fitted labels

  int64_t n_features() const { return n_features_in; }
  // A row at distance 0 from a training row takes its label; otherwise the label of the
  // nearest core sample within eps, or -1.
  Vector predict(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static DBSCANModel load(ArchiveReader& in);
};

struct DBSCAN {
  DBSCANParams params;
  DBSCANModel fit(const Matrix& x) const;
};

struct AgglomerativeParams {
  int64_t n_clusters = 2;
  std::string linkage = "ward";  // ward | complete | average | single
  std::string metric = "euclidean";
  void validate() const;
};

struct AgglomerativeModel {
  std::vector<int64_t> labels;
  // Merge tree in scikit-learn's children_ layout: row i merges two nodes into node n + i.
  std::vector<std::array<int64_t, 2>> children;
  Vector distances;
  int64_t n_clusters = 0;
  MetricSpec metric;
  Matrix train;

  int64_t n_features() const { return train.cols; }
  // Label of the nearest training row.
  Vector predict(const Matrix& x) const;
  void save(ArchiveWriter& out) const;
  static AgglomerativeModel load(ArchiveReader& in);
};

struct AgglomerativeClustering {
  AgglomerativeParams params;
  AgglomerativeModel fit(const Matrix& x) const;
};

}  // namespace ember::ml
