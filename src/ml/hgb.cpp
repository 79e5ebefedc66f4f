// Histogram gradient boosting: binning, leaf-wise tree growth on gradient histograms (built in
// parallel over features, with the subtraction trick), losses, early stopping, registry.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <queue>

#include "ember/base/pool_stay_awake.hpp"
#include "ember/base/thread_pool.hpp"
#include "ember/ml/hist_gradient_boosting.hpp"

namespace ember::ml {

namespace {
constexpr double kMinHessianToSplit = 1e-3;  // scikit-learn's min_hessian_to_split
constexpr int64_t kBinSlots = 256;
constexpr int64_t kBinningSubsample = 200000;
constexpr double kAlmostInf = 1e300;
}  // namespace

void HistGradientBoostingParams::validate(std::string_view who) const {
  const std::string name(who);
  if (!(learning_rate > 0)) throw Error(name + ": learning_rate must be > 0");
  if (max_iter < 1) throw Error(name + ": max_iter must be >= 1");
  if (max_iter > 1000000) throw Error(name + ": max_iter must be <= 1000000");
  if (max_leaf_nodes && *max_leaf_nodes < 2) throw Error(name + ": max_leaf_nodes must be >= 2");
  if (max_depth && *max_depth < 1) throw Error(name + ": max_depth must be >= 1 or None");
  if (min_samples_leaf < 1) throw Error(name + ": min_samples_leaf must be >= 1");
  if (!(l2_regularization >= 0)) throw Error(name + ": l2_regularization must be >= 0");
  if (max_bins < 2 || max_bins > 255) throw Error(name + ": max_bins must be in [2, 255]");
  if (early_stopping != "auto" && early_stopping != "True" && early_stopping != "False") {
    throw Error(name + ": early_stopping must be auto, True or False");
  }
  if (validation_fraction && !(*validation_fraction > 0 && *validation_fraction < 1)) {
    throw Error(name + ": validation_fraction must be in (0, 1) or None");
  }
  if (n_iter_no_change < 1) throw Error(name + ": n_iter_no_change must be >= 1");
  if (!(tol >= 0)) throw Error(name + ": tol must be >= 0");
}

// ---- binning

FeatureBins compute_feature_bins(std::vector<double> column, int64_t max_bins) {
  std::sort(column.begin(), column.end());
  std::vector<double> distinct;
  for (double v : column) {
    if (distinct.empty() || v != distinct.back()) distinct.push_back(v);
  }
  FeatureBins bins;
  if (distinct.size() <= 1) return bins;
  if (static_cast<int64_t>(distinct.size()) <= max_bins) {
    for (size_t i = 0; i + 1 < distinct.size(); ++i) {
      bins.thresholds.push_back((distinct[i] + distinct[i + 1]) / 2);
    }
  } else {
    // numpy's percentile(method="averaged_inverted_cdf") at linspace(0, 100, max_bins + 1)[1:-1].
    const auto n = static_cast<int64_t>(column.size());
    const double step = 100.0 / static_cast<double>(max_bins);
    for (int64_t i = 1; i < max_bins; ++i) {
      const double q = (static_cast<double>(i) * step) / 100.0;
      const double virtual_index = static_cast<double>(n) * q - 1;
      const double lower = std::floor(virtual_index);
      const double gamma = virtual_index - lower;
      const auto lo = std::clamp<int64_t>(static_cast<int64_t>(lower), 0, n - 1);
      const auto hi = std::clamp<int64_t>(static_cast<int64_t>(lower) + 1, 0, n - 1);
      const double a = column[static_cast<size_t>(lo)], b = column[static_cast<size_t>(hi)];
      bins.thresholds.push_back(gamma == 0 ? a + 0.5 * (b - a) : b);
    }
    bins.thresholds.erase(std::unique(bins.thresholds.begin(), bins.thresholds.end()),
                          bins.thresholds.end());
  }
  for (double& t : bins.thresholds) t = std::min(t, kAlmostInf);
  return bins;
}

namespace {

// Number of thresholds strictly below x: a binary search without data-dependent branches, as
// the comparisons on random data would mispredict about half the time.
inline uint8_t bin_of(const FeatureBins& bins, double x) {
  const double* base = bins.thresholds.data();
  size_t len = bins.thresholds.size();
  if (len == 0) return 0;
  while (len > 1) {
    const size_t half = len / 2;
    base += half * static_cast<size_t>(base[half - 1] < x);
    len -= half;
  }
  return static_cast<uint8_t>(base - bins.thresholds.data() + (*base < x ? 1 : 0));
}

struct BinnedData {
  int64_t n_samples = 0;
  int64_t n_features = 0;
  std::vector<uint8_t> bins;    // feature-major
  std::vector<int32_t> n_bins;  // per feature: thresholds + 1
  const uint8_t* column(int64_t f) const { return bins.data() + f * n_samples; }
};

BinnedData bin_training_data(const Matrix& x, const std::vector<FeatureBins>& edges) {
  BinnedData d;
  d.n_samples = x.rows;
  d.n_features = x.cols;
  d.bins.resize(static_cast<size_t>(x.rows * x.cols));
  d.n_bins.resize(static_cast<size_t>(x.cols));
  for (int64_t f = 0; f < x.cols; ++f) {
    d.n_bins[static_cast<size_t>(f)] =
        static_cast<int32_t>(edges[static_cast<size_t>(f)].thresholds.size() + 1);
  }
  // By blocks of rows, all features of a row at once: X is row-major, and a column walk would
  // stream the whole matrix from memory once per feature.
  parallel_for(0, x.rows, 4096, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const double* xr = x.row(r);
      for (int64_t f = 0; f < x.cols; ++f) {
        d.bins[static_cast<size_t>(f * x.rows + r)] = bin_of(edges[static_cast<size_t>(f)], xr[f]);
      }
    }
  });
  return d;
}

// ---- tree growth

struct HistBin {
  double g = 0;
  double h = 0;
  uint32_t count = 0;
};

struct GrowSettings {
  int64_t max_leaf_nodes = 0;  // 0: unlimited
  int64_t max_depth = INT64_MAX;
  int64_t min_samples_leaf = 20;
  double l2 = 0;
  double learning_rate = 0.1;
};

struct BestSplit {
  int32_t feature = -1;
  int32_t bin = 0;
  double gain = 0;
  double g_left = 0;
  double h_left = 0;
  int64_t n_left = 0;
};

struct GrowNode {
  int64_t start = 0;
  int64_t end = 0;
  double sum_g = 0;
  double sum_h = 0;
  int64_t depth = 0;
  int32_t tree_id = 0;
  int hist = -1;
  BestSplit split;
};

// A leaf's sample range in the partitioned index array and its (shrunk) value.
struct LeafRange {
  int64_t start;
  int64_t end;
  double value;
};

class Grower {
 public:
  Grower(const BinnedData& data, const std::vector<FeatureBins>& edges, const GrowSettings& s)
      : data_(data), edges_(edges), s_(s) {
    indices_.resize(static_cast<size_t>(data.n_samples));
    scratch_.resize(indices_.size());
    ordered_g_.resize(indices_.size());
    ordered_h_.resize(indices_.size());
    small_best_.resize(static_cast<size_t>(data.n_features));
    large_best_.resize(static_cast<size_t>(data.n_features));
  }

  // Grows one tree on gradients g and hessians h; fills `leaves` with the training samples of
  // each leaf (as ranges of indices()).
  TreeStructure grow(const float* g, const float* h, std::vector<LeafRange>& leaves) {
    g_ = g;
    h_ = h;
    std::iota(indices_.begin(), indices_.end(), 0);
    tree_ = TreeStructure{};
    tree_.n_features = data_.n_features;
    tree_.n_values = 1;
    nodes_.clear();
    leaves.clear();

    GrowNode root;
    root.end = data_.n_samples;
    for (int64_t i = 0; i < data_.n_samples; ++i) {
      root.sum_g += g[i];
      root.sum_h += h[i];
    }
    root.tree_id = add_tree_node(root);
    nodes_.push_back(root);

    auto lower = [this](int a, int b) {
      const double ga = nodes_[static_cast<size_t>(a)].split.gain;
      const double gb = nodes_[static_cast<size_t>(b)].split.gain;
      return ga != gb ? ga < gb : a > b;
    };
    std::priority_queue<int, std::vector<int>, decltype(lower)> frontier(lower);
    std::vector<int> finished;

    if (splittable(nodes_[0])) {
      nodes_[0].hist = acquire_histogram();
      build_root(nodes_[0]);
      if (nodes_[0].split.feature >= 0) {
        frontier.push(0);
      } else {
        release(nodes_[0]);
        finished.push_back(0);
      }
    } else {
      finished.push_back(0);
    }

    int64_t n_leaves = 1;
    while (!frontier.empty()) {
      const int id = frontier.top();
      frontier.pop();
      const auto [left, right] = split(id);
      ++n_leaves;
      const bool at_leaf_limit = s_.max_leaf_nodes > 0 && n_leaves >= s_.max_leaf_nodes;
      const bool at_depth_limit = nodes_[static_cast<size_t>(left)].depth >= s_.max_depth;
      GrowNode& l = nodes_[static_cast<size_t>(left)];
      GrowNode& r = nodes_[static_cast<size_t>(right)];
      const bool left_ok = !at_leaf_limit && !at_depth_limit && splittable(l);
      const bool right_ok = !at_leaf_limit && !at_depth_limit && splittable(r);
      if (left_ok || right_ok) {
        // Subtraction trick: build the smaller child's histogram, derive the larger one.
        GrowNode& small = (l.end - l.start) <= (r.end - r.start) ? l : r;
        GrowNode& large = &small == &l ? r : l;
        const bool small_ok = &small == &l ? left_ok : right_ok;
        const bool large_ok = &large == &l ? left_ok : right_ok;
        small.hist = acquire_histogram();
        if (large_ok) large.hist = acquire_histogram();
        build_children(nodes_[static_cast<size_t>(id)], small, small_ok, large, large_ok);
      }
      release(nodes_[static_cast<size_t>(id)]);
      for (int child : {left, right}) {
        GrowNode& c = nodes_[static_cast<size_t>(child)];
        if (c.split.feature >= 0) {
          frontier.push(child);
        } else {
          release(c);
          finished.push_back(child);
        }
      }
      if (at_leaf_limit) {
        while (!frontier.empty()) {
          release(nodes_[static_cast<size_t>(frontier.top())]);
          finished.push_back(frontier.top());
          frontier.pop();
        }
      }
    }

    for (int id : finished) {
      const GrowNode& n = nodes_[static_cast<size_t>(id)];
      const double value = -s_.learning_rate * n.sum_g / (n.sum_h + s_.l2 + 1e-15);
      tree_.values[static_cast<size_t>(n.tree_id)] = value;
      leaves.push_back({n.start, n.end, value});
    }
    return std::move(tree_);
  }

  const std::vector<int32_t>& indices() const { return indices_; }

 private:
  // Below this many bin updates and bin scans a node's features are handled on the calling
  // thread: waking the pool would cost more than it saves.
  static constexpr int64_t kMinParallelWork = 32768;
  // Samples per parallel task in partitions and gathers.
  static constexpr int64_t kPartitionBlock = 16384;

  bool splittable(const GrowNode& n) const {
    return n.end - n.start >= 2 * s_.min_samples_leaf && n.sum_h >= kMinHessianToSplit;
  }

  int32_t add_tree_node(const GrowNode& n) {
    TreeNode t;
    t.n_samples = n.end - n.start;
    t.weighted_n_samples = n.sum_h;
    tree_.nodes.push_back(t);
    tree_.values.push_back(0.0);
    return static_cast<int32_t>(tree_.nodes.size() - 1);
  }

  int acquire_histogram() {
    if (free_hists_.empty()) {
      hists_.emplace_back(static_cast<size_t>(data_.n_features * kBinSlots));
      return static_cast<int>(hists_.size() - 1);
    }
    const int h = free_hists_.back();
    free_hists_.pop_back();
    return h;
  }
  void release(GrowNode& n) {
    if (n.hist >= 0) free_hists_.push_back(n.hist);
    n.hist = -1;
  }
  HistBin* histogram(const GrowNode& n, int64_t f) {
    return hists_[static_cast<size_t>(n.hist)].data() + f * kBinSlots;
  }
  int32_t n_bins(int64_t f) const { return data_.n_bins[static_cast<size_t>(f)]; }

  // Histograms of the node's samples for feature f and, when `two`, f + 1; the node's i-th
  // sample has gradients g[i] and h[i]. Filling two features in one pass shares the loads of the
  // sample index and its gradients between them.
  void fill_histograms(const GrowNode& node, int64_t f, bool two, const float* g, const float* h) {
    const int32_t* idx = indices_.data() + node.start;
    const int64_t n = node.end - node.start;
    HistBin* ha = histogram(node, f);
    const uint8_t* ca = data_.column(f);
    std::fill(ha, ha + n_bins(f), HistBin{});
    if (!two) {
      for (int64_t i = 0; i < n; ++i) {
        HistBin& a = ha[ca[idx[i]]];
        a.g += g[i];
        a.h += h[i];
        ++a.count;
      }
      return;
    }
    HistBin* hb = histogram(node, f + 1);
    const uint8_t* cb = data_.column(f + 1);
    std::fill(hb, hb + n_bins(f + 1), HistBin{});
    for (int64_t i = 0; i < n; ++i) {
      const int32_t sample = idx[i];
      HistBin& a = ha[ca[sample]];
      a.g += g[i];
      a.h += h[i];
      ++a.count;
      HistBin& b = hb[cb[sample]];
      b.g += g[i];
      b.h += h[i];
      ++b.count;
    }
  }

  // Runs fn(f, two) over the features in pairs (the last one alone when their number is odd),
  // in parallel when the node is worth it (`work` per feature).
  template <typename Fn>
  void for_each_feature_pair(int64_t work, Fn&& fn) {
    const int64_t n_pairs = (data_.n_features + 1) / 2;
    auto pair = [&](int64_t p) { fn(2 * p, 2 * p + 1 < data_.n_features); };
    if (data_.n_features * work < kMinParallelWork) {
      for (int64_t p = 0; p < n_pairs; ++p) pair(p);
    } else {
      parallel_for_each(n_pairs, pair);
    }
  }

  void build_root(GrowNode& root) {
    // The root's samples are all rows in order (indices_ is 0..n-1): no gather needed.
    for_each_feature_pair(root.end - root.start + kBinSlots, [&](int64_t f, bool two) {
      fill_histograms(root, f, two, g_, h_);
      for (int64_t j = f; j < f + (two ? 2 : 1); ++j) {
        small_best_[static_cast<size_t>(j)] = best_split_of_feature(histogram(root, j), j, root);
      }
    });
    choose_split(root, small_best_);
  }

  // All the per-feature work a split leaves, in one pass over the features: the smaller child's
  // histogram from its samples, the larger child's as the parent's minus the smaller's (only if
  // it may be split), and the best split of each child that may be split.
  void build_children(const GrowNode& parent, GrowNode& small, bool small_ok, GrowNode& large,
                      bool large_ok) {
    const int64_t n = small.end - small.start;
    const int32_t* idx = indices_.data() + small.start;
    parallel_for(0, n, kPartitionBlock, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {  // gather once, reuse for every feature
        ordered_g_[static_cast<size_t>(i)] = g_[idx[i]];
        ordered_h_[static_cast<size_t>(i)] = h_[idx[i]];
      }
    });
    const int64_t work = n + (small_ok ? kBinSlots : 0) + (large_ok ? 2 * kBinSlots : 0);
    for_each_feature_pair(work, [&](int64_t f, bool two) {
      fill_histograms(small, f, two, ordered_g_.data(), ordered_h_.data());
      for (int64_t j = f; j < f + (two ? 2 : 1); ++j) {
        const HistBin* s = histogram(small, j);
        if (small_ok) small_best_[static_cast<size_t>(j)] = best_split_of_feature(s, j, small);
        if (!large_ok) continue;
        const HistBin* p = histogram(parent, j);
        HistBin* l = histogram(large, j);
        for (int32_t b = 0; b < n_bins(j); ++b) {
          l[b].g = p[b].g - s[b].g;
          l[b].h = p[b].h - s[b].h;
          l[b].count = p[b].count - s[b].count;
        }
        large_best_[static_cast<size_t>(j)] = best_split_of_feature(l, j, large);
      }
    });
    if (small_ok) choose_split(small, small_best_);
    if (large_ok) choose_split(large, large_best_);
  }

  // Best split of feature f for the node (bins <= b go left); gain 0 and feature -1 if none
  // has positive gain.
  BestSplit best_split_of_feature(const HistBin* hb, int64_t f, const GrowNode& node) const {
    const int64_t n = node.end - node.start;
    const double G = node.sum_g, H = node.sum_h, l2 = s_.l2;
    const double parent_score = G * G / (H + l2);
    const int64_t msl = s_.min_samples_leaf;
    BestSplit best;
    double gl = 0, hl = 0;
    int64_t nl = 0;
    const int32_t nb = n_bins(f);
    for (int32_t b = 0; b + 1 < nb; ++b) {
      gl += hb[b].g;
      hl += hb[b].h;
      nl += hb[b].count;
      if (nl < msl) continue;
      if (n - nl < msl) break;
      const double hr = H - hl;
      if (hl < kMinHessianToSplit) continue;
      if (hr < kMinHessianToSplit) break;
      const double gr = G - gl;
      const double gain = gl * gl / (hl + l2) + gr * gr / (hr + l2) - parent_score;
      if (gain > best.gain) best = {static_cast<int32_t>(f), b, gain, gl, hl, nl};
    }
    return best;
  }

  // The node's split: the best feature's, the lowest feature winning ties.
  static void choose_split(GrowNode& node, const std::vector<BestSplit>& per_feature) {
    node.split = BestSplit{};
    for (const BestSplit& b : per_feature) {
      if (b.feature >= 0 && b.gain > node.split.gain) node.split = b;
    }
  }

  // Stable partition of the parent's samples (indices stay increasing on each side); returns
  // where the left side ends. Blocks of samples are partitioned independently, in parallel when
  // there are several, and then joined in block order, which gives the same result as one pass.
  int64_t partition(const GrowNode& parent) {
    const BestSplit& s = parent.split;
    const uint8_t* col = data_.column(s.feature);
    int32_t* idx = indices_.data();
    const int64_t n_blocks = (parent.end - parent.start + kPartitionBlock - 1) / kPartitionBlock;
    block_left_.resize(static_cast<size_t>(n_blocks));
    parallel_for(0, n_blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t begin = parent.start + b * kPartitionBlock;
        const int64_t end = std::min(parent.end, begin + kPartitionBlock);
        int32_t* right = scratch_.data() + begin;
        int64_t left_end = begin;
        int64_t right_count = 0;
        // Every sample is written to both sides and only the matching side's cursor advances:
        // no branch on the (unpredictable) side. idx[left_end] is safe to write: left_end <= i.
        for (int64_t i = begin; i < end; ++i) {
          const int32_t sample = idx[i];
          const auto goes_left = static_cast<int64_t>(col[sample] <= s.bin);
          idx[left_end] = sample;
          right[right_count] = sample;
          left_end += goes_left;
          right_count += 1 - goes_left;
        }
        block_left_[static_cast<size_t>(b)] = left_end - begin;
      }
    });
    int64_t left_end = parent.start;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t begin = parent.start + b * kPartitionBlock;
      const int64_t count = block_left_[static_cast<size_t>(b)];
      // Moves the block's left side down (left_end < begin): std::copy allows that overlap.
      if (left_end != begin) std::copy(idx + begin, idx + begin + count, idx + left_end);
      left_end += count;
    }
    int64_t right_end = left_end;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t begin = parent.start + b * kPartitionBlock;
      const int64_t count = std::min(parent.end, begin + kPartitionBlock) - begin -
                            block_left_[static_cast<size_t>(b)];
      std::copy_n(scratch_.data() + begin, count, idx + right_end);
      right_end += count;
    }
    return left_end;
  }

  // Partitions the node's samples and creates its children.
  std::pair<int, int> split(int id) {
    GrowNode parent = nodes_[static_cast<size_t>(id)];
    const BestSplit& s = parent.split;
    const int64_t left_end = partition(parent);

    GrowNode left, right;
    left.start = parent.start;
    left.end = left_end;
    left.sum_g = s.g_left;
    left.sum_h = s.h_left;
    left.depth = parent.depth + 1;
    right.start = left_end;
    right.end = parent.end;
    right.sum_g = parent.sum_g - s.g_left;
    right.sum_h = parent.sum_h - s.h_left;
    right.depth = parent.depth + 1;
    left.tree_id = add_tree_node(left);
    right.tree_id = add_tree_node(right);
    TreeNode& t = tree_.nodes[static_cast<size_t>(parent.tree_id)];
    t.left = left.tree_id;
    t.right = right.tree_id;
    t.feature = s.feature;
    t.threshold = edges_[static_cast<size_t>(s.feature)].thresholds[static_cast<size_t>(s.bin)];
    nodes_.push_back(left);
    nodes_.push_back(right);
    return {static_cast<int>(nodes_.size() - 2), static_cast<int>(nodes_.size() - 1)};
  }

  const BinnedData& data_;
  const std::vector<FeatureBins>& edges_;
  GrowSettings s_;
  const float* g_ = nullptr;
  const float* h_ = nullptr;
  std::vector<int32_t> indices_;
  std::vector<int32_t> scratch_;  // right sides during a partition, at the same offsets as indices_
  std::vector<int64_t> block_left_;
  std::vector<float> ordered_g_;
  std::vector<float> ordered_h_;
  std::vector<std::vector<HistBin>> hists_;
  std::vector<int> free_hists_;
  std::vector<BestSplit> small_best_;  // per feature, for the node being built (or the root)
  std::vector<BestSplit> large_best_;  // per feature, for its larger sibling
  std::vector<GrowNode> nodes_;
  TreeStructure tree_;
};

// ---- losses (K = trees per iteration; raw is rows x K)

enum class LossKind { SquaredError, BinaryLogLoss, Multinomial };

// `row_loss` is scratch space for the per-row losses, computed in parallel and then summed in
// row order on one thread: early stopping then decides the same way whatever the thread count.
double mean_loss(LossKind loss, const Matrix& raw, const Vector& y, Vector& row_loss) {
  const int64_t k = raw.cols;
  row_loss.resize(static_cast<size_t>(raw.rows));
  parallel_for(0, raw.rows, 2048, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double* r = raw.row(i);
      const double yi = y[static_cast<size_t>(i)];
      double& out = row_loss[static_cast<size_t>(i)];
      switch (loss) {
        case LossKind::SquaredError:
          out = 0.5 * (yi - r[0]) * (yi - r[0]);
          break;
        case LossKind::BinaryLogLoss:
          out = std::max(r[0], 0.0) + std::log1p(std::exp(-std::abs(r[0]))) - yi * r[0];
          break;
        case LossKind::Multinomial: {
          const double m = *std::max_element(r, r + k);
          double sum = 0;
          for (int64_t c = 0; c < k; ++c) sum += std::exp(r[c] - m);
          out = m + std::log(sum) - r[static_cast<size_t>(yi)];
          break;
        }
      }
    }
  });
  double total = 0;
  for (double v : row_loss) total += v;
  return total / static_cast<double>(raw.rows);
}

inline double sigmoid(double z) {
  return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z));
}

// Gradients and hessians of every output for every sample (column k at offset k * n).
void compute_gradients(LossKind loss, const Matrix& raw, const Vector& y, std::vector<float>& g,
                       std::vector<float>& h) {
  const int64_t n = raw.rows, k = raw.cols;
  parallel_for(0, n, 4096, [&](int64_t i0, int64_t i1) {
    std::vector<double> p(static_cast<size_t>(k));
    for (int64_t i = i0; i < i1; ++i) {
      const double* r = raw.row(i);
      const double yi = y[static_cast<size_t>(i)];
      switch (loss) {
        case LossKind::SquaredError:
          g[static_cast<size_t>(i)] = static_cast<float>(r[0] - yi);
          h[static_cast<size_t>(i)] = 1.0f;
          break;
        case LossKind::BinaryLogLoss: {
          const double q = sigmoid(r[0]);
          g[static_cast<size_t>(i)] = static_cast<float>(q - yi);
          h[static_cast<size_t>(i)] = static_cast<float>(q * (1 - q));
          break;
        }
        case LossKind::Multinomial: {
          const double m = *std::max_element(r, r + k);
          double sum = 0;
          for (int64_t c = 0; c < k; ++c) sum += (p[static_cast<size_t>(c)] = std::exp(r[c] - m));
          for (int64_t c = 0; c < k; ++c) {
            const double q = p[static_cast<size_t>(c)] / sum;
            const auto at = static_cast<size_t>(c * n + i);
            g[at] = static_cast<float>(q - (yi == static_cast<double>(c) ? 1.0 : 0.0));
            h[at] = static_cast<float>(q * (1 - q));
          }
          break;
        }
      }
    }
  });
}

Vector baseline_scores(LossKind loss, const Vector& y, int64_t n_classes) {
  const double n = static_cast<double>(y.size());
  const double eps = std::numeric_limits<double>::epsilon();
  switch (loss) {
    case LossKind::SquaredError:
      return {std::accumulate(y.begin(), y.end(), 0.0) / n};
    case LossKind::BinaryLogLoss: {
      const double p = std::clamp(std::accumulate(y.begin(), y.end(), 0.0) / n, eps, 1 - eps);
      return {std::log(p / (1 - p))};
    }
    case LossKind::Multinomial: {
      Vector counts(static_cast<size_t>(n_classes), 0.0);
      for (double v : y) counts[static_cast<size_t>(v)] += 1;
      double mean_log = 0;
      for (double& c : counts) {
        c = std::log(std::clamp(c / n, eps, 1 - eps));
        mean_log += c / static_cast<double>(n_classes);
      }
      for (double& c : counts) c -= mean_log;
      return counts;
    }
  }
  return {};
}

// Train/validation split; stratified by class for classifiers.
void split_validation(const Vector& y, bool classification, int64_t n_classes, double fraction,
                      uint64_t seed, std::vector<int64_t>& train, std::vector<int64_t>& val) {
  const auto n = static_cast<int64_t>(y.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  TreeRng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(order[static_cast<size_t>(i)],
              order[static_cast<size_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  }
  std::vector<char> in_val(static_cast<size_t>(n), 0);
  if (classification) {
    std::vector<int64_t> class_total(static_cast<size_t>(n_classes), 0), taken = class_total;
    for (double v : y) ++class_total[static_cast<size_t>(v)];
    for (int64_t i : order) {
      const auto c = static_cast<size_t>(y[static_cast<size_t>(i)]);
      const auto want =
          static_cast<int64_t>(std::ceil(fraction * static_cast<double>(class_total[c]) - 1e-9));
      if (taken[c] < want) {
        ++taken[c];
        in_val[static_cast<size_t>(i)] = 1;
      }
    }
  } else {
    const auto want = static_cast<int64_t>(std::ceil(fraction * static_cast<double>(n)));
    for (int64_t j = 0; j < want; ++j)
      in_val[static_cast<size_t>(order[static_cast<size_t>(j)])] = 1;
  }
  for (int64_t i = 0; i < n; ++i) (in_val[static_cast<size_t>(i)] ? val : train).push_back(i);
}

bool should_stop(const std::vector<double>& scores, int64_t n_iter_no_change, double tol) {
  const auto reference_position = static_cast<size_t>(n_iter_no_change + 1);
  if (scores.size() < reference_position) return false;
  const double reference = scores[scores.size() - reference_position] + tol;
  for (size_t i = scores.size() - reference_position + 1; i < scores.size(); ++i) {
    if (scores[i] > reference) return false;
  }
  return true;
}

FittedHistGradientBoosting fit_hgb(const HistGradientBoostingParams& p, const Matrix& x_all,
                                   const Vector& y_all, bool classification, int64_t n_classes,
                                   const char* who) {
  // A fit issues one to three short parallel passes per split, thousands in all, with serial
  // steps between them that often outlast the pool's spin: without this the worker would sleep
  // and be woken once per split.
  const PoolStayAwake awake;
  const LossKind loss = !classification  ? LossKind::SquaredError
                        : n_classes == 2 ? LossKind::BinaryLogLoss
                                         : LossKind::Multinomial;
  const int64_t k = loss == LossKind::Multinomial ? n_classes : 1;
  const uint64_t seed = resolve_random_state(p.random_state);
  const bool early_stopping =
      p.early_stopping == "True" || (p.early_stopping == "auto" && x_all.rows > 10000);
  const bool use_validation = early_stopping && p.validation_fraction.has_value();

  Matrix x_train, x_val;
  Vector y_train, y_val;
  if (use_validation) {
    std::vector<int64_t> train, val;
    split_validation(y_all, classification, n_classes, *p.validation_fraction, derive_seed(seed, 1),
                     train, val);
    if (train.empty() || val.empty())
      throw Error(std::string(who) + ": too few samples to hold out a validation set");
    x_train = take_rows(x_all, train);
    y_train = take(y_all, train);
    x_val = take_rows(x_all, val);
    y_val = take(y_all, val);
  } else {
    x_train = x_all;
    y_train = y_all;
  }
  const int64_t n = x_train.rows;
  if (n >= INT32_MAX) throw Error(std::string(who) + ": too many samples");

  // Bin edges from (a subsample of) the training data.
  std::vector<int64_t> bin_rows;
  if (n > kBinningSubsample) {
    TreeRng rng(derive_seed(seed, 2));
    for (int64_t i = 0; i < kBinningSubsample; ++i) {
      bin_rows.push_back(static_cast<int64_t>(rng.below(static_cast<uint64_t>(n))));
    }
  }
  std::vector<FeatureBins> edges(static_cast<size_t>(x_train.cols));
  parallel_for_each(x_train.cols, [&](int64_t f) {
    std::vector<double> column;
    if (bin_rows.empty()) {
      column.resize(static_cast<size_t>(n));
      for (int64_t r = 0; r < n; ++r) column[static_cast<size_t>(r)] = x_train(r, f);
    } else {
      for (int64_t r : bin_rows) column.push_back(x_train(r, f));
    }
    edges[static_cast<size_t>(f)] = compute_feature_bins(std::move(column), p.max_bins);
  });
  const BinnedData binned = bin_training_data(x_train, edges);

  const Vector baseline = baseline_scores(loss, y_train, n_classes);
  Matrix raw(n, k), raw_val(x_val.rows, k);
  for (int64_t i = 0; i < n; ++i) std::copy(baseline.begin(), baseline.end(), raw.row(i));
  for (int64_t i = 0; i < x_val.rows; ++i)
    std::copy(baseline.begin(), baseline.end(), raw_val.row(i));

  GrowSettings settings;
  settings.max_leaf_nodes = p.max_leaf_nodes.value_or(0);
  settings.max_depth = p.max_depth.value_or(INT64_MAX);
  settings.min_samples_leaf = p.min_samples_leaf;
  settings.l2 = p.l2_regularization;
  settings.learning_rate = p.learning_rate;
  Grower grower(binned, edges, settings);

  std::vector<float> g(static_cast<size_t>(n * k)), h(static_cast<size_t>(n * k));
  std::vector<TreeStructure> trees;
  std::vector<LeafRange> leaves;
  std::vector<double> scores;
  Vector row_loss;
  auto score = [&] {
    return use_validation ? -mean_loss(loss, raw_val, y_val, row_loss)
                          : -mean_loss(loss, raw, y_train, row_loss);
  };
  if (early_stopping) scores.push_back(score());
  for (int64_t iter = 0; iter < p.max_iter; ++iter) {
    compute_gradients(loss, raw, y_train, g, h);
    for (int64_t c = 0; c < k; ++c) {
      TreeStructure tree = grower.grow(g.data() + c * n, h.data() + c * n, leaves);
      const std::vector<int32_t>& idx = grower.indices();
      // Each sample is in exactly one leaf, so leaves update their samples independently.
      parallel_for_each(static_cast<int64_t>(leaves.size()), [&](int64_t l) {
        const LeafRange& leaf = leaves[static_cast<size_t>(l)];
        for (int64_t i = leaf.start; i < leaf.end; ++i)
          raw(idx[static_cast<size_t>(i)], c) += leaf.value;
      });
      if (use_validation) {
        parallel_for(0, x_val.rows, 1024, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            raw_val(i, c) += tree.leaf_values(tree.find_leaf(x_val.row(i)))[0];
        });
      }
      trees.push_back(std::move(tree));
    }
    if (early_stopping) {
      scores.push_back(score());
      if (should_stop(scores, p.n_iter_no_change, p.tol)) break;
    }
  }
  return FittedHistGradientBoosting(x_all.cols, classification ? n_classes : 0, baseline,
                                    std::move(trees));
}

}  // namespace

// ---- fitted model

FittedHistGradientBoosting::FittedHistGradientBoosting(int64_t n_features, int64_t n_classes,
                                                       Vector baseline,
                                                       std::vector<TreeStructure> trees)
    : n_features_(n_features),
      n_classes_(n_classes),
      baseline_(std::move(baseline)),
      trees_(std::move(trees)) {}

int64_t FittedHistGradientBoosting::n_iter() const {
  return static_cast<int64_t>(trees_.size()) / trees_per_iteration();
}

Matrix FittedHistGradientBoosting::raw_predict(const Matrix& x) const {
  check_predict_input(x, n_features_, "HistGradientBoosting");
  const int64_t k = trees_per_iteration();
  Matrix raw(x.rows, k);
  parallel_for(0, x.rows, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::copy(baseline_.begin(), baseline_.end(), raw.row(r));
    for (size_t t = 0; t < trees_.size(); ++t) {
      const TreeStructure& tree = trees_[t];
      const auto c = static_cast<int64_t>(t) % k;
      for (int64_t r = r0; r < r1; ++r) raw(r, c) += tree.leaf_values(tree.find_leaf(x.row(r)))[0];
    }
  });
  return raw;
}

Matrix FittedHistGradientBoosting::predict_proba(const Matrix& x) const {
  if (n_classes_ == 0)
    throw Error("HistGradientBoostingRegressor does not provide class probabilities");
  const Matrix raw = raw_predict(x);
  Matrix proba(x.rows, n_classes_);
  for (int64_t r = 0; r < x.rows; ++r) {
    if (n_classes_ == 2) {
      const double p1 = sigmoid(raw(r, 0));
      proba(r, 0) = 1 - p1;
      proba(r, 1) = p1;
    } else {
      const double* z = raw.row(r);
      const double m = *std::max_element(z, z + n_classes_);
      double sum = 0;
      for (int64_t c = 0; c < n_classes_; ++c) sum += (proba(r, c) = std::exp(z[c] - m));
      for (int64_t c = 0; c < n_classes_; ++c) proba(r, c) /= sum;
    }
  }
  return proba;
}

Vector FittedHistGradientBoosting::predict(const Matrix& x) const {
  if (n_classes_ > 0) return argmax_rows(predict_proba(x));
  const Matrix raw = raw_predict(x);
  Vector out(static_cast<size_t>(x.rows));
  for (int64_t r = 0; r < x.rows; ++r) out[static_cast<size_t>(r)] = raw(r, 0);
  return out;
}

void FittedHistGradientBoosting::save(ArchiveWriter& out) const {
  out.i64(n_features_);
  out.i64(n_classes_);
  out.vec(baseline_);
  out.u64(trees_.size());
  for (const TreeStructure& t : trees_) t.save(out);
}

FittedHistGradientBoosting FittedHistGradientBoosting::load(ArchiveReader& in,
                                                            bool classification) {
  const int64_t n_features = in.i64();
  const int64_t n_classes = in.i64();
  if (n_features < 1 || n_features > (int64_t{1} << 31)) {
    throw Error("model file is corrupt (feature count)");
  }
  if (classification ? (n_classes < 2 || n_classes > (int64_t{1} << 20)) : n_classes != 0) {
    throw Error("model file is corrupt (class count)");
  }
  Vector baseline = in.vec();
  const size_t k = n_classes > 2 ? static_cast<size_t>(n_classes) : 1;
  if (baseline.size() != k) throw Error("model file is corrupt (baseline)");
  for (double b : baseline) {
    if (!std::isfinite(b)) throw Error("model file is corrupt (baseline)");
  }
  const uint64_t count = in.count(8 + 7 * 8 + 8);
  if (count == 0 || count % k != 0) throw Error("model file is corrupt (tree count)");
  std::vector<TreeStructure> trees;
  trees.reserve(count);
  for (uint64_t i = 0; i < count; ++i) trees.push_back(TreeStructure::load(in, n_features, 1));
  return FittedHistGradientBoosting(n_features, n_classes, std::move(baseline), std::move(trees));
}

// ---- estimators

HistGradientBoostingClassifier::HistGradientBoostingClassifier(HistGradientBoostingParams params)
    : params_(std::move(params)) {
  params_.validate("HistGradientBoostingClassifier");
}

FittedHistGradientBoosting HistGradientBoostingClassifier::fit(const Matrix& x,
                                                               const Vector& y) const {
  const char* who = "HistGradientBoostingClassifier";
  check_fit_input(x, &y, who);
  const int64_t k = count_classes(y, who);
  return fit_hgb(params_, x, y, true, k, who);
}

HistGradientBoostingRegressor::HistGradientBoostingRegressor(HistGradientBoostingParams params)
    : params_(std::move(params)) {
  params_.validate("HistGradientBoostingRegressor");
}

FittedHistGradientBoosting HistGradientBoostingRegressor::fit(const Matrix& x,
                                                              const Vector& y) const {
  const char* who = "HistGradientBoostingRegressor";
  check_fit_input(x, &y, who);
  return fit_hgb(params_, x, y, false, 0, who);
}

// ---- registry

namespace {

HistGradientBoostingParams parse_hgb_params(ParamMap& params, bool classification) {
  HistGradientBoostingParams p;
  const std::string loss = params.get_string("loss", classification ? "log_loss" : "squared_error");
  if (loss != (classification ? "log_loss" : "squared_error")) {
    throw Error("loss=" + loss + ": only " +
                (classification ? std::string("log_loss") : std::string("squared_error")) +
                " is supported");
  }
  p.learning_rate = params.get_double("learning_rate", 0.1);
  p.max_iter = params.get_int("max_iter", 100);
  p.max_leaf_nodes = params.get_optional_int("max_leaf_nodes", 31);
  p.max_depth = params.get_optional_int("max_depth", std::nullopt);
  p.min_samples_leaf = params.get_int("min_samples_leaf", 20);
  p.l2_regularization = params.get_double("l2_regularization", 0.0);
  p.max_bins = params.get_int("max_bins", 255);
  p.early_stopping = params.get_string("early_stopping", "auto");
  if (p.early_stopping == "true") p.early_stopping = "True";
  if (p.early_stopping == "false") p.early_stopping = "False";
  const std::string scoring = params.get_string("scoring", "loss");
  if (scoring != "loss") throw Error("scoring=" + scoring + ": only loss is supported");
  p.validation_fraction = params.get_optional_double("validation_fraction", 0.1);
  p.n_iter_no_change = params.get_int("n_iter_no_change", 10);
  p.tol = params.get_double("tol", 1e-7);
  p.random_state = params.get_optional_int("random_state", std::nullopt);
  return p;
}

class HgbModel final : public FittedModel {
 public:
  HgbModel(std::string name, FittedHistGradientBoosting fitted)
      : name_(std::move(name)), fitted_(std::move(fitted)) {}
  std::string algorithm() const override { return name_; }
  int64_t n_features() const override { return fitted_.n_features(); }
  Vector predict(const Matrix& x) const override { return fitted_.predict(x); }
  Matrix predict_proba(const Matrix& x) const override {
    if (fitted_.n_classes() == 0) return FittedModel::predict_proba(x);
    return fitted_.predict_proba(x);
  }
  void save(ArchiveWriter& out) const override { fitted_.save(out); }

 private:
  std::string name_;
  FittedHistGradientBoosting fitted_;
};

// Not estimator_algorithm: both tasks share one fitted type, whose loader needs the task and
// whose probabilities exist for classifiers only.
template <typename Estimator>
Algorithm hgb_algorithm(std::string name, Task task) {
  const bool classification = task == Task::Classification;
  return {name, task, classification,
          [name, classification](ParamMap& params, const Matrix& x,
                                 const Vector* y) -> std::unique_ptr<FittedModel> {
            const HistGradientBoostingParams p = parse_hgb_params(params, classification);
            params.finish(name);
            return std::make_unique<HgbModel>(name, Estimator(p).fit(x, require_target(y, name)));
          },
          [name, classification](ArchiveReader& in) -> std::unique_ptr<FittedModel> {
            return std::make_unique<HgbModel>(name,
                                              FittedHistGradientBoosting::load(in, classification));
          }};
}

const AlgorithmRegistrar kClassifier{hgb_algorithm<HistGradientBoostingClassifier>(
    "HistGradientBoostingClassifier", Task::Classification)};
const AlgorithmRegistrar kRegressor{hgb_algorithm<HistGradientBoostingRegressor>(
    "HistGradientBoostingRegressor", Task::Regression)};

}  // namespace
}  // namespace ember::ml
