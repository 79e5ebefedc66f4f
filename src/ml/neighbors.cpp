#include "ember/ml/neighbors.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>

#include "decomposition_blas.hpp"
#include "ember/base/thread_pool.hpp"

// OpenBLAS (see decomposition_blas.hpp): sets how many threads a large product may start.
extern "C" void openblas_set_num_threads(int num_threads);

namespace ember::ml {

// ---- metrics

MetricSpec parse_metric(const std::string& name, double p) {
  MetricSpec m;
  if (name == "euclidean" || name == "l2") {
    m.metric = Metric::Euclidean;
  } else if (name == "manhattan" || name == "cityblock" || name == "l1") {
    m.metric = Metric::Manhattan;
  } else if (name == "chebyshev" || name == "infinity") {
    m.metric = Metric::Chebyshev;
  } else if (name == "minkowski") {
    if (!(p >= 1)) throw Error("minkowski metric needs p >= 1, got " + std::to_string(p));
    if (p == 1) {
      m.metric = Metric::Manhattan;
    } else if (p == 2) {
      m.metric = Metric::Euclidean;
    } else if (std::isinf(p)) {
      m.metric = Metric::Chebyshev;
    } else {
      m.metric = Metric::Minkowski;
      m.p = p;
    }
  } else if (name == "cosine") {
    m.metric = Metric::Cosine;
  } else if (name == "hamming") {
    m.metric = Metric::Hamming;
  } else {
    throw Error("unknown metric '" + name +
                "' (euclidean, manhattan, chebyshev, minkowski, cosine, hamming)");
  }
  return m;
}

std::string metric_name(const MetricSpec& m) {
  switch (m.metric) {
    case Metric::Euclidean:
      return "euclidean";
    case Metric::Manhattan:
      return "manhattan";
    case Metric::Chebyshev:
      return "chebyshev";
    case Metric::Minkowski:
      return "minkowski";
    case Metric::Cosine:
      return "cosine";
    case Metric::Hamming:
      return "hamming";
  }
  return "?";
}

double metric_distance(const MetricSpec& m, const double* a, const double* b, int64_t n) {
  switch (m.metric) {
    case Metric::Euclidean: {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
      return std::sqrt(s);
    }
    case Metric::Manhattan: {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += std::abs(a[j] - b[j]);
      return s;
    }
    case Metric::Chebyshev: {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s = std::max(s, std::abs(a[j] - b[j]));
      return s;
    }
    case Metric::Minkowski: {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += std::pow(std::abs(a[j] - b[j]), m.p);
      return std::pow(s, 1.0 / m.p);
    }
    case Metric::Cosine: {
      double ab = 0, aa = 0, bb = 0;
      for (int64_t j = 0; j < n; ++j) {
        ab += a[j] * b[j];
        aa += a[j] * a[j];
        bb += b[j] * b[j];
      }
      const double na = aa > 0 ? std::sqrt(aa) : 1.0;
      const double nb = bb > 0 ? std::sqrt(bb) : 1.0;
      return std::clamp(1.0 - ab / (na * nb), 0.0, 2.0);
    }
    case Metric::Hamming: {
      int64_t differ = 0;
      for (int64_t j = 0; j < n; ++j) differ += a[j] != b[j] ? 1 : 0;
      return static_cast<double>(differ) / static_cast<double>(n);
    }
  }
  return 0;
}

NeighborAlgorithm parse_neighbor_algorithm(const std::string& name) {
  if (name == "auto") return NeighborAlgorithm::Auto;
  if (name == "brute") return NeighborAlgorithm::Brute;
  if (name == "kd_tree") return NeighborAlgorithm::KDTree;
  if (name == "ball_tree") return NeighborAlgorithm::BallTree;
  throw Error("unknown neighbour algorithm '" + name + "' (auto, brute, kd_tree, ball_tree)");
}

std::string neighbor_algorithm_name(NeighborAlgorithm a) {
  switch (a) {
    case NeighborAlgorithm::Auto:
      return "auto";
    case NeighborAlgorithm::Brute:
      return "brute";
    case NeighborAlgorithm::KDTree:
      return "kd_tree";
    case NeighborAlgorithm::BallTree:
      return "ball_tree";
  }
  return "?";
}

namespace {
bool kd_tree_supports(Metric m) {
  return m == Metric::Euclidean || m == Metric::Manhattan || m == Metric::Chebyshev ||
         m == Metric::Minkowski;
}
bool ball_tree_supports(Metric m) {
  return kd_tree_supports(m) || m == Metric::Hamming;
}
}  // namespace

// ---- brute force

// BLAS is called from the calling thread only (OpenBLAS threads itself); the elementwise work
// around it is split across the pool.
Matrix pairwise_distances(const Matrix& queries, const Matrix& data, const MetricSpec& metric) {
  Matrix d(queries.rows, data.rows);
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, data.rows * data.cols));
  if (metric.metric == Metric::Euclidean || metric.metric == Metric::Cosine) {
    detail::gemm(false, true, 1.0, queries, data, 0.0, d);
    const Vector qq = detail::row_squared_norms(queries);
    const Vector dd = detail::row_squared_norms(data);
    parallel_for(0, d.rows, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        double* row = d.row(i);
        const double qi = qq[static_cast<size_t>(i)];
        for (int64_t j = 0; j < d.cols; ++j) {
          const double dj = dd[static_cast<size_t>(j)];
          if (metric.metric == Metric::Euclidean) {
            row[j] = std::sqrt(std::max(0.0, qi + dj - 2.0 * row[j]));
          } else {
            const double na = qi > 0 ? std::sqrt(qi) : 1.0;
            const double nb = dj > 0 ? std::sqrt(dj) : 1.0;
            row[j] = std::clamp(1.0 - row[j] / (na * nb), 0.0, 2.0);
          }
        }
      }
    });
    return d;
  }
  parallel_for(0, d.rows, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = 0; j < d.cols; ++j) {
        d(i, j) = metric_distance(metric, queries.row(i), data.row(j), data.cols);
      }
    }
  });
  return d;
}

// ---- trees: KD (axis-aligned boxes) and ball (centroid + radius) share one layout

struct NeighborIndex::Tree {
  struct Node {
    int64_t begin = 0, end = 0;  // range in `order`
    int64_t left = -1, right = -1;
    double radius = 0;  // ball tree
  };
  bool is_kd = true;
  std::vector<int64_t> order;  // permutation of training rows
  std::vector<Node> nodes;
  std::vector<double> bounds;  // kd: per node [lo(0..d), hi(0..d)]; ball: per node centroid(d)
  int64_t dims = 0;

  const double* lo(int64_t node) const { return bounds.data() + node * 2 * dims; }
  const double* hi(int64_t node) const { return bounds.data() + node * 2 * dims + dims; }
  const double* centroid(int64_t node) const { return bounds.data() + node * dims; }
};

namespace {

using Tree = NeighborIndex::Tree;

int64_t build_node(Tree& t, const Matrix& x, const MetricSpec& metric, int64_t begin, int64_t end,
                   int64_t leaf_size) {
  const int64_t id = static_cast<int64_t>(t.nodes.size());
  t.nodes.push_back({begin, end, -1, -1, 0});
  const int64_t d = t.dims;
  if (t.is_kd) {
    t.bounds.resize(static_cast<size_t>((id + 1) * 2 * d));
    double* lo = t.bounds.data() + id * 2 * d;
    double* hi = lo + d;
    std::fill(lo, lo + d, std::numeric_limits<double>::infinity());
    std::fill(hi, hi + d, -std::numeric_limits<double>::infinity());
    for (int64_t i = begin; i < end; ++i) {
      const double* r = x.row(t.order[static_cast<size_t>(i)]);
      for (int64_t j = 0; j < d; ++j) {
        lo[j] = std::min(lo[j], r[j]);
        hi[j] = std::max(hi[j], r[j]);
      }
    }
  } else {
    t.bounds.resize(static_cast<size_t>((id + 1) * d));
    double* c = t.bounds.data() + id * d;
    std::fill(c, c + d, 0.0);
    for (int64_t i = begin; i < end; ++i) {
      const double* r = x.row(t.order[static_cast<size_t>(i)]);
      for (int64_t j = 0; j < d; ++j) c[j] += r[j];
    }
    for (int64_t j = 0; j < d; ++j) c[j] /= static_cast<double>(end - begin);
    double radius = 0;
    for (int64_t i = begin; i < end; ++i) {
      radius =
          std::max(radius, metric_distance(metric, c, x.row(t.order[static_cast<size_t>(i)]), d));
    }
    t.nodes[static_cast<size_t>(id)].radius = radius;
  }
  if (end - begin <= leaf_size) return id;
  // Split on the dimension of largest spread at the median.
  int64_t split_dim = 0;
  double best_spread = -1;
  for (int64_t j = 0; j < d; ++j) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int64_t i = begin; i < end; ++i) {
      const double v = x(t.order[static_cast<size_t>(i)], j);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (hi - lo > best_spread) {
      best_spread = hi - lo;
      split_dim = j;
    }
  }
  if (best_spread <= 0) return id;  // all points identical: keep as one leaf
  const int64_t mid = begin + (end - begin) / 2;
  std::nth_element(t.order.begin() + begin, t.order.begin() + mid, t.order.begin() + end,
                   [&](int64_t a, int64_t b) {
                     const double va = x(a, split_dim), vb = x(b, split_dim);
                     return va < vb || (va == vb && a < b);
                   });
  const int64_t left = build_node(t, x, metric, begin, mid, leaf_size);
  const int64_t right = build_node(t, x, metric, mid, end, leaf_size);
  t.nodes[static_cast<size_t>(id)].left = left;
  t.nodes[static_cast<size_t>(id)].right = right;
  return id;
}

// Lower bound on the distance from q to any point in the node.
double node_lower_bound(const Tree& t, const MetricSpec& metric, int64_t node, const double* q) {
  const int64_t d = t.dims;
  if (!t.is_kd) {
    const double c = metric_distance(metric, q, t.centroid(node), d);
    return std::max(0.0, c - t.nodes[static_cast<size_t>(node)].radius);
  }
  const double* lo = t.lo(node);
  const double* hi = t.hi(node);
  double acc = 0;
  for (int64_t j = 0; j < d; ++j) {
    const double gap = std::max({0.0, lo[j] - q[j], q[j] - hi[j]});
    switch (metric.metric) {
      case Metric::Euclidean:
        acc += gap * gap;
        break;
      case Metric::Manhattan:
        acc += gap;
        break;
      case Metric::Chebyshev:
        acc = std::max(acc, gap);
        break;
      case Metric::Minkowski:
        acc += std::pow(gap, metric.p);
        break;
      default:
        break;
    }
  }
  if (metric.metric == Metric::Euclidean) return std::sqrt(acc);
  if (metric.metric == Metric::Minkowski) return std::pow(acc, 1.0 / metric.p);
  return acc;
}

struct Candidate {
  double dist;
  int64_t index;
  bool operator<(const Candidate& o) const {
    return dist < o.dist || (dist == o.dist && index < o.index);
  }
};

// Max-heap of the k best candidates seen so far, ordered by (distance, index).
struct KBest {
  int64_t k;
  std::vector<Candidate> heap;
  bool full() const { return static_cast<int64_t>(heap.size()) >= k; }
  double worst() const {
    return full() ? heap.front().dist : std::numeric_limits<double>::infinity();
  }
  void offer(Candidate c) {
    if (!full()) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end());
    } else if (c < heap.front()) {
      std::pop_heap(heap.begin(), heap.end());
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end());
    }
  }
};

// Bounds are computed in floating point (ball trees subtract a radius), so a bound can exceed
// an equal true distance by a rounding error; prune only beyond that slack so that exact ties
// are still resolved by index.
bool beyond(double bound, double limit) {
  return bound - limit > 1e-12 * (1.0 + std::abs(limit));
}

void tree_knn(const Tree& t, const Matrix& x, const MetricSpec& metric, int64_t node,
              double node_bound, const double* q, KBest& best) {
  // Equal bounds must still be visited: an equal distance with a lower index wins.
  if (beyond(node_bound, best.worst())) return;
  const Tree::Node& n = t.nodes[static_cast<size_t>(node)];
  if (n.left < 0) {
    for (int64_t i = n.begin; i < n.end; ++i) {
      const int64_t row = t.order[static_cast<size_t>(i)];
      best.offer({metric_distance(metric, q, x.row(row), x.cols), row});
    }
    return;
  }
  const double bl = node_lower_bound(t, metric, n.left, q);
  const double br = node_lower_bound(t, metric, n.right, q);
  if (bl <= br) {
    tree_knn(t, x, metric, n.left, bl, q, best);
    tree_knn(t, x, metric, n.right, br, q, best);
  } else {
    tree_knn(t, x, metric, n.right, br, q, best);
    tree_knn(t, x, metric, n.left, bl, q, best);
  }
}

void tree_radius(const Tree& t, const Matrix& x, const MetricSpec& metric, int64_t node,
                 const double* q, double radius, std::vector<int64_t>& out) {
  if (beyond(node_lower_bound(t, metric, node, q), radius)) return;
  const Tree::Node& n = t.nodes[static_cast<size_t>(node)];
  if (n.left < 0) {
    for (int64_t i = n.begin; i < n.end; ++i) {
      const int64_t row = t.order[static_cast<size_t>(i)];
      if (metric_distance(metric, q, x.row(row), x.cols) <= radius) out.push_back(row);
    }
    return;
  }
  tree_radius(t, x, metric, n.left, q, radius, out);
  tree_radius(t, x, metric, n.right, q, radius, out);
}

}  // namespace

NeighborIndex::NeighborIndex(Matrix data, MetricSpec metric, NeighborAlgorithm algorithm,
                             int64_t leaf_size, int64_t n_neighbors_hint)
    : data_(std::move(data)),
      metric_(metric),
      requested_(algorithm),
      resolved_(algorithm),
      leaf_size_(leaf_size) {
  if (leaf_size_ < 1) throw Error("leaf_size must be >= 1");
  if (data_.rows < 1 || data_.cols < 1) throw Error("neighbour index needs non-empty data");
  if (resolved_ == NeighborAlgorithm::Auto) {
    // scikit-learn's choice: brute for wide data or k >= n/2, else the first tree that
    // supports the metric.
    const bool brute =
        data_.cols > 15 || (n_neighbors_hint > 0 && n_neighbors_hint >= data_.rows / 2);
    if (!brute && kd_tree_supports(metric_.metric)) {
      resolved_ = NeighborAlgorithm::KDTree;
    } else if (!brute && ball_tree_supports(metric_.metric)) {
      resolved_ = NeighborAlgorithm::BallTree;
    } else {
      resolved_ = NeighborAlgorithm::Brute;
    }
  }
  if (resolved_ == NeighborAlgorithm::KDTree && !kd_tree_supports(metric_.metric)) {
    throw Error("kd_tree does not support the " + metric_name(metric_) + " metric");
  }
  if (resolved_ == NeighborAlgorithm::BallTree && !ball_tree_supports(metric_.metric)) {
    throw Error("ball_tree does not support the " + metric_name(metric_) + " metric");
  }
  if (resolved_ == NeighborAlgorithm::Brute) return;
  tree_ = std::make_unique<Tree>();
  tree_->is_kd = resolved_ == NeighborAlgorithm::KDTree;
  tree_->dims = data_.cols;
  tree_->order.resize(static_cast<size_t>(data_.rows));
  std::iota(tree_->order.begin(), tree_->order.end(), 0);
  build_node(*tree_, data_, metric_, 0, data_.rows, leaf_size_);
}

NeighborIndex::~NeighborIndex() = default;
NeighborIndex::NeighborIndex(NeighborIndex&&) noexcept = default;
NeighborIndex& NeighborIndex::operator=(NeighborIndex&&) noexcept = default;

namespace {

// Brute force: distances from consecutive blocks of queries to every training row, each block
// sized so its distance matrix stays near 32 MiB; fn(first_query_row, distances) per block.
template <typename Fn>
void for_each_distance_block(const Matrix& queries, const Matrix& data, const MetricSpec& metric,
                             Fn&& fn) {
  const int64_t block_rows = std::clamp<int64_t>((int64_t{1} << 22) / data.rows, 1, 1024);
  for (int64_t r0 = 0; r0 < queries.rows; r0 += block_rows) {
    const int64_t r1 = std::min(queries.rows, r0 + block_rows);
    Matrix block(r1 - r0, queries.cols);
    std::copy_n(queries.row(r0), (r1 - r0) * queries.cols, block.data.begin());
    fn(r0, pairwise_distances(block, data, metric));
  }
}

// OpenBLAS's thread count is process-wide. While pool tasks run their own GEMMs it is held at 1
// (scikit-learn's argkmin does the same through threadpoolctl): an OpenBLAS call that started its
// own threads inside a pool task would have them compete with the pool's. Concurrent holders share
// one override; the last to leave restores the count the first one found.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (holders_++ == 0) {
      saved_ = openblas_get_num_threads();
      if (saved_ > 1) openblas_set_num_threads(1);
    }
  }
  ~SingleThreadedBlas() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (--holders_ == 0 && saved_ > 1) openblas_set_num_threads(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas(SingleThreadedBlas&&) = delete;
  SingleThreadedBlas& operator=(SingleThreadedBlas&&) = delete;

 private:
  static inline std::mutex mutex_;
  static inline int holders_ = 0;
  static inline int saved_ = 1;
};

// Offers candidates c0 + j of one query's row of squared distances to its k-heap. The row is
// scanned in chunks: a vectorized count of the entries that could enter the heap, and the
// branchy offers only in the rare chunk that has one (once the heap holds k good candidates).
void offer_row(const double* row, int64_t n, int64_t c0, KBest& best) {
  constexpr int64_t kChunk = 64;
  double worst = best.worst();
  for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
    const int64_t j1 = std::min(n, j0 + kChunk);
    int64_t hits = 0;
    for (int64_t j = j0; j < j1; ++j) hits += row[j] <= worst ? 1 : 0;
    if (hits == 0) continue;
    for (int64_t j = j0; j < j1; ++j) {
      if (row[j] <= worst) {
        best.offer({row[j], c0 + j});
        worst = best.worst();
      }
    }
  }
}

// Euclidean k nearest neighbours by brute force, as scikit-learn's argkmin reduction does it:
// each pool task takes a tile of queries and, for each tile of training rows, runs its own
// single-threaded GEMM and offers each candidate's squared distance ||q||^2 + ||x||^2 - 2 q.x to
// its query's k-heap while the products are in cache. So every thread alternates GEMM and
// selection on its own data, none waits for another, the whole distance matrix is never built
// and only the k kept take a square root. The values are those pairwise_distances gives, ties
// broken by index; tiles depend on the data only, so results do not depend on the thread count.
void euclidean_kneighbors(const Matrix& queries, const Matrix& data, int64_t k,
                          KNeighborsResult& out) {
  // Up to 256 x 2048 products (4 MiB) per task, as fast at 1 thread as the 256 x 4096 tiles the
  // calling thread used before; 64-row tiles pack the same training rows for fewer queries and
  // cost 10% at d=100. A few hundred queries are still cut into 8 tiles for the pool, by their
  // count alone so that the tiles, and the products, never depend on the thread count.
  const int64_t query_tile = std::clamp<int64_t>((queries.rows + 7) / 8, 32, 256);
  constexpr int64_t kDataTile = 2048;
  const Vector qq = detail::row_squared_norms(queries);
  const Vector dd = detail::row_squared_norms(data);
  const int64_t d = data.cols;
  const int64_t data_tile = std::min(kDataTile, data.rows);
  const int64_t tiles = (queries.rows + query_tile - 1) / query_tile;
  // Held on one pool thread too: OpenBLAS's threaded and single-threaded products may round
  // differently, and the distances must not depend on the thread count.
  const SingleThreadedBlas single_threaded_blas;
  parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<double> dots(static_cast<size_t>(std::min(query_tile, queries.rows) * data_tile));
    std::vector<KBest> best(static_cast<size_t>(std::min(query_tile, queries.rows)), KBest{k, {}});
    for (KBest& b : best) b.heap.reserve(static_cast<size_t>(k));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t q0 = t * query_tile;
      const int64_t nq = std::min(query_tile, queries.rows - q0);
      for (KBest& b : best) b.heap.clear();
      for (int64_t c0 = 0; c0 < data.rows; c0 += data_tile) {
        const int64_t nc = std::min(data_tile, data.rows - c0);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq),
                    static_cast<int>(nc), static_cast<int>(d), 1.0, queries.row(q0),
                    static_cast<int>(d), data.row(c0), static_cast<int>(d), 0.0, dots.data(),
                    static_cast<int>(nc));
        const double* dj = dd.data() + c0;
        for (int64_t i = 0; i < nq; ++i) {
          const double qi = qq[static_cast<size_t>(q0 + i)];
          double* row = dots.data() + i * nc;
          for (int64_t j = 0; j < nc; ++j) row[j] = std::max(0.0, qi + dj[j] - 2.0 * row[j]);
          offer_row(row, nc, c0, best[static_cast<size_t>(i)]);
        }
      }
      for (int64_t i = 0; i < nq; ++i) {
        std::vector<Candidate>& heap = best[static_cast<size_t>(i)].heap;
        std::sort_heap(heap.begin(), heap.end());
        for (int64_t j = 0; j < k; ++j) {
          const auto at = static_cast<size_t>((q0 + i) * k + j);
          out.distances[at] = std::sqrt(heap[static_cast<size_t>(j)].dist);
          out.indices[at] = heap[static_cast<size_t>(j)].index;
        }
      }
    }
  });
}

}  // namespace

KNeighborsResult NeighborIndex::kneighbors(const Matrix& queries, int64_t k) const {
  if (k < 1) throw Error("n_neighbors must be >= 1");
  if (k > data_.rows) {
    throw Error("Expected n_neighbors <= n_samples_fit, but n_neighbors = " + std::to_string(k) +
                ", n_samples_fit = " + std::to_string(data_.rows));
  }
  check_predict_input(queries, data_.cols, "kneighbors");
  KNeighborsResult out;
  out.k = k;
  out.distances.resize(static_cast<size_t>(queries.rows * k));
  out.indices.resize(static_cast<size_t>(queries.rows * k));
  if (!tree_ && metric_.metric == Metric::Euclidean) {
    euclidean_kneighbors(queries, data_, k, out);
    return out;
  }
  if (!tree_) {
    for_each_distance_block(queries, data_, metric_, [&](int64_t r0, const Matrix& d) {
      parallel_for(0, d.rows, 4, [&](int64_t i0, int64_t i1) {
        std::vector<Candidate> cand(static_cast<size_t>(data_.rows));
        for (int64_t i = i0; i < i1; ++i) {
          for (int64_t j = 0; j < data_.rows; ++j) cand[static_cast<size_t>(j)] = {d(i, j), j};
          std::partial_sort(cand.begin(), cand.begin() + k, cand.end());
          for (int64_t j = 0; j < k; ++j) {
            out.distances[static_cast<size_t>((r0 + i) * k + j)] =
                cand[static_cast<size_t>(j)].dist;
            out.indices[static_cast<size_t>((r0 + i) * k + j)] = cand[static_cast<size_t>(j)].index;
          }
        }
      });
    });
    return out;
  }
  parallel_for(0, queries.rows, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      KBest best{k, {}};
      best.heap.reserve(static_cast<size_t>(k));
      const double* q = queries.row(i);
      tree_knn(*tree_, data_, metric_, 0, node_lower_bound(*tree_, metric_, 0, q), q, best);
      std::sort_heap(best.heap.begin(), best.heap.end());
      for (int64_t j = 0; j < k; ++j) {
        out.distances[static_cast<size_t>(i * k + j)] = best.heap[static_cast<size_t>(j)].dist;
        out.indices[static_cast<size_t>(i * k + j)] = best.heap[static_cast<size_t>(j)].index;
      }
    }
  });
  return out;
}

std::vector<std::vector<int64_t>> NeighborIndex::radius_neighbors(const Matrix& queries,
                                                                  double radius) const {
  check_predict_input(queries, data_.cols, "radius_neighbors");
  if (!(radius >= 0)) throw Error("radius must be non-negative");
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(queries.rows));
  if (!tree_) {
    for_each_distance_block(queries, data_, metric_, [&](int64_t r0, const Matrix& d) {
      parallel_for(0, d.rows, 4, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          auto& list = out[static_cast<size_t>(r0 + i)];
          for (int64_t j = 0; j < d.cols; ++j)
            if (d(i, j) <= radius) list.push_back(j);
        }
      });
    });
    return out;
  }
  parallel_for(0, queries.rows, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      auto& list = out[static_cast<size_t>(i)];
      tree_radius(*tree_, data_, metric_, 0, queries.row(i), radius, list);
      std::sort(list.begin(), list.end());
    }
  });
  return out;
}

// ---- k-nearest-neighbour estimators

void KNeighborsParams::validate() const {
  if (n_neighbors < 1) throw Error("KNeighbors: n_neighbors must be >= 1");
  if (weights != "uniform" && weights != "distance") {
    throw Error("KNeighbors: weights must be 'uniform' or 'distance', got '" + weights + "'");
  }
  parse_neighbor_algorithm(algorithm);
  if (leaf_size < 1) throw Error("KNeighbors: leaf_size must be >= 1");
  if (metric == "minkowski" && !(p >= 1)) throw Error("KNeighbors: p must be >= 1");
  parse_metric(metric, p);
}

namespace {

std::shared_ptr<NeighborIndex> build_index(const KNeighborsParams& params, const Matrix& x) {
  return std::make_shared<NeighborIndex>(x, parse_metric(params.metric, params.p),
                                         parse_neighbor_algorithm(params.algorithm),
                                         params.leaf_size, params.n_neighbors);
}

// Per-neighbour weights of one query row (scikit-learn: 1/d, and exact matches take all the
// weight when any distance is zero).
void neighbor_weights(const KNeighborsParams& params, const double* dist, int64_t k, double* w) {
  if (params.weights == "uniform") {
    std::fill(w, w + k, 1.0);
    return;
  }
  bool any_zero = false;
  for (int64_t j = 0; j < k; ++j) any_zero = any_zero || dist[j] == 0.0;
  for (int64_t j = 0; j < k; ++j) {
    w[j] = any_zero ? (dist[j] == 0.0 ? 1.0 : 0.0) : 1.0 / dist[j];
  }
}

void save_params(ArchiveWriter& out, const KNeighborsParams& p) {
  out.i64(p.n_neighbors);
  out.str(p.weights);
  out.str(p.algorithm);
  out.i64(p.leaf_size);
  out.str(p.metric);
  out.f64(p.p);
}

KNeighborsParams load_params(ArchiveReader& in) {
  KNeighborsParams p;
  p.n_neighbors = in.i64();
  p.weights = in.str();
  p.algorithm = in.str();
  p.leaf_size = in.i64();
  p.metric = in.str();
  p.p = in.f64();
  p.validate();
  return p;
}

}  // namespace

KNeighborsClassifierModel KNeighborsClassifier::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_fit_input(x, &y, "KNeighborsClassifier");
  if (params.n_neighbors > x.rows) {
    throw Error("KNeighborsClassifier: n_neighbors=" + std::to_string(params.n_neighbors) +
                " exceeds n_samples=" + std::to_string(x.rows));
  }
  KNeighborsClassifierModel m;
  m.params = params;
  m.n_classes = count_classes(y, "KNeighborsClassifier");
  m.labels.resize(y.size());
  for (size_t i = 0; i < y.size(); ++i) m.labels[i] = static_cast<int64_t>(y[i]);
  m.index = build_index(params, x);
  return m;
}

Matrix KNeighborsClassifierModel::predict_proba(const Matrix& x) const {
  check_predict_input(x, n_features(), "KNeighborsClassifier");
  const int64_t k = params.n_neighbors;
  const KNeighborsResult nn = index->kneighbors(x, k);
  Matrix proba(x.rows, n_classes);
  std::vector<double> w(static_cast<size_t>(k));
  for (int64_t i = 0; i < x.rows; ++i) {
    neighbor_weights(params, nn.distances.data() + i * k, k, w.data());
    double total = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t label = labels[static_cast<size_t>(nn.indices[static_cast<size_t>(i * k + j)])];
      proba(i, label) += w[static_cast<size_t>(j)];
      total += w[static_cast<size_t>(j)];
    }
    for (int64_t c = 0; c < n_classes; ++c) proba(i, c) /= total;
  }
  return proba;
}

Vector KNeighborsClassifierModel::predict(const Matrix& x) const {
  return argmax_rows(predict_proba(x));
}

void KNeighborsClassifierModel::save(ArchiveWriter& out) const {
  save_params(out, params);
  out.matrix(index->data());
  out.ivec(labels);
  out.i64(n_classes);
}

KNeighborsClassifierModel KNeighborsClassifierModel::load(ArchiveReader& in) {
  KNeighborsClassifierModel m;
  m.params = load_params(in);
  Matrix x = in.matrix();
  m.labels = in.ivec();
  m.n_classes = in.i64();
  if (x.rows < 1 || x.cols < 1 || static_cast<int64_t>(m.labels.size()) != x.rows ||
      m.n_classes < 2 || m.n_classes > x.rows || m.params.n_neighbors > x.rows) {
    throw Error("KNeighborsClassifier: model file is corrupt");
  }
  for (int64_t l : m.labels)
    if (l < 0 || l >= m.n_classes) throw Error("KNeighborsClassifier: model file is corrupt");
  check_fit_input(x, nullptr, "KNeighborsClassifier model file");
  m.index = build_index(m.params, x);
  return m;
}

KNeighborsRegressorModel KNeighborsRegressor::fit(const Matrix& x, const Vector& y) const {
  params.validate();
  check_fit_input(x, &y, "KNeighborsRegressor");
  if (params.n_neighbors > x.rows) {
    throw Error("KNeighborsRegressor: n_neighbors=" + std::to_string(params.n_neighbors) +
                " exceeds n_samples=" + std::to_string(x.rows));
  }
  KNeighborsRegressorModel m;
  m.params = params;
  m.targets = y;
  m.index = build_index(params, x);
  return m;
}

Vector KNeighborsRegressorModel::predict(const Matrix& x) const {
  check_predict_input(x, n_features(), "KNeighborsRegressor");
  const int64_t k = params.n_neighbors;
  const KNeighborsResult nn = index->kneighbors(x, k);
  Vector out(static_cast<size_t>(x.rows));
  std::vector<double> w(static_cast<size_t>(k));
  for (int64_t i = 0; i < x.rows; ++i) {
    neighbor_weights(params, nn.distances.data() + i * k, k, w.data());
    double num = 0, den = 0;
    for (int64_t j = 0; j < k; ++j) {
      num += w[static_cast<size_t>(j)] *
             targets[static_cast<size_t>(nn.indices[static_cast<size_t>(i * k + j)])];
      den += w[static_cast<size_t>(j)];
    }
    out[static_cast<size_t>(i)] = num / den;
  }
  return out;
}

void KNeighborsRegressorModel::save(ArchiveWriter& out) const {
  save_params(out, params);
  out.matrix(index->data());
  out.vec(targets);
}

KNeighborsRegressorModel KNeighborsRegressorModel::load(ArchiveReader& in) {
  KNeighborsRegressorModel m;
  m.params = load_params(in);
  Matrix x = in.matrix();
  m.targets = in.vec();
  if (x.rows < 1 || x.cols < 1 || static_cast<int64_t>(m.targets.size()) != x.rows ||
      m.params.n_neighbors > x.rows) {
    throw Error("KNeighborsRegressor: model file is corrupt");
  }
  check_fit_input(x, &m.targets, "KNeighborsRegressor model file");
  m.index = build_index(m.params, x);
  return m;
}

// ---- registry

namespace {

KNeighborsParams parse_knn_params(ParamMap& p) {
  KNeighborsParams params;
  params.n_neighbors = p.get_int("n_neighbors", 5);
  params.weights = p.get_string("weights", "uniform");
  params.algorithm = p.get_string("algorithm", "auto");
  params.leaf_size = p.get_int("leaf_size", 30);
  params.metric = p.get_string("metric", "minkowski");
  const std::string pv = p.get_string("p", "2");
  if (pv == "inf") {
    params.p = std::numeric_limits<double>::infinity();
  } else {
    ParamMap again(std::map<std::string, std::string>{{"p", pv}});
    params.p = again.get_double("p", 2);
  }
  return params;
}

const AlgorithmRegistrar kClassifier{
    estimator_algorithm("KNeighborsClassifier", Task::Classification,
                        [](ParamMap& p) { return KNeighborsClassifier{parse_knn_params(p)}; })};
const AlgorithmRegistrar kRegressor{
    estimator_algorithm("KNeighborsRegressor", Task::Regression,
                        [](ParamMap& p) { return KNeighborsRegressor{parse_knn_params(p)}; })};

}  // namespace

}  // namespace ember::ml
