// DBSCAN and agglomerative clustering.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "decomposition_blas.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/ml/cluster.hpp"

namespace ember::ml {

// ---- DBSCAN

void DBSCANParams::validate() const {
  if (!(eps > 0)) throw Error("DBSCAN: eps must be > 0");
  if (min_samples < 1) throw Error("DBSCAN: min_samples must be >= 1");
  if (leaf_size < 1) throw Error("DBSCAN: leaf_size must be >= 1");
  parse_metric(metric, p);
  parse_neighbor_algorithm(algorithm);
}

DBSCANModel DBSCAN::fit(const Matrix& x) const {
  params.validate();
  check_fit_input(x, nullptr, "DBSCAN");
  DBSCANModel model;
  model.metric = parse_metric(params.metric, params.p);
  model.eps = params.eps;
  model.n_features_in = x.cols;
  // scikit-learn builds NearestNeighbors with its default n_neighbors=5 for the 'auto' choice.
  const NeighborIndex index(x, model.metric, parse_neighbor_algorithm(params.algorithm),
                            params.leaf_size, 5);
  const auto neighborhoods = index.radius_neighbors(x, params.eps);
  const int64_t n = x.rows;
  std::vector<char> is_core(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    is_core[static_cast<size_t>(i)] =
        static_cast<int64_t>(neighborhoods[static_cast<size_t>(i)].size()) >= params.min_samples;
  }
  // Clusters grow from core points in index order; a border point joins the first cluster
  // that reaches it (scikit-learn's dbscan_inner).
  model.labels.assign(static_cast<size_t>(n), -1);
  int64_t next_label = 0;
  std::vector<int64_t> stack;
  for (int64_t seed = 0; seed < n; ++seed) {
    if (model.labels[static_cast<size_t>(seed)] != -1 || !is_core[static_cast<size_t>(seed)]) {
      continue;
    }
    int64_t i = seed;
    while (true) {
      if (model.labels[static_cast<size_t>(i)] == -1) {
        model.labels[static_cast<size_t>(i)] = next_label;
        if (is_core[static_cast<size_t>(i)]) {
          for (int64_t v : neighborhoods[static_cast<size_t>(i)]) {
            if (model.labels[static_cast<size_t>(v)] == -1) stack.push_back(v);
          }
        }
      }
      if (stack.empty()) break;
      i = stack.back();
      stack.pop_back();
    }
    ++next_label;
  }
  for (int64_t i = 0; i < n; ++i)
    if (is_core[static_cast<size_t>(i)]) model.core_sample_indices.push_back(i);
  model.components = take_rows(x, model.core_sample_indices);
  model.train = x;
  return model;
}

Vector DBSCANModel::predict(const Matrix& x) const {
  check_predict_input(x, n_features(), "DBSCAN");
  Vector out(static_cast<size_t>(x.rows), -1.0);
  detail::for_row_blocks(x, train.rows, [&](int64_t r0, const Matrix& block) {
    const Matrix to_train = pairwise_distances(block, train, metric);
    for (int64_t i = 0; i < block.rows; ++i) {
      const double* d = to_train.row(i);
      double& label = out[static_cast<size_t>(r0 + i)];
      // A training row reproduces its fitted label. The brute-force distances may carry
      // rounding (the euclidean GEMM form), so confirm the nearest row exactly.
      const int64_t nearest = std::min_element(d, d + train.rows) - d;
      if (metric_distance(metric, block.row(i), train.row(nearest), train.cols) == 0.0) {
        label = static_cast<double>(labels[static_cast<size_t>(nearest)]);
        continue;
      }
      double best = std::numeric_limits<double>::infinity();
      for (int64_t c : core_sample_indices) {
        if (d[c] <= eps && d[c] < best) {
          best = d[c];
          label = static_cast<double>(labels[static_cast<size_t>(c)]);
        }
      }
    }
  });
  return out;
}

void DBSCANModel::save(ArchiveWriter& out) const {
  out.ivec(labels);
  out.ivec(core_sample_indices);
  out.str(metric_name(metric));
  out.f64(metric.p);
  out.f64(eps);
  out.matrix(train);
}

DBSCANModel DBSCANModel::load(ArchiveReader& in) {
  DBSCANModel m;
  m.labels = in.ivec();
  m.core_sample_indices = in.ivec();
  const std::string metric = in.str();
  const double p = in.f64();
  m.metric = parse_metric(metric, p);
  m.eps = in.f64();
  m.train = in.matrix();
  if (!(m.eps > 0) || m.train.rows < 1 || m.train.cols < 1 ||
      static_cast<int64_t>(m.labels.size()) != m.train.rows) {
    throw Error("DBSCAN: model file is corrupt");
  }
  for (int64_t l : m.labels)
    if (l < -1 || l >= m.train.rows) throw Error("DBSCAN: model file is corrupt (label)");
  for (int64_t c : m.core_sample_indices)
    if (c < 0 || c >= m.train.rows) throw Error("DBSCAN: model file is corrupt (core index)");
  check_fit_input(m.train, nullptr, "DBSCAN model file");
  m.n_features_in = m.train.cols;
  m.components = take_rows(m.train, m.core_sample_indices);
  return m;
}

// ---- agglomerative clustering

void AgglomerativeParams::validate() const {
  if (n_clusters < 1) throw Error("AgglomerativeClustering: n_clusters must be >= 1");
  if (linkage != "ward" && linkage != "complete" && linkage != "average" && linkage != "single") {
    throw Error("AgglomerativeClustering: unknown linkage '" + linkage +
                "' (ward, complete, average, single)");
  }
  const MetricSpec m = parse_metric(metric, 2);
  if (linkage == "ward" && m.metric != Metric::Euclidean) {
    throw Error("AgglomerativeClustering: ward linkage needs the euclidean metric, got '" + metric +
                "'");
  }
}

namespace {

// Condensed upper-triangular distance storage: O(n^2 / 2) doubles.
struct Condensed {
  int64_t n;
  std::vector<double> d;
  explicit Condensed(int64_t n_) : n(n_), d(static_cast<size_t>(n_ * (n_ - 1) / 2)) {}
  double& at(int64_t i, int64_t j) {
    if (i > j) std::swap(i, j);
    return d[static_cast<size_t>(n * i - i * (i + 1) / 2 + (j - i - 1))];
  }
};

struct Merge {
  int64_t a, b;
  double dist;
};

Condensed condensed_distances(const Matrix& x, const MetricSpec& metric) {
  Condensed c(x.rows);
  constexpr int64_t kBlock = 256;
  const int64_t n_blocks = (x.rows + kBlock - 1) / kBlock;
  parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kBlock;
      const int64_t r1 = std::min(x.rows, r0 + kBlock);
      for (int64_t i = r0; i < r1; ++i) {
        for (int64_t j = i + 1; j < x.rows; ++j) {
          c.at(i, j) = metric_distance(metric, x.row(i), x.row(j), x.cols);
        }
      }
    }
  });
  return c;
}

// Nearest-neighbour chain for the reducible linkages (ward, complete, average), with
// Lance-Williams updates; the merged cluster lives on in the slot of the larger index.
std::vector<Merge> nn_chain(Condensed& dist, const std::string& linkage) {
  const int64_t n = dist.n;
  std::vector<int64_t> size(static_cast<size_t>(n), 1);
  std::vector<int64_t> chain;
  std::vector<Merge> merges;
  merges.reserve(static_cast<size_t>(n - 1));
  for (int64_t step = 0; step < n - 1; ++step) {
    if (chain.empty()) {
      for (int64_t i = 0; i < n; ++i) {
        if (size[static_cast<size_t>(i)] > 0) {
          chain.push_back(i);
          break;
        }
      }
    }
    int64_t x = 0, y = 0;
    double current = 0;
    while (true) {
      x = chain.back();
      if (chain.size() > 1) {
        y = chain[chain.size() - 2];
        current = dist.at(x, y);
      } else {
        current = std::numeric_limits<double>::infinity();
      }
      for (int64_t i = 0; i < n; ++i) {
        if (size[static_cast<size_t>(i)] == 0 || i == x) continue;
        const double d = dist.at(x, i);
        if (d < current) {
          current = d;
          y = i;
        }
      }
      if (chain.size() > 1 && y == chain[chain.size() - 2]) break;
      chain.push_back(y);
    }
    chain.pop_back();
    chain.pop_back();
    if (x > y) std::swap(x, y);
    const double nx = static_cast<double>(size[static_cast<size_t>(x)]);
    const double ny = static_cast<double>(size[static_cast<size_t>(y)]);
    merges.push_back({x, y, current});
    size[static_cast<size_t>(x)] = 0;
    size[static_cast<size_t>(y)] = static_cast<int64_t>(nx + ny);
    for (int64_t i = 0; i < n; ++i) {
      const double ni = static_cast<double>(size[static_cast<size_t>(i)]);
      if (ni == 0 || i == y) continue;
      const double dix = dist.at(i, x);
      const double diy = dist.at(i, y);
      double nd = 0;
      if (linkage == "complete") {
        nd = std::max(dix, diy);
      } else if (linkage == "average") {
        nd = (nx * dix + ny * diy) / (nx + ny);
      } else {  // ward
        const double t = nx + ny + ni;
        nd = std::sqrt(std::max(
            0.0, ((nx + ni) * dix * dix + (ny + ni) * diy * diy - ni * current * current) / t));
      }
      dist.at(i, y) = nd;
    }
  }
  return merges;
}

// Prim's minimum spanning tree on the full distance matrix: single linkage in O(n^2).
std::vector<Merge> mst_single(const Matrix& x, const MetricSpec& metric) {
  const int64_t n = x.rows;
  std::vector<char> in_tree(static_cast<size_t>(n), 0);
  std::vector<double> best(static_cast<size_t>(n), std::numeric_limits<double>::infinity());
  std::vector<Merge> merges;
  int64_t current = 0;
  in_tree[0] = 1;
  for (int64_t step = 0; step < n - 1; ++step) {
    int64_t next = -1;
    double next_d = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      if (in_tree[static_cast<size_t>(j)]) continue;
      const double d = metric_distance(metric, x.row(current), x.row(j), x.cols);
      if (d < best[static_cast<size_t>(j)]) best[static_cast<size_t>(j)] = d;
      if (best[static_cast<size_t>(j)] < next_d || next < 0) {
        next_d = best[static_cast<size_t>(j)];
        next = j;
      }
    }
    // Recorded against the current node, not the true MST neighbour, as scikit-learn's
    // mst_linkage_core (Muellner's MST-linkage) does; the single-linkage dendrogram is the same
    // and the merge tree, hence the label numbering, matches scikit-learn's.
    merges.push_back({current, next, next_d});
    in_tree[static_cast<size_t>(next)] = 1;
    current = next;
  }
  return merges;
}

// Sorts merges by distance (stable) and renames clusters: merge i creates node n + i. scipy's
// linkage writes the smaller child id first; scikit-learn's single_linkage_label keeps the
// edge's order (`ordered_children` false).
std::vector<std::array<int64_t, 2>> relabel(std::vector<Merge>& merges, int64_t n, Vector& heights,
                                            bool ordered_children) {
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.dist < b.dist; });
  std::vector<int64_t> parent(static_cast<size_t>(2 * n - 1));
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int64_t v) {
    while (parent[static_cast<size_t>(v)] != v) {
      parent[static_cast<size_t>(v)] = parent[static_cast<size_t>(parent[static_cast<size_t>(v)])];
      v = parent[static_cast<size_t>(v)];
    }
    return v;
  };
  std::vector<std::array<int64_t, 2>> children;
  heights.clear();
  for (size_t i = 0; i < merges.size(); ++i) {
    const int64_t ra = find(merges[i].a);
    const int64_t rb = find(merges[i].b);
    const int64_t node = n + static_cast<int64_t>(i);
    if (ordered_children) {
      children.push_back({std::min(ra, rb), std::max(ra, rb)});
    } else {
      children.push_back({ra, rb});
    }
    heights.push_back(merges[i].dist);
    parent[static_cast<size_t>(ra)] = node;
    parent[static_cast<size_t>(rb)] = node;
  }
  return children;
}

// Python's heapq on a list of ints, reproduced exactly so labels come out numbered as
// scikit-learn's _hc_cut numbers them.
void heap_sift_down(std::vector<int64_t>& heap, size_t start, size_t pos) {
  const int64_t item = heap[pos];
  while (pos > start) {
    const size_t parent = (pos - 1) >> 1;
    if (item < heap[parent]) {
      heap[pos] = heap[parent];
      pos = parent;
      continue;
    }
    break;
  }
  heap[pos] = item;
}

void heap_sift_up(std::vector<int64_t>& heap, size_t pos) {
  const size_t end = heap.size();
  const size_t start = pos;
  const int64_t item = heap[pos];
  size_t child = 2 * pos + 1;
  while (child < end) {
    const size_t right = child + 1;
    if (right < end && !(heap[child] < heap[right])) child = right;
    heap[pos] = heap[child];
    pos = child;
    child = 2 * pos + 1;
  }
  heap[pos] = item;
  heap_sift_down(heap, start, pos);
}

void heappush(std::vector<int64_t>& heap, int64_t item) {
  heap.push_back(item);
  heap_sift_down(heap, 0, heap.size() - 1);
}

void heappushpop(std::vector<int64_t>& heap, int64_t item) {
  if (!heap.empty() && heap[0] < item) {
    std::swap(item, heap[0]);
    heap_sift_up(heap, 0);
  }
}

std::vector<int64_t> cut_tree(const std::vector<std::array<int64_t, 2>>& children, int64_t n,
                              int64_t n_clusters) {
  std::vector<int64_t> labels(static_cast<size_t>(n), 0);
  if (n == 1) return labels;
  std::vector<int64_t> nodes{-(std::max(children.back()[0], children.back()[1]) + 1)};
  for (int64_t c = 0; c < n_clusters - 1; ++c) {
    const auto& these = children[static_cast<size_t>(-nodes[0] - n)];
    heappush(nodes, -these[0]);
    heappushpop(nodes, -these[1]);
  }
  std::vector<int64_t> stack;
  for (size_t label = 0; label < nodes.size(); ++label) {
    stack.assign(1, -nodes[label]);
    while (!stack.empty()) {
      const int64_t v = stack.back();
      stack.pop_back();
      if (v < n) {
        labels[static_cast<size_t>(v)] = static_cast<int64_t>(label);
      } else {
        stack.push_back(children[static_cast<size_t>(v - n)][0]);
        stack.push_back(children[static_cast<size_t>(v - n)][1]);
      }
    }
  }
  return labels;
}

}  // namespace

AgglomerativeModel AgglomerativeClustering::fit(const Matrix& x) const {
  params.validate();
  check_fit_input(x, nullptr, "AgglomerativeClustering");
  if (params.n_clusters > x.rows) {
    throw Error("AgglomerativeClustering: n_clusters=" + std::to_string(params.n_clusters) +
                " exceeds n_samples=" + std::to_string(x.rows));
  }
  AgglomerativeModel model;
  model.metric = parse_metric(params.metric, 2);
  model.n_clusters = params.n_clusters;
  model.train = x;
  std::vector<Merge> merges;
  if (x.rows > 1) {
    if (params.linkage == "single") {
      merges = mst_single(x, model.metric);
    } else {
      // The reducible linkages keep the condensed distance matrix: refuse inputs whose matrix
      // would not fit in a sane amount of memory instead of failing inside the allocator.
      const double bytes = static_cast<double>(x.rows) * static_cast<double>(x.rows - 1) / 2 * 8;
      if (bytes > 16.0 * (1ull << 30)) {
        throw Error("AgglomerativeClustering: " + std::to_string(x.rows) + " samples need " +
                    std::to_string(static_cast<int64_t>(bytes / (1ull << 30))) +
                    " GiB of pairwise distances for " + params.linkage +
                    " linkage (limit 16 GiB); use linkage=single or fewer samples");
      }
      Condensed dist = condensed_distances(x, model.metric);
      merges = nn_chain(dist, params.linkage);
    }
  }
  model.children = relabel(merges, x.rows, model.distances, params.linkage != "single");
  model.labels = cut_tree(model.children, x.rows, params.n_clusters);
  return model;
}

Vector AgglomerativeModel::predict(const Matrix& x) const {
  check_predict_input(x, n_features(), "AgglomerativeClustering");
  Vector out(static_cast<size_t>(x.rows));
  detail::for_row_blocks(x, train.rows, [&](int64_t r0, const Matrix& block) {
    const Matrix d = pairwise_distances(block, train, metric);
    for (int64_t i = 0; i < block.rows; ++i) {
      const double* r = d.row(i);
      const int64_t nearest = std::min_element(r, r + d.cols) - r;
      out[static_cast<size_t>(r0 + i)] = static_cast<double>(labels[static_cast<size_t>(nearest)]);
    }
  });
  return out;
}

void AgglomerativeModel::save(ArchiveWriter& out) const {
  out.ivec(labels);
  std::vector<int64_t> flat;
  for (const auto& c : children) {
    flat.push_back(c[0]);
    flat.push_back(c[1]);
  }
  out.ivec(flat);
  out.vec(distances);
  out.i64(n_clusters);
  out.str(metric_name(metric));
  out.f64(metric.p);
  out.matrix(train);
}

AgglomerativeModel AgglomerativeModel::load(ArchiveReader& in) {
  AgglomerativeModel m;
  m.labels = in.ivec();
  const std::vector<int64_t> flat = in.ivec();
  m.distances = in.vec();
  m.n_clusters = in.i64();
  const std::string metric = in.str();
  const double p = in.f64();
  m.metric = parse_metric(metric, p);
  m.train = in.matrix();
  const int64_t n = m.train.rows;
  if (n < 1 || m.train.cols < 1 || static_cast<int64_t>(m.labels.size()) != n ||
      static_cast<int64_t>(flat.size()) != 2 * (n - 1) ||
      static_cast<int64_t>(m.distances.size()) != n - 1 || m.n_clusters < 1 || m.n_clusters > n) {
    throw Error("AgglomerativeClustering: model file is corrupt");
  }
  for (int64_t l : m.labels)
    if (l < 0 || l >= m.n_clusters) throw Error("AgglomerativeClustering: model file is corrupt");
  for (size_t i = 0; i + 1 < flat.size(); i += 2) {
    const int64_t node = n + static_cast<int64_t>(i / 2);
    if (flat[i] < 0 || flat[i] >= node || flat[i + 1] < 0 || flat[i + 1] >= node) {
      throw Error("AgglomerativeClustering: model file is corrupt (merge tree)");
    }
    m.children.push_back({flat[i], flat[i + 1]});
  }
  check_fit_input(m.train, nullptr, "AgglomerativeClustering model file");
  return m;
}

// ---- registry

namespace {

DBSCAN parse_dbscan(ParamMap& p) {
  DBSCANParams params;
  params.eps = p.get_double("eps", 0.5);
  params.min_samples = p.get_int("min_samples", 5);
  params.metric = p.get_string("metric", "euclidean");
  params.algorithm = p.get_string("algorithm", "auto");
  params.leaf_size = p.get_int("leaf_size", 30);
  params.p = p.get_optional_double("p", std::nullopt).value_or(2);
  return DBSCAN{params};
}

AgglomerativeClustering parse_agglomerative(ParamMap& p) {
  AgglomerativeParams params;
  params.n_clusters = p.get_int("n_clusters", 2);
  params.linkage = p.get_string("linkage", "ward");
  params.metric = p.get_string("metric", "euclidean");
  return AgglomerativeClustering{params};
}

const AlgorithmRegistrar kDBSCAN{estimator_algorithm("DBSCAN", Task::Clustering, parse_dbscan)};
const AlgorithmRegistrar kAgglomerative{
    estimator_algorithm("AgglomerativeClustering", Task::Clustering, parse_agglomerative)};

}  // namespace

}  // namespace ember::ml
